"""The discrete-event engine: every node core and the fabric core in one process, virtual time.

:class:`Simulation` runs what a live run's processes run, on one heap of events instead of
timers and sockets:

* **epochs** (``t = k * epoch``): :class:`~netemu.control.controller.EpochComputer` computes
  the link table and the changed forwarding tables exactly as the controller does; the link
  table goes through its JSON form into :meth:`Fabric.update` (as the fabric process receives
  it), the frames it cancels are logged, nodes whose table changed install it (a
  :class:`~netemu.sim.tables.MatrixTable`, see there), then nodes whose links changed get
  ``link_up`` / ``link_down`` (the fabric process's LINK datagrams);
* **frame arrivals** (:meth:`Fabric.next_deadline` / :meth:`Fabric.poll`): the frame goes to
  the receiving node's core at its arrival time exactly;
* **node timers**: a flow generator's next packet, a node core's next deadline (held packets).

Ties at one instant: epoch first, then arrivals (by arrival time, then frame id, as the fabric
core orders them), then timers in the order they were scheduled. The heap's sequence number
makes that order total, so a run is a pure function of scenario, options and seed. The wall
clock is read only for the progress display and :attr:`Simulation.stats`.
"""

from __future__ import annotations

import gc
import heapq
import json
import logging
import signal
import threading
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np

from ..control.controller import EPOCH_CSV_COLUMNS, _CsvFile
from ..fabric import Fabric, FabricConfig, FabricDrop, FrameStatus, LinkTable
from ..fabric.fidelity import FidelityReport
from ..runtime.fabric_host import sgp_peek
from ..runtime.layout import RunLayout
from ..timebase import NS_PER_S, format_utc
from .events import EventFiles
from .node import SimNode
from .routes import LocalRoutes, RouteWorker
from .tables import EpochMatrices, MatrixTable

__all__ = ["Simulation"]

log = logging.getLogger(__name__)

_EPOCH, _TIMER = 0, 2  # event classes at one instant (frame arrivals are class 1)
_GEN, _TICK, _STOP = 0, 1, 2
_NO_LINK_ID = 0xFFFF_FFFF
_DROPPED = FrameStatus.DROPPED
#: Loop iterations between looks at the wall clock (progress display).
_PROGRESS_EVERY = 4096


