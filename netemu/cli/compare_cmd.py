"""``netemu compare``: run several routing schemes on the same scenario, traffic and seed and
print a table (delivery ratio, latency percentiles, hops, route changes, control overhead)
with a plot (netemu.results.compare)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import NetemuError
from .common import console, duration_arg

DEFAULT_DURATION = "5m"
DEFAULT_EPOCH = "1s"
DEFAULT_TRAFFIC = "ground-to-ground"


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="run routing schemes side by side on the same traffic and seed (virtual time)",
        description="Simulate SCENARIO once per --routing scheme (same traffic, same seed, "
        "same duration) and compare them: delivery ratio, latency percentiles, hop counts, "
        "route changes and control overhead (forwarding-table updates and their bytes). Each "
        "run's full results go to OUT/<scheme>/; the table goes to OUT/compare.csv and "
        "OUT/compare.json, the plot to OUT/compare.png.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario YAML")
    p.add_argument(
        "--routing",
        action="append",
        required=True,
        metavar="SCHEME",
        help="a scheme to compare (repeat): cgr | snapshot | minhop | module:Class | file.py:Class",
    )
    p.add_argument(
        "--duration",
        type=duration_arg,
        default=DEFAULT_DURATION,
        metavar="DURATION",
        help=f"scenario time of each run (default {DEFAULT_DURATION})",
    )
    p.add_argument(
        "--epoch",
        type=duration_arg,
        default=DEFAULT_EPOCH,
        metavar="DURATION",
        help=f"routing epoch (default {DEFAULT_EPOCH})",
    )
    p.add_argument(
        "--traffic",
        default=DEFAULT_TRAFFIC,
        metavar="FILE|PRESET",
        help=f"traffic YAML or preset, the same for every scheme (default {DEFAULT_TRAFFIC})",
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument(
        "--out", default=None, metavar="DIR", help="output directory (default out/compare-SCENARIO)"
    )
    p.add_argument(
        "--mode",
        choices=("simulate", "run"),
        default="simulate",
        help="simulate in virtual time (default) or emulate live with real processes",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_compare)


def _fmt(value, scale: float = 1.0, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and scale == 1.0:
        return f"{value:,}"
    return f"{value * scale:.{digits}f}"


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..results.compare import compare_schemes
    from ..scenario import load_scenario

    if args.duration <= 0 or args.epoch <= 0:
        raise NetemuError("--duration and --epoch must be > 0")
    out = (
        Path(args.out) if args.out else Path("out") / f"compare-{load_scenario(args.scenario).name}"
    )
    con = console()

    def done(row):
        con.print(f"  {row['scheme']}: delivered {row['delivered']} of {row['originated']}")

    rows = compare_schemes(
        args.scenario,
        args.routing,
        duration_s=args.duration,
        epoch_s=args.epoch,
        traffic=args.traffic,
        out=out,
        seed=args.seed,
        mode=args.mode,
        progress=not args.no_progress,
        on_done=done,
    )
    table = Table(title=f"routing schemes on {Path(args.scenario).name} (seed {args.seed})")
    for name in (
        "scheme",
        "delivered",
        "ratio %",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "hops mean",
        "hops max",
        "route changes",
        "table updates",
        "control kB",
    ):
        table.add_column(name, justify="left" if name == "scheme" else "right")
    for r in rows:
        table.add_row(
            r["scheme"],
            f"{r['delivered']:,}/{r['originated']:,}",
            _fmt(r["delivery_ratio"], 100.0),
            _fmt(r["latency_p50_s"], 1e3),
            _fmt(r["latency_p95_s"], 1e3),
            _fmt(r["latency_p99_s"], 1e3),
            _fmt(r["hops_mean"], 1.0, 2),
            _fmt(r["hops_max"]),
            _fmt(r["route_changes"]),
            _fmt(r["table_updates"]),
            _fmt(None if r["control_bytes"] is None else r["control_bytes"] / 1e3, 1.0, 1),
        )
    con.print(table)
    con.print(f"  table {out / 'compare.csv'}, plot {out / 'compare.png'}, runs in {out}/")
    return 0
