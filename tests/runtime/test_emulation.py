"""End-to-end emulations (issue 5): real broker, fabric and 71 node processes, real UDP, real
tshark, on the Iridium-like demo scenario (66 satellites, 5 ground stations).

These are the acceptance tests of `netemu run`; each takes 30-90 s of real time.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from netemu.runtime.launcher import child_alive
from netemu.runtime.wire import decode_app, encode_app
from support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO = REPO / "topologies" / "demo-small.yaml"


def _launch(tmp_path: Path, *args: str) -> subprocess.Popen:
    log = open(tmp_path / "launcher.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", str(DEMO), "--no-progress", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    log.close()
    return proc


def _finish(proc: subprocess.Popen, tmp_path: Path, timeout_s: float) -> str:
    try:
        proc.wait(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the launcher we started; its children follow
            proc.wait()
    return (tmp_path / "launcher.log").read_text(errors="replace")


def _run_json(out: Path, *, state: str | None = None, timeout_s: float = 90.0) -> dict:
    """run.json once every node reported its application port (and ``state`` if given)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            run = json.loads((out / "run" / "run.json").read_text())
        except (OSError, ValueError):
            run = None
        if run and all(n.get("app_port") for n in run.get("nodes", {}).values()):
            if state is None or run.get("state") == state:
                return run
        time.sleep(0.2)
    raise AssertionError(f"run.json not complete after {timeout_s} s")


def _all_pids(run: dict) -> list[int]:
    pids = [p for k, p in run["pids"].items() if k != "launcher" and p]
    return pids + [n["pid"] for n in run["nodes"].values() if n.get("pid")]


def _deliveries(out: Path) -> list[dict]:
    with open(out / "deliveries.csv") as f:
        return [r for r in csv.DictReader(f) if r["msg_type"] == "DATA"]


