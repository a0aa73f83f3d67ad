"""Contact edges from root-finding against brute-force fine polling of the same link model."""

from __future__ import annotations

import numpy as np
import pytest

from netemu.contacts.finder import find_windows, generate_plan
from netemu.geometry import C_M_PER_S, sun_direction_itrs
from netemu.links import R_UP, LinkModel, LinkTracker
from netemu.scenario import scenario_from_dict
from netemu.timebase import NS_PER_S
from support import small_walker_dict

HORIZON_S = 3600
POLL_S = 0.25


def _scenario(**isl):
    data = small_walker_dict()
    data["links"]["isl"].update(isl)
    data["links"]["isl"]["sun_exclusion_deg"] = 10
    data["links"]["ground"]["sun_exclusion_deg"] = 10
    return scenario_from_dict(data)


def _poll(model: LinkModel, t0_ns: int, t1_ns: int, step_s: float):
    times = np.arange(t0_ns, t1_ns + 1, int(step_s * NS_PER_S), dtype=np.int64)
    n = len(model)
    ups = []
    for c0 in range(0, len(times), 400):
        chunk = times[c0 : c0 + 400]
        pos, vel, _ = model.orbits.propagate(chunk)
        sun = sun_direction_itrs(model.scenario.timebase, chunk)
        rows_l = np.tile(np.arange(n), len(chunk))
        rows_t = np.repeat(np.arange(len(chunk)), n)
        met = model.evaluate(rows_l, rows_t, pos, vel, sun)
        ups.append((met.reason_code == R_UP).reshape(len(chunk), n))
    return times, np.concatenate(ups)


@pytest.fixture(scope="module")
def windows_and_poll():
    sc = _scenario()
    model = LinkModel(sc)
    windows = find_windows(model, 0, HORIZON_S * NS_PER_S, step_s=10.0, tol_s=0.01)
    times, up = _poll(model, 0, HORIZON_S * NS_PER_S, POLL_S)
    return model, windows, times, up


def test_edges_match_fine_polling(windows_and_poll):
    model, (link, start, end, _, open_at_start), times, up = windows_and_poll
    tol_ns = (POLL_S + 0.01) * NS_PER_S
    checked = 0
    for k in range(len(model)):
        col = up[:, k]
        change = np.nonzero(col[1:] != col[:-1])[0]
        polled_rise = times[change[col[change + 1]] + 1]
        polled_fall = times[change[~col[change + 1]] + 1]
        mine = link == k
        found_rise = start[mine & ~open_at_start]
        found_fall = end[mine & (end < HORIZON_S * NS_PER_S)]
        assert len(found_rise) == len(polled_rise), f"link {k}: rises differ"
        assert len(found_fall) == len(polled_fall), f"link {k}: falls differ"
        assert np.all(np.abs(np.sort(found_rise) - polled_rise) <= tol_ns)
        assert np.all(np.abs(np.sort(found_fall) - polled_fall) <= tol_ns)
        checked += len(polled_rise) + len(polled_fall)
        # Windows open at the start are exactly the links up at the first sample.
        assert bool((mine & open_at_start).any()) == bool(col[0])
    assert checked > 50, "the scenario should produce many contact edges in an hour"


def test_edges_are_bisected_to_10_ms(windows_and_poll):
    model, (link, start, end, _, open_at_start), _, _ = windows_and_poll
    inner = ~open_at_start
    before = model.evaluate_pairs(link[inner], start[inner] - 10_000_000).reason_code
    after = model.evaluate_pairs(link[inner], start[inner]).reason_code
    assert np.all(before != R_UP) and np.all(after == R_UP)
    closing = end < HORIZON_S * NS_PER_S
    last_up = model.evaluate_pairs(link[closing], end[closing] - 10_000_000).reason_code
    first_down = model.evaluate_pairs(link[closing], end[closing]).reason_code
    assert np.all(last_up == R_UP) and np.all(first_down != R_UP)


def test_plan_applies_acquisition_rate_owlt_and_directions():
    base = _scenario()
    data = small_walker_dict()
    data["links"]["ground"]["acquisition_s"] = 30
    data["links"]["ground"]["rate_bps"] = 2.5e8
    slow = scenario_from_dict(data)
    plan0 = generate_plan(base, duration_s=1800)
    plan1 = generate_plan(slow, duration_s=1800)
    ground_numbers = {n.number for n in slow.ground_nodes}

    def ground(plan):
        return [c for c in plan.contacts() if c.to_node in ground_numbers]

    g0 = {(c.from_node, c.to_node, c.end_ns): c for c in ground(plan0)}
    g1 = ground(plan1)
    assert g1, "expected ground contacts in half an hour"
    for c in g1:
        assert c.rate_bps == 2.5e8
        ref = g0.get((c.from_node, c.to_node, c.end_ns))
        if ref is not None and ref.start_ns > 0:
            assert c.start_ns - ref.start_ns == 30 * NS_PER_S
    # Every contact has its reverse, and owlt covers the largest range in the window.
    pairs = {(c.from_node, c.to_node, c.start_ns, c.end_ns) for c in plan0.contacts()}
    for c in plan0.contacts():
        assert (c.to_node, c.from_node, c.start_ns, c.end_ns) in pairs
        assert 0 < c.owlt_s < 5_000e3 / C_M_PER_S + 1e-6 or c.to_node in ground_numbers


def test_tracker_acquisition_agrees_with_plan():
    data = small_walker_dict()
    data["links"]["ground"]["acquisition_s"] = 20
    sc = scenario_from_dict(data)
    plan = generate_plan(sc, duration_s=1200)
    model = LinkModel(sc)
    tracker = LinkTracker(model)
    numbers = np.array([n.number for n in sc.nodes])
    contacts = {(c.from_node, c.to_node): [] for c in plan.contacts()}
    for c in plan.contacts():
        contacts[(c.from_node, c.to_node)].append((c.start_ns, c.end_ns))
    mismatches = 0
    total = 0
    for t_s in range(0, 1200, 15):
        t_ns = t_s * NS_PER_S
        state = tracker.step(t_ns)
        row_of = {int(k): r for r, k in enumerate(state.link_id)}
        for k in np.nonzero(model.is_ground)[0]:
            key = (int(numbers[model.cand.a[k]]), int(numbers[model.cand.b[k]]))
            in_plan = any(s <= t_ns < e for s, e in contacts.get(key, []))
            r = row_of.get(int(k))
            tracked = r is not None and (state.up[r] or state.reason[r] == "no-terminal")
            total += 1
            mismatches += in_plan != tracked
    assert total > 1000 and mismatches == 0
