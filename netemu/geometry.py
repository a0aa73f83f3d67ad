"""Pure, vectorised geometry in ITRS (metres). No loops over satellites.

Every function broadcasts over leading dimensions, so the same code serves one link at one time
and all links at all times.

>>> import numpy as np
>>> gs = geodetic_to_itrs(0.0, 0.0, 0.0)
>>> sat = gs + np.array([500e3, 0.0, 0.0])      # straight up from (0 N, 0 E)
>>> round(float(elevation_deg(sat, gs, up_vector(0.0, 0.0))), 6)
90.0
"""

from __future__ import annotations

import numpy as np

C_M_PER_S = 299_792_458.0
WGS84_A_M = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
WGS84_B_M = WGS84_A_M * (1.0 - WGS84_F)
_E2 = WGS84_F * (2.0 - WGS84_F)
AU_M = 149_597_870_700.0


def geodetic_to_itrs(lat_deg, lon_deg, alt_m):
    """WGS84 geodetic latitude/longitude/height to ITRS Cartesian metres, shape (..., 3)."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    alt = np.asarray(alt_m, dtype=np.float64)
    sin_lat = np.sin(lat)
    n = WGS84_A_M / np.sqrt(1.0 - _E2 * sin_lat**2)
    x = (n + alt) * np.cos(lat) * np.cos(lon)
    y = (n + alt) * np.cos(lat) * np.sin(lon)
    z = (n * (1.0 - _E2) + alt) * sin_lat
    return np.stack([x, y, z], axis=-1)


def up_vector(lat_deg, lon_deg):
    """Unit normal of the WGS84 ellipsoid (geodetic zenith), shape (..., 3)."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def norm(v):
    return np.sqrt(np.einsum("...i,...i->...", v, v))


def dot(u, v):
    return np.einsum("...i,...i->...", u, v)


def range_and_rate(pos_a_m, vel_a_mps, pos_b_m, vel_b_mps):
    """Distance |b - a| (m) and its time derivative (m/s); works in any common frame."""
    d = pos_b_m - pos_a_m
    range_m = norm(d)
    rate_mps = dot(d, vel_b_mps - vel_a_mps) / range_m
    return range_m, rate_mps


def delay_s(range_m):
    """One-way light time for a range: ``range_m / c``."""
    return np.asarray(range_m) / C_M_PER_S


def elevation_deg(sat_m, station_m, station_up):
    """Elevation of ``sat_m`` above the station's geodetic horizon (degrees)."""
    d = sat_m - station_m
    return np.degrees(np.arcsin(np.clip(dot(d, station_up) / norm(d), -1.0, 1.0)))


def earth_clearance_m(pos_a_m, pos_b_m):
    """Lowest height of the straight segment a-b above the Earth (metres, ellipsoid-scaled).

    The z axis is stretched by a/b so the WGS84 ellipsoid becomes a sphere of radius a; the
    closest approach of the segment to the centre, minus a, approximates the lowest altitude
    the line of sight passes over. Negative values mean the segment goes through the Earth.
    """
    scale = np.array([1.0, 1.0, WGS84_A_M / WGS84_B_M])
    a = pos_a_m * scale
    b = pos_b_m * scale
    d = b - a
    dd = dot(d, d)
    t = np.clip(-dot(a, d) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
    closest = a + t[..., None] * d
    return norm(closest) - WGS84_A_M


def geocentric_latitude_deg(pos_m):
    return np.degrees(np.arcsin(np.clip(pos_m[..., 2] / norm(pos_m), -1.0, 1.0)))


def angle_deg(u, v):
    """Angle between vectors (degrees), robust near 0 and 180."""
    cross = np.cross(u, v)
    return np.degrees(np.arctan2(norm(cross), dot(u, v)))


def sun_direction_teme(jd_utc_whole, jd_utc_frac):
    """Unit vector to the Sun, mean equator and equinox of date (~TEME), low precision.

    The Astronomical Almanac's low-precision solar coordinates (good to about 0.01 deg over
    1950-2050), which is ample for sun-exclusion cones of a few degrees.
    """
    n = (np.asarray(jd_utc_whole) - 2451545.0) + np.asarray(jd_utc_frac)
    mean_lon = np.radians((280.460 + 0.9856474 * n) % 360.0)
    g = np.radians((357.528 + 0.9856003 * n) % 360.0)
    ecl_lon = mean_lon + np.radians(1.915) * np.sin(g) + np.radians(0.020) * np.sin(2 * g)
    eps = np.radians(23.439 - 0.0000004 * n)
    x = np.cos(ecl_lon)
    y = np.cos(eps) * np.sin(ecl_lon)
    z = np.sin(eps) * np.sin(ecl_lon)
    return np.stack([x, y, z], axis=-1)


def sun_direction_itrs(timebase, t_ns):
    """Unit vector to the Sun in ITRS at scenario times, shape (n_t, 3)."""
    from .orbits import earth_frame
    from .orbits import sun_direction_itrs as sun_in_frame

    return sun_in_frame(earth_frame(timebase, t_ns))
