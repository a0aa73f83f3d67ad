"""The contact plan: who can send to whom, when, how fast, and with what one-way light time.

A :class:`ContactPlan` is column-oriented (numpy arrays), so routing and export can work on
whole plans at once; :meth:`ContactPlan.contacts` gives row records when that is easier to read.
Times are integer nanoseconds relative to the plan's reference time ``reference_utc``
(for a plan generated from a scenario, the scenario epoch). Contacts are directional.

>>> plan = ContactPlan.from_contacts([Contact(1, 2, 0, 60 * NS_PER_S, 8e6, 10_000_000)])
>>> plan.contacts()[0].end_s
60.0
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import ContactPlanError
from ..timebase import NS_PER_S


@dataclasses.dataclass(frozen=True, slots=True)
class Contact:
    """One directional contact: ``from_node`` can transmit to ``to_node`` in [start, end)."""

    from_node: int
    to_node: int
    start_ns: int
    end_ns: int
    rate_bps: float
    owlt_ns: int
    confidence: float = 1.0

    def __post_init__(self):
        if self.end_ns < self.start_ns:
            raise ContactPlanError(
                f"contact {self.from_node}->{self.to_node} ends ({self.end_ns} ns) before it "
                f"starts ({self.start_ns} ns)"
            )
        if self.rate_bps < 0 or self.owlt_ns < 0:
            raise ContactPlanError(
                f"contact {self.from_node}->{self.to_node}: rate and owlt must be >= 0"
            )
        if not 0.0 <= self.confidence <= 1.0:
            raise ContactPlanError(
                f"contact {self.from_node}->{self.to_node}: confidence must be in [0, 1]"
            )

    @property
    def start_s(self) -> float:
        return self.start_ns / NS_PER_S

    @property
    def end_s(self) -> float:
        return self.end_ns / NS_PER_S

    @property
    def owlt_s(self) -> float:
        return self.owlt_ns / NS_PER_S

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S

    @property
    def volume_bytes(self) -> float:
        """Bytes the contact can carry: rate x duration."""
        return self.rate_bps / 8.0 * self.duration_s


_COLUMNS = ("from_node", "to_node", "start_ns", "end_ns", "rate_bps", "owlt_ns", "confidence")
_DTYPES = {
    "from_node": np.int64,
    "to_node": np.int64,
    "start_ns": np.int64,
    "end_ns": np.int64,
    "rate_bps": np.float64,
    "owlt_ns": np.int64,
    "confidence": np.float64,
}


class ContactPlan:
    """A directional contact plan as parallel numpy arrays, sorted by (start, from, to)."""

    __slots__ = (*_COLUMNS, "reference_utc", "node_names")

    def __init__(
        self,
        *,
        from_node,
        to_node,
        start_ns,
        end_ns,
        rate_bps,
        owlt_ns,
        confidence=None,
        reference_utc: dt.datetime | None = None,
        node_names: dict[int, str] | None = None,
    ):
        n = len(from_node)
        if confidence is None:
            confidence = np.ones(n)
        cols = {
            "from_node": from_node,
            "to_node": to_node,
            "start_ns": start_ns,
            "end_ns": end_ns,
            "rate_bps": rate_bps,
            "owlt_ns": owlt_ns,
            "confidence": confidence,
        }
        arrays = {}
        for name, values in cols.items():
            arr = np.asarray(values, dtype=_DTYPES[name]).reshape(-1)
            if arr.shape[0] != n:
                raise ContactPlanError(f"column {name} has {arr.shape[0]} rows, expected {n}")
            arrays[name] = arr
        if n and np.any(arrays["end_ns"] < arrays["start_ns"]):
            raise ContactPlanError("a contact ends before it starts")
        order = np.lexsort((arrays["to_node"], arrays["from_node"], arrays["start_ns"]))
        for name, arr in arrays.items():
            arr = arr[order]
            arr.flags.writeable = False
            setattr(self, name, arr)
        self.reference_utc = reference_utc
        self.node_names = dict(node_names or {})

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_contacts(
        cls,
        contacts: Iterable[Contact],
        *,
        reference_utc: dt.datetime | None = None,
        node_names: dict[int, str] | None = None,
    ) -> ContactPlan:
        rows = list(contacts)
        cols = {name: [getattr(c, name) for c in rows] for name in _COLUMNS}
        return cls(**cols, reference_utc=reference_utc, node_names=node_names)

    # -- access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.from_node.shape[0])

    def __iter__(self):
        return iter(self.contacts())

    def __eq__(self, other) -> bool:
        if not isinstance(other, ContactPlan):
            return NotImplemented
        return self.reference_utc == other.reference_utc and all(
            np.array_equal(getattr(self, c), getattr(other, c)) for c in _COLUMNS
        )

    def __repr__(self) -> str:
        return f"ContactPlan({len(self)} contacts, {len(self.nodes())} nodes)"

    def contacts(self) -> list[Contact]:
        return [
            Contact(
                int(self.from_node[i]),
                int(self.to_node[i]),
                int(self.start_ns[i]),
                int(self.end_ns[i]),
                float(self.rate_bps[i]),
                int(self.owlt_ns[i]),
                float(self.confidence[i]),
            )
            for i in range(len(self))
        ]

    def nodes(self) -> list[int]:
        """Sorted node numbers that appear in the plan."""
        if not len(self):
            return []
        return sorted(set(np.concatenate([self.from_node, self.to_node]).tolist()))

    def select(self, mask) -> ContactPlan:
        """A new plan with the contacts where ``mask`` is true (same reference and names)."""
        mask = np.asarray(mask)
        return ContactPlan(
            **{c: getattr(self, c)[mask] for c in _COLUMNS},
            reference_utc=self.reference_utc,
            node_names=self.node_names,
        )

    def window(self, start_ns: int, end_ns: int) -> ContactPlan:
        """Contacts overlapping [start_ns, end_ns), clipped to it."""
        keep = (self.end_ns > start_ns) & (self.start_ns < end_ns)
        sub = self.select(keep)
        cols = {c: getattr(sub, c).copy() for c in _COLUMNS}
        cols["start_ns"] = np.maximum(cols["start_ns"], start_ns)
        cols["end_ns"] = np.minimum(cols["end_ns"], end_ns)
        return ContactPlan(**cols, reference_utc=self.reference_utc, node_names=self.node_names)

    def columns(self) -> dict[str, np.ndarray]:
        return {c: getattr(self, c) for c in _COLUMNS}


def read_plan_text(path: str | Path) -> tuple[str, str]:
    """(path as text, file content) of a contact-plan file, or a ContactPlanError."""
    p = Path(path)
    try:
        return str(p), p.read_text()
    except OSError as exc:
        raise ContactPlanError(f"cannot read contact plan: {exc.strerror}", path=str(p)) from None
