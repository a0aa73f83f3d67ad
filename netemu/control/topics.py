"""The MQTT topic tree of a run (documented in docs/control.md).

Every topic starts with ``netemu/<run_id>/``. Payloads are UTF-8 JSON objects.

================================  ========  ==================================================
topic                             retained  payload
================================  ========  ==================================================
run                               yes       run description and state (``starting``,
                                            ``running``, ``stopping``, ``stopped``) with
                                            ``t0_mono_ns``, ``epoch_utc``, ``epoch_ns``,
                                            ``duration_ns``
links                             yes       the link table for the epoch starting at ``t_ns``
                                            (``LinkTable.to_dict()`` plus ``epoch``); applied by
                                            the fabric at ``t_ns``
faults                            yes       link faults in force (``LinkOverrides.to_dict()``:
                                            ``cut``, ``loss``, ``partitions``); the fabric
                                            applies them at once (docs/faults.md)
epoch                             no        ``{epoch, t_ns, links_up, route_changes,
                                            nodes_alive, compute_ms}`` when an epoch starts
node/<number>/table               yes       ``{epoch, valid_from_ns, table}`` with
                                            ``table = ForwardingTable.to_dict()``; a node
                                            installs it at ``valid_from_ns``
node/<number>/status              yes       ``{state, pid, name, number, app_port}``;
                                            the MQTT last will sets ``{"state": "offline"}``
node/<number>/telemetry           no        ``NodeCore.stats()`` plus host counters, every second
node/<number>/cmd                 no        ``{id, op, ...}``: ``ping``, ``trace``, ``send``
node/<number>/reply/<id>          no        the answer to command ``id``
fabric/status                     yes       ``{state, pid, udp_host, udp_port}``; last will
                                            ``{"state": "offline"}``
fabric/telemetry                  no        ``{t_ns, balance, fidelity, in_flight}`` every second
controller/status                 yes       ``{state, pid}``; last will ``{"state": "offline"}``
control/cmd                       no        ``{id, op}`` to the controller: ``stop``
control/reply/<id>                no        the controller's answer
================================  ========  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROOT", "Topics"]

ROOT = "netemu"


@dataclass(frozen=True)
class Topics:
    """Topic names for run ``run_id``.

    >>> Topics("r1").node_table(7)
    'netemu/r1/node/7/table'
    """

    run_id: str

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.run_id}"

    @property
    def all(self) -> str:
        return f"{self.prefix}/#"

    @property
    def run(self) -> str:
        return f"{self.prefix}/run"

    @property
    def links(self) -> str:
        return f"{self.prefix}/links"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}/epoch"

    @property
    def faults(self) -> str:
        return f"{self.prefix}/faults"

    def node_table(self, number: int) -> str:
        return f"{self.prefix}/node/{number}/table"

    def node_status(self, number: int | str) -> str:
        return f"{self.prefix}/node/{number}/status"

    def node_telemetry(self, number: int | str) -> str:
        return f"{self.prefix}/node/{number}/telemetry"

    def node_cmd(self, number: int) -> str:
        return f"{self.prefix}/node/{number}/cmd"

    def node_reply(self, number: int | str, request_id: str) -> str:
        return f"{self.prefix}/node/{number}/reply/{request_id}"

    @property
    def fabric_status(self) -> str:
        return f"{self.prefix}/fabric/status"

    @property
    def fabric_telemetry(self) -> str:
        return f"{self.prefix}/fabric/telemetry"

    @property
    def controller_status(self) -> str:
        return f"{self.prefix}/controller/status"

    @property
    def control_cmd(self) -> str:
        return f"{self.prefix}/control/cmd"

    def control_reply(self, request_id: str) -> str:
        return f"{self.prefix}/control/reply/{request_id}"

    def parse_node_topic(self, topic: str) -> tuple[int, str] | None:
        """``(number, leaf)`` for ``.../node/<number>/<leaf...>``; ``None`` otherwise."""
        head = f"{self.prefix}/node/"
        if not topic.startswith(head):
            return None
        number, _, leaf = topic[len(head) :].partition("/")
        if not number.isdigit():
            return None
        return int(number), leaf
