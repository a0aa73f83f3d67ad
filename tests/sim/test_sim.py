"""Virtual-time simulation (netemu simulate): determinism, balance, deliveries, the lazy
forwarding tables and the control-plane byte count against the controller's own encoding."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from netemu.control.controller import EpochComputer
from netemu.control.mqtt import encode_json
from netemu.routing.tables import ForwardingTable
from netemu.scenario import load_scenario
from netemu.sim import simulate
from netemu.sim.tables import EpochMatrices, MatrixTable, table_payload_bytes
from support import REPO

DEMO = REPO / "topologies" / "demo-small.yaml"

# Poisson flows (the seed decides the send times) in both directions, and a satellite source.
TRAFFIC = """\
defaults: {pattern: poisson, rate_pps: 20, size_bytes: 300, start_s: 0.5, stop_s: 7}
flows:
  - {src: madrid, dst: beijing}
  - {src: beijing, dst: madrid}
  - {src: new-york, dst: svalbard, pattern: constant, rate_pps: 50}
  - {src: iridium-p02-s03, dst: madrid}
"""


def _events(out: Path) -> list[dict]:
    rows = []
    for path in sorted((out / "run" / "events").glob("*.csv")):
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def _run(tmp_path: Path, name: str, *, seed: int = 0, capture: bool = True) -> dict:
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text(TRAFFIC)
    return simulate(
        DEMO,
        duration_s=8,
        routing="snapshot",
        traffic=str(traffic),
        out=tmp_path / name,
        capture=capture,
        seed=seed,
        progress=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs of demo-small (8 s): seed 0 twice, seed 1 once (about 15 s in all)."""
    tmp = tmp_path_factory.mktemp("sim")
    return tmp, {name: _run(tmp, name, seed=seed) for name, seed in (("a", 0), ("b", 0), ("c", 1))}


def test_same_seed_gives_byte_identical_summary_and_captures(runs):
    tmp, summaries = runs
    a, b = tmp / "a", tmp / "b"
    assert (a / "summary.json").read_bytes() == (b / "summary.json").read_bytes()
    assert json.loads((a / "summary.json").read_text()) == summaries["a"]
    assert (a / "deliveries.csv").read_bytes() == (b / "deliveries.csv").read_bytes()
    caps_a = sorted(p.relative_to(a) for p in (a / "captures").rglob("*.pcapng"))
    caps_b = sorted(p.relative_to(b) for p in (b / "captures").rglob("*.pcapng"))
    assert caps_a == caps_b and len(caps_a) > 10
    for rel in caps_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    # the wall-clock figures are kept out of the summary
    assert "timing" not in summaries["a"] and "compute_s" not in summaries["a"]["routes"]
    wall = json.loads((a / "run" / "sim.json").read_text())
    assert wall["speedup"] > 0 and wall["events"] > 0 and wall["peak_rss_mib"] > 0


def test_another_seed_changes_poisson_send_times_and_loss_draws(runs):
    tmp, summaries = runs

    def sent(name):
        return sorted(
            (r["flow_id"], r["seq"], r["t_ns"])
            for r in _events(tmp / name)
            if r["event"] == "originated" and r["flow_id"] in ("1", "2")
        )

    assert sent("a") == sent("b")
    assert sent("a") != sent("c")
    # the constant flow sends at the same instants whatever the seed
    const = [
        sorted(
            (r["seq"], r["t_ns"])
            for r in _events(tmp / n)
            if r["event"] == "originated" and r["flow_id"] == "3"
        )  # fmt: skip
        for n in ("a", "c")
    ]
    assert const[0] == const[1] and len(const[0]) > 100
    cap = "captures/all.pcapng"
    assert (tmp / "a" / cap).read_bytes() != (tmp / "c" / cap).read_bytes()


