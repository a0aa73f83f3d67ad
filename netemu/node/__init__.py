"""The node: a sans-IO SGP router core (:class:`NodeCore`) and the actions it returns.

See docs/node.md for the API, the processing order and what a host process must do.
"""

from __future__ import annotations

from .actions import Action, Deliver, Drop, NodeDropReason, Originated, Transmit
from .config import DEFAULT_LINK_MTU, NodeConfig
from .core import NeighbourInfo, NodeCore, NodeCounters

__all__ = [
    "Action",
    "DEFAULT_LINK_MTU",
    "Deliver",
    "Drop",
    "NeighbourInfo",
    "NodeConfig",
    "NodeCore",
    "NodeCounters",
    "NodeDropReason",
    "Originated",
    "Transmit",
]
