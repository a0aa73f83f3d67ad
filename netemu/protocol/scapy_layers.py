"""scapy layers for SGP, generated from the field table in :mod:`netemu.protocol.fields`.

Importing this module binds :class:`SGP` to UDP port :data:`~netemu.protocol.DEFAULT_UDP_PORT`
(source or destination). Lengths and the CRC are computed in ``post_build`` exactly as the codec
does, so ``bytes(to_scapy(p)) == encode(p)`` for every packet; the tests check this on every
vector.

>>> from netemu.protocol import Packet, MessageType, Echo, encode
>>> p = Packet(type=MessageType.ECHO_REQUEST, src=1, dst=2, body=Echo(ident=7, seq=1))
>>> bytes(to_scapy(p)) == encode(p)
True
"""

from __future__ import annotations

import struct

from scapy.fields import (
    BitEnumField,
    BitField,
    ByteEnumField,
    ByteField,
    FieldLenField,
    FlagsField,
    IntField,
    LongField,
    PacketListField,
    ShortField,
    StrField,
    StrLenField,
    XIntField,
)
from scapy.layers.inet import UDP
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw, bind_layers

from .crc import crc32c
from .fields import (
    BODIES,
    DEFAULT_UDP_PORT,
    HEADER_FIELDS,
    HEADER_LEN,
    BodyLayout,
    ExtensionType,
    Flags,
    MessageType,
    PayloadType,
    as_payload_type,
)
from .packet import (
    BODY_CLASS,
    Hop,
    Packet,
    RecordRoute,
    UnknownExtension,
)

__all__ = [
    "SGP",
    "SGP_BODY_LAYERS",
    "SGPExtension",
    "SGPHop",
    "SGPPad1",
    "SGPRecordRoute",
    "from_scapy",
    "to_scapy",
]

_DEFAULTS = {"version": 1, "type": int(MessageType.DATA), "hop_limit": 64, "lifetime_ms": 3_600_000}
_FIELD_BY_SIZE = {1: ByteField, 2: ShortField, 4: IntField, 8: LongField}
_CODE_FIELD = {"B": ByteField, "H": ShortField, "I": IntField, "Q": LongField}


def _flag_names() -> list[str]:
    names = [f"bit{i}" for i in range(8)]
    for flag in Flags:
        names[flag.value.bit_length() - 1] = flag.name
    return names


def _header_fields_desc() -> list:
    """scapy fields for the fixed header, one per entry of ``HEADER_FIELDS``."""
    desc = []
    for f in HEADER_FIELDS:
        default = None if f.computed else _DEFAULTS.get(f.name, 0)
        if f.name == "type":
            desc.append(
                BitEnumField(f.name, default, f.bits, {int(t): t.name for t in MessageType})
            )
        elif f.bits is not None:
            desc.append(BitField(f.name, default, f.bits))
        elif f.name == "flags":
            desc.append(FlagsField(f.name, default, 8, _flag_names()))
        elif f.name == "payload_type":
            desc.append(ByteEnumField(f.name, default, {int(t): t.name for t in PayloadType}))
        elif f.name == "crc":
            desc.append(XIntField(f.name, default))
        else:
            desc.append(_FIELD_BY_SIZE[f.size](f.name, default))
    return desc


class SGPHop(ScapyPacket):
    name = "SGP record-route hop"
    fields_desc = [IntField("node", 0), LongField("time_ns", 0)]

    def extract_padding(self, s):
        return b"", s


class SGPExtension(ScapyPacket):
    """An extension TLV this module does not interpret (and the dispatcher for the others)."""

    name = "SGP extension"
    fields_desc = [
        ByteField("type", 0x40),
        FieldLenField("length", None, length_of="value", fmt="H"),
        StrLenField("value", b"", length_from=lambda p: p.length),
    ]

    def extract_padding(self, s):
        return b"", s

    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        if _pkt:
            if _pkt[0] == ExtensionType.PAD1:
                return SGPPad1
            if _pkt[0] == ExtensionType.RECORD_ROUTE:
                return SGPRecordRoute
        return cls


class SGPPad1(SGPExtension):
    name = "SGP Pad1"
    fields_desc = [ByteField("type", 0)]


class SGPRecordRoute(SGPExtension):
    name = "SGP record route"
    fields_desc = [
        ByteField("type", int(ExtensionType.RECORD_ROUTE)),
        FieldLenField("length", None, length_of="hops", fmt="H", adjust=lambda p, x: x + 1),
        ByteField("missed", 0),
        PacketListField("hops", [], SGPHop, length_from=lambda p: p.length - 1),
    ]


