"""Two-line element files (2-line or 3-line form), read strictly with clear errors."""

from __future__ import annotations

from pathlib import Path

from ..errors import ScenarioError
from .model import TleRecord


def tle_checksum(line: str) -> int:
    """Modulo-10 checksum of the first 68 characters (digits count, '-' counts 1).

    >>> tle_checksum("1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927")
    7
    """
    total = 0
    for ch in line[:68]:
        if ch.isdigit():
            total += int(ch)
        elif ch == "-":
            total += 1
    return total % 10


def parse_tle_text(text: str, *, source: str, key: str | None = None) -> tuple[TleRecord, ...]:
    lines = [ln.rstrip() for ln in text.splitlines()]
    records: list[TleRecord] = []
    i = 0
    name = None
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("1 ") and len(line) >= 68:
            l1 = line
            if i + 1 >= len(lines) or not lines[i + 1].startswith("2 "):
                _fail(source, key, i + 2, "expected TLE line 2 (starting with '2 ') after line 1")
            l2 = lines[i + 1]
            _check_line(l1, 1, source, key, i + 1)
            _check_line(l2, 2, source, key, i + 2)
            if l1[2:7] != l2[2:7]:
                _fail(source, key, i + 2, "catalog numbers of line 1 and line 2 differ")
            records.append(TleRecord(name=(name or l1[2:7].strip()), line1=l1, line2=l2))
            name = None
            i += 2
            continue
        if line.startswith(("1 ", "2 ")):
            _fail(source, key, i + 1, f"TLE line is {len(line)} characters, expected 69")
        if name is not None:
            _fail(source, key, i + 1, "expected TLE line 1 (starting with '1 ') after a name line")
        name = line.strip().removeprefix("0 ").strip()
        i += 1
    if name is not None:
        _fail(source, key, len(lines), "name line without TLE lines after it")
    if not records:
        _fail(source, key, None, "no TLE records found (expected 2-line or 3-line elements)")
    return tuple(records)


def _check_line(line: str, number: int, source, key, line_no):
    if len(line) != 69:
        _fail(source, key, line_no, f"TLE line {number} is {len(line)} characters, expected 69")
    if not line[68].isdigit():
        _fail(source, key, line_no, f"TLE line {number} has no checksum digit in column 69")
    want = tle_checksum(line)
    if int(line[68]) != want:
        _fail(source, key, line_no, f"bad TLE checksum: column 69 is {line[68]}, expected {want}")
    if number == 1:
        try:
            float(line[18:32])
        except ValueError:
            _fail(source, key, line_no, "TLE epoch (columns 19-32) is not a number")


def _fail(source, key, line_no, message):
    where = f"line {line_no}: " if line_no else ""
    raise ScenarioError(f"{where}{message}", path=source, key=key)


def read_tle_file(path: Path, *, scenario_path: str, key: str) -> tuple[TleRecord, ...]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ScenarioError(
            f"cannot read TLE file {path}: {exc.strerror}", path=scenario_path, key=key
        ) from None
    records = parse_tle_text(text, source=str(path))
    # Make sure sgp4 itself accepts every record.
    from sgp4.api import Satrec

    for rec in records:
        try:
            sat = Satrec.twoline2rv(rec.line1, rec.line2)
        except Exception as exc:  # sgp4 raises ValueError on malformed fields
            raise ScenarioError(
                f"TLE record {rec.name!r} rejected by sgp4: {exc}", path=str(path)
            ) from None
        if sat.error:
            raise ScenarioError(
                f"TLE record {rec.name!r} rejected by sgp4 (error {sat.error})", path=str(path)
            )
    return records
