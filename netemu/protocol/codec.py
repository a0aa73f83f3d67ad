"""The SGP codec: pure ``encode(packet) -> bytes`` and ``decode(octets) -> Packet``.

Sans-IO: no sockets, no clocks, no logging on the hot path. The layout comes from
:mod:`netemu.protocol.fields`. Every problem with the input of :func:`decode` raises
:class:`~netemu.errors.ProtocolError` naming the spec field, the octet offset in the packet and
what was expected; nothing else is raised for malformed octets. :func:`encode` raises
``ProtocolError`` (with ``offset=None``) for values that do not fit their fields.

>>> from netemu.protocol import Packet, MessageType, PayloadType, encode, decode
>>> wire = encode(Packet(type=MessageType.DATA, src=10, dst=20, body=b"hi",
...                      payload_type=PayloadType.RAW))
>>> len(wire), decode(wire).body
(38, b'hi')
"""

from __future__ import annotations

import struct
from itertools import starmap

from ..errors import ProtocolError
from .crc import crc32c
from .fields import (
    BODIES,
    EXT_TLV_HEADER,
    HEADER_BY_NAME,
    HEADER_FIELDS,
    HEADER_LEN,
    HEADER_STRUCT,
    MAX_BODY_BYTES,
    MAX_EXT_BYTES,
    RR_ENTRY,
    RR_MISSED,
    VERSION,
    BodyLayout,
    ExtensionType,
    Flags,
    MessageType,
    PayloadType,
    as_payload_type,
)
from .packet import BODY_CLASS, Hop, Packet, RecordRoute, UnknownExtension

__all__ = ["critical_unknown_extension", "decode", "encode", "fix_crc"]

_CRC = HEADER_BY_NAME["crc"]
_CRC_OFFSET = _CRC.offset
_BPV7_FIRST_OCTET = 0x9F  # CBOR indefinite-length array (RFC 9171 section 4.1)
_TYPES = {int(t): t for t in MessageType}
_FLAGS = tuple(Flags(v) for v in range(256))  # indexed by the flags octet; Flags(v) is slow
_RR_TYPE = int(ExtensionType.RECORD_ROUTE)


# --------------------------------------------------------------------------- encoding


def _check_uint(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << bits):
        raise ProtocolError(f"expected an integer 0..{(1 << bits) - 1}, got {value!r}", field=name)


def _encode_extensions(extensions) -> bytes:
    out = bytearray()
    seen_rr = False
    for ext in extensions:
        if isinstance(ext, RecordRoute):
            if seen_rr:
                raise ProtocolError("at most one RECORD_ROUTE extension", field="record_route")
            seen_rr = True
            _check_uint("missed", ext.missed, 8)
            value = bytearray(RR_MISSED.pack(ext.missed))
            for hop in ext.hops:
                _check_uint("node", hop.node, 32)
                _check_uint("time_ns", hop.time_ns, 64)
                value += RR_ENTRY.pack(hop.node, hop.time_ns)
            ext_type = _RR_TYPE
        elif isinstance(ext, UnknownExtension):
            _check_uint("extension_type", ext.type, 8)
            if ext.type in (ExtensionType.PAD1, _RR_TYPE):
                raise ProtocolError(
                    f"type {ext.type} is defined by the spec; use its own class",
                    field="extension_type",
                )
            value = bytes(ext.value)
            ext_type = ext.type
        else:
            raise ProtocolError(f"expected an extension object, got {ext!r}", field="extensions")
        if len(value) > 0xFFFF:
            raise ProtocolError("extension value longer than 65535 octets", field="extensions")
        out += EXT_TLV_HEADER.pack(ext_type, len(value))
        out += value
    pad = -len(out) % 4
    out += bytes(pad)  # PAD1 octets up to the 4-octet word boundary
    if len(out) > MAX_EXT_BYTES:
        raise ProtocolError(
            f"extension area of {len(out)} octets exceeds {MAX_EXT_BYTES}", field="ext_length"
        )
    return bytes(out)


