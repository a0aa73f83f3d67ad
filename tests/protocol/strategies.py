"""hypothesis strategies for SGP packets."""

from __future__ import annotations

from hypothesis import strategies as st

from netemu.protocol import (
    Ack,
    Echo,
    Hello,
    Hop,
    MessageType,
    Nack,
    Packet,
    PayloadType,
    RecordRoute,
    Route,
    UnknownExtension,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)

record_routes = st.builds(
    RecordRoute,
    hops=st.lists(st.builds(Hop, node=u32, time_ns=u64), max_size=6).map(tuple),
    missed=u8,
)
unknown_exts = st.builds(
    UnknownExtension,
    type=st.integers(2, 0xFF),
    value=st.binary(max_size=40),
)


@st.composite
def extension_lists(draw):
    exts = draw(st.lists(unknown_exts, max_size=3))
    if draw(st.booleans()):
        exts.insert(draw(st.integers(0, len(exts))), draw(record_routes))
    return tuple(exts)


BODY_STRATEGIES = {
    MessageType.ACK: st.builds(Ack, u32, u32),
    MessageType.NACK: st.builds(Nack, u32, u32, u16, u16),
    MessageType.HELLO: st.builds(
        Hello, u16, u16, st.text(max_size=16).filter(lambda s: len(s.encode()) <= 64)
    ),
    MessageType.ECHO_REQUEST: st.builds(Echo, u16, u16, st.binary(max_size=64)),
    MessageType.ECHO_REPLY: st.builds(Echo, u16, u16, st.binary(max_size=64)),
    MessageType.ROUTE: st.builds(Route, u16, u32, st.binary(max_size=64)),
}


@st.composite
def packets(draw) -> Packet:
    mtype = draw(st.sampled_from(list(MessageType)))
    if mtype is MessageType.DATA:
        ptype = draw(st.sampled_from([1, 2, 3, 200, 255]))
        body = draw(st.binary(max_size=200))
        if ptype == PayloadType.BPV7:
            body = b"\x9f" + body
        payload_type = PayloadType(ptype) if ptype in (1, 2) else ptype
    else:
        payload_type = PayloadType.CONTROL
        body = draw(BODY_STRATEGIES[mtype])
    return Packet(
        type=mtype,
        src=draw(u32),
        dst=draw(u32),
        body=body,
        packet_id=draw(u32),
        creation_time_ns=draw(u64),
        lifetime_ms=draw(u32),
        hop_limit=draw(u8),
        priority=draw(st.integers(0, 7)),
        flags=draw(u8),
        payload_type=payload_type,
        extensions=draw(extension_lists()),
    )
