"""Helpers shared by CLI sub-commands: scenario loading, time options, output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import NetemuError
from ..timebase import parse_duration_s, parse_utc


def load_scenario_arg(path: str):
    from ..scenario import load_scenario

    return load_scenario(Path(path))


def utc_arg(text: str):
    """argparse type: ISO 8601 UTC; a bad value becomes argparse's one-line usage error."""
    try:
        return parse_utc(text)
    except NetemuError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration_arg(text: str) -> float:
    """argparse type: a duration such as 90s, 10m, 24h."""
    try:
        return parse_duration_s(text)
    except NetemuError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=1)
    sys.stdout.write("\n")


def console():
    """A rich console; wide enough for node names when output goes to a pipe or file."""
    from rich.console import Console

    con = Console()
    if not con.is_terminal:
        con = Console(width=160)
    return con
