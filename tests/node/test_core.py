"""NodeCore: forwarding, echo/record-route, expiry, hop limit, store-and-forward, NACKs."""

from __future__ import annotations

import pytest

from netemu.node import Deliver, Drop, NodeConfig, NodeCore, NodeDropReason, Originated, Transmit
from netemu.protocol import (
    Echo,
    Flags,
    Hop,
    MessageType,
    Nack,
    NackReason,
    Packet,
    PayloadType,
    RecordRoute,
    UnknownExtension,
    decode,
    encode,
)
from netemu.timebase import NS_PER_S

from .netsim import MiniNet, fib, line_tables

A, B, C = 1, 2, 3
MS = 1_000_000
S = NS_PER_S
EPOCH_DTN_NS = 820_454_400 * S  # 2026-01-01T00:00:00Z in DTN time


def of(actions, cls):
    return [a for a in actions if isinstance(a, cls)]


def line(**settings) -> MiniNet:
    """A - B - C, links up at t=0, 1 ms one-way delay, shortest-path tables."""
    settings.setdefault("epoch_dtn_ns", EPOCH_DTN_NS)
    cores = [NodeCore(n, **settings) for n in (A, B, C)]
    net = MiniNet(cores, [(A, B), (B, C)], delay_ns=MS)
    for n, table in line_tables([A, B, C]).items():
        net.cores[n].set_table(table, 0)
    net.set_link(0, A, B, True)
    net.set_link(0, B, C, True)
    net.run(10 * MS)  # HELLOs
    return net


def data_from(net, node):
    return [p for p in net.deliveries(node) if p.type is MessageType.DATA]


# ---------------------------------------------------------------------------- forwarding


def test_data_reaches_c_via_b_with_hop_limit_decremented():
    net = line()
    net.call(20 * MS, A, "send_local", C, b"hello")
    net.run(100 * MS)
    [got] = data_from(net, C)
    assert got.body == b"hello" and got.src == A and got.dst == C
    assert got.payload_type == PayloadType.RAW
    assert got.hop_limit == 63  # sent with 64, one forwarder
    assert got.creation_time_ns == EPOCH_DTN_NS + 20 * MS
    tx = [a for _, n, a in net.log if n == B and isinstance(a, Transmit) and a.neighbour == C]
    assert [t.packet.hop_limit for t in tx if t.packet.type is MessageType.DATA] == [63]
    assert net.cores[B].counters.forwarded == 1
    assert net.cores[C].counters.delivered >= 1
    assert net.check_balance()["delivered"] >= 1


def test_hello_on_link_up_teaches_the_neighbour():
    net = line(node_name="sat")
    hellos = [p for p in net.deliveries(B) if p.type is MessageType.HELLO]
    assert {p.src for p in hellos} == {A, C}
    assert all(p.dst == 0xFFFF_FFFF and p.hop_limit == 1 for p in hellos)
    info = net.cores[B].neighbours[A]
    assert info.node_name == "sat" and info.link == A
    assert info.owlt_ns == MS  # receive time minus creation time
    assert info.link_mtu == net.cores[A].config.link_mtu


def test_echo_with_record_route_comes_back_with_hops_and_times():
    net = line()
    net.call(50 * MS, A, "echo_request", C, ident=7, seq=3, data=b"ping")
    net.run(200 * MS)
    [req] = [p for p in net.deliveries(C) if p.type is MessageType.ECHO_REQUEST]
    [reply] = [p for p in net.deliveries(A) if p.type is MessageType.ECHO_REPLY]
    assert reply.body == Echo(7, 3, b"ping") and reply.src == C and reply.dst == A
    [rr] = [e for e in reply.extensions if isinstance(e, RecordRoute)]
    t0 = EPOCH_DTN_NS + 50 * MS
    # A and B forward the request; C (the reply's source) and B forward the reply; A does not.
    assert rr.hops == (
        Hop(A, t0),
        Hop(B, t0 + 1 * MS),
        Hop(C, t0 + 2 * MS),
        Hop(B, t0 + 3 * MS),
    )
    assert rr.missed == 0
    [req_rr] = [e for e in req.extensions if isinstance(e, RecordRoute)]
    assert [h.node for h in req_rr.hops] == [A, B]  # the destination does not append


def test_echo_without_record_route_has_no_extension():
    net = line()
    net.call(20 * MS, A, "echo_request", C, record_route=False, seq=1)
    net.run(100 * MS)
    [reply] = [p for p in net.deliveries(A) if p.type is MessageType.ECHO_REPLY]
    assert reply.extensions == ()


