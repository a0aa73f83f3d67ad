"""The node process against a real broker and a test fabric (plain UDP socket on loopback).

Each test starts ``python -m netemu node --config F`` processes, plays the fabric with one UDP
socket speaking the attachment protocol (docs/runtime.md) and drives the run over MQTT (paho).
Every process is ended by its PID in a ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from netemu.control.mqtt import BlockingClient
from netemu.control.topics import Topics
from netemu.protocol import Echo, Hop, MessageType, Packet, RecordRoute, decode, encode
from netemu.routing.tables import ForwardingTable
from netemu.runtime.config import NodeHostConfig, save_config
from netemu.runtime.eventlog import read_events
from netemu.runtime.layout import RunLayout
from netemu.runtime.wire import Kind, decode_app, decode_attachment, encode_app, encode_attachment
from netemu.traffic import FlowSpec

pytestmark = pytest.mark.integration

EPOCH_DTN_NS = 820_454_400 * 10**9  # 2026-01-01T00:00:00Z in DTN time
HOUR_NS = 3600 * 10**9


@pytest.fixture
def broker(tmp_path, request):
    """mosquitto where installed (starts fastest), else the embedded amqtt broker."""
    if os.path.exists("/usr/sbin/mosquitto"):
        return request.getfixturevalue("mosquitto_broker")
    return request.getfixturevalue("amqtt_broker")


class TestFabric:
    """The fabric's side of the attachment protocol on one loopback UDP socket."""

    __test__ = False

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.addr: dict[int, tuple] = {}

    def recv(self, timeout_s: float = 5.0):
        self.sock.settimeout(timeout_s)
        data, addr = self.sock.recvfrom(70_000)
        kind, node, payload = decode_attachment(data)
        return kind, node, payload, addr

    def expect(self, kind: Kind, timeout_s: float = 5.0, pred=lambda n, p: True):
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind.name} datagram within {timeout_s} s")
            try:
                got, node, payload, addr = self.recv(left)
            except TimeoutError:
                continue
            if got is Kind.ATTACH:
                self.addr[node] = addr
                self.sock.sendto(encode_attachment(Kind.ATTACHED, node), addr)
                if kind is Kind.ATTACH and pred(node, payload):
                    return node, payload, addr
                continue
            if got is kind and pred(node, payload):
                return node, payload, addr

    def attach(self, numbers, timeout_s: float = 10.0) -> None:
        while not set(numbers) <= set(self.addr):
            self.expect(Kind.ATTACH, timeout_s)

    def send(self, to: int, kind: Kind, node: int, payload: bytes = b"") -> None:
        self.sock.sendto(encode_attachment(kind, node, payload), self.addr[to])

    def close(self) -> None:
        self.sock.close()


def table(node: int, routes: dict[int, int], *, valid_from_ns: int = 0) -> dict:
    dests = sorted(routes)
    return ForwardingTable(
        node=node,
        t_ns=valid_from_ns,
        scheme="test",
        destination=dests,
        next_hop=[routes[d] for d in dests],
        valid_from_ns=valid_from_ns,
        valid_until_ns=valid_from_ns + HOUR_NS,
        hold=False,
        arrival_ns=[valid_from_ns + 1_000_000] * len(dests),
    ).to_dict()


