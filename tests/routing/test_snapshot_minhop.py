"""snapshot and minhop against networkx on small graphs; forwarding tables' invariants."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netemu.contacts import ContactPlan
from netemu.routing import MinHopScheme, NetworkView, SnapshotScheme, Topology


@st.composite
def topologies(draw):
    n = draw(st.integers(min_value=2, max_value=9))
    nodes = draw(
        st.lists(st.integers(1, 5000), min_size=n, max_size=n, unique=True)
    )  # arbitrary node numbers, not 0..n-1
    pairs = [(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1 :]]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=len(pairs) * 2)) if pairs else []
    delays = [draw(st.integers(min_value=0, max_value=50_000_000)) for _ in chosen]
    directed = draw(st.booleans())
    topo = Topology(
        a=[p[0] for p in chosen],
        b=[p[1] for p in chosen],
        delay_ns=delays,
        rate_bps=[1e9] * len(chosen),
        directed=directed,
    )
    return nodes, topo


def to_networkx(nodes, topo: Topology) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    a, b, d = topo.directed_edges()
    for u, v, w in zip(a.tolist(), b.tolist(), d.tolist(), strict=True):
        if not g.has_edge(u, v) or g[u][v]["delay"] > w:
            g.add_edge(u, v, delay=w)
    return g


def follow(tables, nodes, g, source, dest):
    path = tables.path(source, dest)
    assert len(set(path)) == len(path), "forwarding loop"
    delay = sum(g[u][v]["delay"] for u, v in zip(path, path[1:], strict=False))
    return path, delay


@settings(max_examples=120, deadline=None)
@given(case=topologies(), t0=st.integers(0, 10**12))
def test_snapshot_equals_networkx_shortest_paths(case, t0):
    nodes, topo = case
    view = NetworkView(t_ns=t0, nodes=tuple(nodes), links=topo, epoch_ns=5)
    tables = SnapshotScheme().compute(view)
    g = to_networkx(nodes, topo)
    lengths = dict(nx.all_pairs_dijkstra_path_length(g, weight="delay"))
    for s in nodes:
        for d in nodes:
            entry = tables.table(s).lookup(d)
            if s == d or d not in lengths[s]:
                assert entry is None
                continue
            assert entry.arrival_ns == t0 + lengths[s][d]
            path, delay = follow(tables, nodes, g, s, d)
            assert delay == lengths[s][d]
            assert entry.hops == len(path) - 1
            assert entry.action == "forward"
            assert (entry.valid_from_ns, entry.valid_until_ns) == (t0, t0 + 5)
            # among equally fast paths the fewest hops win
            fewest = min(len(p) - 1 for p in nx.all_shortest_paths(g, s, d, weight="delay"))
            assert entry.hops == fewest


@settings(max_examples=120, deadline=None)
@given(case=topologies())
def test_minhop_equals_networkx_hop_counts(case):
    nodes, topo = case
    tables = MinHopScheme().compute(NetworkView(t_ns=0, nodes=tuple(nodes), links=topo))
    g = to_networkx(nodes, topo)
    hops = dict(nx.all_pairs_shortest_path_length(g))
    for s in nodes:
        for d in nodes:
            entry = tables.table(s).lookup(d)
            if s == d or d not in hops[s]:
                assert entry is None
                continue
            path, delay = follow(tables, nodes, g, s, d)
            assert entry.hops == hops[s][d] == len(path) - 1
            assert abs(entry.arrival_ns - delay) <= 1
            # ties on hops go to the least delay
            best = min(
                sum(g[u][v]["delay"] for u, v in zip(p, p[1:], strict=False))
                for p in nx.all_shortest_paths(g, s, d)
            )
            assert abs(delay - best) <= 1


@pytest.mark.parametrize("scheme", [SnapshotScheme(), MinHopScheme()])
def test_sources_subset_matches_all_pairs(scheme):
    rng = np.random.default_rng(7)
    nodes = list(range(100, 160))
    a = rng.choice(nodes, 200)
    b = rng.choice(nodes, 200)
    topo = Topology(a=a, b=b, delay_ns=rng.integers(1, 10**7, 200), rate_bps=np.ones(200))
    view = NetworkView(t_ns=0, nodes=tuple(nodes), links=topo)
    full = scheme.compute(view)
    part = scheme.compute(view, sources=[105, 140])
    for s in (105, 140):
        i = full.index(s)
        assert np.array_equal(full.next_hop[i], part.next_hop[i])
        assert np.array_equal(full.arrival_ns[i], part.arrival_ns[i])
        assert np.array_equal(full.hops[i], part.hops[i])
    assert len(part.table(100)) == 0


def test_topology_from_plan_uses_active_contacts():
    plan = ContactPlan(
        from_node=[1, 2, 1],
        to_node=[2, 3, 3],
        start_ns=[0, 0, 50],
        end_ns=[100, 100, 100],
        rate_bps=[8, 8, 8],
        owlt_ns=[5, 5, 1],
    )
    at0 = SnapshotScheme().compute(NetworkView.from_plan(plan, 0))
    assert at0.path(1, 3) == [1, 2, 3]
    assert at0.table(3).lookup(1) is None  # contacts are one-way
    at60 = SnapshotScheme().compute(NetworkView.from_plan(plan, 60))
    assert at60.path(1, 3) == [1, 3]
