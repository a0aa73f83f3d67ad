"""Orbits: Walker and TLE satellites as SGP4 records, propagated in one vectorised call.

Positions come out in ITRS (Earth-fixed, metres): SGP4's TEME frame rotated by the Greenwich
mean sidereal angle (IAU 1982, on UT1), the same transformation skyfield applies to
``EarthSatellite`` positions (polar motion neglected, as skyfield does by default).

>>> from netemu.scenario import scenario_from_dict
>>> sc = scenario_from_dict({"epoch": "2026-01-01T00:00:00Z", "constellations": [{"name": "s",
...     "walker": {"planes": 1, "sats_per_plane": 2, "altitude_km": 550, "inclination_deg": 53}}]})
>>> orbit = Orbits(sc)
>>> pos_m, vel_mps, ok = orbit.propagate([0])
>>> pos_m.shape, bool(ok.all())
((2, 1, 3), True)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
from sgp4.api import WGS72, Satrec, SatrecArray
from sgp4.exporter import export_tle

from .errors import ScenarioError
from .scenario.model import Scenario, WalkerShell, walker_elements
from .timebase import TimeBase

# WGS72 constants, as SGP4 uses them.
MU_WGS72_KM3_S2 = 398600.8
R_WGS72_KM = 6378.135
# Earth rotation rate used with GMST 1982 (rad/s), as in Vallado's teme2ecef.
OMEGA_EARTH_RAD_S = 7.292115146706979e-5
# Epoch of SGP4's "days since" counter: 1949-12-31 00:00 UTC.
_SGP4_EPOCH0 = dt.datetime(1949, 12, 31, tzinfo=dt.UTC)


def mean_motion_rad_min(altitude_km: float) -> float:
    """Kepler mean motion for a circular orbit at ``altitude_km`` above WGS72's equator."""
    a_km = R_WGS72_KM + altitude_km
    return math.sqrt(MU_WGS72_KM3_S2 / a_km**3) * 60.0


def walker_satrecs(shell: WalkerShell, epoch_utc: dt.datetime, first_satnum: int = 1) -> list:
    """SGP4 records for every satellite of a Walker shell, with elements at ``epoch_utc``."""
    epoch_days = (epoch_utc - _SGP4_EPOCH0).total_seconds() / 86400.0
    n = mean_motion_rad_min(shell.altitude_km)
    out = []
    for k, (_, _, raan_deg, ma_deg) in enumerate(walker_elements(shell)):
        sat = Satrec()
        sat.sgp4init(
            WGS72,
            "i",
            (first_satnum + k) % 100000,
            epoch_days,
            0.0,  # bstar: no drag for designed constellations
            0.0,
            0.0,
            shell.eccentricity,
            math.radians(shell.arg_perigee_deg),
            math.radians(shell.inclination_deg),
            math.radians(ma_deg),
            n,
            math.radians(raan_deg),
        )
        out.append(sat)
    return out


def scenario_satrecs(scenario: Scenario) -> list:
    """One SGP4 record per satellite node, in node order."""
    sats = []
    for c in scenario.constellations:
        if c.walker is not None:
            sats.extend(walker_satrecs(c.walker, scenario.epoch_utc, len(sats) + 1))
        else:
            for rec in c.tle:
                sats.append(Satrec.twoline2rv(rec.line1, rec.line2))
    return sats


def satrec_tle_lines(sat) -> tuple[str, str]:
    """TLE lines for an SGP4 record (e.g. to give skyfield the very same elements)."""
    return export_tle(sat)


def rotate_teme_to_itrs(vec_teme, gmst_rad):
    """Rotate vectors (..., 3) from TEME into ITRS about z by the sidereal angle (...)."""
    c = np.cos(gmst_rad)
    s = np.sin(gmst_rad)
    x, y, z = vec_teme[..., 0], vec_teme[..., 1], vec_teme[..., 2]
    return np.stack([c * x + s * y, -s * x + c * y, z], axis=-1)


def teme_to_itrs(r_teme, v_teme, gmst_rad):
    """Rotate TEME position/velocity (..., 3) into ITRS with GMST angles broadcast on (...)."""
    r = rotate_teme_to_itrs(r_teme, gmst_rad)
    v = rotate_teme_to_itrs(v_teme, gmst_rad)
    # Velocity relative to the rotating Earth: v - omega x r.
    v[..., 0] += OMEGA_EARTH_RAD_S * r[..., 1]
    v[..., 1] -= OMEGA_EARTH_RAD_S * r[..., 0]
    return r, v


