"""The SGP codec: golden bytes, the committed vectors, and encode-side validation."""

from __future__ import annotations

import json
import struct

import pytest

from netemu.errors import ProtocolError
from netemu.protocol import (
    Ack,
    Echo,
    Flags,
    Hello,
    Hop,
    MessageType,
    Nack,
    Packet,
    PayloadType,
    RecordRoute,
    Route,
    UnknownExtension,
    crc32c,
    critical_unknown_extension,
    decode,
    encode,
)
from netemu.protocol.fields import HEADER_FIELDS, HEADER_LEN
from netemu.protocol.jsonform import packet_from_fields, packet_to_fields
from netemu.protocol.vectors import VECTOR_FILES, build_vectors, load_vectors
from support import REPO

VECTORS = load_vectors()
VALID = [v for v in VECTORS if v["kind"] == "valid"]
INVALID = [v for v in VECTORS if v["kind"] == "invalid"]


def _by_hand(first: int, flags: int, hop: int, prio: int, src: int, dst: int, pid: int,
             ctime: int, life: int, ptype: int, ext: bytes, body: bytes) -> bytes:  # fmt: skip
    """Assemble a packet straight from the SPEC.md section 4 layout, without the codec."""
    header = struct.pack(
        ">BBBBIIIQIBBHI", first, flags, hop, prio << 5, src, dst, pid, ctime, life, ptype,
        len(ext) // 4, len(body), 0,
    )  # fmt: skip
    crc = crc32c(header + ext + body)
    return header[:32] + struct.pack(">I", crc) + ext + body


def test_golden_data_raw() -> None:
    packet = Packet(
        type=MessageType.DATA, src=10, dst=20, body=b"hello, space", packet_id=1,
        creation_time_ns=820_540_800_000_000_000, lifetime_ms=3_600_000, hop_limit=32,
        priority=5, flags=Flags.ACK_REQUESTED, payload_type=PayloadType.RAW,
    )  # fmt: skip
    expected = _by_hand(0x11, 0x80, 32, 5, 10, 20, 1, 820_540_800_000_000_000, 3_600_000, 1,
                        b"", b"hello, space")  # fmt: skip
    assert encode(packet) == expected
    assert decode(expected) == packet
    # The first 36 octets, spelled out: version 1 / type 1, flags 0x80, hop limit 32,
    # priority 5 (0xa0), src 10, dst 20, id 1, creation time, lifetime, RAW, 0 words, 12 octets.
    assert expected[:32].hex() == (
        "11" "80" "20" "a0" "0000000a" "00000014" "00000001" "0b6325829bb70000" "0036ee80"
        "01" "00" "000c"
    )  # fmt: skip


def test_golden_echo_with_record_route() -> None:
    rr_value = bytes([2]) + struct.pack(">IQ", 7, 123)
    ext = bytes([1]) + struct.pack(">H", len(rr_value)) + rr_value
    ext += bytes(-len(ext) % 4)  # PAD1 octets
    body = struct.pack(">HH", 0xBEEF, 9) + b"data"
    expected = _by_hand(0x15, 0, 64, 0, 1, 2, 0, 0, 1000, 0, ext, body)
    packet = Packet(
        type=MessageType.ECHO_REQUEST, src=1, dst=2, lifetime_ms=1000,
        body=Echo(0xBEEF, 9, b"data"), extensions=(RecordRoute((Hop(7, 123),), missed=2),),
    )  # fmt: skip
    assert encode(packet) == expected
    assert len(expected) == HEADER_LEN + 16 + 8
    assert decode(expected) == packet


def test_header_table_is_contiguous() -> None:
    covered = bytearray(HEADER_LEN * 8)
    for f in HEADER_FIELDS:
        width = f.bits if f.bits is not None else f.size * 8
        start_bit = f.offset * 8 + (f.size * 8 - f.shift - width)
        for bit in range(start_bit, start_bit + width):
            assert not covered[bit], f"{f.name} overlaps another field"
            covered[bit] = 1
    assert all(covered)


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_valid_vector(vector: dict) -> None:
    wire = bytes.fromhex(vector["hex"])
    packet = decode(wire)
    assert packet == packet_from_fields(vector["fields"])
    assert encode(packet) == wire
    assert packet_to_fields(packet) == vector["fields"]


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v["name"])
def test_invalid_vector(vector: dict) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(bytes.fromhex(vector["hex"]))
    assert info.value.field == vector["error"]["field"]
    assert info.value.offset == vector["error"]["offset"]
    assert vector["error"]["field"] in str(info.value)


