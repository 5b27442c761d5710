"""The user form through the service layer: uniqueness, Team App, Client and licences.

Every refusal is checked with `refused(db, ...)`: the error and its field, and a whole-database
dump identical before and after (DESIGN.md rule 7). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from provisiond.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from provisiond.domain.rules import APP_USERS, MCS_APP_WEBRTC, MCS_USERS, USER_CLIENT
from provisiond.services import Services
from provisiond.services.commands import (
    ClientInput,
    DeviceCreate,
    TeamAppInput,
    UserCreate,
    UserPatch,
)
from provisiond.settings import Settings, TeamAppDefaults
from provisiond.storage.database import Database
from tests.dbdump import dump, refused

ACTOR = "alice@test"
PLENTY = {APP_USERS: 10, MCS_APP_WEBRTC: 10, USER_CLIENT: 10, MCS_USERS: 10}


async def new_user(services: Services, username: str, main: str, **fields: Any) -> dict[str, Any]:
    """Create a user with a display name derived from the username."""
    cmd = UserCreate(
        username=username, display_name=f"User {username}", main_extension=main, **fields
    )
    return await services.users.create(cmd, ACTOR)


async def new_device(services: Services, extension: str, **fields: Any) -> dict[str, Any]:
    """Create a Yealink with a MAC derived from the extension."""
    mac = f"00:15:65:00:{int(extension) // 256:02x}:{int(extension) % 256:02x}"
    cmd = DeviceCreate(extension=extension, model="yealink-t46s", mac=mac, **fields)
    return await services.devices.create(cmd, ACTOR)


async def audit_rows(services: Services) -> list[dict[str, Any]]:
    """The audit log, newest first."""
    return list((await services.catalogue.audit(limit=500))["items"])


async def mcs_on(services: Services) -> None:
    """Interconnect the platform with MCS (a run-time setting)."""
    await services.platform.put_settings({"mcs_interconnected": True}, ACTOR)


# --- the user form ------------------------------------------------------------------------


async def test_create_returns_the_view_and_audits_it(services: Services) -> None:
    user = await new_user(services, "mrossi", "200")
    assert user["username"] == "mrossi"
    assert user["main_extension"] == "200"
    assert user["presented_cli"] == "200"
    assert user["devices"] == []
    assert user["primary_device_id"] is None
    assert user["team_app"]["enabled"] is False
    assert user["client"] == {
        "enabled": False,
        "smart_working": False,
        "web_phone": False,
        "video_calls": False,
    }
    assert await services.users.get(user["id"]) == user
    [entry] = await audit_rows(services)
    assert (entry["actor"], entry["action"]) == (ACTOR, "user.create")
    assert entry["object_id"] == str(user["id"])
    assert entry["after"] == user


async def test_presented_cli_is_the_custom_cli_else_the_main_extension(services: Services) -> None:
    user = await new_user(services, "mrossi", "200", cli_custom="+390612345678")
    assert user["presented_cli"] == "+390612345678"
    cleared = await services.users.update(user["id"], UserPatch(cli_custom=None), ACTOR)
    assert cleared["cli_custom"] is None
    assert cleared["presented_cli"] == "200"
    again = await services.users.update(user["id"], UserPatch(cli_custom=""), ACTOR)
    assert again["presented_cli"] == "200"


@pytest.fixture
async def occupied(services: Services) -> dict[str, Any]:
    """mrossi (main 200) owning device 201; device 300 unassigned."""
    user = await new_user(services, "mrossi", "200")
    await new_device(services, "201", user_id=user["id"])
    await new_device(services, "300")
    return user


@pytest.mark.parametrize(
    ("fields", "error", "field"),
    [
        pytest.param({"username": "mrossi"}, Conflict, "username", id="duplicate-username"),
        pytest.param({"main_extension": "200"}, Conflict, "main_extension", id="duplicate-main"),
        pytest.param(
            {"main_extension": "201"}, Conflict, "main_extension", id="another-users-device"
        ),
        pytest.param({"username": "l bianchi"}, InvalidInput, "username", id="bad-username"),
        pytest.param({"main_extension": "20a"}, InvalidInput, "main_extension", id="bad-main"),
        pytest.param({"display_name": " "}, InvalidInput, "display_name", id="blank-name"),
        pytest.param({"display_name": "L\nB"}, InvalidInput, "display_name", id="newline-name"),
        pytest.param({"cli_custom": "06-1234"}, InvalidInput, "cli_custom", id="bad-cli"),
    ],
)
async def test_create_refusals(
    services: Services,
    db: Database,
    occupied: dict[str, Any],
    fields: dict[str, Any],
    error: type[DomainError],
    field: str,
) -> None:
    base = {"username": "lbianchi", "display_name": "Luca Bianchi", "main_extension": "210"}
    async with refused(db, error) as info:
        await services.users.create(UserCreate(**{**base, **fields}), ACTOR)
    assert type(info.value) is error
    assert info.value.field == field


async def test_main_extension_may_equal_an_unassigned_device(
    services: Services, occupied: dict[str, Any]
) -> None:
    user = await new_user(services, "lbianchi", "300")
    assert user["main_extension"] == "300"


@pytest.mark.parametrize(
    ("patch", "error", "field"),
    [
        pytest.param(UserPatch(username="mrossi"), Conflict, "username", id="duplicate-username"),
        pytest.param(UserPatch(main_extension="200"), Conflict, "main_extension", id="dup-main"),
        pytest.param(UserPatch(main_extension="201"), Conflict, "main_extension", id="other-dev"),
        pytest.param(UserPatch(main_extension=""), InvalidInput, "main_extension", id="empty"),
        pytest.param(UserPatch(username=None), InvalidInput, "username", id="null-username"),
        pytest.param(UserPatch(display_name=""), InvalidInput, "display_name", id="blank-name"),
        pytest.param(UserPatch(cli_custom="abc"), InvalidInput, "cli_custom", id="bad-cli"),
    ],
)
async def test_update_refusals(
    services: Services,
    db: Database,
    occupied: dict[str, Any],
    patch: UserPatch,
    error: type[DomainError],
    field: str,
) -> None:
    other = await new_user(services, "lbianchi", "210")
    async with refused(db, error) as info:
        await services.users.update(other["id"], patch, ACTOR)
    assert type(info.value) is error
    assert info.value.field == field


async def test_update_to_own_values_and_own_device_extension(
    services: Services, occupied: dict[str, Any]
) -> None:
    user_id = occupied["id"]
    same = await services.users.update(user_id, UserPatch(username="mrossi"), ACTOR)
    assert same["username"] == "mrossi"
    moved = await services.users.update(user_id, UserPatch(main_extension="201"), ACTOR)
    assert moved["main_extension"] == "201"
    freed = await new_user(services, "lbianchi", "200")  # the old main extension is free again
    assert freed["main_extension"] == "200"


async def test_update_audits_before_and_after(services: Services) -> None:
    user = await new_user(services, "mrossi", "200")
    after = await services.users.update(user["id"], UserPatch(display_name="Mario R."), "bob")
    entry = (await audit_rows(services))[0]
    assert (entry["actor"], entry["action"]) == ("bob", "user.update")
    assert entry["before"]["display_name"] == "User mrossi"
    assert entry["after"] == after


@pytest.mark.parametrize("action", ["get", "update", "delete"])
async def test_unknown_user_is_not_found(services: Services, db: Database, action: str) -> None:
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "get": lambda: services.users.get(999),
        "update": lambda: services.users.update(999, UserPatch(display_name="x"), ACTOR),
        "delete": lambda: services.users.delete(999, ACTOR),
    }
    async with refused(db, NotFound) as info:
        await calls[action]()
    assert info.value.field == "user_id"


async def test_delete_keeps_devices_unassigned_and_frees_licences(
    services: Services, db: Database
) -> None:
    await services.platform.put_licences({APP_USERS: 1}, ACTOR)
    user = await new_user(services, "mrossi", "200", team_app=TeamAppInput(enabled=True))
    device = await new_device(services, "201", user_id=user["id"])
    await services.users.delete(user["id"], "carol")
    assert (await services.devices.get(device["id"]))["user_id"] is None
    assert (await services.platform.get_licences())[APP_USERS] == {"count": 1, "used": 0}
    entry = (await audit_rows(services))[0]
    assert (entry["actor"], entry["action"], entry["after"]) == ("carol", "user.delete", None)
    assert (await dump(db))["users"] == []
    again = await new_user(services, "mrossi", "200", team_app=TeamAppInput(enabled=True))
    assert again["team_app"]["enabled"] is True


# --- Team App and Client panels -----------------------------------------------------------

PANEL_REFUSALS = [
    pytest.param(
        TeamAppInput(enabled=True, smart_working=True),
        None,
        False,
        Conflict,
        "team_app.smart_working",
        id="app-smart-working-without-mcs",
    ),
    pytest.param(
        TeamAppInput(smart_working=True),
        None,
        True,
        Conflict,
        "team_app.smart_working",
        id="app-option-without-app",
    ),
    pytest.param(
        TeamAppInput(gsm_mode=True, gsm_number="3331234567"),
        None,
        True,
        Conflict,
        "team_app.gsm_mode",
        id="app-gsm-without-app",
    ),
    pytest.param(
        TeamAppInput(enabled=True, gsm_mode=True),
        None,
        True,
        Conflict,
        "team_app.gsm_number",
        id="gsm-without-number",
    ),
    pytest.param(
        TeamAppInput(enabled=True, gsm_number="12"),
        None,
        True,
        InvalidInput,
        "team_app.gsm_number",
        id="bad-gsm-number",
    ),
    pytest.param(
        TeamAppInput(enabled=True, fallback_timeout_s=0),
        None,
        True,
        InvalidInput,
        "team_app.fallback_timeout_s",
        id="timeout-too-short",
    ),
    pytest.param(
        TeamAppInput(enabled=True, fallback_timeout_s=121),
        None,
        True,
        InvalidInput,
        "team_app.fallback_timeout_s",
        id="timeout-too-long",
    ),
    pytest.param(
        None,
        ClientInput(enabled=True, smart_working=True),
        False,
        Conflict,
        "client.smart_working",
        id="client-smart-working-without-mcs",
    ),
    pytest.param(
        None, ClientInput(web_phone=True), True, Conflict, "client.web_phone", id="client-option"
    ),
    pytest.param(
        None,
        ClientInput(enabled=True, video_calls=True),
        True,
        Conflict,
        "client.video_calls",
        id="video-without-web-phone",
    ),
]


@pytest.mark.parametrize("how", ["create", "update"])
@pytest.mark.parametrize(("app", "client", "mcs", "error", "field"), PANEL_REFUSALS)
async def test_panel_rules_are_enforced(
    services: Services,
    db: Database,
    how: str,
    app: TeamAppInput | None,
    client: ClientInput | None,
    mcs: bool,
    error: type[DomainError],
    field: str,
) -> None:
    # Licences are plentiful, so the panel rule is what refuses.
    await services.platform.put_licences(PLENTY, ACTOR)
    if mcs:
        await mcs_on(services)
    panels: dict[str, Any] = {}
    if app is not None:
        panels["team_app"] = app
    if client is not None:
        panels["client"] = client
    if how == "create":
        call = services.users.create(
            UserCreate(username="mrossi", display_name="M", main_extension="200", **panels), ACTOR
        )
    else:
        user = await new_user(services, "mrossi", "200")
        call = services.users.update(user["id"], UserPatch(**panels), ACTOR)
    async with refused(db, error) as info:
        await call
    assert type(info.value) is error
    assert info.value.field == field


async def test_smart_working_allowed_once_mcs_is_interconnected(services: Services) -> None:
    await services.platform.put_licences(PLENTY, ACTOR)
    await mcs_on(services)
    user = await new_user(
        services,
        "mrossi",
        "200",
        team_app=TeamAppInput(enabled=True, smart_working=True, gsm_mode=True, gsm_number="+39333"),
        client=ClientInput(enabled=True, smart_working=True, web_phone=True, video_calls=True),
    )
    assert user["team_app"]["smart_working"] is True
    assert user["team_app"]["gsm_number"] == "+39333"
    assert user["client"]["video_calls"] is True
    used = {m: v["used"] for m, v in (await services.platform.get_licences()).items()}
    assert used == {APP_USERS: 1, MCS_APP_WEBRTC: 1, USER_CLIENT: 1, MCS_USERS: 1}


async def test_switching_a_panel_off_switches_its_options_off(services: Services) -> None:
    await services.platform.put_licences(PLENTY, ACTOR)
    await mcs_on(services)
    user = await new_user(
        services,
        "mrossi",
        "200",
        team_app=TeamAppInput(enabled=True, smart_working=True, gsm_mode=True, gsm_number="3331"),
        client=ClientInput(enabled=True, web_phone=True, video_calls=True),
    )
    off = await services.users.update(
        user["id"],
        UserPatch(team_app=TeamAppInput(enabled=False), client=ClientInput(web_phone=False)),
        ACTOR,
    )
    assert off["team_app"]["smart_working"] is False
    assert off["team_app"]["gsm_mode"] is False
    assert off["client"]["enabled"] is True
    assert off["client"]["video_calls"] is False
    licences = await services.platform.get_licences()
    assert licences[APP_USERS]["used"] == licences[MCS_APP_WEBRTC]["used"] == 0


async def test_explicit_contradiction_is_refused_not_cascaded(
    services: Services, db: Database
) -> None:
    await services.platform.put_licences(PLENTY, ACTOR)
    await mcs_on(services)
    user = await new_user(
        services, "mrossi", "200", team_app=TeamAppInput(enabled=True, smart_working=True)
    )
    patch = UserPatch(team_app=TeamAppInput(enabled=False, smart_working=True))
    async with refused(db, Conflict) as info:
        await services.users.update(user["id"], patch, ACTOR)
    assert info.value.field == "team_app.smart_working"


# --- Team App defaults inherited from the platform settings -------------------------------


@pytest.fixture
def tuned(services: Services, settings: Settings) -> Services:
    """The test's services, but the settings file says: fallback timeout 25 s, callback off."""
    defaults = TeamAppDefaults(fallback_timeout_s=25, callback_enabled=False)
    platform = settings.platform.model_copy(update={"team_app": defaults})
    custom = settings.model_copy(update={"platform": platform})
    return Services(replace(services.ctx, settings=custom))


