"""Fault injection in a live emulation (issue 6): one real run of a 13-node scenario (embedded
broker, fabric and node processes, real UDP) with a fault schedule plus faults issued with
``netemu fault`` while it runs. Every fault type is checked by its effect on delivery, from
the event logs the processes wrote:

* link cut: frames stop crossing the link at once, the flow that used it goes on around it
  from the next computed epoch; restore: the link carries the flow again;
* link loss 0.3: drops with reason ``loss`` on that link, about 30 % of its frames, none
  before or after;
* node kill: ``node-down`` drops, then the flow goes around the node; node restart: the node
  is back, gets its tables and receives its flow again; its event log continues;
* partition: nothing is delivered across, delivery inside goes on; heal: across again;
* broker restart (CLI): the run goes on, every node reconnects, and a link cut issued after
  it (CLI) still changes the nodes' routes;
* the packet and frame balances hold.

About 65-75 s of real time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netemu.results.events import read_event_files
from support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RING = REPO / "tests" / "runtime" / "data" / "faults-ring.yaml"
S = 1_000_000_000
DURATION_S = 56
STOP_S = 54  # the flows stop

SCHEDULE = """\
faults:
  - {at_s: 4, fault: link-cut, a: ring-p01-s01, b: ring-p01-s02}
  - {at_s: 10, fault: link-restore, a: ring-p01-s01, b: ring-p01-s02}
  - {at_s: 14, fault: link-loss, a: 2, b: 3, loss: 0.3}
  - {at_s: 18, fault: link-loss, a: 2, b: 3, loss: 0}
  - {at_s: 20, fault: node-kill, node: ring-p01-s04}
  - {at_s: 25, fault: node-restart, node: ring-p01-s04}
  - {at_s: 36, fault: partition, name: plane2, nodes: ["ring-p02-*"]}
  - {at_s: 41, fault: partition-heal, name: plane2}
"""
# Satellites 1-6 form plane 1's ring, 7-12 plane 2's; rungs 2-8, 3-9, 5-11, 6-12.
TRAFFIC = """\
defaults: {rate_pps: 10, size_bytes: 200, start_s: 1, stop_s: 54}
flows:
  - {name: f1, src: 1, dst: 3}
  - {name: f2, src: 3, dst: 5}
  - {name: f3, src: 9, dst: 4}
  - {name: f4, src: 7, dst: 9}
  - {name: f5, src: 1, dst: 10}
