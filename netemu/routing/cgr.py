"""Contact Graph Routing after CCSDS 734.3-B-1 (Schedule-Aware Bundle Routing, SABR).

Route search is Dijkstra over the contact graph with the earliest arrival time as the cost:

* data that reaches a contact's sender at time ``t`` is transmitted at ``max(t, start)``;
* it arrives at the receiver ``owlt + margin`` later;
* a contact is usable only if that transmit time is before the contact ends;
* loopback contacts (``from == to``) are never part of a route.

Because one contact's arrival time never decreases when its sender is reached later (contacts
are FIFO), the earliest arrival at every node can be settled node by node: the search keeps, per
node, the best label and the contact it came through. That gives the same earliest arrival as a
search whose vertices are contacts, and all destinations from one source in one pass
(:meth:`CgrRouter.best_routes`).

Routes are ordered as SABR selects among candidate routes: earliest arrival, then fewest hops,
then latest route end (termination time: the earliest end of the route's contacts), then
smallest next-hop node number. The search uses the same order to break ties between labels; the
arrival time is exact, the later criteria are exact among routes the search compares directly.

:meth:`CgrRouter.routes` adds Yen's k-shortest paths over contact sequences (no duplicate routes),
bundle size against residual contact volume, a deadline, and excluded nodes. Results are cached
per query; the cache is dropped when the plan changes (:meth:`CgrRouter.update_plan`) or volume
is booked (:meth:`CgrRouter.book`).

>>> from netemu.contacts import loads_ion
>>> plan = loads_ion('''
... a contact +0 +100 1 2 1000
... a contact +50 +100 2 3 1000
... a range +0 +100 1 2 1
... a range +0 +100 2 3 1
... ''')
>>> route = CgrRouter(plan).routes(1, 3, 0)[0]
>>> (route.next_hop, route.hops, route.arrival_ns // NS_PER_S)
(2, 2, 51)
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
from collections.abc import Iterable, Sequence

import numpy as np

from ..contacts.model import Contact, ContactPlan
from ..errors import RoutingError
from ..timebase import NS_PER_S
from .interface import NetworkView, RoutingScheme
from .tables import NO_HOP, RoutingTables

log = logging.getLogger(__name__)

_FAR = 2**62  # "never ends"
_CACHE_LIMIT = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """A route: a sequence of contacts from ``source`` to ``destination`` for data ready at
    ``t_ns``.

    ``tx_ns[i]`` is when hop ``i`` transmits, ``arrival_hops_ns[i]`` when it arrives at that
    hop's receiver; ``arrival_ns`` is the arrival at the destination. ``volume_bytes`` is SABR's
    route volume limit: the least, over hops, of what the hop can still carry between its
    transmit time and the earliest end among it and the later contacts (bounded by residual
    volume).
    """

    source: int
    destination: int
    t_ns: int
    contacts: tuple[Contact, ...]
    contact_index: tuple[int, ...]
    tx_ns: tuple[int, ...]
    arrival_hops_ns: tuple[int, ...]
    volume_bytes: float

    @property
    def arrival_ns(self) -> int:
        return self.arrival_hops_ns[-1]

    @property
    def hops(self) -> int:
        return len(self.contacts)

    @property
    def next_hop(self) -> int:
        return self.contacts[0].to_node

    @property
    def end_ns(self) -> int:
        """Route termination time: the earliest end among its contacts."""
        return min(c.end_ns for c in self.contacts)

    @property
    def nodes(self) -> tuple[int, ...]:
        return (self.source, *(c.to_node for c in self.contacts))

    @property
    def hold(self) -> bool:
        """True when the first contact has not started at ``t_ns`` (hold until it does)."""
        return self.tx_ns[0] > self.t_ns

    @property
    def sort_key(self) -> tuple:
        """SABR's selection order: arrival, hops, latest end, smallest next hop."""
        return (self.arrival_ns, self.hops, -self.end_ns, self.next_hop, self.contact_index)

    def to_dict(self, *, reference_ns: int = 0) -> dict:
        """The JSON shape of ``netemu route --json`` (times in seconds after ``reference_ns``)."""

        def s(t_ns: int) -> float:
            return (t_ns - reference_ns) / NS_PER_S

        return {
            "next_hop": self.next_hop,
            "arrival": s(self.arrival_ns),
            "hops": self.hops,
            "contacts": [
                {"from": c.from_node, "to": c.to_node, "start": s(c.start_ns), "end": s(c.end_ns)}
                for c in self.contacts
            ],
            "volume": self.volume_bytes,
        }


def _walk_back(pred: dict, frm: list, source: int, node: int) -> tuple[int, ...]:
    """The contact indices from ``source`` to ``node`` along a search's predecessor contacts."""
    path = []
    while node != source:
        idx = pred[node]
        path.append(idx)
        node = frm[idx]
    return tuple(reversed(path))


