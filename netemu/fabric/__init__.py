"""The link fabric: the sans-IO link engine shared by the real-time host and the simulator.

See docs/fabric.md. :class:`LinkTable` is what the fabric is told per epoch, :class:`Fabric` the
engine (``update`` / ``send`` / ``poll`` / ``next_deadline`` / ``balance``), :class:`Outcome` what
happened to a frame, :class:`FabricDrop` why it was dropped, :class:`FidelityRecorder` the
delivery-time self-check.
"""

from __future__ import annotations

from .core import Balance, Fabric, FabricConfig, FrameStatus, LinkCounters, Outcome
from .fidelity import FidelityRecorder, FidelityReport
from .reasons import FabricDrop
from .table import LINK_TABLE_VERSION, LinkTable

__all__ = [
    "Balance",
    "Fabric",
    "FabricConfig",
    "FabricDrop",
    "FidelityRecorder",
    "FidelityReport",
    "FrameStatus",
    "LINK_TABLE_VERSION",
    "LinkCounters",
    "LinkTable",
    "Outcome",
]
