"""Traffic: flow specs, payloads, generators (seeded, rates right) and presets/YAML."""

from __future__ import annotations

import numpy as np
import pytest

from netemu.errors import NetemuError, ScenarioError
from netemu.protocol import MessageType, Packet, RecordRoute, encode
from netemu.scenario import load_scenario
from netemu.traffic import (
    MIN_SIZE_BYTES,
    TRAFFIC_PAYLOAD_TYPE,
    FlowGenerator,
    FlowSpec,
    ResponderSpec,
    Traffic,
    load_traffic,
    parse_traffic_payload,
    traffic_payload,
)
from support import REPO

S = 1_000_000_000


@pytest.fixture(scope="module")
def demo():
    return load_scenario(REPO / "topologies" / "demo-small.yaml")


def flow(**kw) -> FlowSpec:
    base = dict(flow_id=1, name="f", src=1, dst=2, rate_pps=10, start_ns=0, stop_ns=10 * S)
    return FlowSpec(**{**base, **kw})


def all_times(gen: FlowGenerator) -> list[int]:
    times = []
    while gen.next_ns is not None:
        t = gen.next_ns
        times += [t] * len(gen.take(t))
    return times


@pytest.mark.parametrize("record_route", [True, False])
def test_payload_makes_packet_of_size_bytes(record_route):
    f = flow(size_bytes=1000, record_route=record_route)
    packet = Packet(
        type=MessageType.DATA,
        src=1,
        dst=2,
        body=traffic_payload(1, 5, f.payload_bytes),
        payload_type=TRAFFIC_PAYLOAD_TYPE,
        extensions=(RecordRoute(),) if record_route else (),
    )
    wire = encode(packet)
    assert len(wire) == 1000
    assert parse_traffic_payload(packet.body) == (1, 5)
    assert wire[36 + (4 if record_route else 0) :][:8] == bytes([0, 0, 0, 1, 0, 0, 0, 5])


def test_flow_spec_round_trip_and_validation():
    f = flow(pattern="bulk", total_bytes=10_500, size_bytes=1000)
    assert FlowSpec.from_dict(f.to_dict()) == f and f.packets == 11
    r = ResponderSpec(flow_id=9, name="r", node=2, dst=1001, flows=(1,), size_ratio=0.1)
    assert ResponderSpec.from_dict(r.to_dict()) == r
    assert r.result_size_bytes(1000) == 100 and r.result_size_bytes(100) == MIN_SIZE_BYTES
    with pytest.raises(NetemuError, match="rate_pps"):
        flow(rate_pps=0)
    with pytest.raises(NetemuError, match="size_bytes"):
        flow(size_bytes=20)
    with pytest.raises(NetemuError, match="total_bytes"):
        flow(pattern="bulk")
    with pytest.raises(NetemuError, match="pattern"):
        flow(pattern="burst")
    with pytest.raises(NetemuError, match="same node"):
        flow(dst=1)
    with pytest.raises(NetemuError, match="unknown keys"):
        FlowSpec.from_dict({**flow().to_dict(), "rate": 3})
    with pytest.raises(NetemuError, match="used twice"):
        Traffic(flows=(flow(), flow(name="g")))


