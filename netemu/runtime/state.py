"""The run state file: every resource a run creates, so that a crashed run can be cleaned up.

A run records each process, network namespace, veth, container, network or daemon it creates
(:meth:`RunState.record`) and forgets it once removed (:meth:`RunState.forget`). Where it can,
it records a resource *before* creating it, so a crash between the two leaves nothing
unrecorded (removers treat a resource that does not exist as already gone). A process is
recorded right after it starts, with its start time from ``/proc/PID/stat``: a PID that the
kernel has since given to another process is never signalled.

The file is written atomically (temporary file, then rename) to ``OUT/run/state.json`` and to
a per-machine registry, so that ``netemu clean`` without arguments finds runs whose launcher
died (:func:`registry_dir`):

* ``$NETEMU_RUNS_DIR`` when set (tests use a private one);
* ``/run/netemu/runs/`` for root;
* ``$XDG_RUNTIME_DIR/netemu/runs/`` when that is set;
* ``~/.cache/netemu/runs/`` otherwise.

``/run`` and ``$XDG_RUNTIME_DIR`` are emptied at boot, as are the processes and namespaces
they list. The file also holds the boot id, so an entry that survived a reboot (``~/.cache``)
never leads to a signal.

Removing is done by a remover per kind (:func:`register_remover`): ``process`` and the file's
own kinds are built in; the isolation modules register theirs when imported
(:data:`REMOVER_MODULES` lists the modules :func:`remover_for` imports to find one).

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> st = RunState.create(d, run_id="0badcafe", registry=os.path.join(d, "reg"))
>>> _ = st.record("netns", "ne-0badcafe-hub")
>>> [r.name for r in st.resources]
['ne-0badcafe-hub']
>>> st.forget("netns", "ne-0badcafe-hub")
>>> st.resources
[]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NetemuError

__all__ = [
    "REMOVER_MODULES",
    "STATE_FILE",
    "Resource",
    "RunState",
    "boot_id",
    "find_registered",
    "process_alive",
    "process_start_time",
    "register_remover",
    "registry_dir",
    "remove_process",
    "remover_for",
]

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATE_VERSION = 1

#: Modules that register removers for the kinds they create (imported on demand by
#: :func:`remover_for`; a module that does not exist is skipped).
REMOVER_MODULES = (
    "netemu.runtime.isolation.netns",
    "netemu.runtime.isolation.docker",
)


# -- processes -----------------------------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (``/proc/PID/stat`` field
    22), or ``None`` when there is no such process. Together with the PID it names one process
    for the lifetime of the machine."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])  # fields[0] is field 3 (state)
    except (IndexError, ValueError):
        return None


def process_alive(pid: int, start_time: int | None) -> bool:
    """Whether the process ``pid`` started at ``start_time`` still exists (and is not a zombie)."""
    if start_time is None:
        return False
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return False
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] in ("Z", "X"):
        return False
    try:
        return int(fields[19]) == int(start_time)
    except (IndexError, ValueError):
        return False


def boot_id() -> str:
    """This boot's id (``/proc/sys/kernel/random/boot_id``; empty where unavailable)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


# -- the file ------------------------------------------------------------------------------------


def registry_dir() -> Path:
    """The per-machine directory where runs register their state file (see the module doc)."""
    env = os.environ.get("NETEMU_RUNS_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/run/netemu/runs")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "netemu" / "runs"
    return Path.home() / ".cache" / "netemu" / "runs"


