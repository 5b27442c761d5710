"""The firmware store behind the real phone stack: serving, refusal, and the firmware URL rule.

An image added with the store is served over HTTP (ETag, Range) and TFTP; a corrupt one is
refused on both after verification. Rendered files name the model's target image only when the
phone reports another version: from this request's User-Agent, else the version last recorded
for the device, and always when neither is known.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import tftpy

from provisiond.provisioning.firmware import FirmwareStore
from provisiond.services.commands import DeviceCreate, DevicePatch
from tests.integration.phone_stack import PhoneStack

MODEL = "yealink-t46s"
IMAGE = "T46S-66.86.0.160.rom"
TARGET = "66.86.0.160"
OLD = "66.86.0.15"
MAC = "001565aabbcc"
URL_KEY = "static.firmware.url = "


def agent(version: str) -> str:
    """A T46S User-Agent announcing `version`."""
    return f"Yealink SIP-T46S {version} 00:15:65:aa:bb:cc"


def install(stack: PhoneStack, tmp_path: Path, *, target: bool = True) -> bytes:
    """Add the image through the store, optionally target it, and re-verify the resolver's."""
    content = os.urandom(200_000)
    source = tmp_path / IMAGE
    source.write_bytes(content)
    store = FirmwareStore(stack.resolver.firmware_dir)
    store.add(source, MODEL, TARGET)
    if target:
        store.set_target(MODEL, TARGET)
    stack.resolver.firmware.verify()
    return content


async def tftp_get(stack: PhoneStack, name: str, out: Path) -> bytes | None:
    """Download with tftpy: the bytes, or None for TFTP "file not found"."""

    def download() -> bytes | None:
        try:
            tftpy.TftpClient(stack.tftp_host, stack.tftp_port).download(name, str(out), timeout=5)
        except tftpy.TftpShared.TftpFileNotFoundError:
            return None
        return out.read_bytes()

    return await asyncio.to_thread(download)


async def fetch(stack: PhoneStack, path: str, user_agent: str | None = None) -> str:
    headers = {"User-Agent": user_agent} if user_agent else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(stack.http_url + path, headers=headers) as response:
            assert response.status == 200, (path, response.status)
            return await response.text()


def offered(body: str) -> str | None:
    """The firmware URL a Yealink file carries, or None."""
    for line in body.splitlines():
        if line.startswith(URL_KEY):
            return line[len(URL_KEY) :]
    return None


async def test_added_image_is_served_with_etag_and_range(
    phone_stack: PhoneStack, tmp_path: Path
) -> None:
    content = install(phone_stack, tmp_path)
    url = phone_stack.http_url + "prov/" + IMAGE
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            assert await response.read() == content
            etag = response.headers["ETag"]
        async with http.get(url, headers={"Range": "bytes=100-199"}) as response:
            assert response.status == 206
            assert await response.read() == content[100:200]
        async with http.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
        async with http.get(phone_stack.http_url + "manifest.json") as response:
            assert response.status == 404
    assert await tftp_get(phone_stack, IMAGE, tmp_path / "got") == content


async def test_a_corrupt_image_is_never_served(phone_stack: PhoneStack, tmp_path: Path) -> None:
    install(phone_stack, tmp_path)
    await phone_stack.services.devices.create(
        DeviceCreate(extension="200", model=MODEL, mac=MAC), "t"
    )
    stored = phone_stack.resolver.firmware_dir / IMAGE
    data = bytearray(stored.read_bytes())
    data[5000] ^= 0xFF  # same size: only the checksum can tell
    stored.write_bytes(bytes(data))
    problems = phone_stack.resolver.firmware.verify()
    assert {(p.kind, p.file) for p in problems} == {("checksum", IMAGE), ("target", IMAGE)}
    async with aiohttp.ClientSession() as http:
        async with http.get(phone_stack.http_url + IMAGE) as response:
            assert response.status == 404
    assert await tftp_get(phone_stack, IMAGE, tmp_path / "got") is None
    # ... and never offered: the target's image is bad.
    assert offered(await fetch(phone_stack, f"{MAC}.cfg", agent(OLD))) is None


async def test_url_only_when_the_reported_version_differs(
    phone_stack: PhoneStack, tmp_path: Path
) -> None:
    await phone_stack.services.devices.create(
        DeviceCreate(extension="200", model=MODEL, mac=MAC), "t"
    )
    install(phone_stack, tmp_path, target=False)
    assert offered(await fetch(phone_stack, f"{MAC}.cfg", agent(OLD))) is None  # no target yet
    FirmwareStore(phone_stack.resolver.firmware_dir).set_target(MODEL, TARGET)
    phone_stack.resolver.firmware.verify()
    expected = phone_stack.resolver.endpoints.http_url + IMAGE
    # The same file three times: the render cache must not hand one phone's answer to another.
    assert offered(await fetch(phone_stack, f"{MAC}.cfg", agent(OLD))) == expected
    assert offered(await fetch(phone_stack, f"{MAC}.cfg", agent(TARGET))) is None
    assert offered(await fetch(phone_stack, f"{MAC}.cfg", agent(OLD))) == expected
    # The model's common file follows the same rule.
    assert offered(await fetch(phone_stack, "y000000000066.cfg", agent(OLD))) == expected
    assert offered(await fetch(phone_stack, "y000000000066.cfg", agent(TARGET))) is None
    assert offered(await fetch(phone_stack, "y000000000066.cfg")) == expected  # unknown: offer


async def test_without_user_agent_the_recorded_version_decides(
    phone_stack: PhoneStack, tmp_path: Path
) -> None:
    """TFTP carries no User-Agent: the version the device last reported is used."""
    created = await phone_stack.services.devices.create(
        DeviceCreate(extension="200", model=MODEL, mac=MAC), "t"
    )
    install(phone_stack, tmp_path)
    expected = phone_stack.resolver.endpoints.http_url + IMAGE
    body = await tftp_get(phone_stack, f"{MAC}.cfg", tmp_path / "a")
    assert body is not None
    assert offered(body.decode()) == expected
    await fetch(phone_stack, f"{MAC}.cfg", agent(TARGET))  # the phone now runs the target
    await phone_stack.activity.flush()
    # Any admin change reloads the device into the in-memory directory, last-seen data included.
    await phone_stack.services.devices.update(created["id"], DevicePatch(label="desk"), "t")
    body = await tftp_get(phone_stack, f"{MAC}.cfg", tmp_path / "b")
    assert body is not None
    assert offered(body.decode()) is None
