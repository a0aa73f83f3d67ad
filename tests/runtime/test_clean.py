"""``netemu clean``: a launcher killed with SIGKILL leaves namespaces (and a mosquitto broker,
which has no parent-death signal); clean removes exactly what the state file lists, leaves an
unrelated namespace and process alone, never touches a live run without --force, and running
it twice is fine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netemu.cli import main
from netemu.runtime.isolation.netns import list_netns
from netemu.runtime.state import RunState, process_alive

RING = Path(__file__).parent / "data" / "netns-ring.yaml"
needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and the ip command (iproute2)",
)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    reg = tmp_path / "registry"
    monkeypatch.setenv("NETEMU_RUNS_DIR", str(reg))
    return reg


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_live_run_is_left_alone_unless_forced(tmp_path, registry, sleeper, capsys):
    """The state of a run whose launcher (this test process) is alive."""
    out = tmp_path / "out"
    (out / "run").mkdir(parents=True)
    state = RunState.create(out / "run", run_id="11112222", out=str(out))
    state.record_process("node-a", sleeper.pid)

    assert main(["clean"]) == 0
    assert "going on (launcher pid" in capsys.readouterr().out
    assert main(["clean", "--run-dir", str(out), "--dry-run"]) == 0
    assert sleeper.poll() is None

    assert main(["clean", "--run-id", "11112222", "--force", "--dry-run"]) == 0
    assert f"process   node-a: would end pid {sleeper.pid}" in capsys.readouterr().out
    assert sleeper.poll() is None
    assert main(["clean", "--run-id", "11112222", "--force"]) == 0
    assert f"node-a: ended pid {sleeper.pid} (SIGTERM)" in capsys.readouterr().out
    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    assert json.loads((out / "run" / "state.json").read_text())["state"] == "cleaned"
    assert not (registry / "11112222.json").exists()
    assert main(["clean"]) == 0
    assert "nothing to clean" in capsys.readouterr().out


def test_clean_errors(tmp_path, registry, capsys):
    assert main(["clean", "--run-dir", str(tmp_path)]) == 2
    assert "no run state file" in capsys.readouterr().err
    assert main(["clean", "--run-id", "feedface"]) == 2
    assert "not registered" in capsys.readouterr().err


def _wait_running(run_json: Path, proc: subprocess.Popen, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the launcher exited ({proc.returncode})")
        try:
            data = json.loads(run_json.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("state") == "running":
            return data
        time.sleep(0.1)
    raise AssertionError("the run never started")


@needs_netns
@pytest.mark.integration
def test_clean_after_sigkill_removes_only_what_the_run_recorded(tmp_path, registry, sleeper):
    """About 10 s: start a netns run, SIGKILL its launcher, `netemu clean` (no arguments)."""
    scenario = RING
    out = tmp_path / "out"
    broker = (
        "mosquitto"
        if shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")
        else "amqtt"
    )
    unrelated = f"ne-unrelated-{os.urandom(3).hex()}"
    env = {**os.environ, "NETEMU_RUNS_DIR": str(registry)}
    log = open(tmp_path / "launcher.log", "wb")  # noqa: SIM115
    launcher = subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", str(scenario), "--duration", "120s",
         "--isolation", "netns", "--broker", broker, "--traffic", "none", "--out", str(out),
         "--no-progress"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    run_id = None
    try:
        run = _wait_running(out / "run" / "run.json", launcher, 60)
        run_id = run["run_id"]
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=10)
        subprocess.run(["ip", "netns", "add", unrelated], check=True)

        # What the killed run left: its namespaces; processes per their parent-death signal.
        ours = sorted(n for n in list_netns() if n.startswith(f"ne-{run_id}-"))
        assert len(ours) == 9  # hub + 8 nodes
        state = RunState.load(out / "run" / "state.json")
        assert state.data["state"] == "running" and not state.is_live()
        procs = {r.name: r.info for r in state.resources if r.kind == "process"}
        assert set(procs) == {"broker", "fabric", *run["nodes"]}
        deadline = time.monotonic() + 15  # SIGTERM from the parent-death signal; slow if loaded
        while True:
            alive = {n for n, i in procs.items() if process_alive(i["pid"], i["start_time"])}
            if alive <= {"broker"} or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if broker == "mosquitto":
            assert "broker" in alive  # mosquitto does not die with its parent
        assert alive <= {"broker"}

        result = subprocess.run(
            [sys.executable, "-m", "netemu", "clean"], capture_output=True, text=True, env=env
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"run {run_id} ({out}): cleaning ")
        assert f"  netns     ne-{run_id}-hub: deleted" in lines
        assert lines[-1] == f"  netns     ne-{run_id}-hub: deleted"  # the hub last
        for name in alive:
            assert any(line.startswith(f"  process   {name}: ended pid") for line in lines)

        assert not [n for n in list_netns() if n.startswith(f"ne-{run_id}-")]
        assert not [n for n, i in procs.items() if process_alive(i["pid"], i["start_time"])]
        assert unrelated in list_netns()  # not the run's: untouched
        assert sleeper.poll() is None
        assert json.loads((out / "run" / "state.json").read_text())["state"] == "cleaned"
        assert not list(registry.glob("*.json"))

        again = subprocess.run(
            [sys.executable, "-m", "netemu", "clean", "--run-dir", str(out)],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert again.returncode == 0 and "nothing left to remove" in again.stdout
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        log.close()
        subprocess.run(["ip", "netns", "del", unrelated], capture_output=True)
        if run_id is not None and [n for n in list_netns() if n.startswith(f"ne-{run_id}-")]:
            subprocess.run(
                [sys.executable, "-m", "netemu", "clean", "--run-dir", str(out), "--force"],
                env=env, capture_output=True,
            )  # fmt: skip
