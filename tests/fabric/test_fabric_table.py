"""LinkTable: construction from a real LinkState, the plain-data form, validation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from netemu.errors import NetemuError
from netemu.fabric import Fabric, FabricDrop, FrameStatus, LinkTable
from netemu.geometry import C_M_PER_S
from netemu.links import LinkModel, LinkTracker
from netemu.scenario import load_scenario
from support import TOPOLOGIES

C = C_M_PER_S


@pytest.fixture(scope="module")
def demo():
    scenario = load_scenario(TOPOLOGIES / "demo-small.yaml")
    state = LinkTracker(LinkModel(scenario)).step(0)
    return scenario, state


def test_from_link_state_feeds_the_fabric(demo):
    scenario, state = demo
    table = LinkTable.from_link_state(state)
    assert len(table) == len(state) and table.t_ns == 0
    assert np.array_equal(table.link_id, state.link_id)
    assert not table.directed.any()
    fab = Fabric(table=table)
    up = int(np.nonzero(state.up)[0][0])
    a, b = int(state.a[up]), int(state.b[up])
    out = fab.send(1500, b, a, t_ns=0)  # either direction of an undirected link
    assert out.status is FrameStatus.IN_FLIGHT and out.link_id == int(state.link_id[up])
    ser_ns = math.ceil(1500 * 8 / state.rate_bps[up] * 1e9)
    expected_range = state.range_m[up] + state.range_rate_mps[up] * ser_ns * 1e-9
    assert out.range_m == pytest.approx(expected_range, abs=1e-6)
    assert out.arrival_ns == ser_ns + math.ceil(expected_range / C * 1e9 - 1e-3)
    # the LinkState's own delay (range / c) is a lower bound, within 12 us + 1 ns
    assert 0 <= out.arrival_ns - state.delay_s[up] * 1e9 <= ser_ns + 1 + 1e-3 * 1500
    assert out.loss_probability == pytest.approx(state.loss[up])
    numbers = [n.number for n in scenario.nodes]
    fab.poll(out.arrival_ns)
    assert out.meta(numbers).tx_node == scenario.nodes[b].number

    down = np.nonzero(~state.up)[0]
    assert down.size, "demo-small has down candidates at t=0"
    i = int(down[0])
    assert fab.send(100, int(state.a[i]), int(state.b[i]), t_ns=0).reason is FabricDrop.LINK_DOWN
    n = len(scenario.nodes)
    listed = set(zip(state.a.tolist(), state.b.tolist(), strict=True))
    pair = next((x, y) for x in range(n) for y in range(x + 1, n) if (x, y) not in listed)
    assert fab.send(100, *pair, t_ns=0).reason is FabricDrop.NO_LINK
    assert fab.balance().ok


def test_only_up_rows(demo):
    _, state = demo
    table = LinkTable.from_link_state(state, include_down=False)
    assert len(table) == int(state.up.sum()) and table.up.all()


def test_plain_data_round_trip_through_json(demo):
    _, state = demo
    table = LinkTable.from_link_state(state)
    text = json.dumps(table.to_dict(), allow_nan=False)  # strict JSON
    back = LinkTable.from_dict(json.loads(text))
    assert back.t_ns == table.t_ns
    for name in ("link_id", "a", "b", "up", "range_m", "range_rate_mps", "rate_bps", "loss",
                 "directed"):  # fmt: skip
        assert np.array_equal(getattr(back, name), getattr(table, name), equal_nan=True), name


def test_plain_data_keeps_infinite_rate_and_missing_ranges():
    table = LinkTable.from_rows(
        7,
        [
            dict(link_id=1, a=0, b=1, range_m=1e6, rate_bps=math.inf, directed=True),
            dict(link_id=2, a=1, b=2, up=False, range_m=math.nan, rate_bps=0.0),
        ],
    )
    data = json.loads(json.dumps(table.to_dict(), allow_nan=False))
    assert data["columns"]["rate_bps"] == ["inf", 0.0]
    assert data["columns"]["range_m"] == [1e6, None]
    back = LinkTable.from_dict(data)
    assert back.rate_bps[0] == math.inf and math.isnan(back.range_m[1])
    assert back.directed.tolist() == [True, False]


@pytest.mark.parametrize(
    "row, match",
    [
        (dict(link_id=1, a=0, b=0, range_m=1.0, rate_bps=1.0), "different nodes"),
        (dict(link_id=1, a=-1, b=0, range_m=1.0, rate_bps=1.0), "negative"),
        (dict(link_id=1, a=0, b=1, range_m=math.inf, rate_bps=1.0), "range_m"),
        (dict(link_id=1, a=0, b=1, range_m=1.0, rate_bps=0.0), "rate_bps"),
        (dict(link_id=1, a=0, b=1, range_m=1.0, rate_bps=1.0, loss=1.5), "loss"),
        (dict(link_id=1, a=0, b=1, range_m=1.0, rate_bps=1.0, range_rate_mps=3e8), "light"),
        (dict(link_id=1, a=0, b=1, range_m=1.0), "missing key 'rate_bps'"),
        (dict(link_id=1, a=0, b=1, range_m=1.0, rate_bps=1.0, speed=3), "unknown key"),
    ],
)
def test_invalid_rows(row, match):
    with pytest.raises(NetemuError, match=match):
        LinkTable.from_rows(0, [row])


def test_down_rows_are_not_validated():
    table = LinkTable.from_rows(0, [dict(link_id=1, a=0, b=1, up=False, range_m=math.inf,
                                         rate_bps=0.0, loss=math.nan)])  # fmt: skip
    assert len(table) == 1


@pytest.mark.parametrize(
    "data, match",
    [
        ([], "expected an object"),
        ({"version": 2, "t_ns": 0, "columns": {}}, "version"),
        ({"version": 1, "t_ns": 1.5, "columns": {}}, "t_ns"),
        ({"version": 1, "t_ns": 0, "columns": []}, "columns"),
        ({"version": 1, "t_ns": 0, "columns": {"link_id": []}}, "column 'a'"),
    ],
)
def test_invalid_plain_data(data, match):
    with pytest.raises(NetemuError, match=match):
        LinkTable.from_dict(data)


def test_ragged_columns_rejected():
    data = LinkTable.from_rows(0, [dict(link_id=1, a=0, b=1, range_m=1.0, rate_bps=1.0)]).to_dict()
    data["columns"]["loss"] = [0.0, 0.0]
    with pytest.raises(NetemuError, match="column 'loss' has 2 rows"):
        LinkTable.from_dict(data)
    data["columns"]["loss"] = ["x"]
    with pytest.raises(NetemuError, match="column 'loss'"):
        LinkTable.from_dict(data)


def test_table_is_read_only():
    table = LinkTable.from_rows(0, [dict(link_id=1, a=0, b=1, range_m=1.0, rate_bps=1.0)])
    with pytest.raises(ValueError):
        table.range_m[0] = 2.0
