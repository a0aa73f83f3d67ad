"""Hand-built run files (event logs, final jsons, liveness, epochs) for the results tests."""

from __future__ import annotations

import json

from netemu.runtime.eventlog import EventLog
from netemu.runtime.layout import RunLayout

S = 1_000_000_000
MS = 1_000_000
EPOCH_DTN_NS = 820_454_400 * S  # 2026-01-01T00:00:00Z in DTN time (s since 2000-01-01)

MADRID, BEIJING, SVALBARD, NEW_YORK = 1002, 1003, 1001, 1005
SAT_A, SAT_B, DEAD_SAT = 5, 6, 7


def pkt(src, pid, t_orig_ns, **extra):
    """Identity columns of one packet (creation time = DTN time of its origination)."""
    return {"src": src, "packet_id": pid, "creation_dtn_ns": EPOCH_DTN_NS + t_orig_ns, **extra}


def route(*hops):
    return ";".join(f"{n}@{t}" for n, t in hops)


class RunFiles:
    """Writes one run below ``tmp_path``; ``rows[who]`` are the event rows of each log."""

    def __init__(self, tmp_path):
        self.layout = RunLayout(tmp_path / "out").create()
        self.rows: dict[object, list[dict]] = {}
        self.fabric_final: dict | None = None
        self.node_finals: list[int] = []
        self.liveness: list[tuple] = []
        self.epochs: list[tuple] = []
        self.truncate: dict[object, str] = {}
        self.configs: dict[str, dict] = {}

    def add(self, who, event, t_ns, packet, **cols):
        where = 0 if who == "fabric" else who
        self.rows.setdefault(who, []).append(
            {"t_ns": t_ns, "where": where, "event": event, "msg_type": "DATA", **packet, **cols}
        )

    def write(self):
        for who, rows in self.rows.items():
            with EventLog(self.layout.events(who)) as log:
                for row in rows:
                    log.write(**row)
            if who in self.truncate:
                with open(self.layout.events(who), "a") as f:
                    f.write(self.truncate[who])  # no newline: cut short by a kill
        for name, data in self.configs.items():
            self.layout.config(name).write_text(json.dumps(data))
        if self.fabric_final is not None:
            self.layout.final("fabric").write_text(json.dumps(self.fabric_final))
        for n in self.node_finals:
            self.layout.final(n).write_text(json.dumps({"number": n}))
        with open(self.layout.liveness_csv, "w") as f:
            f.write("t_ns,number,name,state\n")
            for row in self.liveness:
                f.write(",".join(str(v) for v in row) + "\n")
        if self.epochs:
            with open(self.layout.epochs_csv, "w") as f:
                f.write("epoch,t_ns,links_up,links_total,route_changes,compute_ms\n")
                for row in self.epochs:
                    f.write(",".join(str(v) for v in row) + "\n")
        return self.layout


