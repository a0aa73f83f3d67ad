"""Where a run keeps its files: ``--out DIR`` and the ``DIR/run/`` working area.

::

    OUT/summary.json             results (netemu.results)
    OUT/deliveries.csv           one row per delivered application packet
    OUT/latency.png              end-to-end latency over time vs the geometric path delay
    OUT/topology.png             ground tracks and links at one instant
    OUT/captures/all.pcapng      every frame on every link (with --capture)
    OUT/captures/links/A--B.pcapng  one file per link that carried frames (with --capture)
    OUT/run/run.json             run description: run id, broker, scenario, options, PIDs
    OUT/run/config/NAME.json     the config file each child process is started with
    OUT/run/events/NUMBER.csv    packet events of node NUMBER (netemu.runtime.eventlog)
    OUT/run/events/fabric.csv    packet events of the fabric (drops, in flight at end)
    OUT/run/final/NUMBER.json    node NUMBER's counters when it stopped
    OUT/run/final/fabric.json    fabric balance, per-link counters, fidelity
    OUT/run/epochs.csv           per epoch: links up, route changes, compute time, nodes alive
    OUT/run/liveness.csv         node status changes seen by the controller (online/offline)
    OUT/run/faults.jsonl         faults injected (netemu fault, --faults): one JSON object a line
    OUT/run/logs/NAME.log        stderr of each child process
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout"]


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run below ``out``. Nothing is created until :meth:`create` is called."""

    out: Path

    def __post_init__(self):
        object.__setattr__(self, "out", Path(self.out))

    @property
    def run_dir(self) -> Path:
        return self.out / "run"

    def create(self) -> RunLayout:
        for sub in ("config", "events", "final", "logs"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        return self

    @property
    def run_json(self) -> Path:
        return self.run_dir / "run.json"

    def config(self, name: str) -> Path:
        return self.run_dir / "config" / f"{name}.json"

    def events(self, who: int | str) -> Path:
        """``who``: a node number, or ``"fabric"``."""
        return self.run_dir / "events" / f"{who}.csv"

    def final(self, who: int | str) -> Path:
        return self.run_dir / "final" / f"{who}.json"

    def log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    @property
    def epochs_csv(self) -> Path:
        return self.run_dir / "epochs.csv"

    @property
    def liveness_csv(self) -> Path:
        return self.run_dir / "liveness.csv"

    @property
    def faults_jsonl(self) -> Path:
        return self.run_dir / "faults.jsonl"

    @property
    def summary_json(self) -> Path:
        return self.out / "summary.json"

    @property
    def deliveries_csv(self) -> Path:
        return self.out / "deliveries.csv"

    @property
    def latency_png(self) -> Path:
        return self.out / "latency.png"

    @property
    def topology_png(self) -> Path:
        return self.out / "topology.png"

    @property
    def captures_dir(self) -> Path:
        return self.out / "captures"

    @property
    def merged_capture(self) -> Path:
        return self.captures_dir / "all.pcapng"

    def link_capture(self, a_name: str, b_name: str) -> Path:
        return self.captures_dir / "links" / f"{a_name}--{b_name}.pcapng"
