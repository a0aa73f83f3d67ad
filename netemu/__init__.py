"""netemu: an emulator for inter-satellite laser networks.

The public API is re-exported here; see docs/ for the user guide.
"""

from __future__ import annotations

from .errors import ContactPlanError, NetemuError, NoRouteError, ProtocolError, ScenarioError
from .timebase import NS_PER_S, TimeBase, parse_duration_s, parse_utc

__version__ = "0.1.0"

__all__ = sorted(
    [
        "NS_PER_S",
        "ContactPlanError",
        "NetemuError",
        "NoRouteError",
        "ProtocolError",
        "ScenarioError",
        "TimeBase",
        "parse_duration_s",
        "parse_utc",
    ]
)
