"""Platform settings, licences, API tokens and the catalogue through the service layer.

Every refusal is checked with `refused(db, ...)`: the error and its field, and a whole-database
dump identical before and after. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from provisiond.domain.errors import Conflict, DomainError, InvalidInput, LicenceRefused, NotFound
from provisiond.domain.rules import (
    APP_USERS,
    LICENCE_MODULES,
    MCS_APP_WEBRTC,
    MCS_USERS,
    USER_CLIENT,
)
from provisiond.services import Services
from provisiond.services.commands import (
    ClientInput,
    TeamAppInput,
    TokenCreate,
    UserCreate,
    UserPatch,
)
from provisiond.storage.database import Database
from tests.dbdump import dump, refused

ACTOR = "alice@test"
VENDORS = {
    "yealink",
    "polycom",
    "cisco_spa",
    "cisco_sep",
    "grandstream",
    "snom",
    "fanvil",
    "gigaset",
    "aastra",
    "panasonic",
    "htek",
    "alcatel",
    "avaya",
    "sangoma",
    "obihai",
}


async def latest_audit(services: Services) -> dict[str, Any]:
    """The newest audit row."""
    items: list[dict[str, Any]] = (await services.catalogue.audit(limit=1))["items"]
    return items[0]


async def new_user(services: Services, username: str, main: str, **fields: Any) -> dict[str, Any]:
    """Create a user with a display name derived from the username."""
    cmd = UserCreate(
        username=username, display_name=f"User {username}", main_extension=main, **fields
    )
    return await services.users.create(cmd, ACTOR)


async def mcs_on(services: Services) -> None:
    """Interconnect the platform with MCS (a run-time setting)."""
    await services.platform.put_settings({"mcs_interconnected": True}, ACTOR)


# --- settings -----------------------------------------------------------------------------


async def test_settings_start_from_the_settings_file(services: Services) -> None:
    current = await services.platform.get_settings()
    # The conftest `settings` fixture sets these through PROVISIOND_* variables.
    assert current["sip"]["registrar"] == "pbx.example.test"
    assert current["ntp_server"] == "ntp.example.test"
    assert current["timezone"] == "Europe/Rome"
    assert current["mcs_interconnected"] is False
    assert current["team_app"] == {"fallback_timeout_s": 10, "callback_enabled": True}


async def test_put_settings_merges_persists_and_audits(services: Services, db: Database) -> None:
    after = await services.platform.put_settings(
        {"sip": {"registrar": "pbx2.example.test"}, "mcs_interconnected": True}, "henry"
    )
    assert after["sip"]["registrar"] == "pbx2.example.test"
    assert after["sip"]["port"] == 5060  # siblings of a nested change are kept
    assert after["mcs_interconnected"] is True
    assert await services.platform.get_settings() == after
    stored = {row["key"] for row in (await dump(db))["settings"]}
    assert stored == {"sip", "mcs_interconnected"}
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"]) == ("henry", "settings.update")
    assert entry["before"]["sip"]["registrar"] == "pbx.example.test"
    assert entry["after"] == after


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        pytest.param({"sip": {"port": 0}}, "sip.port", id="port"),
        pytest.param({"sip": {"transport": "sctp"}}, "sip.transport", id="transport"),
        pytest.param({"timezone": "Mars/Olympus"}, "timezone", id="timezone"),
        pytest.param(
            {"team_app": {"fallback_timeout_s": 0}}, "team_app.fallback_timeout_s", id="t0"
        ),
        pytest.param(
            {"team_app": {"fallback_timeout_s": 121}}, "team_app.fallback_timeout_s", id="t121"
        ),
        pytest.param({"voicemail": True}, "voicemail", id="unknown-key"),
        pytest.param({"sip": {"realm": "x"}}, "sip.realm", id="unknown-nested-key"),
        pytest.param({"mcs_interconnected": "perhaps"}, "mcs_interconnected", id="not-a-bool"),
        pytest.param(["mcs_interconnected"], "body", id="not-an-object"),
    ],
)
async def test_put_settings_refusals(
    services: Services, db: Database, patch: Any, field: str
) -> None:
    async with refused(db, InvalidInput) as info:
        await services.platform.put_settings(patch, ACTOR)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("licences", "panels"),
    [
        pytest.param(
            {APP_USERS: 1, MCS_APP_WEBRTC: 1},
            {"team_app": TeamAppInput(enabled=True, smart_working=True)},
            id="team-app",
        ),
        pytest.param(
            {USER_CLIENT: 1, MCS_USERS: 1},
            {"client": ClientInput(enabled=True, smart_working=True)},
            id="client",
        ),
    ],
)
async def test_mcs_cannot_be_turned_off_under_smart_working_users(
    services: Services, db: Database, licences: dict[str, int], panels: dict[str, Any]
) -> None:
    await services.platform.put_licences(licences, ACTOR)
    await services.platform.put_settings({"mcs_interconnected": True}, ACTOR)
    cmd = UserCreate(username="mrossi", display_name="M", main_extension="200", **panels)
    user = await services.users.create(cmd, ACTOR)
    async with refused(db, DomainError) as info:
        await services.platform.put_settings({"mcs_interconnected": False}, ACTOR)
    assert isinstance(info.value, InvalidInput | Conflict)
    assert info.value.field == "mcs_interconnected"
    # Other settings can still change while the interconnection stays.
    await services.platform.put_settings({"ntp_server": "ntp2.example.test"}, ACTOR)
    off = {name: type(panel)(smart_working=False) for name, panel in panels.items()}
    await services.users.update(user["id"], UserPatch(**off), ACTOR)
    after = await services.platform.put_settings({"mcs_interconnected": False}, ACTOR)
    assert after["mcs_interconnected"] is False


# --- licences -----------------------------------------------------------------------------


async def test_licences_start_absent_and_are_set(services: Services, db: Database) -> None:
    assert await services.platform.get_licences() == {
        module: {"count": 0, "used": 0} for module in LICENCE_MODULES
    }
    counts = {APP_USERS: 10, MCS_APP_WEBRTC: 2, USER_CLIENT: 5, MCS_USERS: 0}
    after = await services.platform.put_licences(counts, "ivan")
    assert after == {module: {"count": n, "used": 0} for module, n in counts.items()}
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"], entry["after"]) == ("ivan", "licences.update", after)
    # A partial PUT leaves the other modules alone.
    partial = await services.platform.put_licences({USER_CLIENT: 7}, ACTOR)
    assert partial[USER_CLIENT]["count"] == 7
    assert partial[APP_USERS]["count"] == 10


@pytest.mark.parametrize(
    ("counts", "error", "field"),
    [
        pytest.param({"VOICEMAIL": 3}, InvalidInput, "VOICEMAIL", id="unknown-module"),
        pytest.param({APP_USERS: -1}, InvalidInput, APP_USERS, id="negative"),
        pytest.param({APP_USERS: True}, InvalidInput, APP_USERS, id="bool"),
        pytest.param({APP_USERS: "5"}, InvalidInput, APP_USERS, id="text"),
        pytest.param({APP_USERS: 1.5}, InvalidInput, APP_USERS, id="float"),
        pytest.param({APP_USERS: 9, USER_CLIENT: -2}, InvalidInput, USER_CLIENT, id="second-bad"),
        pytest.param([APP_USERS], InvalidInput, "body", id="not-an-object"),
        pytest.param({APP_USERS: 1}, Conflict, APP_USERS, id="below-used"),
        pytest.param({APP_USERS: 0}, Conflict, APP_USERS, id="zero-below-used"),
    ],
)
async def test_put_licences_refusals(
    services: Services, db: Database, counts: Any, error: type[DomainError], field: str
) -> None:
    await services.platform.put_licences({APP_USERS: 5, USER_CLIENT: 5}, ACTOR)
    for n, username in enumerate(("mrossi", "lbianchi")):
        cmd = UserCreate(
            username=username,
            display_name=username,
            main_extension=f"20{n}",
            team_app=TeamAppInput(enabled=True),
        )
        await services.users.create(cmd, ACTOR)
    async with refused(db, error) as info:
        await services.platform.put_licences(counts, ACTOR)
    assert type(info.value) is error
    assert info.value.field == field


async def test_lowering_to_exactly_the_seats_in_use_is_allowed(services: Services) -> None:
    await services.platform.put_licences({USER_CLIENT: 5}, ACTOR)
    cmd = UserCreate(
        username="mrossi", display_name="M", main_extension="200", client=ClientInput(enabled=True)
    )
    await services.users.create(cmd, ACTOR)
    after = await services.platform.put_licences({USER_CLIENT: 1}, ACTOR)
    assert after[USER_CLIENT] == {"count": 1, "used": 1}


# --- licences consumed by the panels ------------------------------------------------------

# module -> (prerequisite licences, the panels that take one seat of it, the patch freeing it)
MODULES: dict[str, tuple[dict[str, int], dict[str, Any], dict[str, Any]]] = {
    APP_USERS: (
        {},
        {"team_app": TeamAppInput(enabled=True)},
        {"team_app": TeamAppInput(enabled=False)},
    ),
    MCS_APP_WEBRTC: (
        {APP_USERS: 10},
        {"team_app": TeamAppInput(enabled=True, smart_working=True)},
        {"team_app": TeamAppInput(smart_working=False)},
    ),
    USER_CLIENT: (
        {},
        {"client": ClientInput(enabled=True)},
        {"client": ClientInput(enabled=False)},
    ),
    MCS_USERS: (
        {USER_CLIENT: 10},
        {"client": ClientInput(enabled=True, smart_working=True)},
        {"client": ClientInput(smart_working=False)},
    ),
}


@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("count", [None, 0])
async def test_absent_licence_module_is_refused_by_name(
    services: Services, db: Database, module: str, count: int | None
) -> None:
    prerequisites, panels, _ = MODULES[module]
    await mcs_on(services)
    await services.platform.put_licences(
        {**prerequisites, **({} if count is None else {module: count})}, ACTOR
    )
    async with refused(db, LicenceRefused) as info:
        await new_user(services, "mrossi", "200", **panels)
    assert info.value.module == module
    assert module in info.value.detail


@pytest.mark.parametrize("module", list(MODULES))
async def test_exhausted_licence_is_refused_and_freed_by_disabling(
    services: Services, db: Database, module: str
) -> None:
    prerequisites, panels, freeing = MODULES[module]
    await mcs_on(services)
    await services.platform.put_licences({**prerequisites, module: 1}, ACTOR)
    first = await new_user(services, "mrossi", "200", **panels)
    async with refused(db, LicenceRefused) as info:
        await new_user(services, "lbianchi", "210", **panels)
    assert info.value.module == module
    assert module in info.value.detail
    assert "exhausted" in info.value.detail
    second = await new_user(services, "lbianchi", "210")
    async with refused(db, LicenceRefused) as info:
        await services.users.update(second["id"], UserPatch(**panels), ACTOR)
    assert info.value.module == module
    await services.users.update(first["id"], UserPatch(**freeing), ACTOR)
    assert (await services.platform.get_licences())[module] == {"count": 1, "used": 0}
    await services.users.update(second["id"], UserPatch(**panels), ACTOR)
    assert (await services.platform.get_licences())[module] == {"count": 1, "used": 1}


async def test_unchanged_features_never_need_a_free_seat(services: Services) -> None:
    await services.platform.put_licences({APP_USERS: 1}, ACTOR)
    user = await new_user(services, "mrossi", "200", team_app=TeamAppInput(enabled=True))
    # The module is full, but re-sending the same state and editing other fields is fine.
    patch = UserPatch(display_name="Mario", team_app=TeamAppInput(enabled=True, gsm_number="3331"))
    after = await services.users.update(user["id"], patch, ACTOR)
    assert after["display_name"] == "Mario"


# --- API tokens ---------------------------------------------------------------------------


async def test_tokens_are_stored_hashed_and_authenticate(services: Services, db: Database) -> None:
    token = await services.tokens.create(TokenCreate(name="ci", scope="read"), "judy")
    assert token.startswith("pvd_")
    snapshot = await dump(db)
    assert token not in json.dumps(snapshot)
    [row] = snapshot["api_tokens"]
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    caller = await services.tokens.authenticate(token)
    assert caller is not None
    assert (caller.name, caller.scope, caller.can_write) == ("ci", "read", False)
    assert await services.tokens.authenticate(token + "x") is None
    assert await services.tokens.count() == 1
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"]) == ("judy", "token.create")
    await services.tokens.revoke("ci", "judy")
    assert await services.tokens.authenticate(token) is None
    entry = await latest_audit(services)
    assert (entry["actor"], entry["action"]) == ("judy", "token.revoke")


async def test_token_refusals(services: Services, db: Database) -> None:
    await services.tokens.create(TokenCreate(name="ci"), ACTOR)
    async with refused(db, Conflict) as conflict:
        await services.tokens.create(TokenCreate(name="ci"), ACTOR)
    assert conflict.value.field == "name"
    async with refused(db, InvalidInput) as invalid:
        await services.tokens.create(TokenCreate(name="a\tb"), ACTOR)
    assert invalid.value.field == "name"
    async with refused(db, NotFound) as missing:
        await services.tokens.revoke("nobody", ACTOR)
    assert missing.value.field == "name"


# --- catalogue ----------------------------------------------------------------------------


async def test_catalogue_has_every_vendor(services: Services) -> None:
    models = await services.catalogue.models()
    assert {m["vendor"] for m in models} == VENDORS
    assert set(models[0]) >= {"id", "vendor", "name"}
    snom = await services.catalogue.models(vendor="snom")
    assert snom
    assert {m["vendor"] for m in snom} == {"snom"}
    assert any(m["id"] == "snom-d785" for m in snom)
