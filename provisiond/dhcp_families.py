"""The phone families `provisiond dhcp` matches in DHCP: by MAC prefix (OUI) or vendor class.

Data for provisiond.dhcp: every OUI is registered to the maker in the IEEE registry
(tests/unit/test_dhcp.py checks them against netaddr's copy); vendor classes are prefixes of
option 60, listed only where a vendor document gives them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAMILIES", "PhoneFamily"]


@dataclass(frozen=True, slots=True)
class PhoneFamily:
    """Phones recognised alike in DHCP: by MAC prefix or by the vendor class they send.

    Every OUI is registered to the maker in the IEEE registry (tests/unit/test_dhcp.py checks
    them against netaddr's copy). Vendor classes are prefixes of option 60, listed only where a
    vendor document gives them.
    """

    key: str  # in tag and class names
    title: str
    vendor_ids: tuple[str, ...]  # phone_templates/<id>
    ouis: tuple[str, ...]  # "00:15:65"
    vendor_classes: tuple[str, ...] = ()
    tftp_only: bool = False  # the first file comes over TFTP: option 66 names the TFTP server


FAMILIES: tuple[PhoneFamily, ...] = (
    PhoneFamily(
        "yealink",
        "Yealink",
        ("yealink",),
        ("00:15:65", "24:9A:D8", "44:DB:D2", "80:5E:0C", "80:5E:C0", "C4:FC:22"),
    ),
    # Polycom's option 60 is binary (RFC 3925 layout, enterprise 13885): matched by OUI only.
    PhoneFamily("polycom", "Poly/Polycom", ("polycom",), ("00:04:F2", "48:25:67", "64:16:7F")),
    # Cisco registers over a thousand OUIs: its phones are matched by the vendor class they
    # send ("Cisco Systems, Inc. IP Phone CP-7960G", reference/vendors.md). SPA/MPP phones that
    # send another class need a MAC match added by hand (docs/deployment.md).
    PhoneFamily(
        "cisco",
        "Cisco",
        ("cisco_sep", "cisco_spa"),
        (),
        vendor_classes=("Cisco Systems, Inc. IP Phone",),
        tftp_only=True,
    ),
    PhoneFamily(
        "grandstream", "Grandstream", ("grandstream",), ("00:0B:82", "C0:74:AD", "EC:74:D7")
    ),
    PhoneFamily("snom", "Snom", ("snom",), ("00:04:13",)),
    PhoneFamily("fanvil", "Fanvil", ("fanvil",), ("0C:38:3E",)),
    # 00:01:E3 (Siemens AG, on Siemens-era Gigaset phones) is left out: other Siemens and
    # Unify equipment shares it.
    PhoneFamily(
        "gigaset", "Gigaset", ("gigaset",), ("00:21:04", "14:B3:70", "58:9E:C6", "7C:2F:80")
    ),
    # "AastraIPPhone6731i" etc.: Mitel's MiVoice Office 400 documentation lists these classes.
    PhoneFamily(
        "aastra",
        "Aastra / Mitel",
        ("aastra",),
        ("00:08:5D", "00:10:BC", "14:00:E9"),
        vendor_classes=("AastraIPPhone",),
    ),
    PhoneFamily("panasonic", "Panasonic", ("panasonic",), ("00:80:F0", "08:00:23", "BC:C3:42")),
    PhoneFamily("htek", "Htek", ("htek",), ("00:1F:C1",)),  # registered as Hanlong Technology
    # ALE's own examples (3C:28:A6) and its registrations under ALE International.
    PhoneFamily("alcatel", "Alcatel-Lucent Enterprise", ("alcatel",), ("3C:28:A6", "00:80:9F")),
    # The J100/96x1 admin guides list these OUIs among others registered to older owners
    # (Lucent, Tenovis); only the ones registered to Avaya itself are matched.
    PhoneFamily("avaya", "Avaya", ("avaya",), ("00:04:0D", "00:1B:4F")),
    PhoneFamily("sangoma", "Sangoma / Digium", ("sangoma",), ("00:0F:D3",)),
    PhoneFamily("obihai", "Obihai / Poly OBi", ("obihai",), ("9C:AD:EF",)),
)
