"""``netemu fault KIND ...``: inject a fault into a running emulation (docs/faults.md).

The fault goes to the run's controller as ``control/cmd {"op": "fault", ...}`` over MQTT and
the controller's answer (``control/reply/ID``) is printed. The broker and run id come from
``OUT/run/run.json`` (``--out``) or from ``--broker URL --run-id ID``, as for ``netemu ping``.
"""

from __future__ import annotations

import uuid

from ..errors import NetemuError
from .common import console, duration_arg, print_json


def register(sub) -> None:
    from ..control.faults import FAULT_KINDS

    p = sub.add_parser(
        "fault",
        help="inject a fault into a running emulation",
        description="Kill or restart a node, cut, restore or degrade a link, partition a "
        "region, or restart the broker of a running emulation. Link faults reach the fabric "
        "at once; routes avoid them from the next computed epoch.",
        epilog="examples: netemu fault link-cut iridium-p01-s01 iridium-p01-s02 | "
        "netemu fault link-loss 1 2 --loss 0.3 | netemu fault node-kill gs-madrid | "
        "netemu fault partition --nodes 'iridium-p01-*' --name plane1 | "
        "netemu fault partition --box 20,60,-130,-60 | netemu fault partition-heal | "
        "netemu fault broker-restart",
    )
    p.add_argument("kind", choices=FAULT_KINDS, metavar="KIND", help=", ".join(FAULT_KINDS))
    p.add_argument(
        "nodes",
        nargs="*",
        metavar="NODE",
        help="A B for link faults, the node for node faults (names or numbers)",
    )
    p.add_argument("--loss", type=float, default=None, help="link-loss: probability (0 undoes)")
    p.add_argument(
        "--region-nodes",
        "--nodes",
        dest="region_nodes",
        default=None,
        metavar="LIST",
        help="partition: node names, numbers or patterns, comma separated ('iridium-p01-*')",
    )
    p.add_argument(
        "--box",
        default=None,
        metavar="LAT0,LAT1,LON0,LON1",
        help="partition: every ground station inside this latitude/longitude box (degrees)",
    )
    p.add_argument("--name", default=None, help="partition name (partition-heal: which one)")
    p.add_argument(
        "--out",
        "--run",
        dest="out",
        default="out",
        metavar="DIR",
        help="the run's --out (default out)",
    )
    p.add_argument("--broker", default=None, metavar="URL", help="mqtt://HOST:PORT")
    p.add_argument("--run-id", default=None, metavar="ID", help="run id (with --broker)")
    p.add_argument(
        "--timeout", type=duration_arg, default=10.0, metavar="DURATION", help="(default 10s)"
    )
    p.add_argument("--json", action="store_true", help="print the controller's reply as JSON")
    p.set_defaults(func=cmd_fault)


def fault_from_args(args):
    """The :class:`~netemu.control.faults.Fault` the arguments describe."""
    from ..control.faults import LINK_KINDS, NODE_KINDS, Fault

    nodes = list(args.nodes)
    want = 2 if args.kind in LINK_KINDS else 1 if args.kind in NODE_KINDS else 0
    if len(nodes) != want:
        what = {2: "two nodes A B", 1: "one node", 0: "no node arguments"}[want]
        raise NetemuError(f"{args.kind} takes {what}, got {len(nodes)}")
    data: dict = {"fault": args.kind}
    if want >= 1:
        data["a"] = nodes[0]
    if want == 2:
        data["b"] = nodes[1]
    if args.loss is not None:
        data["loss"] = args.loss
    if args.region_nodes:
        data["nodes"] = args.region_nodes
    if args.box:
        data["box"] = args.box
    if args.name:
        data["name"] = args.name
    return Fault.from_dict(data, where=f"netemu fault {args.kind}")


async def send_fault(broker_url: str, run_id: str, fault, *, timeout_s: float) -> dict:
    """Publish the fault to the run's controller and return its reply."""
    import asyncio

    import aiomqtt

    from ..control.mqtt import connect, decode_json, encode_json
    from ..control.topics import Topics

    topics = Topics(run_id)
    request_id = uuid.uuid4().hex[:12]
    command = {"id": request_id, "op": "fault", "issued_by": "cli", **fault.to_dict()}
    reply_topic = topics.control_reply(request_id)
    try:
        async with connect(broker_url, client_id=f"fault-{run_id}-{request_id}") as client:
            await client.subscribe(reply_topic, qos=1)
            await client.publish(topics.control_cmd, encode_json(command), qos=1)
            try:
                async with asyncio.timeout(timeout_s):
                    async for msg in client.messages:
                        if msg.topic.value == reply_topic:
                            data = decode_json(msg.payload)
                            if isinstance(data, dict):
                                return data
            except TimeoutError:
                pass
            raise NetemuError(
                f"no answer from the controller of run {run_id} within {timeout_s:g} s "
                f"(is the run going on?)"
            )
    except aiomqtt.MqttError as exc:
        raise NetemuError(f"MQTT broker {broker_url}: {exc}") from exc


def cmd_fault(args) -> int:
    import asyncio

    from .ping_cmd import run_info

    fault = fault_from_args(args)
    info = run_info(args.out, args.broker, args.run_id)
    reply = asyncio.run(
        send_fault(info["broker_url"], info["run_id"], fault, timeout_s=args.timeout)
    )
    if args.json:
        print_json(reply)
    else:
        con = console()
        if reply.get("ok"):
            t_s = (reply.get("t_ns") or 0) / 1e9
            line = f"{reply.get('kind')} {reply.get('target')}: done at t = {t_s:.3f} s"
            if reply.get("routes_from_epoch") is not None:
                line += f"; routes change from epoch {reply['routes_from_epoch']}"
            if reply.get("state") == "restarting":
                line += "; the broker is restarting (clients reconnect)"
            con.print(line)
        else:
            con.print(f"[red]refused[/]: {reply.get('error')}")
    return 0 if reply.get("ok") else 1
