"""The run clock shared by every process of a run, and process hygiene helpers.

All processes of a run live on one machine (or one kernel, for namespaces and containers) and
read the same ``CLOCK_MONOTONIC``. The controller publishes ``t0_mono_ns``, the monotonic time of
scenario time 0, in the retained ``run`` message; each process then computes scenario time as
``monotonic_ns() - t0_mono_ns``. Core code never reads the clock (ARCHITECTURE.md convention 1):
only hosts do, through a :class:`RunClock`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import time

__all__ = ["RunClock", "die_with_parent", "monotonic_ns", "raise_priority"]

monotonic_ns = time.monotonic_ns


class RunClock:
    """Scenario time from the monotonic clock: ``now_ns() = monotonic_ns() - t0_mono_ns``."""

    __slots__ = ("t0_mono_ns",)

    def __init__(self, t0_mono_ns: int):
        self.t0_mono_ns = int(t0_mono_ns)

    def now_ns(self) -> int:
        return time.monotonic_ns() - self.t0_mono_ns

    def mono_ns(self, t_ns: int) -> int:
        """The monotonic time of scenario time ``t_ns`` (for absolute timers)."""
        return self.t0_mono_ns + int(t_ns)

    def sleep_s(self, t_ns: int) -> float:
        """Seconds from now until scenario time ``t_ns`` (0 when it has passed)."""
        return max(0.0, (t_ns - self.now_ns()) / 1e9)


_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (``prctl``).

    Child processes of a run call it first thing, so that a killed controller leaves no node
    behind. Returns ``False`` where ``prctl`` is unavailable.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def raise_priority(rt_priority: int, *, nice: int = -10) -> str:
    """Run this process ahead of ordinary ones; say what was obtained.

    Deliveries (fabric) and forwarding (nodes) happen at deadlines. With a hundred processes
    on two cores, a normal-priority process waits for a time slice and is late (fabric delay
    error p99 5.1 ms in a 71-node demo run, 0.20 ms with SCHED_FIFO). The processes sleep in
    epoll between events, so real-time priority costs the others nothing while idle, and
    Linux's RT throttling keeps 5 % of every second for ordinary processes in any case.
    Without CAP_SYS_NICE it tries ``nice``, then leaves the priority as it is.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
        return f"SCHED_FIFO priority {rt_priority}"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(nice)
        return f"nice {nice}"
    except OSError:
        return "normal (no permission to raise it)"
