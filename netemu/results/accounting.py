"""Join the event logs into one account per application packet, and check the balance.

A packet is identified by ``(src, packet_id, creation_dtn_ns)`` (docs/runtime.md,
"Accounting"). The packets accounted for are those with an ``originated`` row. Each ends in
exactly one outcome, chosen from its rows in this order of precedence:

1. ``delivered`` — any ``delivered`` row (the first one, by time, is used; more rows are
   counted in ``duplicate_deliveries`` and never counted twice);
2. ``dropped`` — any ``dropped`` row (the first one gives the reason and whether a node or
   the fabric, ``where == 0``, dropped it);
3. ``in_flight_at_end`` — a fabric ``in_flight_at_end`` row;
4. ``held_at_end`` — a node ``held_at_end`` row;
5. ``lost_with_node`` — no such row, and a node died (liveness) while the packet may have been
   in it or routed through it: at or after its origination, or at most ``grace_ns`` before it
   (routes that still used the dead node);
6. ``unaccounted`` — anything else. It makes the balance fail.

A packet with rows of more than one of 1-4 is counted in ``conflicting`` (a copy of it went
another way); it keeps the outcome of highest precedence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .events import (
    EV_DELIVERED,
    EV_DROPPED,
    EV_HELD,
    EV_IN_FLIGHT,
    EV_ORIGINATED,
    EVENTS,
    NA,
    EventTable,
)

__all__ = [
    "CONTROL_MSG_TYPES",
    "OUTCOMES",
    "OUT_DELIVERED",
    "OUT_DROPPED",
    "OUT_HELD",
    "OUT_IN_FLIGHT",
    "OUT_LOST",
    "OUT_UNACCOUNTED",
    "PacketAccount",
    "account_packets",
]

OUTCOMES = (
    "delivered",
    "dropped",
    "in_flight_at_end",
    "held_at_end",
    "lost_with_node",
    "unaccounted",
)
OUT_DELIVERED, OUT_DROPPED, OUT_IN_FLIGHT, OUT_HELD, OUT_LOST, OUT_UNACCOUNTED = range(6)

#: Link-local and control packets that nodes never log as ``originated``: their other rows are
#: not "orphans".
CONTROL_MSG_TYPES = frozenset({"HELLO", "ACK", "NACK", "ROUTE"})


@dataclass
class PacketAccount:
    """One entry per originated packet (arrays of equal length), plus run-wide counts.

    ``delivered_row`` / ``drop_row`` index the :class:`EventTable` rows (-1 when none).
    """

    src: np.ndarray
    dst: np.ndarray
    packet_id: np.ndarray
    creation_dtn_ns: np.ndarray
    flow_id: np.ndarray
    seq: np.ndarray
    t_originated_ns: np.ndarray
    outcome: np.ndarray
    delivered_row: np.ndarray
    drop_row: np.ndarray
    duplicate_deliveries: int = 0
    conflicting: int = 0
    orphan_events: dict[str, int] = field(default_factory=dict)
    unidentified_events: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.src.shape[0])

    def count(self, outcome: int) -> int:
        return int(np.count_nonzero(self.outcome == outcome))


def _first_per_key(inv, t_ns, rows, n_keys):
    """For each key, the row (of ``rows``) with the smallest time (-1 when none), and counts."""
    first = np.full(n_keys, -1, np.int64)
    if rows.size == 0:
        return first, np.zeros(n_keys, np.int64)
    order = np.lexsort((t_ns[rows], inv[rows]))
    rows = rows[order]
    keys = inv[rows]
    head = np.ones(rows.size, bool)
    head[1:] = keys[1:] != keys[:-1]
    first[keys[head]] = rows[head]
    return first, np.bincount(keys, minlength=n_keys)


def _counts_by_label(labels) -> dict[str, int]:
    if len(labels) == 0:
        return {}
    names, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    return {str(k): int(v) for k, v in zip(names, counts, strict=True)}


def account_packets(table: EventTable, *, deaths_ns=(), grace_ns: int = 0) -> PacketAccount:
    """Join the rows of ``table`` into per-packet outcomes.

    ``deaths_ns``: scenario times at which a node died (went offline before the end of the run).
    """
    ints = table.ints
    src, pid, cre = ints["src"], ints["packet_id"], ints["creation_dtn_ns"]
    t_ns = ints["t_ns"]
    event = table.event
    valid = (src != NA) & (pid != NA) & (cre != NA)
    unidentified = _counts_by_label(np.asarray(EVENTS + ("other",))[event[~valid]])
    vrows = np.nonzero(valid)[0]
    keys = np.stack([src[vrows], pid[vrows], cre[vrows]], axis=1)
    if vrows.size:
        uniq, inv_v = np.unique(keys, axis=0, return_inverse=True)
        inv_v = inv_v.reshape(-1)
    else:
        uniq = np.zeros((0, 3), np.int64)
        inv_v = np.zeros(0, np.int64)
    n_keys = uniq.shape[0]
    inv = np.full(len(table), -1, np.int64)
    inv[vrows] = inv_v

    def first(code):
        return _first_per_key(inv, t_ns, vrows[event[vrows] == code], n_keys)

    orig_first, _ = first(EV_ORIGINATED)
    deliv_first, deliv_count = first(EV_DELIVERED)
    drop_first, drop_count = first(EV_DROPPED)
    flight_first, flight_count = first(EV_IN_FLIGHT)
    held_first, held_count = first(EV_HELD)

    known = orig_first >= 0
    # Rows about packets that were never logged as originated (and are not control packets).
    orphan_rows = vrows[~known[inv_v]]
    msg = table.strs["msg_type"][orphan_rows]
    orphan_rows = orphan_rows[~np.isin(msg.astype(str), list(CONTROL_MSG_TYPES))]
    orphans = _counts_by_label(np.asarray(EVENTS + ("other",))[event[orphan_rows]])

    k = np.nonzero(known)[0]
    o_rows = orig_first[k]
    t_orig = t_ns[o_rows]
    outcome = np.full(k.size, OUT_UNACCOUNTED, np.int8)
    has_held = held_first[k] >= 0
    has_flight = flight_first[k] >= 0
    has_drop = drop_first[k] >= 0
    has_deliv = deliv_first[k] >= 0
    outcome[has_held] = OUT_HELD
    outcome[has_flight] = OUT_IN_FLIGHT
    outcome[has_drop] = OUT_DROPPED
    outcome[has_deliv] = OUT_DELIVERED
    open_ = outcome == OUT_UNACCOUNTED
    deaths = np.asarray(sorted(int(d) for d in deaths_ns), np.int64)
    if deaths.size and open_.any():
        # A death at or after origination (it may have held the packet), or shortly before it
        # (routes may still have used the dead node).
        lost = t_orig <= deaths[-1] + int(grace_ns)
        outcome[open_ & lost] = OUT_LOST
    n_kinds = (
        has_deliv.astype(np.int8)
        + has_drop.astype(np.int8)
        + has_flight.astype(np.int8)
        + has_held.astype(np.int8)
    )
    dup = int(np.sum(np.maximum(deliv_count[k] - 1, 0)))

    def at(col):
        return ints[col][o_rows]

    return PacketAccount(
        src=uniq[k, 0],
        dst=at("dst"),
        packet_id=uniq[k, 1],
        creation_dtn_ns=uniq[k, 2],
        flow_id=at("flow_id"),
        seq=at("seq"),
        t_originated_ns=t_orig,
        outcome=outcome,
        delivered_row=deliv_first[k],
        drop_row=drop_first[k],
        duplicate_deliveries=dup,
        conflicting=int(np.count_nonzero(n_kinds > 1)),
        orphan_events=orphans,
        unidentified_events=unidentified,
    )
