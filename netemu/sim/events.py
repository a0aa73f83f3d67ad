"""Event logs of a simulated run: the same ``OUT/run/events/WHO.csv`` files a live run writes.

One process hosts every node, so rows are buffered in memory per file and appended in batches
(a live run has one :class:`~netemu.runtime.eventlog.EventLog` per process; 1,685 open files with
64 KiB buffers each would cost more than the rows). Same columns, same cell format.
"""

from __future__ import annotations

import csv

from ..runtime.eventlog import EVENT_COLUMNS, EventLog
from ..runtime.layout import RunLayout

__all__ = ["EventFiles"]

#: Buffered rows (all files together) before they are appended to the files.
FLUSH_ROWS = 200_000


class EventFiles:
    """``write(who, **row)`` appends a row to ``events/WHO.csv`` (``who``: a number or
    ``"fabric"``). Every file of ``whos`` exists (header only) from the start, as in a live run
    where each process opens its log when it starts."""

    def __init__(self, layout: RunLayout, whos):
        self.layout = layout
        self._rows: dict = {}
        self._buffered = 0
        self.rows = 0
        self.rows_by: dict = {}
        for who in whos:
            EventLog(layout.events(who)).close()  # the header, written by the live-run class
            self._rows[who] = []
            self.rows_by[who] = 0

    def write(self, who, **row) -> None:
        # csv.writer turns None into an empty cell and an int into str(int), as EventLog does
        get = row.get
        self._rows[who].append([get(c) for c in EVENT_COLUMNS])
        self.rows_by[who] += 1
        self.rows += 1
        self._buffered += 1
        if self._buffered >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        for who, rows in self._rows.items():
            if rows:
                with open(self.layout.events(who), "a", newline="") as f:
                    csv.writer(f).writerows(rows)
                rows.clear()
        self._buffered = 0

    def close(self) -> None:
        self.flush()
