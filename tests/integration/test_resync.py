"""Resync through the service: the vendor's NOTIFY reaches the device's last-seen address.

A small SIP peer on 127.0.0.1 plays the phone (answering 200, or staying silent); sipp-based
protocol tests live in test_sip_notify.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import netaddr
import pytest
from sqlalchemy import insert, update

from provisiond.domain.errors import Conflict, InvalidInput
from provisiond.provisioning.auto_resync import AutoResync
from provisiond.provisioning.changes import Change, ChangeFeed
from provisiond.services import Services
from provisiond.services.commands import AccountPut, DeviceCreate, UserCreate, UserPatch
from provisiond.services.resync import MAX_BULK
from provisiond.services.sites import SiteCreate
from provisiond.storage.models import Device


class Phone(asyncio.DatagramProtocol):
    """Answers every NOTIFY with 200 OK (copying the transaction headers), or stays silent."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.requests: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode()
        self.requests.append(text)
        if not self.answer or self.transport is None:
            return
        keep = [
            line
            for line in text.split("\r\n")
            if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")
        ]
        reply = "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
        self.transport.sendto(reply.encode(), addr)


@pytest.fixture
async def phones() -> AsyncIterator[Callable[[bool], Awaitable[tuple[Phone, int]]]]:
    """Start fake phones on 127.0.0.1; closed after the test."""
    transports: list[asyncio.BaseTransport] = []

    async def start(answer: bool = True) -> tuple[Phone, int]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: Phone(answer), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        return protocol, transport.get_extra_info("sockname")[1]

    yield start
    for transport in transports:
        transport.close()


PhoneFactory = Callable[[bool], Awaitable[tuple[Phone, int]]]


async def _seen(services: Services, device_id: int, ip: str = "127.0.0.1") -> None:
    async with services.ctx.db.background() as session:
        await session.execute(
            update(Device)
            .where(Device.id == device_id)
            .values(last_seen_ip=ip, last_seen_at=datetime.now(UTC))
        )


def _with_port(services: Services, port: int) -> None:
    settings = services.ctx.settings
    resync = settings.resync.model_copy(update={"port": port, "t1": 0.05, "timeout_s": 0.4})
    services.ctx.settings = settings.model_copy(update={"resync": resync})


async def test_resync_one_device(services: Services, phones: PhoneFactory) -> None:
    phone, port = await phones(True)
    _with_port(services, port)
    device = await services.devices.create(
        DeviceCreate(
            extension="201", model="snom-d785", mac="000413922d24", sip_password="Resync-Pass-1"
        ),
        "t",
    )
    with pytest.raises(Conflict):  # never seen: no address yet
        await services.resync.resync(device["id"], reboot=False, actor="t")
    await _seen(services, device["id"])
    answer = await services.resync.resync(device["id"], reboot=True, actor="t")
    assert answer["status"] == 200
    request = phone.requests[-1]
    assert request.startswith("NOTIFY sip:201@127.0.0.1:")
    assert "\r\nEvent: check-sync;reboot=true\r\n" in request
    audit = (await services.catalogue.audit())["items"][0]
    assert audit["action"] == "device.resync"
    assert audit["after"]["status"] == 200
    assert "Resync-Pass-1" not in str(audit)


async def test_a_model_without_a_resync_event_is_never_rebooted_by_a_resync(
    services: Services, phones: PhoneFactory
) -> None:
    """Cisco 7940/7960 SIP firmware knows only check-sync, which reboots it: a resync is
    refused (alone) or reported unsent (in bulk); only an explicit reboot sends it."""
    phone, port = await phones(True)
    _with_port(services, port)
    device = await services.devices.create(
        DeviceCreate(extension="201", model="cisco-cp-7960", mac="001122334455"), "t"
    )
    await _seen(services, device["id"])
    with pytest.raises(Conflict, match="re-reads its files only when it boots"):
        await services.resync.resync(device["id"], reboot=False, actor="t")
    [answer] = await services.resync.resync_many(model="cisco-cp-7960", reboot=False, actor="t")
    assert (answer["status"], answer["attempts"], answer["event"]) == (None, 0, "")
    assert phone.requests == []
    answer = await services.resync.resync(device["id"], reboot=True, actor="t")
    assert answer["status"] == 200
    assert "\r\nEvent: check-sync\r\n" in phone.requests[-1]


