"""``netemu compose``: a Docker Compose file that runs a whole emulation with the netemu image.

Services, all on one private bridge network ``netemu``:

* ``controller``: ``netemu controller`` (netemu.runtime.controller_host) - serves the embedded
  MQTT broker (network alias ``broker``) unless ``broker_url`` names another one, runs the
  epochs and writes the results; its health check passes once it has cleared the previous
  run's files;
* ``fabric``: ``netemu fabric``, UDP port 5000 on every address;
* one service per node: ``netemu node`` (or, for ``external`` nodes, the user's image with the
  ``NETEMU_*`` variables and ``{placeholders}`` of docs/external.md).

The fabric and the nodes start once the controller is healthy. Every container mounts the
project's ``out/`` directory at ``/netemu/out`` (the run directory: configs written now, then
events, final files and results) and the scenario's directory read-only at
``/netemu/scenario``. When every node and the fabric have exited and the controller has
written the results, all containers have stopped and ``docker compose up`` returns.

>>> project = write_compose("topologies/demo-small.yaml", "deploy/compose.yml")  # doctest: +SKIP
>>> project.services[:3]                                                        # doctest: +SKIP
['controller', 'fabric', 'iridium-p01-s01']
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NetemuError
from ..timebase import NS_PER_S, format_utc
from .config import FabricHostConfig, NodeHostConfig, save_config
from .controller_host import READY_FILE, ControllerHostConfig, save_controller_config
from .layout import RunLayout

__all__ = ["ComposeProject", "check_with_docker_compose", "service_name", "write_compose"]

#: Where things are inside the containers.
OUT_IN_CONTAINER = "/netemu/out"
SCENARIO_IN_CONTAINER = "/netemu/scenario"
BROKER_PORT = 1883
FABRIC_PORT = 5000
APP_PORT = 4000
NETWORK = "netemu"


@dataclass(frozen=True)
class ComposeProject:
    """What :func:`write_compose` wrote: the compose file, the ``out`` directory (with
    ``run/config/``), the run id and the service names (controller, fabric, then the nodes)."""

    path: Path
    out: Path
    run_id: str
    services: list[str]
    node_services: dict[str, str] = field(default_factory=dict)  # node name -> service


def service_name(node_name: str) -> str:
    """A compose service name for a node (lower case letters, digits, ``-``, ``_``, ``.``)."""
    name = re.sub(r"[^a-z0-9_.-]+", "-", node_name.lower()).strip("-.")
    if not name or not name[0].isalnum():
        name = f"node-{name}"
    if name in ("controller", "fabric", "broker"):
        name = f"node-{name}"
    return name


def _mount_source(path: Path, base: Path) -> str:
    """A bind-mount source: relative to the compose file's directory when inside it."""
    path = path.resolve()
    try:
        rel = path.relative_to(base.resolve())
    except ValueError:
        return str(path)
    return "./" + str(rel) if str(rel) != "." else "."


