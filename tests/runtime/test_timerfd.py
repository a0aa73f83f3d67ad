"""The timerfd wrapper: absolute monotonic deadlines that never fire early (loose checks only)."""

from __future__ import annotations

import asyncio
import time

import pytest

from netemu.runtime.timerfd import TimerFd, set_timer_slack_ns

pytestmark = pytest.mark.skipif(not hasattr(time, "monotonic_ns"), reason="needs monotonic_ns")


def test_never_fires_early():
    set_timer_slack_ns(1)
    with TimerFd() as timer:
        for delay_ns in (50_000, 200_000, 1_000_000, 300_000, 10_000):
            deadline_ns = time.monotonic_ns() + delay_ns
            timer.arm(deadline_ns)
            assert timer.armed_ns == deadline_ns
            assert timer.wait_blocking(timeout_s=2.0) == 1
            assert time.monotonic_ns() >= deadline_ns
            assert timer.armed_ns is None


def test_past_deadline_fires_at_once_and_read_without_expiry_is_zero():
    with TimerFd() as timer:
        assert timer.read() == 0
        timer.arm(time.monotonic_ns() - 1_000_000)
        assert timer.wait_blocking(timeout_s=1.0) == 1
        assert timer.read() == 0


def test_disarm_and_rearm():
    with TimerFd() as timer:
        timer.arm(time.monotonic_ns() + 20_000_000)
        timer.disarm()
        assert timer.armed_ns is None
        assert timer.wait_blocking(timeout_s=0.05) == 0  # nothing fired
        timer.arm(time.monotonic_ns() + 60_000_000)
        deadline_ns = time.monotonic_ns() + 1_000_000
        timer.arm(deadline_ns)  # replaces the later setting
        assert timer.wait_blocking(timeout_s=1.0) == 1
        assert time.monotonic_ns() >= deadline_ns


def test_close_is_idempotent():
    timer = TimerFd()
    assert timer.fileno() >= 0
    timer.close()
    timer.close()
    assert timer.closed


@pytest.mark.parametrize("use_uvloop", [False, True])
def test_event_loop_reader_never_early(use_uvloop):
    """Driven from an event loop through add_reader, the way the fabric host uses it."""
    errors_ns: list[int] = []

    async def main():
        loop = asyncio.get_running_loop()
        timer = TimerFd()
        done = asyncio.Event()
        deadlines = [time.monotonic_ns() + 2_000_000 + i * 700_000 for i in range(20)]
        state = {"i": 0}

        def on_timer():
            timer.read()
            now_ns = time.monotonic_ns()
            i = state["i"]
            if now_ns < deadlines[i]:  # woken early: re-arm (must not happen)
                timer.arm(deadlines[i])
                return
            errors_ns.append(now_ns - deadlines[i])
            state["i"] = i = i + 1
            if i == len(deadlines):
                done.set()
            else:
                timer.arm(deadlines[i])

        loop.add_reader(timer.fileno(), on_timer)
        try:
            timer.arm(deadlines[0])
            await asyncio.wait_for(done.wait(), 5.0)
        finally:
            loop.remove_reader(timer.fileno())
            timer.close()

    if use_uvloop:
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(main())
    else:
        asyncio.run(main())
    assert len(errors_ns) == 20
    assert min(errors_ns) >= 0