def _encode_body(ptype: MessageType, body) -> bytes:
    expected = BODY_CLASS[ptype]
    if expected is bytes:
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise ProtocolError(
                f"{ptype.name} carries bytes, got {type(body).__name__}", field="body"
            )
        return bytes(body)
    if not isinstance(body, expected):
        raise ProtocolError(
            f"{ptype.name} carries {expected.__name__}, got {type(body).__name__}", field="body"
        )
    layout = BODIES[ptype]
    values = []
    for name, size in layout.fixed_sizes:
        value = getattr(body, name)
        _check_uint(name, value, size * 8)
        values.append(value)
    out = layout.struct.pack(*values)
    if layout.tail is not None:
        tail = getattr(body, layout.tail)
        if layout.tail_kind == "utf8":
            if not isinstance(tail, str):
                raise ProtocolError(f"expected text, got {tail!r}", field=layout.tail)
            tail = tail.encode("utf-8")
        elif not isinstance(tail, (bytes, bytearray, memoryview)):
            raise ProtocolError(f"expected bytes, got {type(tail).__name__}", field=layout.tail)
        if layout.tail_max is not None and len(tail) > layout.tail_max:
            raise ProtocolError(
                f"at most {layout.tail_max} octets, got {len(tail)}", field=layout.tail
            )
        out += bytes(tail)
    return out


def encode(packet: Packet) -> bytes:
    """Encode ``packet`` into wire octets, computing ``ext_length``, ``payload_length`` and ``crc``.

    Raises :class:`~netemu.errors.ProtocolError` (``offset=None``) when a value does not fit.
    """
    ptype = _TYPES.get(packet.type) if isinstance(packet.type, int) else None
    if ptype is None:
        raise ProtocolError(f"expected a message type 1..7, got {packet.type!r}", field="type")
    _check_uint("version", packet.version, 4)
    if packet.version != VERSION:
        raise ProtocolError(f"this codec writes version {VERSION}", field="version")
    _check_uint("flags", packet.flags, 8)
    _check_uint("hop_limit", packet.hop_limit, 8)
    _check_uint("priority", packet.priority, 3)
    _check_uint("src", packet.src, 32)
    _check_uint("dst", packet.dst, 32)
    _check_uint("packet_id", packet.packet_id, 32)
    _check_uint("creation_time_ns", packet.creation_time_ns, 64)
    _check_uint("lifetime_ms", packet.lifetime_ms, 32)
    _check_uint("payload_type", packet.payload_type, 8)
    if ptype is MessageType.DATA:
        if packet.payload_type == PayloadType.CONTROL:
            raise ProtocolError(
                "DATA needs a payload type other than CONTROL", field="payload_type"
            )
    elif packet.payload_type != PayloadType.CONTROL:
        raise ProtocolError(f"{ptype.name} requires payload type CONTROL (0)", field="payload_type")
    body = _encode_body(ptype, packet.body)
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolError(
            f"body of {len(body)} octets exceeds {MAX_BODY_BYTES}", field="payload_length"
        )
    ext = _encode_extensions(packet.extensions) if packet.extensions else b""
    header = HEADER_STRUCT.pack(
        (VERSION << 4) | int(ptype),
        int(packet.flags),
        packet.hop_limit,
        packet.priority << 5,
        packet.src,
        packet.dst,
        packet.packet_id,
        packet.creation_time_ns,
        packet.lifetime_ms,
        int(packet.payload_type),
        len(ext) // 4,
        len(body),
        0,
    )
    wire = bytearray(header)
    wire += ext
    wire += body
    struct.pack_into(">I", wire, _CRC_OFFSET, crc32c(wire))
    return bytes(wire)


