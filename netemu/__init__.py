"""netemu: an emulator for inter-satellite laser networks.

The public API is re-exported here; see docs/ for the user guide.
"""

from __future__ import annotations

from .capture import CaptureWriter, DropReason, LinkEvent, LinkMeta
from .contacts import Contact, ContactPlan, dumps_ion, dumps_json, load_plan, loads_ion
from .contacts.finder import generate_plan
from .errors import (
    ContactPlanError,
    NetemuError,
    NoRouteError,
    ProtocolError,
    RoutingError,
    ScenarioError,
)
from .fabric import (
    Fabric,
    FabricConfig,
    FabricDrop,
    FidelityRecorder,
    FrameStatus,
    LinkTable,
    Outcome,
)
from .links import LinkModel, LinkState, LinkTracker, link_state
from .node import NodeConfig, NodeCore, NodeDropReason
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
from .scenario import Node, Scenario, load_scenario
from .timebase import NS_PER_S, TimeBase, parse_duration_s, parse_utc

__version__ = "0.1.0"

__all__ = [
    "CaptureWriter",
    "CgrRouter",
    "Contact",
    "ContactPlan",
    "ContactPlanError",
    "DropReason",
    "Fabric",
    "FabricConfig",
    "FabricDrop",
    "FidelityRecorder",
    "ForwardingTable",
    "FrameStatus",
    "LinkEvent",
    "LinkMeta",
    "LinkModel",
    "LinkState",
    "LinkTable",
    "LinkTracker",
    "MessageType",
    "NS_PER_S",
    "NetemuError",
    "NetworkView",
    "NoRouteError",
    "Node",
    "NodeConfig",
    "NodeCore",
    "NodeDropReason",
    "Outcome",
    "Packet",
    "PayloadType",
    "ProtocolError",
    "RoutingError",
    "RoutingScheme",
    "RoutingTables",
    "Scenario",
    "ScenarioError",
    "TimeBase",
    "decode_sgp",
    "dumps_ion",
    "dumps_json",
    "encode_sgp",
    "generate_plan",
    "link_state",
    "load_plan",
    "load_scenario",
    "load_scheme",
    "loads_ion",
    "parse_duration_s",
    "parse_utc",
]