def test_balance_holds_and_packets_are_delivered(runs):
    tmp, summaries = runs
    for name, s in summaries.items():
        assert s["balance"]["ok"], (name, s["balance"])
        p = s["packets"]
        assert p["originated"] > 300 and p["delivered"] > 0.8 * p["originated"], p
        assert p["unaccounted"] == 0
        f = s["frames"]
        assert f["sent"] == f["delivered"] + f["dropped_total"] + f["in_flight_at_end"]
        assert s["fidelity"]["early"] == 0 and s["fidelity"]["delay_error_max_s"] == 0.0
        assert s["run"]["options"]["mode"] == "simulate"
        control = s["routes"]["control"]
        assert control["link_tables"] == s["routes"]["epochs"] == 8
        assert control["table_updates"] >= 71 and control["table_bytes"] > 0
        assert s["routes"]["table_updates"] == control["table_updates"]  # from epochs.csv
        assert s["routes"]["table_bytes"] == control["table_bytes"]
    # every delivered data packet took a path as long as its geometry allows, never shorter
    with open(tmp / "a" / "deliveries.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["msg_type"] == "DATA"]
    assert len(rows) == summaries["a"]["packets"]["delivered"]
    excess = np.array([float(r["excess_s"]) for r in rows if r["excess_s"] not in ("", "nan")])
    assert excess.size > 0.9 * len(rows)
    assert excess.min() > -1e-6  # never faster than light along the links of the path


def test_matrix_tables_answer_like_the_published_tables():
    """Every lookup on the lazy view equals the lookup on the parsed payload, and the byte
    count equals the encoded payloads, over epochs with route changes."""
    scenario = load_scenario(DEMO)
    computer = EpochComputer(scenario, scheme="snapshot", epoch_ns=10**9, duration_ns=6 * 10**9)
    matrices = EpochMatrices(computer.numbers)
    numbers = computer.numbers.tolist()
    checked = 0
    for k in range(6):
        result = computer.compute(k)
        last = computer.last_epoch
        matrices.update(last)
        assert set(result.published) == set(result.tables)
        encoded = sum(len(encode_json(p)) for p in result.tables.values())
        assert table_payload_bytes(computer, last) == encoded
        for number, payload in result.tables.items():
            real = ForwardingTable.from_dict(payload["table"])
            lazy = MatrixTable(number, numbers.index(number), matrices)
            for dst in [*numbers, 99999]:
                for now in (k * 10**9, computer.until_replaced_ns):
                    assert lazy.lookup(dst, now) == real.lookup(dst, now), (k, number, dst)
                    checked += 1
    assert checked > 71 * 71


def test_cli_prints_where_the_outputs_are(tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "netemu", "simulate", str(DEMO), "--duration", "4s",
         "--routing", "snapshot", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert str(out / "summary.json") in proc.stdout
    assert "real time" in proc.stdout
    assert json.loads((out / "summary.json").read_text())["balance"]["ok"]
    bad = subprocess.run(
        [sys.executable, "-m", "netemu", "simulate", str(DEMO), "--routing", "nope:Nope"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "error" in bad.stderr


def test_route_worker_process_gives_the_same_results(runs, tmp_path):
    """Routes computed one epoch ahead in a second process: the same summary and captures."""
    base, _ = runs
    traffic = base / "traffic.yaml"  # the same options as the reference run, to the letter
    out = tmp_path / "a"
    summary = simulate(DEMO, duration_s=8, routing="snapshot", traffic=str(traffic), out=out,
                       capture=True, seed=0, progress=False, route_worker=True)  # fmt: skip
    assert (out / "summary.json").read_bytes() != b""
    ref = json.loads((base / "a" / "summary.json").read_text())
    assert summary == ref
    cap = "captures/all.pcapng"
    assert (out / cap).read_bytes() == (base / "a" / cap).read_bytes()
    wall = json.loads((out / "run" / "sim.json").read_text())
    assert wall["route_worker"] is True and wall["children_peak_rss_mib"] > 0


def test_ctrl_c_stops_between_events_and_keeps_the_results(tmp_path):
    """SIGINT to a running ``netemu simulate``: the loop stops at the current instant, the
    results are written with the balance intact, exit status 130 (about 10 s)."""
    out = tmp_path / "intr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "netemu", "simulate", str(DEMO), "--duration", "1h",
         "--routing", "snapshot", "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        epochs = out / "run" / "epochs.csv"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if epochs.exists() and len(epochs.read_text().splitlines()) > 30:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()  # the process we started
            proc.wait()
    assert proc.returncode == 130, output
    summary = json.loads((out / "summary.json").read_text())
    run = summary["run"]["options"]["run"]
    assert run["stop_reason"] == "interrupted" and run["state"] == "interrupted"
    assert 30 <= run["epochs"] < 3600 and run["t_end_ns"] < 3600 * 10**9
    assert summary["balance"]["ok"], summary["balance"]


def test_a_script_without_main_guard_can_use_the_route_worker(tmp_path):
    """The worker is forked: a plain script (no ``if __name__ == "__main__"``) works."""
    script = tmp_path / "plain.py"
    script.write_text(
        "from netemu.sim import simulate\n"
        f"s = simulate({str(DEMO)!r}, duration_s=2, routing='snapshot', traffic='none',\n"
        f"             out={str(tmp_path / 'o')!r}, progress=False, route_worker=True)\n"
        "print('balance', s['balance']['ok'])\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "balance True" in proc.stdout
