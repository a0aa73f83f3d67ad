"""``netemu simulate``: the scenario of ``netemu run`` in virtual time, in one process
(docs/sim.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import NetemuError
from .common import console
from .run_cmd import add_scenario_run_options, print_report, run_stats

DEFAULT_DURATION = "1h"


def register(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate a scenario in virtual time: same cores and outputs as run, much faster",
        description="Run the node and fabric cores of every satellite and ground station in one "
        "process on a virtual clock (a discrete-event loop), as fast as the machine allows. "
        "Links and routes are recomputed every --epoch exactly as in netemu run, and the "
        "outputs are the same (summary.json, deliveries.csv, plots, captures with --capture). "
        "The same scenario, options and seed give a byte-identical summary.json and captures; "
        "wall-clock figures (speed-up, events/s) are in OUT/run/sim.json.",
    )
    add_scenario_run_options(p, duration=DEFAULT_DURATION, verb="simulate", out_prefix="sim")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on the terminal")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from ..runtime.layout import RunLayout
    from ..scenario import load_scenario
    from ..sim import simulate

    if args.duration <= 0:
        raise NetemuError("--duration must be > 0")
    if args.epoch <= 0:
        raise NetemuError("--epoch must be > 0")
    summary = simulate(
        args.scenario,
        duration_s=args.duration,
        epoch_s=args.epoch,
        routing=args.routing,
        traffic=args.traffic,
        out=args.out,
        capture=args.capture,
        seed=args.seed,
        progress=not args.no_progress,
    )
    out = Path(args.out) if args.out else Path("out") / f"sim-{load_scenario(args.scenario).name}"
    layout = RunLayout(out)
    print_report(summary, layout)
    interrupted = run_stats(summary).get("stop_reason") == "interrupted"
    sim_json = layout.run_dir / "sim.json"
    try:
        wall = json.loads(sim_json.read_text())
    except (OSError, ValueError):
        return 130 if interrupted else 0
    simulated_s = run_stats(summary).get("t_end_ns", 0) / 1e9
    console().print(
        f"  simulated {simulated_s:g} s in {wall['wall_s']:.1f} s wall "
        f"(x{wall['speedup']:.2f} real time, {wall['events_per_s']:.0f} events/s, "
        f"peak RSS {wall['peak_rss_mib']:.0f} MiB); see {sim_json}"
    )
    return 130 if interrupted else 0
