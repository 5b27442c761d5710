"""The rules of a user's Devices tab, as pure functions (DESIGN.md section 1).

Each function takes plain values and either returns the outcome or raises a DomainError.
The service layer gathers the facts from the database, calls these, and applies the result in
one transaction; the API, the CLI and the web console all go through the services, so each rule
is written exactly once, here.

Two rules are data: LICENCE_SEATS (which feature takes a seat of which licence module) and
DEPENDENCIES (which option needs which switch, setting or value). The checks below read them;
so do the seat count in SQL (provisiond.services.platform), the cascades of the user form
(provisiond.services.users) and the web console, which fetches them from GET /api/v1/rules.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from provisiond.domain.errors import Conflict, InvalidInput, LicenceRefused

# Licence modules (names from the product page).
APP_USERS = "APP_USERS"
MCS_APP_WEBRTC = "MCS_APP_WEBRTC"
USER_CLIENT = "USER_CLIENT"
MCS_USERS = "MCS_USERS"

# Feature names are "panel.flag": the panel is an attribute of the user form ("team_app",
# "client"), the flag a field of its dataclass below; the database column is the name with "_"
# for "." (User.team_app_smart_working).


@dataclass(frozen=True, slots=True)
class LicenceSeat:
    """One row of the licence table: a user whose `feature` is on takes one seat of `module`.

    A feature counts as on when it and every switch it needs (DEPENDENCIES) are on, so the
    seats the rules check and the seats the database counts are the same.
    """

    feature: str
    module: str


LICENCE_SEATS: tuple[LicenceSeat, ...] = (
    LicenceSeat("team_app.enabled", APP_USERS),
    LicenceSeat("team_app.smart_working", MCS_APP_WEBRTC),
    LicenceSeat("client.enabled", USER_CLIENT),
    LicenceSeat("client.smart_working", MCS_USERS),
)

# The kinds of DEPENDENCIES rows (see Dependency).
SWITCH, SETTING, VALUE, PARAMETER = "switch", "setting", "value", "parameter"
DEPENDENCY_KINDS = (SWITCH, SETTING, VALUE, PARAMETER)


@dataclass(frozen=True, slots=True)
class Dependency:
    """One row of the feature dependency table: `field` needs `needs`; `kind` says how.

    - SWITCH: the option `field` may be on only while the switch `needs` (a flag of the same
      panel) is on. Turning the switch off turns the option off (the cascade); the console
      disables the option while the switch is off.
    - SETTING: the option may be on only while the platform setting `needs` is true.
    - VALUE: the option may be on only while the value `needs` is set; the refusal is
      reported on `needs`, the input the person has to fill in.
    - PARAMETER: the value `field` only takes effect while the option `needs` is on. Never
      refused (the API keeps it for later); the console disables it meanwhile.

    `detail` is the refusal's message (empty for PARAMETER rows, which are never refused).
    """

    field: str
    needs: str
    kind: str
    detail: str = ""

    @property
    def refused_at(self) -> str:
        """The input a refusal names."""
        return self.needs if self.kind == VALUE else self.field


_APP_OPTIONS = "Team App options need the Team App enabled"
_CLIENT_OPTIONS = "Client options need the Client enabled"
_NEEDS_MCS = "smart working needs the platform interconnected with MCS (setting mcs_interconnected)"

# Checked in this order (a request with several problems is refused for the first).
DEPENDENCIES: tuple[Dependency, ...] = (
    Dependency("team_app.smart_working", "team_app.enabled", SWITCH, _APP_OPTIONS),
    Dependency("team_app.gsm_mode", "team_app.enabled", SWITCH, _APP_OPTIONS),
    Dependency("team_app.smart_working", "mcs_interconnected", SETTING, f"Team App {_NEEDS_MCS}"),
    Dependency("team_app.gsm_mode", "team_app.gsm_number", VALUE, "GSM mode needs a GSM number"),
    Dependency("team_app.gsm_number", "team_app.gsm_mode", PARAMETER),
    Dependency("team_app.fallback_timeout_s", "team_app.gsm_mode", PARAMETER),
    Dependency("team_app.callback_enabled", "team_app.gsm_mode", PARAMETER),
    Dependency("client.smart_working", "client.enabled", SWITCH, _CLIENT_OPTIONS),
    Dependency("client.web_phone", "client.enabled", SWITCH, _CLIENT_OPTIONS),
    Dependency("client.video_calls", "client.enabled", SWITCH, _CLIENT_OPTIONS),
    Dependency("client.smart_working", "mcs_interconnected", SETTING, f"Client {_NEEDS_MCS}"),
    Dependency("client.video_calls", "client.web_phone", SWITCH, "video calls need the web phone"),
)


def licence_modules() -> tuple[str, ...]:
    """The licence modules of LICENCE_SEATS, in table order."""
    return tuple(dict.fromkeys(seat.module for seat in LICENCE_SEATS))


# The modules as the table stands at import (for callers that list them).
LICENCE_MODULES = licence_modules()


def switches_needed(feature: str) -> tuple[str, ...]:
    """Every switch `feature` needs on, directly or through another switch, nearest last."""
    found: list[str] = []
    for dep in DEPENDENCIES:
        if dep.field == feature and dep.kind == SWITCH:
            for switch in (*switches_needed(dep.needs), dep.needs):
                if switch not in found:
                    found.append(switch)
    return tuple(found)


def feature_on_when(feature: str) -> tuple[str, ...]:
    """The flags that must all be on for `feature` to be in effect: its switches, then itself."""
    return (*switches_needed(feature), feature)


def dependants(switch: str) -> tuple[str, ...]:
    """Every option that needs `switch` on, directly or through another option (the cascade)."""
    found: list[str] = []
    for dep in DEPENDENCIES:
        if dep.needs == switch and dep.kind == SWITCH:
            for option in (dep.field, *dependants(dep.field)):
                if option not in found:
                    found.append(option)
    return tuple(found)


def features_needing_setting(setting: str) -> tuple[str, ...]:
    """The options that may be on only while the platform setting `setting` is true."""
    return tuple(d.field for d in DEPENDENCIES if d.kind == SETTING and d.needs == setting)


def rules_table() -> dict[str, Any]:
    """The licence and dependency tables as plain data (GET /api/v1/rules, the console)."""
    return {
        "licence_modules": list(licence_modules()),
        "licences": [{"feature": s.feature, "module": s.module} for s in LICENCE_SEATS],
        "dependencies": [
            {"field": d.field, "needs": d.needs, "kind": d.kind, "detail": d.detail}
            for d in DEPENDENCIES
        ],
    }


_EXTENSION = re.compile(r"[0-9]{1,16}")
_GSM_NUMBER = re.compile(r"\+?[0-9]{4,20}")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# Characters no phone file may carry: C0 and C1 controls (key=value injection, NEL), the
# line and paragraph separators, lone surrogates (not Unicode text: they cannot be encoded)
# and the noncharacters (U+FDD0-U+FDEF, U+xFFFE/U+xFFFF): XML 1.0 forbids U+FFFE/U+FFFF and
# discourages the rest, and one in a handset's label would make the whole DECT base's XML file
# unreadable. Also the invisible characters that make one name look like another on a phone's
# screen: the zero-width space, the bidirectional embeddings, overrides and isolates (U+202E
# shows "lanoitaN" as "National") and the byte-order mark.
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2066-\u2069\ufeff"
    r"\u2028\u2029\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17))
    + "]"
)
FALLBACK_TIMEOUT_RANGE = (1, 120)


@dataclass(frozen=True, slots=True)
class TeamApp:
    """Team App (mobile softphone) state of a user; None timeouts inherit the global default."""

    enabled: bool = False
    smart_working: bool = False
    gsm_mode: bool = False
    gsm_number: str | None = None
    fallback_timeout_s: int | None = None
    callback_enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class Client:
    """Client (desktop softphone) state of a user."""

    enabled: bool = False
    smart_working: bool = False
    web_phone: bool = False
    video_calls: bool = False


def check_extension(value: object, field: str) -> str:
    """An extension is a string of 1 to 16 digits."""
    if not isinstance(value, str) or not _EXTENSION.fullmatch(value):
        raise InvalidInput(
            f"{field} must be a string of 1 to 16 digits, got {value!r}", field=field
        )
    return value


def check_username(value: object, field: str = "username") -> str:
    """Usernames: letters, digits and . _ @ -, starting with a letter or digit, at most 64."""
    if not isinstance(value, str) or not _USERNAME.fullmatch(value):
        raise InvalidInput(
            f"{field} must be 1-64 characters of letters, digits, '.', '_', '@', '-'", field=field
        )
    return value


def check_text(value: object, field: str, *, max_len: int = 128, allow_empty: bool = True) -> str:
    """Free text that ends up in phone files: no control characters (no key injection)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if _CONTROL.search(value):
        raise InvalidInput(f"{field} must not contain control characters", field=field)
    if len(value) > max_len or (not allow_empty and not value.strip()):
        raise InvalidInput(f"{field} must be 1 to {max_len} characters", field=field)
    return value


