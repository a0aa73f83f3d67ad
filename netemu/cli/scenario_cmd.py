"""``netemu scenario check|nodes``: validate and summarise a scenario; export node numbers."""

from __future__ import annotations

import argparse

import numpy as np

from .common import console, duration_arg, load_scenario_arg, print_json


def register(sub) -> None:
    p = sub.add_parser("scenario", help="validate, summarise and inspect scenarios")
    ssub = p.add_subparsers(dest="scenario_command", metavar="ACTION")
    ssub.required = True
    c = ssub.add_parser(
        "check",
        help="validate a scenario and summarise it (nodes, candidate links, contacts per hour)",
        description="Validate a scenario file. Prints nodes, candidate links and, from a "
        "contact plan over --sample (default 1h), the contacts per hour.",
    )
    c.add_argument("scenario", help="scenario YAML (e.g. topologies/iridium-next.yaml)")
    c.add_argument("--sample", default="1h", type=duration_arg, help="plan horizon (default 1h)")
    c.add_argument("--json", action="store_true", help="machine-readable summary")
    c.set_defaults(func=cmd_check)
    n = ssub.add_parser(
        "nodes",
        help="the node name <-> number mapping (for contact plans and ipn: node numbers)",
    )
    n.add_argument("scenario")
    n.add_argument("--json", action="store_true", help="JSON object name -> details")
    n.set_defaults(func=cmd_nodes)


def summarise(scenario, sample_s: float) -> dict:
    from ..contacts.finder import generate_plan
    from ..links import link_model

    model = link_model(scenario)
    kinds = model.cand.kind_code
    plan = generate_plan(scenario, duration_s=sample_s) if sample_s > 0 else None
    out = {
        "scenario": scenario.name,
        "file": scenario.path,
        "epoch": scenario.epoch_utc.isoformat().replace("+00:00", "Z"),
        "constellations": [
            {"name": c.name, "satellites": c.size, "source": "walker" if c.walker else "tle"}
            for c in scenario.constellations
        ],
        "satellites": scenario.n_satellites,
        "ground_stations": len(scenario.ground_stations),
        "candidate_links": {"isl": int((kinds == 0).sum()), "ground": int((kinds == 1).sum())},
    }
    if plan is not None:
        hours = sample_s / 3600.0
        ground_numbers = [n.number for n in scenario.ground_nodes]
        is_ground = np.isin(plan.from_node, ground_numbers) | np.isin(plan.to_node, ground_numbers)
        out["sample_hours"] = hours
        out["contacts_per_hour"] = {
            "isl": round(float((~is_ground).sum()) / hours, 2),
            "ground": round(float(is_ground.sum()) / hours, 2),
        }
    return out


def cmd_check(args: argparse.Namespace) -> int:
    scenario = load_scenario_arg(args.scenario)
    summary = summarise(scenario, args.sample)
    if args.json:
        print_json(summary)
        return 0
    from rich.table import Table

    con = console()
    con.print(f"[bold green]OK[/] {summary['file']}: scenario [bold]{summary['scenario']}[/]")
    t = Table(show_header=False, box=None)
    t.add_row("epoch", summary["epoch"])
    for c in summary["constellations"]:
        t.add_row(f"shell {c['name']}", f"{c['satellites']} satellites ({c['source']})")
    t.add_row("ground stations", str(summary["ground_stations"]))
    cl = summary["candidate_links"]
    t.add_row("candidate links", f"{cl['isl']} ISL, {cl['ground']} ground")
    if "contacts_per_hour" in summary:
        cph = summary["contacts_per_hour"]
        t.add_row(
            f"contacts/hour (first {summary['sample_hours'] * 60:.0f} min)",
            f"{cph['isl']} ISL, {cph['ground']} ground (directional)",
        )
    con.print(t)
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    scenario = load_scenario_arg(args.scenario)
    if args.json:
        print_json(
            {
                n.name: {
                    "number": n.number,
                    "kind": n.kind,
                    **({"plane": n.plane + 1, "slot": n.slot + 1} if n.plane is not None else {}),
                }
                for n in scenario.nodes
            }
        )
        return 0
    for n in scenario.nodes:
        print(f"{n.number}\t{n.name}\t{n.kind}")
    return 0
