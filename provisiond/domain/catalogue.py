"""The model catalogue as data: what each phone model is, asks for and can carry.

A `CatalogueModel` comes from ``phone_templates/<vendor>/models.toml`` (loaded and checked by
`provisiond.provisioning.catalogue`); start-up writes the catalogue to the database
(`provisiond.storage.catalogue_sync`), where devices reference models by id. Pure values and
checks here; no I/O.

`family` is what the vendor's file names and User-Agents carry for the model (Yealink ``66``
for the T46S, Polycom ``VVX_400``, Cisco MPP ``8841-3PCC``): the resolver finds a model file's
model by it. `series` is the product family an administrator knows (``T4xS``, ``VVX``, ``MPP
88xx``). `boot` is the boot sequence as the vendor documents it: path templates in request
order (`boot_paths` fills them in).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "AUTH_METHODS",
    "PROTOCOLS",
    "CatalogueModel",
    "account_limit_problem",
    "boot_paths",
    "mac_forms",
    "model_id",
    "user_agent",
]

PROTOCOLS = ("tftp", "http", "https")
AUTH_METHODS = ("digest", "certificate")
_ID_SAFE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """One phone model of the catalogue.

    `accounts` is how many SIP accounts the model registers (a DECT base: one per handset it
    can register; an ATA: one per port); `line_keys` its programmable line/function keys
    without expansion modules; `expansion_modules` how many modules it takes (0 = none) and
    `module_keys` how many keys one module has (all pages);
    `handsets` the handsets a DECT base registers (0 for everything else). `protocols` are the
    transports it provisions over, `auth` the ways it proves itself to a provisioning server
    (HTTP digest, a factory client certificate). `user_agent` is the User-Agent its firmware
    sends, as a template (``{mac_colon}``, ...; "" when it sends none, e.g. TFTP only).
    """

    id: str
    vendor: str
    name: str
    family: str
    series: str
    boot: tuple[str, ...]
    protocols: tuple[str, ...]
    auth: tuple[str, ...]
    accounts: int
    line_keys: int
    expansion_modules: int
    handsets: int
    user_agent: str
    dect: bool = False
    ata: bool = False
    module_keys: int = 0  # programmable keys of one expansion module (0: none or unknown)


def model_id(vendor: str, name: str) -> str:
    """The default catalogue id: ``<vendor prefix>-<name>`` lowercased, runs of other
    characters as one ``-`` (``yealink-t46s``, ``snom-d785``)."""
    prefix = vendor.split("_", 1)[0]
    return f"{prefix}-{_ID_SAFE.sub('-', name.lower()).strip('-')}"


def mac_forms(mac: str) -> dict[str, str]:
    """The MAC placeholders of boot and User-Agent templates, for 12 hex digits."""
    pairs = [mac[i : i + 2] for i in range(0, 12, 2)]
    return {
        "mac": mac.lower(),
        "MAC": mac.upper(),
        "mac_colon": ":".join(pairs).lower(),
        "MAC_colon": ":".join(pairs).upper(),
        "MAC_dash": "-".join(pairs).upper(),
    }


def _fill(template: str, model: CatalogueModel, mac: str, firmware: str) -> str:
    values: Mapping[str, str] = {
        **mac_forms(mac),
        "name": model.name,
        "family": model.family,
        "firmware": firmware,
    }
    return template.format_map(values)


def boot_paths(model: CatalogueModel, mac: str) -> tuple[str, ...]:
    """The model's boot sequence for the device with `mac` (12 hex digits)."""
    return tuple(_fill(path, model, mac, "") for path in model.boot)


def user_agent(model: CatalogueModel, mac: str, firmware: str = "1.0.0.1") -> str | None:
    """The User-Agent the model sends for `mac`, None when it sends none."""
    return _fill(model.user_agent, model, mac, firmware) if model.user_agent else None


def account_limit_problem(slot: int, accounts: int, model: str) -> str | None:
    """Why account `slot` (1-based) cannot exist on a model with `accounts`, or None."""
    if slot < 1:
        return f"account slots start at 1, not {slot}"
    if slot > accounts:
        noun = "account" if accounts == 1 else "accounts"
        return f"{model} carries {accounts} SIP {noun}; slot {slot} is beyond it"
    return None
