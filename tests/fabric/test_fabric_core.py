"""The fabric core against hand-computed numbers: delay, extrapolation, queueing, drops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netemu.capture import DropReason, LinkEvent
from netemu.capture.linkheader import decode_link_frame, encode_link_header
from netemu.errors import NetemuError
from netemu.fabric import Fabric, FabricConfig, FabricDrop, FrameStatus, LinkTable
from netemu.geometry import C_M_PER_S

C = C_M_PER_S
MS = 1_000_000
# 2,997,924.58 m is exactly 10 ms of light time; 1,250 bytes at 1 Mbit/s serialize in 10 ms.
RANGE_10MS_M = 2_997_924.58


def one_link(t_ns=0, *, up=True, range_m=RANGE_10MS_M, rate_bps=1e6, range_rate_mps=0.0,
             loss=0.0, link_id=5, directed=False):  # fmt: skip
    return LinkTable.from_rows(
        t_ns,
        [
            dict(link_id=link_id, a=0, b=1, up=up, range_m=range_m, rate_bps=rate_bps,
                 range_rate_mps=range_rate_mps, loss=loss, directed=directed)
        ],
    )  # fmt: skip


def fabric_with(table, **config):
    return Fabric(FabricConfig(**config), table=table)


def test_delay_is_propagation_plus_serialization():
    fab = fabric_with(one_link())
    out = fab.send(b"\0" * 1250, 0, 1, t_ns=0)
    assert out.status is FrameStatus.IN_FLIGHT
    assert (out.queue_ns, out.serialization_ns, out.propagation_ns) == (0, 10 * MS, 10 * MS)
    assert out.arrival_ns == 20 * MS
    assert out.delay_ns == 20 * MS
    assert out.range_m == pytest.approx(RANGE_10MS_M)
    assert out.link_id == 5 and out.frame == b"\0" * 1250


def test_both_directions_of_an_undirected_link_have_their_own_transmitter():
    fab = fabric_with(one_link())
    a = fab.send(1250, 0, 1, t_ns=0)
    b = fab.send(1250, 1, 0, t_ns=0)
    assert a.arrival_ns == b.arrival_ns == 20 * MS
    assert a.frame is None  # sent as a length
    c = fab.send(np.int64(1250), 0, 1, t_ns=np.int64(0))
    assert c.size_bytes == 1250 and c.frame is None and c.arrival_ns == 30 * MS


def test_queueing_behind_frames_being_serialized():
    fab = fabric_with(one_link())
    first = fab.send(1250, 0, 1, t_ns=0)  # on the wire 0..10 ms
    second = fab.send(1250, 0, 1, t_ns=1 * MS)  # waits 9 ms, on the wire 10..20 ms
    third = fab.send(625, 0, 1, t_ns=2 * MS)  # waits 18 ms, 5 ms on the wire 20..25 ms
    assert first.arrival_ns == 20 * MS
    assert (second.queue_ns, second.serialization_ns) == (9 * MS, 10 * MS)
    assert second.arrival_ns == 30 * MS
    assert (third.queue_ns, third.serialization_ns) == (18 * MS, 5 * MS)
    assert third.arrival_ns == 35 * MS
    # after the transmitter idles, no queueing
    late = fab.send(1250, 0, 1, t_ns=100 * MS)
    assert late.queue_ns == 0 and late.arrival_ns == 120 * MS


def test_range_extrapolated_with_range_rate_at_departure():
    # epoch at 1 s: 3,000 km opening at 7 km/s; infinite rate (no serialization)
    fab = fabric_with(one_link(1_000_000_000, range_m=3.0e6, rate_bps=math.inf,
                               range_rate_mps=7000.0))  # fmt: skip
    out = fab.send(1500, 0, 1, t_ns=3_000_000_000)
    assert out.serialization_ns == 0
    assert out.range_m == pytest.approx(3.0e6 + 7000.0 * 2.0)  # 3,014 km
    assert out.propagation_ns == 10_053_622  # 3,014,000 m / c = 10.0536218... ms, rounded up
    assert out.arrival_ns == 3_000_000_000 + 10_053_622
    # with serialization the range is taken when the last bit leaves (10 ms later)
    fab = fabric_with(one_link(1_000_000_000, range_m=3.0e6, range_rate_mps=-7000.0))
    out = fab.send(1250, 0, 1, t_ns=3_000_000_000)
    assert out.range_m == pytest.approx(3.0e6 - 7000.0 * 2.01)
    assert out.propagation_ns == math.ceil((3.0e6 - 7000.0 * 2.01) / C * 1e9)
    assert out.arrival_ns == 3_010_000_000 + out.propagation_ns
    # before the epoch the range is extrapolated backwards
    fab = fabric_with(one_link(1_000_000_000, range_m=3.0e6, rate_bps=math.inf,
                               range_rate_mps=7000.0))  # fmt: skip
    assert fab.send(1, 0, 1, t_ns=0).range_m == pytest.approx(3.0e6 - 7000.0)


def test_range_never_negative():
    fab = fabric_with(one_link(0, range_m=1000.0, rate_bps=math.inf, range_rate_mps=-7000.0))
    out = fab.send(1, 0, 1, t_ns=10_000_000_000)
    assert out.range_m == 0.0 and out.arrival_ns == 10_000_000_000


def test_queue_tail_drop_by_frames():
    fab = fabric_with(one_link(), queue_limit_frames=2)
    outs = [fab.send(1250, 0, 1, t_ns=0) for _ in range(5)]
    assert [o.status for o in outs] == [FrameStatus.IN_FLIGHT] * 3 + [FrameStatus.DROPPED] * 2
    assert [o.reason for o in outs[3:]] == [FabricDrop.QUEUE_FULL] * 2
    assert outs[3].arrival_ns is None and outs[3].dropped_ns == 0
    assert fab.queue_depth(0, 1, 0) == (2, 2500)
    # at 10 ms frame 1 starts serializing: one place frees up
    assert fab.queue_depth(0, 1, 10 * MS) == (1, 1250)
    ok = fab.send(1250, 0, 1, t_ns=10 * MS)
    full = fab.send(1250, 0, 1, t_ns=10 * MS)
    assert ok.status is FrameStatus.IN_FLIGHT and ok.arrival_ns == 50 * MS  # after f0, f1, f2
    assert full.reason is FabricDrop.QUEUE_FULL
    assert fab.balance().dropped == {"queue-full": 3}
    assert fab.link_counters()[5].dropped == {FabricDrop.QUEUE_FULL: 3}


def test_queue_tail_drop_by_bytes():
    fab = fabric_with(one_link(), queue_limit_frames=None, queue_limit_bytes=3000)
    first = fab.send(1250, 0, 1, t_ns=0)  # transmitter idle: never queued
    waiting = [fab.send(1250, 0, 1, t_ns=0) for _ in range(2)]  # 2,500 bytes waiting
    too_many = fab.send(1250, 0, 1, t_ns=0)  # 3,750 > 3,000
    fits = fab.send(500, 0, 1, t_ns=0)  # exactly 3,000
    assert first.status is FrameStatus.IN_FLIGHT
    assert all(o.status is FrameStatus.IN_FLIGHT for o in waiting)
    assert too_many.reason is FabricDrop.QUEUE_FULL
    assert fits.status is FrameStatus.IN_FLIGHT


def test_zero_queue_only_sends_to_an_idle_transmitter():
    fab = fabric_with(one_link(), queue_limit_frames=0)
    assert fab.send(1250, 0, 1, t_ns=0).status is FrameStatus.IN_FLIGHT
    assert fab.send(1250, 0, 1, t_ns=5 * MS).reason is FabricDrop.QUEUE_FULL
    assert fab.send(1250, 0, 1, t_ns=10 * MS).status is FrameStatus.IN_FLIGHT


def test_link_down_no_link_and_too_big():
    fab = fabric_with(one_link(up=False), mtu_bytes=1500)
    down = fab.send(100, 0, 1, t_ns=0)
    assert (down.status, down.reason, down.arrival_ns) == (
        FrameStatus.DROPPED, FabricDrop.LINK_DOWN, None)  # fmt: skip
    assert math.isnan(down.loss_draw)
    nolink = fab.send(100, 0, 2, t_ns=0)
    assert nolink.reason is FabricDrop.NO_LINK and nolink.link_id == -1
    fab.update(one_link(1))
    assert fab.send(1501, 0, 1, t_ns=1).reason is FabricDrop.TOO_BIG
    assert fab.send(1500, 0, 1, t_ns=1).status is FrameStatus.IN_FLIGHT
    assert fab.send(100, 0, 1, t_ns=1, link_id=6).reason is FabricDrop.NO_LINK  # wrong id
    assert fab.send(100, 0, 1, t_ns=1, link_id=5).status is FrameStatus.IN_FLIGHT
    bal = fab.balance()
    assert bal.dropped == {"link-down": 1, "no-link": 2, "too-big": 1}
    assert bal.ok and bal.in_flight == 2


def test_send_before_any_table_is_no_link():
    fab = Fabric()
    assert fab.table is None
    assert fab.send(10, 0, 1, t_ns=0).reason is FabricDrop.NO_LINK
    assert fab.balance().ok


def test_directed_rows():
    table = LinkTable.from_rows(0, [
        dict(link_id=1, a=0, b=1, range_m=RANGE_10MS_M, rate_bps=math.inf, directed=True),
        dict(link_id=1, a=1, b=0, up=False, range_m=RANGE_10MS_M, rate_bps=math.inf,
             directed=True),
    ])  # fmt: skip
    fab = fabric_with(table)
    assert fab.send(10, 0, 1, t_ns=0).arrival_ns == 10 * MS
    assert fab.send(10, 1, 0, t_ns=0).reason is FabricDrop.LINK_DOWN
    dup = LinkTable.from_rows(0, [
        dict(link_id=1, a=0, b=1, range_m=1.0, rate_bps=1.0),
        dict(link_id=2, a=1, b=0, range_m=1.0, rate_bps=1.0, directed=True),
    ])  # fmt: skip
    with pytest.raises(NetemuError, match="two rows for direction 1->0"):
        Fabric(table=dup)


def test_poll_and_next_deadline():
    fab = fabric_with(one_link(rate_bps=math.inf))
    assert fab.next_deadline() is None and fab.poll(10**12) == []
    b = fab.send(1, 1, 0, t_ns=1 * MS)
    c = fab.send(1, 0, 1, t_ns=1 * MS)
    a = fab.send(1, 0, 1, t_ns=3 * MS)
    assert fab.next_deadline() == 11 * MS
    assert fab.poll(11 * MS - 1) == []
    assert fab.poll(11 * MS) == [b, c]  # same arrival: frame order
    assert b.status is FrameStatus.DELIVERED and b.delivered
    assert fab.next_deadline() == 13 * MS
    assert fab.poll(20 * MS) == [a]
    assert fab.next_deadline() is None
    bal = fab.balance()
    assert (bal.sent, bal.delivered, bal.in_flight, bal.dropped_total) == (3, 3, 0, 0)
    assert fab.link_counters()[5].delivered == 3


def test_link_down_cancels_frames_in_flight():
    fab = fabric_with(one_link())
    outs = [fab.send(1250, 0, 1, t_ns=i * MS) for i in range(3)]  # arrive 20, 30, 40 ms
    back = fab.send(1250, 1, 0, t_ns=0)  # arrives 20 ms
    assert [o.arrival_ns for o in outs] == [20 * MS, 30 * MS, 40 * MS]
    assert fab.poll(20 * MS) == [outs[0], back]
    cancelled = fab.update(one_link(25 * MS, up=False))
    assert cancelled == outs[1:]
    assert all(o.reason is FabricDrop.LINK_DOWN_IN_FLIGHT for o in cancelled)
    assert all(o.dropped_ns == 25 * MS for o in cancelled)
    assert fab.next_deadline() is None and fab.poll(10**12) == []
    assert fab.balance().dropped == {"link-down-in-flight": 2} and fab.balance().ok
    # the queue was flushed: when the link comes back the transmitter is idle
    fab.update(one_link(50 * MS))
    assert fab.send(1250, 0, 1, t_ns=50 * MS).queue_ns == 0


def test_frames_due_by_the_epoch_survive_the_update():
    # short link: arrives at 2 ms; the host has not polled yet when the 5 ms epoch arrives
    fab = fabric_with(one_link(range_m=299_792.458, rate_bps=math.inf))
    early = fab.send(1, 0, 1, t_ns=1 * MS)
    on_time = fab.send(1, 0, 1, t_ns=4 * MS)  # due exactly at the epoch
    late = fab.send(1, 0, 1, t_ns=4 * MS + 1)
    assert fab.update(LinkTable.from_rows(5 * MS, [])) == [late]  # link removed
    assert fab.poll(5 * MS) == [early, on_time] and early.delivered
    assert fab.send(1, 0, 1, t_ns=6 * MS).reason is FabricDrop.NO_LINK
    assert fab.balance().ok


def test_update_keeping_the_link_up_keeps_frames_and_queue():
    fab = fabric_with(one_link())
    first = fab.send(1250, 0, 1, t_ns=0)
    assert fab.update(one_link(5 * MS, range_m=2 * RANGE_10MS_M)) == []
    second = fab.send(1250, 0, 1, t_ns=5 * MS)
    assert first.arrival_ns == 20 * MS  # unchanged
    assert second.queue_ns == 5 * MS and second.arrival_ns == 20 * MS + 20 * MS


def test_older_table_rejected():
    fab = fabric_with(one_link(10))
    with pytest.raises(NetemuError, match="older"):
        fab.update(one_link(9))


def test_negative_length_rejected():
    with pytest.raises(NetemuError):
        fabric_with(one_link()).send(-1, 0, 1, t_ns=0)


@pytest.mark.parametrize(
    "config",
    [dict(queue_limit_frames=-1), dict(queue_limit_bytes=1.5), dict(mtu_bytes=0)],
)
def test_bad_config(config):
    with pytest.raises(NetemuError):
        FabricConfig(**config)


def test_capture_metadata():
    fab = fabric_with(one_link(loss=0.0), mtu_bytes=1500)
    out = fab.send(b"\1" * 1250, 0, 1, t_ns=0)
    with pytest.raises(NetemuError, match="in flight"):
        out.meta()
    fab.poll(20 * MS)
    meta = out.meta(node_numbers=[100, 101])
    assert (meta.link_id, meta.tx_node, meta.rx_node) == (5, 100, 101)
    assert meta.delay_ns == 20 * MS and meta.event == LinkEvent.DELIVERED
    assert meta.reason == DropReason.NONE and 0.0 <= meta.loss_draw < 1.0
    assert decode_link_frame(encode_link_header(meta) + b"x")[0] == meta

    big = fab.send(1501, 1, 0, t_ns=0).meta({0: 100, 1: 101})
    assert (big.event, big.reason, big.tx_node) == (LinkEvent.DROPPED, DropReason.TOO_BIG, 101)
    assert math.isnan(big.loss_draw) and big.delay_ns == 0
    nolink = fab.send(1, 0, 7, t_ns=0).meta()
    assert nolink.reason == DropReason.LINK_DOWN and nolink.link_id == 0xFFFF_FFFF
    fab.send(1250, 0, 1, t_ns=30 * MS)
    (lost,) = fab.update(one_link(35 * MS, up=False))
    assert lost.meta().reason == DropReason.LINK_LOST


def test_every_fabric_reason_maps_to_a_capture_reason():
    assert {r.capture_reason for r in FabricDrop} <= set(DropReason) - {DropReason.NONE}
    assert FabricDrop.LOSS.capture_reason == DropReason.LOSS
    assert FabricDrop.QUEUE_FULL.capture_reason == DropReason.QUEUE_FULL


def test_capture_writer_accepts_fabric_metadata(tmp_path):
    from netemu.capture import CaptureWriter

    fab = fabric_with(one_link())
    out = fab.send(b"sgp", 0, 1, t_ns=0)
    fab.poll(out.arrival_ns)
    with CaptureWriter(tmp_path / "fabric.pcapng", epoch_utc="2026-01-01T00:00:00Z") as cap:
        iface = cap.interface("link5")
        cap.write(iface, out.arrival_ns, out.frame, out.meta())
    assert (tmp_path / "fabric.pcapng").stat().st_size > 0
