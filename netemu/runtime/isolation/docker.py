"""``--isolation docker``: every node a container on a Docker network created for the run.

Per run::

    engine  (the host's, or a private dockerd in its own network namespace, see below)
      network ne-RUNID    bridge; its gateway address G is where the broker and the fabric
      |                   bind (the launcher's controller connects there too)
      +-- container ne-RUNID-NUMBER   one per node: `python3 -m netemu node --config ...`
                                       (or, for --external NODE=IMAGE [ARGS], the user's image)

The engine: when ``docker version`` reaches one (``DOCKER_HOST`` or the default socket), that
one; otherwise, as root with Debian's ``docker.io`` installed, a private ``dockerd`` started in
a network namespace of its own (:class:`~netemu.runtime.dockerd.PrivateDockerEngine`) and
stopped at the end. ``NETEMU_DOCKER_ENGINE`` = ``auto`` (default), ``host`` or ``private``
chooses. A private engine keeps its images in ``~/.cache/netemu/dockerd`` between runs (a
lock file makes a second concurrent run use a throw-away data root), so the image is imported
once. With a private engine, the launcher's thread joins the engine's namespace for the broker,
the fabric and the controller (:meth:`DockerIsolation.services`, ``setns`` as in netns mode):
the network's bridge and gateway are there.

The image: ``NETEMU_DOCKER_IMAGE`` (default ``netemu-node:VERSION``). When the engine does not
have it, it is built without a registry (:func:`netemu.runtime.images.build_image`:
debootstrap once, then ``docker import``; needs root and ``debootstrap``), or build it
yourself (``netemu image build``, or ``docker build -f docker/Dockerfile``).

Each container bind-mounts the run's ``--out`` directory at the same absolute path and starts
in the launcher's working directory, so the config, event and final file paths are the same
inside and out. Containers run with ``--init`` (signals reach the node) and the ``SYS_NICE``
capability, without ``--rm``: the ``docker run`` client then exits as soon as its node does
(with ``--rm`` it waits for the removal, which the engine does one container at a time: 71
nodes took over 10 s to "exit"). The launcher starts one client per node and ends it by its
PID (the client forwards SIGTERM to the container); teardown removes every container of the
run (``docker rm -f``, repeated until they are gone), the network, and the private engine.
Each is recorded in the run state file first (kinds ``container``, ``network``,
``dockerd``) so ``netemu clean`` removes them after a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ...errors import NetemuError
from ..state import Resource, register_remover
from .base import Isolation, NodeSlot

__all__ = [
    "DockerIsolation",
    "docker_env_for",
    "private_data_root",
    "private_engine",
    "start_private_engine",
]

log = logging.getLogger(__name__)

NAME_PREFIX = "ne-"
LABEL = "org.netemu.run"
ENGINE_CHOICES = ("auto", "host", "private")


def private_data_root() -> Path:
    """Where a private engine started by ``--isolation docker`` keeps its images."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netemu" / "dockerd"


def start_private_engine(*, state=None):
    """Start a private dockerd on :func:`private_data_root` (images kept between runs); when
    another run holds that data root, on a throw-away one. Returns ``(engine, lock_fd)``:
    stop the engine, then close ``lock_fd`` (``None`` for a throw-away root) to release it."""
    from ..dockerd import PrivateDockerEngine

    root = private_data_root()
    root.mkdir(parents=True, exist_ok=True)
    fd: int | None = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        data_root = root / "data"
    except BlockingIOError:
        os.close(fd)
        fd = None
        log.warning("docker: %s is in use by another run; using a throw-away engine", root)
        data_root = None
    engine = PrivateDockerEngine(data_root=data_root, state=state)
    try:
        engine.start()
        if fd is not None:
            # containers and networks of runs killed with the engine (only this run uses the
            # kept data root now: it holds the lock)
            for what in ("container", "network"):
                _docker([what, "prune", "-f", "--filter", f"label={LABEL}"], engine.host)
    except BaseException:
        engine.stop()
        if fd is not None:
            os.close(fd)
        raise
    return engine, fd


@contextlib.contextmanager
def private_engine(*, state=None):
    """:func:`start_private_engine` as a context manager (stopped and unlocked on exit)."""
    engine, fd = start_private_engine(state=state)
    try:
        yield engine
    finally:
        try:
            engine.stop()
        finally:
            if fd is not None:
                os.close(fd)