async def test_bulk_resync_by_user_and_timeout(services: Services, phones: PhoneFactory) -> None:
    phone, port = await phones(False)
    _with_port(services, port)
    user = await services.users.create(
        UserCreate(username="m", display_name="M", main_extension="200"), "t"
    )
    for n, mac in enumerate(("001565000001", "001565000002")):
        device = await services.devices.create(
            DeviceCreate(extension=f"20{n}", model="yealink-t46s", mac=mac, user_id=user["id"]), "t"
        )
        await _seen(services, device["id"])
    answers = await services.resync.resync_many(user_id=user["id"], reboot=False, actor="t")
    assert [a["status"] for a in answers] == [None, None]  # the phones never answered
    assert all(a["reason"].startswith("timeout") for a in answers)
    assert len(phone.requests) >= 4  # each NOTIFY was retransmitted on timer E
    assert all("\r\nEvent: check-sync\r\n" in r for r in phone.requests)
    with pytest.raises(InvalidInput):
        await services.resync.resync_many(user_id=1, model="x", reboot=False, actor="t")


async def test_resync_on_change(services: Services, phones: PhoneFactory) -> None:
    """With resync.on_change, a change that alters a device's file sends it a NOTIFY; a change
    elsewhere, and the resync's own audit rows, send nothing."""
    phone, port = await phones(True)
    _with_port(services, port)
    user = await services.users.create(
        UserCreate(username="m", display_name="Mario", main_extension="200"), "t"
    )
    device = await services.devices.create(
        DeviceCreate(extension="200", model="yealink-t46s", mac="001565aabbcc", user_id=user["id"]),
        "t",
    )
    await _seen(services, device["id"])
    auto = AutoResync(services.resync)
    feed = ChangeFeed(services.ctx.db, _noticing(auto))
    await feed.mark()
    await services.users.update(user["id"], UserPatch(display_name="Maria"), "t")
    await feed.poll()
    await auto.drain()
    assert len(phone.requests) == 1
    assert phone.requests[0].startswith("NOTIFY sip:200@127.0.0.1:")
    await feed.poll()  # the resync's own audit row
    await auto.drain()
    await services.sites.create(SiteCreate(name="hq", networks=["10.0.0.0/8"]), "t")
    await feed.poll()
    await auto.drain()
    assert len(phone.requests) == 1


async def test_resync_on_change_reaches_the_base_carrying_a_users_handset(
    services: Services, phones: PhoneFactory
) -> None:
    """A user whose only line is a handset (account 2) of someone else's DECT base: renaming
    the user changes the base's file, so the base gets the NOTIFY."""
    phone, port = await phones(True)
    _with_port(services, port)
    owner = await services.users.create(
        UserCreate(username="o", display_name="Reception", main_extension="500"), "t"
    )
    user = await services.users.create(
        UserCreate(username="m", display_name="Mario", main_extension="502"), "t"
    )
    base = await services.devices.create(
        DeviceCreate(
            extension="500", model="yealink-w80b", mac="001565aabbcc", user_id=owner["id"]
        ),
        "t",
    )
    await services.accounts.put(
        base["id"], 2, AccountPut(extension="502", user_id=user["id"]), move=False, actor="t"
    )
    await _seen(services, base["id"])
    auto = AutoResync(services.resync)
    feed = ChangeFeed(services.ctx.db, _noticing(auto))
    await feed.mark()
    await services.users.update(user["id"], UserPatch(display_name="Maria"), "t")
    await feed.poll()
    await auto.drain()
    assert len(phone.requests) == 1
    assert phone.requests[0].startswith("NOTIFY sip:500@127.0.0.1:")


