"""The real-time fabric process: forwarding throughput and delivery-time error, with the raw
loopback UDP ceiling measured in the same run.

    python benchmarks/bench_fabric.py [--repeats 5] [--seconds 2] [--quick]

Three measurements, each repeated ``--repeats`` times (medians reported):

(a) raw loopback: one sender process blasts datagrams of the frame size at one receiver socket;
    datagrams/s received. The ceiling of one UDP hop on this machine.
(b) fabric throughput: a sender process (node A) blasts FRAMEs at a ``netemu fabric`` process
    over an up link with no delay and no rate limit; the receiver (node B, in this process)
    counts frames/s. Also the fabric's own CPU time per forwarded frame (``/proc``), i.e.
    frames per CPU-second ("per core"), which does not depend on how the three processes share
    the cores.
(c) delay error at a moderate load: ``--rate`` frames/s over a 10 ms link (3,000 km). The
    fabric records intended vs actual send time for every delivery (``final/fabric.json``); the
    receiver also measures end to end (receive time - send time - intended delay). Reported:
    p50/p95/p99/max and the number of early deliveries.

A real broker is started (mosquitto when installed, else the embedded amqtt); all traffic is on
127.0.0.1. Every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from netemu.control.broker import BrokerProcess
from netemu.control.mqtt import BlockingClient
from netemu.control.topics import Topics
from netemu.fabric import LinkTable
from netemu.geometry import C_M_PER_S
from netemu.protocol import MessageType, Packet, encode
from netemu.runtime.config import FabricHostConfig, save_config
from netemu.runtime.wire import Kind, decode_attachment, encode_attachment

FRAME_BYTES = 256  # SGP packet size
NUMBERS = [101, 102]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sgp_frame(size: int) -> bytes:
    body = bytes(size - 36)
    return encode(Packet(MessageType.DATA, src=101, dst=102, body=body, payload_type=1))


# -- sender process ---------------------------------------------------------------------------


def sender(target, attach: bool, size: int, rate_fps: float, seconds: float, ready, go, stats):
    """Blast (``rate_fps`` = 0) or pace FRAMEs (or raw datagrams) at ``target`` for ``seconds``.

    The last 8 octets of each frame carry the monotonic send time (the SGP CRC is then wrong;
    the fabric forwards SGP unchanged and does not check it).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    if attach:
        sock.settimeout(2.0)
        for _ in range(25):
            sock.sendto(encode_attachment(Kind.ATTACH, NUMBERS[0]), target)
            try:
                data, _ = sock.recvfrom(100)
            except TimeoutError:
                continue
            if decode_attachment(data)[0] is Kind.ATTACHED:
                break
        sock.setblocking(True)
    head = encode_attachment(Kind.FRAME, NUMBERS[1]) if attach else b""
    frame = bytearray(head + sgp_frame(size))
    ready.set()
    go.wait()
    mono = time.monotonic_ns
    sendto = sock.sendto
    n = 0
    start = mono()
    end = start + int(seconds * 1e9)
    if rate_fps <= 0:
        while True:
            for _ in range(64):
                frame[-8:] = mono().to_bytes(8, "big")
                try:
                    sendto(frame, target)
                except OSError:
                    pass
            n += 64
            if mono() >= end:
                break
    else:
        interval_ns = 1e9 / rate_fps
        while True:
            now = mono()
            if now >= end:
                break
            due = int((now - start) / interval_ns) + 1
            while n < due:
                frame[-8:] = mono().to_bytes(8, "big")
                sendto(frame, target)
                n += 1
            time.sleep(0.0002)
    stats.put({"sent": n, "seconds": (mono() - start) / 1e9})
    sock.close()


def start_sender(target, attach, size, rate_fps, seconds):
    ctx = mp.get_context("fork")
    ready, go, stats = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(
        target=sender, args=(target, attach, size, rate_fps, seconds, ready, go, stats)
    )
    proc.start()
    if not ready.wait(10):
        raise RuntimeError("sender did not start")
    return proc, go, stats


def receive(sock, seconds_max: float, idle_s: float = 0.3, parse: bool = False):
    """Receive until ``idle_s`` without a datagram (after the first), at most ``seconds_max``."""
    sock.settimeout(5.0)
    buf = bytearray(65_536)
    recv_into = sock.recv_into
    mono = time.monotonic_ns
    n = 0
    first = last = None
    delays = []
    deadline = time.monotonic() + seconds_max
    while time.monotonic() < deadline:
        try:
            size = recv_into(buf)
        except TimeoutError:
            break
        now = mono()
        if first is None:
            first = now
            sock.settimeout(idle_s)
        last = now
        n += 1
        if parse:
            delays.append(now - int.from_bytes(buf[size - 8 : size], "big"))
    return n, first, last, delays


