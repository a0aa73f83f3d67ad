"""A Linux timerfd on ``CLOCK_MONOTONIC`` for precise absolute deadlines in an event loop.

asyncio's default loop rounds timer waits to whole milliseconds and uvloop's timers can fire
early; a timerfd armed at an absolute monotonic time (``TFD_TIMER_ABSTIME``) wakes the loop
through ``loop.add_reader`` about 50 us after the deadline and never before it. Python 3.11 has
no ``os.timerfd_*`` (3.13 does), so this wraps the libc calls with ctypes.

>>> import time
>>> with TimerFd() as timer:
...     deadline_ns = time.monotonic_ns() + 1_000_000
...     timer.arm(deadline_ns)
...     timer.wait_blocking() >= 1 and time.monotonic_ns() >= deadline_ns
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select

__all__ = ["TimerFd", "set_timer_slack_ns"]

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1
_PR_SET_TIMERSLACK = 29
_NS_PER_S = 1_000_000_000


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_timerfd_create = _libc.timerfd_create
_timerfd_create.argtypes = (ctypes.c_int, ctypes.c_int)
_timerfd_create.restype = ctypes.c_int
_timerfd_settime = _libc.timerfd_settime
_timerfd_settime.argtypes = (
    ctypes.c_int,
    ctypes.c_int,
    ctypes.POINTER(_Itimerspec),
    ctypes.POINTER(_Itimerspec),
)
_timerfd_settime.restype = ctypes.c_int


def set_timer_slack_ns(slack_ns: int = 1) -> bool:
    """Set this thread's timer slack (``PR_SET_TIMERSLACK``; the default is 50 us).

    The slack lets the kernel delay the expiry of this thread's sleeps (``epoll_wait``
    timeouts, ``nanosleep``) to batch wake-ups; a latency-sensitive host sets it to 1 ns.
    Returns ``False`` if ``prctl`` failed.
    """
    return _libc.prctl(_PR_SET_TIMERSLACK, int(slack_ns), 0, 0, 0) == 0


class TimerFd:
    """One non-blocking, close-on-exec timerfd on ``CLOCK_MONOTONIC`` (one-shot, absolute).

    ``arm(deadline_mono_ns)`` sets the expiry (a time in the past fires at once), ``disarm()``
    cancels it, ``read()`` consumes an expiry (returns the number of expirations, 0 if none was
    pending), ``fileno()`` is what ``loop.add_reader`` watches. ``armed_ns`` is the deadline
    currently set (``None`` when disarmed or after it was read).
    """

    __slots__ = ("_fd", "_spec", "armed_ns")

    def __init__(self) -> None:
        fd = _timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_create: {os.strerror(err)}")
        self._fd = fd
        self._spec = _Itimerspec()  # reused: no allocation per arm
        self.armed_ns: int | None = None

    def fileno(self) -> int:
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def arm(self, deadline_mono_ns: int) -> None:
        """Expire at the absolute ``CLOCK_MONOTONIC`` time ``deadline_mono_ns`` (replaces any
        earlier setting). A deadline at or before now expires immediately."""
        deadline_mono_ns = max(1, int(deadline_mono_ns))  # 0 would mean "disarm"
        sec, nsec = divmod(deadline_mono_ns, _NS_PER_S)
        value = self._spec.it_value
        value.tv_sec = sec
        value.tv_nsec = nsec
        self._settime(TFD_TIMER_ABSTIME)
        self.armed_ns = deadline_mono_ns

    def disarm(self) -> None:
        value = self._spec.it_value
        value.tv_sec = 0
        value.tv_nsec = 0
        self._settime(0)
        self.armed_ns = None

    def _settime(self, flags: int) -> None:
        if _timerfd_settime(self._fd, flags, ctypes.byref(self._spec), None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")

    def read(self) -> int:
        """Consume the pending expiry: the number of expirations (0 when none is pending)."""
        try:
            data = os.read(self._fd, 8)
        except BlockingIOError:
            return 0
        self.armed_ns = None
        return int.from_bytes(data, "little")

    def wait_blocking(self, timeout_s: float | None = None) -> int:
        """Block until the timer expires (for tests and tools, not inside an event loop)."""
        select.select([self._fd], [], [], timeout_s)
        return self.read()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self.armed_ns = None

    def __enter__(self) -> TimerFd:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
