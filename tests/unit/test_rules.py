"""Table-driven tests of the pure rules (DESIGN.md section 1, provisiond.domain.rules).

Each table row is one rule case: removing or loosening a rule makes at least one row fail.
"""

from __future__ import annotations

from collections import Counter

import pytest

from provisiond.domain import rules
from provisiond.domain.errors import Conflict, DomainError, InvalidInput, LicenceRefused
from provisiond.domain.rules import (
    APP_USERS,
    MCS_APP_WEBRTC,
    MCS_USERS,
    USER_CLIENT,
    Client,
    PrimaryChange,
    TeamApp,
)

# --- input checks -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2", "200", "0612345678", "1" * 16])
def test_extension_accepts_digit_strings(value: str) -> None:
    assert rules.check_extension(value, "extension") == value


@pytest.mark.parametrize("value", ["", "1" * 17, "20a", "+200", " 200", "2 00", "²00", 200, None])
def test_extension_refuses_anything_else(value: object) -> None:
    with pytest.raises(InvalidInput) as info:
        rules.check_extension(value, "main_extension")
    assert info.value.field == "main_extension"


@pytest.mark.parametrize("value", ["mrossi", "m.rossi", "m_rossi@example.com", "0user", "a" * 64])
def test_username_accepts(value: str) -> None:
    assert rules.check_username(value) == value


@pytest.mark.parametrize("value", ["", ".mrossi", "m rossi", "a" * 65, "mrössi", None, 7])
def test_username_refuses(value: object) -> None:
    with pytest.raises(InvalidInput) as info:
        rules.check_username(value)
    assert info.value.field == "username"


@pytest.mark.parametrize(
    ("value", "allow_empty", "ok"),
    [
        ("Mario Rossi", False, True),
        ("", True, True),
        ("", False, False),
        ("   ", False, False),
        ("Mario\nRossi", True, False),  # a newline would inject a key into a phone's file
        ("Mario\x00", True, False),
        ("Mario\x7f", True, False),
        ("x" * 128, True, True),
        ("x" * 129, True, False),
        (None, True, False),
    ],
)
def test_text(value: object, allow_empty: bool, ok: bool) -> None:
    if ok:
        assert rules.check_text(value, "display_name", allow_empty=allow_empty) == value
        return
    with pytest.raises(InvalidInput) as info:
        rules.check_text(value, "display_name", allow_empty=allow_empty)
    assert info.value.field == "display_name"


# --- presented CLI ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("main", "custom", "expected"),
    [
        ("200", None, "200"),
        ("200", "", "200"),
        ("200", "0612345678", "0612345678"),
        ("200", "+390612345678", "+390612345678"),
    ],
)
def test_presented_cli(main: str, custom: str | None, expected: str) -> None:
    assert rules.presented_cli(main, custom) == expected


# --- Team App -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "mcs"),
    [
        (TeamApp(), False),
        (TeamApp(enabled=True), False),
        (TeamApp(enabled=True, smart_working=True), True),
        (TeamApp(enabled=True, gsm_mode=True, gsm_number="+393331234567"), False),
        (TeamApp(enabled=True, gsm_mode=True, gsm_number="3331"), False),
        (TeamApp(gsm_number="3331234567"), False),  # a number without GSM mode is kept
        (TeamApp(enabled=True, fallback_timeout_s=1, callback_enabled=False), False),
        (TeamApp(enabled=True, fallback_timeout_s=120), False),
        (TeamApp(fallback_timeout_s=30), False),  # overrides survive a disabled app
    ],
)
def test_team_app_accepts(app: TeamApp, mcs: bool) -> None:
    assert rules.check_team_app(app, mcs_interconnected=mcs) == app


@pytest.mark.parametrize(
    ("app", "mcs", "error", "field"),
    [
        # options need the app enabled
        (TeamApp(smart_working=True), True, Conflict, "team_app.smart_working"),
        (TeamApp(gsm_mode=True, gsm_number="3331234567"), True, Conflict, "team_app.gsm_mode"),
        # smart working needs the MCS interconnection
        (TeamApp(enabled=True, smart_working=True), False, Conflict, "team_app.smart_working"),
        # GSM mode needs a (well-formed) GSM number
        (TeamApp(enabled=True, gsm_mode=True), False, Conflict, "team_app.gsm_number"),
        (
            TeamApp(enabled=True, gsm_mode=True, gsm_number=""),
            False,
            InvalidInput,
            "team_app.gsm_number",
        ),
        (TeamApp(enabled=True, gsm_number="333"), False, InvalidInput, "team_app.gsm_number"),
        (TeamApp(enabled=True, gsm_number="333-1234"), False, InvalidInput, "team_app.gsm_number"),
        (TeamApp(enabled=True, gsm_number="++39333"), False, InvalidInput, "team_app.gsm_number"),
        (TeamApp(enabled=True, gsm_number="1" * 21), False, InvalidInput, "team_app.gsm_number"),
        # fallback timeout range
        (
            TeamApp(enabled=True, fallback_timeout_s=0),
            False,
            InvalidInput,
            "team_app.fallback_timeout_s",
        ),
        (
            TeamApp(enabled=True, fallback_timeout_s=121),
            False,
            InvalidInput,
            "team_app.fallback_timeout_s",
        ),
        (
            TeamApp(enabled=True, fallback_timeout_s=-5),
            False,
            InvalidInput,
            "team_app.fallback_timeout_s",
        ),
    ],
)
def test_team_app_refuses(app: TeamApp, mcs: bool, error: type[DomainError], field: str) -> None:
    with pytest.raises(error) as info:
        rules.check_team_app(app, mcs_interconnected=mcs)
    assert type(info.value) is error
    assert info.value.field == field


