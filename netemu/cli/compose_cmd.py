"""``netemu compose SCENARIO -o FILE``: a Docker Compose file that runs the whole emulation with
the netemu image (netemu.runtime.compose, docker/README.md)."""

from __future__ import annotations

import argparse

from ..errors import NetemuError
from .common import duration_arg


def register(sub) -> None:
    p = sub.add_parser(
        "compose",
        help="write a docker-compose.yml that runs the emulation in containers",
        description="Write a Compose file with a controller (serving the embedded MQTT broker "
        "unless --broker), the fabric and one service per node, all from the netemu image "
        "(netemu image build, or docker/Dockerfile), on a private network; the run's configs "
        "go to out/run/config/ next to the file and the results to out/. Start it with "
        "`docker compose up`.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario YAML")
    p.add_argument("-o", "--output", default="docker-compose.yml", metavar="FILE")
    p.add_argument("--image", default=None, help="netemu image (default netemu-node:VERSION)")
    p.add_argument("--duration", type=duration_arg, default="60s", metavar="DURATION")
    p.add_argument("--epoch", type=duration_arg, default="1s", metavar="DURATION")
    p.add_argument("--routing", default="cgr", metavar="SCHEME")
    p.add_argument("--traffic", default="ground-to-ground", metavar="FILE|PRESET")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("--capture", action="store_true", help="the fabric writes pcapng captures")
    p.add_argument(
        "--broker",
        default=None,
        metavar="mqtt://HOST:PORT",
        help="an MQTT broker the containers can reach (default: the controller serves one)",
    )
    p.add_argument(
        "--external",
        action="append",
        default=[],
        metavar="NODE=IMAGE [ARGS]",
        help="this node runs IMAGE (with ARGS; {placeholders} and NETEMU_* variables as in "
        "docs/external.md); repeatable",
    )
    p.add_argument("--subnet", default=None, metavar="CIDR", help="the network's IPv4 subnet")
    p.add_argument(
        "--check",
        action="store_true",
        help="validate the file with docker compose config -q (or docker-compose)",
    )
    p.set_defaults(func=cmd_compose)


def cmd_compose(args: argparse.Namespace) -> int:
    from ..runtime.compose import check_with_docker_compose, write_compose

    if args.broker is not None and not args.broker.startswith("mqtt://"):
        raise NetemuError(f"--broker must look like mqtt://HOST:PORT, got {args.broker!r}")
    project = write_compose(
        args.scenario,
        args.output,
        image=args.image,
        duration_s=args.duration,
        epoch_s=args.epoch,
        routing=args.routing,
        traffic=args.traffic,
        seed=args.seed,
        capture=args.capture,
        broker_url=args.broker,
        external=args.external,
        subnet=args.subnet,
    )
    n_nodes = len(project.node_services)
    print(f"wrote {project.path}: controller, fabric and {n_nodes} nodes (run id {project.run_id})")
    print(f"configs in {project.out / 'run' / 'config'}; results will be in {project.out}")
    if args.check:
        checked = check_with_docker_compose(project.path)
        if checked is None:
            raise NetemuError("--check: neither docker compose nor docker-compose is installed")
        print(f"{checked[0]} config: valid")
    return 0