class Run:
    """Node processes of one test run, their configs, the broker and the test fabric."""

    def __init__(self, tmp_path, broker_url: str):
        self.tmp = tmp_path
        self.url = broker_url
        self.run_id = f"t{uuid.uuid4().hex[:8]}"
        self.topics = Topics(self.run_id)
        self.layout = RunLayout(tmp_path / "out").create()
        self.fabric = TestFabric()
        self.procs: dict[int, subprocess.Popen] = {}
        self.mqtt = BlockingClient(broker_url, client_id=f"t-{uuid.uuid4()}")
        self.mqtt.subscribe(self.topics.all)

    def start(self, number: int, **extra) -> subprocess.Popen:
        config = NodeHostConfig(
            run_id=self.run_id,
            broker_url=self.url,
            out=str(self.layout.out),
            epoch_utc="2026-01-01T00:00:00Z",
            epoch_dtn_ns=EPOCH_DTN_NS,
            epoch_ns=10**9,
            duration_ns=60 * 10**9,
            number=number,
            name=f"n{number}",
            kind="satellite",
            fabric_host="127.0.0.1",
            fabric_port=self.fabric.port,
            telemetry_interval_s=0.5,
            **extra,
        )
        path = save_config(config, self.layout.config(f"n{number}"))
        log = open(self.layout.log(f"n{number}"), "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "netemu", "node", "--config", str(path)]
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        log.close()
        self.procs[number] = proc
        return proc

    def ready(self, number: int, timeout_s: float = 15.0) -> dict:
        return self.mqtt.wait_any(
            self.topics.node_status(number), lambda d: d.get("state") == "ready", timeout_s
        )

    def running(self) -> int:
        """Publish the retained run message; returns t0_mono_ns."""
        t0 = time.monotonic_ns()
        self.mqtt.publish(self.topics.run, {"state": "running", "t0_mono_ns": t0}, retain=True)
        return t0

    def now_ns(self, t0: int) -> int:
        return time.monotonic_ns() - t0

    def stop(self, t0: int) -> None:
        self.mqtt.publish(self.topics.run, {"state": "stopped", "t0_mono_ns": t0}, retain=True)

    def log_text(self, number: int) -> str:
        return self.layout.log(f"n{number}").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self.mqtt.close()
        self.fabric.close()


@pytest.fixture
def run(tmp_path, broker):
    r = Run(tmp_path, broker.url)
    try:
        yield r
    finally:
        r.close()


def data_packet(src: int, dst: int, body: bytes, packet_id: int, **kw) -> bytes:
    return encode(
        Packet(
            type=MessageType.DATA,
            src=src,
            dst=dst,
            body=body,
            packet_id=packet_id,
            payload_type=1,
            **kw,
        )
    )


def test_attach_table_forward_echo_ping_and_stop(run):
    proc = run.start(7)
    node, _, _ = run.fabric.expect(Kind.ATTACH, 10)
    assert node == 7
    status = run.ready(7)
    assert status["pid"] == proc.pid and status["name"] == "n7" and status["app_port"] > 0
    t0 = run.running()
    # malformed input of every kind is counted, not fatal
    run.fabric.sock.sendto(b"junk", run.fabric.addr[7])
    run.fabric.send(7, Kind.FRAME, 5, b"\x01\x02not sgp")
    run.mqtt.publish(run.topics.node_cmd(7), b"{not json")
    run.mqtt.publish(run.topics.node_table(7), {"epoch": 0, "table": {"node": 99}})
    # a table valid from 0.4 s: before it, no route; after it, forwarded to next hop 8
    valid_from = run.now_ns(t0) + 400_000_000
    run.mqtt.publish(
        run.topics.node_table(7),
        {"epoch": 1, "valid_from_ns": valid_from, "table": table(7, {9: 8}, valid_from_ns=0)},
        retain=True,
    )
    time.sleep(0.1)
    run.fabric.send(7, Kind.FRAME, 5, data_packet(5, 9, b"early", 1))
    time.sleep(max(0.0, (valid_from - run.now_ns(t0)) / 1e9) + 0.1)
    run.fabric.send(7, Kind.FRAME, 5, data_packet(5, 9, b"late", 2))
    nxt, frame, _ = run.fabric.expect(Kind.FRAME, pred=lambda n, p: decode(p).dst == 9)
    packet = decode(frame)
    assert nxt == 8 and packet.body == b"late" and packet.hop_limit == 63
    # an ECHO_REQUEST for node 7 is answered towards its source through next hop 8
    run.fabric.send(
        7,
        Kind.FRAME,
        8,
        encode(
            Packet(type=MessageType.ECHO_REQUEST, src=9, dst=7, body=Echo(3, 4, b"x"), packet_id=5)
        ),
    )
    nxt, frame, _ = run.fabric.expect(
        Kind.FRAME, pred=lambda n, p: decode(p).type is MessageType.ECHO_REPLY
    )
    reply = decode(frame)
    assert nxt == 8 and reply.dst == 9 and reply.body == Echo(3, 4, b"x")
    # trace: the node sends an ECHO_REQUEST with RECORD_ROUTE; we answer as node 9 via 8
    run.mqtt.publish(run.topics.node_cmd(7), {"id": "c1", "op": "trace", "dst": 9, "timeout_s": 3})
    nxt, frame, _ = run.fabric.expect(
        Kind.FRAME, pred=lambda n, p: decode(p).type is MessageType.ECHO_REQUEST
    )
    request = decode(frame)
    assert nxt == 8 and request.dst == 9
    [rr] = request.extensions
    assert [h.node for h in rr.hops] == [7]
    time.sleep(0.02)
    now_dtn = EPOCH_DTN_NS + run.now_ns(t0)
    answer = Packet(
        type=MessageType.ECHO_REPLY,
        src=9,
        dst=7,
        body=request.body,
        packet_id=1,
        creation_time_ns=now_dtn,
        extensions=(RecordRoute(rr.hops + (Hop(8, now_dtn - 1000), Hop(9, now_dtn))),),
    )
    run.fabric.send(7, Kind.FRAME, 8, encode(answer))
    result = run.mqtt.wait_any(run.topics.node_reply(7, "c1"))
    assert result["received"] == 1 and result["dst"] == 9
    [probe] = result["probes"]
    assert probe["rtt_ms"] >= 20 and [h["node"] for h in probe["hops"]] == [7, 8, 9]
    assert abs(probe["hops"][0]["t_ms"]) < 5 and probe["hops"][2]["t_ms"] >= 15
    # link to 8 down: a packet for 9 is held, and logged as held_at_end when the run stops
    run.fabric.send(7, Kind.LINK, 8, b"\x00")
    run.fabric.send(7, Kind.FRAME, 5, data_packet(5, 9, b"held", 3))
    telemetry = run.mqtt.wait_any(
        run.topics.node_telemetry(7), lambda d: d.get("held_packets") == 1, timeout_s=5
    )
    assert telemetry["host"]["fabric_malformed"] >= 1
    run.stop(t0)
    assert proc.wait(timeout=10) == 0, run.log_text(7)
    final = json.loads(run.layout.final(7).read_text())
    assert final["core"]["held_packets"] == 1
    assert final["host"]["fabric_malformed"] >= 1 and final["host"]["mqtt_malformed"] >= 2
    assert final["core"]["dropped"]["malformed"] == 1
    stopped = run.mqtt.wait_any(run.topics.node_status(7), lambda d: d.get("state") == "stopped")
    assert stopped["number"] == 7
    rows = list(read_events(run.layout.events(7)))
    by_event = {}
    for row in rows:
        by_event.setdefault(row["event"], []).append(row)
    assert [r["packet_id"] for r in by_event["held_at_end"]] == [3]
    drops = {(r["packet_id"], r["reason"]) for r in by_event["dropped"] if r["src"] == 5}
    assert (1, "no_route") in drops
    originated = {r["msg_type"] for r in by_event["originated"]}
    assert {"ECHO_REPLY", "ECHO_REQUEST"} <= originated
    trace_row = next(r for r in by_event["delivered"] if r["msg_type"] == "ECHO_REPLY")
    assert trace_row["hops"] == 3 and trace_row["route"].startswith("7@")


def test_application_interface_and_traffic_between_two_nodes(run):
    flow = FlowSpec(
        flow_id=1,
        name="a-b",
        src=1,
        dst=2,
        rate_pps=50,
        size_bytes=200,
        start_ns=500_000_000,
        stop_ns=900_000_000,
    )
    run.start(1, flows=[flow.to_dict()])
    run.start(2)
    run.fabric.attach([1, 2])
    ports = {n: run.ready(n)["app_port"] for n in (1, 2)}
    for n, other in ((1, 2), (2, 1)):
        run.mqtt.publish(
            run.topics.node_table(n),
            {"epoch": 0, "valid_from_ns": 0, "table": table(n, {other: other})},
            retain=True,
        )
    app_a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    app_b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        app_b.bind(("127.0.0.1", 0))
        app_b.sendto(b"", ("127.0.0.1", ports[2]))  # register at B
        time.sleep(0.2)
        t0 = run.running()
        time.sleep(0.3)  # tables installed
        app_a.sendto(encode_app(2, b"hello b", payload_type=7, flags=1), ("127.0.0.1", ports[1]))
        app_b.settimeout(0.05)
        got = []
        deadline = time.monotonic() + 5
        # relay every frame between the nodes until the app datagram and the flow are through
        while time.monotonic() < deadline and (not got or run.now_ns(t0) < 1_100_000_000):
            try:
                nxt, frame, addr = run.fabric.expect(Kind.FRAME, timeout_s=0.05)
            except AssertionError:
                nxt = None
            if nxt is not None:
                src = next(n for n, a in run.fabric.addr.items() if a == addr)
                run.fabric.send(nxt, Kind.FRAME, src, frame)
            try:
                data, _ = app_b.recvfrom(70_000)
                got.append(decode_app(data))
            except TimeoutError:
                pass
        hello = [g for g in got if g[3] == b"hello b"]
        assert hello and hello[0][:3] == (1, 7, 1)
        run.stop(t0)
        for n in (1, 2):
            assert run.procs[n].wait(timeout=10) == 0, run.log_text(n)
    finally:
        app_a.close()
        app_b.close()
    delivered = [r for r in read_events(run.layout.events(2)) if r["event"] == "delivered"]
    traffic = [r for r in delivered if r["flow_id"] == 1]
    sent = [
        r
        for r in read_events(run.layout.events(1))
        if r["event"] == "originated" and r["flow_id"] == 1
    ]
    assert 18 <= len(sent) <= 21  # 50 pps from 0.5 s to 0.9 s
    assert sorted(r["seq"] for r in traffic) == list(range(len(sent)))
    row = traffic[0]
    assert row["size_bytes"] == 200 + 12  # one RECORD_ROUTE entry added by node 1
    assert row["hops"] == 1 and row["route"].startswith("1@") and row["rx"] == 1
    latency_ns = sorted(r["t_ns"] - (r["creation_dtn_ns"] - EPOCH_DTN_NS) for r in traffic)
    assert 0 <= latency_ns[0] and latency_ns[len(latency_ns) // 2] < 50_000_000
    final_b = json.loads(run.layout.final(2).read_text())
    assert final_b["flows"]["1"]["received"] == len(sent)
    assert final_b["host"]["app_out"] >= 1


def test_killed_node_goes_offline_by_last_will(run):
    proc = run.start(3)
    run.fabric.attach([3])
    run.ready(3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the broker sees the socket close at once; the keep-alive (5 s) bounds it otherwise
    status = run.mqtt.wait_any(
        run.topics.node_status(3), lambda d: d.get("state") == "offline", timeout_s=12
    )
    assert status == {"state": "offline"}


def test_sigterm_writes_final_file(run):
    proc = run.start(4, hold_on_no_route=True)
    run.fabric.attach([4])
    run.ready(4)
    t0 = run.running()
    time.sleep(0.1)
    run.fabric.send(4, Kind.FRAME, 5, data_packet(5, 6, b"nowhere", 11))
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, run.log_text(4)
    assert run.now_ns(t0) > 0
    final = json.loads(run.layout.final(4).read_text())
    assert final["core"]["held_packets"] == 1
    held = [r for r in read_events(run.layout.events(4)) if r["event"] == "held_at_end"]
    assert [(r["src"], r["packet_id"]) for r in held] == [(5, 11)]


def relay(fabric: TestFabric, stop) -> None:
    """A zero-delay fabric: forward every FRAME to its next hop until ``stop`` is set."""
    while not stop.is_set():
        try:
            nxt, frame, addr = fabric.expect(Kind.FRAME, timeout_s=0.1)
        except (AssertionError, OSError):
            continue
        src = next((n for n, a in fabric.addr.items() if a == addr), None)
        if src is not None and nxt in fabric.addr:
            fabric.send(nxt, Kind.FRAME, src, frame)


def test_ping_and_trace_commands(run):
    import threading

    for n in (1, 2, 3):
        run.start(n)
    run.fabric.attach([1, 2, 3])
    for n in (1, 2, 3):
        run.ready(n)
    routes = {1: {2: 2, 3: 2}, 2: {1: 1, 3: 3}, 3: {1: 2, 2: 2}}
    for n, r in routes.items():
        run.mqtt.publish(
            run.topics.node_table(n),
            {"epoch": 0, "valid_from_ns": 0, "table": table(n, r)},
            retain=True,
        )
    run.layout.run_json.write_text(
        json.dumps(
            {
                "run_id": run.run_id,
                "broker_url": run.url,
                "nodes": {f"sat-{n}": {"number": n, "pid": 0, "app_port": 0} for n in (1, 2, 3)},
            }
        )
    )
    t0 = run.running()
    stop = threading.Event()
    thread = threading.Thread(target=relay, args=(run.fabric, stop), daemon=True)
    thread.start()
    try:
        cli = [sys.executable, "-m", "netemu"]
        out = ["--out", str(run.layout.out)]
        ping = subprocess.run(
            [*cli, "ping", "sat-1", "3", "--count", "2", "--interval", "0.1s", "--json", *out],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ping.returncode == 0, ping.stderr
        reply = json.loads(ping.stdout)
        assert reply["received"] == 2 and reply["rtt_ms"]["max"] < 100
        trace = subprocess.run(
            [*cli, "trace", "sat-1", "sat-3", *out], capture_output=True, text=True, timeout=30
        )
        assert trace.returncode == 0, trace.stderr
        lines = trace.stdout
        assert "sat-2 (2)" in lines and "back" in lines and "1 sent, 1 received" in lines
        bad = subprocess.run(
            [*cli, "ping", "sat-1", "nowhere", *out], capture_output=True, text=True, timeout=30
        )
        assert bad.returncode == 2 and "no node named 'nowhere'" in bad.stderr
    finally:
        stop.set()
        thread.join(timeout=2)
    run.stop(t0)
    for n in (1, 2, 3):
        assert run.procs[n].wait(timeout=10) == 0
    rows = [r for r in read_events(run.layout.events(1)) if r["event"] == "delivered"]
    replies = [r for r in rows if r["msg_type"] == "ECHO_REPLY"]
    route = [hop.split("@")[0] for hop in replies[-1]["route"].split(";")]
    assert len(replies) == 3 and route == ["1", "2", "3", "2"]  # out 1,2 then back 3,2
