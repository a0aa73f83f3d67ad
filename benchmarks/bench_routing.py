"""Routing benchmarks (see benchmarks/README.md, section "Routing").

1. Per-epoch routes for Starlink shell 1 + 100 ground stations (1,684 nodes): the next hop for
   every node pair on the link state of one epoch, with the ``snapshot`` and ``minhop`` schemes
   (scipy csgraph), and the same job done with networkx (one Dijkstra per destination on the
   reversed graph, predecessors = next hops) as the baseline. Budget: <= 0.5 s.
2. CGR, one source to all destinations, on 10,000-contact plans generated from bundled scenarios
   (the 10,000 earliest contacts of Iridium-NEXT + 20 stations over 24 h, and of Starlink shell 1
   + 100 stations over 10 min). Budget: <= 50 ms. Yen's k = 5 between two ground stations is
   reported for information.

Timings are medians over several runs (wall clock, ``time.perf_counter``); set-up (scenario
loading, link state, plan generation) is reported but not part of the timed work.

    python benchmarks/bench_routing.py            # everything, prints a table
    python benchmarks/bench_routing.py --quick    # fewer runs, no networkx baseline
    python benchmarks/bench_routing.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TOPOLOGIES = REPO / "topologies"

BUDGET_EPOCH_S = 0.5
BUDGET_CGR_S = 0.050


def median_time(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def networkx_next_hops(view) -> int:
    """All-pairs next hops with networkx: Dijkstra from every destination on the reversed graph
    (``pred[s]`` is then s's next hop toward the destination). Returns the number of routes."""
    import networkx as nx

    topo = view.topology()
    a, b, d = topo.directed_edges()
    g = nx.DiGraph()
    g.add_nodes_from(view.nodes)
    for u, v, w in zip(a.tolist(), b.tolist(), d.tolist(), strict=True):
        # reversed edge v -> u, weight as in the snapshot scheme
        if not g.has_edge(v, u) or g[v][u]["w"] > w + 1e-3:
            g.add_edge(v, u, w=w + 1e-3)
    routes = 0
    for dest in view.nodes:
        pred, _dist = nx.dijkstra_predecessor_and_distance(g, dest, weight="w")
        routes += sum(1 for s, p in pred.items() if p and s != dest)
    return routes


def bench_epoch(runs: int, baseline: bool) -> dict:
    from netemu.links import link_state
    from netemu.routing import MinHopScheme, NetworkView, SnapshotScheme, Topology
    from netemu.scenario import load_scenario

    t0 = time.perf_counter()
    scenario = load_scenario(TOPOLOGIES / "starlink-shell1-100gs.yaml")
    state = link_state(scenario, 0)
    numbers = [n.number for n in scenario.nodes]
    view = NetworkView(t_ns=0, nodes=tuple(numbers), links=Topology.from_link_state(state, numbers))
    setup_s = time.perf_counter() - t0
    out = {
        "scenario": "starlink-shell1-100gs.yaml",
        "nodes": len(numbers),
        "links_up": int(np.count_nonzero(state.up)),
        "setup_s": setup_s,
    }
    for scheme in (SnapshotScheme(), MinHopScheme()):
        tables = scheme.compute(view)  # warm-up (imports, first allocation)
        med, times = median_time(lambda s=scheme: s.compute(view), runs)
        out[scheme.name] = {
            "median_s": med,
            "runs_s": times,
            "routes": int(np.count_nonzero(tables.next_hop >= 0)),
        }
    if baseline:
        t0 = time.perf_counter()
        routes = networkx_next_hops(view)
        out["networkx"] = {"median_s": time.perf_counter() - t0, "runs_s": None, "routes": routes}
    return out


def _plan(name: str, duration_s: float, n_contacts: int):
    from netemu.contacts.finder import generate_plan
    from netemu.scenario import load_scenario

    scenario = load_scenario(TOPOLOGIES / name)
    plan = generate_plan(scenario, duration_s=duration_s)
    if len(plan) < n_contacts:
        raise SystemExit(f"{name}: only {len(plan)} contacts in {duration_s} s")
    return scenario, plan.select(np.arange(len(plan)) < n_contacts)


def bench_cgr(runs: int, n_contacts: int = 10_000) -> list[dict]:
    from netemu.routing import CgrRouter

    results = []
    cases = (
        ("iridium-next.yaml", 86_400.0, "ground"),
        ("starlink-shell1-100gs.yaml", 600.0, "satellite"),
    )
    for name, duration_s, source_kind in cases:
        t0 = time.perf_counter()
        scenario, plan = _plan(name, duration_s, n_contacts)
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        router = CgrRouter(plan)
        build_s = time.perf_counter() - t0
        present = set(plan.nodes())
        candidates = [
            n.number
            for n in (scenario.ground_nodes if source_kind == "ground" else scenario.satellites)
            if n.number in present
        ]
        sources = candidates[:: max(1, len(candidates) // 5)][:5]

        def one_to_all(src, router=router):
            router._cache.clear()  # time the search, not the cache
            return router.best_routes(src, 0)

        per_source = []
        reached = []
        for src in sources:
            med, _ = median_time(lambda s=src: one_to_all(s), runs)
            per_source.append(med)
            reached.append(len(one_to_all(src).destinations()))
        grounds = [n.number for n in scenario.ground_nodes if n.number in present]
        yen_s = None
        if len(grounds) >= 2:

            def yen(router=router, a=grounds[0], b=grounds[-1]):
                router._cache.clear()
                return router.routes(a, b, 0, k=5)

            yen_s, _ = median_time(yen, max(1, runs // 2))
        results.append(
            {
                "scenario": name,
                "horizon_s": duration_s,
                "contacts": len(plan),
                "nodes": len(present),
                "plan_setup_s": setup_s,
                "router_build_s": build_s,
                "sources": sources,
                "one_to_all_median_s": statistics.median(per_source),
                "one_to_all_per_source_s": per_source,
                "destinations_reached": reached,
                "yen_k5_median_s": yen_s,
            }
        )
    return results


def _span(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per measurement")
    parser.add_argument("--quick", action="store_true", help="3 runs, no networkx baseline")
    parser.add_argument("--no-baseline", action="store_true", help="skip networkx")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    baseline = not (args.quick or args.no_baseline)

    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
    }
    epoch = bench_epoch(runs, baseline)
    cgr = bench_cgr(runs)

    print(f"Routing benchmarks: Python {info['python']}, {info['cpus']} CPUs, {runs} runs each")
    print(
        f"\nPer-epoch next hops, {epoch['scenario']}: {epoch['nodes']} nodes, "
        f"{epoch['links_up']} links up (set-up {epoch['setup_s']:.2f} s). Budget <= "
        f"{BUDGET_EPOCH_S} s.\n"
    )
    print("| scheme | median (s) | routes | budget |")
    print("|---|---|---|---|")
    for key in ("snapshot", "minhop", "networkx"):
        if key in epoch:
            r = epoch[key]
            if key == "networkx":
                verdict = "baseline (1 run)"
            else:
                verdict = "ok" if r["median_s"] <= BUDGET_EPOCH_S else "OVER"
            print(f"| {key} | {r['median_s']:.3f} | {r['routes']} | {verdict} |")
    print(f"\nCGR one source to all destinations. Budget <= {BUDGET_CGR_S * 1e3:g} ms.\n")
    print(
        "| plan | contacts | nodes | plan set-up (s) | one-to-all median (ms) | reached | "
        "Yen k=5 (ms) | budget |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in cgr:
        verdict = "ok" if r["one_to_all_median_s"] <= BUDGET_CGR_S else "OVER"
        yen = "-" if r["yen_k5_median_s"] is None else f"{r['yen_k5_median_s'] * 1e3:.1f}"
        print(
            f"| {r['scenario']} {_span(r['horizon_s'])} | {r['contacts']} | {r['nodes']} | "
            f"{r['plan_setup_s']:.1f} | {r['one_to_all_median_s'] * 1e3:.2f} | "
            f"{min(r['destinations_reached'])} | {yen} | {verdict} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "epoch": epoch, "cgr": cgr}, indent=1))
    over = any(epoch[k]["median_s"] > BUDGET_EPOCH_S for k in ("snapshot", "minhop")) or any(
        r["one_to_all_median_s"] > BUDGET_CGR_S for r in cgr
    )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
