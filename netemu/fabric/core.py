"""The sans-IO link engine: given a frame, its link and a time, when (or whether) it arrives.

No sockets, no clocks, no event loop: the host (the real-time fabric process, or the virtual-time
simulator) passes every time in as an integer ``t_ns`` and acts on what the core returns.

Model, per link direction (``tx -> rx``) of the current :class:`~netemu.fabric.LinkTable`:

* a frame sent on a pair with no row is dropped ``no-link``; on a down row ``link-down``; larger
  than ``mtu_bytes`` ``too-big``;
* the transmitter serializes one frame at a time at ``rate_bps``; a frame sent while it is busy
  waits in a FIFO. The FIFO holds the frames that have not *started* serializing; a frame that
  would wait when it already holds ``queue_limit_frames`` frames or when its bytes would exceed
  ``queue_limit_bytes`` is tail-dropped ``queue-full`` (a frame sent to an idle transmitter
  never waits and is never tail-dropped);
* the frame leaves when its last bit is serialized, at ``depart_ns``, and propagates for
  ``range(depart_ns) / c`` where ``range(t) = range_m + range_rate_mps * (t - t_epoch)``
  (linear extrapolation from the epoch values, clamped at 0);
* every transmitted frame consumes one uniform draw of a seeded :class:`numpy.random.Generator`;
  it is lost (``loss``) when the draw is below the link's loss probability. A lost frame still
  occupied the transmitter;
* a later :meth:`Fabric.update` that takes a direction down (or removes it) cancels its frames
  due strictly after the new epoch time: ``link-down-in-flight``. Frames due at or before it stay
  in flight for :meth:`Fabric.poll`.

Delays are rounded *up* to whole nanoseconds, so a frame is never early.

>>> from netemu.fabric import LinkTable
>>> fabric = Fabric(FabricConfig(seed=1))
>>> fabric.update(LinkTable.from_rows(0, [dict(link_id=0, a=0, b=1, range_m=299_792.458,
...                                            rate_bps=1e9)]))
[]
>>> out = fabric.send(b"x" * 125, 0, 1, t_ns=0)   # 1 us serialization + 1 ms propagation
>>> out.arrival_ns
1001000
>>> [o.frame_id for o in fabric.poll(1_001_000)], fabric.balance().ok
([0], True)
"""

from __future__ import annotations

import enum
import heapq
import logging
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..capture.linkheader import DropReason, LinkEvent, LinkMeta
from ..errors import NetemuError
from ..geometry import C_M_PER_S
from ..timebase import NS_PER_S
from .reasons import FabricDrop
from .table import LinkTable

__all__ = [
    "Balance",
    "Fabric",
    "FabricConfig",
    "FrameStatus",
    "LinkCounters",
    "Outcome",
]

log = logging.getLogger(__name__)

_NO_LINK_ID = 0xFFFF_FFFF  # link_id written to a capture for a frame that had no link
_DRAW_BLOCK = 1024


def _ceil_ns(seconds: float) -> int:
    """Seconds -> whole nanoseconds, rounded up (1 ps of slack absorbs float noise)."""
    return math.ceil(seconds * NS_PER_S - 1e-3)


