"""Traffic generators as sans-IO schedules: when is the next packet of a flow due?

A generator never reads a clock: the host asks :attr:`FlowGenerator.next_ns` (scenario time of
the next packet, ``None`` when the flow is over) and calls :meth:`FlowGenerator.take` with the
current time to get the sequence numbers that are due. The node process drives them with one
timer; the virtual-time simulator can drive the same objects.

- ``constant``: packet ``k`` at ``start_ns + k / rate_pps``.
- ``poisson``: exponential gaps with mean ``1 / rate_pps`` from a numpy ``Generator`` seeded
  by ``(seed, flow_id)``, so every run with the same seed sends at the same times.
- ``bulk``: ``ceil(total_bytes / size_bytes)`` packets paced at ``rate_pps`` from ``start_ns``.

No packet is sent at or after ``stop_ns``.

>>> from netemu.traffic import FlowSpec
>>> g = FlowGenerator(FlowSpec(flow_id=1, name="f", src=1, dst=2, rate_pps=10,
...                            start_ns=0, stop_ns=10**9))
>>> g.take(250_000_000)
[0, 1, 2]
>>> g.next_ns
300000000
"""

from __future__ import annotations

from .spec import FlowSpec

__all__ = ["FlowGenerator"]

_NS_PER_S = 1_000_000_000


class FlowGenerator:
    """The send schedule of one :class:`FlowSpec` (``seed`` matters for ``poisson`` only).

    ``max_burst`` bounds how many late packets one :meth:`take` returns (a host that was
    stalled catches up over several calls instead of one huge burst).
    """

    __slots__ = ("flow", "next_ns", "seq", "_gap_ns", "_rng", "_limit", "max_burst", "stopped")

    def __init__(self, flow: FlowSpec, *, seed: int = 0, max_burst: int = 1000):
        self.flow = flow
        self.seq = 0
        self.max_burst = max_burst
        self.stopped = False
        self._gap_ns = _NS_PER_S / flow.rate_pps
        self._limit = flow.packets  # None: until stop_ns
        self._rng = None
        if flow.pattern == "poisson":
            import numpy as np

            self._rng = np.random.default_rng([int(seed) & 0xFFFF_FFFF, flow.flow_id])
            first = flow.start_ns + self._draw_gap_ns()
        else:
            first = flow.start_ns
        self.next_ns: int | None = first
        self._check_end()

    def _draw_gap_ns(self) -> int:
        return max(1, int(round(self._rng.exponential(self._gap_ns))))

    def _check_end(self) -> None:
        if self.next_ns is None:
            return
        if self.next_ns >= self.flow.stop_ns or (
            self._limit is not None and self.seq >= self._limit
        ):
            self.next_ns = None

    def take(self, now_ns: int) -> list[int]:
        """Sequence numbers of the packets due at ``now_ns`` (and advance past them)."""
        out: list[int] = []
        while self.next_ns is not None and self.next_ns <= now_ns and len(out) < self.max_burst:
            out.append(self.seq)
            self.seq += 1
            if self._rng is not None:
                self.next_ns += self._draw_gap_ns()
            else:
                self.next_ns = self.flow.start_ns + int(round(self.seq * self._gap_ns))
            self._check_end()
        return out

    def skip_until(self, now_ns: int) -> int:
        """Drop the packets due before ``now_ns`` without sending them (a host that joined a
        run late); returns how many were skipped."""
        skipped = 0
        while self.next_ns is not None and self.next_ns < now_ns:
            skipped += len(self.take(min(now_ns - 1, self.next_ns + 10**9)))
        return skipped

    def stop(self) -> None:
        """No more packets (the run is stopping)."""
        self.stopped = True
        self.next_ns = None
