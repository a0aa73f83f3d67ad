"""Time at the edges: ISO 8601 parsing, durations, and scenario time <-> UTC / skyfield.

Inside netemu, time is an integer number of nanoseconds since the scenario epoch (``t_ns``).
This module is the one place that converts it to UTC, Julian dates and skyfield ``Time``.

>>> parse_duration_s("1h30m")
5400.0
>>> parse_utc("2026-01-01T00:00:00Z").isoformat()
'2026-01-01T00:00:00+00:00'
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import warnings

import numpy as np

from .errors import NetemuError

NS_PER_S = 1_000_000_000
S_PER_DAY = 86_400.0

_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|us|ns|s|m|h|d)?", re.IGNORECASE)
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(text: str | float | int) -> float:
    """Parse ``"90"``, ``"90s"``, ``"10m"``, ``"24h"``, ``"1h30m"``, ``"250ms"`` into seconds.

    >>> parse_duration_s("24h")
    86400.0
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise NetemuError(f"duration must not be negative, got {text}")
        return float(text)
    s = str(text).strip()
    if not s:
        raise NetemuError("empty duration; expected e.g. 90s, 10m, 24h")
    pos = 0
    total = 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos and s[pos : m.start()].strip():
            break
        total += float(m.group(1)) * _UNIT_S[(m.group(2) or "s").lower()]
        pos = m.end()
    if pos != len(s):
        raise NetemuError(f"cannot parse duration {text!r}; expected e.g. 90s, 10m, 24h, 1h30m")
    return total


def parse_utc(text: str | dt.datetime | dt.date) -> dt.datetime:
    """Parse an ISO 8601 time into an aware UTC datetime. A time without zone is taken as UTC."""
    if isinstance(text, dt.datetime):
        value = text
    elif isinstance(text, dt.date):
        value = dt.datetime(text.year, text.month, text.day)
    else:
        s = str(text).strip()
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        try:
            value = dt.datetime.fromisoformat(s)
        except ValueError:
            raise NetemuError(
                f"cannot parse time {text!r}; expected ISO 8601 UTC such as 2026-01-01T00:00:00Z"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def format_utc(value: dt.datetime) -> str:
    """ISO 8601 with a ``Z`` suffix and at most microsecond precision."""
    value = value.astimezone(dt.UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


@functools.lru_cache(maxsize=1)
def timescale():
    """skyfield's timescale from the files shipped with skyfield-data (no download)."""
    import skyfield_data
    from skyfield.api import Loader

    with warnings.catch_warnings():
        # skyfield-data warns when its IERS table is older than a year; UT1-UTC then comes from
        # skyfield's long-term prediction, which is what we want for future scenario epochs.
        warnings.simplefilter("ignore", RuntimeWarning)
        loader = Loader(skyfield_data.get_skyfield_data_path(), verbose=False)
    return loader.timescale(builtin=True)


@functools.lru_cache(maxsize=1)
def ephemeris():
    """JPL DE421 from skyfield-data (for the independent sun reference in tests)."""
    import skyfield_data
    from skyfield.api import Loader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loader = Loader(skyfield_data.get_skyfield_data_path(), verbose=False)
        return loader("de421.bsp")


class TimeBase:
    """Converts scenario time (ns since ``epoch``) into the forms the orbit code needs.

    >>> tb = TimeBase(parse_utc("2026-01-01T00:00:00Z"))
    >>> tb.to_utc(3_600 * NS_PER_S).isoformat()
    '2026-01-01T01:00:00+00:00'
    """

    def __init__(self, epoch_utc: dt.datetime):
        self.epoch_utc = parse_utc(epoch_utc)
        ts = timescale()
        t0 = ts.from_datetime(self.epoch_utc)
        self._t0 = t0
        # Whole and fractional Julian date (UTC) of the epoch, kept split for precision.
        # JD 2451545.0 is 2000-01-01T12:00 UTC.
        delta = self.epoch_utc - dt.datetime(2000, 1, 1, 12, tzinfo=dt.UTC)
        days = delta.days + (delta.seconds + delta.microseconds * 1e-6) / S_PER_DAY
        self._jd_whole = float(np.floor(2451545.0 + days - 0.5) + 0.5)
        self._frac0 = days - (self._jd_whole - 2451545.0)

    def utc_jd(self, t_ns) -> tuple[np.ndarray, np.ndarray]:
        """(whole, fraction) UTC Julian dates for scenario times, as sgp4 wants them.

        Scenario seconds are SI seconds counted from the epoch; a leap second inside a horizon
        would shift UTC by 1 s (none is scheduled).
        """
        t_s = np.asarray(t_ns, dtype=np.float64) / NS_PER_S
        frac = self._frac0 + t_s / S_PER_DAY
        whole = np.full_like(frac, self._jd_whole)
        return whole, frac

    def ut1_jd(self, t_ns) -> tuple[np.ndarray, np.ndarray]:
        """(whole, fraction) UT1 Julian dates (for Earth rotation)."""
        whole, frac = self.utc_jd(t_ns)
        dut1_s = self.dut1_s(t_ns)
        return whole, frac + dut1_s / S_PER_DAY

    def dut1_s(self, t_ns) -> np.ndarray:
        """UT1 - UTC in seconds at scenario times (skyfield's IERS table / prediction)."""
        t = self.skyfield_time(t_ns)
        return np.asarray(t.dut1, dtype=np.float64)

    def skyfield_time(self, t_ns):
        """skyfield ``Time`` for scenario times (scalar or array)."""
        ts = timescale()
        t_s = np.asarray(t_ns, dtype=np.float64) / NS_PER_S
        return ts.tai_jd(self._t0.whole, self._t0.tai_fraction + t_s / S_PER_DAY)

    def to_utc(self, t_ns: int) -> dt.datetime:
        return self.epoch_utc + dt.timedelta(microseconds=int(t_ns) / 1000)

    def from_utc(self, when) -> int:
        """Scenario nanoseconds for a UTC time (``datetime`` or ISO 8601 string)."""
        delta = parse_utc(when) - self.epoch_utc
        return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
