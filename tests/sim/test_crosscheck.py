"""The same small scenario under ``netemu run`` (real processes, broker, UDP, real time) and
``netemu simulate`` (one process, virtual time): same epochs, same routes, same delivered
packets, latencies equal up to the live run's per-hop host cost.

Scenario tests/sim/data/tiny.yaml (24 satellites, 3 stations, no loss), 12 s, snapshot
routing, the ground-to-ground preset (3 flows x 10 packets/s). About 25 s of real time for the
live run and 5 s for the simulation.

Tolerance, and why: the live run's latency is the simulated one plus what the node processes
add at every hop (waking up, decoding, forwarding, sending: docs/runtime.md "Fidelity" measured
0.3 ms minimum and about 0.5 ms median per hop on an idle 2-vCPU machine, more when loaded) and
the fabric's delay error (p99 about 0.2 ms). So: never earlier than the simulation (10 us of
slack for the geometry moving during the live run's sub-millisecond send offset), and a median
excess per hop of at most 3 ms (0.7 ms measured with a load average of 13 on 2 vCPUs; a bound
of 1.5 ms failed once at a load average of 24). The maximum is not bounded: a loaded machine
can stall a node process for tens of milliseconds. Routes are compared exactly, separately.
"""

from __future__ import annotations

import csv
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from netemu.sim import simulate
from support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY = REPO / "tests" / "sim" / "data" / "tiny.yaml"
DURATION_S = 12
PER_HOP_MEDIAN_S = 3e-3
NEVER_EARLY_SLACK_S = 10e-6


def _live_run(tmp_path: Path) -> Path:
    out = tmp_path / "live"
    log = open(tmp_path / "live.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", str(TINY), "--duration", f"{DURATION_S}s",
         "--routing", "snapshot", "--no-progress", "--out", str(out)],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
    )  # fmt: skip
    log.close()
    try:
        proc.wait(timeout=150)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the launcher we started; its children follow
            proc.wait()
    assert proc.returncode == 0, (tmp_path / "live.log").read_text(errors="replace")[-3000:]
    return out


def _deliveries(out: Path) -> dict:
    with open(out / "deliveries.csv") as f:
        return {
            (int(r["flow_id"]), int(r["seq"])): r
            for r in csv.DictReader(f)
            if r["msg_type"] == "DATA"
        }


def _epochs(out: Path) -> list[tuple]:
    keys = ("epoch", "t_ns", "links_up", "links_total", "routes", "route_changes",
            "tables_published", "nodes_alive")  # fmt: skip
    with open(out / "run" / "epochs.csv") as f:
        return [tuple(r[k] for k in keys) for r in csv.DictReader(f)]


def test_run_and_simulate_agree(tmp_path):
    live = _live_run(tmp_path)
    sim_out = tmp_path / "sim"
    summary = simulate(TINY, duration_s=DURATION_S, routing="snapshot", out=sim_out,
                       progress=False)  # fmt: skip

    # the controller computed the same epochs: links, routes, changes, tables published
    epochs = _epochs(sim_out)
    assert _epochs(live) == epochs and len(epochs) == DURATION_S

    real, sim = _deliveries(live), _deliveries(sim_out)
    assert summary["packets"]["originated"] > 200
    # no loss in this scenario: both modes deliver every packet, the same set
    assert set(real) == set(sim)
    assert len(sim) == summary["packets"]["originated"]

    # same route for every packet, except (allowed, counted) a packet in flight across an
    # epoch boundary where routes changed
    changed_at = [int(e[1]) for e in epochs if int(e[5]) > 0]

    def straddles(r):
        t0, t1 = int(r["t_sent_ns"]), int(r["t_delivered_ns"])
        return any(t0 < t <= t1 for t in changed_at)

    differ = [k for k in sim if sim[k]["path"] != real[k]["path"]]
    assert all(straddles(sim[k]) or straddles(real[k]) for k in differ), differ
    assert len(differ) <= 0.02 * len(sim)

    excess_per_hop = []
    for k, s in sim.items():
        r = real[k]
        extra = float(r["latency_s"]) - float(s["latency_s"])
        assert extra >= -NEVER_EARLY_SLACK_S, (k, r["latency_s"], s["latency_s"])
        if s["path"] == r["path"]:
            excess_per_hop.append(extra / int(s["hops"]))
    median = statistics.median(excess_per_hop)
    assert median <= PER_HOP_MEDIAN_S, f"median excess {median * 1e3:.2f} ms per hop"
    assert summary["balance"]["ok"]
