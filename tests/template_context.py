"""Sample template contexts for the template tests (the shape is docs/templates.md).

`sample_context(kind, ...)` builds exactly the names a file kind provides, with values that
are easy to find in the output (and hard to confuse with each other). `MODELS` is the model
catalogue of docs/templates.md, so a test can say ``model="yealink-t46s"``.
Keep this API stable: every vendor's template tests import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisiond.provisioning.context import time_context
from provisiond.provisioning.timezones import vendor_zone
from provisiond.provisioning.vendors import default_templates_root, load_vendor

__all__ = ["DEFAULTS", "MODELS", "PROVISIONING_BASE_URL", "catalogue_model", "sample_context"]

PROVISIONING_BASE_URL = "http://192.0.2.10:8080/"

# Distinct values so an assertion can tell which field landed under which key.
DEFAULTS: dict[str, str] = {
    "mac": "001565aabbcc",
    "extension": "201",
    "auth_username": "auth201",
    "password": "Xk7&pQ2z9w",
    "cli": "299",
    "registrar": "pbx.example.net",
    "ntp_server": "ntp.example.net",
    "timezone": "Europe/Rome",
    "language": "it",
    "prov_username": "provuser",
    "prov_password": "provPass1",
}

_CATALOGUE = """
yealink-t41s yealink T41S 68
yealink-t42s yealink T42S 67
yealink-t46s yealink T46S 66
yealink-t48s yealink T48S 65
yealink-t46g yealink T46G 28
yealink-t48g yealink T48G 35
yealink-t53 yealink T53 95
yealink-t53w yealink T53W 95
yealink-t54w yealink T54W 96
yealink-t57w yealink T57W 97
yealink-t56a yealink T56A 58
yealink-w80b yealink W80B 103
polycom-vvx-400 polycom VVX_400 VVX_400
polycom-vvx-410 polycom VVX_410 VVX_410
polycom-vvx-450 polycom VVX_450 VVX_450
polycom-spip-335 polycom SoundPoint_IP_335 SPIP_335
polycom-spip-550 polycom SoundPoint_IP_550 SPIP_550
cisco-spa504g cisco_spa SPA504G spa504G
cisco-spa508g cisco_spa SPA508G spa508G
cisco-spa525g2 cisco_spa SPA525G2 spa525G2
cisco-spa942 cisco_spa SPA942 spa942
cisco-cp-7841-3pcc cisco_spa CP-7841-3PCC 7841-3PCC
cisco-cp-8841-3pcc cisco_spa CP-8841-3PCC 8841-3PCC
cisco-cp-7940 cisco_sep CP-7940G 79x0
cisco-cp-7960 cisco_sep CP-7960G 79x0
cisco-cp-7942 cisco_sep CP-7942G sep
cisco-cp-7945 cisco_sep CP-7945G sep
cisco-cp-8845 cisco_sep CP-8845 sep
grandstream-gxp2135 grandstream GXP2135 gxp2135
grandstream-gxp2170 grandstream GXP2170 gxp2170
grandstream-grp2612 grandstream GRP2612 grp2612
grandstream-grp2614 grandstream GRP2614 grp2614
snom-d715 snom D715 D715
snom-d735 snom D735 D735
snom-d785 snom D785 D785
snom-d865 snom D865 D865
fanvil-x3s fanvil X3S X3S
fanvil-x4 fanvil X4 X4
fanvil-x6u fanvil X6U X6U
gigaset-n670 gigaset N670_IP_PRO N670
gigaset-n870 gigaset N870_IP_PRO N870
aastra-6731i aastra 6731i 6731i
aastra-6757i aastra 6757i 6757i
aastra-6869i aastra 6869i 6869i
mitel-6940 aastra 6940 6940
panasonic-kx-hdv130 panasonic KX-HDV130 KX-HDV130
panasonic-kx-hdv230 panasonic KX-HDV230 KX-HDV230
panasonic-kx-tgp600 panasonic KX-TGP600 KX-TGP600
panasonic-kx-ut113 panasonic KX-UT113 KX-UT113
panasonic-kx-ut133 panasonic KX-UT133 KX-UT133
htek-uc924 htek UC924 0012
htek-uc926 htek UC926 0010
"""


def _parse_catalogue() -> dict[str, dict[str, str]]:
    """The catalogue table as {model id: model dict} (underscores in names are spaces)."""
    models: dict[str, dict[str, str]] = {}
    for row in _CATALOGUE.split("\n"):
        if row.strip():
            model_id, vendor, name, family = row.split()
            models[model_id] = {
                "id": model_id,
                "vendor": vendor,
                "name": name.replace("_", " "),
                "family": family,
            }
    return models


MODELS: dict[str, dict[str, str]] = _parse_catalogue()

_KINDS = ("device", "device_boot", "common")
_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


def catalogue_model(model_id: str) -> dict[str, str]:
    """The catalogue entry for `model_id` (a fresh copy)."""
    return dict(MODELS[model_id])


def sample_context(
    kind: str,
    *,
    display_name: str = "Rossi & <Figli>",
    transport: str = "udp",
    outbound_proxy: str = "",
    firmware_url: str = "",
    model: str | Mapping[str, str] | None = None,
    label: str = "",
    cli: str = DEFAULTS["cli"],
    enabled: bool = True,
    base_url: str = PROVISIONING_BASE_URL,
    prov_username: str = "",
    prov_password: str = "",
    mac: str = DEFAULTS["mac"],
    timezone: str = DEFAULTS["timezone"],
    vendor: str | None = None,
) -> dict[str, Any]:
    """Build the template context a file of `kind` gets (device, device_boot or common).

    `model` is a catalogue id (see `MODELS`) or a model dict; device kinds require one.
    `outbound_proxy`/`firmware_url` empty mean "unset", as the resolver passes them.
    `timezone` is an IANA zone; with `vendor` (an id), `time.zone_name` is that vendor's own
    name for it from its timezones.toml, as the resolver passes it ("" otherwise).
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, not {kind!r}")
    if transport not in _PORTS:
        raise ValueError(f"transport must be one of {tuple(_PORTS)}, not {transport!r}")
    model_dict = catalogue_model(model) if isinstance(model, str) else model
    if model_dict is not None:
        model_dict = dict(model_dict)
    context: dict[str, Any] = {
        "model": model_dict,
        "server": _server(transport, outbound_proxy),
        "provisioning": _provisioning(base_url, prov_username, prov_password),
        "firmware": {"url": firmware_url, "version": "1.2.3.4" if firmware_url else ""},
        "time": time_context(DEFAULTS["ntp_server"], timezone, _zone_name(vendor, timezone)),
        "language": DEFAULTS["language"],
    }
    if kind == "common":
        return context
    if model_dict is None:
        raise ValueError(f"kind {kind} needs a model (a catalogue id such as 'yealink-t46s')")
    context["device"] = _device(mac, model_dict["id"])
    if kind == "device":
        context["line"] = {
            "enabled": enabled,
            "extension": DEFAULTS["extension"],
            "auth_username": DEFAULTS["auth_username"],
            "password": DEFAULTS["password"],
            "display_name": display_name,
            "cli": cli,
            "label": label,
        }
        context["user"] = {"display_name": display_name, "main_extension": DEFAULTS["extension"]}
    return context


