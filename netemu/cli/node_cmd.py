"""``netemu node --config FILE``: one node process of a run (started by ``netemu run``)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "node",
        help="run one node process (started by netemu run)",
        description="Host one SGP router core: attach to the fabric over UDP, take forwarding "
        "tables and commands over MQTT, run the node's traffic and serve its application port "
        "(docs/runtime.md). FILE is the JSON config the launcher wrote "
        "(OUT/run/config/NAME.json).",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="node config JSON")
    p.set_defaults(func=cmd_node)


def cmd_node(args) -> int:
    from ..runtime.node_host import main

    return main(args.config)
