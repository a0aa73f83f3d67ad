"""SGP codec vs scapy layers: encode+decode throughput, the capture writer, and a node's
forward path (``NodeCore.receive`` of a frame it passes on).

    python benchmarks/bench_codec.py [--runs 7] [--seconds 0.5]

For each packet of a small mix (the valid test vectors: every message type, extensions, a BPv7
bundle) one operation is encode() followed by decode() of the result. The codec and the scapy
layers are measured in the same run; the table gives the median over ``--runs`` runs of
operations per second, and the ratio. The pcapng writer is measured writing the same frames to
an in-memory buffer.

The node cases time ``NodeCore.receive`` on the forwarders of a 16-node chain: one DATA packet
of 1,000 octets of payload (as the simulator's traffic) sent from node 1 to node 16, captured
as the frame each of nodes 2..15 receives (with RECORD_ROUTE: 0..13 hops already recorded);
one operation is one receive that decodes the frame, forwards it and returns the Transmit
(the simulator hands the receiver the decoded packet with the frame: one more case, without the
decode).
"""

from __future__ import annotations

import argparse
import inspect
import io
import platform
import statistics
import time

from netemu.capture import CaptureWriter, LinkMeta
from netemu.node import NodeCore, Transmit
from netemu.protocol import decode, encode
from netemu.protocol.scapy_layers import SGP, from_scapy, to_scapy
from netemu.protocol.vectors import valid_vectors
from netemu.routing.tables import ForwardingTable

CHAIN_NODES = 16
PAYLOAD_BYTES = 1_000


def _rate(fn, items, seconds: float) -> float:
    """Operations per second of ``fn`` over ``items``, looping for about ``seconds``."""
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for item in items:
            fn(item)
        n += len(items)
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def forward_chain(*, record_route: bool) -> list[tuple[NodeCore, bytes, int]]:
    """(core, frame, previous hop) for every forwarder of one packet along a chain of nodes."""
    last = CHAIN_NODES
    cores = {}
    for n in range(1, last + 1):
        core = NodeCore(n, epoch_dtn_ns=800_000_000_000_000_000)
        table = ForwardingTable(node=n, t_ns=0, scheme="static", destination=[last],
                                next_hop=[n + 1], valid_from_ns=0, valid_until_ns=10**15,
                                hold=False, arrival_ns=[0])  # fmt: skip
        if n < last:
            core.set_table(table, now_ns=0)
        cores[n] = core
    actions = cores[1].send_local(last, bytes(PAYLOAD_BYTES), 1_000, record_route=record_route)
    [tx] = [a for a in actions if isinstance(a, Transmit)]
    hops = []
    prev = 1
    while tx.neighbour != last:
        node = tx.neighbour
        hops.append((cores[node], tx.frame, prev))
        [tx] = [a for a in cores[node].receive(tx.frame, prev, 1_000) if isinstance(a, Transmit)]
        prev = node
    return hops


def _forward(item) -> None:
    core, frame, prev = item
    core.receive(frame, prev, 1_000)


def _forward_handed_over(item) -> None:  # as the simulator: the sender's decoded packet
    core, frame, prev, packet = item
    core.receive(frame, prev, 1_000, packet=packet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="duration of one run")
    args = parser.parse_args(argv)

    wires = [bytes.fromhex(v["hex"]) for v in valid_vectors()]
    packets = [decode(w) for w in wires]
    scapy_packets = [to_scapy(p) for p in packets]
    mean_len = sum(map(len, wires)) / len(wires)

    def codec_round(p):
        decode(encode(p))

    def scapy_round(s):  # build (lengths + CRC in post_build), then dissect
        SGP(bytes(s))

    def scapy_full(p):  # codec value -> scapy -> bytes -> scapy -> codec value
        from_scapy(SGP(bytes(to_scapy(p))))

    buf = io.BytesIO()
    cap = CaptureWriter(buf, epoch_utc="2026-01-01T00:00:00Z", comments=False)
    iface = cap.interface("isl:a>b")
    meta = LinkMeta(1, 10, 11, 4.0e6, 13_342_564, 0.01, 0.5)
    cap_c = CaptureWriter(io.BytesIO(), epoch_utc="2026-01-01T00:00:00Z", comments=True)
    iface_c = cap_c.interface("isl:a>b")

    def capture(w):
        cap.write(iface, 1_000, w, meta)

    def capture_comment(w):
        cap_c.write(iface_c, 1_000, w, meta)

    cases = [
        ("codec encode+decode", codec_round, packets),
        ("codec decode only", decode, wires),
        ("codec encode only", encode, packets),
        ("scapy build+dissect", scapy_round, scapy_packets),
        ("scapy via codec values (to_scapy/from_scapy)", scapy_full, packets),
        ("pcapng write (no comment)", capture, wires),
        ("pcapng write (with comment)", capture_comment, wires),
        ("node forward, RECORD_ROUTE (1,000-octet DATA)", _forward,
         forward_chain(record_route=True)),
        ("node forward, no RECORD_ROUTE (1,000-octet DATA)", _forward,
         forward_chain(record_route=False)),
    ]  # fmt: skip
    if "packet" in inspect.signature(NodeCore.receive).parameters:  # not in older versions
        handed = [(c, f, p, decode(f)) for c, f, p in forward_chain(record_route=True)]
        cases.append(("node forward, RECORD_ROUTE, packet handed over (as the simulator)",
                      _forward_handed_over, handed))  # fmt: skip
    results: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(args.runs):  # interleave the cases so load changes hit all of them alike
        for name, fn, items in cases:
            results[name].append(_rate(fn, items, args.seconds))
            buf.seek(0)
            buf.truncate()
    print(f"Python {platform.python_version()}, {len(wires)} packets (mean {mean_len:.0f} octets), "
          f"{args.runs} runs of {args.seconds} s\n")  # fmt: skip
    base = statistics.median(results["codec encode+decode"])
    print("| operation | median ops/s | min | max | µs per op | codec / this |")
    print("|---|---|---|---|---|---|")
    for name, rates in results.items():
        med = statistics.median(rates)
        print(f"| {name} | {med:,.0f} | {min(rates):,.0f} | {max(rates):,.0f} | {1e6 / med:.1f} "
              f"| {base / med:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
