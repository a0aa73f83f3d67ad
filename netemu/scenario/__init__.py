"""Scenarios: constellations, ground stations and link rules as validated data."""

from .loader import load_scenario, scenario_from_dict
from .model import (
    Constellation,
    GroundRules,
    GroundStation,
    IslRules,
    LinkRules,
    Node,
    OpticalBudget,
    Scenario,
    TleRecord,
    WalkerShell,
    walker_elements,
)
from .tle import parse_tle_text, tle_checksum

__all__ = [
    "Constellation",
    "GroundRules",
    "GroundStation",
    "IslRules",
    "LinkRules",
    "Node",
    "OpticalBudget",
    "Scenario",
    "TleRecord",
    "WalkerShell",
    "load_scenario",
    "parse_tle_text",
    "scenario_from_dict",
    "tle_checksum",
    "walker_elements",
]
