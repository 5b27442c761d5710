"""The rules of a user's Devices tab, as pure functions (DESIGN.md section 1).

Each function takes plain values and either returns the outcome or raises a DomainError.
The service layer gathers the facts from the database, calls these, and applies the result in
one transaction; the API, the CLI and the web console all go through the services, so each rule
is written exactly once, here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provisiond.domain.errors import Conflict, InvalidInput, LicenceRefused

# Licence modules (names from the product page).
APP_USERS = "APP_USERS"
MCS_APP_WEBRTC = "MCS_APP_WEBRTC"
USER_CLIENT = "USER_CLIENT"
MCS_USERS = "MCS_USERS"
LICENCE_MODULES = (APP_USERS, MCS_APP_WEBRTC, USER_CLIENT, MCS_USERS)

_EXTENSION = re.compile(r"[0-9]{1,16}")
_GSM_NUMBER = re.compile(r"\+?[0-9]{4,20}")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
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


def presented_cli(main_extension: str, cli_custom: str | None) -> str:
    """The caller ID a user presents on internal calls: the custom CLI, else the main extension."""
    return cli_custom or main_extension


def check_team_app(app: TeamApp, *, mcs_interconnected: bool) -> TeamApp:
    """Validate the Team App panel; returns it unchanged or raises naming the field."""
    if not app.enabled and (app.smart_working or app.gsm_mode):
        field = "team_app.smart_working" if app.smart_working else "team_app.gsm_mode"
        raise Conflict("Team App options need the Team App enabled", field=field)
    if app.smart_working and not mcs_interconnected:
        raise Conflict(
            "Team App smart working needs the platform interconnected with MCS "
            "(setting mcs_interconnected)",
            field="team_app.smart_working",
        )
    if app.gsm_number is not None and not _GSM_NUMBER.fullmatch(app.gsm_number):
        raise InvalidInput(
            "team_app.gsm_number must be 4-20 digits with an optional leading +",
            field="team_app.gsm_number",
        )
    if app.gsm_mode and not app.gsm_number:
        raise Conflict("GSM mode needs a GSM number", field="team_app.gsm_number")
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
    options = ("smart_working", "web_phone", "video_calls")
    if not client.enabled:
        for name in options:
            if getattr(client, name):
                raise Conflict("Client options need the Client enabled", field=f"client.{name}")
    if client.smart_working and not mcs_interconnected:
        raise Conflict(
            "Client smart working needs the platform interconnected with MCS "
            "(setting mcs_interconnected)",
            field="client.smart_working",
        )
    if client.video_calls and not client.web_phone:
        raise Conflict("video calls need the web phone", field="client.video_calls")
    return client


def licences_needed(app: TeamApp, client: Client) -> Counter[str]:
    """The licence modules one user's features consume (each feature takes one seat)."""
    needed: Counter[str] = Counter()
    if app.enabled:
        needed[APP_USERS] += 1
        if app.smart_working:
            needed[MCS_APP_WEBRTC] += 1
    if client.enabled:
        needed[USER_CLIENT] += 1
        if client.smart_working:
            needed[MCS_USERS] += 1
    return needed


_LICENCE_FIELD = {
    APP_USERS: "team_app.enabled",
    MCS_APP_WEBRTC: "team_app.smart_working",
    USER_CLIENT: "client.enabled",
    MCS_USERS: "client.smart_working",
}


def check_licences(
    before: Counter[str], after: Counter[str], counts: Mapping[str, int], used: Mapping[str, int]
) -> None:
    """Refuse a change whose additional seats do not fit in the licence counts.

    `before`/`after` are what the user consumes before and after the change; `used` is what the
    whole platform consumes now (including `before`). Seats freed by the change never block it.
    """
    for module in LICENCE_MODULES:
        extra = after[module] - before[module]
        if extra <= 0:
            continue
        count = counts.get(module)
        if count is None or count == 0:
            raise LicenceRefused(
                module, f"licence module {module} is not installed", field=_LICENCE_FIELD[module]
            )
        if used.get(module, 0) + extra > count:
            raise LicenceRefused(
                module,
                f"licence module {module} is exhausted ({used.get(module, 0)} of {count} in use)",
                field=_LICENCE_FIELD[module],
            )


def check_licence_counts(counts: Mapping[str, object], used: Mapping[str, int]) -> dict[str, int]:
    """Validate new licence counts: known modules, whole numbers >= 0, not below what is in use."""
    result: dict[str, int] = {}
    for module, count in counts.items():
        if module not in LICENCE_MODULES:
            raise InvalidInput(
                f"unknown licence module {module!r}; known: {', '.join(LICENCE_MODULES)}",
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


@dataclass(frozen=True, slots=True)
class PrimaryChange:
    """Result of selecting a primary device: the new main extension and whether it changed."""

    device_id: int
    main_extension: str
    changed_from: str | None  # the old main extension when rule 2 changed it

    @property
    def changed(self) -> bool:
        """True when the main extension changed."""
        return self.changed_from is not None


def select_primary(*, device_id: int, device_extension: str, main_extension: str) -> PrimaryChange:
    """Rule 2: the primary device's extension becomes the main extension."""
    if device_extension == main_extension:
        return PrimaryChange(device_id, main_extension, None)
    return PrimaryChange(device_id, device_extension, main_extension)


def primary_after_assign(*, current_primary_id: int | None, device_id: int) -> int:
    """Rule 1: the first device assigned becomes primary (main extension unchanged)."""
    return device_id if current_primary_id is None else current_primary_id


def primary_after_unassign(
    *,
    device_id: int,
    current_primary_id: int | None,
    remaining_ids: Iterable[int],
    new_primary_id: int | None,
) -> int | None:
    """Rule 3: who is primary after `device_id` leaves the user.

    Returns the new primary's id (None when no device remains). Removing the primary while
    others remain requires `new_primary_id`, one of the remaining devices.
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
