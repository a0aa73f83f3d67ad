"""Contact plans: the data model, ION and JSON I/O, and (in :mod:`.finder`) generation from a
scenario's geometry."""

from __future__ import annotations

from pathlib import Path

from .ion import dump_ion, dumps_ion, load_ion, loads_ion
from .jsonio import dump_json, dumps_json, load_json, loads_json
from .model import Contact, ContactPlan, read_plan_text


def load_plan(path: str | Path) -> ContactPlan:
    """Load an ION (``a contact`` lines) or JSON contact plan, told apart by content."""
    where, text = read_plan_text(path)
    if text.lstrip().startswith("{"):
        return loads_json(text, path=where)
    return loads_ion(text, path=where)


__all__ = [
    "Contact",
    "ContactPlan",
    "dump_ion",
    "dump_json",
    "dumps_ion",
    "dumps_json",
    "load_ion",
    "load_json",
    "load_plan",
    "loads_ion",
    "loads_json",
]
