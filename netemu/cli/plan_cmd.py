"""``netemu plan``: the contact plan of a scenario over a horizon (ION or JSON)."""

from __future__ import annotations

import argparse
import sys

from .common import duration_arg, load_scenario_arg, utc_arg


def register(sub) -> None:
    p = sub.add_parser(
        "plan",
        help="contact plan over a horizon (ION 'a contact'/'a range' lines or JSON)",
        description="Generate the contact plan of SCENARIO from --start over --duration. "
        "Contact edges are found by root-finding (coarse step, then bisection to 10 ms).",
    )
    p.add_argument("scenario", help="scenario YAML")
    p.add_argument("--start", type=utc_arg, default=None, help="ISO 8601 UTC (default: epoch)")
    p.add_argument("--duration", type=duration_arg, default=86400.0, help="e.g. 90m, 24h")
    p.add_argument("--format", choices=("ion", "json"), default="ion")
    p.add_argument("--absolute", action="store_true", help="ION: absolute UTC times")
    p.add_argument("--step", type=duration_arg, default=10.0, help="coarse step (default 10s)")
    p.add_argument("-o", "--output", help="write to FILE instead of standard output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> int:
    from ..contacts import dumps_ion, dumps_json
    from ..contacts.finder import generate_plan

    scenario = load_scenario_arg(args.scenario)
    show = not args.no_progress and sys.stderr.isatty() and args.duration >= 3600
    plan = generate_plan(
        scenario,
        start_utc=args.start,
        duration_s=args.duration,
        step_s=args.step,
        progress=show,
    )
    text = dumps_json(plan) if args.format == "json" else dumps_ion(plan, absolute=args.absolute)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
        print(f"wrote {len(plan)} contacts to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
