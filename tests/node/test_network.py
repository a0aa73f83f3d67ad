"""Several NodeCores wired by a discrete-event loop: traffic, flapping links, the balance."""

from __future__ import annotations

import itertools
import random

import pytest

from netemu.node import NodeCore
from netemu.protocol import Flags, MessageType
from netemu.routing import RoutingTables
from netemu.timebase import NS_PER_S

from .netsim import MiniNet, fib, line_tables

MS = 1_000_000
S = NS_PER_S


def test_ring_with_flapping_links_balances():
    """Five nodes on a ring, random traffic, links going down and up: nothing is lost untold."""
    rng = random.Random(7)
    nodes = [10, 20, 30, 40, 50]
    cores = [NodeCore(n, epoch_dtn_ns=S, queue_limit_packets=20) for n in nodes]
    ring = [(nodes[i], nodes[(i + 1) % 5]) for i in range(5)]
    net = MiniNet(cores, ring, delay_ns=3 * MS)
    # clockwise next hops on the ring
    for i, n in enumerate(nodes):
        net.cores[n].set_table(fib(n, {d: nodes[(i + 1) % 5] for d in nodes if d != n}), 0)
    for a, b in ring:
        net.set_link(0, a, b, True)
    for _ in range(40):  # link flaps
        a, b = rng.choice(ring)
        t = rng.randrange(1, 2 * S)
        net.set_link(t, a, b, False)
        net.set_link(t + rng.randrange(1, 200 * MS), a, b, True)
    for _ in range(300):  # traffic
        src, dst = rng.sample(nodes, 2)
        t = rng.randrange(1, 2 * S)
        kind = rng.random()
        if kind < 0.2:
            net.call(t, src, "echo_request", dst, seq=rng.randrange(1 << 16))
        else:
            flags = rng.choice([0, Flags.REPORT_DROP, Flags.ACK_REQUESTED])
            net.call(t, src, "send_local", dst, b"x" * rng.randrange(64), flags=flags,
                     lifetime_ms=rng.choice([50, 500, 5000]))  # fmt: skip
    net.run(3 * S)
    tally = net.check_balance()
    assert tally.get("pending", 0) == 0  # every link is back up by 2.2 s: all resolved
    assert tally["delivered"] > 300
    assert tally["lifetime_expired"] > 0 and tally["queue_full"] > 0  # held across flaps
    assert net.cores[10].counters.malformed == 0
    # the reasons seen are the ones this scenario can produce
    assert set(tally) <= {"delivered", "link_down", "lifetime_expired", "queue_full"}


def test_store_and_forward_across_a_later_contact():
    """A holds for B until the contact at 1 s; link_up at 1 s releases; C gets it via B."""
    cores = [NodeCore(n) for n in (1, 2, 3)]
    net = MiniNet(cores, [(1, 2), (2, 3)], delay_ns=MS)
    tables = line_tables([1, 2, 3])
    tables[1] = fib(1, {2: (2, S), 3: (2, S)})
    for n, t in tables.items():
        net.cores[n].set_table(t, 0)
    net.set_link(0, 2, 3, True)
    net.set_link(0, 1, 2, False)  # a link the core was never told about counts as up
    net.call(100 * MS, 1, "send_local", 3, b"dtn")
    net.run(500 * MS)
    assert net.cores[1].held == 1 and net.check_balance()["pending"] == 1
    net.set_link(S, 1, 2, True)
    net.run(2 * S)
    [got] = [p for p in net.deliveries(3) if p.type is MessageType.DATA]
    assert got.body == b"dtn"
    assert "pending" not in net.check_balance()


@pytest.mark.parametrize("n", [2, 6])
def test_echo_over_routing_tables(n):
    """Tables from netemu.routing.RoutingTables (what the controller computes) drive the cores."""
    nodes = list(range(1, n + 1))
    next_hop = [[-1 if a == b else (a + 1 if b > a else a - 1) for b in nodes] for a in nodes]
    arrival = [[-1 if a == b else abs(a - b) * MS for b in nodes] for a in nodes]
    tables = RoutingTables(
        t_ns=0, scheme="line", nodes=nodes, next_hop=next_hop, arrival_ns=arrival,
        valid_from_ns=0, valid_until_ns=10 * S,
    )  # fmt: skip
    net = MiniNet([NodeCore(v) for v in nodes], list(itertools.pairwise(nodes)), delay_ns=MS)
    for v in nodes:
        net.cores[v].set_table(tables.table(v), 0)
        assert len(tables.table(v)) == n - 1
    for a, b in itertools.pairwise(nodes):
        net.set_link(0, a, b, True)
    net.call(10 * MS, 1, "echo_request", n)
    net.run(S)
    [reply] = [p for p in net.deliveries(1) if p.type is MessageType.ECHO_REPLY]
    [rr] = reply.extensions
    assert [h.node for h in rr.hops] == nodes + nodes[-2:0:-1]
    times = [h.time_ns for h in rr.hops]
    assert times == [10 * MS + i * MS for i in range(len(times))]
