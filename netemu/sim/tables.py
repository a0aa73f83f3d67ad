"""Forwarding tables in the simulator: read straight from the epoch's matrices, and the bytes
the controller would have published for them.

A live run turns every changed table into a JSON payload (``EpochComputer.table_payload``), the
node parses it back into a :class:`~netemu.routing.ForwardingTable` and looks destinations up
in it. For 1,684 nodes that is 2.8 million entries per epoch, most of them never looked up. In
virtual time a node gets a :class:`MatrixTable` instead: a view on one row of the epoch's
matrices that materialises that row as Python lists the first time the node routes a packet
in the epoch, and answers :meth:`MatrixTable.lookup` with the same :class:`FibEntry` (next hop,
action, validity) that the parsed payload would give. tests/sim/test_tables.py checks both
against each other entry by entry.

:func:`table_payload_bytes` counts, without building them, the octets of the ``node/N/table``
payloads (``encode_json`` of ``table_payload``) of the nodes whose table changed; the same
test checks it against the real encoding.
"""

from __future__ import annotations

import json

import numpy as np

from ..control.mqtt import encode_json
from ..routing.tables import FORWARD, HOLD, FibEntry

__all__ = ["EpochMatrices", "MatrixTable", "table_payload_bytes"]


class EpochMatrices:
    """The current epoch's (source x destination) matrices, shared by every node's table.

    ``update`` swaps in a new epoch (``EpochComputer.last_epoch``); tables notice the change
    through ``generation`` and re-read their row when next used.
    """

    __slots__ = ("generation", "numbers", "index", "next_hop", "hold", "valid_from_ns",
                 "valid_until_ns", "arrival_ns", "hops")  # fmt: skip

    def __init__(self, numbers: np.ndarray):
        self.generation = 0
        self.numbers = [int(v) for v in numbers.tolist()]
        self.index = {v: i for i, v in enumerate(self.numbers)}
        self.next_hop = self.hold = self.valid_from_ns = self.valid_until_ns = None
        self.arrival_ns = self.hops = None

    def update(self, last_epoch: dict) -> None:
        sig, raw = last_epoch["sig"], last_epoch["raw"]
        self.next_hop = sig["next_hop"]
        self.hold = sig["hold"]
        self.valid_until_ns = sig["valid_until_ns"]
        self.valid_from_ns = raw["valid_from_ns"]
        self.arrival_ns = raw["arrival_ns"]
        self.hops = raw["hops"]
        self.generation += 1


class MatrixTable:
    """Node ``node``'s forwarding table as a lazy view on :class:`EpochMatrices` (row ``row``).

    Quacks like :class:`~netemu.routing.ForwardingTable` for :class:`~netemu.node.NodeCore`
    (``node`` and ``lookup``). Entries whose next hop is ``-1`` are absent, as in the
    published table.
    """

    __slots__ = ("node", "row", "_m", "_gen", "_cols", "_entries")

    def __init__(self, node: int, row: int, matrices: EpochMatrices):
        self.node = int(node)
        self.row = int(row)
        self._m = matrices
        self._gen = -1
        self._cols = None
        self._entries: dict = {}  # destination -> FibEntry | None, this epoch

    def _load(self):
        m, i = self._m, self.row
        hops = None if m.hops is None else m.hops[i].tolist()
        self._cols = (
            m.next_hop[i].tolist(),
            m.hold[i].tolist(),
            m.valid_from_ns[i].tolist(),
            m.valid_until_ns[i].tolist(),
            m.arrival_ns[i].tolist(),
            hops,
        )
        self._gen = m.generation
        self._entries = {}
        return self._cols

    def lookup(self, destination: int, now_ns: int | None = None) -> FibEntry | None:
        """Same answer as ``ForwardingTable.from_dict(payload["table"]).lookup``."""
        if self._gen == self._m.generation:
            entry = self._entries.get(destination, False)
            if entry is not False:
                if entry is None or now_ns is None or now_ns < entry.valid_until_ns:
                    return entry
                return None
        entry = self._entry(destination)  # (re)loads the row first when the epoch changed
        self._entries[destination] = entry
        if entry is not None and now_ns is not None and now_ns >= entry.valid_until_ns:
            return None
        return entry

    def _entry(self, destination: int) -> FibEntry | None:
        cols = self._cols if self._gen == self._m.generation else self._load()
        j = self._m.index.get(destination)
        if j is None:
            return None
        next_hop = cols[0][j]
        if next_hop < 0:
            return None
        until = cols[3][j]
        hops = cols[5]
        return FibEntry(
            destination=destination,
            next_hop=next_hop,
            valid_from_ns=cols[2][j],
            valid_until_ns=until,
            action=HOLD if cols[1][j] else FORWARD,
            arrival_ns=cols[4][j],
            hops=None if hops is None else hops[j],
        )


_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
# {"destination":,"next_hop":,"valid_from_ns":,"valid_until_ns":,"action":,"arrival_ns":,"hops":}
_ENTRY_KEYS_BYTES = len(
    encode_json(
        {
            "destination": 0,
            "next_hop": 0,
            "valid_from_ns": 0,
            "valid_until_ns": 0,
            "action": "",
            "arrival_ns": 0,
            "hops": 0,
        }
    )
) - (6 * 1 + 2)  # the six zeros and the empty string's quotes


def _digits(values: np.ndarray) -> np.ndarray:
    """Length of ``str(v)`` for every int64 ``v`` (exact, no floating point)."""
    v = np.asarray(values, dtype=np.int64)
    mag = np.abs(v)
    n = np.maximum(np.searchsorted(_POW10, mag, side="right"), 1)
    return n + (v < 0)


def table_payload_bytes(computer, last_epoch: dict) -> int:
    """Octets of ``encode_json(computer.table_payload(n))`` summed over the nodes whose table
    changed in ``last_epoch`` (``EpochComputer.last_epoch``), computed on the matrices."""
    sig, raw = last_epoch["sig"], last_epoch["raw"]
    rows = np.nonzero(last_epoch["publish"])[0]
    if rows.size == 0:
        return 0
    numbers = computer.numbers
    head = {
        "epoch": last_epoch["epoch"],
        "valid_from_ns": last_epoch["t_ns"],
        "table": {"node": 0, "t_ns": raw["t_ns"], "scheme": raw["scheme"], "entries": []},
    }
    head_bytes = len(encode_json(head)) - 1  # minus the node number "0"
    next_hop = sig["next_hop"][rows]
    has = next_hop >= 0
    per_row = np.count_nonzero(has, axis=1)
    n = int(per_row.sum())
    n_hold = int(np.count_nonzero(sig["hold"][rows][has]))
    total = rows.size * head_bytes + int(_digits(numbers[rows]).sum())
    total += int(np.maximum(per_row - 1, 0).sum())  # commas between entries
    total += n * _ENTRY_KEYS_BYTES
    total += int((_digits(numbers)[None, :] * has).sum())
    total += int(_digits(next_hop[has]).sum())
    total += int(_digits(raw["valid_from_ns"][rows][has]).sum())
    total += int(_digits(sig["valid_until_ns"][rows][has]).sum())
    total += int(_digits(raw["arrival_ns"][rows][has]).sum())
    total += n_hold * len(json.dumps(HOLD)) + (n - n_hold) * len(json.dumps(FORWARD))
    hops = raw["hops"]
    total += 4 * n if hops is None else int(_digits(hops[rows][has]).sum())
    return total
