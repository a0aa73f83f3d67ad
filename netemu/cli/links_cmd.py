"""``netemu links``: the link state of a scenario at one instant."""

from __future__ import annotations

import argparse

from .common import console, load_scenario_arg, print_json, utc_arg


def register(sub) -> None:
    p = sub.add_parser(
        "links",
        help="link state at one instant: range, delay, loss, rate, up/down with reason",
        description="Print the links of SCENARIO at --at (default: the scenario epoch). Without "
        "--all only links that are up; with --all also the candidate links that are down, each "
        "with its reason.",
    )
    p.add_argument("scenario", help="scenario YAML")
    p.add_argument("--at", type=utc_arg, default=None, help="ISO 8601 UTC (default: epoch)")
    p.add_argument("--all", action="store_true", help="include candidate links that are down")
    p.add_argument("--json", action="store_true", help="JSON document (see docs/cli.md)")
    p.set_defaults(func=cmd_links)


def cmd_links(args: argparse.Namespace) -> int:
    from ..links import link_state

    scenario = load_scenario_arg(args.scenario)
    t_ns = scenario.timebase.from_utc(args.at) if args.at is not None else 0
    state = link_state(scenario, t_ns)
    doc = state.to_dict(scenario, include_down=args.all)
    if args.json:
        print_json(doc)
        return 0
    from rich.table import Table

    con = console()
    t = Table(title=f"{scenario.name} at {doc['time']}")
    for col in ("a", "b", "kind", "range km", "delay ms", "loss", "rate Gb/s", "state"):
        t.add_column(col, justify="right" if col not in ("a", "b", "kind", "state") else "left")
    for link in doc["links"]:
        state_txt = "up" if link["up"] else f"down ({link['reason']})"
        rng = link["range_m"]
        t.add_row(
            link["a"],
            link["b"],
            link["kind"],
            f"{rng / 1e3:,.1f}" if rng is not None else "-",
            f"{link['delay_s'] * 1e3:.3f}" if link["delay_s"] is not None else "-",
            f"{link['loss']:.2e}" if link["loss"] is not None else "-",
            f"{link['rate_bps'] / 1e9:g}",
            state_txt,
        )
    con.print(t)
    n_up = sum(1 for link in doc["links"] if link["up"])
    con.print(f"{n_up} links up of {len(state)} candidates; {len(doc['nodes'])} nodes")
    return 0