def gmst82_rad(jd_ut1_whole, jd_ut1_frac):
    """Greenwich mean sidereal angle, IAU 1982 model (radians), as SGP4/TEME expects."""
    from skyfield.sgp4lib import theta_GMST1982

    theta, _ = theta_GMST1982(np.asarray(jd_ut1_whole), np.asarray(jd_ut1_frac))
    return theta


@dataclasses.dataclass(frozen=True)
class EarthFrame:
    """Scenario times with their UTC Julian dates (for SGP4) and sidereal angle (for TEME ->
    ITRS), computed once and shared by satellite propagation and the Sun."""

    jd: np.ndarray
    fr: np.ndarray
    gmst_rad: np.ndarray

    def select(self, mask) -> EarthFrame:
        return EarthFrame(self.jd[mask], self.fr[mask], self.gmst_rad[mask])


def earth_frame(timebase: TimeBase, t_ns) -> EarthFrame:
    t_ns = np.atleast_1d(np.asarray(t_ns, dtype=np.float64))
    jd, fr = timebase.utc_jd(t_ns)
    return EarthFrame(jd, fr, gmst82_rad(*timebase.ut1_jd(t_ns)))


def sun_direction_itrs(frame: EarthFrame):
    """Unit vector to the Sun in ITRS, shape (n_t, 3)."""
    from .geometry import sun_direction_teme

    return rotate_teme_to_itrs(sun_direction_teme(frame.jd, frame.fr), frame.gmst_rad)


class Orbits:
    """All satellites of a scenario, ready for vectorised propagation."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.timebase: TimeBase = scenario.timebase
        self.satrecs = scenario_satrecs(scenario)
        self.n = len(self.satrecs)
        if self.n == 0:
            raise ScenarioError("scenario has no satellites", path=scenario.path)
        self._array = SatrecArray(self.satrecs)

    def propagate(self, t_ns, sat_index=None, *, frame: EarthFrame | None = None):
        """Positions (m) and Earth-relative velocities (m/s) in ITRS at scenario times.

        Returns ``pos_m`` and ``vel_mps`` of shape (n_sat, n_t, 3) and ``ok`` (n_sat, n_t): False
        where SGP4 reported an error (e.g. a decayed orbit); those positions are NaN.
        ``sat_index`` restricts the satellites (an index array); ``frame`` passes the
        :func:`earth_frame` of ``t_ns`` when the caller already has it.
        """
        frame = frame if frame is not None else earth_frame(self.timebase, t_ns)
        arr = (
            self._array
            if sat_index is None
            else SatrecArray([self.satrecs[i] for i in np.asarray(sat_index).tolist()])
        )
        err, r_km, v_kms = arr.sgp4(frame.jd, frame.fr)
        pos, vel = teme_to_itrs(r_km * 1000.0, v_kms * 1000.0, frame.gmst_rad[None, :])
        ok = err == 0
        if not ok.all():
            pos[~ok] = np.nan
            vel[~ok] = np.nan
        return pos, vel, ok

    def propagate_pairs(self, sat_index, t_ns, *, frame: EarthFrame | None = None):
        """Positions/velocities for matched (satellite, time) pairs: shapes (m, 3), (m, 3), (m,)."""
        sat_index = np.asarray(sat_index, dtype=np.int64)
        frame = frame if frame is not None else earth_frame(self.timebase, t_ns)
        jd, fr = frame.jd, frame.fr
        m = sat_index.shape[0]
        r_km = np.empty((m, 3))
        v_kms = np.empty((m, 3))
        err = np.zeros(m, dtype=np.int64)
        for s in np.unique(sat_index).tolist():
            sel = np.nonzero(sat_index == s)[0]
            e, r, v = self.satrecs[s].sgp4_array(jd[sel], fr[sel])
            r_km[sel] = r
            v_kms[sel] = v
            err[sel] = e
        pos, vel = teme_to_itrs(r_km * 1000.0, v_kms * 1000.0, frame.gmst_rad)
        ok = err == 0
        pos[~ok] = np.nan
        vel[~ok] = np.nan
        return pos, vel, ok
