"""Properties under random sequences of sends, epoch updates and polls (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from netemu.fabric import Fabric, FabricConfig, FabricDrop, FrameStatus, LinkTable
from netemu.geometry import C_M_PER_S

C = C_M_PER_S
PAIRS = ((0, 1), (1, 2), (0, 2))

link_params = st.tuples(
    st.booleans(),  # up
    st.floats(0.0, 5.0e6),  # range_m
    st.floats(-7500.0, 7500.0),  # range_rate_mps
    st.sampled_from([1e3, 1e6, 1e9, math.inf]),  # rate_bps
    st.sampled_from([0.0, 0.2, 1.0]),  # loss
)
send_op = st.tuples(
    st.just("send"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 3000),
    st.integers(0, 5_000_000),
)  # fmt: skip
update_op = st.tuples(
    st.just("update"), st.integers(0, 50_000_000), st.lists(link_params, min_size=3, max_size=3),
    st.lists(st.booleans(), min_size=3, max_size=3),  # listed in the table at all
)  # fmt: skip
poll_op = st.tuples(st.just("poll"), st.integers(0, 30_000_000))
ops = st.lists(st.one_of(send_op, update_op, poll_op), max_size=60)


def make_table(t_ns, params, listed):
    rows = []
    for i, ((a, b), (up, r, rr, rate, loss), present) in enumerate(
        zip(PAIRS, params, listed, strict=True)
    ):
        if present:
            rows.append(dict(link_id=i, a=a, b=b, up=up, range_m=r, range_rate_mps=rr,
                             rate_bps=rate, loss=loss))  # fmt: skip
    return LinkTable.from_rows(t_ns, rows)


@settings(max_examples=150, deadline=None)
@given(
    ops=ops,
    seed=st.integers(0, 2**32 - 1),
    qframes=st.sampled_from([None, 0, 2]),
    qbytes=st.sampled_from([None, 4000]),
    first=st.lists(link_params, min_size=3, max_size=3),
)
def test_balance_and_invariants(ops, seed, qframes, qbytes, first):
    fab = Fabric(FabricConfig(seed=seed, queue_limit_frames=qframes, queue_limit_bytes=qbytes))
    t = 0
    table = make_table(t, first, [True, True, True])
    fab.update(table)
    outcomes = []
    for op in ops:
        if op[0] == "send":
            _, tx, rx, size, dt = op
            t += dt
            out = fab.send(size, tx, rx, t_ns=t)
            outcomes.append(out)
            assert out.sent_ns == t and out.frame_id == len(outcomes) - 1
            if out.arrival_ns is not None:
                # never early: not before the light time at the moment of sending
                row = next(i for i in range(len(table)) if
                           {int(table.a[i]), int(table.b[i])} == {tx, rx})  # fmt: skip
                r = table.range_m[row] + table.range_rate_mps[row] * (t - table.t_ns) * 1e-9
                assert out.arrival_ns >= t + max(r, 0.0) / C * 1e9 - 1e-3
                assert out.arrival_ns == (
                    t + out.queue_ns + out.serialization_ns + out.propagation_ns
                )
            else:
                assert out.status is FrameStatus.DROPPED
        elif op[0] == "update":
            _, dt, params, listed = op
            t += dt
            table = make_table(t, params, listed)
            for out in fab.update(table):
                assert out.reason is FabricDrop.LINK_DOWN_IN_FLIGHT and out.arrival_ns > t
        else:
            t += op[1]
            due = fab.poll(t)
            assert all(o.status is FrameStatus.DELIVERED and o.arrival_ns <= t for o in due)
            keys = [(o.arrival_ns, o.frame_id) for o in due]
            assert keys == sorted(keys)
            nd = fab.next_deadline()
            assert nd is None or nd > t
        bal = fab.balance()
        assert bal.ok and bal.sent == len(outcomes)

    # the balance agrees with the frames' own states
    by_status = {s: sum(o.status is s for o in outcomes) for s in FrameStatus}
    bal = fab.balance()
    assert by_status[FrameStatus.DELIVERED] == bal.delivered
    assert by_status[FrameStatus.DROPPED] == bal.dropped_total
    assert by_status[FrameStatus.IN_FLIGHT] == bal.in_flight == fab.in_flight
    # draining delivers everything still in flight, early frames first
    last = fab.poll(2**62)
    assert len(last) == bal.in_flight
    assert fab.balance().in_flight == 0 and fab.balance().ok and fab.next_deadline() is None

    # one transmitter per direction: transmissions never overlap, FIFO order
    # (delivered frames: a frame lost or cancelled may have been cut short by a link going down)
    delivered = [o for o in outcomes if o.status is FrameStatus.DELIVERED]
    for tx, rx in [(a, b) for a, b in PAIRS] + [(b, a) for a, b in PAIRS]:
        busy_until = -1
        for o in (o for o in delivered if (o.tx_node, o.rx_node) == (tx, rx)):
            start = o.sent_ns + o.queue_ns
            assert start >= busy_until
            busy_until = start + o.serialization_ns
