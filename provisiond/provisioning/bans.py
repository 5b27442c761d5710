"""The enumeration guard: sliding-window counts per source and per network, and bans.

Attackers walk a vendor's OUI against provisioning servers to harvest SIP passwords, so every
unknown-MAC request and every failed authentication is an event recorded against its source
address and against the source's network (IPv4 /24, IPv6 /64: a walk spread over many
addresses of one network is still caught). When an event brings a key to its threshold within
the window, the key is banned for `ban_s` seconds.

Contract for the callers (resolver, HTTP and TFTP frontends):
- `banned(ip)` first on every phone request; it is two dict look-ups, and nothing at all while
  no ban is active. A refused request is reported with `note_refused(ban)` so hits are counted.
- `record(ip, kind)` after an unknown MAC or a failed authentication; it returns the new `Ban`
  when this event caused one (logged once, at WARNING).
- `bans()` and `lift(target)` serve GET and DELETE /api/v1/bans.

Memory is bounded: at most `max_tracked` counting keys and `max_tracked` bans (the least
recently active key is evicted first); each key keeps at most its threshold of timestamps.
Expired windows and bans are pruned lazily, a few per call, so no call does unbounded work
except the admin-side `bans()` and `lift()`. Not thread-safe: one event loop owns it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

log = logging.getLogger(__name__)
EventKind = Literal["unknown_mac", "auth_failure"]
_KINDS: tuple[EventKind, ...] = ("unknown_mac", "auth_failure")
_PRUNE_PER_CALL = 8  # lazy pruning: bounded work per call, yet faster than keys can be added
_MAX_KEY = 64  # an invalid address string is its own key, cut so it cannot be huge
_MAPPED = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96, IPv4-mapped IPv6
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Thresholds of the enumeration guard; counts are per `window_s` seconds."""

    window_s: float = 600
    unknown_per_source: int = 20
    unknown_per_prefix: int = 100  # per IPv4 /24 and per IPv6 /64
    auth_failures_per_source: int = 10
    ban_s: float = 3600
    max_tracked: int = 100_000


@dataclass(frozen=True, slots=True)
class Ban:
    """An active ban, as the admin API shows it.

    `target` is an address (``"192.0.2.7"``) or a network (``"192.0.2.0/24"``); `since` and
    `until` are wall-clock UTC times; `hits` counts requests refused while banned.
    """

    target: str
    reason: str
    since: datetime
    until: datetime
    hits: int = 0


class _Entry:
    """The mutable state behind one ban: its expiry on the guard's clock and its hits."""

    __slots__ = ("ban", "expires", "hits")

    def __init__(self, ban: Ban, expires: float) -> None:
        self.ban = ban
        self.expires = expires
        self.hits = 0

    def snapshot(self) -> Ban:
        return Ban(self.ban.target, self.ban.reason, self.ban.since, self.ban.until, self.hits)


class _Window:
    """Timestamps of the recent events of one key, oldest first, at most `cap` of them.

    Keeping only the last `cap` events is exact for a threshold of `cap`: the threshold is
    reached when the oldest of the last `cap` events is still inside the window. A float array
    keeps a full window of 100 events in about 1 KB.
    """

    __slots__ = ("times",)

    def __init__(self) -> None:
        self.times = array("d")

    def add(self, now: float, window_s: float, cap: int) -> int:
        """Append an event at `now`; return how many events are inside the window."""
        times = self.times
        times.append(now)
        stale = bisect_right(times, now - window_s)
        over = len(times) - cap
        if stale or over > 0:
            del times[: max(stale, over)]
        return len(times)

    def latest(self) -> float:
        return self.times[-1] if self.times else float("-inf")


