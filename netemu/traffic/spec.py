"""Flows and responders as data, and the payload of netemu traffic (payload type 192).

A :class:`FlowSpec` is one stream of SGP DATA packets from a source node to a destination node;
a :class:`ResponderSpec` makes a node (an in-orbit compute satellite) answer every packet of some
flows with a result packet of its own. Both travel as plain dicts (``to_dict`` / ``from_dict``)
inside each node's config file (``NodeHostConfig.flows`` / ``.responders``).

Payload (docs/runtime.md "Traffic"): ``flow_id`` (u32 BE), ``seq`` (u32 BE), then zero padding
so that the whole SGP packet, as created at its source, is ``size_bytes`` octets.

>>> f = FlowSpec(flow_id=3, name="a-b", src=1001, dst=1002, rate_pps=10, size_bytes=1000,
...              start_ns=0, stop_ns=10**9)
>>> len(traffic_payload(3, 7, payload_bytes(f.size_bytes, record_route=True)))
960
>>> parse_traffic_payload(traffic_payload(3, 7, 8))
(3, 7)
"""

from __future__ import annotations

import math
import struct
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import NetemuError

__all__ = [
    "FLOW_PATTERNS",
    "MIN_SIZE_BYTES",
    "TRAFFIC_PAYLOAD_TYPE",
    "FlowSpec",
    "ResponderSpec",
    "Traffic",
    "packet_overhead_bytes",
    "parse_traffic_payload",
    "payload_bytes",
    "traffic_payload",
]

#: SGP payload type of netemu traffic (experimental range 192..254).
TRAFFIC_PAYLOAD_TYPE = 192
FLOW_PATTERNS = ("constant", "poisson", "bulk")
_HEAD = struct.Struct("!II")
#: SGP fixed header (36) + the empty RECORD_ROUTE extension (4, padded to a word).
_HEADER_BYTES = 36
_EMPTY_RR_BYTES = 4
#: Smallest SGP packet a flow may ask for: header, empty RECORD_ROUTE, flow id and seq.
MIN_SIZE_BYTES = _HEADER_BYTES + _EMPTY_RR_BYTES + _HEAD.size
_U32 = 0xFFFF_FFFF
_MAX_PAYLOAD = 0xFFFF


def packet_overhead_bytes(*, record_route: bool) -> int:
    """Octets of an SGP DATA packet that are not payload, as created at the source."""
    return _HEADER_BYTES + (_EMPTY_RR_BYTES if record_route else 0)


def payload_bytes(size_bytes: int, *, record_route: bool) -> int:
    """Payload length that makes the SGP packet ``size_bytes`` long (at least flow id + seq)."""
    return max(_HEAD.size, int(size_bytes) - packet_overhead_bytes(record_route=record_route))


def traffic_payload(flow_id: int, seq: int, length: int) -> bytes:
    """``flow_id``, ``seq`` (u32 BE each), zero padding to ``length`` octets (>= 8)."""
    head = _HEAD.pack(flow_id & _U32, seq & _U32)
    return head + bytes(max(0, length - _HEAD.size))


def parse_traffic_payload(payload: bytes) -> tuple[int, int] | None:
    """``(flow_id, seq)`` of a traffic payload, ``None`` when it is shorter than 8 octets."""
    if len(payload) < _HEAD.size:
        return None
    return _HEAD.unpack_from(payload)


