"""``netemu run``: a live emulation of a scenario (broker, fabric, one process per node,
controller), then the results (docs/runtime.md, docs/control.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import NetemuError
from .common import console, duration_arg

DEFAULT_DURATION = "60s"
DEFAULT_EPOCH = "1s"
DEFAULT_ROUTING = "cgr"
DEFAULT_TRAFFIC = "ground-to-ground"
_BROKER_KINDS = ("auto", "amqtt", "mosquitto")


def add_scenario_run_options(
    p: argparse.ArgumentParser, *, duration: str, verb: str, out_prefix: str
) -> None:
    """SCENARIO, --duration, --epoch, --routing, --traffic, --out and --capture, shared by
    ``run`` and ``simulate``."""
    p.add_argument("scenario", metavar="SCENARIO", help="scenario YAML")
    p.add_argument(
        "--duration",
        type=duration_arg,
        default=duration,
        metavar="DURATION",
        help=f"scenario time to {verb}, e.g. 90s, 10m, 1h (default {duration})",
    )
    p.add_argument(
        "--epoch",
        type=duration_arg,
        default=DEFAULT_EPOCH,
        metavar="DURATION",
        help=f"routing epoch: links and routes are recomputed this often (default {DEFAULT_EPOCH})",
    )
    p.add_argument(
        "--routing",
        default=DEFAULT_ROUTING,
        metavar="SCHEME",
        help=f"cgr | snapshot | minhop | module:Class | file.py:Class (default {DEFAULT_ROUTING})",
    )
    p.add_argument(
        "--traffic",
        default=DEFAULT_TRAFFIC,
        metavar="FILE|PRESET",
        help="traffic YAML, or a preset: ground-to-ground, eo-to-ground, compute-offload, none "
        f"(default {DEFAULT_TRAFFIC})",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"output directory (default out/{out_prefix}-SCENARIO)",
    )
    p.add_argument("--capture", action="store_true", help="write pcapng captures of every link")


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="emulate a scenario live: one process per node, routes pushed every epoch",
        description="Start an MQTT broker (unless --broker), the link fabric and one process per "
        "satellite and ground station; every epoch the controller recomputes the links from "
        "orbital geometry and the routes with --routing, and pushes them over MQTT. Traffic from "
        "--traffic runs for --duration of scenario time; then the run stops and the results "
        "(summary.json, deliveries.csv, plots, captures with --capture) are written to --out. "
        "OUT/run/run.json tells netemu ping/trace and mosquitto_sub where the run is.",
    )
    add_scenario_run_options(p, duration=DEFAULT_DURATION, verb="emulate", out_prefix="run")
    p.add_argument(
        "--broker",
        default="amqtt",
        metavar="mqtt://HOST:PORT|amqtt|mosquitto|auto",
        help="use this MQTT broker, or start a private one: amqtt (the default: embedded, pure "
        "Python), mosquitto (Debian's package), auto (mosquitto when installed, else amqtt)",
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument(
        "--app-port-base",
        type=int,
        default=None,
        metavar="N",
        help="node i's application port is N + i (default: the OS picks; see run.json)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no live progress display on the terminal"
    )
    p.add_argument(
        "--isolation",
        default="process",
        choices=("process", "netns", "docker"),
        help="process: plain processes on loopback (the default); netns: one network namespace "
        "per node (root); docker: one container per node, image NETEMU_DOCKER_IMAGE, a private "
        "dockerd when none runs (docs/docker.md). `netemu clean` removes what a killed run left",
    )
    p.add_argument(
        "--faults",
        default=None,
        metavar="FILE",
        help="fault schedule (YAML: faults with at_s times; see docs/faults.md)",
    )
    p.add_argument(
        "--external",
        action="append",
        default=[],
        metavar="NODE=COMMAND",
        help="run COMMAND instead of netemu's node for NODE (name or number): a second SGP "
        "implementation attached to the fabric; {number}, {fabric_port}, ... are replaced "
        "(docs/external.md). With --isolation docker: NODE=IMAGE [ARGS], a container of "
        "your image (docs/docker.md). Repeatable",
    )
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from ..runtime.launcher import run_emulation

    if args.duration <= 0:
        raise NetemuError("--duration must be > 0")
    if args.epoch <= 0:
        raise NetemuError("--epoch must be > 0")
    if args.app_port_base is not None and not 1024 <= args.app_port_base <= 65000:
        raise NetemuError(f"--app-port-base must be in 1024..65000, got {args.app_port_base}")
    summary = run_emulation(
        args.scenario,
        duration_s=args.duration,
        epoch_s=args.epoch,
        routing=args.routing,
        traffic=args.traffic,
        out=args.out,
        capture=args.capture,
        broker_url=None if args.broker in _BROKER_KINDS else args.broker,
        broker_kind=args.broker if args.broker in _BROKER_KINDS else "auto",
        seed=args.seed,
        app_port_base=args.app_port_base,
        progress=not args.no_progress,
        isolation=args.isolation,
        external=args.external,
        faults=args.faults,
    )
    from ..runtime.layout import RunLayout
    from ..scenario import load_scenario

    out = Path(args.out) if args.out else Path("out") / f"run-{load_scenario(args.scenario).name}"
    print_report(summary, RunLayout(out))
    return 130 if run_stats(summary).get("stop_reason") == "interrupted" else 0


def run_stats(summary: dict) -> dict:
    """The launcher's run statistics (stop reason, epochs, offline nodes) in a summary: the
    ``run`` section itself, or ``run.options.run`` when the results put the options there."""
    run = summary.get("run")
    if not isinstance(run, dict):
        return {}
    if "stop_reason" in run:
        return run
    nested = run.get("options", {}).get("run") if isinstance(run.get("options"), dict) else None
    return nested if isinstance(nested, dict) else run


def key_numbers(summary: dict) -> dict:
    """Sent/delivered/dropped packets, frames and the delay error p99 from a summary (tolerant
    of sections that are missing)."""
    packets = summary.get("packets") if isinstance(summary.get("packets"), dict) else {}
    frames = summary.get("frames") if isinstance(summary.get("frames"), dict) else {}
    fidelity = summary.get("fidelity") if isinstance(summary.get("fidelity"), dict) else {}
    dropped = packets.get("dropped_total", packets.get("dropped"))
    if isinstance(dropped, dict):
        dropped = sum(v for v in dropped.values() if isinstance(v, int))
    return {
        "sent": packets.get("originated", packets.get("sent")),
        "delivered": packets.get("delivered"),
        "dropped": dropped,
        "held_at_end": packets.get("held_at_end"),
        "in_flight_at_end": packets.get("in_flight_at_end"),
        "frames_sent": frames.get("sent"),
        "delay_error_p99_s": fidelity.get("delay_error_p99_s", fidelity.get("p99_s")),
    }


def print_report(summary: dict, layout) -> None:
    con = console()
    run = run_stats(summary)
    stop = run.get("stop_reason")
    con.print(f"[bold]run finished[/] ({stop or 'done'}); results in {layout.out}")
    files = [
        ("summary", layout.summary_json),
        ("deliveries", layout.deliveries_csv),
        ("latency plot", layout.latency_png),
        ("topology plot", layout.topology_png),
        ("captures", layout.merged_capture),
        ("run files", layout.run_dir),
    ]
    for label, path in files:
        if path.exists():
            con.print(f"  {label:<14} {path}")
    n = key_numbers(summary)
    if n["sent"] is not None:
        p99 = n["delay_error_p99_s"]
        fid = f"{p99 * 1e3:.3f} ms" if isinstance(p99, int | float) else "n/a"
        con.print(
            f"  packets: sent {n['sent']}, delivered {n['delivered']}, dropped {n['dropped']}, "
            f"held at end {n['held_at_end']}, in flight at end {n['in_flight_at_end']}; "
            f"link delay error p99 {fid}"
        )
    dead = run.get("dead_nodes")
    if dead:
        con.print(f"  nodes that went offline: {', '.join(str(d) for d in dead)}")
    if summary.get("results_error"):
        print(f"netemu: warning: results incomplete: {summary['results_error']}", file=sys.stderr)