def test_send_to_self_is_delivered_locally():
    core = NodeCore(A)
    actions = core.send_local(A, b"loop", 5)
    assert [type(a) for a in actions] == [Originated, Deliver]
    assert actions[1].from_neighbour is None


# ---------------------------------------------------------------------------- lifetime


def test_expired_packet_is_dropped_by_the_forwarder():
    net = line()
    # lifetime 1 ms: expiry == arrival at B (not yet past), B's forward reaches C 1 ms late.
    net.call(20 * MS, A, "send_local", C, b"x", lifetime_ms=1)
    net.run(100 * MS)
    assert data_from(net, C) == []
    [drop] = [d for d in net.drops(C) if d.packet and d.packet.type is MessageType.DATA]
    assert drop.reason == NodeDropReason.LIFETIME_EXPIRED == "lifetime_expired"
    assert net.check_balance()


def test_expired_packet_with_report_drop_nacks_the_source():
    net = line()
    net.call(20 * MS, A, "send_local", C, b"x", lifetime_ms=1, flags=Flags.REPORT_DROP)
    net.run(100 * MS)
    [nack] = [p for p in net.deliveries(A) if p.type is MessageType.NACK]
    assert nack.src == C and nack.dst == A
    assert nack.body.reason == NackReason.LIFETIME_EXPIRED and nack.body.ref_src == A
    assert nack.flags == 0  # a NACK never carries REPORT_DROP or ACK_REQUESTED


def test_zero_creation_time_is_never_expired():
    net = line(clock_synchronised=False)
    net.call(20 * MS, A, "send_local", C, b"x", lifetime_ms=0)
    net.run(100 * MS)
    [got] = data_from(net, C)
    assert got.creation_time_ns == 0


def test_expiry_is_strictly_in_the_past():
    core = NodeCore(B, epoch_dtn_ns=EPOCH_DTN_NS)
    core.set_table(fib(B, {C: C}), 0)
    core.link_up(C, 0)
    pkt = Packet(
        type=MessageType.DATA,
        src=A,
        dst=B,
        body=b"a",
        payload_type=PayloadType.RAW,
        creation_time_ns=EPOCH_DTN_NS + 0,
        lifetime_ms=5,
    )
    assert of(core.receive(encode(pkt), A, 5 * MS), Deliver)
    assert of(core.receive(encode(pkt), A, 5 * MS + 1), Drop)[0].reason == "lifetime_expired"


# ---------------------------------------------------------------------------- hop limit


@pytest.mark.parametrize(
    ("hop_limit", "delivered_at_c", "reason"),
    [(1, False, "hop_limit_exceeded"), (2, True, None), (64, True, None)],
)
def test_hop_limit_along_the_line(hop_limit, delivered_at_c, reason):
    net = line()
    net.call(20 * MS, A, "send_local", C, b"h", hop_limit=hop_limit, flags=Flags.REPORT_DROP)
    net.run(100 * MS)
    assert bool(data_from(net, C)) is delivered_at_c
    drops = [d for d in net.drops(B) if d.packet and d.packet.type is MessageType.DATA]
    assert [d.reason for d in drops] == ([reason] if reason else [])
    if reason:
        [nack] = [p for p in net.deliveries(A) if p.type is MessageType.NACK]
        assert nack.body.reason == NackReason.HOP_LIMIT_EXCEEDED
    net.check_balance()


@pytest.mark.parametrize("hop_limit", [0, 1])
def test_destination_accepts_hop_limit_0_and_1(hop_limit):
    core = NodeCore(B)
    pkt = Packet(type=MessageType.DATA, src=A, dst=B, body=b"z", payload_type=1, hop_limit=0)
    pkt = Packet(**{**_fields(pkt), "hop_limit": hop_limit})
    assert [type(a) for a in core.receive(encode(pkt), A, 0)] == [Deliver]


def test_forwarder_drops_hop_limit_0():
    core = NodeCore(B)
    core.set_table(fib(B, {C: C}), 0)
    pkt = Packet(type=MessageType.DATA, src=A, dst=C, body=b"z", payload_type=1, hop_limit=0)
    [drop] = core.receive(encode(pkt), A, 0)
    assert drop.reason == "hop_limit_exceeded"


