"""Min-hop routing: fewest hops on the topology that is up at the epoch start.

Among paths with the same number of hops the one with the least one-way delay wins: each edge
weighs ``1 + delay_ns * 1e-12``, so the delay part of a path stays far below one hop and both
the hop count and (to within a nanosecond) the delay can be read back from the distance.

>>> from netemu.routing.interface import NetworkView, Topology
>>> topo = Topology(a=[1, 2, 1], b=[2, 3, 3], delay_ns=[5, 5, 20], rate_bps=[0, 0, 0])
>>> tables = MinHopScheme().compute(NetworkView(t_ns=0, nodes=(1, 2, 3), links=topo))
>>> tables.path(1, 3)
[1, 3]
"""

from __future__ import annotations

import numpy as np

from .interface import NetworkView, RoutingScheme
from .snapshot import shortest_path_tables
from .tables import RoutingTables

DELAY_SCALE = 1e-12  # hop units per nanosecond of delay


def _weight(delay_ns: np.ndarray) -> np.ndarray:
    return 1.0 + delay_ns * DELAY_SCALE


def _decode(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hops = np.floor(dist + 1e-9)
    delay = np.rint((dist - hops) / DELAY_SCALE)
    return delay.astype(np.int64), hops.astype(np.int64)


class MinHopScheme(RoutingScheme):
    """Built-in scheme ``minhop``: fewest hops (ties: least delay) on the current topology."""

    name = "minhop"
    uses_plan = False
    uses_links = True

    def compute(self, view: NetworkView, *, sources=None) -> RoutingTables:
        return shortest_path_tables(
            view, scheme=self.name, weight=_weight, decode=_decode, sources=sources
        )


__all__ = ["MinHopScheme"]
