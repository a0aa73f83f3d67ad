"""The store-and-forward buffer of a node: packets held until a contact, a link or a route.

Bounded by packets and (optionally) bytes. Each held packet waits for one of:

- a time (``release_ns``: the start of the first contact of its route), released by ``due``;
- the link to ``next_hop`` coming up, released by ``for_next_hop``;
- a new forwarding table (``next_hop`` ``None``: no route yet), released by ``take_all``.

Every held packet can also expire (``expiry_ns``, scenario time), removed by ``expired``. Lookups
are heaps with lazy deletion, so a tick costs O(log n) per released packet, not O(n).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from ..protocol import Packet

__all__ = ["Held", "HoldQueue"]


@dataclass(slots=True)
class Held:
    """One held packet. ``order`` is its arrival rank (kept across re-holding, for FIFO)."""

    packet: Packet
    size: int
    previous_hop: int | None
    next_hop: int | None
    release_ns: int | None
    expiry_ns: int | None
    order: int = 0
    key: int = 0


class HoldQueue:
    """Bounded buffer of :class:`Held` packets with time, next-hop and expiry indexes."""

    def __init__(self, *, limit_packets: int, limit_bytes: int | None = None):
        self.limit_packets = limit_packets
        self.limit_bytes = limit_bytes
        self._items: dict[int, Held] = {}
        self._by_hop: dict[int | None, dict[int, None]] = {}
        self._release: list[tuple[int, int]] = []
        self._expiry: list[tuple[int, int]] = []
        self._next_key = 0
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(list(self._items.values()))

    def fits(self, size: int) -> bool:
        if len(self._items) >= self.limit_packets:
            return False
        return self.limit_bytes is None or self.bytes + size <= self.limit_bytes

    def add(self, held: Held) -> None:
        """Hold ``held`` (the caller checked :meth:`fits`)."""
        self._next_key += 1
        held.key = key = self._next_key
        self._items[key] = held
        self.bytes += held.size
        self._by_hop.setdefault(held.next_hop, {})[key] = None
        if held.release_ns is not None:
            heapq.heappush(self._release, (held.release_ns, key))
        if held.expiry_ns is not None:
            heapq.heappush(self._expiry, (held.expiry_ns, key))
        if len(self._release) + len(self._expiry) > 4 * len(self._items) + 64:
            self._compact()

    def _compact(self) -> None:
        """Drop heap entries of packets that already left (lazy deletion leaves them behind)."""
        self._release = [e for e in self._release if e[1] in self._items]
        self._expiry = [e for e in self._expiry if e[1] in self._items]
        heapq.heapify(self._release)
        heapq.heapify(self._expiry)

    def _remove(self, key: int) -> Held:
        held = self._items.pop(key)
        self.bytes -= held.size
        bucket = self._by_hop[held.next_hop]
        del bucket[key]
        if not bucket:
            del self._by_hop[held.next_hop]
        return held

    def _pop_heap(self, heap: list[tuple[int, int]], limit_ns: int) -> list[Held]:
        out = []
        while heap and heap[0][0] <= limit_ns:
            _, key = heapq.heappop(heap)
            if key in self._items:
                out.append(self._remove(key))
        return out

    def due(self, now_ns: int) -> list[Held]:
        """Remove and return the packets whose release time is ``<= now_ns``."""
        return self._pop_heap(self._release, now_ns)

    def expired(self, now_ns: int) -> list[Held]:
        """Remove and return the packets whose expiry is in the past (``expiry_ns < now_ns``)."""
        return self._pop_heap(self._expiry, now_ns - 1)

    def for_next_hop(self, next_hop: int | None) -> list[Held]:
        """Remove and return every packet held for ``next_hop``."""
        return [self._remove(key) for key in list(self._by_hop.get(next_hop, ()))]

    def take_all(self) -> list[Held]:
        return [self._remove(key) for key in list(self._items)]

    def _clean(self, heap: list[tuple[int, int]]) -> None:
        while heap and heap[0][1] not in self._items:
            heapq.heappop(heap)

    def next_deadline_ns(self) -> int | None:
        """The earliest time at which :meth:`due` or :meth:`expired` would return something."""
        self._clean(self._release)
        self._clean(self._expiry)
        times = []
        if self._release:
            times.append(self._release[0][0])
        if self._expiry:
            times.append(self._expiry[0][0] + 1)
        return min(times) if times else None
