"""NodeCore forwards a received frame by patching it (netemu.protocol.relay): the actions,
counters and held packets must be those of the reference path (decode, replace, encode)."""

from __future__ import annotations

import dataclasses
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netemu.errors import ProtocolError
from netemu.node import NodeCore, Transmit
from netemu.protocol import (
    NODE_NEIGHBOURS,
    Flags,
    Hop,
    MessageType,
    Packet,
    RecordRoute,
    UnknownExtension,
    encode,
)
from netemu.protocol.codec import fix_crc
from netemu.protocol.relay import relay_frame

from ..protocol.strategies import packets
from .netsim import fib

ME = 5
MS = 1_000_000
S = 1_000_000_000
EPOCH_DTN_NS = 820_454_400 * S
# destination -> next hop (link up, MTU drawn) / held until 10 s / link down / no link state
ROUTES = {7: 6, 8: (6, 10 * S), 9: 4, 10: 11}
ADDRESSES = [ME, 7, 8, 9, 10, 12, 0, NODE_NEIGHBOURS]


@st.composite
def frames(draw) -> bytes:
    """Mostly DATA to forward (some near the MTU or the extension area limit), some of every
    kind the node drops or consumes; some laid out other than encode() does; a few corrupted."""
    packet = draw(packets())
    if draw(st.sampled_from([True, True, True, False])):
        packet = dataclasses.replace(
            packet, type=MessageType.DATA, payload_type=1, body=draw(st.binary(max_size=40))
        )
    exts = tuple(
        e
        for e in packet.extensions
        if not (isinstance(e, UnknownExtension) and e.critical and draw(st.integers(0, 3)))
    )
    if draw(st.booleans()):  # a route record, up to the 1,020-octet limit of the extension area
        hops = draw(st.sampled_from([0, 1, 5, 80, 83, 84]))
        rr = RecordRoute(tuple(Hop(n, n) for n in range(hops)), draw(st.sampled_from([0, 7, 255])))
        exts = (rr,) + tuple(e for e in exts if isinstance(e, UnknownExtension))
    now_ns = 2 * S
    packet = dataclasses.replace(
        packet,
        src=draw(st.sampled_from([1, 1, 1, 2, ME, 0, NODE_NEIGHBOURS])),
        dst=draw(st.sampled_from([7] * len(ADDRESSES) + ADDRESSES)),
        hop_limit=draw(st.sampled_from([64] * 4 + [0, 1, 2, 3, 255])),
        creation_time_ns=draw(
            st.sampled_from([0, EPOCH_DTN_NS, EPOCH_DTN_NS + now_ns - 5 * MS, 1 << 63])
        ),
        lifetime_ms=draw(st.sampled_from([3_600_000] * 4 + [0, 4, 5, 6, 9_000])),
        flags=draw(st.sampled_from([0, 0, Flags.ACK_REQUESTED, Flags.REPORT_DROP, 0xFF])),
        extensions=exts,
    )
    if packet.type is MessageType.DATA:
        packet = dataclasses.replace(
            packet, body=packet.body + bytes(draw(st.sampled_from([0, 0, 1200, 1300])))
        )
    try:
        wire = bytearray(encode(packet))
    except ProtocolError:  # more than 1,020 octets of extensions
        wire = bytearray(encode(dataclasses.replace(packet, extensions=())))
    if wire[29] and wire[29] < 255 and draw(st.booleans()):  # PAD1 before the first TLV
        end = 36 + 4 * wire[29]
        wire[36:end] = bytes(4) + wire[36:end]
        wire[29] += 1
        wire = bytearray(fix_crc(wire))
    if draw(st.sampled_from([False] * 19 + [True])):
        wire[draw(st.integers(0, len(wire) - 1))] ^= 0x10  # malformed (CRC)
    return bytes(wire)


def run(settings_, mtu, arrivals, *, fast: bool):
    core = NodeCore(ME, epoch_dtn_ns=EPOCH_DTN_NS, **settings_)
    out = [core.set_table(fib(ME, ROUTES), 0), core.link_up(6, 0, mtu=mtu), core.link_down(4, 0)]
    relay = relay_frame if fast else (lambda *args: None)  # None: take the reference path
    with mock.patch("netemu.node.core.relay_frame", relay):
        for frame, prev, now in arrivals:
            out.append(core.receive(frame, prev, now))
        out.append(core.tick(12 * S))
        out.append(core.link_up(4, 13 * S))
    return out, core.counters.as_dict(), core.held_packets()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    node_settings=st.fixed_dictionaries(
        {"hold_on_no_route": st.booleans(), "queue_limit_packets": st.integers(0, 3)}
    ),
    mtu_delta=st.sampled_from([None, -1, 0, 1, 11, 12, 13]) | st.integers(-14, 14),
    arrivals=st.lists(
        st.tuples(frames(), st.sampled_from([6, 4, 3]), st.sampled_from([0, 2 * S, 4 * S])),
        min_size=1,
        max_size=4,
    ),
)
def test_same_actions_as_the_reference_path(node_settings, mtu_delta, arrivals) -> None:
    # the link MTU around the first frame's length (+ 12 octets of a RECORD_ROUTE hop)
    mtu = 65_507 if mtu_delta is None else len(arrivals[0][0]) + mtu_delta
    fast = run(node_settings, mtu, arrivals, fast=True)
    slow = run(node_settings, mtu, arrivals, fast=False)
    assert fast == slow
    for actions in fast[0]:
        for action in actions:
            if isinstance(action, Transmit):
                assert action.frame == encode(action.packet)


def test_a_forwarded_frame_is_patched_not_re_encoded() -> None:
    core = NodeCore(ME, epoch_dtn_ns=EPOCH_DTN_NS)
    core.set_table(fib(ME, ROUTES), 0)
    packet = Packet(
        type=MessageType.DATA,
        src=1,
        dst=7,
        body=bytes(1000),
        payload_type=1,
        creation_time_ns=EPOCH_DTN_NS,
        extensions=(RecordRoute((Hop(1, 2),)),),
    )
    with mock.patch("netemu.node.core.encode", side_effect=AssertionError("re-encoded")):
        [tx] = core.receive(encode(packet), 6, 3 * MS)
    assert tx.packet.hop_limit == 63
    assert tx.packet.extensions == (RecordRoute((Hop(1, 2), Hop(ME, EPOCH_DTN_NS + 3 * MS))),)
    assert tx.frame == encode(tx.packet)
