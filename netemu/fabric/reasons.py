"""Why the fabric dropped a frame, and how that maps onto the capture's reason registry.

>>> FabricDrop.LINK_DOWN_IN_FLIGHT.capture_reason
<DropReason.LINK_LOST: 5>
>>> FabricDrop("no-link").capture_reason   # no contact at all: captured as "link down"
<DropReason.LINK_DOWN: 2>
"""

from __future__ import annotations

import enum

from ..capture.linkheader import DropReason

__all__ = ["FabricDrop"]


class FabricDrop(enum.StrEnum):
    """Drop reasons of the fabric (values are the names used in summaries and logs)."""

    NO_LINK = "no-link"  # the table has no link from tx to rx
    LINK_DOWN = "link-down"  # the link is in the table but down when the frame is sent
    TOO_BIG = "too-big"  # larger than the configured MTU
    QUEUE_FULL = "queue-full"  # the direction's transmit queue is full: tail drop
    LOSS = "loss"  # the loss draw fell below the link's loss probability
    LINK_DOWN_IN_FLIGHT = "link-down-in-flight"  # a later epoch took the link down
    NODE_DOWN = "node-down"  # the receiving node was offline (or not attached) at arrival

    @property
    def capture_reason(self) -> DropReason:
        """The :class:`~netemu.capture.DropReason` written in the capture's link header."""
        return _TO_CAPTURE[self]


_TO_CAPTURE = {
    # CAPTURE.md defines reason 2 as "no contact: the link was down when the frame was sent",
    # which covers a pair that has no link at all, so no new capture code is needed.
    FabricDrop.NO_LINK: DropReason.LINK_DOWN,
    FabricDrop.LINK_DOWN: DropReason.LINK_DOWN,
    FabricDrop.TOO_BIG: DropReason.TOO_BIG,
    FabricDrop.QUEUE_FULL: DropReason.QUEUE_FULL,
    FabricDrop.LOSS: DropReason.LOSS,
    FabricDrop.LINK_DOWN_IN_FLIGHT: DropReason.LINK_LOST,
    # Used by the real-time host only (the core never returns it): the frame crossed the link
    # but its receiver was gone, which CAPTURE.md's "link lost in flight" describes best.
    FabricDrop.NODE_DOWN: DropReason.LINK_LOST,
}