def test_team_app_smart_working_refusal_names_the_setting() -> None:
    with pytest.raises(Conflict) as info:
        rules.check_team_app(TeamApp(enabled=True, smart_working=True), mcs_interconnected=False)
    assert "mcs_interconnected" in info.value.detail


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1, True),
        (120, True),
        (10, True),
        (0, False),
        (121, False),
        (True, False),
        (10.0, False),
        ("10", False),
        (None, False),
    ],
)
def test_fallback_timeout(value: object, ok: bool) -> None:
    if ok:
        assert rules.check_fallback_timeout(value, "t") == value
        return
    with pytest.raises(InvalidInput) as info:
        rules.check_fallback_timeout(value, "team_app.fallback_timeout_s")
    assert info.value.field == "team_app.fallback_timeout_s"


# --- Client -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "mcs"),
    [
        (Client(), False),
        (Client(enabled=True), False),
        (Client(enabled=True, smart_working=True), True),
        (Client(enabled=True, web_phone=True), False),
        (Client(enabled=True, web_phone=True, video_calls=True), False),
    ],
)
def test_client_accepts(client: Client, mcs: bool) -> None:
    assert rules.check_client(client, mcs_interconnected=mcs) == client


@pytest.mark.parametrize(
    ("client", "mcs", "field"),
    [
        (Client(smart_working=True), True, "client.smart_working"),
        (Client(web_phone=True), True, "client.web_phone"),
        (Client(video_calls=True), True, "client.video_calls"),
        (Client(enabled=True, smart_working=True), False, "client.smart_working"),
        (Client(enabled=True, video_calls=True), True, "client.video_calls"),
    ],
)
def test_client_refuses(client: Client, mcs: bool, field: str) -> None:
    with pytest.raises(Conflict) as info:
        rules.check_client(client, mcs_interconnected=mcs)
    assert info.value.field == field


# --- licences -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "client", "expected"),
    [
        (TeamApp(), Client(), {}),
        (TeamApp(enabled=True), Client(), {APP_USERS: 1}),
        (TeamApp(enabled=True, smart_working=True), Client(), {APP_USERS: 1, MCS_APP_WEBRTC: 1}),
        (TeamApp(smart_working=True, gsm_mode=True), Client(), {}),  # disabled consumes nothing
        (TeamApp(enabled=True, gsm_mode=True, gsm_number="3331234"), Client(), {APP_USERS: 1}),
        (TeamApp(), Client(enabled=True), {USER_CLIENT: 1}),
        (TeamApp(), Client(enabled=True, smart_working=True), {USER_CLIENT: 1, MCS_USERS: 1}),
        (TeamApp(), Client(enabled=True, web_phone=True, video_calls=True), {USER_CLIENT: 1}),
        (TeamApp(), Client(smart_working=True), {}),
        (
            TeamApp(enabled=True, smart_working=True),
            Client(enabled=True, smart_working=True),
            {APP_USERS: 1, MCS_APP_WEBRTC: 1, USER_CLIENT: 1, MCS_USERS: 1},
        ),
    ],
)
def test_licences_needed(app: TeamApp, client: Client, expected: dict[str, int]) -> None:
    assert dict(rules.licences_needed(app, client)) == expected


_A, _W, _C, _M = APP_USERS, MCS_APP_WEBRTC, USER_CLIENT, MCS_USERS