@dataclass(frozen=True)
class Resource:
    """One thing a run created: ``kind`` (``process``, ``netns``, ``veth``, ``container``,
    ``network``, ``dockerd``...), a ``name`` unique within the kind, and what its remover
    needs (``info``: e.g. ``pid`` and ``start_time`` of a process, the namespace of a veth)."""

    kind: str
    name: str
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, **self.info}

    @classmethod
    def from_dict(cls, data: dict) -> Resource:
        info = {k: v for k, v in data.items() if k not in ("kind", "name")}
        return cls(kind=str(data["kind"]), name=str(data["name"]), info=info)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunState:
    """The state file of one run (see the module docstring). Thread-safe."""

    def __init__(self, path: Path, data: dict, *, registry: Path | None = None):
        self.path = Path(path)
        self.data = data
        self.registry_path = registry
        self._lock = threading.Lock()

    # -- creating and loading

    @classmethod
    def create(
        cls,
        run_dir: str | os.PathLike,
        *,
        run_id: str,
        out: str | None = None,
        isolation: str = "process",
        registry: str | os.PathLike | None = None,
        register: bool = True,
    ) -> RunState:
        """A new state file ``run_dir/state.json`` for the calling process (the launcher),
        registered in ``registry`` (default :func:`registry_dir`) unless ``register`` is false."""
        pid = os.getpid()
        data = {
            "version": STATE_VERSION,
            "run_id": run_id,
            "out": str(out) if out is not None else None,
            "isolation": isolation,
            "boot_id": boot_id(),
            "launcher": {"pid": pid, "start_time": process_start_time(pid)},
            "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "state": "running",
            "resources": [],
        }
        reg = None
        if register:
            reg = Path(registry) if registry is not None else registry_dir()
            reg = reg / f"{run_id}.json"
        data["state_file"] = str(Path(run_dir).resolve() / STATE_FILE)
        data["registry_file"] = str(reg.resolve()) if reg is not None else None
        state = cls(Path(run_dir) / STATE_FILE, data, registry=reg)
        state._save()
        return state

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunState:
        """Read a state file: ``OUT/run/state.json``, a registry entry, or a run directory."""
        path = Path(path)
        if path.is_dir():
            path = path / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NetemuError(f"{path}: cannot read the run state: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
            raise NetemuError(f"{path}: not a netemu run state file")
        registry = None
        if path.name != STATE_FILE:  # a registry entry: keep the run's own copy up to date
            registry = path
            own = data.get("state_file")
            path = Path(own) if own else path
        else:
            reg = data.get("registry_file")
            reg = Path(reg) if reg else registry_dir() / f"{data.get('run_id')}.json"
            registry = reg if reg.exists() else None
        return cls(path, data, registry=registry)

    # -- what the run has

    @property
    def run_id(self) -> str:
        return str(self.data.get("run_id"))

    @property
    def resources(self) -> list[Resource]:
        with self._lock:
            return [Resource.from_dict(r) for r in self.data["resources"]]

    @property
    def same_boot(self) -> bool:
        recorded = self.data.get("boot_id") or ""
        return not recorded or recorded == boot_id()

    def is_live(self) -> bool:
        """Whether the run is going on: not ended, and its launcher still running."""
        return self.data.get("state") == "running" and self.launcher_alive()

    def launcher_alive(self) -> bool:
        """Whether the process that created this state (the launcher) is still running."""
        launcher = self.data.get("launcher") or {}
        if not self.same_boot:
            return False
        return process_alive(launcher.get("pid", 0), launcher.get("start_time"))

    # -- recording

    def record(self, kind: str, name: str, **info: Any) -> Resource:
        """Add a resource (replacing one of the same kind and name) and save the file."""
        res = Resource(kind=kind, name=name, info=dict(info))
        with self._lock:
            items = self.data["resources"]
            items[:] = [r for r in items if (r["kind"], r["name"]) != (kind, name)]
            items.append(res.to_dict())
            self._save_locked()
        return res

    def record_many(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Record several ``(kind, name, info)`` resources with one write."""
        with self._lock:
            keys = {(kind, name) for kind, name, _ in items}
            res = self.data["resources"]
            res[:] = [r for r in res if (r["kind"], r["name"]) not in keys]
            res.extend(Resource(kind, name, dict(info)).to_dict() for kind, name, info in items)
            self._save_locked()

    def record_process(self, name: str, pid: int, **info: Any) -> Resource:
        """Record a started process with its start time (never signalled once its PID is
        reused). ``name`` is unique within the run (``fabric``, ``broker``, a node name)."""
        return self.record(
            "process",
            name,
            pid=int(pid),
            start_time=process_start_time(pid),
            boot_id=self.data.get("boot_id", ""),
            **info,
        )

    def forget(self, kind: str, name: str, *, pid: int | None = None) -> None:
        """Remove a resource from the file (it has been removed); unknown ones are ignored.
        With ``pid``, only a record of that PID (a process started again under the same name
        has a new record)."""

        def match(r: dict) -> bool:
            same = (r["kind"], r["name"]) == (kind, name)
            return same and (pid is None or r.get("pid") == pid)

        with self._lock:
            items = self.data["resources"]
            kept = [r for r in items if not match(r)]
            if len(kept) != len(items):
                items[:] = kept
                self._save_locked()

    def finish(self, how: str = "ended") -> None:
        """The run ended (``how``: ``ended``, or ``cleaned`` by ``netemu clean``). With nothing
        left recorded, the registry entry is removed and the run's own file says so; otherwise
        both stay for ``netemu clean`` (state ``ended-with-leftovers``)."""
        with self._lock:
            left = len(self.data["resources"])
            self.data["state"] = how if not left else "ended-with-leftovers"
            self.data["ended_utc"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._save_locked(registry=bool(left))
            if not left and self.registry_path is not None:
                with contextlib.suppress(OSError):
                    self.registry_path.unlink()

    def _save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self, *, registry: bool = True) -> None:
        text = json.dumps(self.data, indent=1)
        try:
            if self.path.parent.is_dir() or self.registry_path is None:
                _write_atomic(self.path, text)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)
        if registry and self.registry_path is not None:
            _write_atomic(self.registry_path, text)

    # -- removing

    def remove_all(
        self,
        *,
        dry_run: bool = False,
        report: Callable[[Resource, str], None] | None = None,
    ) -> list[tuple[Resource, str]]:
        """Remove every recorded resource, newest first, with the remover of its kind; forget
        each one removed (or found gone). Returns ``(resource, what happened)`` pairs."""
        done = []
        for res in reversed(self.resources):
            remover = remover_for(res.kind)
            if remover is None:
                what = f"left alone: no remover for kind {res.kind!r}"
            else:
                try:
                    what = remover(res, dry_run)
                except NetemuError as exc:
                    what = f"failed: {exc}"
                except OSError as exc:
                    what = f"failed: {exc}"
            if not dry_run and not what.startswith(("failed", "left alone")):
                self.forget(res.kind, res.name)
            done.append((res, what))
            if report is not None:
                report(res, what)
        return done


def find_registered(registry: str | os.PathLike | None = None) -> list[Path]:
    """The registry entries (one JSON file per run that has not ended cleanly)."""
    reg = Path(registry) if registry is not None else registry_dir()
    if not reg.is_dir():
        return []
    return sorted(p for p in reg.glob("*.json") if not p.name.startswith("."))


# -- removers ------------------------------------------------------------------------------------

#: A remover takes a resource and ``dry_run`` and says what happened, e.g. ``"removed"`` or
#: ``"already gone"``; it raises :class:`NetemuError` when it could not remove the resource.
Remover = Callable[[Resource, bool], str]

_REMOVERS: dict[str, Remover] = {}


def register_remover(kind: str, remover: Remover | None = None):
    """Register the remover of a resource kind (usable as a decorator)."""

    def deco(func: Remover) -> Remover:
        _REMOVERS[kind] = func
        return func

    return deco(remover) if remover is not None else deco


def remover_for(kind: str) -> Remover | None:
    """The remover of ``kind``, importing :data:`REMOVER_MODULES` to find it if needed."""
    if kind not in _REMOVERS:
        for module in REMOVER_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    return _REMOVERS.get(kind)


@contextlib.contextmanager
def _pidfd(pid: int) -> Iterator[int | None]:
    """A pidfd of ``pid`` (``None`` where pidfds are not available or the process is gone)."""
    fd = None
    with contextlib.suppress(OSError, AttributeError):
        fd = os.pidfd_open(pid)
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _wait_gone(pid: int, start_time: int, fd: int | None, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while process_alive(pid, start_time):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if fd is not None:
            select.select([fd], [], [], min(left, 0.1))
        else:
            time.sleep(min(left, 0.05))
    return True


@register_remover("process")
def remove_process(res: Resource, dry_run: bool = False, *, grace_s: float = 3.0) -> str:
    """SIGTERM, then SIGKILL after ``grace_s``, to the recorded process, only if its PID still
    belongs to the process that was recorded (same start time, same boot)."""
    pid = int(res.info.get("pid", 0))
    start_time = res.info.get("start_time")
    recorded_boot = res.info.get("boot_id") or ""
    if pid <= 0 or start_time is None:
        return "already gone (no start time was recorded)"
    if recorded_boot and recorded_boot != boot_id():
        return "already gone (recorded before the last boot)"
    # A pidfd pins the process: once it is open and the start time matches, a signal sent
    # through it cannot reach a process that got the PID later.
    with _pidfd(pid) as fd:
        if not process_alive(pid, start_time):
            return f"already gone (pid {pid})"
        if dry_run:
            return f"would end pid {pid}"

        def send(sig: int) -> None:
            with contextlib.suppress(ProcessLookupError):
                if fd is not None:
                    signal.pidfd_send_signal(fd, sig)
                else:
                    os.kill(pid, sig)

        send(signal.SIGTERM)
        if _wait_gone(pid, start_time, fd, grace_s):
            return f"ended pid {pid} (SIGTERM)"
        send(signal.SIGKILL)
        if _wait_gone(pid, start_time, fd, 5.0):
            return f"ended pid {pid} (SIGKILL)"
    raise NetemuError(f"pid {pid} did not die after SIGKILL")
