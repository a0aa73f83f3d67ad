"""The scapy layers agree with the codec on every vector and on random packets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from scapy.layers.inet import IP, UDP

from netemu.protocol import DEFAULT_UDP_PORT, MessageType, decode, encode
from netemu.protocol.fields import BODIES, HEADER_FIELDS
from netemu.protocol.scapy_layers import SGP, SGP_BODY_LAYERS, from_scapy, to_scapy
from netemu.protocol.vectors import valid_vectors

from .strategies import packets

VALID = valid_vectors()


def test_header_fields_follow_the_table() -> None:
    names = [f.name for f in SGP.fields_desc]
    assert names[: len(HEADER_FIELDS)] == [f.name for f in HEADER_FIELDS]
    assert names[len(HEADER_FIELDS) :] == ["extensions"]
    for layer_field, f in zip(SGP.fields_desc, HEADER_FIELDS, strict=False):
        width = f.bits if f.bits is not None else f.size * 8
        assert layer_field.size == width if f.bits is not None else layer_field.sz == f.size


def test_body_layers_follow_the_table() -> None:
    for mtype, layer in SGP_BODY_LAYERS.items():
        layout = BODIES[mtype]
        expected = [name for name, _ in layout.fixed] + ([layout.tail] if layout.tail else [])
        assert [f.name for f in layer.fields_desc] == expected


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_scapy_matches_codec_on_vector(vector: dict) -> None:
    wire = bytes.fromhex(vector["hex"])
    dissected = SGP(wire)
    assert from_scapy(dissected) == decode(wire)
    assert bytes(dissected) == wire  # re-build of a dissected packet
    assert bytes(to_scapy(decode(wire))) == wire  # build from values, lengths and CRC computed
    assert dissected.src == vector["fields"]["src"]
    assert dissected.crc == vector["fields"]["crc"]
    assert dissected.payload_length == vector["fields"]["payload_length"]


@pytest.mark.parametrize("port_field", ["dport", "sport"])
def test_udp_port_binding(port_field: str) -> None:
    wire = bytes.fromhex(VALID[0]["hex"])
    frame = IP(dst="127.0.0.1") / UDP(**{port_field: DEFAULT_UDP_PORT}) / wire
    parsed = IP(bytes(frame))
    assert parsed.haslayer(SGP)
    assert from_scapy(parsed) == decode(wire)


@settings(max_examples=150, deadline=None)
@given(packets())
def test_scapy_matches_codec_on_random_packets(packet) -> None:
    wire = encode(packet)
    assert bytes(to_scapy(packet)) == wire
    assert from_scapy(SGP(wire)) == packet


def test_every_type_has_a_body_layer() -> None:
    assert set(SGP_BODY_LAYERS) == set(MessageType) - {MessageType.DATA}