def fix_crc(octets: bytes | bytearray) -> bytes:
    """Return ``octets`` with the ``crc`` field recomputed (for tests and fuzzing).

    Octets shorter than the fixed header are returned unchanged.
    """
    wire = bytearray(octets)
    if len(wire) < HEADER_LEN:
        return bytes(wire)
    wire[_CRC_OFFSET : _CRC_OFFSET + 4] = b"\0\0\0\0"
    struct.pack_into(">I", wire, _CRC_OFFSET, crc32c(wire))
    return bytes(wire)


# --------------------------------------------------------------------------- decoding


def _decode_extensions(buf: bytes, start: int, end: int) -> tuple:
    exts = []
    pos = start
    seen_rr = False
    while pos < end:
        ext_type = buf[pos]
        if ext_type == ExtensionType.PAD1:
            pos += 1
            continue
        if end - pos < EXT_TLV_HEADER.size:
            raise ProtocolError(
                f"truncated extension: a TLV header needs 3 octets, {end - pos} left in the area",
                field="extension_length",
                offset=pos + 1,
            )
        _, length = EXT_TLV_HEADER.unpack_from(buf, pos)
        vstart = pos + EXT_TLV_HEADER.size
        if vstart + length > end:
            raise ProtocolError(
                f"extension value of {length} octets runs past the extension area "
                f"({end - vstart} octets left)",
                field="extension_length",
                offset=pos + 1,
            )
        if ext_type == _RR_TYPE:
            if seen_rr:
                raise ProtocolError(
                    "at most one RECORD_ROUTE extension", field="record_route", offset=pos
                )
            seen_rr = True
            if length < 1 or (length - 1) % RR_ENTRY.size:
                raise ProtocolError(
                    f"RECORD_ROUTE value must be 1 + 12*n octets, got {length}",
                    field="record_route",
                    offset=pos + 1,
                )
            missed = buf[vstart]
            hops = tuple(starmap(Hop, RR_ENTRY.iter_unpack(buf[vstart + 1 : vstart + length])))
            exts.append(RecordRoute(hops=hops, missed=missed))
        else:
            exts.append(UnknownExtension(ext_type, bytes(buf[vstart : vstart + length])))
        pos = vstart + length
    return tuple(exts)


def _decode_body(ptype: MessageType, layout: BodyLayout, buf: bytes, start: int, end: int):
    size = end - start
    fixed_len = layout.fixed_len
    if size < fixed_len:
        off = 0
        for name, fsize in layout.fixed_sizes:
            if off + fsize > size:
                raise ProtocolError(
                    f"truncated {ptype.name} body: needs {fixed_len} octets, has {size}",
                    field=name,
                    offset=start + off,
                )
            off += fsize
    if layout.tail is None and size != fixed_len:
        raise ProtocolError(
            f"{ptype.name} body must be exactly {fixed_len} octets, got {size}",
            field="payload_length",
            offset=HEADER_BY_NAME["payload_length"].offset,
        )
    values = layout.struct.unpack_from(buf, start)
    tail_start = start + fixed_len
    tail = bytes(buf[tail_start:end])
    if layout.tail_max is not None and len(tail) > layout.tail_max:
        raise ProtocolError(
            f"at most {layout.tail_max} octets, got {len(tail)}",
            field=layout.tail,
            offset=tail_start,
        )
    cls = BODY_CLASS[ptype]
    if layout.tail is None:
        return cls(*values)
    if layout.tail_kind == "utf8":
        try:
            text = tail.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                f"expected UTF-8 text: {exc.reason}",
                field=layout.tail,
                offset=tail_start + exc.start,
            ) from None
        return cls(*values, text)
    return cls(*values, tail)


def _truncated_header(n: int) -> ProtocolError:
    for f in HEADER_FIELDS:
        if f.end > n:
            return ProtocolError(
                f"truncated: the fixed header needs {HEADER_LEN} octets, the packet has {n}",
                field=f.name,
                offset=f.offset,
            )
    raise AssertionError("unreachable")  # pragma: no cover


