"""Datagrams between processes of a run: the fabric attachment and the application interface.

Both are documented in docs/runtime.md so that programs that are not netemu (a second SGP
implementation, an application) can speak them.

Fabric attachment (node <-> fabric, UDP): an 8-octet header then the payload::

    0      1      2        3        4 .. 7
    'N'    'F'    version  kind     node number (u32, big endian)

========  ==========  =========================================  ===========================
kind      direction   ``node``                                   payload
========  ==========  =========================================  ===========================
1 FRAME   node->fab   next hop (the link's far end)              one SGP packet
1 FRAME   fab->node   previous hop (the link's sending end)      one SGP packet
2 ATTACH  node->fab   the sender's own node number               empty
3 ATTACHED fab->node  the node number that was attached          empty
4 LINK    fab->node   the neighbour                              1 octet: 1 up, 0 down
========  ==========  =========================================  ===========================

Application interface (program <-> its node's application port, UDP): an 8-octet header::

    0 .. 3                         4             5        6 .. 7
    peer node number (u32, BE)     payload_type  flags    reserved (0)

To the node, ``peer`` is the destination; from the node, the source. ``flags`` bit 0 asks for
RECORD_ROUTE on the packet sent. An empty datagram (no header) registers the sender's address
for deliveries without sending anything.

>>> decode_attachment(encode_attachment(Kind.FRAME, 7, b"x"))
(<Kind.FRAME: 1>, 7, b'x')
"""

from __future__ import annotations

import enum
import struct

from ..errors import ProtocolError

__all__ = [
    "APP_FLAG_RECORD_ROUTE",
    "APP_HEADER",
    "ATTACH_HEADER",
    "ATTACH_MAGIC",
    "ATTACH_VERSION",
    "Kind",
    "decode_app",
    "decode_attachment",
    "encode_app",
    "encode_attachment",
]

ATTACH_MAGIC = b"NF"
ATTACH_VERSION = 1
ATTACH_HEADER = struct.Struct("!2sBBI")
APP_HEADER = struct.Struct("!IBBH")
APP_FLAG_RECORD_ROUTE = 0x01


class Kind(enum.IntEnum):
    """Kinds of fabric attachment datagrams."""

    FRAME = 1
    ATTACH = 2
    ATTACHED = 3
    LINK = 4


_KINDS = {int(k): k for k in Kind}
_PREFIX = {k: ATTACH_MAGIC + bytes((ATTACH_VERSION, int(k))) for k in Kind}


def encode_attachment(kind: Kind, node: int, payload: bytes = b"") -> bytes:
    """One fabric attachment datagram."""
    return _PREFIX[kind] + node.to_bytes(4, "big") + payload


def decode_attachment(datagram: bytes) -> tuple[Kind, int, bytes]:
    """``(kind, node, payload)``; raises :class:`ProtocolError` for anything else."""
    if len(datagram) < ATTACH_HEADER.size:
        raise ProtocolError(
            f"attachment datagram of {len(datagram)} octets, need at least {ATTACH_HEADER.size}",
            field="header",
            offset=0,
        )
    magic, version, kind, node = ATTACH_HEADER.unpack_from(datagram)
    if magic != ATTACH_MAGIC:
        raise ProtocolError(f"bad magic {magic!r}, expected b'NF'", field="magic", offset=0)
    if version != ATTACH_VERSION:
        raise ProtocolError(f"version {version}, expected 1", field="version", offset=2)
    kind_value = _KINDS.get(kind)
    if kind_value is None:
        raise ProtocolError(f"unknown kind {kind}", field="kind", offset=3)
    return kind_value, node, bytes(datagram[ATTACH_HEADER.size :])


def encode_app(peer: int, payload: bytes, *, payload_type: int = 1, flags: int = 0) -> bytes:
    """One application-interface datagram (header + payload)."""
    return APP_HEADER.pack(peer, payload_type, flags, 0) + payload


def decode_app(datagram: bytes) -> tuple[int, int, int, bytes]:
    """``(peer, payload_type, flags, payload)``; raises :class:`ProtocolError` when short."""
    if len(datagram) < APP_HEADER.size:
        raise ProtocolError(
            f"application datagram of {len(datagram)} octets, need at least {APP_HEADER.size}",
            field="header",
            offset=0,
        )
    peer, payload_type, flags, _ = APP_HEADER.unpack_from(datagram)
    return peer, payload_type, flags, bytes(datagram[APP_HEADER.size :])
