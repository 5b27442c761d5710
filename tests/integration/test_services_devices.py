"""Devices and a user's devices panel through the service layer (DESIGN.md rules 1-3, 5-7).

Every refusal is checked with `refused(db, ...)`: the error and its field, and a whole-database
dump identical before and after. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import netaddr
import pytest

from provisiond.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate, DevicePatch, UserCreate
from provisiond.services.devices import generate_password
from provisiond.storage.database import Database
from provisiond.storage.models import Base, UnprovisionedDevice
from tests.dbdump import dump, refused

ACTOR = "alice@test"
DEVICE_KEYS = {
    "id",
    "extension",
    "model",
    "mac",
    "active",
    "user_id",
    "sip_username",
    "label",
    "last_seen",
}


def mac_for(extension: str) -> str:
    """A distinct MAC per extension, in the compact upper-case notation."""
    return f"001565{int(extension):06X}"


async def new_user(services: Services, username: str, main: str) -> dict[str, Any]:
    """Create a user without features."""
    cmd = UserCreate(username=username, display_name=f"User {username}", main_extension=main)
    return await services.users.create(cmd, ACTOR)


async def new_device(services: Services, extension: str, **fields: Any) -> dict[str, Any]:
    """Create a device (Yealink T46S unless `model` is given) with a MAC from the extension."""
    fields.setdefault("model", "yealink-t46s")
    fields.setdefault("mac", mac_for(extension))
    return await services.devices.create(DeviceCreate(extension=extension, **fields), ACTOR)


async def latest_audit(services: Services) -> dict[str, Any]:
    """The newest audit row."""
    items: list[dict[str, Any]] = (await services.catalogue.audit(limit=1))["items"]
    return items[0]


# --- create -------------------------------------------------------------------------------


async def test_create_returns_the_view_without_secrets(services: Services, db: Database) -> None:
    device = await new_device(services, "201", mac="00-15-65-aa-bb-cc", label="Desk")
    assert set(device) >= DEVICE_KEYS  # more fields are welcome (DESIGN.md section 4)
    assert not [key for key in device if "password" in key]
    assert device["mac"] == "00:15:65:aa:bb:cc"
    assert device["model"] == "yealink-t46s"
    assert device["sip_username"] == "201"  # defaults to the extension
    assert (device["active"], device["user_id"], device["last_seen"]) == (True, None, None)
    assert await services.devices.get(device["id"]) == device
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"], entry["after"]) == (ACTOR, "device.create", device)


def test_generated_passwords_are_strong_and_random() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9]{20}", p) for p in passwords)


async def test_each_device_gets_its_own_generated_password(services: Services) -> None:
    first = await services.devices.reveal_password((await new_device(services, "201"))["id"], "kim")
    second = await services.devices.reveal_password(
        (await new_device(services, "202"))["id"], "kim"
    )
    assert first["sip_password"] != second["sip_password"]
    assert re.fullmatch(r"[A-Za-z0-9]{20}", first["sip_password"])
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"]) == ("kim", "device.reveal_password")


async def test_explicit_credentials_are_kept(services: Services) -> None:
    device = await new_device(services, "201", sip_username="u201", sip_password="Pa$$w0rd-201")
    assert device["sip_username"] == "u201"
    revealed = await services.devices.reveal_password(device["id"], ACTOR)
    assert (revealed["sip_username"], revealed["sip_password"]) == ("u201", "Pa$$w0rd-201")
    await services.devices.update(device["id"], DevicePatch(sip_password="N3w-Pa$$w0rd"), ACTOR)
    revealed = await services.devices.reveal_password(device["id"], ACTOR)
    assert revealed["sip_password"] == "N3w-Pa$$w0rd"


async def test_reveal_unknown_device_is_not_found(services: Services, db: Database) -> None:
    async with refused(db, NotFound) as missing:
        await services.devices.reveal_password(999, ACTOR)
    assert missing.value.field == "device_id"


@pytest.fixture
async def owner(services: Services) -> dict[str, Any]:
    """mrossi (main 200) owning device 201 (primary)."""
    user = await new_user(services, "mrossi", "200")
    await new_device(services, "201", user_id=user["id"])
    return user


OWNER = -1  # in a table row: the id of the `owner` fixture's user

CREATE_REFUSALS = [
    pytest.param({"extension": "201"}, Conflict, "extension", id="duplicate-extension"),
    pytest.param({"mac": "00:15:65:00:00:c9"}, Conflict, "mac", id="duplicate-mac-other-notation"),
    pytest.param({"model": "acme-9000"}, InvalidInput, "model", id="unknown-model"),
    pytest.param({"mac": "0:15:65:0:0:1"}, InvalidInput, "mac", id="bad-mac"),
    pytest.param({"extension": "3o1"}, InvalidInput, "extension", id="bad-extension"),
    pytest.param({"sip_password": "short"}, InvalidInput, "sip_password", id="weak-password"),
    pytest.param({"sip_password": "with space1"}, InvalidInput, "sip_password", id="pw-space"),
    pytest.param({"sip_username": "a b"}, InvalidInput, "sip_username", id="bad-sip-user"),
    pytest.param({"label": "a\nb"}, InvalidInput, "label", id="label-newline"),
    pytest.param({"user_id": 999}, NotFound, "user_id", id="unknown-user"),
    pytest.param({"extension": "210", "user_id": OWNER}, Conflict, "extension", id="other-main"),
]


@pytest.mark.parametrize(("fields", "error", "field"), CREATE_REFUSALS)
async def test_create_refusals(
    services: Services,
    db: Database,
    owner: dict[str, Any],
    fields: dict[str, Any],
    error: type[DomainError],
    field: str,
) -> None:
    await new_user(services, "lbianchi", "210")
    if fields.get("user_id") == OWNER:
        fields = {**fields, "user_id": owner["id"]}
    base = {"extension": "301", "model": "snom-d785", "mac": "00:04:13:00:01:2d"}
    async with refused(db, error) as info:
        await services.devices.create(DeviceCreate(**{**base, **fields}), ACTOR)
    assert type(info.value) is error
    assert info.value.field == field


async def test_create_with_user_assigns_and_first_becomes_primary(services: Services) -> None:
    user = await new_user(services, "mrossi", "200")
    first = await new_device(services, "201", user_id=user["id"])
    second = await new_device(services, "202", user_id=user["id"])
    assert (first["user_id"], second["user_id"]) == (user["id"], user["id"])
    after = await services.users.get(user["id"])
    assert after["primary_device_id"] == first["id"]
    assert after["main_extension"] == "200"  # rule 1: the main extension does not change
    assert [d["id"] for d in after["devices"]] == [first["id"], second["id"]]


async def test_create_claims_the_unprovisioned_record(services: Services, db: Database) -> None:
    async with db.background() as session:
        for mac in ("001565aabbcc", "001565aabbcd"):
            session.add(UnprovisionedDevice(mac=netaddr.EUI(mac), vendor="yealink", path="x.cfg"))
    listed = await services.catalogue.unprovisioned()
    assert {row["mac"] for row in listed["items"]} == {"00:15:65:aa:bb:cc", "00:15:65:aa:bb:cd"}
    await new_device(services, "201", mac="0015.65AA.BBCC")
    remaining = (await dump(db))["unprovisioned_devices"]
    assert [row["mac"] for row in remaining] == ["001565aabbcd"]


async def test_extension_prefix_autocomplete(services: Services, db: Database) -> None:
    for extension in ("20", "200", "201", "2000", "21", "120", "300"):
        await new_device(services, extension)
    found = await services.devices.list(extension_prefix="20")
    assert [d["extension"] for d in found["items"]] == ["20", "200", "2000", "201"]
    for number in range(5000, 5030):
        await new_device(services, str(number))
    capped = await services.devices.list(extension_prefix="50", limit=100)
    assert (len(capped["items"]), capped["total"]) == (20, 30)
    async with refused(db, InvalidInput) as info:
        await services.devices.list(extension_prefix="2%")
    assert info.value.field == "extension_prefix"
    by_mac = await services.devices.list(mac="00-15-65-00-00-c8")
    assert [d["extension"] for d in by_mac["items"]] == ["200"]


# --- update and delete --------------------------------------------------------------------


async def test_primary_extension_change_moves_the_main_extension(services: Services) -> None:
    user = await new_user(services, "mrossi", "201")
    primary = await new_device(services, "201", user_id=user["id"])
    other = await new_device(services, "202", user_id=user["id"])
    await services.devices.update(primary["id"], DevicePatch(extension="205"), ACTOR)
    assert (await services.users.get(user["id"]))["main_extension"] == "205"
    await services.devices.update(other["id"], DevicePatch(extension="206"), ACTOR)
    assert (await services.users.get(user["id"]))["main_extension"] == "205"
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"]) == (ACTOR, "device.update")
    assert (entry["before"]["extension"], entry["after"]["extension"]) == ("202", "206")


async def test_primary_with_a_different_extension_leaves_the_main_extension(
    services: Services,
) -> None:
    user = await new_user(services, "mrossi", "200")
    primary = await new_device(services, "201", user_id=user["id"])
    await services.devices.update(primary["id"], DevicePatch(extension="205"), ACTOR)
    assert (await services.users.get(user["id"]))["main_extension"] == "200"


UPDATE_REFUSALS = [
    pytest.param(DevicePatch(extension="301"), Conflict, "extension", id="duplicate-extension"),
    pytest.param(DevicePatch(extension="210"), Conflict, "extension", id="other-users-main"),
    pytest.param(DevicePatch(mac="00:15:65:00:01:2d"), Conflict, "mac", id="duplicate-mac"),
    pytest.param(DevicePatch(mac="001565"), InvalidInput, "mac", id="bad-mac"),
    pytest.param(DevicePatch(mac=None), InvalidInput, "mac", id="null-mac"),
    pytest.param(DevicePatch(model="acme-9000"), InvalidInput, "model", id="unknown-model"),
    pytest.param(DevicePatch(extension=""), InvalidInput, "extension", id="empty-extension"),
    pytest.param(DevicePatch(sip_password="1234"), InvalidInput, "sip_password", id="weak-pw"),
    pytest.param(DevicePatch(sip_username=None), InvalidInput, "sip_username", id="no-sip-user"),
]


@pytest.mark.parametrize(("patch", "error", "field"), UPDATE_REFUSALS)
async def test_update_refusals(
    services: Services,
    db: Database,
    owner: dict[str, Any],
    patch: DevicePatch,
    error: type[DomainError],
    field: str,
) -> None:
    await new_user(services, "lbianchi", "210")
    await new_device(services, "301")
    [device] = (await services.users.get(owner["id"]))["devices"]
    async with refused(db, error) as info:
        await services.devices.update(device["id"], patch, ACTOR)
    assert type(info.value) is error
    assert info.value.field == field


async def test_unassigned_device_may_take_a_users_main_extension(services: Services) -> None:
    await new_user(services, "mrossi", "200")
    device = await new_device(services, "300")
    changed = await services.devices.update(device["id"], DevicePatch(extension="200"), ACTOR)
    assert changed["extension"] == "200"


@pytest.mark.parametrize("action", ["get", "update", "delete"])
async def test_unknown_device_is_not_found(services: Services, db: Database, action: str) -> None:
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "get": lambda: services.devices.get(999),
        "update": lambda: services.devices.update(999, DevicePatch(active=False), ACTOR),
        "delete": lambda: services.devices.delete(999, new_primary=None, actor=ACTOR),
    }
    async with refused(db, NotFound) as info:
        await calls[action]()
    assert info.value.field == "device_id"


async def test_deleting_the_primary_needs_a_new_primary(services: Services, db: Database) -> None:
    user = await new_user(services, "mrossi", "201")
    primary = await new_device(services, "201", user_id=user["id"])
    second = await new_device(services, "202", user_id=user["id"])
    third = await new_device(services, "203", user_id=user["id"])
    async with refused(db, Conflict) as info:
        await services.devices.delete(primary["id"], new_primary=None, actor=ACTOR)
    assert info.value.field == "new_primary"
    async with refused(db, Conflict) as info:
        await services.devices.delete(primary["id"], new_primary=primary["id"], actor=ACTOR)
    assert info.value.field == "new_primary"
    await services.devices.delete(primary["id"], new_primary=third["id"], actor="dave")
    after = await services.users.get(user["id"])
    assert after["primary_device_id"] == third["id"]
    assert after["main_extension"] == "203"  # rule 2 applies to the new primary
    assert [d["id"] for d in after["devices"]] == [second["id"], third["id"]]
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"], entry["after"]) == ("dave", "device.delete", None)


async def test_deleting_other_devices_needs_nothing(services: Services) -> None:
    user = await new_user(services, "mrossi", "200")
    primary = await new_device(services, "201", user_id=user["id"])
    second = await new_device(services, "202", user_id=user["id"])
    await services.devices.delete(second["id"], new_primary=None, actor=ACTOR)
    assert (await services.users.get(user["id"]))["primary_device_id"] == primary["id"]
    await services.devices.delete(primary["id"], new_primary=None, actor=ACTOR)
    after = await services.users.get(user["id"])
    assert (after["primary_device_id"], after["devices"], after["main_extension"]) == (
        None,
        [],
        "200",
    )


# --- the devices panel: assign, unassign, primary -----------------------------------------


async def test_assign_first_device_is_primary_without_changing_main(services: Services) -> None:
    user = await new_user(services, "mrossi", "200")
    first = await new_device(services, "201")
    second = await new_device(services, "202")
    after = await services.assignments.assign(user["id"], first["id"], move=False, actor="erin")
    assert (after["primary_device_id"], after["main_extension"]) == (first["id"], "200")
    assert "main_extension_changed" not in after
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"]) == ("erin", "user.assign_device")
    after = await services.assignments.assign(user["id"], second["id"], move=False, actor=ACTOR)
    assert after["primary_device_id"] == first["id"]
    assert {d["id"] for d in after["devices"]} == {first["id"], second["id"]}


async def test_set_primary_changes_the_main_extension_and_says_so(services: Services) -> None:
    user = await new_user(services, "mrossi", "200")
    first = await new_device(services, "200", user_id=user["id"])
    second = await new_device(services, "202", user_id=user["id"])
    changed = await services.assignments.set_primary(user["id"], second["id"], actor="frank")
    assert changed["primary_device_id"] == second["id"]
    assert changed["main_extension"] == "202"
    assert changed["main_extension_changed"] == {"old": "200", "new": "202"}
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"]) == ("frank", "user.set_primary")
    back = await services.assignments.set_primary(user["id"], first["id"], actor=ACTOR)
    assert back["main_extension_changed"] == {"old": "202", "new": "200"}
    same = await services.assignments.set_primary(user["id"], first["id"], actor=ACTOR)
    assert "main_extension_changed" not in same


async def test_set_primary_refusals(services: Services, db: Database) -> None:
    user = await new_user(services, "mrossi", "200")
    other = await new_user(services, "lbianchi", "210")
    theirs = await new_device(services, "211", user_id=other["id"])
    loose = await new_device(services, "300")
    for device_id in (theirs["id"], loose["id"]):
        async with refused(db, Conflict) as conflict:
            await services.assignments.set_primary(user["id"], device_id, actor=ACTOR)
        assert conflict.value.field == "device_id"
    async with refused(db, NotFound) as missing:
        await services.assignments.set_primary(user["id"], 999, actor=ACTOR)
    assert missing.value.field == "device_id"
    async with refused(db, NotFound) as missing:
        await services.assignments.set_primary(999, loose["id"], actor=ACTOR)
    assert missing.value.field == "user_id"


async def test_unassigning_the_primary_needs_a_remaining_new_primary(
    services: Services, db: Database
) -> None:
    user = await new_user(services, "mrossi", "201")
    primary = await new_device(services, "201", user_id=user["id"])
    second = await new_device(services, "202", user_id=user["id"])
    loose = await new_device(services, "300")
    for new_primary in (None, primary["id"], loose["id"], 999):
        async with refused(db, Conflict) as info:
            await services.assignments.unassign(
                user["id"], primary["id"], new_primary=new_primary, actor=ACTOR
            )
        assert info.value.field == "new_primary"
    after = await services.assignments.unassign(
        user["id"], primary["id"], new_primary=second["id"], actor="gina"
    )
    assert after["primary_device_id"] == second["id"]
    assert after["main_extension_changed"] == {"old": "201", "new": "202"}
    assert (await services.devices.get(primary["id"]))["user_id"] is None
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"]) == ("gina", "user.unassign_device")


async def test_unassigning_others_and_the_last_device(services: Services, db: Database) -> None:
    user = await new_user(services, "mrossi", "200")
    primary = await new_device(services, "201", user_id=user["id"])
    second = await new_device(services, "202", user_id=user["id"])
    kept = await services.assignments.unassign(
        user["id"], second["id"], new_primary=None, actor=ACTOR
    )
    assert kept["primary_device_id"] == primary["id"]
    last = await services.assignments.unassign(
        user["id"], primary["id"], new_primary=None, actor=ACTOR
    )
    assert (last["primary_device_id"], last["devices"], last["main_extension"]) == (None, [], "200")
    async with refused(db, NotFound) as info:
        await services.assignments.unassign(
            user["id"], primary["id"], new_primary=None, actor=ACTOR
        )
    assert info.value.field == "device_id"


async def test_moving_a_device_needs_move(services: Services, db: Database) -> None:
    source = await new_user(services, "mrossi", "200")
    target = await new_user(services, "lbianchi", "210")
    kept = await new_device(services, "201", user_id=source["id"])
    moving = await new_device(services, "202", user_id=source["id"])
    async with refused(db, Conflict) as info:
        await services.assignments.assign(target["id"], moving["id"], move=False, actor=ACTOR)
    assert info.value.field == "move"
    after = await services.assignments.assign(target["id"], moving["id"], move=True, actor=ACTOR)
    assert (after["primary_device_id"], after["main_extension"]) == (moving["id"], "210")
    left = await services.users.get(source["id"])
    assert ([d["id"] for d in left["devices"]], left["primary_device_id"]) == (
        [kept["id"]],
        kept["id"],
    )
    entry = await latest_audit(services)
    assert entry["after"]["moved_from"] == source["id"]


async def test_moving_a_primary(services: Services, db: Database) -> None:
    source = await new_user(services, "mrossi", "200")
    target = await new_user(services, "lbianchi", "210")
    primary = await new_device(services, "201", user_id=source["id"])
    second = await new_device(services, "202", user_id=source["id"])
    # The source would keep devices and lose its primary (rule 1): refused even with move.
    async with refused(db, Conflict) as info:
        await services.assignments.assign(target["id"], primary["id"], move=True, actor=ACTOR)
    assert info.value.field == "move"
    await services.assignments.unassign(source["id"], second["id"], new_primary=None, actor=ACTOR)
    # Now it is the source's last device: it moves and the source has no primary.
    await services.assignments.assign(target["id"], primary["id"], move=True, actor=ACTOR)
    assert (await services.users.get(source["id"]))["primary_device_id"] is None
    assert (await services.users.get(target["id"]))["primary_device_id"] == primary["id"]


async def test_assign_refusals(services: Services, db: Database) -> None:
    user = await new_user(services, "mrossi", "200")
    await new_user(services, "lbianchi", "210")
    clash = await new_device(services, "210")  # unassigned, but another user's main extension
    async with refused(db, Conflict) as conflict:
        await services.assignments.assign(user["id"], clash["id"], move=False, actor=ACTOR)
    assert conflict.value.field == "extension"
    async with refused(db, NotFound) as missing:
        await services.assignments.assign(user["id"], 999, move=False, actor=ACTOR)
    assert missing.value.field == "device_id"
    async with refused(db, NotFound) as missing:
        await services.assignments.assign(999, clash["id"], move=False, actor=ACTOR)
    assert missing.value.field == "user_id"


# --- secrets never leave the devices table ------------------------------------------------


def stored_secrets(snapshot: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Every stored secret column value (plain or encrypted): sip_password and columns marked
    info={"secret": True}."""
    found: set[str] = set()
    for name, table in Base.metadata.tables.items():
        columns = [
            c.name for c in table.columns if c.name == "sip_password" or c.info.get("secret")
        ]
        found |= {row[c] for row in snapshot[name] for c in columns if row[c]}
    return found


