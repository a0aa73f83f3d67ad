"""Candidate links: which node pairs may ever link, from the scenario's ISL pattern.

ISLs (+Grid): each satellite links to its two intra-plane neighbours and to the satellite with
the same slot in the two adjacent planes. For Walker delta the last plane wraps to the first with
the phasing shift (slot s of plane P-1 meets slot s+F of plane 0); for Walker star there is no
link across the seam, where the planes counter-rotate. With fewer than 4 ISL terminals the
inter-plane links are left out, with fewer than 2 there are no ISLs. TLE shells are grouped into
planes by right ascension of the ascending node and ordered in each plane by argument of
latitude; the planes are chained the same way, without a wrap when the RAAN gap between the last
and first plane is wider than 1.5 times the typical spacing (a star-like seam).
ISLs join satellites of the same shell only. Ground candidates: every satellite with every
station (elevation, terminals and the rest decide at each instant).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from .scenario.model import Scenario

log = logging.getLogger(__name__)

KIND_ISL = 0
KIND_GROUND = 1
KINDS = np.array(["isl", "ground"])


@dataclasses.dataclass(frozen=True)
class Candidates:
    """Candidate links as arrays: node indices ``a < b``, kind code, inter-plane flag."""

    a: np.ndarray
    b: np.ndarray
    kind_code: np.ndarray
    inter_plane: np.ndarray

    def __len__(self) -> int:
        return int(self.a.shape[0])

    @property
    def kind(self) -> np.ndarray:
        return KINDS[self.kind_code]


def _walker_isls(first: int, planes: int, spp: int, phasing: int, star: bool, terminals: int):
    pairs = []
    if terminals < 2 or spp < 2:
        return pairs
    for p in range(planes):
        for s in range(spp):
            nxt = (s + 1) % spp
            if spp == 2 and nxt < s:
                continue  # two satellites per plane: one link, not two
            pairs.append((first + p * spp + s, first + p * spp + nxt, False))
    if terminals < 4 or planes < 2:
        if planes >= 2:
            log.info("fewer than 4 ISL terminals: inter-plane links left out")
        return pairs
    for p in range(planes):
        last = p == planes - 1
        if last and (star or planes == 2):
            continue
        q = 0 if last else p + 1
        shift = phasing if last else 0
        for s in range(spp):
            pairs.append((first + p * spp + s, first + q * spp + (s + shift) % spp, True))
    return pairs


def _tle_isls(first: int, satrecs, terminals: int):
    n = len(satrecs)
    if terminals < 2 or n < 2:
        return []
    raan = np.degrees([s.nodeo for s in satrecs]) % 360.0
    arglat = np.degrees([s.argpo + s.mo for s in satrecs]) % 360.0
    order = np.argsort(raan)
    gaps = np.diff(np.concatenate([raan[order], raan[order[:1]] + 360.0]))
    # A new plane starts after a RAAN gap wider than 3 deg (TLE planes drift apart slowly).
    breaks = np.nonzero(gaps > 3.0)[0]
    if breaks.size == 0:
        planes = [order.tolist()]
    else:
        start = (breaks[-1] + 1) % n
        rolled = np.roll(order, -start)
        rolled_gaps = np.roll(gaps, -start)
        planes, current = [], []
        for idx, gap in zip(rolled.tolist(), rolled_gaps.tolist(), strict=True):
            current.append(idx)
            if gap > 3.0:
                planes.append(current)
                current = []
        if current:
            planes.append(current)
    planes = [sorted(p, key=lambda i: arglat[i]) for p in planes]
    pairs = []
    for plane in planes:
        if len(plane) < 2:
            continue
        ring = plane + [plane[0]] if len(plane) > 2 else plane
        for i, j in zip(ring, ring[1:], strict=False):
            pairs.append((first + i, first + j, False))
    if terminals < 4 or len(planes) < 2:
        return pairs
    centre = [
        float(np.degrees(np.angle(np.exp(1j * np.radians(raan[p])).mean()))) % 360 for p in planes
    ]
    spacing = np.diff(centre + [centre[0] + 360.0])
    typical = float(np.median(spacing))
    for k in range(len(planes)):
        last = k == len(planes) - 1
        if last and (spacing[-1] > 1.5 * typical or len(planes) == 2):
            continue
        here, there = planes[k], planes[(k + 1) % len(planes)]
        for i in here:
            diff = np.abs(((arglat[there] - arglat[i]) + 180.0) % 360.0 - 180.0)
            j = there[int(np.argmin(diff))]
            pairs.append((first + i, first + j, True))
    return pairs


def build_candidates(scenario: Scenario, satrecs) -> Candidates:
    rows: list[tuple[int, int, bool]] = []
    first = 0
    if scenario.links.isl.pattern != "none":
        for c in scenario.constellations:
            if c.walker is not None:
                w = c.walker
                rows += _walker_isls(
                    first, w.planes, w.sats_per_plane, w.phasing, w.type == "star", c.isl_terminals
                )
            else:
                rows += _tle_isls(first, satrecs[first : first + c.size], c.isl_terminals)
            first += c.size
    isl = np.array(
        sorted({(min(a, b), max(a, b), ip) for a, b, ip in rows if a != b}), dtype=np.int64
    )
    isl = isl.reshape(-1, 3)
    # Keep one row per pair even if a small plane produced it twice.
    _, uniq = np.unique(isl[:, :2], axis=0, return_index=True)
    isl = isl[np.sort(uniq)]
    n_sat = scenario.n_satellites
    n_gs = len(scenario.ground_stations)
    sat_idx = np.tile(np.arange(n_sat), n_gs)
    gs_idx = np.repeat(np.arange(n_sat, n_sat + n_gs), n_sat)
    a = np.concatenate([isl[:, 0], sat_idx])
    b = np.concatenate([isl[:, 1], gs_idx])
    kind = np.concatenate(
        [np.full(len(isl), KIND_ISL, np.int8), np.full(len(sat_idx), KIND_GROUND, np.int8)]
    )
    inter = np.concatenate([isl[:, 2].astype(bool), np.zeros(len(sat_idx), bool)])
    return Candidates(a=a, b=b, kind_code=kind, inter_plane=inter)
