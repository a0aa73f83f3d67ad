"""One row per delivered application packet: ``OUT/deliveries.csv``.

Columns (docs/results.md): ``flow_id, seq, src, src_name, dst, dst_name, packet_id, msg_type,
sent_utc, t_sent_ns, t_delivered_ns, latency_s, hops, path, geometric_delay_s, excess_s``.
Empty cells mean "not known" (no flow, no hop count, no RECORD_ROUTE).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..links import LinkModel
from ..scenario.model import Scenario
from ..timebase import NS_PER_S
from .accounting import OUT_DELIVERED, PacketAccount
from .events import NA, EventTable
from .pathdelay import path_delays_s

__all__ = ["DELIVERY_COLUMNS", "delivery_table", "write_deliveries_csv"]

DELIVERY_COLUMNS = (
    "flow_id",
    "seq",
    "src",
    "src_name",
    "dst",
    "dst_name",
    "packet_id",
    "msg_type",
    "sent_utc",
    "t_sent_ns",
    "t_delivered_ns",
    "latency_s",
    "hops",
    "path",
    "geometric_delay_s",
    "excess_s",
)

PATH_SEPARATOR = ">"


def _names(scenario: Scenario, numbers: np.ndarray) -> np.ndarray:
    by_number = {n.number: n.name for n in scenario.nodes}
    uniq, inv = np.unique(numbers, return_inverse=True)
    names = np.array([by_number.get(int(u), str(int(u))) for u in uniq.tolist()], dtype=object)
    return names[inv.reshape(-1)] if numbers.size else np.zeros(0, object)


def utc_strings(scenario: Scenario, t_ns: np.ndarray) -> np.ndarray:
    """ISO 8601 UTC (microseconds, ``Z``) for scenario times, vectorised."""
    epoch = np.datetime64(scenario.epoch_utc.replace(tzinfo=None), "ns")
    when = epoch + np.asarray(t_ns, np.int64).astype("timedelta64[ns]")
    text = np.datetime_as_string(when, unit="us")
    return np.char.add(text.astype(str), "Z") if text.size else np.zeros(0, str)


def _path_names(scenario: Scenario, routes, dst_names) -> list[str]:
    by_number = {str(n.number): n.name for n in scenario.nodes}
    out = []
    for route, dst in zip(routes, dst_names, strict=True):
        if not route:
            out.append("")
            continue
        nodes = [by_number.get(e.partition("@")[0], e.partition("@")[0]) for e in route.split(";")]
        out.append(PATH_SEPARATOR.join([*(n for n in nodes if n), dst]))
    return out


def delivery_table(
    account: PacketAccount, table: EventTable, scenario: Scenario, *, model: LinkModel | None
) -> dict[str, np.ndarray]:
    """Columns of :data:`DELIVERY_COLUMNS` (numpy arrays), sorted by send time.

    ``model=None`` skips the geometric path delay (NaN).
    """
    sel = np.nonzero(account.outcome == OUT_DELIVERED)[0]
    rows = account.delivered_row[sel]
    t_sent = account.t_originated_ns[sel]
    order = np.lexsort((account.seq[sel], account.src[sel], t_sent))
    sel, rows, t_sent = sel[order], rows[order], t_sent[order]
    t_deliv = table.ints["t_ns"][rows]
    dst = account.dst[sel]
    # The delivered row knows the destination when the originated row did not say.
    dst = np.where(dst == NA, table.ints["dst"][rows], dst)
    src = account.src[sel]
    hops = table.ints["hops"][rows]
    routes = [str(r) for r in table.strs["route"][rows].tolist()]
    src_names = _names(scenario, src)
    dst_names = _names(scenario, dst)
    if model is not None and sel.size:
        geo = path_delays_s(scenario, routes, dst, np.where(hops == NA, -1, hops), model=model)
    else:
        geo = np.full(sel.size, np.nan)
    latency = (t_deliv - t_sent) / NS_PER_S
    return {
        "flow_id": account.flow_id[sel],
        "seq": account.seq[sel],
        "src": src,
        "src_name": src_names,
        "dst": dst,
        "dst_name": dst_names,
        "packet_id": account.packet_id[sel],
        "msg_type": table.strs["msg_type"][rows],
        "sent_utc": utc_strings(scenario, t_sent),
        "t_sent_ns": t_sent,
        "t_delivered_ns": t_deliv,
        "latency_s": latency,
        "hops": hops,
        "path": np.array(_path_names(scenario, routes, dst_names.tolist()), dtype=object),
        "geometric_delay_s": geo,
        "excess_s": latency - geo,
    }


def _cells(name: str, values: np.ndarray) -> list[str]:
    if values.dtype == np.int64:
        return ["" if v == NA else str(v) for v in values.tolist()]
    if values.dtype.kind == "f":
        return ["" if v != v else f"{v:.9f}" for v in values.tolist()]
    return [str(v) for v in values.tolist()]


def write_deliveries_csv(path: str | Path, deliveries: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [_cells(c, np.asarray(deliveries[c])) for c in DELIVERY_COLUMNS]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(DELIVERY_COLUMNS)
        writer.writerows(zip(*columns, strict=True))
    return path
