"""What a :class:`~netemu.node.core.NodeCore` asks its host to do: small frozen action values.

Every method of the core returns a list of actions in the order they happened. The host (the
asyncio node process, or the virtual-time simulator) carries them out:

- :class:`Originated` — this node created a packet (application data, ECHO, HELLO, ACK, NACK).
  Purely informational: it opens the packet's account for the "every packet is delivered or
  dropped" balance. It always precedes the packet's first :class:`Transmit`, :class:`Deliver`
  or :class:`Drop`.
- :class:`Transmit` — send ``frame`` on the link to ``neighbour`` now.
- :class:`Deliver` — the packet reached its destination (this node) and was consumed here; hand
  it to the local application (DATA, ECHO_REPLY, NACK, ...).
- :class:`Drop` — the packet (or, when it could not be decoded, the raw frame) was dropped, with a
  :class:`NodeDropReason`.

>>> Drop(b"junk", NodeDropReason.MALFORMED).reason == "malformed"
True
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..protocol import NackReason, Packet

__all__ = [
    "Action",
    "Deliver",
    "Drop",
    "NodeDropReason",
    "Originated",
    "Transmit",
]


class NodeDropReason(enum.StrEnum):
    """Why a node dropped a packet. Values are plain strings (``"malformed"``, ``"no_route"``)."""

    MALFORMED = "malformed"  # could not be decoded (SPEC.md section 11); never NACKed
    INVALID_ADDRESS = "invalid_address"  # src 0, dst 0, or "all neighbours" misused; never NACKed
    LIFETIME_EXPIRED = "lifetime_expired"
    HOP_LIMIT_EXCEEDED = "hop_limit_exceeded"
    NO_ROUTE = "no_route"
    QUEUE_FULL = "queue_full"
    TOO_BIG = "too_big"
    UNKNOWN_CRITICAL_EXTENSION = "unknown_critical_extension"
    UNSUPPORTED_PAYLOAD_TYPE = "unsupported_payload_type"

    @property
    def nack_reason(self) -> NackReason | None:
        """The NACK ``reason`` code for this drop, or ``None`` when no NACK may be sent."""
        return _NACK.get(self)


_NACK: dict[NodeDropReason, NackReason] = {
    NodeDropReason.LIFETIME_EXPIRED: NackReason.LIFETIME_EXPIRED,
    NodeDropReason.HOP_LIMIT_EXCEEDED: NackReason.HOP_LIMIT_EXCEEDED,
    NodeDropReason.NO_ROUTE: NackReason.NO_ROUTE,
    NodeDropReason.QUEUE_FULL: NackReason.QUEUE_FULL,
    NodeDropReason.TOO_BIG: NackReason.TOO_BIG,
    NodeDropReason.UNKNOWN_CRITICAL_EXTENSION: NackReason.UNKNOWN_CRITICAL_EXTENSION,
    NodeDropReason.UNSUPPORTED_PAYLOAD_TYPE: NackReason.UNSUPPORTED_PAYLOAD_TYPE,
}


@dataclass(frozen=True, slots=True)
class Originated:
    """This node created ``packet`` (its first transmit, delivery or drop follows)."""

    packet: Packet


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``frame`` (one SGP packet, already encoded) on the link to ``neighbour``.

    ``packet`` is the decoded form of ``frame``, for hosts that capture or account. For a
    packet the node forwards (``packet.src`` is not this node) it is exactly what
    ``decode(frame)`` returns (same values, same types), so a host that delivers the frame
    itself may hand it to the next node's ``NodeCore.receive(..., packet=)`` (the simulator
    does); a packet created here may hold plain ints where decode gives enum members.
    """

    neighbour: int
    frame: bytes
    packet: Packet


@dataclass(frozen=True, slots=True)
class Deliver:
    """``packet`` is addressed to this node (or to all neighbours) and was consumed here.

    ``from_neighbour`` is the previous hop, ``None`` when the packet was created locally.
    """

    packet: Packet
    from_neighbour: int | None = None


@dataclass(frozen=True, slots=True)
class Drop:
    """A packet was dropped. ``item`` is the :class:`Packet`, or the raw octets if malformed."""

    item: Packet | bytes
    reason: NodeDropReason
    detail: str = ""

    @property
    def packet(self) -> Packet | None:
        return self.item if isinstance(self.item, Packet) else None


Action = Originated | Transmit | Deliver | Drop