def has_control(value: str) -> bool:
    """Whether `value` holds a character no phone file may carry (see `_CONTROL`)."""
    return _CONTROL.search(value) is not None


def presented_cli(main_extension: str, cli_custom: str | None) -> str:
    """The caller ID a user presents on internal calls: the custom CLI, else the main extension."""
    return cli_custom or main_extension


def _flag(panel: TeamApp | Client, field: str) -> object:
    """The value of "panel.name" in its panel."""
    return getattr(panel, field.split(".", 1)[1])


def _check_dependencies(
    name: str, panel: TeamApp | Client, settings: Mapping[str, bool], kinds: tuple[str, ...]
) -> None:
    """Refuse the first DEPENDENCIES row of panel `name` (of these kinds) that `panel` breaks."""
    for dep in DEPENDENCIES:
        in_panel = dep.field.startswith(f"{name}.")
        if dep.kind not in kinds or not in_panel or not _flag(panel, dep.field):
            continue
        met = settings.get(dep.needs, False) if dep.kind == SETTING else _flag(panel, dep.needs)
        if not met:
            raise Conflict(dep.detail, field=dep.refused_at)


def check_team_app(app: TeamApp, *, mcs_interconnected: bool) -> TeamApp:
    """Validate the Team App panel; returns it unchanged or raises naming the field."""
    settings = {"mcs_interconnected": mcs_interconnected}
    _check_dependencies("team_app", app, settings, (SWITCH, SETTING))
    if app.gsm_number is not None and not _GSM_NUMBER.fullmatch(app.gsm_number):
        raise InvalidInput(
            "team_app.gsm_number must be 4-20 digits with an optional leading +",
            field="team_app.gsm_number",
        )
    _check_dependencies("team_app", app, settings, (VALUE,))
    if app.fallback_timeout_s is not None:
        check_fallback_timeout(app.fallback_timeout_s, "team_app.fallback_timeout_s")
    return app


