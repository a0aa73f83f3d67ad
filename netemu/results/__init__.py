"""Results of a run: ``OUT/summary.json``, ``OUT/deliveries.csv`` and the PNG plots.

:func:`build_results` reads what the processes of a run left in ``OUT/run/`` (event logs,
final counters, ``epochs.csv``, ``liveness.csv``; see docs/runtime.md and docs/results.md) and
writes the results next to it. It never raises for missing or damaged run files: what it could
not read is listed in ``summary["balance"]["problems"]`` or shows as ``None``.

>>> from netemu.runtime.layout import RunLayout                      # doctest: +SKIP
>>> summary = build_results(RunLayout("out"), scenario, options={"duration": "60s"})  # +SKIP
>>> summary["balance"]["ok"]                                          # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np

from ..runtime.layout import RunLayout
from ..scenario.model import Scenario
from ..timebase import NS_PER_S

__all__ = ["build_results"]

log = logging.getLogger(__name__)

DEFAULT_GRACE_EPOCHS = 2
DEFAULT_GRACE_SLACK_NS = NS_PER_S


def _event_paths(layout: RunLayout) -> list:
    events_dir = layout.run_dir / "events"
    if not events_dir.is_dir():
        return []
    return sorted(p for p in events_dir.glob("*.csv") if p.stem.isdigit() or p.stem == "fabric")


def build_results(layout: RunLayout, scenario: Scenario, *, options: dict) -> dict[str, Any]:
    """Read the run files below ``layout.out``, write the results, return the summary dict.

    ``options`` are the run's options (stored in ``summary["run"]["options"]``). Keys read:
    ``duration_ns`` / ``duration_s`` / ``duration`` (end of the run; default: ``run.json``,
    then the last event), ``epoch_ns`` / ``epoch_s`` / ``epoch`` (controller epoch),
    ``flows`` or ``traffic`` (flow names), ``plots`` (False: no PNGs), ``geometry`` (False: no
    geometric path delay), ``lost_with_node_grace_s`` (default two epochs + 1 s),
    ``topology_t_s`` (instant of the topology plot; default mid-run),
    ``topology_window_s`` (ground-track half window, default 900 s).
    """
    from .accounting import account_packets
    from .deliveries import delivery_table, write_deliveries_csv
    from .events import NA, read_event_files
    from .summary import (
        balance_section,
        external_numbers,
        external_section,
        faults_section,
        fidelity_section,
        flow_specs,
        flows_section,
        frames_section,
        links_section,
        nodes_section,
        packets_section,
        read_json,
        resolve_ns,
        routes_section,
        run_section,
    )

    options = dict(options or {})
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 4)
        return now

    t = started
    run_json = read_json(layout.run_json)
    table = read_event_files(_event_paths(layout))
    t = lap("read_events_s", t)

    duration_ns = resolve_ns(options, run_json, ("duration",))
    if duration_ns is None and len(table):
        valid_t = table.ints["t_ns"][table.ints["t_ns"] != NA]
        duration_ns = int(valid_t.max()) if valid_t.size else None
    epoch_ns = resolve_ns(options, run_json, ("epoch",))
    problems: list[str] = []
    fabric_final = read_json(layout.final("fabric"))
    if fabric_final is None:
        problems.append("final/fabric.json missing or unreadable")
    if not layout.events("fabric").exists():
        problems.append("events/fabric.csv missing")

    nodes, deaths_ns = nodes_section(layout, scenario, duration_ns)
    grace_s = options.get("lost_with_node_grace_s")
    if grace_s is not None:
        grace_ns = round(float(grace_s) * NS_PER_S)
    else:
        grace_ns = DEFAULT_GRACE_EPOCHS * (epoch_ns or NS_PER_S) + DEFAULT_GRACE_SLACK_NS
    account = account_packets(table, deaths_ns=deaths_ns, grace_ns=grace_ns)
    t = lap("account_s", t)

    model = None
    if options.get("geometry", True) or options.get("plots", True):
        from ..links import link_model

        model = link_model(scenario)
    deliveries = delivery_table(
        account, table, scenario, model=model if options.get("geometry", True) else None
    )
    t = lap("deliveries_s", t)

    packets = packets_section(account, table, external=external_numbers(options, run_json))
    frames = frames_section(fabric_final)
    specs = flow_specs(layout, options)
    summary: dict[str, Any] = {
        "version": 1,
        "run": run_section(options, scenario, run_json, duration_ns, epoch_ns),
        "frames": frames,
        "packets": packets,
        "balance": balance_section(packets, frames, problems),
        "flows": flows_section(account, deliveries, specs, scenario),
        "links": links_section(fabric_final, scenario),
        "fidelity": fidelity_section(fabric_final),
        "routes": routes_section(layout),
        "nodes": nodes,
        "external": external_section(options, run_json, packets, scenario),
        "faults": faults_section(layout, table, duration_ns),
        "events": {
            "files": table.files,
            "rows": len(table),
            "skipped_rows": table.skipped_rows,
            "truncated_files": table.truncated_files,
            "other_events": table.other_events,
        },
    }
    geo = deliveries["geometric_delay_s"]
    excess = deliveries["excess_s"][np.isfinite(geo)]
    summary["latency"] = {
        "delivered": int(geo.size),
        "with_geometry": int(np.count_nonzero(np.isfinite(geo))),
        "excess_p50_s": float(np.percentile(excess, 50)) if excess.size else None,
        "excess_p99_s": float(np.percentile(excess, 99)) if excess.size else None,
        "excess_min_s": float(excess.min()) if excess.size else None,
    }
    layout.out.mkdir(parents=True, exist_ok=True)
    write_deliveries_csv(layout.deliveries_csv, deliveries)
    t = lap("summarise_s", t)

    if options.get("plots", True):
        from .plots import plot_latency, plot_topology

        names = {f["flow_id"]: f["name"] for f in summary["flows"]}
        plot_latency(
            layout.latency_png,
            deliveries,
            names,
            title=f"{scenario.name}: end-to-end latency per flow vs geometric path delay",
        )
        t_topo = options.get("topology_t_s")
        t_topo_ns = (
            round(float(t_topo) * NS_PER_S) if t_topo is not None else (duration_ns or 0) // 2
        )
        dead_then = [d["number"] for d in nodes["died"] if d["t_ns"] <= t_topo_ns]
        try:
            plot_topology(
                layout.topology_png,
                model,
                t_topo_ns,
                title=f"{scenario.name}: ground tracks and links up",
                window_s=float(options.get("topology_window_s", 900.0)),
                exclude_numbers=dead_then,
            )
        except Exception:  # noqa: BLE001 - a plot must never lose the summary
            log.exception("topology plot failed")
        t = lap("plots_s", t)

    timings["total_s"] = round(time.perf_counter() - started, 4)
    summary["timing"] = timings
    layout.summary_json.write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    log.info(
        "results: %d packets originated, %d delivered, balance %s (%.2f s)",
        packets["originated"],
        packets["delivered"],
        "ok" if summary["balance"]["ok"] else "NOT ok",
        timings["total_s"],
    )
    return summary
