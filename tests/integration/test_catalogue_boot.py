"""Every model of the catalogue boots through its documented sequence, over HTTP and TFTP.

One real `provisiond serve` process for the module (SQLite, loopback). Before it starts, one
device per catalogue model is created through the services, carrying accounts in slot 1,
slot 2 and the model's last slot (each owned by its own user, whose display name needs
escaping), so the highest numbered keys a template writes are exercised too. Then for each
model the test asks for the files of its boot sequence (`boot` in models.toml) in order, with
its User-Agent over HTTP, and without one over TFTP (tftpy's client): rendered kinds answer
200, optional/firmware/upload names 404; per-device files hold every account's extension,
auth name, password and display name as whole values of the format (XML parses), and the
registrar; no other file holds a SIP password.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tftpy

from provisiond.app import build_services, open_secrets, prepare_database
from provisiond.domain.catalogue import CatalogueModel, boot_paths, user_agent
from provisiond.domain.identify import FileKind, match_path
from provisiond.services.commands import AccountPut, DeviceCreate, UserCreate
from provisiond.settings import load_settings
from tests.catalogue_checks import missing_accounts, values_of
from tests.phone_context import catalogue_models, vendors
from tests.serve_process import cli_env, run_cli, serve

MODELS = tuple(catalogue_models().values())
HTTP_MODELS = [m for m in MODELS if {"http", "https"} & set(m.protocols)]
TFTP_MODELS = [m for m in MODELS if "tftp" in m.protocols]
REGISTRAR = "sip.catalogue.example"
# Rendered kinds answer 200; a phone book in a boot sequence (Poly asks for its contact
# directory, <mac>-directory.xml, at boot) is rendered too.
RENDERED = {FileKind.DEVICE, FileKind.DEVICE_BOOT, FileKind.COMMON, FileKind.PHONEBOOK}


@dataclass(frozen=True)
class Provisioned:
    """What was created for one model: the device's MAC and each account's values."""

    mac: str
    accounts: tuple[tuple[int, tuple[str, str, str, str]], ...]  # slot, (ext, auth, pw, name)

    @property
    def passwords(self) -> list[str]:
        return [values[2] for _, values in self.accounts]


@dataclass(frozen=True)
class Fleet:
    """The running server and what each model's device holds."""

    phone_port: int
    tftp_port: int
    devices: dict[str, Provisioned]


def _account(index: int, slot: int) -> tuple[str, str, str, str]:
    number = f"{index:03d}{slot:03d}"
    return (f"5{number}", f"a{number}", f"Pw{number}!x", f"Rossi {number} & <Figli>")


async def _provision(env: dict[str, str]) -> dict[str, Provisioned]:
    settings = load_settings(environ=env)
    db = await prepare_database(settings)
    try:
        services = build_services(settings, db, await open_secrets(settings, db))
        await services.platform.put_settings({"sip": {"registrar": REGISTRAR}}, "test")
        devices = {}
        for index, model in enumerate(MODELS):
            slots = sorted({1, 2, model.accounts} & set(range(1, model.accounts + 1)))
            mac = f"00a0{index:08x}"
            accounts = tuple((slot, _account(index, slot)) for slot in slots)
            users = []
            for _slot, (extension, _, _, name) in accounts:
                user = await services.users.create(
                    UserCreate(
                        username=f"u{extension}", display_name=name, main_extension=extension
                    ),
                    "test",
                )
                users.append(user["id"])
            (first_ext, first_auth, first_pw, _) = accounts[0][1]
            device = await services.devices.create(
                DeviceCreate(
                    extension=first_ext,
                    model=model.id,
                    mac=mac,
                    user_id=users[0],
                    sip_username=first_auth,
                    sip_password=first_pw,
                ),
                "test",
            )
            for (slot, (extension, auth, password, _)), owner in zip(
                accounts[1:], users[1:], strict=True
            ):
                await services.accounts.put(
                    device["id"],
                    slot,
                    AccountPut(
                        extension=extension,
                        user_id=owner,
                        sip_username=auth,
                        sip_password=password,
                    ),
                    move=False,
                    actor="test",
                )
            devices[model.id] = Provisioned(mac, accounts)
        return devices
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    data = tmp_path_factory.mktemp("catalogue")
    env = cli_env(data)
    run_cli(env, "keys", "init")
    devices = asyncio.run(_provision(env))
    extra = {
        "PROVISIOND_BAN_UNKNOWN_PER_SOURCE": "1000000",
        "PROVISIOND_BAN_UNKNOWN_PER_PREFIX": "1000000",
    }
    with serve(data, extra) as server:
        yield Fleet(server.phone_port, server.tftp_port, devices)
        assert server.process.poll() is None, "the server died during the module"
        assert "Traceback" not in server.log_path.read_text(encoding="utf-8")


def _expected_status(model: CatalogueModel, path: str) -> tuple[FileKind, int]:
    kind = match_path((vendors()[model.vendor],), path)[0].spec.kind
    return kind, 200 if kind in RENDERED else 404


def _check(model: CatalogueModel, device: Provisioned, path: str, body: bytes) -> None:
    kind, _ = _expected_status(model, path)
    if kind is FileKind.DEVICE:
        values = values_of(body)
        assert missing_accounts(values, device.accounts) == [], path
        assert any(v.startswith(REGISTRAR) for v in values), f"{path}: no registrar"
    else:
        leaked = [p for p in device.passwords if p.encode() in body]
        assert leaked == [], f"{path} carries a SIP password"


def _http_get(port: int, path: str, agent: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/{path}")
    if agent is not None:
        request.add_header("User-Agent", agent)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize("model", HTTP_MODELS, ids=lambda m: m.id)
def test_http_boot(fleet: Fleet, model: CatalogueModel) -> None:
    device = fleet.devices[model.id]
    agent = user_agent(model, device.mac)
    for path in boot_paths(model, device.mac):
        status, body = _http_get(fleet.phone_port, path, agent)
        assert status == _expected_status(model, path)[1], (path, status, body[:200])
        if status == 200:
            _check(model, device, path, body)


@pytest.mark.parametrize("model", TFTP_MODELS, ids=lambda m: m.id)
def test_tftp_boot(fleet: Fleet, model: CatalogueModel, tmp_path: Path) -> None:
    device = fleet.devices[model.id]
    client = tftpy.TftpClient("127.0.0.1", fleet.tftp_port)
    for path in boot_paths(model, device.mac):
        out = tmp_path / "file"
        out.unlink(missing_ok=True)
        expected = _expected_status(model, path)[1]
        try:
            client.download(path, str(out), timeout=5)
            status = 200
        except tftpy.TftpShared.TftpFileNotFoundError:
            status = 404
        assert status == expected, path
        if status == 200:
            _check(model, device, path, out.read_bytes())
