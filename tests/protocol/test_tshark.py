"""Real tshark reads netemu captures with our Lua dissector (protocols/wireshark/sgp.lua).

Needs the `tshark` program (Debian package `tshark`); skipped when it is absent. Wireshark's own
`bpv7` dissector must decode the BPv7 bundles (RFC 9171) that pyd3tn encodes.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from netemu.capture import CaptureWriter, DropReason, LinkEvent, LinkMeta
from netemu.protocol import MessageType, Packet, PayloadType, encode
from netemu.protocol.fields import BODIES, HEADER_FIELDS
from netemu.protocol.vectors import load_vectors
from netemu.protocol.wireshark import dissector_path

TSHARK = shutil.which("tshark")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(TSHARK is None, reason="tshark is not installed"),
]

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SEVERITY_WARN = 0x00600000
# Wireshark's bpv7 dissector warns "Unknown type code" (bpv7.sub_type_unknown) when it has no
# dissector for the bundle's application payload: undecoded application data, not a fault.
ALLOWED_WARNINGS = {"Unknown type code"}
BODY_PREFIX = {
    MessageType.ACK: "sgp.ack.",
    MessageType.NACK: "sgp.nack.",
    MessageType.HELLO: "sgp.hello.",
    MessageType.ECHO_REQUEST: "sgp.echo.",
    MessageType.ECHO_REPLY: "sgp.echo.",
    MessageType.ROUTE: "sgp.route.",
}
HEADER_NAMES = [f.name for f in HEADER_FIELDS]
LINK_FIELDS = ["event", "reason", "link_id", "tx_node", "rx_node", "range_m", "delay_ns",
               "loss_probability", "loss_draw"]  # fmt: skip
BODY_FIELDS = sorted(
    {BODY_PREFIX[t] + name for t, layout in BODIES.items() if t in BODY_PREFIX
     for name in [n for n, _ in layout.fixed] + ([layout.tail] if layout.tail else [])}
)  # fmt: skip
FIELDS = (
    ["frame.number", "frame.time_epoch", "frame.interface_name", "_ws.malformed",
     "_ws.expert.severity", "_ws.expert.message", "sgp.crc.status", "sgp.payload",
     "sgp.rr.node", "sgp.rr.time_ns", "sgp.rr.missed", "sgp.ext.type",
     "bpv7.primary.dst_uri", "bpv7.primary.src_uri", "bpv7.crc_status"]
    + ["sgp." + n for n in HEADER_NAMES]
    + ["netemulink." + n for n in LINK_FIELDS]
    + BODY_FIELDS
)  # fmt: skip


def run_tshark(capture: Path, fields: list[str]) -> list[dict[str, list[str]]]:
    cmd = [
        TSHARK,
        "-n",
        "-X",
        f"lua_script:{dissector_path()}",
        "-r",
        str(capture),
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=\x1f",
        "-E",
        "separator=/t",
    ]
    for name in fields:
        cmd += ["-e", name]
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)  # fmt: skip
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, stderr
    assert "Lua" not in stderr and "rror" not in stderr, stderr
    rows = []
    for line in proc.stdout.decode("utf-8", errors="replace").splitlines():
        values = line.split("\t")
        assert len(values) == len(fields)
        rows.append(
            {k: (v.split("\x1f") if v else []) for k, v in zip(fields, values, strict=True)}
        )
    return rows


def meta_for(i: int) -> LinkMeta:
    dropped = i % 5 == 4
    return LinkMeta(
        link_id=100 + i, tx_node=1000 + i, rx_node=2000 + i, range_m=1.0e6 + 1234.5 * i,
        delay_ns=3_335_641 + i, loss_probability=0.125, loss_draw=math.nan if i % 3 else 0.5,
        event=LinkEvent.DROPPED if dropped else LinkEvent.DELIVERED,
        reason=DropReason.QUEUE_FULL if dropped else DropReason.NONE,
    )  # fmt: skip


@pytest.fixture(scope="module")
def dissected(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    vectors = load_vectors()
    path = tmp_path_factory.mktemp("tshark") / "vectors.pcapng"
    with CaptureWriter(path, epoch_utc=EPOCH) as cap:
        for i, vector in enumerate(vectors):
            iface = cap.interface(f"isl:sat-{1000 + i}>sat-{2000 + i}")
            cap.write(iface, i * 1_000_000_007, bytes.fromhex(vector["hex"]), meta_for(i))
    rows = run_tshark(path, FIELDS)
    assert len(rows) == len(vectors)
    return vectors, rows


def _int(text: str) -> int:
    return int(text, 0)


def _bad_experts(row: dict) -> list[str]:
    severities = [_int(s) for s in row["_ws.expert.severity"]]
    messages = row["_ws.expert.message"]
    return [m for s, m in zip(severities, messages, strict=True)
            if s >= SEVERITY_WARN and m not in ALLOWED_WARNINGS]  # fmt: skip


def test_lua_declares_every_spec_field() -> None:
    out = subprocess.run(
        [TSHARK, "-G", "fields", "-X", f"lua_script:{dissector_path()}"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    declared = {line.split("\t")[2] for line in out.splitlines() if line.startswith("F\t")}
    wanted = {"sgp." + n for n in HEADER_NAMES} | set(BODY_FIELDS)
    wanted |= {"netemulink." + n for n in LINK_FIELDS} | {"sgp.payload", "sgp.rr.node"}
    assert wanted <= declared, sorted(wanted - declared)


def test_valid_vectors_decode_with_expected_values(dissected) -> None:
    vectors, rows = dissected
    checked = 0
    for vector, row in zip(vectors, rows, strict=True):
        if vector["kind"] != "valid":
            continue
        name, fields = vector["name"], vector["fields"]
        assert not row["_ws.malformed"], name
        assert _bad_experts(row) == [], name
        assert row["sgp.crc.status"] == ["1"], name
        for field in HEADER_NAMES:
            if field == "reserved":
                assert row["sgp.reserved"] == ["0x00"], name
                continue
            assert [_int(v) for v in row["sgp." + field]] == [fields[field]], (name, field)
        mtype = MessageType(fields["type"])
        if mtype is MessageType.DATA:
            got = "".join(row["sgp.payload"]).replace(":", "")
            assert got == fields["body"]["payload"], name
        else:
            for key, value in fields["body"].items():
                got = row[BODY_PREFIX[mtype] + key]
                if isinstance(value, int):
                    assert [_int(v) for v in got] == [value], (name, key)
                elif key == "node_name":
                    assert got == ([value] if value else []), name
                else:
                    assert "".join(got).replace(":", "") == value, (name, key)
        rr = [e for e in fields["extensions"] if e["type"] == 1]
        assert [_int(n) for n in row["sgp.rr.node"]] == [h["node"] for e in rr for h in e["hops"]]
        assert [int(t) for t in row["sgp.rr.time_ns"]] == [
            h["time_ns"] for e in rr for h in e["hops"]
        ]
        assert [_int(t) for t in row["sgp.ext.type"]] == [e["type"] for e in fields["extensions"]]
        checked += 1
    assert checked == sum(v["kind"] == "valid" for v in vectors)


def test_link_metadata_and_timestamps(dissected) -> None:
    vectors, rows = dissected
    for i, row in enumerate(rows):
        meta = meta_for(i)
        assert row["frame.interface_name"] == [f"isl:sat-{1000 + i}>sat-{2000 + i}"]
        t_ns = 1_767_225_600 * 10**9 + i * 1_000_000_007
        assert row["frame.time_epoch"] == [f"{t_ns // 10**9}.{t_ns % 10**9:09d}"]
        assert _int(row["netemulink.event"][0]) == meta.event
        assert _int(row["netemulink.reason"][0]) == meta.reason
        for key in ("link_id", "tx_node", "rx_node", "delay_ns"):
            assert _int(row["netemulink." + key][0]) == getattr(meta, key), key
        assert float(row["netemulink.range_m"][0]) == pytest.approx(meta.range_m)
        assert float(row["netemulink.loss_probability"][0]) == meta.loss_probability
        if math.isnan(meta.loss_draw):
            assert row["netemulink.loss_draw"] == []
        else:
            assert float(row["netemulink.loss_draw"][0]) == meta.loss_draw


def test_invalid_vectors_raise_expert_errors(dissected) -> None:
    vectors, rows = dissected
    for vector, row in zip(vectors, rows, strict=True):
        if vector["kind"] == "invalid":
            severities = [_int(s) for s in row["_ws.expert.severity"]]
            assert max(severities, default=0) >= 0x00800000, vector["name"]
    by_name = {v["name"]: r for v, r in zip(vectors, rows, strict=True)}
    assert by_name["bad-crc"]["sgp.crc.status"] == ["0"]
    assert any("Truncated" in m for m in by_name["truncated-header"]["_ws.expert.message"])


def test_bpv7_vector_goes_to_wiresharks_bpv7(dissected) -> None:
    vectors, rows = dissected
    row = next(r for v, r in zip(vectors, rows, strict=True) if v["name"] == "data-bpv7")
    assert row["bpv7.primary.dst_uri"] == ["ipn:20.1"]
    assert row["bpv7.primary.src_uri"] == ["ipn:10.1"]
    assert row["bpv7.crc_status"] and set(row["bpv7.crc_status"]) == {"1"}


def test_pyd3tn_bundle_decoded_by_bpv7_inside_sgp(tmp_path: Path) -> None:
    """A bundle from the independent pyd3tn encoder, carried in SGP, read by tshark's bpv7."""
    from pyd3tn.bundle7 import serialize_bundle7

    bundle = serialize_bundle7(
        "dtn://ground-svalbard/app", "ipn:1003.7", b"telecommand 42",
        creation_timestamp=dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), sequence_number=9,
        lifetime=600, hop_limit=20,
    )  # fmt: skip
    packet = Packet(type=MessageType.DATA, src=9000, dst=1003, body=bundle,
                    payload_type=PayloadType.BPV7)  # fmt: skip
    path = tmp_path / "bpv7.pcapng"
    with CaptureWriter(path, epoch_utc=EPOCH) as cap:
        cap.write(cap.interface("gsl:svalbard>iridium-p01-s03"), 0, encode(packet),
                  LinkMeta(1, 9000, 1003, 1.2e6, 4_002_769))  # fmt: skip
    fields = ["sgp.src", "sgp.payload_type", "bpv7.primary.dst_uri", "bpv7.primary.src_uri",
              "bpv7.primary.create_ts", "bpv7.crc_status", "data.data", "_ws.malformed",
              "_ws.expert.severity", "_ws.expert.message"]  # fmt: skip
    (row,) = run_tshark(path, fields)
    assert row["sgp.src"] == ["9000"] and row["sgp.payload_type"] == ["2"]
    assert row["bpv7.primary.dst_uri"] == ["ipn:1003.7"]
    assert row["bpv7.primary.src_uri"] == ["dtn://ground-svalbard/app"]
    assert set(row["bpv7.crc_status"]) == {"1"} and len(row["bpv7.crc_status"]) == 3
    assert bytes.fromhex("".join(row["data.data"]).replace(":", "")) == b"telecommand 42"
    assert not row["_ws.malformed"] and _bad_experts(row) == []
