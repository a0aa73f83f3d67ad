"""Results of a run with an external node (docs/external.md, "Accounting"), on hand-built run
files: packets to it are ``to_external`` (not ``unaccounted``), deliveries of packets it
originated are counted apart, and the summary names it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from netemu.results import build_results
from netemu.scenario import load_scenario
from support import TOPOLOGIES

sys.path.insert(0, str(Path(__file__).parents[1] / "results"))
from runfiles import MADRID, NEW_YORK, S, pkt, standard_run  # noqa: E402

OPTIONS = {"duration_s": 60.0, "epoch_s": 1.0, "plots": False}
EXTERNAL = {"new-york": {"number": NEW_YORK, "command": "my-sgp --id 1004"}}


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(TOPOLOGIES / "demo-small.yaml")


def _with_external_traffic(tmp_path):
    rf = standard_run(tmp_path)
    # 50 s: long after the standard run's node death, so it cannot be lost_with_node
    rf.add(MADRID, "originated", 50 * S, pkt(MADRID, 90, 50 * S, dst=NEW_YORK, flow_id=1, seq=90))
    rf.add(MADRID, "originated", 51 * S, pkt(MADRID, 91, 51 * S, dst=NEW_YORK, flow_id=1, seq=91))
    # a packet the external node originated, delivered at Madrid (no originated row exists)
    rf.add(MADRID, "delivered", 52 * S, pkt(NEW_YORK, 7, 52 * S, dst=MADRID))
    return rf


def test_packets_to_an_external_node_are_not_unaccounted(tmp_path, scenario):
    layout = _with_external_traffic(tmp_path).write()
    s = build_results(layout, scenario, options={**OPTIONS, "external": EXTERNAL})
    p = s["packets"]
    assert (p["to_external"], p["unaccounted"], p["delivered_from_external"]) == (2, 0, 1)
    assert s["balance"]["ok"] is True, s["balance"]
    assert s["balance"]["packets"]["identity"].endswith(" + to_external")
    assert s["balance"]["packets"]["sum"] == p["originated"]
    assert s["external"] == {
        "nodes": [{"name": "new-york", "number": NEW_YORK, "command": "my-sgp --id 1004"}],
        "accounted": False,
        "note": s["external"]["note"],
        "packets_to_external": 2,
        "delivered_from_external": 1,
    }


def test_without_the_external_option_the_same_packets_are_unaccounted(tmp_path, scenario):
    layout = _with_external_traffic(tmp_path).write()
    s = build_results(layout, scenario, options=OPTIONS)
    p = s["packets"]
    assert (p["to_external"], p["unaccounted"], p["delivered_from_external"]) == (0, 2, 0)
    assert s["balance"]["ok"] is False and s["external"] is None
    assert not s["balance"]["packets"]["identity"].endswith("to_external")