class RouteTree:
    """Best routes from one source to every reachable node (one Dijkstra pass).

    ``labels`` maps each reached node to its search label ``(arrival_ns, hops, -route_end_ns,
    next_hop, first_contact)`` and ``pred`` to the contact it was reached through;
    :meth:`route` builds the full :class:`Route` on demand.
    """

    __slots__ = ("_router", "source", "t_ns", "labels", "pred")

    def __init__(self, router: CgrRouter, source: int, t_ns: int, labels: dict, pred: dict):
        self._router = router
        self.source = source
        self.t_ns = t_ns
        self.labels = labels  # node -> (arrival, hops, -route_end, next_hop, first_contact)
        self.pred = pred  # node -> contact index it was reached through

    def destinations(self) -> list[int]:
        return sorted(n for n in self.labels if n != self.source)

    def __contains__(self, node: int) -> bool:
        return node != self.source and node in self.labels

    def arrival_ns(self, node: int) -> int | None:
        lab = self.labels.get(node)
        return None if lab is None or node == self.source else lab[0]

    def contact_path(self, node: int) -> tuple[int, ...]:
        return _walk_back(self.pred, self._router._frm, self.source, node)

    def route(self, node: int) -> Route | None:
        if node not in self:
            return None
        return self._router._evaluate(self.source, self.contact_path(node), self.t_ns)