"""


def _netemu(*args: str, cwd: Path, timeout_s: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netemu", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _faults(out: Path) -> list[dict]:
    path = out / "run" / "faults.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_fault(out: Path, pred, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for rec in _faults(out):
            if pred(rec):
                return rec
        time.sleep(0.2)
    raise AssertionError(f"fault not logged within {timeout_s} s: {_faults(out)}")


def _path(row) -> list[int]:
    hops = [int(p.partition("@")[0]) for p in (row["route"] or "").split(";") if p]
    if not hops or hops[0] != row["src"]:
        hops.insert(0, row["src"])
    if hops[-1] != row["dst"]:
        hops.append(row["dst"])
    return hops


def _crosses(path: list[int], a: int, b: int) -> bool:
    return any({x, y} == {a, b} for x, y in zip(path, path[1:], strict=False))


@pytest.fixture(scope="module")
def faulted_run(tmp_path_factory):
    """Run the scenario with the schedule; issue CLI faults while it runs."""
    tmp = tmp_path_factory.mktemp("faults")
    (tmp / "faults.yaml").write_text(SCHEDULE)
    (tmp / "traffic.yaml").write_text(TRAFFIC)
    out = tmp / "out"
    log = open(tmp / "launcher.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", str(RING), "--no-progress",
         "--duration", str(DURATION_S), "--epoch", "1", "--traffic", "traffic.yaml",
         "--faults", "faults.yaml", "--out", "out", "--broker", "amqtt"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True,
    )  # fmt: skip
    log.close()
    cli: dict = {}
    try:
        _wait_fault(out, lambda r: r["kind"] == "partition-heal")
        cli["refused"] = _netemu("fault", "--out", "out", "node-kill", "nowhere", cwd=tmp)
        cli["broker"] = _netemu("fault", "--out", "out", "broker-restart", cwd=tmp)
        _wait_fault(out, lambda r: r["kind"] == "broker-restart")
        cli["cut"] = _netemu("fault", "--out", "out", "link-cut", "2", "3", "--json", cwd=tmp)
        proc.wait(timeout=DURATION_S + 60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the launcher we started; children follow
            proc.wait()
    text = (tmp / "launcher.log").read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    table = read_event_files(sorted((out / "run" / "events").glob("*.csv")))
    rows = []
    for i in range(len(table)):
        rows.append(
            {
                k: table.column(k)[i]
                for k in (
                    "t_ns",
                    "where",
                    "src",
                    "dst",
                    "tx",
                    "rx",
                    "flow_id",
                    "reason",
                    "route",
                    "msg_type",
                )
            }
        )
        rows[-1]["event"] = int(table.event[i])
    return {"out": out, "summary": summary, "rows": rows, "cli": cli, "faults": _faults(out)}


def _fault(run, kind: str, **match) -> dict:
    for rec in run["faults"]:
        if rec["kind"] == kind and rec.get("ok") and all(rec.get(k) == v for k, v in match.items()):
            return rec
    raise AssertionError(f"no {kind} {match} in {run['faults']}")


def _delivered(run, flow: int, t0_s: float, t1_s: float) -> list[dict]:
    return [
        r for r in run["rows"]
        if r["event"] == 1 and r["flow_id"] == flow and t0_s * S <= r["t_ns"] < t1_s * S
    ]  # fmt: skip


def _fabric_drops(run, a: int, b: int, t0_s: float, t1_s: float) -> list[dict]:
    return [
        r for r in run["rows"]
        if r["event"] == 2 and r["where"] == 0 and {r["tx"], r["rx"]} == {a, b}
        and t0_s * S <= r["t_ns"] < t1_s * S
    ]  # fmt: skip


def test_balance_and_fault_log(faulted_run):
    s = faulted_run["summary"]
    assert s["balance"]["ok"], s["balance"]
    assert s["packets"]["unaccounted"] == 0
    kinds = [(f["kind"], f["issued_by"], f["ok"]) for f in s["faults"]]
    assert ("link-cut", "schedule", True) in kinds
    assert ("broker-restart", "cli", True) in kinds
    assert ("link-cut", "cli", True) in kinds
    assert ("node-kill", "cli", False) in kinds  # the refused one is logged too
    for f in s["faults"]:
        if f["ok"]:
            assert "effect" in f and f["effect"]["until_t_ns"] >= f["t_ns"]
    cli = faulted_run["cli"]
    assert cli["refused"].returncode == 1 and "no node 'nowhere'" in cli["refused"].stdout
    assert cli["broker"].returncode == 0 and "restarting" in cli["broker"].stdout


def test_link_cut_and_restore(faulted_run):
    cut = _fault(faulted_run, "link-cut", issued_by="schedule")
    restore = _fault(faulted_run, "link-restore")
    t_cut, t_fabric = cut["t_ns"] / S, cut["fabric_from_t_ns"] / S
    t_routes = cut["routes_from_t_ns"] / S
    assert t_routes - t_cut <= 2.0  # routes change at most two epochs later
    before = _delivered(faulted_run, 1, 1.5, t_cut)
    assert before and all(_crosses(_path(r), 1, 2) for r in before)
    # nothing crosses 1-2 once the fabric has the cut (frames then in flight are dropped)
    late = [r for r in _delivered(faulted_run, 1, t_fabric + 0.05, restore["t_ns"] / S)]
    assert not [r for r in late if _crosses(_path(r), 1, 2)]
    for d in _fabric_drops(faulted_run, 1, 2, t_cut, restore["t_ns"] / S):
        assert d["reason"] in ("link-down", "link-down-in-flight"), d
    # the flow goes around from the routes' epoch: about 10 packets a second
    around = _delivered(faulted_run, 1, t_routes + 0.5, restore["t_ns"] / S)
    expected = 10 * (restore["t_ns"] / S - t_routes - 0.5)
    assert len(around) >= 0.8 * expected, (len(around), expected)
    # restored: the link carries the flow again from the next routes' epoch
    t_back = restore["routes_from_t_ns"] / S + 0.5
    again = _delivered(faulted_run, 1, t_back, 14)
    assert again and all(_crosses(_path(r), 1, 2) for r in again)
    effect = next(f for f in faulted_run["summary"]["faults"] if f["t_ns"] == cut["t_ns"])
    assert effect["effect"]["deliveries_crossing_before"] > 0


def test_link_loss(faulted_run):
    on = _fault(faulted_run, "link-loss", loss=0.3)
    off = _fault(faulted_run, "link-loss", loss=0.0)
    t_on, t_off = on["fabric_from_t_ns"] / S, off["fabric_from_t_ns"] / S
    lost = [d for d in _fabric_drops(faulted_run, 2, 3, t_on, t_off) if d["reason"] == "loss"]
    crossed = [r for r in run_rows_delivered(faulted_run, t_on, t_off) if _crosses(_path(r), 2, 3)]
    ratio = len(lost) / max(1, len(lost) + len(crossed))
    assert 0.15 <= ratio <= 0.45, (len(lost), len(crossed))
    # no loss on that link outside the fault (the scenario's budget loses nothing)
    outside = _fabric_drops(faulted_run, 2, 3, 0, t_on) + _fabric_drops(
        faulted_run, 2, 3, t_off + 0.05, DURATION_S
    )
    assert not [d for d in outside if d["reason"] == "loss"]
    effect = next(f for f in faulted_run["summary"]["faults"] if f["t_ns"] == on["t_ns"])
    assert effect["effect"]["drops"].get("loss", 0) >= len(lost) - 2


def run_rows_delivered(run, t0_s: float, t1_s: float) -> list[dict]:
    return [
        r for r in run["rows"]
        if r["event"] == 1 and r["msg_type"] == "DATA" and t0_s * S <= r["t_ns"] < t1_s * S
    ]  # fmt: skip


def test_node_kill_and_restart(faulted_run):
    kill = _fault(faulted_run, "node-kill", node=4)
    restart = _fault(faulted_run, "node-restart", node=4)
    assert restart["pid"] != kill["killed_pid"]
    t_kill, t_restart = kill["t_ns"] / S, restart["t_ns"] / S
    # frames to the dead node are dropped node-down, then flow 2 (3 -> 5) goes around it
    down = [
        r for r in faulted_run["rows"]
        if r["event"] == 2 and r["where"] == 0 and r["rx"] == 4 and r["reason"] == "node-down"
        and t_kill <= r["t_ns"] / S < t_restart
    ]  # fmt: skip
    assert down
    around = _delivered(faulted_run, 2, kill["routes_from_t_ns"] / S + 0.5, t_restart)
    assert len(around) >= 0.8 * 10 * (t_restart - kill["routes_from_t_ns"] / S - 0.5)
    assert not [r for r in around if 4 in _path(r)]
    # nothing reaches node 4 while it is dead; after the restart it receives flow 3 again
    dead = [r for r in _delivered(faulted_run, 3, t_kill + 0.05, t_restart) if r["where"] == 4]
    assert not dead
    liveness = (faulted_run["out"] / "run" / "liveness.csv").read_text().splitlines()
    rows = [line.split(",") for line in liveness[1:]]
    states = [(int(r[0]) / S, r[3]) for r in rows if r[1] == "4"]
    assert [s for _, s in states[:2]] == ["offline", "online"]
    t_online = states[1][0]
    # a Python process takes a few seconds to start on a loaded 2-core machine
    assert t_online - t_restart < 10, states
    # back in the routes from the epoch after the next one
    t_back = t_online + 2.5
    part = _fault(faulted_run, "partition")["t_ns"] / S
    back = _delivered(faulted_run, 3, t_back, part)
    assert len(back) >= 0.6 * 10 * (part - t_back), (len(back), t_back, part)
    # its event log continues across both processes
    rows4 = [r for r in faulted_run["rows"] if r["where"] == 4 and r["event"] == 1]
    assert any(r["t_ns"] < t_kill * S for r in rows4)
    assert any(r["t_ns"] > t_restart * S for r in rows4)
    assert faulted_run["summary"]["packets"]["unaccounted"] == 0


def test_partition(faulted_run):
    part = _fault(faulted_run, "partition", name="plane2")
    heal = _fault(faulted_run, "partition-heal")
    assert part["members"] == list(range(7, 13))
    t0, t1 = part["fabric_from_t_ns"] / S + 0.05, heal["t_ns"] / S
    across = [
        r for r in run_rows_delivered(faulted_run, t0, t1)
        if (r["src"] in part["members"]) != (r["dst"] in part["members"])
    ]  # fmt: skip
    assert not across
    inside = _delivered(faulted_run, 4, part["routes_from_t_ns"] / S + 0.5, t1)
    assert len(inside) >= 0.8 * 10 * (t1 - part["routes_from_t_ns"] / S - 0.5)
    # healed: flow 5 (1 -> 10) crosses again
    assert _delivered(faulted_run, 5, heal["routes_from_t_ns"] / S + 0.5, STOP_S)


def test_broker_restart_and_a_route_change_after_it(faulted_run):
    rec = _fault(faulted_run, "broker-restart")
    assert rec["issued_by"] == "cli"
    assert rec["pid"] != rec["old_pid"]
    assert rec.get("controller_reconnected_t_ns"), rec
    t_up = rec["broker_up_t_ns"] / S
    # the data plane went on while the broker was away
    assert _delivered(faulted_run, 4, rec["stopped_t_ns"] / S, t_up)
    # every node process reconnected
    final = faulted_run["out"] / "run" / "final"
    for path in final.glob("[0-9]*.json"):
        host = json.loads(path.read_text())["host"]
        assert host.get("mqtt_reconnects", 0) >= 1, (path.name, host)
    # a link cut issued after the restart (through the new broker) reaches the nodes' tables
    cli = faulted_run["cli"]["cut"]
    assert cli.returncode == 0, cli.stdout + cli.stderr
    cut = _fault(faulted_run, "link-cut", issued_by="cli")
    assert cut["t_ns"] > rec["broker_up_t_ns"]
    t_routes = cut["routes_from_t_ns"] / S + 0.5
    assert t_routes < STOP_S - 2, "the CLI cut came too late to be checked"
    around = _delivered(faulted_run, 1, t_routes, STOP_S)
    assert len(around) >= 0.8 * 10 * (STOP_S - t_routes)
    assert not [r for r in around if _crosses(_path(r), 2, 3)]
