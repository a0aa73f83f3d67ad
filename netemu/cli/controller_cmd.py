"""``netemu controller --config FILE``: the controller of a run whose fabric and nodes are
started by something else (the ``controller`` service of ``netemu compose``)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "controller",
        help="run the controller of a run whose processes run elsewhere (netemu compose)",
        description="Serve the embedded MQTT broker if the config says so, wait for the fabric "
        "and every node to report ready, run the epochs, stop the run and build the results "
        "(netemu.runtime.controller_host). FILE is written by netemu compose "
        "(OUT/run/config/controller.json).",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="controller config JSON")
    p.set_defaults(func=cmd_controller)


def cmd_controller(args) -> int:
    from ..runtime.controller_host import load_controller_config, run_controller

    summary = run_controller(load_controller_config(args.config))
    packets = summary.get("packets") if isinstance(summary.get("packets"), dict) else {}
    print(
        f"run finished; packets sent {packets.get('originated')}, "
        f"delivered {packets.get('delivered')}"
    )
    return 0
