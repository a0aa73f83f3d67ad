"""``netemu route`` (CGR routes between two nodes) and ``netemu routes`` (every node's forwarding
table for one epoch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import NetemuError, RoutingError
from ..timebase import NS_PER_S, format_utc
from .common import console, duration_arg, load_scenario_arg, print_json, utc_arg


def register(sub) -> None:
    p = sub.add_parser(
        "route",
        help="CGR routes from one node to another on a contact plan",
        description="Contact Graph Routing (CCSDS 734.3-B-1 SABR) from --from to --to for data "
        "ready at --at. PLAN is an ION contact plan ('a contact'/'a range' lines), a JSON plan, "
        "or a scenario YAML (the plan is generated from --start over --horizon). Times are "
        "seconds after the plan's reference time (for a scenario: after --start).",
    )
    p.add_argument("plan", metavar="PLAN", help="ION or JSON contact plan, or scenario YAML")
    p.add_argument("--from", dest="source", required=True, metavar="A", help="source node")
    p.add_argument("--to", dest="destination", required=True, metavar="B", help="destination")
    p.add_argument("--at", type=float, default=0.0, metavar="T", help="seconds (default 0)")
    p.add_argument("--size", type=float, default=0.0, metavar="BYTES", help="bundle size")
    p.add_argument("--deadline", type=float, default=None, metavar="T", help="latest arrival (s)")
    p.add_argument("--exclude", default="", metavar="N[,N...]", help="nodes not to route through")
    p.add_argument("--k", type=int, default=1, metavar="K", help="routes to list (default 1)")
    p.add_argument("--margin", type=float, default=0.0, metavar="S", help="per-hop OWLT margin (s)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--start", type=utc_arg, default=None, metavar="ISO8601", help="scenario: plan start"
    )
    p.add_argument(
        "--horizon",
        type=duration_arg,
        default=None,
        metavar="DURATION",
        help="scenario: plan length (default: up to the deadline, else --at + 1h)",
    )
    p.set_defaults(func=cmd_route)

    q = sub.add_parser(
        "routes",
        help="forwarding tables of every node for one epoch",
        description="Compute the forwarding table (destination -> next hop, validity, "
        "forward/hold, expected arrival) of every node of SCENARIO at --at with a routing "
        "scheme: cgr, snapshot, minhop, module:Class, path/to/file.py:Class or an entry point "
        "of the netemu.routing group.",
    )
    q.add_argument("scenario", metavar="SCENARIO", help="scenario YAML")
    q.add_argument("--at", type=utc_arg, required=True, metavar="ISO8601", help="epoch (UTC)")
    q.add_argument(
        "--scheme",
        "--routing",
        dest="scheme",
        default="cgr",
        metavar="SCHEME",
        help="cgr | snapshot | minhop | module:Class (default cgr)",
    )
    q.add_argument("--node", action="append", default=None, metavar="N", help="only these nodes")
    q.add_argument(
        "--horizon",
        type=duration_arg,
        default="1h",
        metavar="DURATION",
        help="contact plan horizon",
    )
    q.add_argument(
        "--epoch",
        type=duration_arg,
        default="1s",
        metavar="DURATION",
        help="table validity (snapshot)",
    )
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_routes)


# -- helpers ---------------------------------------------------------------------------------


def _seconds_ns(value: float) -> int:
    return int(round(value * NS_PER_S))


def _is_scenario(path: str) -> bool:
    if path.endswith((".yaml", ".yml")):
        return True
    try:
        head = Path(path).read_text()[:4096]
    except OSError:
        return False
    stripped = [ln for ln in head.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return bool(stripped) and stripped[0].split(":", 1)[0].strip() in ("name", "constellations")


class _Names:
    """Node lookup by number or name (names from a scenario or a plan's node table)."""

    def __init__(self, scenario=None, names: dict[int, str] | None = None):
        self.scenario = scenario
        self.names = dict(names or {})
        self.by_name = {v: k for k, v in self.names.items()}

    def number(self, text: str) -> int:
        text = str(text).strip()
        if self.scenario is not None:
            return self.scenario.node(text).number
        if text.isdigit():
            return int(text)
        if text in self.by_name:
            return self.by_name[text]
        raise NetemuError(f"node {text!r}: expected a node number")

    def label(self, number: int) -> str:
        name = self.names.get(number)
        return f"{number} ({name})" if name else str(number)


def _node_list(text: str, names: _Names) -> list[int]:
    return [names.number(t) for t in text.split(",") if t.strip()]


# -- netemu route ------------------------------------------------------------------------------


def cmd_route(args: argparse.Namespace) -> int:
    from ..contacts import load_plan
    from ..routing import CgrRouter

    if args.k < 1:
        raise RoutingError(f"--k must be >= 1, got {args.k}")
    if args.size < 0:
        raise RoutingError(f"--size must be >= 0, got {args.size}")
    if _is_scenario(args.plan):
        from ..contacts.finder import generate_plan

        scenario = load_scenario_arg(args.plan)
        if args.horizon is not None:
            horizon_s = args.horizon
        elif args.deadline is not None:
            horizon_s = max(args.deadline, args.at) + 1.0
        else:
            horizon_s = args.at + 3600.0
        plan = generate_plan(scenario, start_utc=args.start, duration_s=horizon_s)
        names = _Names(scenario, plan.node_names)
    else:
        if args.start is not None:
            raise NetemuError("--start only applies to a scenario YAML, not to a contact plan")
        plan = load_plan(args.plan)
        names = _Names(None, plan.node_names)

    source = names.number(args.source)
    destination = names.number(args.destination)
    exclude = _node_list(args.exclude, names)
    router = CgrRouter(plan, margin_ns=_seconds_ns(args.margin))
    routes = router.routes(
        source,
        destination,
        _seconds_ns(args.at),
        k=args.k,
        size_bytes=args.size,
        deadline_ns=None if args.deadline is None else _seconds_ns(args.deadline),
        exclude=exclude,
    )
    if args.json:
        print_json({"routes": [r.to_dict() for r in routes]})
        return 0
    _print_routes(routes, names, source, destination, args.at, plan.reference_utc)
    return 0


def _print_routes(routes, names: _Names, source, destination, at_s, reference) -> None:
    from rich.table import Table

    con = console()
    when = f"t = {at_s:g} s"
    if reference is not None:
        when += f" after {format_utc(reference)}"
    if not routes:
        con.print(f"no route from {names.label(source)} to {names.label(destination)} at {when}")
        return
    table = Table(title=f"routes {names.label(source)} -> {names.label(destination)}, {when}")
    for col in ("#", "next hop", "arrival (s)", "hops", "route end (s)", "volume (B)"):
        table.add_column(col, justify="right")
    table.add_column("contacts (from->to [start, end) s)")
    for i, r in enumerate(routes, start=1):
        path = "  ".join(
            f"{c.from_node}->{c.to_node} [{c.start_s:g}, {c.end_s:g})" for c in r.contacts
        )
        table.add_row(
            str(i),
            names.label(r.next_hop),
            f"{r.arrival_ns / NS_PER_S:.6g}",
            str(r.hops),
            f"{r.end_ns / NS_PER_S:.6g}",
            f"{r.volume_bytes:.6g}",
            path,
        )
    con.print(table)


# -- netemu routes -----------------------------------------------------------------------------


def cmd_routes(args: argparse.Namespace) -> int:
    from ..routing import load_scheme, scenario_view

    scheme = load_scheme(args.scheme)
    scenario = load_scenario_arg(args.scenario)
    at = args.at
    t_ns = scenario.timebase.from_utc(at)
    view = scenario_view(
        scenario,
        t_ns,
        plan=type(scheme).uses_plan,
        links=type(scheme).uses_links,
        horizon_s=args.horizon,
        epoch_s=args.epoch,
        progress=sys.stderr.isatty(),
    )
    sources = None
    if args.node:
        sources = [scenario.node(n.strip()).number for arg in args.node for n in arg.split(",")]
    tables = scheme.compute(view, sources=sources)
    shown = sources if sources is not None else list(view.nodes)
    names = {n.number: n.name for n in scenario.nodes}

    def sec(t: int) -> float:
        return (t - t_ns) / NS_PER_S

    if args.json:
        out = {
            "scenario": scenario.name,
            "at": format_utc(at),
            "scheme": args.scheme,
            "nodes": {str(k): v for k, v in names.items()},
            "tables": {},
        }
        for node in shown:
            out["tables"][str(node)] = [
                {
                    "destination": e.destination,
                    "next_hop": e.next_hop,
                    "action": e.action,
                    "valid_from": sec(e.valid_from_ns),
                    "valid_until": sec(e.valid_until_ns),
                    "arrival": sec(e.arrival_ns),
                    "hops": e.hops,
                }
                for e in tables.table(node).entries()
            ]
        print_json(out)
        return 0

    write = sys.stdout.write
    write(
        f"# forwarding tables, scheme {args.scheme}, {format_utc(at)}; times in seconds after it\n"
    )
    for node in shown:
        table = tables.table(node)
        write(f"\nnode {node} {names.get(node, '')}: {len(table)} destinations\n")
        write(
            f"  {'destination':>30} {'next hop':>30} {'action':>7} {'from':>9} {'until':>9} "
            f"{'arrival':>11} {'hops':>4}\n"
        )
        for e in table.entries():
            dest = f"{e.destination} {names.get(e.destination, '')}".strip()
            hop = f"{e.next_hop} {names.get(e.next_hop, '')}".strip()
            hops = "" if e.hops is None else str(e.hops)
            write(
                f"  {dest:>30} {hop:>30} {e.action:>7} {sec(e.valid_from_ns):>9.3f} "
                f"{sec(e.valid_until_ns):>9.3f} {sec(e.arrival_ns):>11.6f} {hops:>4}\n"
            )
    return 0
