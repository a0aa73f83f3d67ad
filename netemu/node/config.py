"""Configuration of a node router core: a frozen dataclass validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import MIN_LINK_MTU
from ..protocol.fields import MAX_HELLO_NAME_BYTES

__all__ = ["DEFAULT_LINK_MTU", "NodeConfig"]

#: Largest SGP packet on an emulated link by default: the largest UDP payload (SPEC.md section 8).
DEFAULT_LINK_MTU = 65_507


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """Settings of one :class:`~netemu.node.core.NodeCore`; no clock, no I/O.

    - ``queue_limit_packets`` / ``queue_limit_bytes``: bound of the store-and-forward buffer
      (packets held for a later contact, a link that is down, or a route; ``None`` = no byte
      bound). A packet that does not fit is dropped with reason ``queue_full``.
    - ``default_hop_limit`` / ``default_lifetime_ms``: for packets this node creates.
    - ``epoch_dtn_ns``: DTN time (ns since 2000-01-01T00:00:00Z) of scenario time 0. The core is
      driven with scenario time ``now_ns``; SGP's ``creation_time_ns`` and RECORD_ROUTE
      ``time_ns`` are DTN time = ``epoch_dtn_ns + now_ns``.
    - ``clock_synchronised``: when false, packets created here carry ``creation_time_ns`` 0 (no
      lifetime enforcement, SPEC.md 7.3).
    - ``link_mtu``: largest packet this node accepts and sends on a link (announced in HELLO);
      the MTU towards a neighbour is the smaller of this, the neighbour's HELLO and
      ``link_up(mtu=...)``.
    - ``payload_types``: DATA payload types the local application handles (``None`` = all);
      others are dropped at the destination with ``unsupported_payload_type``.
    - ``hold_on_no_route``: hold packets without a route until a table provides one (SPEC.md
      7.4 allows it) instead of dropping them with ``no_route``.
    - ``node_name``: HELLO ``node_name`` (at most 64 octets of UTF-8).
    - ``first_packet_id``: ``packet_id`` of the first packet this node creates.
    """

    queue_limit_packets: int = 10_000
    queue_limit_bytes: int | None = None
    default_hop_limit: int = 64
    default_lifetime_ms: int = 3_600_000
    epoch_dtn_ns: int = 0
    clock_synchronised: bool = True
    link_mtu: int = DEFAULT_LINK_MTU
    payload_types: frozenset[int] | None = None
    hold_on_no_route: bool = False
    node_name: str = ""
    first_packet_id: int = 0

    def __post_init__(self) -> None:
        if self.queue_limit_packets < 0:
            raise ValueError(f"queue_limit_packets must be >= 0, got {self.queue_limit_packets}")
        if self.queue_limit_bytes is not None and self.queue_limit_bytes < 0:
            raise ValueError(f"queue_limit_bytes must be >= 0, got {self.queue_limit_bytes}")
        if not 1 <= self.default_hop_limit <= 255:
            raise ValueError(f"default_hop_limit must be 1..255, got {self.default_hop_limit}")
        if not 0 <= self.default_lifetime_ms < 1 << 32:
            raise ValueError(
                f"default_lifetime_ms must fit 32 bits, got {self.default_lifetime_ms}"
            )
        if self.epoch_dtn_ns < 0:
            raise ValueError(f"epoch_dtn_ns must be >= 0, got {self.epoch_dtn_ns}")
        if not MIN_LINK_MTU <= self.link_mtu <= DEFAULT_LINK_MTU:
            raise ValueError(
                f"link_mtu must be {MIN_LINK_MTU}..{DEFAULT_LINK_MTU}, got {self.link_mtu}"
            )
        if len(self.node_name.encode("utf-8")) > MAX_HELLO_NAME_BYTES:
            raise ValueError(f"node_name must be at most {MAX_HELLO_NAME_BYTES} octets of UTF-8")
        if not 0 <= self.first_packet_id < 1 << 32:
            raise ValueError(f"first_packet_id must fit 32 bits, got {self.first_packet_id}")
        if self.payload_types is not None:
            object.__setattr__(self, "payload_types", frozenset(self.payload_types))
