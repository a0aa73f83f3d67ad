"""``simulate()``: one run in virtual time with the outputs of ``netemu run``.

Writes ``OUT/run/`` (run.json, config/, events/, final/, epochs.csv) as a live run does, builds
the results with :func:`netemu.results.build_results`, then makes ``summary.json`` a pure
function of scenario, options and seed: the wall-clock parts of the summary (``timing``,
``routes.compute_s``) move to ``OUT/run/sim.json`` together with the speed-up, events per
second and peak memory. ``routes.control`` carries the control-plane load the controller would
have published (table updates and their bytes).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from ..errors import NetemuError
from ..runtime.config import NodeHostConfig, save_config
from ..runtime.layout import RunLayout
from ..timebase import NS_PER_S, format_utc

__all__ = ["ROUTE_WORKER_MIN_NODES", "simulate"]

#: Scenarios with this many nodes compute their routes in a second process by default (below,
#: an epoch's routes take a few milliseconds and a process would cost more than it saves).
ROUTE_WORKER_MIN_NODES = 500

log = logging.getLogger(__name__)


def simulate(
    scenario_path: str | os.PathLike,
    *,
    duration_s: float,
    epoch_s: float = 1.0,
    routing: str = "snapshot",
    traffic: str | None = "ground-to-ground",
    out: str | os.PathLike | None = None,
    capture: bool = False,
    seed: int = 0,
    progress: bool = True,
    route_worker: bool | None = None,
) -> dict:
    """Simulate ``scenario_path`` for ``duration_s`` of scenario time; return the summary
    (exactly what is written to ``OUT/summary.json``).

    Same options and outputs as :func:`netemu.runtime.launcher.run_emulation`; ``out``
    defaults to ``out/sim-<scenario name>``. The same scenario, options and seed give a
    byte-identical ``summary.json`` and captures. Wall-clock measurements (speed-up over real
    time, events/s, route compute times, peak RSS) are in ``OUT/run/sim.json``.

    ``route_worker``: compute each epoch's routes one epoch ahead in a second process (the
    default for scenarios of :data:`ROUTE_WORKER_MIN_NODES` nodes or more on a machine with
    more than one CPU); it never changes a result.

    >>> summary = simulate("topologies/demo-small.yaml", duration_s=10)   # doctest: +SKIP
    >>> summary["balance"]["ok"], summary["packets"]["delivered"] > 0     # doctest: +SKIP
    (True, True)
    """
    from ..routing import load_scheme
    from ..runtime.launcher import dtn_ns
    from ..scenario import load_scenario
    from .engine import Simulation

    scenario = load_scenario(Path(scenario_path))
    load_scheme(routing)  # a bad --routing fails before anything is written
    if duration_s <= 0 or epoch_s <= 0:
        raise NetemuError("duration and epoch must be > 0")
    if epoch_s > duration_s:
        raise NetemuError(f"the epoch ({epoch_s:g} s) is longer than the run ({duration_s:g} s)")
    if route_worker is None:
        route_worker = len(scenario.nodes) >= ROUTE_WORKER_MIN_NODES and (os.cpu_count() or 1) > 1
    duration_ns = int(round(duration_s * NS_PER_S))
    epoch_ns = int(round(epoch_s * NS_PER_S))
    out_dir = Path(out) if out is not None else Path("out") / f"sim-{scenario.name}"
    layout = RunLayout(out_dir)
    _prepare_out(layout)
    traffic_obj = None
    if traffic not in (None, "", "none"):
        from ..traffic import load_traffic

        traffic_obj = load_traffic(traffic, scenario, duration_ns=duration_ns, seed=seed)
    run_id = f"sim-{int(seed)}"
    options = {
        "mode": "simulate",
        "duration_s": duration_ns / NS_PER_S,
        "epoch_s": epoch_ns / NS_PER_S,
        "routing": routing,
        "traffic": traffic,
        "capture": bool(capture),
        "seed": int(seed),
    }
    epoch_dtn = dtn_ns(scenario.epoch_utc)
    _write_configs(layout, scenario, traffic_obj, run_id, epoch_dtn, epoch_ns, duration_ns, seed)
    started_utc = format_utc(dt.datetime.now(dt.UTC))
    _write_run_json(layout, scenario, scenario_path, run_id, options, "running")

    if capture:
        _raise_open_files_limit(len(scenario.nodes) * 4 + 256)  # one capture file per link
    with _Progress(progress and sys.stderr.isatty(), duration_ns) as bar:
        sim = Simulation(
            scenario,
            layout=layout,
            duration_ns=duration_ns,
            epoch_ns=epoch_ns,
            routing=routing,
            traffic=traffic_obj,
            capture=capture,
            seed=seed,
            epoch_dtn_ns=epoch_dtn,
            on_progress=bar.update,
            route_worker=route_worker,
        )
        stats = sim.run()
    stats["run_id"] = run_id
    stats["state"] = "interrupted" if stats["stop_reason"] == "interrupted" else "finished"
    _write_run_json(layout, scenario, scenario_path, run_id, options, stats["state"], stats)

    from ..results import build_results

    t = time.perf_counter()
    summary = build_results(
        layout,
        scenario,
        options={**options, "run_id": run_id, "scenario": str(scenario_path), "run": stats},
    )
    results_s = time.perf_counter() - t
    wall = {
        "started_utc": started_utc,
        **sim.stats,
        "results_s": round(results_s, 3),
        "results_timing": summary.pop("timing", None),
        "route_compute_s_summary": summary.get("routes", {}).pop("compute_s", None),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # the largest child that ended (the route worker, when there was one)
        "children_peak_rss_mib": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "python": sys.version.split()[0],
    }
    routes = summary.setdefault("routes", {})
    routes["control"] = dict(sim.control)
    # the keys netemu compare reads (table_updates comes from epochs.csv, as in a live run)
    routes["table_bytes"] = sim.control["table_bytes"]
    layout.summary_json.write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    (layout.run_dir / "sim.json").write_text(json.dumps(wall, indent=1) + "\n")
    log.info(
        "simulated %.1f s in %.1f s (x%.2f), %d events",
        duration_ns / NS_PER_S,
        sim.stats["wall_s"],
        sim.stats["speedup"] or 0,
        sim.stats["events"],
    )
    return summary


def _raise_open_files_limit(wanted: int) -> None:
    """Raise the soft limit on open files towards ``wanted`` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit to %d: %s", target, exc)


