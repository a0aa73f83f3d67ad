"""Where the Wireshark dissector ships and where Wireshark looks for it.

The dissector (protocols/wireshark/sgp.lua in the source tree) is package data of
``netemu.protocols``. Wireshark loads Lua plugins from its *personal Lua plugins* folder, which
``tshark -G folders`` reports (``~/.local/lib/wireshark/plugins`` on Linux and macOS,
``%APPDATA%\\Wireshark\\plugins`` on Windows; Wireshark does not use the XDG variables for it).
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import NetemuError

__all__ = ["DISSECTOR_NAME", "dissector_path", "install_dissector", "personal_plugin_dir"]

log = logging.getLogger(__name__)

DISSECTOR_NAME = "sgp.lua"


def dissector_path() -> Path:
    """Filesystem path of the installed ``sgp.lua``."""
    res = importlib.resources.files("netemu.protocols").joinpath("wireshark", DISSECTOR_NAME)
    path = Path(str(res))
    if not path.is_file():
        raise NetemuError(f"the Wireshark dissector is missing from the installation ({path})")
    return path


def _tshark_personal_lua_dir(tshark: str) -> Path | None:
    try:
        out = subprocess.run(
            [tshark, "-G", "folders"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("tshark -G folders failed: %s", exc)
        return None
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Personal Lua Plugins" and value.strip():
            return Path(value.strip())
    return None


def personal_plugin_dir(*, ask_tshark: bool = True) -> Path:
    """Wireshark's personal Lua plugin folder: as tshark reports it, else the platform default."""
    if ask_tshark and (tshark := shutil.which("tshark")):
        found = _tshark_personal_lua_dir(tshark)
        if found is not None:
            return found
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "Wireshark" / "plugins"
    return Path.home() / ".local" / "lib" / "wireshark" / "plugins"


def install_dissector(dest: Path | str | None = None, *, ask_tshark: bool = True) -> Path:
    """Copy ``sgp.lua`` into ``dest`` (default: :func:`personal_plugin_dir`); returns the copy."""
    folder = Path(dest) if dest is not None else personal_plugin_dir(ask_tshark=ask_tshark)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / DISSECTOR_NAME
        shutil.copyfile(dissector_path(), target)
    except OSError as exc:
        raise NetemuError(f"cannot install the dissector into {folder}: {exc}") from None
    log.info("installed %s", target)
    return target