def write_compose(
    scenario_path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    image: str | None = None,
    duration_s: float = 60.0,
    epoch_s: float = 1.0,
    routing: str = "snapshot",
    traffic: str | None = "ground-to-ground",
    seed: int = 0,
    capture: bool = False,
    broker_url: str | None = None,
    external: list[str] | dict | None = None,
    subnet: str | None = None,
) -> ComposeProject:
    """Write ``output`` (the compose file) and ``out/run/config/*.json`` next to it.

    ``image``: the netemu image (default ``netemu-node:VERSION``, from ``netemu image build``
    or docker/Dockerfile). ``broker_url``: an MQTT broker reachable from the containers
    instead of the controller's embedded one. ``external``: ``NODE=IMAGE [ARGS...]`` strings:
    that node runs ``IMAGE`` (with ``ARGS``, placeholders replaced). ``subnet``: the network's
    IPv4 subnet (default: Docker picks one).
    """
    from ..routing import load_scheme
    from ..scenario import load_scenario
    from .images import default_image_tag
    from .launcher import dtn_ns, new_run_id

    scenario_path = Path(scenario_path)
    scenario = load_scenario(scenario_path)
    load_scheme(routing)
    if duration_s <= 0 or epoch_s <= 0 or epoch_s > duration_s:
        raise NetemuError("duration and epoch must be > 0 and the epoch no longer than the run")
    image = image or default_image_tag()
    output = Path(output)
    base = output.parent
    base.mkdir(parents=True, exist_ok=True)
    out_host = base / "out"
    layout = RunLayout(out_host).create()
    # configs from an earlier generation would name another run id
    for old in (layout.run_dir / "config").glob("*.json"):
        old.unlink()
    externals = _resolve_externals(external, scenario)  # number -> ExternalNode

    run_id = new_run_id()
    duration_ns = int(round(duration_s * NS_PER_S))
    epoch_ns = int(round(epoch_s * NS_PER_S))
    embedded = broker_url is None
    url = f"mqtt://broker:{BROKER_PORT}" if embedded else broker_url
    common = {
        "run_id": run_id,
        "broker_url": url,
        "out": OUT_IN_CONTAINER,
        "epoch_utc": format_utc(scenario.epoch_utc),
        "epoch_dtn_ns": dtn_ns(scenario.epoch_utc),
        "epoch_ns": epoch_ns,
        "duration_ns": duration_ns,
        "seed": int(seed),
        "log_level": "INFO",
    }
    traffic_obj = None
    if traffic not in (None, "", "none"):
        from ..traffic import load_traffic

        traffic_obj = load_traffic(traffic, scenario, duration_ns=duration_ns, seed=seed)
    nodes = scenario.nodes
    save_config(
        FabricHostConfig(
            **common,
            udp_host="0.0.0.0",
            udp_port=FABRIC_PORT,
            node_numbers=[n.number for n in nodes],
            node_names=[n.name for n in nodes],
            node_kinds=[n.kind for n in nodes],
            capture=capture,
        ),
        layout.config("fabric"),
    )
    for node in nodes:
        t = traffic_obj
        save_config(
            NodeHostConfig(
                **common,
                number=node.number,
                name=node.name,
                kind=node.kind,
                fabric_host="fabric",
                fabric_port=FABRIC_PORT,
                app_host="0.0.0.0",
                app_port=APP_PORT,
                flows=[f.to_dict() for f in t.flows_from(node.number)] if t else [],
                responders=[r.to_dict() for r in t.responders_at(node.number)] if t else [],
            ),
            layout.config(node.name),
        )
    scenario_in = f"{SCENARIO_IN_CONTAINER}/{scenario_path.name}"
    save_controller_config(
        ControllerHostConfig(
            run_id=run_id,
            scenario=scenario_in,
            broker_url=url,
            out=OUT_IN_CONTAINER,
            epoch_ns=epoch_ns,
            duration_ns=duration_ns,
            routing=routing,
            traffic=traffic,
            seed=int(seed),
            broker_listen=f"0.0.0.0:{BROKER_PORT}" if embedded else None,
            ready_timeout_s=60.0 + 0.5 * len(nodes),
            external=sorted(externals),
        ),
        layout.config("controller"),
    )

    out_mount = f"{_mount_source(out_host, base)}:{OUT_IN_CONTAINER}"
    scen_mount = f"{_mount_source(scenario_path.parent, base)}:{SCENARIO_IN_CONTAINER}:ro"

    def cfg(name: str) -> str:
        return f"{OUT_IN_CONTAINER}/run/config/{name}.json"

    net = {NETWORK: {"aliases": ["broker"]}} if embedded else [NETWORK]
    services: dict[str, dict] = {
        "controller": {
            "image": image,
            "command": ["netemu", "controller", "--config", cfg("controller")],
            "volumes": [out_mount, scen_mount],
            "networks": net,
            "healthcheck": {
                # healthy once this container has cleared the old files and serves the broker
                "test": [
                    "CMD-SHELL",
                    f'grep -qx "$$(hostname)" {OUT_IN_CONTAINER}/run/{READY_FILE}',
                ],
                "interval": "1s",
                "timeout": "5s",
                "retries": 300,
            },
        },
        "fabric": {
            "image": image,
            "command": ["netemu", "fabric", "--config", cfg("fabric")],
            "volumes": [out_mount],
            "networks": [NETWORK],
            "cap_add": ["SYS_NICE"],  # real-time priority for the delivery deadlines
            "depends_on": {"controller": {"condition": "service_healthy"}},
        },
    }
    node_services: dict[str, str] = {}
    for node in nodes:
        name = service_name(node.name)
        if name in services:
            raise NetemuError(f"two nodes map to the compose service name {name!r}")
        node_services[node.name] = name
        svc: dict = {
            "image": image,
            "command": ["netemu", "node", "--config", cfg(node.name)],
            "volumes": [out_mount],
            "networks": [NETWORK],
            "depends_on": {
                "controller": {"condition": "service_healthy"},
                "fabric": {"condition": "service_started"},
            },
        }
        if node.number in externals:
            ext = externals[node.number]
            svc.update(_external_service(ext, node.kind, url, common, cfg(node.name)))
        services[name] = svc
    network: dict = {"driver": "bridge"}
    if subnet:
        network["ipam"] = {"config": [{"subnet": subnet}]}
    doc = {"services": services, "networks": {NETWORK: network}}
    _write_yaml(output, doc, scenario.name, run_id)
    return ComposeProject(
        path=output,
        out=out_host,
        run_id=run_id,
        services=list(services),
        node_services=node_services,
    )