def test_source_does_not_send_hop_limit_0():
    core = NodeCore(A)
    core.set_table(fib(A, {C: B}), 0)
    actions = core.send_local(C, b"z", 0, hop_limit=0)
    assert [type(a) for a in actions] == [Originated, Drop]
    assert actions[1].reason == "hop_limit_exceeded"


def _fields(p: Packet) -> dict:
    return {f: getattr(p, f) for f in p.__dataclass_fields__}


# ---------------------------------------------------------------------------- no route


def test_no_route_drops_and_nacks_the_source():
    net = line()
    net.cores[B].set_table(fib(B, {A: A}), 30 * MS)  # B forgets C
    net.call(40 * MS, A, "send_local", C, b"n", flags=Flags.REPORT_DROP)
    net.run(100 * MS)
    [drop] = [d for d in net.drops(B) if d.packet.type is MessageType.DATA]
    assert drop.reason == "no_route"
    [nack] = [p for p in net.deliveries(A) if p.type is MessageType.NACK]
    assert nack.body == Nack(A, drop.packet.packet_id, NackReason.NO_ROUTE, 0)
    assert net.check_balance() == {"delivered": 5, "no_route": 1}  # 4 HELLOs + the NACK


def test_no_route_without_table_or_report_drop():
    core = NodeCore(A)
    actions = core.send_local(C, b"n", 0)
    assert [type(a) for a in actions] == [Originated, Drop]
    assert actions[1].reason == "no_route"
    assert core.counters.dropped["no_route"] == 1


def test_entry_past_valid_until_is_no_route():
    core = NodeCore(A)
    core.set_table(fib(A, {C: B}, until_ns=10 * S), 0)
    assert of(core.send_local(C, b"a", 9 * S), Transmit)
    assert of(core.send_local(C, b"a", 10 * S), Drop)[0].reason == "no_route"


def test_hold_on_no_route_until_a_table_arrives():
    core = NodeCore(A, hold_on_no_route=True)
    assert [type(a) for a in core.send_local(C, b"w", 0)] == [Originated]
    assert core.held == 1
    [tx] = of(core.set_table(fib(A, {C: B}), 5), Transmit)
    assert tx.neighbour == B and core.held == 0


# ---------------------------------------------------------------------------- store-and-forward


def test_hold_until_contact_start_then_release_by_tick():
    core = NodeCore(A, epoch_dtn_ns=EPOCH_DTN_NS)
    core.set_table(fib(A, {C: (B, 10 * S)}), 0)
    assert [type(a) for a in core.send_local(C, b"later", 1 * S)] == [Originated]
    assert core.held == 1 and core.next_deadline_ns() == 10 * S
    assert core.tick(9 * S) == []
    [tx] = core.tick(10 * S)
    assert isinstance(tx, Transmit) and tx.neighbour == B
    assert decode(tx.frame).body == b"later" and core.held == 0
    assert core.next_deadline_ns() is None


def test_hold_until_contact_start_released_early_by_link_up():
    core = NodeCore(A)
    core.set_table(fib(A, {C: (B, 10 * S)}), 0)
    core.send_local(C, b"1", 1 * S)
    actions = core.link_up(B, 8 * S)
    kinds = [(type(a).__name__, a.packet.type.name) for a in actions]
    assert kinds == [
        ("Originated", "HELLO"),
        ("Transmit", "HELLO"),
        ("Transmit", "DATA"),
    ]
    # with the link already up, a hold entry does not hold
    assert of(core.send_local(C, b"2", 9 * S), Transmit)


def test_link_down_holds_until_link_up():
    core = NodeCore(A)
    core.set_table(fib(A, {C: B}), 0)
    core.link_down(B, 0)
    core.send_local(C, b"1", 1)
    core.send_local(C, b"2", 2, priority=7)
    assert core.held == 2 and core.next_deadline_ns() is not None  # expiry
    assert core.tick(5 * S) == []
    sent = [a.packet.body for a in of(core.link_up(B, 6 * S), Transmit) if a.packet.body != b""]
    # the HELLO goes first; then priority 7 before priority 0
    assert [b for b in sent if isinstance(b, bytes)] == [b"2", b"1"]


