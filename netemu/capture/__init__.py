"""pcapng capture of emulated-link frames (format: protocols/sgp/CAPTURE.md)."""

from __future__ import annotations

from .linkheader import (
    LINK_HEADER_LEN,
    LINKTYPE_NETEMU,
    DropReason,
    LinkEvent,
    LinkMeta,
    decode_link_frame,
    encode_link_header,
)
from .pcapng import CaptureWriter

__all__ = [
    "CaptureWriter",
    "DropReason",
    "LINKTYPE_NETEMU",
    "LINK_HEADER_LEN",
    "LinkEvent",
    "LinkMeta",
    "decode_link_frame",
    "encode_link_header",
]
