"""Timers of a non-INVITE client transaction over UDP (RFC 3261 17.1.2.2), as pure functions.

Timer E governs retransmissions: it starts at T1, doubles after each firing up to T2 while the
transaction is *Trying*, and is T2 once a provisional response has moved it to *Proceeding*
(the request is still retransmitted there; only a final response stops it). Timer F (64*T1)
ends the transaction with a timeout.
"""

from __future__ import annotations

T1 = 0.5  # RTT estimate, seconds (RFC 3261 default)
T2 = 4.0  # the longest retransmit interval for non-INVITE requests


def timer_f(t1: float) -> float:
    """The transaction timeout, 64*T1 (32 s with the default T1)."""
    return 64 * t1


def next_interval(current: float, *, t2: float, proceeding: bool) -> float:
    """Timer E's next value after it fired with value `current`."""
    return t2 if proceeding else min(2 * current, t2)


def check_timers(t1: float, t2: float, timeout: float) -> None:
    """Raise ValueError unless 0 < T1 <= T2 and the timeout is positive."""
    if not 0 < t1 <= t2 or timeout <= 0:
        raise ValueError("need 0 < T1 <= T2 and a positive timeout")


def send_offsets(t1: float, t2: float, timeout: float) -> list[float]:
    """Seconds after the start at which the request is sent when nothing ever answers.

    The first send is at 0; a retransmission is due each time timer E fires before the
    timeout. With T1=0.5, T2=4 and F=32: 0, 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5 (11 sends).
    """
    check_timers(t1, t2, timeout)
    offsets = [0.0]
    interval = t1
    while offsets[-1] + interval < timeout:
        offsets.append(offsets[-1] + interval)
        interval = next_interval(interval, t2=t2, proceeding=False)
    return offsets