async def test_resync_on_change_reaches_the_phones_whose_blf_followed(
    services: Services, phones: PhoneFactory
) -> None:
    """A colleague's new primary device moves the BLF on Rossi's phone (issue 16): the one
    fan-out change names Rossi, so Rossi's phone gets the NOTIFY."""
    phone, port = await phones(True)
    _with_port(services, port)
    rossi = await services.users.create(
        UserCreate(username="r", display_name="Rossi", main_extension="201"), "t"
    )
    bianchi = await services.users.create(
        UserCreate(username="b", display_name="Bianchi", main_extension="202"), "t"
    )
    desk = await services.devices.create(
        DeviceCreate(
            extension="201", model="yealink-t46s", mac="001565aabbcc", user_id=rossi["id"]
        ),
        "t",
    )
    await services.devices.create(
        DeviceCreate(
            extension="202", model="yealink-t46s", mac="001565aabb02", user_id=bianchi["id"]
        ),
        "t",
    )
    second = await services.devices.create(
        DeviceCreate(
            extension="222", model="yealink-t46s", mac="001565aabb03", user_id=bianchi["id"]
        ),
        "t",
    )
    await services.keys.set_user_keys(rossi["id"], [{"type": "blf", "value": "202"}], actor="t")
    await _seen(services, desk["id"])  # only Rossi's phone has an address to tell
    auto = AutoResync(services.resync)
    feed = ChangeFeed(services.ctx.db, _noticing(auto))
    await feed.mark()
    await services.assignments.set_primary(bianchi["id"], second["id"], actor="t")
    await feed.poll()
    await auto.drain()
    assert len(phone.requests) == 1
    assert phone.requests[0].startswith("NOTIFY sip:201@127.0.0.1:")


def _noticing(auto: AutoResync) -> Callable[[list[Change]], Awaitable[None]]:
    async def apply(changes: list[Change]) -> None:
        auto.notice(changes)

    return apply


async def _many_seen(services: Services, count: int, ip: str) -> None:
    """`count` devices last seen from `ip`, inserted in one statement (ids before later ones)."""
    sealed = services.ctx.secrets.encrypt("x")
    rows = [
        {
            "extension": f"9{n:07d}",
            "model_id": "yealink-t46s",
            "mac": netaddr.EUI(0x0015650C0000 + n),
            "sip_username": f"9{n:07d}",
            "sip_password": sealed,
            "last_seen_ip": ip,
            "last_seen_at": datetime.now(UTC),
        }
        for n in range(count)
    ]
    async with services.ctx.db.write() as session:
        await session.execute(insert(Device), rows)


async def test_resync_by_site_finds_its_devices_behind_ten_thousand_others(
    services: Services, phones: PhoneFactory
) -> None:
    """Issue 13, bug 2: the bulk bound was applied before the site's networks, so a site whose
    devices came after the first 10,000 seen devices was told nothing."""
    phone, port = await phones(True)
    _with_port(services, port)
    await _many_seen(services, MAX_BULK + 5, "10.9.0.1")  # elsewhere, and first by id
    inside = await services.sites.create(SiteCreate(name="lo", networks=["127.0.0.0/8"]), "t")
    for n in range(3):
        device = await services.devices.create(
            DeviceCreate(extension=f"70{n}", model="yealink-t46s", mac=f"0015650d000{n}"), "t"
        )
        await _seen(services, device["id"])
    answers = await services.resync.resync_many(site=inside["id"], reboot=False, actor="t")
    assert len(answers) == 3
    assert all(a["status"] == 200 for a in answers)
    everywhere = await services.sites.create(SiteCreate(name="ten", networks=["10.0.0.0/8"]), "t")
    with pytest.raises(Conflict, match="more than 10000 devices"):  # refused whole, not cut
        await services.resync.resync_many(site=everywhere["id"], reboot=False, actor="t")
    assert len(phone.requests) == 3
