"""Forwarding tables: lookup, validity, JSON round trip, hop-by-hop paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netemu.routing import FibEntry, ForwardingTable, RoutingTables


@pytest.fixture
def tables():
    return RoutingTables(
        t_ns=100,
        scheme="test",
        nodes=[10, 20, 30],
        next_hop=[[-1, 20, 20], [10, -1, 30], [20, 20, -1]],
        arrival_ns=[[-1, 110, 130], [110, -1, 120], [130, 120, -1]],
        valid_from_ns=[[100, 100, 150], [100, 100, 100], [100, 100, 100]],
        valid_until_ns=1_000,
        hold=[[False, False, True], [False, False, False], [False, False, False]],
        hops=[[0, 1, 2], [1, 0, 1], [2, 1, 0]],
    )


def test_lookup_and_validity(tables):
    fib = tables.table(10)
    assert len(fib) == 2
    entry = fib.lookup(30)
    assert entry == FibEntry(30, 20, 150, 1_000, "hold", 130, 2)
    assert fib.lookup(10) is None  # no entry for itself
    assert fib.lookup(99) is None
    assert fib.lookup(30, now_ns=999) is not None
    assert fib.lookup(30, now_ns=1_000) is None  # expired
    assert tables.next_hop_of(30, 10) == 20
    assert tables.path(30, 10) == [30, 20, 10]
    assert set(tables) == {10, 20, 30} and len(tables) == 3
    assert isinstance(tables[20], ForwardingTable)
    with pytest.raises(KeyError):
        tables.table(11)


def test_json_round_trip(tables):
    fib = tables.table(10)
    data = json.loads(json.dumps(fib.to_dict()))
    assert data["node"] == 10 and data["scheme"] == "test" and data["t_ns"] == 100
    back = ForwardingTable.from_dict(data)
    assert back.entries() == fib.entries()
    doc = json.loads(json.dumps(tables.to_dict()))
    assert set(doc["tables"]) == {"10", "20", "30"}


def test_loops_and_dead_ends_are_reported():
    looping = RoutingTables(
        t_ns=0,
        scheme="bad",
        nodes=[1, 2, 3],
        next_hop=[[-1, 2, 2], [1, -1, 1], [-1, -1, -1]],
        arrival_ns=0,
        valid_from_ns=0,
        valid_until_ns=1,
    )
    with pytest.raises(ValueError, match="loop"):
        looping.path(1, 3)
    dead = RoutingTables(
        t_ns=0,
        scheme="bad",
        nodes=[1, 2, 3],
        next_hop=[[-1, 2, 2], [-1, -1, -1], [-1, -1, -1]],
        arrival_ns=0,
        valid_from_ns=0,
        valid_until_ns=1,
    )
    with pytest.raises(ValueError, match="dead end"):
        dead.path(1, 3)
    assert dead.table(1).hops is None
    assert np.array_equal(dead.table(1).destination, [2, 3])