def _zone_name(vendor: str | None, timezone: str) -> str:
    """The vendor's own name for `timezone`, read by the real loader ("" without a vendor)."""
    if vendor is None:
        return ""
    return vendor_zone(load_vendor(default_templates_root() / vendor / "vendor.toml"), timezone)


def _server(transport: str, outbound_proxy: str) -> dict[str, Any]:
    """The SIP server block; the outbound proxy port follows the transport."""
    return {
        "registrar": DEFAULTS["registrar"],
        "port": _PORTS[transport],
        "transport": transport,
        "outbound_proxy": outbound_proxy,
        "outbound_proxy_port": _PORTS[transport],
    }


def _provisioning(base_url: str, username: str, password: str) -> dict[str, Any]:
    """The provisioning block (credentials empty unless given)."""
    return {
        "base_url": base_url,
        "http_url": PROVISIONING_BASE_URL,
        "tftp_host": "192.0.2.10",
        "tftp_port": 69,
        "username": username,
        "password": password,
    }


def _device(mac: str, model_id: str) -> dict[str, str]:
    """The device block with the MAC in every notation the vendors use."""
    pairs = [mac[i : i + 2] for i in range(0, 12, 2)]
    return {
        "mac": mac,
        "mac_upper": mac.upper(),
        "mac_colon": ":".join(pairs),
        "mac_dash": "-".join(pairs).upper(),
        "extension": DEFAULTS["extension"],
        "model": model_id,
    }
