"""Read and validate scenario YAML (topologies/*.yaml) into :class:`~.model.Scenario`.

Every problem raises :class:`~netemu.errors.ScenarioError` naming the file, the key path
(``constellations[0].walker.planes``) and what was expected. Unknown keys are errors too, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from ..errors import NetemuError, ScenarioError
from ..timebase import parse_utc
from .model import (
    ISL_PATTERNS,
    WALKER_TYPES,
    Constellation,
    GroundRules,
    GroundStation,
    IslRules,
    LinkRules,
    Node,
    OpticalBudget,
    Scenario,
    WalkerShell,
)
from .tle import read_tle_file

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_MISSING = object()


class _Reader:
    """Typed access to one YAML mapping with key-path aware errors."""

    def __init__(self, data, path: str, key: str):
        self.path = path
        self.key = key
        if not isinstance(data, dict):
            raise ScenarioError(
                f"expected a mapping, got {_describe(data)}", path=path, key=key or None
            )
        self.data = data
        self.used: set[str] = set()

    def sub(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, name: str | None, message: str):
        raise ScenarioError(message, path=self.path, key=self.sub(name) if name else self.key)

    def raw(self, name: str, default=_MISSING):
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            if default is _MISSING:
                self.fail(name, "missing required key")
            return default
        return self.data[name]

    def number(self, name, default=_MISSING, *, min=None, max=None, integer=False, gt=None):
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        what = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    value = float(value) if not integer else int(value)
                except ValueError:
                    self.fail(name, f"expected {what}, got {_describe(value)}")
            else:
                self.fail(name, f"expected {what}, got {_describe(value)}")
        if integer and (isinstance(value, float) and not value.is_integer()):
            self.fail(name, f"expected an integer, got {value!r}")
        if not math.isfinite(value):
            self.fail(name, f"expected a finite number, got {value!r}")
        if min is not None and value < min:
            self.fail(name, f"expected a value >= {min}, got {value!r}")
        if gt is not None and value <= gt:
            self.fail(name, f"expected a value > {gt}, got {value!r}")
        if max is not None and value > max:
            self.fail(name, f"expected a value <= {max}, got {value!r}")
        return int(value) if integer else float(value)

    def string(self, name, default=_MISSING, *, choices=None, pattern=None):
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            self.fail(name, f"expected a string, got {_describe(value)}")
        if choices is not None and value not in choices:
            self.fail(name, f"expected one of {', '.join(choices)}, got {value!r}")
        if pattern is not None and not pattern.match(value):
            self.fail(
                name,
                f"expected lowercase letters, digits and dashes (e.g. 'iridium'), got {value!r}",
            )
        return value

    def finish(self):
        unknown = sorted(set(map(str, self.data)) - self.used)
        if unknown:
            allowed = ", ".join(sorted(self.used))
            self.fail(unknown[0], f"unknown key; expected one of: {allowed}")


def _describe(value) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]


def _load_yaml(path: Path, key: str | None = None):
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"cannot read file: {exc.strerror}", path=str(path), key=key) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"invalid YAML{where}: {problem}", path=str(path)) from None


def _budget(r: _Reader, name: str, default: OpticalBudget) -> OpticalBudget:
    raw = r.raw(name, None)
    if raw is None:
        return default
    b = _Reader(raw, r.path, r.sub(name))
    d = default
    out = OpticalBudget(
        tx_power_w=b.number("tx_power_w", d.tx_power_w, gt=0),
        tx_aperture_m=b.number("tx_aperture_m", d.tx_aperture_m, gt=0),
        rx_aperture_m=b.number("rx_aperture_m", d.rx_aperture_m, gt=0),
        wavelength_nm=b.number("wavelength_nm", d.wavelength_nm, gt=0),
        pointing_loss_db=b.number("pointing_loss_db", d.pointing_loss_db, min=0),
        rx_sensitivity_dbm=b.number("rx_sensitivity_dbm", d.rx_sensitivity_dbm),
        implementation_loss_db=b.number("implementation_loss_db", d.implementation_loss_db, min=0),
        fading_sigma_db=b.number("fading_sigma_db", d.fading_sigma_db, gt=0),
    )
    b.finish()
    return out


def _links(raw, path: str) -> LinkRules:
    r = _Reader(raw if raw is not None else {}, path, "links")
    isl_raw = r.raw("isl", {})
    i = _Reader(isl_raw, path, "links.isl")
    d = IslRules()
    lat = i.number("latitude_limit_deg", None, min=0, max=90)
    isl = IslRules(
        pattern=i.string("pattern", d.pattern, choices=ISL_PATTERNS),
        max_range_km=i.number("max_range_km", d.max_range_km, gt=0),
        latitude_limit_deg=lat,
        grazing_altitude_km=i.number("grazing_altitude_km", d.grazing_altitude_km, min=0),
        acquisition_s=i.number("acquisition_s", d.acquisition_s, min=0),
        sun_exclusion_deg=i.number("sun_exclusion_deg", d.sun_exclusion_deg, min=0, max=90),
        rate_bps=i.number("rate_bps", d.rate_bps, gt=0),
        budget=_budget(i, "budget", d.budget),
    )
    i.finish()
    g = _Reader(r.raw("ground", {}), path, "links.ground")
    dg = GroundRules()
    atm = g.raw("atmosphere", None)
    zenith = dg.zenith_attenuation_db
    if atm is not None:
        a = _Reader(atm, path, "links.ground.atmosphere")
        zenith = a.number("zenith_attenuation_db", zenith, min=0)
        a.finish()
    ground = GroundRules(
        min_elevation_deg=g.number("min_elevation_deg", dg.min_elevation_deg, min=0, max=90),
        acquisition_s=g.number("acquisition_s", dg.acquisition_s, min=0),
        sun_exclusion_deg=g.number("sun_exclusion_deg", dg.sun_exclusion_deg, min=0, max=90),
        rate_bps=g.number("rate_bps", dg.rate_bps, gt=0),
        budget=_budget(g, "budget", dg.budget),
        zenith_attenuation_db=zenith,
    )
    g.finish()
    r.finish()
    return LinkRules(isl=isl, ground=ground)


def _walker(raw, path: str, key: str) -> WalkerShell:
    w = _Reader(raw, path, key)
    wtype = w.string("type", "delta", choices=WALKER_TYPES)
    planes = w.number("planes", integer=True, min=1)
    spp = w.number("sats_per_plane", integer=True, min=1)
    phasing = w.number("phasing", 0, integer=True, min=0)
    if phasing > max(planes - 1, 0):
        w.fail("phasing", f"expected Walker F in 0..{planes - 1} (planes - 1), got {phasing}")
    shell = WalkerShell(
        type=wtype,
        planes=planes,
        sats_per_plane=spp,
        phasing=phasing,
        altitude_km=w.number("altitude_km", gt=100, max=100_000),
        inclination_deg=w.number("inclination_deg", min=0, max=180),
        raan_spread_deg=w.number(
            "raan_spread_deg", 360.0 if wtype == "delta" else 180.0, gt=0, max=360
        ),
        raan_offset_deg=w.number("raan_offset_deg", 0.0),
        eccentricity=w.number("eccentricity", 0.0, min=0, max=0.9),
        arg_perigee_deg=w.number("arg_perigee_deg", 0.0),
    )
    w.finish()
    return shell


def _constellation(raw, path: Path, index: int) -> Constellation:
    key = f"constellations[{index}]"
    c = _Reader(raw, str(path), key)
    name = c.string("name", pattern=_NAME_RE)
    walker_raw = c.raw("walker", None)
    tle_file = c.raw("tle_file", None)
    if (walker_raw is None) == (tle_file is None):
        c.fail(None, "expected exactly one of 'walker' or 'tle_file'")
    walker = None
    tle = ()
    if walker_raw is not None:
        walker = _walker(walker_raw, str(path), c.sub("walker"))
    else:
        if not isinstance(tle_file, str):
            c.fail("tle_file", f"expected a path string, got {_describe(tle_file)}")
        tle = read_tle_file(path.parent / tle_file, scenario_path=str(path), key=c.sub("tle_file"))
    out = Constellation(
        name=name,
        walker=walker,
        tle=tle,
        tle_file=tle_file,
        isl_terminals=c.number("isl_terminals", 4, integer=True, min=0),
        ground_terminals=c.number("ground_terminals", 1, integer=True, min=0),
        first_node_number=c.number("first_node_number", None, integer=True, min=0),
    )
    c.finish()
    return out


def _station(raw, path: str, key: str) -> GroundStation:
    s = _Reader(raw, path, key)
    st = GroundStation(
        name=s.string("name", pattern=_NAME_RE),
        lat_deg=s.number("lat_deg", min=-90, max=90),
        lon_deg=s.number("lon_deg", min=-180, max=360),
        alt_m=s.number("alt_m", 0.0, min=-500, max=10_000),
        min_elevation_deg=s.number("min_elevation_deg", None, min=0, max=90),
        terminals=s.number("terminals", 1, integer=True, min=0),
        cloud_outage_probability=s.number("cloud_outage_probability", 0.0, min=0, max=1),
        node_number=s.number("node_number", None, integer=True, min=0),
    )
    s.finish()
    return st


def _stations(raw, path: Path, key: str, seen: tuple[Path, ...] = ()) -> list[GroundStation]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ScenarioError(f"expected a list, got {_describe(raw)}", path=str(path), key=key)
    out: list[GroundStation] = []
    for i, item in enumerate(raw):
        item_key = f"{key}[{i}]"
        if isinstance(item, dict) and "include" in item:
            inc = _Reader(item, str(path), item_key)
            rel = inc.string("include")
            inc.finish()
            target = (path.parent / rel).resolve()
            if target in seen:
                raise ScenarioError("include cycle", path=str(path), key=f"{item_key}.include")
            data = _load_yaml(target, key=f"{item_key}.include")
            r = _Reader(data, str(target), "")
            out.extend(
                _stations(r.raw("ground_stations"), target, "ground_stations", (*seen, target))
            )
            r.finish()
        else:
            out.append(_station(item, str(path), item_key))
    return out


def _number_nodes(constellations, stations, numbering: dict) -> tuple[Node, ...]:
    nodes: list[Node] = []
    number = 1
    for c in constellations:
        if c.first_node_number is not None:
            number = c.first_node_number
        if c.walker is not None:
            sp = c.walker.sats_per_plane
            width = max(2, len(str(c.walker.planes)), len(str(sp)))
            for k in range(c.walker.total):
                p, s = divmod(k, sp)
                nodes.append(
                    Node(
                        name=f"{c.name}-p{p + 1:0{width}d}-s{s + 1:0{width}d}",
                        number=number,
                        kind="satellite",
                        index=len(nodes),
                        constellation=c.name,
                        plane=p,
                        slot=s,
                    )
                )
                number += 1
        else:
            for rec in c.tle:
                nodes.append(
                    Node(
                        name=f"{c.name}-{_tle_slug(rec)}",
                        number=number,
                        kind="satellite",
                        index=len(nodes),
                        constellation=c.name,
                    )
                )
                number += 1
    n_sat_numbers = max((n.number for n in nodes), default=0)
    ground_first = numbering.get("ground_first")
    if ground_first is None:
        ground_first = (n_sat_numbers // 1000 + 1) * 1000 + 1
    number = ground_first
    for st in stations:
        if st.node_number is not None:
            number = st.node_number
        nodes.append(Node(name=f"gs-{st.name}", number=number, kind="ground", index=len(nodes)))
        number += 1
    return tuple(nodes)


def _tle_slug(rec) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", rec.name.lower()).strip("-")
    return slug or rec.catalog_number


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario YAML file.

    >>> sc = load_scenario("topologies/iridium-next.yaml")  # doctest: +SKIP
    >>> sc.node("gs-svalbard").number  # doctest: +SKIP
    1001
    """
    p = Path(path)
    data = _load_yaml(p)
    return scenario_from_dict(data, path=p)


