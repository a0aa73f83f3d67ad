"""One node in virtual time: a :class:`~netemu.node.NodeCore` driven as the node process drives
it, without sockets, MQTT or a clock.

What :class:`SimNode` does mirrors :class:`netemu.runtime.node_host.NodeHost` action for
action: ``Transmit`` goes to the fabric (here a call into the simulator), ``Deliver`` and
``Drop`` and ``Originated`` become the same event-log rows (same columns, same sizes, the
RECORD_ROUTE column in scenario ns), delivered traffic feeds the responders, the flows'
:class:`~netemu.traffic.generators.FlowGenerator` objects decide when packets are sent, and the
end writes ``held_at_end`` rows and ``final/NUMBER.json``. What only a process has (application
port, ping commands, telemetry, MQTT) is absent.
"""

from __future__ import annotations

import collections
import json
import logging

from ..errors import ProtocolError
from ..node import Deliver, Drop, NodeCore, Originated, Transmit
from ..protocol import MessageType, RecordRoute, encode
from ..traffic.generators import FlowGenerator
from ..traffic.spec import (
    TRAFFIC_PAYLOAD_TYPE,
    FlowSpec,
    ResponderSpec,
    parse_traffic_payload,
    payload_bytes,
    traffic_payload,
)
from .events import EventFiles

__all__ = ["SimNode"]

log = logging.getLogger(__name__)

_LOGGED_ORIGINS = frozenset({MessageType.DATA, MessageType.ECHO_REQUEST, MessageType.ECHO_REPLY})
_DATA = MessageType.DATA


