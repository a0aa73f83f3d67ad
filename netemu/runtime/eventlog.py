"""Packet event logs: one CSV per node process and one for the fabric.

Every packet event that the results need is one row; the summary (netemu.results) joins them.
A packet is identified by ``(src, packet_id, creation_dtn_ns)`` (SPEC.md). Columns:

============== ==============================================================================
t_ns           scenario time of the event (ns since the scenario epoch)
where          node number that logged it; 0 for the fabric
event          ``originated`` | ``delivered`` | ``dropped`` | ``held_at_end`` | ``in_flight_at_end``
src, dst       SGP source / destination node numbers
packet_id      SGP packet_id
creation_dtn_ns SGP creation_time_ns (DTN time)
msg_type       SGP message type name (DATA, ECHO_REQUEST, HELLO, ...)
size_bytes     SGP packet size (octets) at the event
flow_id, seq   for netemu traffic (payload type 192): flow id and sequence number; else empty
reason         drop reason (node: NodeDropReason values; fabric: FabricDrop values); else empty
tx, rx         node numbers of the link end points (fabric rows; ``rx`` = previous hop of a
               delivery at a node); else empty
link_id        fabric link id; else empty
hops           number of links crossed (delivered rows); else empty
route          RECORD_ROUTE entries ``node@t_ns;node@t_ns`` in scenario ns; else empty
============== ==============================================================================

Nodes log ``originated`` for packets that their application or traffic generators create (not
for HELLO, ACK, NACK), ``delivered`` and ``dropped`` for every packet, ``held_at_end`` for what
is still buffered when they stop. The fabric logs ``dropped`` and ``in_flight_at_end``.
Rows are flushed at least every 0.2 s and on exit, so a killed process loses little.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["EVENT_COLUMNS", "INT_COLUMNS", "STR_COLUMNS", "EventLog", "read_events"]

EVENT_COLUMNS = (
    "t_ns",
    "where",
    "event",
    "src",
    "dst",
    "packet_id",
    "creation_dtn_ns",
    "msg_type",
    "size_bytes",
    "flow_id",
    "seq",
    "reason",
    "tx",
    "rx",
    "link_id",
    "hops",
    "route",
)

#: Columns holding integers (empty = missing); the others hold text.
INT_COLUMNS = (
    "t_ns",
    "where",
    "src",
    "dst",
    "packet_id",
    "creation_dtn_ns",
    "size_bytes",
    "flow_id",
    "seq",
    "tx",
    "rx",
    "link_id",
    "hops",
)
STR_COLUMNS = tuple(c for c in EVENT_COLUMNS if c not in INT_COLUMNS and c != "event")
_INT_COLUMNS = frozenset(INT_COLUMNS)


class EventLog:
    """Append-only CSV event log; ``write(**row)`` with :data:`EVENT_COLUMNS` keys.

    Use as a context manager (or call :meth:`close`). Writes are buffered and flushed when
    ``flush_interval_s`` has passed since the last flush, and on close.
    """

    def __init__(self, path: str | Path, *, flush_interval_s: float = 0.2, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # append: a process started again in the same run continues its predecessor's file
        # (a last line cut short by a kill is ended first, so readers skip only that line)
        tail = b""
        if append and self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(max(0, f.seek(0, 2) - 1))
                tail = f.read(1)
        mode = "a" if tail else "w"
        self._file = open(self.path, mode, newline="", buffering=1 << 16)  # noqa: SIM115
        self._writer = csv.writer(self._file)
        if not tail:
            self._writer.writerow(EVENT_COLUMNS)
        elif tail != b"\n":
            self._file.write("\n")
        self._interval = flush_interval_s
        self._last_flush = time.monotonic()
        self.rows = 0

    def write(self, **row) -> None:
        self._writer.writerow([_cell(row.get(c)) for c in EVENT_COLUMNS])
        self.rows += 1
        now = time.monotonic()
        if now - self._last_flush >= self._interval:
            self._file.flush()
            self._last_flush = now

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cell(value) -> str:
    if value is None:
        return ""
    return str(value)


def read_events(path: str | Path) -> Iterator[dict]:
    """Rows of an event log as dicts, integers parsed, empty cells ``None``.

    A last line cut short by a killed process is skipped.
    """
    text = Path(path).read_text()
    for row in csv.DictReader(io.StringIO(text)):
        if None in row.values() and row.get("route") is None:  # truncated last line
            continue
        out = {}
        for key, value in row.items():
            if key is None:
                continue
            if value == "" or value is None:
                out[key] = None
            elif key in _INT_COLUMNS:
                try:
                    out[key] = int(value)
                except ValueError:
                    out = None
                    break
            else:
                out[key] = value
        if out is not None:
            yield out
