"""Virtual-time simulation at scale: Starlink shell 1 + 100 ground stations (1,684 nodes) with
at least 1,000 packets per simulated second, speed-up over real time, events/s and memory.

    python benchmarks/bench_sim.py                  # 10 s of scenario time, 3 runs (2 for the rest)
    python benchmarks/bench_sim.py --quick          # 5 s, one run each
    python benchmarks/bench_sim.py --duration 30 --runs 5 --json out.json

Every run is a fresh ``netemu simulate`` process (so peak RSS is that run's); the numbers come
from its ``OUT/run/sim.json``. Traffic: the ground-to-ground preset (20 station pairs, far
apart) at 50 packets/s per flow = 1,000 packets/s of 1,000 octets with RECORD_ROUTE, from t = 0.
Configurations, all measured in the same invocation:

- ``1000 pps, 1 s epochs``: the issue's case (routes one epoch ahead in a second process);
- ``1000 pps, 1 s epochs, no RECORD_ROUTE``: the same packets without the route record (each
  hop then forwards the packet without growing and re-encoding its extension);
- ``1000 pps, 5 s epochs``: the same load with longer epochs;
- ``routes in-process``: 1 s epochs, routes computed in the simulator's own process;
- ``no traffic``: the epochs alone (links, routes, tables, HELLOs on link changes);
- ``naive tables``: what building and installing every node's ForwardingTable every epoch
  would cost (``EpochComputer.compute`` with payloads, ``ForwardingTable.from_dict`` of all),
  against the lazy per-row view the simulator uses (one epoch each, in this process).

Speed-up = scenario seconds / wall seconds (``total`` includes start-up, file writing and the
results; ``loop`` is the event loop alone; ``steady`` the loop after epoch 0's routes were
ready: what a long run converges to). ``loop CPU`` divides by the CPU time the
simulator's process spent in the loop, which is what the loop costs on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STARLINK = REPO / "topologies" / "starlink-shell1-100gs.yaml"
TRAFFIC = """\
preset: ground-to-ground
defaults: {rate_pps: 50, size_bytes: 1000, start_s: 0, stop_s: 100000}
"""


def _simulate(tmp: Path, name: str, *, duration_s: float, epoch_s: float, traffic: str,
              worker: bool) -> dict:  # fmt: skip
    out = tmp / name
    code = (
        "import sys; from netemu.sim import simulate; "
        f"simulate({str(STARLINK)!r}, duration_s={duration_s}, epoch_s={epoch_s}, "
        f"routing='snapshot', traffic={traffic!r}, out={str(out)!r}, progress=False, "
        f"route_worker={worker})"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp)
    outer_s = time.perf_counter() - t
    wall = json.loads((out / "run" / "sim.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    wall["process_s"] = outer_s
    wall["route_compute_median"] = wall["route_compute_s"]["median"]
    wall["originated"] = summary["packets"]["originated"]
    wall["delivered"] = summary["packets"]["delivered"]
    wall["balance_ok"] = summary["balance"]["ok"]
    return wall


def _config(tmp, label, runs, **kw) -> dict:
    results = []
    for i in range(runs):
        r = _simulate(tmp, f"{label.replace(' ', '-')}-{i}", **kw)
        results.append(r)
        print(
            f"  {label} run {i + 1}/{runs}: x{r['speedup']:.2f} total, x{r['loop_speedup']:.2f} "
            f"loop, x{r['steady_speedup']:.2f} steady, x{r['loop_cpu_speedup']:.2f} loop CPU, "
            f"{r['events_per_s']:.0f} events/s, "
            f"RSS {r['peak_rss_mib']:.0f}+{r['children_peak_rss_mib']:.0f} MiB",
            file=sys.stderr,
        )

    def med(key):
        return statistics.median(r[key] for r in results)

    duration_s = kw["duration_s"]
    return {
        "label": label,
        "runs": runs,
        "speedup_total": med("speedup"),
        "speedup_loop": med("loop_speedup"),
        "speedup_loop_cpu": med("loop_cpu_speedup"),
        "speedup_steady": med("steady_speedup"),
        "events_per_s": med("events_per_s"),
        "events": med("events"),
        "pps_originated": med("originated") / duration_s,
        "delivered_ratio": med("delivered") / max(1, med("originated")),
        "peak_rss_mib": med("peak_rss_mib"),
        "worker_rss_mib": med("children_peak_rss_mib") if kw["worker"] else None,
        "route_compute_median_s": med("route_compute_median"),
        "waited_for_routes_s": med("waited_for_routes_s"),
        "balance_ok": all(r["balance_ok"] for r in results),
        "raw": results,
    }


def _naive_tables() -> dict:
    """One epoch: lazy (what the simulator does) vs building and parsing every table."""
    from netemu.control.controller import EpochComputer
    from netemu.routing.tables import ForwardingTable
    from netemu.scenario import load_scenario

    scenario = load_scenario(STARLINK)
    out = {}
    for mode in ("lazy", "naive"):
        computer = EpochComputer(scenario, scheme="snapshot", epoch_ns=10**9, duration_ns=10**10)
        computer.prepare()
        computer.compute(0, payloads=mode == "naive")  # warm-up epoch
        t = time.perf_counter()
        result = computer.compute(1, payloads=mode == "naive")
        if mode == "naive":
            tables = [ForwardingTable.from_dict(p["table"]) for p in result.tables.values()]
            assert len(tables) == len(result.published)
        out[mode] = time.perf_counter() - t
        out[f"{mode}_tables"] = len(result.published)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="scenario seconds per run")
    parser.add_argument("--runs", type=int, default=3, help="runs of the main configuration")
    parser.add_argument("--quick", action="store_true", help="5 s, one run per configuration")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    duration = 5.0 if args.quick else args.duration
    runs = 1 if args.quick else args.runs
    other = 1 if args.quick else max(1, min(2, runs))
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp_name:
        tmp = Path(tmp_name)
        traffic = tmp / "traffic-1000pps.yaml"
        traffic.write_text(TRAFFIC)
        t = str(traffic)
        no_rr = tmp / "traffic-1000pps-no-rr.yaml"
        no_rr.write_text(TRAFFIC.replace("stop_s: 100000}", "stop_s: 100000, record_route: false}"))
        configs = [
            _config(tmp, "1000 pps, 1 s epochs", runs, duration_s=duration, epoch_s=1.0,
                    traffic=t, worker=True),
            _config(tmp, "1000 pps, 1 s epochs, no RECORD_ROUTE", other, duration_s=duration,
                    epoch_s=1.0, traffic=str(no_rr), worker=True),
            _config(tmp, "1000 pps, 5 s epochs", other, duration_s=duration, epoch_s=5.0,
                    traffic=t, worker=True),
            _config(tmp, "routes in-process", other, duration_s=duration, epoch_s=1.0,
                    traffic=t, worker=False),
            _config(tmp, "no traffic", other, duration_s=duration, epoch_s=1.0,
                    traffic="none", worker=True),
        ]  # fmt: skip
    naive = _naive_tables()
    load_after = os.getloadavg()
    print(f"\nStarlink shell 1 + 100 GS (1,684 nodes), {duration:g} s of scenario time per run")
    print(f"load average before {load[0]:.1f}, after {load_after[0]:.1f} (2 vCPUs)\n")
    print(
        "| configuration | runs | speed-up total | loop | steady | loop CPU | events/s "
        "| packets/s | delivered | route compute median | peak RSS (+ worker) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        worker = f" + {c['worker_rss_mib']:.0f}" if c["worker_rss_mib"] else ""
        print(
            f"| {c['label']} | {c['runs']} | x{c['speedup_total']:.2f} | x{c['speedup_loop']:.2f} "
            f"| x{c['speedup_steady']:.2f} | x{c['speedup_loop_cpu']:.2f} "
            f"| {c['events_per_s']:.0f} | "
            f"{c['pps_originated']:.0f} | {c['delivered_ratio']:.1%} | "
            f"{c['route_compute_median_s'] * 1e3:.0f} ms | {c['peak_rss_mib']:.0f}{worker} MiB |"
        )  # fmt: skip
    print(
        f"\none epoch's tables: lazy {naive['lazy'] * 1e3:.0f} ms vs naive build + parse of "
        f"{naive['naive_tables']} tables {naive['naive']:.2f} s "
        f"({naive['naive'] / naive['lazy']:.1f}x)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "duration_s": duration,
                    "load": [load, load_after],
                    "configs": configs,
                    "tables": naive,
                },
                indent=1,
            )  # fmt: skip
        )
    return 0 if all(c["balance_ok"] for c in configs) else 1


if __name__ == "__main__":
    sys.exit(main())
