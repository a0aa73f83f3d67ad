"""Geometric path delay against an independent calculation with skyfield.

skyfield (Rhodes, "Skyfield: High precision research-grade positions for planets and Earth
satellites", https://rhodesmill.org/skyfield/) builds its own ``EarthSatellite`` from the very
TLE lines of the scenario and its own ground stations (``wgs84.latlon``); each hop's range is
``(b - a).at(t).distance()`` in skyfield's frames and time scales, and the path delay is the
sum of range / c. Tolerances follow tests/geometry/test_skyfield_reference.py: 1 m per ISL and
50 m per ground hop, i.e. well under a microsecond for a path.
"""

from __future__ import annotations

import numpy as np
import pytest
from skyfield.api import EarthSatellite, wgs84

from netemu.geometry import C_M_PER_S
from netemu.results.pathdelay import parse_routes, path_delays_s
from netemu.scenario import load_scenario
from netemu.timebase import NS_PER_S, timescale
from support import TOPOLOGIES


@pytest.fixture(scope="module")
def scenario():
    # Real TLEs: skyfield reads exactly the elements that our SGP4 records hold.
    return load_scenario(TOPOLOGIES / "iridium-tle.yaml")


def _skyfield_node(scenario, node):
    if node.kind == "satellite":
        rec = scenario.constellations[0].tle[node.index]
        return EarthSatellite(rec.line1, rec.line2, ts=timescale())
    gs = scenario.ground_station(node)
    return wgs84.latlon(gs.lat_deg, gs.lon_deg, elevation_m=gs.alt_m)


def _skyfield_path_delay_s(scenario, hops):
    """hops: [(node_number, t_ns)] then the destination number; sum of |b - a|(t) / c."""
    *entries, dst = hops
    ends = [n for n, _ in entries] + [dst]
    total_s = 0.0
    for (a_num, t_ns), b_num in zip(entries, ends[1:], strict=True):
        a = _skyfield_node(scenario, scenario.node(a_num))
        b = _skyfield_node(scenario, scenario.node(b_num))
        t = scenario.timebase.skyfield_time(t_ns)
        total_s += (b - a).at(t).distance().m / C_M_PER_S
    return total_s


CASES = [
    # station -> satellite -> satellite -> satellite -> station, times along the path
    [(1002, 0), (5, 3_100_000), (6, 9_000_000), (17, 15_000_000), 1003],
    [(1001, 600 * NS_PER_S), (40, 600 * NS_PER_S + 4_000_000), 1010],
    [(12, 3_600 * NS_PER_S + 123), (13, 3_600 * NS_PER_S + 9_876_543), 1015],
]


def test_path_delay_matches_skyfield(scenario):
    routes = [";".join(f"{n}@{t}" for n, t in case[:-1]) for case in CASES]
    dst = [case[-1] for case in CASES]
    ours = path_delays_s(scenario, routes, dst, [len(c) - 1 for c in CASES])
    ref = np.array([_skyfield_path_delay_s(scenario, case) for case in CASES])
    assert np.all(ref > 1e-3)
    worst_s = float(np.max(np.abs(ours - ref)))
    assert worst_s < 5e-7, f"path delay differs from skyfield by {worst_s * 1e9:.1f} ns"


def test_routes_without_geometry_are_nan(scenario):
    routes = [
        "",  # no RECORD_ROUTE
        "1002@0;99999@5",  # unknown node
        "1002@0;5@x",  # bad time
        "1002@0;5@10",  # hop count says 3: an entry was missed
        "gs-madrid@0;5@10",  # names are accepted too
    ]
    out = path_delays_s(scenario, routes, [1003] * 5, [-1, -1, -1, 3, 2])
    assert np.isnan(out[:4]).all()
    assert np.isfinite(out[4]) and out[4] > 0
    parsed = parse_routes(scenario, routes, [1003] * 5)
    assert parsed.entries.tolist() == [0, 0, 0, 2, 2]
