"""The checks a device's fields pass, as pure functions: one set for every way of making one.

DeviceService (one device through the API, the CLI or the console) and the bulk import
(provisiond.services.fleet_rows and fleet_facts) both call these, so a bad device is refused
with the same message whichever way it came in. The caller gathers the facts (which device
holds an extension or a MAC, which models the catalogue knows); these decide.
"""

from __future__ import annotations

from collections.abc import Container

import netaddr

from provisiond.domain.errors import Conflict, InvalidInput
from provisiond.domain.mac import mac_colon
from provisiond.domain.rules import check_text

# The longest label a device can carry (the database column has this length).
LABEL_MAX_LENGTH = 64


def check_label(value: str | None) -> str | None:
    """A device's free-text label (shown on the phone): None when empty."""
    return check_text(value, "label", max_len=LABEL_MAX_LENGTH) if value else None


def check_model_known(model: str, known: Container[str]) -> str:
    """The model must be one of the catalogue's ids (`known`)."""
    if model not in known:
        raise InvalidInput(f"unknown model {model!r}; see GET /api/v1/models", field="model")
    return model


def check_extension_free(extension: str, *, holder: int | None, device_id: int | None) -> None:
    """Device extensions are unique: `holder` is the device that has it (None: nobody)."""
    if holder is not None and holder != device_id:
        raise Conflict(f"extension {extension} is already device {holder}'s", field="extension")


def check_mac_free(mac: netaddr.EUI, *, holder: int | None, device_id: int | None) -> None:
    """Device MACs are unique: `holder` is the device that has it (None: nobody)."""
    if holder is not None and holder != device_id:
        raise Conflict(f"MAC {mac_colon(mac)} is already device {holder}'s", field="mac")
