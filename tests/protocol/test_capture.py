"""The pcapng writer, read back by scapy's independent pcapng reader."""

from __future__ import annotations

import datetime as dt
import io
import math
from decimal import Decimal
from pathlib import Path

import pytest
from scapy.utils import PcapNgReader

from netemu.capture import (
    LINK_HEADER_LEN,
    LINKTYPE_NETEMU,
    CaptureWriter,
    DropReason,
    LinkEvent,
    LinkMeta,
    decode_link_frame,
    encode_link_header,
)
from netemu.capture.sample import write_vector_capture
from netemu.errors import ProtocolError
from netemu.protocol import decode
from support import REPO

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EPOCH_UNIX_S = 1_767_225_600


def test_link_header_round_trip() -> None:
    meta = LinkMeta(
        link_id=7, tx_node=1003, rx_node=1004, range_m=4_123_456.5, delay_ns=13_754_221,
        loss_probability=0.25, loss_draw=0.1, event=LinkEvent.DROPPED, reason=DropReason.LOSS,
    )  # fmt: skip
    header = encode_link_header(meta)
    assert len(header) == LINK_HEADER_LEN == 56
    assert decode_link_frame(header + b"sgp") == (meta, b"sgp")
    no_draw = LinkMeta(1, 2, 3, 1.0, 4)
    decoded, _ = decode_link_frame(encode_link_header(no_draw))
    assert math.isnan(decoded.loss_draw) and decoded == no_draw


@pytest.mark.parametrize(
    ("frame", "field"),
    [(b"\x01" * 10, "link_header"), (b"\x02" + bytes(55), "version")],
)
def test_link_header_errors(frame: bytes, field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_link_frame(frame)
    assert info.value.field == field


def test_writer_output_read_by_scapy(tmp_path: Path) -> None:
    path = tmp_path / "cap.pcapng"
    meta = LinkMeta(1, 10, 11, range_m=2.0e6, delay_ns=6_671_282, loss_probability=0.01,
                    loss_draw=0.5)  # fmt: skip
    with CaptureWriter(path, epoch_utc=EPOCH) as cap:
        a = cap.interface("isl:iridium-p01-s03>iridium-p01-s04")
        b = cap.interface("isl:iridium-p01-s04>iridium-p01-s03", description="reverse")
        assert cap.interface("isl:iridium-p01-s03>iridium-p01-s04") == a == 0 and b == 1
        cap.write(a, 1_500_000_123, b"\x11abc", meta)
        cap.write(b, 86_400 * 10**9, b"\x11", LinkMeta(1, 11, 10, 2.0e6, 1, 1.0, math.nan,
                  LinkEvent.DROPPED, DropReason.LINK_DOWN))  # fmt: skip
        with pytest.raises(ValueError):
            cap.write(5, 0, b"", meta)
    reader = PcapNgReader(str(path))
    frames = list(reader)
    reader.close()
    assert [iface[0] for iface in reader.interfaces] == [LINKTYPE_NETEMU] * 2
    assert [iface[2]["tsresol"] for iface in reader.interfaces] == [10**9] * 2
    assert frames[0].sniffed_on == "isl:iridium-p01-s03>iridium-p01-s04"
    assert frames[1].sniffed_on == "isl:iridium-p01-s04>iridium-p01-s03"
    assert Decimal(frames[0].time) == Decimal(EPOCH_UNIX_S) + Decimal("1.500000123")
    assert Decimal(frames[1].time) == Decimal(EPOCH_UNIX_S + 86_400)
    assert decode_link_frame(bytes(frames[0])) == (meta, b"\x11abc")
    assert frames[0].comments == [meta.summary().encode()]
    assert b"dropped (link_down)" in frames[1].comments[0]


def test_writer_without_comments_to_stream() -> None:
    buf = io.BytesIO()
    with CaptureWriter(buf, epoch_utc="2026-01-01T00:00:00Z", comments=False) as cap:
        cap.write(cap.interface("x"), 0, b"", LinkMeta(1, 2, 3, 1.0, 1))
        assert cap.frames_written == 1
    assert not buf.closed  # the caller owns the stream
    buf.seek(0)
    frames = list(PcapNgReader(buf))
    assert len(frames) == 1 and not getattr(frames[0], "comments", None)


def test_committed_sample_capture_is_current(tmp_path: Path) -> None:
    """captures/sample-vectors.pcapng is what the writer makes from the committed vectors."""
    fresh = tmp_path / "sample.pcapng"
    vectors = write_vector_capture(fresh)
    committed = REPO / "captures" / "sample-vectors.pcapng"
    assert committed.read_bytes() == fresh.read_bytes()
    frames = list(PcapNgReader(str(committed)))
    assert len(frames) == len(vectors)
    for frame, vector in zip(frames, vectors, strict=True):
        _, sgp = decode_link_frame(bytes(frame))
        assert sgp.hex() == vector["hex"]
        if vector["kind"] == "valid":
            decode(sgp)
