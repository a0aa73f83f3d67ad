"""ION contact-plan import and export (``a contact`` / ``a range`` lines, ionadmin syntax).

Format (ION's ionadmin, ``man ionrc``)::

    @ 2026/01/01-00:00:00                      # reference time for relative times (optional)
    a contact +0 +600 1 2 125000               # from +0 s to +600 s, node 1 -> node 2, bytes/s
    a range +0 +600 1 2 1                      # one-way light time 1 s (integer seconds)

Times are ``+N`` (seconds after the reference time) or absolute ``yyyy/mm/dd-hh:mm:ss`` UTC.
ION's numbers are integers read with base-0 ``strtol``: ``0x10`` is hexadecimal and a leading
zero makes a number octal, so ``+060`` means 48 seconds. netemu therefore never zero-pads on
export, and on import rejects zero-padded numbers with an error that says what ION would read.

ION rates are bytes per second and ranges are whole seconds; netemu's plans use bits per second
and nanoseconds, so an export rounds contact starts up, ends down and light times up to whole
seconds (conservative: no contact grows). Use the JSON format for exact values.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from pathlib import Path

from ..errors import ContactPlanError
from ..timebase import NS_PER_S
from .model import ContactPlan, read_plan_text

log = logging.getLogger(__name__)

_INT_RE = re.compile(r"^[+-]?(0[xX][0-9a-fA-F]+|0|[1-9][0-9]*)$")
_PADDED_RE = re.compile(r"^[+-]?0[0-9]+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_ABS_RE = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})-(\d{1,2}):(\d{1,2}):(\d{1,2})$")
# ionadmin commands that do not describe contacts; ignored on import.
_OTHER_COMMANDS = {"1", "s", "x", "m", "e", "l", "i", "h", "?", "v", "r", "w", "t", "d"}


def _ion_int(token: str, what: str, path, line_no) -> int:
    """Read an integer as ION's base-0 strtol does, refusing the ambiguous zero-padded forms."""
    if _PADDED_RE.match(token):
        digits = token.lstrip("+-")
        try:
            as_octal = int(digits, 8)
            octal_note = f"ION reads it as octal {as_octal}"
        except ValueError:
            stop = next(i for i, ch in enumerate(digits) if ch in "89")
            as_octal = int(digits[:stop] or "0", 8)
            octal_note = f"ION's strtol stops at the digit '{digits[stop]}' and reads {as_octal}"
        raise ContactPlanError(
            f"{what} {token!r} is zero-padded: {octal_note} (base-0 strtol); "
            f"write it without leading zeros",
            path=path,
            line=line_no,
        )
    if not _INT_RE.match(token):
        raise ContactPlanError(
            f"{what} {token!r} is not an integer (decimal, or 0x hexadecimal)",
            path=path,
            line=line_no,
        )
    return int(token, 0)


def _ion_rate(token: str, path, line_no) -> float:
    is_hex = token.lower().lstrip("+").startswith("0x")
    if not is_hex and ("." in token or "e" in token.lower()):
        if not _FLOAT_RE.match(token):
            raise ContactPlanError(f"rate {token!r} is not a number", path=path, line=line_no)
        return float(token)
    return float(_ion_int(token, "rate", path, line_no))


def _parse_abs(token: str) -> dt.datetime | None:
    m = _ABS_RE.match(token)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups())
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC)


def format_ion_time(when: dt.datetime) -> str:
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y/%m/%d-%H:%M:%S")


