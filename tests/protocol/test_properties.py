"""Property tests: round trips, and malformed octets only ever raise ProtocolError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netemu.errors import ProtocolError
from netemu.protocol import decode, encode, fix_crc
from netemu.protocol.vectors import valid_vectors

from .strategies import packets

VECTOR_WIRES = [bytes.fromhex(v["hex"]) for v in valid_vectors()]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_protocol_error(data: bytes) -> None:
    try:
        packet = decode(data)
    except ProtocolError as exc:
        assert exc.field is not None and exc.offset is not None
        assert 0 <= exc.offset <= max(len(data), 1)
    else:
        # Whatever decodes must encode again, and to a packet that decodes to the same value.
        assert decode(encode(packet)) == packet


@FAST
@given(packets())
def test_round_trip(packet) -> None:
    wire = encode(packet)
    assert decode(wire) == packet
    assert encode(decode(wire)) == wire
    assert wire[29] * 4 + 36 + int.from_bytes(wire[30:32]) == len(wire)


@FAST
@given(st.binary(max_size=200))
def test_random_octets(data: bytes) -> None:
    _decode_or_protocol_error(data)
    _decode_or_protocol_error(fix_crc(data))


@FAST
@given(st.binary(min_size=36, max_size=120))
def test_random_octets_with_valid_prefix(data: bytes) -> None:
    # a plausible first octet and zero reserved bits, so decoding gets past the header checks
    buf = bytearray(data)
    buf[0] = 0x10 | (buf[0] % 8)
    buf[3] &= 0xE0
    _decode_or_protocol_error(fix_crc(bytes(buf)))


@st.composite
def mutated_vectors(draw) -> bytes:
    wire = bytearray(draw(st.sampled_from(VECTOR_WIRES)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(wire) - 1, 0)))
        if op == "flip" and wire:
            wire[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and wire:
            wire[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del wire[pos:]
        elif op == "insert":
            wire[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del wire[pos : pos + draw(st.integers(1, 8))]
    return bytes(wire)


@FAST
@given(mutated_vectors(), st.booleans())
def test_mutated_vectors(wire: bytes, recompute_crc: bool) -> None:
    _decode_or_protocol_error(fix_crc(wire) if recompute_crc else wire)


@FAST
@given(packets(), st.data())
def test_any_bit_flip_is_caught_by_the_crc_or_decodes_differently(packet, data) -> None:
    wire = bytearray(encode(packet))
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    try:
        decode(bytes(wire))
    except ProtocolError:
        pass
    else:  # pragma: no cover - CRC-32C detects every single-bit error
        raise AssertionError("a single flipped bit went unnoticed")
