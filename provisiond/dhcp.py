"""DHCP configuration that points a site's phones at provisiond (`provisiond dhcp`).

`render_dhcp` prints the provisioning options a site's phones need, for dnsmasq, ISC dhcpd or
Kea, as a file the administrator includes in the DHCP configuration they already have. It
holds no subnet, range or pool: those stay the administrator's. Phones are recognised by the
MAC prefix (OUI) of their maker or by the vendor class (option 60) they send, and only they get
the options; every other client gets nothing from this file.

What each family of phones gets (the vendor descriptions' ``dhcp_options`` decide which):

- 66 (TFTP server name): the provisioning URL; for Cisco, the TFTP server (their first file
  comes over TFTP only; the SPA/MPP profile it holds then moves them to HTTP).
- 150 (Cisco TFTP server list): the TFTP server's IPv4 address (left out for a host name).
- 160 (Polycom, Panasonic) and 114 (Gigaset): the provisioning URL.
- 43 (vendor-encapsulated): never; each vendor lays it out differently and 66 does the job.

The options cannot be scoped to the site's networks from an included file: dnsmasq scopes by
the tags of the administrator's own ``dhcp-range`` lines, ISC by subnet declarations, Kea by
``require-client-classes`` on its subnets. The header names the networks instead, and
docs/deployment.md says where to include the file. Everything here is pure: no I/O, no DNS.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from provisiond.dhcp_families import FAMILIES, PhoneFamily
from provisiond.domain.errors import InvalidInput
from provisiond.domain.identify import VendorSpec

__all__ = [
    "FAMILIES",
    "SERVERS",
    "DhcpError",
    "DhcpOption",
    "DhcpPlan",
    "PhoneFamily",
    "plan_dhcp",
    "render_dhcp",
]

Server = Literal["dnsmasq", "isc", "kea"]
SERVERS: tuple[Server, ...] = ("dnsmasq", "isc", "kea")
PHONE_TFTP_PORT = 69  # phones cannot be told another port


class DhcpError(InvalidInput):
    """The site or the endpoints cannot produce a usable DHCP configuration.

    An InvalidInput, so the CLI reports it like any other refusal (exit code 1).
    """

    code = "dhcp"


HANDLED_OPTIONS = (66, 114, 150, 160)
OPTION_TITLES = {
    66: "TFTP server name",
    114: "URL (Gigaset)",
    150: "TFTP server addresses (Cisco)",
    160: "provisioning server (Polycom, Panasonic)",
}


@dataclass(frozen=True, slots=True)
class DhcpOption:
    """One option to send: text, or a list of IPv4 addresses (option 150)."""

    code: int
    value: str | tuple[ipaddress.IPv4Address, ...]

    @property
    def readable(self) -> str:
        """The value as an administrator reads it."""
        if isinstance(self.value, str):
            return self.value
        return ", ".join(str(address) for address in self.value)

    @property
    def payload(self) -> bytes:
        """The option's bytes on the wire."""
        if isinstance(self.value, str):
            return self.value.encode("ascii")
        return b"".join(address.packed for address in self.value)


@dataclass(frozen=True, slots=True)
class FamilyOptions:
    """The options one family of phones gets."""

    family: PhoneFamily
    options: tuple[DhcpOption, ...]


@dataclass(frozen=True, slots=True)
class DhcpPlan:
    """What to tell which phones, before it is written in a daemon's syntax."""

    site: str
    slug: str  # the site name as it may appear in tag, class and file names
    networks: tuple[ipaddress.IPv4Network, ...]
    ignored_networks: tuple[str, ...]  # IPv6: DHCPv4 options do not apply
    families: tuple[FamilyOptions, ...]
    notes: tuple[str, ...]

    def tag(self, family: PhoneFamily) -> str:
        """The dnsmasq tag / ISC and Kea class name of a family at this site."""
        return f"provisiond-{self.slug}-{family.key}"


# Characters a URL may hold in every daemon's quoted strings: no quote, backslash, comma
# (dnsmasq and Kea split on commas), space or control character.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&()*+;=%]+")
_HOST_NAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PUBLIC_URL_HINT = "set PROVISIOND_PUBLIC_URL to the address phones use (docs/deployment.md)"


