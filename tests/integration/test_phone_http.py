"""The phone-facing HTTP frontend and the resolver behind it, over real sockets."""

from __future__ import annotations

import hashlib
import os

import aiohttp
from sqlalchemy import func, select

from provisiond.services.commands import DeviceCreate, UserCreate
from provisiond.storage.models import Device, UnprovisionedDevice
from tests.integration.phone_stack import PhoneStack

YEALINK_UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"


async def _yealink(stack: PhoneStack) -> None:
    user = await stack.services.users.create(
        UserCreate(
            username="mrossi",
            display_name="Rossi & <Figli>",
            main_extension="200",
            cli_custom="0612345",
        ),
        "test",
    )
    await stack.services.devices.create(
        DeviceCreate(
            extension="200",
            model="yealink-t46s",
            mac="001565AABBCC",
            user_id=user["id"],
            sip_password="s3cretPassw0rd",
        ),
        "test",
    )


async def test_device_file_at_root_and_under_prefix(phone_stack: PhoneStack) -> None:
    await _yealink(phone_stack)
    async with aiohttp.ClientSession(headers={"User-Agent": YEALINK_UA}) as http:
        for path in ("001565aabbcc.cfg", "prov/001565aabbcc.cfg", "001565AABBCC.cfg"):
            async with http.get(phone_stack.http_url + path) as response:
                assert response.status == 200, path
                body = await response.text()
                assert "account.1.password = s3cretPassw0rd" in body
                assert response.headers["Content-Type"].startswith("text/plain")
                assert response.headers["ETag"]


async def test_conditional_get_and_head(phone_stack: PhoneStack) -> None:
    await _yealink(phone_stack)
    url = phone_stack.http_url + "001565aabbcc.cfg"
    async with aiohttp.ClientSession(headers={"User-Agent": YEALINK_UA}) as http:
        async with http.get(url) as first:
            etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        async with http.get(url, headers={"If-None-Match": etag}) as again:
            assert again.status == 304
            assert await again.read() == b""
        async with http.get(url, headers={"If-Modified-Since": modified}) as since:
            assert since.status == 304
        async with http.head(url) as head:
            assert head.status == 200
            assert await head.read() == b""


async def test_user_agent_mac_must_match_path(phone_stack: PhoneStack) -> None:
    await _yealink(phone_stack)
    other = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cd"
    async with aiohttp.ClientSession(headers={"User-Agent": other}) as http:
        async with http.get(phone_stack.http_url + "001565aabbcc.cfg") as response:
            # Refused with the site's one "not for you" answer (404 in the open default site,
            # as for an unknown MAC), and counted against the source.
            assert response.status == 404
            assert "s3cret" not in await response.text()
    assert phone_stack.resolver.gate.guard.tracked() >= 1


async def test_unknown_mac_is_404_and_remembered(phone_stack: PhoneStack) -> None:
    ua = "Yealink SIP-T48S 66.86.0.15 00:15:65:11:22:33"
    async with aiohttp.ClientSession(headers={"User-Agent": ua}) as http:
        async with http.get(phone_stack.http_url + "001565112233.cfg") as response:
            assert response.status == 404
    await phone_stack.activity.flush()
    listed = await phone_stack.services.catalogue.unprovisioned()
    assert [(row["mac"], row["vendor"], row["model_guess"]) for row in listed["items"]] == [
        ("00:15:65:11:22:33", "yealink", "T48S")
    ]
    # Creating a device with that MAC claims it.
    await phone_stack.services.devices.create(
        DeviceCreate(extension="301", model="yealink-t48s", mac="001565112233"), "test"
    )
    assert (await phone_stack.services.catalogue.unprovisioned())["items"] == []


async def test_last_seen_is_batched(phone_stack: PhoneStack) -> None:
    await _yealink(phone_stack)
    async with aiohttp.ClientSession(headers={"User-Agent": YEALINK_UA}) as http:
        async with http.get(phone_stack.http_url + "001565aabbcc.cfg") as response:
            assert response.status == 200
    device = (await phone_stack.services.devices.list(mac="001565aabbcc"))["items"][0]
    assert device["last_seen"] is None  # nothing written inside the request
    await phone_stack.activity.flush()
    device = await phone_stack.services.devices.get(device["id"])
    assert device["last_seen"]["ip"] == "127.0.0.1"
    assert device["last_seen"]["firmware"] == "66.86.0.15"
    assert device["last_seen"]["user_agent"] == YEALINK_UA


async def test_uploads_stored_per_device_with_cap(phone_stack: PhoneStack) -> None:
    await _yealink(phone_stack)
    url = phone_stack.http_url + "001565aabbcc-local.cfg"
    async with aiohttp.ClientSession(headers={"User-Agent": YEALINK_UA}) as http:
        async with http.put(url, data=b"local.setting = 1\n") as response:
            assert response.status == 201
        async with http.get(url) as response:
            assert await response.read() == b"local.setting = 1\n"
        async with http.put(url, data=b"x" * (300 * 1024)) as response:
            assert response.status == 413
        async with http.get(url) as response:
            assert await response.read() == b"local.setting = 1\n"
        async with http.put(phone_stack.http_url + "001565aabbcc.cfg", data=b"x") as response:
            assert response.status == 405


async def test_bad_paths_and_methods(phone_stack: PhoneStack) -> None:
    await _yealink(phone_stack)
    async with aiohttp.ClientSession() as http:
        for path in (
            "no-such-file.txt",
            "%2e%2e/etc/passwd",
            "..%2f001565aabbcc.cfg",
            "a%00b.cfg",
            "x\\001565aabbcc.cfg",
            "a" * 400,
        ):
            async with http.get(phone_stack.http_url + path) as response:
                assert response.status in (400, 404), path
                assert "password" not in await response.text()
        async with http.delete(phone_stack.http_url + "001565aabbcc.cfg") as response:
            assert response.status == 405


async def test_nothing_written_for_bad_requests(phone_stack: PhoneStack) -> None:
    """Bad phone requests leave devices and unprovisioned records untouched."""
    await _yealink(phone_stack)
    async with aiohttp.ClientSession() as http:
        for path in ("../../x", "nothing-here", "%00"):
            async with http.get(phone_stack.http_url + path) as response:
                assert response.status in (400, 404)
    await phone_stack.activity.flush()
    async with phone_stack.services.ctx.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(UnprovisionedDevice)) == 0
        assert await session.scalar(select(func.count()).select_from(Device)) == 1


async def test_firmware_with_range_and_etag(phone_stack: PhoneStack) -> None:
    firmware_dir = phone_stack.services.ctx.settings.firmware_dir
    firmware_dir.mkdir(parents=True)
    image = os.urandom(300_000)
    (firmware_dir / "T46S-66.86.0.15.rom").write_bytes(image)
    url = phone_stack.http_url + "T46S-66.86.0.15.rom"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            assert hashlib.sha256(await response.read()).digest() == hashlib.sha256(image).digest()
            etag = response.headers["ETag"]
        async with http.get(url, headers={"Range": "bytes=1000-1999"}) as response:
            assert response.status == 206
            assert await response.read() == image[1000:2000]
        async with http.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
        async with http.get(phone_stack.http_url + "missing.rom") as response:
            assert response.status == 404
