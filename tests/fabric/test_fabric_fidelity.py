"""The fidelity helper, and the package's doctests."""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest

from netemu.fabric import FidelityRecorder


def test_percentiles_match_numpy():
    rng = np.random.default_rng(0)
    errors = rng.integers(0, 500_000, size=1001)
    rec = FidelityRecorder()
    for i, e in enumerate(errors.tolist()):
        assert rec.record(i * 1000, i * 1000 + e) == e
    rep = rec.report()
    assert rep.count == len(rec) == 1001 and rep.early == 0
    assert rep.p50_s == pytest.approx(np.percentile(errors, 50) / 1e9)
    assert rep.p95_s == pytest.approx(np.percentile(errors, 95) / 1e9)
    assert rep.p99_s == pytest.approx(np.percentile(errors, 99) / 1e9)
    assert rep.max_s == pytest.approx(errors.max() / 1e9)
    assert np.array_equal(rec.errors_ns(), errors)
    d = rep.to_dict()
    assert d["delay_error_p99_s"] == rep.p99_s and d["count"] == 1001


def test_early_deliveries_are_counted():
    rec = FidelityRecorder()
    rec.record(1000, 999)
    rec.record(1000, 1000)
    rep = rec.report()
    assert rep.early == 1 and rep.min_s == -1e-9 and rep.max_s == 0.0


def test_empty_report():
    rep = FidelityRecorder().report()
    assert rep.count == 0 and math.isnan(rep.p99_s)
    assert rep.to_dict()["delay_error_p99_s"] is None


@pytest.mark.parametrize(
    "module",
    ["netemu.fabric.core", "netemu.fabric.table", "netemu.fabric.reasons",
     "netemu.fabric.fidelity"],
)  # fmt: skip
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
