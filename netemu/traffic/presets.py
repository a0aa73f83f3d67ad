"""``--traffic FILE|PRESET``: turn a traffic file or a preset name into flows and responders.

See docs/traffic.md for the file format and the exact rules of each preset. Everything here is
deterministic: the same scenario, duration and seed give the same flows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import NetemuError, ScenarioError
from .spec import FLOW_PATTERNS, FlowSpec, ResponderSpec, Traffic

__all__ = [
    "DEFAULT_RATE_PPS",
    "DEFAULT_SIZE_BYTES",
    "MAX_COMPUTE_SATELLITES",
    "MAX_EO_SATELLITES",
    "MAX_GROUND_FLOWS",
    "PRESETS",
    "load_traffic",
]

PRESETS = ("ground-to-ground", "eo-to-ground", "compute-offload")
DEFAULT_RATE_PPS = 10.0
DEFAULT_SIZE_BYTES = 1000
DEFAULT_RESULT_RATIO = 0.1
MAX_GROUND_FLOWS = 20
MAX_EO_SATELLITES = 8
MAX_COMPUTE_SATELLITES = 4
_NS_PER_S = 1_000_000_000
_FLOW_KEYS = frozenset(
    {
        "name",
        "src",
        "dst",
        "pattern",
        "rate_pps",
        "size_bytes",
        "start_s",
        "stop_s",
        "total_bytes",
        "record_route",
    }
)
_DEFAULT_KEYS = frozenset(
    {"pattern", "rate_pps", "size_bytes", "start_s", "stop_s", "record_route"}
)
_RESPONDER_KEYS = frozenset({"name", "node", "flows", "dst", "size_ratio", "record_route"})
_TOP_KEYS = frozenset({"preset", "defaults", "flows", "responders"})


def default_window_ns(duration_ns: int) -> tuple[int, int]:
    """``(start_ns, stop_ns)`` of flows that do not say: start after 1 s (or a tenth of the
    run), stop 2 s (or a fifth of the run) before the end so the last packets can arrive."""
    start = min(_NS_PER_S, duration_ns // 10)
    stop = duration_ns - min(2 * _NS_PER_S, duration_ns // 5)
    return start, max(start, stop)


def load_traffic(spec, scenario, *, duration_ns: int, seed: int = 0) -> Traffic:
    """Flows and responders for ``spec`` (a YAML file path, a preset name, or ``none``).

    ``scenario`` (a :class:`~netemu.scenario.Scenario`) resolves node names and tells which
    nodes are satellites or ground stations. ``seed`` is not used to pick nodes (presets are
    fixed rules); it seeds the Poisson generators in the node processes (``NodeHostConfig.seed``).
    Errors raise :class:`~netemu.errors.ScenarioError` naming the file and the key.

    >>> from netemu.scenario import load_scenario  # doctest: +SKIP
    >>> t = load_traffic("ground-to-ground", load_scenario("topologies/demo-small.yaml"),
    ...                  duration_ns=60 * 10**9)  # doctest: +SKIP
    >>> [(f.name, f.rate_pps) for f in t.flows][:1]  # doctest: +SKIP
    [('g2g-gs-svalbard-gs-sydney', 10.0)]
    """
    if duration_ns <= 0:
        raise NetemuError(f"duration_ns must be > 0, got {duration_ns}")
    if spec is None or str(spec) in ("", "none"):
        return Traffic(source="none")
    text = str(spec)
    if text in PRESETS:
        return _build(scenario, {"preset": text}, duration_ns=duration_ns, path=None, source=text)
    path = Path(text)
    if not path.exists():
        raise ScenarioError(
            f"no such traffic file, and not a preset ({', '.join(PRESETS)}, none)", path=text
        )
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"cannot read traffic file: {exc}", path=text) from exc
    if not isinstance(data, dict):
        raise ScenarioError("expected a mapping with flows/responders/preset", path=text)
    return _build(scenario, data, duration_ns=duration_ns, path=text, source=text)


# ------------------------------------------------------------------------------ file format


class _Ctx:
    def __init__(self, scenario, path: str | None, duration_ns: int):
        self.scenario = scenario
        self.path = path
        self.duration_ns = duration_ns

    def error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(message, path=self.path, key=key)

    def node(self, key: str, value) -> int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(key, f"expected a node name or number, got {value!r}")
        try:
            return self.scenario.node(value).number
        except ScenarioError as exc:
            raise self.error(key, exc.detail) from None

    def seconds_ns(self, key: str, value) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.error(key, f"expected seconds >= 0, got {value!r}")
        return int(round(value * _NS_PER_S))


def _check_keys(ctx: _Ctx, key: str, data, allowed: frozenset) -> dict:
    if not isinstance(data, dict):
        raise ctx.error(key, f"expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ctx.error(key, f"unknown keys {unknown}; allowed: {', '.join(sorted(allowed))}")
    return data


def _build(scenario, data: dict, *, duration_ns: int, path, source: str) -> Traffic:
    ctx = _Ctx(scenario, path, duration_ns)
    _check_keys(ctx, "(top level)", data, _TOP_KEYS)
    defaults = _check_keys(ctx, "defaults", data.get("defaults") or {}, _DEFAULT_KEYS)
    start_ns, stop_ns = default_window_ns(duration_ns)
    base = {
        "pattern": "constant",
        "rate_pps": DEFAULT_RATE_PPS,
        "size_bytes": DEFAULT_SIZE_BYTES,
        "start_ns": start_ns,
        "stop_ns": stop_ns,
        "record_route": True,
    }
    base.update(_flow_fields(ctx, "defaults", defaults))

    flows: list[FlowSpec] = []
    responders: list[ResponderSpec] = []
    preset = data.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise ctx.error("preset", f"expected one of {', '.join(PRESETS)}, got {preset!r}")
        pairs, compute = _PRESET_BUILDERS[preset](ctx)
        for name, src, dst in pairs:
            flows.append(_make_flow(ctx, "preset", len(flows) + 1, name, src, dst, base, {}))
        for name, node, dst in compute:
            answered = tuple(f.flow_id for f in flows if f.dst == node)
            responders.append(
                ResponderSpec(
                    flow_id=0xFFFF,  # renumbered below
                    name=name,
                    node=node,
                    dst=dst,
                    flows=answered,
                    size_ratio=DEFAULT_RESULT_RATIO,
                    record_route=base["record_route"],
                )
            )

    items = data.get("flows") or []
    if not isinstance(items, list):
        raise ctx.error("flows", "expected a list of flows")
    for i, item in enumerate(items):
        key = f"flows[{i}]"
        _check_keys(ctx, key, item, _FLOW_KEYS)
        for required in ("src", "dst"):
            if required not in item:
                raise ctx.error(f"{key}.{required}", "missing")
        src = ctx.node(f"{key}.src", item["src"])
        dst = ctx.node(f"{key}.dst", item["dst"])
        name = item.get("name") or f"{_name(scenario, src)}-{_name(scenario, dst)}"
        if not isinstance(name, str):
            raise ctx.error(f"{key}.name", f"expected text, got {name!r}")
        fields = _flow_fields(ctx, key, item)
        flows.append(_make_flow(ctx, key, len(flows) + 1, name, src, dst, base, fields))
    names = [f.name for f in flows]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ctx.error("flows", f"flow names must be unique, repeated: {dup}")

    items = data.get("responders") or []
    if not isinstance(items, list):
        raise ctx.error("responders", "expected a list of responders")
    by_name = {f.name: f.flow_id for f in flows}
    for i, item in enumerate(items):
        key = f"responders[{i}]"
        _check_keys(ctx, key, item, _RESPONDER_KEYS)
        for required in ("node", "dst"):
            if required not in item:
                raise ctx.error(f"{key}.{required}", "missing")
        node = ctx.node(f"{key}.node", item["node"])
        dst = ctx.node(f"{key}.dst", item["dst"])
        if "flows" in item:
            listed = item["flows"]
            if not isinstance(listed, list) or not listed:
                raise ctx.error(f"{key}.flows", "expected a non-empty list of flow names")
            answered = []
            for j, ref in enumerate(listed):
                if ref not in by_name:
                    raise ctx.error(f"{key}.flows[{j}]", f"no flow named {ref!r}")
                answered.append(by_name[ref])
        else:
            answered = [f.flow_id for f in flows if f.dst == node]
            if not answered:
                raise ctx.error(f"{key}.flows", "no flow goes to this node; list flows by name")
        try:
            responders.append(
                ResponderSpec(
                    flow_id=0xFFFF,
                    name=item.get("name") or f"{_name(scenario, node)}-results",
                    node=node,
                    dst=dst,
                    flows=tuple(answered),
                    size_ratio=item.get("size_ratio", DEFAULT_RESULT_RATIO),
                    record_route=item.get("record_route", base["record_route"]),
                )
            )
        except NetemuError as exc:
            raise ctx.error(key, str(exc)) from None
    first = len(flows) + 1
    responders = [_renumber(r, first + i) for i, r in enumerate(responders)]
    return Traffic(flows=tuple(flows), responders=tuple(responders), source=source)


def _renumber(r: ResponderSpec, flow_id: int) -> ResponderSpec:
    data = r.to_dict()
    data["flow_id"] = flow_id
    return ResponderSpec.from_dict(data)


def _flow_fields(ctx: _Ctx, key: str, item: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "pattern" in item:
        if item["pattern"] not in FLOW_PATTERNS:
            got = item["pattern"]
            raise ctx.error(f"{key}.pattern", f"expected one of {FLOW_PATTERNS}, got {got!r}")
        out["pattern"] = item["pattern"]
    for name in ("rate_pps", "size_bytes", "total_bytes"):
        if name in item:
            value = item[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ctx.error(f"{key}.{name}", f"expected a number > 0, got {value!r}")
            out[name] = value
    if "record_route" in item:
        if not isinstance(item["record_route"], bool):
            raise ctx.error(
                f"{key}.record_route", f"expected true or false, got {item['record_route']!r}"
            )
        out["record_route"] = item["record_route"]
    for name, field in (("start_s", "start_ns"), ("stop_s", "stop_ns")):
        if name in item:
            out[field] = ctx.seconds_ns(f"{key}.{name}", item[name])
    return out


def _make_flow(ctx, key, flow_id, name, src, dst, base, fields) -> FlowSpec:
    values = {**base, **fields}
    if values["pattern"] != "bulk":
        values.pop("total_bytes", None)
    elif "total_bytes" not in values:
        raise ctx.error(f"{key}.total_bytes", "a bulk flow needs total_bytes")
    if "stop_ns" not in fields and values["stop_ns"] < values["start_ns"]:
        values["stop_ns"] = values["start_ns"]
    if values["stop_ns"] > ctx.duration_ns:
        values["stop_ns"] = ctx.duration_ns
    try:
        return FlowSpec(flow_id=flow_id, name=name, src=src, dst=dst, **values)
    except NetemuError as exc:
        raise ctx.error(key, str(exc)) from None


def _name(scenario, number: int) -> str:
    return scenario.node(number).name


# ------------------------------------------------------------------------------ presets


def _ground(ctx: _Ctx) -> list:
    nodes = sorted(ctx.scenario.ground_nodes, key=lambda n: n.number)
    if not nodes:
        raise ctx.error("preset", "the scenario has no ground stations")
    return nodes


def _satellites(ctx: _Ctx, at_least: int) -> list:
    sats = sorted(ctx.scenario.satellites, key=lambda n: n.number)
    if len(sats) < at_least:
        raise ctx.error("preset", f"needs at least {at_least} satellites, found {len(sats)}")
    return sats


def _spread(n: int, k: int, offset: int = 0, taken: frozenset = frozenset()) -> list[int]:
    """``k`` indices spread evenly over ``range(n)``, shifted by ``offset``, avoiding ``taken``."""
    out: list[int] = []
    for i in range(k):
        j = (i * n // k + offset) % n
        while j in taken or j in out:
            j = (j + 1) % n
        out.append(j)
    return out


def _central_angle(a, b) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * math.asin(min(1.0, math.sqrt(h)))


def _ground_to_ground(ctx: _Ctx):
    nodes = _ground(ctx)
    if len(nodes) < 2:
        raise ctx.error("preset", "ground-to-ground needs at least 2 ground stations")
    stations = {n.number: ctx.scenario.ground_station(n) for n in nodes}
    pairs = []
    for node in nodes[:MAX_GROUND_FLOWS]:
        far = max(
            (o for o in nodes if o.number != node.number),
            key=lambda o: (_central_angle(stations[node.number], stations[o.number]), -o.number),
        )
        pairs.append((f"g2g-{node.name}-{far.name}", node.number, far.number))
    return pairs, []


def _eo_to_ground(ctx: _Ctx):
    ground = _ground(ctx)
    sats = _satellites(ctx, 1)
    picks = _spread(len(sats), min(MAX_EO_SATELLITES, len(sats)))
    pairs = []
    for i, j in enumerate(picks):
        gs = ground[i % len(ground)]
        pairs.append((f"eo-{sats[j].name}-{gs.name}", sats[j].number, gs.number))
    return pairs, []


def _compute_offload(ctx: _Ctx):
    ground = _ground(ctx)
    sats = _satellites(ctx, 2)
    n = len(sats)
    k_compute = min(MAX_COMPUTE_SATELLITES, max(1, n // 4))
    k_eo = min(MAX_EO_SATELLITES, n - k_compute)
    eo = _spread(n, k_eo)
    compute = _spread(n, k_compute, offset=n // (2 * k_compute), taken=frozenset(eo))
    pairs = []
    for i, j in enumerate(eo):
        c = sats[compute[i % k_compute]]
        pairs.append((f"offload-{sats[j].name}-{c.name}", sats[j].number, c.number))
    responders = []
    for i, j in enumerate(compute):
        gs = ground[i % len(ground)]
        responders.append((f"results-{sats[j].name}-{gs.name}", sats[j].number, gs.number))
    return pairs, responders


_PRESET_BUILDERS = {
    "ground-to-ground": _ground_to_ground,
    "eo-to-ground": _eo_to_ground,
    "compute-offload": _compute_offload,
}
