"""A tiny discrete-event loop wiring NodeCores together (a preview of netemu's simulator).

Links have a fixed one-way delay and an up/down state; a Transmit on a down link is dropped by
the "fabric" with reason ``link_down``. Every originated packet is tracked in a ledger so a test
can check the balance: each one is delivered, dropped with a reason, held, or in flight.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict

from netemu.node import Deliver, Drop, NodeCore, Originated, Transmit
from netemu.protocol import Packet
from netemu.routing import ForwardingTable

FOREVER_NS = 10**15


def key(packet: Packet) -> tuple[int, int, int]:
    """(src, packet_id, creation_time_ns) identifies a packet (SPEC.md section 4)."""
    return (packet.src, packet.packet_id, packet.creation_time_ns)


def fib(node: int, routes: dict, *, until_ns: int = FOREVER_NS) -> ForwardingTable:
    """A hand-built table: ``routes`` maps destination -> next hop, or -> (next hop, hold_from)."""
    dests, hops, starts, holds = [], [], [], []
    for dst, value in sorted(routes.items()):
        hop, start = value if isinstance(value, tuple) else (value, 0)
        dests.append(dst)
        hops.append(hop)
        starts.append(start)
        holds.append(start > 0)
    return ForwardingTable(
        node=node,
        t_ns=0,
        scheme="static",
        destination=dests,
        next_hop=hops,
        valid_from_ns=starts,
        valid_until_ns=until_ns,
        hold=holds,
        arrival_ns=[s + 1 for s in starts],
    )


def line_tables(nodes: list[int]) -> dict[int, ForwardingTable]:
    """Shortest-path tables for a line of nodes (each node reaches every other)."""
    out = {}
    for i, n in enumerate(nodes):
        routes = {}
        for j, d in enumerate(nodes):
            if j != i:
                routes[d] = nodes[i + 1] if j > i else nodes[i - 1]
        out[n] = fib(n, routes)
    return out


class MiniNet:
    """Runs NodeCores in virtual time. ``delay_ns`` is the one-way delay of every link."""

    def __init__(self, cores: list[NodeCore], links: list[tuple[int, int]], *, delay_ns=1_000_000):
        self.cores = {c.node: c for c in cores}
        self.delay_ns = delay_ns
        self.up: set[frozenset] = set()
        self.links = [frozenset(link) for link in links]
        self.now_ns = 0
        self._events: list = []
        self._seq = itertools.count()
        self.log: list[tuple[int, int, object]] = []  # (time, node, action)
        self.originated: dict[tuple, Packet] = {}
        self.outcomes: dict[tuple, list] = defaultdict(list)
        self.in_flight: dict[int, tuple] = {}
        self.fabric_drops: list[tuple[int, Packet]] = []

    # -- scheduling
    def at(self, t_ns: int, fn, *args) -> None:
        heapq.heappush(self._events, (t_ns, next(self._seq), fn, args))

    def apply(self, node: int, actions: list) -> None:
        for action in actions:
            self.log.append((self.now_ns, node, action))
            if isinstance(action, Originated):
                k = key(action.packet)
                assert k not in self.originated, f"packet identity reused: {k}"
                self.originated[k] = action.packet
            elif isinstance(action, Transmit):
                self._send(node, action)
            elif isinstance(action, Deliver):
                self.outcomes[key(action.packet)].append(("delivered", node))
            elif isinstance(action, Drop) and action.packet is not None:
                self.outcomes[key(action.packet)].append((str(action.reason), node))
        deadline = self.cores[node].next_deadline_ns()
        if deadline is not None:
            self.at(max(deadline, self.now_ns), self._tick, node)

    def _send(self, node: int, tx: Transmit) -> None:
        link = frozenset((node, tx.neighbour))
        if link not in self.up:
            self.fabric_drops.append((node, tx.packet))
            self.outcomes[key(tx.packet)].append(("link_down", node))
            return
        token = next(self._seq)
        self.in_flight[token] = key(tx.packet)
        self.at(self.now_ns + self.delay_ns, self._arrive, token, node, tx.neighbour, tx.frame)

    def _arrive(self, token, sender, receiver, frame) -> None:
        del self.in_flight[token]
        self.apply(receiver, self.cores[receiver].receive(frame, sender, self.now_ns))

    def _tick(self, node: int) -> None:
        self.apply(node, self.cores[node].tick(self.now_ns))

    # -- commands, run at their time
    def set_link(self, t_ns: int, a: int, b: int, up: bool) -> None:
        def change():
            link = frozenset((a, b))
            if up:
                self.up.add(link)
                self.apply(a, self.cores[a].link_up(b, self.now_ns))
                self.apply(b, self.cores[b].link_up(a, self.now_ns))
            else:
                self.up.discard(link)
                self.apply(a, self.cores[a].link_down(b, self.now_ns))
                self.apply(b, self.cores[b].link_down(a, self.now_ns))

        self.at(t_ns, change)

    def call(self, t_ns: int, node: int, method: str, *args, **kwargs) -> None:
        def run():
            core = self.cores[node]
            self.apply(node, getattr(core, method)(*args, self.now_ns, **kwargs))

        self.at(t_ns, run)

    def run(self, until_ns: int) -> None:
        while self._events and self._events[0][0] <= until_ns:
            t, _, fn, args = heapq.heappop(self._events)
            assert t >= self.now_ns, "time went backwards"
            self.now_ns = t
            fn(*args)
        self.now_ns = until_ns

    # -- accounting
    def held_keys(self) -> set[tuple]:
        return {key(p) for c in self.cores.values() for p in c.held_packets()}

    def check_balance(self) -> dict[str, int]:
        """Every originated packet ends exactly once: delivered, dropped, held or in flight."""
        held = self.held_keys()
        flying = set(self.in_flight.values())
        tally: dict[str, int] = defaultdict(int)
        for k in self.originated:
            outcomes = self.outcomes.get(k, [])
            pending = (k in held) + (k in flying)
            assert len(outcomes) + pending == 1, (k, outcomes, k in held, k in flying)
            tally[outcomes[0][0] if outcomes else "pending"] += 1
        assert set(self.outcomes) <= set(self.originated), "outcome for an unknown packet"
        return dict(tally)

    def deliveries(self, node: int) -> list:
        return [a.packet for _, n, a in self.log if n == node and isinstance(a, Deliver)]

    def drops(self, node: int | None = None) -> list:
        return [a for _, n, a in self.log if isinstance(a, Drop) and node in (None, n)]
