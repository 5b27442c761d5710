"""Which Event (and body) makes a phone re-read its configuration, or reboot.

The vendor descriptions (``phone_templates/<vendor>/vendor.toml``, ``resync_event``) name the
event that makes a phone fetch its files *without* rebooting. `resync_event` turns that into
the Event header for a resync or a reboot; `notify_body` gives the body the event needs.

Sources (reference/vendors.md and the vendors' guides):

- ``check-sync`` (Yealink, Polycom, Fanvil, Aastra, Htek, Panasonic, Cisco 79x0; Snom and
  Gigaset write ``check-sync;reboot=false``): ``;reboot=true`` asks for a reboot. Snom and
  Gigaset need the explicit ``reboot=false`` to *not* reboot, so a vendor event that carries a
  reboot parameter keeps it as ``reboot=false``; the others get the bare event, as PBXs send it.
  (Yealink reboots on any check-sync unless ``sip.notify_reboot_enable = 0``.)
- ``resync`` (Cisco SPA/MPP, Grandstream): the Cisco SPA provisioning guide names
  ``Event: reboot_now`` (cold restart) and ``restart_now`` (warm) beside ``resync``; a reboot
  sends ``reboot_now``. Unverified for Grandstream: a phone that does not know the event
  answers 489 Bad Event, which the result reports.
- ``service-control`` (Cisco SEP phones, enterprise firmware): the action travels in a
  ``text/plain`` body, ``action=restart`` (reload the configuration) or ``action=reset``
  (reboot); the event stays the same. Recipes for these phones send
  ``Subscription-State: active``.
"""

from __future__ import annotations

from provisiond.sip.message import check_event

CHECK_SYNC = "check-sync"
RESYNC = "resync"
SERVICE_CONTROL = "service-control"
_REBOOT_EVENTS = frozenset({"reboot_now", "restart_now", "reboot"})


def _split(event: str) -> tuple[str, list[str]]:
    package, *params = check_event(event.strip()).split(";")
    return package.lower(), params


def _param_name(param: str) -> str:
    return param.partition("=")[0].strip().lower()


def resync_event(vendor_event: str, reboot: bool) -> str:
    """The Event header value for a resync (``reboot=False``) or a reboot of the phone.

    `vendor_event` is the vendor's ``resync_event``; the function is idempotent, so passing an
    already converted event is harmless. Raises ValueError for an invalid event, or for a
    reboot of an event with no known reboot form.
    """
    package, params = _split(vendor_event)
    if package == CHECK_SYNC:
        others = [p for p in params if _param_name(p) != "reboot"]
        had_reboot = len(others) != len(params)
        if reboot:
            others.append("reboot=true")
        elif had_reboot:
            others.append("reboot=false")
        return ";".join([CHECK_SYNC, *others])
    if package == RESYNC:
        return "reboot_now" if reboot else vendor_event.strip()
    if package == SERVICE_CONTROL or package in _REBOOT_EVENTS:
        return vendor_event.strip()
    if reboot:
        raise ValueError(f"no known reboot form of the event {vendor_event!r}")
    return vendor_event.strip()


def notify_body(event: str, reboot: bool) -> tuple[str, str] | None:
    """``(content type, body)`` the event needs, or None for an empty NOTIFY."""
    package, _ = _split(event)
    if package == SERVICE_CONTROL:
        action = "reset" if reboot else "restart"
        return "text/plain", f"action={action}\r\n"
    return None


def subscription_state(event: str) -> str:
    """The Subscription-State to send with `event` (RFC 6665 requires one in every NOTIFY)."""
    package, _ = _split(event)
    return "active" if package == SERVICE_CONTROL else "terminated"
