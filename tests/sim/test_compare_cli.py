"""`netemu compare` end to end: real virtual-time runs of four routing schemes (two built-in, the
documented example plug-in and a plug-in written here) on the bundled demo, through the CLI,
then the table, the files and the runs behind them checked against each other."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from netemu.results.compare import COMPARE_COLUMNS
from support import REPO

DEMO = REPO / "topologies" / "demo-small.yaml"
PLUGIN = "docs/examples/routing_plugin.py:HopPenaltyScheme"
# Written into the test's directory: snapshot routing with every route towards gs-beijing
# removed, so its effect on the table is known in advance.
NO_BEIJING = """\
from netemu.routing.snapshot import SnapshotScheme

class NoBeijing(SnapshotScheme):
    name = "no-beijing"

    def compute(self, view, *, sources=None):
        tables = super().compute(view, sources=sources)
        col = list(tables.nodes).index(1003)  # gs-beijing
        tables.next_hop[:, col] = -1
        tables.arrival_ns[:, col] = -1
        return tables
"""
SCHEMES = ["snapshot", "minhop", PLUGIN, "no_beijing.py:NoBeijing"]
LABELS = ["snapshot", "minhop", "routing_plugin-HopPenaltyScheme", "no_beijing-NoBeijing"]

TRAFFIC = """\
defaults: {pattern: poisson, rate_pps: 20, size_bytes: 200, start_s: 0.5, stop_s: 16}
flows:
  - {src: madrid, dst: beijing}
  - {src: beijing, dst: new-york}
  - {src: svalbard, dst: madrid}
  - {src: iridium-p02-s03, dst: sydney, pattern: constant}
"""


def _netemu(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netemu", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _deliveries(run_dir) -> dict[tuple[str, str], dict]:
    with open(run_dir / "deliveries.csv", newline="") as fh:
        return {(r["flow_id"], r["seq"]): r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    (tmp / "traffic.yaml").write_text(TRAFFIC)
    (tmp / "no_beijing.py").write_text(NO_BEIJING)
    routing = [a for s in SCHEMES for a in ("--routing", s)]
    routing[routing.index(PLUGIN)] = str(REPO / PLUGIN)
    proc = _netemu(
        "compare",
        str(DEMO),
        *routing,
        "--duration",
        "20s",
        "--traffic",
        str(tmp / "traffic.yaml"),
        "--seed",
        "7",
        "--out",
        str(tmp / "out"),
        "--no-progress",
        cwd=tmp,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp / "out", proc.stdout


def test_table_and_files(compared):
    out, stdout = compared
    for label in LABELS:
        assert label in stdout
    with open(out / "compare.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == COMPARE_COLUMNS
        rows = list(reader)
    assert [r["scheme"] for r in rows] == LABELS
    assert [r["routing"] for r in rows][-1] == SCHEMES[-1]
    assert json.loads((out / "compare.json").read_text())[1]["routing"] == "minhop"
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_traffic_and_rows_match_each_run(compared):
    out, _ = compared
    with open(out / "compare.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    originated = set()
    for row in rows:
        run = out / row["scheme"]
        summary = json.loads((run / "summary.json").read_text())
        packets = summary["packets"]
        options = summary["run"]["options"]
        assert (options["routing"], options["seed"]) == (row["routing"], 7)
        assert options["routing"].endswith(SCHEMES[LABELS.index(row["scheme"])])
        # The balance of every run: originated = delivered + dropped + held at the end.
        assert packets["originated"] == (
            packets["delivered"] + packets["dropped_total"] + packets["held_at_end"]
        )
        assert packets["unaccounted"] == 0
        # The row's counts come from this run (deliveries.csv read independently here).
        assert int(row["originated"]) == packets["originated"]
        assert int(row["delivered"]) == len(_deliveries(run)) == packets["delivered"]
        assert int(row["delivered"]) > 0
        originated.add(packets["originated"])
    # Same traffic file and seed for every scheme: the same packets were offered to each.
    assert len(originated) == 1


def test_each_scheme_decides_the_routes(compared):
    """The plug-in written here drops exactly what snapshot delivered to gs-beijing, and nothing
    else changes; minhop never takes more hops than snapshot (least delay) for the same packet
    (packets that crossed an epoch boundary in flight may differ: allow 1 %)."""
    out, _ = compared
    snap = _deliveries(out / "snapshot")
    minhop = _deliveries(out / "minhop")
    cut = _deliveries(out / "no_beijing-NoBeijing")
    to_beijing = {k for k, r in snap.items() if r["dst_name"] == "gs-beijing"}
    assert len(to_beijing) > 50
    assert cut.keys() == snap.keys() - to_beijing
    assert all(cut[k]["path"] == snap[k]["path"] for k in cut)
    rows = {r["scheme"]: r for r in csv.DictReader(open(out / "compare.csv", newline=""))}
    assert int(rows["no_beijing-NoBeijing"]["dropped"]) == int(rows["snapshot"]["dropped"]) + len(
        to_beijing
    )
    common = snap.keys() & minhop.keys()
    assert len(common) > 100
    more_hops = sum(int(minhop[k]["hops"]) > int(snap[k]["hops"]) for k in common)
    assert more_hops <= 0.01 * len(common), f"{more_hops} of {len(common)} longer under minhop"


def test_bad_schemes_fail_before_any_run(tmp_path):
    dup = _netemu(
        "compare", str(DEMO), "--routing", "minhop", "--routing", "minhop",
        "--out", str(tmp_path / "a"), cwd=REPO,
    )  # fmt: skip
    assert dup.returncode == 2 and "routing schemes given twice: minhop" in dup.stderr
    bad = _netemu(
        "compare", str(DEMO), "--routing", "snapshot", "--routing", "nope:X",
        "--out", str(tmp_path / "b"), cwd=REPO,
    )  # fmt: skip
    assert bad.returncode == 2 and "routing scheme 'nope:X'" in bad.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
