"""Traffic for a run: flows, responders (in-orbit compute), generators and presets.

See docs/traffic.md. :func:`load_traffic` turns ``--traffic FILE|PRESET`` into a
:class:`Traffic` (flows and responders); node processes rebuild :class:`FlowSpec` /
:class:`ResponderSpec` from their config and drive a :class:`FlowGenerator` per flow.
Nothing here imports the scenario or YAML until :func:`load_traffic` needs them, so a node
process pays only for what it uses.
"""

from __future__ import annotations

from .generators import FlowGenerator
from .presets import PRESETS, load_traffic
from .spec import (
    FLOW_PATTERNS,
    MIN_SIZE_BYTES,
    TRAFFIC_PAYLOAD_TYPE,
    FlowSpec,
    ResponderSpec,
    Traffic,
    packet_overhead_bytes,
    parse_traffic_payload,
    payload_bytes,
    traffic_payload,
)

__all__ = [
    "FLOW_PATTERNS",
    "FlowGenerator",
    "FlowSpec",
    "MIN_SIZE_BYTES",
    "PRESETS",
    "ResponderSpec",
    "TRAFFIC_PAYLOAD_TYPE",
    "Traffic",
    "load_traffic",
    "packet_overhead_bytes",
    "parse_traffic_payload",
    "payload_bytes",
    "traffic_payload",
]
