"""netemu: an emulator for inter-satellite laser networks.

The public API is re-exported here; see docs/ for the user guide.
"""

from __future__ import annotations

from .capture import CaptureWriter, DropReason, LinkEvent, LinkMeta
from .errors import (
    ContactPlanError,
    NetemuError,
    NoRouteError,
    ProtocolError,
    RoutingError,
    ScenarioError,
)
from .protocol import MessageType, Packet, PayloadType
from .protocol import decode as decode_sgp
from .protocol import encode as encode_sgp
from .routing import (
    CgrRouter,
    ForwardingTable,
    NetworkView,
    RoutingScheme,
    RoutingTables,
    load_scheme,
)
from .timebase import NS_PER_S, TimeBase, parse_duration_s, parse_utc

__version__ = "0.1.0"

__all__ = sorted(
    [
        "NS_PER_S",
        "CaptureWriter",
        "DropReason",
        "LinkEvent",
        "LinkMeta",
        "MessageType",
        "Packet",
        "PayloadType",
        "decode_sgp",
        "encode_sgp",
        "ContactPlanError",
        "NetemuError",
        "NoRouteError",
        "ProtocolError",
        "CgrRouter",
        "ForwardingTable",
        "NetworkView",
        "RoutingError",
        "RoutingScheme",
        "RoutingTables",
        "load_scheme",
        "ScenarioError",
        "TimeBase",
        "parse_duration_s",
        "parse_utc",
    ]
)
