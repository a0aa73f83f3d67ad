"""build_results on hand-built run files: exact numbers, balance ok / not ok, defensive reads."""

from __future__ import annotations

import csv
import json

import pytest

from netemu.results import build_results
from netemu.results.deliveries import DELIVERY_COLUMNS
from netemu.results.events import read_event_files
from netemu.scenario import load_scenario
from support import TOPOLOGIES

from .runfiles import (
    BEIJING,
    DEAD_SAT,
    MADRID,
    MS,
    NEW_YORK,
    SAT_A,
    SAT_B,
    SVALBARD,
    S,
    pkt,
    standard_run,
)

OPTIONS = {"duration_s": 60.0, "epoch_s": 1.0, "plots": False}


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(TOPOLOGIES / "demo-small.yaml")


def _build(rf, scenario, **options):
    layout = rf.write()
    return layout, build_results(layout, scenario, options={**OPTIONS, **options})


def test_standard_run_exact_numbers(tmp_path, scenario):
    layout, s = _build(standard_run(tmp_path), scenario)
    p = s["packets"]
    assert p["originated"] == 12
    assert p["delivered"] == 7  # pid 2's second delivered row is not counted
    assert p["dropped"] == {"loss": 1, "no_route": 1}
    assert (p["dropped_total"], p["dropped_by_node"], p["dropped_by_fabric"]) == (2, 1, 1)
    assert (p["held_at_end"], p["in_flight_at_end"]) == (1, 1)
    assert (p["lost_with_node"], p["unaccounted"]) == (1, 0)
    assert (p["duplicate_deliveries"], p["conflicting"]) == (1, 1)
    assert p["orphan_events"] == {"delivered": 1}  # HELLO rows are not orphans
    assert s["frames"] == {
        "sent": 40,
        "delivered": 35,
        "dropped": {"link-down": 1, "loss": 1, "queue-full": 2},
        "dropped_total": 4,
        "in_flight_at_end": 1,
        "ok": True,
    }
    bal = s["balance"]
    assert bal["ok"] is True and bal["problems"] == []
    assert bal["packets"] == {
        "identity": "originated = delivered + dropped + held_at_end + in_flight_at_end"
        " + lost_with_node + unaccounted",
        "originated": 12,
        "sum": 12,
        "ok": True,
    }
    assert bal["frames"]["ok"] is True and bal["frames"]["sum"] == 40

    f1, f2 = s["flows"]
    assert (f1["flow_id"], f1["name"], f1["src"], f1["dst"]) == (
        1,
        "madrid-beijing",
        MADRID,
        BEIJING,
    )
    assert (f1["src_name"], f1["dst_name"]) == ("gs-madrid", "gs-beijing")
    assert (f1["sent"], f1["delivered"], f1["delivery_ratio"]) == (10, 5, 0.5)
    assert f1["latency_p50_s"] == pytest.approx(0.070)
    assert f1["latency_p95_s"] == pytest.approx(0.088)
    assert f1["latency_p99_s"] == pytest.approx(0.0896)
    assert (f1["hops_min"], f1["hops_median"], f1["hops_max"]) == (3, 3.0, 3)
    assert (f2["flow_id"], f2["name"], f2["src"], f2["dst"]) == (
        2,
        "svalbard-results",
        SVALBARD,
        NEW_YORK,
    )
    assert (f2["sent"], f2["delivered"], f2["delivery_ratio"]) == (2, 2, 1.0)
    assert f2["latency_p50_s"] == pytest.approx(0.0425)
    assert f2["hops_min"] is None and f2["geometric_delay_p50_s"] is None

    first, second = s["links"]  # most frames first
    assert first == {
        "link_id": 9,
        "a": SAT_A,
        "b": SAT_B,
        "a_name": "iridium-p01-s05",
        "b_name": "iridium-p01-s06",
        "frames": 30,
        "bytes": 9000,
        "drops": {"loss": 1},
        "delivered": 29,
    }
    assert (second["link_id"], second["a"], second["a_name"]) == (3, MADRID, "gs-madrid")

    assert s["fidelity"] == {
        "delay_error_p50_s": 5e-5,
        "delay_error_p95_s": 1e-4,
        "delay_error_p99_s": 2e-4,
        "delay_error_max_s": 4e-4,
        "early": 0,
        "count": 35,
    }
    r = s["routes"]
    assert (r["epochs"], r["total_changes"], r["column"]) == (60, 120, "route_changes")
    assert r["per_epoch"][:4] == [0, 4, 2, 0] and len(r["per_epoch"]) == 60
    assert r["changes_per_epoch"] == {"min": 0.0, "median": 2.0, "mean": 2.0, "max": 4.0}
    assert r["links_up"] == {"min": 150.0, "median": 151.0, "max": 152.0}
    assert r["compute_s"]["median"] == pytest.approx(0.010)

    n = s["nodes"]
    assert (n["total"], n["alive_at_end"], n["dead_at_end"]) == (71, 70, 1)
    assert [(d["number"], d["t_s"], d["name"]) for d in n["died"]] == [
        (DEAD_SAT, 30.0, "iridium-p01-s07")
    ]
    assert n["died"][0]["utc"] == "2026-01-01T00:00:30Z"
    assert n["missing_final"] == [DEAD_SAT]  # ran (has events) but wrote no final file
    assert s["events"]["truncated_files"] == [f"{DEAD_SAT}.csv"]
    assert s["events"]["skipped_rows"] == 1

    run = s["run"]
    assert (run["scenario"], run["duration_s"], run["epoch_s"]) == ("demo-small", 60.0, 1.0)
    assert run["options"]["epoch_s"] == 1.0
    assert json.loads(layout.summary_json.read_text()) == s


