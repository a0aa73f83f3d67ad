"""The sans-IO router core of an SGP node: frames and events in, actions out.

:class:`NodeCore` holds a node's forwarding table, link states and store-and-forward buffer and
applies the processing rules of protocols/sgp/SPEC.md section 7. It never reads a clock, opens a
socket or sleeps: every entry point takes the current scenario time ``now_ns`` (integer ns since
the scenario epoch) and returns the :mod:`actions <netemu.node.actions>` the host must carry out.
The asyncio node process and the virtual-time simulator both wrap it; see docs/node.md.

>>> from netemu.node import NodeCore, Transmit, Deliver
>>> from netemu.routing import ForwardingTable
>>> a, b = NodeCore(1), NodeCore(2)
>>> fib = ForwardingTable(node=1, t_ns=0, scheme="static", destination=[2], next_hop=[2],
...                       valid_from_ns=0, valid_until_ns=10**12, hold=False, arrival_ns=[5])
>>> _ = a.set_table(fib, now_ns=0)
>>> [tx] = [x for x in a.send_local(2, b"hi", now_ns=0) if isinstance(x, Transmit)]
>>> [x.packet.body for x in b.receive(tx.frame, from_neighbour=1, now_ns=5)
...  if isinstance(x, Deliver)]
[b'hi']
"""

from __future__ import annotations

import collections
import dataclasses
import logging

from ..errors import ProtocolError
from ..protocol import (
    NODE_NEIGHBOURS,
    NODE_NONE,
    Ack,
    Echo,
    Flags,
    Hello,
    Hop,
    MessageType,
    Nack,
    Packet,
    PayloadType,
    RecordRoute,
    critical_unknown_extension,
    decode,
    encode,
)
from ..protocol.relay import relay_frame, with_hop_limit, with_record_route
from ..routing.tables import HOLD, ForwardingTable
from .actions import Action, Deliver, Drop, NodeDropReason, Originated, Transmit
from .config import NodeConfig
from .queue import Held, HoldQueue

__all__ = ["NeighbourInfo", "NodeCore", "NodeCounters"]

log = logging.getLogger(__name__)

_ACK_TYPES = (MessageType.ACK, MessageType.NACK)
_LINK_LOCAL_TYPES = (MessageType.HELLO, MessageType.ROUTE)
_U32 = 0xFFFF_FFFF
R = NodeDropReason


@dataclasses.dataclass(slots=True)
class NodeCounters:
    """Running counts of one node (``dropped`` by :class:`NodeDropReason` value)."""

    received: int = 0  # frames given to receive()
    originated: int = 0  # packets created here (data, echo, hello, ack, nack)
    transmitted: int = 0  # Transmit actions
    forwarded: int = 0  # Transmit actions for packets created elsewhere
    delivered: int = 0  # Deliver actions
    dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    @property
    def malformed(self) -> int:
        return self.dropped[R.MALFORMED]

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "originated": self.originated,
            "transmitted": self.transmitted,
            "forwarded": self.forwarded,
            "delivered": self.delivered,
            "dropped": {str(k): v for k, v in sorted(self.dropped.items())},
        }


@dataclasses.dataclass(frozen=True, slots=True)
class NeighbourInfo:
    """What the last HELLO from a neighbour said (SPEC.md 6.3)."""

    node: int
    link: int | None  # the neighbour the frame came from (normally == node)
    terminal: int
    link_mtu: int
    node_name: str
    heard_ns: int  # scenario time of receipt
    owlt_ns: int | None  # receive time minus creation_time_ns (None: sender has no clock)


def _with_hop(packet: Packet, hop: Hop) -> Packet:
    """``packet`` with ``hop`` appended to its RECORD_ROUTE (SPEC.md 5.1)."""
    return with_record_route(packet, lambda e: RecordRoute(e.hops + (hop,), e.missed))