@pytest.mark.parametrize(
    ("before", "after", "counts", "used"),
    [
        pytest.param({}, {_A: 1}, {_A: 1}, {}, id="first-seat"),
        pytest.param({}, {_A: 1}, {_A: 5}, {_A: 4}, id="last-seat"),
        pytest.param({_A: 1}, {_A: 1}, {_A: 1}, {_A: 1}, id="unchanged-full-module"),
        pytest.param({_A: 1}, {}, {}, {_A: 3}, id="freeing-absent-module"),
        pytest.param({_A: 1, _W: 1}, {_A: 1}, {_A: 1, _W: 1}, {_A: 9, _W: 9}, id="freeing-over"),
        pytest.param({_C: 1}, {_C: 1, _M: 1}, {_C: 1, _M: 1}, {_C: 1}, id="client-smart"),
        pytest.param({_A: 1}, {_C: 1}, {_C: 1}, {_A: 1}, id="swap-app-for-client"),
    ],
)
def test_check_licences_allows(
    before: dict[str, int], after: dict[str, int], counts: dict[str, int], used: dict[str, int]
) -> None:
    rules.check_licences(Counter(before), Counter(after), counts, used)


@pytest.mark.parametrize(
    ("before", "after", "counts", "used", "module", "field", "words"),
    [
        pytest.param({}, {_A: 1}, {}, {}, _A, "team_app.enabled", "not installed", id="app-absent"),
        pytest.param(
            {}, {_A: 1}, {_A: 0}, {}, _A, "team_app.enabled", "not installed", id="app-zero"
        ),
        pytest.param(
            {}, {_A: 1}, {_A: 2}, {_A: 2}, _A, "team_app.enabled", "exhausted", id="app-full"
        ),
        pytest.param(
            {_A: 1},
            {_A: 1, _W: 1},
            {_A: 1},
            {_A: 1},
            _W,
            "team_app.smart_working",
            "not installed",
            id="webrtc-absent",
        ),
        pytest.param(
            {_A: 1},
            {_A: 1, _W: 1},
            {_A: 1, _W: 1},
            {_A: 1, _W: 1},
            _W,
            "team_app.smart_working",
            "exhausted",
            id="webrtc-full",
        ),
        pytest.param(
            {}, {_C: 1}, {_C: 3}, {_C: 3}, _C, "client.enabled", "exhausted", id="client-full"
        ),
        pytest.param(
            {_C: 1},
            {_C: 1, _M: 1},
            {_C: 1},
            {_C: 1},
            _M,
            "client.smart_working",
            "not installed",
            id="mcs-users-absent",
        ),
        pytest.param(
            {_A: 1}, {_C: 1}, {_A: 1}, {_A: 1}, _C, "client.enabled", "not installed", id="swap"
        ),
    ],
)
def test_check_licences_refuses_naming_the_module(
    before: dict[str, int],
    after: dict[str, int],
    counts: dict[str, int],
    used: dict[str, int],
    module: str,
    field: str,
    words: str,
) -> None:
    with pytest.raises(LicenceRefused) as info:
        rules.check_licences(Counter(before), Counter(after), counts, used)
    assert isinstance(info.value, Conflict)
    assert info.value.module == module
    assert module in info.value.detail
    assert words in info.value.detail
    assert info.value.field == field
    assert info.value.code == "licence_refused"


@pytest.mark.parametrize(
    ("counts", "used"),
    [
        ({}, {}),
        ({_A: 10, _W: 0, _C: 5, _M: 0}, {}),
        ({_A: 3}, {_A: 3}),  # equal to the seats in use is fine
        ({_A: 1_000_000}, {}),
    ],
)
def test_check_licence_counts_accepts(counts: dict[str, int], used: dict[str, int]) -> None:
    assert rules.check_licence_counts(counts, used) == counts


@pytest.mark.parametrize(
    ("counts", "used", "error", "field"),
    [
        pytest.param({"VOICEMAIL": 1}, {}, InvalidInput, "VOICEMAIL", id="unknown-module"),
        pytest.param({"app_users": 1}, {}, InvalidInput, "app_users", id="wrong-case"),
        pytest.param({_A: -1}, {}, InvalidInput, _A, id="negative"),
        pytest.param({_A: True}, {}, InvalidInput, _A, id="bool"),
        pytest.param({_A: 2.0}, {}, InvalidInput, _A, id="float"),
        pytest.param({_A: "2"}, {}, InvalidInput, _A, id="text"),
        pytest.param({_A: None}, {}, InvalidInput, _A, id="null"),
        pytest.param({_A: 1_000_001}, {}, InvalidInput, _A, id="huge"),
        pytest.param({_A: 2}, {_A: 3}, Conflict, _A, id="below-used"),
        pytest.param({_C: 5, _M: 0}, {_M: 1}, Conflict, _M, id="below-used-second"),
    ],
)
def test_check_licence_counts_refuses(
    counts: dict[str, object], used: dict[str, int], error: type[DomainError], field: str
) -> None:
    with pytest.raises(error) as info:
        rules.check_licence_counts(counts, used)
    assert type(info.value) is error
    assert info.value.field == field


