"""Contact plans from geometry: visibility windows found by root-finding, not fine polling.

The visibility of every candidate link is sampled on a coarse grid (``step_s``, default 10 s);
each change of state between two samples is then refined by vectorised bisection until the
bracket is at most ``tol_s`` (default 10 ms) wide. A window shorter than the coarse step that
opens and closes between two samples is not seen (with Earth-orbit passes lasting minutes and a
10 s step this does not happen for the bundled scenarios; lower ``step_s`` for exotic ones).

Each window becomes two directional contacts, starting ``acquisition_s`` after geometry first
allows the link (a window that is shorter than that is left out), with the link kind's rate, the
one-way light time of the largest range seen during the window (conservative), and a confidence of
``1 - cloud_outage_probability`` for ground links. Ground-terminal limits are not applied to plans:
a plan lists every opportunity, and a router may use only as many at once as there are terminals.
"""

from __future__ import annotations

import logging

import numpy as np

from ..geometry import C_M_PER_S
from ..links import R_UP, LinkModel, link_model
from ..orbits import earth_frame, sun_direction_itrs
from ..scenario.model import Scenario
from ..timebase import NS_PER_S, parse_utc
from .model import ContactPlan

log = logging.getLogger(__name__)


def find_windows(
    model: LinkModel,
    t_start_ns: int,
    t_end_ns: int,
    *,
    step_s: float = 10.0,
    tol_s: float = 0.01,
    progress: bool = False,
):
    """Geometric visibility windows of all candidate links in [t_start_ns, t_end_ns].

    Returns arrays ``(link, start_ns, end_ns, max_range_m, open_at_start)``; ``open_at_start``
    marks windows already open at ``t_start_ns`` (their true start lies earlier).
    """
    if t_end_ns <= t_start_ns:
        raise ValueError("the horizon must be longer than zero")
    step_ns = int(round(step_s * NS_PER_S))
    grid = np.arange(t_start_ns, t_end_ns, step_ns, dtype=np.int64)
    grid = np.append(grid, np.int64(t_end_ns))
    n_links = len(model)
    chunk = max(1, 400_000 // max(n_links, 1))
    prev_up = None
    open_max = np.full(n_links, np.nan)
    rise_links, rise_cols, fall_links, fall_cols, fall_max = [], [], [], [], []
    all_links = np.arange(n_links)
    task = _progress(progress, len(grid))
    for c0 in range(0, len(grid), chunk):
        times = grid[c0 : c0 + chunk]
        frame = earth_frame(model.scenario.timebase, times)
        pos, vel, _ = model.orbits.propagate(times, frame=frame)
        sun = sun_direction_itrs(frame)
        n_t = len(times)
        rows_l = np.tile(all_links, n_t)
        rows_t = np.repeat(np.arange(n_t), n_links)
        met = model.evaluate(rows_l, rows_t, pos, vel, sun)
        up_mat = (met.reason_code == R_UP).reshape(n_t, n_links)
        rng_mat = met.range_m.reshape(n_t, n_links)
        for j in range(n_t):
            col = c0 + j
            up = up_mat[j]
            rng = rng_mat[j]
            if prev_up is None:
                rising = np.zeros(n_links, bool)
                open_max[up] = rng[up]
            else:
                rising = up & ~prev_up
                falling = prev_up & ~up
                if falling.any():
                    idx = np.nonzero(falling)[0]
                    fall_links.append(idx)
                    fall_cols.append(np.full(idx.size, col))
                    fall_max.append(open_max[idx])
                    open_max[idx] = np.nan
                if rising.any():
                    idx = np.nonzero(rising)[0]
                    rise_links.append(idx)
                    rise_cols.append(np.full(idx.size, col))
                    open_max[idx] = rng[idx]
                cont = up & ~rising
                open_max[cont] = np.maximum(open_max[cont], rng[cont])
            prev_up = up
        task(n_t)
    task(None)

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    r_link, r_col = cat(rise_links, np.int64), cat(rise_cols, np.int64)
    f_link, f_col, f_max = cat(fall_links, np.int64), cat(fall_cols, np.int64), cat(fall_max, float)
    tol_ns = tol_s * NS_PER_S
    # Rising edge between grid[col-1] (down) and grid[col] (up); falling edge the other way.
    r_time, r_rng = _bisect(model, r_link, grid[r_col - 1], grid[r_col], rising=True, tol_ns=tol_ns)
    f_time, f_rng = _bisect(
        model, f_link, grid[f_col - 1], grid[f_col], rising=False, tol_ns=tol_ns
    )

    # Windows still open at the end of the horizon close there.
    still = np.nonzero(prev_up)[0] if prev_up is not None else np.zeros(0, np.int64)
    end_link = np.concatenate([f_link, still])
    end_time = np.concatenate([f_time, np.full(still.size, t_end_ns, np.int64)])
    end_max = np.concatenate([np.maximum(f_max, f_rng), open_max[still]])
    # Starts: refined rising edges, plus windows open at the first sample.
    start_link = np.concatenate(
        [r_link, _opened_at_zero(r_link, r_col, f_link, f_col, still, n_links)]
    )
    start_time = np.concatenate(
        [r_time, np.full(start_link.size - r_link.size, t_start_ns, np.int64)]
    )
    start_rng = np.concatenate([r_rng, np.zeros(start_link.size - r_link.size)])
    start_open = np.concatenate(
        [np.zeros(r_link.size, bool), np.ones(start_link.size - r_link.size, bool)]
    )
    # Pair starts and ends per link in time order.
    so = np.lexsort((start_time, start_link))
    eo = np.lexsort((end_time, end_link))
    if so.size != eo.size or not np.array_equal(start_link[so], end_link[eo]):
        raise RuntimeError("window bookkeeping out of step (a bug): starts and ends do not pair")
    link = start_link[so]
    s_ns = start_time[so]
    e_ns = end_time[eo]
    max_rng = np.fmax(end_max[eo], start_rng[so])
    return link, s_ns, e_ns, max_rng, start_open[so]


def _opened_at_zero(r_link, r_col, f_link, f_col, still, n_links):
    """Links whose first window was already open at the first grid sample: their first event
    is a fall, or they had no event and are still open at the end."""
    opened = np.zeros(n_links, bool)
    first_rise = np.full(n_links, np.iinfo(np.int64).max)
    np.minimum.at(first_rise, r_link, r_col)
    first_fall = np.full(n_links, np.iinfo(np.int64).max)
    np.minimum.at(first_fall, f_link, f_col)
    opened |= first_fall < first_rise
    never_rose_or_fell = (first_rise == np.iinfo(np.int64).max) & (
        first_fall == np.iinfo(np.int64).max
    )
    still_mask = np.zeros(n_links, bool)
    still_mask[still] = True
    opened |= never_rose_or_fell & still_mask
    return np.nonzero(opened)[0]


def _bisect(model, links, lo_ns, hi_ns, *, rising: bool, tol_ns: float):
    """Refined state changes of ``links`` inside (lo, hi]: (time_ns, range_m at that time)."""
    if links.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    t = model.refine_change(links, lo_ns, hi_ns, rising=rising, tol_ns=tol_ns)
    return t, model.evaluate_pairs(links, t.astype(np.float64)).range_m


def _progress(enabled: bool, total: int):
    if not enabled:
        return lambda n: None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("contact plan"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} samples"),
        TimeRemainingColumn(),
        transient=True,
    )
    prog.start()
    task = prog.add_task("plan", total=total)

    def advance(n):
        if n is None:
            prog.stop()
        else:
            prog.advance(task, n)

    return advance