def loads_ion(text: str, *, path: str | None = None) -> ContactPlan:
    """Parse ION contact-plan text into a :class:`ContactPlan`.

    Relative times are seconds after the ``@`` reference time if one is given; absolute times are
    converted relative to it (or, with no ``@`` line, to the earliest absolute time in the file).
    A contact whose range is missing gets a one-way light time of 0 (logged).

    >>> plan = loads_ion("a contact +0 +10 1 2 1000\\na range +0 +10 1 2 1\\n")
    >>> (len(plan), plan.contacts()[0].owlt_s, plan.contacts()[0].rate_bps)
    (1, 1.0, 8000.0)
    """
    reference: dt.datetime | None = None
    contacts: list[tuple] = []  # (line, from, to, start, end, rate_Bps, confidence)
    ranges: list[tuple] = []  # (line, from, to, start, end, owlt_s)

    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        cmd = tokens[0]
        if cmd == "@":
            if len(tokens) != 2 or _parse_abs(tokens[1]) is None:
                raise ContactPlanError(
                    "expected '@ yyyy/mm/dd-hh:mm:ss' (reference time)", path=path, line=line_no
                )
            reference = _parse_abs(tokens[1])
            continue
        if cmd != "a":
            if cmd in _OTHER_COMMANDS:
                log.debug("%s:%d: ignoring ionadmin command %r", path, line_no, cmd)
                continue
            raise ContactPlanError(
                f"unknown command {cmd!r}; expected 'a contact', 'a range' or '@'",
                path=path,
                line=line_no,
            )
        if len(tokens) < 2 or tokens[1] not in ("contact", "range"):
            raise ContactPlanError(
                "expected 'a contact' or 'a range' (other 'a' commands are not contact-plan "
                "entries)",
                path=path,
                line=line_no,
            )
        kind = tokens[1]
        want = (7, 8) if kind == "contact" else (7,)
        if len(tokens) not in want:
            form = (
                "a contact START END FROM TO RATE_BYTES_PER_S [CONFIDENCE]"
                if kind == "contact"
                else "a range START END FROM TO OWLT_S"
            )
            raise ContactPlanError(
                f"expected '{form}', got {len(tokens)} fields", path=path, line=line_no
            )
        times = []
        for tok, what in ((tokens[2], "start time"), (tokens[3], "end time")):
            absolute = _parse_abs(tok)
            if absolute is not None:
                times.append(absolute)
            elif tok.startswith("+"):
                times.append(_ion_int(tok, what, path, line_no))
            else:
                raise ContactPlanError(
                    f"{what} {tok!r}: expected '+SECONDS' or 'yyyy/mm/dd-hh:mm:ss'",
                    path=path,
                    line=line_no,
                )
        a = _ion_int(tokens[4], "from node", path, line_no)
        b = _ion_int(tokens[5], "to node", path, line_no)
        if a < 0 or b < 0:
            raise ContactPlanError("node numbers must be >= 0", path=path, line=line_no)
        if kind == "contact":
            rate = _ion_rate(tokens[6], path, line_no)
            conf = 1.0
            if len(tokens) == 8:
                if not _FLOAT_RE.match(tokens[7]) or not 0 <= float(tokens[7]) <= 1:
                    raise ContactPlanError(
                        f"confidence {tokens[7]!r}: expected a number in [0, 1]",
                        path=path,
                        line=line_no,
                    )
                conf = float(tokens[7])
            if rate < 0:
                raise ContactPlanError("rate must be >= 0", path=path, line=line_no)
            contacts.append((line_no, a, b, times[0], times[1], rate, conf))
        else:
            owlt = _ion_int(tokens[6], "one-way light time", path, line_no)
            if owlt < 0:
                raise ContactPlanError("one-way light time must be >= 0", path=path, line=line_no)
            ranges.append((line_no, a, b, times[0], times[1], owlt))

    if reference is None:
        absolutes = [
            t for row in contacts + ranges for t in (row[3], row[4]) if isinstance(t, dt.datetime)
        ]
        reference = min(absolutes) if absolutes else None

    def rel_ns(t) -> int:
        if isinstance(t, dt.datetime):
            return round((t - reference).total_seconds()) * NS_PER_S
        return int(t) * NS_PER_S

    rng = [(a, b, rel_ns(s), rel_ns(e), owlt) for (_, a, b, s, e, owlt) in ranges]
    cols: dict[str, list] = {k: [] for k in ("from_node", "to_node", "start_ns", "end_ns")}
    cols.update(rate_bps=[], owlt_ns=[], confidence=[])
    for line_no, a, b, s, e, rate, conf in contacts:
        start, end = rel_ns(s), rel_ns(e)
        if end < start:
            raise ContactPlanError("contact ends before it starts", path=path, line=line_no)
        owlt = _find_owlt(rng, a, b, start)
        if owlt is None:
            log.warning(
                "%s:%d: no 'a range' covers contact %d->%d at +%ds; using 0 s light time",
                path or "<plan>",
                line_no,
                a,
                b,
                start // NS_PER_S,
            )
            owlt = 0
        cols["from_node"].append(a)
        cols["to_node"].append(b)
        cols["start_ns"].append(start)
        cols["end_ns"].append(end)
        cols["rate_bps"].append(rate * 8.0)
        cols["owlt_ns"].append(owlt * NS_PER_S)
        cols["confidence"].append(conf)
    return ContactPlan(**cols, reference_utc=reference)


