"""Forwarding a received frame without re-encoding it: patch the octets a forwarder changes.

A node that forwards a packet changes only the hop limit and, with RECORD_ROUTE, appends one
hop entry. :func:`relay_frame` makes the new frame from the received one (hop limit octet,
RECORD_ROUTE entry and length, ``ext_length``, padding, CRC) and returns exactly the octets
:func:`~netemu.protocol.codec.encode` gives for the changed packet; when it cannot vouch for
that (an extension area laid out other than ``encode`` lays it out, a hop that does not fit its
field, a frame that would grow past ``max_len`` or past the extension area's limit) it returns
``None`` and the caller encodes the packet as before. :func:`with_hop_limit` and
:func:`with_record_route` are ``dataclasses.replace`` for the two fields, without its per-call
introspection. tests/protocol/test_relay.py checks all three against the reference path.
"""

from __future__ import annotations

import dataclasses
import struct

from .crc import crc32c
from .fields import (
    EXT_TLV_HEADER,
    HEADER_BY_NAME,
    HEADER_LEN,
    MAX_EXT_BYTES,
    RR_ENTRY,
    ExtensionType,
)
from .packet import Hop, Packet, RecordRoute

__all__ = ["relay_frame", "with_hop_limit", "with_record_route"]

_HOP_LIMIT = HEADER_BY_NAME["hop_limit"].offset
_EXT_LENGTH = HEADER_BY_NAME["ext_length"].offset
_CRC = HEADER_BY_NAME["crc"].offset
_CRC_END = _CRC + HEADER_BY_NAME["crc"].size
_ZERO_CRC = bytes(_CRC_END - _CRC)
_TLV_HEADER_LEN = EXT_TLV_HEADER.size
_PAD1 = int(ExtensionType.PAD1)
_RR_TYPE = int(ExtensionType.RECORD_ROUTE)
_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
_PACK_CRC = struct.Struct(">I").pack_into
_PACK_U16 = struct.Struct(">H").pack_into
_PACK_ENTRY = RR_ENTRY.pack

#: Field order of :class:`Packet`, as the positional constructor calls below use it.
PACKET_FIELDS = (
    "type",
    "src",
    "dst",
    "body",
    "packet_id",
    "creation_time_ns",
    "lifetime_ms",
    "hop_limit",
    "priority",
    "flags",
    "payload_type",
    "extensions",
    "version",
)
if tuple(f.name for f in dataclasses.fields(Packet)) != PACKET_FIELDS:  # pragma: no cover
    raise ImportError("netemu.protocol.relay: Packet fields changed; update PACKET_FIELDS")


def _rebuilt(p: Packet, hop_limit: int, extensions: tuple) -> Packet:
    """``p`` with ``hop_limit`` and ``extensions`` (positional: faster than
    ``dataclasses.replace``, which this hot path called twice per hop)."""
    return Packet(
        p.type,
        p.src,
        p.dst,
        p.body,
        p.packet_id,
        p.creation_time_ns,
        p.lifetime_ms,
        hop_limit,
        p.priority,
        p.flags,
        p.payload_type,
        extensions,
        p.version,
    )


def with_hop_limit(packet: Packet, hop_limit: int) -> Packet:
    """``dataclasses.replace(packet, hop_limit=hop_limit)``."""
    return _rebuilt(packet, hop_limit, packet.extensions)


def with_record_route(packet: Packet, make) -> Packet:
    """``packet`` with every :class:`RecordRoute` extension ``e`` replaced by ``make(e)``."""
    exts = tuple(make(e) if isinstance(e, RecordRoute) else e for e in packet.extensions)
    return _rebuilt(packet, packet.hop_limit, exts)


def relay_frame(frame: bytes, hop_limit: int, hop: Hop | None, max_len: int) -> bytes | None:
    """``encode`` of ``decode(frame)`` with ``hop_limit`` and (if given) ``hop`` appended to
    its RECORD_ROUTE, made by patching ``frame``; ``None`` when that is not certain or the
    result would be longer than ``max_len`` octets (then encode the packet instead).

    ``frame`` must be ``bytes`` that :func:`~netemu.protocol.codec.decode` accepted, and
    ``hop_limit`` 0..255.
    """
    ext_end = HEADER_LEN + 4 * frame[_EXT_LENGTH]
    pos = HEADER_LEN
    rr_start = -1
    while pos < ext_end:  # decode() checked that every TLV fits the area
        ext_type = frame[pos]
        if ext_type == _PAD1:
            break
        if ext_type == _RR_TYPE:
            rr_start = pos
        pos += _TLV_HEADER_LEN + ((frame[pos + 1] << 8) | frame[pos + 2])
    tlv_end = pos
    pad = ext_end - tlv_end
    # encode() writes the TLVs back to back and then PAD1 octets up to the word boundary only:
    # anything else (PAD1 between TLVs, a whole spare word) is re-laid out by encode. (Fewer
    # than 4 octets after the first PAD1 are all PAD1: decode() refuses a TLV header there.)
    if pad != -(tlv_end - HEADER_LEN) % 4:
        return None
    if hop is None:
        if len(frame) > max_len:
            return None
        out = bytearray(frame)
    else:
        node = hop.node
        time_ns = hop.time_ns
        if (
            rr_start < 0
            or type(node) is not int
            or type(time_ns) is not int
            or not 0 <= node <= _U32_MAX
            or not 0 <= time_ns <= _U64_MAX
        ):
            return None
        tlv_len = tlv_end - HEADER_LEN + RR_ENTRY.size
        pad = -tlv_len % 4
        ext_len = tlv_len + pad
        if ext_len > MAX_EXT_BYTES or len(frame) + ext_len - (ext_end - HEADER_LEN) > max_len:
            return None
        rr_len = (frame[rr_start + 1] << 8) | frame[rr_start + 2]
        rr_end = rr_start + _TLV_HEADER_LEN + rr_len
        out = bytearray(frame[:rr_end])
        out += _PACK_ENTRY(node, time_ns)
        out += frame[rr_end:tlv_end]
        if pad:
            out += bytes(pad)
        out += frame[ext_end:]
        out[_EXT_LENGTH] = ext_len // 4
        _PACK_U16(out, rr_start + 1, rr_len + RR_ENTRY.size)
    out[_HOP_LIMIT] = hop_limit
    out[_CRC:_CRC_END] = _ZERO_CRC
    _PACK_CRC(out, _CRC, crc32c(out))
    return bytes(out)