def _tshark_sgp_frames(capture: Path) -> tuple[int, int]:
    """(frames in the capture, frames our dissector decoded as SGP and not malformed)."""
    from netemu.protocol.wireshark import dissector_path

    cmd = ["tshark", "-r", str(capture), "-X", f"lua_script:{dissector_path()}", "-T", "fields"]
    total = subprocess.run(
        [*cmd, "-e", "frame.number"], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    good = subprocess.run(
        [*cmd, "-Y", "sgp && !_ws.malformed", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return len(total), len(good)


def test_iridium_demo_60s_embedded_broker_with_capture(tmp_path):
    """60 s real time, embedded broker: delivery, delay fidelity, route changes, balance, tshark."""
    if shutil.which("tshark") is None:  # checked first: the run takes a minute
        pytest.fail("tshark is not installed: `bash .ci/setup` installs it")
    out = tmp_path / "out"
    proc = _launch(tmp_path, "--duration", "60s", "--out", str(out), "--capture", "--seed", "1")
    log = _finish(proc, tmp_path, timeout_s=240)
    assert proc.returncode == 0, log[-3000:]
    run = json.loads((out / "run" / "run.json").read_text())
    assert run["state"] == "finished" and run["options"]["broker"] == "amqtt"
    assert not [pid for pid in _all_pids(run) if child_alive(pid)], "processes left behind"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["balance"]["ok"], summary["balance"]
    packets = summary["packets"]
    assert packets["delivered"] > 0 and packets["unaccounted"] == 0
    frames = summary["frames"]
    assert frames["sent"] == (
        frames["delivered"] + sum(frames["dropped"].values()) + frames["in_flight_at_end"]
    )
    # Routes change across epochs (epoch 0 installs the first tables and counts no change).
    assert summary["routes"]["total_changes"] > 0

    # Measured end-to-end delay against the geometric path delay of the path the packet took
    # (RECORD_ROUTE hops and times, ranges from the scenario geometry; the results module's path
    # delay is checked against skyfield in tests/results). Never early; the excess is the
    # per-hop cost of the host (wake-up and Python forwarding, about 0.3-0.6 ms a hop on this
    # 2-vCPU machine), so the bound is per hop: see docs/runtime.md "Fidelity". The median is
    # bounded, not a high percentile: on a loaded CI machine 7 % of packets once took more than
    # 1 ms a hop (CI run of the issue-5 submission), while the median stays well inside.
    rows = _deliveries(out)
    assert rows
    excess_s = [float(r["excess_s"]) for r in rows]
    hops = [int(r["hops"]) for r in rows]
    assert min(excess_s) >= 0.0, "a packet arrived before light could have carried it"
    per_hop_s = sorted(e / max(h, 1) for e, h in zip(excess_s, hops, strict=True))
    median_per_hop_s = per_hop_s[len(per_hop_s) // 2]
    assert median_per_hop_s <= 1e-3, (median_per_hop_s, per_hop_s[-10:])
    fidelity = summary["fidelity"]
    assert fidelity["early"] == 0 and fidelity["count"] == frames["delivered"]

    # The capture: every frame on every link, decoded by tshark with our Lua dissector.
    merged = out / "captures" / "all.pcapng"
    total, good = _tshark_sgp_frames(merged)
    assert total > 0 and good == total, (total, good)
    assert list((out / "captures" / "links").glob("*.pcapng"))
    assert (out / "latency.png").stat().st_size > 10_000
    assert (out / "topology.png").stat().st_size > 10_000


def _app_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.5)
    return s


def test_mosquitto_broker_and_application_interface(tmp_path, mosquitto_broker):
    """External mosquitto; a plain UDP socket sends through one ground station to another."""
    out = tmp_path / "out"
    proc = _launch(
        tmp_path,
        *("--duration", "30s", "--out", str(out), "--routing", "snapshot"),
        *("--broker", mosquitto_broker.url, "--traffic", "none"),
    )
    try:
        run = _run_json(out, state="running")
        assert run["broker_url"] == mosquitto_broker.url
        nodes = run["nodes"]
        # Madrid and Beijing both see a satellite early in this scenario (netemu links at 00:00:30)
        src, dst = nodes["gs-madrid"], nodes["gs-beijing"]
        sender, receiver = _app_socket(), _app_socket()
        receiver.sendto(b"", ("127.0.0.1", dst["app_port"]))  # register for deliveries
        payload = b"hello from a plain socket"
        got = None
        deadline = time.monotonic() + 20
        while got is None and time.monotonic() < deadline:
            sender.sendto(encode_app(dst["number"], payload), ("127.0.0.1", src["app_port"]))
            try:
                got = decode_app(receiver.recv(70_000))
            except TimeoutError:
                continue
        sender.close()
        receiver.close()
        assert got is not None, "nothing arrived at the destination's application port"
        peer, payload_type, _flags, data = got
        assert (peer, payload_type, data) == (src["number"], 1, payload)
    finally:
        log = _finish(proc, tmp_path, timeout_s=120)
    assert proc.returncode == 0, log[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["balance"]["ok"], summary["balance"]
    assert summary["packets"]["delivered"] >= 1
    assert mosquitto_broker.proc.poll() is None  # the run used it and left it running


def _busiest_relay(out: Path, numbers: dict[int, str]) -> int:
    """The satellite most often in the middle of delivered packets' recorded routes.

    Not the first or last satellite of a path: a ground station that sees only one satellite
    is cut off when that one dies, and then there is nothing to route around.
    """
    seen: Counter[int] = Counter()
    for path in (out / "run" / "events").glob("100*.csv"):
        with open(path) as f:
            for row in csv.DictReader(f):
                if row["event"] == "delivered" and row["msg_type"] == "DATA" and row["route"]:
                    satellites = [int(h.split("@")[0]) for h in row["route"].split(";")[1:]]
                    seen.update(satellites[1:-1])
    assert seen, "no delivered packet with a recorded route yet"
    return seen.most_common(1)[0][0]


def test_killed_node_is_noticed_and_routed_around(tmp_path):
    """SIGKILL a relaying satellite mid-run: last will, excluded next epoch, run completes."""
    out = tmp_path / "out"
    proc = _launch(tmp_path, "--duration", "40s", "--out", str(out), "--routing", "snapshot")
    try:
        run = _run_json(out, state="running")
        time.sleep(10)
        numbers = {n["number"]: name for name, n in run["nodes"].items()}
        victim = _busiest_relay(out, numbers)
        victim_name = numbers[victim]
        os.kill(run["nodes"][victim_name]["pid"], signal.SIGKILL)  # a node this test's run started
        killed_at = time.monotonic()
    finally:
        log = _finish(proc, tmp_path, timeout_s=180)
    assert proc.returncode == 0, log[-3000:]

    with open(out / "run" / "liveness.csv") as f:
        offline = [r for r in csv.DictReader(f) if r["state"] == "offline"]
    assert [int(r["number"]) for r in offline] == [victim]
    died_ns = int(offline[0]["t_ns"])

    summary = json.loads((out / "summary.json").read_text())
    assert victim_name in summary["nodes"]["dead_at_end_names"]
    assert summary["balance"]["ok"], summary["balance"]
    # After the controller noticed (and two epochs of pipelining), delivered packets avoid it.
    after = [r for r in _deliveries(out) if int(r["t_delivered_ns"]) > died_ns + 3_000_000_000]
    assert after, "nothing delivered after the node died"
    assert not [r for r in after if victim_name in r["path"].split(">")]
    assert time.monotonic() - killed_at < 180
