"""The geometry commands as a user runs them: real subprocesses of the installed CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from netemu.contacts import loads_ion, loads_json
from support import TOPOLOGIES

SCENARIO = str(TOPOLOGIES / "iridium-next.yaml")


def run(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "netemu", *args], capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"netemu {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def test_links_json_shape():
    doc = json.loads(run("links", SCENARIO, "--at", "2026-01-01T00:10:00Z", "--json").stdout)
    assert doc["time"] == "2026-01-01T00:10:00Z"
    assert {n["kind"] for n in doc["nodes"]} == {"satellite", "ground"}
    assert all(len(n["position_m"]) == 3 for n in doc["nodes"])
    assert doc["links"] and all(link["up"] for link in doc["links"])
    link = doc["links"][0]
    assert set(link) == {"a", "b", "kind", "range_m", "delay_s", "loss", "rate_bps", "up", "reason"}
    assert abs(link["delay_s"] - link["range_m"] / 299_792_458.0) < 1e-12
    everything = json.loads(
        run("links", SCENARIO, "--at", "2026-01-01T00:10:00Z", "--json", "--all").stdout
    )
    down = [x for x in everything["links"] if not x["up"]]
    assert down and all(x["reason"] for x in down)
    assert len(everything["links"]) == len(doc["links"]) + len(down)
    assert {x["reason"] for x in down} >= {"below-elevation"}


def test_links_table():
    out = run("links", SCENARIO, "--at", "2026-01-01T00:10:00Z").stdout
    assert "iridium-p01-s01" in out and "links up of" in out


def test_plan_ion_and_json(tmp_path):
    out = tmp_path / "plan.json"
    run(
        "plan",
        SCENARIO,
        "--start",
        "2026-01-01T01:00:00Z",
        "--duration",
        "20m",
        "--format",
        "json",
        "-o",
        str(out),
    )
    plan = loads_json(out.read_text())
    assert len(plan) > 100
    assert plan.reference_utc.isoformat() == "2026-01-01T01:00:00+00:00"
    assert max(c.end_s for c in plan.contacts()) <= 1200.0
    ion = run("plan", SCENARIO, "--duration", "10m").stdout
    assert ion.splitlines()[1] == "@ 2026/01/01-00:00:00"
    assert len(loads_ion(ion)) > 50


def test_scenario_check_and_nodes():
    summary = json.loads(run("scenario", "check", SCENARIO, "--json", "--sample", "30m").stdout)
    assert summary["satellites"] == 66
    assert summary["candidate_links"]["isl"] == 121
    assert summary["contacts_per_hour"]["ground"] > 0
    nodes = json.loads(run("scenario", "nodes", SCENARIO, "--json").stdout)
    assert nodes["iridium-p03-s07"] == {"number": 29, "kind": "satellite", "plane": 3, "slot": 7}


@pytest.mark.parametrize("cmd", ["links", "plan", "scenario", "route", "routes", "wireshark"])
def test_every_command_has_help(cmd):
    proc = run(cmd, "--help", check=False)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr


def test_bad_time_is_one_line_error():
    proc = run("links", SCENARIO, "--at", "noon", check=False)
    assert proc.returncode == 2
    assert "cannot parse time 'noon'" in proc.stderr and "Traceback" not in proc.stderr
