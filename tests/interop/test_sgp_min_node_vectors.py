"""The minimal second implementation (sgp_min_node.py, written from the SPEC only) against the
SPEC's test vectors (SPEC 14): it decodes every valid vector to its fields, encodes the fields
back to the same octets, and rejects every invalid vector."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from support import REPO

sys.path.insert(0, str(Path(__file__).parent))
import sgp_min_node as sgp  # noqa: E402

VECTORS = sorted((REPO / "protocols" / "sgp" / "vectors").glob("*.json"))
VALID = [
    pytest.param(v, id=f"{path.stem}:{v['name']}")
    for path in VECTORS
    for v in json.loads(path.read_text())["vectors"]
    if json.loads(path.read_text())["kind"] != "invalid"
]
INVALID = [
    pytest.param(v, id=v["name"])
    for v in json.loads((REPO / "protocols/sgp/vectors/invalid.json").read_text())["vectors"]
]


def _ext_bytes(extensions: list[dict]) -> bytes:
    out = b""
    for e in extensions:
        if e["type"] == sgp.RECORD_ROUTE:
            value = bytes((e["missed"],)) + b"".join(
                struct.pack("!IQ", h["node"], h["time_ns"]) for h in e["hops"]
            )
        else:
            value = bytes.fromhex(e["value"])
        out += bytes((e["type"],)) + len(value).to_bytes(2, "big") + value
    return out


def _body_bytes(f: dict) -> bytes:
    b = f["body"]
    t = f["type"]
    if t == sgp.DATA:
        return bytes.fromhex(b["payload"])
    if t == sgp.ACK:
        return struct.pack("!II", b["ref_src"], b["ref_packet_id"])
    if t == sgp.NACK:
        return struct.pack("!IIHH", b["ref_src"], b["ref_packet_id"], b["reason"], b["info"])
    if t == sgp.HELLO:
        return struct.pack("!HH", b["terminal"], b["link_mtu"]) + b["node_name"].encode()
    if t in (sgp.ECHO_REQUEST, sgp.ECHO_REPLY):
        return struct.pack("!HH", b["ident"], b["seq"]) + bytes.fromhex(b["data"])
    return struct.pack("!HI", b["scheme"], b["update_seq"]) + bytes.fromhex(b["data"])


def test_crc32c_check_value():
    assert sgp.crc32c(b"123456789") == 0xE3069283
    assert sgp.crc32c(b"") == 0


@pytest.mark.parametrize("vector", VALID)
def test_valid_vector_round_trip(vector):
    f = vector["fields"]
    raw = bytes.fromhex(vector["hex"])
    p = sgp.decode(raw)
    assert (p["type"], p["src"], p["dst"], p["packet_id"]) == (
        f["type"],
        f["src"],
        f["dst"],
        f["packet_id"],
    )
    assert (p["flags"], p["hop_limit"], p["created_ns"], p["lifetime_ms"]) == (
        f["flags"],
        f["hop_limit"],
        f["creation_time_ns"],
        f["lifetime_ms"],
    )
    assert p["body"] == _body_bytes(f)
    encoded = sgp.encode(
        f["type"],
        f["src"],
        f["dst"],
        _body_bytes(f),
        packet_id=f["packet_id"],
        hop_limit=f["hop_limit"],
        flags=f["flags"],
        created_ns=f["creation_time_ns"],
        lifetime_ms=f["lifetime_ms"],
        payload_type=f["payload_type"],
        ext=_ext_bytes(f.get("extensions", [])),
        priority=f["priority"],
    )
    assert encoded.hex() == vector["hex"]


@pytest.mark.parametrize("vector", INVALID)
def test_invalid_vector_rejected(vector):
    with pytest.raises(sgp.Malformed):
        sgp.decode(bytes.fromhex(vector["hex"]))
