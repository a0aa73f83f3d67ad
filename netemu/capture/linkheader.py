"""The netemu link header: per-frame link metadata in front of every captured SGP packet.

Captures use pcapng link type LINKTYPE_USER0 (147); each frame is this 56-octet header followed
by the SGP packet exactly as it crossed the emulated link. Layout (big-endian), see
protocols/sgp/CAPTURE.md::

    0  version          u8   1
    1  event            u8   LinkEvent (1 delivered, 2 dropped)
    2  reason           u8   DropReason (0 when delivered)
    3  reserved         u8   0
    4  header_length    u16  56 (readers skip unknown trailing header fields)
    6  reserved         u16  0
    8  link_id          u32
    12 tx_node          u32  transmitting node number
    16 rx_node          u32  receiving node number
    20 reserved         u32  0
    24 range_m          f64  link range at transmission
    32 delay_ns         u64  one-way delay applied to the frame
    40 loss_probability f64  frame loss probability of the link at that time
    48 loss_draw        f64  the uniform [0, 1) draw compared with it; NaN = no draw made

>>> meta = LinkMeta(link_id=3, tx_node=10, rx_node=11, range_m=2.5e6, delay_ns=8_339_102)
>>> decode_link_frame(encode_link_header(meta) + b"sgp")[0] == meta
True
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass

from ..errors import ProtocolError

__all__ = [
    "LINKTYPE_NETEMU",
    "LINK_HEADER_LEN",
    "DropReason",
    "LinkEvent",
    "LinkMeta",
    "decode_link_frame",
    "encode_link_header",
]

#: pcapng/pcap link type of netemu captures: LINKTYPE_USER0.
LINKTYPE_NETEMU = 147
LINK_HEADER_VERSION = 1
_STRUCT = struct.Struct(">BBBBHHIIIIdQdd")
LINK_HEADER_LEN = _STRUCT.size
assert LINK_HEADER_LEN == 56


class LinkEvent(enum.IntEnum):
    """What happened to the frame on the link."""

    DELIVERED = 1
    DROPPED = 2


class DropReason(enum.IntEnum):
    """Why the link dropped a frame (registry in protocols/sgp/CAPTURE.md)."""

    NONE = 0
    LOSS = 1  # the loss draw fell below the loss probability
    LINK_DOWN = 2  # no contact: the link was down when the frame was sent
    QUEUE_FULL = 3  # the link's transmit queue was full (rate limit)
    TOO_BIG = 4  # larger than the link MTU
    LINK_LOST = 5  # the link went down while the frame was in flight


@dataclass(frozen=True, slots=True)
class LinkMeta:
    """Link metadata of one captured frame."""

    link_id: int
    tx_node: int
    rx_node: int
    range_m: float
    delay_ns: int
    loss_probability: float = 0.0
    loss_draw: float = math.nan
    event: LinkEvent = LinkEvent.DELIVERED
    reason: DropReason = DropReason.NONE

    def __eq__(self, other: object) -> bool:  # NaN-aware, so decoded metadata compares equal
        if not isinstance(other, LinkMeta):
            return NotImplemented
        return all(
            a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
            for a, b in zip(self._astuple(), other._astuple(), strict=True)
        )

    def _astuple(self) -> tuple:
        return (
            self.link_id,
            self.tx_node,
            self.rx_node,
            self.range_m,
            self.delay_ns,
            self.loss_probability,
            self.loss_draw,
            int(self.event),
            int(self.reason),
        )

    def summary(self) -> str:
        """One human-readable line (used as the pcapng frame comment)."""
        text = f"{LinkEvent(self.event).name.lower()}"
        if self.event == LinkEvent.DROPPED:
            text += f" ({DropReason(self.reason).name.lower()})"
        text += (
            f" link {self.link_id} {self.tx_node}>{self.rx_node}"
            f" range {self.range_m / 1000:.3f} km delay {self.delay_ns / 1e6:.6f} ms"
            f" loss p={self.loss_probability:.6g}"
        )
        if not math.isnan(self.loss_draw):
            text += f" draw={self.loss_draw:.6f}"
        return text


def encode_link_header(meta: LinkMeta) -> bytes:
    """The 56-octet link header for ``meta``."""
    return _STRUCT.pack(
        LINK_HEADER_VERSION,
        int(meta.event),
        int(meta.reason),
        0,
        LINK_HEADER_LEN,
        0,
        meta.link_id,
        meta.tx_node,
        meta.rx_node,
        0,
        float(meta.range_m),
        meta.delay_ns,
        float(meta.loss_probability),
        float(meta.loss_draw),
    )


def decode_link_frame(frame: bytes) -> tuple[LinkMeta, bytes]:
    """Split a captured frame into its link metadata and the SGP packet octets."""
    if len(frame) < LINK_HEADER_LEN:
        raise ProtocolError(
            f"truncated link header: needs {LINK_HEADER_LEN} octets, frame has {len(frame)}",
            field="link_header",
            offset=0,
        )
    (version, event, reason, _, hlen, _, link_id, tx, rx, _, range_m, delay_ns, p, draw) = (
        _STRUCT.unpack_from(frame)
    )
    if version != LINK_HEADER_VERSION:
        raise ProtocolError(
            f"expected link header version 1, got {version}", field="version", offset=0
        )
    if not LINK_HEADER_LEN <= hlen <= len(frame):
        raise ProtocolError(
            f"header_length {hlen} outside {LINK_HEADER_LEN}..{len(frame)}",
            field="header_length",
            offset=4,
        )
    try:
        event_v, reason_v = LinkEvent(event), DropReason(reason)
    except ValueError:
        raise ProtocolError(
            f"unknown event {event} or reason {reason}", field="event", offset=1
        ) from None
    meta = LinkMeta(link_id, tx, rx, range_m, delay_ns, p, draw, event_v, reason_v)
    return meta, frame[hlen:]
