"""``--isolation process`` (the default): every process of the run is a plain process of this
user and everything talks over 127.0.0.1. Nothing to create or remove, no root needed."""

from __future__ import annotations

from .base import Isolation

__all__ = ["ProcessIsolation"]


class ProcessIsolation(Isolation):
    """Plain processes on loopback (all the defaults of :class:`~.base.Isolation`)."""

    mode = "process"
