"""``netemu wireshark path|install``: locate or install the SGP Wireshark dissector."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "wireshark",
        help="locate or install the Wireshark dissector for SGP and netemu captures",
        description="The SGP Lua dissector ships inside netemu. Load it for one run with "
        "`tshark -X lua_script:$(netemu wireshark path) -r FILE`, or install it once.",
    )
    sub = parser.add_subparsers(dest="wireshark_command", metavar="ACTION")
    sub.required = True
    p_path = sub.add_parser("path", help="print the path of the installed sgp.lua")
    p_path.set_defaults(func=_cmd_path)
    p_install = sub.add_parser(
        "install", help="copy sgp.lua into Wireshark's personal Lua plugin folder"
    )
    p_install.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="folder to copy into (default: the 'Personal Lua Plugins' folder that "
        "`tshark -G folders` reports, else ~/.local/lib/wireshark/plugins)",
    )
    p_install.add_argument(
        "--no-tshark",
        action="store_true",
        help="do not ask tshark for the folder; use the platform default",
    )
    p_install.set_defaults(func=_cmd_install)


def _cmd_path(args: argparse.Namespace) -> int:
    from ..protocol.wireshark import dissector_path

    print(dissector_path())
    return 0


def _cmd_install(args: argparse.Namespace) -> int:
    from ..protocol.wireshark import install_dissector

    target = install_dissector(args.dest, ask_tshark=not args.no_tshark)
    print(f"installed {target}")
    print("restart Wireshark (or reload Lua plugins with Ctrl+Shift+L) to use it")
    return 0
