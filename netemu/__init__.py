"""netemu: an emulator for inter-satellite laser networks.

The public API is re-exported here; see docs/ for the user guide. Names are imported lazily on
first use (PEP 562), so that ``import netemu.node`` in a node process does not pay for skyfield,
scipy and the rest: a node process starts in a fraction of the time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> (module relative to this package, attribute); imported on first use
_EXPORTS: dict[str, tuple[str, str]] = {
    "CaptureWriter": (".capture", "CaptureWriter"),
    "CgrRouter": (".routing", "CgrRouter"),
    "Contact": (".contacts", "Contact"),
    "ContactPlan": (".contacts", "ContactPlan"),
    "ContactPlanError": (".errors", "ContactPlanError"),
    "DropReason": (".capture", "DropReason"),
    "Fabric": (".fabric", "Fabric"),
    "FabricConfig": (".fabric", "FabricConfig"),
    "FabricDrop": (".fabric", "FabricDrop"),
    "Fault": (".control.faults", "Fault"),
    "FidelityRecorder": (".fabric", "FidelityRecorder"),
    "ForwardingTable": (".routing", "ForwardingTable"),
    "FrameStatus": (".fabric", "FrameStatus"),
    "LinkEvent": (".capture", "LinkEvent"),
    "LinkMeta": (".capture", "LinkMeta"),
    "LinkModel": (".links", "LinkModel"),
    "LinkState": (".links", "LinkState"),
    "LinkTable": (".fabric", "LinkTable"),
    "LinkTracker": (".links", "LinkTracker"),
    "MessageType": (".protocol", "MessageType"),
    "NS_PER_S": (".timebase", "NS_PER_S"),
    "NetemuError": (".errors", "NetemuError"),
    "NetworkView": (".routing", "NetworkView"),
    "NoRouteError": (".errors", "NoRouteError"),
    "Node": (".scenario", "Node"),
    "NodeConfig": (".node", "NodeConfig"),
    "NodeCore": (".node", "NodeCore"),
    "NodeDropReason": (".node", "NodeDropReason"),
    "Outcome": (".fabric", "Outcome"),
    "Packet": (".protocol", "Packet"),
    "PayloadType": (".protocol", "PayloadType"),
    "ProtocolError": (".errors", "ProtocolError"),
    "RoutingError": (".errors", "RoutingError"),
    "RoutingScheme": (".routing", "RoutingScheme"),
    "RoutingTables": (".routing", "RoutingTables"),
    "Scenario": (".scenario", "Scenario"),
    "ScenarioError": (".errors", "ScenarioError"),
    "Simulation": (".sim", "Simulation"),
    "TimeBase": (".timebase", "TimeBase"),
    "compare_schemes": (".results.compare", "compare_schemes"),
    "decode_sgp": (".protocol", "decode"),
    "dumps_ion": (".contacts", "dumps_ion"),
    "dumps_json": (".contacts", "dumps_json"),
    "encode_sgp": (".protocol", "encode"),
    "generate_plan": (".contacts.finder", "generate_plan"),
    "link_state": (".links", "link_state"),
    "load_fault_schedule": (".control.faults", "load_fault_schedule"),
    "load_plan": (".contacts", "load_plan"),
    "load_scenario": (".scenario", "load_scenario"),
    "load_scheme": (".routing", "load_scheme"),
    "loads_ion": (".contacts", "loads_ion"),
    "parse_duration_s": (".timebase", "parse_duration_s"),
    "parse_utc": (".timebase", "parse_utc"),
    "run_emulation": (".runtime.launcher", "run_emulation"),
    "simulate": (".sim", "simulate"),
}

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
    "Fault",
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
    "Simulation",
    "TimeBase",
    "compare_schemes",
    "decode_sgp",
    "dumps_ion",
    "dumps_json",
    "encode_sgp",
    "generate_plan",
    "link_state",
    "load_fault_schedule",
    "load_plan",
    "load_scenario",
    "load_scheme",
    "loads_ion",
    "parse_duration_s",
    "parse_utc",
    "run_emulation",
    "simulate",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

if TYPE_CHECKING:  # static checkers and IDEs see the eager imports
    # static checkers and IDEs see the eager imports
    from .capture import CaptureWriter, DropReason, LinkEvent, LinkMeta
    from .contacts import Contact, ContactPlan, dumps_ion, dumps_json, load_plan, loads_ion
    from .contacts.finder import generate_plan
    from .control.faults import Fault, load_fault_schedule
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
    from .results.compare import compare_schemes
    from .routing import (
        CgrRouter,
        ForwardingTable,
        NetworkView,
        RoutingScheme,
        RoutingTables,
        load_scheme,
    )
    from .runtime.launcher import run_emulation
    from .scenario import Node, Scenario, load_scenario
    from .timebase import NS_PER_S, TimeBase, parse_duration_s, parse_utc