def decode(octets: bytes | bytearray | memoryview) -> Packet:
    """Decode one SGP packet (exactly one UDP payload) into a :class:`Packet`.

    Raises :class:`~netemu.errors.ProtocolError` with ``field`` and ``offset`` for any malformed
    input: truncation, trailing octets, unknown version or type, non-zero reserved bits, a
    ``payload_type`` not allowed for the message type, a CRC mismatch, a bad extension or body.
    """
    buf = octets if type(octets) is bytes else bytes(octets)
    n = len(buf)
    if n < HEADER_LEN:
        raise _truncated_header(n)
    (
        b0,
        flags,
        hop_limit,
        b3,
        src,
        dst,
        packet_id,
        creation_time_ns,
        lifetime_ms,
        payload_type,
        ext_words,
        payload_length,
        crc,
    ) = HEADER_STRUCT.unpack_from(buf)
    version = b0 >> 4
    if version != VERSION:
        raise ProtocolError(f"expected version {VERSION}, got {version}", field="version", offset=0)
    ptype = _TYPES.get(b0 & 0x0F)
    if ptype is None:
        raise ProtocolError(
            f"expected a message type 1..7, got {b0 & 0x0F}", field="type", offset=0
        )
    if b3 & 0x1F:
        raise ProtocolError(
            f"reserved bits must be zero, got {b3 & 0x1F:#04x}", field="reserved", offset=3
        )
    if ptype is MessageType.DATA:
        if payload_type == PayloadType.CONTROL:
            raise ProtocolError(
                "DATA needs a payload type other than CONTROL (0)", field="payload_type", offset=28
            )
    elif payload_type != PayloadType.CONTROL:
        raise ProtocolError(
            f"{ptype.name} requires payload type CONTROL (0), got {payload_type}",
            field="payload_type",
            offset=28,
        )
    ext_end = HEADER_LEN + 4 * ext_words
    total = ext_end + payload_length
    if n < total:
        if n < ext_end:
            raise ProtocolError(
                f"truncated: ext_length announces {4 * ext_words} octets of extensions, "
                f"{n - HEADER_LEN} present",
                field="extensions",
                offset=HEADER_LEN,
            )
        raise ProtocolError(
            f"truncated: payload_length announces {payload_length} octets of body, "
            f"{n - ext_end} present",
            field="body",
            offset=ext_end,
        )
    if n > total:
        raise ProtocolError(
            f"the header announces {total} octets but the packet has {n} (trailing octets)",
            field="payload_length",
            offset=total,
        )
    computed = crc32c(buf[:_CRC_OFFSET] + b"\0\0\0\0" + buf[_CRC_OFFSET + 4 :])
    if computed != crc:
        raise ProtocolError(
            f"CRC-32C mismatch: expected {computed:#010x}, packet carries {crc:#010x}",
            field="crc",
            offset=_CRC_OFFSET,
        )
    extensions = _decode_extensions(buf, HEADER_LEN, ext_end) if ext_words else ()
    if ptype is MessageType.DATA:
        body = buf[ext_end:total]
        if payload_type == PayloadType.BPV7 and (not body or body[0] != _BPV7_FIRST_OCTET):
            raise ProtocolError(
                "a BPv7 bundle starts with 0x9f (CBOR indefinite-length array, RFC 9171 4.1)",
                field="payload",
                offset=ext_end,
            )
    else:
        body = _decode_body(ptype, BODIES[ptype], buf, ext_end, total)
    return Packet(
        type=ptype,
        src=src,
        dst=dst,
        body=body,
        packet_id=packet_id,
        creation_time_ns=creation_time_ns,
        lifetime_ms=lifetime_ms,
        hop_limit=hop_limit,
        priority=b3 >> 5,
        flags=_FLAGS[flags],
        payload_type=as_payload_type(payload_type),
        extensions=extensions,
        version=version,
    )


def critical_unknown_extension(packet: Packet) -> int | None:
    """The type of the first critical extension this implementation does not know, if any."""
    for ext in packet.extensions:
        if isinstance(ext, UnknownExtension) and ext.critical:
            return ext.type
    return None
