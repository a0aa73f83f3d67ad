"""Link-model details: range rate, sun exclusion, several shells, acquisition, terminals."""

from __future__ import annotations

import numpy as np

from netemu.geometry import sun_direction_itrs
from netemu.links import R_SUN, R_UP, LinkModel, LinkTracker, link_state
from netemu.scenario import scenario_from_dict
from netemu.timebase import NS_PER_S
from support import small_walker_dict


def test_range_rate_matches_finite_difference():
    sc = scenario_from_dict(small_walker_dict())
    model = LinkModel(sc)
    links = np.arange(len(model))
    t = np.full(links.size, 1234.0 * NS_PER_S)
    dt_ns = 0.05 * NS_PER_S
    mid = model.evaluate_pairs(links, t)
    before = model.evaluate_pairs(links, t - dt_ns)
    after = model.evaluate_pairs(links, t + dt_ns)
    fd = (after.range_m - before.range_m) / 0.1
    live = np.isfinite(mid.range_rate_mps)
    assert live.sum() > 100
    np.testing.assert_allclose(mid.range_rate_mps[live], fd[live], atol=0.05)


def test_sun_in_the_line_of_sight_excludes_an_isl():
    data = small_walker_dict()
    data["links"]["isl"]["sun_exclusion_deg"] = 5
    sc = scenario_from_dict(data)
    model = LinkModel(sc)
    sun = sun_direction_itrs(sc.timebase, [0])
    # Put the satellite where the Sun is on its horizon, so a partner towards the Sun clears
    # the Earth.
    side = np.cross(sun[0], [0.0, 0.0, 1.0])
    pa = (7.0e6 * side / np.linalg.norm(side)).reshape(1, 3)
    isl = np.nonzero(model.cand.kind_code == 0)[0][:1]
    for offset_deg, expect_sun in ((2.0, True), (8.0, False)):
        # Point the partner 1000 km away, offset_deg off the Sun direction (towards +z or -z).
        axis = np.cross(sun[0], [0.0, 0.0, 1.0])
        axis /= np.linalg.norm(axis)
        ang = np.radians(offset_deg)
        direction = sun[0] * np.cos(ang) + np.cross(axis, sun[0]) * np.sin(ang)
        pb = pa + 1.0e6 * direction
        met = model.evaluate_rows(isl, pa, np.zeros((1, 3)), pb, np.zeros((1, 3)), sun)
        assert (met.reason_code[0] == R_SUN) == expect_sun, offset_deg


def test_two_shells_number_consecutively_and_link_only_within_a_shell():
    data = small_walker_dict()
    data["constellations"].append(
        {
            "name": "leo",
            "walker": {
                "type": "delta",
                "planes": 4,
                "sats_per_plane": 5,
                "phasing": 1,
                "altitude_km": 550,
                "inclination_deg": 53,
            },
        }
    )
    sc = scenario_from_dict(data)
    assert sc.n_satellites == 66 + 20
    assert sc.node("leo-p01-s01").number == 67
    model = LinkModel(sc)
    isl = model.cand.kind_code == 0
    shell_of = np.array([0] * 66 + [1] * 20)
    assert np.all(shell_of[model.cand.a[isl]] == shell_of[model.cand.b[isl]])
    assert isl.sum() == 121 + 40
    state = link_state(sc, 0)
    assert state.up.any()


def test_acquisition_delays_link_up_after_geometry_allows_it():
    data = small_walker_dict()
    data["links"]["ground"]["acquisition_s"] = 30
    for gs in data["ground_stations"]:
        gs["terminals"] = 20  # no terminal contention in this test
    sc = scenario_from_dict(data)
    tracker = LinkTracker(LinkModel(sc))
    first_geo = {}
    first_up = {}
    for t_s in range(0, 1800, 1):
        state = tracker.step(t_s * NS_PER_S)
        ground = state.kind_code == 1
        for k in state.link_id[ground & (state.reason == "acquiring")].tolist():
            first_geo.setdefault(k, t_s)
        for k in state.link_id[ground & state.up].tolist():
            first_up.setdefault(k, t_s)
    rose = [k for k in first_geo if k in first_up and first_geo[k] > 0]
    assert rose, "expected passes that start inside the half hour"
    for k in rose:
        assert 29 <= first_up[k] - first_geo[k] <= 31


def test_station_terminals_limit_simultaneous_links():
    data = small_walker_dict()
    for gs in data["ground_stations"]:
        gs["terminals"] = 1
    data["links"]["ground"]["min_elevation_deg"] = 5
    sc = scenario_from_dict(data)
    tracker = LinkTracker(LinkModel(sc))
    saw_contention = False
    for t_s in range(0, 3600, 60):
        state = tracker.step(t_s * NS_PER_S)
        ground = state.kind_code == 1
        per_station = np.bincount(state.b[ground & state.up], minlength=len(sc.nodes))
        assert per_station.max() <= 1
        saw_contention |= bool((state.reason[ground] == "no-terminal").any())
        geo_ok = ground & ((state.reason == "") | (state.reason == "no-terminal"))
        assert np.all(state.reason_code[geo_ok & state.up] == R_UP)
    assert saw_contention
