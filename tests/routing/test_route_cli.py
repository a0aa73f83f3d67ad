"""``netemu route`` and ``netemu routes`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netemu.cli import main
from netemu.contacts import dumps_json, loads_ion
from support import TOPOLOGIES

# The CGR tutorial network (see test_cgr_known.py for the source): A..E = 1..5, OWLT 1 s.
PLAN = (Path(__file__).parent / "data" / "cgr-tutorial.ionrc").read_text()


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "tutorial.ion"
    path.write_text(PLAN)
    return str(path)


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_route_json_shape(plan_file, capsys):
    out = run_json(capsys, "route", plan_file, "--from", "1", "--to", "5", "--at", "0", "--json")
    assert out == {
        "routes": [
            {
                "next_hop": 3,
                "arrival": 3.0,
                "hops": 3,
                "contacts": [
                    {"from": 1, "to": 3, "start": 0.0, "end": 60.0},
                    {"from": 3, "to": 4, "start": 0.0, "end": 30.0},
                    {"from": 4, "to": 5, "start": 0.0, "end": 10.0},
                ],
                "volume": 8.0,
            }
        ]
    }


def test_route_k_deadline_exclude_size(plan_file, capsys):
    base = ["route", plan_file, "--from", "1", "--to", "5", "--json"]
    routes = run_json(capsys, *base, "--k", "4")["routes"]
    assert [(r["next_hop"], r["arrival"], r["hops"]) for r in routes] == [
        (3, 3.0, 3),
        (2, 4.0, 4),
        (5, 11.0, 1),
        (3, 31.0, 3),
    ]
    assert run_json(capsys, *base, "--deadline", "2.5")["routes"] == []
    only = run_json(capsys, *base, "--k", "3", "--exclude", "3,2")["routes"]
    assert [r["next_hop"] for r in only] == [5]
    sized = run_json(capsys, *base, "--size", "9")["routes"]
    assert [(r["next_hop"], r["volume"]) for r in sized] == [(5, 10.0)]
    later = run_json(capsys, *base, "--at", "12")["routes"]
    assert later[0]["arrival"] == 13.0


def test_route_no_route_is_empty_and_exit_zero(plan_file, capsys):
    out = run_json(capsys, "route", plan_file, "--from", "1", "--to", "5", "--at", "59", "--json")
    assert out == {"routes": []}
    assert main(["route", plan_file, "--from", "1", "--to", "5", "--at", "59"]) == 0
    assert "no route from 1 to 5" in capsys.readouterr().out


def test_route_table_output(plan_file, capsys):
    assert main(["route", plan_file, "--from", "1", "--to", "5", "--k", "2"]) == 0
    text = capsys.readouterr().out
    assert "routes 1 -> 5" in text
    assert "1->3 [0, 60)" in text and "next hop" in text


def test_route_json_plan_with_node_names(tmp_path, capsys):
    plan = loads_ion(PLAN)
    plan.node_names.update({1: "alpha", 5: "echo"})
    path = tmp_path / "plan.json"
    path.write_text(dumps_json(plan))
    out = run_json(capsys, "route", str(path), "--from", "alpha", "--to", "echo", "--json")
    assert out["routes"][0]["arrival"] == 3.0


def test_route_errors_are_one_line(plan_file, capsys):
    assert main(["route", plan_file, "--from", "x", "--to", "5"]) == 2
    assert "expected a node number" in capsys.readouterr().err
    assert main(["route", plan_file, "--from", "1", "--to", "5", "--start", "2026-01-01"]) == 2
    assert "--start only applies" in capsys.readouterr().err
    assert main(["route", plan_file, "--from", "1", "--to", "5", "--k", "0"]) == 2
    assert main(["route", "/nonexistent.ion", "--from", "1", "--to", "5"]) == 2


def test_route_on_scenario_with_names_and_numbers(capsys):
    scenario = str(TOPOLOGIES / "demo-small.yaml")
    argv = ["route", scenario, "--start", "2026-01-01T00:00:00Z", "--at", "10", "--k", "2"]
    by_name = run_json(capsys, *argv, "--from", "svalbard", "--to", "sydney", "--json")
    assert 1 <= len(by_name["routes"]) <= 2
    first = by_name["routes"][0]
    assert first["contacts"][0]["from"] == 1001 and first["contacts"][-1]["to"] == 1004
    assert first["arrival"] >= 10.0
    by_number = run_json(capsys, *argv, "--from", "1001", "--to", "gs-sydney", "--json")
    assert by_number == by_name


@pytest.mark.parametrize("scheme", ["cgr", "snapshot", "minhop"])
def test_routes_tables_for_every_scheme(scheme, capsys):
    argv = [
        "routes",
        str(TOPOLOGIES / "demo-small.yaml"),
        "--at",
        "2026-01-01T00:00:00Z",
        "--scheme",
        scheme,
        "--horizon",
        "20m",
    ]
    out = run_json(capsys, *argv, "--json")
    assert len(out["tables"]) == 71
    entries = out["tables"]["1001"]
    assert entries and all(e["arrival"] >= 0 for e in entries)
    assert all(e["action"] in ("forward", "hold") for e in entries)
    assert main([*argv, "--node", "svalbard,madrid"]) == 0
    text = capsys.readouterr().out
    assert "node 1001 gs-svalbard" in text and "node 1002 gs-madrid" in text
