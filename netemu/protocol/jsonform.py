"""SGP packets as JSON-ready dicts (the form of protocols/sgp/vectors/*.json).

Numbers stay numbers, octet strings are lowercase hex. :func:`packet_to_fields` also reports the
computed header fields (``ext_length``, ``payload_length``, ``crc``) so a second implementation
can check them; :func:`packet_from_fields` ignores them.

>>> from netemu.protocol import Packet, MessageType, Ack
>>> d = packet_to_fields(Packet(type=MessageType.ACK, src=1, dst=2, body=Ack(1, 7)))
>>> d["type"], d["type_name"], d["body"]
(2, 'ACK', {'ref_src': 1, 'ref_packet_id': 7})
>>> packet_from_fields(d).body
Ack(ref_src=1, ref_packet_id=7)
"""

from __future__ import annotations

from typing import Any

from .codec import encode
from .fields import (
    BODIES,
    HEADER_LEN,
    HEADER_STRUCT,
    Flags,
    MessageType,
    PayloadType,
    as_payload_type,
)
from .packet import BODY_CLASS, Hop, Packet, RecordRoute, UnknownExtension

__all__ = ["packet_from_fields", "packet_to_fields"]

_HEADER_VALUES = (
    "version",
    "type",
    "flags",
    "hop_limit",
    "priority",
    "src",
    "dst",
    "packet_id",
    "creation_time_ns",
    "lifetime_ms",
    "payload_type",
)


def packet_to_fields(packet: Packet) -> dict[str, Any]:
    """All header fields (including computed ones), the extensions and the body."""
    wire = encode(packet)
    out: dict[str, Any] = {name: int(getattr(packet, name)) for name in _HEADER_VALUES}
    out["type_name"] = MessageType(packet.type).name
    out["flag_names"] = [f.name for f in Flags if packet.flags & f]
    try:
        out["payload_type_name"] = PayloadType(packet.payload_type).name
    except ValueError:
        out["payload_type_name"] = None
    *_, out["ext_length"], out["payload_length"], out["crc"] = HEADER_STRUCT.unpack_from(wire)
    exts = []
    for ext in packet.extensions:
        if isinstance(ext, RecordRoute):
            exts.append(
                {
                    "type": 1,
                    "type_name": "RECORD_ROUTE",
                    "missed": ext.missed,
                    "hops": [{"node": h.node, "time_ns": h.time_ns} for h in ext.hops],
                }
            )
        else:
            exts.append({"type": ext.type, "value": bytes(ext.value).hex()})
    out["extensions"] = exts
    mtype = MessageType(packet.type)
    if mtype is MessageType.DATA:
        out["body"] = {"payload": bytes(packet.body).hex()}
    else:
        layout = BODIES[mtype]
        body = {name: getattr(packet.body, name) for name, _ in layout.fixed}
        if layout.tail is not None:
            tail = getattr(packet.body, layout.tail)
            body[layout.tail] = tail if layout.tail_kind == "utf8" else bytes(tail).hex()
        out["body"] = body
    assert len(wire) == HEADER_LEN + 4 * out["ext_length"] + out["payload_length"]
    return out


def packet_from_fields(fields: dict[str, Any]) -> Packet:
    """Inverse of :func:`packet_to_fields` (computed and ``*_name`` entries are ignored)."""
    mtype = MessageType(fields["type"])
    exts: list = []
    for ext in fields.get("extensions", ()):
        if ext["type"] == 1:
            hops = tuple(Hop(h["node"], h["time_ns"]) for h in ext["hops"])
            exts.append(RecordRoute(hops=hops, missed=ext.get("missed", 0)))
        else:
            exts.append(UnknownExtension(ext["type"], bytes.fromhex(ext["value"])))
    raw_body = fields["body"]
    if mtype is MessageType.DATA:
        body: Any = bytes.fromhex(raw_body["payload"])
    else:
        layout = BODIES[mtype]
        values = [raw_body[name] for name, _ in layout.fixed]
        if layout.tail is not None:
            tail = raw_body.get(layout.tail, "")
            values.append(tail if layout.tail_kind == "utf8" else bytes.fromhex(tail))
        body = BODY_CLASS[mtype](*values)
    return Packet(
        type=mtype,
        src=fields["src"],
        dst=fields["dst"],
        body=body,
        packet_id=fields["packet_id"],
        creation_time_ns=fields["creation_time_ns"],
        lifetime_ms=fields["lifetime_ms"],
        hop_limit=fields["hop_limit"],
        priority=fields["priority"],
        flags=Flags(fields["flags"]),
        payload_type=as_payload_type(fields["payload_type"]),
        extensions=tuple(exts),
        version=fields["version"],
    )