class Simulation:
    """One simulated run of ``scenario`` writing the live run's files below ``layout``.

    ``traffic`` is a :class:`~netemu.traffic.Traffic` (or ``None``). Call :meth:`run` once;
    it returns the run statistics that go into the summary (no wall-clock values); the
    wall-clock measurements are in :attr:`stats` afterwards.
    """

    def __init__(
        self,
        scenario,
        *,
        layout: RunLayout,
        duration_ns: int,
        epoch_ns: int,
        routing="snapshot",
        traffic=None,
        capture: bool = False,
        seed: int = 0,
        queue_limit_frames: int = 64,
        epoch_dtn_ns: int = 0,
        on_progress=None,
        route_worker: bool = False,
    ):
        self.scenario = scenario
        self.layout = layout
        self.duration_ns = int(duration_ns)
        self.epoch_ns = int(epoch_ns)
        self.n_epochs = -(-self.duration_ns // self.epoch_ns)
        nodes = scenario.nodes
        if route_worker:
            self.routes = RouteWorker(
                scenario,
                len(nodes),
                routing=routing,
                epoch_ns=self.epoch_ns,
                duration_ns=self.duration_ns,
            )
        else:
            self.routes = LocalRoutes(
                scenario, routing=routing, epoch_ns=self.epoch_ns, duration_ns=self.duration_ns
            )
        self.numbers = [n.number for n in nodes]
        self.names = [n.name for n in nodes]
        self.index_of = {n: i for i, n in enumerate(self.numbers)}
        self.events = EventFiles(layout, [*self.numbers, "fabric"])
        self.fabric = Fabric(FabricConfig(seed=seed, queue_limit_frames=queue_limit_frames))
        self._send = self.fabric.send
        self.matrices = EpochMatrices(np.array(self.numbers, dtype=np.int64))
        self.nodes: list[SimNode] = []
        self.tables: list[MatrixTable] = []
        for i, node in enumerate(nodes):
            flows = traffic.flows_from(node.number) if traffic else []
            responders = traffic.responders_at(node.number) if traffic else []
            self.nodes.append(
                SimNode(
                    number=node.number,
                    name=node.name,
                    index=i,
                    epoch_dtn_ns=epoch_dtn_ns,
                    events=self.events,
                    transmit=self._transmit,
                    flows=flows,
                    responders=responders,
                    seed=seed,
                )
            )
            self.tables.append(MatrixTable(node.number, i, self.matrices))
        self._capture = None
        if capture:
            from ..runtime.fabric_host import _CaptureSet

            cfg = SimpleNamespace(
                epoch_utc=format_utc(scenario.epoch_utc),
                node_names=self.names,
                node_numbers=self.numbers,
                node_kinds=[n.kind for n in nodes],
            )
            self._capture = _CaptureSet(layout, cfg)
        self.on_progress = on_progress
        self.now_ns = 0
        self._heap: list = []
        self._seq = 0
        # frame id -> (fabric outcome, the sender's decoded packet when it forwarded it)
        self._in_flight: dict[int, tuple] = {}
        self._link_ends: dict[int, tuple[int, int]] = {}
        self._link_up: dict[int, bool] = {}
        self._host_dropped: Counter = Counter()
        self._host_sent = 0
        self._epoch_csv = None
        self.epochs: list[dict] = []
        self.route_changes = 0
        self.control = {"table_updates": 0, "table_bytes": 0, "link_tables": 0,
                        "link_table_bytes": 0}  # fmt: skip
        self.stats: dict = {}
        self._compute_s: list[float] = []
        self._wait_s = 0.0
        self._first_wait_s = 0.0
        self._loop0 = time.perf_counter()
        self._deliveries = self._handled = 0
        self._interrupted = False
        self._plan_ms = 0.0
        self._loop_events = Counter()

    # ------------------------------------------------------------------ scheduling
    def _push(self, t_ns: int, cls: int, kind: int, *args) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t_ns, cls, self._seq, kind, args))

    def _schedule_tick(self, node: SimNode) -> None:
        deadline = node.core.next_deadline_ns()
        if deadline is None:
            return
        if node.tick_at is None or deadline < node.tick_at:
            node.tick_at = deadline
            self._push(deadline, _TIMER, _TICK, node)

    # ------------------------------------------------------------------ fabric side
    def _transmit(self, tx: int, rx_number: int, frame: bytes, now: int, packet=None) -> None:
        """``packet``: ``decode(frame)`` when the sender has it (a forwarded packet), handed to
        the receiving node's core with the frame so that it need not decode it again."""
        rx = self.index_of.get(rx_number)
        if rx is None:
            self._drop_unknown_rx(now, tx, rx_number, frame)
            return
        out = self._send(frame, tx, rx, now)
        if out.status is _DROPPED:
            self._log_drop(out)
        else:
            self._in_flight[out.frame_id] = (out, packet)

    def _drop_unknown_rx(self, t_ns: int, tx: int, rx_number: int, frame: bytes) -> None:
        self._host_sent += 1
        self._host_dropped[str(FabricDrop.NO_LINK)] += 1
        self.events.write(
            "fabric", t_ns=t_ns, where=0, event="dropped", size_bytes=len(frame),
            reason=str(FabricDrop.NO_LINK), tx=self.numbers[tx], rx=rx_number, **sgp_peek(frame),
        )  # fmt: skip
        if self._capture is not None:
            from ..capture import DropReason, LinkEvent, LinkMeta

            meta = LinkMeta(
                _NO_LINK_ID, self.numbers[tx], rx_number, float("nan"), 0,
                event=LinkEvent.DROPPED, reason=DropReason.LINK_DOWN,
            )  # fmt: skip
            self._capture.write(t_ns, frame, meta, tx, -1, None, rx_number)

    def _log_drop(self, out) -> None:
        frame = out.frame
        self.events.write(
            "fabric",
            t_ns=out.dropped_ns if out.dropped_ns is not None else out.sent_ns,
            where=0,
            event="dropped",
            size_bytes=out.size_bytes,
            reason=str(out.reason),
            tx=self.numbers[out.tx_node],
            rx=self.numbers[out.rx_node],
            link_id=out.link_id if out.link_id >= 0 else None,
            **(sgp_peek(frame) if frame is not None else {}),
        )
        if self._capture is not None:
            self._capture_out(out)

    def _capture_out(self, out) -> None:
        link = self._link_ends.get(out.link_id) if out.link_id >= 0 else None
        meta = out.meta(self.numbers)
        self._capture.write(out.sent_ns, out.frame, meta, out.tx_node, out.rx_node, link)

    def _deliver(self, now: int) -> int:
        due = self.fabric.poll(now)
        in_flight, nodes, numbers = self._in_flight, self.nodes, self.numbers
        capture = self._capture
        # Every frame arrives at its intended time exactly: the delay error is 0, so the
        # fidelity report is made from the count (no FidelityRecorder.record per frame).
        for out in due:
            packet = in_flight.pop(out.frame_id)[1]
            if capture is not None:
                self._capture_out(out)
            node = nodes[out.rx_node]
            node.receive(out.frame, numbers[out.tx_node], now, packet)
            if node.core.held:
                self._schedule_tick(node)
        return len(due)

    # ------------------------------------------------------------------ epochs
    def _epoch(self, k: int, now: int) -> None:
        t = time.perf_counter()
        data = self.routes.get(k)
        waited = time.perf_counter() - t
        self._wait_s += waited
        if k == 0:
            self._first_wait_s = waited  # start-up: the worker's set-up and epoch 0
        self._compute_s.append(data.compute_s)
        self._plan_ms = data.plan_ms
        self.control["link_tables"] += 1
        self.control["link_table_bytes"] += len(data.links_json)
        self.control["table_updates"] += len(data.published)
        self.control["table_bytes"] += data.table_bytes
        table = LinkTable.from_dict(json.loads(data.links_json))
        for out in self.fabric.update(table):
            self._in_flight.pop(out.frame_id, None)
            self._log_drop(out)
        self.matrices.update(data.last_epoch)
        for number in data.published:
            i = self.index_of[number]
            node = self.nodes[i]
            node.install(self.tables[i], k, now)
            if node.core.held:
                self._schedule_tick(node)
        self._apply_links(table, now)
        self.route_changes += data.route_changes
        row = data.row | {"slack_ms": None}
        self.epochs.append(row)
        self._epoch_csv.write(row)
        if k + 1 < self.n_epochs:
            self._push((k + 1) * self.epoch_ns, _EPOCH, _EPOCH, k + 1)
        if self.on_progress is not None:
            self.on_progress(now, time.perf_counter() - self._loop0)

    def _apply_links(self, table: LinkTable, now: int) -> None:
        """LINK up/down to both ends of every link whose state changed (the fabric process)."""
        new_up: dict[int, bool] = {}
        ends = self._link_ends
        rows = zip(table.link_id.tolist(), table.a.tolist(), table.b.tolist(), table.up.tolist(),
                   strict=True)  # fmt: skip
        for link_id, a, b, up in rows:
            ends[link_id] = (a, b)
            new_up[link_id] = new_up.get(link_id, False) or up
        old_up = self._link_up
        nodes, numbers = self.nodes, self.numbers
        for link_id in sorted(new_up.keys() | old_up.keys()):
            up = new_up.get(link_id, False)
            if up != old_up.get(link_id, False):
                a, b = ends[link_id]
                nodes[a].link(numbers[b], up, now)
                nodes[b].link(numbers[a], up, now)
                for node in (nodes[a], nodes[b]):
                    if node.core.held:
                        self._schedule_tick(node)
        self._link_up = new_up

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict:
        """Simulate ``[0, duration)``; write the event logs, final files and epochs.csv."""
        wall0 = time.perf_counter()
        try:
            self.routes.start()
            prepare_s = time.perf_counter() - wall0
            return self._run(wall0, prepare_s)
        finally:
            self.routes.close()

    def _run(self, wall0: float, prepare_s: float) -> dict:
        self._epoch_csv = _CsvFile(self.layout.epochs_csv, EPOCH_CSV_COLUMNS)
        end = self.duration_ns
        self._push(0, _EPOCH, _EPOCH, 0)
        for node in self.nodes:
            for gen in node.generators:
                if gen.next_ns is not None:
                    self._push(gen.next_ns, _TIMER, _GEN, node, gen)
        counts = self._loop_events
        loop0 = self._loop0 = time.perf_counter()
        cpu0 = time.process_time()
        # The loop allocates packets, frames and event rows by the million and frees them by
        # reference counting; the cyclic collector would walk every live object (nodes, heaps,
        # buffered rows) again and again for nothing. Off during the loop, back on after.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        stop_reason = "duration"
        # Ctrl-C stops the loop between two events (a second one aborts), as a live run stops
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            self._loop(end, loop0)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if gc_was_enabled:
                gc.enable()
        if self._interrupted:
            stop_reason = "interrupted"
            end = self.now_ns
            log.warning("interrupted at t = %.3f s; writing the results", end / NS_PER_S)
        loop_s = time.perf_counter() - loop0
        loop_cpu_s = time.process_time() - cpu0
        deliveries, handled = self._deliveries, self._handled
        self.now_ns = end
        counts["deliveries"] = deliveries
        counts["timers_and_epochs"] = handled
        self._finish(end)
        if self.on_progress is not None:
            self.on_progress(end, loop_s)
        wall_s = time.perf_counter() - wall0
        events = deliveries + handled
        duration_s = end / NS_PER_S
        self.stats = {
            "wall_s": round(wall_s, 3),
            "loop_s": round(loop_s, 3),
            "prepare_s": round(prepare_s, 3),
            "speedup": round(duration_s / wall_s, 3) if wall_s > 0 else None,
            "loop_speedup": round(duration_s / loop_s, 3) if loop_s > 0 else None,
            # CPU time of this process in the loop (the route worker runs beside it): what
            # the loop costs on an otherwise idle machine, whatever else was running
            "loop_cpu_s": round(loop_cpu_s, 3),
            "loop_cpu_speedup": round(duration_s / loop_cpu_s, 3) if loop_cpu_s > 0 else None,
            "events": events,
            "frame_deliveries": deliveries,
            "timer_and_epoch_events": handled,
            "events_per_s": round(events / loop_s, 1) if loop_s > 0 else None,
            "route_compute_s": {
                "total": round(sum(self._compute_s), 3),
                "median": round(sorted(self._compute_s)[len(self._compute_s) // 2], 4)
                if self._compute_s
                else None,
                "max": round(max(self._compute_s), 4) if self._compute_s else None,
                "per_epoch": [round(s, 4) for s in self._compute_s],
            },
            "plan_ms": round(self._plan_ms, 3),
            "route_worker": isinstance(self.routes, RouteWorker),
            "waited_for_routes_s": round(self._wait_s, 3),
            "waited_for_epoch0_s": round(self._first_wait_s, 3),
            # the loop after epoch 0 was ready: what a long run converges to
            "steady_speedup": round(duration_s / (loop_s - self._first_wait_s), 3)
            if loop_s > self._first_wait_s
            else None,
        }
        return {
            "epochs": len(self.epochs),
            "stop_reason": stop_reason,
            "t_end_ns": end,
            "route_changes": self.route_changes,
            "dead_nodes": [],
        }

    def _loop(self, end: int, loop0: float) -> None:
        """Run events before ``end``; counts go to ``_deliveries`` / ``_handled`` (also when
        interrupted)."""
        heap, fabric = self._heap, self.fabric
        pop = heapq.heappop
        deliveries = handled = 0
        next_look = _PROGRESS_EVERY
        iterations = 0
        try:
            while not self._interrupted:
                t_f = fabric.next_deadline()
                if heap:
                    top = heap[0]
                    use_fabric = t_f is not None and (
                        t_f < top[0] or (t_f == top[0] and top[1] > 1)
                    )
                elif t_f is not None:
                    use_fabric = True
                else:
                    break
                t = t_f if use_fabric else heap[0][0]
                if t >= end:
                    break
                self.now_ns = t
                if use_fabric:
                    deliveries += self._deliver(t)
                else:
                    _, cls, _, kind, args = pop(heap)
                    handled += 1
                    if cls == _EPOCH:
                        self._epoch(args[0], t)
                    elif kind == _GEN:
                        node, gen = args
                        node.send_due(gen, t)
                        if gen.next_ns is not None:
                            self._push(gen.next_ns, _TIMER, _GEN, node, gen)
                        if node.core.held:
                            self._schedule_tick(node)
                    else:  # _TICK
                        node = args[0]
                        if node.tick_at is not None and node.tick_at <= t:
                            node.tick_at = None
                        node.tick(t)
                        if node.core.held:
                            self._schedule_tick(node)
                iterations += 1
                if iterations >= next_look:
                    next_look += _PROGRESS_EVERY
                    if self.on_progress is not None:
                        self.on_progress(t, time.perf_counter() - loop0)
        finally:
            self._deliveries, self._handled = deliveries, handled

    def _on_sigint(self, signum, frame) -> None:
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True

    def _finish(self, end: int) -> None:
        """The stop sequence: traffic stops, nothing more is delivered; what is held or in
        flight is logged at ``end``; final files."""
        layout = self.layout
        for node in self.nodes:
            node.stop_traffic()
        numbers = self.numbers
        for out, _ in sorted(self._in_flight.values(), key=lambda v: v[0].frame_id):
            self.events.write(
                "fabric", t_ns=end, where=0, event="in_flight_at_end", size_bytes=out.size_bytes,
                tx=numbers[out.tx_node], rx=numbers[out.rx_node], link_id=out.link_id,
                **sgp_peek(out.frame),
            )  # fmt: skip
        for node in self.nodes:
            node.finish(end, layout.final(node.number))
        self._epoch_csv.close()
        self.events.close()
        final = self._fabric_final(end)
        layout.final("fabric").write_text(json.dumps(final, indent=1))
        if self._capture is not None:
            self._capture.close()

    def _fabric_final(self, end: int) -> dict:
        core = self.fabric.balance()
        dropped = Counter(core.dropped)
        dropped.update(self._host_dropped)
        sent = core.sent + self._host_sent
        dropped_total = sum(dropped.values())
        frames = {
            "sent": sent,
            "delivered": core.delivered,
            "dropped": dict(sorted(dropped.items())),
            "dropped_total": dropped_total,
            "in_flight_at_end": core.in_flight,
            "balanced": sent == core.delivered + dropped_total + core.in_flight,
        }
        n = core.delivered
        zero = 0.0 if n else None
        fid = FidelityReport(n, zero, zero, zero, zero, zero, 0)
        names, numbers = self.names, self.numbers
        links = []
        for link_id, c in sorted(self.fabric.link_counters().items()):
            a, b = self._link_ends[link_id]
            links.append(
                {
                    "link_id": link_id,
                    "a": names[a],
                    "b": names[b],
                    "a_number": numbers[a],
                    "b_number": numbers[b],
                    "frames": c.frames,
                    "bytes": c.bytes,
                    "delivered": c.delivered,
                    "dropped": dict(sorted((str(k), v) for k, v in c.dropped.items())),
                    "up_at_end": self._link_up.get(link_id, False),
                }
            )

        def clean(v: float):
            return None if v != v else v

        return {
            "run_id": None,
            "t_ns": end,
            "frames": frames,
            "engine": core.to_dict(),
            "fidelity": {
                "count": fid.count,
                "p50_s": clean(fid.p50_s),
                "p95_s": clean(fid.p95_s),
                "p99_s": clean(fid.p99_s),
                "max_s": clean(fid.max_s),
                "min_s": clean(fid.min_s),
                "early": fid.early,
            },
            "links": links,
            "received_while_stopping": 0,
            "link_tables": {
                "applied": len(self.epochs),
                "rejected": 0,
                "pending_at_end": 0,
                "apply_late_max_s": 0.0,
            },  # fmt: skip
            "nodes": {
                str(n): {"name": names[i], "attached": True, "offline": False}
                for i, n in enumerate(numbers)
            },
            "capture": (
                {
                    "merged": str(self.layout.merged_capture),
                    "links": sorted(self._capture.link_files),
                }  # fmt: skip
                if self._capture is not None
                else None
            ),
        }
