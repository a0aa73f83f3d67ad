"""Read the packet event logs of a run into one columnar table (numpy arrays, no row objects).

The files are the ``OUT/run/events/*.csv`` logs of :mod:`netemu.runtime.eventlog`. A run whose
process was killed can leave a file whose last line is cut short; such a line (the file does not
end with a newline, or the row has the wrong number of cells, or an integer cell does not parse)
is skipped and counted in :attr:`EventTable.skipped_rows`.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "7.csv").write_text("t_ns,where,event,src\\n5,7,originated,7\\n6,7,deliv")
>>> table = read_event_files([d / "7.csv"])
>>> len(table), table.skipped_rows, table.column("src").tolist()
(1, 1, [7])
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..runtime.eventlog import INT_COLUMNS, STR_COLUMNS

__all__ = [
    "EVENTS",
    "EV_DELIVERED",
    "EV_DROPPED",
    "EV_HELD",
    "EV_IN_FLIGHT",
    "EV_ORIGINATED",
    "EV_OTHER",
    "EventTable",
    "NA",
    "read_event_files",
]

log = logging.getLogger(__name__)

#: Missing integer cell.
NA = np.iinfo(np.int64).min
_NA_TEXT = str(NA)

EVENTS = ("originated", "delivered", "dropped", "held_at_end", "in_flight_at_end")
EV_ORIGINATED, EV_DELIVERED, EV_DROPPED, EV_HELD, EV_IN_FLIGHT = range(5)
EV_OTHER = 5
_EVENT_CODE = {name: code for code, name in enumerate(EVENTS)}


@dataclass
class EventTable:
    """All event rows of a run: ``ints[name]`` int64 arrays (missing = :data:`NA`), ``strs[name]``
    object arrays of str (missing = ``""``), ``event`` codes (:data:`EVENTS` index, 5 = other)."""

    ints: dict[str, np.ndarray]
    strs: dict[str, np.ndarray]
    event: np.ndarray
    files: int = 0
    skipped_rows: int = 0
    truncated_files: list[str] = field(default_factory=list)
    other_events: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.event.shape[0])

    def column(self, name: str) -> np.ndarray:
        return self.ints[name] if name in self.ints else self.strs[name]


def _empty_table() -> EventTable:
    return EventTable(
        ints={c: np.zeros(0, np.int64) for c in INT_COLUMNS},
        strs={c: np.zeros(0, object) for c in STR_COLUMNS},
        event=np.zeros(0, np.int8),
    )


def _parse_int_column(cells) -> tuple[np.ndarray, np.ndarray]:
    """(values with NA for empty cells, mask of cells that failed to parse)."""
    n = len(cells)
    try:
        # One C-level parse of the whole column; about 6x faster than astype on strings.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            values = np.fromstring(",".join([c or _NA_TEXT for c in cells]), np.int64, sep=",")
        if values.size == n:
            return values, np.zeros(n, bool)
    except (ValueError, DeprecationWarning):
        pass
    values = np.full(n, NA, np.int64)
    bad = np.zeros(n, bool)
    for i, cell in enumerate(cells):
        if cell == "":
            continue
        try:
            values[i] = int(cell)
        except ValueError:
            bad[i] = True
    return values, bad


def _read_one(path: Path, default_where: int) -> tuple[EventTable, int, bool]:
    text = path.read_text(errors="replace")
    truncated = bool(text) and not text.endswith("\n")
    rows = list(csv.reader(io.StringIO(text)))
    skipped = 0
    if truncated and rows:
        rows.pop()
        skipped += 1
    if not rows:
        return _empty_table(), skipped, truncated
    header = rows[0]
    width = len(header)
    body = [r for r in rows[1:] if len(r) == width]
    skipped += len(rows) - 1 - len(body)
    n = len(body)
    cols = dict(zip(header, zip(*body, strict=True), strict=True)) if n else {}
    ok = np.ones(n, bool)
    ints = {}
    for name in INT_COLUMNS:
        if name in cols:
            values, bad = _parse_int_column(cols[name])
            ok &= ~bad
        else:
            values = np.full(n, NA, np.int64)
        ints[name] = values
    strs = {}
    for name in STR_COLUMNS:
        strs[name] = np.array(cols[name], dtype=object) if name in cols else np.full(n, "", object)
    names = np.array(cols.get("event", ("",) * n), dtype=object)
    event = np.array([_EVENT_CODE.get(e, EV_OTHER) for e in names], dtype=np.int8)
    where = ints["where"]
    where[where == NA] = default_where
    skipped += int(np.count_nonzero(~ok))
    if not ok.all():
        ints = {k: v[ok] for k, v in ints.items()}
        strs = {k: v[ok] for k, v in strs.items()}
        event = event[ok]
        names = names[ok]
    table = EventTable(ints=ints, strs=strs, event=event)
    other = names[event == EV_OTHER]
    if other.size:
        labels, counts = np.unique(other.astype(str), return_counts=True)
        table.other_events = {str(k): int(v) for k, v in zip(labels, counts, strict=True)}
    return table, skipped, truncated


def read_event_files(paths) -> EventTable:
    """Read and concatenate event logs. ``where`` defaults to the file's stem (a node number)
    or 0 for ``fabric.csv`` when the column is missing or empty."""
    parts = []
    skipped = 0
    truncated: list[str] = []
    other: dict[str, int] = {}
    paths = list(paths)
    for path in paths:
        path = Path(path)
        stem = path.stem
        default_where = int(stem) if stem.isdigit() else 0
        try:
            table, n_skipped, was_truncated = _read_one(path, default_where)
        except OSError as exc:
            log.warning("cannot read event log %s: %s", path, exc)
            continue
        parts.append(table)
        skipped += n_skipped
        if was_truncated:
            truncated.append(path.name)
        for k, v in table.other_events.items():
            other[k] = other.get(k, 0) + v
    if not parts:
        out = _empty_table()
    else:
        out = EventTable(
            ints={c: np.concatenate([p.ints[c] for p in parts]) for c in INT_COLUMNS},
            strs={c: np.concatenate([p.strs[c] for p in parts]) for c in STR_COLUMNS},
            event=np.concatenate([p.event for p in parts]),
        )
    out.files = len(paths)
    out.skipped_rows = skipped
    out.truncated_files = truncated
    out.other_events = other
    if skipped:
        log.info("event logs: skipped %d cut-short or malformed rows", skipped)
    return out