def check_fallback_timeout(value: object, field: str) -> int:
    """The WebRTC push-acknowledgement timeout before falling back to GSM, in seconds."""
    low, high = FALLBACK_TIMEOUT_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"{field} must be a whole number of seconds, {low} to {high}", field=field
        )
    return value


def check_client(client: Client, *, mcs_interconnected: bool) -> Client:
    """Validate the Client panel; returns it unchanged or raises naming the field."""
    settings = {"mcs_interconnected": mcs_interconnected}
    _check_dependencies("client", client, settings, (SWITCH, SETTING, VALUE))
    return client


def licences_needed(app: TeamApp, client: Client) -> Counter[str]:
    """The licence modules one user's features consume (LICENCE_SEATS: one seat a feature)."""
    panels: dict[str, TeamApp | Client] = {"team_app": app, "client": client}
    needed: Counter[str] = Counter()
    for seat in LICENCE_SEATS:
        flags = feature_on_when(seat.feature)
        if all(_flag(panels[flag.split(".", 1)[0]], flag) for flag in flags):
            needed[seat.module] += 1
    return needed


def check_licences(
    before: Counter[str], after: Counter[str], counts: Mapping[str, int], used: Mapping[str, int]
) -> None:
    """Refuse a change whose additional seats do not fit in the licence counts.

    `before`/`after` are what the user consumes before and after the change; `used` is what the
    whole platform consumes now (including `before`). Seats freed by the change never block it.
    A refusal names the feature that takes the seat (its LICENCE_SEATS row).
    """
    for seat in LICENCE_SEATS:
        module = seat.module
        extra = after[module] - before[module]
        if extra <= 0:
            continue
        count = counts.get(module)
        if count is None or count == 0:
            raise LicenceRefused(
                module, f"licence module {module} is not installed", field=seat.feature
            )
        if used.get(module, 0) + extra > count:
            raise LicenceRefused(
                module,
                f"licence module {module} is exhausted ({used.get(module, 0)} of {count} in use)",
                field=seat.feature,
            )


