"""The routing-scheme interface: a network view for one epoch in, forwarding tables out.

A routing scheme is a class with one required method::

    class MyScheme(RoutingScheme):
        name = "mine"

        def compute(self, view: NetworkView, *, sources=None) -> RoutingTables:
            ...

``view`` carries everything a scheme may use for the epoch starting at ``view.t_ns``:

* ``view.plan``: the contact plan over the routing horizon (a
  :class:`~netemu.contacts.ContactPlan` whose times are on the view's time base), for
  contact-based schemes such as CGR;
* ``view.topology()``: the links that are up now (a :class:`Topology` in node numbers, with
  one-way delays), for snapshot schemes. It comes from the current link state when the view has
  one, otherwise from the plan's contacts that are active at ``t_ns``;
* ``view.nodes`` (node numbers, the row/column order of the tables), ``view.node_names`` and
  ``view.epoch_ns`` (how long the controller will use these tables before the next epoch).

The scheme returns :class:`~netemu.routing.tables.RoutingTables` (per-node forwarding tables).
Schemes are loaded by name (``cgr``, ``snapshot``, ``minhop``), as ``module:Class`` or
``path/to/file.py:Class``, or from the ``netemu.routing`` entry-point group; see
:func:`netemu.routing.plugins.load_scheme` and docs/routing.md.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..contacts.model import ContactPlan
from ..timebase import NS_PER_S
from .tables import RoutingTables


@dataclasses.dataclass(frozen=True, eq=False)
class Topology:
    """The links that are up at one instant, in node numbers.

    ``a``/``b`` are node numbers, ``delay_ns`` the one-way delay and ``rate_bps`` the rate of
    each link. With ``directed=False`` every link works both ways (as the link state's
    undirected candidate links do); with ``directed=True`` a row is ``a -> b`` only (as contacts
    are).
    """

    a: np.ndarray
    b: np.ndarray
    delay_ns: np.ndarray
    rate_bps: np.ndarray
    directed: bool = False

    def __post_init__(self):
        n = np.asarray(self.a).shape[0]
        for name, dtype in (("a", np.int64), ("b", np.int64), ("delay_ns", np.int64)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype).reshape(-1))
        rate = np.asarray(self.rate_bps, dtype=np.float64).reshape(-1)
        if rate.shape[0] == 0 and n:
            rate = np.zeros(n)
        object.__setattr__(self, "rate_bps", rate)
        for name in ("b", "delay_ns", "rate_bps"):
            if getattr(self, name).shape[0] != n:
                rows = getattr(self, name).shape[0]
                raise ValueError(f"Topology.{name} has {rows} rows, not {n}")

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def directed_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(from, to, delay_ns) with both directions of undirected links, loopbacks removed."""
        keep = self.a != self.b
        a, b, d = self.a[keep], self.b[keep], self.delay_ns[keep]
        if self.directed:
            return a, b, d
        return np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([d, d])

    @classmethod
    def from_plan(cls, plan: ContactPlan, t_ns: int) -> Topology:
        """Contacts active at ``t_ns`` (start <= t < end) as directed links (delay = OWLT)."""
        on = (plan.start_ns <= t_ns) & (plan.end_ns > t_ns)
        return cls(
            a=plan.from_node[on],
            b=plan.to_node[on],
            delay_ns=plan.owlt_ns[on],
            rate_bps=plan.rate_bps[on],
            directed=True,
        )

    @classmethod
    def from_link_state(cls, state: Any, node_numbers: Sequence[int]) -> Topology:
        """The up links of a :mod:`netemu.links` link state (``a``/``b`` are node indices)."""
        numbers = np.asarray(node_numbers, dtype=np.int64)
        up = np.asarray(state.up, dtype=bool)
        delay_s = np.asarray(state.delay_s, dtype=np.float64)[up]
        return cls(
            a=numbers[np.asarray(state.a)[up]],
            b=numbers[np.asarray(state.b)[up]],
            delay_ns=np.rint(delay_s * NS_PER_S).astype(np.int64),
            rate_bps=np.asarray(state.rate_bps, dtype=np.float64)[up],
            directed=False,
        )


