"""Keys and the phone book on the wire, per vendor (issue 16 acceptance).

One real `provisiond serve` (SQLite, loopback) for the module. For every vendor, a user of a
model from tests/keys_cases/<vendor>.toml has a BLF on a colleague, a speed dial and a park key
(the types the vendor writes); the test fetches the device file with the model's User-Agent and
checks the vendor's syntax (the case file's regexes, from the vendor's document), follows the
phone book URL the file carries, parses the phone book and finds every user in it. A key
beyond the model's capacity is a 422 naming the limit; from outside the device's site the
phone book is refused exactly like the device file; changing a colleague's primary device
moves the BLF in the served file.
"""

from __future__ import annotations

import asyncio
import re
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provisiond.app import build_services, open_secrets, prepare_database
from provisiond.domain.catalogue import CatalogueModel, boot_paths, user_agent
from provisiond.domain.identify import FileKind, match_path
from provisiond.domain.rules import APP_USERS, MCS_APP_WEBRTC
from provisiond.services.commands import DeviceCreate, TokenCreate, UserCreate
from provisiond.services.sites import SiteCreate
from provisiond.settings import load_settings
from tests.phone_context import catalogue_models, vendors
from tests.serve_process import ServeProcess, api_call, cli_env, phone_get, run_cli, serve

CASES_DIR = Path(__file__).parents[1] / "keys_cases"
CASES = {
    path.stem: tomllib.loads(path.read_text("utf-8")) for path in sorted(CASES_DIR.glob("*.toml"))
}
VENDOR_IDS = sorted(vendors())
COLLEAGUES = (
    ("anna", "Anna Bianchi & <Co>", "202", "+393331234567"),
    ("nico", 'Niccolò "Nico" D\'Àmbrosio', "203", None),
    ("zoe", "Zoë Müller", "204", None),
)
LICENCES = {APP_USERS: 10, MCS_APP_WEBRTC: 10}
SAMPLE = (
    {"type": "blf", "value": "202", "label": "Anna"},
    {"type": "speed_dial", "value": "0612345678", "label": "Reception"},
    {"type": "park", "value": "701"},
)


def test_every_vendor_has_a_case() -> None:
    assert sorted(CASES) == VENDOR_IDS


@dataclass(frozen=True)
class Phone:
    """One vendor's test device."""

    device_id: int
    user_id: int
    mac: str
    model: CatalogueModel
    keys: tuple[str, ...]  # the key types set on it


@dataclass(frozen=True)
class Fleet:
    server: ServeProcess
    token: str
    phones: dict[str, Phone]
    outsider: Phone  # a device of a site the test's address is not in
    colleague_devices: dict[str, int]


def _types(vendor: str) -> tuple[str, ...]:
    case = CASES[vendor]
    return tuple(t for t in ("blf", "speed_dial", "park") if case.get(t))


async def _provision(env: dict[str, str]) -> tuple[dict[str, Phone], Phone, str, dict[str, int]]:
    settings = load_settings(environ=env)
    db = await prepare_database(settings)
    models = catalogue_models()
    try:
        services = build_services(settings, db, await open_secrets(settings, db))
        token = await services.tokens.create(TokenCreate(name="test"), "test")
        await services.platform.put_settings(
            {"sip": {"registrar": "sip.keys.example"}, "phonebook": {"title": "Rubrica & Co"}},
            "test",
        )
        await services.platform.put_licences(LICENCES, "test")  # a Team App with GSM mode
        loopback = await services.sites.create(
            SiteCreate(name="loopback", networks=["127.0.0.0/8"]), "test"
        )
        branch = await services.sites.create(
            SiteCreate(name="branch", networks=["10.9.0.0/16"]), "test"
        )
        colleague_devices = {}
        for index, (username, name, extension, gsm) in enumerate(COLLEAGUES):
            extra: dict[str, Any] = {}
            if gsm:
                extra["team_app"] = {"enabled": True, "gsm_mode": True, "gsm_number": gsm}
            user = await services.users.create(
                UserCreate(username=username, display_name=name, main_extension=extension, **extra),
                "test",
            )
            device = await services.devices.create(
                DeviceCreate(
                    extension=extension,
                    model="yealink-t46s",
                    mac=f"00a1000000{index:02x}",
                    user_id=user["id"],
                ),
                "test",
            )
            colleague_devices[username] = device["id"]
        phones = {}
        for index, vendor in enumerate([*VENDOR_IDS, "outsider"]):
            case = CASES[vendor if vendor != "outsider" else "yealink"]
            model = models[case["model"]]
            extension = f"3{index:02d}"
            user = await services.users.create(
                UserCreate(
                    username=f"owner{index}",
                    display_name=f"Owner {vendor}",
                    main_extension=extension,
                ),
                "test",
            )
            mac = f"00a20000{index:04x}"
            device = await services.devices.create(
                DeviceCreate(
                    extension=extension,
                    model=model.id,
                    mac=mac,
                    user_id=user["id"],
                    site_id=branch["id"] if vendor == "outsider" else loopback["id"],
                ),
                "test",
            )
            types = _types(vendor if vendor != "outsider" else "yealink")
            keys = [dict(k, position=p) for p, k in enumerate(SAMPLE, 1) if k["type"] in types]
            await services.keys.set_user_keys(user["id"], keys, actor="test")
            phones[vendor] = Phone(device["id"], user["id"], mac, model, types)
        outsider = phones.pop("outsider")
        return phones, outsider, token, colleague_devices
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    data = tmp_path_factory.mktemp("keys")
    env = cli_env(data)
    run_cli(env, "keys", "init")
    phones, outsider, token, colleagues = asyncio.run(_provision(env))
    with serve(data) as server:
        yield Fleet(server, token, phones, outsider, colleagues)
        assert server.process.poll() is None, "the server died during the module"
        assert "Traceback" not in server.log_path.read_text(encoding="utf-8")


