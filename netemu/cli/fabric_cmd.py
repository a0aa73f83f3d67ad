"""``netemu fabric --config FILE``: the link fabric process of a run (started by ``netemu run``)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "fabric",
        help="run the link fabric process (started by netemu run; for debugging)",
        description="Host the link engine in real time: forward SGP frames between node "
        "processes over UDP with each link's delay, loss and rate, apply the controller's link "
        "tables at their epoch times, log drops, capture frames (docs/runtime.md). FILE is the "
        "JSON config the launcher wrote (OUT/run/config/fabric.json). Started by `netemu run`; "
        "run it by hand only for debugging.",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="fabric config JSON")
    p.set_defaults(func=cmd_fabric)


def cmd_fabric(args) -> int:
    from ..runtime.fabric_host import main

    return main(args.config)
