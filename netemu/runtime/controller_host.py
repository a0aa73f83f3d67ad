"""``netemu controller --config F``: the controller of a run whose fabric and nodes are started
by something else (``netemu compose``: one container each), then the results.

It is the launcher without the processes: optionally it serves the embedded MQTT broker itself
(``broker_listen``), clears the previous run's result files in ``out`` (never ``run/config``),
writes ``OUT/run/controller.ready`` holding its host name (a compose health check waits for it
before the fabric and the nodes start, so none of them writes into files about to be cleared),
waits until every node and the fabric report ready, runs the epochs, stops the run, waits for
their final files and builds the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import NetemuError
from ..timebase import NS_PER_S
from .layout import RunLayout

__all__ = ["ControllerHostConfig", "load_controller_config", "run_controller"]

log = logging.getLogger(__name__)

READY_FILE = "controller.ready"
#: How long the fabric and the nodes get to write their final files after ``run {stopped}``.
FINAL_TIMEOUT_S = 15.0


@dataclass(frozen=True, kw_only=True)
class ControllerHostConfig:
    """What ``netemu controller`` needs. ``scenario`` is a path as seen by the controller;
    ``broker_listen`` (``HOST:PORT``) serves the embedded broker there, else ``broker_url``
    must already run."""

    run_id: str
    scenario: str
    broker_url: str
    out: str
    epoch_ns: int
    duration_ns: int
    routing: str = "snapshot"
    traffic: str | None = None
    seed: int = 0
    broker_listen: str | None = None
    ready_timeout_s: float = 120.0
    external: list[int] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if not self.broker_url.startswith("mqtt://"):
            raise NetemuError(f"broker_url must look like mqtt://HOST:PORT, got {self.broker_url}")
        if self.epoch_ns <= 0 or self.duration_ns <= 0:
            raise NetemuError("epoch_ns and duration_ns must be > 0")


def save_controller_config(config: ControllerHostConfig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"config": type(config).__name__, **dataclasses.asdict(config)}
    path.write_text(json.dumps(data, indent=1))
    return path


def load_controller_config(path: str | Path) -> ControllerHostConfig:
    from .config import load_config

    return load_config(path, ControllerHostConfig)


def _clear_previous(layout: RunLayout) -> None:
    for sub in ("events", "final", "logs"):
        d = layout.run_dir / sub
        if d.is_dir():
            shutil.rmtree(d)
    for path in (
        layout.epochs_csv,
        layout.liveness_csv,
        layout.summary_json,
        layout.deliveries_csv,
        layout.latency_png,
        layout.topology_png,
        layout.run_dir / READY_FILE,
    ):
        path.unlink(missing_ok=True)
    layout.create()


def _start_broker(listen: str, log_path: Path) -> subprocess.Popen:
    from ..control.broker import wait_for_port

    host, _, port = listen.rpartition(":")
    cmd = [sys.executable, "-m", "netemu.control.broker", "--host", host, "--port", port]
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        wait_for_port(probe, int(port), timeout_s=20.0, proc=proc)
    except BaseException:
        _stop(proc)
        raise
    return proc


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_controller(config: ControllerHostConfig) -> dict:
    """Run the controller of an externally started run and return the summary."""
    from ..scenario import load_scenario

    scenario = load_scenario(Path(config.scenario))
    layout = RunLayout(Path(config.out))
    _clear_previous(layout)
    broker = None
    stats: dict = {}
    try:
        if config.broker_listen:
            broker = _start_broker(config.broker_listen, layout.log("broker"))
        (layout.run_dir / READY_FILE).write_text(socket.gethostname() + "\n")
        stats = asyncio.run(_drive(config, scenario, layout))
    finally:
        (layout.run_dir / READY_FILE).unlink(missing_ok=True)
        _stop(broker)
    from ..results import build_results

    options = {
        "duration_s": config.duration_ns / NS_PER_S,
        "epoch_s": config.epoch_ns / NS_PER_S,
        "routing": config.routing,
        "traffic": config.traffic,
        "seed": config.seed,
        "run_id": config.run_id,
        "broker_url": config.broker_url,
        "scenario": config.scenario,
        "isolation": "compose",
        "run": stats,
    }
    return build_results(layout, scenario, options=options)


async def _drive(config: ControllerHostConfig, scenario, layout: RunLayout) -> dict:
    from ..control.controller import Controller

    ctl = Controller(
        scenario,
        run_id=config.run_id,
        broker_url=config.broker_url,
        epoch_ns=config.epoch_ns,
        duration_ns=config.duration_ns,
        routing=config.routing,
        layout=layout,
        run_info={"out": config.out},
        external=set(config.external),
    )
    stats: dict = {}
    async with ctl:
        t = time.monotonic()
        ready = await ctl.wait_ready(timeout_s=config.ready_timeout_s)
        log.info("processes ready after %.1f s", time.monotonic() - t)
        if ready:
            stats = await ctl.run()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ctl.stop_run(), timeout=5)
        await _wait_finals(layout, scenario, timeout_s=FINAL_TIMEOUT_S, skip=set(config.external))
    stats.setdefault("stop_reason", ctl.stop_reason)
    stats.setdefault("dead_nodes", sorted(ctl.dead))
    stats.setdefault("epochs", len(ctl.epochs))
    stats["run_id"] = config.run_id
    stats["state"] = "finished"
    return stats


async def _wait_finals(layout: RunLayout, scenario, *, timeout_s: float, skip: set[int]) -> None:
    """Wait until every node (but external ones) and the fabric wrote their final file."""
    wanted = [layout.final(n.number) for n in scenario.nodes if n.number not in skip]
    wanted.append(layout.final("fabric"))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        missing = [p for p in wanted if not p.exists()]
        if not missing:
            return
        await asyncio.sleep(0.1)
    log.warning("%d final files missing after %.0f s", len(missing), timeout_s)
