"""Virtual-time simulation (``netemu simulate``): the node and fabric cores of a live run,
driven by one discrete-event loop in one process, as fast as the machine allows.

See docs/sim.md. :func:`simulate` has the options and outputs of ``netemu run``;
:class:`Simulation` is the engine.
"""

from __future__ import annotations

from .engine import Simulation
from .run import simulate

__all__ = ["Simulation", "simulate"]
