"""The interface every isolation mode implements (docs/isolation.md).

An :class:`Isolation` owns the resources of one run that keep its processes apart
(namespaces, veths, containers, networks). It is a context manager: entering creates them
(recording each in the :class:`~netemu.runtime.state.RunState` before creating it), exiting
removes them, whatever happened in between. Between the two the launcher asks it

* where the broker and the fabric bind (:attr:`bind_host`) and where nodes reach them
  (:attr:`service_host`);
* to run the broker, the fabric and the controller where nodes can reach them
  (:meth:`services`, a context manager entered around their start and the whole run);
* how to start a node (:meth:`wrap_node_argv`) and which address its application port binds
  (:meth:`node_app_host`);
* what to put in ``run.json`` (:meth:`describe`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from ...errors import NetemuError
from ..state import RunState

__all__ = ["Isolation", "NodeSlot"]


@dataclass(frozen=True)
class NodeSlot:
    """One node of the run as an isolation sees it: scenario ``name``, SGP ``number`` and its
    ``index`` in the scenario's node list (0-based)."""

    name: str
    number: int
    index: int


class Isolation:
    """Base class (and the interface) of the isolation modes. Subclasses set :attr:`mode` and
    override what differs; the defaults are those of plain processes on loopback."""

    mode: ClassVar[str] = "?"
    #: Whether ``--broker URL`` (a broker outside the run) can be used with this mode.
    external_broker_ok: ClassVar[bool] = True

    def __init__(
        self,
        *,
        run_id: str,
        nodes: Sequence[NodeSlot] = (),
        state: RunState | None = None,
    ):
        self.run_id = run_id
        self.nodes = list(nodes)
        self.state = state
        self._entered = False

    # -- what must hold before anything is created

    def check(self) -> None:
        """Raise a :class:`NetemuError` saying what is missing (root, a tool, a daemon) when
        this mode cannot run here. Called by :meth:`__enter__` before anything is created."""

    def check_broker_url(self, url: str | None) -> None:
        """Raise when nodes of this mode could not reach an external broker at ``url``."""
        if url and not self.external_broker_ok:
            raise NetemuError(
                f"--broker {url} cannot be used with --isolation {self.mode}: the nodes could "
                f"not reach it; leave out --broker (the run starts its own broker)"
            )

    # -- lifetime

    def setup(self) -> None:
        """Create the resources (record each in :attr:`state` first)."""

    def teardown(self) -> None:
        """Remove every resource this isolation created; safe to call more than once and
        after a partial :meth:`setup`."""

    def __enter__(self) -> Isolation:
        self.check()
        self._entered = True
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._entered:
            self._entered = False
            self.teardown()

    # -- addresses and starting processes

    @property
    def bind_host(self) -> str:
        """The address the broker and the fabric bind to (the launcher's controller reaches
        the broker there too)."""
        return "127.0.0.1"

    @property
    def service_host(self) -> str:
        """The address nodes use to reach the broker and the fabric."""
        return self.bind_host

    def node_app_host(self, node: NodeSlot) -> str:
        """The address node ``node`` binds its application port to."""
        return "127.0.0.1"

    @contextlib.contextmanager
    def services(self) -> Iterator[None]:
        """Entered by the launcher while it starts the broker and the fabric and runs the
        controller (children started inside inherit where it runs)."""
        yield

    def wrap_node_argv(self, node: NodeSlot, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` (the node's process) inside its isolation."""
        return list(argv)

    def describe(self) -> dict:
        """What ``run.json`` says about the isolation (``{"mode": ..., ...}``)."""
        return {"mode": self.mode}

    def describe_node(self, node: NodeSlot) -> dict:
        """Extra ``run.json`` keys of one node (e.g. its namespace and address)."""
        return {}
