"""100k event rows summarise in a few seconds (numpy joins, no per-row objects)."""

from __future__ import annotations

import csv
import logging
import time

import numpy as np

from netemu.results import build_results
from netemu.runtime.eventlog import EVENT_COLUMNS
from netemu.runtime.layout import RunLayout
from netemu.scenario import load_scenario
from support import TOPOLOGIES

from .runfiles import EPOCH_DTN_NS, MS, S

log = logging.getLogger(__name__)


def write_big_run(out, n_packets: int = 50_000, seed: int = 1) -> RunLayout:
    """``n_packets`` from 5 stations over 600 s: 90 % delivered with a 3-hop RECORD_ROUTE,
    10 % dropped: two rows each, ``2 * n_packets`` rows in all."""
    layout = RunLayout(out).create()
    rng = np.random.default_rng(seed)
    src = rng.choice([1001, 1002, 1003, 1004, 1005], n_packets)
    dst = np.where(src == 1005, 1001, src + 1)
    t0 = np.sort(rng.integers(0, 600 * S, n_packets))
    lat = rng.integers(40 * MS, 120 * MS, n_packets)
    sats = rng.integers(1, 67, (n_packets, 2))
    delivered = rng.random(n_packets) < 0.9
    files: dict[int, list] = {}
    for i in range(n_packets):
        s, d, t = int(src[i]), int(dst[i]), int(t0[i])
        ident = [s, d, i, EPOCH_DTN_NS + t, "DATA", 500, s, i]
        files.setdefault(s, []).append([t, s, "originated", *ident, "", "", "", "", "", ""])
        if delivered[i]:
            a, b = (int(x) for x in sats[i])
            route = f"{s}@{t};{a}@{t + 5 * MS};{b}@{t + 15 * MS}"
            row = [t + int(lat[i]), d, "delivered", *ident, "", "", b, "", 3, route]
            files.setdefault(d, []).append(row)
        else:
            row = [t + 2 * MS, 7, "dropped", *ident, "no_route", "", "", "", "", ""]
            files.setdefault(7, []).append(row)
    for who, rows in files.items():
        with open(layout.events(who), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(EVENT_COLUMNS)
            w.writerows(rows)
    with open(layout.events("fabric"), "w") as f:
        f.write(",".join(EVENT_COLUMNS) + "\n")
    return layout


def test_100k_rows_summarise_in_seconds(tmp_path):
    scenario = load_scenario(TOPOLOGIES / "demo-small.yaml")
    layout = write_big_run(tmp_path / "out")
    started = time.perf_counter()
    s = build_results(layout, scenario, options={"duration_s": 600, "plots": False})
    elapsed_s = time.perf_counter() - started
    log.info("100k rows: %.2f s (%s)", elapsed_s, s["timing"])
    assert s["events"]["rows"] == 100_000
    p = s["packets"]
    assert p["originated"] == 50_000 and p["unaccounted"] == 0
    assert p["delivered"] + p["dropped_total"] == 50_000
    assert s["latency"]["with_geometry"] == p["delivered"]
    assert elapsed_s < 10.0, s["timing"]