def _resolve_externals(external, scenario) -> dict:
    if not external:
        return {}
    from .external import resolve_externals

    return resolve_externals(external, scenario)


def _external_service(ext, kind, url, common, config_path) -> dict:
    """``NODE=IMAGE [ARGS...]``: the image, its arguments and the ``NETEMU_*`` variables."""
    from .external import external_env, external_values, substitute

    values = external_values(
        ext,
        kind=kind,
        config_path=config_path,
        fabric_host="fabric",
        fabric_port=FABRIC_PORT,
        broker_url=url,
        run_id=common["run_id"],
        epoch_dtn_ns=common["epoch_dtn_ns"],
        out=OUT_IN_CONTAINER,
    )
    args = substitute(ext.argv[1:], values)
    # no ARGS: the image's own command (None is dropped when the file is written)
    return {"image": ext.argv[0], "environment": external_env(values), "command": args or None}


def _write_yaml(path: Path, doc: dict, scenario_name: str, run_id: str) -> None:
    import yaml

    services = doc["services"]
    for svc in services.values():
        if svc.get("command", "") is None:
            del svc["command"]  # the image's own command
    header = (
        f"# netemu emulation of {scenario_name} (run id {run_id}), written by netemu compose.\n"
        "# Start: docker compose up   (results in ./out/ when every container has exited)\n"
        "# Configs: ./out/run/config/*.json (regenerate with netemu compose to change them)\n"
    )
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=100))


def check_with_docker_compose(path: str | os.PathLike) -> tuple[str, str] | None:
    """Validate a compose file with ``docker compose config -q`` or ``docker-compose config -q``
    (whichever is installed; no engine needed). Returns ``(tool, output)`` when it passed,
    ``None`` when neither tool is installed; raises :class:`NetemuError` when it failed."""
    path = Path(path)
    tools = []
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            tools.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        tools.append(["docker-compose"])
    if not tools:
        return None
    tool = tools[0]
    proc = subprocess.run(
        [*tool, "-f", str(path), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=path.parent,
    )
    if proc.returncode != 0:
        raise NetemuError(f"{' '.join(tool)} rejects {path}: {proc.stderr.strip()}")
    return " ".join(tool), proc.stdout + proc.stderr
