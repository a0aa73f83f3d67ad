"""An example routing plug-in for netemu: shortest delay with a per-hop penalty.

Every hop costs its one-way delay plus ``penalty_ms`` (think of per-node processing and queueing
that the light-time delay does not show). With ``penalty_ms=0`` this is the built-in
``snapshot`` scheme; with a large penalty it behaves like ``minhop``.

Use it without installing anything::

    netemu routes topologies/demo-small.yaml --at 2026-01-01T00:00:00Z \\
        --scheme docs/examples/routing_plugin.py:HopPenaltyScheme --node svalbard

or, from an installed package, publish it under the ``netemu.routing`` entry-point group::

    [project.entry-points."netemu.routing"]
    hop-penalty = "mypackage.routing_plugin:HopPenaltyScheme"

and pass ``--scheme hop-penalty``.
"""

from __future__ import annotations

import numpy as np

from netemu.routing import NetworkView, RoutingScheme, RoutingTables, shortest_path_tables
from netemu.routing.snapshot import HOP_COST_NS


class HopPenaltyScheme(RoutingScheme):
    """Shortest (delay + penalty per hop) on the topology that is up at the epoch start."""

    name = "hop-penalty"
    uses_plan = False  # no contact plan needed ...
    uses_links = True  # ... only the current links

    def __init__(self, *, penalty_ms: float = 1.0):
        if penalty_ms < 0:
            raise ValueError("penalty_ms must be >= 0")
        self.penalty_ns = int(round(penalty_ms * 1e6))

    def compute(self, view: NetworkView, *, sources=None) -> RoutingTables:
        # Integer delays plus an integer penalty keep whole nanoseconds in the path weight; the
        # extra HOP_COST_NS per hop (far below 1 ns) counts the hops in the fraction.
        per_hop = self.penalty_ns + HOP_COST_NS

        def weight(delay_ns: np.ndarray) -> np.ndarray:
            return delay_ns + per_hop

        def decode(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            whole = np.rint(dist)
            hops = np.rint((dist - whole) / HOP_COST_NS)
            delay = whole - hops * self.penalty_ns
            return delay.astype(np.int64), hops.astype(np.int64)

        return shortest_path_tables(
            view, scheme=self.name, weight=weight, decode=decode, sources=sources
        )
