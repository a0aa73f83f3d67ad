"""The link table: what the fabric is told about every link at one epoch.

A :class:`LinkTable` is columnar (numpy arrays over links, like :class:`~netemu.links.LinkState`)
and carries the epoch time ``t_ns``. Each row is either *undirected* (both directions ``a -> b``
and ``b -> a`` share the row's state, each with its own transmit queue) or *directed* (only
``a -> b``). It is built from a ``LinkState`` (:meth:`LinkTable.from_link_state`) or rebuilt from
its plain-data form (:meth:`LinkTable.to_dict` / :meth:`LinkTable.from_dict`), which is JSON-able
so the controller can publish it over MQTT.

>>> table = LinkTable.from_rows(0, [dict(link_id=7, a=0, b=1, range_m=1.0e6, rate_bps=1e9)])
>>> LinkTable.from_dict(table.to_dict()).range_m.tolist()
[1000000.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NetemuError
from ..geometry import C_M_PER_S

if TYPE_CHECKING:  # pragma: no cover
    from ..links import LinkState

__all__ = ["LINK_TABLE_VERSION", "LinkTable"]

#: Version of the plain-data (``to_dict``) form.
LINK_TABLE_VERSION = 1

_COLUMNS = (
    ("link_id", np.int64),
    ("a", np.int64),
    ("b", np.int64),
    ("up", bool),
    ("range_m", np.float64),
    ("range_rate_mps", np.float64),
    ("rate_bps", np.float64),
    ("loss", np.float64),
    ("directed", bool),
)
_DEFAULTS = {"up": True, "range_rate_mps": 0.0, "loss": 0.0, "directed": False}


@dataclass(frozen=True, eq=False)
class LinkTable:
    """Link state handed to the fabric at one epoch (arrays over rows, one row per link).

    Columns: ``link_id`` (stable id, the candidate index for geometry-derived tables), ``a``,
    ``b`` (node indices; ``a -> b`` is the only direction of a directed row), ``up``,
    ``range_m`` and ``range_rate_mps`` at ``t_ns``, ``rate_bps`` (``inf`` = no serialization
    delay), ``loss`` (frame-loss probability in [0, 1]) and ``directed``.
    Validated on construction: a bad table raises :class:`~netemu.errors.NetemuError`.
    """

    t_ns: int
    link_id: np.ndarray
    a: np.ndarray
    b: np.ndarray
    up: np.ndarray
    range_m: np.ndarray
    range_rate_mps: np.ndarray
    rate_bps: np.ndarray
    loss: np.ndarray
    directed: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "t_ns", int(self.t_ns))
        n = None
        for name, dtype in _COLUMNS:
            col = np.asarray(getattr(self, name), dtype=dtype).reshape(-1)
            if n is None:
                n = col.shape[0]
            elif col.shape[0] != n:
                raise NetemuError(
                    f"link table column {name!r} has {col.shape[0]} rows, expected {n}"
                )
            col.setflags(write=False)
            object.__setattr__(self, name, col)
        up = self.up
        if np.any(self.a == self.b):
            raise NetemuError("link table: a link must join two different nodes (a == b)")
        if np.any((self.a < 0) | (self.b < 0)):
            raise NetemuError("link table: node indices must not be negative")
        bad = up & ~(np.isfinite(self.range_m) & (self.range_m >= 0))
        if np.any(bad):
            raise NetemuError(
                f"link table: up link {int(self.link_id[bad][0])} needs a finite range_m >= 0"
            )
        bad = up & ~(np.abs(self.range_rate_mps) < C_M_PER_S)
        if np.any(bad):
            raise NetemuError(
                f"link table: up link {int(self.link_id[bad][0])} needs a finite range_rate_mps "
                f"slower than light"
            )
        bad = up & ~(self.rate_bps > 0)
        if np.any(bad):
            raise NetemuError(
                f"link table: up link {int(self.link_id[bad][0])} needs rate_bps > 0 "
                f"(inf for no serialization delay)"
            )
        bad = up & ~((self.loss >= 0) & (self.loss <= 1))
        if np.any(bad):
            raise NetemuError(
                f"link table: up link {int(self.link_id[bad][0])} needs a loss probability "
                f"in [0, 1]"
            )

    def __len__(self) -> int:
        return int(self.link_id.shape[0])

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_link_state(cls, state: LinkState, *, include_down: bool = True) -> LinkTable:
        """The table for one :class:`~netemu.links.LinkState` (undirected rows).

        Down rows are kept by default so the fabric can tell *link down* from *no such link*;
        their non-finite ranges are harmless (only up rows are validated).
        """
        rows = slice(None) if include_down else np.nonzero(state.up)[0]
        return cls(
            t_ns=state.t_ns,
            link_id=state.link_id[rows],
            a=state.a[rows],
            b=state.b[rows],
            up=state.up[rows],
            range_m=state.range_m[rows],
            range_rate_mps=state.range_rate_mps[rows],
            rate_bps=state.rate_bps[rows],
            loss=state.loss[rows],
            directed=np.zeros(len(state.link_id[rows]), bool),
        )

    @classmethod
    def from_rows(cls, t_ns: int, rows: Iterable[Mapping[str, Any]]) -> LinkTable:
        """A table from one mapping per link (keys are the column names; ``up``,
        ``range_rate_mps``, ``loss`` and ``directed`` are optional)."""
        rows = list(rows)
        cols: dict[str, list] = {name: [] for name, _ in _COLUMNS}
        for i, row in enumerate(rows):
            unknown = set(row) - set(cols)
            if unknown:
                raise NetemuError(f"link table row {i}: unknown key(s) {sorted(unknown)}")
            for name, _ in _COLUMNS:
                if name in row:
                    cols[name].append(row[name])
                elif name in _DEFAULTS:
                    cols[name].append(_DEFAULTS[name])
                else:
                    raise NetemuError(f"link table row {i}: missing key {name!r}")
        return cls(
            t_ns=t_ns,
            **{
                name: np.array(v, dtype=dt)
                for (name, dt), v in zip(_COLUMNS, cols.values(), strict=True)
            },
        )

    # -- plain data ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-able columnar form: ``{"version", "t_ns", "columns": {name: list}}``.

        Non-finite floats (ranges of down links) become ``None``.
        """
        columns: dict[str, list] = {}
        for name, dtype in _COLUMNS:
            values = getattr(self, name).tolist()
            if dtype is np.float64:
                values = [v if math.isfinite(v) else None for v in values]
                if name == "rate_bps":  # inf is meaningful there: keep it as a string
                    values = [
                        "inf" if v is None and math.isinf(r) else v
                        for v, r in zip(values, self.rate_bps.tolist(), strict=True)
                    ]
            columns[name] = values
        return {"version": LINK_TABLE_VERSION, "t_ns": self.t_ns, "columns": columns}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkTable:
        """Inverse of :meth:`to_dict`; raises :class:`~netemu.errors.NetemuError` on bad input
        (it may come from the network)."""
        if not isinstance(data, Mapping):
            raise NetemuError(f"link table: expected an object, got {type(data).__name__}")
        if data.get("version") != LINK_TABLE_VERSION:
            raise NetemuError(
                f"link table: expected version {LINK_TABLE_VERSION}, got {data.get('version')!r}"
            )
        t_ns = data.get("t_ns")
        if not isinstance(t_ns, int) or isinstance(t_ns, bool):
            raise NetemuError(f"link table: t_ns must be an integer, got {t_ns!r}")
        columns = data.get("columns")
        if not isinstance(columns, Mapping):
            raise NetemuError("link table: 'columns' must be an object")
        arrays = {}
        for name, dtype in _COLUMNS:
            if name not in columns or not isinstance(columns[name], list):
                raise NetemuError(f"link table: column {name!r} missing or not a list")
            values = columns[name]
            if dtype is np.float64:
                values = [math.nan if v is None else v for v in values]
            try:
                arrays[name] = np.array(values, dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise NetemuError(f"link table: column {name!r}: {exc}") from None
        return cls(t_ns=t_ns, **arrays)