@lru_cache(maxsize=4096)
def address_keys(ip: str) -> tuple[str, str | None]:
    """The source key and network key of an address string.

    IPv4-mapped IPv6 counts as IPv4; an IPv6 address is written in its compressed form, so
    the key does not depend on how the transport spelled it. An invalid string is its own key
    (cut to 64 characters) and has no network. Cached: phones of a boot storm repeat.
    """
    text = ip.strip()
    # inet_pton/inet_ntop are C and several times faster than ipaddress; ipaddress remains
    # the fallback for what they refuse (scoped IPv6 such as fe80::1%eth0).
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return _address_keys_slow(ip)
    if len(packed) == 16 and packed[:12] == bytes(
        12
    ):  # inet_ntop writes ::a.b.c.d where ipaddress writes hex
        return _address_keys_slow(ip)
    if len(packed) == 16 and packed[:12] == _MAPPED:
        packed = packed[12:]
    if len(packed) == 4:
        source = socket.inet_ntop(socket.AF_INET, packed)
        return source, source.rsplit(".", 1)[0] + ".0/24"
    source = socket.inet_ntop(socket.AF_INET6, packed)
    return source, socket.inet_ntop(socket.AF_INET6, packed[:8] + bytes(8)) + "/64"


def _address_keys_slow(ip: str) -> tuple[str, str | None]:
    """`address_keys` through ipaddress, for what inet_pton refuses or spells differently."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip[:_MAX_KEY], None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        return str(addr), str(ipaddress.IPv4Network((int(addr) >> 8 << 8, 24)))
    return str(addr), str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))


class EnumerationGuard:
    """Counts unknown-MAC requests and failed authentications; bans sources past a threshold."""

    def __init__(
        self, config: GuardConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or GuardConfig()
        # Called with the lifted target (IP or CIDR): other per-source memories forget it too.
        self.lift_hooks: list[Callable[[str], None]] = []
        self._clock = clock
        # Wall-clock times for the API are derived from the guard's clock, so an injected
        # clock gives consistent `since`/`until` and a wall-clock jump cannot shorten a ban.
        self._epoch = (datetime.now(UTC), clock())
        self._windows: OrderedDict[tuple[EventKind, str], _Window] = OrderedDict()
        self._bans: OrderedDict[str, _Entry] = OrderedDict()
        self.bans_total = 0
        self.refused_total = 0
        self.events_total = 0

    # -- the hot path ------------------------------------------------------------------

    def banned(self, ip: str) -> Ban | None:
        """The active ban covering `ip` (its address or its /24 or /64), else None."""
        if not self._bans:
            return None
        source, network = address_keys(ip)
        now = self._clock()
        entry = self._active(source, now)
        if entry is None and network is not None:
            entry = self._active(network, now)
        return entry.snapshot() if entry is not None else None

    def note_refused(self, ban: Ban) -> None:
        """Count one request refused because of `ban`."""
        self.refused_total += 1
        entry = self._bans.get(ban.target)
        if entry is not None:
            entry.hits += 1

    def record(self, ip: str, kind: EventKind) -> Ban | None:
        """Count one event from `ip`; return the ban it caused, if it crossed a threshold."""
        self.events_total += 1
        now = self._clock()
        self._prune(now)
        source, network = address_keys(ip)
        cfg = self.config
        if kind == "unknown_mac":
            limits = [(source, cfg.unknown_per_source), (network, cfg.unknown_per_prefix)]
        else:
            limits = [(source, cfg.auth_failures_per_source)]
        caused: Ban | None = None
        for key, limit in limits:
            if key is None:
                continue
            count = self._count(kind, key, now, limit)
            if count >= limit and self._active(key, now) is None:
                ban = self._ban(key, kind, count, now)
                caused = caused or ban
        return caused

    # -- the admin side ----------------------------------------------------------------

    def bans(self) -> list[Ban]:
        """The active bans, oldest first; expired ones are dropped on the way."""
        now = self._clock()
        for target in [t for t, e in self._bans.items() if e.expires <= now]:
            del self._bans[target]
        return [entry.snapshot() for entry in self._bans.values()]

    def lift(self, target: str) -> bool:
        """Lift the ban on an address or network; True when an active ban was removed.

        A network also lifts the bans of addresses and smaller networks inside it. The
        lifted keys' counters are cleared, so the next miss does not ban again at once.
        """
        self.bans()  # drop expired bans first: lifting one of those is not a lift
        outer = _parse_target(target)
        lifted = [key for key in self._bans if _covers(outer, target, key)]
        for key in lifted:
            del self._bans[key]
        for key in {*lifted, _target_key(outer, target)}:
            for kind in _KINDS:
                self._windows.pop((kind, key), None)
        if lifted:
            log.warning("lifted ban on %s (%s)", target, ", ".join(lifted))
            for hook in self.lift_hooks:
                hook(target)
        return bool(lifted)

    def tracked(self) -> int:
        """How many counting keys are held (for tests and metrics)."""
        return len(self._windows)

    # -- internals ---------------------------------------------------------------------

    def _active(self, key: str, now: float) -> _Entry | None:
        entry = self._bans.get(key)
        if entry is not None and entry.expires <= now:
            del self._bans[key]
            return None
        return entry

    def _count(self, kind: EventKind, key: str, now: float, limit: int) -> int:
        windows = self._windows
        window = windows.get((kind, key))
        if window is None:
            window = windows[(kind, key)] = _Window()
            while len(windows) > self.config.max_tracked:
                windows.popitem(last=False)
        else:
            windows.move_to_end((kind, key))
        return window.add(now, self.config.window_s, limit)

    def _ban(self, key: str, kind: EventKind, count: int, now: float) -> Ban:
        cfg = self.config
        what = "unknown-MAC requests" if kind == "unknown_mac" else "failed authentications"
        reason = f"{count} {what} in {cfg.window_s:g} s"
        since = self._wall(now)
        ban = Ban(key, reason, since, since + timedelta(seconds=cfg.ban_s))
        self._bans[key] = _Entry(ban, now + cfg.ban_s)
        while len(self._bans) > cfg.max_tracked:
            self._bans.popitem(last=False)
        # The window starts afresh: once the ban ends, the key must earn a new one.
        self._windows.pop((kind, key), None)
        self.bans_total += 1
        log.warning("banned %s for %g s: %s", key, cfg.ban_s, reason)
        return ban

    def _prune(self, now: float) -> None:
        """Drop a few stale windows (least recently active first) and expired bans."""
        horizon = now - self.config.window_s
        windows = self._windows
        for _ in range(_PRUNE_PER_CALL):
            if not windows:
                break
            oldest, window = next(iter(windows.items()))
            if window.latest() > horizon:
                break
            del windows[oldest]
        bans = self._bans
        for _ in range(_PRUNE_PER_CALL):
            if not bans:
                break
            target, entry = next(iter(bans.items()))
            if entry.expires > now:
                break
            del bans[target]

    def _wall(self, now: float) -> datetime:
        wall, mono = self._epoch
        return wall + timedelta(seconds=now - mono)


def _parse_target(text: str) -> _Network | None:
    """A lift target as a network (an address is a /32 or /128); None when not an address."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96), strict=False)
    return network


def _target_key(network: _Network | None, target: str) -> str:
    """The counting key that a lift target names exactly."""
    if network is None:
        return target[:_MAX_KEY]
    source, own = address_keys(str(network.network_address))
    if network.num_addresses == 1:
        return source
    return own if own is not None and own.endswith(f"/{network.prefixlen}") else str(network)


def _covers(outer: _Network | None, target: str, key: str) -> bool:
    """True when the ban key lies inside the lift target (or equals it, for non-addresses)."""
    if outer is None:
        return key == target[:_MAX_KEY]
    inner = _parse_target(key)
    if isinstance(outer, ipaddress.IPv4Network) and isinstance(inner, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(outer, ipaddress.IPv6Network) and isinstance(inner, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False
