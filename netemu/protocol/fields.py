"""SGP field definitions: the one table that the codec, the scapy layers and the docs follow.

Everything about the wire layout of the Space-Ground Packet protocol (protocols/sgp/SPEC.md) lives
here as data: the fixed header (:data:`HEADER_FIELDS`), the message bodies (:data:`BODIES`), the
extension TLVs and the registries (message types, flags, payload types, extension types, NACK
reasons). :mod:`netemu.protocol.codec` and :mod:`netemu.protocol.scapy_layers` are both derived
from these tables, and the tests check that they agree byte for byte.

Field names are the identifiers the spec uses (``hop_limit``, ``creation_time_ns``); a
:class:`~netemu.errors.ProtocolError` names the same identifiers.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

#: Protocol version carried in the ``version`` field.
VERSION = 1
#: Default UDP port of SGP on emulated links (SPEC.md section "Transport"); configurable.
DEFAULT_UDP_PORT = 61801
#: Link MTU every implementation must support (SGP never fragments; SPEC.md "MTU rule").
MIN_LINK_MTU = 1280
#: Node number meaning "no node / unknown" (like ``ipn:0``).
NODE_NONE = 0
#: Destination meaning "every neighbour on this link" (HELLO).
NODE_NEIGHBOURS = 0xFFFF_FFFF
#: Largest extension area: ``ext_length`` counts 4-octet words in one octet.
MAX_EXT_BYTES = 255 * 4
#: Largest body: ``payload_length`` is 16 bits.
MAX_BODY_BYTES = 0xFFFF
#: Longest HELLO node name, in UTF-8 octets.
MAX_HELLO_NAME_BYTES = 64
#: Seconds from 1970-01-01 to the DTN epoch 2000-01-01T00:00:00Z (RFC 9171 section 4.2.6).
DTN_EPOCH_UNIX_S = 946_684_800


class MessageType(enum.IntEnum):
    """Registry: SGP message types (4-bit ``type`` field). 0 and 8..15 are unassigned."""

    DATA = 1
    ACK = 2
    NACK = 3
    HELLO = 4
    ECHO_REQUEST = 5
    ECHO_REPLY = 6
    ROUTE = 7


class Flags(enum.IntFlag):
    """Registry: bits of the ``flags`` octet. Unassigned bits are sent as 0 and ignored."""

    ACK_REQUESTED = 0x80  # the next hop answers with ACK (or NACK) for this packet
    REPORT_DROP = 0x40  # a node that drops this packet sends a NACK to its source


class PayloadType(enum.IntEnum):
    """Registry: ``payload_type`` values. 3..191 unassigned, 192..254 experimental, 255 reserved."""

    CONTROL = 0  # body laid out by the message type (every type but DATA)
    RAW = 1  # opaque application octets
    BPV7 = 2  # one whole BPv7 bundle (RFC 9171), CBOR-encoded


_PAYLOAD_TYPES = {int(t): t for t in PayloadType}


def as_payload_type(value: int) -> PayloadType | int:
    """The :class:`PayloadType` member for ``value``; unassigned values stay plain integers."""
    return _PAYLOAD_TYPES.get(value, value)


class ExtensionType(enum.IntEnum):
    """Registry: extension TLV types. Bit 0x80 set means "critical" (see SPEC.md)."""

    PAD1 = 0  # a single zero octet of padding, no length and no value
    RECORD_ROUTE = 1


#: Extension types with this bit set must be understood by every node that processes the packet.
EXT_CRITICAL_BIT = 0x80


class NackReason(enum.IntEnum):
    """Registry: NACK ``reason`` values (16 bits)."""

    UNSPECIFIED = 0
    NO_ROUTE = 1
    QUEUE_FULL = 2
    LIFETIME_EXPIRED = 3
    HOP_LIMIT_EXCEEDED = 4
    TOO_BIG = 5  # info = the MTU of the link the packet did not fit
    UNKNOWN_CRITICAL_EXTENSION = 6  # info = the extension type
    UNSUPPORTED_PAYLOAD_TYPE = 7  # info = the payload type
    LINK_DOWN = 8


class RouteScheme(enum.IntEnum):
    """Registry: ROUTE ``scheme`` values. 0x8000..0xFFFE experimental (plug-ins pick one)."""

    RESERVED = 0
    OPAQUE = 1  # scheme-private data, no further structure defined by this spec


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a fixed layout.

    ``offset`` and ``size`` are in octets; a bit field (``bits`` = number of bits) occupies the
    ``bits`` bits of the octet(s) at ``offset`` starting ``shift`` bits above the least
    significant bit. ``computed`` fields (lengths, checksum) are filled in by the encoder.
    """

    name: str
    offset: int
    size: int
    bits: int | None = None
    shift: int = 0
    computed: bool = False
    doc: str = ""

    @property
    def mask(self) -> int:
        width = self.bits if self.bits is not None else self.size * 8
        return ((1 << width) - 1) << self.shift

    @property
    def end(self) -> int:
        return self.offset + self.size


