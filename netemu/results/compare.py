"""Side-by-side comparison of routing schemes run on the same scenario, traffic and seed.

:func:`scheme_metrics` reads one run's ``summary.json`` and ``deliveries.csv`` into a flat row
(delivery ratio, latency percentiles, hops, route changes, control overhead);
:func:`write_comparison` writes the rows of several runs as ``compare.csv`` / ``compare.json``
and draws ``compare.png`` (latency CDF and delivery ratio per scheme). ``netemu compare``
(:func:`compare_schemes`) runs each scheme with :func:`netemu.sim.simulate` (or, with
``mode="run"``, with :func:`netemu.runtime.launcher.run_emulation`) into ``OUT/<label>/`` and
then calls these.

>>> scheme_label("module.sub:MyScheme"), scheme_label("plugins/my.py:Best")
('MyScheme', 'my-Best')
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetemuError

__all__ = [
    "COMPARE_COLUMNS",
    "compare_schemes",
    "scheme_label",
    "scheme_metrics",
    "write_comparison",
]

# Columns of compare.csv, in order; every value is a number or empty (None) except ``scheme``.
COMPARE_COLUMNS = (
    "scheme",
    "routing",
    "originated",
    "delivered",
    "delivery_ratio",
    "latency_p50_s",
    "latency_p95_s",
    "latency_p99_s",
    "hops_mean",
    "hops_max",
    "dropped",
    "held_at_end",
    "route_changes",
    "table_updates",
    "control_bytes",
)


def scheme_label(routing: str) -> str:
    """A short, file-name-safe label for a ``--routing`` value (its class name for plug-ins)."""
    text = str(routing).strip()
    if ":" in text:
        where, cls = text.rsplit(":", 1)
        if where.endswith(".py"):
            text = f"{Path(where).stem}-{cls}"
        else:
            text = cls
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")
    if not label:
        raise NetemuError(f"cannot make a label from routing scheme {routing!r}")
    return label


def _latencies_and_hops(deliveries_csv: Path) -> tuple[np.ndarray, np.ndarray]:
    if not deliveries_csv.is_file():
        return np.empty(0), np.empty(0)
    latency, hops = [], []
    with deliveries_csv.open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                latency.append(float(row["latency_s"]))
                hops.append(int(row["hops"]) if row.get("hops") not in (None, "") else -1)
            except (KeyError, ValueError):
                continue
    return np.asarray(latency, dtype=float), np.asarray(hops, dtype=float)


def _opt_int(value) -> int | None:
    return None if value is None else int(value)


def scheme_metrics(run_dir: str | Path, *, scheme: str, routing: str) -> dict[str, Any]:
    """One row of the comparison from a finished run's output directory."""
    run_dir = Path(run_dir)
    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NetemuError(f"cannot read the summary of {scheme!r} at {path}: {exc}") from None
    packets = summary.get("packets") or {}
    routes = summary.get("routes") or {}
    originated = int(packets.get("originated") or 0)
    delivered = int(packets.get("delivered") or 0)
    latency_s, hops = _latencies_and_hops(run_dir / "deliveries.csv")
    known_hops = hops[hops >= 0]

    def pct(q: float) -> float | None:
        return float(np.percentile(latency_s, q)) if latency_s.size else None

    return {
        "scheme": scheme,
        "routing": routing,
        "originated": originated,
        "delivered": delivered,
        "delivery_ratio": delivered / originated if originated else None,
        "latency_p50_s": pct(50),
        "latency_p95_s": pct(95),
        "latency_p99_s": pct(99),
        "hops_mean": float(known_hops.mean()) if known_hops.size else None,
        "hops_max": int(known_hops.max()) if known_hops.size else None,
        "dropped": int(packets.get("dropped_total") or 0),
        "held_at_end": int(packets.get("held_at_end") or 0),
        "route_changes": _opt_int(routes.get("total_changes")),
        "table_updates": _opt_int(routes.get("table_updates")),
        "control_bytes": _opt_int(routes.get("table_bytes")),
        "_latency_s": latency_s,
    }


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in COMPARE_COLUMNS}


def write_comparison(rows: Sequence[dict[str, Any]], out: str | Path, *, plot: bool = True) -> dict:
    """Write ``compare.csv``, ``compare.json`` and (with ``plot``) ``compare.png`` into ``out``;
    returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "compare.csv", "json": out / "compare.json"}
    with paths["csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COMPARE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in _public(row).items()})
    paths["json"].write_text(json.dumps([_public(r) for r in rows], indent=1) + "\n")
    if plot:
        paths["png"] = _plot(rows, out / "compare.png")
    return paths


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    from .plots import _pyplot

    plt = _pyplot()
    fig, (ax_cdf, ax_bar) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=(3, 2))
    for row in rows:
        lat_ms = np.sort(np.asarray(row.get("_latency_s", ()), dtype=float)) * 1e3
        if lat_ms.size:
            frac = np.arange(1, lat_ms.size + 1) / lat_ms.size
            ax_cdf.step(lat_ms, frac, where="post", label=f"{row['scheme']} (n={lat_ms.size})")
    ax_cdf.set_xlabel("end-to-end latency (ms)")
    ax_cdf.set_ylabel("fraction of delivered packets")
    ax_cdf.set_ylim(0, 1.02)
    ax_cdf.grid(alpha=0.3)
    if any(np.size(r.get("_latency_s", ())) for r in rows):
        ax_cdf.legend(loc="lower right", fontsize=8)
    names = [r["scheme"] for r in rows]
    ratios = [r["delivery_ratio"] or 0.0 for r in rows]
    bars = ax_bar.bar(names, ratios, color="tab:blue")
    for bar, row in zip(bars, rows, strict=True):
        ax_bar.annotate(
            f"{row['delivered']}/{row['originated']}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax_bar.set_ylim(0, 1.1)
    ax_bar.set_ylabel("delivery ratio")
    plt.setp(ax_bar.get_xticklabels(), rotation=20, ha="right")
    fig.suptitle("routing schemes on the same scenario, traffic and seed")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def compare_schemes(
    scenario_path: str | Path,
    routings: Sequence[str],
    *,
    duration_s: float,
    epoch_s: float = 1.0,
    traffic: str | None = "ground-to-ground",
    out: str | Path,
    seed: int = 0,
    mode: str = "simulate",
    progress: bool = True,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every scheme in ``routings`` on the same scenario, traffic and seed into
    ``out/<label>/`` and write the comparison files into ``out``; returns the rows."""
    from ..routing import load_scheme

    if len(routings) < 1:
        raise NetemuError("give at least one --routing scheme to compare")
    labels = [scheme_label(r) for r in routings]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise NetemuError(f"routing schemes given twice: {', '.join(dupes)}")
    for routing in routings:
        load_scheme(routing)  # every bad --routing fails before the first run starts
    if mode == "simulate":
        from ..sim import simulate as runner
    elif mode == "run":
        from ..runtime.launcher import run_emulation as runner
    else:
        raise NetemuError(f"compare mode must be simulate or run, got {mode!r}")
    out = Path(out)
    rows = []
    for routing, label in zip(routings, labels, strict=True):
        run_dir = out / label
        runner(
            scenario_path,
            duration_s=duration_s,
            epoch_s=epoch_s,
            routing=routing,
            traffic=traffic,
            out=run_dir,
            seed=seed,
            progress=progress,
        )
        row = scheme_metrics(run_dir, scheme=label, routing=routing)
        rows.append(row)
        if on_done is not None:
            on_done(row)
    write_comparison(rows, out)
    return rows
