"""The NOTIFY a phone needs beside its Event header: body and Subscription-State.

Which Event makes a phone re-read its files, and which reboots it, is vendor data:
``resync_event`` and ``reboot_event`` in ``phone_templates/<vendor>/vendor.toml``, each cited
in that vendor's README. Nothing here derives one from the other, so a vendor whose reboot
event is unrelated to its resync event (Cisco SPA ``resync``/``reboot_now``) is described as
it is, and a resync can never turn into a reboot by accident.

The one event that needs more than its header is ``service-control`` (Cisco phones on
enterprise firmware): the action travels in a ``text/plain`` body, ``action=restart`` (reload
the configuration) or ``action=reset`` (reboot), and the subscription is ``active``. Every
other event goes in an empty NOTIFY with ``Subscription-State: terminated`` (RFC 6665 asks for
one in every NOTIFY; phones ignore it for these unsolicited events).
"""

from __future__ import annotations

from provisiond.sip.message import check_event

SERVICE_CONTROL = "service-control"


def _package(event: str) -> str:
    return check_event(event.strip()).split(";", 1)[0].lower()


def notify_body(event: str, reboot: bool) -> tuple[str, str] | None:
    """``(content type, body)`` the event needs, or None for an empty NOTIFY."""
    if _package(event) == SERVICE_CONTROL:
        action = "reset" if reboot else "restart"
        return "text/plain", f"action={action}\r\n"
    return None


def subscription_state(event: str) -> str:
    """The Subscription-State to send with `event` (RFC 6665 requires one in every NOTIFY)."""
    return "active" if _package(event) == SERVICE_CONTROL else "terminated"