def _device_path(phone: Phone) -> str:
    vendor = vendors()[phone.model.vendor]
    for path in boot_paths(phone.model, phone.mac):
        if match_path((vendor,), path)[0].spec.kind is FileKind.DEVICE:
            return path
    raise AssertionError(f"{phone.model.id}: no device file in its boot sequence")


def _get(fleet: Fleet, phone: Phone, path: str) -> tuple[int, bytes]:
    agent = user_agent(phone.model, phone.mac, "1.2.3.4") or "provisiond-test"
    return phone_get(fleet.server, path, agent)


def _device_file(fleet: Fleet, phone: Phone) -> str:
    status, body = _get(fleet, phone, _device_path(phone))
    assert status == 200, (phone.model.id, status, body[:200])
    return body.decode("utf-8")


@pytest.mark.parametrize("vendor", VENDOR_IDS)
def test_the_device_file_carries_the_keys(fleet: Fleet, vendor: str) -> None:
    phone = fleet.phones[vendor]
    text = _device_file(fleet, phone)
    case = CASES[vendor]
    for key_type in ("blf", "speed_dial", "park"):
        for pattern in case.get(key_type, []):
            assert re.search(pattern, text, re.MULTILINE), (vendor, key_type, pattern)


def _texts(body: bytes, fmt: str) -> list[str]:
    if fmt == "xml":
        root = ET.fromstring(body)
        found = [t.strip() for t in root.itertext() if t.strip()]
        found += [v for element in root.iter() for v in element.attrib.values()]
        return found
    return [body.decode("utf-8")]


def _listed(name: str, texts: list[str]) -> bool:
    """The name whole, or split into parts (first and last name fields)."""
    if any(name in t for t in texts):
        return True
    return all(any(part in t for t in texts) for part in name.split())


@pytest.mark.parametrize("vendor", VENDOR_IDS)
def test_the_phone_book_url_in_the_file_serves_every_user(fleet: Fleet, vendor: str) -> None:
    phone = fleet.phones[vendor]
    spec = vendors()[phone.model.vendor]
    path = spec.phonebook_path(phone.mac)
    if CASES[vendor]["phonebook_format"] in ("", "none"):
        assert (path, spec.phonebook_format) == (None, "")
        return
    assert path is not None
    text = _device_file(fleet, phone)
    if CASES[vendor].get("url_in_device_file", True):
        # The whole name, or the directory the phone appends a fixed file name to.
        folder = path.rsplit("/", 1)[0] + "/" if path.endswith("/phonebook.xml") else path
        assert folder.rstrip("/") in text, f"{vendor}: the device file does not name {path}"
    status, body = _get(fleet, phone, path)
    assert status == 200, (vendor, status, body[:200])
    texts = _texts(body, CASES[vendor]["phonebook_format"])
    for _, name, extension, _ in COLLEAGUES:
        assert _listed(name, texts), (vendor, name)
        assert any(extension == t or extension in t.split() for t in texts) or any(
            re.search(rf"\b{extension}\b", t) for t in texts
        ), (vendor, extension)
    owner = f"Owner {vendor}"
    assert _listed(owner, texts)
    assert b"sip.keys.example" not in body  # no registration data in the book


@pytest.mark.parametrize("vendor", VENDOR_IDS)
def test_a_key_beyond_the_model_is_refused_naming_the_limit(fleet: Fleet, vendor: str) -> None:
    phone = fleet.phones[vendor]
    status, shown = api_call(fleet.server, fleet.token, "GET", f"/devices/{phone.device_id}/keys")
    assert status == 200
    capacity = shown["capacity"]
    body = {"keys": [{"position": capacity + 1, "type": "dnd"}]}
    status, answer = api_call(
        fleet.server, fleet.token, "PUT", f"/devices/{phone.device_id}/keys", body
    )
    assert status == 422, answer
    assert phone.model.id in answer["detail"]
    assert f"{capacity} key positions" in answer["detail"]


def test_outside_the_devices_site_the_phone_book_is_refused_like_the_device_file(
    fleet: Fleet,
) -> None:
    phone = fleet.outsider
    path = vendors()[phone.model.vendor].phonebook_path(phone.mac)
    assert path is not None
    device_status, device_body = _get(fleet, phone, _device_path(phone))
    book_status, book_body = _get(fleet, phone, path)
    assert device_status == book_status == 404
    assert b"Anna" not in book_body
    assert b"Anna" not in device_body


def test_a_colleagues_new_primary_moves_the_blf_in_the_served_file(fleet: Fleet) -> None:
    phone = fleet.phones["yealink"]
    anna = next(
        u for u in api_call(fleet.server, fleet.token, "GET", "/users?search=anna")[1]["items"]
    )
    status, device = api_call(
        fleet.server,
        fleet.token,
        "POST",
        "/devices",
        {"extension": "262", "model": "yealink-t46s", "mac": "00a1000000ff", "user_id": anna["id"]},
    )
    assert status == 201, device
    status, moved = api_call(
        fleet.server,
        fleet.token,
        "PUT",
        f"/users/{anna['id']}/primary-device",
        {"device_id": device["id"]},
    )
    assert (status, moved["main_extension"]) == (200, "262"), moved
    blf = [p.replace("202", "262") for p in CASES["yealink"]["blf"]]
    for _ in range(50):  # the admin API's own process re-reads at once; bounded anyway
        text = _device_file(fleet, phone)
        if all(re.search(pattern, text, re.MULTILINE) for pattern in blf):
            break
        time.sleep(0.1)
    for pattern in blf:
        assert re.search(pattern, text, re.MULTILINE), pattern
