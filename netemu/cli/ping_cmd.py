"""``netemu ping SRC DST`` and ``netemu trace SRC DST`` against a running emulation.

The command is sent over MQTT to node SRC (``node/SRC/cmd``, docs/runtime.md); the node sends
SGP ECHO_REQUESTs (with RECORD_ROUTE for trace) and answers on ``node/SRC/reply/ID`` with the
round-trip time of each probe and, for trace, the hops with their times relative to the send.
The broker URL and run id come from ``OUT/run/run.json`` (``--out``, default ``out``) or from
``--broker URL --run-id ID``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from ..errors import NetemuError
from .common import console, duration_arg, print_json


def register(sub) -> None:
    for op in ("ping", "trace"):
        if op == "ping":
            p = sub.add_parser(
                "ping",
                help="ping between two nodes of a running emulation",
                description="Send SGP ECHO_REQUESTs from SRC to DST through the running "
                "emulation and print the round-trip time of each probe.",
            )
            p.add_argument("--count", type=int, default=4, metavar="N", help="probes (default 4)")
            p.add_argument(
                "--interval",
                type=duration_arg,
                default=1.0,
                metavar="DURATION",
                help="between probes (default 1s)",
            )
        else:
            p = sub.add_parser(
                "trace",
                help="trace the route between two nodes of a running emulation",
                description="Send one SGP ECHO_REQUEST with RECORD_ROUTE from SRC to DST and "
                "print every hop (out and back) with its time after the send.",
            )
            p.add_argument("--count", type=int, default=1, metavar="N", help="probes (default 1)")
            p.add_argument(
                "--interval", type=duration_arg, default=1.0, metavar="DURATION", help="(1s)"
            )
        p.add_argument(
            "src", metavar="SRC", help="node name (iridium-p03-s07, gs-madrid) or number"
        )
        p.add_argument("dst", metavar="DST", help="node name or number")
        p.add_argument(
            "--timeout",
            type=duration_arg,
            default=5.0,
            metavar="DURATION",
            help="wait per probe (default 5s)",
        )
        p.add_argument("--out", default="out", metavar="DIR", help="the run's --out (default out)")
        p.add_argument("--broker", default=None, metavar="URL", help="mqtt://HOST:PORT")
        p.add_argument("--run-id", default=None, metavar="ID", help="run id (with --broker)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=cmd_ping, op=op)


def run_info(out: str, broker: str | None, run_id: str | None) -> dict:
    """``{"broker_url", "run_id", "nodes"}`` from OUT/run/run.json and/or the options."""
    from ..runtime.layout import RunLayout

    path = RunLayout(Path(out)).run_json
    info: dict = {"nodes": {}}
    if path.exists():
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NetemuError(f"{path}: cannot read the run description: {exc}") from exc
    elif broker is None or run_id is None:
        raise NetemuError(f"{path} not found: is a run going on? (or give --broker and --run-id)")
    if broker is not None:
        info["broker_url"] = broker
    if run_id is not None:
        info["run_id"] = run_id
    for key in ("broker_url", "run_id"):
        if not info.get(key):
            raise NetemuError(f"{path}: no {key}")
    info.setdefault("nodes", {})
    return info


def node_number(text: str, nodes: dict) -> int:
    """A node number from a name in the run (``madrid`` finds ``gs-madrid``) or a number."""
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    for name in (text, f"gs-{text}"):
        if name in nodes:
            return int(nodes[name]["number"])
    if not nodes:
        raise NetemuError(f"node {text!r}: give a number (no run.json with node names)")
    close = [n for n in nodes if text in n][:5]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise NetemuError(f"no node named {text!r} in this run{hint}")


async def request(broker_url: str, run_id: str, src: int, command: dict, wait_s: float) -> dict:
    """Send ``command`` to node ``src`` and return its reply (raises on timeout/offline)."""
    import asyncio

    import aiomqtt

    from ..control.mqtt import connect, decode_json, encode_json
    from ..control.topics import Topics

    topics = Topics(run_id)
    reply_topic = topics.node_reply(src, command["id"])
    status_topic = topics.node_status(src)
    try:
        async with connect(broker_url, client_id=f"ping-{run_id}-{command['id']}") as client:
            await client.subscribe(reply_topic, qos=1)
            await client.subscribe(status_topic, qos=1)

            async def first(topic, timeout_s):
                async with asyncio.timeout(timeout_s):
                    async for msg in client.messages:
                        if msg.topic.value == topic:
                            data = decode_json(msg.payload)
                            if isinstance(data, dict):
                                return data
                return None

            try:
                status = await first(status_topic, 1.0)
            except TimeoutError:
                status = None
            if status is None:
                raise NetemuError(f"node {src} has no status in run {run_id}: not running?")
            if status.get("state") != "ready":
                raise NetemuError(f"node {src} is {status.get('state')!r}, not ready")
            await client.publish(topics.node_cmd(src), encode_json(command), qos=1)
            try:
                return await first(reply_topic, wait_s)
            except TimeoutError:
                raise NetemuError(f"no answer from node {src} within {wait_s:.0f} s") from None
    except aiomqtt.MqttError as exc:
        raise NetemuError(f"MQTT broker {broker_url}: {exc}") from exc


def cmd_ping(args) -> int:
    import asyncio

    info = run_info(args.out, args.broker, args.run_id)
    nodes = info["nodes"]
    src = node_number(args.src, nodes)
    dst = node_number(args.dst, nodes)
    if args.count < 1:
        raise NetemuError("--count must be at least 1")
    command = {
        "id": uuid.uuid4().hex[:12],
        "op": args.op,
        "dst": dst,
        "count": args.count,
        "interval_s": args.interval,
        "timeout_s": args.timeout,
    }
    wait_s = args.count * args.interval + args.timeout + 5.0
    reply = asyncio.run(request(info["broker_url"], info["run_id"], src, command, wait_s))
    if reply.get("error"):
        raise NetemuError(f"node {src}: {reply['error']}")
    if args.json:
        print_json(reply)
    else:
        names = {int(v["number"]): k for k, v in nodes.items()}
        show(reply, names, trace=args.op == "trace")
    return 0 if reply.get("received") else 1


def show(reply: dict, names: dict[int, str], *, trace: bool) -> None:
    from rich.table import Table

    con = console()

    def label(number: int) -> str:
        name = names.get(number)
        return f"{name} ({number})" if name else str(number)

    src, dst = reply["src"], reply["dst"]
    if not trace:
        table = Table(title=f"ping {label(src)} -> {label(dst)}")
        table.add_column("seq", justify="right")
        table.add_column("rtt ms", justify="right")
        table.add_column("note")
        for p in reply["probes"]:
            rtt = p.get("rtt_ms")
            table.add_row(
                str(p.get("seq")), "-" if rtt is None else f"{rtt:.3f}", p.get("error", "")
            )
        con.print(table)
    else:
        for p in reply["probes"]:
            rtt = p.get("rtt_ms")
            title = f"trace {label(src)} -> {label(dst)}, probe {p.get('seq')}: " + (
                f"rtt {rtt:.3f} ms" if rtt is not None else p.get("error", "no reply")
            )
            table = Table(title=title)
            table.add_column("hop", justify="right")
            table.add_column("node")
            table.add_column("leg")
            table.add_column("t ms", justify="right")
            leg = "out"
            for i, hop in enumerate(p.get("hops", [])):
                at_dst = hop["node"] == dst and leg == "out"
                row_leg = "dst" if at_dst else leg
                table.add_row(str(i), label(hop["node"]), row_leg, f"{hop['t_ms']:.3f}")
                if at_dst:
                    leg = "back"
            if p.get("missed"):
                table.caption = f"{p['missed']} hops not recorded (no room)"
            con.print(table)
    sent, received = reply.get("sent", 0), reply.get("received", 0)
    line = f"{sent} sent, {received} received"
    if reply.get("rtt_ms"):
        r = reply["rtt_ms"]
        line += f", rtt min/avg/max {r['min']:.3f}/{r['avg']:.3f}/{r['max']:.3f} ms"
    con.print(line)
