"""Helpers shared by tests (importable as ``support``; tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOPOLOGIES = REPO / "topologies"


def small_walker_dict(**overrides) -> dict:
    """A 6 x 11 Walker star (Iridium-like) with three ground stations."""
    data = {
        "name": "small",
        "epoch": "2026-01-01T00:00:00Z",
        "constellations": [
            {
                "name": "iridium",
                "walker": {
                    "type": "star",
                    "planes": 6,
                    "sats_per_plane": 11,
                    "phasing": 2,
                    "altitude_km": 780,
                    "inclination_deg": 86.4,
                },
            }
        ],
        "ground_stations": [
            {"name": "svalbard", "lat_deg": 78.23, "lon_deg": 15.39, "alt_m": 500},
            {"name": "beijing", "lat_deg": 39.9, "lon_deg": 116.4, "alt_m": 50},
            {"name": "santiago", "lat_deg": -33.45, "lon_deg": -70.67, "alt_m": 570},
        ],
        "links": {
            "isl": {"max_range_km": 5000, "latitude_limit_deg": 70},
            "ground": {"min_elevation_deg": 20},
        },
    }
    data.update(overrides)
    return data