def test_every_message_type_and_extension_has_a_vector() -> None:
    types = {v["fields"]["type"] for v in VALID}
    assert types == {int(t) for t in MessageType}
    ext_types = {e["type"] for v in VALID for e in v["fields"]["extensions"]}
    assert (
        1 in ext_types
        and any(t & 0x80 for t in ext_types)
        and any(t != 1 and not t & 0x80 for t in ext_types)
    )
    assert {v["fields"]["payload_type"] for v in VALID} >= {1, 2}
    assert len(INVALID) >= 20


def test_committed_vectors_match_definitions() -> None:
    """The JSON files are what the vector definitions produce (regenerate if this fails)."""
    built = build_vectors(bundle=bytes.fromhex(_bpv7_hex()))
    for file in VECTOR_FILES:
        doc = json.loads((REPO / "protocols/sgp/vectors" / f"{file}.json").read_text())
        assert doc["vectors"] == built[file], file


def _bpv7_hex() -> str:
    return next(v for v in VALID if v["name"] == "data-bpv7")["fields"]["body"]["payload"]


def test_bpv7_vector_is_pyd3tn_output() -> None:
    from netemu.protocol.vectors import pyd3tn_bundle

    assert pyd3tn_bundle().hex() == _bpv7_hex()


@pytest.mark.parametrize(
    ("packet", "field"),
    [
        (Packet(type=MessageType.ACK, src=1 << 32, dst=2, body=Ack(1, 1)), "src"),
        (Packet(type=MessageType.ACK, src=1, dst=2, body=Ack(1, 1), priority=8), "priority"),
        (Packet(type=MessageType.ACK, src=1, dst=2, body=Ack(1, 1), hop_limit=-1), "hop_limit"),
        (Packet(type=MessageType.ACK, src=1, dst=2, body=Nack(1, 1, 0)), "body"),
        (Packet(type=MessageType.ACK, src=1, dst=2, body=Ack(1, 1), payload_type=1),
         "payload_type"),
        (Packet(type=MessageType.DATA, src=1, dst=2, body=b"x"), "payload_type"),
        (Packet(type=9, src=1, dst=2), "type"),
        (Packet(type=MessageType.HELLO, src=1, dst=2, body=Hello(1, 1500, "n" * 65)),
         "node_name"),
        (Packet(type=MessageType.ROUTE, src=1, dst=2, body=Route(1 << 16, 0)), "scheme"),
        (Packet(type=MessageType.DATA, src=1, dst=2, payload_type=1, body=bytes(70_000)),
         "payload_length"),
        (Packet(type=MessageType.DATA, src=1, dst=2, payload_type=1,
                extensions=(UnknownExtension(0x42, bytes(1100)),)), "ext_length"),
        (Packet(type=MessageType.DATA, src=1, dst=2, payload_type=1,
                extensions=(RecordRoute(), RecordRoute())), "record_route"),
        (Packet(type=MessageType.DATA, src=1, dst=2, payload_type=1,
                extensions=(UnknownExtension(1, b""),)), "extension_type"),
    ],
)  # fmt: skip
def test_encode_rejects_bad_values(packet: Packet, field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        encode(packet)
    assert info.value.field == field
    assert info.value.offset is None


def test_critical_unknown_extension() -> None:
    ext = next(v for v in VALID if v["name"] == "ext-unknown")
    assert critical_unknown_extension(decode(bytes.fromhex(ext["hex"]))) == 0xC2
    raw = next(v for v in VALID if v["name"] == "data-raw")
    assert critical_unknown_extension(decode(bytes.fromhex(raw["hex"]))) is None


def test_decode_accepts_buffer_types_and_expiry() -> None:
    wire = bytes.fromhex(VALID[0]["hex"])
    assert decode(bytearray(wire)) == decode(memoryview(wire)) == decode(wire)
    p = decode(wire)
    assert p.expiry_ns == p.creation_time_ns + p.lifetime_ms * 1_000_000
    assert p.has_flag(Flags.ACK_REQUESTED) and not p.has_flag(Flags.REPORT_DROP)
