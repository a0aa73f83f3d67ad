"""Loading routing schemes: built-in names, ``module:Class``, ``file.py:Class``, entry points.

>>> load_scheme("snapshot")
SnapshotScheme()
>>> type(load_scheme("netemu.routing.minhop:MinHopScheme")).__name__
'MinHopScheme'

A third-party package makes its scheme loadable by name with an entry point::

    [project.entry-points."netemu.routing"]
    myscheme = "mypackage.routing:MyScheme"
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from pathlib import Path

from ..errors import RoutingError
from .interface import RoutingScheme

ENTRY_POINT_GROUP = "netemu.routing"

BUILTIN_SCHEMES = {
    "cgr": "netemu.routing.cgr:CgrScheme",
    "snapshot": "netemu.routing.snapshot:SnapshotScheme",
    "minhop": "netemu.routing.minhop:MinHopScheme",
}


def available_schemes() -> dict[str, str]:
    """Scheme names -> ``module:Class`` (built-ins plus the ``netemu.routing`` entry points)."""
    found = dict(BUILTIN_SCHEMES)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def _import_module(spec: str, module_name: str):
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise RoutingError(f"routing scheme {spec!r}: no file {module_name}")
        name = f"netemu_routing_plugin_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise RoutingError(f"routing scheme {spec!r}: cannot load {module_name}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise RoutingError(f"routing scheme {spec!r}: {module_name} failed: {exc}") from exc
        return module
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise RoutingError(
            f"routing scheme {spec!r}: cannot import {module_name!r}: {exc}"
        ) from exc


def scheme_class(spec: str) -> type[RoutingScheme]:
    """The class a scheme spec names (see :func:`load_scheme`)."""
    spec = str(spec).strip()
    if not spec:
        raise RoutingError("empty routing scheme; expected cgr, snapshot, minhop or module:Class")
    target = spec
    if ":" not in spec:
        known = available_schemes()
        if spec not in known:
            raise RoutingError(
                f"unknown routing scheme {spec!r}; expected one of {', '.join(sorted(known))} "
                f"or module:Class"
            )
        target = known[spec]
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise RoutingError(f"routing scheme {spec!r}: expected module:Class")
    module = _import_module(spec, module_name)
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RoutingError(
                f"routing scheme {spec!r}: {module_name!r} has no attribute {attr!r}"
            ) from None
    if not (inspect.isclass(obj) and issubclass(obj, RoutingScheme)):
        raise RoutingError(
            f"routing scheme {spec!r}: {attr} is not a subclass of netemu.routing.RoutingScheme"
        )
    if inspect.isabstract(obj):
        raise RoutingError(f"routing scheme {spec!r}: {attr} does not implement compute()")
    return obj


def load_scheme(spec: str | RoutingScheme, **options) -> RoutingScheme:
    """A routing scheme instance from a spec: a built-in name (``cgr``, ``snapshot``,
    ``minhop``), an entry point name in the ``netemu.routing`` group, ``module:Class`` or
    ``path/to/file.py:Class``. ``options`` go to the class's constructor."""
    if isinstance(spec, RoutingScheme):
        if options:
            raise RoutingError("options can only be given with a scheme name or module:Class")
        return spec
    cls = scheme_class(spec)
    try:
        return cls(**options)
    except TypeError as exc:
        raise RoutingError(f"routing scheme {spec!r}: bad options: {exc}") from None


__all__ = [
    "BUILTIN_SCHEMES",
    "ENTRY_POINT_GROUP",
    "available_schemes",
    "load_scheme",
    "scheme_class",
]
