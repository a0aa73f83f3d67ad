"""Where the processes of a run live: plain processes (``process``), one network namespace per
node (``netns``), or containers (``docker``). See docs/isolation.md.

:func:`make_isolation` returns the :class:`~.base.Isolation` of a mode; the launcher enters it
(creating namespaces or networks, each recorded in the run state file first), starts the broker,
the fabric and its controller inside :meth:`~.base.Isolation.services`, starts each node with
:meth:`~.base.Isolation.wrap_node_argv`, and exits it (removing everything) at the end.
"""

from __future__ import annotations

import importlib

from ...errors import NetemuError
from .base import Isolation, NodeSlot

__all__ = ["MODES", "Isolation", "NodeSlot", "isolation_class", "make_isolation"]

#: Isolation modes and the ``module:Class`` that implements each (modules load on demand).
MODES = {
    "process": "netemu.runtime.isolation.process:ProcessIsolation",
    "netns": "netemu.runtime.isolation.netns:NetnsIsolation",
    "docker": "netemu.runtime.isolation.docker:DockerIsolation",
}


def isolation_class(mode: str) -> type[Isolation]:
    """The class of an isolation mode; a :class:`NetemuError` names the modes there are."""
    spec = MODES.get(mode)
    if spec is None:
        raise NetemuError(f"isolation must be one of {', '.join(MODES)}, got {mode!r}")
    module_name, _, class_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise NetemuError(f"isolation {mode!r} is not available in this netemu") from None
        raise
    return getattr(module, class_name)


def make_isolation(mode: str, **kwargs) -> Isolation:
    """An isolation of ``mode`` for one run (keyword arguments as :class:`~.base.Isolation`)."""
    return isolation_class(mode)(**kwargs)
