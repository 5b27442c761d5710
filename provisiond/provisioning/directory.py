"""What the phone side knows of devices: the one interface every phone request goes through.

`PhoneDirectory` is the seam: the resolver asks it for a device by MAC, for catalogue models,
the platform settings and the sites, and never touches the database itself. The one
implementation is the in-memory directory (provisiond.provisioning.memory), loaded at start-up
and kept current by the change feed; `provisiond render` loads it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import netaddr

from provisiond.domain import policy
from provisiond.domain.keys import PhoneKey
from provisiond.settings import PlatformSettings
from provisiond.storage.models import Site


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A catalogue model as templates see it."""

    id: str
    vendor: str
    name: str
    family: str
    series: str = ""
    accounts: int = 1  # SIP accounts the model carries (docs/templates.md, models.toml)
    line_keys: int = 0
    expansion_modules: int = 0
    handsets: int = 0
    module_keys: int = 0  # keys of one expansion module

    @property
    def key_capacity(self) -> int:
        """Programmable key positions: the phone's own keys, then every module's."""
        return self.line_keys + self.expansion_modules * self.module_keys


@dataclass(frozen=True, slots=True)
class PhoneAccount:
    """A further SIP account of a device (slot 2 and up), with its user's names."""

    slot: int
    extension: str
    active: bool
    sip_username: str
    sip_password_sealed: str
    label: str | None
    user_display_name: str | None
    main_extension: str | None
    cli_custom: str | None
    user_id: int | None = None


@dataclass(slots=True)
class PhoneDevice:
    """Everything needed to render one device's files (secrets included: phone side only).

    Treat as immutable (changes make a new one with dataclasses.replace). Not declared frozen
    only because a frozen dataclass's __init__ costs a third of loading 100,000 devices.
    """

    id: int
    mac: str  # 12 lowercase hex digits
    extension: str
    model: ModelInfo
    active: bool
    sip_username: str
    sip_password_sealed: str  # encrypted; the resolver opens it only to render
    provisioning_password_sealed: str | None
    label: str | None
    user_display_name: str | None
    main_extension: str | None
    cli_custom: str | None
    site_id: int | None
    updated_at: datetime
    user_id: int | None = None
    revision: int = 0  # new at each (re)load or change of this device: in the render-cache key
    firmware: str | None = None  # the version last reported (last_seen_firmware)
    accounts: tuple[PhoneAccount, ...] = ()  # slots 2 and up, by slot
    keys: tuple[PhoneKey, ...] = ()  # the effective keys (the user's, the device's over them)


@dataclass(frozen=True, slots=True)
class PhonebookEntry:
    """One user as the phone book lists them."""

    name: str
    extension: str
    mobile: str | None = None  # the Team App GSM number, where the user's settings allow


@dataclass(frozen=True, slots=True)
class Phonebook:
    """The company phone book: every user, by name. `revision` changes with any entry."""

    revision: int
    entries: tuple[PhonebookEntry, ...]


class PhoneDirectory(Protocol):
    """What the resolver needs to know, answered from memory (synchronous: the resolver
    answers a storm's GETs without a task; see provisioning/memory.py for how it is kept
    current)."""

    def device_by_mac(self, mac: str) -> PhoneDevice | None:
        """The device with this MAC (12 lowercase hex digits), or None."""
        ...

    def models(self) -> tuple[ModelInfo, ...]:
        """The model catalogue."""
        ...

    def model_for_family(self, vendor: str, family: str) -> ModelInfo | None:
        """The first catalogue model of `vendor` whose family is `family` (any case)."""
        ...

    def platform(self) -> PlatformSettings:
        """The effective platform settings."""
        ...

    def phonebook(self) -> Phonebook:
        """The company phone book (its revision is in the phone book's render-cache key)."""
        ...

    def sites(self) -> tuple[policy.Site, ...]:
        """The configured sites (empty: the implicit default site applies)."""
        ...

    def revision(self) -> int:
        """A number that changes whenever the platform settings or sites change (a part of
        the render-cache key)."""
        ...

    def note_lock(self, device_id: int, site_id: int) -> None:
        """A device was just bound to a site (first boot): effective at once, in this process."""
        ...


def policy_site(row: Site) -> policy.Site:
    """A stored site as the policy sees it."""
    return policy.Site(
        row.id, row.name, netaddr.IPSet(row.networks), row.policy, row.lock_on_first_boot
    )
