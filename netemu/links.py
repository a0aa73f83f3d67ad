"""Link state: for every candidate link and time, range, range rate, delay, loss, rate, up/down
with the reason when down.

The evaluation works on flat rows of (link, time) so the same code serves a snapshot (all links
at one time), a grid (contact-plan search) and scattered pairs (bisection). A link is *up* when
every constraint margin is positive; :data:`REASONS` names the first one that is not, in this
order: propagation error, Earth blocking the line of sight (below the grazing altitude), range
beyond ``max_range_km``, elevation below the station's mask, inter-plane link above the latitude
limit, Sun inside the exclusion cone of a receiving terminal, negative optical link margin. After
geometry, the acquisition rule (a link is usable only ``acquisition_s`` after geometry first
allows it) and ground-terminal limits (greedy by elevation, keeping links that were already
assigned) can take a link down too.

>>> from netemu.scenario import load_scenario               # doctest: +SKIP
>>> state = link_state(load_scenario("topologies/iridium-next.yaml"), 0)  # doctest: +SKIP
>>> state.up.sum()                                            # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import budget as budget_mod
from .candidates import KIND_GROUND, KINDS, build_candidates
from .geometry import (
    C_M_PER_S,
    angle_deg,
    earth_clearance_m,
    elevation_deg,
    geocentric_latitude_deg,
    geodetic_to_itrs,
    up_vector,
)
from .orbits import Orbits, earth_frame, sun_direction_itrs
from .scenario.model import Scenario
from .timebase import NS_PER_S, format_utc

REASONS = (
    "",
    "propagation-error",
    "earth-blocked",
    "out-of-range",
    "below-elevation",
    "latitude-limit",
    "sun-exclusion",
    "link-budget",
    "acquiring",
    "no-terminal",
)
R_UP, R_PROP, R_EARTH, R_RANGE, R_ELEV, R_LAT, R_SUN, R_BUDGET, R_ACQ, R_TERM = range(10)
_REASON_ARRAY = np.array(REASONS)


@dataclasses.dataclass
class Metrics:
    """Per-row link metrics (flat arrays over evaluated (link, time) rows)."""

    range_m: np.ndarray
    range_rate_mps: np.ndarray
    elevation_deg: np.ndarray  # NaN for ISLs
    margin_db: np.ndarray
    loss: np.ndarray
    visibility: np.ndarray  # > 0 when geometry and budget allow the link (continuous in time)
    reason_code: np.ndarray


class LinkModel:
    """Scenario geometry ready for fast, repeated link evaluation."""

    def __init__(self, scenario: Scenario, orbits: Orbits | None = None):
        self.scenario = scenario
        self.orbits = orbits or Orbits(scenario)
        self.cand = build_candidates(scenario, self.orbits.satrecs)
        self.n_sat = scenario.n_satellites
        gs = scenario.ground_stations
        self.gs_pos_m = geodetic_to_itrs(
            [g.lat_deg for g in gs], [g.lon_deg for g in gs], [g.alt_m for g in gs]
        ).reshape(-1, 3)
        self.gs_up = up_vector([g.lat_deg for g in gs], [g.lon_deg for g in gs]).reshape(-1, 3)
        rules = scenario.links
        self.gs_min_el = np.array(
            [
                g.min_elevation_deg
                if g.min_elevation_deg is not None
                else rules.ground.min_elevation_deg
                for g in gs
            ]
        )
        self.gs_terminals = np.array([g.terminals for g in gs], dtype=np.int64)
        self.gs_cloud = np.array([g.cloud_outage_probability for g in gs])
        sat_terms = []
        for c in scenario.constellations:
            sat_terms += [c.ground_terminals] * c.size
        self.sat_ground_terminals = np.array(sat_terms, dtype=np.int64)
        self.is_ground = self.cand.kind_code == KIND_GROUND
        self.rate_bps = np.where(self.is_ground, rules.ground.rate_bps, rules.isl.rate_bps)
        self.acquisition_s = np.where(
            self.is_ground, rules.ground.acquisition_s, rules.isl.acquisition_s
        )
        self._isl_idx = np.nonzero(~self.is_ground)[0]
        self._gs_sq = np.einsum("gk,gk->g", self.gs_pos_m, self.gs_pos_m)
        # A hair below the mask so rounding never hides a pair that is just above it.
        self._sin_mask_sq = np.sin(np.radians(np.maximum(self.gs_min_el - 1e-6, 0.0))) ** 2
        self._gs_up_dot = np.einsum("gk,gk->g", self.gs_pos_m, self.gs_up)
        self.cloud = np.zeros(len(self.cand))
        self.cloud[self.is_ground] = self.gs_cloud[self.cand.b[self.is_ground] - self.n_sat]

    def __len__(self) -> int:
        return len(self.cand)

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, link_idx, time_idx, pos_m, vel_mps, sun_dir) -> Metrics:
        """Metrics for rows (link_idx[k], time_idx[k]).

        ``pos_m``/``vel_mps`` are satellite states of shape (n_sat, n_t, 3) and ``sun_dir`` is
        (n_t, 3), indexed by ``time_idx``.
        """
        link_idx = np.asarray(link_idx)
        time_idx = np.asarray(time_idx)
        a = self.cand.a[link_idx]
        b = self.cand.b[link_idx]
        ground = self.is_ground[link_idx]
        b_sat = np.where(ground, 0, b)
        pb = pos_m[b_sat, time_idx]
        vb = vel_mps[b_sat, time_idx]
        if ground.any():
            pb[ground] = self.gs_pos_m[b[ground] - self.n_sat]
            vb[ground] = 0.0
        return self.evaluate_rows(
            link_idx, pos_m[a, time_idx], vel_mps[a, time_idx], pb, vb, sun_dir[time_idx]
        )

    def evaluate_pairs(self, link_idx, t_ns) -> Metrics:
        """Metrics for links at individual times (one time per row)."""
        link_idx = np.asarray(link_idx, dtype=np.int64)
        t_ns = np.asarray(t_ns, dtype=np.float64)
        m = link_idx.shape[0]
        if m == 0:
            z = np.zeros(0)
            return Metrics(z, z, z, z, z, z, np.zeros(0, np.int8))
        a = self.cand.a[link_idx]
        b = self.cand.b[link_idx]
        ground = self.is_ground[link_idx]
        frame = earth_frame(self.scenario.timebase, t_ns)
        pa, va, _ = self.orbits.propagate_pairs(a, t_ns, frame=frame)
        pb = np.empty_like(pa)
        vb = np.zeros_like(va)
        if (~ground).any():
            pb[~ground], vb[~ground], _ = self.orbits.propagate_pairs(
                b[~ground], t_ns[~ground], frame=frame.select(~ground)
            )
        if ground.any():
            pb[ground] = self.gs_pos_m[b[ground] - self.n_sat]
        sun = sun_direction_itrs(frame)
        return self.evaluate_rows(link_idx, pa, va, pb, vb, sun)

    def evaluate_rows(self, link_idx, pa, va, pb, vb, sun) -> Metrics:
        """The link model on flat rows: endpoint states (m, 3) and Sun directions (m, 3).

        For ground rows, ``b`` is the station. Rows that fail on geometry alone (below the
        elevation mask) skip the rest of the model: their loss is 1 and range rate NaN.
        """
        link_idx = np.asarray(link_idx)
        rules = self.scenario.links
        m = link_idx.shape[0]
        cand = self.cand
        ground = self.is_ground[link_idx]
        d = pb - pa
        rng = np.sqrt(np.einsum("ij,ij->i", d, d))
        reason = np.zeros(m, np.int8)
        vis = np.full(m, np.inf)
        elev = np.full(m, np.nan)
        rate = np.full(m, np.nan)
        margin = np.full(m, -np.inf)
        loss = np.ones(m)

        def apply(rows, row_margin, code):
            # row_margin > 0 is good; keep the first failing reason of every row.
            row_margin = np.where(np.isnan(row_margin), -np.inf, row_margin)
            vis[rows] = np.minimum(vis[rows], row_margin)
            failed = rows[row_margin <= 0]
            failed = failed[reason[failed] == 0]
            reason[failed] = code

        bad = np.nonzero(np.isnan(rng))[0]
        reason[bad] = R_PROP
        vis[bad] = -np.inf
        isl = np.nonzero(~ground)[0]
        grd = np.nonzero(ground)[0]
        if grd.size:
            gi = cand.b[link_idx[grd]] - self.n_sat
            el = elevation_deg(pa[grd], pb[grd], self.gs_up[gi])
            elev[grd] = el
            apply(grd, el - self.gs_min_el[gi], R_ELEV)
        if isl.size:
            clearance = earth_clearance_m(pa[isl], pb[isl]) - rules.isl.grazing_altitude_km * 1e3
            apply(isl, clearance / 1e3, R_EARTH)
            apply(isl, (rules.isl.max_range_km * 1e3 - rng[isl]) / 1e3, R_RANGE)
        # Rows still possible on geometry go through the rest of the model.
        live = np.nonzero(reason == 0)[0] if grd.size else np.arange(m)
        live = live[np.isfinite(rng[live])]
        if live.size == 0:
            return Metrics(rng, rate, elev, margin, loss, vis, reason)
        dl = d[live]
        rate[live] = np.einsum("ij,ij->i", dl, vb[live] - va[live]) / rng[live]
        live_ground = ground[live]
        lat_limit = rules.isl.latitude_limit_deg
        inter = live[cand.inter_plane[link_idx[live]]]
        if lat_limit is not None and inter.size:
            lat = np.maximum(
                np.abs(geocentric_latitude_deg(pa[inter])),
                np.abs(geocentric_latitude_deg(pb[inter])),
            )
            apply(inter, lat_limit - lat, R_LAT)
        li = live[~live_ground]
        lg = live[live_ground]
        if rules.isl.sun_exclusion_deg > 0 and li.size:
            ang = angle_deg(d[li], sun[li])
            ang = np.minimum(ang, 180.0 - ang)  # the Sun behind either terminal's partner
            apply(li, ang - rules.isl.sun_exclusion_deg, R_SUN)
        if rules.ground.sun_exclusion_deg > 0 and lg.size:
            # The station's telescope looks up at the satellite; the satellite looking down has
            # the Earth, not the Sun, behind the station.
            ang = angle_deg(-d[lg], sun[lg])
            apply(lg, ang - rules.ground.sun_exclusion_deg, R_SUN)
        for rows, bud, extra in (
            (li, rules.isl.budget, 0.0),
            (lg, rules.ground.budget, None),
        ):
            if rows.size == 0:
                continue
            if extra is None:
                extra = budget_mod.atmospheric_loss_db(
                    rules.ground.zenith_attenuation_db, elev[rows]
                )
            margin[rows] = budget_mod.link_margin_db(bud, rng[rows], extra)
            loss[rows] = budget_mod.frame_loss_probability(margin[rows], bud.fading_sigma_db)
            apply(rows, margin[rows], R_BUDGET)
        return Metrics(rng, rate, elev, margin, loss, vis, reason)

    def refine_change(self, link_idx, lo_ns, hi_ns, *, rising: bool, tol_ns: float):
        """Bisect each link's change of state inside (lo, hi] until the bracket is at most
        ``tol_ns`` wide; returns the first instant (ns) in the new state (rising: first up,
        falling: first down). The link must be in the old state at ``lo`` and the new at ``hi``.
        """
        lo = np.asarray(lo_ns, dtype=np.float64).copy()
        hi = np.asarray(hi_ns, dtype=np.float64).copy()
        while np.any(hi - lo > tol_ns):
            mid = 0.5 * (lo + hi)
            up = self.evaluate_pairs(link_idx, mid).reason_code == R_UP
            after = up if rising else ~up
            hi = np.where(after, mid, hi)
            lo = np.where(after, lo, mid)
        return np.ceil(hi).astype(np.int64)

    def snapshot(
        self, pos_m, vel_mps, sun_dir, *, above_mask_only: bool = False
    ) -> tuple[np.ndarray, Metrics]:
        """Metrics at one time for every ISL candidate and every ground pair whose satellite is
        above the station's geometric horizon; ``pos_m``/``vel_mps`` are (n_sat, 3).

        Returns ``(link_idx, metrics)``. Ground pairs below the horizon (with
        ``above_mask_only``, below the station's elevation mask) can never link at that instant
        and are left out, which keeps a Starlink-sized snapshot to a few thousand rows.
        Their geometry is computed as two (stations x satellites) matrix products instead of a
        gather over every pair.
        """
        isl = self._isl_idx
        rows = [isl]
        if self.gs_pos_m.shape[0]:
            # (s - g).up = s.up - g.up: positive when the satellite is above the horizon.
            up_dot = self.gs_up @ pos_m.T - self._gs_up_dot[:, None]
            if above_mask_only:
                # sin(elevation) > sin(mask): (s - g).up > sin(mask) |s - g|, squared.
                sat_sq = np.einsum("sk,sk->s", pos_m, pos_m)
                rng_sq = sat_sq[None, :] + self._gs_sq[:, None] - 2.0 * (self.gs_pos_m @ pos_m.T)
                keep = (up_dot > 0) & (up_dot * up_dot > self._sin_mask_sq[:, None] * rng_sq)
            else:
                keep = up_dot > 0
            g, sat = np.nonzero(keep)
            rows.append(isl.size + g * self.n_sat + sat)
        idx = np.concatenate(rows)
        a = self.cand.a[idx]
        b = self.cand.b[idx]
        ground = self.is_ground[idx]
        b_sat = np.where(ground, 0, b)
        pb = pos_m[b_sat]
        vb = vel_mps[b_sat]
        pb[ground] = self.gs_pos_m[b[ground] - self.n_sat]
        vb[ground] = 0.0
        sun_rows = np.broadcast_to(sun_dir.reshape(1, 3), (idx.size, 3))
        return idx, self.evaluate_rows(idx, pos_m[a], vel_mps[a], pb, vb, sun_rows)


@dataclasses.dataclass
class LinkState:
    """Candidate links at one instant: every ISL candidate and every satellite-station pair
    with the satellite above the station's horizon (arrays over those links, node indices
    ``a < b``; ``link_id`` is the stable candidate index of each row)."""

    t_ns: int
    link_id: np.ndarray
    a: np.ndarray
    b: np.ndarray
    kind_code: np.ndarray
    range_m: np.ndarray
    range_rate_mps: np.ndarray
    elevation_deg: np.ndarray
    loss: np.ndarray
    rate_bps: np.ndarray
    up: np.ndarray
    reason_code: np.ndarray
    cloud_outage_probability: np.ndarray
    node_pos_m: np.ndarray  # (n_nodes, 3) ITRS

    @property
    def delay_s(self) -> np.ndarray:
        return self.range_m / C_M_PER_S

    @property
    def kind(self) -> np.ndarray:
        return KINDS[self.kind_code]

    @property
    def reason(self) -> np.ndarray:
        return _REASON_ARRAY[self.reason_code]

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def up_links(self) -> np.ndarray:
        return np.nonzero(self.up)[0]

    def to_dict(self, scenario: Scenario, *, include_down: bool = False) -> dict:
        """The ``netemu links --json`` document."""
        names = [n.name for n in scenario.nodes]
        idx = np.arange(len(self)) if include_down else self.up_links()
        delay = self.delay_s
        links = []
        for i in idx.tolist():
            rng = float(self.range_m[i])
            finite = math.isfinite(rng)
            links.append(
                {
                    "a": names[self.a[i]],
                    "b": names[self.b[i]],
                    "kind": str(KINDS[self.kind_code[i]]),
                    "range_m": round(rng, 3) if finite else None,
                    "delay_s": float(delay[i]) if finite else None,
                    "loss": float(self.loss[i]) if finite else None,
                    "rate_bps": float(self.rate_bps[i]),
                    "up": bool(self.up[i]),
                    "reason": REASONS[self.reason_code[i]],
                }
            )
        nodes = [
            {
                "id": n.name,
                "number": n.number,
                "kind": n.kind,
                "position_m": [round(float(v), 3) for v in self.node_pos_m[n.index]],
            }
            for n in scenario.nodes
        ]
        return {
            "time": format_utc(scenario.timebase.to_utc(self.t_ns)),
            "nodes": nodes,
            "links": links,
        }


class LinkTracker:
    """Link state over successive epochs, remembering when each link became geometrically
    possible (for the acquisition rule) and which ground terminals are assigned.

    The first :meth:`step` looks back ``acquisition_s`` by sampling; later steps find the
    moment a link became possible between two epochs by linear interpolation of the visibility
    margin (epochs up to 2 s apart) or by bisection. With ``list_below_mask=False`` (the
    emulator's epoch loop) ground pairs below the elevation mask are not listed at all, which
    is faster; by default they are listed as down with reason ``below-elevation``.
    """

    LOOKBACK_SAMPLES = 8
    BISECT_TOL_NS = 10_000_000
    INTERPOLATE_MAX_NS = 2 * NS_PER_S

    def __init__(self, model: LinkModel, *, list_below_mask: bool = True):
        self.model = model
        self.list_below_mask = list_below_mask
        self.last_t_ns: int | None = None
        self.possible_since_ns = np.full(len(model), np.iinfo(np.int64).max, dtype=np.int64)
        self.geo_up = np.zeros(len(model), bool)
        self.visibility = np.full(len(model), -np.inf)
        self._acq_ns = (model.acquisition_s * NS_PER_S).astype(np.int64)
        self._up_ids = np.zeros(0, np.int64)
        self._rows = np.zeros(0, np.int64)
        self._assigned_ids = np.zeros(0, np.int64)

    def step(self, t_ns: int) -> LinkState:
        model = self.model
        t_ns = int(t_ns)
        frame = earth_frame(model.scenario.timebase, [t_ns])
        pos, vel, ok = model.orbits.propagate([t_ns], frame=frame)
        sun = sun_direction_itrs(frame)
        idx, met = model.snapshot(
            pos[:, 0, :], vel[:, 0, :], sun[0], above_mask_only=not self.list_below_mask
        )
        # Only rows of this snapshot and links up at the previous epoch are touched, so a step
        # costs O(rows), not O(all candidates).
        geo_row = met.reason_code == R_UP
        now_up = idx[geo_row]
        newly_rows = geo_row & ~self.geo_up[idx]
        prev_up = self._up_ids
        self.geo_up[prev_up] = False
        self.geo_up[now_up] = True
        never = np.iinfo(np.int64).max
        acq_ns = self._acq_ns
        if self.last_t_ns is None or t_ns <= self.last_t_ns:
            self.possible_since_ns[:] = never
            self.possible_since_ns[now_up] = self._lookback(now_up, t_ns, acq_ns)
        else:
            self.possible_since_ns[prev_up[~self.geo_up[prev_up]]] = never
            new = idx[newly_rows]
            if new.size and t_ns - self.last_t_ns <= self.INTERPOLATE_MAX_NS:
                # Epochs close together: the visibility margin is smooth, so the linear
                # crossing between the two epochs is accurate to well under a millisecond.
                v0 = self.visibility[new]
                v1 = met.visibility[newly_rows]
                with np.errstate(invalid="ignore", divide="ignore"):
                    frac = np.where(np.isfinite(v0) & (v1 > v0), -v0 / (v1 - v0), 1.0)
                span = t_ns - self.last_t_ns
                self.possible_since_ns[new] = self.last_t_ns + np.ceil(
                    np.clip(frac, 0.0, 1.0) * span
                ).astype(np.int64)
            elif new.size:
                self.possible_since_ns[new] = model.refine_change(
                    new,
                    np.full(new.size, self.last_t_ns),
                    np.full(new.size, t_ns),
                    rising=True,
                    tol_ns=self.BISECT_TOL_NS,
                )
        self.visibility[self._rows] = -np.inf
        self.visibility[idx] = met.visibility
        self._rows = idx
        self._up_ids = now_up
        reason = met.reason_code.copy()
        acquiring = (reason == R_UP) & (t_ns - self.possible_since_ns[idx] < acq_ns[idx])
        reason[acquiring] = R_ACQ
        up = reason == R_UP
        up = self._assign_terminals(idx, up, met.elevation_deg)
        reason[(reason == R_UP) & ~up] = R_TERM
        self.last_t_ns = t_ns
        node_pos = np.concatenate([pos[:, 0, :], model.gs_pos_m], axis=0)
        return LinkState(
            t_ns=t_ns,
            link_id=idx,
            a=model.cand.a[idx],
            b=model.cand.b[idx],
            kind_code=model.cand.kind_code[idx],
            range_m=met.range_m,
            range_rate_mps=met.range_rate_mps,
            elevation_deg=met.elevation_deg,
            loss=met.loss,
            rate_bps=model.rate_bps[idx],
            up=up,
            reason_code=reason,
            cloud_outage_probability=model.cloud[idx],
            node_pos_m=node_pos,
        )

    def _lookback(self, idx, t_ns, acq_ns) -> np.ndarray:
        """Earliest sampled time in [t - acquisition, t] since which each link stayed possible."""
        since = np.full(idx.size, t_ns - acq_ns[idx] - 1, dtype=np.int64)
        need = acq_ns[idx] > 0
        if not need.any():
            return since
        sel = idx[need]
        k = self.LOOKBACK_SAMPLES
        frac = np.arange(1, k + 1) / k
        rows = np.repeat(sel, k)
        times = t_ns - np.outer(acq_ns[sel], frac).reshape(-1)
        met = self.model.evaluate_pairs(rows, times)
        ok = (met.reason_code == R_UP).reshape(sel.size, k)
        # First failing sample going back in time: the link became possible after it.
        fail_any = ~ok.all(axis=1)
        first_fail = np.argmax(~ok, axis=1)
        t_fail = t_ns - acq_ns[sel] * (first_fail + 1) / k
        t_ok = t_ns - acq_ns[sel] * first_fail / k
        sub = np.where(fail_any, 0, t_ns - acq_ns[sel] - 1).astype(np.int64)
        if fail_any.any():
            sub[fail_any] = self.model.refine_change(
                sel[fail_any],
                t_fail[fail_any],
                t_ok[fail_any],
                rising=True,
                tol_ns=self.BISECT_TOL_NS,
            )
        since[need] = sub
        return since

    def _assign_terminals(self, idx, up, elevation) -> np.ndarray:
        """Grant ground links terminals: links assigned at the previous epoch keep theirs,
        then the highest elevations first, while both ends have a free terminal."""
        model = self.model
        rows = np.nonzero(up & model.is_ground[idx])[0]
        if rows.size == 0:
            self._assigned_ids = np.zeros(0, np.int64)
            return up
        links = idx[rows]
        sats = model.cand.a[links]
        stations = model.cand.b[links] - model.n_sat
        sat_load = np.bincount(sats, minlength=model.n_sat)
        gs_load = np.bincount(stations, minlength=len(model.gs_terminals))
        if np.all(sat_load <= model.sat_ground_terminals) and np.all(gs_load <= model.gs_terminals):
            granted = np.ones(rows.size, bool)  # no contention: every link gets its terminals
        else:
            gs_free = model.gs_terminals.copy()
            sat_free = model.sat_ground_terminals.copy()
            kept = np.isin(links, self._assigned_ids)
            order = np.lexsort((-elevation[rows], ~kept))
            granted = np.zeros(rows.size, bool)
            for k in order.tolist():
                s_, g_ = sats[k], stations[k]
                if sat_free[s_] > 0 and gs_free[g_] > 0:
                    sat_free[s_] -= 1
                    gs_free[g_] -= 1
                    granted[k] = True
        self._assigned_ids = links[granted]
        out = up.copy()
        out[rows[~granted]] = False
        return out


_MODEL_CACHE: dict[int, LinkModel] = {}


def link_model(scenario: Scenario) -> LinkModel:
    """A cached :class:`LinkModel` for a scenario object."""
    key = id(scenario)
    cached = _MODEL_CACHE.get(key)
    if cached is None or cached.scenario is not scenario:
        cached = LinkModel(scenario)
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = cached
    return cached


def link_state(scenario: Scenario, t_ns: int) -> LinkState:
    """Every candidate link of ``scenario`` at scenario time ``t_ns`` (ns since the epoch)."""
    return LinkTracker(link_model(scenario)).step(t_ns)
