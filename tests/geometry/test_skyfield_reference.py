"""Geometry against skyfield as an independent reference.

skyfield builds its own EarthSatellite from the very same TLE lines (for Walker shells we export
our SGP4 elements as TLE lines with sgp4's exporter) and computes ISL ranges as
``(b - a).at(t).distance()`` and ground links as ``(sat - station).at(t).altaz()``, in its own
frames (GCRS, with its own time scales and Earth orientation). Tolerances from the issue:
ISL range 1 m, ground range 50 m, elevation 0.01 deg.
"""

from __future__ import annotations

import numpy as np
import pytest
from skyfield.api import EarthSatellite, wgs84

from netemu.geometry import (
    angle_deg,
    elevation_deg,
    geodetic_to_itrs,
    sun_direction_itrs,
    up_vector,
)
from netemu.orbits import Orbits, satrec_tle_lines
from netemu.scenario import load_scenario, scenario_from_dict
from netemu.timebase import NS_PER_S, ephemeris, timescale
from support import TOPOLOGIES, small_walker_dict

TIMES_NS = np.array([0, 617, 3600, 5 * 3600 + 123, 23 * 3600 + 59 * 60]) * NS_PER_S


def _skyfield_sats(orbits: Orbits):
    ts = timescale()
    sats = []
    for sat in orbits.satrecs:
        l1, l2 = satrec_tle_lines(sat)
        sats.append(EarthSatellite(l1, l2, ts=ts))
    return sats


def _our_positions(orbits: Orbits):
    pos, _, ok = orbits.propagate(TIMES_NS)
    assert ok.all()
    return pos


@pytest.fixture(scope="module", params=["walker", "tle"])
def case(request):
    if request.param == "walker":
        sc = scenario_from_dict(small_walker_dict())
    else:
        sc = load_scenario(TOPOLOGIES / "iridium-tle.yaml")
    # Walker elements are rebuilt from exported TLE lines so both sides use identical elements.
    orbits = Orbits(sc)
    if request.param == "walker":
        from sgp4.api import Satrec

        orbits.satrecs = [Satrec.twoline2rv(*satrec_tle_lines(s)) for s in orbits.satrecs]
        from sgp4.api import SatrecArray

        orbits._array = SatrecArray(orbits.satrecs)
    return sc, orbits


def test_isl_range_within_1_m(case):
    sc, orbits = case
    pos = _our_positions(orbits)
    sky = _skyfield_sats(orbits)
    t = sc.timebase.skyfield_time(TIMES_NS)
    rng = np.random.default_rng(7)
    pairs = rng.choice(len(sky), size=(12, 2), replace=True)
    worst = 0.0
    for i, j in pairs:
        if i == j:
            continue
        ref_m = (sky[j] - sky[i]).at(t).distance().m
        ours_m = np.linalg.norm(pos[j] - pos[i], axis=-1)
        worst = max(worst, float(np.max(np.abs(ours_m - ref_m))))
    assert worst < 1.0, f"ISL range differs from skyfield by {worst:.3f} m"


def test_ground_range_and_elevation(case):
    sc, orbits = case
    pos = _our_positions(orbits)
    sky = _skyfield_sats(orbits)
    t = sc.timebase.skyfield_time(TIMES_NS)
    stations = [(78.23, 15.39, 500.0), (39.9, 116.4, 50.0), (-33.45, -70.67, 570.0), (0, 0, 0)]
    worst_range = worst_el = 0.0
    for lat, lon, alt in stations:
        topos = wgs84.latlon(lat, lon, elevation_m=alt)
        gs = geodetic_to_itrs(lat, lon, alt)
        up = up_vector(lat, lon)
        for k in range(0, len(sky), 5):
            alt_ref, _, dist_ref = (sky[k] - topos).at(t).altaz()
            ours_el = elevation_deg(pos[k], gs, up)
            ours_rng = np.linalg.norm(pos[k] - gs, axis=-1)
            worst_range = max(worst_range, float(np.max(np.abs(ours_rng - dist_ref.m))))
            worst_el = max(worst_el, float(np.max(np.abs(ours_el - alt_ref.degrees))))
    assert worst_range < 50.0, f"ground range differs from skyfield by {worst_range:.2f} m"
    assert worst_el < 0.01, f"elevation differs from skyfield by {worst_el:.5f} deg"


def test_sun_direction_against_de421():
    """Our low-precision Sun against skyfield + JPL DE421: within 0.05 deg."""
    sc = scenario_from_dict(small_walker_dict())
    t_ns = np.arange(0, 400 * 86400, 37 * 86400 + 1234) * NS_PER_S
    ours = sun_direction_itrs(sc.timebase, t_ns)
    eph = ephemeris()
    t = sc.timebase.skyfield_time(t_ns)
    from skyfield.framelib import itrs

    earth = eph["earth"]
    ref = earth.at(t).observe(eph["sun"]).frame_xyz(itrs).m.T
    worst = float(np.max(angle_deg(ours, ref)))
    assert worst < 0.05, f"sun direction off by {worst:.4f} deg"


def test_scalar_and_array_inputs_agree():
    sc = scenario_from_dict(small_walker_dict())
    orbits = Orbits(sc)
    pos_all, _, _ = orbits.propagate(TIMES_NS)
    for k, t in enumerate(TIMES_NS):
        pos_one, _, _ = orbits.propagate(int(t))
        np.testing.assert_allclose(pos_one[:, 0], pos_all[:, k], atol=1e-6)
    pos_pairs, _, _ = orbits.propagate_pairs([3, 3, 10], TIMES_NS[:3])
    np.testing.assert_allclose(pos_pairs[0], pos_all[3, 0], atol=1e-6)
    np.testing.assert_allclose(pos_pairs[2], pos_all[10, 2], atol=1e-6)
