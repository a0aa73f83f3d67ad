"""Geometric path delay of delivered packets from their RECORD_ROUTE.

A delivered row's ``route`` is ``node@t_ns;node@t_ns;...`` (scenario ns): one entry per node
that transmitted the packet, the source first, each stamped when it transmitted. Hop ``i`` goes
from entry ``i`` to entry ``i + 1`` (the last hop to the destination) and its geometric delay
is ``range(t_i) / c`` — the distance between the two nodes at the moment the packet left,
from the scenario's orbits (SGP4, ITRS) and station coordinates, the same geometry as
:class:`netemu.links.LinkModel`. The path delay is the sum over hops: what the packet would
take with no queueing, serialization, processing or emulation error.

Everything is vectorised: the hops of all packets are one batch of (a, b, t) triples.

>>> from netemu.scenario import load_scenario                       # doctest: +SKIP
>>> sc = load_scenario("topologies/demo-small.yaml")                 # doctest: +SKIP
>>> path_delays_s(sc, ["1001@0;1@1000000"], [5])                     # doctest: +SKIP
array([0.00...])
"""

from __future__ import annotations

import logging

import numpy as np

from ..geometry import C_M_PER_S
from ..links import LinkModel, link_model
from ..orbits import earth_frame
from ..scenario.model import Scenario

__all__ = ["ParsedRoutes", "hop_delays_s", "node_positions_m", "parse_routes", "path_delays_s"]

log = logging.getLogger(__name__)


class ParsedRoutes:
    """Flat hop arrays for many routes.

    ``packet`` (which input route a hop belongs to), ``a`` / ``b`` (scenario node indices, -1
    when unknown), ``t_ns`` (departure), ``entries`` (route entries per input; 0 = no route),
    ``ok`` (every node known and, when given, as many entries as hops).
    """

    def __init__(self, packet, a, b, t_ns, entries, ok):
        self.packet = packet
        self.a = a
        self.b = b
        self.t_ns = t_ns
        self.entries = entries
        self.ok = ok


def _index_of(scenario: Scenario):
    by_number = {n.number: n.index for n in scenario.nodes}
    by_name = {n.name: n.index for n in scenario.nodes}

    def lookup(token: str) -> int:
        if token.isdigit():
            return by_number.get(int(token), -1)
        return by_name.get(token, -1)

    return lookup, by_number


def parse_routes(scenario: Scenario, routes, dst_numbers, hops=None) -> ParsedRoutes:
    """Parse route strings (``""`` = none) into hops, the last hop ending at ``dst_numbers``.

    ``hops`` (optional, per route; negative = unknown) is the delivered row's hop count; a
    route with a different number of entries (RECORD_ROUTE ran out of room) is not ``ok``.
    """
    lookup, by_number = _index_of(scenario)
    n = len(routes)
    entries = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    pk: list[int] = []
    nodes: list[int] = []
    times: list[int] = []
    dst_numbers = np.asarray(dst_numbers, dtype=np.int64)
    for i, route in enumerate(routes):
        if not route:
            continue
        good = True
        count = 0
        for entry in route.split(";"):
            if not entry:
                continue
            node, _, t = entry.partition("@")
            try:
                t_val = int(t)
            except ValueError:
                good = False
                break
            idx = lookup(node.strip())
            good &= idx >= 0
            pk.append(i)
            nodes.append(idx)
            times.append(t_val)
            count += 1
        if not good:
            # Drop the partial entries of a malformed route.
            del pk[len(pk) - count :], nodes[len(nodes) - count :], times[len(times) - count :]
            continue
        entries[i] = count
        ok[i] = count > 0
    packet = np.asarray(pk, np.int64)
    a = np.asarray(nodes, np.int64)
    t_ns = np.asarray(times, np.int64)
    # b: the next entry of the same packet, or the destination after the last entry.
    b = np.empty_like(a)
    if a.size:
        b[:-1] = a[1:]
        last = np.ones(a.size, bool)
        last[:-1] = packet[1:] != packet[:-1]
        dst_idx = np.array(
            [by_number.get(int(d), -1) for d in dst_numbers[packet[last]].tolist()], np.int64
        )
        b[last] = dst_idx
        bad = np.zeros(n, bool)
        bad[packet[b < 0]] = True
        ok &= ~bad
    if hops is not None:
        hops = np.asarray(hops, np.int64)
        known = hops >= 0
        ok &= ~known | (hops == entries)
    return ParsedRoutes(packet, a, b, t_ns, entries, ok)


def node_positions_m(model: LinkModel, node_idx, t_ns) -> np.ndarray:
    """ITRS positions (m, 3) of scenario nodes (satellites and stations) at matched times."""
    node_idx = np.asarray(node_idx, np.int64)
    t_ns = np.asarray(t_ns, np.float64)
    out = np.full((node_idx.size, 3), np.nan)
    sat = node_idx < model.n_sat
    if sat.any():
        frame = earth_frame(model.scenario.timebase, t_ns[sat])
        pos, _, _ = model.orbits.propagate_pairs(node_idx[sat], t_ns[sat], frame=frame)
        out[sat] = pos
    gs = ~sat & (node_idx >= 0)
    if gs.any():
        out[gs] = model.gs_pos_m[node_idx[gs] - model.n_sat]
    return out


def hop_delays_s(model: LinkModel, a, b, t_ns) -> np.ndarray:
    """``|pos_b(t) - pos_a(t)| / c`` for matched arrays of node indices and times."""
    a = np.asarray(a, np.int64)
    m = a.size
    pos = node_positions_m(model, np.concatenate([a, np.asarray(b, np.int64)]), np.tile(t_ns, 2))
    d = pos[m:] - pos[:m]
    return np.sqrt(np.einsum("ij,ij->i", d, d)) / C_M_PER_S


def path_delays_s(scenario: Scenario, routes, dst_numbers, hops=None, *, model=None) -> np.ndarray:
    """Geometric path delay (s) of each route; NaN where there is no usable route."""
    model = model or link_model(scenario)
    parsed = parse_routes(scenario, routes, dst_numbers, hops)
    out = np.full(len(routes), np.nan)
    use = parsed.ok[parsed.packet] if parsed.packet.size else np.zeros(0, bool)
    if not use.any():
        return out
    delay = hop_delays_s(model, parsed.a[use], parsed.b[use], parsed.t_ns[use])
    total = np.bincount(parsed.packet[use], weights=delay, minlength=len(routes))
    out[parsed.ok] = total[parsed.ok]
    return out
