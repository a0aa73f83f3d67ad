"""MQTT brokers for a run: the embedded one (amqtt, pure Python) and Debian's mosquitto.

``python -m netemu.control.broker --port P`` runs the embedded broker on 127.0.0.1:P until
SIGTERM/SIGINT. :class:`BrokerProcess` starts either kind as a child process, waits until it
accepts connections, and stops it by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import NetemuError

__all__ = ["BrokerProcess", "free_port", "main", "wait_for_port"]

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free on ``host`` now (the OS picks it; another process may take it later)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, *, timeout_s: float, proc=None) -> None:
    """Wait until a TCP connect to ``host:port`` succeeds; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise NetemuError(f"MQTT broker exited with status {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise NetemuError(f"MQTT broker on {host}:{port} not reachable after {timeout_s} s")
        time.sleep(0.05)


class BrokerProcess:
    """A broker child process on ``127.0.0.1:port``: ``kind`` is ``"amqtt"`` or ``"mosquitto"``.

    Use as a context manager; ``url`` is ``mqtt://127.0.0.1:PORT``. Stopping sends SIGTERM to
    the PID it started (SIGKILL after 3 s). ``host`` is the address it listens on (a
    namespace's address with ``--isolation netns``); ``on_start(pid)`` is called as soon as the
    process exists (the launcher records it in the run state file).
    """

    def __init__(
        self,
        kind: str = "amqtt",
        *,
        port: int | None = None,
        log_path=None,
        host: str = "127.0.0.1",
        on_start=None,
    ):
        if kind not in ("amqtt", "mosquitto"):
            raise NetemuError(f"broker kind must be amqtt or mosquitto, got {kind!r}")
        self.kind = kind
        self.host = host
        self.on_start = on_start
        self.port = port or free_port(self.host)
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, *, timeout_s: float = 15.0) -> BrokerProcess:
        if self.kind == "amqtt":
            cmd = [sys.executable, "-m", "netemu.control.broker", "--port", str(self.port)]
            cmd += ["--host", self.host]
        else:
            exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
            if not os.path.exists(exe):
                raise NetemuError("mosquitto not found: apt-get install -y mosquitto")
            self._tmp = tempfile.TemporaryDirectory(prefix="netemu-mosquitto-")
            conf = Path(self._tmp.name) / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
                "max_queued_messages 100000\n"
            )
            cmd = [exe, "-c", str(conf)]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
        finally:
            if self.log_path:
                out.close()
        if self.on_start is not None:
            self.on_start(self.proc.pid)
        try:
            wait_for_port(self.host, self.port, timeout_s=timeout_s, proc=self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _SnapshotDict(dict):
    """A dict whose iteration walks a copy of its keys/items.

    amqtt 0.12 iterates its subscription and retained-message dicts with ``await`` inside the
    loop; when another client subscribes meanwhile, the iteration fails with "dictionary
    changed size during iteration" and that client's session dies (seen with 70 nodes
    connecting at once). Iterating a snapshot is what the loops mean to do.
    """

    __slots__ = ()

    def __iter__(self):
        return iter(list(dict.keys(self)))

    def keys(self):
        return list(dict.keys(self))

    def values(self):
        return list(dict.values(self))

    def items(self):
        return list(dict.items(self))


def _patch_broker(broker) -> None:
    for name in ("_subscriptions", "_retained_messages"):
        current = getattr(broker, name, None)
        if isinstance(current, dict) and not isinstance(current, _SnapshotDict):
            setattr(broker, name, _SnapshotDict(current))


async def _serve(host: str, port: int) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }
    broker = Broker(config)
    _patch_broker(broker)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="netemu's embedded MQTT broker (amqtt)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from ..runtime.clock import die_with_parent

    die_with_parent()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