# -- (a) raw loopback -------------------------------------------------------------------------


def bench_raw(seconds: float) -> float:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.bind(("127.0.0.1", 0))
    proc, go, stats = start_sender(rx.getsockname(), False, FRAME_BYTES + 8, 0, seconds)
    try:
        go.set()
        n, first, last, _ = receive(rx, seconds + 5)
        stats.get(timeout=10)
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
        rx.close()
    return n / max(1e-9, (last - first) / 1e9)


# -- fabric runs ------------------------------------------------------------------------------


class Controller(BlockingClient):
    """Plays the controller over MQTT: waits for the fabric, publishes links and run."""

    def __init__(self, url: str, run_id: str):
        super().__init__(url, client_id=f"bench-{run_id}")
        self.topics = Topics(run_id)
        self.subscribe(self.topics.fabric_status)

    def wait_status(self, state: str, timeout_s: float = 20.0) -> dict:
        return self.wait_latest(
            self.topics.fabric_status, lambda s: s.get("state") == state, timeout_s
        )

    def publish(self, topic, obj):
        super().publish(topic, obj, retain=True)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def fabric_run(broker_url: str, workdir: Path, *, range_m: float, rate_fps: float,
               seconds: float, parse: bool) -> dict:  # fmt: skip
    run_id = f"bench{os.getpid()}x{time.monotonic_ns() % 10**9}"
    out = Path(tempfile.mkdtemp(prefix="fabric-", dir=workdir))
    config = FabricHostConfig(
        run_id=run_id, broker_url=broker_url, out=str(out), epoch_utc="2026-01-01T00:00:00Z",
        epoch_dtn_ns=0, epoch_ns=10**9, duration_ns=3600 * 10**9, udp_host="127.0.0.1",
        udp_port=0, node_numbers=NUMBERS, node_names=["a", "b"], log_level="WARNING",
    )  # fmt: skip
    path = save_config(config, out / "fabric.json")
    log = open(out / "fabric.log", "wb")  # noqa: SIM115
    fab = subprocess.Popen(
        [sys.executable, "-m", "netemu", "fabric", "--config", str(path)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    ctl = Controller(broker_url, run_id)
    sender_proc = None
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        status = ctl.wait_status("ready")
        target = (status["udp_host"], status["udp_port"])
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        rx.sendto(encode_attachment(Kind.ATTACH, NUMBERS[1]), target)
        assert decode_attachment(rx.recv(100))[0] is Kind.ATTACHED
        sender_proc, go, stats = start_sender(target, True, FRAME_BYTES, rate_fps, seconds)
        table = LinkTable.from_rows(0, [dict(link_id=1, a=0, b=1, range_m=range_m,
                                             rate_bps=float("inf"))]).to_dict()  # fmt: skip
        table["epoch"] = 0
        ctl.publish(ctl.topics.links, table)
        ctl.publish(ctl.topics.run, {"state": "running", "t0_mono_ns": time.monotonic_ns()})
        assert decode_attachment(rx.recv(100)) == (Kind.LINK, NUMBERS[0], b"\x01")
        cpu0 = cpu_s(fab.pid)
        go.set()
        n, first, last, delays = receive(rx, seconds + 10, parse=parse)
        cpu1 = cpu_s(fab.pid)
        sent = stats.get(timeout=10)
        ctl.publish(ctl.topics.run, {"state": "stopped"})
        fab.wait(15)
        final = json.loads((out / "run" / "final" / "fabric.json").read_text())
    finally:
        for proc in (fab,):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if sender_proc is not None:
            sender_proc.join(5)
            if sender_proc.is_alive():
                sender_proc.kill()
        rx.close()
        ctl.close()
    delivered = final["frames"]["delivered"]
    result = {
        "received": n,
        "sent": sent["sent"],
        "fps": n / max(1e-9, (last - first) / 1e9) if n > 1 else 0.0,
        "cpu_fps": delivered / max(1e-9, cpu1 - cpu0),
        "fidelity": final["fidelity"],
        "balanced": final["frames"]["balanced"],
    }
    if parse:
        intended_ns = range_m / C_M_PER_S * 1e9
        err = np.array(delays, dtype=np.int64) - int(np.ceil(intended_ns))
        result["e2e"] = {
            "p50_s": float(np.percentile(err, 50)) / 1e9,
            "p95_s": float(np.percentile(err, 95)) / 1e9,
            "p99_s": float(np.percentile(err, 99)) / 1e9,
            "max_s": float(err.max()) / 1e9,
            "early": int(np.count_nonzero(err < 0)),
        }
    shutil.rmtree(out, ignore_errors=True)
    return result


def med(values) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measurement")
    parser.add_argument("--rate", type=float, default=5000.0, help="load of (c), frames/s")
    parser.add_argument("--quick", action="store_true", help="2 repeats of 1 s")
    parser.add_argument("--json", type=Path, default=None, help="also write every run here")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.seconds = 2, 1.0
    kind = (
        "mosquitto"
        if shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")
        else ("amqtt")
    )
    runs: dict[str, list] = {"raw": [], "thru": [], "fid": []}
    with tempfile.TemporaryDirectory(prefix="bench-fabric-") as tmp, BrokerProcess(kind) as broker:
        for i in range(args.repeats):
            runs["raw"].append(bench_raw(args.seconds))
            runs["thru"].append(
                fabric_run(
                    broker.url,
                    Path(tmp),
                    range_m=0.0,
                    rate_fps=0,
                    seconds=args.seconds,
                    parse=False,
                )  # fmt: skip
            )
            runs["fid"].append(
                fabric_run(
                    broker.url,
                    Path(tmp),
                    range_m=3_000_000.0,
                    rate_fps=args.rate,
                    seconds=args.seconds,
                    parse=True,
                )  # fmt: skip
            )
            print(
                f"repeat {i + 1}/{args.repeats}: raw {runs['raw'][-1]:,.0f}/s, fabric "
                f"{runs['thru'][-1]['fps']:,.0f}/s ({runs['thru'][-1]['cpu_fps']:,.0f} per CPU-s)"
                f", fidelity p99 {runs['fid'][-1]['fidelity']['p99_s'] * 1e3:.3f} ms",
                file=sys.stderr,
            )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))

    def row(name, values, fmt, target=""):
        return (f"| {name} | {fmt(med(values))} | {fmt(min(values))} | {fmt(max(values))} "
                f"| {target} |")  # fmt: skip

    def count(v):
        return f"{v:,.0f}"

    def ms(v):
        return f"{v * 1e3:.3f}"

    fid = [r["fidelity"] for r in runs["fid"]]
    e2e = [r["e2e"] for r in runs["fid"]]
    print(f"\n{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
          f"CPUs, broker {kind}, {FRAME_BYTES}-octet SGP frames, {args.repeats} repeats of "
          f"{args.seconds:g} s\n")  # fmt: skip
    print("| measurement | median | min | max | target |")
    print("|---|---|---|---|---|")
    print(row("(a) raw loopback UDP, one sender -> one socket (datagrams/s)", runs["raw"], count))
    print(row("(b) fabric forwarding, blast A -> fabric -> B (frames/s received)",
              [r["fps"] for r in runs["thru"]], count))  # fmt: skip
    print(row("(b) fabric frames per CPU-second of the fabric process",
              [r["cpu_fps"] for r in runs["thru"]], count, ">= 50,000"))  # fmt: skip
    print(row("(b) fabric frames received / frames offered (%)",
              [100 * r["received"] / max(1, r["sent"]) for r in runs["thru"]],
              lambda v: f"{v:.0f}"))  # fmt: skip
    load = f"{args.rate:,.0f} frames/s, 10 ms link"
    for key, label, target in (("p50_s", "p50", ""), ("p95_s", "p95", ""),
                               ("p99_s", "p99", "<= 0.5 ms"), ("max_s", "max", "")):  # fmt: skip
        print(row(f"(c) delay error {label} (ms), fabric's own record, {load}",
                  [f[key] for f in fid], ms, target))  # fmt: skip
    for key, label in (("p50_s", "p50"), ("p99_s", "p99"), ("max_s", "max")):
        print(row(f"(c) delay error {label} (ms), end to end at the receiver",
                  [f[key] for f in e2e], ms))  # fmt: skip
    print(
        row(
            "(c) early deliveries (fabric's record + end to end)",
            [f["early"] + e["early"] for f, e in zip(fid, e2e, strict=True)],
            count,
            "0",
        )
    )
    print(f"\nbalanced in every run: {all(r['balanced'] for r in runs['thru'] + runs['fid'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
