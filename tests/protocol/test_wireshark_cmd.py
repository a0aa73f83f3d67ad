"""`netemu wireshark path|install` and shipping the protocol files inside the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from netemu.cli import main
from netemu.protocol.wireshark import dissector_path, personal_plugin_dir
from support import REPO


def test_path_prints_the_packaged_dissector(capsys) -> None:
    assert main(["wireshark", "path"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == dissector_path() and printed.is_file()
    assert printed.read_bytes() == (REPO / "protocols/wireshark/sgp.lua").read_bytes()


def test_install_into_dest(tmp_path: Path, capsys) -> None:
    dest = tmp_path / "plugins"
    assert main(["wireshark", "install", "--dest", str(dest)]) == 0
    assert (dest / "sgp.lua").read_bytes() == dissector_path().read_bytes()
    assert str(dest / "sgp.lua") in capsys.readouterr().out


def test_install_default_is_wiresharks_personal_lua_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".local" / "lib" / "wireshark" / "plugins"
    assert personal_plugin_dir(ask_tshark=False) == expected
    assert main(["wireshark", "install", "--no-tshark"]) == 0
    assert (expected / "sgp.lua").is_file()
    if shutil.which("tshark"):  # tshark agrees on the folder
        assert personal_plugin_dir(ask_tshark=True) == expected


def test_install_error_is_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["wireshark", "install", "--dest", str(blocker)]) == 2
    assert "cannot install" in capsys.readouterr().err


@pytest.mark.slow
def test_wheel_ships_protocol_files(tmp_path: Path) -> None:
    pytest.importorskip("wheel", reason="building a wheel offline needs the wheel package")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "-w", str(tmp_path), "--no-deps",
         "--no-build-isolation", "-q"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("netemu-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("netemu/protocols/wireshark/sgp.lua", "netemu/protocols/sgp/SPEC.md",
                     "netemu/protocols/sgp/CAPTURE.md", "netemu/protocols/sgp/vectors/data.json",
                     "netemu/protocols/sgp/vectors/invalid.json", "netemu/protocol/codec.py",
                     "netemu/capture/pcapng.py", "netemu/cli/wireshark_cmd.py"):  # fmt: skip
        assert required in names, required
