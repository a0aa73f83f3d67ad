"""SGP packets as values: the fixed header, the typed bodies and the extension TLVs.

These are plain frozen dataclasses; :func:`netemu.protocol.codec.encode` turns one into octets
and :func:`~netemu.protocol.codec.decode` back. Length and checksum fields are not stored: the
encoder computes them.

>>> from netemu.protocol import Packet, MessageType, Echo, encode, decode
>>> p = Packet(type=MessageType.ECHO_REQUEST, src=1, dst=2, body=Echo(ident=7, seq=1))
>>> decode(encode(p)) == p
True
"""

from __future__ import annotations

from dataclasses import dataclass

from .fields import EXT_CRITICAL_BIT, Flags, MessageType, PayloadType


@dataclass(frozen=True, slots=True)
class Ack:
    """ACK body: the packet (by source and packet id) that the previous hop has taken over."""

    ref_src: int
    ref_packet_id: int


@dataclass(frozen=True, slots=True)
class Nack:
    """NACK body: the packet refused or dropped, why (:class:`NackReason`) and a detail."""

    ref_src: int
    ref_packet_id: int
    reason: int
    info: int = 0


@dataclass(frozen=True, slots=True)
class Hello:
    """HELLO body: which optical terminal of the sender this link uses, its MTU, a node name."""

    terminal: int
    link_mtu: int
    node_name: str = ""


@dataclass(frozen=True, slots=True)
class Echo:
    """ECHO_REQUEST / ECHO_REPLY body: identifier, sequence number and echoed data."""

    ident: int
    seq: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Route:
    """ROUTE body: routing scheme id, update sequence number and scheme-defined data."""

    scheme: int
    update_seq: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Hop:
    """One RECORD_ROUTE entry: the node that forwarded the packet and when (ns, DTN epoch)."""

    node: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class RecordRoute:
    """RECORD_ROUTE extension: hops in order, and how many hops could not be recorded."""

    hops: tuple[Hop, ...] = ()
    missed: int = 0


@dataclass(frozen=True, slots=True)
class UnknownExtension:
    """An extension this implementation does not interpret; kept so it is forwarded unchanged."""

    type: int
    value: bytes = b""

    @property
    def critical(self) -> bool:
        return bool(self.type & EXT_CRITICAL_BIT)


Extension = RecordRoute | UnknownExtension
Body = bytes | Ack | Nack | Hello | Echo | Route

#: Which body class each message type carries (DATA carries ``bytes``).
BODY_CLASS: dict[MessageType, type] = {
    MessageType.DATA: bytes,
    MessageType.ACK: Ack,
    MessageType.NACK: Nack,
    MessageType.HELLO: Hello,
    MessageType.ECHO_REQUEST: Echo,
    MessageType.ECHO_REPLY: Echo,
    MessageType.ROUTE: Route,
}


@dataclass(frozen=True, slots=True)
class Packet:
    """One SGP packet. Field names follow protocols/sgp/SPEC.md.

    ``body`` is the payload octets for DATA and a body object for the other types
    (:class:`Ack`, :class:`Nack`, :class:`Hello`, :class:`Echo`, :class:`Route`).
    ``payload_type`` must be :attr:`PayloadType.CONTROL` for every type but DATA.
    """

    type: MessageType
    src: int
    dst: int
    body: Body = b""
    packet_id: int = 0
    creation_time_ns: int = 0
    lifetime_ms: int = 3_600_000
    hop_limit: int = 64
    priority: int = 0
    flags: int = 0
    payload_type: int = PayloadType.CONTROL
    extensions: tuple[Extension, ...] = ()
    version: int = 1

    @property
    def expiry_ns(self) -> int | None:
        """Expiry time (ns since the DTN epoch), or None when the creation time is unknown."""
        if self.creation_time_ns == 0:
            return None
        return self.creation_time_ns + self.lifetime_ms * 1_000_000

    def has_flag(self, flag: Flags) -> bool:
        return bool(self.flags & flag)
