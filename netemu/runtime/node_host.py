"""The node process (``netemu node --config F``): hosts one :class:`~netemu.node.NodeCore`.

It speaks the contract of docs/runtime.md:

- **Fabric** (UDP): ATTACH every 0.2 s until ATTACHED; FRAME datagrams in go to
  ``core.receive`` (the header names the previous hop), ``Transmit`` actions go out as FRAME
  datagrams addressed to the next hop; LINK datagrams call ``link_up`` / ``link_down``.
- **Application port** (UDP on ``app_host:app_port``): a datagram is sent as SGP DATA; DATA
  delivered here goes to the address that last wrote to the port.
- **MQTT**: retained ``run`` (clock ``t0_mono_ns``, state), retained ``node/N/table`` (installed
  at ``valid_from_ns``), ``node/N/cmd`` (``ping``, ``trace``, ``send``); publishes retained
  ``node/N/status`` (``ready`` once attached, ``stopped`` at the end, last will ``offline``),
  ``node/N/telemetry`` and ``node/N/reply/ID``.
- **Traffic**: the flows (generators) and responders of its config, from their ``start_ns``.
- **Accounting**: ``OUT/run/events/N.csv`` rows and ``OUT/run/final/N.json`` at the end.

Malformed input (fabric, application port, MQTT) is counted in the host counters and dropped;
it never ends the process. Imports are kept to what a node needs: 200 of these start on 2 cores.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import heapq
import json
import logging
import os
import signal
import time
from pathlib import Path

from ..control.mqtt import connect, decode_json, encode_json
from ..control.topics import Topics
from ..errors import NetemuError, ProtocolError
from ..node import Deliver, Drop, NodeCore, Originated, Transmit
from ..protocol import MessageType, RecordRoute, encode
from ..routing.tables import ForwardingTable
from ..traffic.generators import FlowGenerator
from ..traffic.spec import (
    TRAFFIC_PAYLOAD_TYPE,
    FlowSpec,
    ResponderSpec,
    parse_traffic_payload,
    payload_bytes,
    traffic_payload,
)
from .clock import RunClock, die_with_parent
from .config import NodeHostConfig, load_config
from .eventlog import EventLog
from .layout import RunLayout
from .wire import APP_FLAG_RECORD_ROUTE, Kind, decode_app, decode_attachment, encode_app
from .wire import encode_attachment as _enc

__all__ = ["NodeHost", "main"]

log = logging.getLogger(__name__)

ATTACH_INTERVAL_S = 0.2
FLUSH_INTERVAL_S = 0.2
MQTT_RETRY_S = 1.0
#: Message types whose creation is logged as ``originated`` (not HELLO, ACK, NACK, ROUTE).
_LOGGED_ORIGINS = frozenset({MessageType.DATA, MessageType.ECHO_REQUEST, MessageType.ECHO_REPLY})
_FRAME = Kind.FRAME


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_datagram):
        self.on_datagram = on_datagram

    def datagram_received(self, data, addr):
        self.on_datagram(data, addr)

    def error_received(self, exc):  # ICMP port unreachable and the like: nothing to do
        log.debug("UDP error: %s", exc)


class NodeHost:
    """One node process as an async context manager owning its sockets and tasks.

    >>> async def run(config):  # doctest: +SKIP
    ...     async with NodeHost(config) as host:
    ...         await host.wait()          # until run state "stopped" or host.stop()
    """

    def __init__(self, config: NodeHostConfig):
        self.config = config
        self.number = config.number
        self.topics = Topics(config.run_id)
        self.layout = RunLayout(Path(config.out))
        self.core = NodeCore(
            config.number,
            epoch_dtn_ns=config.epoch_dtn_ns,
            node_name=config.name,
            queue_limit_packets=config.queue_limit_packets,
            hold_on_no_route=config.hold_on_no_route,
        )
        self.flows = [FlowSpec.from_dict(f) for f in config.flows]
        self.responders = [ResponderSpec.from_dict(r) for r in config.responders]
        self._responder_by_flow: dict[int, list[ResponderSpec]] = collections.defaultdict(list)
        for r in self.responders:
            for flow_id in r.flows:
                self._responder_by_flow[flow_id].append(r)
        self.counters: collections.Counter = collections.Counter()
        self.flow_counts: dict[int, collections.Counter] = collections.defaultdict(
            collections.Counter
        )
        self.clock: RunClock | None = None
        self.run_state = "starting"
        self.app_port: int | None = None
        self.app_addr = None
        self._generators: list[FlowGenerator] = []
        self._traffic_on = True
        self._tables: list = []  # heap of (valid_from_ns, seq, epoch, table)
        self._table_seq = 0
        self._table_epoch = -1
        self._timer: asyncio.TimerHandle | None = None
        self._timer_target: int | None = None
        self._probes: dict[tuple[int, int], asyncio.Future] = {}
        self._next_ident = (os.getpid() * 7919) & 0xFFFF
        self._stop = asyncio.Event()
        self._attached = asyncio.Event()
        self._mqtt = None
        self._ready_sent = False
        self._tasks: set[asyncio.Task] = set()
        self._fabric = None
        self._app = None
        self._events: EventLog | None = None
        self._finished = False
        self._frame_len: int | None = None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> NodeHost:
        loop = self._loop = asyncio.get_running_loop()
        cfg = self.config
        # a node started again during a run (netemu fault node-restart) appends to its file
        self._events = EventLog(self.layout.events(self.number), append=True)
        self._fabric, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._on_fabric), remote_addr=(cfg.fabric_host, cfg.fabric_port)
        )
        self._app, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._on_app), local_addr=(cfg.app_host, cfg.app_port)
        )
        self.app_port = self._app.get_extra_info("sockname")[1]
        for coro in (self._attach_loop(), self._mqtt_loop(), self._periodic_loop()):
            self._spawn(coro)
        log.info("node %d (%s) app port %d", self.number, cfg.name, self.app_port)
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            await self.finish()
        finally:
            await self._close()

    def stop(self) -> None:
        """End the process: :meth:`wait` returns, the exit writes the final files."""
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("node %d: task failed: %r", self.number, exc, exc_info=exc)
            self.counters["task_errors"] += 1

    async def finish(self) -> None:
        """Log held packets (``held_at_end``), write the final JSON, publish ``stopped``."""
        if self._finished:
            return
        self._finished = True
        self._stop_traffic()
        now = self.now_ns()
        events = self._events
        for packet in self.core.held_packets():
            self._row("held_at_end", packet, now, size=len(encode(packet)))
        final = self.final_report(now)
        path = self.layout.final(self.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(final, indent=1))
        tmp.replace(path)
        if events is not None:
            events.close()
        if self._mqtt is not None:
            try:
                await asyncio.wait_for(
                    self._mqtt.publish(
                        self.topics.node_status(self.number),
                        encode_json(self._status("stopped")),
                        qos=1,
                        retain=True,
                    ),
                    timeout=2.0,
                )
            except Exception as exc:  # broker gone: the final file is what matters
                log.warning("node %d: could not publish stopped status: %r", self.number, exc)
        log.info("node %d stopped: %s", self.number, final["core"])

    async def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for transport in (self._fabric, self._app):
            if transport is not None:
                transport.close()

    def final_report(self, now_ns: int) -> dict:
        return {
            "number": self.number,
            "name": self.config.name,
            "pid": os.getpid(),
            "t_ns": now_ns,
            "run_state": self.run_state,
            "core": self.core.stats(),
            "host": dict(sorted(self.counters.items())),
            "flows": {str(k): dict(v) for k, v in sorted(self.flow_counts.items())},
            "table_epoch": self._table_epoch,
            "event_rows": self._events.rows if self._events is not None else 0,
        }

    # ------------------------------------------------------------------ time
    def now_ns(self) -> int:
        """Scenario time; 0 until the ``run`` message gives the clock."""
        clock = self.clock
        return clock.now_ns() if clock is not None else 0

    def _schedule(self) -> None:
        """One timer for the earliest of: core deadline, a table to install, a packet to send."""
        if self.clock is None or self._finished:
            return
        target = self.core.next_deadline_ns()
        if self._tables:
            t = self._tables[0][0]
            target = t if target is None or t < target else target
        for gen in self._generators:
            t = gen.next_ns
            if t is not None and (target is None or t < target):
                target = t
        if target is None:
            return
        if self._timer is not None:
            if self._timer_target <= target:
                return
            self._timer.cancel()
        delay_s = max(0.0, (target - self.clock.now_ns()) / 1e9)
        self._timer_target = target
        self._timer = self._loop.call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_target = None
        try:
            self._service()
        except Exception:  # never let a bug stop the timer chain
            log.exception("node %d: timer service failed", self.number)
            self.counters["service_errors"] += 1
        self._schedule()

    def _service(self) -> None:
        now = self.now_ns()
        while self._tables and self._tables[0][0] <= now:
            _, _, epoch, table = heapq.heappop(self._tables)
            self._install(epoch, table, now)
        deadline = self.core.next_deadline_ns()
        if deadline is not None and deadline <= now:
            self._carry_out(self.core.tick(now), now)
        for gen in self._generators:
            if gen.next_ns is not None and gen.next_ns <= now:
                flow = gen.flow
                length = flow.payload_bytes
                for seq in gen.take(now):
                    self._send_traffic(flow.flow_id, seq, flow.dst, length, flow.record_route, now)

    # ------------------------------------------------------------------ actions
    def _carry_out(self, actions, now: int) -> None:
        for action in actions:
            kind = type(action)
            if kind is Transmit:
                self._fabric.sendto(_enc(_FRAME, action.neighbour, action.frame))
                self.counters["frames_out"] += 1
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
        if packet.type is MessageType.DATA and packet.payload_type == TRAFFIC_PAYLOAD_TYPE:
            parsed = parse_traffic_payload(packet.body)
            if parsed is not None:
                flow_id, seq = parsed
        self._events.write(
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
            epoch = self.config.epoch_dtn_ns
            hops = len(rr.hops) + rr.missed
            route = ";".join(f"{h.node}@{h.time_ns - epoch}" for h in rr.hops)
        self._row("delivered", packet, now, size=size, rx=prev, hops=hops, route=route)
        ptype = packet.type
        if ptype is MessageType.DATA:
            self.counters["data_delivered"] += 1
            if packet.payload_type == TRAFFIC_PAYLOAD_TYPE:
                parsed = parse_traffic_payload(packet.body)
                if parsed is not None:
                    self._on_traffic(parsed[0], parsed[1], size, now)
            if self.app_addr is not None:
                flags = APP_FLAG_RECORD_ROUTE if rr is not None else 0
                datagram = encode_app(
                    packet.src, packet.body, payload_type=int(packet.payload_type), flags=flags
                )
                self._app.sendto(datagram, self.app_addr)
                self.counters["app_out"] += 1
        elif ptype is MessageType.ECHO_REPLY:
            body = packet.body
            fut = self._probes.get((body.ident, body.seq))
            if fut is not None and not fut.done():
                fut.set_result((packet, time.monotonic_ns()))
            else:
                self.counters["echo_replies_unmatched"] += 1

    def _on_traffic(self, flow_id: int, seq: int, size: int, now: int) -> None:
        self.flow_counts[flow_id]["received"] += 1
        if not self._traffic_on:
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
        self._carry_out(actions, now)

    def _install(self, epoch: int, table, now: int) -> None:
        if epoch < self._table_epoch:
            self.counters["tables_stale"] += 1
            return
        self._table_epoch = epoch
        self.counters["tables_installed"] += 1
        self._carry_out(self.core.set_table(table, now), now)

    # ------------------------------------------------------------------ datagrams
    def _on_fabric(self, data: bytes, addr) -> None:
        try:
            kind, node, payload = decode_attachment(data)
        except ProtocolError:
            self.counters["fabric_malformed"] += 1
            return
        now = self.now_ns()
        if kind is _FRAME:
            self.counters["frames_in"] += 1
            self._frame_len = len(payload)
            try:
                self._carry_out(self.core.receive(payload, node, now), now)
            finally:
                self._frame_len = None
        elif kind is Kind.LINK:
            if len(payload) != 1 or payload[0] > 1 or node == self.number:
                self.counters["fabric_malformed"] += 1
                return
            self.counters["link_events"] += 1
            if payload[0]:
                self._carry_out(self.core.link_up(node, now), now)
            else:
                self._carry_out(self.core.link_down(node, now), now)
        elif kind is Kind.ATTACHED:
            if node != self.number:
                self.counters["fabric_malformed"] += 1
                return
            if not self._attached.is_set():
                log.info("node %d attached to the fabric", self.number)
                self._attached.set()
                self._maybe_ready()
            return
        else:
            self.counters["fabric_malformed"] += 1
            return
        self._schedule()

    def _on_app(self, data: bytes, addr) -> None:
        self.app_addr = addr
        if not data:
            self.counters["app_registered"] += 1
            return
        self.counters["app_in"] += 1
        now = self.now_ns()
        try:
            dst, payload_type, flags, payload = decode_app(data)
            actions = self.core.send_local(
                dst,
                payload,
                now,
                payload_type=payload_type,
                record_route=bool(flags & APP_FLAG_RECORD_ROUTE),
            )
        except (ProtocolError, ValueError, OverflowError) as exc:
            self.counters["app_malformed"] += 1
            log.debug("node %d: bad application datagram: %s", self.number, exc)
            return
        self._carry_out(actions, now)
        self._schedule()

    async def _attach_loop(self) -> None:
        datagram = _enc(Kind.ATTACH, self.number)
        while not self._attached.is_set():
            self._fabric.sendto(datagram)
            self.counters["attach_sent"] += 1
            try:
                await asyncio.wait_for(self._attached.wait(), ATTACH_INTERVAL_S)
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ MQTT
    def _status(self, state: str) -> dict:
        return {
            "state": state,
            "pid": os.getpid(),
            "name": self.config.name,
            "number": self.number,
            "app_port": self.app_port,
        }

    def _maybe_ready(self) -> None:
        if self._mqtt is not None and self._attached.is_set() and not self._finished:
            self._publish(self.topics.node_status(self.number), self._status("ready"), retain=True)
            self._ready_sent = True

    def _publish(self, topic: str, obj, *, retain: bool = False, qos: int = 1) -> None:
        client = self._mqtt
        if client is None:
            self.counters["mqtt_unsent"] += 1
            return
        self._spawn(self._publish_now(client, topic, obj, qos=qos, retain=retain))

    async def _publish_now(self, client, topic: str, obj, *, qos: int, retain: bool) -> None:
        try:
            await client.publish(topic, encode_json(obj), qos=qos, retain=retain)
        except Exception as exc:  # noqa: BLE001 - broker lost: the MQTT loop reconnects
            self.counters["mqtt_unsent"] += 1
            log.debug("node %d: publish on %s failed: %r", self.number, topic, exc)

    async def _mqtt_loop(self) -> None:
        import aiomqtt

        cfg = self.config
        topics = self.topics
        handlers = {
            topics.run: self._on_run_msg,
            topics.node_table(self.number): self._on_table_msg,
            topics.node_cmd(self.number): self._on_cmd_msg,
        }
        while True:
            try:
                client = connect(
                    cfg.broker_url,
                    client_id=f"node-{cfg.run_id}-{self.number}",
                    will_topic=topics.node_status(self.number),
                )
                async with client:
                    for topic in handlers:
                        await client.subscribe(topic, qos=1)
                    self._mqtt = client
                    self._maybe_ready()
                    async for message in client.messages:
                        handler = handlers.get(message.topic.value)
                        data = decode_json(message.payload)
                        if handler is None or not isinstance(data, dict):
                            self.counters["mqtt_malformed"] += 1
                            continue
                        try:
                            handler(data)
                        except (KeyError, TypeError, ValueError, NetemuError) as exc:
                            self.counters["mqtt_malformed"] += 1
                            log.warning(
                                "node %d: bad message on %s: %r", self.number, message.topic, exc
                            )
            except aiomqtt.MqttError as exc:
                self._mqtt = None
                self.counters["mqtt_reconnects"] += 1
                log.warning("node %d: MQTT: %s; retrying in %.0f s", self.number, exc, MQTT_RETRY_S)
                await asyncio.sleep(MQTT_RETRY_S)

    def _on_run_msg(self, data: dict) -> None:
        state = data.get("state")
        t0 = data.get("t0_mono_ns")
        if t0 is not None and (self.clock is None or self.clock.t0_mono_ns != int(t0)):
            self.clock = RunClock(int(t0))
            log.info("node %d: run clock t0_mono_ns=%d (state %s)", self.number, t0, state)
        if state == "running" and self.run_state != "running" and self.clock is not None:
            self.run_state = "running"
            if self._traffic_on and not self._generators:
                seed = self.config.seed
                self._generators = [FlowGenerator(f, seed=seed) for f in self.flows]
                late_ns = self.now_ns() - 100_000_000  # joined the run late: no burst
                for gen in self._generators:
                    self.counters["traffic_skipped_late"] += gen.skip_until(late_ns)
        elif state == "stopping":
            self.run_state = "stopping"
            self._stop_traffic()
        elif state == "stopped":
            self.run_state = "stopped"
            self._stop_traffic()
            self.stop()
        self._schedule()

    def _stop_traffic(self) -> None:
        self._traffic_on = False
        for gen in self._generators:
            gen.stop()

    def _on_table_msg(self, data: dict) -> None:
        table = ForwardingTable.from_dict(data["table"])
        if table.node != self.number:
            raise ValueError(f"table for node {table.node}")
        valid_from = int(data.get("valid_from_ns", table.t_ns))
        epoch = int(data.get("epoch", 0))
        self.counters["tables_received"] += 1
        self._table_seq += 1
        heapq.heappush(self._tables, (valid_from, self._table_seq, epoch, table))
        if self.clock is not None and valid_from <= self.now_ns():
            self._service()
        self._schedule()

    def _on_cmd_msg(self, data: dict) -> None:
        request_id = str(data["id"])
        op = data.get("op")
        if op in ("ping", "trace"):
            self._spawn(self._ping(request_id, op, data))
        elif op == "send":
            self._reply(request_id, self._cmd_send(data))
        else:
            self._reply(request_id, {"error": f"unknown op {op!r}"})
            self.counters["cmd_unknown"] += 1

    def _reply(self, request_id: str, obj: dict) -> None:
        obj = {"id": request_id, "node": self.number, **obj}
        self._publish(self.topics.node_reply(self.number, request_id), obj)

    def _cmd_send(self, data: dict) -> dict:
        dst = int(data["dst"])
        now = self.now_ns()
        record_route = bool(data.get("record_route", False))
        if "payload_b64" in data:
            payload = base64.b64decode(data["payload_b64"], validate=True)
            payload_type = int(data.get("payload_type", 1))
        else:
            size = int(data.get("size_bytes", 100))
            payload = traffic_payload(0, self.counters["cmd_sent"], size)
            payload = payload[: payload_bytes(size, record_route=record_route)]
            payload_type = TRAFFIC_PAYLOAD_TYPE
        try:
            actions = self.core.send_local(
                dst, payload, now, payload_type=payload_type, record_route=record_route
            )
        except (ProtocolError, ValueError) as exc:
            return {"op": "send", "error": str(exc)}
        self.counters["cmd_sent"] += 1
        packet_id = next((a.packet.packet_id for a in actions if isinstance(a, Originated)), None)
        self._carry_out(actions, now)
        self._schedule()
        return {"op": "send", "ok": True, "packet_id": packet_id, "t_ns": now}

    async def _ping(self, request_id: str, op: str, data: dict) -> None:
        try:
            dst = int(data["dst"])
            count = max(1, min(int(data.get("count", 4 if op == "ping" else 1)), 1000))
            interval_s = max(0.0, float(data.get("interval_s", 1.0)))
            timeout_s = max(0.001, float(data.get("timeout_s", 5.0)))
        except (KeyError, TypeError, ValueError) as exc:
            self.counters["mqtt_malformed"] += 1
            self._reply(request_id, {"op": op, "error": f"bad command: {exc!r}"})
            return
        trace = op == "trace" or bool(data.get("record_route", False))
        ident = self._next_ident
        self._next_ident = (ident + 1) & 0xFFFF
        tasks = []
        for seq in range(count):
            tasks.append(self._spawn(self._probe(dst, ident, seq, trace, timeout_s)))
            if seq + 1 < count:
                await asyncio.sleep(interval_s)
        probes = await asyncio.gather(*tasks, return_exceptions=True)
        probes = [p if isinstance(p, dict) else {"error": repr(p)} for p in probes]
        rtts = [p["rtt_ms"] for p in probes if p.get("rtt_ms") is not None]
        summary = {
            "op": op,
            "src": self.number,
            "dst": dst,
            "sent": count,
            "received": len(rtts),
            "probes": probes,
        }
        if rtts:
            summary["rtt_ms"] = {
                "min": min(rtts),
                "avg": sum(rtts) / len(rtts),
                "max": max(rtts),
            }
        self._reply(request_id, summary)

    async def _probe(self, dst: int, ident: int, seq: int, trace: bool, timeout_s: float) -> dict:
        fut = self._loop.create_future()
        key = (ident, seq & 0xFFFF)
        self._probes[key] = fut
        now = self.now_ns()
        sent_mono = time.monotonic_ns()
        sent_dtn = self.core.dtn_time_ns(now)
        try:
            try:
                actions = self.core.echo_request(
                    dst, now, record_route=trace, ident=ident, seq=seq & 0xFFFF
                )
            except (ProtocolError, ValueError) as exc:
                return {"seq": seq, "rtt_ms": None, "error": str(exc)}
            self.counters["echo_sent"] += 1
            dropped = [a for a in actions if isinstance(a, Drop)]
            self._carry_out(actions, now)
            self._schedule()
            if dropped and not fut.done():
                return {"seq": seq, "rtt_ms": None, "error": f"dropped: {dropped[0].reason}"}
            try:
                packet, recv_mono = await asyncio.wait_for(fut, timeout_s)
            except TimeoutError:
                return {"seq": seq, "rtt_ms": None, "error": "timeout"}
        finally:
            self._probes.pop(key, None)
        out = {"seq": seq, "rtt_ms": (recv_mono - sent_mono) / 1e6}
        for ext in packet.extensions:
            if isinstance(ext, RecordRoute):
                out["hops"] = [
                    {"node": h.node, "t_ms": (h.time_ns - sent_dtn) / 1e6} for h in ext.hops
                ]
                out["missed"] = ext.missed
        return out

    # ------------------------------------------------------------------ periodic work
    async def _periodic_loop(self) -> None:
        interval_s = max(0.05, float(self.config.telemetry_interval_s))
        next_telemetry = time.monotonic() + interval_s
        rows = 0
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            events = self._events
            if events is not None and events.rows != rows:
                rows = events.rows
                events.flush()
            if time.monotonic() >= next_telemetry:
                next_telemetry += interval_s
                if self._mqtt is not None and self.clock is not None:
                    stats = self.core.stats()
                    stats["t_ns"] = self.now_ns()
                    stats["host"] = dict(self.counters)
                    self._publish(self.topics.node_telemetry(self.number), stats, qos=0)


async def _amain(config: NodeHostConfig) -> int:
    loop = asyncio.get_running_loop()
    async with NodeHost(config) as host:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, host.stop)
        await host.wait()
    return 0


def main(config_path: str | Path) -> int:
    """Run one node process from its config file until the run stops or SIGTERM."""
    die_with_parent()
    config = load_config(config_path, NodeHostConfig)
    logging.getLogger().setLevel(config.log_level.upper())
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvloop

    return uvloop.run(_amain(config))
