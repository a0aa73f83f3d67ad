"""Interoperability (issue 6): a second SGP implementation written only from the SPEC
(sgp_min_node.py, no netemu import) joins a real run as ground station ``gs-west`` with
``netemu run --external`` and exchanges ECHO and DATA with netemu's nodes over the fabric.

Real broker (embedded amqtt), fabric, seven netemu node processes, real UDP, real tshark; the
scenario (ring-two-stations.yaml) has gs-west and gs-east five links apart. The run is stopped
over MQTT once the exchanges are checked: about 25 s real time.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netemu.control.mqtt import BlockingClient
from netemu.control.topics import Topics
from netemu.runtime.launcher import child_alive
from netemu.runtime.wire import decode_app, encode_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HERE = Path(__file__).parent
SCENARIO = HERE / "ring-two-stations.yaml"
MIN_NODE = HERE / "sgp_min_node.py"
WEST, EAST, SAT_EAST = 1001, 1002, 4  # gs-west (external), gs-east, the satellite above gs-east
ECHO_REQUEST, ECHO_REPLY, DATA = 5, 6, 1


def _events(path: Path) -> list[dict]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.endswith("}")]


def _wait(what: str, predicate, timeout_s: float, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended (status {proc.returncode}) while waiting: {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _run_json(out: Path) -> dict | None:
    try:
        return json.loads((out / "run" / "run.json").read_text())
    except (OSError, ValueError):
        return None


class _Control:
    """The minimal node's control port (JSON over UDP)."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(3.0)
        self.port = port

    def __call__(self, **cmd) -> dict:
        self.sock.sendto(json.dumps(cmd).encode(), ("127.0.0.1", self.port))
        return json.loads(self.sock.recv(65535))


def _launch(tmp_path: Path, external: str, *extra: str) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "out"
    launcher_log = open(tmp_path / "launcher.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", str(SCENARIO), "--no-progress", "--out", str(out),
         "--traffic", "none", "--routing", "snapshot", "--external", external, *extra],
        stdout=launcher_log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
    )  # fmt: skip
    launcher_log.close()
    return proc, out