def _check_reachable(host: str, what: str) -> None:
    """Refuse hosts no phone can reach: loopback, the wildcard, link-local."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise DhcpError(f"{what} names {host}, which phones cannot reach: {_PUBLIC_URL_HINT}")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if address.is_loopback or address.is_unspecified or address.is_link_local:
        raise DhcpError(f"{what} names {host}, which phones cannot reach: {_PUBLIC_URL_HINT}")


def check_http_url(url: str) -> str:
    """The provisioning URL phones are given: http(s), a reachable host, safe characters."""
    if not _URL_CHARS.fullmatch(url):
        raise DhcpError(f"the provisioning URL {url!r} holds characters DHCP files cannot quote")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DhcpError(f"the provisioning URL {url!r} must be http://host/... or https://...")
    _check_reachable(parts.hostname, "the provisioning URL")
    return url


def check_tftp_host(host: str) -> str | ipaddress.IPv4Address:
    """The TFTP server phones are given: an IPv4 address (also usable in 150) or a host name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            raise DhcpError(f"the TFTP host {host!r} is not a host name or address") from None
        _check_reachable(host, "the TFTP host")
        return host
    _check_reachable(host, "the TFTP host")
    if not isinstance(address, ipaddress.IPv4Address):
        raise DhcpError(f"the TFTP host {host} is IPv6: DHCPv4 phones need IPv4 or a name")
    return address


def _split_networks(
    networks: Sequence[str],
) -> tuple[tuple[ipaddress.IPv4Network, ...], tuple[str, ...]]:
    v4: list[ipaddress.IPv4Network] = []
    v6: list[str] = []
    for text in networks:
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError as exc:
            raise DhcpError(f"{text!r} is not a network") from exc
        if isinstance(network, ipaddress.IPv4Network):
            v4.append(network)
        else:
            v6.append(str(network))
    return tuple(v4), tuple(v6)