def docker_env_for(docker_host: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


def _docker(
    args: Sequence[str], docker_host: str | None, *, check: bool = True, timeout_s: float = 60
) -> str:
    proc = subprocess.run(
        ["docker", *args],
        env=docker_env_for(docker_host),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if check and proc.returncode != 0:
        raise NetemuError(f"`docker {' '.join(args[:3])} ...` failed: {proc.stderr.strip()}")
    return proc.stdout


class DockerIsolation(Isolation):
    """Containers on a per-run Docker network (see the module docstring). ``engine`` and
    ``image`` default to ``NETEMU_DOCKER_ENGINE`` and ``NETEMU_DOCKER_IMAGE``."""

    mode = "docker"
    external_broker_ok = False
    #: Extra time per node for the launcher's ready wait: each ``docker run`` goes through
    #: the engine (71 nodes were ready after 38 s on 2 vCPUs, against 15 s as processes).
    ready_timeout_per_node_s = 1.0
    #: Extra time per node for the launcher's wait for the nodes to exit after the stop: the
    #: engine tears containers down one after the other (71 took about 15 s here).
    exit_timeout_per_node_s = 0.3

    def __init__(
        self,
        *,
        run_id: str,
        nodes: Sequence[NodeSlot] = (),
        state=None,
        engine: str | None = None,
        image: str | None = None,
    ):
        super().__init__(run_id=run_id, nodes=nodes, state=state)
        self.engine_choice = engine or os.environ.get("NETEMU_DOCKER_ENGINE") or "auto"
        self._image = image or os.environ.get("NETEMU_DOCKER_IMAGE") or None
        self.network = f"{NAME_PREFIX}{run_id}"
        self.docker_host: str | None = os.environ.get("DOCKER_HOST") or None
        self.private = None  # a PrivateDockerEngine when netemu started one
        self._lock_fd: int | None = None
        self.gateway: str | None = None
        self.subnet: str | None = None
        self._containers: list[str] = []
        self._network_made = False
        self._engine_netns: str | None = None

    # -- names

    def container_of(self, node: NodeSlot) -> str:
        return f"{NAME_PREFIX}{self.run_id}-{node.number}"

    @property
    def image(self) -> str:
        if self._image is None:
            from ..images import default_image_tag

            self._image = default_image_tag()
        return self._image

    # -- checks

    def check(self) -> None:
        if self.engine_choice not in ENGINE_CHOICES:
            raise NetemuError(
                f"NETEMU_DOCKER_ENGINE must be one of {', '.join(ENGINE_CHOICES)}, "
                f"got {self.engine_choice!r}"
            )
        if shutil.which("docker") is None:
            raise NetemuError(
                "--isolation docker needs the docker client (apt-get install -y docker.io)"
            )
        from ..dockerd import docker_available, engine_reachable

        if self.engine_choice != "private" and engine_reachable(docker_env_for(self.docker_host)):
            self.engine_choice = "host"
            return
        if self.engine_choice == "host":
            raise NetemuError(
                "--isolation docker: no Docker engine answers (DOCKER_HOST or the default "
                "socket); start one, or set NETEMU_DOCKER_ENGINE=auto to let netemu start a "
                "private dockerd (root, Debian's docker.io)"
            )
        why = docker_available()
        if why:
            raise NetemuError(
                f"--isolation docker: no Docker engine answers and a private one cannot "
                f"start: {why}"
            )
        self.engine_choice = "private"

    # -- lifetime

    def setup(self) -> None:
        if self.engine_choice == "private":
            self._start_private_engine()
        self._ensure_image()
        self._record("network", self.network, docker_host=self.docker_host)
        _docker(
            ["network", "create", "--driver", "bridge", "--label", f"{LABEL}={self.run_id}"]
            + [self.network],
            self.docker_host,
        )
        self._network_made = True
        fmt = "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}"
        out = _docker(["network", "inspect", "--format", fmt, self.network], self.docker_host)
        parts = out.split()
        if len(parts) < 2:
            raise NetemuError(f"docker network {self.network}: no gateway address ({out!r})")
        self.gateway, self.subnet = parts[0], parts[1]
        log.info(
            "docker: network %s %s (gateway %s), %s engine, image %s",
            self.network,
            self.subnet,
            self.gateway,
            self.engine_choice,
            self.image,
        )

    def _record(self, kind: str, name: str, **info) -> None:
        if self.state is not None:
            self.state.record(kind, name, **info)

    def _forget(self, kind: str, name: str) -> None:
        if self.state is not None:
            self.state.forget(kind, name)

    def _start_private_engine(self) -> None:
        self.private, self._lock_fd = start_private_engine(state=self.state)
        self.docker_host = self.private.host
        self._engine_netns = self.private.netns

    def _ensure_image(self) -> None:
        from ..images import build_image, default_image_tag, image_exists

        env = {"DOCKER_HOST": self.docker_host} if self.docker_host else None
        if self.image == default_image_tag():
            # built (or re-imported from the cache) when missing or older than the tree
            build_image(self.image, env=env)  # logs its steps
        elif not image_exists(self.image, env):
            raise NetemuError(f"--isolation docker: the engine has no image {self.image!r}")

    def teardown(self) -> None:
        errors = []
        if self._containers:
            left = self._remove_containers(list(self._containers))
            for name in list(self._containers):
                if name not in left:
                    self._containers.remove(name)
                    self._forget("container", name)
            if self._containers:
                errors.append(f"containers left: {self._containers}")
        if self._network_made:
            _docker(["network", "rm", self.network], self.docker_host, check=False)
            if self._network_exists():
                errors.append(f"network {self.network} left")
            else:
                self._network_made = False
                self._forget("network", self.network)
        elif self.state is not None:
            self._forget("network", self.network)  # recorded, never created
        if self.private is not None:
            self.private.stop()  # forgets its dockerd resource
            self.private = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the data root's lock
            self._lock_fd = None
        if errors:
            raise NetemuError("--isolation docker: " + "; ".join(errors))

    def _remove_containers(self, names: list[str], timeout_s: float = 60.0) -> set[str]:
        """``docker rm -f`` until none of ``names`` exists (the engine removes one after the
        other); returns those still there at the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            present = set(self._running_containers()) & set(names)
            if not present or time.monotonic() > deadline:
                return present
            _docker(["rm", "-f", *sorted(present)], self.docker_host, check=False, timeout_s=120)

    def _running_containers(self) -> list[str]:
        out = _docker(
            ["ps", "-a", "--filter", f"label={LABEL}={self.run_id}", "--format", "{{.Names}}"],
            self.docker_host,
            check=False,
        )
        return out.split()

    def _network_exists(self) -> bool:
        proc = subprocess.run(
            ["docker", "network", "inspect", self.network],
            env=docker_env_for(self.docker_host),
            capture_output=True,
        )
        return proc.returncode == 0

    # -- addresses

    @property
    def bind_host(self) -> str:
        if self.gateway is None:
            raise NetemuError("--isolation docker: the network is not created yet")
        return self.gateway

    def node_app_host(self, node: NodeSlot) -> str:
        return "0.0.0.0"  # inside the container; reachable at its address from the gateway

    @contextlib.contextmanager
    def services(self) -> Iterator[None]:
        if self.private is None:
            yield  # the host's engine: its bridge and gateway are in this namespace
            return
        from .netns import setns

        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            fd = os.open(self.private.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd)
            finally:
                os.close(fd)
            try:
                yield
            finally:
                setns(own)
        finally:
            os.close(own)

    # -- nodes

    def wrap_node_argv(self, node: NodeSlot, argv: Sequence[str]) -> list[str]:
        """``docker run`` for the node. netemu's node (``PYTHON -m netemu node ...``) runs in
        the netemu image with the image's python3; an external node's ``env K=V... IMAGE
        [ARGS]`` (the launcher's form of ``--external NODE=IMAGE [ARGS]``) runs ``IMAGE``."""
        argv = list(argv)
        env: list[str] = []
        if argv and argv[0] == "env":
            i = 1
            while i < len(argv) and "=" in argv[i] and not argv[i].startswith("-"):
                env.append(argv[i])
                i += 1
            rest = argv[i:]
            if not rest:
                raise NetemuError(f"--external {node.name}: no image given")
            image, command = rest[0], rest[1:]
        elif argv[:3] == [sys.executable, "-m", "netemu"]:
            image, command = self.image, ["python3", "-m", "netemu", *argv[3:]]
        else:
            image, command = self.image, argv
        name = self.container_of(node)
        self._record("container", name, docker_host=self.docker_host, node=node.number)
        self._containers.append(name)
        cmd = ["docker"]
        if self.docker_host:
            cmd += ["-H", self.docker_host]
        out_dirs = sorted({str(Path(p).resolve()) for p in self._mounts()})
        cmd += [
            "run",
            "--init",
            "--name",
            name,
            "--hostname",
            name,
            "--label",
            f"{LABEL}={self.run_id}",
            "--network",
            self.network,
            "--cap-add",
            "SYS_NICE",
            "--workdir",
            os.getcwd(),
        ]
        for d in out_dirs:
            cmd += ["--volume", f"{d}:{d}"]
        for item in env:
            cmd += ["--env", item]
        return [*cmd, image, *command]

    def _mounts(self) -> list[str]:
        """Directories the containers need: the run's ``--out`` (from the state file)."""
        out = None
        if self.state is not None:
            out = self.state.data.get("out")
        return [out] if out else []

    def describe(self) -> dict:
        return {
            "mode": self.mode,
            "engine": self.engine_choice,
            "docker_host": self.docker_host,
            "engine_netns": self._engine_netns,
            "network": self.network,
            "subnet": self.subnet,
            "services_address": self.gateway,
            "image": self.image,
        }

    def describe_node(self, node: NodeSlot) -> dict:
        return {"container": self.container_of(node)}


# -- removers for netemu clean ---------------------------------------------------------------------


def _engine_gone(docker_host: str | None) -> bool:
    if docker_host and docker_host.startswith("unix://"):
        return not Path(docker_host[len("unix://") :]).exists()
    return False


@register_remover("container")
def remove_container(res: Resource, dry_run: bool = False) -> str:
    """``docker rm -f`` a container named ``ne-...`` on the engine it was recorded with."""
    if not res.name.startswith(NAME_PREFIX):
        raise NetemuError(f"refusing to remove container {res.name!r}: not one netemu names")
    host = res.info.get("docker_host")
    if shutil.which("docker") is None or _engine_gone(host):
        return "already gone (its engine is gone)"
    proc = subprocess.run(
        ["docker", "inspect", "--format", "{{.Name}}", res.name],
        env=docker_env_for(host),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return "already gone"
    if dry_run:
        return "would remove"
    _docker(["rm", "-f", res.name], host)
    return "removed"


@register_remover("network")
def remove_network(res: Resource, dry_run: bool = False) -> str:
    """``docker network rm`` a network named ``ne-...`` on the engine it was recorded with."""
    if not res.name.startswith(NAME_PREFIX):
        raise NetemuError(f"refusing to remove network {res.name!r}: not one netemu names")
    host = res.info.get("docker_host")
    if shutil.which("docker") is None or _engine_gone(host):
        return "already gone (its engine is gone)"
    proc = subprocess.run(
        ["docker", "network", "inspect", res.name], env=docker_env_for(host), capture_output=True
    )
    if proc.returncode != 0:
        return "already gone"
    if dry_run:
        return "would remove"
    _docker(["network", "rm", res.name], host)
    return "removed"


@register_remover("dockerd")
def remove_dockerd(res: Resource, dry_run: bool = False) -> str:
    """Stop a private dockerd by its recorded PID (only if that PID is still a dockerd with
    the recorded data root and start time), unmount and remove its directories, delete its
    namespace."""
    from ..dockerd import stop_dockerd
    from ..state import process_alive

    info = res.info
    pid = info.get("pid")
    alive = pid is not None and process_alive(int(pid), info.get("start_time"))
    netns = str(info.get("netns") or "")
    if netns and not netns.startswith(NAME_PREFIX):
        raise NetemuError(f"refusing to delete namespace {netns!r}: not one netemu names")
    leftovers = [p for p in info.get("remove") or [] if Path(p).exists()]
    if not alive and not leftovers and not (netns and Path("/run/netns", netns).exists()):
        return "already gone"
    if dry_run:
        return f"would stop pid {pid}" if alive else "would remove its files and namespace"
    stop_dockerd(
        pid=int(pid) if alive else None,
        data_root=info.get("data_root"),
        exec_root=info.get("exec_root"),
        netns=netns or None,
        remove=leftovers,
    )
    return f"stopped pid {pid}" if alive else "removed its files and namespace"
