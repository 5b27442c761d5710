"""Issue 12, finding 8: phone uploads cannot be multiplied, inflated or written by others.

A real phone HTTP listener (`start_phone_listener`, as `provisiond serve` runs it) over the real
resolver and upload store, on 127.0.0.1; clients are aiohttp sessions bound to 127.x sources.

- names are canonical (lower-case, whole): 64 case variants of one name are one stored file,
  readable under any case; a legacy variant in another case is removed on the next write;
- the global ceiling (settings.max_upload_bytes) applies on top of each name's own cap:
  a 300 KiB body to a name whose cap is 1 MiB is refused with 413 under a 256 KiB ceiling, and
  nothing is stored;
- a per-device quota bounds all of a device's uploads (413 beyond it; replacing a file counts
  its new size, not both);
- a User-Agent that names another MAC cannot write a device's uploads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from provisiond.app import build_phone_side
from provisiond.frontends.http_common import SourceCounter
from provisiond.frontends.phone_http import HttpLimits, start_phone_listener
from provisiond.provisioning.activity import ActivityRecorder
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate

MAC = "001565aabbcc"
UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"
OTHER_UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cd"
QUOTA = 400 << 10
KIB = 1024


@dataclass
class Uploads:
    """The listener's URL and the upload folder of the device."""

    url: str
    folder: Path


@pytest.fixture
async def uploads(services: Services) -> AsyncIterator[Uploads]:
    """The phone listener with the store built from the settings (ceiling) and QUOTA."""
    base = services.ctx.settings
    settings = base.model_copy(
        update={"phone_limits": base.phone_limits.model_copy(update={"upload_quota_bytes": QUOTA})}
    )
    activity = ActivityRecorder(services.ctx.db, interval=3600)
    phone = await build_phone_side(
        settings, services.ctx.db, services.ctx.secrets, activity=activity
    )
    resolver = phone.resolver
    root = settings.data_dir / "uploads"
    await services.devices.create(
        DeviceCreate(extension="200", model="yealink-t46s", mac=MAC, sip_password="s3cretPassw0rd"),
        "test",
    )
    limits = HttpLimits(allowed_hosts=frozenset({"localhost"}), max_body=settings.max_upload_bytes)
    listener = await start_phone_listener(
        resolver,
        "127.0.0.1",
        0,
        counter=SourceCounter(limits.max_connections_per_source),
        limits=limits,
    )
    try:
        yield Uploads(f"http://127.0.0.1:{listener.port}/", root / MAC)
    finally:
        await listener.close()
        await phone.stop()


def session(source: str, agent: str = UA) -> aiohttp.ClientSession:
    """An aiohttp client bound to `source`."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": agent})


def variants(name: str, count: int) -> list[str]:
    """`count` distinct case variants of `name` (bit i of n upper-cases letter i)."""
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    out = []
    for n in range(count):
        chars = list(name)
        for bit, index in enumerate(letters):
            if n >> bit & 1:
                chars[index] = chars[index].upper()
        out.append("".join(chars))
    return out


async def test_case_variants_are_one_file(uploads: Uploads) -> None:
    names = variants(f"{MAC}-local.cfg", 64)
    assert len(set(names)) == 64
    async with session("127.30.0.1") as http:
        for number, name in enumerate(names):
            async with http.put(uploads.url + name, data=f"n={number}\n".encode()) as response:
                assert response.status == 201, name
        assert [p.name for p in uploads.folder.iterdir()] == [f"{MAC}-local.cfg"]
        for name in (names[0], names[17], names[63]):
            async with http.get(uploads.url + name) as response:
                assert await response.read() == b"n=63\n"
    # A variant stored by an older version is replaced, not kept beside the canonical one.
    legacy = uploads.folder / f"{MAC.upper()}-contact.XML"
    legacy.write_bytes(b"old" * 1000)
    async with session("127.30.0.1") as http:
        async with http.put(uploads.url + f"{MAC}-contact.xml", data=b"<new/>") as response:
            assert response.status == 201
    assert sorted(p.name for p in uploads.folder.iterdir()) == [
        f"{MAC}-contact.xml",
        f"{MAC}-local.cfg",
    ]


async def test_global_ceiling_on_top_of_the_name_cap(uploads: Uploads) -> None:
    """contact.xml takes 1 MiB by its vendor file; the 256 KiB ceiling still wins."""
    url = uploads.url + f"{MAC}-contact.xml"
    async with session("127.30.0.2") as http:
        async with http.put(url, data=b"x" * (300 * KIB)) as response:
            assert response.status == 413

        # Announced size or not (chunked): the same refusal, and nothing stored.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(300):
                yield b"y" * KIB

        async with http.put(url, data=chunks()) as response:
            assert response.status == 413
        assert not uploads.folder.exists() or not any(uploads.folder.iterdir())
        async with http.put(url, data=b"z" * (200 * KIB)) as response:
            assert response.status == 201
        async with http.get(url) as response:
            assert len(await response.read()) == 200 * KIB


async def test_device_quota(uploads: Uploads) -> None:
    local, contact = uploads.url + f"{MAC}-local.cfg", uploads.url + f"{MAC}-contact.xml"
    async with session("127.30.0.3") as http:
        async with http.put(local, data=b"a" * (200 * KIB)) as response:
            assert response.status == 201
        async with http.put(contact, data=b"b" * (250 * KIB)) as response:
            assert response.status == 413  # 450 KiB > 400 KiB
        async with http.put(contact, data=b"c" * (150 * KIB)) as response:
            assert response.status == 201
        async with http.put(contact, data=b"d" * (210 * KIB)) as response:
            assert response.status == 413  # 200 + 210 > 400 (the old 150 replaced)
        async with http.put(local, data=b"e" * (250 * KIB)) as response:
            assert response.status == 201  # replacing: 250 + 150 = 400, the old 200 not counted
    used = sum(p.stat().st_size for p in uploads.folder.iterdir())
    assert used == 400 * KIB


async def test_another_identity_cannot_write(uploads: Uploads) -> None:
    url = uploads.url + f"{MAC}-local.cfg"
    async with session("127.30.0.4") as phone:
        async with phone.put(url, data=b"mine\n") as response:
            assert response.status == 201
    async with session("127.30.0.5", OTHER_UA) as other:
        async with other.put(url, data=b"theirs\n") as response:
            assert response.status >= 400
    async with session("127.30.0.4") as phone:
        async with phone.get(url) as response:
            assert await response.read() == b"mine\n"