def test_deliveries_csv(tmp_path, scenario):
    layout, s = _build(standard_run(tmp_path), scenario)
    with open(layout.deliveries_csv, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == DELIVERY_COLUMNS
        rows = list(reader)
    assert len(rows) == 7  # one per delivered packet, the duplicate delivery not repeated
    assert [r["t_sent_ns"] for r in rows] == sorted((r["t_sent_ns"] for r in rows), key=int)
    dup = next(r for r in rows if r["flow_id"] == "1" and r["seq"] == "2")
    assert dup["t_delivered_ns"] == str(7 * S + 70 * MS)  # the first delivery, not +5 ms
    assert float(dup["latency_s"]) == pytest.approx(0.070)
    assert dup["sent_utc"] == "2026-01-01T00:00:07.000000Z"
    assert dup["path"] == "gs-madrid>iridium-p01-s05>iridium-p01-s06>gs-beijing"
    assert (dup["hops"], dup["src_name"], dup["dst_name"]) == ("3", "gs-madrid", "gs-beijing")
    geo = float(dup["geometric_delay_s"])
    assert 0.001 < geo < 0.2
    assert float(dup["excess_s"]) == pytest.approx(0.070 - geo, abs=2e-9)
    plain = next(r for r in rows if r["flow_id"] == "2" and r["seq"] == "0")
    assert (plain["hops"], plain["path"], plain["geometric_delay_s"], plain["excess_s"]) == (
        ("",) * 4
    )
    assert s["latency"]["with_geometry"] == 5


def test_unresolved_without_death_is_unaccounted(tmp_path, scenario):
    rf = standard_run(tmp_path)
    rf.liveness = [row for row in rf.liveness if row[3] != "offline" or row[0] >= 60 * S]
    _, s = _build(rf, scenario)
    assert (s["packets"]["lost_with_node"], s["packets"]["unaccounted"]) == (0, 1)
    assert s["balance"]["packets"]["ok"] is False
    assert s["balance"]["ok"] is False
    assert any("no outcome" in p for p in s["balance"]["problems"])
    assert s["nodes"]["died"] == [] and s["nodes"]["dead_at_end"] == 0


def test_packet_long_after_the_death_is_not_lost_with_node(tmp_path, scenario):
    rf = standard_run(tmp_path)
    late = pkt(MADRID, 50, 50 * S, dst=BEIJING, flow_id=1, seq=50)  # 20 s after the kill
    rf.add(MADRID, "originated", 50 * S, late)
    _, s = _build(rf, scenario)
    assert (s["packets"]["lost_with_node"], s["packets"]["unaccounted"]) == (1, 1)
    assert s["balance"]["ok"] is False
    # With a grace long enough, it could have been routed through the dead node.
    _, s = _build(rf, scenario, lost_with_node_grace_s=30)
    assert (s["packets"]["lost_with_node"], s["packets"]["unaccounted"]) == (2, 0)
    assert s["balance"]["ok"] is True


def test_frame_imbalance_fails(tmp_path, scenario):
    rf = standard_run(tmp_path)
    rf.fabric_final["frames"]["sent"] = 41
    _, s = _build(rf, scenario)
    assert s["frames"]["ok"] is False
    assert s["balance"]["packets"]["ok"] is True
    assert s["balance"]["ok"] is False
    assert s["balance"]["problems"] == ["frames: sent 41 != 40"]


def test_missing_fabric_final(tmp_path, scenario):
    rf = standard_run(tmp_path)
    rf.fabric_final = None
    _, s = _build(rf, scenario)
    assert s["frames"]["sent"] is None and s["frames"]["ok"] is None
    assert s["links"] == [] and s["fidelity"]["count"] is None
    assert s["balance"]["ok"] is False
    assert "final/fabric.json missing or unreadable" in s["balance"]["problems"]


def test_other_fabric_json_form(tmp_path, scenario):
    """``balance`` instead of ``frames``, numeric ``a``/``b``, ``drops``, FidelityReport keys."""
    rf = standard_run(tmp_path)
    rf.fabric_final = {
        "balance": {"sent": 5, "delivered": 3, "dropped": {"loss": 1}, "in_flight": 1},
        "links": [
            {"link_id": 1, "a": SAT_A, "b": SAT_B, "frames": 5, "bytes": 50, "drops": {"loss": 1}}
        ],  # fmt: skip
        "fidelity": {"count": 3, "delay_error_p50_s": 1e-5, "delay_error_max_s": 2e-5, "early": 0},
    }
    _, s = _build(rf, scenario)
    assert s["frames"]["in_flight_at_end"] == 1 and s["frames"]["ok"] is True
    link = s["links"][0]
    assert (link["a"], link["a_name"], link["drops"]) == (SAT_A, "iridium-p01-s05", {"loss": 1})
    assert s["fidelity"]["delay_error_p50_s"] == 1e-5
    assert s["fidelity"]["delay_error_p95_s"] is None


def test_empty_run(tmp_path, scenario):
    from .runfiles import RunFiles

    rf = RunFiles(tmp_path)
    rf.fabric_final = {"frames": {"sent": 0, "delivered": 0, "dropped": {}, "in_flight_at_end": 0}}
    layout, s = _build(rf, scenario)
    assert s["packets"]["originated"] == 0 and s["flows"] == []
    assert s["balance"]["ok"] is False  # no events/fabric.csv
    assert layout.deliveries_csv.read_text().strip() == ",".join(DELIVERY_COLUMNS)


def test_reader_skips_cut_short_and_malformed_rows(tmp_path):
    path = tmp_path / "12.csv"
    path.write_text(
        "t_ns,where,event,src,packet_id,creation_dtn_ns,route\n"
        "1,12,originated,12,0,5,\n"
        "2,12,delivered,12,x,5,\n"  # not an integer: skipped
        "3,,delivered,12,0,5,12@1;7@2\n"  # empty where: taken from the file name
        "4,12,delivered,12,0,5,12@1;7@"  # no newline: cut short by a kill
    )
    table = read_event_files([path])
    assert len(table) == 2 and table.skipped_rows == 2
    assert table.column("where").tolist() == [12, 12]
    assert table.column("route").tolist() == ["", "12@1;7@2"]
    assert table.truncated_files == ["12.csv"]
