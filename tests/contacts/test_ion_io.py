"""ION contact-plan import/export and JSON plans.

ION syntax from ION's ionadmin/ionrc documentation: ``a contact <from time> <until time>
<from node> <to node> <xmit rate in bytes/s> [confidence]``, ``a range <from> <until> <node>
<node> <owlt seconds>``, ``@ yyyy/mm/dd-hh:mm:ss`` for the reference time; times are ``+seconds``
or absolute UTC; numbers go through base-0 strtol (so ``+060`` is octal 48).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netemu import ContactPlanError
from netemu.contacts import (
    Contact,
    ContactPlan,
    dumps_ion,
    dumps_json,
    load_plan,
    loads_ion,
    loads_json,
)
from netemu.contacts.finder import generate_plan
from netemu.scenario import scenario_from_dict
from netemu.timebase import NS_PER_S
from support import small_walker_dict

S = NS_PER_S


def test_basic_ion_plan_with_ranges_and_reference():
    plan = loads_ion(
        """
        # a small plan
        @ 2026/01/01-00:00:00
        a contact +0 +600 1 2 125000
        a contact +100 +700 2 1 125000 0.5
        a range +0 +3600 1 2 2
        1 1 ''
        s
        """
    )
    c12, c21 = plan.contacts()
    assert plan.reference_utc == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert (c12.from_node, c12.to_node, c12.start_ns, c12.end_ns) == (1, 2, 0, 600 * S)
    assert c12.rate_bps == 1_000_000.0
    assert c12.owlt_ns == 2 * S
    assert c21.owlt_ns == 2 * S  # ION: a range serves both directions
    assert c21.confidence == 0.5


def test_absolute_times_are_relative_to_reference_or_earliest():
    plan = loads_ion(
        "a contact 2026/01/01-00:10:00 2026/01/01-00:20:00 1 2 1000\n"
        "a contact 2026/01/01-00:05:00 2026/01/01-00:06:00 2 3 1000\n"
        "a range 2026/01/01-00:00:00 2026/01/02-00:00:00 1 2 1\n"
        "a range 2026/01/01-00:00:00 2026/01/02-00:00:00 2 3 1\n"
    )
    assert plan.reference_utc == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    starts = sorted(c.start_s for c in plan.contacts())
    assert starts == [300.0, 600.0]


def test_hex_numbers_read_like_strtol():
    plan = loads_ion("a contact +0x10 +0x20 0x1 2 0x100\na range +0 +100 1 2 0\n")
    c = plan.contacts()[0]
    assert (c.start_s, c.end_s, c.from_node, c.rate_bps) == (16.0, 32.0, 1, 256 * 8.0)


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("a contact +060 +100 1 2 1000", "octal 48"),
        ("a contact +0 +100 01 2 1000", "octal 1"),
        ("a contact +089 +100 1 2 1000", "stops at the digit '8'"),
        ("a contact 0 +100 1 2 1000", "'+SECONDS' or 'yyyy/mm/dd-hh:mm:ss'"),
        ("a contact +0 +100 1 2", "got 6 fields"),
        ("a contact +0 +100 one 2 1000", "not an integer"),
        ("a contact +100 +0 1 2 1000", "ends before it starts"),
        ("a contact +0 +100 1 2 1000 1.5", "confidence"),
        ("a range +0 +100 1 2 -1", "light time must be >= 0"),
        ("a endpoint ipn:1.1 q", "expected 'a contact' or 'a range'"),
        ("z contact +0 +1 1 2 3", "unknown command 'z'"),
        ("@ 2026-01-01T00:00:00", "'@ yyyy/mm/dd-hh:mm:ss'"),
    ],
)
def test_parser_errors_name_line_and_problem(line, expect):
    with pytest.raises(ContactPlanError) as info:
        loads_ion("# header\n" + line + "\n", path="plan.ionrc")
    message = str(info.value)
    assert message.startswith("plan.ionrc:2: ")
    assert expect in message


def test_missing_range_gives_zero_owlt_with_warning(caplog):
    plan = loads_ion("a contact +0 +10 1 2 1000\n")
    assert plan.contacts()[0].owlt_ns == 0
    assert "no 'a range'" in caplog.text


def test_export_never_zero_pads_and_rounds_conservatively():
    plan = ContactPlan.from_contacts(
        [
            Contact(1, 2, int(8.2 * S), int(60.9 * S), 8e6, int(0.0123 * S)),
            Contact(2, 3, int(5.5 * S), int(6.2 * S), 8e6, 0),  # shorter than a whole second
        ],
        reference_utc=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    text = dumps_ion(plan)
    assert "a contact +9 +60 1 2 1000000" in text
    assert "a range +9 +60 1 2 1" in text
    assert "2 3" not in text
    for token in text.split():
        assert not (token.startswith(("+0", "0")) and len(token.lstrip("+")) > 1), token
    back = loads_ion(text)
    assert back.contacts()[0].start_ns == 9 * S and back.contacts()[0].end_ns == 60 * S
    absolute = dumps_ion(plan, absolute=True)
    assert "a contact 2026/01/01-00:00:09 2026/01/01-00:01:00 1 2 1000000" in absolute
    assert loads_ion(absolute).contacts()[0].start_ns == 9 * S


def test_generated_plan_round_trips_through_ion_and_json():
    sc = scenario_from_dict(small_walker_dict())
    plan = generate_plan(sc, duration_s=900)
    assert len(plan) > 100
    assert loads_json(dumps_json(plan)) == plan
    back = loads_ion(dumps_ion(plan))
    # ION keeps whole seconds: each contact shrinks by < 1 s at each end, light time rounds up.
    exported = [c for c in plan.contacts() if int(c.end_s) > -(-c.start_ns // S)]
    assert len(back) == len(exported)
    for a, b in zip(exported, back.contacts(), strict=True):
        assert (a.from_node, a.to_node) == (b.from_node, b.to_node)
        assert 0 <= b.start_ns - a.start_ns < S and 0 <= a.end_ns - b.end_ns < S
        assert 0 <= b.owlt_ns - a.owlt_ns < S
        assert b.rate_bps == a.rate_bps


def test_load_plan_detects_format(tmp_path):
    plan = ContactPlan.from_contacts([Contact(1, 2, 0, 10 * S, 8000.0, S)])
    (tmp_path / "p.json").write_text(dumps_json(plan))
    (tmp_path / "p.ionrc").write_text(dumps_ion(plan))
    assert load_plan(tmp_path / "p.json") == plan
    assert load_plan(tmp_path / "p.ionrc").contacts() == plan.contacts()
    with pytest.raises(ContactPlanError, match="cannot read"):
        load_plan(tmp_path / "none")
    (tmp_path / "bad.json").write_text('{"contacts": [{"from": 1}]}')
    with pytest.raises(ContactPlanError, match=r"contacts\[0\]: missing key 'to'"):
        load_plan(tmp_path / "bad.json")


times = st.integers(min_value=0, max_value=10**6)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 50),
            st.integers(0, 50),
            times,
            st.integers(1, 10**5),
            st.integers(1, 10**9),
            st.integers(0, 100),
        ),
        max_size=20,
    )
)
def test_whole_second_plans_round_trip_exactly_through_ion(rows):
    contacts = [Contact(a, b, s * S, (s + d) * S, r * 8.0, o * S) for a, b, s, d, r, o in rows]
    plan = ContactPlan.from_contacts(contacts)
    back = loads_ion(dumps_ion(plan))
    assert sorted(back.contacts(), key=repr) == sorted(plan.contacts(), key=repr) or all(
        # Two contacts of the same pair starting together can take each other's range line.
        (x.from_node, x.to_node, x.start_ns, x.end_ns, x.rate_bps)
        == (y.from_node, y.to_node, y.start_ns, y.end_ns, y.rate_bps)
        for x, y in zip(
            sorted(back.contacts(), key=repr), sorted(plan.contacts(), key=repr), strict=True
        )
    )
