"""The sections of ``OUT/summary.json`` (docs/results.md lists every key).

Each function reads one source defensively (a missing file or key gives ``None`` values and a
line in ``balance.problems``, never an exception) and returns a JSON-ready dict.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.layout import RunLayout
from ..scenario.model import Scenario
from ..timebase import NS_PER_S, format_utc, parse_duration_s
from .accounting import (
    CONTROL_MSG_TYPES,
    OUT_DELIVERED,
    OUT_DROPPED,
    OUT_HELD,
    OUT_IN_FLIGHT,
    OUT_LOST,
    OUT_UNACCOUNTED,
    PacketAccount,
)
from .events import EV_DELIVERED, NA, EventTable

__all__ = [
    "DEATH_STATES",
    "balance_section",
    "external_numbers",
    "external_section",
    "faults_section",
    "fidelity_section",
    "flow_specs",
    "flows_section",
    "frames_section",
    "links_section",
    "nodes_section",
    "packets_section",
    "read_json",
    "resolve_ns",
    "routes_section",
    "run_section",
]

log = logging.getLogger(__name__)

#: liveness.csv states that mean the node is gone (anything else counts as alive).
DEATH_STATES = frozenset({"offline", "dead", "killed", "crashed", "lost"})

PACKET_IDENTITY = (
    "originated = delivered + dropped + held_at_end + in_flight_at_end + lost_with_node"
    " + unaccounted"
)
FRAME_IDENTITY = "sent = delivered + dropped + in_flight_at_end"


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def _int(value) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _reason_counts(value) -> dict[str, int]:
    """``{reason: n}``; a plain number becomes ``{"unknown": n}``."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            n = _int(v)
            if n:
                out[str(k)] = n
        return dict(sorted(out.items()))
    n = _int(value)
    return {"unknown": n} if n else {}


def _stats(values, pcts=(50, 95, 99)) -> dict[str, float | None]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {f"p{p}": None for p in pcts}
    return {f"p{p}": float(x) for p, x in zip(pcts, np.percentile(v, pcts), strict=True)}


def resolve_ns(options: dict, run_json: dict | None, names: tuple[str, ...]) -> int | None:
    """A duration from ``options`` (then ``run.json``'s ``options``, then ``run.json``): keys
    ``NAME_ns`` (int), ``NAME_s`` (seconds) or ``NAME`` (a duration such as ``"10m"``)."""
    sources = [options or {}]
    if run_json:
        if isinstance(run_json.get("options"), dict):
            sources.append(run_json["options"])
        sources.append(run_json)
    for src in sources:
        for name in names:
            if _int(src.get(f"{name}_ns")) is not None:
                return _int(src[f"{name}_ns"])
            if _float(src.get(f"{name}_s")) is not None:
                return round(_float(src[f"{name}_s"]) * NS_PER_S)
            value = src.get(name)
            if value is not None and not isinstance(value, (dict, list, bool)):
                try:
                    return round(parse_duration_s(value) * NS_PER_S)
                except Exception:  # noqa: BLE001 - not a duration: try the next key
                    continue
    return None


# -- frames, links, fidelity (final/fabric.json) --------------------------------------------------
def frames_section(fabric: dict | None) -> dict[str, Any]:
    """Link-level frames from ``final/fabric.json`` ``frames`` (or ``balance``): ``sent``,
    ``delivered``, ``dropped`` ``{reason: n}``, ``in_flight_at_end`` (or ``in_flight``)."""
    bal = None
    if isinstance(fabric, dict):
        bal = fabric.get("frames") if isinstance(fabric.get("frames"), dict) else None
        bal = bal if bal is not None else fabric.get("balance")
    if not isinstance(bal, dict):
        return {
            "sent": None,
            "delivered": None,
            "dropped": {},
            "dropped_total": None,
            "in_flight_at_end": None,
            "ok": None,
        }
    sent = _int(bal.get("sent"))
    delivered = _int(bal.get("delivered"))
    dropped = _reason_counts(bal.get("dropped"))
    in_flight = _int(bal.get("in_flight_at_end", bal.get("in_flight")))
    dropped_total = sum(dropped.values())
    ok = None
    if None not in (sent, delivered, in_flight):
        ok = sent == delivered + dropped_total + in_flight
    return {
        "sent": sent,
        "delivered": delivered,
        "dropped": dropped,
        "dropped_total": dropped_total,
        "in_flight_at_end": in_flight,
        "ok": ok,
    }