@dataclasses.dataclass(frozen=True, eq=False)
class NetworkView:
    """What a routing scheme sees for one epoch.

    ``t_ns`` is the epoch start; ``plan`` (contacts over the horizon) and ``links`` (the current
    topology) are on the same time base. Either may be ``None`` when a scheme does not need it;
    :meth:`topology` falls back to the plan's active contacts.
    """

    t_ns: int
    nodes: tuple[int, ...]
    plan: ContactPlan | None = None
    links: Topology | None = None
    node_names: Mapping[int, str] = dataclasses.field(default_factory=dict)
    epoch_ns: int = NS_PER_S

    def __post_init__(self):
        nodes = tuple(int(n) for n in self.nodes)
        if len(set(nodes)) != len(nodes):
            raise ValueError("NetworkView.nodes must be unique node numbers")
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "t_ns", int(self.t_ns))
        object.__setattr__(self, "node_names", dict(self.node_names))

    @classmethod
    def from_plan(cls, plan: ContactPlan, t_ns: int, **kwargs) -> NetworkView:
        """A view over a contact plan alone (nodes: every node that appears in it)."""
        kwargs.setdefault("node_names", plan.node_names)
        nodes = kwargs.pop("nodes", None) or plan.nodes()
        return cls(t_ns=t_ns, nodes=tuple(nodes), plan=plan, **kwargs)

    def topology(self) -> Topology:
        if self.links is not None:
            return self.links
        if self.plan is not None:
            return Topology.from_plan(self.plan, self.t_ns)
        raise ValueError("this network view has neither link state nor a contact plan")

    def name(self, node: int) -> str:
        return self.node_names.get(int(node), str(node))


def shift_plan(plan: ContactPlan, offset_ns: int) -> ContactPlan:
    """The same contacts with every time moved by ``offset_ns`` (to change the time base)."""
    cols = plan.columns()
    cols["start_ns"] = cols["start_ns"] + int(offset_ns)
    cols["end_ns"] = cols["end_ns"] + int(offset_ns)
    return ContactPlan(**cols, reference_utc=plan.reference_utc, node_names=plan.node_names)


def scenario_view(
    scenario: Any,
    t_ns: int,
    *,
    plan: bool = True,
    links: bool = True,
    horizon_s: float = 3600.0,
    epoch_s: float = 1.0,
    progress: bool = False,
) -> NetworkView:
    """The network view of a :class:`~netemu.scenario.Scenario` at scenario time ``t_ns``.

    ``links``: the current link state (:func:`netemu.links.link_state`) as the topology;
    ``plan``: the contact plan over ``[t, t + horizon_s]``
    (:func:`netemu.contacts.finder.generate_plan`), moved onto scenario time so that
    ``view.plan`` and ``view.t_ns`` share a time base. Pass a scheme's ``uses_plan`` /
    ``uses_links`` to build only what it needs.
    """
    numbers = [n.number for n in scenario.nodes]
    names = {n.number: n.name for n in scenario.nodes}
    topology = None
    contact_plan = None
    if links:
        from ..links import link_state

        topology = Topology.from_link_state(link_state(scenario, t_ns), numbers)
    if plan:
        from ..contacts.finder import generate_plan

        start_utc = scenario.timebase.to_utc(t_ns)
        generated = generate_plan(
            scenario, start_utc=start_utc, duration_s=horizon_s, progress=progress
        )
        contact_plan = shift_plan(generated, t_ns)
    return NetworkView(
        t_ns=t_ns,
        nodes=tuple(numbers),
        plan=contact_plan,
        links=topology,
        node_names=names,
        epoch_ns=int(round(epoch_s * NS_PER_S)),
    )


class RoutingScheme(abc.ABC):
    """Base class of routing schemes (built-in and plug-in).

    Subclasses set ``name`` and implement :meth:`compute`. ``uses_plan`` / ``uses_links`` tell
    the caller which parts of the :class:`NetworkView` to build (a contact plan is expensive to
    generate for a large constellation). Options come in as keyword arguments to ``__init__``.
    A scheme object lives across epochs, so it may keep caches; it must give the same tables
    for the same view.
    """

    name: ClassVar[str] = ""
    uses_plan: ClassVar[bool] = False
    uses_links: ClassVar[bool] = True

    def __init__(self, **options):
        if options:
            raise TypeError(f"{type(self).__name__} takes no options, got {sorted(options)}")

    @abc.abstractmethod
    def compute(self, view: NetworkView, *, sources: Sequence[int] | None = None) -> RoutingTables:
        """Forwarding tables of ``sources`` (default: every node in ``view.nodes``).

        Rows of nodes outside ``sources`` have no routes.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


__all__ = ["NetworkView", "RoutingScheme", "Topology", "scenario_view", "shift_plan"]
