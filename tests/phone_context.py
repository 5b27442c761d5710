"""Template contexts for the template tests, built by the server's own code.

`phone_context(vendor, kind, ...)` makes a realistic `PhoneDevice` (a device of a catalogue
model, with its user) and `PlatformSettings`, then builds the context through
`provisiond.provisioning.context.RenderInputs.context`, the resolver's own path: the SIP
password and the device's provisioning credentials (user name = its MAC) only for device
files, the URLs from `provisiond.app.endpoints`. A template branch that no real context
can reach therefore stays unreached here too.

`catalogue()` is the model catalogue as start-up writes it (read from the templates'
models.toml files), so a test can say ``model="yealink-t46s"``. `accounts=N` gives the device
accounts 2..N as well, each with the distinct values of `account_values(slot)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from provisiond.app import endpoints
from provisiond.domain.catalogue import CatalogueModel
from provisiond.domain.identify import FileKind, VendorSpec
from provisiond.domain.keys import PhoneKey
from provisiond.provisioning.catalogue import load_catalogue
from provisiond.provisioning.context import RenderInputs
from provisiond.provisioning.directory import (
    ModelInfo,
    PhoneAccount,
    Phonebook,
    PhonebookEntry,
    PhoneDevice,
)
from provisiond.provisioning.vendors import default_templates_root, load_vendors
from provisiond.settings import PlatformSettings, Settings, SipSettings

__all__ = [
    "DEFAULTS",
    "FIRMWARE_VERSION",
    "PROVISIONING_BASE_URL",
    "SAMPLE_KEYS",
    "SAMPLE_PHONEBOOK",
    "account_values",
    "catalogue",
    "catalogue_models",
    "phone_context",
    "vendors",
]

PROVISIONING_BASE_URL = "http://192.0.2.10:8080/"
FIRMWARE_VERSION = "1.2.3.4"

# Distinct values so an assertion can tell which field landed under which key.
DEFAULTS: dict[str, str] = {
    "mac": "001565aabbcc",
    "extension": "201",
    "auth_username": "auth201",
    "password": "Xk7&pQ2z9w",
    "cli": "299",  # the user's custom CLI: the presented number
    "display_name": "Rossi & <Figli>",
    "registrar": "pbx.example.net",
    "ntp_server": "ntp.example.net",
    "timezone": "Europe/Rome",
    "language": "it",
    "prov_password": "provPass1",
}
_TLS_PORT = 5061  # what an administrator configures for SIP over TLS


@cache
def vendors() -> dict[str, VendorSpec]:
    """Every vendor of the repository's templates, by id, as `load_vendors` reads them."""
    return {spec.id: spec for spec in load_vendors(default_templates_root())}


@cache
def catalogue_models() -> dict[str, CatalogueModel]:
    """The model catalogue of the repository's models.toml files, by model id."""
    root = default_templates_root()
    return {m.id: m for m in load_catalogue(root, tuple(vendors().values()))}


@cache
def catalogue() -> dict[str, ModelInfo]:
    """The catalogue as the phone directory holds it, by model id."""
    return {
        m.id: ModelInfo(
            m.id,
            m.vendor,
            m.name,
            m.family,
            m.series,
            m.accounts,
            m.line_keys,
            m.expansion_modules,
            m.handsets,
            m.module_keys,
        )
        for m in catalogue_models().values()
    }


# A user's keys as an administrator sets them (the device's user is extension 201): their
# line, a colleague's BLF, a speed dial, a park orbit, DND and a URL.
SAMPLE_KEYS = (
    PhoneKey(1, "line", "1", None),
    PhoneKey(2, "blf", "202", "Anna & <Co>"),
    PhoneKey(3, "speed_dial", "+390612345678", "Reception"),
    PhoneKey(4, "park", "701", None),
    PhoneKey(5, "dnd", "", None),
    PhoneKey(6, "url", "https://intranet.example.net/a?b=1&c=2", "Intranet"),
)

# A phone book with everything a format must escape: &, <, >, quotes, Italian accents.
SAMPLE_PHONEBOOK = (
    PhonebookEntry("Anna Bianchi & <Co>", "202", "+393331234567"),
    PhonebookEntry('Niccolò "Nico" D\'Àmbrosio', "203", None),
    PhonebookEntry("Rossi & <Figli>", "201", None),
)


def account_values(slot: int) -> dict[str, str]:
    """Distinct values of account `slot` (2 and up) of the test device; its user's display
    name needs escaping in XML like the first account's."""
    return {
        "extension": f"3{slot:03d}",
        "auth_username": f"auth3{slot:03d}",
        "password": f"Pw{slot}&<q>{slot}",
        "display_name": f"Bianchi {slot} & <Co>",
        "cli": f"4{slot:03d}",
    }


