"""PNG plots of a run (matplotlib, Agg backend, no display needed).

- :func:`plot_latency`: end-to-end latency of each delivered packet over send time, per flow
  (points), against the geometric path delay of the same packets (line), in milliseconds.
- :func:`plot_topology`: ground tracks of every satellite over a window around one instant,
  the links up at that instant between sub-satellite points (split at the antimeridian), the
  satellites' positions and the ground stations.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..links import LinkModel, LinkTracker
from ..orbits import earth_frame
from ..scenario.model import Scenario
from ..timebase import NS_PER_S, format_utc
from .events import NA

__all__ = ["LATENCY_SIZE_PX", "TOPOLOGY_SIZE_PX", "plot_latency", "plot_topology", "subpoint_deg"]

log = logging.getLogger(__name__)

DPI = 100
LATENCY_SIZE_PX = (1200, 700)
TOPOLOGY_SIZE_PX = (1600, 900)
MAX_LEGEND_FLOWS = 12


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_latency(
    path: str | Path,
    deliveries: dict[str, np.ndarray],
    flow_names: dict[int, str],
    *,
    title: str,
) -> Path:
    """Latency (ms) over send time (scenario s), one colour per flow; packets without a flow
    id are one group, "other"."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(LATENCY_SIZE_PX[0] / DPI, LATENCY_SIZE_PX[1] / DPI), dpi=DPI)
    try:
        flow = np.asarray(deliveries["flow_id"])
        t_s = np.asarray(deliveries["t_sent_ns"]) / NS_PER_S
        lat_ms = np.asarray(deliveries["latency_s"]) * 1e3
        geo_ms = np.asarray(deliveries["geometric_delay_s"]) * 1e3
        ids, counts = np.unique(flow, return_counts=True) if flow.size else ([], [])
        order = np.argsort(-np.asarray(counts), kind="stable") if len(ids) else []
        cmap = plt.get_cmap("tab10" if len(ids) <= 10 else "tab20")
        for rank, k in enumerate(order):
            fid = int(ids[k])
            sel = flow == fid
            color = cmap(rank % cmap.N)
            label = "other" if fid == NA else flow_names.get(fid, f"flow {fid}")
            show = rank < MAX_LEGEND_FLOWS
            ax.plot(
                t_s[sel],
                lat_ms[sel],
                ".",
                ms=4,
                color=color,
                label=f"{label} latency" if show else None,
            )
            g = sel & np.isfinite(geo_ms)
            if g.any():
                ax.plot(
                    t_s[g],
                    geo_ms[g],
                    "-",
                    lw=1.2,
                    color=color,
                    label=f"{label} geometric" if show else None,
                )
        if len(ids) == 0:
            ax.text(
                0.5, 0.5, "no delivered packets", ha="center", va="center", transform=ax.transAxes
            )
        elif len(ids) > MAX_LEGEND_FLOWS:
            ax.plot([], [], " ", label=f"... {len(ids) - MAX_LEGEND_FLOWS} more flows")
        ax.set_xlabel("send time (scenario s)")
        ax.set_ylabel("delay (ms)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if len(ids):
            ax.legend(fontsize=8, loc="best", ncol=2 if len(ids) > 4 else 1)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return Path(path)


def subpoint_deg(pos_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and geocentric latitude (degrees) of ITRS positions (..., 3)."""
    x, y, z = pos_m[..., 0], pos_m[..., 1], pos_m[..., 2]
    return np.degrees(np.arctan2(y, x)), np.degrees(np.arctan2(z, np.hypot(x, y)))


def _break_antimeridian(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tracks (n_sat, n_t) to one polyline per satellite with NaN gaps where it wraps."""
    jump = np.abs(np.diff(lon, axis=1)) > 180.0
    n_sat, n_t = lon.shape
    out_lon = np.full((n_sat, n_t * 2 + 1), np.nan)
    out_lat = np.full_like(out_lon, np.nan)
    out_lon[:, 0:-1:2] = lon
    out_lat[:, 0:-1:2] = lat
    # Odd slots stay NaN where the track jumps, else repeat the next point (no visible effect).
    fill = np.zeros((n_sat, n_t), bool)
    fill[:, :-1] = ~jump
    out_lon[:, 1:-1:2] = np.where(fill, lon, np.nan)
    out_lat[:, 1:-1:2] = np.where(fill, lat, np.nan)
    return out_lon.ravel(), out_lat.ravel()


def link_segments(lon_a, lat_a, lon_b, lat_b) -> np.ndarray:
    """Line segments (k, 2, 2) between points; a pair more than 180 deg apart in longitude is
    drawn as two pieces that leave through the antimeridian (the shorter way round)."""
    lon_a, lat_a, lon_b, lat_b = (np.asarray(v, np.float64) for v in (lon_a, lat_a, lon_b, lat_b))
    wrap = np.abs(lon_b - lon_a) > 180.0
    straight = np.stack([np.stack([lon_a, lat_a], -1), np.stack([lon_b, lat_b], -1)], axis=1)[~wrap]
    if not wrap.any():
        return straight
    la, pa, lb, pb = lon_a[wrap], lat_a[wrap], lon_b[wrap], lat_b[wrap]
    edge_a = np.where(la > 0, 180.0, -180.0)
    lb_unwrapped = lb + np.where(la > 0, 360.0, -360.0)
    frac = (edge_a - la) / (lb_unwrapped - la)
    lat_cross = pa + frac * (pb - pa)
    first = np.stack([np.stack([la, pa], -1), np.stack([edge_a, lat_cross], -1)], axis=1)
    second = np.stack([np.stack([-edge_a, lat_cross], -1), np.stack([lb, pb], -1)], axis=1)
    return np.concatenate([straight, first, second])


def plot_topology(
    path: str | Path,
    model: LinkModel,
    t_ns: int,
    *,
    title: str,
    window_s: float = 900.0,
    step_s: float = 30.0,
    exclude_numbers=(),
) -> Path:
    """Ground tracks over ``t_ns ± window_s`` and the links up at ``t_ns`` (links touching a
    node in ``exclude_numbers`` — e.g. dead ones — are left out and those nodes drawn hollow)."""
    from matplotlib.collections import LineCollection

    plt = _pyplot()
    scenario: Scenario = model.scenario
    n_sat = model.n_sat
    times = t_ns + np.arange(-window_s, window_s + step_s / 2, step_s) * NS_PER_S
    frame = earth_frame(scenario.timebase, times)
    pos, _, _ = model.orbits.propagate(times, frame=frame)
    lon, lat = subpoint_deg(pos)
    state = LinkTracker(model, list_below_mask=False).step(int(t_ns))
    now_pos = state.node_pos_m
    n_lon, n_lat = subpoint_deg(now_pos)
    excluded = np.zeros(len(scenario.nodes), bool)
    number_to_index = {n.number: n.index for n in scenario.nodes}
    for number in exclude_numbers:
        if number in number_to_index:
            excluded[number_to_index[number]] = True
    up = state.up & ~excluded[state.a] & ~excluded[state.b]
    ground = model.is_ground[state.link_id] & up
    isl = ~model.is_ground[state.link_id] & up
    big = n_sat > 300
    fig, ax = plt.subplots(figsize=(TOPOLOGY_SIZE_PX[0] / DPI, TOPOLOGY_SIZE_PX[1] / DPI), dpi=DPI)
    try:
        tl, tp = _break_antimeridian(lon, lat)
        ax.plot(tl, tp, "-", lw=0.3 if big else 0.6, color="0.75", zorder=1, label="ground tracks")
        for mask, color, label, lw in (
            (isl, "tab:blue", f"ISL up ({int(isl.sum())})", 0.3 if big else 1.0),
            (ground, "tab:red", f"ground link up ({int(ground.sum())})", 1.2),
        ):
            if not mask.any():
                continue
            a, b = state.a[mask], state.b[mask]
            segs = link_segments(n_lon[a], n_lat[a], n_lon[b], n_lat[b])
            ax.add_collection(
                LineCollection(segs, colors=color, linewidths=lw, zorder=2, label=label)
            )
        sat_alive = ~excluded[:n_sat]
        ax.scatter(
            n_lon[:n_sat][sat_alive],
            n_lat[:n_sat][sat_alive],
            s=2 if big else 8,
            color="k",
            zorder=3,
            label=f"satellites ({n_sat})",
        )
        if (~sat_alive).any():
            ax.scatter(
                n_lon[:n_sat][~sat_alive],
                n_lat[:n_sat][~sat_alive],
                s=30,
                facecolors="none",
                edgecolors="m",
                zorder=3,
                label="dead",
            )
        gs_lon, gs_lat = n_lon[n_sat:], n_lat[n_sat:]
        if gs_lon.size:
            ax.scatter(
                gs_lon,
                gs_lat,
                marker="^",
                s=40,
                color="tab:green",
                edgecolors="k",
                zorder=4,
                label=f"ground stations ({gs_lon.size})",
            )
            if gs_lon.size <= 30:
                for node, x, y in zip(scenario.ground_nodes, gs_lon, gs_lat, strict=True):
                    ax.annotate(
                        node.name,
                        (x, y),
                        xytext=(3, 3),
                        textcoords="offset points",
                        fontsize=7,
                        zorder=5,
                    )
        ax.set_xlim(-180, 180)
        ax.set_ylim(-90, 90)
        ax.set_xticks(np.arange(-180, 181, 30))
        ax.set_yticks(np.arange(-90, 91, 30))
        ax.set_aspect("equal")
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("longitude (deg)")
        ax.set_ylabel("latitude (deg)")
        when = format_utc(scenario.timebase.to_utc(int(t_ns)))
        ax.set_title(f"{title}\n{when} (t = {t_ns / NS_PER_S:.0f} s), tracks ±{window_s:.0f} s")
        ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return Path(path)