def _int(name: str, value, *, lo: int = 0, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise NetemuError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise NetemuError(f"{name} must be {bound}, got {value}")
    return value


def _number(name: str, value, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise NetemuError(f"{name} must be a number, got {value!r}")
    if positive and value <= 0:
        raise NetemuError(f"{name} must be > 0, got {value}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class FlowSpec:
    """One flow: ``src`` sends SGP DATA of ``size_bytes`` to ``dst`` (node numbers).

    - ``pattern``: ``constant`` (one packet every ``1/rate_pps`` s from ``start_ns``),
      ``poisson`` (exponential gaps, mean ``1/rate_pps``), ``bulk`` (``total_bytes`` of
      packets back to back, paced at ``rate_pps``).
    - ``start_ns`` / ``stop_ns``: scenario time; no packet is sent at or after ``stop_ns``.
    - ``record_route``: packets carry RECORD_ROUTE (the delivered rows then have hops and the
      route).
    """

    flow_id: int
    name: str
    src: int
    dst: int
    pattern: str = "constant"
    rate_pps: float = 10.0
    size_bytes: int = 1000
    start_ns: int = 0
    stop_ns: int = 0
    total_bytes: int | None = None
    record_route: bool = True

    def __post_init__(self):
        _int("flow_id", self.flow_id, lo=1, hi=_U32)
        _int("src", self.src, lo=1, hi=_U32 - 1)
        _int("dst", self.dst, lo=1, hi=_U32 - 1)
        if self.src == self.dst:
            raise NetemuError(f"flow {self.name!r}: src and dst are the same node {self.src}")
        if self.pattern not in FLOW_PATTERNS:
            raise NetemuError(
                f"pattern must be one of {', '.join(FLOW_PATTERNS)}, got {self.pattern!r}"
            )
        object.__setattr__(self, "rate_pps", _number("rate_pps", self.rate_pps))
        top = packet_overhead_bytes(record_route=self.record_route) + _MAX_PAYLOAD
        _int("size_bytes", self.size_bytes, lo=MIN_SIZE_BYTES, hi=top)
        _int("start_ns", self.start_ns)
        _int("stop_ns", self.stop_ns)
        if self.stop_ns < self.start_ns:
            raise NetemuError(f"stop_ns ({self.stop_ns}) before start_ns ({self.start_ns})")
        if self.pattern == "bulk":
            if self.total_bytes is None:
                raise NetemuError(f"flow {self.name!r}: a bulk flow needs total_bytes")
            _int("total_bytes", self.total_bytes, lo=1)
        elif self.total_bytes is not None:
            raise NetemuError(f"flow {self.name!r}: total_bytes is only for pattern bulk")

    @property
    def payload_bytes(self) -> int:
        return payload_bytes(self.size_bytes, record_route=self.record_route)

    @property
    def packets(self) -> int | None:
        """Packets a bulk flow sends (``None`` for the other patterns)."""
        if self.total_bytes is None:
            return None
        return -(-self.total_bytes // self.size_bytes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowSpec:
        return cls(**_known(cls, data))


@dataclass(frozen=True, kw_only=True)
class ResponderSpec:
    """In-orbit compute: ``node`` answers each packet of ``flows`` it receives with a result.

    The result is a DATA packet of its own flow ``flow_id`` to ``dst`` (a ground station), of
    ``round(size_ratio × received size)`` octets (at least the smallest traffic packet), with the
    same ``seq`` as the packet it answers. Results are sent while the run is running (not after
    ``stopping``).
    """

    flow_id: int
    name: str
    node: int
    dst: int
    flows: tuple[int, ...]
    size_ratio: float = 0.1
    record_route: bool = True

    def __post_init__(self):
        _int("flow_id", self.flow_id, lo=1, hi=_U32)
        _int("node", self.node, lo=1, hi=_U32 - 1)
        _int("dst", self.dst, lo=1, hi=_U32 - 1)
        if self.node == self.dst:
            raise NetemuError(f"responder {self.name!r}: node and dst are the same ({self.dst})")
        flows = tuple(_int("flows[]", f, lo=1, hi=_U32) for f in self.flows)
        if not flows:
            raise NetemuError(f"responder {self.name!r}: flows must not be empty")
        object.__setattr__(self, "flows", flows)
        object.__setattr__(self, "size_ratio", _number("size_ratio", self.size_ratio))

    def result_size_bytes(self, received_size_bytes: int) -> int:
        size = max(MIN_SIZE_BYTES, round(self.size_ratio * received_size_bytes))
        return min(size, packet_overhead_bytes(record_route=self.record_route) + _MAX_PAYLOAD)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["flows"] = list(self.flows)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResponderSpec:
        data = _known(cls, data)
        data["flows"] = tuple(data.get("flows", ()))
        return cls(**data)


def _known(cls, data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise NetemuError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise NetemuError(f"{cls.__name__}: unknown keys {unknown}")
    return dict(data)


@dataclass(frozen=True)
class Traffic:
    """What :func:`netemu.traffic.load_traffic` returns: flows and responders of a run.

    The launcher puts ``[f.to_dict() for f in traffic.flows_from(n)]`` into node ``n``'s
    ``NodeHostConfig.flows`` and ``traffic.responders_at(n)`` into ``.responders``.
    """

    flows: tuple[FlowSpec, ...] = ()
    responders: tuple[ResponderSpec, ...] = ()
    source: str = ""  # the preset name or file it came from
    _by_id: dict = field(default=None, init=False, repr=False, compare=False)  # type: ignore

    def __post_init__(self):
        by_id: dict[int, object] = {}
        for item in (*self.flows, *self.responders):
            if item.flow_id in by_id:
                raise NetemuError(f"flow id {item.flow_id} used twice ({item.name!r})")
            by_id[item.flow_id] = item
        object.__setattr__(self, "_by_id", by_id)

    def flows_from(self, node: int) -> list[FlowSpec]:
        return [f for f in self.flows if f.src == node]

    def responders_at(self, node: int) -> list[ResponderSpec]:
        return [r for r in self.responders if r.node == node]

    def flow(self, flow_id: int) -> FlowSpec | ResponderSpec:
        """The flow or responder with this id (responders' results are flows too)."""
        return self._by_id[flow_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "flows": [f.to_dict() for f in self.flows],
            "responders": [r.to_dict() for r in self.responders],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Traffic:
        return cls(
            flows=tuple(FlowSpec.from_dict(f) for f in data.get("flows", ())),
            responders=tuple(ResponderSpec.from_dict(r) for r in data.get("responders", ())),
            source=data.get("source", ""),
        )
