"""Child processes of a run, started and ended by their PID.

:class:`ProcessSupervisor` starts each child in its own session (so a Ctrl-C in the terminal
reaches only the launcher), sends its stdout and stderr to a log file, reports children that
exit, and ends every child it started with SIGTERM, then SIGKILL after a grace period. It never
signals a process it did not start, and never by name.

>>> import sys
>>> sup = ProcessSupervisor()
>>> child = sup.start("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"])
>>> sup.end_all(grace_s=3.0)
>>> child.proc.poll() is not None
True
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Child", "ProcessSupervisor"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Child:
    """One started child: its ``name`` (``fabric`` or a node name), node ``number`` (``None``
    for the fabric), process handle and log file."""

    name: str
    proc: subprocess.Popen
    log_path: Path | None = None
    number: int | None = None
    reported: bool = False  # exit already reported by poll_exited()
    cmd: list[str] | None = None  # what it was started with (to start it again)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def describe_exit(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "running"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with status {code}"


class ProcessSupervisor:
    """The children of one run (see the module docstring)."""

    def __init__(self, *, env: dict[str, str] | None = None, state=None):
        self.children: list[Child] = []
        self._env = env
        #: A :class:`~netemu.runtime.state.RunState`: each child is recorded when it starts
        #: and forgotten once reaped (``netemu clean`` ends what a killed launcher left).
        self.state = state

    def start(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        log_path: str | Path | None = None,
        number: int | None = None,
    ) -> Child:
        env = dict(os.environ if self._env is None else self._env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        path = Path(log_path) if log_path is not None else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = open(path, "ab")  # noqa: SIM115
        else:
            out = subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                close_fds=True,
            )
        finally:
            if path is not None:
                out.close()
        child = Child(name=name, proc=proc, log_path=path, number=number, cmd=list(cmd))
        self.children.append(child)
        if self.state is not None:
            self.state.record_process(name, proc.pid)
        log.debug("started %s (pid %d)", name, proc.pid)
        return child

    def get(self, name: str) -> Child | None:
        """The child of that name (the latest one, when it was started again)."""
        for child in reversed(self.children):
            if child.name == name:
                return child
        return None

    def pids(self) -> dict[str, int]:
        return {c.name: c.pid for c in self.children}

    def alive(self) -> list[Child]:
        return [c for c in self.children if c.running]

    def poll_exited(self) -> list[Child]:
        """Children that exited since the last call (each reported once)."""
        out = []
        for child in self.children:
            if not child.reported and child.proc.poll() is not None:
                child.reported = True
                out.append(child)
        return out

    def wait(self, children: Sequence[Child], *, timeout_s: float) -> list[Child]:
        """Wait until ``children`` have exited or ``timeout_s`` passed; the ones still running."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = [c for c in children if c.running]
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.02)

    def end(self, children: Sequence[Child], *, grace_s: float = 3.0) -> None:
        """SIGTERM to each running child (by PID), SIGKILL to those still there after
        ``grace_s``; reaps them all."""
        left = [c for c in children if c.running]
        for child in left:
            _signal(child, signal.SIGTERM)
        left = self.wait(left, timeout_s=grace_s)
        for child in left:
            log.warning("%s (pid %d) ignored SIGTERM; killing it", child.name, child.pid)
            _signal(child, signal.SIGKILL)
        for child in children:
            try:
                child.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process in D state
                log.error("%s (pid %d) did not die", child.name, child.pid)
            else:
                if self.state is not None:
                    self.state.forget("process", child.name, pid=child.pid)

    def end_all(self, *, grace_s: float = 3.0) -> None:
        """End every child this supervisor started (nodes first, in reverse start order)."""
        self.end(list(reversed(self.children)), grace_s=grace_s)


def _signal(child: Child, sig: int) -> None:
    try:
        child.proc.send_signal(sig)
    except ProcessLookupError:
        pass
