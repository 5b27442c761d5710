"""A minimal SIP client of our own: the resync NOTIFY that makes a phone re-read its files.

    result = await send_notify("192.0.2.10", 5060, event="check-sync", user="201",
                               credentials=("201", "secret"))
    result.status  # 200, 4xx/5xx/6xx, or None on timeout / transport error

Modules: `message` (build and parse, no I/O), `events` (body and Subscription-State per Event),
`auth` (digest answers), `timers` (RFC 3261 timer E/F arithmetic), `notify` (the UDP
transaction).
"""

from provisiond.sip.events import notify_body
from provisiond.sip.notify import NotifyResult, send_notify

__all__ = ["NotifyResult", "notify_body", "send_notify"]