class CgrRouter:
    """CGR route computation over one contact plan (keep it across queries: it caches).

    ``margin_ns`` is added to every hop's one-way light time (SABR's OWLT margin).
    """

    def __init__(self, plan: ContactPlan, *, margin_ns: int = 0):
        if margin_ns < 0:
            raise RoutingError(f"margin_ns must be >= 0, got {margin_ns}")
        self.margin_ns = int(margin_ns)
        self.update_plan(plan)

    # -- plan and volume ---------------------------------------------------------------------
    def update_plan(self, plan: ContactPlan) -> None:
        """Use a new contact plan; drops cached routes and booked volume."""
        self.plan = plan
        self._frm = plan.from_node.tolist()
        self._to = plan.to_node.tolist()
        self._start = plan.start_ns.tolist()
        self._end = plan.end_ns.tolist()
        self._owlt = plan.owlt_ns.tolist()
        self._rate = plan.rate_bps.tolist()
        volume = plan.rate_bps / 8.0 * (plan.end_ns - plan.start_ns) / NS_PER_S
        self.residual_bytes = np.asarray(volume, dtype=np.float64).copy()
        self._residual = self.residual_bytes.tolist()
        out: dict[int, list[tuple]] = {}
        margin = self.margin_ns
        for i in range(len(plan)):
            a, b = self._frm[i], self._to[i]
            if a == b:  # loopback contacts are not part of routes
                continue
            out.setdefault(a, []).append(
                (i, b, self._start[i], self._end[i], self._owlt[i] + margin)
            )
        self._out = out
        self._cache: dict = {}

    def book(self, route: Route, size_bytes: float) -> None:
        """Consume ``size_bytes`` of residual volume on every contact of ``route``."""
        for idx in route.contact_index:
            left = max(0.0, float(self.residual_bytes[idx]) - size_bytes)
            self._residual[idx] = left
            self.residual_bytes[idx] = left
        self._cache.clear()

    def contact(self, idx: int) -> Contact:
        p = self.plan
        return Contact(
            self._frm[idx],
            self._to[idx],
            self._start[idx],
            self._end[idx],
            self._rate[idx],
            self._owlt[idx],
            float(p.confidence[idx]),
        )

    # -- core search ---------------------------------------------------------------------------
    def _search(
        self,
        source: int,
        t0: int,
        *,
        target: int | None = None,
        banned_nodes: frozenset | set = frozenset(),
        banned_contacts: frozenset | set = frozenset(),
        size_bytes: float = 0.0,
        deadline_ns: int | None = None,
    ) -> tuple[dict, dict]:
        """Node-settling Dijkstra on earliest arrival; returns (labels, predecessor contact)."""
        labels = {source: (t0, 0, -_FAR, NO_HOP, -1)}
        pred: dict[int, int] = {}
        heap = [(t0, 0, -_FAR, NO_HOP, -1, source)]
        done = set()
        out = self._out
        residual = self._residual
        check_size = size_bytes > 0
        deadline = _FAR if deadline_ns is None else deadline_ns
        pop, push = heapq.heappop, heapq.heappush
        while heap:
            arr, hops, nend, nh, first, u = pop(heap)
            if u in done:
                continue
            done.add(u)
            if u == target:
                break
            hops1 = hops + 1
            for idx, v, start, end, delay in out.get(u, ()):
                if v in done or v in banned_nodes:
                    continue
                tx = arr if arr > start else start
                if tx >= end:
                    continue
                a = tx + delay
                if a > deadline:
                    continue
                if check_size and residual[idx] < size_bytes:
                    continue
                if banned_contacts and idx in banned_contacts:
                    continue
                cand = (
                    a,
                    hops1,
                    nend if nend > -end else -end,
                    v if nh == NO_HOP else nh,
                    idx if first < 0 else first,
                )
                old = labels.get(v)
                if old is None or cand < old:
                    labels[v] = cand
                    pred[v] = idx
                    push(heap, (*cand, v))
        if target is not None:
            # only the target's label is final when the search stops early
            return ({target: labels[target]} if target in done else {}), pred
        return {n: labels[n] for n in done}, pred

    def _path(self, source, target, t0, **constraints) -> tuple[int, ...] | None:
        labels, pred = self._search(source, t0, target=target, **constraints)
        if target not in labels:
            return None
        return _walk_back(pred, self._frm, source, target)

    def _evaluate(self, source: int, contact_index: Sequence[int], t0: int) -> Route:
        """Timeline and volume of a contact sequence for data ready at ``t0``."""
        tx_list, arr_list = [], []
        t = t0
        for idx in contact_index:
            tx = max(t, self._start[idx])
            if tx >= self._end[idx]:
                raise ValueError(f"contact {idx} is over before data reaches its sender")
            t = tx + self._owlt[idx] + self.margin_ns
            tx_list.append(tx)
            arr_list.append(t)
        volume = float("inf")
        stop = _FAR
        for pos in range(len(contact_index) - 1, -1, -1):
            idx = contact_index[pos]
            stop = min(stop, self._end[idx])
            usable = self._rate[idx] / 8.0 * (stop - tx_list[pos]) / NS_PER_S
            volume = min(volume, usable, self._residual[idx])
        contacts = tuple(self.contact(i) for i in contact_index)
        return Route(
            source=source,
            destination=contacts[-1].to_node,
            t_ns=t0,
            contacts=contacts,
            contact_index=tuple(contact_index),
            tx_ns=tuple(tx_list),
            arrival_hops_ns=tuple(arr_list),
            volume_bytes=max(0.0, volume),
        )

    def _cached(self, key, compute):
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            hit = compute()
            self._cache[key] = hit
        return hit

    # -- queries ---------------------------------------------------------------------------------
    def best_routes(
        self,
        source: int,
        t_ns: int,
        *,
        size_bytes: float = 0.0,
        deadline_ns: int | None = None,
        exclude: Iterable[int] = (),
    ) -> RouteTree:
        """The best route from ``source`` to every reachable node, in one Dijkstra pass.

        ``size_bytes`` leaves out contacts whose residual volume is smaller; routes arriving
        after ``deadline_ns`` and routes through ``exclude`` nodes are not considered.
        """
        excl = frozenset(int(n) for n in exclude) - {source}
        key = ("tree", source, int(t_ns), float(size_bytes), deadline_ns, excl)

        def compute():
            labels, pred = self._search(
                source,
                int(t_ns),
                banned_nodes=excl,
                size_bytes=size_bytes,
                deadline_ns=deadline_ns,
            )
            return RouteTree(self, source, int(t_ns), labels, pred)

        return self._cached(key, compute)

    def routes(
        self,
        source: int,
        destination: int,
        t_ns: int,
        *,
        k: int = 1,
        size_bytes: float = 0.0,
        deadline_ns: int | None = None,
        exclude: Iterable[int] = (),
        max_candidates: int | None = None,
    ) -> list[Route]:
        """Up to ``k`` distinct routes, best first (SABR order), by Yen's k-shortest paths.

        A route qualifies when it arrives by ``deadline_ns``, avoids the ``exclude`` nodes
        (e.g. the node a bundle came from) entirely, and every contact has at least
        ``size_bytes`` of residual volume and the route's volume limit is at least
        ``size_bytes``. Routes are distinct contact sequences (the same nodes over different
        contacts are different routes). ``max_candidates`` bounds how many routes Yen's
        algorithm may examine (default ``max(8 k, 64)``) when many fail the volume check.
        """
        if k < 1:
            raise RoutingError(f"k must be >= 1, got {k}")
        source, destination, t_ns = int(source), int(destination), int(t_ns)
        excl = frozenset(int(n) for n in exclude) - {source}
        key = ("routes", source, destination, t_ns, k, float(size_bytes), deadline_ns, excl)
        limit = max_candidates if max_candidates is not None else max(8 * k, 64)
        return self._cached(
            key,
            lambda: self._yen(source, destination, t_ns, k, size_bytes, deadline_ns, excl, limit),
        )

    def _yen(self, source, destination, t0, k, size, deadline, excl, limit) -> list[Route]:
        if source == destination or destination in excl:
            return []
        constraints = {"size_bytes": size, "deadline_ns": deadline}
        first = self._path(source, destination, t0, banned_nodes=excl, **constraints)
        if first is None:
            return []
        accepted = [self._evaluate(source, first, t0)]
        seen = {first}
        candidates: list = []
        counter = itertools.count()
        good = [r for r in accepted if r.volume_bytes >= size]
        while len(good) < k and len(accepted) < limit:
            prev = accepted[-1]
            for i in range(prev.hops):
                root = prev.contact_index[:i]
                if i == 0:
                    spur_node, spur_t, root_nodes = source, t0, frozenset()
                else:
                    spur_node = self._to[root[-1]]
                    spur_t = prev.arrival_hops_ns[i - 1]
                    root_nodes = frozenset([source, *(self._to[c] for c in root[:-1])])
                used = {
                    r.contact_index[i]
                    for r in accepted
                    if r.hops > i and r.contact_index[:i] == root
                }
                spur = self._path(
                    spur_node,
                    destination,
                    spur_t,
                    banned_nodes=excl | root_nodes,
                    banned_contacts=used,
                    **constraints,
                )
                if spur is None:
                    continue
                total = root + spur
                if total in seen:
                    continue
                seen.add(total)
                route = self._evaluate(source, total, t0)
                heapq.heappush(candidates, (route.sort_key, next(counter), route))
            if not candidates:
                break
            route = heapq.heappop(candidates)[2]
            accepted.append(route)
            if route.volume_bytes >= size:
                good.append(route)
        good.sort(key=lambda r: r.sort_key)
        return good[:k]


