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
    range_and_rate,
    sun_direction_itrs,
    up_vector,
)
from .orbits import Orbits
from .scenario.model import Scenario
from .timebase import NS_PER_S

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
        cand = self.cand
        rules = self.scenario.links
        m = link_idx.shape[0]
        a = cand.a[link_idx]
        b = cand.b[link_idx]
        ground = self.is_ground[link_idx]
        pa = pos_m[a, time_idx]
        va = vel_mps[a, time_idx]
        b_sat = np.where(ground, 0, b)
        pb = pos_m[b_sat, time_idx]
        vb = vel_mps[b_sat, time_idx]
        if ground.any():
            gi = b[ground] - self.n_sat
            pb[ground] = self.gs_pos_m[gi]
            vb[ground] = 0.0
        rng, rate = range_and_rate(pa, va, pb, vb)
        sun = sun_dir[time_idx]
        reason = np.zeros(m, dtype=np.int8)
        vis = np.full(m, np.inf)
        elev = np.full(m, np.nan)
        extra_db = np.zeros(m)
        isl = ~ground

        def apply(mask_rows, margin, code):
            # margin > 0 is good; record the first failing reason per row.
            nonlocal vis
            margin = np.where(np.isnan(margin), -np.inf, margin)
            vis_rows = np.minimum(vis[mask_rows], margin)
            vis[mask_rows] = vis_rows
            failed = np.zeros(m, bool)
            failed[mask_rows] = margin <= 0
            reason[(reason == 0) & failed] = code

        apply(np.ones(m, bool), np.where(np.isnan(rng), -np.inf, np.inf), R_PROP)
        if isl.any():
            clearance = earth_clearance_m(pa[isl], pb[isl]) - rules.isl.grazing_altitude_km * 1e3
            apply(isl, clearance / 1e3, R_EARTH)
            apply(isl, (rules.isl.max_range_km * 1e3 - rng[isl]) / 1e3, R_RANGE)
        if ground.any():
            gi = b[ground] - self.n_sat
            el = elevation_deg(pa[ground], self.gs_pos_m[gi], self.gs_up[gi])
            elev[ground] = el
            apply(ground, el - self.gs_min_el[gi], R_ELEV)
            extra_db[ground] = budget_mod.atmospheric_loss_db(
                rules.ground.zenith_attenuation_db, el
            )
        lat_limit = rules.isl.latitude_limit_deg
        inter = cand.inter_plane[link_idx]
        if lat_limit is not None and inter.any():
            lat = np.maximum(
                np.abs(geocentric_latitude_deg(pa[inter])),
                np.abs(geocentric_latitude_deg(pb[inter])),
            )
            apply(inter, lat_limit - lat, R_LAT)
        if rules.isl.sun_exclusion_deg > 0 and isl.any():
            d = pb[isl] - pa[isl]
            s = sun[isl]
            ang = np.minimum(angle_deg(d, s), angle_deg(-d, s))
            apply(isl, ang - rules.isl.sun_exclusion_deg, R_SUN)
        if rules.ground.sun_exclusion_deg > 0 and ground.any():
            # The station's telescope looks up at the satellite; the satellite looking down has
            # the Earth, not the Sun, behind the station.
            ang = angle_deg(pa[ground] - pb[ground], sun[ground])
            apply(ground, ang - rules.ground.sun_exclusion_deg, R_SUN)
        margin = np.empty(m)
        loss = np.empty(m)
        for mask, bud in ((isl, rules.isl.budget), (ground, rules.ground.budget)):
            if mask.any():
                margin[mask] = budget_mod.link_margin_db(bud, rng[mask], extra_db[mask])
                loss[mask] = budget_mod.frame_loss_probability(margin[mask], bud.fading_sigma_db)
        apply(np.ones(m, bool), margin, R_BUDGET)
        return Metrics(rng, rate, elev, margin, loss, vis, reason)

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
        sats = np.concatenate([a, b[~ground]])
        times = np.concatenate([t_ns, t_ns[~ground]])
        pos, vel, _ = self.orbits.propagate_pairs(sats, times)
        # Lay the states out as (n_sat, m, 3) sparse-free: row k of a satellite lives at slot k.
        n_sat = self.n_sat
        pos_full = np.zeros((n_sat, m, 3))
        vel_full = np.zeros((n_sat, m, 3))
        rows = np.concatenate([np.arange(m), np.nonzero(~ground)[0]])
        pos_full[sats, rows] = pos
        vel_full[sats, rows] = vel
        sun = sun_direction_itrs(self.scenario.timebase, t_ns)
        return self.evaluate(link_idx, np.arange(m), pos_full, vel_full, sun)


