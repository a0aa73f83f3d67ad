"""Faults injected into a live emulation: the model, parsing, validation and region logic.

A :class:`Fault` is one command (``netemu fault``, an MQTT ``control/cmd`` with ``op: fault``,
or a line of a ``netemu run --faults FILE.yaml`` schedule). Kinds (docs/faults.md):

======================  ====================================================================
``link-cut A B``        the link between nodes A and B is down (both directions)
``link-restore A B``    undo ``link-cut`` and ``link-loss`` on that link
``link-loss A B``       frame-loss probability ``loss`` on that link (0 removes the override)
``node-kill N``         the node's process is killed (SIGKILL)
``node-restart N``      the node's process is killed if running, then started again
``partition``           every link between a region and the rest of the network is cut
``partition-heal``      undo one partition (``name``) or all of them
``broker-restart``      the embedded MQTT broker is stopped and started on the same port
======================  ====================================================================

Link faults and partitions are kept in :class:`LinkOverrides`, which the controller applies to
the link state before routing (routes change from the next computed epoch) and publishes,
retained, on the ``faults`` topic; the fabric applies them to its current link table at once
and to every later one (:meth:`LinkOverrides.apply_table`).

>>> f = Fault.from_dict({"fault": "link-loss", "a": "sat-1", "b": "sat-2", "loss": 0.3})
>>> f.kind, f.target, f.loss
('link-loss', 'sat-1 -- sat-2', 0.3)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetemuError, ScenarioError

__all__ = [
    "FAULT_KINDS",
    "LINK_KINDS",
    "NODE_KINDS",
    "Fault",
    "FaultError",
    "LinkOverrides",
    "Region",
    "load_fault_schedule",
    "resolve_node",
]

LINK_KINDS = ("link-cut", "link-restore", "link-loss")
NODE_KINDS = ("node-kill", "node-restart")
FAULT_KINDS = (*LINK_KINDS, *NODE_KINDS, "partition", "partition-heal", "broker-restart")
#: Who issued a fault (the ``issued_by`` of the faults log).
ISSUERS = ("cli", "mqtt", "schedule")


class FaultError(NetemuError):
    """A fault that cannot be parsed, resolved or carried out (the message says why)."""


def resolve_node(text: Any, scenario) -> int:
    """The node number of a name (``gs-madrid``, ``madrid``) or number in ``scenario``.

    >>> from netemu.scenario import load_scenario                 # doctest: +SKIP
    >>> resolve_node("madrid", load_scenario("topologies/demo-small.yaml"))  # doctest: +SKIP
    1002
    """
    key = str(text).strip()
    for candidate in (key, f"gs-{key}"):
        try:
            return int(scenario.node(candidate).number)
        except ScenarioError:
            continue
    names = [n.name for n in scenario.nodes if key in n.name][:5]
    hint = f"; did you mean {', '.join(names)}?" if names else ""
    raise FaultError(f"no node {key!r} in scenario {scenario.name}{hint}")


@dataclasses.dataclass(frozen=True)
class Region:
    """A set of nodes, fixed when the partition is made.

    ``nodes``: names, numbers or shell patterns (``iridium-p01-*``, ``gs-*``); ``box``:
    ``(lat_min, lat_max, lon_min, lon_max)`` in degrees — every ground station inside it
    (longitudes may wrap: ``lon_min > lon_max`` means across the antimeridian). Satellites move,
    so they join a region by name only (an orbital plane is a pattern).
    """

    nodes: tuple[str, ...] = ()
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(str(n).strip() for n in self.nodes if str(n)))
        if self.box is not None:
            box = tuple(float(v) for v in self.box)
            if len(box) != 4 or not all(math.isfinite(v) for v in box):
                raise FaultError("region box must be four numbers: lat_min,lat_max,lon_min,lon_max")
            if not (-90 <= box[0] <= box[1] <= 90):
                raise FaultError(f"region box latitudes must be -90 <= min <= max <= 90: {box}")
            if not all(-180 <= v <= 180 for v in box[2:]):
                raise FaultError(f"region box longitudes must be in [-180, 180]: {box}")
            object.__setattr__(self, "box", box)
        if not self.nodes and self.box is None:
            raise FaultError("a region needs nodes (names or patterns) and/or a lat/lon box")

    def members(self, scenario) -> frozenset[int]:
        """Node numbers in the region; raises :class:`FaultError` if it is empty or a name
        matches nothing."""
        out: set[int] = set()
        names = [n.name for n in scenario.nodes]
        for item in self.nodes:
            if any(ch in item for ch in "*?["):
                hits = [scenario.node(n).number for n in names if fnmatch.fnmatchcase(n, item)]
                if not hits:
                    raise FaultError(f"region pattern {item!r} matches no node")
                out.update(hits)
            else:
                out.add(resolve_node(item, scenario))
        if self.box is not None:
            lat0, lat1, lon0, lon1 = self.box
            for gs, node in zip(scenario.ground_stations, scenario.ground_nodes, strict=False):
                lon = gs.lon_deg
                inside_lon = lon0 <= lon <= lon1 if lon0 <= lon1 else (lon >= lon0 or lon <= lon1)
                if lat0 <= gs.lat_deg <= lat1 and inside_lon:
                    out.add(node.number)
        if not out:
            raise FaultError("the region holds no node")
        if len(out) == len(scenario.nodes):
            raise FaultError("the region holds every node: nothing to partition from")
        return frozenset(out)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        if self.nodes:
            out["nodes"] = list(self.nodes)
        if self.box is not None:
            out["box"] = list(self.box)
        return out

    def describe(self) -> str:
        parts = []
        if self.nodes:
            parts.append(",".join(self.nodes))
        if self.box is not None:
            parts.append("box " + ",".join(f"{v:g}" for v in self.box))
        return " + ".join(parts)


@dataclasses.dataclass(frozen=True)
class Fault:
    """One fault command. ``a``/``b``: node names or numbers (``a`` alone for node faults);
    ``loss`` for ``link-loss``; ``region`` and ``name`` for partitions; ``at_s``: scenario
    time in seconds for a scheduled fault (``None``: now)."""

    kind: str
    a: str | None = None
    b: str | None = None
    loss: float | None = None
    region: Region | None = None
    name: str | None = None
    at_s: float | None = None

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        for key in ("a", "b", "name"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, str(value).strip() or None)
        if self.kind in LINK_KINDS and (self.a is None or self.b is None):
            raise FaultError(f"{self.kind} needs two nodes A and B")
        if self.kind in LINK_KINDS and self.a == self.b:
            raise FaultError(f"{self.kind}: A and B are the same node")
        if self.kind in NODE_KINDS and self.a is None:
            raise FaultError(f"{self.kind} needs a node")
        if self.kind == "link-loss":
            if self.loss is None:
                raise FaultError("link-loss needs loss (a probability in [0, 1])")
            loss = float(self.loss)
            if not 0.0 <= loss <= 1.0:
                raise FaultError(f"link-loss: loss must be in [0, 1], got {self.loss}")
            object.__setattr__(self, "loss", loss)
        elif self.loss is not None:
            raise FaultError(f"{self.kind} takes no loss")
        if self.kind == "partition" and self.region is None:
            raise FaultError("partition needs a region (nodes and/or box)")
        if self.at_s is not None:
            at = float(self.at_s)
            if not math.isfinite(at) or at < 0:
                raise FaultError(f"fault time must be >= 0 s, got {self.at_s}")
            object.__setattr__(self, "at_s", at)

    @property
    def target(self) -> str:
        """What the fault acts on, for people and the faults log."""
        if self.kind in LINK_KINDS:
            return f"{self.a} -- {self.b}"
        if self.kind in NODE_KINDS:
            return str(self.a)
        if self.kind == "partition":
            return f"{self.name or 'partition'}: {self.region.describe()}"
        if self.kind == "partition-heal":
            return self.name or "all partitions"
        return "broker"

    def to_dict(self) -> dict:
        """The ``control/cmd`` fields (without ``id`` and ``op``)."""
        out: dict[str, Any] = {"fault": self.kind}
        for key in ("a", "b", "loss", "name", "at_s"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.region is not None:
            out.update(self.region.to_dict())
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "fault") -> Fault:
        """From a ``control/cmd`` payload or a schedule entry (``fault`` or ``kind``; ``at_s``,
        ``a``, ``b``, ``loss``, ``nodes``, ``box``, ``name``). Unknown keys are errors."""
        if not isinstance(data, Mapping):
            raise FaultError(f"{where}: expected a mapping, got {type(data).__name__}")
        known = {"id", "op", "fault", "kind", "a", "b", "node", "loss", "nodes", "box", "name"}
        known.add("at_s")
        extra = sorted(set(data) - known)
        if extra:
            raise FaultError(f"{where}: unknown keys {', '.join(extra)}")
        kind = data.get("fault", data.get("kind"))
        if kind is None:
            raise FaultError(f"{where}: no fault kind ('fault': one of {', '.join(FAULT_KINDS)})")
        region = None
        if "nodes" in data or "box" in data:
            nodes = data.get("nodes") or ()
            if isinstance(nodes, str):
                nodes = [n for n in nodes.split(",") if n.strip()]
            box = data.get("box")
            if isinstance(box, str):
                box = [v for v in box.split(",") if v.strip()]
            try:
                region = Region(nodes=tuple(nodes), box=tuple(box) if box is not None else None)
            except (TypeError, ValueError) as exc:
                raise FaultError(f"{where}: bad region: {exc}") from None
        try:
            return cls(
                kind=str(kind),
                a=data.get("a", data.get("node")),
                b=data.get("b"),
                loss=_number(data.get("loss"), "loss", where),
                region=region,
                name=data.get("name"),
                at_s=_number(data.get("at_s"), "at_s", where),
            )
        except FaultError as exc:
            raise FaultError(f"{where}: {exc}") from None


def _number(value, key: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise FaultError(f"{where}: {key} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FaultError(f"{where}: {key} must be a number, got {value!r}") from None


def load_fault_schedule(path: str | Path, scenario=None) -> list[Fault]:
    """Faults of a schedule file, sorted by time. The file::

        faults:
          - {at_s: 5, fault: link-cut, a: iridium-p01-s01, b: iridium-p01-s02}
          - {at_s: 9, fault: link-loss, a: 3, b: 4, loss: 0.3}
          - {at_s: 12, fault: partition, name: west, box: [-60, 80, -130, -30]}
          - {at_s: 20, fault: node-kill, node: gs-madrid}

    With ``scenario``, node names and regions are checked now (errors name the entry).
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise FaultError(f"{path}: cannot read the fault schedule: {exc}") from None
    entries = data.get("faults") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise FaultError(f"{path}: expected a list under 'faults:'")
    faults = []
    for i, entry in enumerate(entries):
        where = f"{path}: faults[{i}]"
        fault = Fault.from_dict(entry, where=where)
        if fault.at_s is None:
            raise FaultError(f"{where}: needs at_s (scenario time in seconds)")
        if scenario is not None:
            try:
                check_fault(fault, scenario)
            except FaultError as exc:
                raise FaultError(f"{where}: {exc}") from None
        faults.append(fault)
    return sorted(faults, key=lambda f: f.at_s)