async def test_no_audit_row_or_view_carries_a_sip_password(
    services: Services, db: Database
) -> None:
    views: list[Any] = []
    user = await new_user(services, "mrossi", "200")
    chosen, changed, third = "Zq9!secret-Alpha", "Zq9!secret-Bravo", "Zq9!secret-Charlie"
    d1 = await new_device(services, "201", user_id=user["id"], sip_password=chosen)
    d2 = await new_device(services, "202")  # generated password
    d3 = await new_device(services, "203", sip_password=third)
    views += [d1, d2, d3]
    views.append(await services.assignments.assign(user["id"], d2["id"], move=False, actor=ACTOR))
    views.append(await services.assignments.set_primary(user["id"], d2["id"], actor=ACTOR))
    views.append(await services.devices.update(d1["id"], DevicePatch(sip_password=changed), ACTOR))
    views.append(await services.users.get(user["id"]))
    views.append(await services.devices.list())
    revealed = [await services.devices.reveal_password(d["id"], ACTOR) for d in (d1, d2, d3)]
    plain = {chosen, changed, third} | {
        r[key] for r in revealed for key in ("sip_password", "provisioning_password") if r[key]
    }
    stored = stored_secrets(await dump(db))
    await services.devices.delete(d1["id"], new_primary=None, actor=ACTOR)
    everything = json.dumps(await dump(db))
    audit = json.dumps((await dump(db))["audit_log"])
    shown = json.dumps(views)
    assert len(plain) >= 6  # three chosen, d2's generated one, three provisioning secrets
    for secret in plain:
        assert secret not in everything  # not in the audit log, nor anywhere at rest
        assert secret not in shown
    for secret in stored:
        assert secret not in audit
        assert secret not in shown
    assert "password" not in shown
    actions = [row["action"] for row in (await dump(db))["audit_log"]]
    assert actions == [
        "user.create",
        "device.create",
        "device.create",
        "device.create",
        "user.assign_device",
        "user.set_primary",
        "device.update",
        "device.reveal_password",
        "device.reveal_password",
        "device.reveal_password",
        "device.delete",
    ]