def check_licence_counts(counts: Mapping[str, object], used: Mapping[str, int]) -> dict[str, int]:
    """Validate new licence counts: known modules, whole numbers >= 0, not below what is in use."""
    result: dict[str, int] = {}
    for module, count in counts.items():
        if module not in licence_modules():
            raise InvalidInput(
                f"unknown licence module {module!r}; known: {', '.join(licence_modules())}",
                field=module,
            )
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1_000_000:
            raise InvalidInput(f"{module} must be a whole number from 0", field=module)
        if count < used.get(module, 0):
            raise Conflict(
                f"{module} cannot go below the {used.get(module, 0)} seats in use", field=module
            )
        result[module] = count
    return result


def check_main_extension_free(
    extension: str,
    *,
    user_id: int | None,
    user_ids_with_main: Iterable[int],
    device_owner_ids: Iterable[int | None],
) -> None:
    """A main extension is unique among users and never a device extension of another user.

    `user_ids_with_main`: users whose main extension is `extension`; `device_owner_ids`: owners of
    devices whose extension is `extension` (None for unassigned devices, which do not block).
    """
    if any(other != user_id for other in user_ids_with_main):
        raise Conflict(
            f"main extension {extension} belongs to another user", field="main_extension"
        )
    if any(owner is not None and owner != user_id for owner in device_owner_ids):
        raise Conflict(
            f"main extension {extension} is the extension of another user's device",
            field="main_extension",
        )


def check_device_extension_for_owner(
    extension: str, *, owner_id: int | None, main_extension_user_ids: Iterable[int]
) -> None:
    """A device's extension may not be the main extension of a user other than its owner."""
    if owner_id is None:
        return
    if any(other != owner_id for other in main_extension_user_ids):
        raise Conflict(
            f"extension {extension} is the main extension of another user", field="extension"
        )


def check_assign(*, device_owner_id: int | None, user_id: int, move: bool) -> None:
    """Rule 5: a device owned by another user moves only when the request says so."""
    if device_owner_id is not None and device_owner_id != user_id and not move:
        raise Conflict(
            f"device belongs to user {device_owner_id}; repeat with move=true to move it",
            field="move",
        )


class LineRef(NamedTuple):
    """One of a user's lines: slot 1 of a device is the device itself, slots 2 and up its
    further accounts (DESIGN.md, "Accounts"). Shown as ``5`` or ``5/2`` (device/slot)."""

    device_id: int
    slot: int = 1

    def __str__(self) -> str:
        return str(self.device_id) if self.slot == 1 else f"{self.device_id}/{self.slot}"

    def __repr__(self) -> str:
        return str(self)


K = TypeVar("K", int, LineRef)


@dataclass(frozen=True, slots=True)
class PrimaryChange(Generic[K]):
    """Result of selecting a primary line: the new main extension and whether it changed."""

    device_id: K
    main_extension: str
    changed_from: str | None  # the old main extension when rule 2 changed it

    @property
    def changed(self) -> bool:
        """True when the main extension changed."""
        return self.changed_from is not None


def select_primary(*, device_id: K, device_extension: str, main_extension: str) -> PrimaryChange[K]:
    """Rule 2: the primary line's extension becomes the main extension."""
    if device_extension == main_extension:
        return PrimaryChange(device_id, main_extension, None)
    return PrimaryChange(device_id, device_extension, main_extension)


def primary_after_assign(*, current_primary_id: K | None, device_id: K) -> K:
    """Rule 1: the first line assigned becomes primary (main extension unchanged)."""
    return device_id if current_primary_id is None else current_primary_id


def primary_after_unassign(
    *,
    device_id: K,
    current_primary_id: K | None,
    remaining_ids: Iterable[K],
    new_primary_id: K | None,
) -> K | None:
    """Rule 3: who is primary after line `device_id` leaves the user.

    Returns the new primary (None when no line remains). Removing the primary while others
    remain requires `new_primary_id`, one of the remaining lines.
    """
    remaining = set(remaining_ids) - {device_id}
    if new_primary_id is not None and new_primary_id not in remaining:
        raise Conflict(
            f"new_primary {new_primary_id} is not one of the user's remaining devices",
            field="new_primary",
        )
    if device_id != current_primary_id:
        if new_primary_id is not None:
            return new_primary_id
        return current_primary_id
    if not remaining:
        return None
    if new_primary_id is None:
        raise Conflict(
            "this is the user's primary device; name the new primary with new_primary "
            f"(one of {sorted(remaining)})",
            field="new_primary",
        )
    return new_primary_id