def scenario_from_dict(data, *, path: str | Path = "<scenario>") -> Scenario:
    p = Path(path)
    spath = str(path)
    r = _Reader(data, spath, "")
    name = r.string("name", p.stem)
    description = r.string("description", "")
    epoch_raw = r.raw("epoch")
    try:
        epoch = parse_utc(epoch_raw)
    except NetemuError:
        r.fail("epoch", f"expected ISO 8601 UTC such as 2026-01-01T00:00:00Z, got {epoch_raw!r}")
    cons_raw = r.raw("constellations")
    if not isinstance(cons_raw, list) or not cons_raw:
        r.fail("constellations", f"expected a non-empty list, got {_describe(cons_raw)}")
    constellations = tuple(_constellation(c, p, i) for i, c in enumerate(cons_raw))
    seen_names: set[str] = set()
    for i, c in enumerate(constellations):
        if c.name in seen_names:
            r.fail(f"constellations[{i}].name", f"duplicate constellation name {c.name!r}")
        seen_names.add(c.name)
    stations = tuple(_stations(r.raw("ground_stations", []), p, "ground_stations"))
    links = _links(r.raw("links", {}), spath)
    numbering_raw = r.raw("numbering", {})
    nr = _Reader(numbering_raw, spath, "numbering")
    numbering = {"ground_first": nr.number("ground_first", None, integer=True, min=0)}
    nr.finish()
    r.finish()
    nodes = _number_nodes(constellations, stations, numbering)
    return Scenario(
        name=name,
        epoch_utc=epoch,
        constellations=constellations,
        ground_stations=stations,
        links=links,
        nodes=nodes,
        description=description,
        path=spath,
    )