def site_slug(name: str) -> str:
    """`name` reduced to lowercase letters, digits and dashes (never empty)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "site"


def _family_options(
    family: PhoneFamily, codes: set[int], url: str, tftp: str | ipaddress.IPv4Address
) -> tuple[DhcpOption, ...]:
    options: list[DhcpOption] = []
    for code in sorted(codes & set(HANDLED_OPTIONS)):
        if code == 66:
            options.append(DhcpOption(66, str(tftp) if family.tftp_only else url))
        elif code == 150:
            if isinstance(tftp, ipaddress.IPv4Address):
                options.append(DhcpOption(150, (tftp,)))
        else:  # 114, 160: URL options
            options.append(DhcpOption(code, url))
    return tuple(options)


def _notes(
    vendors: Sequence[VendorSpec], tftp: str | ipaddress.IPv4Address, tftp_port: int
) -> list[str]:
    notes = []
    with_43 = sorted(v.title for v in vendors if 43 in v.dhcp_options)
    if with_43:
        notes.append(
            f"Option 43 is not generated ({', '.join(with_43)}): each vendor lays it out "
            "differently, and option 66 already points the phones here."
        )
    cisco = any(150 in v.dhcp_options for v in vendors)
    if cisco and not isinstance(tftp, ipaddress.IPv4Address):
        notes.append(
            f"Option 150 is left out: it lists IPv4 addresses and the TFTP host is {tftp}; "
            "Cisco phones read the name in option 66 instead."
        )
    if tftp_port != PHONE_TFTP_PORT:
        notes.append(
            f"provisiond's TFTP listens on port {tftp_port}, but phones always use port 69: "
            "set PROVISIOND_TFTP=0.0.0.0:69 in production."
        )
    known = {vendor_id for family in FAMILIES for vendor_id in family.vendor_ids}
    for vendor in vendors:
        if vendor.id not in known:
            notes.append(f"No DHCP match is known for {vendor.title}: its phones are left out.")
        elif not set(vendor.dhcp_options) & set(HANDLED_OPTIONS):
            wanted = ", ".join(str(code) for code in vendor.dhcp_options)
            notes.append(
                f"{vendor.title} phones read option(s) {wanted}, which are not generated: "
                f"set them by hand (phone_templates/{vendor.id}/README.md says how)."
            )
    return notes


def plan_dhcp(
    site_name: str,
    networks: Sequence[str],
    *,
    http_url: str,
    tftp_host: str,
    vendors: Sequence[VendorSpec],
    tftp_port: int = PHONE_TFTP_PORT,
) -> DhcpPlan:
    """Decide which phones get which options; raises DhcpError on unusable input."""
    url = check_http_url(http_url)
    tftp = check_tftp_host(tftp_host)
    v4, v6 = _split_networks(networks)
    if not v4:
        raise DhcpError(f"site {site_name!r} has no IPv4 network: DHCPv4 options do not apply")
    codes_by_vendor = {vendor.id: set(vendor.dhcp_options) for vendor in vendors}
    families = []
    for family in FAMILIES:
        present = [codes_by_vendor[i] for i in family.vendor_ids if i in codes_by_vendor]
        codes = set().union(*present) if present else set()
        options = _family_options(family, codes, url, tftp)
        if options:
            families.append(FamilyOptions(family, options))
    return DhcpPlan(
        site=site_name,
        slug=site_slug(site_name),
        networks=v4,
        ignored_networks=v6,
        families=tuple(families),
        notes=tuple(_notes(vendors, tftp, tftp_port)),
    )


# -- rendering ------------------------------------------------------------------------------

HEADER_WIDTH = 96

# How to include the file: a sentence, then the line to add (shown as is, never wrapped).
_INCLUDE_HOW: dict[Server, tuple[str, str]] = {
    "dnsmasq": (
        "Save it as /etc/dnsmasq.d/provisiond-{slug}.conf (Debian's dnsmasq reads that "
        "directory), or name it in dnsmasq.conf:",
        "conf-file=/etc/dnsmasq.d/provisiond-{slug}.conf",
    ),
    "isc": (
        "Save it as /etc/dhcp/provisiond-{slug}.conf and include it at the top level of "
        "dhcpd.conf, outside any subnet:",
        'include "/etc/dhcp/provisiond-{slug}.conf";',
    ),
    "kea": (
        'Save it as /etc/kea/provisiond-{slug}.json and include it inside the "Dhcp4" map of '
        'kea-dhcp4.conf, followed by a comma. If "Dhcp4" already has "client-classes", add '
        "these entries to that list instead. Kea 2.2 prefers an option 66 set on a subnet or "
        "pool to a class's: remove it there.",
        '<?include "/etc/kea/provisiond-{slug}.json"?>,',
    ),
}


def _wrap(text: str) -> list[str]:
    # Never split a file name or an option name at its hyphens.
    return textwrap.wrap(text, HEADER_WIDTH, break_long_words=False, break_on_hyphens=False)


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _header(server: Server, plan: DhcpPlan, comment: str) -> str:
    site = _printable(plan.site)
    how, literal = _INCLUDE_HOW[server]
    networks = ", ".join(str(n) for n in plan.networks)
    paragraphs: list[list[str]] = [
        [
            f'provisiond: DHCP options that point the phones of site "{site}" at provisiond.',
            f"Generated by: provisiond dhcp --server {server} --site {shlex.quote(site)}",
        ],
        _wrap(
            f"Site networks: {networks}. Include this file only in the configuration that "
            "serves them: it holds no subnet, range or pool. Phones are matched by MAC prefix "
            "(OUI) or vendor class (option 60); other clients get nothing from it."
        ),
        [
            *_wrap(how.format(slug=plan.slug)),
            "    " + literal.format(slug=plan.slug),
        ],
    ]
    notes = list(plan.notes)
    if plan.ignored_networks:
        left_out = ", ".join(plan.ignored_networks)
        notes.insert(0, f"IPv6 networks left out (DHCPv4 only): {left_out}.")
    paragraphs.extend(_wrap(note) for note in notes)
    lines = [line for paragraph in paragraphs for line in [*paragraph, ""]][:-1]
    return "".join(f"{comment} {line}".rstrip() + "\n" for line in lines)


def _render_dnsmasq(plan: DhcpPlan) -> str:
    out = [_header("dnsmasq", plan, "#")]
    for entry in plan.families:
        tag = plan.tag(entry.family)
        out.append(f"\n# {entry.family.title}\n")
        out.extend(f"dhcp-mac=set:{tag},{oui}:*:*:*\n" for oui in entry.family.ouis)
        out.extend(f'dhcp-vendorclass=set:{tag},"{c}"\n' for c in entry.family.vendor_classes)
        for option in entry.options:
            value = f'"{option.value}"' if isinstance(option.value, str) else option.readable
            out.append(f"dhcp-option=tag:{tag},{option.code},{value}\n")
    return "".join(out)


# ISC knows option 66 as tftp-server-name; the others get names of our own.
_ISC_OPTIONS = {
    66: ("tftp-server-name", ""),
    114: ("provisiond-url-114", "text"),
    150: ("provisiond-tftp-servers", "array of ip-address"),
    160: ("provisiond-url-160", "text"),
}


def _render_isc(plan: DhcpPlan) -> str:
    out = [_header("isc", plan, "#"), "\n"]
    used = sorted({o.code for entry in plan.families for o in entry.options})
    for code in used:
        name, kind = _ISC_OPTIONS[code]
        if kind:
            out.append(f"option {name} code {code} = {kind};\n")
    for entry in plan.families:
        family = entry.family
        tests = [f"substring(hardware, 1, 3) = {oui.lower()}" for oui in family.ouis]
        tests += [
            f'substring(option vendor-class-identifier, 0, {len(c)}) = "{c}"'
            for c in family.vendor_classes
        ]
        out.append(f'\n# {family.title}\nclass "{plan.tag(family)}" {{\n')
        out.append("    match if " + "\n        or ".join(tests) + ";\n")
        for option in entry.options:
            name = _ISC_OPTIONS[option.code][0]
            value = f'"{option.value}"' if isinstance(option.value, str) else option.readable
            out.append(f"    option {name} {value};\n")
        out.append("}\n")
    return "".join(out)


def _kea_option(option: DhcpOption) -> dict[str, object]:
    if option.code == 66:
        return {"name": "tftp-server-name", "data": option.readable}
    # By code and in hex: Kea versions disagree on which of 114/150/160 they define (2.2 knows
    # 114 and refuses a redefinition), and raw bytes need no definition at all.
    return {
        "code": option.code,
        "csv-format": False,
        "data": option.payload.hex().upper(),
        "comment": f"option {option.code}, {OPTION_TITLES[option.code]}: {option.readable}",
    }


def _render_kea(plan: DhcpPlan) -> str:
    classes = []
    for entry in plan.families:
        family = entry.family
        tests = [f"substring(pkt4.mac, 0, 3) == 0x{oui.replace(':', '')}" for oui in family.ouis]
        tests += [f"substring(option[60].hex, 0, {len(c)}) == '{c}'" for c in family.vendor_classes]
        classes.append(
            {
                "name": plan.tag(family),
                "comment": family.title,
                "test": " or ".join(tests),
                "option-data": [_kea_option(option) for option in entry.options],
            }
        )
    body = json.dumps(classes, indent=4)
    return _header("kea", plan, "//") + f'"client-classes": {body}\n'


_RENDERERS: dict[Server, Callable[[DhcpPlan], str]] = {
    "dnsmasq": _render_dnsmasq,
    "isc": _render_isc,
    "kea": _render_kea,
}


def render_dhcp(
    server: Server,
    site_name: str,
    networks: Sequence[str],
    *,
    http_url: str,
    tftp_host: str,
    vendors: Sequence[VendorSpec],
    tftp_port: int = PHONE_TFTP_PORT,
) -> str:
    """The provisioning options of one site in `server`'s syntax, ready to include.

    `http_url` and `tftp_host` are how phones reach us (provisiond.app.endpoints); `vendors`
    are the loaded vendor descriptions, whose ``dhcp_options`` say which options each family
    reads. Raises DhcpError for an unknown server, an unreachable endpoint (loopback: set
    PROVISIOND_PUBLIC_URL) or a site without IPv4 networks.
    """
    if server not in _RENDERERS:
        raise DhcpError(f"unknown DHCP server {server!r}: one of {', '.join(SERVERS)}")
    plan = plan_dhcp(
        site_name,
        networks,
        http_url=http_url,
        tftp_host=tftp_host,
        vendors=vendors,
        tftp_port=tftp_port,
    )
    return _RENDERERS[server](plan)
