"""A private Docker engine for machines where none runs: Debian's ``dockerd`` (package
``docker.io``) started in a network namespace of its own and stopped by its PID.

The engine's bridges, veths and iptables rules live in that namespace, so the host's network
is never touched; processes that must talk to the containers (the launcher, the broker, the
fabric) join the same namespace (``setns``, see :attr:`PrivateDockerEngine.netns_path`).
Everything the engine writes (images, containers, its socket) is below one temporary
directory, removed on stop unless ``data_root`` is given.

>>> with PrivateDockerEngine() as engine:                      # doctest: +SKIP
...     subprocess.run(["docker", "info"], env=engine.env, check=True)

Needs root, ``dockerd``, ``containerd``, ``runc`` and ``ip`` (``apt-get install -y docker.io
iproute2``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import NetemuError

__all__ = ["PrivateDockerEngine", "docker_available", "engine_reachable", "stop_dockerd"]

log = logging.getLogger(__name__)

#: How long ``dockerd`` gets to answer on its socket after it starts.
START_TIMEOUT_S = 40.0
#: How long ``dockerd`` gets to stop its containers and exit after SIGTERM.
STOP_TIMEOUT_S = 20.0


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def docker_available() -> str | None:
    """Why a private engine cannot start here (``None`` when it can): not root, or a missing
    program."""
    if os.geteuid() != 0:
        return "a private Docker engine needs root"
    for exe in ("dockerd", "containerd", "runc", "docker", "ip", "nsenter"):
        if shutil.which(exe) is None and not os.path.exists(f"/usr/sbin/{exe}"):
            return f"{exe} is not installed (apt-get install -y docker.io iproute2 util-linux)"
    return None


def engine_reachable(env: dict[str, str] | None = None, *, timeout_s: float = 5.0) -> bool:
    """Whether ``docker version`` reaches an engine with this environment (``DOCKER_HOST``)."""
    if shutil.which("docker") is None:
        return False
    try:
        proc = _run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, **(env or {})},
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _is_dockerd(pid: int, data_root: str | None = None) -> bool:
    """Whether ``pid`` is a live ``dockerd`` (with this ``--data-root``): never signal a PID
    that was reused by another program."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] == "Z":
        return False
    if not argv or not argv[0].endswith(b"dockerd"):
        return False
    return data_root is None or data_root.encode() in argv