class CgrScheme(RoutingScheme):
    """Built-in scheme ``cgr``: per-node tables from :class:`CgrRouter` one-to-all passes.

    Options: ``margin_ns`` (per-hop OWLT margin), ``size_bytes`` (leave out contacts with less
    residual volume). Entries hold packets until the first contact starts when it has not
    started yet, and are valid until the route's termination time.
    """

    name = "cgr"
    uses_plan = True
    uses_links = False

    def __init__(self, *, margin_ns: int = 0, size_bytes: float = 0.0):
        self.margin_ns = int(margin_ns)
        self.size_bytes = float(size_bytes)
        self._router: CgrRouter | None = None

    def router(self, plan: ContactPlan) -> CgrRouter:
        """The router for ``plan``; rebuilt (cache dropped) when the plan changes."""
        if self._router is None or self._router.plan is not plan:
            if self._router is not None and self._router.plan == plan:
                self._router.plan = plan
            else:
                self._router = CgrRouter(plan, margin_ns=self.margin_ns)
        return self._router

    def compute(self, view: NetworkView, *, sources=None) -> RoutingTables:
        if view.plan is None:
            raise RoutingError("the cgr scheme needs a contact plan in the network view")
        router = self.router(view.plan)
        nodes = list(view.nodes)
        index = {n: i for i, n in enumerate(nodes)}
        n = len(nodes)
        next_hop = np.full((n, n), NO_HOP, dtype=np.int64)
        arrival = np.full((n, n), NO_HOP, dtype=np.int64)
        valid_from = np.full((n, n), view.t_ns, dtype=np.int64)
        valid_until = np.full((n, n), view.t_ns, dtype=np.int64)
        hops = np.zeros((n, n), dtype=np.int64)
        start_ns = router.plan.start_ns
        for src in nodes if sources is None else sources:
            i = index[int(src)]
            tree = router.best_routes(int(src), view.t_ns, size_bytes=self.size_bytes)
            cols, rows = [], []
            for dst, lab in tree.labels.items():
                j = index.get(dst)
                if j is None or dst == src:
                    continue
                cols.append(j)
                rows.append(lab)
            if not cols:
                continue
            columns = zip(*rows, strict=True)
            arr, hop, nend, nh, first = (np.asarray(c, dtype=np.int64) for c in columns)
            first_start = start_ns[first]
            next_hop[i, cols] = nh
            arrival[i, cols] = arr
            hops[i, cols] = hop
            valid_from[i, cols] = np.maximum(first_start, view.t_ns)
            valid_until[i, cols] = -nend
        return RoutingTables(
            t_ns=view.t_ns,
            scheme=self.name,
            nodes=nodes,
            next_hop=next_hop,
            arrival_ns=arrival,
            valid_from_ns=valid_from,
            valid_until_ns=valid_until,
            hold=valid_from > view.t_ns,
            hops=hops,
        )

    def __repr__(self) -> str:
        return f"CgrScheme(margin_ns={self.margin_ns}, size_bytes={self.size_bytes})"


__all__ = ["CgrRouter", "CgrScheme", "Route", "RouteTree"]
