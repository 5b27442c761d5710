"""Who may have which phone file: the access policy of DESIGN.md section 5, as pure functions.

Files fall in three classes:
- *shared* (common and model files, firmware): no secrets, served to anyone not banned;
- *boot* (per-MAC files without secrets): served only inside a site's networks, to the
  device's own site, with the same proof as the device's files: a boot file answered without
  proof where an unknown MAC gets a challenge would tell which MACs exist;
- *device* (per-MAC files with SIP secrets, and per-device uploads): inside a site's networks,
  with the proof the site's policy asks for: nothing more (`open`), HTTP digest credentials of
  that device (`digest`), or an HTTPS client certificate naming that MAC (`certificate`).

With no site configured, provisiond behaves as one implicit `open` site over the private,
loopback and link-local ranges, so a fresh install's phones boot with no set-up while nothing
with a secret is ever served to the internet.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import netaddr

POLICIES = ("open", "digest", "certificate")
DEFAULT_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)


class FileClass(enum.Enum):
    """How sensitive a requested file is."""

    SHARED = "shared"
    BOOT = "boot"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class Site:
    """A site as the policy sees it."""

    id: int | None  # None for the implicit default site
    name: str
    networks: netaddr.IPSet
    policy: str
    lock_on_first_boot: bool = False


@functools.cache
def default_site() -> Site:
    """The implicit site of an install with no site configured (built once: an IPSet is
    costly to build, and this is asked on every per-device request)."""
    return Site(None, "default", netaddr.IPSet(DEFAULT_NETWORKS), "open")


def site_for(ip: str, sites: tuple[Site, ...]) -> Site | None:
    """The first site whose networks hold `ip` (the implicit default when none is configured)."""
    try:
        address = netaddr.IPAddress(ip)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None
    if address.version == 6 and address.is_ipv4_mapped():
        address = address.ipv4()
    for site in sites or (default_site(),):
        if address in site.networks:
            return site
    return None


class Verdict(enum.Enum):
    """The policy's answer."""

    ALLOW = "allow"
    OUTSIDE = "outside"  # no site holds the source address
    LOCKED = "locked"  # the device is locked to another site
    NEED_DIGEST = "need_digest"  # digest credentials missing or wrong
    NEED_CERTIFICATE = "need_certificate"  # no client certificate naming this MAC
    WRONG_TRANSPORT = "wrong_transport"  # e.g. TFTP cannot carry the proof the site needs


@dataclass(frozen=True, slots=True)
class Proof:
    """What the request brought."""

    protocol: str  # "http", "https", "tftp"
    digest_ok: bool = False
    certificate_macs: frozenset[str] = frozenset()


def decide(
    file_class: FileClass,
    *,
    site: Site | None,
    mac: str | None,
    proof: Proof,
    device_site_id: int | None = None,
) -> Verdict:
    """May this request have this file? `mac` is the requested device's MAC; `device_site_id`
    the site the device belongs to (explicitly, or where it first booted), if any."""
    if file_class is FileClass.SHARED:
        return Verdict.ALLOW
    if site is None:
        return Verdict.OUTSIDE
    if device_site_id is not None and site.id != device_site_id:
        return Verdict.LOCKED
    if site.policy == "open":
        return Verdict.ALLOW
    if site.policy == "digest":
        if proof.protocol == "tftp":
            return Verdict.WRONG_TRANSPORT
        return Verdict.ALLOW if proof.digest_ok else Verdict.NEED_DIGEST
    if proof.protocol != "https":
        return Verdict.WRONG_TRANSPORT
    return Verdict.ALLOW if mac in proof.certificate_macs else Verdict.NEED_CERTIFICATE


def squash(text: str) -> str:
    """A model string as compared: lowercase letters and digits only."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def model_matches(ua_model: str, *, name: str, family: str) -> bool:
    """Does a User-Agent's model string denote the catalogue model (name or family)?

    Vendors spell models loosely (``SIP-T46S``, ``T46S``, ``VVX_400``, ``SPA-942``), so the
    comparison ignores case, ``-``, ``_`` and spaces; the name may be a suffix of the
    User-Agent's model (``SIP-T46S`` for T46S), the family must match whole.
    """
    seen, named, coded = squash(ua_model), squash(name), squash(family)
    if not seen:
        return False
    # A family code is often a few digits (Yealink "53" is the T19P E2): as a suffix it would
    # claim every model whose name ends in them (the T53).
    return bool(named and seen.endswith(named)) or seen == coded