@dataclasses.dataclass
class LinkState:
    """All candidate links at one instant (arrays over links; node indices ``a < b``)."""

    t_ns: int
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
        from .timebase import format_utc

        return {
            "time": format_utc(scenario.timebase.to_utc(self.t_ns)),
            "nodes": nodes,
            "links": links,
        }


class LinkTracker:
    """Link state over successive epochs, remembering when each link became geometrically
    possible (for the acquisition rule) and which ground terminals are assigned.

    The first :meth:`step` looks back ``acquisition_s`` by sampling; later steps find the exact
    moment a link became possible between two epochs by bisection.
    """

    LOOKBACK_SAMPLES = 8
    BISECT_TOL_NS = 10_000_000

    def __init__(self, model: LinkModel):
        self.model = model
        self.last_t_ns: int | None = None
        self.possible_since_ns = np.full(len(model), np.iinfo(np.int64).max, dtype=np.int64)
        self.geo_up = np.zeros(len(model), bool)
        self.assigned = np.zeros(len(model), bool)

    def step(self, t_ns: int) -> LinkState:
        model = self.model
        t_ns = int(t_ns)
        pos, vel, ok = model.orbits.propagate([t_ns])
        sun = sun_direction_itrs(model.scenario.timebase, [t_ns])
        n = len(model)
        all_links = np.arange(n)
        met = model.evaluate(all_links, np.zeros(n, np.int64), pos, vel, sun)
        geo_up = met.reason_code == R_UP
        newly = geo_up & ~self.geo_up
        acq_ns = (model.acquisition_s * NS_PER_S).astype(np.int64)
        if self.last_t_ns is None or t_ns <= self.last_t_ns:
            self.possible_since_ns[:] = np.iinfo(np.int64).max
            self.possible_since_ns[geo_up] = self._lookback(np.nonzero(geo_up)[0], t_ns, acq_ns)
        else:
            idx = np.nonzero(newly)[0]
            if idx.size:
                self.possible_since_ns[idx] = self._rise_time(idx, self.last_t_ns, t_ns)
        self.possible_since_ns[~geo_up] = np.iinfo(np.int64).max
        reason = met.reason_code.copy()
        acquiring = geo_up & (t_ns - self.possible_since_ns < acq_ns)
        reason[acquiring] = R_ACQ
        up = reason == R_UP
        up = self._assign_terminals(up, met.elevation_deg)
        reason[(reason == R_UP) & ~up] = R_TERM
        self.geo_up = geo_up
        self.last_t_ns = t_ns
        node_pos = np.concatenate([pos[:, 0, :], model.gs_pos_m], axis=0)
        return LinkState(
            t_ns=t_ns,
            a=model.cand.a,
            b=model.cand.b,
            kind_code=model.cand.kind_code,
            range_m=met.range_m,
            range_rate_mps=met.range_rate_mps,
            elevation_deg=met.elevation_deg,
            loss=met.loss,
            rate_bps=model.rate_bps,
            up=up,
            reason_code=reason,
            cloud_outage_probability=model.cloud,
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
            sub[fail_any] = self._bisect_rise(sel[fail_any], t_fail[fail_any], t_ok[fail_any])
        since[need] = sub
        return since

    def _rise_time(self, idx, t_lo, t_hi) -> np.ndarray:
        lo = np.full(idx.size, float(t_lo))
        hi = np.full(idx.size, float(t_hi))
        return self._bisect_rise(idx, lo, hi)

    def _bisect_rise(self, idx, lo, hi) -> np.ndarray:
        lo = lo.astype(np.float64).copy()
        hi = hi.astype(np.float64).copy()
        while np.any(hi - lo > self.BISECT_TOL_NS):
            mid = 0.5 * (lo + hi)
            met = self.model.evaluate_pairs(idx, mid)
            good = met.reason_code == R_UP
            hi = np.where(good, mid, hi)
            lo = np.where(good, lo, mid)
        return np.ceil(hi).astype(np.int64)

    def _assign_terminals(self, up, elevation) -> np.ndarray:
        model = self.model
        ground_up = np.nonzero(up & model.is_ground)[0]
        if ground_up.size == 0:
            self.assigned[:] = False
            return up
        gs_free = model.gs_terminals.copy()
        sat_free = model.sat_ground_terminals.copy()
        a = model.cand.a
        b = model.cand.b - model.n_sat
        # Links already assigned keep their terminals; then the highest elevations first.
        keep_first = self.assigned[ground_up]
        order = np.lexsort((-elevation[ground_up], ~keep_first))
        granted = np.zeros(len(model), bool)
        for k in ground_up[order].tolist():
            s, g = a[k], b[k]
            if sat_free[s] > 0 and gs_free[g] > 0:
                sat_free[s] -= 1
                gs_free[g] -= 1
                granted[k] = True
        self.assigned = granted
        out = up.copy()
        out[model.is_ground] = granted[model.is_ground]
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