def _prepare_out(layout: RunLayout) -> None:
    for old in (layout.run_dir, layout.captures_dir):
        if old.is_dir():
            shutil.rmtree(old)
    for old in (layout.summary_json, layout.deliveries_csv, layout.latency_png,
                layout.topology_png):  # fmt: skip
        old.unlink(missing_ok=True)
    layout.create()


def _write_configs(layout, scenario, traffic, run_id, epoch_dtn, epoch_ns, duration_ns, seed):
    """The node config files a live run would start its processes with (the results read the
    flow names from them). No broker, no fabric address: nothing is started."""
    common = {
        "run_id": run_id,
        "broker_url": "mqtt://none:0",
        "out": str(layout.out),
        "epoch_utc": format_utc(scenario.epoch_utc),
        "epoch_dtn_ns": epoch_dtn,
        "epoch_ns": epoch_ns,
        "duration_ns": duration_ns,
        "seed": int(seed),
    }
    for node in scenario.nodes:
        flows = [f.to_dict() for f in traffic.flows_from(node.number)] if traffic else []
        responders = [r.to_dict() for r in traffic.responders_at(node.number)] if traffic else []
        if not flows and not responders:
            continue
        cfg = NodeHostConfig(
            **common,
            number=node.number,
            name=node.name,
            kind=node.kind,
            fabric_host="",
            fabric_port=0,
            flows=flows,
            responders=responders,
        )
        save_config(cfg, layout.config(node.name))


def _write_run_json(layout, scenario, scenario_path, run_id, options, state, result=None):
    data = {
        "run_id": run_id,
        "mode": "simulate",
        "state": state,
        "broker_url": None,
        "scenario": str(scenario_path),
        "scenario_name": scenario.name,
        "out": str(layout.out),
        "options": options,
        "pids": {},
        "nodes": {
            n.name: {"number": n.number, "pid": None, "app_port": None} for n in scenario.nodes
        },  # fmt: skip
    }
    if result:
        data["result"] = result
    layout.run_json.write_text(json.dumps(data, indent=1))


class _Progress:
    """A rich progress bar on stderr: scenario time and the speed-up over real time."""

    def __init__(self, enabled: bool, duration_ns: int):
        self.enabled = enabled
        self.duration_ns = duration_ns
        self._progress = None
        self._task = None
        self._last = 0.0

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("simulating"),
                BarColumn(),
                TextColumn("{task.fields[scenario]}"),
                TextColumn("[bold]x{task.fields[speedup]}[/] real time"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "sim", total=self.duration_ns, scenario="t = 0 s", speedup="-"
            )
        return self

    def update(self, t_ns: int, loop_s: float) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and t_ns < self.duration_ns:
            return
        self._last = now
        speed = f"{t_ns / NS_PER_S / loop_s:.1f}" if loop_s > 0 else "-"
        total_s = self.duration_ns / NS_PER_S
        self._progress.update(
            self._task,
            completed=t_ns,
            scenario=f"t = {t_ns / NS_PER_S:.1f} / {total_s:g} s",
            speedup=speed,
        )

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
