"""A source that asked for other phones' MACs gets no secrets: the walk memory."""

from __future__ import annotations

import pytest

from provisiond.provisioning.gate import WalkMemory

A, B, C = "001565000001", "001565000002", "001565000003"


@pytest.mark.parametrize(
    ("misses", "asked", "walked"),
    [
        ([], A, False),  # never missed: a phone
        ([A], A, False),  # missed on its own MAC (unprovisioned, then claimed): still a phone
        ([A, A, A], A, False),  # retried its own MAC
        ([B], A, True),  # asked for another MAC before: a walker
        ([A, B], A, True),  # its own and another: a walker
        ([B, C], B, True),
    ],
)
def test_walked(misses: list[str], asked: str, walked: bool) -> None:
    memory = WalkMemory(window_s=600)
    for mac in misses:
        memory.missed("192.0.2.1", mac, now=10.0)
    assert memory.walked("192.0.2.1", asked, now=20.0) is walked
    assert memory.walked("192.0.2.2", asked, now=20.0) is False  # other sources unaffected


def test_forgets_after_the_window() -> None:
    memory = WalkMemory(window_s=600)
    memory.missed("192.0.2.1", B, now=0.0)
    assert memory.walked("192.0.2.1", A, now=599.0)
    assert not memory.walked("192.0.2.1", A, now=601.0)


def test_bounded() -> None:
    memory = WalkMemory(window_s=600, max_sources=100)
    for i in range(1000):
        memory.missed(f"10.0.{i // 256}.{i % 256}", B, now=1.0)
    assert len(memory._missed) == 100
    assert memory.walked("10.0.3.231", A, now=2.0)  # the newest are kept
    assert not memory.walked("10.0.0.0", A, now=2.0)  # the oldest went first