@dataclass(frozen=True, kw_only=True)
class FabricConfig:
    """Fabric settings.

    ``seed`` seeds the loss RNG (same seed and same calls -> same outcomes). ``queue_limit_frames``
    and ``queue_limit_bytes`` bound each direction's FIFO of frames waiting behind the one being
    serialized (``None`` = unbounded). ``mtu_bytes`` (``None`` = none) drops larger frames.
    """

    seed: int | None = 0
    queue_limit_frames: int | None = 64
    queue_limit_bytes: int | None = None
    mtu_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("queue_limit_frames", "queue_limit_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise NetemuError(f"FabricConfig.{name} must be an integer >= 0 or None")
        if self.mtu_bytes is not None and (
            not isinstance(self.mtu_bytes, int) or self.mtu_bytes <= 0
        ):
            raise NetemuError("FabricConfig.mtu_bytes must be an integer > 0 or None")


class FrameStatus(enum.Enum):
    IN_FLIGHT = "in-flight"
    DELIVERED = "delivered"
    DROPPED = "dropped"


@dataclass(slots=True, eq=False)
class Outcome:
    """What happened (so far) to one frame.

    :meth:`Fabric.send` returns it; a frame still ``IN_FLIGHT`` is later returned again — the
    same object, updated — by :meth:`Fabric.poll` (``DELIVERED``) or :meth:`Fabric.update`
    (``DROPPED``, ``link-down-in-flight``).

    ``arrival_ns`` is the intended arrival time whenever the frame was transmitted (also for a
    frame lost or cancelled later), ``None`` when it never was. ``range_m`` is the extrapolated
    range at departure. ``loss_draw`` is NaN when no draw was made.
    """

    frame_id: int
    link_id: int  # -1 when no link
    tx_node: int
    rx_node: int
    size_bytes: int
    sent_ns: int
    status: FrameStatus
    reason: FabricDrop | None = None
    arrival_ns: int | None = None
    queue_ns: int = 0
    serialization_ns: int = 0
    propagation_ns: int = 0
    range_m: float = math.nan
    loss_probability: float = 0.0
    loss_draw: float = math.nan
    dropped_ns: int | None = None
    frame: Any = None

    @property
    def delivered(self) -> bool:
        return self.status is FrameStatus.DELIVERED

    @property
    def delay_ns(self) -> int | None:
        """Intended one-way delay (queueing + serialization + propagation), ``None`` when the
        frame was never transmitted."""
        return None if self.arrival_ns is None else self.arrival_ns - self.sent_ns

    def meta(self, node_numbers: Any = None) -> LinkMeta:
        """Capture metadata (:class:`~netemu.capture.LinkMeta`) of a delivered or dropped frame.

        ``node_numbers`` maps node indices to the node numbers written in the capture
        (a sequence or mapping, e.g. ``[n.number for n in scenario.nodes]``); by default the
        indices themselves are written.
        """
        if self.status is FrameStatus.IN_FLIGHT:
            raise NetemuError(f"frame {self.frame_id} is still in flight: its fate is unknown")
        tx, rx = self.tx_node, self.rx_node
        if node_numbers is not None:
            tx, rx = int(node_numbers[tx]), int(node_numbers[rx])
        delivered = self.status is FrameStatus.DELIVERED
        return LinkMeta(
            link_id=self.link_id if self.link_id >= 0 else _NO_LINK_ID,
            tx_node=tx,
            rx_node=rx,
            range_m=float(self.range_m),
            delay_ns=self.delay_ns or 0,
            loss_probability=float(self.loss_probability),
            loss_draw=float(self.loss_draw),
            event=LinkEvent.DELIVERED if delivered else LinkEvent.DROPPED,
            reason=DropReason.NONE if delivered else self.reason.capture_reason,
        )


@dataclass(frozen=True)
class Balance:
    """Frame accounting: ``sent == delivered + dropped + in_flight`` always."""

    sent: int
    delivered: int
    dropped: dict[str, int]
    in_flight: int

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def ok(self) -> bool:
        return self.sent == self.delivered + self.dropped_total + self.in_flight

    def to_dict(self) -> dict:
        """The ``frames`` section of a run summary."""
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": self.dropped_total,
            "in_flight": self.in_flight,
            "balanced": self.ok,
        }


@dataclass
class LinkCounters:
    """Per-link totals (both directions): frames and bytes offered, delivered, drops by reason."""

    frames: int = 0
    bytes: int = 0
    delivered: int = 0
    dropped: Counter = field(default_factory=Counter)


class _Direction:
    """State of one direction of one link."""

    __slots__ = (
        "link_id", "up", "range_m", "range_rate_mps", "rate_bps", "loss", "t_epoch_ns",
        "busy_until_ns", "waiting", "waiting_bytes",
    )  # fmt: skip

    def __init__(self) -> None:
        self.busy_until_ns = -(1 << 62)
        self.waiting: deque[tuple[int, int]] = deque()  # (start_ns, size_bytes), FIFO
        self.waiting_bytes = 0

    def reset_queue(self) -> None:
        self.busy_until_ns = -(1 << 62)
        self.waiting.clear()
        self.waiting_bytes = 0


