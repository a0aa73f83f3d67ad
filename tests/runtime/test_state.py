"""The run state file: atomic writes, the registry entry, and processes identified by PID and
start time (a reused PID is never signalled)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from netemu.errors import NetemuError
from netemu.runtime.state import (
    Resource,
    RunState,
    find_registered,
    process_alive,
    process_start_time,
    register_remover,
    remove_process,
    remover_for,
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


def test_create_record_forget_finish(tmp_path, registry):
    run_dir = tmp_path / "out" / "run"
    run_dir.mkdir(parents=True)
    st = RunState.create(run_dir, run_id="12345678", out=str(tmp_path / "out"), isolation="netns")
    entry = registry / "12345678.json"
    assert find_registered() == [entry]
    st.record("netns", "ne-12345678-hub")
    st.record("veth", "v0", netns="ne-12345678-hub")
    st.record("veth", "v0", netns="ne-12345678-hub", again=True)  # replaces, no duplicate
    on_disk = json.loads((run_dir / "state.json").read_text())
    assert on_disk == json.loads(entry.read_text())
    assert [(r["kind"], r["name"]) for r in on_disk["resources"]] == [
        ("netns", "ne-12345678-hub"),
        ("veth", "v0"),
    ]
    assert on_disk["resources"][1]["again"] is True
    assert on_disk["launcher"]["start_time"] == process_start_time(on_disk["launcher"]["pid"])
    assert RunState.load(run_dir).is_live()
    assert RunState.load(entry).resources == st.resources

    st.forget("veth", "v0")
    st.forget("veth", "never-recorded")
    st.finish()  # something left: stays registered for netemu clean
    assert entry.exists()
    assert json.loads(entry.read_text())["state"] == "ended-with-leftovers"
    assert not RunState.load(entry).is_live()
    st.forget("netns", "ne-12345678-hub")
    st.finish()
    assert not entry.exists() and find_registered() == []
    assert json.loads((run_dir / "state.json").read_text())["state"] == "ended"


def test_writes_are_atomic_under_concurrent_records(tmp_path, registry):
    st = RunState.create(tmp_path, run_id="abcdef01")
    path = tmp_path / "state.json"
    stop = threading.Event()
    bad = []

    def reader():
        while not stop.is_set():
            try:
                json.loads(path.read_text())
            except ValueError as exc:  # a torn write would show here
                bad.append(exc)

    threads = [threading.Thread(target=reader)] + [
        threading.Thread(target=lambda k=k: [st.record("x", f"{k}-{i}") for i in range(100)])
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert bad == []
    assert len(json.loads(path.read_text())["resources"]) == 400
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["state.json"]


def test_forget_with_pid_keeps_a_restarted_process(tmp_path, registry):
    st = RunState.create(tmp_path, run_id="00000001", register=False)
    st.record("process", "node-a", pid=111, start_time=1)
    st.record("process", "node-a", pid=222, start_time=2)  # started again under its name
    st.forget("process", "node-a", pid=111)
    assert [r.info["pid"] for r in st.resources] == [222]
    st.forget("process", "node-a", pid=222)
    assert st.resources == []


def test_remove_process_ends_the_recorded_process(tmp_path, registry, sleeper):
    st = RunState.create(tmp_path, run_id="00000002", register=False)
    res = st.record_process("sleeper", sleeper.pid)
    assert res.info["start_time"] == process_start_time(sleeper.pid)
    assert process_alive(sleeper.pid, res.info["start_time"])
    assert remove_process(res, True).startswith("would end")
    assert sleeper.poll() is None
    t = time.monotonic()
    assert remove_process(res) == f"ended pid {sleeper.pid} (SIGTERM)"
    assert time.monotonic() - t < 2.5
    assert sleeper.wait(timeout=5) == -15
    assert remove_process(res).startswith("already gone")  # idempotent


def test_a_reused_pid_is_never_signalled(tmp_path, registry, sleeper):
    """The PID now belongs to a process that started at another time: left alone."""
    real = process_start_time(sleeper.pid)
    reused = Resource("process", "old-node", {"pid": sleeper.pid, "start_time": real - 1})
    assert remove_process(reused) == f"already gone (pid {sleeper.pid})"
    no_time = Resource("process", "crashed-at-start", {"pid": sleeper.pid, "start_time": None})
    assert remove_process(no_time).startswith("already gone")
    other_boot = Resource(
        "process", "before-reboot", {"pid": sleeper.pid, "start_time": real, "boot_id": "x"}
    )
    assert remove_process(other_boot) == "already gone (recorded before the last boot)"
    time.sleep(0.2)
    assert sleeper.poll() is None


def test_remove_all_newest_first_and_unknown_kinds(tmp_path, registry):
    st = RunState.create(tmp_path, run_id="00000003", register=False)
    order = []

    @register_remover("test-thing")
    def _remove(res, dry_run):
        if res.name == "broken":
            raise NetemuError("it resisted")
        order.append(res.name)
        return "removed"

    for name in ("first", "broken", "second"):
        st.record("test-thing", name)
    st.record("no-such-kind", "mystery")
    done = {r.name: what for r, what in st.remove_all()}
    assert order == ["second", "first"]
    assert done["mystery"].startswith("left alone")
    assert done["broken"] == "failed: it resisted"
    assert sorted(r.name for r in st.resources) == ["broken", "mystery"]
    assert remover_for("no-such-kind") is None
    assert remover_for("netns") is not None  # registered by the netns module on demand


def test_load_rejects_other_files(tmp_path):
    (tmp_path / "state.json").write_text('{"hello": 1}')
    with pytest.raises(NetemuError, match="not a netemu run state file"):
        RunState.load(tmp_path)
    with pytest.raises(NetemuError, match="cannot read"):
        RunState.load(tmp_path / "missing.json")