def links_section(fabric: dict | None, scenario: Scenario) -> list[dict[str, Any]]:
    """Per-link counters from ``final/fabric.json`` ``links``, most frames first.

    Each item: ``link_id``, the ends as numbers (``a_number``/``b_number``, or ``a``/``b`` when
    they are integers) and names (``a_name``/``b_name``, or ``a``/``b`` when they are strings),
    ``frames``, ``bytes``, ``dropped`` (or ``drops``) ``{reason: n}``, optional ``delivered``.
    """
    links = fabric.get("links") if isinstance(fabric, dict) else None
    if not isinstance(links, list):
        return []
    names = {n.number: n.name for n in scenario.nodes}
    numbers = {n.name: n.number for n in scenario.nodes}

    def end(item, key):
        raw = item.get(key)
        number = _int(item.get(f"{key}_number"))
        name = item.get(f"{key}_name")
        if isinstance(raw, str) and not raw.isdigit():
            name = name or raw
        elif number is None:
            number = _int(raw)
        if number is None and name in numbers:
            number = numbers[name]
        return number, name or names.get(number)

    out = []
    for item in links:
        if not isinstance(item, dict):
            continue
        a, a_name = end(item, "a")
        b, b_name = end(item, "b")
        row = {
            "link_id": _int(item.get("link_id")),
            "a": a,
            "b": b,
            "a_name": a_name,
            "b_name": b_name,
            "frames": _int(item.get("frames")) or 0,
            "bytes": _int(item.get("bytes")) or 0,
            "drops": _reason_counts(item.get("dropped", item.get("drops"))),
        }
        if "delivered" in item:
            row["delivered"] = _int(item.get("delivered"))
        out.append(row)
    out.sort(key=lambda r: (-r["frames"], r["link_id"] if r["link_id"] is not None else -1))
    return out


def fidelity_section(fabric: dict | None) -> dict[str, Any]:
    """Delay error of the fabric's deliveries (``final/fabric.json`` ``fidelity``); accepts the
    ``FidelityReport.to_dict()`` keys (``delay_error_p50_s``) or the short ones (``p50_s``)."""
    fid = fabric.get("fidelity") if isinstance(fabric, dict) else None
    fid = fid if isinstance(fid, dict) else {}
    out: dict[str, Any] = {}
    for q in ("p50", "p95", "p99", "max"):
        out[f"delay_error_{q}_s"] = _float(fid.get(f"delay_error_{q}_s", fid.get(f"{q}_s")))
    out["early"] = _int(fid.get("early"))
    out["count"] = _int(fid.get("count"))
    return out


# -- nodes (liveness.csv, final/NUMBER.json) -------------------------------------------------------
def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a cut-short last line
    return [r for r in csv.DictReader(text.splitlines()) if None not in r]


def nodes_section(
    layout: RunLayout, scenario: Scenario, duration_ns: int | None
) -> tuple[dict[str, Any], list[int]]:
    """Who was alive at the end and who died when; returns the section and the death times.

    A node *dies* at a ``liveness.csv`` row with a state in :data:`DEATH_STATES` before the end
    of the run (``t_ns < duration_ns``); rows at or after the end are the normal shutdown.
    """
    rows = _read_csv(layout.liveness_csv)
    names = {n.number: n.name for n in scenario.nodes}
    state: dict[int, str] = {}
    died = []
    revived = []
    for row in sorted(rows, key=lambda r: _int(r.get("t_ns")) or 0):
        t_ns, number = _int(row.get("t_ns")), _int(row.get("number"))
        if t_ns is None or number is None:
            continue
        if duration_ns is not None and t_ns >= duration_ns:
            continue
        st = (row.get("state") or "").strip().lower()
        was_dead = state.get(number) in DEATH_STATES
        state[number] = st
        entry = {
            "number": number,
            "name": row.get("name") or names.get(number),
            "t_ns": t_ns,
            "t_s": t_ns / NS_PER_S,
            "utc": format_utc(scenario.timebase.to_utc(t_ns)),
            "state": st,
        }
        if st in DEATH_STATES and not was_dead:
            died.append(entry)
        elif st not in DEATH_STATES and was_dead:
            revived.append(entry)
    numbers = [n.number for n in scenario.nodes]
    dead = sorted(n for n in numbers if state.get(n) in DEATH_STATES)
    missing_events = [n for n in numbers if not layout.events(n).exists()]
    # Nodes that ran (they have an event log) but did not finish cleanly.
    missing_final = [
        n for n in numbers if layout.events(n).exists() and not layout.final(n).exists()
    ]
    section = {
        "total": len(numbers),
        "alive_at_end": len(numbers) - len(dead),
        "dead_at_end": len(dead),
        "dead_at_end_names": [names.get(n) for n in dead],
        "died": died,
        "revived": revived,
        "liveness_rows": len(rows),
        "missing_final": missing_final,
        "missing_events": missing_events,
    }
    return section, [d["t_ns"] for d in died]