def check_fault(fault: Fault, scenario) -> dict:
    """Resolve a fault's nodes in ``scenario``: ``{"a", "b"}`` numbers and ``members`` of a
    region. Raises :class:`FaultError` naming what is wrong."""
    out: dict[str, Any] = {}
    if fault.a is not None:
        out["a"] = resolve_node(fault.a, scenario)
    if fault.b is not None:
        out["b"] = resolve_node(fault.b, scenario)
        if out["a"] == out["b"]:
            raise FaultError(f"{fault.kind}: A and B are the same node")
    if fault.region is not None:
        out["members"] = fault.region.members(scenario)
    return out


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


class LinkOverrides:
    """Link faults in force: cut links, loss overrides and partitions (node numbers).

    Applied on top of every link state / link table. ``to_dict`` is the retained ``faults``
    payload; :meth:`from_dict` reads it back (the fabric).

    >>> o = LinkOverrides()
    >>> o.cut_link(1, 2); o.set_loss(3, 4, 0.5); o.partition("p", {1, 3})
    >>> o.link_down_mask(np.array([1, 3, 5]), np.array([2, 4, 1])).tolist()
    [True, True, True]
    """

    def __init__(self):
        self.cut: set[tuple[int, int]] = set()
        self.loss: dict[tuple[int, int], float] = {}
        self.partitions: dict[str, frozenset[int]] = {}

    def __bool__(self) -> bool:
        return bool(self.cut or self.loss or self.partitions)

    def cut_link(self, a: int, b: int) -> None:
        self.cut.add(_pair(a, b))

    def restore_link(self, a: int, b: int) -> None:
        self.cut.discard(_pair(a, b))
        self.loss.pop(_pair(a, b), None)

    def set_loss(self, a: int, b: int, loss: float) -> None:
        if loss <= 0:
            self.loss.pop(_pair(a, b), None)
        else:
            self.loss[_pair(a, b)] = float(loss)

    def partition(self, name: str, members: Iterable[int]) -> None:
        self.partitions[name] = frozenset(int(m) for m in members)

    def heal(self, name: str | None = None) -> list[str]:
        """Remove partition ``name`` (all when ``None``); the names removed."""
        if name is None:
            names = list(self.partitions)
        else:
            names = [name] if name in self.partitions else []
        for n in names:
            del self.partitions[n]
        return names

    def link_down_mask(self, a_numbers: np.ndarray, b_numbers: np.ndarray) -> np.ndarray:
        """Which links (end node numbers, arrays) the overrides force down."""
        a = np.asarray(a_numbers, dtype=np.int64)
        b = np.asarray(b_numbers, dtype=np.int64)
        down = np.zeros(a.shape, bool)
        if self.cut:
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            cut = np.array(sorted(self.cut), dtype=np.int64).reshape(-1, 2)
            for x, y in cut.tolist():
                down |= (lo == x) & (hi == y)
        for members in self.partitions.values():
            inside = np.array(sorted(members), dtype=np.int64)
            down |= np.isin(a, inside) != np.isin(b, inside)
        return down

    def loss_column(self, a_numbers, b_numbers, loss) -> np.ndarray:
        """``loss`` with the overrides put in."""
        out = np.array(loss, dtype=np.float64, copy=True)
        if self.loss:
            a = np.asarray(a_numbers, dtype=np.int64)
            b = np.asarray(b_numbers, dtype=np.int64)
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            for (x, y), p in self.loss.items():
                out[(lo == x) & (hi == y)] = p
        return out

    def apply_table(self, table, numbers) -> Any:
        """A copy of a :class:`~netemu.fabric.table.LinkTable` (``a``/``b`` are indices into
        ``numbers``) with the overrides in force; ``table`` itself when there are none."""
        if not self:
            return table
        numbers = np.asarray(numbers, dtype=np.int64)
        a, b = numbers[table.a], numbers[table.b]
        up = np.asarray(table.up) & ~self.link_down_mask(a, b)
        loss = self.loss_column(a, b, table.loss)
        return dataclasses.replace(table, up=up, loss=loss)

    def affected_links(self, a_numbers, b_numbers) -> list[tuple[int, int]]:
        """The (a, b) number pairs of the given links that the overrides change."""
        a = np.asarray(a_numbers, dtype=np.int64)
        b = np.asarray(b_numbers, dtype=np.int64)
        hit = self.link_down_mask(a, b)
        if self.loss:
            hit |= self.loss_column(a, b, np.full(a.shape, -1.0)) >= 0
        return sorted({_pair(int(x), int(y)) for x, y in zip(a[hit], b[hit], strict=True)})

    def to_dict(self) -> dict:
        return {
            "cut": [list(p) for p in sorted(self.cut)],
            "loss": [[a, b, p] for (a, b), p in sorted(self.loss.items())],
            "partitions": {k: sorted(v) for k, v in sorted(self.partitions.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkOverrides:
        out = cls()
        try:
            for a, b in data.get("cut", ()):
                out.cut_link(int(a), int(b))
            for a, b, p in data.get("loss", ()):
                p = float(p)
                if not 0.0 <= p <= 1.0:
                    raise ValueError(f"loss {p} not in [0, 1]")
                out.set_loss(int(a), int(b), p)
            for name, members in dict(data.get("partitions", {})).items():
                out.partition(str(name), members)
        except (TypeError, ValueError, AttributeError) as exc:
            raise FaultError(f"bad faults message: {exc}") from None
        return out
