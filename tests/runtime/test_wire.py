"""The run's own datagram formats and files: fabric attachment, application interface, config
files, event logs and topic names (docs/runtime.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netemu.control.mqtt import decode_json, encode_json, parse_broker_url
from netemu.control.topics import Topics
from netemu.errors import NetemuError, ProtocolError
from netemu.runtime.config import FabricHostConfig, NodeHostConfig, load_config, save_config
from netemu.runtime.eventlog import EVENT_COLUMNS, EventLog, read_events
from netemu.runtime.wire import (
    Kind,
    decode_app,
    decode_attachment,
    encode_app,
    encode_attachment,
)


def test_attachment_golden_bytes():
    # 'N' 'F', version 1, kind FRAME (1), node 0x01020304, then the payload
    assert encode_attachment(Kind.FRAME, 0x01020304, b"\xaa") == b"NF\x01\x01\x01\x02\x03\x04\xaa"
    assert encode_attachment(Kind.LINK, 7, b"\x01") == b"NF\x01\x04\x00\x00\x00\x07\x01"


@given(st.sampled_from(list(Kind)), st.integers(0, 2**32 - 1), st.binary(max_size=64))
def test_attachment_round_trip(kind, node, payload):
    assert decode_attachment(encode_attachment(kind, node, payload)) == (kind, node, payload)


@pytest.mark.parametrize(
    ("datagram", "field"),
    [
        (b"NF\x01", "header"),
        (b"XX\x01\x01\x00\x00\x00\x01", "magic"),
        (b"NF\x02\x01\x00\x00\x00\x01", "version"),
        (b"NF\x01\x09\x00\x00\x00\x01", "kind"),
    ],
)
def test_attachment_errors_name_the_field(datagram, field):
    with pytest.raises(ProtocolError) as info:
        decode_attachment(datagram)
    assert info.value.field == field


@given(st.integers(0, 2**32 - 1), st.integers(0, 255), st.integers(0, 255), st.binary())
def test_app_round_trip(peer, ptype, flags, payload):
    assert decode_app(encode_app(peer, payload, payload_type=ptype, flags=flags)) == (
        peer,
        ptype,
        flags,
        payload,
    )


def test_app_header_layout_and_short_datagram():
    assert encode_app(1001, b"hi", payload_type=1, flags=1) == b"\x00\x00\x03\xe9\x01\x01\x00\x00hi"
    with pytest.raises(ProtocolError):
        decode_app(b"\x00\x00")


def _common(tmp_path):
    return dict(
        run_id="r1",
        broker_url="mqtt://127.0.0.1:1883",
        out=str(tmp_path),
        epoch_utc="2026-01-01T00:00:00Z",
        epoch_dtn_ns=820_454_400 * 10**9,
        epoch_ns=10**9,
        duration_ns=60 * 10**9,
    )


def test_config_round_trip_and_errors(tmp_path):
    node = NodeHostConfig(
        **_common(tmp_path),
        number=7,
        name="sat-7",
        kind="satellite",
        fabric_host="127.0.0.1",
        fabric_port=5000,
        flows=[{"flow_id": 1}],
    )
    fabric = FabricHostConfig(
        **_common(tmp_path),
        udp_host="127.0.0.1",
        udp_port=5000,
        node_numbers=[7, 1001],
        node_names=["sat-7", "gs-x"],
    )
    assert load_config(save_config(node, tmp_path / "n.json"), NodeHostConfig) == node
    assert load_config(save_config(fabric, tmp_path / "f.json"), FabricHostConfig) == fabric
    with pytest.raises(NetemuError, match="a NodeHostConfig config, expected FabricHostConfig"):
        load_config(tmp_path / "n.json", FabricHostConfig)
    (tmp_path / "bad.json").write_text('{"config": "NodeHostConfig", "nmber": 1}')
    with pytest.raises(NetemuError, match=r"unknown keys \['nmber'\]"):
        load_config(tmp_path / "bad.json", NodeHostConfig)
    with pytest.raises(NetemuError, match="mqtt://"):
        NodeHostConfig(
            **{**_common(tmp_path), "broker_url": "tcp://x"},
            number=1,
            name="a",
            kind="ground",
            fabric_host="h",
            fabric_port=1,
        )


def test_event_log_round_trip_skips_a_truncated_last_line(tmp_path):
    path = tmp_path / "events.csv"
    with EventLog(path) as log:
        log.write(
            t_ns=5,
            where=7,
            event="originated",
            src=7,
            dst=1001,
            packet_id=3,
            creation_dtn_ns=99,
            msg_type="DATA",
            size_bytes=1000,
            flow_id=1,
            seq=0,
        )
        log.write(
            t_ns=9,
            where=1001,
            event="delivered",
            src=7,
            dst=1001,
            packet_id=3,
            creation_dtn_ns=99,
            msg_type="DATA",
            hops=2,
            route="7@5;3@7",
        )
    with open(path, "a") as f:
        f.write("12,7,dropped,7,1001")  # a process killed mid-write
    rows = list(read_events(path))
    assert [r["event"] for r in rows] == ["originated", "delivered"]
    assert rows[0]["flow_id"] == 1 and rows[0]["reason"] is None
    assert rows[1]["route"] == "7@5;3@7" and rows[1]["hops"] == 2
    assert set(rows[0]) == set(EVENT_COLUMNS)


def test_topics_and_broker_urls():
    t = Topics("abc")
    assert t.node_status(1001) == "netemu/abc/node/1001/status"
    assert t.parse_node_topic("netemu/abc/node/1001/reply/x1") == (1001, "reply/x1")
    assert t.parse_node_topic("netemu/other/node/1/status") is None
    assert parse_broker_url("mqtt://localhost") == ("localhost", 1883)
    with pytest.raises(NetemuError):
        parse_broker_url("http://127.0.0.1:1883")
    assert decode_json(encode_json({"a": [1, None]})) == {"a": [1, None]}
    assert decode_json(b"\xff not json") is None
