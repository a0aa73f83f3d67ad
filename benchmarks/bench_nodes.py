"""Node processes at scale: start N ``netemu node`` processes against a real broker and a
stand-in fabric, and measure the time until all report ready, memory (RSS, PSS) per node, the
idle CPU of the whole set while the run is "running", and that all of them stop cleanly.

    python benchmarks/bench_nodes.py                 # N = 50, 100, 200
    python benchmarks/bench_nodes.py --quick         # N = 10, 25 (3 repeats)
    python benchmarks/bench_nodes.py --nodes 200 --repeats 3 --json out.json

The stand-in fabric is one UDP socket that answers ATTACH with ATTACHED; the broker is Debian's
mosquitto when installed (``--broker-kind amqtt`` for the embedded one). Every process is
ended by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from netemu.control.broker import BrokerProcess
from netemu.control.mqtt import BlockingClient
from netemu.control.topics import Topics
from netemu.runtime.config import NodeHostConfig, save_config
from netemu.runtime.layout import RunLayout
from netemu.runtime.wire import Kind, decode_attachment, encode_attachment

CLK_TCK = os.sysconf("SC_CLK_TCK")


class StandInFabric(threading.Thread):
    """Answers ATTACH with ATTACHED; counts everything else."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.attached: set[int] = set()
        self.other = 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                data, addr = self.sock.recvfrom(70_000)
            except (TimeoutError, OSError):
                continue
            try:
                kind, node, _ = decode_attachment(data)
            except Exception:
                self.other += 1
                continue
            if kind is Kind.ATTACH:
                self.attached.add(node)
                self.sock.sendto(encode_attachment(Kind.ATTACHED, node), addr)
            else:
                self.other += 1

    def close(self):
        self.stopping.set()
        self.join(timeout=2)
        self.sock.close()


class Statuses(BlockingClient):
    """Node status messages of one run, and the retained run message."""

    def __init__(self, url: str, run_id: str):
        super().__init__(url, client_id=f"b-{run_id}")
        self.topics = Topics(run_id)
        self.subscribe(self.topics.node_status("+"))

    def count(self, state: str) -> int:
        with self._cond:
            return sum(
                1
                for topic, data in self.last.items()
                if self.topics.parse_node_topic(topic) and (data or {}).get("state") == state
            )

    def publish_run(self, state: str, t0: int) -> None:
        self.publish(self.topics.run, {"state": state, "t0_mono_ns": t0}, retain=True)


def memory_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def one_run(n: int, broker_url: str, *, idle_s: float, timeout_s: float) -> dict:
    run_id = f"bench{uuid.uuid4().hex[:6]}"
    fabric = StandInFabric()
    fabric.start()
    statuses = Statuses(broker_url, run_id)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="netemu-bench-nodes-") as tmp:
        layout = RunLayout(Path(tmp)).create()
        try:
            paths = []
            for i in range(n):
                number = i + 1
                cfg = NodeHostConfig(
                    run_id=run_id,
                    broker_url=broker_url,
                    out=tmp,
                    epoch_utc="2026-01-01T00:00:00Z",
                    epoch_dtn_ns=820_454_400 * 10**9,
                    epoch_ns=10**9,
                    duration_ns=60 * 10**9,
                    number=number,
                    name=f"n{number}",
                    kind="satellite",
                    fabric_host="127.0.0.1",
                    fabric_port=fabric.port,
                    log_level="WARNING",
                )
                paths.append(save_config(cfg, layout.config(f"n{number}")))
            t_start = time.monotonic()
            for path in paths:
                cmd = [sys.executable, "-m", "netemu", "node", "--config", str(path)]
                procs.append(
                    subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
            t_spawned = time.monotonic() - t_start
            while statuses.count("ready") < n:
                if time.monotonic() - t_start > timeout_s:
                    break
                if any(p.poll() is not None for p in procs):
                    break
                time.sleep(0.02)
            ready_s = time.monotonic() - t_start
            ready = statuses.count("ready")
            mem = [memory_kb(p.pid) for p in procs if p.poll() is None]
            t0 = time.monotonic_ns()
            statuses.publish_run("running", t0)
            ticks0 = sum(cpu_ticks(p.pid) for p in procs if p.poll() is None)
            time.sleep(idle_s)
            ticks1 = sum(cpu_ticks(p.pid) for p in procs if p.poll() is None)
            alive = sum(1 for p in procs if p.poll() is None)
            t_stop = time.monotonic()
            statuses.publish_run("stopped", t0)
            codes = []
            for p in procs:
                try:
                    codes.append(p.wait(timeout=max(1.0, 30 - (time.monotonic() - t_stop))))
                except subprocess.TimeoutExpired:
                    codes.append(None)
            stop_s = time.monotonic() - t_stop
            finals = sum(1 for i in range(n) if layout.final(i + 1).exists())
        finally:
            for p in procs:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
            statuses.close()
            fabric.close()
    rss = [m[0] for m in mem]
    pss = [m[1] for m in mem]
    return {
        "nodes": n,
        "spawn_s": t_spawned,
        "ready_s": ready_s,
        "ready": ready,
        "attached": len(fabric.attached),
        "rss_mib_median": statistics.median(rss) / 1024 if rss else None,
        "pss_mib_median": statistics.median(pss) / 1024 if pss else None,
        "pss_mib_total": sum(pss) / 1024,
        "idle_cpu_pct_total": 100.0 * (ticks1 - ticks0) / CLK_TCK / idle_s,
        "alive_while_running": alive,
        "stopped_ok": sum(1 for c in codes if c == 0),
        "final_files": finals,
        "stop_s": stop_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=None, metavar="N")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="N = 10, 25; 3 repeats")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds running idle")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for ready")
    parser.add_argument("--broker-kind", choices=("mosquitto", "amqtt"), default=None)
    parser.add_argument("--json", default=None, metavar="FILE", help="keep every run")
    args = parser.parse_args()
    sizes = args.nodes or ([10, 25] if args.quick else [50, 100, 200])
    repeats = args.repeats or (3 if args.quick else 1)
    kind = args.broker_kind or ("mosquitto" if os.path.exists("/usr/sbin/mosquitto") else "amqtt")
    runs = []
    with BrokerProcess(kind) as broker:
        for n in sizes:
            for _ in range(repeats):
                result = one_run(n, broker.url, idle_s=args.idle, timeout_s=args.timeout)
                result["broker"] = kind
                runs.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    print(f"broker: {kind}; {repeats} run(s) per N; medians\n")
    print(
        "| nodes | all ready after | ready / attached | RSS per node | PSS per node | PSS total "
        "| idle CPU (all nodes) | stopped cleanly | final files |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        rs = [r for r in runs if r["nodes"] == n]

        def med(key, rs=rs):
            return statistics.median(r[key] for r in rs)

        print(
            f"| {n} | {med('ready_s'):.1f} s | {min(r['ready'] for r in rs)} / "
            f"{min(r['attached'] for r in rs)} | {med('rss_mib_median'):.1f} MiB "
            f"| {med('pss_mib_median'):.1f} MiB | {med('pss_mib_total'):.0f} MiB "
            f"| {med('idle_cpu_pct_total'):.0f} % | {min(r['stopped_ok'] for r in rs)} "
            f"| {min(r['final_files'] for r in rs)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
