"""The netemu exception tree.

Every error netemu raises on purpose derives from :class:`NetemuError`, so a caller (and the CLI)
can catch one type and print one message.

    NetemuError
    ├── ScenarioError      bad scenario YAML / TLE input (names file, key path, expectation)
    ├── ContactPlanError   bad contact plan (ION or JSON) input (names file, line, expectation)
    ├── ProtocolError      an SGP frame that cannot be decoded (names field, byte offset)
    ├── NoRouteError       no route to a destination
    └── RoutingError       bad routing-scheme spec or options (``--routing module:Class``)
"""

from __future__ import annotations


class NetemuError(Exception):
    """Base class of all netemu errors."""


class ScenarioError(NetemuError):
    """A scenario file (or a file it references) is invalid.

    The message names the file, the key path inside it (``links.isl.max_range_km``,
    ``constellations[1].walker.planes``) and what was expected.
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        self.path = path
        self.key = key
        self.detail = message
        where = ""
        if path is not None:
            where = f"{path}"
            if key:
                where += f": {key}"
            where += ": "
        elif key:
            where = f"{key}: "
        super().__init__(where + message)


class ContactPlanError(NetemuError):
    """A contact plan (ION ``a contact``/``a range`` lines, or JSON) is invalid."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        self.detail = message
        where = ""
        if path is not None:
            where = path
            if line is not None:
                where += f":{line}"
            where += ": "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + message)


class ProtocolError(NetemuError):
    """An SGP frame could not be decoded or encoded.

    ``field`` is the spec's field name, ``offset`` the byte offset where the problem was found.
    """

    def __init__(self, message: str, *, field: str | None = None, offset: int | None = None):
        self.field = field
        self.offset = offset
        self.detail = message
        where = []
        if field is not None:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"offset {offset}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class NoRouteError(NetemuError):
    """No route exists from a source to a destination under the given constraints."""


class RoutingError(NetemuError):
    """A routing scheme cannot be loaded or configured (unknown name, bad ``module:Class``,
    not a :class:`~netemu.routing.RoutingScheme`, bad options)."""
