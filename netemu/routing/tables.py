"""Forwarding tables: what a routing scheme hands to the nodes for one epoch.

A node's forwarding table (FIB) maps each destination to a next hop, the window in which the
entry may be used, whether to forward now or to hold the packet until the first contact of the
route starts, and the expected arrival time at the destination. Times are integer nanoseconds on
the same time base as the :class:`~netemu.routing.interface.NetworkView` the tables were computed
from.

Tables are column-oriented (numpy arrays), because an epoch of Starlink shell 1 plus 100 ground
stations has about 2.8 million (source, destination) pairs: :class:`RoutingTables` holds one row
per source node, and :meth:`RoutingTables.table` gives one node's :class:`ForwardingTable`
without copying. :meth:`ForwardingTable.to_dict` / :meth:`ForwardingTable.from_dict` are the
JSON-ready form a controller publishes to a node.

>>> tables = RoutingTables(
...     t_ns=0, scheme="example", nodes=[1, 2, 3],
...     next_hop=[[-1, 2, 2], [1, -1, 3], [2, 2, -1]],
...     arrival_ns=[[-1, 10, 20], [10, -1, 10], [20, 10, -1]],
...     valid_from_ns=0, valid_until_ns=60_000_000_000)
>>> entry = tables.table(1).lookup(3)
>>> (entry.next_hop, entry.arrival_ns, entry.action)
(2, 20, 'forward')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

NO_HOP = -1
"""Marker in ``next_hop`` (and ``arrival_ns``) for "no route"."""

FORWARD = "forward"
HOLD = "hold"


@dataclasses.dataclass(frozen=True, slots=True)
class FibEntry:
    """One forwarding decision: send packets for ``destination`` to ``next_hop``.

    ``action`` is ``"forward"`` (the first link or contact is up now: transmit as soon as the
    queue allows) or ``"hold"`` (store the packet until ``valid_from_ns``, when the first contact
    of the route starts). The entry must not be used after ``valid_until_ns``. ``arrival_ns`` is
    the expected (best-case) arrival at the destination, ``hops`` the route length (``None`` when
    the scheme did not compute it).
    """

    destination: int
    next_hop: int
    valid_from_ns: int
    valid_until_ns: int
    action: str
    arrival_ns: int
    hops: int | None = None

    def usable_at(self, now_ns: int) -> bool:
        return now_ns < self.valid_until_ns

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _matrix(value, shape, dtype) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.broadcast_to(arr, shape)
    if arr.shape != shape:
        raise ValueError(f"expected shape {shape}, got {arr.shape}")
    return arr


class ForwardingTable:
    """One node's FIB as parallel arrays over destinations (rows with no route are kept out).

    Columns: ``destination``, ``next_hop``, ``valid_from_ns``, ``valid_until_ns``, ``hold``
    (bool: hold until ``valid_from_ns`` instead of forwarding now), ``arrival_ns`` and ``hops``
    (``None`` when unknown).
    """

    __slots__ = (
        "node",
        "t_ns",
        "scheme",
        "destination",
        "next_hop",
        "valid_from_ns",
        "valid_until_ns",
        "hold",
        "arrival_ns",
        "hops",
        "_row",
    )

    def __init__(
        self,
        *,
        node: int,
        t_ns: int,
        scheme: str,
        destination,
        next_hop,
        valid_from_ns,
        valid_until_ns,
        hold,
        arrival_ns,
        hops=None,
    ):
        self.node = int(node)
        self.t_ns = int(t_ns)
        self.scheme = scheme
        self.destination = np.asarray(destination, dtype=np.int64)
        n = self.destination.shape[0]
        self.next_hop = _matrix(next_hop, (n,), np.int64)
        self.valid_from_ns = _matrix(valid_from_ns, (n,), np.int64)
        self.valid_until_ns = _matrix(valid_until_ns, (n,), np.int64)
        self.hold = _matrix(hold, (n,), bool)
        self.arrival_ns = _matrix(arrival_ns, (n,), np.int64)
        self.hops = None if hops is None else _matrix(hops, (n,), np.int64)
        self._row: dict[int, int] | None = None

    def __len__(self) -> int:
        return int(self.destination.shape[0])

    def __repr__(self) -> str:
        return (
            f"ForwardingTable(node={self.node}, {len(self)} destinations, scheme={self.scheme!r})"
        )

    def _entry(self, i: int) -> FibEntry:
        return FibEntry(
            destination=int(self.destination[i]),
            next_hop=int(self.next_hop[i]),
            valid_from_ns=int(self.valid_from_ns[i]),
            valid_until_ns=int(self.valid_until_ns[i]),
            action=HOLD if bool(self.hold[i]) else FORWARD,
            arrival_ns=int(self.arrival_ns[i]),
            hops=None if self.hops is None else int(self.hops[i]),
        )

    def lookup(self, destination: int, now_ns: int | None = None) -> FibEntry | None:
        """The entry for ``destination``, or ``None`` (no route, or expired at ``now_ns``)."""
        if self._row is None:
            self._row = {int(d): i for i, d in enumerate(self.destination.tolist())}
        i = self._row.get(int(destination))
        if i is None:
            return None
        entry = self._entry(i)
        if now_ns is not None and not entry.usable_at(now_ns):
            return None
        return entry

    def entries(self) -> list[FibEntry]:
        return [self._entry(i) for i in range(len(self))]

    def __iter__(self) -> Iterator[FibEntry]:
        return iter(self.entries())

    def to_dict(self) -> dict:
        """JSON-ready form (what the controller publishes to the node)."""
        return {
            "node": self.node,
            "t_ns": self.t_ns,
            "scheme": self.scheme,
            "entries": [e.to_dict() for e in self.entries()],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ForwardingTable:
        rows = list(data.get("entries", ()))

        def col(name, default=None):
            return [r.get(name, default) for r in rows]

        hops = col("hops")
        return cls(
            node=data["node"],
            t_ns=data.get("t_ns", 0),
            scheme=data.get("scheme", ""),
            destination=np.asarray(col("destination"), dtype=np.int64),
            next_hop=np.asarray(col("next_hop"), dtype=np.int64),
            valid_from_ns=np.asarray(col("valid_from_ns"), dtype=np.int64),
            valid_until_ns=np.asarray(col("valid_until_ns"), dtype=np.int64),
            hold=np.asarray([a == HOLD for a in col("action")], dtype=bool),
            arrival_ns=np.asarray(col("arrival_ns"), dtype=np.int64),
            hops=None if any(h is None for h in hops) else np.asarray(hops, dtype=np.int64),
        )


class RoutingTables(Mapping):
    """The forwarding tables of all nodes for one epoch, as (source x destination) matrices.

    Row ``i`` / column ``j`` refer to ``nodes[i]`` / ``nodes[j]``. ``next_hop`` holds node
    numbers (``-1``: no route); ``arrival_ns`` the expected arrival (``-1``: no route);
    ``valid_from_ns``, ``valid_until_ns`` and ``hold`` may be scalars (same for every entry);
    ``hops`` may be ``None``. As a mapping it goes from a node number to that node's
    :class:`ForwardingTable`.
    """

    def __init__(
        self,
        *,
        t_ns: int,
        scheme: str,
        nodes: Sequence[int],
        next_hop,
        arrival_ns,
        valid_from_ns,
        valid_until_ns,
        hold=False,
        hops=None,
    ):
        self.t_ns = int(t_ns)
        self.scheme = scheme
        self.nodes = np.asarray(nodes, dtype=np.int64)
        n = self.nodes.shape[0]
        shape = (n, n)
        self.next_hop = _matrix(next_hop, shape, np.int64)
        self.arrival_ns = _matrix(arrival_ns, shape, np.int64)
        self.valid_from_ns = _matrix(valid_from_ns, shape, np.int64)
        self.valid_until_ns = _matrix(valid_until_ns, shape, np.int64)
        self.hold = _matrix(hold, shape, bool)
        self.hops = None if hops is None else _matrix(hops, shape, np.int64)
        self._index = {int(v): i for i, v in enumerate(self.nodes.tolist())}
        if len(self._index) != n:
            raise ValueError("node numbers must be unique")

    # -- mapping -----------------------------------------------------------------------------
    def __getitem__(self, node: int) -> ForwardingTable:
        return self.table(node)

    def __iter__(self):
        return iter(self.nodes.tolist())

    def __len__(self) -> int:
        return int(self.nodes.shape[0])

    def __repr__(self) -> str:
        routes = int(np.count_nonzero(self.next_hop >= 0))
        return (
            f"RoutingTables({self.scheme!r}, {len(self)} nodes, {routes} routes, t_ns={self.t_ns})"
        )

    def index(self, node: int) -> int:
        try:
            return self._index[int(node)]
        except KeyError:
            raise KeyError(f"node {node} is not in these tables") from None

    def table(self, node: int) -> ForwardingTable:
        """Node ``node``'s forwarding table (destinations with a route only)."""
        i = self.index(node)
        keep = self.next_hop[i] >= 0
        return ForwardingTable(
            node=int(node),
            t_ns=self.t_ns,
            scheme=self.scheme,
            destination=self.nodes[keep],
            next_hop=self.next_hop[i][keep],
            valid_from_ns=self.valid_from_ns[i][keep],
            valid_until_ns=self.valid_until_ns[i][keep],
            hold=self.hold[i][keep],
            arrival_ns=self.arrival_ns[i][keep],
            hops=None if self.hops is None else self.hops[i][keep],
        )

    def next_hop_of(self, source: int, destination: int) -> int | None:
        hop = int(self.next_hop[self.index(source), self.index(destination)])
        return None if hop < 0 else hop

    def path(self, source: int, destination: int, *, max_hops: int | None = None) -> list[int]:
        """Follow next hops from ``source`` to ``destination`` (hop-by-hop, as packets would).

        Raises ``ValueError`` on a forwarding loop or a dead end.
        """
        limit = max_hops if max_hops is not None else len(self)
        path = [int(source)]
        node = int(source)
        while node != destination:
            hop = self.next_hop_of(node, destination)
            if hop is None:
                raise ValueError(f"dead end at node {node} on the way {source} -> {destination}")
            path.append(hop)
            node = hop
            if len(path) > limit + 1:
                raise ValueError(f"forwarding loop on the way {source} -> {destination}: {path}")
        return path

    def to_dict(self) -> dict:
        return {
            "t_ns": self.t_ns,
            "scheme": self.scheme,
            "tables": {str(n): self.table(n).to_dict()["entries"] for n in self.nodes.tolist()},
        }


__all__ = ["FORWARD", "HOLD", "NO_HOP", "FibEntry", "ForwardingTable", "RoutingTables"]