# --- extensions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "users_with_main", "device_owners", "blocked"),
    [
        pytest.param(None, [], [], False, id="free"),
        pytest.param(None, [1], [], True, id="new-user-vs-main"),
        pytest.param(1, [1], [], False, id="own-main"),
        pytest.param(1, [2], [], True, id="other-main"),
        pytest.param(None, [], [None], False, id="unassigned-device"),
        pytest.param(1, [], [1], False, id="own-device"),
        pytest.param(1, [], [2], True, id="other-device"),
        pytest.param(None, [], [2], True, id="new-user-vs-device"),
        pytest.param(1, [1], [None, 1], False, id="own-and-unassigned"),
    ],
)
def test_main_extension_free(
    user_id: int | None, users_with_main: list[int], device_owners: list[int | None], blocked: bool
) -> None:
    def check() -> None:
        rules.check_main_extension_free(
            "200",
            user_id=user_id,
            user_ids_with_main=users_with_main,
            device_owner_ids=device_owners,
        )

    if not blocked:
        check()
        return
    with pytest.raises(Conflict) as info:
        check()
    assert info.value.field == "main_extension"
    assert "200" in info.value.detail


@pytest.mark.parametrize(
    ("owner", "mains", "blocked"),
    [
        (None, [1], False),  # unassigned devices never block
        (1, [1], False),
        (1, [], False),
        (1, [2], True),
    ],
)
def test_device_extension_for_owner(owner: int | None, mains: list[int], blocked: bool) -> None:
    def check() -> None:
        rules.check_device_extension_for_owner("201", owner_id=owner, main_extension_user_ids=mains)

    if not blocked:
        check()
        return
    with pytest.raises(Conflict) as info:
        check()
    assert info.value.field == "extension"


# --- assignment and primary device --------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "move", "blocked"),
    [(None, False, False), (1, False, False), (2, False, True), (2, True, False)],
)
def test_check_assign(owner: int | None, move: bool, blocked: bool) -> None:
    if not blocked:
        rules.check_assign(device_owner_id=owner, user_id=1, move=move)
        return
    with pytest.raises(Conflict) as info:
        rules.check_assign(device_owner_id=owner, user_id=1, move=move)
    assert info.value.field == "move"


@pytest.mark.parametrize(
    ("device_ext", "main", "expected"),
    [
        ("200", "200", PrimaryChange(5, "200", None)),
        ("202", "200", PrimaryChange(5, "202", "200")),
    ],
)
def test_select_primary(device_ext: str, main: str, expected: PrimaryChange[int]) -> None:
    change = rules.select_primary(device_id=5, device_extension=device_ext, main_extension=main)
    assert change == expected
    assert change.changed is (expected.changed_from is not None)


@pytest.mark.parametrize(("current", "expected"), [(None, 5), (3, 3)])
def test_primary_after_assign(current: int | None, expected: int) -> None:
    assert rules.primary_after_assign(current_primary_id=current, device_id=5) == expected


@pytest.mark.parametrize(
    ("device", "primary", "remaining", "new", "expected"),
    [
        pytest.param(1, 1, [1], None, None, id="last-device-leaves-no-primary"),
        pytest.param(1, 1, [1, 2], 2, 2, id="primary-with-new-primary"),
        pytest.param(1, 1, [1, 2, 3], 3, 3, id="primary-picks-among-several"),
        pytest.param(2, 1, [1, 2], None, 1, id="non-primary-keeps-primary"),
        pytest.param(2, 1, [1, 2, 3], 3, 3, id="non-primary-with-new-primary"),
    ],
)
def test_primary_after_unassign(
    device: int, primary: int, remaining: list[int], new: int | None, expected: int | None
) -> None:
    result = rules.primary_after_unassign(
        device_id=device, current_primary_id=primary, remaining_ids=remaining, new_primary_id=new
    )
    assert result == expected


@pytest.mark.parametrize(
    ("device", "primary", "remaining", "new", "words"),
    [
        pytest.param(1, 1, [1, 2, 3], None, "[2, 3]", id="primary-needs-new-primary"),
        pytest.param(1, 1, [1, 2], 9, "9", id="new-primary-not-owned"),
        pytest.param(1, 1, [1, 2], 1, "1", id="new-primary-is-the-leaving-device"),
        pytest.param(2, 1, [1, 2], 2, "2", id="non-primary-leaving-named-new"),
        pytest.param(1, 1, [1], 7, "7", id="last-device-with-bogus-new"),
    ],
)
def test_primary_after_unassign_refuses(
    device: int, primary: int, remaining: list[int], new: int | None, words: str
) -> None:
    with pytest.raises(Conflict) as info:
        rules.primary_after_unassign(
            device_id=device,
            current_primary_id=primary,
            remaining_ids=remaining,
            new_primary_id=new,
        )
    assert info.value.field == "new_primary"
    assert words in info.value.detail
