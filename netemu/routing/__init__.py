"""Routing: the :class:`RoutingScheme` interface, forwarding tables and the built-in schemes.

* ``cgr``: Contact Graph Routing per CCSDS 734.3-B-1 (SABR) on the contact plan
  (:class:`CgrScheme`, :class:`CgrRouter` for route queries);
* ``snapshot``: shortest one-way delay on the current topology (:class:`SnapshotScheme`);
* ``minhop``: fewest hops on the current topology (:class:`MinHopScheme`).

Plug-ins are loaded with :func:`load_scheme` (``module:Class`` or the ``netemu.routing``
entry-point group). See docs/routing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

#: public name -> (module relative to this package, attribute); imported on first use
_EXPORTS: dict[str, tuple[str, str]] = {
    "CgrRouter": (".cgr", "CgrRouter"),
    "CgrScheme": (".cgr", "CgrScheme"),
    "FORWARD": (".tables", "FORWARD"),
    "FibEntry": (".tables", "FibEntry"),
    "ForwardingTable": (".tables", "ForwardingTable"),
    "HOLD": (".tables", "HOLD"),
    "MinHopScheme": (".minhop", "MinHopScheme"),
    "NO_HOP": (".tables", "NO_HOP"),
    "NetworkView": (".interface", "NetworkView"),
    "Route": (".cgr", "Route"),
    "RouteTree": (".cgr", "RouteTree"),
    "RoutingScheme": (".interface", "RoutingScheme"),
    "RoutingTables": (".tables", "RoutingTables"),
    "SnapshotScheme": (".snapshot", "SnapshotScheme"),
    "Topology": (".interface", "Topology"),
    "available_schemes": (".plugins", "available_schemes"),
    "load_scheme": (".plugins", "load_scheme"),
    "scenario_view": (".interface", "scenario_view"),
    "scheme_class": (".plugins", "scheme_class"),
    "shift_plan": (".interface", "shift_plan"),
    "shortest_path_tables": (".snapshot", "shortest_path_tables"),
}

__all__ = [
    "FORWARD",
    "HOLD",
    "NO_HOP",
    "CgrRouter",
    "CgrScheme",
    "FibEntry",
    "ForwardingTable",
    "MinHopScheme",
    "NetworkView",
    "Route",
    "RouteTree",
    "RoutingScheme",
    "RoutingTables",
    "SnapshotScheme",
    "Topology",
    "available_schemes",
    "load_scheme",
    "scenario_view",
    "scheme_class",
    "shift_plan",
    "shortest_path_tables",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

if TYPE_CHECKING:  # static checkers and IDEs see the eager imports
    from .cgr import CgrRouter, CgrScheme, Route, RouteTree
    from .interface import NetworkView, RoutingScheme, Topology, scenario_view, shift_plan
    from .minhop import MinHopScheme
    from .plugins import available_schemes, load_scheme, scheme_class
    from .snapshot import SnapshotScheme, shortest_path_tables
    from .tables import FORWARD, HOLD, NO_HOP, FibEntry, ForwardingTable, RoutingTables
