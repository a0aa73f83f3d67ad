"""``netemu compose``: the generated Compose file (structure, configs, external images) and its
validation by docker compose / docker-compose where installed. No Docker engine needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from netemu.cli import main
from netemu.errors import NetemuError
from netemu.runtime.compose import check_with_docker_compose, service_name, write_compose
from netemu.runtime.config import FabricHostConfig, NodeHostConfig, load_config
from netemu.runtime.controller_host import load_controller_config
from netemu.scenario import load_scenario

DATA = Path(__file__).parent / "data"
RING = DATA / "ring8.yaml"
TRAFFIC = DATA / "ring8-traffic.yaml"


def test_service_names():
    assert service_name("ring-p01-s01") == "ring-p01-s01"
    assert service_name("GS New York") == "gs-new-york"
    assert service_name("fabric") == "node-fabric"
    assert service_name("_x") == "node-_x"  # must start with a letter or digit


def test_compose_structure(tmp_path):
    out = tmp_path / "deploy" / "docker-compose.yml"
    project = write_compose(
        RING, out, image="netemu-node:test", duration_s=8, traffic=str(TRAFFIC), routing="minhop"
    )
    scenario = load_scenario(RING)
    doc = yaml.safe_load(out.read_text())
    services = doc["services"]
    names = [n.name for n in scenario.nodes]
    assert len(names) == 8
    assert list(services) == ["controller", "fabric", *names]
    assert project.node_services == {n: n for n in names}
    assert doc["networks"] == {"netemu": {"driver": "bridge"}}
    for name, svc in services.items():
        assert svc["image"] == "netemu-node:test", name
        assert "./out:/netemu/out" in svc["volumes"], name
        nets = svc["networks"]
        assert "netemu" in nets, name
    # the controller serves the broker under the alias the configs use, and gates the others
    ctl = services["controller"]
    assert ctl["networks"] == {"netemu": {"aliases": ["broker"]}}
    assert ctl["command"][:2] == ["netemu", "controller"]
    assert ctl["healthcheck"]["test"][0] == "CMD-SHELL"
    assert f"{RING.parent.resolve()}:/netemu/scenario:ro" in ctl["volumes"]
    assert services["fabric"]["depends_on"] == {"controller": {"condition": "service_healthy"}}
    for name in names:
        svc = services[name]
        assert svc["command"] == [
            "netemu",
            "node",
            "--config",
            f"/netemu/out/run/config/{name}.json",
        ]
        assert svc["depends_on"]["controller"] == {"condition": "service_healthy"}
    # the configs next to the file: same run id, addresses by service name
    cfg_dir = project.out / "run" / "config"
    fabric = load_config(cfg_dir / "fabric.json", FabricHostConfig)
    assert (fabric.udp_host, fabric.udp_port) == ("0.0.0.0", 5000)
    assert fabric.node_names == names
    assert fabric.run_id == project.run_id
    flows = 0
    for node in scenario.nodes:
        cfg = load_config(cfg_dir / f"{node.name}.json", NodeHostConfig)
        assert (cfg.fabric_host, cfg.fabric_port) == ("fabric", 5000)
        assert cfg.broker_url == "mqtt://broker:1883"
        assert cfg.out == "/netemu/out" and cfg.run_id == project.run_id
        flows += len(cfg.flows)
    assert flows == 2
    ctl_cfg = load_controller_config(cfg_dir / "controller.json")
    assert ctl_cfg.scenario == "/netemu/scenario/ring8.yaml"
    assert ctl_cfg.broker_listen == "0.0.0.0:1883"
    assert ctl_cfg.routing == "minhop" and ctl_cfg.duration_ns == 8 * 10**9
    assert ctl_cfg.run_id == project.run_id


def test_compose_external_broker_subnet_and_external_image(tmp_path):
    out = tmp_path / "c.yml"
    project = write_compose(
        RING,
        out,
        broker_url="mqtt://10.9.0.5:1883",
        subnet="10.213.0.0/24",
        external=["ring-p01-s03=impl:2 --node {number} --fabric {fabric_host}:{fabric_port}"],
        traffic="none",
    )
    doc = yaml.safe_load(out.read_text())
    services = doc["services"]
    assert services["controller"]["networks"] == ["netemu"]  # no broker alias
    assert doc["networks"]["netemu"]["ipam"] == {"config": [{"subnet": "10.213.0.0/24"}]}
    ext = services["ring-p01-s03"]
    assert ext["image"] == "impl:2"
    assert ext["command"] == ["--node", "3", "--fabric", "fabric:5000"]
    assert ext["environment"]["NETEMU_NODE_NUMBER"] == "3"
    assert ext["environment"]["NETEMU_BROKER_URL"] == "mqtt://10.9.0.5:1883"
    assert ext["environment"]["NETEMU_CONFIG"] == "/netemu/out/run/config/ring-p01-s03.json"
    cfg = json.loads((project.out / "run" / "config" / "controller.json").read_text())
    assert cfg["broker_listen"] is None and cfg["external"] == [3]
    # an image alone keeps the image's own command
    write_compose(RING, out, external=["ring-p01-s04=impl:2"], traffic="none")
    ext = yaml.safe_load(out.read_text())["services"]["ring-p01-s04"]
    assert "command" not in ext and ext["image"] == "impl:2"


def test_compose_errors(tmp_path):
    with pytest.raises(NetemuError, match="no node"):
        write_compose(RING, tmp_path / "c.yml", external=["nope=img"])
    with pytest.raises(NetemuError, match="epoch"):
        write_compose(RING, tmp_path / "c.yml", duration_s=1, epoch_s=2)


def test_regenerating_replaces_old_configs(tmp_path):
    out = tmp_path / "c.yml"
    first = write_compose(RING, out, traffic="none")
    stale = first.out / "run" / "config" / "old-node.json"
    stale.write_text("{}")
    second = write_compose(RING, out, traffic="none")
    assert not stale.exists()
    assert second.run_id != first.run_id


def test_validated_by_docker_compose(tmp_path):
    out = tmp_path / "docker-compose.yml"
    write_compose(RING, out, traffic=str(TRAFFIC), external=["ring-p01-s02=impl:1 {number}"])
    checked = check_with_docker_compose(out)
    if checked is None:
        pytest.skip("neither docker compose nor docker-compose is installed")
    tool, _ = checked
    assert "compose" in tool
    # and a broken file is rejected by the same tool
    doc = yaml.safe_load(out.read_text())
    doc["services"]["fabric"]["depends_on"] = {"nowhere": {"condition": "service_healthy"}}
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(NetemuError, match="rejects"):
        check_with_docker_compose(bad)


def test_cli_compose(tmp_path, capsys):
    out = tmp_path / "x" / "docker-compose.yml"
    code = main(
        ["compose", str(RING), "-o", str(out), "--duration", "10s", "--traffic", str(TRAFFIC)]
    )
    assert code == 0
    assert "controller, fabric and 8 nodes" in capsys.readouterr().out
    assert set(yaml.safe_load(out.read_text())["services"]) >= {"controller", "fabric"}
    assert main(["compose", str(RING), "-o", str(out), "--broker", "tcp://x"]) == 2
    capsys.readouterr()
    code = main(["compose", str(RING), "-o", str(out), "--traffic", "none", "--check"])
    if check_with_docker_compose(out) is None:
        assert code == 2  # --check without a tool is an error, not a silent pass
    else:
        assert code == 0
        assert "config: valid" in capsys.readouterr().out


def test_dockerfile_copies_what_exists(repo_root):
    """docker/Dockerfile (for machines with a registry; not built here) copies paths that
    exist and installs the package from them."""
    text = (repo_root / "docker" / "Dockerfile").read_text()
    assert text.splitlines()[[ln.startswith("FROM") for ln in text.splitlines()].index(True)] == (
        "FROM python:3.11-slim"
    )
    copied = []
    for line in text.splitlines():
        if line.startswith("COPY "):
            copied += line.split()[1:-1]
    assert set(copied) >= {"pyproject.toml", "netemu", "protocols"}
    for path in copied:
        assert (repo_root / path).exists(), path
    assert "pip install --no-cache-dir ." in text