def _timing(user: dict[str, Any]) -> tuple[int, bool, bool, bool]:
    app = user["team_app"]
    return (
        app["fallback_timeout_s"],
        app["callback_enabled"],
        app["fallback_timeout_inherited"],
        app["callback_inherited"],
    )


async def test_team_app_defaults_are_inherited_until_overridden(tuned: Services) -> None:
    plain = await new_user(tuned, "mrossi", "200")
    own = await new_user(
        tuned,
        "lbianchi",
        "210",
        team_app=TeamAppInput(fallback_timeout_s=40, callback_enabled=True),
    )
    assert _timing(plain) == (25, False, True, True)
    assert _timing(own) == (40, True, False, False)

    await tuned.platform.put_settings({"team_app": {"fallback_timeout_s": 50}}, ACTOR)
    assert _timing(await tuned.users.get(plain["id"])) == (50, False, True, True)
    assert _timing(await tuned.users.get(own["id"])) == (40, True, False, False)
    listed = {u["username"]: _timing(u) for u in (await tuned.users.list())["items"]}
    assert listed == {"mrossi": (50, False, True, True), "lbianchi": (40, True, False, False)}

    back = await tuned.users.update(
        own["id"], UserPatch(team_app=TeamAppInput(fallback_timeout_s=None)), ACTOR
    )
    assert _timing(back) == (50, True, True, False)


