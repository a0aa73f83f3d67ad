"""The ``netemu`` command: thin argument parsing that calls the library.

Each sub-command lives in its own module under ``netemu.cli`` and exposes
``register(subparsers)``; the module list below is the one place that wires them in.
A :class:`~netemu.errors.NetemuError` is printed as one line on stderr (no traceback) and the
command exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import NetemuError

# Sub-command modules, in the order they appear in --help.
COMMAND_MODULES = (
    "scenario_cmd",
    "links_cmd",
    "plan_cmd",
    "route_cmd",
    "wireshark_cmd",
    "run_cmd",
    "simulate_cmd",
    "node_cmd",
    "fabric_cmd",
    "ping_cmd",
    "clean_cmd",
    "compose_cmd",
    "controller_cmd",
    "image_cmd",
    "fault_cmd",
    "compare_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netemu",
        description="Emulate inter-satellite laser networks: geometry, contacts, routing, SGP.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        result = args.func(args)
    except NetemuError as exc:
        print(f"netemu: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `netemu plan ... | head`
        return 0
    except KeyboardInterrupt:
        print("netemu: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
