"""Random and mutated frames never raise and count as malformed; runs are deterministic."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netemu.errors import ProtocolError
from netemu.node import Drop, NodeCore, Transmit
from netemu.protocol import Flags, MessageType, Packet, RecordRoute, decode, encode, fix_crc

from ..protocol.strategies import packets
from .netsim import fib

A, B, C = 1, 2, 3


def _router() -> NodeCore:
    core = NodeCore(B, epoch_dtn_ns=10**18, queue_limit_packets=8)
    core.set_table(fib(B, {A: A, C: (C, 10**9)}), 0)
    core.link_up(A, 0)
    return core


def _decodes(frame: bytes) -> bool:
    try:
        decode(frame)
    except ProtocolError:
        return False
    return True


def _check(core: NodeCore, frames: list[bytes]) -> None:
    malformed = 0
    for i, frame in enumerate(frames):
        actions = core.receive(frame, A, i)
        assert isinstance(actions, list)
        if not _decodes(frame):
            malformed += 1
            assert [(type(a), a.reason) for a in actions] == [(Drop, "malformed")]
            assert actions[0].item == frame
            assert not actions[0].detail.startswith("decoder error")
    assert core.counters.received == len(frames)
    assert core.counters.malformed == malformed
    core.tick(10**12)  # whatever was held is released or expires without raising


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=5))
def test_random_bytes_never_raise(frames):
    _check(_router(), frames)


@st.composite
def mutated_frames(draw):
    frame = bytearray(encode(draw(packets())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "extend", "set"]))
        if op == "flip" and frame:
            i = draw(st.integers(0, len(frame) - 1))
            frame[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del frame[draw(st.integers(0, len(frame))) :]
        elif op == "extend":
            frame += draw(st.binary(min_size=1, max_size=8))
        elif op == "set" and frame:
            frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        frame = bytearray(fix_crc(frame))  # get past the CRC, to reach the deeper checks
    return bytes(frame)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_frames(), min_size=1, max_size=4))
def test_mutated_frames_never_raise(frames):
    _check(_router(), frames)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(packets())
def test_any_valid_packet_is_handled(packet):
    """Every valid packet ends in a delivery, a transmit, a hold or a drop — never an error."""
    core = _router()
    actions = core.receive(encode(packet), A, 0)
    assert core.counters.malformed == 0
    assert actions or core.held == 1
    for a in actions:
        if isinstance(a, Transmit):
            assert decode(a.frame) == a.packet


def _scenario() -> list:
    core = NodeCore(B, epoch_dtn_ns=10**18)
    core.set_table(fib(B, {A: A, C: C}), 0)
    out = core.link_up(A, 0) + core.link_up(C, 0)
    for i in range(20):
        p = Packet(
            type=MessageType.DATA,
            src=A,
            dst=C if i % 3 else B,
            body=bytes([i]),
            payload_type=1,
            packet_id=i,
            flags=Flags.ACK_REQUESTED if i % 2 else 0,
            extensions=(RecordRoute(),) if i % 5 == 0 else (),
        )
        out += core.receive(encode(p), A, 1000 * i)
    out += core.echo_request(A, 50_000)
    return out


def test_deterministic():
    assert _scenario() == _scenario()
