"""The real-time fabric process: hosts the sans-IO link engine on UDP, a timerfd and MQTT.

``netemu fabric --config OUT/run/config/fabric.json`` (started by ``netemu run``) runs
:func:`main`. The contract it follows is docs/runtime.md; the engine is :mod:`netemu.fabric`
(docs/fabric.md).

What the process does:

* **UDP** - one socket on ``(udp_host, udp_port)`` for every node (attachment datagrams of
  :mod:`netemu.runtime.wire`). ``ATTACH`` records the sender's address for its node number and is
  answered ``ATTACHED`` (then ``LINK`` up for each of the node's links that is up now). A
  ``FRAME`` from an attached address is offered to :meth:`Fabric.send` on ``tx -> rx`` where
  ``tx`` is the sender's node and ``rx`` the header's node number (link-table indices through
  ``config.node_numbers``). Datagrams are drained until ``EAGAIN`` (in batches, so that the
  timer is served between them).
* **Deadlines** - one :class:`~netemu.runtime.timerfd.TimerFd` armed at the earliest of the
  engine's next arrival and the next pending link table. On expiry: apply the tables that are
  due (exactly at their ``t_ns``), then :meth:`Fabric.poll` and send each due frame as a
  ``FRAME`` (node = previous hop) to the receiving node's address, recording the delivery error
  (:class:`~netemu.fabric.FidelityRecorder`). A handler that finds nothing due (woken early)
  simply re-arms; nothing is ever sent before its arrival time.
* **MQTT** - subscribes ``run`` (the scenario clock ``t0_mono_ns`` and the run state),
  ``links`` (link tables, applied at their ``t_ns``), ``faults`` (link faults, applied at once
  and on top of every later table; docs/faults.md) and ``node/+/status``; publishes the
  retained ``fabric/status`` and ``fabric/telemetry``. A lost broker is reconnected to every
  second (``broker-restart``); deliveries go on meanwhile.
* **Node down** - a frame due to a node whose status is ``offline`` (or that never attached) is
  dropped ``node-down``; the engine counted it delivered, the host moves it to the drops.
* **Stop** - run state ``stopping``: no more deliveries or link tables; every frame still
  queued or in flight, and every frame received from then on, is ``in_flight_at_end``. Run state
  ``stopped`` (or SIGTERM/SIGINT): write the ``in_flight_at_end`` event rows and
  ``final/fabric.json``, close the captures, publish ``{"state": "stopped"}`` and exit 0.

Accounting (``final/fabric.json`` ``frames``): ``sent == delivered + dropped_total +
in_flight_at_end`` over every FRAME received from an attached node. Datagrams that are not
attachment datagrams, and frames from addresses that never attached, cannot be put on a link;
they are counted apart (``undecodable_datagrams``, ``frames_from_unattached``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import json
import logging
import os
import signal
import socket
import struct
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..control.faults import FaultError, LinkOverrides
from ..control.mqtt import connect, decode_json, encode_json
from ..control.topics import Topics
from ..errors import NetemuError, ProtocolError
from ..fabric import Fabric, FabricConfig, FabricDrop, FidelityRecorder, FrameStatus, LinkTable
from ..protocol.fields import HEADER_LEN, MessageType
from .clock import die_with_parent, raise_priority
from .config import FabricHostConfig, load_config
from .eventlog import EventLog
from .layout import RunLayout
from .timerfd import TimerFd, set_timer_slack_ns
from .wire import ATTACH_HEADER, Kind, decode_attachment, encode_attachment

__all__ = ["FabricHost", "main"]

log = logging.getLogger(__name__)

_FRAME_PREFIX = encode_attachment(Kind.FRAME, 0)[:4]  # b"NF\x01\x01"
_HDR = ATTACH_HEADER.size
_RECV_BATCH = 256  # datagrams per readable callback before the timer gets a turn
_RECV_BUFSIZE = 65_535
_SOCK_BUFFER_BYTES = 8 << 20
_FLUSH_INTERVAL_S = 0.2
_NO_LINK_ID = 0xFFFF_FFFF
_SGP_PEEK = struct.Struct(">BBBBIIIQ")  # b0 ... src, dst, packet_id, creation_time_ns
_U32X2 = struct.Struct(">II")
_TRAFFIC_PAYLOAD_TYPE = 192  # netemu traffic: payload starts with flow_id, seq (docs/runtime.md)
_MSG_TYPES = {int(t): t.name for t in MessageType}
SEND_FAILED = "send-failed"  # host-level reason: the kernel refused the datagram to the node


def sgp_peek(frame: bytes) -> dict[str, Any]:
    """Event-log fields from an SGP header without decoding the packet (malformed -> ``{}``).

    >>> from netemu.protocol import MessageType, Packet, encode
    >>> octets = encode(Packet(MessageType.DATA, src=1, dst=2, body=b"hi", packet_id=7,
    ...                        payload_type=1))
    >>> sgp_peek(octets)["msg_type"], sgp_peek(octets)["packet_id"], sgp_peek(b"junk")
    ('DATA', 7, {})
    """
    if len(frame) < HEADER_LEN or frame[0] >> 4 != 1:
        return {}
    b0, _, _, _, src, dst, packet_id, creation = _SGP_PEEK.unpack_from(frame)
    kind = b0 & 0x0F
    row = {
        "src": src,
        "dst": dst,
        "packet_id": packet_id,
        "creation_dtn_ns": creation,
        "msg_type": _MSG_TYPES.get(kind, f"type-{kind}"),
    }
    if kind == MessageType.DATA and frame[28] == _TRAFFIC_PAYLOAD_TYPE:
        start = HEADER_LEN + 4 * frame[29]
        if len(frame) >= start + 8:
            row["flow_id"], row["seq"] = _U32X2.unpack_from(frame, start)
    return row


class _CaptureSet:
    """The merged capture (one interface per link direction) and lazily opened per-link files."""

    def __init__(self, layout: RunLayout, config: FabricHostConfig):
        from ..capture import CaptureWriter

        self._writer_cls = CaptureWriter
        self._epoch_utc = config.epoch_utc
        self._layout = layout
        self._names = config.node_names
        self._numbers = config.node_numbers
        self._kinds = list(config.node_kinds)
        layout.merged_capture.parent.mkdir(parents=True, exist_ok=True)
        self.merged = CaptureWriter(layout.merged_capture, epoch_utc=config.epoch_utc)
        self._merged_ifaces: dict[tuple, int] = {}
        self._links: dict[tuple[int, int], Any] = {}  # (a, b) -> writer
        self._link_ifaces: dict[tuple, int] = {}
        self.link_files: list[str] = []

    def _name(self, idx: int, number: int | None = None) -> str:
        if idx < 0:
            return f"#{number}"
        return self._names[idx]

    def _iface_name(self, tx: int, rx: int, rx_number: int | None) -> str:
        kinds = self._kinds
        ground = any(0 <= i < len(kinds) and kinds[i] == "ground" for i in (tx, rx))
        return f"{'gsl' if ground else 'isl'}:{self._name(tx)}>{self._name(rx, rx_number)}"

    def write(self, t_ns: int, frame: bytes, meta, tx: int, rx: int, link, rx_number=None):
        key = (tx, rx, rx_number)
        iface = self._merged_ifaces.get(key)
        if iface is None:
            name = self._iface_name(tx, rx, rx_number)
            desc = f"link {meta.link_id}" if meta.link_id != _NO_LINK_ID else "no link"
            iface = self._merged_ifaces[key] = self.merged.interface(name, description=desc)
        self.merged.write(iface, t_ns, frame, meta)
        if link is None:  # a frame that had no link goes only to the merged file
            return
        writer = self._links.get(link)
        if writer is None:
            a, b = link
            path = self._layout.link_capture(self._names[a], self._names[b])
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = self._links[link] = self._writer_cls(path, epoch_utc=self._epoch_utc)
            self.link_files.append(str(path))
        liface = self._link_ifaces.get((link, tx, rx))
        if liface is None:
            liface = self._link_ifaces[(link, tx, rx)] = writer.interface(
                self._iface_name(tx, rx, None), description=f"link {meta.link_id}"
            )
        writer.write(liface, t_ns, frame, meta)

    def flush(self) -> None:
        self.merged.flush()
        for writer in self._links.values():
            writer.flush()

    def close(self) -> None:
        self.merged.close()
        for writer in self._links.values():
            writer.close()


class FabricHost:
    """The fabric process as an async context manager owning its socket, timer and tasks.

    >>> async def run(config):                                  # doctest: +SKIP
    ...     async with FabricHost(config) as host:
    ...         await host.wait_finished()          # run state "stopped", or request_finish()

    Leaving the context writes ``final/fabric.json`` and the end-of-run event rows, closes the
    captures and publishes ``{"state": "stopped"}``.
    """

    def __init__(self, config: FabricHostConfig):
        numbers = list(config.node_numbers)
        if len(numbers) != len(config.node_names):
            raise NetemuError("fabric config: node_numbers and node_names differ in length")
        if len(set(numbers)) != len(numbers):
            raise NetemuError("fabric config: node_numbers has duplicates")
        self.config = config
        self.topics = Topics(config.run_id)
        self.layout = RunLayout(config.out)
        self.fabric = Fabric(
            FabricConfig(seed=config.seed, queue_limit_frames=config.queue_limit_frames)
        )
        self.fidelity = FidelityRecorder()
        self._fidelity_window = FidelityRecorder()
        self._numbers = numbers
        self._index_of = {n: i for i, n in enumerate(numbers)}
        self._prefix = [encode_attachment(Kind.FRAME, n) for n in numbers]  # fab->node: prev hop
        self._addr: list[tuple | None] = [None] * len(numbers)
        self._node_at: dict[tuple, int] = {}
        self._offline = [False] * len(numbers)
        self._start_mono_ns = time.monotonic_ns()
        self._t0_mono_ns = self._start_mono_ns  # provisional until the run message arrives
        self._clock_known = False
        self.state = "starting"
        self._stopping = False
        self._in_flight: dict[int, Any] = {}  # frame_id -> Outcome (engine in flight)
        self._late: list[tuple[int, int, int, bytes]] = []  # (t_ns, tx, rx number, frame)
        self._pending: list[tuple[int, int, int, LinkTable]] = []  # (t_ns, seq, epoch, table)
        self._pending_seq = 0
        self._last_table_t_ns: int | None = None
        self._link_ends: dict[int, tuple[int, int]] = {}  # link id -> (a, b) of its last row
        self._link_up: dict[int, bool] = {}
        self._overrides = LinkOverrides()  # link faults in force (retained ``faults`` topic)
        self._raw_table: LinkTable | None = None  # the current table without the overrides
        # host-level accounting on top of the engine's balance
        self._host_sent = 0  # frames that never reached the engine (unknown rx, late)
        self._host_dropped: Counter = Counter()
        self._delivered_undone = 0  # engine deliveries the host turned into drops
        self._link_host_drops: dict[int, Counter] = {}
        self.counters: Counter = Counter()
        self.tables_applied = 0
        self.tables_rejected = 0
        self.table_apply_late_ns_max = 0
        self._sock: socket.socket | None = None
        self._timer: TimerFd | None = None
        self._events: EventLog | None = None
        self._capture: _CaptureSet | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._mqtt_task: asyncio.Task | None = None
        self._client = None
        self._mqtt_ready = asyncio.Event()
        self._mqtt_close = asyncio.Event()
        self._finish_requested = asyncio.Event()
        self._final_written = False
        self.final: dict | None = None
        self.udp_address: tuple[str, int] | None = None

    # -- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FabricHost:
        self._loop = loop = asyncio.get_running_loop()
        self._events = EventLog(self.layout.events("fabric"))
        if self.config.capture:
            self._capture = _CaptureSet(self.layout, self.config)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, _SOCK_BUFFER_BYTES)
        sock.bind((self.config.udp_host, self.config.udp_port))
        sock.setblocking(False)
        self._sock = sock
        self.udp_address = sock.getsockname()[:2]
        self._timer = TimerFd()
        loop.add_reader(sock.fileno(), self._on_readable)
        loop.add_reader(self._timer.fileno(), self._on_timer)
        self._mqtt_task = asyncio.create_task(self._mqtt_main(), name="fabric-mqtt")
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="fabric-housekeeping"))
        try:
            await asyncio.wait_for(self._wait_mqtt_ready(), 15.0)
        except TimeoutError:
            await self._close_resources()
            raise NetemuError(
                f"fabric: MQTT broker {self.config.broker_url} not reachable after 15 s"
            ) from None
        log.info(
            "fabric %s ready on udp %s:%d, %d nodes",
            self.config.run_id,
            *self.udp_address,
            len(self._numbers),
        )
        return self

    async def _wait_mqtt_ready(self) -> None:
        ready = asyncio.create_task(self._mqtt_ready.wait())
        done, _ = await asyncio.wait({ready, self._mqtt_task}, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            self._mqtt_task.result()  # raises what ended the MQTT task
            raise NetemuError("fabric: MQTT task ended before it was ready")

    async def __aexit__(self, *exc) -> None:
        try:
            self.finish()
        finally:
            self._mqtt_close.set()
            if self._mqtt_task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(self._mqtt_task), 3.0)
                except (TimeoutError, Exception) as err:  # noqa: BLE001 - best effort on exit
                    log.warning("fabric: MQTT did not close cleanly: %r", err)
                    self._mqtt_task.cancel()
            await self._close_resources()

    async def _close_resources(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._mqtt_task is not None and not self._mqtt_task.done():
            self._mqtt_task.cancel()
        await asyncio.gather(
            *self._tasks, *([self._mqtt_task] if self._mqtt_task else []), return_exceptions=True
        )
        self._tasks.clear()
        loop = self._loop
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._timer is not None:
            loop.remove_reader(self._timer.fileno())
            self._timer.close()
            self._timer = None
        if self._events is not None:
            self._events.close()
        if self._capture is not None:
            self._capture.close()

    def request_finish(self) -> None:
        """End the run (SIGTERM, SIGINT, run state ``stopped``): :meth:`wait_finished` returns."""
        self._finish_requested.set()

    async def wait_finished(self) -> None:
        await self._finish_requested.wait()

    # -- clock ---------------------------------------------------------------------------------

    def now_ns(self) -> int:
        """Scenario time (before the run message: ns since this process started)."""
        return time.monotonic_ns() - self._t0_mono_ns

    def _set_t0(self, t0_mono_ns: int) -> None:
        if self._clock_known and t0_mono_ns == self._t0_mono_ns:
            return
        if self._clock_known:
            log.warning(
                "fabric: run t0_mono_ns changed from %d to %d", self._t0_mono_ns, t0_mono_ns
            )
        self._t0_mono_ns = int(t0_mono_ns)
        self._clock_known = True
        if self._timer is not None and self._timer.armed_ns is not None:
            self._timer.disarm()
        self._rearm()

    # -- UDP ----------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        recv = self._sock.recvfrom
        node_at = self._node_at
        index_of = self._index_of
        send = self.fabric.send
        in_flight = self._in_flight
        mono = time.monotonic_ns
        t0 = self._t0_mono_ns
        prefix = _FRAME_PREFIX
        stopping = self._stopping
        dropped = FrameStatus.DROPPED
        counters = self.counters
        earliest = None
        for _ in range(_RECV_BATCH):
            try:
                data, addr = recv(_RECV_BUFSIZE)
            except BlockingIOError:
                break
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("fabric: recvfrom: %s", exc)
                continue
            if data[:4] != prefix or len(data) < _HDR:
                self._on_control(data, addr)
                continue
            tx = node_at.get(addr)
            if tx is None:
                counters["frames_from_unattached"] += 1
                if counters["frames_from_unattached"] == 1:
                    log.warning("fabric: FRAME from %s, which has not attached: ignored", addr)
                continue
            t_ns = mono() - t0
            frame = data[_HDR:]
            if len(frame) < HEADER_LEN or frame[0] >> 4 != 1:
                counters["malformed_sgp_frames"] += 1
            rx_number = int.from_bytes(data[4:8], "big")
            if stopping:
                self._host_sent += 1
                self._late.append((t_ns, tx, rx_number, frame))
                continue
            rx = index_of.get(rx_number)
            if rx is None:
                self._drop_unknown_rx(t_ns, tx, rx_number, frame)
                continue
            out = send(frame, tx, rx, t_ns)
            if out.status is dropped:
                self._log_drop(out)
            else:
                in_flight[out.frame_id] = out
                if earliest is None or out.arrival_ns < earliest:
                    earliest = out.arrival_ns
        if earliest is not None and not self._stopping:
            if earliest <= mono() - t0:
                self._deliver_due()
            self._rearm()

    def _on_control(self, data: bytes, addr: tuple) -> None:
        try:
            kind, number, _ = decode_attachment(data)
        except ProtocolError as exc:
            self.counters["undecodable_datagrams"] += 1
            if self.counters["undecodable_datagrams"] <= 3:
                log.warning("fabric: undecodable datagram from %s: %s", addr, exc)
            return
        if kind is Kind.ATTACH:
            self._on_attach(number, addr)
        else:  # FRAME shorter than its header is caught above; ATTACHED/LINK go the other way
            self.counters["unexpected_datagrams"] += 1
            log.debug("fabric: unexpected %s datagram from %s", kind.name, addr)

    def _on_attach(self, number: int, addr: tuple) -> None:
        idx = self._index_of.get(number)
        if idx is None:
            self.counters["attach_unknown_node"] += 1
            log.warning("fabric: ATTACH from %s for unknown node number %d", addr, number)
            return
        old = self._addr[idx]
        if old != addr:
            if old is not None and self._node_at.get(old) == idx:
                del self._node_at[old]
            prev = self._node_at.get(addr)
            if prev is not None and prev != idx:
                self._addr[prev] = None
            self._addr[idx] = addr
            self._node_at[addr] = idx
            self.counters["attached"] += 1
            log.info("fabric: node %d (%s) attached from %s", number, self._names(idx), addr)
        self._sendto(encode_attachment(Kind.ATTACHED, number), addr)
        for link_id, up in self._link_up.items():
            if not up:
                continue
            a, b = self._link_ends[link_id]
            if a == idx:
                self._sendto(encode_attachment(Kind.LINK, self._numbers[b], b"\x01"), addr)
            elif b == idx:
                self._sendto(encode_attachment(Kind.LINK, self._numbers[a], b"\x01"), addr)

    def _names(self, idx: int) -> str:
        return self.config.node_names[idx]

    def _sendto(self, data: bytes, addr: tuple) -> bool:
        try:
            self._sock.sendto(data, addr)
            return True
        except OSError as exc:
            self.counters["send_errors"] += 1
            log.debug("fabric: sendto %s: %s", addr, exc)
            return False

    # -- deadlines ----------------------------------------------------------------------------

    def _rearm(self) -> None:
        if self._stopping or self._timer is None:
            return
        t_ns = self.fabric.next_deadline()
        if self._pending and self._clock_known:
            t_table = self._pending[0][0]
            if t_ns is None or t_table < t_ns:
                t_ns = t_table
        if t_ns is None:
            return
        mono_ns = self._t0_mono_ns + t_ns
        armed = self._timer.armed_ns
        if armed is None or mono_ns < armed:
            self._timer.arm(mono_ns)

    def _on_timer(self) -> None:
        self._timer.read()
        if self._stopping:
            return
        if self._pending and self._clock_known:
            now_ns = self.now_ns()
            while self._pending and self._pending[0][0] <= now_ns:
                _, _, epoch, table = heapq.heappop(self._pending)
                self._apply_table(table, epoch, now_ns)
        self._deliver_due()
        self._rearm()

    def _deliver_due(self) -> None:
        mono = time.monotonic_ns
        t0 = self._t0_mono_ns
        due = self.fabric.poll(mono() - t0)
        if not due:
            return
        sendto = self._sock.sendto
        addrs = self._addr
        offline = self._offline
        prefix = self._prefix
        in_flight = self._in_flight
        record = self.fidelity.record
        record_window = self._fidelity_window.record
        capture = self._capture
        for out in due:
            del in_flight[out.frame_id]
            rx = out.rx_node
            addr = addrs[rx]
            if addr is None or offline[rx]:
                self._undo_delivery(out, FabricDrop.NODE_DOWN)
                continue
            now_ns = mono() - t0
            try:
                sendto(prefix[out.tx_node] + out.frame, addr)
            except OSError as exc:
                log.debug("fabric: sendto %s: %s", addr, exc)
                self._undo_delivery(out, SEND_FAILED)
                continue
            record(out.arrival_ns, now_ns)
            record_window(out.arrival_ns, now_ns)
            if capture is not None:
                self._capture_out(out)

    def _undo_delivery(self, out, reason) -> None:
        """An engine delivery that could not be handed to its node becomes a drop."""
        self._delivered_undone += 1
        self._host_dropped[str(reason)] += 1
        counter = self._link_host_drops.get(out.link_id)
        if counter is None:
            counter = self._link_host_drops[out.link_id] = Counter()
        counter[str(reason)] += 1
        out.status = FrameStatus.DROPPED
        out.dropped_ns = self.now_ns()
        # send-failed has no FabricDrop (nor capture code): its capture row says node-down
        # (link lost in flight); the event log and the balance carry the true reason.
        out.reason = reason if isinstance(reason, FabricDrop) else FabricDrop.NODE_DOWN
        self._log_drop(out, reason=str(reason))

    # -- link tables ---------------------------------------------------------------------------

    def _on_links(self, payload: Any) -> None:
        data = decode_json(payload)
        try:
            if not isinstance(data, dict):
                raise NetemuError("link table message is not a JSON object")
            table = LinkTable.from_dict(data)
            for column in (table.a, table.b):
                if len(column) and int(column.max()) >= len(self._numbers):
                    raise NetemuError(f"link table names node index {int(column.max())}")
        except NetemuError as exc:
            self.tables_rejected += 1
            log.error("fabric: link table rejected: %s", exc)
            return
        last = self._last_table_t_ns
        if last is not None and table.t_ns <= last:
            log.debug("fabric: link table t_ns=%d already seen, ignored", table.t_ns)
            return
        self._last_table_t_ns = table.t_ns
        epoch = data.get("epoch")
        epoch = epoch if isinstance(epoch, int) else -1
        heapq.heappush(self._pending, (table.t_ns, self._pending_seq, epoch, table))
        self._pending_seq += 1
        log.debug("fabric: link table epoch %d for t_ns=%d queued", epoch, table.t_ns)
        self._rearm()

    def _on_faults(self, data: Any) -> None:
        """Link faults (docs/faults.md): applied to the current table at once, and to every
        table after it."""
        if not isinstance(data, dict):
            log.warning("fabric: faults message is not a JSON object")
            return
        try:
            overrides = LinkOverrides.from_dict(data)
        except FaultError as exc:
            log.error("fabric: faults message rejected: %s", exc)
            return
        if overrides.to_dict() == self._overrides.to_dict():
            return  # the same (a republished retained message)
        self._overrides = overrides
        self.counters["fault_updates"] += 1
        raw = self._raw_table
        if raw is None or self._stopping or not self._clock_known:
            return  # the next table carries them
        now_ns = max(self.now_ns(), raw.t_ns)
        shift_s = (now_ns - raw.t_ns) * 1e-9
        table = dataclasses.replace(
            raw, t_ns=now_ns, range_m=np.maximum(raw.range_m + raw.range_rate_mps * shift_s, 0)
        )
        log.info("fabric: link faults %s applied at t_ns=%d", overrides.to_dict(), now_ns)
        self._apply_table(table, -1, now_ns)
        self._rearm()

    def _apply_table(self, table: LinkTable, epoch: int, now_ns: int) -> None:
        self._raw_table = table
        table = self._overrides.apply_table(table, self._numbers)
        try:
            cancelled = self.fabric.update(table)
        except NetemuError as exc:
            self.tables_rejected += 1
            log.error("fabric: link table epoch %d not applied: %s", epoch, exc)
            return
        self.tables_applied += 1
        self.table_apply_late_ns_max = max(self.table_apply_late_ns_max, now_ns - table.t_ns)
        for out in cancelled:
            self._in_flight.pop(out.frame_id, None)
            self._log_drop(out)
        new_up: dict[int, bool] = {}
        ends = self._link_ends
        rows = zip(
            table.link_id.tolist(), table.a.tolist(), table.b.tolist(), table.up.tolist(),
            strict=True,
        )  # fmt: skip
        for link_id, a, b, up in rows:
            ends[link_id] = (a, b)
            new_up[link_id] = new_up.get(link_id, False) or up
        old_up = self._link_up
        changes = 0
        for link_id in new_up.keys() | old_up.keys():
            up = new_up.get(link_id, False)
            if up != old_up.get(link_id, False):
                a, b = ends[link_id]
                self._link_datagram(a, b, up)
                self._link_datagram(b, a, up)
                changes += 1
        self._link_up = new_up
        log.info(
            "fabric: epoch %d applied at t_ns=%d (%.3f ms after its time): %d links up, "
            "%d changed, %d frames cancelled",
            epoch,
            table.t_ns,
            (now_ns - table.t_ns) / 1e6,
            sum(new_up.values()),
            changes,
            len(cancelled),
        )

    def _link_datagram(self, to_idx: int, neighbour_idx: int, up: bool) -> None:
        addr = self._addr[to_idx]
        if addr is None:
            return
        payload = b"\x01" if up else b"\x00"
        self._sendto(encode_attachment(Kind.LINK, self._numbers[neighbour_idx], payload), addr)

    # -- drops, events, capture ---------------------------------------------------------------

    def _drop_unknown_rx(self, t_ns: int, tx: int, rx_number: int, frame: bytes) -> None:
        """A FRAME for a node number that is not in the run: dropped ``no-link`` by the host."""
        self._host_sent += 1
        self._host_dropped[str(FabricDrop.NO_LINK)] += 1
        row = sgp_peek(frame)
        self._events.write(
            t_ns=t_ns, where=0, event="dropped", size_bytes=len(frame),
            reason=str(FabricDrop.NO_LINK), tx=self._numbers[tx], rx=rx_number, **row,
        )  # fmt: skip
        if self._capture is not None:
            from ..capture import DropReason, LinkEvent, LinkMeta

            meta = LinkMeta(
                _NO_LINK_ID, self._numbers[tx], rx_number, float("nan"), 0,
                event=LinkEvent.DROPPED, reason=DropReason.LINK_DOWN,
            )  # fmt: skip
            self._capture.write(t_ns, frame, meta, tx, -1, None, rx_number)

    def _log_drop(self, out, *, reason: str | None = None) -> None:
        frame = out.frame
        row = sgp_peek(frame) if frame is not None else {}
        self._events.write(
            t_ns=out.dropped_ns if out.dropped_ns is not None else out.sent_ns,
            where=0,
            event="dropped",
            size_bytes=out.size_bytes,
            reason=reason or str(out.reason),
            tx=self._numbers[out.tx_node],
            rx=self._numbers[out.rx_node],
            link_id=out.link_id if out.link_id >= 0 else None,
            **row,
        )
        if self._capture is not None:
            self._capture_out(out)

    def _capture_out(self, out) -> None:
        link = self._link_ends.get(out.link_id) if out.link_id >= 0 else None
        meta = out.meta(self._numbers)
        self._capture.write(out.sent_ns, out.frame, meta, out.tx_node, out.rx_node, link)

    # -- stop ---------------------------------------------------------------------------------

    def begin_stopping(self) -> None:
        """Run state ``stopping``: deliver nothing more; what is in flight stays in flight."""
        if self._stopping:
            return
        self._stopping = True
        if self._timer is not None:
            self._timer.disarm()
        log.info(
            "fabric: stopping at t_ns=%d with %d frame(s) in flight",
            self.now_ns(),
            len(self._in_flight),
        )

    def balance(self) -> dict:
        """Frame accounting of the host: the engine's balance plus the host's own drops."""
        core = self.fabric.balance()
        dropped = Counter(core.dropped)
        dropped.update(self._host_dropped)
        sent = core.sent + self._host_sent
        delivered = core.delivered - self._delivered_undone
        in_flight = core.in_flight + len(self._late)
        dropped_total = sum(dropped.values())
        return {
            "sent": sent,
            "delivered": delivered,
            "dropped": dict(sorted(dropped.items())),
            "dropped_total": dropped_total,
            "in_flight": in_flight,
            "balanced": sent == delivered + dropped_total + in_flight,
        }

    def finish(self) -> dict:
        """Write the end-of-run event rows and ``final/fabric.json`` (once); return the latter."""
        if self._final_written:
            return self.final
        self._final_written = True
        self.begin_stopping()
        end_ns = self.now_ns()
        events = self._events
        numbers = self._numbers
        for out in sorted(self._in_flight.values(), key=lambda o: o.frame_id):
            events.write(
                t_ns=end_ns, where=0, event="in_flight_at_end", size_bytes=out.size_bytes,
                tx=numbers[out.tx_node], rx=numbers[out.rx_node], link_id=out.link_id,
                **sgp_peek(out.frame),
            )  # fmt: skip
        for _, tx, rx_number, frame in self._late:
            events.write(
                t_ns=end_ns, where=0, event="in_flight_at_end", size_bytes=len(frame),
                tx=numbers[tx], rx=rx_number, **sgp_peek(frame),
            )  # fmt: skip
        events.flush()
        balance = self.balance()
        balance["in_flight_at_end"] = balance.pop("in_flight")
        fid = self.fidelity.report()
        self.final = {
            "run_id": self.config.run_id,
            "t_ns": end_ns,
            "frames": balance,
            "engine": self.fabric.balance().to_dict(),
            "fidelity": {
                "count": fid.count,
                "p50_s": _clean(fid.p50_s),
                "p95_s": _clean(fid.p95_s),
                "p99_s": _clean(fid.p99_s),
                "max_s": _clean(fid.max_s),
                "min_s": _clean(fid.min_s),
                "early": fid.early,
            },
            "links": self._link_report(),
            "undecodable_datagrams": self.counters["undecodable_datagrams"],
            "frames_from_unattached": self.counters["frames_from_unattached"],
            "malformed_sgp_frames": self.counters["malformed_sgp_frames"],
            "attach_unknown_node": self.counters["attach_unknown_node"],
            "send_errors": self.counters["send_errors"],
            "received_while_stopping": len(self._late),
            "link_tables": {
                "applied": self.tables_applied,
                "rejected": self.tables_rejected,
                "pending_at_end": len(self._pending),
                "apply_late_max_s": self.table_apply_late_ns_max / 1e9,
            },
            "nodes": {
                str(n): {
                    "name": self.config.node_names[i],
                    "attached": self._addr[i] is not None,
                    "offline": self._offline[i],
                }
                for i, n in enumerate(numbers)
            },
            "capture": (
                {
                    "merged": str(self.layout.merged_capture),
                    "links": sorted(self._capture.link_files),
                }
                if self._capture is not None
                else None
            ),
        }
        path = self.layout.final("fabric")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.final, indent=1))
        os.replace(tmp, path)
        if self._capture is not None:
            self._capture.close()
        if self._events is not None:
            self._events.close()
        log.info(
            "fabric: final balance sent=%d delivered=%d dropped=%d in_flight_at_end=%d (%s)",
            balance["sent"],
            balance["delivered"],
            balance["dropped_total"],
            balance["in_flight_at_end"],
            "balanced" if balance["balanced"] else "NOT BALANCED",
        )
        return self.final

    def _link_report(self) -> list[dict]:
        names, numbers = self.config.node_names, self._numbers
        report = []
        for link_id, c in sorted(self.fabric.link_counters().items()):
            a, b = self._link_ends[link_id]
            host = self._link_host_drops.get(link_id, Counter())
            dropped = Counter({str(k): v for k, v in c.dropped.items()})
            dropped.update(host)
            report.append(
                {
                    "link_id": link_id,
                    "a": names[a],
                    "b": names[b],
                    "a_number": numbers[a],
                    "b_number": numbers[b],
                    "frames": c.frames,
                    "bytes": c.bytes,
                    "delivered": c.delivered - sum(host.values()),
                    "dropped": dict(sorted(dropped.items())),
                    "up_at_end": self._link_up.get(link_id, False),
                }
            )
        return report

    # -- MQTT ---------------------------------------------------------------------------------

    async def _mqtt_main(self) -> None:
        import aiomqtt

        topics = self.topics
        while not self._mqtt_close.is_set():
            try:
                async with connect(
                    self.config.broker_url,
                    client_id=f"fabric-{self.config.run_id}",
                    will_topic=topics.fabric_status,
                ) as client:
                    await client.subscribe(topics.run, qos=1)
                    await client.subscribe(topics.links, qos=1)
                    await client.subscribe(topics.faults, qos=1)
                    await client.subscribe(topics.node_status("+"), qos=1)
                    await self._publish_status(client, "ready")
                    self._client = client
                    self._mqtt_ready.set()
                    reader = asyncio.create_task(self._mqtt_reader(client))
                    closing = asyncio.create_task(self._mqtt_close.wait())
                    try:
                        await asyncio.wait({reader, closing}, return_when="FIRST_COMPLETED")
                    finally:
                        closing.cancel()
                        if not reader.done():
                            reader.cancel()
                        results = await asyncio.gather(reader, return_exceptions=True)
                    if self._mqtt_close.is_set():
                        self._client = None
                        await self._publish_status(client, "stopped")
                        return  # leaving the context disconnects cleanly: no last will
                    if isinstance(results[0], BaseException):
                        raise results[0]
            except aiomqtt.MqttError as exc:
                self._client = None
                if self._mqtt_close.is_set():
                    return
                log.warning("fabric: MQTT connection lost or refused (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)

    async def _publish_status(self, client, state: str) -> None:
        status = {"state": state, "pid": os.getpid()}
        if self.udp_address is not None:
            status["udp_host"], status["udp_port"] = self.udp_address
        await client.publish(self.topics.fabric_status, encode_json(status), qos=1, retain=True)

    async def _mqtt_reader(self, client) -> None:
        topics = self.topics
        async for message in client.messages:
            topic = str(message.topic)
            try:
                if topic == topics.links:
                    self._on_links(message.payload)
                elif topic == topics.run:
                    self._on_run(decode_json(message.payload))
                elif topic == topics.faults:
                    self._on_faults(decode_json(message.payload))
                else:
                    parsed = topics.parse_node_topic(topic)
                    if parsed is not None and parsed[1] == "status":
                        self._on_node_status(parsed[0], decode_json(message.payload))
            except Exception:  # a bad message must not stop the fabric
                log.exception("fabric: error handling MQTT message on %s", topic)

    def _on_run(self, data: Any) -> None:
        if not isinstance(data, dict):
            log.warning("fabric: run message is not a JSON object")
            return
        t0 = data.get("t0_mono_ns")
        if isinstance(t0, int) and not isinstance(t0, bool):
            self._set_t0(t0)
        state = data.get("state")
        if not isinstance(state, str) or state == self.state:
            return
        log.info("fabric: run state %s", state)
        self.state = state
        if state == "stopping":
            self.begin_stopping()
        elif state == "stopped":
            self.begin_stopping()
            self.request_finish()

    def _on_node_status(self, number: int, data: Any) -> None:
        idx = self._index_of.get(number)
        if idx is None or not isinstance(data, dict):
            return
        offline = data.get("state") == "offline"
        if offline != self._offline[idx]:
            self._offline[idx] = offline
            log.info(
                "fabric: node %d (%s) is %s", number, self._names(idx),
                "offline: frames due to it are dropped node-down" if offline else "online",
            )  # fmt: skip

    # -- periodic work ------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        interval_s = max(0.05, float(self.config.telemetry_interval_s))
        next_telemetry = time.monotonic() + interval_s
        while True:
            await asyncio.sleep(_FLUSH_INTERVAL_S)
            if self._final_written:
                continue
            self._events.flush()
            if self._capture is not None:
                self._capture.flush()
            if time.monotonic() >= next_telemetry:
                next_telemetry += interval_s
                await self._publish_telemetry()

    async def _publish_telemetry(self) -> None:
        window, self._fidelity_window = self._fidelity_window, FidelityRecorder()
        client = self._client
        if client is None:
            return
        report = window.report().to_dict()
        report["total_count"] = len(self.fidelity)
        telemetry = {
            "t_ns": self.now_ns(),
            "state": self.state,
            "balance": self.balance(),
            "fidelity": report,  # deliveries since the previous telemetry message
            "in_flight": len(self._in_flight) + len(self._late),
            "attached": sum(a is not None for a in self._addr),
        }
        try:
            await client.publish(self.topics.fabric_telemetry, encode_json(telemetry), qos=0)
        except Exception as exc:  # noqa: BLE001 - telemetry is best effort
            log.debug("fabric: telemetry not published: %s", exc)


def _clean(value: float) -> float | None:
    return None if value != value else value  # NaN -> None


async def _amain(config: FabricHostConfig) -> int:
    loop = asyncio.get_running_loop()
    async with FabricHost(config) as host:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, host.request_finish)
        await host.wait_finished()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


#: Real-time priority of the fabric process (SCHED_FIFO 1..99): above the node processes.
FABRIC_RT_PRIORITY = 10


def main(config_path: str | Path) -> int:
    """Run the fabric process for the config file ``config_path`` until the run stops."""
    config = load_config(config_path, FabricHostConfig)
    die_with_parent()
    level = logging.getLevelName(config.log_level.upper())
    root = logging.getLogger()
    if isinstance(level, int) and (root.level == logging.NOTSET or level < root.level):
        root.setLevel(level)
    set_timer_slack_ns(1)
    log.info("fabric: scheduling %s", raise_priority(FABRIC_RT_PRIORITY))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        log.warning("fabric: uvloop not installed; using asyncio's default loop")
        return asyncio.run(_amain(config))
    return uvloop.run(_amain(config))