def _find_owlt(ranges, a: int, b: int, start_ns: int) -> int | None:
    """ION's rule: a range A->B also serves B->A unless B->A has its own."""
    for pair in ((a, b), (b, a)):
        for ra, rb, rs, re_, owlt in ranges:
            if (ra, rb) == pair and (rs <= start_ns < re_ or rs == start_ns):
                return owlt
    return None


def load_ion(path: str | Path) -> ContactPlan:
    where, text = read_plan_text(path)
    return loads_ion(text, path=where)


def dumps_ion(plan: ContactPlan, *, absolute: bool = False) -> str:
    """ION text for a plan: one ``a contact`` and one ``a range`` line per contact.

    Times are rounded conservatively to whole seconds (start up, end down, light time up); a
    contact that becomes empty is left out (logged). With ``absolute=True`` times are written as
    UTC ``yyyy/mm/dd-hh:mm:ss`` (needs ``plan.reference_utc``), otherwise as ``+seconds`` (never
    zero-padded); an ``@`` line carries the reference time when the plan has one.
    """
    if absolute and plan.reference_utc is None:
        raise ContactPlanError("absolute ION times need a plan reference time")
    lines = ["# contact plan written by netemu; rates in bytes/s, ranges in whole seconds"]
    if plan.reference_utc is not None:
        lines.append(f"@ {format_ion_time(plan.reference_utc)}")

    def fmt(t_s: int) -> str:
        if absolute:
            return format_ion_time(plan.reference_utc + dt.timedelta(seconds=t_s))
        return f"+{t_s}"

    dropped = 0
    contact_lines: list[str] = []
    range_lines: list[str] = []
    for c in plan.contacts():
        start = math.ceil(c.start_ns / NS_PER_S)
        end = math.floor(c.end_ns / NS_PER_S)
        if end <= start:
            dropped += 1
            continue
        rate = c.rate_bps / 8.0
        rate_txt = str(int(rate)) if float(rate).is_integer() else repr(rate)
        owlt = math.ceil(c.owlt_ns / NS_PER_S)
        conf = "" if c.confidence == 1.0 else f" {c.confidence:g}"
        contact_lines.append(
            f"a contact {fmt(start)} {fmt(end)} {c.from_node} {c.to_node} {rate_txt}{conf}"
        )
        range_lines.append(f"a range {fmt(start)} {fmt(end)} {c.from_node} {c.to_node} {owlt}")
    if dropped:
        log.info("ION export: %d contacts shorter than one whole second left out", dropped)
    return "\n".join(lines + contact_lines + range_lines) + "\n"


def dump_ion(plan: ContactPlan, path: str | Path, *, absolute: bool = False) -> None:
    Path(path).write_text(dumps_ion(plan, absolute=absolute))


__all__ = ["dump_ion", "dumps_ion", "format_ion_time", "load_ion", "loads_ion"]
