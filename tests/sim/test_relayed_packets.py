"""The simulator hands a forwarded frame's decoded packet (the sender's Transmit.packet) to the
receiving node's core instead of having it decode the frame again: that packet must be exactly
what decode(frame) gives, and the results must be those of decoding every frame."""

from __future__ import annotations

from unittest import mock

from netemu.node import NodeCore
from netemu.protocol import decode
from netemu.sim import simulate
from support import REPO

DEMO = REPO / "topologies" / "demo-small.yaml"
TRAFFIC = """\
defaults: {pattern: poisson, rate_pps: 20, size_bytes: 300, start_s: 0.5, stop_s: 4}
flows:
  - {src: madrid, dst: beijing}
  - {src: beijing, dst: madrid, record_route: false}
  - {src: iridium-p02-s03, dst: madrid}
"""


def _run(tmp_path, name: str, *, hand_over: bool) -> tuple[dict, int]:
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text(TRAFFIC)
    receive = NodeCore.receive
    handed = []

    def checked(self, frame, from_neighbour, now_ns, *, packet=None):
        if packet is not None:
            handed.append(1)
            assert repr(packet) == repr(decode(frame))  # same values and the same types
            if not hand_over:
                packet = None
        return receive(self, frame, from_neighbour, now_ns, packet=packet)

    with mock.patch.object(NodeCore, "receive", checked):
        summary = simulate(DEMO, duration_s=5, routing="snapshot", traffic=str(traffic),
                           out=tmp_path / name, seed=0, progress=False)  # fmt: skip
    return summary, len(handed)


def test_handed_over_packets_are_decode_of_the_frame_and_change_nothing(tmp_path):
    summary, handed = _run(tmp_path, "handed", hand_over=True)
    reference, _ = _run(tmp_path, "decoded", hand_over=False)
    assert handed > 100
    assert summary["packets"]["delivered"] > 0
    assert summary == reference
    for name in ("summary.json", "deliveries.csv"):
        assert (tmp_path / "handed" / name).read_bytes() == (
            tmp_path / "decoded" / name
        ).read_bytes()
