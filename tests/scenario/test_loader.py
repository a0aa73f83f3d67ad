"""Scenario loading: bundled files, node naming/numbering, and clear errors for bad input."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from netemu import ScenarioError
from netemu.scenario import load_scenario, parse_tle_text, scenario_from_dict, tle_checksum
from support import TOPOLOGIES, small_walker_dict

BUNDLED = sorted(p for p in TOPOLOGIES.glob("*.yaml"))


def test_bundled_scenarios_exist():
    names = {p.stem for p in BUNDLED}
    for required in (
        "iridium-next",
        "starlink-shell1",
        "qianfan",
        "three-body-computing",
        "project-sunrise",
    ):
        assert required in names


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_scenario_loads(path):
    sc = load_scenario(path)
    assert sc.n_satellites > 0
    assert len(sc.nodes) == sc.n_satellites + len(sc.ground_stations)
    assert len({n.number for n in sc.nodes}) == len(sc.nodes)


def test_iridium_and_starlink_sizes():
    iridium = load_scenario(TOPOLOGIES / "iridium-next.yaml")
    assert iridium.n_satellites == 66
    w = iridium.constellations[0].walker
    assert (w.planes, w.sats_per_plane, w.altitude_km, w.inclination_deg, w.type) == (
        6,
        11,
        780,
        86.4,
        "star",
    )
    starlink = load_scenario(TOPOLOGIES / "starlink-shell1.yaml")
    assert starlink.n_satellites == 72 * 22
    big = load_scenario(TOPOLOGIES / "starlink-shell1-100gs.yaml")
    assert 90 <= len(big.ground_stations) <= 110
    assert 15 <= len(load_scenario(TOPOLOGIES / "iridium-next.yaml").ground_stations) <= 25


def test_node_names_and_numbers_are_readable_and_stable():
    sc = scenario_from_dict(small_walker_dict())
    assert sc.nodes[0].name == "iridium-p01-s01"
    assert sc.node("iridium-p03-s07").plane == 2
    assert sc.node("iridium-p03-s07").slot == 6
    assert sc.node("iridium-p03-s07").number == 2 * 11 + 7
    # Ground stations are numbered from the next thousand + 1 after the satellites.
    assert sc.node("gs-svalbard").number == 1001
    assert sc.node("beijing").name == "gs-beijing"
    assert sc.node(1002).name == "gs-beijing"
    again = scenario_from_dict(small_walker_dict())
    assert again.node_numbers() == sc.node_numbers()


def test_explicit_numbering():
    data = small_walker_dict(numbering={"ground_first": 500})
    data["constellations"][0]["first_node_number"] = 100
    sc = scenario_from_dict(data)
    assert sc.nodes[0].number == 100
    assert sc.node("gs-svalbard").number == 500


def _error(data, tmp_path, name="bad.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("mutate", "key", "expect"),
    [
        (lambda d: d.pop("epoch"), "epoch", "missing required key"),
        (lambda d: d.update(epoch="yesterday"), "epoch", "ISO 8601"),
        (
            lambda d: d["constellations"][0]["walker"].pop("planes"),
            "constellations[0].walker.planes",
            "missing required key",
        ),
        (
            lambda d: d["constellations"][0]["walker"].update(planes="six"),
            "constellations[0].walker.planes",
            "expected an integer",
        ),
        (
            lambda d: d["constellations"][0]["walker"].update(type="rosette"),
            "constellations[0].walker.type",
            "expected one of delta, star",
        ),
        (
            lambda d: d["constellations"][0]["walker"].update(phasing=9),
            "constellations[0].walker.phasing",
            "0..5",
        ),
        (
            lambda d: d["links"]["isl"].update(pattern="mesh"),
            "links.isl.pattern",
            "expected one of plus-grid, none",
        ),
        (lambda d: d["links"]["isl"].update(max_range_km=-1), "links.isl.max_range_km", "> 0"),
        (
            lambda d: d["links"]["isl"].update(max_rnge_km=10),
            "links.isl.max_rnge_km",
            "unknown key",
        ),
        (
            lambda d: d["links"]["ground"].update(min_elevation_deg=[1]),
            "links.ground.min_elevation_deg",
            "expected a number",
        ),
        (
            lambda d: d["ground_stations"][1].pop("lat_deg"),
            "ground_stations[1].lat_deg",
            "missing required key",
        ),
        (
            lambda d: d["ground_stations"][0].update(lat_deg=91),
            "ground_stations[0].lat_deg",
            "<= 90",
        ),
        (lambda d: d.update(constellations=[]), "constellations", "non-empty list"),
        (
            lambda d: d["constellations"][0].update(tle_file="x.tle"),
            "constellations[0]",
            "exactly one of 'walker' or 'tle_file'",
        ),
    ],
)
def test_bad_input_names_file_key_and_expectation(tmp_path, mutate, key, expect):
    data = copy.deepcopy(small_walker_dict())
    mutate(data)
    message = _error(data, tmp_path)
    assert "bad.yaml" in message
    assert f": {key}:" in message
    assert expect in message


def test_invalid_yaml_and_missing_file(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("epoch: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"broken.yaml: invalid YAML at line"):
        load_scenario(p)
    with pytest.raises(ScenarioError, match=r"nothere.yaml: cannot read file"):
        load_scenario(tmp_path / "nothere.yaml")


TLE_ISS = (
    "ISS (ZARYA)\n"
    "1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927\n"
    "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537\n"
)


def test_tle_three_and_two_line_forms():
    three = parse_tle_text(TLE_ISS, source="x")
    two = parse_tle_text("\n".join(TLE_ISS.splitlines()[1:]), source="x")
    assert three[0].name == "ISS (ZARYA)"
    assert two[0].name == "25544"
    assert three[0].line1 == two[0].line1
    # The checksum example of the CelesTrak/NORAD format documentation (ISS, 2008).
    assert tle_checksum(three[0].line1) == 7


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (TLE_ISS.replace("0  2927", "0  2928"), "bad TLE checksum"),
        (TLE_ISS.replace("98067A   08264", "98067A  08264"), "expected 69"),
        ("ISS\n" + TLE_ISS.splitlines()[1] + "\n", "expected TLE line 2"),
        ("just words\n", "name line without TLE lines"),
        ("", "no TLE records"),
    ],
)
def test_malformed_tle_file(tmp_path, text, expect):
    (tmp_path / "sats.tle").write_text(text)
    data = small_walker_dict()
    data["constellations"] = [{"name": "iss", "tle_file": "sats.tle"}]
    message = _error(data, tmp_path)
    assert "sats.tle" in message
    assert expect in message


def test_unreadable_tle_file_names_scenario_key(tmp_path):
    data = small_walker_dict()
    data["constellations"] = [{"name": "iss", "tle_file": "missing.tle"}]
    message = _error(data, tmp_path)
    assert "constellations[0].tle_file" in message and "cannot read TLE file" in message


def test_cli_prints_one_line_and_exits_nonzero(tmp_path):
    data = small_walker_dict()
    data["links"]["isl"]["pattern"] = "mesh"
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    proc = subprocess.run(
        [sys.executable, "-m", "netemu", "scenario", "check", str(p)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "links.isl.pattern" in lines[0] and "Traceback" not in proc.stderr