def _end(proc: subprocess.Popen) -> None:
    """The launcher we started, by PID: Ctrl-C (a clean stop), SIGKILL if it hangs; its children
    end with it (they are ended by PID by it, or die with it through PDEATHSIG)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def _min_node_command(tmp_path: Path) -> tuple[str, Path, Path]:
    ext_log, ctl_file = tmp_path / "west.jsonl", tmp_path / "west.port"
    command = shlex.join(
        [sys.executable, str(MIN_NODE), "--log", str(ext_log), "--control-file", str(ctl_file)]
    )
    return f"gs-west={command}", ext_log, ctl_file


def _wait_running(proc, out: Path, ext_log: Path, ctl_file: Path) -> dict:
    run = _wait(
        "run.json state running",
        lambda: (r := _run_json(out)) and r.get("state") == "running" and r,
        60,
        proc,
    )
    _wait("the external node's control port", ctl_file.exists, 10, proc)
    _wait(
        "a link up at the external node",
        lambda: any(e["event"] == "link" and e["up"] for e in _events(ext_log)),
        15,
        proc,
    )
    return run


@pytest.fixture
def external_run(tmp_path):
    """A running emulation with gs-west external; yields (proc, out, log of the external node,
    control, run.json). The launcher is ended by PID at the end whatever happened."""
    external, ext_log, ctl_file = _min_node_command(tmp_path)
    proc, out = _launch(tmp_path, external, "--duration", "60s", "--capture")
    try:
        run = _wait_running(proc, out, ext_log, ctl_file)
        yield proc, out, ext_log, _Control(int(ctl_file.read_text())), run
    finally:
        _end(proc)


def test_second_implementation_exchanges_echo_and_data(external_run, tmp_path):
    proc, out, ext_log, control, run = external_run
    assert run["nodes"]["gs-west"]["external"] is True
    assert run["options"]["external"]["gs-west"]["number"] == WEST
    # its clock: t0_mono_ns from run.json (written when epoch 0 starts)
    clock = _wait("the run clock", lambda: _first(ext_log, "clock"), 10)
    assert clock["t0_mono_ns"] == _run_json(out)["t0_mono_ns"]

    # gs-east's application port: DATA for gs-east comes here (an empty datagram registers)
    app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    app.settimeout(5.0)
    east_app = ("127.0.0.1", _wait("gs-east app port", lambda: _app_port(out, "gs-east"), 10))
    app.sendto(b"", east_app)

    # 1. netemu ping: netemu's gs-east sends ECHO_REQUESTs to the external node, which answers
    ping = subprocess.run(
        [sys.executable, "-m", "netemu", "ping", "gs-east", "gs-west", "--count", "3",
         "--interval", "0.3s", "--json", "--out", str(out)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert json.loads(ping.stdout)["received"] == 3, ping.stdout
    rx = [e for e in _events(ext_log) if e["event"] == "rx" and e["type"] == ECHO_REQUEST]
    tx = [e for e in _events(ext_log) if e["event"] == "tx" and e["type"] == ECHO_REPLY]
    assert len(rx) == 3 and all(e["src"] == EAST and e["dst"] == WEST for e in rx)
    assert len(tx) == 3 and all(e["dst"] == EAST for e in tx)

    # netemu trace: the external node copies the request's RECORD_ROUTE into its reply and
    # appends its own entry (SPEC 5.1); netemu's node reads the whole round trip
    trace = subprocess.run(
        [sys.executable, "-m", "netemu", "trace", "gs-east", "gs-west", "--json",
         "--out", str(out)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert trace.returncode == 0, trace.stdout + trace.stderr
    probe = json.loads(trace.stdout)["probes"][0]
    hops = [h["node"] for h in probe["hops"]]
    assert probe["missed"] == 0 and len(hops) == 10, hops  # both ends, 4 satellites out, 4 back
    assert hops[0] == EAST and hops[5] == WEST and hops[1] == hops[9] == SAT_EAST, hops
    times = [h["t_ms"] for h in probe["hops"]]
    assert times == sorted(times), probe  # its entry is stamped with the run's clock too

    # 2. the external node pings netemu's nodes (a ground station and a satellite)
    for seq, dst in ((42, EAST), (43, SAT_EAST)):
        answer = control(op="echo", dst=dst, seq=seq, ident=7, data="interop")
        assert answer["ok"], answer
        reply = _wait(
            f"ECHO_REPLY from {dst}",
            lambda dst=dst, seq=seq: [
                e
                for e in _events(ext_log)
                if e["event"] == "echo_reply" and e["src"] == dst and e["seq"] == seq
            ],
            5,
        )[0]
        assert (reply["ident"], bytes.fromhex(reply["data"])) == (7, b"interop")

    # 3. DATA from the external node to gs-east's application
    text = "hello from a second SGP implementation"
    assert control(op="data", dst=EAST, text=text)["ok"]
    peer, payload_type, _, payload = decode_app(app.recv(65535))
    assert (peer, payload_type, payload) == (WEST, 1, text.encode())

    # 4. DATA from gs-east's application to the external node
    app.sendto(encode_app(WEST, b"hello external node", payload_type=1), east_app)
    got = _wait(
        "DATA at the external node",
        lambda: [e for e in _events(ext_log) if e["event"] == "data" and e["src"] == EAST],
        5,
    )
    assert bytes.fromhex(got[0]["payload"]) == b"hello external node"
    assert got[0]["payload_type"] == 1
    assert not [e for e in _events(ext_log) if e["event"] == "malformed"]

    # stop the run from outside (control/cmd); the external node is ended by PID (SIGTERM)
    mqtt = BlockingClient(run["broker_url"], client_id=f"test-{run['run_id']}")
    try:
        topics = Topics(run["run_id"])
        mqtt.subscribe(topics.node_status(WEST))
        status = mqtt.wait_latest(topics.node_status(WEST), timeout_s=5)
        assert status["state"] == "ready" and status["external"] is True, status
        mqtt.publish(topics.control_cmd, {"id": "stop-1", "op": "stop"})
    finally:
        mqtt.close()
    proc.wait(timeout=60)
    assert proc.returncode == 0, (tmp_path / "launcher.log").read_text()[-3000:]
    final = json.loads((out / "run" / "run.json").read_text())
    assert final["state"] == "finished"
    assert not child_alive(final["nodes"]["gs-west"]["pid"])
    assert _events(ext_log)[-1]["event"] == "exit"  # it got SIGTERM and exited cleanly

    summary = json.loads((out / "summary.json").read_text())
    assert summary["balance"]["frames"]["ok"] is True, summary["balance"]
    assert summary["balance"]["ok"], summary["balance"]
    ext = summary["external"]
    assert ext["accounted"] is False and [n["name"] for n in ext["nodes"]] == ["gs-west"]
    packets = summary["packets"]
    # to it: 4 ECHO_REQUESTs (ping, trace), 2 ECHO_REPLYs, 1 DATA; from it: 4 ECHO_REPLYs,
    # 2 ECHO_REQUESTs and 1 DATA delivered to netemu's nodes
    assert packets["to_external"] == 7 and packets["unaccounted"] == 0, packets
    assert packets["delivered_from_external"] == 7, packets
    assert WEST in summary["nodes"]["missing_events"]

    if shutil.which("tshark"):
        _check_capture(out / "captures" / "all.pcapng")


def _app_port(out: Path, name: str) -> int | None:
    run = _run_json(out) or {}
    return (run.get("nodes", {}).get(name) or {}).get("app_port")


def _check_capture(capture: Path) -> None:
    """Every captured frame decodes as SGP with the project's dissector, including the ones the
    second implementation sent (its HELLO, ECHO_REPLYs, ECHO_REQUESTs and DATA)."""
    from netemu.protocol.wireshark import dissector_path

    cmd = ["tshark", "-r", str(capture), "-X", f"lua_script:{dissector_path()}", "-T", "fields"]

    def frames(display_filter: str) -> list[str]:
        return subprocess.run(
            [*cmd, "-Y", display_filter, "-e", "frame.number"],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout.split()  # fmt: skip

    total = frames("frame")
    assert total and frames("sgp && !_ws.malformed") == total
    from_west = frames(f"sgp.src == {WEST} && !_ws.malformed")
    types = subprocess.run(
        [*cmd, "-Y", f"sgp.src == {WEST}", "-e", "sgp.type"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split()  # fmt: skip
    assert len(from_west) == len(types)
    # gs-west to gs-east is 5 links: 4 ECHO_REPLYs and 1 DATA cross all five
    assert types.count(str(ECHO_REPLY)) == 20 and types.count(str(DATA)) == 5, types
    assert types.count("4") >= 1  # the HELLO it sent when its link came up


def test_external_node_that_dies_is_routed_around(tmp_path):
    """The external process is killed mid-run: the launcher publishes it offline, the controller
    logs it in liveness.csv, the run goes on and the summary lists it as died."""
    external, ext_log, ctl_file = _min_node_command(tmp_path)
    proc, out = _launch(tmp_path, external, "--duration", "60s")
    try:
        run = _wait_running(proc, out, ext_log, ctl_file)
        os.kill(run["nodes"]["gs-west"]["pid"], signal.SIGKILL)  # a child of our launcher
        _wait(
            "gs-west offline in liveness.csv",
            lambda: "offline" in _read(out / "run" / "liveness.csv"),
            10,
            proc,
        )
        mqtt = BlockingClient(run["broker_url"], client_id=f"test-{run['run_id']}")
        try:
            topics = Topics(run["run_id"])
            mqtt.subscribe(topics.node_status(WEST))
            status = mqtt.wait_latest(topics.node_status(WEST), timeout_s=5)
            assert status == {
                "state": "offline",
                "number": WEST,
                "external": True,
                "by": "launcher",
            }
            mqtt.publish(topics.control_cmd, {"id": "stop-1", "op": "stop"})
        finally:
            mqtt.close()
        proc.wait(timeout=60)
        assert proc.returncode == 0, _read(tmp_path / "launcher.log")[-3000:]
    finally:
        _end(proc)
    summary = json.loads((out / "summary.json").read_text())
    assert [d["number"] for d in summary["nodes"]["died"]] == [WEST]
    assert summary["balance"]["frames"]["ok"] is True


def test_external_command_that_cannot_start_fails_the_run_clearly(tmp_path):
    proc, out = _launch(tmp_path, "gs-west=./no-such-program --id {number}", "--duration", "10s")
    try:
        proc.wait(timeout=60)
    finally:
        _end(proc)
    log = _read(tmp_path / "launcher.log")
    assert proc.returncode == 2, log
    assert "gs-west exited with status 127 before it was ready" in log
    assert "no-such-program" in _read(out / "run" / "logs" / "gs-west.log")
    assert json.loads((out / "run" / "run.json").read_text())["state"] == "failed"


def _first(log: Path, event: str) -> dict | None:
    return next((e for e in _events(log) if e["event"] == event), None)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
