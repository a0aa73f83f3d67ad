"""Property tests (hypothesis) on the link model: budget monotonic in range, delay = range / c,
no link through the Earth; plus the +Grid candidate pattern."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from netemu.budget import frame_loss_probability, link_margin_db
from netemu.candidates import build_candidates
from netemu.geometry import C_M_PER_S, WGS84_A_M, earth_clearance_m
from netemu.links import R_EARTH, LinkModel, link_state
from netemu.orbits import Orbits
from netemu.scenario import OpticalBudget, load_scenario, scenario_from_dict
from netemu.timebase import NS_PER_S
from support import TOPOLOGIES, small_walker_dict

budgets = st.builds(
    OpticalBudget,
    tx_power_w=st.floats(0.01, 20),
    tx_aperture_m=st.floats(0.01, 1.0),
    rx_aperture_m=st.floats(0.01, 1.0),
    wavelength_nm=st.floats(800, 1600),
    pointing_loss_db=st.floats(0, 10),
    rx_sensitivity_dbm=st.floats(-70, -20),
    implementation_loss_db=st.floats(0, 10),
    fading_sigma_db=st.floats(0.1, 5),
)


@settings(max_examples=200, deadline=None)
@given(budgets, st.floats(1e3, 1e8), st.floats(1.0, 10.0), st.floats(0, 20))
def test_loss_never_decreases_as_range_grows(budget, range_m, factor, atm_db):
    near = frame_loss_probability(link_margin_db(budget, range_m, atm_db), budget.fading_sigma_db)
    far = frame_loss_probability(
        link_margin_db(budget, range_m * factor, atm_db), budget.fading_sigma_db
    )
    assert 0.0 <= near <= far <= 1.0


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 86_400))
def test_delay_is_range_over_c_and_nothing_crosses_the_earth(t_s):
    sc = scenario_from_dict(small_walker_dict())
    state = link_state(sc, t_s * NS_PER_S)
    np.testing.assert_allclose(state.delay_s, state.range_m / C_M_PER_S, rtol=0, atol=0)
    pos = state.node_pos_m
    clearance = earth_clearance_m(pos[state.a], pos[state.b])
    isl = state.kind_code == 0
    # Every ISL that is up clears the Earth by the grazing altitude (80 km by default).
    assert np.all(clearance[isl & state.up] >= 80e3)
    # Any ISL whose straight line dips into the Earth is down, for that reason.
    through = isl & (clearance < 0)
    assert np.all(~state.up[through])
    assert np.all(state.reason_code[through] == R_EARTH)
    # Ground links that are up are above the elevation mask.
    ground_up = (state.kind_code == 1) & state.up
    assert np.all(state.elevation_deg[ground_up] >= 20.0)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(-1, 1),
    st.floats(-1, 1),
    st.floats(-1, 1),
    st.floats(-1, 1),
    st.floats(-1, 1),
    st.floats(-1, 1),
    st.floats(6.5e6, 5e7),
    st.floats(6.5e6, 5e7),
)
def test_antipodal_like_segments_have_negative_clearance(ax, ay, az, bx, by, bz, ra, rb):
    a = np.array([ax, ay, az])
    b = np.array([bx, by, bz])
    if np.linalg.norm(a) < 1e-3 or np.linalg.norm(b) < 1e-3:
        return
    pa = a / np.linalg.norm(a) * ra
    pb = b / np.linalg.norm(b) * rb
    clearance = float(earth_clearance_m(pa, pb))
    # Brute force: the lowest point of 2001 samples along the segment (ellipsoid scaled).
    s = np.linspace(0, 1, 2001)[:, None]
    pts = pa + s * (pb - pa)
    pts[:, 2] *= 6378137.0 / 6356752.314245179
    brute = float(np.min(np.linalg.norm(pts, axis=1)) - WGS84_A_M)
    assert clearance <= brute + 1.0
    assert clearance >= brute - 0.5 * np.linalg.norm(pb - pa) / 2000 - 1.0


def test_plus_grid_degrees_and_seams():
    star = scenario_from_dict(small_walker_dict())
    cand = build_candidates(star, Orbits(star).satrecs)
    isl = cand.kind_code == 0
    deg = np.bincount(np.concatenate([cand.a[isl], cand.b[isl]]), minlength=66)
    # Walker star: planes 1 and 6 border the seam and have 3 neighbours, the rest 4.
    assert sorted(set(deg.tolist())) == [3, 4] and (deg == 3).sum() == 22
    assert isl.sum() == 66 + 55
    data = small_walker_dict()
    data["constellations"][0]["walker"].update(type="delta", phasing=1)
    delta = scenario_from_dict(data)
    cand = build_candidates(delta, Orbits(delta).satrecs)
    isl = cand.kind_code == 0
    assert np.all(np.bincount(np.concatenate([cand.a[isl], cand.b[isl]])) == 4)
    # Across the wrap, slot s of the last plane meets slot s + F of plane 0.
    pairs = set(zip(cand.a[isl].tolist(), cand.b[isl].tolist(), strict=True))
    assert (0 * 11 + (0 + 1) % 11, 5 * 11 + 0) in pairs


def test_fewer_terminals_drop_inter_plane_links():
    data = small_walker_dict()
    data["constellations"][0]["isl_terminals"] = 2
    sc = scenario_from_dict(data)
    cand = build_candidates(sc, Orbits(sc).satrecs)
    assert (cand.kind_code == 0).sum() == 66 and not cand.inter_plane.any()


def test_tle_shell_planes_are_inferred_for_plus_grid():
    # iridium-tle.yaml asks for plus-grid ISLs on a TLE shell.
    sc = load_scenario(TOPOLOGIES / "iridium-tle.yaml")
    assert sc.links.isl.pattern == "plus-grid"
    model = LinkModel(sc)
    isl = model.cand.kind_code == 0
    # 6 planes of 11: 66 intra-plane links, 55 inter-plane links (no link across the seam).
    assert isl.sum() == 121
    assert model.cand.inter_plane[isl].sum() == 55