def test_held_packet_expires_on_tick():
    core = NodeCore(A, epoch_dtn_ns=EPOCH_DTN_NS)
    core.set_table(fib(A, {C: (B, 10 * S)}), 0)
    core.send_local(C, b"x", 0, lifetime_ms=20_000)
    core.set_table(fib(A, {C: (B, 30 * S)}), 1 * S)  # the contact moves past the expiry
    assert core.held == 0  # dropped when re-routed: cannot reach the next hop in time
    core.set_table(fib(A, {C: (B, 10 * S)}), 2 * S)
    core.send_local(C, b"y", 2 * S, lifetime_ms=5_000)  # expires at 7 s, contact at 10 s
    assert core.held == 0
    core.link_down(B, 2 * S)
    core.set_table(fib(A, {C: B}), 2 * S)
    core.send_local(C, b"z", 2 * S, lifetime_ms=5_000)
    assert core.held == 1 and core.next_deadline_ns() == 7 * S + 1
    assert core.tick(7 * S) == []
    [drop] = core.tick(7 * S + 1)
    assert drop.reason == "lifetime_expired" and drop.packet.body == b"z"
    assert core.counters.dropped["lifetime_expired"] == 3


def test_queue_full_drops_with_reason():
    core = NodeCore(A, queue_limit_packets=2)
    core.set_table(fib(A, {C: (B, 10 * S)}), 0)
    for i in range(2):
        assert not of(core.send_local(C, bytes([i]), 0), Drop)
    [drop] = of(core.send_local(C, b"3", 0), Drop)
    assert drop.reason == NodeDropReason.QUEUE_FULL and core.held == 2


def test_queue_byte_limit():
    core = NodeCore(A, queue_limit_bytes=100)
    core.set_table(fib(A, {C: (B, 10 * S)}), 0)
    assert not of(core.send_local(C, bytes(50), 0), Drop)  # 86 octets
    [drop] = of(core.send_local(C, bytes(1), 0), Drop)  # 37 more would exceed 100
    assert drop.reason == "queue_full"
    assert core.stats()["held_bytes"] == 86


def test_queue_full_nacks_previous_hop_when_ack_requested():
    core = NodeCore(B, queue_limit_packets=0)
    core.set_table(fib(B, {C: (C, 10 * S)}), 0)
    pkt = Packet(
        type=MessageType.DATA, src=A, dst=C, body=b"q", payload_type=1, flags=Flags.ACK_REQUESTED
    )
    actions = core.receive(encode(pkt), A, 0)
    assert of(actions, Drop)[0].reason == "queue_full"
    [tx] = of(actions, Transmit)
    assert tx.neighbour == A and tx.packet.type is MessageType.NACK and tx.packet.hop_limit == 1
    assert tx.packet.body.reason == NackReason.QUEUE_FULL


# ---------------------------------------------------------------------------- ACK, MTU, extensions


def test_ack_requested_gets_an_ack_from_the_next_hop():
    net = line()
    net.call(20 * MS, A, "send_local", C, b"a", flags=Flags.ACK_REQUESTED)
    net.run(100 * MS)
    acks_at_a = [p for p in net.deliveries(A) if p.type is MessageType.ACK]
    acks_at_b = [p for p in net.deliveries(B) if p.type is MessageType.ACK]
    assert [(p.src, p.hop_limit) for p in acks_at_a] == [(B, 1)]
    assert [p.src for p in acks_at_b] == [C]  # hop by hop: C acknowledges to B
    assert acks_at_a[0].body.ref_src == A
    net.check_balance()


def test_too_big_for_the_link_mtu():
    core = NodeCore(A)
    core.set_table(fib(A, {C: B}), 0)
    core.link_up(B, 0, mtu=1280)
    assert of(core.send_local(C, bytes(1280 - 36), 0), Transmit)
    [drop] = of(core.send_local(C, bytes(1280 - 35), 0), Drop)
    assert drop.reason == "too_big"


def test_too_big_nack_carries_the_mtu():
    core = NodeCore(B)
    core.set_table(fib(B, {C: C}), 0)
    core.link_up(C, 0, mtu=1500)
    pkt = Packet(
        type=MessageType.DATA, src=A, dst=C, body=bytes(2000), payload_type=1,
        flags=Flags.REPORT_DROP,
    )  # fmt: skip
    actions = core.receive(encode(pkt), A, 0)
    assert of(actions, Drop)[0].reason == "too_big"
    [nack] = [a.packet for a in of(actions, Originated) if a.packet.type is MessageType.NACK]
    assert nack.body.reason == NackReason.TOO_BIG and nack.body.info == 1500


