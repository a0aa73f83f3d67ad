"""The comparison table of routing schemes (netemu.results.compare): metrics read from a run's
summary.json and deliveries.csv, files written, labels. The end-to-end `netemu compare` run
(real simulations of several schemes) is in tests/sim/test_compare_cli.py."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from netemu.errors import NetemuError
from netemu.results.compare import (
    COMPARE_COLUMNS,
    scheme_label,
    scheme_metrics,
    write_comparison,
)


def _fake_run(path, *, originated, latencies_s, hops, changes, updates):
    path.mkdir(parents=True)
    summary = {
        "packets": {
            "originated": originated,
            "delivered": len(latencies_s),
            "dropped_total": 3,
            "held_at_end": 1,
        },
        "routes": {"total_changes": changes, "table_updates": updates, "table_bytes": 2048},
    }
    (path / "summary.json").write_text(json.dumps(summary))
    with (path / "deliveries.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["flow_id", "seq", "latency_s", "hops"])
        for i, (lat, h) in enumerate(zip(latencies_s, hops, strict=True)):
            w.writerow([1, i, lat, h])
    return path


def test_metrics_from_summary_and_deliveries(tmp_path):
    lat = [0.010, 0.020, 0.030, 0.040, 0.100]
    run = _fake_run(
        tmp_path / "a", originated=10, latencies_s=lat, hops=[2, 2, 3, 3, 6], changes=7, updates=12
    )
    row = scheme_metrics(run, scheme="a", routing="snapshot")
    assert row["delivered"] == 5 and row["originated"] == 10
    assert row["delivery_ratio"] == pytest.approx(0.5)
    assert row["latency_p50_s"] == pytest.approx(np.percentile(lat, 50))
    assert row["latency_p99_s"] == pytest.approx(np.percentile(lat, 99))
    assert row["hops_mean"] == pytest.approx(3.2) and row["hops_max"] == 6
    assert row["route_changes"] == 7 and row["table_updates"] == 12
    assert row["control_bytes"] == 2048 and row["dropped"] == 3 and row["held_at_end"] == 1


def test_nothing_delivered_gives_empty_percentiles(tmp_path):
    run = _fake_run(tmp_path / "b", originated=4, latencies_s=[], hops=[], changes=0, updates=0)
    row = scheme_metrics(run, scheme="b", routing="cgr")
    assert row["delivery_ratio"] == 0.0 and row["latency_p50_s"] is None
    assert row["hops_mean"] is None


def test_missing_summary_is_a_clear_error(tmp_path):
    with pytest.raises(NetemuError, match="cannot read the summary of 'x'"):
        scheme_metrics(tmp_path, scheme="x", routing="cgr")


def test_write_comparison_files(tmp_path):
    rows = [
        scheme_metrics(
            _fake_run(
                tmp_path / name,
                originated=10,
                latencies_s=[0.01 * k] * k,
                hops=[k] * k,
                changes=k,
                updates=k,
            ),
            scheme=name,
            routing=name,
        )
        for k, name in ((2, "cgr"), (5, "snapshot"))
    ]
    paths = write_comparison(rows, tmp_path / "cmp")
    with paths["csv"].open() as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0].keys()) == COMPARE_COLUMNS
    assert [r["scheme"] for r in table] == ["cgr", "snapshot"]
    assert [int(r["delivered"]) for r in table] == [2, 5]
    data = json.loads(paths["json"].read_text())
    assert data[1]["delivery_ratio"] == pytest.approx(0.5)
    assert paths["png"].stat().st_size > 10_000


@pytest.mark.parametrize(
    "routing, label",
    [
        ("cgr", "cgr"),
        ("pkg.mod:Best", "Best"),
        ("docs/examples/routing_plugin.py:HopPenaltyScheme", "routing_plugin-HopPenaltyScheme"),
    ],
)
def test_scheme_labels(routing, label):
    assert scheme_label(routing) == label
