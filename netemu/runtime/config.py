"""Config files of the child processes of a run (JSON, written by the launcher).

Each child (``netemu node --config F``, ``netemu fabric --config F``) is started with one file
``OUT/run/config/NAME.json`` holding everything it needs, so that it never loads the scenario
(a node process imports only the router core, the codec and the MQTT client). The start time
(``t0_mono_ns``) is not in the file: it arrives in the retained ``run`` message.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import NetemuError

__all__ = ["FabricHostConfig", "NodeHostConfig", "load_config", "save_config"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class _Common:
    run_id: str
    broker_url: str  # mqtt://host:port
    out: str  # the run's --out directory (RunLayout)
    epoch_utc: str  # scenario epoch, ISO 8601 UTC
    epoch_dtn_ns: int  # the scenario epoch in DTN time (ns since 2000-01-01T00:00:00Z)
    epoch_ns: int  # controller epoch length
    duration_ns: int  # run length in scenario time
    seed: int = 0
    telemetry_interval_s: float = 1.0
    log_level: str = "INFO"

    def __post_init__(self):
        if not self.broker_url.startswith("mqtt://"):
            url = self.broker_url
            raise NetemuError(f"broker_url must look like mqtt://HOST:PORT, got {url!r}")
        for name in ("epoch_ns", "duration_ns"):
            if getattr(self, name) <= 0:
                raise NetemuError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True, kw_only=True)
class NodeHostConfig(_Common):
    """One node process: its identity, where the fabric is, its application port and traffic."""

    number: int
    name: str
    kind: str  # "satellite" | "ground"
    fabric_host: str
    fabric_port: int
    app_host: str = "127.0.0.1"
    app_port: int = 0  # 0: the OS picks one; the node reports it in its status message
    queue_limit_packets: int = 10_000
    hold_on_no_route: bool = False
    flows: list[dict[str, Any]] = field(default_factory=list)  # netemu.traffic FlowSpec dicts
    responders: list[dict[str, Any]] = field(default_factory=list)  # netemu.traffic responders


@dataclass(frozen=True, kw_only=True)
class FabricHostConfig(_Common):
    """The fabric process: its UDP address, queue limits, capture, and the node numbering.

    ``node_numbers[i]`` is the SGP node number of link-table node index ``i`` and
    ``node_names[i]`` its scenario name. ``node_kinds[i]`` (``"satellite"`` | ``"ground"``,
    optional) names capture interfaces ``isl:`` or ``gsl:`` (CAPTURE.md).
    """

    udp_host: str
    udp_port: int
    node_numbers: list[int]
    node_names: list[str]
    node_kinds: list[str] = field(default_factory=list)
    queue_limit_frames: int = 64
    capture: bool = False


def save_config(config, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"config": type(config).__name__, **dataclasses.asdict(config)}
    path.write_text(json.dumps(data, indent=1))
    return path


def load_config(path: str | Path, cls: type[T]) -> T:
    """Read a config file written by :func:`save_config`; errors name the file and the key."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NetemuError(f"{path}: cannot read config: {exc}") from exc
    config_class = data.pop("config", cls.__name__) if isinstance(data, dict) else None
    if config_class != cls.__name__:
        raise NetemuError(f"{path}: a {config_class} config, expected {cls.__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise NetemuError(f"{path}: unknown keys {unknown}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise NetemuError(f"{path}: {exc}") from exc