def test_constant_schedule_exact():
    gen = FlowGenerator(flow(rate_pps=4, start_ns=S, stop_ns=3 * S))
    assert all_times(gen) == [S + k * S // 4 for k in range(8)]
    assert gen.seq == 8 and gen.take(10 * S) == []


def test_take_catches_up_in_bounded_bursts_and_stop():
    gen = FlowGenerator(flow(rate_pps=1000, stop_ns=S), max_burst=100)
    assert len(gen.take(S)) == 100 and gen.next_ns == 100 * 1_000_000
    gen.stop()
    assert gen.next_ns is None and gen.take(2 * S) == []


def test_bulk_sends_total_bytes_paced():
    gen = FlowGenerator(flow(pattern="bulk", total_bytes=25_000, size_bytes=1000, rate_pps=100))
    times = all_times(gen)
    assert len(times) == 25 and times[-1] == 24 * S // 100


def test_poisson_seeded_and_rate_right():
    f = flow(pattern="poisson", rate_pps=200, stop_ns=50 * S)
    a = all_times(FlowGenerator(f, seed=1))
    assert a == all_times(FlowGenerator(f, seed=1))
    assert a != all_times(FlowGenerator(f, seed=2))
    # 10,000 expected packets: count within 4 sigma, gaps exponential (CV ~ 1)
    assert abs(len(a) - 10_000) < 4 * 100
    gaps = np.diff(a) / S
    assert abs(gaps.mean() - 1 / 200) < 0.0002
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.05
    other = all_times(
        FlowGenerator(flow(flow_id=2, pattern="poisson", rate_pps=200, stop_ns=50 * S), seed=1)
    )
    assert other[:10] != a[:10]  # flows are seeded by (seed, flow_id)


def test_presets_are_deterministic_and_follow_rules(demo):
    duration = 60 * S
    for name in ("ground-to-ground", "eo-to-ground", "compute-offload"):
        t1 = load_traffic(name, demo, duration_ns=duration)
        t2 = load_traffic(name, demo, duration_ns=duration)
        assert t1 == t2 and t1.flows
        for f in t1.flows:
            assert (f.rate_pps, f.size_bytes, f.pattern) == (10.0, 1000, "constant")
            assert f.start_ns == S and f.stop_ns == 58 * S
    g2g = load_traffic("ground-to-ground", demo, duration_ns=duration)
    kinds = {n.number: n.kind for n in demo.nodes}
    assert len(g2g.flows) == 5
    assert all(kinds[f.src] == kinds[f.dst] == "ground" for f in g2g.flows)
    names = {demo.node(f.src).name: demo.node(f.dst).name for f in g2g.flows}
    assert names["gs-madrid"] == "gs-sydney" and names["gs-sydney"] == "gs-madrid"
    eo = load_traffic("eo-to-ground", demo, duration_ns=duration)
    assert len(eo.flows) == 8 and len({f.src for f in eo.flows}) == 8
    assert all(kinds[f.src] == "satellite" and kinds[f.dst] == "ground" for f in eo.flows)
    co = load_traffic("compute-offload", demo, duration_ns=duration)
    compute = {r.node for r in co.responders}
    assert len(compute) == 4 and not compute & {f.src for f in co.flows}
    assert {f.dst for f in co.flows} == compute
    assert sorted(x for r in co.responders for x in r.flows) == [f.flow_id for f in co.flows]
    assert all(kinds[r.dst] == "ground" for r in co.responders)
    ids = [f.flow_id for f in co.flows] + [r.flow_id for r in co.responders]
    assert ids == list(range(1, len(ids) + 1))
    assert co.flows_from(co.flows[0].src) == [co.flows[0]]
    assert load_traffic("none", demo, duration_ns=duration) == Traffic(source="none")


def test_yaml_file(tmp_path, demo):
    path = tmp_path / "t.yaml"
    path.write_text(
        """
preset: ground-to-ground
defaults: {rate_pps: 5, size_bytes: 500, start_s: 2}
flows:
  - name: sat-dump
    src: iridium-p01-s01
    dst: madrid
    pattern: bulk
    total_bytes: 100000
  - {src: 1002, dst: gs-beijing, pattern: poisson, rate_pps: 20, stop_s: 30, record_route: false}
responders:
  - {node: beijing, dst: gs-madrid, flows: [sat-dump], size_ratio: 0.5}
"""
    )
    t = load_traffic(str(path), demo, duration_ns=60 * S, seed=3)
    assert len(t.flows) == 7
    dump, poisson = t.flows[5], t.flows[6]
    assert dump.name == "sat-dump" and dump.src == 1 and dump.dst == 1002
    assert (dump.pattern, dump.total_bytes, dump.rate_pps, dump.start_ns) == (
        "bulk",
        100000,
        5,
        2 * S,
    )
    assert poisson.name == "gs-madrid-gs-beijing" and poisson.stop_ns == 30 * S
    assert not poisson.record_route and poisson.size_bytes == 500
    [r] = t.responders
    assert (r.node, r.dst, r.flows, r.size_ratio, r.flow_id) == (1003, 1002, (6,), 0.5, 8)


@pytest.mark.parametrize(
    ("text", "key", "what"),
    [
        ("flows: [{src: nowhere, dst: 1001}]", "flows[0].src", "no node named"),
        ("flows: [{src: 1001}]", "flows[0].dst", "missing"),
        ("flows: [{src: 1001, dst: 1002, rate_pps: -1}]", "flows[0].rate_pps", "> 0"),
        ("flows: [{src: 1001, dst: 1002, pattern: wave}]", "flows[0].pattern", "expected one"),
        ("flows: [{src: 1001, dst: 1002, pattern: bulk}]", "flows[0].total_bytes", "bulk"),
        ("flows: [{src: 1001, dst: 1002, sizes: 3}]", "flows[0]", "unknown keys"),
        ("defaults: {start_s: -1}", "defaults.start_s", "seconds"),
        ("preset: everything", "preset", "expected one of"),
        ("flow: []", "(top level)", "unknown keys"),
        ("responders: [{node: 1001, dst: 1002}]", "responders[0].flows", "no flow"),
        (
            "flows: [{src: 1001, dst: 1002}]\nresponders: [{node: 1002, dst: 1003, flows: [x]}]",
            "responders[0].flows[0]",
            "no flow named",
        ),
    ],
)
def test_yaml_errors_name_the_key(tmp_path, demo, text, key, what):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=what) as info:
        load_traffic(str(path), demo, duration_ns=60 * S)
    assert info.value.key == key and info.value.path == str(path)


def test_unknown_spec_is_an_error(demo):
    with pytest.raises(ScenarioError, match="not a preset"):
        load_traffic("no-such-file.yaml", demo, duration_ns=S)


def test_skip_until_drops_the_past_without_sending():
    gen = FlowGenerator(flow(rate_pps=10, stop_ns=100 * S))
    assert gen.skip_until(50 * S + 1) == 501
    assert gen.next_ns == 50 * S + S // 10 and gen.take(50 * S + S // 10) == [501]
