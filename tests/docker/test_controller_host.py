"""``netemu controller``: the controller of a run whose processes it does not start (what the
compose file's ``controller`` service runs), here with the fabric and the nodes started as
plain processes on loopback from the configs ``netemu compose`` wrote. No Docker needed."""

from __future__ import annotations

import dataclasses
import json
import socket
import sys
import time
from pathlib import Path

import pytest

from netemu.control.broker import free_port
from netemu.runtime.compose import write_compose
from netemu.runtime.config import FabricHostConfig, NodeHostConfig, load_config, save_config
from netemu.runtime.controller_host import (
    READY_FILE,
    load_controller_config,
    save_controller_config,
)
from netemu.runtime.supervisor import ProcessSupervisor
from netemu.scenario import load_scenario

DATA = Path(__file__).parent / "data"
RING = DATA / "ring8.yaml"
TRAFFIC = DATA / "ring8-traffic.yaml"


@pytest.mark.integration
@pytest.mark.slow
def test_controller_with_externally_started_processes(tmp_path):
    project = write_compose(
        RING, tmp_path / "c.yml", duration_s=8, routing="snapshot", traffic=str(TRAFFIC)
    )
    out = project.out
    cfg_dir = out / "run" / "config"
    # the compose configs, moved from container names to loopback
    broker_port = free_port()
    fabric_port = free_port("127.0.0.1", socket.SOCK_DGRAM)
    url = f"mqtt://127.0.0.1:{broker_port}"
    ctl = load_controller_config(cfg_dir / "controller.json")
    save_controller_config(
        dataclasses.replace(
            ctl,
            scenario=str(RING),
            out=str(out),
            broker_url=url,
            broker_listen=f"127.0.0.1:{broker_port}",
        ),
        cfg_dir / "controller.json",
    )
    fabric = load_config(cfg_dir / "fabric.json", FabricHostConfig)
    save_config(
        dataclasses.replace(
            fabric, udp_host="127.0.0.1", udp_port=fabric_port, broker_url=url, out=str(out)
        ),
        cfg_dir / "fabric.json",
    )
    scenario = load_scenario(RING)
    for node in scenario.nodes:
        path = cfg_dir / f"{node.name}.json"
        cfg = load_config(path, NodeHostConfig)
        save_config(
            dataclasses.replace(
                cfg,
                fabric_host="127.0.0.1",
                fabric_port=fabric_port,
                broker_url=url,
                out=str(out),
                app_host="127.0.0.1",
                app_port=0,
            ),
            path,
        )
    py = [sys.executable, "-m", "netemu"]
    sup = ProcessSupervisor()
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        controller = sup.start(
            "controller",
            [*py, "controller", "--config", str(cfg_dir / "controller.json")],
            log_path=logs / "controller.log",
        )
        ready = out / "run" / READY_FILE
        deadline = time.monotonic() + 60
        while not ready.exists() and controller.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.read_text().strip() == socket.gethostname()
        sup.start(
            "fabric",
            [*py, "fabric", "--config", str(cfg_dir / "fabric.json")],
            log_path=logs / "fabric.log",
        )
        for node in scenario.nodes:
            sup.start(
                node.name,
                [*py, "node", "--config", str(cfg_dir / f"{node.name}.json")],
                log_path=logs / f"{node.name}.log",
                number=node.number,
            )
        controller.proc.wait(timeout=120)
        assert controller.returncode == 0, (logs / "controller.log").read_text()[-2000:]
        # everything it waited for has exited by itself
        deadline = time.monotonic() + 10
        while any(c.running for c in sup.children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [c.name for c in sup.children if c.running] == []
    finally:
        sup.end_all(grace_s=3.0)
    summary = json.loads((out / "summary.json").read_text())
    packets = summary["packets"]
    assert packets["originated"] >= 200
    assert packets["delivered"] >= 0.9 * packets["originated"], packets
    assert packets["unaccounted"] == 0
    assert not (out / "run" / READY_FILE).exists()
    assert "run finished" in (logs / "controller.log").read_text()
