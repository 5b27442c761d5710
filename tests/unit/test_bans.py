"""The enumeration guard: thresholds, sliding windows, network aggregation, bans and lifting."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from provisiond.provisioning.bans import Ban, EnumerationGuard, GuardConfig, address_keys


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def guard(clock: FakeClock) -> EnumerationGuard:
    return EnumerationGuard(GuardConfig(), clock=clock)


def _misses(guard: EnumerationGuard, ip: str, count: int) -> list[Ban]:
    """Record `count` unknown-MAC requests from `ip`; the bans they caused."""
    caused = [guard.record(ip, "unknown_mac") for _ in range(count)]
    return [ban for ban in caused if ban is not None]


@pytest.mark.parametrize(
    ("ip", "source", "network"),
    [
        ("192.0.2.7", "192.0.2.7", "192.0.2.0/24"),
        ("::ffff:192.0.2.7", "192.0.2.7", "192.0.2.0/24"),
        ("2001:DB8:0:1:0:0:0:5", "2001:db8:0:1::5", "2001:db8:0:1::/64"),
        ("fe80::1", "fe80::1", "fe80::/64"),
        ("fe80::1%eth0", "fe80::1%eth0", "fe80::/64"),
        ("::1.2.3.4", "::102:304", "::/64"),
        (" 192.0.2.7\n", "192.0.2.7", "192.0.2.0/24"),
        ("192.0.2.7\x00", "192.0.2.7\x00", None),
        ("01.2.3.4", "01.2.3.4", None),
        ("not-an-ip", "not-an-ip", None),
        ("", "", None),
        ("x" * 500, "x" * 64, None),
    ],
)
def test_address_keys(ip: str, source: str, network: str | None) -> None:
    assert address_keys(ip) == (source, network)


def test_threshold_is_exactly_n(guard: EnumerationGuard) -> None:
    assert _misses(guard, "198.51.100.9", 19) == []
    assert guard.banned("198.51.100.9") is None
    ban = guard.record("198.51.100.9", "unknown_mac")
    assert ban is not None
    assert ban.target == "198.51.100.9"
    assert "20 unknown-MAC requests" in ban.reason
    assert ban.until - ban.since == timedelta(seconds=3600)
    assert guard.banned("198.51.100.9") == ban
    assert guard.bans_total == 1
    assert guard.events_total == 20


def test_other_sources_are_not_banned(guard: EnumerationGuard) -> None:
    _misses(guard, "198.51.100.9", 20)
    assert guard.banned("198.51.100.10") is None
    assert guard.banned("203.0.113.9") is None


def test_window_slides_old_events_expire(guard: EnumerationGuard, clock: FakeClock) -> None:
    _misses(guard, "198.51.100.9", 10)
    clock.now += 300
    _misses(guard, "198.51.100.9", 9)
    clock.now += 301  # the first ten are now older than the 600 s window
    assert _misses(guard, "198.51.100.9", 1) == []
    assert guard.banned("198.51.100.9") is None
    # 9 + 1 in the window; ten more reach 20 again
    assert _misses(guard, "198.51.100.9", 9) == []
    assert len(_misses(guard, "198.51.100.9", 1)) == 1


def test_spread_walk_over_a_slash_24_bans_the_network(guard: EnumerationGuard) -> None:
    caused: list[Ban] = []
    for host in range(1, 31):
        caused += _misses(guard, f"203.0.113.{host}", 5)
    assert [ban.target for ban in caused] == ["203.0.113.0/24"]
    assert "100 unknown-MAC requests" in caused[0].reason
    assert guard.banned("203.0.113.200") == caused[0]  # an address that never asked
    assert guard.banned("::ffff:203.0.113.77") == caused[0]
    assert guard.banned("203.0.114.1") is None


def test_slash_64_for_ipv6(guard: EnumerationGuard) -> None:
    caused: list[Ban] = []
    for host in range(1, 26):
        caused += _misses(guard, f"2001:db8:1:2::{host:x}", 4)
    assert [ban.target for ban in caused] == ["2001:db8:1:2::/64"]
    assert guard.banned("2001:db8:1:2:ffff:ffff:ffff:ffff") is not None
    assert guard.banned("2001:db8:1:3::1") is None


def test_ipv4_mapped_counts_with_ipv4(guard: EnumerationGuard) -> None:
    _misses(guard, "192.0.2.5", 10)
    ban = _misses(guard, "::ffff:192.0.2.5", 10)
    assert [b.target for b in ban] == ["192.0.2.5"]
    assert guard.banned("192.0.2.5") is not None


def test_ban_expires(guard: EnumerationGuard, clock: FakeClock) -> None:
    _misses(guard, "198.51.100.9", 20)
    clock.now += 3599
    assert guard.banned("198.51.100.9") is not None
    clock.now += 1
    assert guard.banned("198.51.100.9") is None
    assert guard.bans() == []
    # the window started afresh at the ban: one more miss does not ban again
    assert _misses(guard, "198.51.100.9", 1) == []


def test_bans_lists_active_only_with_hits(guard: EnumerationGuard, clock: FakeClock) -> None:
    _misses(guard, "198.51.100.9", 20)
    clock.now += 1800
    _misses(guard, "198.51.100.10", 20)
    ban = guard.banned("198.51.100.10")
    assert ban is not None
    guard.note_refused(ban)
    guard.note_refused(ban)
    assert guard.refused_total == 2
    listed = {b.target: b.hits for b in guard.bans()}
    assert listed == {"198.51.100.9": 0, "198.51.100.10": 2}
    clock.now += 1800
    assert [b.target for b in guard.bans()] == ["198.51.100.10"]


def test_lift_by_ip_clears_the_counters(guard: EnumerationGuard) -> None:
    _misses(guard, "198.51.100.9", 20)
    _misses(guard, "198.51.100.9", 15)  # counted while banned
    assert guard.lift("198.51.100.9") is True
    assert guard.banned("198.51.100.9") is None
    assert _misses(guard, "198.51.100.9", 19) == []
    assert guard.lift("198.51.100.9") is False


def test_lift_by_cidr(guard: EnumerationGuard) -> None:
    for host in range(1, 21):
        _misses(guard, f"203.0.113.{host}", 5)
    _misses(guard, "203.0.113.99", 20)
    assert {b.target for b in guard.bans()} == {"203.0.113.0/24", "203.0.113.99"}
    assert guard.lift("203.0.113.0/24") is True
    assert guard.bans() == []
    assert guard.banned("203.0.113.5") is None
    assert _misses(guard, "203.0.113.50", 5) == []  # the /24 counter starts afresh


def test_lift_ipv6_network_and_mapped_spelling(guard: EnumerationGuard) -> None:
    _misses(guard, "2001:db8::1", 20)
    _misses(guard, "192.0.2.1", 20)
    assert guard.lift("2001:db8::/32") is True
    assert guard.lift("::ffff:192.0.2.1") is True
    assert guard.bans() == []
    assert guard.lift("garbage") is False


def test_auth_failures_counted_separately(guard: EnumerationGuard) -> None:
    _misses(guard, "198.51.100.9", 19)
    for _ in range(9):
        assert guard.record("198.51.100.9", "auth_failure") is None
    ban = guard.record("198.51.100.9", "auth_failure")
    assert ban is not None
    assert "10 failed authentications" in ban.reason


def test_auth_failures_do_not_aggregate_per_network(guard: EnumerationGuard) -> None:
    for host in range(1, 101):
        assert guard.record(f"203.0.113.{host}", "auth_failure") is None
    assert guard.bans() == []


def test_invalid_address_is_its_own_key(guard: EnumerationGuard) -> None:
    assert len(_misses(guard, "bogus", 20)) == 1
    assert guard.banned("bogus") is not None
    assert guard.banned("bogus2") is None
    assert guard.lift("bogus") is True


def test_ban_is_logged_once_with_counts(
    guard: EnumerationGuard, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="provisiond.provisioning.bans"):
        _misses(guard, "198.51.100.9", 30)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "198.51.100.9" in messages[0]
    assert "20 unknown-MAC requests in 600 s" in messages[0]


def test_memory_is_bounded_by_max_tracked(clock: FakeClock) -> None:
    guard = EnumerationGuard(GuardConfig(), clock=clock)
    largest = 0
    for n in range(200_000):  # every source in its own /64: two keys per event
        guard.record(f"2001:db8:{n >> 16:x}:{n & 0xFFFF:x}::1", "unknown_mac")
        largest = max(largest, guard.tracked())
    assert largest == guard.tracked() == 100_000
    assert guard.events_total == 200_000


def test_bans_are_bounded_and_stale_windows_pruned(clock: FakeClock) -> None:
    config = GuardConfig(unknown_per_source=1, unknown_per_prefix=1000, max_tracked=50)
    guard = EnumerationGuard(config, clock=clock)
    for n in range(500):
        guard.record(f"10.1.{n >> 8}.{n & 255}", "unknown_mac")
    assert len(guard.bans()) == 50
    assert guard.tracked() <= 50
    clock.now += 4000  # every window and ban is stale; records prune a few per call
    for _ in range(20):
        guard.record("192.0.2.1", "auth_failure")
    assert guard.tracked() == 1
    assert guard.bans() == [guard.banned("192.0.2.1")]


def test_lifting_an_expired_ban_is_not_a_lift(guard: EnumerationGuard, clock: FakeClock) -> None:
    _misses(guard, "198.51.100.9", 20)
    clock.now += 3600
    assert guard.lift("198.51.100.9") is False


def test_a_ban_restarts_the_count(clock: FakeClock) -> None:
    """With a ban shorter than the window, the events before the ban do not count again."""
    guard = EnumerationGuard(GuardConfig(ban_s=60), clock=clock)
    assert len(_misses(guard, "198.51.100.9", 20)) == 1
    clock.now += 60
    assert guard.banned("198.51.100.9") is None
    assert _misses(guard, "198.51.100.9", 19) == []
    assert len(_misses(guard, "198.51.100.9", 1)) == 1