def generate_plan(
    scenario: Scenario,
    *,
    start_utc=None,
    duration_s: float,
    step_s: float = 10.0,
    tol_s: float = 0.01,
    progress: bool = False,
) -> ContactPlan:
    """The contact plan of ``scenario`` over [start, start + duration].

    Times in the plan are relative to ``start`` (its ``reference_utc``); node numbers are the
    scenario's. ``start_utc`` defaults to the scenario epoch.
    """
    model = link_model(scenario)
    tb = scenario.timebase
    start = parse_utc(start_utc) if start_utc is not None else scenario.epoch_utc
    t0 = tb.from_utc(start)
    t1 = t0 + int(round(duration_s * NS_PER_S))
    acq_ns = (model.acquisition_s * NS_PER_S).astype(np.int64)
    lookback = int(acq_ns.max()) if acq_ns.size else 0
    link, s_ns, e_ns, max_rng, _open_at_start = find_windows(
        model, t0 - lookback, t1, step_s=step_s, tol_s=tol_s, progress=progress
    )
    s_eff = s_ns + acq_ns[link]
    s_eff = np.maximum(s_eff, t0)
    keep = e_ns > s_eff
    link, s_eff, e_ns, max_rng = link[keep], s_eff[keep], e_ns[keep], max_rng[keep]
    numbers = np.array([n.number for n in scenario.nodes], dtype=np.int64)
    a = numbers[model.cand.a[link]]
    b = numbers[model.cand.b[link]]
    owlt_ns = np.ceil(max_rng / C_M_PER_S * NS_PER_S).astype(np.int64)
    rate = model.rate_bps[link]
    conf = 1.0 - model.cloud[link]
    names = {n.number: n.name for n in scenario.nodes}
    return ContactPlan(
        from_node=np.concatenate([a, b]),
        to_node=np.concatenate([b, a]),
        start_ns=np.concatenate([s_eff, s_eff]) - t0,
        end_ns=np.concatenate([e_ns, e_ns]) - t0,
        rate_bps=np.concatenate([rate, rate]),
        owlt_ns=np.concatenate([owlt_ns, owlt_ns]),
        confidence=np.concatenate([conf, conf]),
        reference_utc=start,
        node_names=names,
    )
