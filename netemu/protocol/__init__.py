"""The Space-Ground Packet protocol (SGP): field definitions, packet values and the codec.

The scapy layers live in :mod:`netemu.protocol.scapy_layers` (imported on demand, since scapy is
slow to import); the spec is protocols/sgp/SPEC.md.
"""

from __future__ import annotations

from .codec import critical_unknown_extension, decode, encode, fix_crc
from .crc import crc32c
from .fields import (
    DEFAULT_UDP_PORT,
    HEADER_LEN,
    MIN_LINK_MTU,
    NODE_NEIGHBOURS,
    NODE_NONE,
    VERSION,
    ExtensionType,
    Flags,
    MessageType,
    NackReason,
    PayloadType,
    RouteScheme,
)
from .packet import Ack, Echo, Hello, Hop, Nack, Packet, RecordRoute, Route, UnknownExtension

__all__ = [
    "Ack",
    "DEFAULT_UDP_PORT",
    "Echo",
    "ExtensionType",
    "Flags",
    "HEADER_LEN",
    "Hello",
    "Hop",
    "MIN_LINK_MTU",
    "MessageType",
    "NODE_NEIGHBOURS",
    "NODE_NONE",
    "Nack",
    "NackReason",
    "Packet",
    "PayloadType",
    "RecordRoute",
    "Route",
    "RouteScheme",
    "UnknownExtension",
    "VERSION",
    "crc32c",
    "critical_unknown_extension",
    "decode",
    "encode",
    "fix_crc",
]
