"""The SGP test vectors: their definitions, the JSON files in protocols/sgp/vectors/, a loader.

The JSON files are generated from the definitions below and committed; the tests check that the
codec still produces and accepts exactly those octets. Regenerate after a deliberate change::

    python -m netemu.protocol.vectors protocols/sgp/vectors

The BPv7 vector's bundle is encoded by the independent ``pyd3tn`` package (a dev dependency), so
regeneration needs the dev extra.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.resources
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ProtocolError
from .codec import decode, encode, fix_crc
from .fields import (
    DTN_EPOCH_UNIX_S,
    MIN_LINK_MTU,
    NODE_NEIGHBOURS,
    Flags,
    MessageType,
    NackReason,
    PayloadType,
    RouteScheme,
)
from .jsonform import packet_to_fields
from .packet import (
    Ack,
    Echo,
    Hello,
    Hop,
    Nack,
    Packet,
    RecordRoute,
    Route,
    UnknownExtension,
)

__all__ = ["VECTOR_FILES", "build_vectors", "load_vectors", "valid_vectors", "write_vectors"]

log = logging.getLogger(__name__)

#: 2026-01-01T00:00:00Z as ns since the DTN epoch: the creation time used by the vectors.
T0_NS = (1_767_225_600 - DTN_EPOCH_UNIX_S) * 1_000_000_000
MS = 1_000_000

VECTOR_FILES = ("data", "ack", "nack", "hello", "echo", "route", "extensions", "invalid")


def pyd3tn_bundle() -> bytes:
    """A BPv7 bundle ipn:10.1 -> ipn:20.1 encoded by pyd3tn (independent of netemu)."""
    from pyd3tn.bundle7 import serialize_bundle7

    return serialize_bundle7(
        "ipn:10.1",
        "ipn:20.1",
        b"hello via BPv7",
        creation_timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        sequence_number=1,
        lifetime=3600,
        hop_limit=30,
    )


def _base(**kw) -> Packet:
    values: dict[str, Any] = dict(
        src=10, dst=20, packet_id=1, creation_time_ns=T0_NS, lifetime_ms=3_600_000
    )
    values.update(kw)
    return Packet(**values)


def _valid_cases(bundle: bytes) -> list[tuple[str, str, str, Packet]]:
    """(file, name, description, packet) for every valid vector."""
    rr3 = RecordRoute(
        hops=(Hop(10, T0_NS), Hop(11, T0_NS + 4 * MS + 125_000), Hop(12, T0_NS + 9 * MS + 3))
    )
    return [
        ("data", "data-raw", "DATA with a raw payload, ACK requested, priority 5",
         _base(type=MessageType.DATA, payload_type=PayloadType.RAW, body=b"hello, space",
               flags=Flags.ACK_REQUESTED, priority=5, hop_limit=32)),
        ("data", "data-raw-empty", "DATA with an empty raw payload",
         _base(type=MessageType.DATA, payload_type=PayloadType.RAW, body=b"", packet_id=2)),
        ("data", "data-bpv7", "DATA carrying a BPv7 bundle (RFC 9171) encoded by pyd3tn",
         _base(type=MessageType.DATA, payload_type=PayloadType.BPV7, body=bundle, packet_id=3,
               flags=Flags.REPORT_DROP, priority=2)),
        ("data", "data-experimental-payload", "DATA with an experimental payload type (200); "
         "relays forward it without interpreting it",
         _base(type=MessageType.DATA, payload_type=200, body=bytes(range(16)), packet_id=4)),
        ("data", "data-extremes", "largest field values: node numbers, packet id, times, flags",
         _base(type=MessageType.DATA, payload_type=PayloadType.RAW, body=b"\xff",
               src=0xFFFF_FFFE, dst=0xFFFF_FFFD, packet_id=0xFFFF_FFFF,
               creation_time_ns=0xFFFF_FFFF_FFFF_FFFF, lifetime_ms=0xFFFF_FFFF,
               hop_limit=255, priority=7, flags=Flags.ACK_REQUESTED | Flags.REPORT_DROP)),
        ("data", "data-no-clock", "creation_time_ns 0: the source has no clock, lifetime is not "
         "enforced", _base(type=MessageType.DATA, payload_type=PayloadType.RAW, body=b"x",
                           creation_time_ns=0, packet_id=5)),
        ("ack", "ack", "hop-by-hop ACK of packet 1 from node 10",
         _base(type=MessageType.ACK, src=11, dst=10, packet_id=7, hop_limit=1,
               body=Ack(ref_src=10, ref_packet_id=1))),
        ("nack", "nack-too-big", "NACK: the packet did not fit the next link's MTU",
         _base(type=MessageType.NACK, src=11, dst=10, packet_id=8, hop_limit=1,
               body=Nack(10, 1, NackReason.TOO_BIG, MIN_LINK_MTU))),
        ("nack", "nack-no-route", "NACK sent to the source because REPORT_DROP was set",
         _base(type=MessageType.NACK, src=15, dst=10, packet_id=9, priority=6,
               body=Nack(10, 3, NackReason.NO_ROUTE, 0))),
        ("hello", "hello", "HELLO on link-up: terminal 2, MTU 1500, node name",
         _base(type=MessageType.HELLO, src=1003, dst=NODE_NEIGHBOURS, hop_limit=1,
               packet_id=0, body=Hello(terminal=2, link_mtu=1500, node_name="iridium-p01-s03"))),
        ("hello", "hello-unnamed", "HELLO without a node name",
         _base(type=MessageType.HELLO, src=1004, dst=NODE_NEIGHBOURS, hop_limit=1,
               packet_id=0, body=Hello(terminal=0, link_mtu=MIN_LINK_MTU))),
        ("echo", "echo-request", "ECHO_REQUEST with data and an empty RECORD_ROUTE",
         _base(type=MessageType.ECHO_REQUEST, body=Echo(ident=0x1234, seq=1, data=b"ping"),
               extensions=(RecordRoute(),))),
        ("echo", "echo-reply", "ECHO_REPLY with the route the request took",
         _base(type=MessageType.ECHO_REPLY, src=20, dst=10, packet_id=77,
               body=Echo(ident=0x1234, seq=1, data=b"ping"), extensions=(rr3,))),
        ("route", "route-opaque", "ROUTE update of an opaque (plug-in) scheme",
         _base(type=MessageType.ROUTE, dst=NODE_NEIGHBOURS, hop_limit=1, priority=7,
               body=Route(scheme=RouteScheme.OPAQUE, update_seq=42, data=b"\x01\x02\x03"))),
        ("route", "route-experimental", "ROUTE update of an experimental scheme, empty data",
         _base(type=MessageType.ROUTE, dst=21, body=Route(scheme=0x8001, update_seq=1))),
        ("extensions", "ext-record-route", "DATA with a three-hop RECORD_ROUTE",
         _base(type=MessageType.DATA, payload_type=PayloadType.RAW, body=b"traced",
               extensions=(rr3,))),
        ("extensions", "ext-record-route-missed", "RECORD_ROUTE with 2 hops that could not be "
         "recorded", _base(type=MessageType.DATA, payload_type=PayloadType.RAW, body=b"t",
                           extensions=(RecordRoute(hops=(Hop(10, T0_NS),), missed=2),))),
        ("extensions", "ext-unknown", "a non-critical unknown extension (0x42) and a critical "
         "one (0xc2): both decode; processing rules decide (SPEC.md 7.4)",
         _base(type=MessageType.DATA, payload_type=PayloadType.RAW, body=b"u",
               extensions=(UnknownExtension(0x42, b"xyz"), UnknownExtension(0xC2, b"")))),
    ]  # fmt: skip


def _mutate(wire: bytes, offset: int, value: bytes, *, crc: bool = True) -> bytes:
    out = bytearray(wire)
    out[offset : offset + len(value)] = value
    return fix_crc(out) if crc else bytes(out)


def _set_lengths(wire: bytes, *, ext_words: int | None = None, payload_length: int | None = None):
    out = bytearray(wire)
    if ext_words is not None:
        out[29] = ext_words
    if payload_length is not None:
        out[30:32] = payload_length.to_bytes(2, "big")
    return bytes(out)


def _invalid_cases(valid: dict[str, bytes]) -> list[tuple[str, str, Callable[[], bytes]]]:
    """(name, description, octets) for every invalid vector; the error comes from the codec."""
    raw = valid["data-raw"]
    ack = valid["ack"]
    nack = valid["nack-too-big"]
    hello = valid["hello"]
    rr = valid["ext-record-route"]
    bp = valid["data-bpv7"]

    def hello_name(name: bytes) -> bytes:
        body = hello[36:40] + name
        return fix_crc(_set_lengths(hello[:36], payload_length=len(body)) + body)

    def data_with_ext(ext: bytes) -> bytes:
        ext = ext + bytes(-len(ext) % 4)
        return fix_crc(_set_lengths(raw[:36], ext_words=len(ext) // 4) + ext + raw[36:])

    def bp_payload(payload: bytes) -> bytes:
        return fix_crc(_set_lengths(bp[:36], payload_length=len(payload)) + payload)

    return [
        ("empty", "zero octets", lambda: b""),
        ("truncated-header", "20 of the 36 header octets", lambda: raw[:20]),
        ("bad-version", "version 2", lambda: _mutate(raw, 0, bytes([0x21]))),
        ("type-zero", "message type 0 is unassigned", lambda: _mutate(raw, 0, bytes([0x10]))),
        ("type-unassigned", "message type 9", lambda: _mutate(raw, 0, bytes([0x19]))),
        ("reserved-bits", "reserved bits of octet 3 set", lambda: _mutate(raw, 3, bytes([0xA1]))),
        ("data-control-payload", "DATA with payload type CONTROL",
         lambda: _mutate(raw, 28, b"\x00")),
        ("ack-raw-payload", "ACK with payload type RAW", lambda: _mutate(ack, 28, b"\x01")),
        ("bad-crc", "one payload bit flipped after the CRC was computed",
         lambda: _mutate(raw, len(raw) - 1, bytes([raw[-1] ^ 0x01]), crc=False)),
        ("trailing-octet", "one octet more than the header announces",
         lambda: fix_crc(raw + b"\x00")),
        ("truncated-body", "payload_length announces 4 octets more than present",
         lambda: fix_crc(_set_lengths(raw, payload_length=len(raw) - 36 + 4))),
        ("truncated-extensions", "ext_length announces 2 words, none present",
         lambda: fix_crc(_set_lengths(raw[:36], ext_words=2, payload_length=0))),
        ("ack-short", "ACK body of 6 octets",
         lambda: fix_crc(_set_lengths(ack[:42], payload_length=6))),
        ("ack-long", "ACK body of 9 octets",
         lambda: fix_crc(_set_lengths(ack + b"\x00", payload_length=9))),
        ("nack-short", "NACK body without its info field",
         lambda: fix_crc(_set_lengths(nack[:46], payload_length=10))),
        ("rr-bad-length", "RECORD_ROUTE value of 5 octets (must be 1 + 12n)",
         lambda: data_with_ext(bytes([1, 0, 5, 0, 0, 0, 0, 10]))),
        ("ext-overrun", "an extension value running past the extension area",
         lambda: data_with_ext(bytes([0x42, 0, 9, 1, 2, 3, 4]))),
        ("ext-header-truncated", "an extension TLV header cut by the end of the area",
         lambda: data_with_ext(bytes([0, 0, 0x42, 0]))),
        ("rr-twice", "two RECORD_ROUTE extensions",
         lambda: data_with_ext(bytes([1, 0, 1, 0, 1, 0, 1, 0]))),
        ("hello-bad-utf8", "HELLO node name that is not UTF-8",
         lambda: hello_name(b"sat-\xff")),
        ("hello-long-name", "HELLO node name of 65 octets", lambda: hello_name(b"n" * 65)),
        ("bpv7-not-cbor-array", "BPv7 payload that does not start with 0x9f",
         lambda: bp_payload(b"\x82\x01\x02")),
        ("bpv7-empty", "BPv7 payload of zero octets", lambda: bp_payload(b"")),
        ("rr-entry-overrun", "a RECORD_ROUTE after padding whose length runs past the area",
         lambda: data_with_ext(bytes([0, 1, 0, 13]) + rr[37 + 2 : 37 + 2 + 8])),
    ]  # fmt: skip


def build_vectors(bundle: bytes | None = None) -> dict[str, list[dict[str, Any]]]:
    """All vectors, grouped by file name, as JSON-ready dicts."""
    bundle = pyd3tn_bundle() if bundle is None else bundle
    files: dict[str, list[dict[str, Any]]] = {name: [] for name in VECTOR_FILES}
    wires: dict[str, bytes] = {}
    for file, name, description, packet in _valid_cases(bundle):
        wire = encode(packet)
        assert decode(wire) == packet, name
        wires[name] = wire
        files[file].append(
            {
                "name": name,
                "description": description,
                "hex": wire.hex(),
                "fields": packet_to_fields(packet),
            }
        )
    for name, description, make in _invalid_cases(wires):
        wire = make()
        try:
            decode(wire)
        except ProtocolError as exc:
            error = {"field": exc.field, "offset": exc.offset, "message": exc.detail}
        else:  # pragma: no cover - a definition mistake
            raise AssertionError(f"invalid vector {name} decodes")
        files["invalid"].append(
            {"name": name, "description": description, "hex": wire.hex(), "error": error}
        )
    return files


def write_vectors(directory: Path, bundle: bytes | None = None) -> list[Path]:
    """Write ``<directory>/<file>.json`` for every vector file; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for file, vectors in build_vectors(bundle).items():
        path = directory / f"{file}.json"
        doc = {
            "spec": "protocols/sgp/SPEC.md",
            "version": 1,
            "kind": "invalid" if file == "invalid" else "valid",
            "vectors": vectors,
        }
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        log.info("wrote %d vectors to %s", len(vectors), path)
        paths.append(path)
    return paths


def load_vectors() -> list[dict[str, Any]]:
    """Every committed vector (from the installed ``netemu.protocols`` data), in file order.

    Each dict has ``file``, ``kind`` (``valid``/``invalid``), ``name``, ``hex`` and either
    ``fields`` or ``error``.
    """
    root = importlib.resources.files("netemu.protocols").joinpath("sgp", "vectors")
    out = []
    for file in VECTOR_FILES:
        doc = json.loads(root.joinpath(f"{file}.json").read_text(encoding="utf-8"))
        for vector in doc["vectors"]:
            out.append({"file": file, "kind": doc["kind"], **vector})
    return out


def valid_vectors() -> list[dict[str, Any]]:
    return [v for v in load_vectors() if v["kind"] == "valid"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the SGP test vector JSON files.")
    parser.add_argument("directory", type=Path, help="e.g. protocols/sgp/vectors")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_vectors(args.directory)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
