"""JSON contact plans: exact (nanosecond) times, rates in bits per second.

Schema::

    {"format": "netemu-contact-plan", "version": 1,
     "reference_utc": "2026-01-01T00:00:00Z" | null,
     "nodes": {"1": "iridium-p01-s01", ...},            # optional number -> name
     "contacts": [{"from": 1, "to": 2, "start": 0.0, "end": 600.0,   # seconds after reference
                   "rate_bps": 1e9, "owlt": 0.0123, "confidence": 1.0}, ...]}

``start``, ``end`` and ``owlt`` are seconds (floats, written with nanosecond precision).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ContactPlanError
from ..timebase import NS_PER_S, format_utc, parse_utc
from .model import ContactPlan, read_plan_text

FORMAT = "netemu-contact-plan"


def _ns_to_s(value: int) -> float:
    return value / NS_PER_S


def plan_to_dict(plan: ContactPlan) -> dict:
    return {
        "format": FORMAT,
        "version": 1,
        "reference_utc": format_utc(plan.reference_utc) if plan.reference_utc else None,
        "nodes": {str(k): v for k, v in sorted(plan.node_names.items())},
        "contacts": [
            {
                "from": c.from_node,
                "to": c.to_node,
                "start": _ns_to_s(c.start_ns),
                "end": _ns_to_s(c.end_ns),
                "rate_bps": c.rate_bps,
                "owlt": _ns_to_s(c.owlt_ns),
                "confidence": c.confidence,
            }
            for c in plan.contacts()
        ],
    }


def dumps_json(plan: ContactPlan, *, indent: int | None = 1) -> str:
    return json.dumps(plan_to_dict(plan), indent=indent) + "\n"


def dump_json(plan: ContactPlan, path: str | Path) -> None:
    Path(path).write_text(dumps_json(plan))


def plan_from_dict(data, *, path: str | None = None) -> ContactPlan:
    if not isinstance(data, dict) or not isinstance(data.get("contacts"), list):
        raise ContactPlanError("expected an object with a 'contacts' list", path=path)
    if data.get("format", FORMAT) != FORMAT:
        raise ContactPlanError(f"format is {data.get('format')!r}, expected {FORMAT!r}", path=path)
    ref = data.get("reference_utc")
    try:
        reference = parse_utc(ref) if ref else None
    except Exception as exc:  # NetemuError with a parse message
        raise ContactPlanError(f"reference_utc: {exc}", path=path) from None
    cols: dict[str, list] = {
        k: [] for k in ("from_node", "to_node", "start_ns", "end_ns", "rate_bps", "owlt_ns")
    }
    cols["confidence"] = []
    for i, row in enumerate(data["contacts"]):
        key = f"contacts[{i}]"
        if not isinstance(row, dict):
            raise ContactPlanError(f"{key}: expected an object", path=path)
        try:
            a, b = row["from"], row["to"]
            start, end = float(row["start"]), float(row["end"])
            rate = float(row["rate_bps"])
            owlt = float(row.get("owlt", 0.0))
            conf = float(row.get("confidence", 1.0))
        except KeyError as exc:
            raise ContactPlanError(f"{key}: missing key {exc.args[0]!r}", path=path) from None
        except (TypeError, ValueError):
            raise ContactPlanError(
                f"{key}: times, rate and owlt must be numbers", path=path
            ) from None
        if not (isinstance(a, int) and isinstance(b, int)) or a < 0 or b < 0:
            raise ContactPlanError(f"{key}: 'from' and 'to' must be node numbers >= 0", path=path)
        if end < start or rate < 0 or owlt < 0 or not 0 <= conf <= 1:
            raise ContactPlanError(
                f"{key}: expected end >= start, rate_bps >= 0, owlt >= 0, confidence in [0, 1]",
                path=path,
            )
        cols["from_node"].append(a)
        cols["to_node"].append(b)
        cols["start_ns"].append(round(start * NS_PER_S))
        cols["end_ns"].append(round(end * NS_PER_S))
        cols["rate_bps"].append(rate)
        cols["owlt_ns"].append(round(owlt * NS_PER_S))
        cols["confidence"].append(conf)
    names = {}
    for k, v in (data.get("nodes") or {}).items():
        try:
            names[int(k)] = str(v)
        except ValueError:
            raise ContactPlanError(f"nodes: key {k!r} is not a node number", path=path) from None
    return ContactPlan(**cols, reference_utc=reference, node_names=names)


def loads_json(text: str, *, path: str | None = None) -> ContactPlan:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContactPlanError(f"invalid JSON: {exc.msg} at line {exc.lineno}", path=path) from None
    return plan_from_dict(data, path=path)


def load_json(path: str | Path) -> ContactPlan:
    where, text = read_plan_text(path)
    return loads_json(text, path=where)