def _unmount_below(root: str) -> None:
    """Lazily unmount whatever the engine left mounted below ``root`` (deepest first)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = root.rstrip("/") + "/"
    points = [m.split()[1] for m in mounts if len(m.split()) > 1]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        _run(["umount", "-l", point])


def stop_dockerd(
    *,
    pid: int | None,
    data_root: str | None = None,
    exec_root: str | None = None,
    netns: str | None = None,
    remove: list[str] | None = None,
    timeout_s: float = STOP_TIMEOUT_S,
) -> None:
    """Stop a ``dockerd`` this module started: SIGTERM its PID (SIGKILL after ``timeout_s``),
    unmount what it left below its roots, remove the directories in ``remove`` and delete its
    network namespace. Safe to call twice; used by :class:`PrivateDockerEngine` and by
    ``netemu clean`` (resource kind ``dockerd``)."""
    if pid is not None and _is_dockerd(pid, data_root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _is_dockerd(pid, data_root) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_dockerd(pid, data_root):
            log.warning("dockerd %d did not stop in %.0f s; killing it", pid, timeout_s)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for root in (exec_root, data_root):
        if root:
            _unmount_below(root)
    for path in remove or []:
        shutil.rmtree(path, ignore_errors=True)
    if netns and Path("/run/netns", netns).exists():
        proc = _run(["ip", "netns", "delete", netns])
        if proc.returncode != 0:
            log.warning("ip netns delete %s: %s", netns, proc.stderr.strip())


class PrivateDockerEngine:
    """``dockerd`` in its own network namespace, for the duration of a ``with`` block.

    ``data_root`` keeps images between runs (default: a temporary directory, removed on stop,
    so every start begins empty). ``storage_driver`` ``overlay2`` (default) or ``vfs`` (slow,
    works everywhere). ``state``: a :class:`~netemu.runtime.state.RunState` that records the
    engine (kind ``dockerd``) while it runs. :attr:`env` (``DOCKER_HOST=unix://...``) points
    the ``docker`` client at it; :attr:`netns_path` is the namespace the containers' networks
    live in.
    """

    def __init__(
        self,
        *,
        data_root: str | os.PathLike | None = None,
        storage_driver: str = "overlay2",
        start_timeout_s: float = START_TIMEOUT_S,
        state=None,
    ):
        self._keep_data = data_root is not None
        self._data_root_arg = Path(data_root) if data_root is not None else None
        self.storage_driver = storage_driver
        self.start_timeout_s = start_timeout_s
        self.netns = f"ne-dockerd-{secrets.token_hex(3)}"
        self.tmp: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.state = state  # a netemu.runtime.state.RunState to record the engine in

    # -- paths -----------------------------------------------------------------------------------

    @property
    def data_root(self) -> Path:
        return self._data_root_arg or self._tmp() / "data"

    @property
    def exec_root(self) -> Path:
        return self._tmp() / "exec"

    @property
    def socket(self) -> Path:
        return self._tmp() / "docker.sock"

    @property
    def log_path(self) -> Path:
        return self._tmp() / "dockerd.log"

    @property
    def host(self) -> str:
        """The ``DOCKER_HOST`` value."""
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host}

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _tmp(self) -> Path:
        if self.tmp is None:
            raise NetemuError("the private Docker engine is not started")
        return self.tmp

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> PrivateDockerEngine:
        why = docker_available()
        if why:
            raise NetemuError(f"cannot start a private Docker engine: {why}")
        # Short path: the socket path must fit in 108 bytes.
        self.tmp = Path(tempfile.mkdtemp(prefix="netemu-dockerd-"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        self._register()
        proc = _run(["ip", "netns", "add", self.netns])
        if proc.returncode != 0:
            raise NetemuError(f"ip netns add {self.netns}: {proc.stderr.strip()}")
        _run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        cmd = [
            "nsenter",
            f"--net={self.netns_path}",
            "dockerd",
            "--data-root",
            str(self.data_root),
            "--exec-root",
            str(self.exec_root),
            "--host",
            self.host,
            "--pidfile",
            str(self._tmp() / "dockerd.pid"),
            "--storage-driver",
            self.storage_driver,
            # own containerd namespaces: never see another engine's containers
            "--containerd-namespace",
            "netemu",
            "--containerd-plugins-namespace",
            "netemu-plugins",
            "--bridge",
            "none",
        ]
        with open(self.log_path, "ab") as out:
            # nsenter execs dockerd: the PID below is the engine's own.
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self._register()
        deadline = time.monotonic() + self.start_timeout_s
        while not engine_reachable(self.env, timeout_s=3.0):
            if self.proc.poll() is not None:
                raise NetemuError(
                    f"dockerd exited with status {self.proc.returncode} while starting; "
                    f"see {self.log_path}{_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise NetemuError(
                    f"dockerd did not answer within {self.start_timeout_s:.0f} s; "
                    f"see {self.log_path}{_tail(self.log_path)}"
                )
            time.sleep(0.2)
        log.info("private dockerd %d in netns %s, %s", self.proc.pid, self.netns, self.host)

    def _register(self) -> None:
        """Record the engine in the run state (``netemu clean`` stops it after a crash)."""
        if self.state is not None:
            self.state.record("dockerd", self.netns, **self._state_data())

    def _unregister(self) -> None:
        if self.state is not None:
            self.state.forget("dockerd", self.netns)

    def _state_data(self) -> dict:
        remove = [] if self.tmp is None else [str(self.tmp)]
        from .state import process_start_time

        pid = self.pid
        return {
            "pid": pid,
            "start_time": process_start_time(pid) if pid is not None else None,
            "data_root": str(self.data_root),
            "exec_root": str(self.exec_root),
            "netns": self.netns,
            "remove": remove,
        }

    def stop(self) -> None:
        """Stop the engine by its PID, unmount and remove its files, delete its namespace."""
        if self.tmp is None:
            return
        data = self._state_data()
        # a given data_root is outside the temporary directory and kept (images stay)
        stop_dockerd(
            pid=data["pid"],
            data_root=data["data_root"],
            exec_root=data["exec_root"],
            netns=self.netns,
            remove=data["remove"],
        )
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
        self._unregister()
        self.proc = None
        self.tmp = None

    def __enter__(self) -> PrivateDockerEngine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n  " + "\n  ".join(text)) if text else ""
