"""Scale smoke test: Starlink shell 1 + 100 ground stations (1,684 nodes) in virtual time for
3 s of scenario time with the ground-to-ground preset (20 flows x 10 packets/s). About 25 s on
a 2-vCPU machine (one all-pairs route computation per epoch, 1,685 event logs and final files,
the results)."""

from __future__ import annotations

import json

import pytest

from netemu.sim import simulate
from support import REPO

pytestmark = [pytest.mark.slow]

STARLINK = REPO / "topologies" / "starlink-shell1-100gs.yaml"


def test_starlink_1684_nodes_short_run(tmp_path):
    out = tmp_path / "starlink"
    summary = simulate(STARLINK, duration_s=3, routing="snapshot", out=out, progress=False)
    assert summary["run"]["nodes"] == 1684
    assert summary["balance"]["ok"], summary["balance"]
    p = summary["packets"]
    assert p["originated"] >= 20 * 10 and p["delivered"] > 0.5 * p["originated"], p
    assert summary["routes"]["epochs"] == 3
    assert summary["routes"]["control"]["table_updates"] >= 1684
    assert summary["nodes"]["missing_final"] == [] and summary["nodes"]["missing_events"] == []
    wall = json.loads((out / "run" / "sim.json").read_text())
    assert wall["peak_rss_mib"] < 3 * 1024
