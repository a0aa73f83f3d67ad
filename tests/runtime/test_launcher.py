"""Launcher: real runs (broker, fabric, node processes), run.json, and no child left behind after
the end, Ctrl-C (SIGINT) or the fabric dying."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netemu.runtime.launcher import child_alive, dtn_ns, run_emulation
from netemu.runtime.supervisor import ProcessSupervisor

REPO = Path(__file__).resolve().parents[2]

#: 8 satellites (Walker star 2 x 4) and 2 stations: 10 node processes, quick to start.
TINY = """
name: tiny
epoch: "2026-01-01T00:00:00Z"
constellations:
  - name: iridium
    walker: {type: star, planes: 2, sats_per_plane: 4, phasing: 1, altitude_km: 780,
             inclination_deg: 86.4, raan_spread_deg: 189.6, raan_offset_deg: 0}
    isl_terminals: 4
    ground_terminals: 1
ground_stations:
  - {name: svalbard, lat_deg: 78.23, lon_deg: 15.41, alt_m: 480, terminals: 2}
  - {name: madrid, lat_deg: 40.42, lon_deg: -3.70, alt_m: 660, terminals: 2}
links:
  isl: {pattern: plus-grid, max_range_km: 5000, latitude_limit_deg: 68, acquisition_s: 10,
        rate_bps: 1.0e9}
  ground: {min_elevation_deg: 25, acquisition_s: 20, rate_bps: 1.0e9}
"""


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _pids(run_json: dict) -> list[int]:
    pids = [v["pid"] for v in run_json["nodes"].values() if v.get("pid")]
    pids += [p for name, p in run_json["pids"].items() if name != "launcher"]
    return pids


def _wait_state(path: Path, state: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("state") == state:
            return data
        time.sleep(0.1)
    raise AssertionError(f"{path} never reached state {state!r}")


def test_dtn_ns():
    import datetime as dt

    assert dtn_ns(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == 0
    assert dtn_ns(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == (1_767_225_600 - 946_684_800) * 10**9


def test_supervisor_ends_children_by_pid(tmp_path):
    sup = ProcessSupervisor()
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    a = sup.start("a", [sys.executable, "-c", "import time; time.sleep(60)"])
    b = sup.start("b", [sys.executable, "-c", stubborn], log_path=tmp_path / "b.log")
    time.sleep(0.3)
    assert sup.poll_exited() == []
    t = time.monotonic()
    sup.end_all(grace_s=1.0)
    assert time.monotonic() - t < 5
    assert not child_alive(a.pid) and not child_alive(b.pid)
    assert b.describe_exit() == "was killed by SIGKILL"


@pytest.mark.integration
@pytest.mark.slow
def test_run_demo_small(tmp_path):
    out = tmp_path / "out"
    summary = run_emulation(
        REPO / "topologies" / "demo-small.yaml",
        duration_s=6,
        epoch_s=1,
        routing="snapshot",
        out=out,
        progress=False,
    )
    run = json.loads((out / "run" / "run.json").read_text())
    assert run["state"] == "finished"
    assert run["broker_url"].startswith("mqtt://127.0.0.1:")
    assert len(run["nodes"]) == 71
    assert all(isinstance(v["app_port"], int) and v["app_port"] > 0 for v in run["nodes"].values())
    assert run["nodes"]["gs-madrid"]["number"] == 1002
    assert not [p for p in _pids(run) if child_alive(p)]
    epochs = (out / "run" / "epochs.csv").read_text().splitlines()
    assert len(epochs) == 1 + 6
    assert (out / "summary.json").exists()
    assert summary["packets"]["originated"] > 0
    assert summary["packets"]["delivered"] > 0


def _launch(args: list[str], tmp_path: Path) -> subprocess.Popen:
    log = open(tmp_path / "launcher.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "netemu", "-v", "run", *args, "--no-progress"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # our signals go to the launcher only
    )


@pytest.mark.integration
def test_sigint_stops_every_child(tiny, tmp_path):
    out = tmp_path / "out"
    proc = _launch([str(tiny), "--duration", "120s", "--out", str(out), "--traffic", "none",
                    "--routing", "minhop"], tmp_path)  # fmt: skip
    try:
        running = _wait_state(out / "run" / "run.json", "running", 40)
        pids = _pids(running)
        assert len(pids) >= 11  # broker, fabric, 10 nodes
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (tmp_path / "launcher.log").read_text()
    assert rc == 130, log
    assert not [p for p in pids if child_alive(p)]
    final = json.loads((out / "run" / "run.json").read_text())
    assert final["state"] == "interrupted"
    assert (out / "summary.json").exists()


@pytest.mark.integration
def test_fabric_death_is_fatal_and_cleans_up(tiny, tmp_path):
    out = tmp_path / "out"
    proc = _launch([str(tiny), "--duration", "120s", "--out", str(out), "--traffic", "none",
                    "--routing", "snapshot"], tmp_path)  # fmt: skip
    try:
        running = _wait_state(out / "run" / "run.json", "running", 40)
        pids = _pids(running)
        os.kill(running["pids"]["fabric"], signal.SIGKILL)
        rc = proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (tmp_path / "launcher.log").read_text()
    assert rc == 2, log
    assert "fabric" in log.splitlines()[-1] and "SIGKILL" in log.splitlines()[-1]
    assert not [p for p in pids if child_alive(p)]
    assert json.loads((out / "run" / "run.json").read_text())["state"] == "failed"