class NodeCore:
    """Router core of node ``node_number`` (sans-IO, deterministic, clock-free).

    Configure with ``config=NodeConfig(...)`` or the same fields as keywords
    (``NodeCore(7, queue_limit_packets=100)``). Entry points return lists of actions:
    :meth:`receive`, :meth:`send_local`, :meth:`echo_request`, :meth:`originate`,
    :meth:`set_table`, :meth:`link_up`, :meth:`link_down`, :meth:`tick`. Malformed input from
    the network never raises; misuse of the local API (a payload that does not fit a packet,
    a table for another node) raises.
    """

    def __init__(self, node_number: int, *, config: NodeConfig | None = None, **settings):
        if not 0 < node_number < NODE_NEIGHBOURS:
            raise ValueError(f"node_number must be 1..{NODE_NEIGHBOURS - 1}, got {node_number}")
        if config is not None and settings:
            raise TypeError("give either config= or individual settings, not both")
        self.node = int(node_number)
        self.config = config if config is not None else NodeConfig(**settings)
        self.counters = NodeCounters()
        self.neighbours: dict[int, NeighbourInfo] = {}
        self._table: ForwardingTable | None = None
        self._links: dict[int, bool] = {}
        self._link_mtu: dict[int, int] = {}
        self._queue = HoldQueue(
            limit_packets=self.config.queue_limit_packets,
            limit_bytes=self.config.queue_limit_bytes,
        )
        self._next_packet_id = self.config.first_packet_id
        self._order = 0
        self._now_ns = 0  # time of the entry-point call in progress (for NACKs made on drops)

    def __repr__(self) -> str:
        return f"NodeCore({self.node}, held={len(self._queue)})"

    # ------------------------------------------------------------------ state queries
    @property
    def table(self) -> ForwardingTable | None:
        return self._table

    @property
    def held(self) -> int:
        """Number of packets in the store-and-forward buffer."""
        return len(self._queue)

    def held_packets(self) -> list[Packet]:
        return [h.packet for h in self._queue]

    def link_state(self, neighbour: int) -> bool | None:
        """``True`` after :meth:`link_up`, ``False`` after :meth:`link_down`, else ``None``."""
        return self._links.get(neighbour)

    def link_mtu(self, neighbour: int) -> int:
        """Largest packet sent to ``neighbour``: own MTU, ``link_up(mtu=)``, its HELLO."""
        mtu = min(self.config.link_mtu, self._link_mtu.get(neighbour, self.config.link_mtu))
        info = self.neighbours.get(neighbour)
        if info is not None and info.link_mtu > 0:
            mtu = min(mtu, info.link_mtu)
        return mtu

    def next_deadline_ns(self) -> int | None:
        """When :meth:`tick` next has work (a contact starts, a held packet expires), or None."""
        return self._queue.next_deadline_ns()

    def stats(self) -> dict:
        """Counters and buffer occupancy, JSON-ready (for telemetry)."""
        out = self.counters.as_dict()
        out["node"] = self.node
        out["held_packets"] = len(self._queue)
        out["held_bytes"] = self._queue.bytes
        return out

    def dtn_time_ns(self, now_ns: int) -> int:
        """DTN time (SGP ``creation_time_ns``, RECORD_ROUTE ``time_ns``) at scenario ``now_ns``."""
        return self.config.epoch_dtn_ns + now_ns

    # ------------------------------------------------------------------ entry points
    def receive(
        self, frame: bytes, from_neighbour: int, now_ns: int, *, packet: Packet | None = None
    ) -> list[Action]:
        """Process one frame that arrived from ``from_neighbour``. Never raises for bad octets.

        ``packet``: what ``decode(frame)`` returns, when the host has it already (the
        simulator hands over the previous hop's :attr:`Transmit.packet
        <netemu.node.actions.Transmit.packet>` of a forwarded packet). Trusted, not checked:
        it only saves decoding the frame.
        """
        self._now_ns = now_ns
        self.counters.received += 1
        out: list[Action] = []
        if packet is None:
            try:
                packet = decode(frame)
            except ProtocolError as exc:
                self._drop(bytes(frame), R.MALFORMED, out, detail=str(exc))
                return out
            except Exception as exc:  # a decoder bug must not take the node down
                log.exception("node %d: decoder failed on a %d-octet frame", self.node, len(frame))
                self._drop(bytes(frame), R.MALFORMED, out, detail=f"decoder error: {exc!r}")
                return out
        wire = frame if type(frame) is bytes else None  # relay_frame patches bytes only
        self._accept(packet, from_neighbour, now_ns, out, size=len(frame), wire=wire)
        return out

    def send_local(
        self,
        dst: int,
        payload: bytes,
        now_ns: int,
        *,
        payload_type: int = PayloadType.RAW,
        priority: int = 0,
        flags: int = 0,
        hop_limit: int | None = None,
        lifetime_ms: int | None = None,
        record_route: bool = False,
    ) -> list[Action]:
        """Send application ``payload`` to node ``dst`` as a DATA packet.

        Raises :class:`~netemu.errors.ProtocolError` when the values do not fit the packet.
        """
        packet = self._new_packet(
            MessageType.DATA,
            dst,
            bytes(payload),
            now_ns,
            payload_type=payload_type,
            priority=priority,
            flags=flags,
            hop_limit=hop_limit,
            lifetime_ms=lifetime_ms,
            extensions=(RecordRoute(),) if record_route else (),
        )
        return self.originate(packet, now_ns)

    def echo_request(
        self,
        dst: int,
        now_ns: int,
        *,
        record_route: bool = True,
        ident: int = 0,
        seq: int = 0,
        data: bytes = b"",
        hop_limit: int | None = None,
        lifetime_ms: int | None = None,
    ) -> list[Action]:
        """Send an ECHO_REQUEST (ping; with RECORD_ROUTE: trace). The reply is a Deliver here."""
        packet = self._new_packet(
            MessageType.ECHO_REQUEST,
            dst,
            Echo(ident=ident, seq=seq, data=bytes(data)),
            now_ns,
            hop_limit=hop_limit,
            lifetime_ms=lifetime_ms,
            extensions=(RecordRoute(),) if record_route else (),
        )
        return self.originate(packet, now_ns)

    def originate(
        self, packet: Packet, now_ns: int, *, neighbour: int | None = None
    ) -> list[Action]:
        """Send a packet built by the caller (``src`` must be this node).

        With ``neighbour`` the packet goes straight onto that link (link-local messages such as
        a ROUTE to all neighbours); otherwise it is routed by the table like any other packet.
        Raises :class:`~netemu.errors.ProtocolError` if it cannot be encoded, ``ValueError`` if
        ``src`` is not this node or ``dst`` is "all neighbours" without ``neighbour``.
        """
        self._now_ns = now_ns
        if packet.src != self.node:
            raise ValueError(f"src must be this node ({self.node}), got {packet.src}")
        if packet.dst == NODE_NEIGHBOURS and neighbour is None:
            raise ValueError("a packet to all neighbours needs neighbour=")
        size = len(encode(packet))
        out: list[Action] = []
        self._originate(packet, now_ns, out, size=size, neighbour=neighbour)
        return out

    def set_table(self, table: ForwardingTable | None, now_ns: int) -> list[Action]:
        """Install a new forwarding table; every held packet is routed again under it."""
        self._now_ns = now_ns
        if table is not None and table.node != self.node:
            raise ValueError(f"forwarding table of node {table.node} given to node {self.node}")
        self._table = table
        out: list[Action] = []
        self._release(self._queue.take_all(), now_ns, out)
        return out

    def link_up(
        self, neighbour: int, now_ns: int, *, terminal: int = 0, mtu: int | None = None
    ) -> list[Action]:
        """The link to ``neighbour`` came up: send HELLO on it, release packets held for it."""
        self._now_ns = now_ns
        self._links[neighbour] = True
        if mtu is not None:
            self._link_mtu[neighbour] = int(mtu)
        out: list[Action] = []
        hello = self._new_packet(
            MessageType.HELLO,
            NODE_NEIGHBOURS,
            Hello(
                terminal=terminal,
                link_mtu=min(self.link_mtu(neighbour), 0xFFFF),
                node_name=self.config.node_name,
            ),
            now_ns,
            hop_limit=1,
        )
        self._originate(hello, now_ns, out, size=0, neighbour=neighbour)
        self._release(self._queue.for_next_hop(neighbour), now_ns, out)
        return out

    def link_down(self, neighbour: int, now_ns: int) -> list[Action]:
        """The link to ``neighbour`` went down: packets for it are held until it comes back."""
        self._now_ns = now_ns
        self._links[neighbour] = False
        return []

    def tick(self, now_ns: int) -> list[Action]:
        """Drop held packets that expired; release those whose contact has started."""
        self._now_ns = now_ns
        out: list[Action] = []
        for held in self._queue.expired(now_ns):
            self._drop(held.packet, R.LIFETIME_EXPIRED, out, detail="expired while held")
        self._release(self._queue.due(now_ns), now_ns, out)
        return out

    # ------------------------------------------------------------------ processing
    def _new_packet(
        self,
        type: MessageType,
        dst: int,
        body,
        now_ns: int,
        *,
        payload_type: int = PayloadType.CONTROL,
        priority: int = 0,
        flags: int = 0,
        hop_limit: int | None = None,
        lifetime_ms: int | None = None,
        extensions: tuple = (),
    ) -> Packet:
        packet_id = self._next_packet_id
        self._next_packet_id = (packet_id + 1) & _U32
        cfg = self.config
        return Packet(
            type=type,
            src=self.node,
            dst=dst,
            body=body,
            packet_id=packet_id,
            creation_time_ns=self.dtn_time_ns(now_ns) if cfg.clock_synchronised else 0,
            lifetime_ms=cfg.default_lifetime_ms if lifetime_ms is None else lifetime_ms,
            hop_limit=cfg.default_hop_limit if hop_limit is None else hop_limit,
            priority=priority,
            flags=flags,
            payload_type=payload_type,
            extensions=extensions,
        )

    def _originate(
        self, packet: Packet, now_ns: int, out: list, *, size: int, neighbour: int | None = None
    ) -> None:
        self.counters.originated += 1
        out.append(Originated(packet))
        if neighbour is not None:
            self._transmit(packet, neighbour, now_ns, out)
        elif packet.dst == self.node:
            self._consume(packet, None, now_ns, out)
        elif packet.hop_limit == 0:
            self._drop(packet, R.HOP_LIMIT_EXCEEDED, out, detail="created with hop_limit 0")
        else:
            self._route(packet, None, now_ns, out, size=size)

    def _accept(
        self, packet: Packet, prev: int, now_ns: int, out: list, *, size: int, wire: bytes | None
    ) -> None:
        """SPEC.md 7.1 after decoding: address checks, expiry, critical extensions, then
        local delivery or forwarding (7.2 hop limit, 7.4 forwarding). ``wire`` is the frame
        ``packet`` was decoded from (forwarded by patching it, see :meth:`_transmit`)."""
        if packet.src == NODE_NONE or packet.src == NODE_NEIGHBOURS or packet.dst == NODE_NONE:
            self._drop(packet, R.INVALID_ADDRESS, out, detail="src or dst is not a node number")
            return
        expiry = packet.expiry_ns
        if expiry is not None and expiry < self.dtn_time_ns(now_ns):
            self._drop(packet, R.LIFETIME_EXPIRED, out, prev=prev)
            return
        critical = critical_unknown_extension(packet)
        if critical is not None:
            self._drop(
                packet,
                R.UNKNOWN_CRITICAL_EXTENSION,
                out,
                prev=prev,
                info=critical,
                detail=f"extension type {critical}",
            )
            return
        if packet.dst == self.node or packet.dst == NODE_NEIGHBOURS:
            if packet.dst == NODE_NEIGHBOURS and packet.type not in _LINK_LOCAL_TYPES:
                self._drop(
                    packet,
                    R.INVALID_ADDRESS,
                    out,
                    detail=f"{packet.type.name} to all neighbours",
                )
                return
            self._consume(packet, prev, now_ns, out)
            return
        if packet.hop_limit <= 1:
            self._drop(
                packet,
                R.HOP_LIMIT_EXCEEDED,
                out,
                prev=prev,
                detail=f"received with hop_limit {packet.hop_limit}",
            )
            return
        packet = with_hop_limit(packet, packet.hop_limit - 1)
        if self._route(packet, prev, now_ns, out, size=size, wire=wire):
            self._ack(packet, prev, now_ns, out)

    def _consume(self, packet: Packet, prev: int | None, now_ns: int, out: list) -> None:
        """The packet is for this node (SPEC.md 7.5, 6.3, 6.4)."""
        ptype = packet.type
        types = self.config.payload_types
        if ptype is MessageType.DATA and types is not None and packet.payload_type not in types:
            self._drop(
                packet,
                R.UNSUPPORTED_PAYLOAD_TYPE,
                out,
                prev=prev,
                info=int(packet.payload_type),
                detail=f"payload type {int(packet.payload_type)}",
            )
            return
        if ptype is MessageType.HELLO:
            hello: Hello = packet.body  # type: ignore[assignment]
            created = packet.creation_time_ns
            self.neighbours[packet.src] = NeighbourInfo(
                node=packet.src,
                link=prev,
                terminal=hello.terminal,
                link_mtu=hello.link_mtu,
                node_name=hello.node_name,
                heard_ns=now_ns,
                owlt_ns=self.dtn_time_ns(now_ns) - created if created else None,
            )
        self.counters.delivered += 1
        out.append(Deliver(packet, prev))
        self._ack(packet, prev, now_ns, out)
        if ptype is MessageType.ECHO_REQUEST:
            echo: Echo = packet.body  # type: ignore[assignment]
            rr = tuple(e for e in packet.extensions if isinstance(e, RecordRoute))
            reply = self._new_packet(
                MessageType.ECHO_REPLY, packet.src, echo, now_ns, extensions=rr
            )
            self._originate(reply, now_ns, out, size=len(encode(reply)))

    def _route(
        self,
        packet: Packet,
        prev: int | None,
        now_ns: int,
        out: list,
        *,
        size: int,
        order: int | None = None,
        wire: bytes | None = None,
    ) -> bool:
        """Forward by the table, hold, or drop (SPEC.md 7.4). True when custody was taken.

        A NACK to the previous hop is only due when ``order`` is None (first routing; a held
        packet was already acknowledged). ``wire``: the received frame, for :meth:`_transmit`.
        """
        nack_prev = prev if order is None else None
        entry = self._table.lookup(packet.dst, now_ns) if self._table is not None else None
        if entry is None or entry.next_hop < 0 or entry.next_hop == self.node:
            if self.config.hold_on_no_route:
                return self._hold(packet, prev, None, None, out, size=size, order=order)
            self._drop(packet, R.NO_ROUTE, out, prev=nack_prev, detail=f"to {packet.dst}")
            return False
        next_hop = entry.next_hop
        link = self._links.get(next_hop)
        if entry.action == HOLD and entry.valid_from_ns > now_ns and link is not True:
            expiry = packet.expiry_ns
            if expiry is not None and expiry - self.config.epoch_dtn_ns < entry.valid_from_ns:
                self._drop(
                    packet,
                    R.LIFETIME_EXPIRED,
                    out,
                    prev=nack_prev,
                    detail="expires before the contact to the next hop starts",
                )
                return False
            return self._hold(
                packet, prev, next_hop, entry.valid_from_ns, out, size=size, order=order
            )
        if link is False:
            return self._hold(packet, prev, next_hop, None, out, size=size, order=order)
        return self._transmit(packet, next_hop, now_ns, out, nack_prev=nack_prev, wire=wire)

    def _hold(
        self,
        packet: Packet,
        prev: int | None,
        next_hop: int | None,
        release_ns: int | None,
        out: list,
        *,
        size: int,
        order: int | None,
    ) -> bool:
        if not self._queue.fits(size):
            nack_prev = prev if order is None else None
            self._drop(packet, R.QUEUE_FULL, out, prev=nack_prev)
            return False
        if order is None:
            self._order += 1
            order = self._order
        expiry = packet.expiry_ns
        self._queue.add(
            Held(
                packet=packet,
                size=size,
                previous_hop=prev,
                next_hop=next_hop,
                release_ns=release_ns,
                expiry_ns=None if expiry is None else expiry - self.config.epoch_dtn_ns,
                order=order,
            )
        )
        return True

    def _release(self, helds: list[Held], now_ns: int, out: list) -> None:
        """Route released packets again, highest priority first, then in arrival order."""
        helds.sort(key=lambda h: (-h.packet.priority, h.order))
        for held in helds:
            if held.expiry_ns is not None and held.expiry_ns < now_ns:
                self._drop(held.packet, R.LIFETIME_EXPIRED, out, detail="expired while held")
                continue
            self._route(
                held.packet, held.previous_hop, now_ns, out, size=held.size, order=held.order
            )

    def _transmit(
        self,
        packet: Packet,
        neighbour: int,
        now_ns: int,
        out: list,
        *,
        nack_prev=None,
        wire: bytes | None = None,
    ) -> bool:
        """Append the RECORD_ROUTE hop (5.1), check the MTU (8), emit Transmit.

        With ``wire`` (the frame ``packet`` was received as, before the hop limit decrement)
        the new frame is that frame patched by :func:`relay_frame` when it can be: the same
        octets as encoding the packet, without re-encoding it.
        """
        mtu = self.link_mtu(neighbour)
        has_rr = False
        for ext in packet.extensions:
            if isinstance(ext, RecordRoute):
                has_rr = True
                break
        hop = Hop(self.node, self.dtn_time_ns(now_ns)) if has_rr else None
        frame = None
        if wire is not None:
            frame = relay_frame(wire, packet.hop_limit, hop, mtu)
            if frame is not None and hop is not None:
                packet = _with_hop(packet, hop)
        if frame is None:
            if hop is not None:
                packet, frame = self._record_hop(packet, hop, mtu)
            else:
                frame = encode(packet)
        if len(frame) > mtu:
            self._drop(
                packet,
                R.TOO_BIG,
                out,
                prev=nack_prev,
                info=min(mtu, 0xFFFF),
                detail=f"{len(frame)} octets, link MTU {mtu}",
            )
            return False
        self.counters.transmitted += 1
        if packet.src != self.node:
            self.counters.forwarded += 1
        out.append(Transmit(neighbour, frame, packet))
        return True

    def _record_hop(self, packet: Packet, hop: Hop, mtu: int) -> tuple[Packet, bytes]:
        grown = _with_hop(packet, hop)
        try:
            frame = encode(grown)
        except ProtocolError:  # the extension area would exceed 1020 octets
            frame = None
        if frame is not None and len(frame) <= mtu:
            return grown, frame
        missed = with_record_route(packet, lambda e: RecordRoute(e.hops, min(e.missed + 1, 255)))
        return missed, encode(missed)

    def _ack(self, packet: Packet, prev: int | None, now_ns: int, out: list) -> None:
        """Custody taken: ACK to the previous hop if asked (SPEC.md 6.2)."""
        if prev is None or not packet.flags & Flags.ACK_REQUESTED or packet.type in _ACK_TYPES:
            return
        ack = self._new_packet(
            MessageType.ACK, prev, Ack(packet.src, packet.packet_id), now_ns, hop_limit=1
        )
        self._originate(ack, now_ns, out, size=0, neighbour=prev)

    def _drop(
        self,
        item: Packet | bytes,
        reason: NodeDropReason,
        out: list,
        *,
        detail: str = "",
        prev: int | None = None,
        info: int = 0,
    ) -> None:
        """Record a drop; NACK the previous hop / the source as SPEC.md 7.6 asks."""
        self.counters.dropped[reason] += 1
        out.append(Drop(item, reason, detail))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("node %d dropped a packet: %s %s", self.node, reason, detail)
        if not isinstance(item, Packet):
            return
        code = reason.nack_reason
        if code is None or item.type in _ACK_TYPES:
            return
        body = Nack(item.src, item.packet_id, int(code), info & 0xFFFF)
        now = self._now_ns
        nacked = None
        if prev is not None and item.flags & Flags.ACK_REQUESTED:
            nack = self._new_packet(MessageType.NACK, prev, body, now, hop_limit=1)
            self._originate(nack, now, out, size=0, neighbour=prev)
            nacked = prev
        if item.flags & Flags.REPORT_DROP and item.src not in (self.node, nacked):
            nack = self._new_packet(MessageType.NACK, item.src, body, now)
            self._originate(nack, now, out, size=len(encode(nack)))