#: The fixed header, in wire order (SPEC.md section "Fixed header"). Multi-octet fields are
#: big-endian (network byte order).
HEADER_FIELDS: tuple[Field, ...] = (
    Field("version", 0, 1, bits=4, shift=4, doc="protocol version, 1"),
    Field("type", 0, 1, bits=4, shift=0, doc="message type (MessageType)"),
    Field("flags", 1, 1, doc="flag bits (Flags)"),
    Field("hop_limit", 2, 1, doc="hops left; each forwarder decrements"),
    Field("priority", 3, 1, bits=3, shift=5, doc="0 lowest .. 7 highest"),
    Field("reserved", 3, 1, bits=5, shift=0, doc="must be zero"),
    Field("src", 4, 4, doc="source node number (ipn node number)"),
    Field("dst", 8, 4, doc="destination node number"),
    Field("packet_id", 12, 4, doc="per-source packet counter"),
    Field("creation_time_ns", 16, 8, doc="ns since 2000-01-01T00:00:00Z; 0 = unknown"),
    Field("lifetime_ms", 24, 4, doc="ms after creation_time_ns when the packet expires"),
    Field("payload_type", 28, 1, doc="payload type (PayloadType)"),
    Field("ext_length", 29, 1, computed=True, doc="extension area length in 4-octet words"),
    Field("payload_length", 30, 2, computed=True, doc="body length in octets"),
    Field("crc", 32, 4, computed=True, doc="CRC-32C of the whole packet with this field zero"),
)

HEADER_BY_NAME: dict[str, Field] = {f.name: f for f in HEADER_FIELDS}
#: Length of the fixed header in octets.
HEADER_LEN = max(f.end for f in HEADER_FIELDS)
#: ``struct`` format of the fixed header: one code per distinct octet group, in order.
_SIZE_CODE = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _struct_format(fields: tuple[Field, ...]) -> str:
    codes = []
    seen: set[int] = set()
    for f in fields:
        if f.offset in seen:
            continue
        seen.add(f.offset)
        codes.append(_SIZE_CODE[f.size])
    return ">" + "".join(codes)


HEADER_STRUCT = struct.Struct(_struct_format(HEADER_FIELDS))
assert HEADER_STRUCT.size == HEADER_LEN == 36

#: Extension TLV header: type (1 octet) and length of the value (2 octets).
EXT_TLV_HEADER = struct.Struct(">BH")
#: RECORD_ROUTE value: ``missed`` (1 octet) then entries of node (4) + time_ns (8).
RR_MISSED = struct.Struct(">B")
RR_ENTRY = struct.Struct(">IQ")


@dataclass(frozen=True, slots=True)
class BodyLayout:
    """Layout of a message body: fixed fields (name, struct code) then an optional tail.

    ``tail`` names the variable-length rest of the body (``None`` = the body is exactly the
    fixed part); ``tail_kind`` is ``"bytes"`` or ``"utf8"``; ``tail_max`` bounds its length.
    ``struct`` (the fixed part) and ``fixed_sizes`` ((name, octets) of each fixed field) are
    derived once.
    """

    fixed: tuple[tuple[str, str], ...]
    tail: str | None = None
    tail_kind: str = "bytes"
    tail_max: int | None = None
    struct: struct.Struct = field(init=False, repr=False, compare=False)
    fixed_sizes: tuple[tuple[str, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fmt = ">" + "".join(code for _, code in self.fixed)
        sizes = tuple((name, struct.calcsize(">" + code)) for name, code in self.fixed)
        object.__setattr__(self, "struct", struct.Struct(fmt))
        object.__setattr__(self, "fixed_sizes", sizes)

    @property
    def fixed_len(self) -> int:
        return self.struct.size


#: Body layouts per message type (SPEC.md section "Message bodies").
BODIES: dict[MessageType, BodyLayout] = {
    MessageType.DATA: BodyLayout((), tail="payload"),
    MessageType.ACK: BodyLayout((("ref_src", "I"), ("ref_packet_id", "I"))),
    MessageType.NACK: BodyLayout(
        (("ref_src", "I"), ("ref_packet_id", "I"), ("reason", "H"), ("info", "H"))
    ),
    MessageType.HELLO: BodyLayout(
        (("terminal", "H"), ("link_mtu", "H")),
        tail="node_name",
        tail_kind="utf8",
        tail_max=MAX_HELLO_NAME_BYTES,
    ),
    MessageType.ECHO_REQUEST: BodyLayout((("ident", "H"), ("seq", "H")), tail="data"),
    MessageType.ECHO_REPLY: BodyLayout((("ident", "H"), ("seq", "H")), tail="data"),
    MessageType.ROUTE: BodyLayout((("scheme", "H"), ("update_seq", "I")), tail="data"),
}
