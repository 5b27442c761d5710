"""CPU quotas for the servers under test, with the kernel's cgroup `cpu` controller.

Why: when wrk is the bottleneck (it needs a whole CPU to keep nginx busy on one), the honest
remedy is more client CPU or fewer server CPUs. On a small machine the only way to give a
server "fewer CPUs" is a fraction of one: a CFS quota (``cpu.cfs_quota_us`` over
``cpu.cfs_period_us`` in cgroup v1, ``cpu.max`` in v2). Each server tree goes into its own
group under this process's own cpu cgroup; `CpuGroup.release` moves anything left back to that
parent and removes the group.

The period defaults to 10 ms rather than the kernel's 100 ms: a server throttled at 0.5 CPU
then stalls for at most ~5 ms per period instead of ~50 ms, which would otherwise dominate any
p99 measured under the quota. When wrk shares the servers' CPUs (the workers emulation), their
groups also get the highest weight (cpu.shares / cpu.weight), so that they get their quota
first and wrk what is left.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

V1_CPU = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")
DEFAULT_PERIOD_US = 10_000
V1_MAX_SHARES = 262_144
V2_MAX_WEIGHT = 10_000


class CgroupUnavailable(RuntimeError):
    """No writable cpu controller here; the message says why."""


@dataclass(frozen=True)
class Throttling:
    """cpu.stat of a group: how often the quota stopped it."""

    periods: int
    throttled: int
    throttled_s: float

    def since(self, before: Throttling) -> Throttling:
        """The difference over a measurement."""
        return Throttling(
            self.periods - before.periods,
            self.throttled - before.throttled,
            self.throttled_s - before.throttled_s,
        )

    @property
    def share(self) -> float:
        """Share of periods in which the group was throttled (1.0: the quota was the limit)."""
        return self.throttled / self.periods if self.periods else 0.0


class CpuGroup:
    """One cpu cgroup that we created (v1 or v2)."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

    @property
    def parent(self) -> Path:
        """Where our own processes live: members go back there on release."""
        return self.path.parent

    def set_quota(self, cpus: float | None, period_us: int = DEFAULT_PERIOD_US) -> None:
        """Limit the group to `cpus` CPUs (e.g. 0.5), or lift the limit (None)."""
        if self.version == 1:
            if cpus is None:
                _write(self.path / "cpu.cfs_quota_us", "-1")
                return
            _write(self.path / "cpu.cfs_quota_us", "-1")  # a period change must not clash
            _write(self.path / "cpu.cfs_period_us", str(period_us))
            _write(self.path / "cpu.cfs_quota_us", str(max(1000, round(cpus * period_us))))
            return
        quota = "max" if cpus is None else str(max(1000, round(cpus * period_us)))
        _write(self.path / "cpu.max", f"{quota} {period_us}")

    def favour(self) -> None:
        """Highest weight: under contention the group gets its quota before anyone else."""
        if self.version == 1:
            _write(self.path / "cpu.shares", str(V1_MAX_SHARES))
        else:
            _write(self.path / "cpu.weight", str(V2_MAX_WEIGHT))

    def add(self, pids: Iterable[int]) -> int:
        """Move processes (all their threads) into the group; returns how many moved.

        Children forked later follow their parent; already running ones must be listed.
        """
        moved = 0
        for pid in pids:
            with suppress(ProcessLookupError, FileNotFoundError):
                _write(self.path / "cgroup.procs", str(pid))
                moved += 1
        return moved

    def members(self) -> list[int]:
        """The processes in the group now."""
        text = (self.path / "cgroup.procs").read_text()
        return [int(line) for line in text.split()]

    def throttling(self) -> Throttling:
        """The group's cumulative throttling counters."""
        lines = (self.path / "cpu.stat").read_text().splitlines()
        stat = {key: int(value) for key, value in (line.split() for line in lines)}
        periods, throttled = stat.get("nr_periods", 0), stat.get("nr_throttled", 0)
        if self.version == 1:
            return Throttling(periods, throttled, stat.get("throttled_time", 0) / 1e9)
        return Throttling(periods, throttled, stat.get("throttled_usec", 0) / 1e6)

    def release(self) -> None:
        """Move any remaining member back to the parent group, then remove the group (once:
        a second call does nothing)."""
        if not self.path.exists():
            return
        for _ in range(50):  # bounded: a member exiting or forking meanwhile is retried
            members = self.members()
            if not members:
                break
            for pid in members:
                with suppress(ProcessLookupError, FileNotFoundError, OSError):
                    _write(self.parent / "cgroup.procs", str(pid))
        with suppress(OSError):
            self.path.rmdir()


def _write(path: Path, text: str) -> None:
    with path.open("w") as handle:
        handle.write(text)


def _own_path(controller: str) -> str:
    """This process's cgroup path in the hierarchy of `controller` ('' for v2's unified)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(",") or (controller == "" and names == ""):
            return path.lstrip("/")
    raise CgroupUnavailable(f"/proc/self/cgroup has no {controller or 'unified'} entry")


def _base() -> tuple[Path, int]:
    """Where to create groups: beside ourselves in the v1 cpu hierarchy, else in v2."""
    if (V1_CPU / "cpu.shares").exists() or (V1_CPU / "cgroup.procs").exists():
        return V1_CPU / _own_path("cpu"), 1
    controllers = V2_ROOT / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        # v2 forbids processes in a group whose children get controllers: use the root
        # (as root in a container or VM), where that rule does not apply.
        subtree = V2_ROOT / "cgroup.subtree_control"
        if "cpu" not in subtree.read_text().split():
            _write(subtree, "+cpu")
        return V2_ROOT, 2
    raise CgroupUnavailable("no cgroup v1 cpu hierarchy and no v2 cpu controller")


def create(name: str, *, favoured: bool = False) -> CpuGroup:
    """A new, unlimited cpu group named `name`-<our pid>; raises CgroupUnavailable.

    `favoured`: the highest weight (see `CpuGroup.favour`), for servers that share their CPU
    with wrk. Leave it off otherwise: on a shared machine it would also let the server push
    other processes aside, which its runs without a quota cannot, and the two would differ.
    """
    try:
        base, version = _base()
        path = base / f"{name}-{os.getpid()}"
        path.mkdir()
        group = CpuGroup(path, version)
        if favoured:
            group.favour()
        return group
    except OSError as exc:
        raise CgroupUnavailable(f"cannot create a cpu cgroup: {exc}") from exc


def probe() -> str | None:
    """None when cpu groups can be created and limited here, else the reason."""
    try:
        group = create("bench-probe")
    except CgroupUnavailable as exc:
        return str(exc)
    try:
        group.set_quota(0.5)
        group.set_quota(None)
    except OSError as exc:
        return f"cannot set a cpu quota: {exc}"
    finally:
        group.release()
    return None
