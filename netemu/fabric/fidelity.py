"""Fidelity self-check: how far actual deliveries were from the intended times.

The host records, for every delivered frame, the intended arrival (``Outcome.arrival_ns``) and the
time it really handed the frame over (read from its own clock). The error is actual minus intended:
positive = late, negative = early (which the host must never be).

>>> rec = FidelityRecorder()
>>> for late_ns in (100_000, 200_000, 300_000):
...     _ = rec.record(1_000_000, 1_000_000 + late_ns)
>>> report = rec.report()
>>> report.count, report.p50_s, report.max_s, report.early
(3, 0.0002, 0.0003, 0)
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

from ..timebase import NS_PER_S

__all__ = ["FidelityRecorder", "FidelityReport"]


@dataclass(frozen=True)
class FidelityReport:
    """Delay-error statistics in seconds (NaN when nothing was recorded)."""

    count: int
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float
    min_s: float
    early: int  # deliveries before their intended time

    def to_dict(self) -> dict:
        """The ``fidelity`` section of a run summary (NaN becomes ``None``)."""

        def clean(v: float) -> float | None:
            return None if np.isnan(v) else v

        return {
            "count": self.count,
            "delay_error_p50_s": clean(self.p50_s),
            "delay_error_p95_s": clean(self.p95_s),
            "delay_error_p99_s": clean(self.p99_s),
            "delay_error_max_s": clean(self.max_s),
            "delay_error_min_s": clean(self.min_s),
            "early": self.early,
        }


class FidelityRecorder:
    """Collects (intended, actual) delivery times; cheap to append to (an int64 array)."""

    def __init__(self) -> None:
        self._errors_ns = array("q")

    def __len__(self) -> int:
        return len(self._errors_ns)

    def record(self, intended_ns: int, actual_ns: int) -> int:
        """Record one delivery; returns its error (actual - intended) in ns."""
        err = int(actual_ns) - int(intended_ns)
        self._errors_ns.append(err)
        return err

    def errors_ns(self) -> np.ndarray:
        """Every recorded error, in recording order (a copy)."""
        return np.array(self._errors_ns, dtype=np.int64)

    def report(self) -> FidelityReport:
        err = np.frombuffer(self._errors_ns, dtype=np.int64) if self._errors_ns else None
        if err is None:
            nan = float("nan")
            return FidelityReport(0, nan, nan, nan, nan, nan, 0)
        p50, p95, p99 = (float(v) / NS_PER_S for v in np.percentile(err, [50, 95, 99]))
        return FidelityReport(
            count=int(err.size),
            p50_s=p50,
            p95_s=p95,
            p99_s=p99,
            max_s=float(err.max()) / NS_PER_S,
            min_s=float(err.min()) / NS_PER_S,
            early=int(np.count_nonzero(err < 0)),
        )
