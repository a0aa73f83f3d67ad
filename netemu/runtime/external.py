"""External nodes (``netemu run --external NODE=COMMAND``): a program that is not netemu's node
takes one node's place and speaks SGP to the fabric (docs/external.md).

This module turns the ``NODE=COMMAND`` text into an :class:`ExternalNode` (NODE by scenario
name or number; COMMAND split like a shell does, with :mod:`shlex`) and builds the argv and
environment the launcher starts it with: ``{placeholders}`` in the command are replaced by the
node's values, and the same values are given as ``NETEMU_*`` environment variables.

>>> spec = parse_external_spec("gs-x=./my-node --id {number} --fabric {fabric_host}:{fabric_port}")
>>> spec.node, spec.argv
('gs-x', ('./my-node', '--id', '{number}', '--fabric', '{fabric_host}:{fabric_port}'))
>>> substitute(spec.argv, {"number": 7, "fabric_host": "127.0.0.1", "fabric_port": 5000})
['./my-node', '--id', '7', '--fabric', '127.0.0.1:5000']
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import NetemuError

__all__ = [
    "PLACEHOLDERS",
    "ExternalNode",
    "ExternalSpec",
    "external_env",
    "external_values",
    "parse_external_spec",
    "resolve_externals",
    "substitute",
]

#: Placeholders a command may use, and the environment variable carrying the same value.
PLACEHOLDERS: dict[str, str] = {
    "number": "NETEMU_NODE_NUMBER",
    "name": "NETEMU_NODE_NAME",
    "kind": "NETEMU_NODE_KIND",
    "config": "NETEMU_CONFIG",
    "fabric_host": "NETEMU_FABRIC_HOST",
    "fabric_port": "NETEMU_FABRIC_PORT",
    "broker_url": "NETEMU_BROKER_URL",
    "broker_host": "NETEMU_BROKER_HOST",
    "broker_port": "NETEMU_BROKER_PORT",
    "run_id": "NETEMU_RUN_ID",
    "epoch_dtn_ns": "NETEMU_EPOCH_DTN_NS",
    "out": "NETEMU_OUT",
}


@dataclass(frozen=True)
class ExternalSpec:
    """One ``--external NODE=COMMAND`` as given: ``node`` (name or number, not yet checked
    against the scenario) and the command split into ``argv`` (placeholders not replaced)."""

    node: str
    argv: tuple[str, ...]

    def __post_init__(self):
        if not self.node:
            raise NetemuError("--external: the node is empty (expected NODE=COMMAND)")
        if not self.argv or not self.argv[0]:
            raise NetemuError(f"--external {self.node}=: the command is empty")
        for arg in self.argv:
            _check_template(arg)


@dataclass(frozen=True)
class ExternalNode:
    """An external node of a run: scenario ``number`` and ``name``, and its command template."""

    number: int
    name: str
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        """The command as one shell-quoted line (for run.json and the summary)."""
        return shlex.join(self.argv)


def parse_external_spec(text: str) -> ExternalSpec:
    """``"NODE=COMMAND"`` -> :class:`ExternalSpec`; the command is split with :func:`shlex.split`.

    >>> parse_external_spec("3001=python3 node.py --log '/a b/x.jsonl'").argv[-1]
    '/a b/x.jsonl'
    """
    if not isinstance(text, str) or "=" not in text:
        raise NetemuError(f"--external {text!r}: expected NODE=COMMAND (a node name or number)")
    node, _, command = text.partition("=")
    node = node.strip()
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise NetemuError(
            f"--external {node}: cannot split the command {command!r}: {exc}"
        ) from None
    return ExternalSpec(node=node, argv=argv)


def resolve_externals(
    specs: Iterable[str | ExternalSpec] | Mapping[str, str] | None, scenario
) -> dict[int, ExternalNode]:
    """Check every spec against the scenario; ``{number: ExternalNode}`` in scenario order.

    ``specs``: ``NODE=COMMAND`` strings, :class:`ExternalSpec`, or a ``{node: command}`` map.
    Raises :class:`NetemuError` for an unknown node (naming a few that exist), an empty
    command or a node given twice.
    """
    if not specs:
        return {}
    if isinstance(specs, Mapping):
        specs = [f"{node}={command}" for node, command in specs.items()]
    by_name = {n.name: n for n in scenario.nodes}
    by_number = {n.number: n for n in scenario.nodes}
    found: dict[int, ExternalNode] = {}
    for item in specs:
        spec = item if isinstance(item, ExternalSpec) else parse_external_spec(item)
        node = by_name.get(spec.node)
        if node is None and spec.node.isdigit():
            node = by_number.get(int(spec.node))
        if node is None:
            some = ", ".join(f"{n.name} ({n.number})" for n in list(scenario.nodes)[:3])
            raise NetemuError(
                f"--external {spec.node}: no node of that name or number in scenario "
                f"{scenario.name} (nodes are e.g. {some})"
            )
        if node.number in found:
            raise NetemuError(f"--external: node {node.name} ({node.number}) is given twice")
        found[node.number] = ExternalNode(number=node.number, name=node.name, argv=spec.argv)
    return {n.number: found[n.number] for n in scenario.nodes if n.number in found}


def external_values(
    node: ExternalNode,
    *,
    kind: str,
    config_path: str,
    fabric_host: str,
    fabric_port: int,
    broker_url: str,
    run_id: str,
    epoch_dtn_ns: int,
    out: str,
) -> dict[str, str]:
    """Every placeholder's value for ``node`` (all strings; keys are :data:`PLACEHOLDERS`)."""
    host, _, port = broker_url.removeprefix("mqtt://").rpartition(":")
    values = {
        "number": node.number,
        "name": node.name,
        "kind": kind,
        "config": config_path,
        "fabric_host": fabric_host,
        "fabric_port": fabric_port,
        "broker_url": broker_url,
        "broker_host": host,
        "broker_port": port,
        "run_id": run_id,
        "epoch_dtn_ns": epoch_dtn_ns,
        "out": out,
    }
    assert set(values) == set(PLACEHOLDERS)
    return {k: str(v) for k, v in values.items()}


def external_env(values: Mapping[str, str]) -> dict[str, str]:
    """The ``NETEMU_*`` environment variables for ``values`` (from :func:`external_values`)."""
    return {PLACEHOLDERS[k]: str(v) for k, v in values.items() if k in PLACEHOLDERS}


def substitute(argv: Iterable[str], values: Mapping[str, object]) -> list[str]:
    """Replace ``{placeholder}`` in each argument (``{{`` and ``}}`` stand for braces)."""
    out = []
    for arg in argv:
        _check_template(arg)
        try:
            out.append(arg.format_map({k: str(v) for k, v in values.items()}))
        except KeyError as exc:
            raise NetemuError(f"--external: no value for placeholder {exc} in {arg!r}") from None
    return out


def _check_template(arg: str) -> None:
    """Only plain ``{name}`` fields of :data:`PLACEHOLDERS` (no attributes, indexes, formats)."""
    try:
        fields = [
            (f, spec, conv) for _, f, spec, conv in string.Formatter().parse(arg) if f is not None
        ]
    except ValueError as exc:
        raise NetemuError(
            f"--external: bad braces in {arg!r} ({exc}); write {{{{ and }}}} for literal braces"
        ) from None
    known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    for field, spec, conv in fields:
        if field not in PLACEHOLDERS or spec or conv:
            raise NetemuError(
                f"--external: unknown placeholder {{{field}}} in {arg!r}; known: {known}"
            )