def standard_run(tmp_path) -> RunFiles:
    """Two flows over 60 s with every kind of outcome; balanced, with one node killed at 30 s.

    Flow 1 (madrid -> beijing, record route, 3 hops): pids 0-4 delivered with latencies
    50, 60, 70, 80, 90 ms (pid 2 delivered twice), pid 5 dropped no_route at SAT_A, pid 6
    dropped by the fabric (loss), pid 7 held at the end in madrid, pid 8 in flight at the end,
    pid 9 originated at 29 s and lost with DEAD_SAT (killed at 30 s).
    Flow 2 (svalbard -> new-york, no route): pid 0 delivered (40 ms), pid 1 delivered (45 ms)
    and also dropped at SAT_B (a copy): delivered, conflicting.
    Noise: HELLO rows, a DATA row of a packet never logged as originated, a cut-short line.
    """
    rf = RunFiles(tmp_path)
    for k in range(10):
        t0 = (k + 1) * S + k * 2 * S  # 1, 4, 7, ... 28 s
        if k == 9:
            t0 = 29 * S
        p = pkt(MADRID, k, t0, dst=BEIJING, flow_id=1, seq=k, size_bytes=500)
        rf.add(MADRID, "originated", t0, p)
        if k < 5:
            lat = (50 + 10 * k) * MS
            hops = [(MADRID, t0 + 10), (SAT_A, t0 + 10 * MS), (SAT_B, t0 + 20 * MS)]
            rr = route(*hops)
            rf.add(BEIJING, "delivered", t0 + lat, p, hops=3, route=rr, rx=SAT_B)
            if k == 2:
                rf.add(BEIJING, "delivered", t0 + lat + 5 * MS, p, hops=3, route=rr, rx=SAT_B)
        elif k == 5:
            rf.add(SAT_A, "dropped", t0 + 5 * MS, p, reason="no_route")
        elif k == 6:
            rf.add("fabric", "dropped", t0 + 1 * MS, p, reason="loss", tx=MADRID, rx=SAT_A)
        elif k == 7:
            rf.add(MADRID, "held_at_end", 60 * S, p)
        elif k == 8:
            rf.add("fabric", "in_flight_at_end", 60 * S, p, tx=SAT_A, rx=SAT_B)
    for k, (lat_ms, copy) in enumerate(((40, False), (45, True))):
        t0 = (10 + k) * S
        p = pkt(SVALBARD, k, t0, dst=NEW_YORK, flow_id=2, seq=k, size_bytes=200)
        rf.add(SVALBARD, "originated", t0, p)
        rf.add(NEW_YORK, "delivered", t0 + lat_ms * MS, p)
        if copy:
            rf.add(SAT_B, "dropped", t0 + 3 * MS, p, reason="queue_full")
    # Noise that must not count as application packets.
    hello = pkt(SAT_A, 100, 0, dst=SAT_B, msg_type="HELLO")
    rf.add(SAT_B, "delivered", 1 * MS, hello)
    rf.add("fabric", "dropped", 2 * MS, hello, reason="link-down")
    orphan = pkt(SAT_B, 200, 5 * S, dst=BEIJING, flow_id=None)
    rf.add(BEIJING, "delivered", 5 * S + 30 * MS, orphan)
    rf.add(DEAD_SAT, "dropped", 29 * S, pkt(SAT_B, 300, 29 * S, msg_type="HELLO"), reason="x")
    rf.truncate[DEAD_SAT] = "29500000000,7,dropp"
    rf.fabric_final = {
        # The fabric host's form: "frames", links named by "a"/"b" with "a_number"/"b_number".
        "frames": {
            "sent": 40,
            "delivered": 35,
            "dropped": {"loss": 1, "link-down": 1, "queue-full": 2},
            "dropped_total": 4,
            "in_flight_at_end": 1,
            "balanced": True,
        },
        "links": [
            {
                "link_id": 3,
                "a": "gs-madrid",
                "b": "iridium-p01-s05",
                "a_number": MADRID,
                "b_number": SAT_A,
                "frames": 10,
                "bytes": 5000,
                "delivered": 10,
                "dropped": {},
            },
            {
                "link_id": 9,
                "a": "iridium-p01-s05",
                "b": "iridium-p01-s06",
                "a_number": SAT_A,
                "b_number": SAT_B,
                "frames": 30,
                "bytes": 9000,
                "delivered": 29,
                "dropped": {"loss": 1},
            },
        ],
        "fidelity": {
            "count": 35,
            "p50_s": 5e-5,
            "p95_s": 1e-4,
            "p99_s": 2e-4,
            "max_s": 4e-4,
            "min_s": 1e-6,
            "early": 0,
        },
    }
    rf.configs = {
        "gs-madrid": {
            "kind": "NodeHostConfig",
            "flows": [{"flow_id": 1, "name": "madrid-beijing", "src": MADRID, "dst": BEIJING}],
        },
        "gs-svalbard": {
            "kind": "NodeHostConfig",
            "responders": [
                {
                    "flow_id": 2,
                    "name": "svalbard-results",
                    "node": SVALBARD,
                    "dst": NEW_YORK,
                    "flows": [1],
                }
            ],
        },
    }
    rf.node_finals = [MADRID, BEIJING, SVALBARD, NEW_YORK, SAT_A, SAT_B]
    rf.liveness = [
        (0, DEAD_SAT, "iridium-p01-s07", "online"),
        (30 * S, DEAD_SAT, "iridium-p01-s07", "offline"),
        (60 * S + 300 * MS, MADRID, "gs-madrid", "offline"),  # normal shutdown
    ]
    rf.epochs = [(i, i * S, 150 + i % 3, 400, (0, 4, 2)[i % 3], 10.0) for i in range(60)]
    return rf