def test_record_route_counts_missed_hops_when_the_area_is_full():
    core = NodeCore(B)
    core.set_table(fib(B, {C: C}), 0)
    full = RecordRoute(hops=tuple(Hop(9, i) for i in range(84)))  # 3 + 1 + 84*12 = 1012 octets
    pkt = Packet(type=MessageType.DATA, src=A, dst=C, body=b"r", payload_type=1, extensions=(full,))
    [tx] = of(core.receive(encode(pkt), A, 0), Transmit)
    [rr] = tx.packet.extensions
    assert len(rr.hops) == 84 and rr.missed == 1


def test_unknown_critical_extension_is_dropped_noncritical_is_kept():
    core = NodeCore(B)
    core.set_table(fib(B, {C: C}), 0)
    keep = UnknownExtension(0x70, b"\x01\x02")
    pkt = Packet(type=MessageType.DATA, src=A, dst=C, body=b"e", payload_type=1, extensions=(keep,))
    [tx] = of(core.receive(encode(pkt), A, 0), Transmit)
    assert tx.packet.extensions == (keep,)
    crit = Packet(**{**_fields(pkt), "extensions": (UnknownExtension(0xF0, b""),)})
    [drop] = core.receive(encode(crit), A, 0)
    assert drop.reason == "unknown_critical_extension"


def test_unsupported_payload_type_at_destination():
    core = NodeCore(C, payload_types={PayloadType.RAW})
    pkt = Packet(type=MessageType.DATA, src=A, dst=C, body=b"\x9f\xff", payload_type=2)
    [drop] = core.receive(encode(pkt), B, 0)
    assert drop.reason == "unsupported_payload_type"


def test_invalid_addresses_are_dropped_without_nack():
    core = NodeCore(B)
    core.set_table(fib(B, {C: C}), 0)
    base = dict(type=MessageType.DATA, body=b"i", payload_type=1, flags=Flags.REPORT_DROP)
    for src, dst in [(0, C), (A, 0), (A, 0xFFFF_FFFF)]:
        actions = core.receive(encode(Packet(src=src, dst=dst, **base)), A, 0)
        assert [type(a) for a in actions] == [Drop]
        assert actions[0].reason == "invalid_address"


# ---------------------------------------------------------------------------- API misuse, config


def test_table_for_another_node_raises():
    with pytest.raises(ValueError, match="node 2"):
        NodeCore(A).set_table(fib(B, {C: C}), 0)


def test_config_validation():
    with pytest.raises(ValueError):
        NodeConfig(default_hop_limit=0)
    with pytest.raises(ValueError):
        NodeConfig(link_mtu=100)
    with pytest.raises(TypeError):
        NodeCore(A, config=NodeConfig(), queue_limit_packets=3)
    with pytest.raises(ValueError):
        NodeCore(0)


def test_packet_ids_increase_and_wrap():
    core = NodeCore(A, first_packet_id=0xFFFF_FFFF)
    ids = [of(core.send_local(A, b"", t), Originated)[0].packet.packet_id for t in range(2)]
    assert ids == [0xFFFF_FFFF, 0]


def test_stats_are_json_ready():
    import json

    net = line()
    net.call(20 * MS, A, "send_local", C, b"s")
    net.run(100 * MS)
    stats = json.loads(json.dumps(net.cores[B].stats()))
    assert stats["forwarded"] == 1 and stats["node"] == B and stats["held_packets"] == 0


def test_route_to_all_neighbours_is_link_local():
    from netemu.protocol import Route

    a, b = NodeCore(A), NodeCore(B)
    pkt = Packet(type=MessageType.ROUTE, src=A, dst=0xFFFF_FFFF, body=Route(0x8001, 1), hop_limit=1)
    with pytest.raises(ValueError, match="neighbour="):
        a.originate(pkt, 0)
    [orig, tx] = a.originate(pkt, 0, neighbour=B)
    assert isinstance(orig, Originated) and tx.neighbour == B
    [got] = b.receive(tx.frame, A, 1)
    assert isinstance(got, Deliver) and got.packet.body == Route(0x8001, 1)


def test_new_table_reroutes_held_packets_to_a_new_next_hop():
    core = NodeCore(A)
    core.set_table(fib(A, {C: (B, 10 * S)}), 0)
    core.send_local(C, b"m", 0)
    [tx] = of(core.set_table(fib(A, {C: C}), 1 * S), Transmit)
    assert tx.neighbour == C and core.held == 0
