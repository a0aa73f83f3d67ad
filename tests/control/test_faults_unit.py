"""Fault model, parsing, regions, link overrides and their use by the epoch computer (no
processes; the live behaviour is tests/runtime/test_faults.py)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from netemu.control.controller import EpochComputer
from netemu.control.faults import (
    Fault,
    FaultError,
    LinkOverrides,
    Region,
    check_fault,
    load_fault_schedule,
)
from netemu.fabric.table import LinkTable
from netemu.runtime.eventlog import EventLog, read_events
from netemu.scenario import load_scenario
from support import REPO

RING = REPO / "tests" / "runtime" / "data" / "faults-ring.yaml"
DEMO = REPO / "topologies" / "demo-small.yaml"


@pytest.fixture(scope="module")
def ring():
    return load_scenario(RING)


def test_fault_from_dict_round_trip():
    f = Fault.from_dict({"op": "fault", "id": "x", "fault": "link-loss", "a": 1, "b": "2",
                         "loss": "0.25"})  # fmt: skip
    assert (f.kind, f.a, f.b, f.loss) == ("link-loss", "1", "2", 0.25)
    assert Fault.from_dict(f.to_dict()) == f
    p = Fault.from_dict({"fault": "partition", "nodes": "a-*,b", "box": "0,10,-5,5", "name": "w"})
    assert p.region == Region(nodes=("a-*", "b"), box=(0, 10, -5, 5))
    assert Fault.from_dict(p.to_dict()) == p
    assert Fault.from_dict({"kind": "node-kill", "node": "gs-x"}).a == "gs-x"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fault": "link-melt", "a": 1, "b": 2}, "unknown fault 'link-melt'"),
        ({"fault": "link-cut", "a": 1}, "needs two nodes"),
        ({"fault": "link-cut", "a": 1, "b": 1}, "same node"),
        ({"fault": "link-loss", "a": 1, "b": 2}, "needs loss"),
        ({"fault": "link-loss", "a": 1, "b": 2, "loss": 1.5}, "in [0, 1]"),
        ({"fault": "link-loss", "a": 1, "b": 2, "loss": True}, "must be a number"),
        ({"fault": "link-cut", "a": 1, "b": 2, "loss": 0.1}, "takes no loss"),
        ({"fault": "node-kill"}, "needs a node"),
        ({"fault": "partition"}, "needs a region"),
        ({"fault": "partition", "box": [0, 1, 2]}, "four numbers"),
        ({"fault": "partition", "box": [10, 0, 0, 1]}, "latitudes"),
        ({"fault": "broker-restart", "colour": "red"}, "unknown keys colour"),
        ({"a": 1}, "no fault kind"),
    ],
)
def test_fault_validation(data, message):
    with pytest.raises(FaultError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Fault.from_dict(data)


def test_region_members(ring):
    assert Region(nodes=("ring-p02-*",)).members(ring) == frozenset(range(7, 13))
    assert Region(nodes=("1", "ring-p01-s02", "quito")).members(ring) == {1, 2, 1001}
    # a box around Quito takes the station, not the satellites
    assert Region(box=(-5, 5, -80, -75)).members(ring) == {1001}
    with pytest.raises(FaultError, match="holds no node"):
        Region(box=(40, 50, 0, 10)).members(ring)
    with pytest.raises(FaultError, match="matches no node"):
        Region(nodes=("mars-*",)).members(ring)
    with pytest.raises(FaultError, match="every node"):
        Region(nodes=("*",)).members(ring)


def test_region_box_across_the_antimeridian():
    demo = load_scenario(DEMO)
    # Sydney (151 E) and nothing in the Americas: lon 140 .. -170 wraps
    members = Region(box=(-60, 0, 140, -170)).members(demo)
    assert members == {demo.node("gs-sydney").number}
    europe = Region(box=(35, 80, -10, 20)).members(demo)
    assert europe == {demo.node("gs-madrid").number, demo.node("gs-svalbard").number}


def test_check_fault_names_unknown_nodes(ring):
    assert check_fault(Fault("link-cut", "ring-p01-s01", "2"), ring) == {"a": 1, "b": 2}
    with pytest.raises(FaultError, match="no node 'nowhere'"):
        check_fault(Fault("node-kill", "nowhere"), ring)


def test_overrides_masks_and_tables():
    o = LinkOverrides()
    assert not o
    o.cut_link(2, 1)
    o.set_loss(3, 4, 0.3)
    a = np.array([1, 3, 4, 5])
    b = np.array([2, 4, 3, 6])
    assert o.link_down_mask(a, b).tolist() == [True, False, False, False]
    assert o.loss_column(a, b, np.zeros(4)).tolist() == [0, 0.3, 0.3, 0]
    o.partition("p", {5})
    assert o.link_down_mask(a, b).tolist() == [True, False, False, True]
    assert o.affected_links(a, b) == [(1, 2), (3, 4), (5, 6)]
    again = LinkOverrides.from_dict(o.to_dict())
    assert again.to_dict() == o.to_dict()
    # a table over node indices: numbers [1, 2, 3, 4] -> indices 0..3
    table = LinkTable.from_rows(
        7, [{"link_id": i, "a": x, "b": y, "range_m": 1e6, "rate_bps": 1e9}
            for i, (x, y) in enumerate([(0, 1), (2, 3), (1, 2)])],
    )  # fmt: skip
    applied = o.apply_table(table, [1, 2, 3, 4])
    assert applied.up.tolist() == [False, True, True]
    assert applied.loss.tolist() == [0, 0.3, 0]
    assert applied.t_ns == 7 and table.up.tolist() == [True, True, True]
    o.set_loss(4, 3, 0)
    o.restore_link(1, 2)
    assert o.heal() == ["p"] and not o
    assert o.apply_table(table, [1, 2, 3, 4]) is table
    with pytest.raises(FaultError, match="bad faults message"):
        LinkOverrides.from_dict({"loss": [[1, 2, 7]]})


def test_schedule_file(tmp_path, ring):
    path = tmp_path / "f.yaml"
    path.write_text(
        "faults:\n"
        "  - {at_s: 9, fault: link-restore, a: 1, b: 2}\n"
        "  - {at_s: 3, fault: link-cut, a: ring-p01-s01, b: ring-p01-s02}\n"
        "  - {at_s: 5, fault: partition, nodes: [ring-p02-*], name: p2}\n"
    )
    faults = load_fault_schedule(path, ring)
    assert [(f.at_s, f.kind) for f in faults] == [
        (3.0, "link-cut"), (5.0, "partition"), (9.0, "link-restore"),
    ]  # fmt: skip
    path.write_text("faults:\n  - {fault: broker-restart}\n")
    with pytest.raises(FaultError, match=r"faults\[0\]: needs at_s"):
        load_fault_schedule(path, ring)
    path.write_text("faults:\n  - {at_s: 1, fault: node-kill, node: pluto}\n")
    with pytest.raises(FaultError, match=r"faults\[0\]: no node 'pluto'"):
        load_fault_schedule(path, ring)


@pytest.mark.parametrize("scheme", ["snapshot", "cgr"])
def test_epoch_computer_routes_around_cut_links(ring, scheme):
    computer = EpochComputer(ring, scheme=scheme, epoch_ns=10**9, duration_ns=20 * 10**9)
    first = computer.compute(0)
    o = LinkOverrides()
    o.cut_link(1, 2)
    o.set_loss(2, 3, 0.4)
    cut = computer.compute(1, overrides=o)
    assert cut.links_up == first.links_up - 1
    assert cut.route_changes > 0
    links = LinkTable.from_dict(cut.links)
    numbers = np.array([n.number for n in ring.nodes])
    a, b = numbers[links.a], numbers[links.b]
    row = lambda x, y: np.nonzero(((a == x) & (b == y)) | ((a == y) & (b == x)))[0][0]  # noqa: E731
    # the fabric applies the faults itself: the published table is the geometry's
    assert links.up[row(1, 2)] and links.loss[row(2, 3)] == 0
    applied = o.apply_table(links, numbers)
    assert not applied.up[row(1, 2)] and applied.loss[row(2, 3)] == pytest.approx(0.4)
    next_hop = {e["destination"]: e["next_hop"] for e in cut.tables[1]["table"]["entries"]}
    assert next_hop[2] != 2  # 1 no longer sends to 2 directly
    back = computer.compute(2, overrides=LinkOverrides())
    assert back.links_up == first.links_up and back.route_changes > 0
    partition = LinkOverrides()
    partition.partition("p2", range(7, 13))
    split = computer.compute(3, overrides=partition)
    region = set(range(7, 13))
    assert split.tables  # every table changed
    for number, payload in split.tables.items():
        dests = {e["destination"] for e in payload["table"]["entries"]}
        assert all((d in region) == (number in region) for d in dests), (number, dests)


def test_eventlog_append_after_a_kill(tmp_path):
    path = tmp_path / "5.csv"
    log = EventLog(path)
    log.write(t_ns=1, where=5, event="originated", src=5, dst=6, packet_id=1)
    log.close()
    with open(path, "a") as f:
        f.write("2,5,deliv")  # a row cut short by SIGKILL
    again = EventLog(path, append=True)
    again.write(t_ns=3, where=5, event="originated", src=5, dst=6, packet_id=2)
    again.close()
    rows = list(read_events(path))
    assert [r["t_ns"] for r in rows] == [1, 3]
    fresh = EventLog(tmp_path / "6.csv", append=True)  # nothing to append to: a new file
    fresh.close()
    assert (tmp_path / "6.csv").read_text().startswith("t_ns,")


def test_cli_arguments():
    from netemu.cli.fault_cmd import fault_from_args

    def ns(**kw):
        base = {"kind": "link-cut", "nodes": [], "loss": None, "region_nodes": None,
                "box": None, "name": None}  # fmt: skip
        return argparse.Namespace(**{**base, **kw})

    assert fault_from_args(ns(nodes=["a", "b"])) == Fault("link-cut", "a", "b")
    f = fault_from_args(ns(kind="partition", region_nodes="x-*", name="n"))
    assert f.region.nodes == ("x-*",) and f.name == "n"
    from netemu.errors import NetemuError

    with pytest.raises(NetemuError, match="takes two nodes"):
        fault_from_args(ns(nodes=["a"]))
    with pytest.raises(NetemuError, match="takes no node"):
        fault_from_args(ns(kind="broker-restart", nodes=["a"]))


def test_controller_refuses_what_it_cannot_do(ring):
    """Without a launcher behind it (external broker, external nodes) process faults are
    refused with a reason; link faults change the overrides the next epoch is computed with."""
    import asyncio

    from netemu.control.controller import Controller
    from netemu.runtime.clock import RunClock, monotonic_ns

    async def go():
        ctl = Controller(ring, run_id="t", broker_url="mqtt://127.0.0.1:1", epoch_ns=10**9,
                         duration_ns=10 * 10**9)  # fmt: skip
        refused = await ctl.inject_fault({"fault": "link-cut", "a": 1, "b": 2})
        assert not refused["ok"] and "not running" in refused["error"]
        ctl.clock = RunClock(monotonic_ns())
        ctl.progress.state = "running"
        broker = await ctl.inject_fault({"fault": "broker-restart"}, issued_by="cli")
        assert not broker["ok"] and "--broker" in broker["error"]
        node = await ctl.inject_fault(Fault("node-kill", "ring-p01-s03"))
        assert not node["ok"] and "not started by this controller" in node["error"]
        cut = await ctl.inject_fault({"fault": "link-cut", "a": "ring-p01-s01", "b": 2})
        assert cut["ok"] and cut["link"] == [1, 2] and cut["routes_from_epoch"] == 1
        heal = await ctl.inject_fault({"fault": "partition-heal"})
        assert not heal["ok"] and "no partition" in heal["error"]
        assert ctl.overrides.cut == {(1, 2)}
        assert [f["ok"] for f in ctl.faults] == [False, False, False, True, False]

    asyncio.run(go())