# --- bugs these tests found (fixed) ----------------------------------------------------------


@pytest.mark.parametrize("cli", ["+" + "3" * 15, "3" * 17, "+" + "3" * 20])
async def test_every_accepted_custom_cli_fits_its_column(
    services: Services, db: Database, request: pytest.FixtureRequest, cli: str
) -> None:
    before = await dump(db)
    refusal: InvalidInput | None = None
    try:
        user = await new_user(services, "mrossi", "200", cli_custom=cli)
    except InvalidInput as exc:  # refusing long CLIs would be a fix too
        refusal = exc
    if refusal is not None:
        assert refusal.field == "cli_custom"
        assert await dump(db) == before
        return
    assert (await services.users.get(user["id"]))["cli_custom"] == cli


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        (UserPatch(team_app=TeamAppInput(enabled=None)), "team_app.enabled"),
        (UserPatch(team_app=TeamAppInput(gsm_mode=None)), "team_app.gsm_mode"),
        (UserPatch(client=ClientInput(web_phone=None)), "client.web_phone"),
    ],
)
async def test_a_null_switch_is_refused(
    services: Services, db: Database, patch: UserPatch, field: str
) -> None:
    user = await new_user(services, "mrossi", "200")
    async with refused(db, InvalidInput) as info:
        await services.users.update(user["id"], patch, ACTOR)
    assert info.value.field is not None
    assert field.endswith(info.value.field)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        (UserPatch(team_app=TeamAppInput(enabled=None)), "team_app.enabled"),
        (UserPatch(client=ClientInput(web_phone=None)), "client.web_phone"),
    ],
)
async def test_a_null_switch_error_names_the_panel(
    services: Services, patch: UserPatch, field: str
) -> None:
    user = await new_user(services, "mrossi", "200")
    with pytest.raises(InvalidInput) as info:
        await services.users.update(user["id"], patch, ACTOR)
    assert info.value.field == field