class Fabric:
    """The link engine (sans-IO). See the module docstring for the model.

    Host loop: :meth:`update` at every epoch (acting on the cancelled frames it returns),
    :meth:`send` for every frame a node transmits, and :meth:`poll` at (or after)
    :meth:`next_deadline` to get the frames due. Times are integer ns since the scenario epoch
    and should not go backwards.
    """

    def __init__(self, config: FabricConfig | None = None, *, table: LinkTable | None = None):
        self.config = config or FabricConfig()
        self._rng = np.random.default_rng(self.config.seed)
        self._draws: list[float] = []
        self._draw_i = 0
        self._dirs: dict[tuple[int, int], _Direction] = {}
        self._heap: list[tuple[int, int]] = []  # (arrival_ns, frame_id), lazily cleaned
        self._in_flight: dict[int, Outcome] = {}
        # frames in flight per direction (outlives a direction dropped from the table)
        self._dir_flight: dict[tuple[int, int], dict[int, Outcome]] = {}
        self._next_id = 0
        self._sent = 0
        self._delivered = 0
        self._dropped: Counter = Counter()
        self._links: dict[int, LinkCounters] = {}
        self._table: LinkTable | None = None
        if table is not None:
            self.update(table)

    # -- epochs -------------------------------------------------------------------------------

    @property
    def table(self) -> LinkTable | None:
        """The current link table (``None`` before the first :meth:`update`)."""
        return self._table

    def update(self, table: LinkTable) -> list[Outcome]:
        """Apply the link table of a new epoch; return the frames it cancels (in frame order).

        A direction that is down in ``table`` or absent from it loses its queue, and its frames
        due after ``table.t_ns`` are dropped ``link-down-in-flight``. Raises
        :class:`~netemu.errors.NetemuError` if ``table`` is older than the current one.
        """
        if self._table is not None and table.t_ns < self._table.t_ns:
            raise NetemuError(
                f"link table at t_ns={table.t_ns} is older than the current one "
                f"(t_ns={self._table.t_ns})"
            )
        t_ns = table.t_ns
        old = self._dirs
        new: dict[tuple[int, int], _Direction] = {}
        rows = zip(
            table.link_id.tolist(), table.a.tolist(), table.b.tolist(), table.up.tolist(),
            table.range_m.tolist(), table.range_rate_mps.tolist(), table.rate_bps.tolist(),
            table.loss.tolist(), table.directed.tolist(), strict=True,
        )  # fmt: skip
        for link_id, a, b, up, range_m, rate_mps, rate_bps, loss, directed in rows:
            keys = ((a, b),) if directed else ((a, b), (b, a))
            for key in keys:
                if key in new:
                    raise NetemuError(f"link table has two rows for direction {key[0]}->{key[1]}")
                d = old.get(key) or _Direction()
                d.link_id = link_id
                d.up = up
                d.range_m = range_m
                d.range_rate_mps = rate_mps
                d.rate_bps = rate_bps
                d.loss = loss
                d.t_epoch_ns = t_ns
                new[key] = d
        cancelled: list[Outcome] = []
        for key in old:
            nd = new.get(key)
            if nd is not None and nd.up:
                continue
            if nd is not None:
                nd.reset_queue()
            flying = self._dir_flight.get(key)
            if not flying:
                continue
            keep: dict[int, Outcome] = {}
            for fid, out in flying.items():
                if out.arrival_ns > t_ns:
                    self._drop(out, FabricDrop.LINK_DOWN_IN_FLIGHT, t_ns)
                    del self._in_flight[fid]
                    cancelled.append(out)
                else:  # due by t_ns: still delivered by poll()
                    keep[fid] = out
            if keep:
                self._dir_flight[key] = keep
            else:
                del self._dir_flight[key]
        self._dirs = new
        self._table = table
        if cancelled:
            cancelled.sort(key=lambda o: o.frame_id)
            log.debug("epoch t_ns=%d cancelled %d frame(s) in flight", t_ns, len(cancelled))
        return cancelled

    # -- frames -------------------------------------------------------------------------------

    def send(
        self, frame: Any, tx_node: int, rx_node: int, t_ns: int, *, link_id: int | None = None
    ) -> Outcome:
        """Offer a frame to the link ``tx_node -> rx_node`` at ``t_ns``.

        ``frame`` is the frame (anything with ``len()``, kept in ``Outcome.frame`` for the host)
        or just its length in bytes (an ``int``). ``link_id``, when given, must match the link of
        that pair (otherwise ``no-link``). Returns the :class:`Outcome`: ``IN_FLIGHT`` with its
        ``arrival_ns``, or ``DROPPED`` with the reason.
        """
        if isinstance(frame, (int, np.integer)):
            size, payload = int(frame), None
        else:
            size, payload = len(frame), frame
        if size < 0:
            raise NetemuError(f"frame length must not be negative, got {size}")
        fid = self._next_id
        self._next_id = fid + 1
        self._sent += 1
        d = self._dirs.get((tx_node, rx_node))
        if d is None or (link_id is not None and d.link_id != link_id):
            out = Outcome(fid, -1, tx_node, rx_node, size, t_ns, FrameStatus.DROPPED, frame=payload)
            return self._drop(out, FabricDrop.NO_LINK, t_ns)
        out = Outcome(fid, d.link_id, tx_node, rx_node, size, t_ns, FrameStatus.IN_FLIGHT,
                      loss_probability=d.loss, frame=payload)  # fmt: skip
        counters = self._links.get(d.link_id)
        if counters is None:
            counters = self._links[d.link_id] = LinkCounters()
        counters.frames += 1
        counters.bytes += size
        if not d.up:
            return self._drop(out, FabricDrop.LINK_DOWN, t_ns)
        cfg = self.config
        if cfg.mtu_bytes is not None and size > cfg.mtu_bytes:
            return self._drop(out, FabricDrop.TOO_BIG, t_ns)
        waiting = d.waiting
        while waiting and waiting[0][0] <= t_ns:  # these have started serializing
            d.waiting_bytes -= waiting.popleft()[1]
        start_ns = d.busy_until_ns if d.busy_until_ns > t_ns else t_ns
        if start_ns > t_ns:
            if (cfg.queue_limit_frames is not None and len(waiting) >= cfg.queue_limit_frames) or (
                cfg.queue_limit_bytes is not None and d.waiting_bytes + size > cfg.queue_limit_bytes
            ):
                return self._drop(out, FabricDrop.QUEUE_FULL, t_ns)
            waiting.append((start_ns, size))
            d.waiting_bytes += size
        rate = d.rate_bps
        ser_ns = _ceil_ns(size * 8 / rate) if rate != math.inf else 0
        depart_ns = start_ns + ser_ns
        d.busy_until_ns = depart_ns
        range_m = d.range_m + d.range_rate_mps * (depart_ns - d.t_epoch_ns) * 1e-9
        if range_m < 0.0:
            range_m = 0.0
        prop_ns = _ceil_ns(range_m / C_M_PER_S)
        out.queue_ns = start_ns - t_ns
        out.serialization_ns = ser_ns
        out.propagation_ns = prop_ns
        out.range_m = range_m
        out.arrival_ns = arrival_ns = depart_ns + prop_ns
        draw = self._draw()
        out.loss_draw = draw
        if draw < d.loss:
            return self._drop(out, FabricDrop.LOSS, t_ns)
        self._in_flight[fid] = out
        flying = self._dir_flight.get((tx_node, rx_node))
        if flying is None:
            flying = self._dir_flight[(tx_node, rx_node)] = {}
        flying[fid] = out
        heapq.heappush(self._heap, (arrival_ns, fid))
        return out

    def next_deadline(self) -> int | None:
        """The earliest arrival time among frames in flight (``None`` when none is)."""
        heap, live = self._heap, self._in_flight
        while heap and heap[0][1] not in live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def poll(self, now_ns: int) -> list[Outcome]:
        """Deliver every frame due at or before ``now_ns``, in arrival order (ties by frame id)."""
        heap, live = self._heap, self._in_flight
        due: list[Outcome] = []
        while heap and heap[0][0] <= now_ns:
            _, fid = heapq.heappop(heap)
            out = live.pop(fid, None)
            if out is None:  # cancelled
                continue
            out.status = FrameStatus.DELIVERED
            key = (out.tx_node, out.rx_node)
            flying = self._dir_flight[key]
            del flying[fid]
            if not flying:
                del self._dir_flight[key]
            self._links[out.link_id].delivered += 1
            due.append(out)
        self._delivered += len(due)
        return due

    # -- accounting ---------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def balance(self) -> Balance:
        """Counters of every frame offered so far."""
        dropped = {str(reason): n for reason, n in self._dropped.items()}
        return Balance(self._sent, self._delivered, dropped, len(self._in_flight))

    def link_counters(self) -> dict[int, LinkCounters]:
        """Per-link totals, by link id (links that carried at least one frame)."""
        return dict(self._links)

    def queue_depth(self, tx_node: int, rx_node: int, t_ns: int) -> tuple[int, int]:
        """(frames, bytes) waiting behind the transmitter of ``tx -> rx`` at ``t_ns``."""
        d = self._dirs.get((tx_node, rx_node))
        if d is None:
            return (0, 0)
        frames = [s for start, s in d.waiting if start > t_ns]
        return (len(frames), sum(frames))

    # -- internals ----------------------------------------------------------------------------

    def _drop(self, out: Outcome, reason: FabricDrop, t_ns: int) -> Outcome:
        out.status = FrameStatus.DROPPED
        out.reason = reason
        out.dropped_ns = t_ns
        self._dropped[reason] += 1
        if out.link_id >= 0:
            self._links[out.link_id].dropped[reason] += 1
        return out

    def _draw(self) -> float:
        i = self._draw_i
        if i >= len(self._draws):
            self._draws = self._rng.random(_DRAW_BLOCK).tolist()
            i = 0
        self._draw_i = i + 1
        return self._draws[i]
