"""relay_frame (forwarding by patching the received octets) against the reference path:
decode, dataclasses.replace, encode."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netemu.errors import ProtocolError
from netemu.protocol import Hop, MessageType, Packet, RecordRoute, UnknownExtension, decode, encode
from netemu.protocol.codec import fix_crc
from netemu.protocol.relay import relay_frame, with_hop_limit, with_record_route

from .strategies import packets, u8, u32, u64

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = 1 << 20


def reference(wire: bytes, hop_limit: int, hop: Hop | None) -> bytes | None:
    """What the node did before relay_frame: decode, replace, encode (None: encode refused)."""
    packet = dataclasses.replace(decode(wire), hop_limit=hop_limit)
    if hop is not None:
        exts = tuple(
            RecordRoute(e.hops + (hop,), e.missed) if isinstance(e, RecordRoute) else e
            for e in packet.extensions
        )
        packet = dataclasses.replace(packet, extensions=exts)
    try:
        return encode(packet)
    except ProtocolError:
        return None


def has_rr(wire: bytes) -> bool:
    return any(isinstance(e, RecordRoute) for e in decode(wire).extensions)


@st.composite
def relayed_frames(draw) -> bytes:
    """Encoded packets, some with their extension area laid out differently from encode()
    (PAD1 octets between or before TLVs, a spare word of padding): decode accepts those."""
    wire = bytearray(encode(draw(packets())))
    words = wire[29]
    if not words or not draw(st.booleans()):
        return bytes(wire)
    area = bytearray(wire[36 : 36 + 4 * words])
    at = draw(st.sampled_from(["front", "end", "spare word"]))
    if at == "front":
        area[0:0] = bytes(draw(st.integers(1, 4)))
    elif at == "end":
        area += bytes(4)
    else:
        area[0:0] = bytes(4)
    area += bytes(-len(area) % 4)
    if len(area) > 1020:
        return bytes(wire)
    wire[36 : 36 + 4 * words] = area
    wire[29] = len(area) // 4
    return fix_crc(wire)


@FAST
@given(
    wire=relayed_frames(),
    hop_limit=u8,
    hop=st.none() | st.builds(Hop, node=u32, time_ns=u64),
    slack=st.integers(-20, 20),
)
def test_relay_frame_is_encode_of_the_changed_packet(wire, hop_limit, hop, slack) -> None:
    if hop is not None and not has_rr(wire):
        hop = None
    expected = reference(wire, hop_limit, hop)
    canonical = encode(decode(wire)) == wire
    max_len = (len(expected) if expected is not None else len(wire)) + slack
    got = relay_frame(wire, hop_limit, hop, max_len)
    if got is not None:
        assert got == expected
        assert len(got) <= max_len
    else:  # only where the caller must (and does) take the reference path
        assert not canonical or expected is None or len(expected) > max_len
    if canonical and expected is not None and slack >= 0:
        assert got == expected  # the fast path is taken whenever it can be


@st.composite
def rr_frames(draw):
    hops = draw(st.integers(0, 84))
    rr = RecordRoute(tuple(Hop(n, 10**18 + n) for n in range(hops)), draw(u8))
    unknown = st.builds(UnknownExtension, st.integers(2, 0x7F), st.binary(max_size=9))
    others = draw(st.lists(unknown, max_size=2))
    packet = Packet(
        type=MessageType.DATA,
        src=draw(st.integers(1, 100)),
        dst=draw(st.integers(1, 100)),
        body=draw(st.binary(max_size=1400)),
        payload_type=1,
        hop_limit=draw(u8),
        extensions=tuple(draw(st.permutations([rr, *others]))),
    )
    try:
        return encode(packet)
    except ProtocolError:  # too many octets of extensions
        return encode(dataclasses.replace(packet, extensions=()))


@FAST
@given(wire=rr_frames(), hop_limit=u8, node=u32, time_ns=u64, mtu=st.integers(1280, 2000))
def test_record_route_hop_up_to_the_extension_area_limit(wire, hop_limit, node, time_ns, mtu):
    hop = Hop(node, time_ns) if has_rr(wire) else None
    expected = reference(wire, hop_limit, hop)
    got = relay_frame(wire, hop_limit, hop, mtu)
    if expected is not None and len(expected) <= mtu:
        assert got == expected
    else:
        assert got is None


def test_full_record_route_and_bad_hops_take_the_reference_path() -> None:
    rr = RecordRoute(tuple(Hop(n, n) for n in range(84)))  # 3 + 1 + 84 * 12 = 1012 octets
    wire = encode(Packet(type=MessageType.DATA, src=1, dst=2, payload_type=1, extensions=(rr,)))
    assert reference(wire, 5, Hop(3, 4)) is None  # 1024 octets of extensions: encode refuses
    assert relay_frame(wire, 5, Hop(3, 4), BIG) is None
    small = encode(dataclasses.replace(decode(wire), extensions=(RecordRoute(),)))
    for hop in (Hop(3, 1 << 64), Hop(3, -1), Hop(1 << 32, 0), Hop(True, 0), Hop(3, 1.0)):
        assert reference(small, 5, hop) is None
        assert relay_frame(small, 5, hop, BIG) is None
    assert relay_frame(small, 5, Hop(3, 4), BIG) == reference(small, 5, Hop(3, 4))
    plain = encode(Packet(type=MessageType.DATA, src=1, dst=2, payload_type=1))
    assert relay_frame(plain, 5, Hop(3, 4), BIG) is None  # no RECORD_ROUTE to append to
    assert relay_frame(plain, 0, None, len(plain)) == reference(plain, 0, None)
    assert relay_frame(plain, 0, None, len(plain) - 1) is None


@FAST
@given(packet=packets(), hop_limit=u8, hop=st.builds(Hop, node=u32, time_ns=u64))
def test_with_helpers_equal_dataclasses_replace(packet, hop_limit, hop) -> None:
    assert with_hop_limit(packet, hop_limit) == dataclasses.replace(packet, hop_limit=hop_limit)
    grown = with_record_route(packet, lambda e: RecordRoute(e.hops + (hop,), e.missed))
    exts = tuple(
        RecordRoute(e.hops + (hop,), e.missed) if isinstance(e, RecordRoute) else e
        for e in packet.extensions
    )
    assert grown == dataclasses.replace(packet, extensions=exts)