class SimNode:
    """Node ``number`` (link-table index ``index``) of a simulation.

    ``transmit(index, neighbour_number, frame, now)`` is the simulator's fabric entry point.
    """

    def __init__(
        self,
        *,
        number: int,
        name: str,
        index: int,
        epoch_dtn_ns: int,
        events: EventFiles,
        transmit,
        flows: list[FlowSpec] = (),
        responders: list[ResponderSpec] = (),
        seed: int = 0,
        queue_limit_packets: int = 10_000,
        hold_on_no_route: bool = False,
    ):
        self.number = number
        self.name = name
        self.index = index
        self.epoch_dtn_ns = epoch_dtn_ns
        self.core = NodeCore(
            number,
            epoch_dtn_ns=epoch_dtn_ns,
            node_name=name,
            queue_limit_packets=queue_limit_packets,
            hold_on_no_route=hold_on_no_route,
        )
        self._events = events
        self._transmit = transmit
        self.flows = list(flows)
        self.responders = list(responders)
        self._responder_by_flow: dict[int, list[ResponderSpec]] = collections.defaultdict(list)
        for r in self.responders:
            for flow_id in r.flows:
                self._responder_by_flow[flow_id].append(r)
        self.generators = [FlowGenerator(f, seed=seed) for f in self.flows]
        self.counters: collections.Counter = collections.Counter()
        self.flow_counts: dict[int, collections.Counter] = collections.defaultdict(
            collections.Counter
        )
        self.table_epoch = -1
        self.frames_in = self.frames_out = 0  # hot counters, kept apart from the Counter
        self.traffic_on = True
        self.tick_at: int | None = None  # the simulator's pending timer for core deadlines
        self._frame_len: int | None = None

    # ------------------------------------------------------------------ entry points
    def receive(self, frame: bytes, prev_number: int, now: int, packet=None) -> None:
        """A frame from the fabric (``prev_number`` is the previous hop; ``packet`` its decoded
        form when the previous hop forwarded it, see :meth:`carry_out`)."""
        self.frames_in += 1
        self._frame_len = len(frame)
        actions = self.core.receive(frame, prev_number, now, packet=packet)  # never raises for
        self.carry_out(actions, now)  # bad octets; anything else ends the run anyway
        self._frame_len = None

    def install(self, table, epoch: int, now: int) -> None:
        """Install this epoch's table (only nodes whose table changed get one, as live)."""
        if epoch < self.table_epoch:
            self.counters["tables_stale"] += 1
            return
        self.table_epoch = epoch
        self.counters["tables_received"] += 1
        self.counters["tables_installed"] += 1
        self.carry_out(self.core.set_table(table, now), now)

    def link(self, neighbour: int, up: bool, now: int) -> None:
        self.counters["link_events"] += 1
        if up:
            self.carry_out(self.core.link_up(neighbour, now), now)
        else:
            self.carry_out(self.core.link_down(neighbour, now), now)

    def tick(self, now: int) -> None:
        deadline = self.core.next_deadline_ns()
        if deadline is not None and deadline <= now:
            self.carry_out(self.core.tick(now), now)

    def send_due(self, gen: FlowGenerator, now: int) -> None:
        """The packets of ``gen`` due at ``now`` (as the node process's timer does)."""
        flow = gen.flow
        length = flow.payload_bytes
        for seq in gen.take(now):
            self._send_traffic(flow.flow_id, seq, flow.dst, length, flow.record_route, now)

    def stop_traffic(self) -> None:
        self.traffic_on = False
        for gen in self.generators:
            gen.stop()

    # ------------------------------------------------------------------ actions
    def carry_out(self, actions, now: int) -> None:
        for action in actions:
            kind = type(action)
            if kind is Transmit:
                self.frames_out += 1
                packet = action.packet  # exactly decode(frame) when forwarded (not created here)
                relayed = packet if packet.src != self.number else None
                self._transmit(self.index, action.neighbour, action.frame, now, relayed)
            elif kind is Deliver:
                self._on_deliver(action, now)
            elif kind is Drop:
                self._on_drop(action, now)
            elif kind is Originated:
                packet = action.packet
                if packet.type in _LOGGED_ORIGINS:
                    self._row("originated", packet, now, size=len(encode(packet)))

    def _row(self, event: str, packet, now: int, *, size: int, **extra) -> None:
        flow_id = seq = None
        if packet.type is _DATA and packet.payload_type == TRAFFIC_PAYLOAD_TYPE:
            parsed = parse_traffic_payload(packet.body)
            if parsed is not None:
                flow_id, seq = parsed
        self._events.write(
            self.number,
            t_ns=now,
            where=self.number,
            event=event,
            src=packet.src,
            dst=packet.dst,
            packet_id=packet.packet_id,
            creation_dtn_ns=packet.creation_time_ns,
            msg_type=packet.type.name,
            size_bytes=size,
            flow_id=flow_id,
            seq=seq,
            **extra,
        )

    def _on_drop(self, action: Drop, now: int) -> None:
        packet = action.packet
        self.counters["drops_logged"] += 1
        if packet is None:
            self._events.write(
                self.number,
                t_ns=now,
                where=self.number,
                event="dropped",
                size_bytes=len(action.item),
                reason=str(action.reason),
            )
            return
        size = self._frame_len if self._frame_len is not None else len(encode(packet))
        self._row("dropped", packet, now, size=size, reason=str(action.reason))

    def _on_deliver(self, action: Deliver, now: int) -> None:
        packet = action.packet
        prev = action.from_neighbour
        size = self._frame_len if prev is not None and self._frame_len else len(encode(packet))
        hops = route = None
        rr = None
        for ext in packet.extensions:
            if isinstance(ext, RecordRoute):
                rr = ext
                break
        if rr is not None:
            epoch = self.epoch_dtn_ns
            hops = len(rr.hops) + rr.missed
            route = ";".join(f"{h.node}@{h.time_ns - epoch}" for h in rr.hops)
        self._row("delivered", packet, now, size=size, rx=prev, hops=hops, route=route)
        ptype = packet.type
        if ptype is _DATA:
            self.counters["data_delivered"] += 1
            if packet.payload_type == TRAFFIC_PAYLOAD_TYPE:
                parsed = parse_traffic_payload(packet.body)
                if parsed is not None:
                    self._on_traffic(parsed[0], parsed[1], size, now)
        elif ptype is MessageType.ECHO_REPLY:
            self.counters["echo_replies_unmatched"] += 1

    def _on_traffic(self, flow_id: int, seq: int, size: int, now: int) -> None:
        self.flow_counts[flow_id]["received"] += 1
        if not self.traffic_on:
            return
        for r in self._responder_by_flow.get(flow_id, ()):
            length = payload_bytes(r.result_size_bytes(size), record_route=r.record_route)
            self._send_traffic(r.flow_id, seq, r.dst, length, r.record_route, now)

    def _send_traffic(self, flow_id, seq, dst, length, record_route, now) -> None:
        try:
            actions = self.core.send_local(
                dst,
                traffic_payload(flow_id, seq, length),
                now,
                payload_type=TRAFFIC_PAYLOAD_TYPE,
                record_route=record_route,
            )
        except (ProtocolError, ValueError) as exc:
            self.counters["traffic_errors"] += 1
            log.warning("node %d: flow %d cannot send: %s", self.number, flow_id, exc)
            return
        self.flow_counts[flow_id]["sent"] += 1
        self.carry_out(actions, now)

    # ------------------------------------------------------------------ end of run
    def finish(self, now: int, path) -> None:
        """``held_at_end`` rows and ``final/NUMBER.json`` (as the node process at ``stopped``)."""
        self.stop_traffic()
        for key in ("frames_in", "frames_out"):
            if getattr(self, key):
                self.counters[key] = getattr(self, key)
        for packet in self.core.held_packets():
            self._row("held_at_end", packet, now, size=len(encode(packet)))
        final = {
            "number": self.number,
            "name": self.name,
            "pid": None,
            "t_ns": now,
            "run_state": "stopped",
            "core": self.core.stats(),
            "host": dict(sorted(self.counters.items())),
            "flows": {str(k): dict(v) for k, v in sorted(self.flow_counts.items())},
            "table_epoch": self.table_epoch,
            "event_rows": self._events.rows_by[self.number],
        }
        path.write_text(json.dumps(final, indent=1))