class SGP(ScapyPacket):
    """The SGP fixed header with its extension area; the body is the payload layer."""

    name = "SGP"
    fields_desc = _header_fields_desc() + [
        PacketListField(
            "extensions", [], SGPExtension, length_from=lambda p: (p.ext_length or 0) * 4
        ),
    ]

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        wire = bytearray(p)
        ext_len = len(wire) - HEADER_LEN
        if self.ext_length is None:
            wire += bytes(-ext_len % 4)  # PAD1 octets to the word boundary
            wire[29] = (len(wire) - HEADER_LEN) // 4
        if self.payload_length is None:
            struct.pack_into(">H", wire, 30, len(pay))
        wire += pay
        if self.crc is None:
            wire[32:36] = b"\0\0\0\0"
            struct.pack_into(">I", wire, 32, crc32c(wire))
        return bytes(wire)

    def extract_padding(self, s):
        length = self.payload_length or 0
        return s[:length], s[length:]

    def guess_payload_class(self, payload):
        if self.type == MessageType.DATA:
            return Raw
        return _BODY_BY_TYPE.get(self.type, Raw)


def _body_layer(mtype: MessageType, layout: BodyLayout) -> type[ScapyPacket]:
    desc = [_CODE_FIELD[code](name, 0) for name, code in layout.fixed]
    if layout.tail is not None:
        desc.append(StrField(layout.tail, b""))
    cls_name = "SGP" + "".join(part.capitalize() for part in mtype.name.split("_"))
    return type(cls_name, (ScapyPacket,), {"name": f"SGP {mtype.name}", "fields_desc": desc})


#: One scapy layer per non-DATA message type, named SGPAck, SGPNack, SGPHello, ...
SGP_BODY_LAYERS: dict[MessageType, type[ScapyPacket]] = {
    mtype: _body_layer(mtype, layout)
    for mtype, layout in BODIES.items()
    if mtype is not MessageType.DATA
}
_BODY_BY_TYPE = {int(t): cls for t, cls in SGP_BODY_LAYERS.items()}
globals().update({cls.__name__: cls for cls in SGP_BODY_LAYERS.values()})

for _mtype, _cls in SGP_BODY_LAYERS.items():
    bind_layers(SGP, _cls, type=int(_mtype), payload_type=int(PayloadType.CONTROL))
bind_layers(UDP, SGP, dport=DEFAULT_UDP_PORT)
bind_layers(UDP, SGP, sport=DEFAULT_UDP_PORT)


def to_scapy(packet: Packet) -> SGP:
    """Build the scapy form of ``packet`` (computed fields left to ``post_build``)."""
    exts = []
    for ext in packet.extensions:
        if isinstance(ext, RecordRoute):
            exts.append(
                SGPRecordRoute(
                    missed=ext.missed,
                    hops=[SGPHop(node=h.node, time_ns=h.time_ns) for h in ext.hops],
                )
            )
        else:
            exts.append(SGPExtension(type=ext.type, value=ext.value))
    header = SGP(
        version=packet.version,
        type=int(packet.type),
        flags=int(packet.flags),
        hop_limit=packet.hop_limit,
        priority=packet.priority,
        reserved=0,
        src=packet.src,
        dst=packet.dst,
        packet_id=packet.packet_id,
        creation_time_ns=packet.creation_time_ns,
        lifetime_ms=packet.lifetime_ms,
        payload_type=int(packet.payload_type),
        extensions=exts,
    )
    mtype = MessageType(packet.type)
    if mtype is MessageType.DATA:
        return header / Raw(load=bytes(packet.body)) if packet.body else header
    layout = BODIES[mtype]
    values = {name: getattr(packet.body, name) for name, _ in layout.fixed}
    if layout.tail is not None:
        tail = getattr(packet.body, layout.tail)
        values[layout.tail] = tail.encode("utf-8") if isinstance(tail, str) else bytes(tail)
    return header / SGP_BODY_LAYERS[mtype](**values)


def from_scapy(pkt: ScapyPacket) -> Packet:
    """Convert a dissected scapy ``SGP`` (or a packet containing one) to a codec :class:`Packet`."""
    sgp = pkt if isinstance(pkt, SGP) else pkt[SGP]
    exts: list = []
    for ext in sgp.extensions:
        if isinstance(ext, SGPPad1):
            continue
        if isinstance(ext, SGPRecordRoute):
            hops = tuple(Hop(h.node, h.time_ns) for h in ext.hops)
            exts.append(RecordRoute(hops=hops, missed=ext.missed))
        else:
            exts.append(UnknownExtension(ext.type, bytes(ext.value)))
    mtype = MessageType(sgp.type)
    if mtype is MessageType.DATA:
        body = bytes(sgp.payload)
    else:
        layout = BODIES[mtype]
        layer = sgp.payload
        values = [layer.getfieldval(name) for name, _ in layout.fixed]
        if layout.tail is not None:
            tail = bytes(layer.getfieldval(layout.tail))
            values.append(tail.decode("utf-8") if layout.tail_kind == "utf8" else tail)
        body = BODY_CLASS[mtype](*values)
    return Packet(
        type=mtype,
        src=sgp.src,
        dst=sgp.dst,
        body=body,
        packet_id=sgp.packet_id,
        creation_time_ns=sgp.creation_time_ns,
        lifetime_ms=sgp.lifetime_ms,
        hop_limit=sgp.hop_limit,
        priority=sgp.priority,
        flags=Flags(int(sgp.flags)),
        payload_type=as_payload_type(int(sgp.payload_type)),
        extensions=tuple(exts),
        version=sgp.version,
    )
