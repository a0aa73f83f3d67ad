"""``--isolation netns``: a real run with every node in its own network namespace (packets
delivered, balance ok, each node really in its own namespace, no address or interface added to
the root namespace, every namespace gone afterwards), and the errors when it cannot run."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from netemu.errors import NetemuError
from netemu.runtime.isolation import NodeSlot, isolation_class, make_isolation
from netemu.runtime.isolation.netns import NetnsIsolation, list_netns, node_address
from netemu.runtime.launcher import run_emulation

RING = Path(__file__).parent / "data" / "netns-ring.yaml"

SUBNET = ipaddress.ip_network("10.77.0.0/16")

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and the ip command (iproute2)",
)


@pytest.fixture
def ring() -> Path:
    return RING


def _slots(n: int) -> list[NodeSlot]:
    return [NodeSlot(f"n{i}", i + 1, i) for i in range(n)]


def root_addresses() -> set[tuple[str, str]]:
    """(interface, address) pairs of the namespace this thread is in."""
    out = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    pairs = set()
    for line in out.splitlines():
        parts = line.split()
        pairs.add((parts[1], parts[3]))
    return pairs


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


# -- without root ------------------------------------------------------------------------------


def test_not_root_is_a_clear_error():
    iso = NetnsIsolation(run_id="deadbeef", nodes=_slots(2), euid=lambda: 1000)
    with pytest.raises(NetemuError, match=r"needs root .*--isolation process"):
        with iso:
            pytest.fail("entered without root")
    no_ip = NetnsIsolation(
        run_id="deadbeef", nodes=_slots(2), euid=lambda: 1000, which=lambda _: None
    )
    with pytest.raises(
        NetemuError, match=r"root .* and the `ip` command \(Debian package iproute2\)"
    ):
        no_ip.check()
    assert not [n for n in list_netns() if n.startswith("ne-deadbeef-")]


def test_modes_addresses_and_external_broker():
    assert isolation_class("netns") is NetnsIsolation
    with pytest.raises(NetemuError, match="isolation must be one of process, netns"):
        isolation_class("vm")
    proc = make_isolation("process", run_id="x")
    assert (proc.bind_host, proc.service_host) == ("127.0.0.1", "127.0.0.1")
    assert proc.wrap_node_argv(NodeSlot("a", 1, 0), ["netemu", "node"]) == ["netemu", "node"]
    proc.check_broker_url("mqtt://127.0.0.1:1883")  # fine with plain processes

    iso = NetnsIsolation(run_id="0a0b0c0d", nodes=_slots(3))
    node = NodeSlot("gs-x", 1001, 2)
    assert iso.wrap_node_argv(node, ["python", "-m", "netemu", "node"]) == [
        "ip", "netns", "exec", "ne-0a0b0c0d-1001", "python", "-m", "netemu", "node",
    ]  # fmt: skip
    assert iso.describe_node(node) == {"netns": "ne-0a0b0c0d-1001", "address": "10.77.0.4"}
    assert iso.bind_host == iso.service_host == "10.77.0.1"
    assert len(iso.hub_port(NodeSlot("big", 7, 65_532))) <= 15
    assert node_address(65_532) == "10.77.255.254"
    with pytest.raises(NetemuError, match="up to"):
        node_address(65_533)
    with pytest.raises(NetemuError, match="--broker mqtt://127.0.0.1:1883 cannot be used"):
        iso.check_broker_url("mqtt://127.0.0.1:1883")


def test_run_emulation_rejects_an_unknown_isolation(ring, tmp_path):
    with pytest.raises(NetemuError, match="isolation must be one of"):
        run_emulation(ring, duration_s=2, out=tmp_path / "out", isolation="vm", progress=False)
    assert not (tmp_path / "out").exists()


# -- as root -----------------------------------------------------------------------------------


class _RootWatcher(threading.Thread):
    """Samples the root namespace (this thread never leaves it) while a run goes on, and the
    network namespace of every process listed in run.json."""

    def __init__(self, out: Path):
        super().__init__(daemon=True)
        self.out = out
        self.stop = threading.Event()
        self.addresses: set[tuple[str, str]] = set()
        self.links: set[str] = set()
        self.node_ns: dict[str, str] = {}
        self.fabric_ns: str | None = None
        self.seen_running: dict = {}
        self.root_ns = os.readlink("/proc/self/ns/net")

    def run(self):
        while not self.stop.wait(0.3):
            self.addresses |= root_addresses()
            self.links |= root_links()
            try:
                run = json.loads((self.out / "run" / "run.json").read_text())
            except (OSError, ValueError):
                continue
            if run.get("state") != "running":
                continue
            self.seen_running = run
            for name, node in run["nodes"].items():
                try:
                    self.node_ns[name] = os.readlink(f"/proc/{node['pid']}/ns/net")
                except OSError:
                    pass
            try:
                self.fabric_ns = os.readlink(f"/proc/{run['pids']['fabric']}/ns/net")
            except (OSError, KeyError):
                pass


@needs_netns
@pytest.mark.integration
def test_netns_run_delivers_and_leaves_nothing(ring, tmp_path, monkeypatch):
    """About 12 s: 8 nodes in namespaces, 4 s of traffic between the two stations."""
    monkeypatch.setenv("NETEMU_RUNS_DIR", str(tmp_path / "registry"))
    out = tmp_path / "out"
    before_addresses, before_links = root_addresses(), root_links()
    watcher = _RootWatcher(out)
    watcher.start()
    try:
        summary = run_emulation(
            ring, duration_s=4, routing="snapshot", out=out, isolation="netns", progress=False
        )
    finally:
        watcher.stop.set()
        watcher.join()
    run = json.loads((out / "run" / "run.json").read_text())
    run_id = run["run_id"]
    # Delivered through the namespaces, every packet accounted for.
    assert summary["packets"]["originated"] > 0
    assert summary["packets"]["delivered"] >= summary["packets"]["originated"] // 2
    assert summary["balance"]["ok"], summary["balance"]
    assert run["state"] == "finished"
    assert run["isolation"]["mode"] == "netns"
    assert run["broker_url"].startswith("mqtt://10.77.0.1:")
    assert run["nodes"]["gs-west"]["netns"] == f"ne-{run_id}-1001"
    # During the run each node was in a namespace of its own, apart from the fabric's (hub)
    # and from the root namespace.
    assert watcher.seen_running, "the run was never seen running"
    assert len(watcher.node_ns) == 8
    assert len(set(watcher.node_ns.values())) == 8
    assert watcher.fabric_ns is not None and watcher.fabric_ns not in watcher.node_ns.values()
    assert watcher.root_ns not in {watcher.fabric_ns, *watcher.node_ns.values()}
    # Nothing of the run ever appeared in the root namespace ...
    mine = {(i, a) for i, a in watcher.addresses | root_addresses() if _in_subnet(a)}
    assert mine == set()
    new_links = (watcher.links | root_links()) - before_links
    assert not [name for name in new_links if re.fullmatch(r"v\d+|br0|eth0", name)]
    assert not [pair for pair in root_addresses() - before_addresses if _in_subnet(pair[1])]
    # ... and nothing of it is left.
    assert not [n for n in list_netns() if n.startswith(f"ne-{run_id}-")]
    state = json.loads((out / "run" / "state.json").read_text())
    assert state["state"] == "ended" and state["resources"] == []
    assert not list((tmp_path / "registry").glob("*.json"))


def _in_subnet(cidr: str) -> bool:
    try:
        return ipaddress.ip_interface(cidr).ip in SUBNET
    except ValueError:
        return False


@needs_netns
def test_setup_failure_removes_what_was_created(tmp_path, monkeypatch):
    """A node namespace that cannot be created (its name is taken) ends the setup; the hub and
    the namespaces created before it are removed and forgotten."""
    from netemu.runtime.state import RunState

    run_id = os.urandom(4).hex()
    state = RunState.create(tmp_path, run_id=run_id, register=False)
    taken = f"ne-{run_id}-2"
    iso = NetnsIsolation(run_id=run_id, nodes=_slots(3), state=state)
    subprocess.run(["ip", "netns", "add", taken], check=True)
    try:
        iso.check = lambda: None  # the check would refuse: a namespace of this run exists
        with pytest.raises(NetemuError, match="Cannot create namespace file .* File exists"):
            with iso:
                pytest.fail("entered")
        # The namespace that was there before is not the run's: it stays.
        assert [n for n in list_netns() if n.startswith(f"ne-{run_id}-")] == [taken]
        assert state.resources == []
    finally:
        subprocess.run(["ip", "netns", "del", taken], capture_output=True)


@needs_netns
@pytest.mark.integration
@pytest.mark.parametrize("how", ["node-killed-then-sigint", "fabric-killed"])
def test_netns_removed_after_interrupt_and_fabric_death(how, tmp_path):
    """About 7 s each: the namespaces go whichever way the run ends."""
    import signal
    import sys

    from netemu.runtime.launcher import child_alive

    registry = tmp_path / "registry"
    out = tmp_path / "out"
    log = open(tmp_path / "launcher.log", "wb")  # noqa: SIM115
    launcher = subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", str(RING), "--duration", "120s",
         "--isolation", "netns", "--traffic", "none", "--out", str(out), "--no-progress"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "NETEMU_RUNS_DIR": str(registry)},
    )  # fmt: skip
    run_id = None
    try:
        deadline = time.monotonic() + 60
        run: dict = {}
        while run.get("state") != "running":
            assert time.monotonic() < deadline and launcher.poll() is None, "never running"
            time.sleep(0.1)
            try:
                run = json.loads((out / "run" / "run.json").read_text())
            except (OSError, ValueError):
                pass
        run_id = run["run_id"]
        assert len([n for n in list_netns() if n.startswith(f"ne-{run_id}-")]) == 9
        pids = [n["pid"] for n in run["nodes"].values()] + list(run["pids"].values())[1:]
        if how == "fabric-killed":
            os.kill(run["pids"]["fabric"], signal.SIGKILL)
            expected_rc, expected_state = 2, "failed"
        else:
            os.kill(run["nodes"]["ring-p01-s03"]["pid"], signal.SIGKILL)
            time.sleep(1.0)
            launcher.send_signal(signal.SIGINT)
            expected_rc, expected_state = 130, "interrupted"
        rc = launcher.wait(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        log.close()
    text = (tmp_path / "launcher.log").read_text()
    assert rc == expected_rc, text
    assert json.loads((out / "run" / "run.json").read_text())["state"] == expected_state
    assert not [n for n in list_netns() if n.startswith(f"ne-{run_id}-")], text
    assert not [p for p in pids if child_alive(p)]
    assert json.loads((out / "run" / "state.json").read_text())["resources"] == []
    assert not list(registry.glob("*.json"))
