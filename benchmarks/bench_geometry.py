"""Geometry benchmarks (issue: foundation + orbital geometry).

1. Link state per epoch for Starlink shell 1 + 100 ground stations (target <= 5 ms), next to
   - the floor: SGP4 propagation of all satellites with ``SatrecArray`` at one time, and
   - a baseline: skyfield, one ``EarthSatellite`` at a time, ITRS positions only.
2. A 24 h contact plan for the Iridium-like shell + 20 stations (target <= 10 s).

Run: ``python benchmarks/bench_geometry.py [--repeats 5] [--json out.json]``. Prints a Markdown
table of medians (and min/max over repeats).
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
sys.path.insert(0, str(REPO))

from netemu.contacts.finder import generate_plan  # noqa: E402
from netemu.links import LinkModel, LinkTracker  # noqa: E402
from netemu.scenario import load_scenario  # noqa: E402
from netemu.timebase import NS_PER_S, timescale  # noqa: E402


def per_call(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for k in range(calls):
        fn(k)
    return (time.perf_counter() - t0) / calls


def bench_link_state(repeats: int, steps: int) -> dict:
    sc = load_scenario(REPO / "topologies" / "starlink-shell1-100gs.yaml")
    model = LinkModel(sc)
    orbits = model.orbits
    results = {"link_state_ms": [], "propagation_ms": [], "skyfield_ms": []}
    for r in range(repeats):
        tracker = LinkTracker(model, list_below_mask=False)
        base = r * 10_000
        tracker.step(base * NS_PER_S)  # first step looks back for acquisition; not timed
        results["link_state_ms"].append(
            1e3 * per_call(lambda k, b=base, tr=tracker: tr.step((b + 1 + k) * NS_PER_S), steps)
        )
        results["propagation_ms"].append(
            1e3 * per_call(lambda k, b=base: orbits.propagate([(b + k) * NS_PER_S]), steps)
        )
    # skyfield baseline: one satellite at a time (fewer calls: it is slow).
    from skyfield.api import EarthSatellite
    from skyfield.framelib import itrs

    from netemu.orbits import satrec_tle_lines

    ts = timescale()
    sats = [EarthSatellite(*satrec_tle_lines(s), ts=ts) for s in orbits.satrecs]
    for r in range(repeats):
        t = sc.timebase.skyfield_time(r * 60 * NS_PER_S)
        t0 = time.perf_counter()
        for sat in sats:
            sat.at(t).frame_xyz(itrs)
        results["skyfield_ms"].append(1e3 * (time.perf_counter() - t0))
    state = tracker.step((base + steps + 2) * NS_PER_S)
    results["rows"] = len(state)
    results["links_up"] = int(state.up.sum())
    results["candidates"] = len(model)
    return results


def bench_plan(repeats: int) -> dict:
    sc = load_scenario(REPO / "topologies" / "iridium-next.yaml")
    times = []
    n = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        plan = generate_plan(sc, duration_s=86_400)
        times.append(time.perf_counter() - t0)
        n = len(plan)
    return {"plan_24h_s": times, "contacts": n}


def summary(values):
    return statistics.median(values), min(values), max(values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200, help="epochs timed per repeat")
    ap.add_argument("--plan-repeats", type=int, default=3)
    ap.add_argument("--json", help="also write raw results here")
    args = ap.parse_args()
    ls = bench_link_state(args.repeats, args.steps)
    pl = bench_plan(args.plan_repeats)
    state_ms = summary(ls["link_state_ms"])
    prop_ms = summary(ls["propagation_ms"])
    sky_ms = summary(ls["skyfield_ms"])
    plan_s = summary(pl["plan_24h_s"])
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, numpy {np.__version__}"
    )
    print()
    print("| measurement | median | min | max | target |")
    print("|---|---|---|---|---|")
    print(
        f"| link state per epoch, Starlink shell 1 + 100 GS ({ls['rows']} rows, "
        f"{ls['links_up']} up) | {state_ms[0]:.2f} ms | {state_ms[1]:.2f} | {state_ms[2]:.2f} "
        f"| <= 5 ms |"
    )
    print(
        f"| floor: SatrecArray propagation, 1,584 satellites | {prop_ms[0]:.2f} ms | "
        f"{prop_ms[1]:.2f} | {prop_ms[2]:.2f} | |"
    )
    print(
        f"| baseline: skyfield, one satellite at a time (positions only) | {sky_ms[0]:.0f} ms "
        f"| {sky_ms[1]:.0f} | {sky_ms[2]:.0f} | |"
    )
    print(
        f"| contact plan 24 h, Iridium-like 66 + 20 GS ({pl['contacts']} contacts) | "
        f"{plan_s[0]:.2f} s | {plan_s[1]:.2f} | {plan_s[2]:.2f} | <= 10 s |"
    )
    print()
    print(
        f"link state / propagation floor: {state_ms[0] / prop_ms[0]:.1f}x; "
        f"skyfield baseline / link state: {sky_ms[0] / state_ms[0]:.0f}x"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"link_state": ls, "plan": pl}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
