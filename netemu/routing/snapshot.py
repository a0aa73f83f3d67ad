"""Snapshot routing: shortest one-way delay on the topology that is up at the epoch start.

The topology becomes a sparse matrix and one ``scipy.sparse.csgraph.dijkstra`` call gives every
next hop: run on the reversed graph from every destination, the predecessor of ``s`` on the
path from ``d`` is exactly ``s``'s next hop toward ``d``. No Python loop over node pairs.

Each hop also costs a tiny constant (``1e-3`` ns) on top of its delay, so equal-delay paths are
resolved toward fewer hops and the hop count can be read back from the distance.
:func:`shortest_path_tables` is the shared helper (``minhop`` and plug-ins use it with other
edge weights).

>>> from netemu.routing.interface import NetworkView, Topology
>>> topo = Topology(a=[1, 2, 1], b=[2, 3, 3], delay_ns=[5, 5, 20], rate_bps=[0, 0, 0])
>>> tables = SnapshotScheme().compute(NetworkView(t_ns=0, nodes=(1, 2, 3), links=topo))
>>> tables.path(1, 3)
[1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .interface import NetworkView, RoutingScheme, Topology
from .tables import NO_HOP, RoutingTables

HOP_COST_NS = 1e-3


def _edges(view: NetworkView, topo: Topology) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(from index, to index, delay_ns) over view.nodes for every directed link of ``topo``."""
    a, b, delay = topo.directed_edges()
    nodes = np.asarray(view.nodes, dtype=np.int64)
    order = np.argsort(nodes, kind="stable")
    sorted_nodes = nodes[order]

    def index_of(values):
        pos = np.searchsorted(sorted_nodes, values)
        pos = np.clip(pos, 0, max(len(nodes) - 1, 0))
        ok = sorted_nodes[pos] == values if len(nodes) else np.zeros(len(values), bool)
        return order[pos], ok

    ia, ok_a = index_of(a)
    ib, ok_b = index_of(b)
    keep = ok_a & ok_b
    return ia[keep], ib[keep], delay[keep]


def _graph(n: int, ia, ib, weight):
    """Sparse (n x n) graph keeping the smallest weight of parallel edges."""
    from scipy.sparse import csr_matrix

    if len(ia):
        key = ia * n + ib
        order = np.lexsort((weight, key))
        key, weight = key[order], weight[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        key, weight = key[first], weight[first]
        ia, ib = key // n, key % n
    return csr_matrix((weight, (ia, ib)), shape=(n, n))


def shortest_path_tables(
    view: NetworkView,
    *,
    scheme: str,
    weight: Callable[[np.ndarray], np.ndarray],
    decode: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    sources: Sequence[int] | None = None,
) -> RoutingTables:
    """Forwarding tables from shortest paths on ``view.topology()``.

    ``weight(delay_ns) -> float weights`` (all > 0) gives the edge weights; ``decode(dist) ->
    (delay_ns, hops)`` turns path weights back into the path's delay and hop count. Entries
    forward now and are valid for ``view.epoch_ns``.
    """
    from scipy.sparse.csgraph import dijkstra

    nodes = np.asarray(view.nodes, dtype=np.int64)
    n = len(nodes)
    topo = view.topology()  # built from the plan when the view has no link state: once
    ia, ib, delay = _edges(view, topo)
    w = np.asarray(weight(delay.astype(np.float64)), dtype=np.float64)
    if len(w) and not np.all(w > 0):
        raise ValueError("edge weights must be > 0")
    graph = _graph(n, ia, ib, w)
    if sources is None:
        src_idx = np.arange(n)
        # On the reversed graph, searched from every destination d, the predecessor of s is
        # s's next hop toward d: pred[d, s]. An undirected topology is its own reverse.
        reverse = graph if not topo.directed else graph.T.tocsr()
        dist, pred = dijkstra(reverse, directed=True, return_predecessors=True)
        nh_idx, dist = pred.T, dist.T
    else:
        index = {int(v): i for i, v in enumerate(nodes.tolist())}
        src_idx = np.asarray([index[int(s)] for s in sources], dtype=np.int64)
        dist_s, pred_s = dijkstra(graph, directed=True, indices=src_idx, return_predecessors=True)
        nh_idx = np.full((n, n), -9999, dtype=np.int32)
        dist = np.full((n, n), np.inf)
        for row, s in enumerate(src_idx.tolist()):
            nh_idx[s] = _first_hops(s, dist_s[row], pred_s[row])
            dist[s] = dist_s[row]
    # scipy marks "no predecessor" (unreachable, or the node itself) with a negative index
    reach = nh_idx >= 0
    lookup = np.append(nodes, NO_HOP)
    next_hop = lookup[np.where(reach, nh_idx, n)]
    delay_ns, hops = decode(np.where(reach, dist, 0.0))
    arrival = np.where(reach, delay_ns + view.t_ns, NO_HOP)
    hops = np.where(reach, hops, 0)
    if sources is not None:
        keep_rows = np.zeros(n, dtype=bool)
        keep_rows[src_idx] = True
        next_hop[~keep_rows] = NO_HOP
        arrival[~keep_rows] = NO_HOP
    return RoutingTables(
        t_ns=view.t_ns,
        scheme=scheme,
        nodes=nodes,
        next_hop=next_hop,
        arrival_ns=arrival,
        valid_from_ns=view.t_ns,
        valid_until_ns=view.t_ns + view.epoch_ns,
        hold=False,
        hops=hops,
    )


def _first_hops(s: int, dist: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Next hop from ``s`` to every node, from one source's predecessor array."""
    n = len(pred)
    first = np.full(n, -9999, dtype=np.int32)
    for v in np.argsort(dist, kind="stable").tolist():
        p = int(pred[v])
        if v == s or p < 0:
            continue
        first[v] = v if p == s else first[p]
    return first


def _snapshot_weight(delay_ns: np.ndarray) -> np.ndarray:
    return delay_ns + HOP_COST_NS


def _snapshot_decode(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    delay = np.rint(dist)
    hops = np.rint((dist - delay) / HOP_COST_NS)
    return delay.astype(np.int64), hops.astype(np.int64)


class SnapshotScheme(RoutingScheme):
    """Built-in scheme ``snapshot``: shortest one-way delay on the current topology."""

    name = "snapshot"
    uses_plan = False
    uses_links = True

    def compute(self, view: NetworkView, *, sources=None) -> RoutingTables:
        return shortest_path_tables(
            view,
            scheme=self.name,
            weight=_snapshot_weight,
            decode=_snapshot_decode,
            sources=sources,
        )


__all__ = ["HOP_COST_NS", "SnapshotScheme", "shortest_path_tables"]
