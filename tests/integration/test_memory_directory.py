"""The in-memory directory and the change feed: admin changes reach the phone side, no query
per request, and another process (a second directory over the same database) follows too."""

from __future__ import annotations

import aiohttp
from sqlalchemy import event

from provisiond.provisioning.changes import ChangeFeed
from provisiond.provisioning.memory import MemoryDirectory
from provisiond.services.commands import (
    AccountPut,
    DeviceCreate,
    DevicePatch,
    UserCreate,
    UserPatch,
)
from provisiond.services.sites import SiteCreate
from tests.integration.phone_stack import PhoneStack

UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"


async def _get(stack: PhoneStack, path: str = "001565aabbcc.cfg", ua: str = UA) -> tuple[int, str]:
    async with aiohttp.ClientSession(headers={"User-Agent": ua}) as http:
        async with http.get(stack.http_url + path) as response:
            return response.status, await response.text()


async def test_changes_reach_the_phone_side(phone_stack: PhoneStack) -> None:
    services = phone_stack.services
    assert (await _get(phone_stack))[0] == 404
    user = await services.users.create(
        UserCreate(username="m", display_name="Mario", main_extension="200"), "t"
    )
    device = await services.devices.create(
        DeviceCreate(extension="200", model="yealink-t46s", mac="001565aabbcc", user_id=user["id"]),
        "t",
    )
    status, body = await _get(phone_stack)
    assert status == 200
    assert "account.1.display_name = Mario" in body
    await services.users.update(user["id"], UserPatch(display_name="Maria"), "t")
    assert "account.1.display_name = Maria" in (await _get(phone_stack))[1]
    await services.devices.update(device["id"], DevicePatch(sip_password="Changed-Pass-1"), "t")
    assert "account.1.password = Changed-Pass-1" in (await _get(phone_stack))[1]
    await services.platform.put_settings({"sip": {"registrar": "new.pbx.test"}}, "t")
    assert "new.pbx.test" in (await _get(phone_stack))[1]
    before = (await _get(phone_stack))[1]
    await services.platform.put_settings({"timezone": "America/New_York"}, "t")
    after = (await _get(phone_stack))[1]
    assert after != before  # the zone is in the file, so the cached file must not be served
    phone_stack.resolver._cache.clear()
    assert (await _get(phone_stack))[1] == after  # what the cache gave is what a render gives
    await services.devices.delete(device["id"], new_primary=None, actor="t")
    assert (await _get(phone_stack))[0] == 404


async def test_account_changes_reach_the_phone_side(phone_stack: PhoneStack) -> None:
    """A handset's account (slot 2) on a DECT base: created, its owner renamed, its owner
    deleted and the account removed; each change is in the base's file at once."""
    services = phone_stack.services
    owner = await services.users.create(
        UserCreate(username="r", display_name="Reception", main_extension="500"), "t"
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
    ua = {"ua": "Yealink W80B 103.87.0.10 00:15:65:aa:bb:cc"}
    assert "account.2." not in (await _get(phone_stack, **ua))[1]
    put = AccountPut(extension="502", user_id=user["id"], sip_password="Handset-Pass-2")
    await services.accounts.put(base["id"], 2, put, move=False, actor="t")
    body = (await _get(phone_stack, **ua))[1]
    assert "account.2.user_name = 502" in body
    assert "account.2.password = Handset-Pass-2" in body
    assert "account.2.display_name = Mario" in body
    await services.users.update(user["id"], UserPatch(display_name="Maria"), "t")
    assert "account.2.display_name = Maria" in (await _get(phone_stack, **ua))[1]
    await services.users.delete(user["id"], "t")
    body = (await _get(phone_stack, **ua))[1]
    assert "account.2.display_name = 502" in body  # no owner: the extension is shown
    await services.accounts.delete(base["id"], 2, new_primary=None, actor="t")
    assert "account.2.user_name" not in (await _get(phone_stack, **ua))[1]


async def test_no_database_query_per_phone_request(phone_stack: PhoneStack) -> None:
    services = phone_stack.services
    await services.devices.create(
        DeviceCreate(extension="200", model="yealink-t46s", mac="001565aabbcc"), "t"
    )
    assert (await _get(phone_stack))[0] == 200  # warm
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engine = services.ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            status, _ = await _get(phone_stack)
            assert status == 200
            assert (await _get(phone_stack, "y000000000066.cfg"))[0] == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # The change feed's own poll (every 0.5 s, whatever the phones do) may fall in the window;
    # nothing else may.
    feed = [s for s in statements if s.lstrip().startswith("SELECT audit_log.id")]
    assert [s for s in statements if s not in feed] == []
    assert len(feed) <= 2


async def test_a_second_process_follows_the_feed(phone_stack: PhoneStack) -> None:
    """Another directory over the same database (as a --workers process) sees the change."""
    services = phone_stack.services
    db, settings = services.ctx.db, services.ctx.settings
    other = MemoryDirectory(db, settings.platform)
    feed = ChangeFeed(db, other.apply)
    await feed.mark()
    await other.load()
    assert other.device_by_mac("001565aabbcc") is None
    await services.devices.create(
        DeviceCreate(extension="200", model="yealink-t46s", mac="001565aabbcc"), "t"
    )
    site = await services.sites.create(SiteCreate(name="hq", networks=["10.0.0.0/8"]), "t")
    assert await feed.poll() >= 2
    found = other.device_by_mac("001565aabbcc")
    assert found is not None
    assert found.extension == "200"
    assert [s.name for s in other.sites()] == ["hq"]
    await services.sites.delete(site["id"], "t")
    await feed.poll()
    assert other.sites() == ()
