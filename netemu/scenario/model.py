"""Scenario data: frozen dataclasses, validated when built. No I/O here (see :mod:`.loader`)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from ..errors import ScenarioError
from ..timebase import TimeBase

NODE_KINDS = ("satellite", "ground")
WALKER_TYPES = ("delta", "star")
ISL_PATTERNS = ("plus-grid", "none")


@dataclasses.dataclass(frozen=True, slots=True)
class WalkerShell:
    """Walker delta (RAAN over 360 deg) or star (RAAN over 180 deg) pattern ``i: T/P/F``."""

    type: str
    planes: int
    sats_per_plane: int
    phasing: int
    altitude_km: float
    inclination_deg: float
    raan_spread_deg: float
    raan_offset_deg: float = 0.0
    eccentricity: float = 0.0
    arg_perigee_deg: float = 0.0

    @property
    def total(self) -> int:
        return self.planes * self.sats_per_plane


@dataclasses.dataclass(frozen=True, slots=True)
class TleRecord:
    name: str
    line1: str
    line2: str

    @property
    def catalog_number(self) -> str:
        return self.line1[2:7].strip()


@dataclasses.dataclass(frozen=True, slots=True)
class Constellation:
    """One shell: either ``walker`` or ``tle`` is set."""

    name: str
    walker: WalkerShell | None = None
    tle: tuple[TleRecord, ...] = ()
    tle_file: str | None = None
    isl_terminals: int = 4
    ground_terminals: int = 1
    first_node_number: int | None = None

    @property
    def size(self) -> int:
        return self.walker.total if self.walker is not None else len(self.tle)


@dataclasses.dataclass(frozen=True, slots=True)
class GroundStation:
    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_elevation_deg: float | None = None
    terminals: int = 1
    cloud_outage_probability: float = 0.0
    node_number: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class OpticalBudget:
    """Free-space optical link budget; see :mod:`netemu.budget` for the equations."""

    tx_power_w: float = 1.0
    tx_aperture_m: float = 0.08
    rx_aperture_m: float = 0.08
    wavelength_nm: float = 1550.0
    pointing_loss_db: float = 3.0
    rx_sensitivity_dbm: float = -45.0
    implementation_loss_db: float = 2.0
    fading_sigma_db: float = 1.5


@dataclasses.dataclass(frozen=True, slots=True)
class IslRules:
    pattern: str = "plus-grid"
    max_range_km: float = 5000.0
    latitude_limit_deg: float | None = None
    grazing_altitude_km: float = 80.0
    acquisition_s: float = 0.0
    sun_exclusion_deg: float = 0.0
    rate_bps: float = 1e9
    budget: OpticalBudget = OpticalBudget()


@dataclasses.dataclass(frozen=True, slots=True)
class GroundRules:
    min_elevation_deg: float = 25.0
    acquisition_s: float = 0.0
    sun_exclusion_deg: float = 0.0
    rate_bps: float = 1e9
    budget: OpticalBudget = OpticalBudget(
        tx_power_w=2.0, tx_aperture_m=0.1, rx_aperture_m=0.4, fading_sigma_db=2.0
    )
    zenith_attenuation_db: float = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class LinkRules:
    isl: IslRules = IslRules()
    ground: GroundRules = GroundRules()


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """A satellite or ground station: readable ``name`` and numeric ``number`` (ipn node)."""

    name: str
    number: int
    kind: str
    index: int
    constellation: str | None = None
    plane: int | None = None
    slot: int | None = None

    def __post_init__(self):
        if self.kind not in NODE_KINDS:
            raise ScenarioError(f"node kind must be one of {NODE_KINDS}, got {self.kind!r}")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A validated scenario. Build it with :func:`netemu.scenario.load_scenario`.

    ``nodes`` lists satellites first (constellation by constellation, plane-major), then
    ground stations; ``Node.index`` is the position in that tuple.
    """

    name: str
    epoch_utc: dt.datetime
    constellations: tuple[Constellation, ...]
    ground_stations: tuple[GroundStation, ...]
    links: LinkRules
    nodes: tuple[Node, ...]
    description: str = ""
    path: str | None = None

    def __post_init__(self):
        by_name = {}
        by_number = {}
        for node in self.nodes:
            if node.name in by_name:
                raise ScenarioError(f"duplicate node name {node.name!r}", path=self.path)
            if node.number in by_number:
                raise ScenarioError(
                    f"node number {node.number} used by both {by_number[node.number].name!r} "
                    f"and {node.name!r}",
                    path=self.path,
                )
            by_name[node.name] = node
            by_number[node.number] = node
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_number", by_number)
        object.__setattr__(self, "timebase", TimeBase(self.epoch_utc))

    @property
    def satellites(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == "satellite")

    @property
    def ground_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == "ground")

    @property
    def n_satellites(self) -> int:
        return sum(c.size for c in self.constellations)

    def node(self, key: str | int) -> Node:
        """Look a node up by name (``gs-beijing``), by number (``1001`` or ``"1001"``)."""
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            node = self._by_number.get(int(key))
            if node is None:
                raise ScenarioError(f"no node with number {key}", path=self.path)
            return node
        node = self._by_name.get(key) or self._by_name.get(f"gs-{key}")
        if node is None:
            close = [n for n in self._by_name if key in n][:5]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ScenarioError(f"no node named {key!r}{hint}", path=self.path)
        return node

    def node_numbers(self) -> dict[str, int]:
        """The exportable name -> number mapping."""
        return {n.name: n.number for n in self.nodes}

    def ground_station(self, node: Node) -> GroundStation:
        return self.ground_stations[node.index - self.n_satellites]


def walker_elements(shell: WalkerShell) -> list[tuple[int, int, float, float]]:
    """(plane, slot, raan_deg, mean_anomaly_deg) for every satellite of a Walker shell.

    Plane ``p`` has RAAN ``offset + p * spread / P``; slot ``s`` in plane ``p`` has mean anomaly
    ``s * 360 / S + p * F * 360 / T`` (Walker's phasing, T = P x S).

    >>> walker_elements(WalkerShell("delta", 2, 2, 1, 550, 53, 360))[:3]
    [(0, 0, 0.0, 0.0), (0, 1, 0.0, 180.0), (1, 0, 180.0, 90.0)]
    """
    out = []
    total = shell.total
    for p in range(shell.planes):
        raan = (shell.raan_offset_deg + p * shell.raan_spread_deg / shell.planes) % 360.0
        for s in range(shell.sats_per_plane):
            ma = (s * 360.0 / shell.sats_per_plane + p * shell.phasing * 360.0 / total) % 360.0
            out.append((p, s, raan, ma))
    return out