def phone_context(
    vendor: str | VendorSpec,
    kind: FileKind | str,
    *,
    model: str | None = None,
    display_name: str | None = DEFAULTS["display_name"],
    cli: str | None = DEFAULTS["cli"],
    label: str | None = None,
    enabled: bool = True,
    mac: str = DEFAULTS["mac"],
    transport: str = "udp",
    port: int | None = None,
    outbound_proxy: str = "",
    firmware_url: str = "",
    firmware_version: str = FIRMWARE_VERSION,
    base_url: str = PROVISIONING_BASE_URL,
    prov_password: str = "",
    timezone: str = DEFAULTS["timezone"],
    ntp_server: str = DEFAULTS["ntp_server"],
    language: str = DEFAULTS["language"],
    accounts: int = 1,
    keys: Sequence[PhoneKey] = (),
    phonebook: Sequence[PhonebookEntry] = (),
) -> dict[str, Any]:
    """The context the resolver gives a file of `kind` of `vendor` (an id or a spec).

    `model` is a catalogue id; device kinds need one (the device's model). `display_name` and
    `cli` are the device user's display name and custom CLI (`display_name=None`: a device
    without a user). `port` defaults to 5061 for TLS, else 5060; `outbound_proxy` may carry
    its own ``:port``. `firmware_version` is offered only with a `firmware_url`.
    `base_url` is the public URL; `prov_password` set gives the device provisioning
    credentials (its MAC as user name), which only device files receive. `keys` are the
    device's effective keys (e.g. `SAMPLE_KEYS`), `phonebook` the entries of a phone book file
    (e.g. `SAMPLE_PHONEBOOK`).
    """
    spec = vendors()[vendor] if isinstance(vendor, str) else vendor
    kind = FileKind(kind)
    info = None if model is None else catalogue()[model]
    platform = PlatformSettings(
        sip=SipSettings(
            registrar=DEFAULTS["registrar"],
            port=port or (_TLS_PORT if transport == "tls" else 5060),
            transport=transport,  # validated by pydantic: udp, tcp or tls
            outbound_proxy=outbound_proxy,
        ),
        ntp_server=ntp_server,
        timezone=timezone,
        language=language,
    )
    device = None
    if kind in (FileKind.DEVICE, FileKind.DEVICE_BOOT):
        if info is None:
            raise ValueError(f"a {kind} file needs a model (a catalogue id)")
        device = _device(info, mac, display_name, cli, label, enabled, prov_password, accounts)
        device.keys = tuple(keys)
    # How phones reach the server when `PROVISIOND_PUBLIC_URL` is `base_url`.
    ends = endpoints(Settings(public_url=base_url, tftp="0.0.0.0:69"))
    inputs = RenderInputs(
        kind=kind,
        vendor=spec,
        template=None,
        platform=platform,
        platform_revision=0,
        model=info,
        device=device,
        firmware=(firmware_url, firmware_version if firmware_url else ""),
        endpoints=ends,
        phonebook=Phonebook(1, tuple(phonebook)) if kind is FileKind.PHONEBOOK else None,
    )
    # The resolver's own path from inputs to context: it decides which file carries which
    # secret; the "sealed" values below open to the test's passwords.
    opened = {_SEALED_SIP: DEFAULTS["password"], _SEALED_PROV: prov_password}
    opened.update({f"sealed-{s}": account_values(s)["password"] for s in range(2, accounts + 1)})
    return inputs.context(opened.__getitem__)


_SEALED_SIP, _SEALED_PROV = "sealed-sip-password", "sealed-provisioning-password"


def _device(
    model: ModelInfo,
    mac: str,
    display_name: str | None,
    cli: str | None,
    label: str | None,
    enabled: bool,
    prov_password: str,
    accounts: int = 1,
) -> PhoneDevice:
    """A device as the directory returns it; its sealed secrets are opened by
    `RenderInputs.context`, as in the resolver."""
    has_user = display_name is not None
    return PhoneDevice(
        id=1,
        mac=mac,
        extension=DEFAULTS["extension"],
        model=model,
        active=enabled,
        sip_username=DEFAULTS["auth_username"],
        sip_password_sealed=_SEALED_SIP,
        provisioning_password_sealed=_SEALED_PROV if prov_password else None,
        label=label or None,
        user_display_name=display_name if has_user else None,
        main_extension=DEFAULTS["extension"] if has_user else None,
        cli_custom=cli if has_user else None,
        site_id=None,
        updated_at=datetime(2027, 1, 1, tzinfo=UTC),
        user_id=1 if has_user else None,
        accounts=tuple(_account(slot) for slot in range(2, accounts + 1)),
    )


def _account(slot: int) -> PhoneAccount:
    values = account_values(slot)
    return PhoneAccount(
        slot=slot,
        extension=values["extension"],
        active=True,
        sip_username=values["auth_username"],
        sip_password_sealed=f"sealed-{slot}",
        label=None,
        user_display_name=values["display_name"],
        main_extension=values["extension"],
        cli_custom=values["cli"],
        user_id=slot,
    )