# -- routes (epochs.csv) ---------------------------------------------------------------------------
def _find_column(fields, *candidates, contains: tuple[str, ...] = ()) -> str | None:
    for c in candidates:
        if c in fields:
            return c
    for f in fields:
        if contains and all(part in f for part in contains):
            return f
    return None


def routes_section(layout: RunLayout, *, max_list: int = 10_000) -> dict[str, Any]:
    """Route changes per epoch from ``epochs.csv`` (column ``route_changes``, or one whose name
    contains ``route``), links up (``links_up``) and route compute time (``compute_s`` /
    ``compute_ms``)."""
    rows = _read_csv(layout.epochs_csv)
    out: dict[str, Any] = {"epochs": len(rows), "total_changes": None, "per_epoch": None}
    if not rows:
        return out
    fields = list(rows[0].keys())
    col = _find_column(fields, "route_changes", "routes_changed", contains=("route",))

    def column(name):
        vals = [_float(r.get(name)) for r in rows]
        return np.array([np.nan if v is None else v for v in vals])

    if col is not None:
        changes = column(col)
        finite = changes[np.isfinite(changes)]
        out["column"] = col
        out["total_changes"] = int(finite.sum())
        out["changes_per_epoch"] = {
            "min": float(finite.min()) if finite.size else None,
            "median": float(np.median(finite)) if finite.size else None,
            "mean": float(finite.mean()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
        }
        if len(rows) <= max_list:
            out["per_epoch"] = [None if not np.isfinite(v) else int(v) for v in changes]
    up = _find_column(fields, "links_up", contains=("up",))
    if up is not None:
        v = column(up)
        v = v[np.isfinite(v)]
        if v.size:
            out["links_up"] = {
                "min": float(v.min()),
                "median": float(np.median(v)),
                "max": float(v.max()),
            }
    if "tables_published" in fields:  # control overhead: forwarding tables sent to nodes
        v = column("tables_published")
        out["table_updates"] = int(v[np.isfinite(v)].sum())
    comp = _find_column(fields, "compute_s", "compute_ms", contains=("compute",))
    if comp is not None:
        v = column(comp)
        v = v[np.isfinite(v)] / (1000.0 if comp.endswith("_ms") else 1.0)
        if v.size:
            out["compute_s"] = {"median": float(np.median(v)), "max": float(v.max())}
    return out


# -- flows -----------------------------------------------------------------------------------------
def flow_specs(layout: RunLayout, options: dict) -> dict[int, dict[str, Any]]:
    """``{flow_id: {"name", "src", "dst"}}`` from ``options["flows"]`` / ``options["traffic"]``
    (a ``Traffic.to_dict()``), else from the ``flows`` and ``responders`` of the node config
    files (``OUT/run/config/*.json``). Responders: ``node`` is the source."""
    items: list[dict] = []
    traffic = options.get("traffic")
    if isinstance(options.get("flows"), list):
        items += options["flows"]
    if isinstance(traffic, dict):
        items += list(traffic.get("flows", [])) + list(traffic.get("responders", []))
    if not items:
        for path in sorted((layout.run_dir / "config").glob("*.json")):
            data = read_json(path) or {}
            for key in ("flows", "responders"):
                if isinstance(data.get(key), list):
                    items += data[key]
    out = {}
    for item in items:
        if not isinstance(item, dict) or _int(item.get("flow_id")) is None:
            continue
        src = _int(item.get("src", item.get("node")))
        out[_int(item["flow_id"])] = {
            "name": str(item.get("name", "")),
            "src": src,
            "dst": _int(item.get("dst")),
        }
    return out


def flows_section(
    account: PacketAccount,
    deliveries: dict[str, np.ndarray],
    specs: dict[int, dict[str, Any]],
    scenario: Scenario,
) -> list[dict[str, Any]]:
    """Per (flow_id, src, dst): sent, delivered, ratio, latency percentiles, hop counts."""
    names = {n.number: n.name for n in scenario.nodes}
    has_flow = account.flow_id != NA
    sent_keys = np.stack(
        [account.flow_id[has_flow], account.src[has_flow], account.dst[has_flow]], axis=1
    )
    groups, sent = (
        np.unique(sent_keys, axis=0, return_counts=True)
        if sent_keys.size
        else (np.zeros((0, 3), np.int64), np.zeros(0, np.int64))
    )
    d_flow = np.asarray(deliveries["flow_id"])
    d_keys = np.stack([d_flow, deliveries["src"], deliveries["dst"]], axis=1)
    out = []
    for (flow_id, src, dst), n_sent in zip(groups.tolist(), sent.tolist(), strict=True):
        sel = (d_keys[:, 0] == flow_id) & (d_keys[:, 1] == src) & (d_keys[:, 2] == dst)
        lat = deliveries["latency_s"][sel]
        hops = deliveries["hops"][sel]
        hops = hops[hops != NA]
        geo = deliveries["geometric_delay_s"][sel]
        spec = specs.get(flow_id, {})
        name = spec.get("name") or f"flow-{flow_id}"
        if spec and (spec.get("src"), spec.get("dst")) not in ((src, dst), (None, None)):
            name = f"{name} {names.get(src, src)}>{names.get(dst, dst)}"
        n_deliv = int(np.count_nonzero(sel))
        lat_stats = _stats(lat)
        out.append(
            {
                "flow_id": flow_id,
                "name": name,
                "src": src,
                "src_name": names.get(src),
                "dst": dst,
                "dst_name": names.get(dst),
                "sent": n_sent,
                "delivered": n_deliv,
                "delivery_ratio": n_deliv / n_sent if n_sent else None,
                "latency_p50_s": lat_stats["p50"],
                "latency_p95_s": lat_stats["p95"],
                "latency_p99_s": lat_stats["p99"],
                "geometric_delay_p50_s": _stats(geo)["p50"],
                "hops_min": int(hops.min()) if hops.size else None,
                "hops_median": float(np.median(hops)) if hops.size else None,
                "hops_max": int(hops.max()) if hops.size else None,
            }
        )
    return out


# -- packets and balance ---------------------------------------------------------------------------
def packets_section(
    account: PacketAccount, table: EventTable, *, external: Collection[int] = ()
) -> dict[str, Any]:
    """Outcomes of the originated packets. ``external``: numbers of external nodes
    (docs/external.md), which log nothing: a packet to one of them with no other outcome is
    counted ``to_external`` (it was not lost inside netemu; what became of it is unknown), not
    ``unaccounted``; deliveries of packets an external node originated are counted apart."""
    ext = np.asarray(sorted(int(n) for n in external), np.int64)
    open_ = account.outcome == OUT_UNACCOUNTED
    to_external = int(np.count_nonzero(open_ & np.isin(account.dst, ext))) if ext.size else 0
    from_external = 0
    if ext.size and len(table):
        delivered = table.event == EV_DELIVERED
        delivered &= ~np.isin(table.strs["msg_type"].astype(str), list(CONTROL_MSG_TYPES))
        from_external = int(np.count_nonzero(delivered & np.isin(table.ints["src"], ext)))
    drop = account.drop_row[account.outcome == OUT_DROPPED]
    reasons = table.strs["reason"][drop].astype(str)
    reasons = np.where(reasons == "", "unknown", reasons)
    by_fabric = table.ints["where"][drop] == 0
    dropped: dict[str, int] = {}
    if reasons.size:
        labels, counts = np.unique(reasons, return_counts=True)
        dropped = {str(k): int(v) for k, v in zip(labels, counts, strict=True)}
    return {
        "originated": len(account),
        "delivered": account.count(OUT_DELIVERED),
        "dropped": dropped,
        "dropped_total": int(drop.size),
        "dropped_by_node": int(np.count_nonzero(~by_fabric)),
        "dropped_by_fabric": int(np.count_nonzero(by_fabric)),
        "held_at_end": account.count(OUT_HELD),
        "in_flight_at_end": account.count(OUT_IN_FLIGHT),
        "lost_with_node": account.count(OUT_LOST),
        "to_external": to_external,
        "unaccounted": account.count(OUT_UNACCOUNTED) - to_external,
        "delivered_from_external": from_external,
        "duplicate_deliveries": account.duplicate_deliveries,
        "conflicting": account.conflicting,
        "orphan_events": account.orphan_events,
        "unidentified_events": account.unidentified_events,
    }


def balance_section(
    packets: dict[str, Any], frames: dict[str, Any], problems: list[str]
) -> dict[str, Any]:
    """The two identities and ``ok``: every packet accounted for, frames balanced, nothing
    missing (``problems`` lists what is wrong)."""
    p_sum = (
        packets["delivered"]
        + packets["dropped_total"]
        + packets["held_at_end"]
        + packets["in_flight_at_end"]
        + packets["lost_with_node"]
        + packets.get("to_external", 0)
        + packets["unaccounted"]
    )
    p_ok = packets["unaccounted"] == 0 and p_sum == packets["originated"]
    problems = list(problems)
    if packets["unaccounted"]:
        problems.append(f"{packets['unaccounted']} originated packets have no outcome")
    f_sum = None
    if frames["sent"] is None:
        if not any("fabric.json" in p for p in problems):
            problems.append("no frame balance in final/fabric.json ('frames' or 'balance')")
    else:
        f_sum = frames["delivered"] + frames["dropped_total"] + (frames["in_flight_at_end"] or 0)
        if not frames["ok"]:
            problems.append(f"frames: sent {frames['sent']} != {f_sum}")
    return {
        "packets": {
            "identity": PACKET_IDENTITY + (" + to_external" if packets.get("to_external") else ""),
            "originated": packets["originated"],
            "sum": p_sum,
            "ok": bool(p_ok),
        },
        "frames": {
            "identity": FRAME_IDENTITY,
            "sent": frames["sent"],
            "sum": f_sum,
            "ok": frames["ok"],
        },
        "ok": bool(p_ok and frames["ok"] is True and not problems),
        "problems": problems,
    }


def external_numbers(options: dict, run_json: dict | None) -> list[int]:
    """Numbers of the run's external nodes: ``options["external"]`` (``{name: {number,
    command}}``, as the launcher writes it) or the same key of ``run.json``'s options."""
    ext = (options or {}).get("external")
    if not ext and isinstance(run_json, dict):
        ext = (run_json.get("options") or {}).get("external")
    if not isinstance(ext, dict):
        return []
    return sorted(int(v["number"]) for v in ext.values() if isinstance(v, dict) and "number" in v)


def external_section(
    options: dict, run_json: dict | None, packets: dict[str, Any], scenario: Scenario
) -> dict[str, Any] | None:
    """Which nodes were external programs (``--external``) and what netemu could not count
    about them; ``None`` when there were none."""
    ext = (options or {}).get("external") or ((run_json or {}).get("options") or {}).get("external")
    if not isinstance(ext, dict) or not ext:
        return None
    return {
        "nodes": [
            {"name": name, "number": v.get("number"), "command": v.get("command")}
            for name, v in ext.items()
            if isinstance(v, dict)
        ],
        "accounted": False,
        "note": "external nodes write no event log: packets they originate, deliver, drop or "
        "hold are not in the packet balance (docs/external.md); the frame balance covers "
        "their frames",
        "packets_to_external": packets.get("to_external", 0),
        "delivered_from_external": packets.get("delivered_from_external", 0),
    }


def run_section(
    options: dict,
    scenario: Scenario,
    run_json: dict | None,
    duration_ns: int | None,
    epoch_ns: int | None,
) -> dict[str, Any]:
    tb = scenario.timebase
    return {
        "scenario": scenario.name,
        "scenario_path": Path(scenario.path).name if scenario.path else None,
        "epoch_utc": format_utc(scenario.epoch_utc),
        "duration_s": duration_ns / NS_PER_S if duration_ns is not None else None,
        "end_utc": format_utc(tb.to_utc(duration_ns)) if duration_ns is not None else None,
        "epoch_s": epoch_ns / NS_PER_S if epoch_ns is not None else None,
        "nodes": len(scenario.nodes),
        "satellites": scenario.n_satellites,
        "ground_stations": len(scenario.ground_stations),
        "run_id": (run_json or {}).get("run_id"),
        "options": json.loads(json.dumps(options or {}, default=str)),
    }


# -- faults (faults.jsonl; docs/faults.md) ---------------------------------------------------------


def _route_nodes(src: int, dst: int, route: str) -> list[int]:
    """The nodes a delivered packet went through (RECORD_ROUTE ``node@t;...``), ends included."""
    hops = []
    for part in route.split(";"):
        node, _, _ = part.partition("@")
        if node.strip().isdigit():
            hops.append(int(node))
    if not hops or hops[0] != src:
        hops.insert(0, src)
    if hops[-1] != dst:
        hops.append(dst)
    return hops


def faults_section(
    layout: RunLayout, table: EventTable, duration_ns: int | None
) -> list[dict[str, Any]]:
    """One entry per line of ``OUT/run/faults.jsonl`` with its effect, counted from the fault
    until the next fault (or the end of the run): drops by reason on the links or nodes it
    touched, DATA deliveries whose recorded route crossed them (and as many nanoseconds before
    the fault, for comparison), and the route changes of the epoch whose routes first saw it."""
    path = layout.faults_jsonl
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    if not records:
        return []
    epochs = {}
    for row in _read_csv(layout.epochs_csv):
        epoch = _int(row.get("epoch"))
        if epoch is not None:
            epochs[epoch] = _int(row.get("route_changes"))
    t = table.column("t_ns")
    ev = table.event
    where = table.column("where")
    tx, rx = table.column("tx"), table.column("rx")
    src, dst = table.column("src"), table.column("dst")
    reason = table.column("reason")
    route = table.column("route")
    data = table.column("msg_type") == "DATA"
    dropped = np.nonzero(ev == 2)[0]  # EV_DROPPED
    delivered = np.nonzero((ev == 1) & data)[0]  # EV_DELIVERED
    paths = {
        int(i): _route_nodes(int(src[i]), int(dst[i]), str(route[i] or ""))
        for i in delivered.tolist()
        if src[i] != NA and dst[i] != NA
    }
    times = sorted({r["t_ns"] for r in records if isinstance(r.get("t_ns"), int)})
    end_ns = duration_ns if duration_ns is not None else (int(t.max()) if len(t) else 0)
    out = []
    for rec in records:
        entry = {k: rec.get(k) for k in ("t_ns", "kind", "target", "issued_by", "ok")}
        for key in (
            "error", "link", "loss", "name", "members", "healed", "node", "killed_pid", "pid",
            "started_t_ns", "fabric_from_t_ns", "routes_from_epoch", "routes_from_t_ns",
            "old_pid", "down_ms", "stopped_t_ns", "broker_up_t_ns", "controller_reconnected_t_ns",
            "retained_republished",
        ):  # fmt: skip
            if key in rec:
                entry[key] = rec[key]
        t0 = rec.get("t_ns")
        if not rec.get("ok") or not isinstance(t0, int):
            out.append(entry)
            continue
        t1 = next((x for x in times if x > t0), end_ns)
        t1 = max(t1, t0)
        window = {"from_t_ns": t0, "until_t_ns": t1}
        drops_in = dropped[(t[dropped] >= t0) & (t[dropped] < t1)]
        before = delivered[(t[delivered] >= t0 - (t1 - t0)) & (t[delivered] < t0)]
        after = delivered[(t[delivered] >= t0) & (t[delivered] < t1)]
        kind = rec.get("kind")
        crosses = None
        sel = None
        if kind in ("link-cut", "link-restore", "link-loss") and rec.get("link"):
            a, b = rec["link"]
            sel = ((tx[drops_in] == a) & (rx[drops_in] == b)) | (
                (tx[drops_in] == b) & (rx[drops_in] == a)
            )

            def crosses(p, a=a, b=b):
                return any({x, y} == {a, b} for x, y in zip(p, p[1:], strict=False))
        elif kind == "partition" and rec.get("members"):
            inside = np.array(rec["members"], dtype=np.int64)
            sel = np.isin(tx[drops_in], inside) != np.isin(rx[drops_in], inside)
            members = set(rec["members"])

            def crosses(p, members=members):
                return (p[0] in members) != (p[-1] in members)
        elif kind in ("node-kill", "node-restart") and rec.get("node") is not None:
            n = rec["node"]
            sel = (rx[drops_in] == n) | (where[drops_in] == n)

            def crosses(p, n=n):
                return n in p

        if sel is not None:
            drops_in = drops_in[sel]
        window["drops"] = _counts(reason[drops_in])
        if crosses is not None:
            window["deliveries_crossing"] = sum(1 for i in after.tolist() if crosses(paths[i]))
            window["deliveries_crossing_before"] = sum(
                1 for i in before.tolist() if crosses(paths[i])
            )
            if kind == "partition":
                window["deliveries_inside"] = sum(
                    1 for i in after.tolist() if paths[i][0] in members and paths[i][-1] in members
                )
        window["deliveries"] = int(after.size)
        epoch = rec.get("routes_from_epoch")
        if isinstance(epoch, int):
            window["route_changes_at_routes_epoch"] = epochs.get(epoch)
        entry["effect"] = window
        out.append(entry)
    return out


def _counts(labels) -> dict[str, int]:
    values, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    return {str(v or "?"): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)}
