"""``--isolation netns``: every node in its own Linux network namespace (root only).

Nothing is added to the namespace netemu is started in. Per run::

    ne-RUNID-hub        bridge br0 10.77.0.1/16, lo; one port vI per node
      |                 (the broker, the fabric and the launcher's controller run here)
      +-- vI  ====  eth0  ne-RUNID-NUMBER   10.77.X.Y/16, lo (node NUMBER, index I)

Each namespace is recorded in the run state file before ``ip netns add`` creates it, each veth
before ``ip link add``; the veth is created inside the hub (its peer goes straight into the
node's namespace), so it never appears in the root namespace. The launcher switches its own
thread into the hub namespace (``setns``) to start the broker and the fabric (children inherit
it) and to run the controller, then back. Nodes start with ``ip netns exec NAME``.

Removal: deleting a node's namespace deletes its ``eth0`` and with it the peer in the hub;
deleting the hub deletes the bridge. The removers of kinds ``netns`` and ``veth`` (registered
here for ``netemu clean``) only touch names that start with ``ne-``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ...errors import NetemuError
from ..state import Resource, register_remover
from .base import Isolation, NodeSlot

__all__ = ["NETNS_DIR", "NetnsIsolation", "list_netns", "node_address", "setns"]

log = logging.getLogger(__name__)

#: Where ``ip netns`` keeps its named namespaces.
NETNS_DIR = Path("/run/netns")
#: The run's private subnet (inside its own namespaces only): the hub is .0.1, nodes from .0.2.
SUBNET_PREFIX = "10.77"
PREFIX_LEN = 16
HUB_ADDRESS = f"{SUBNET_PREFIX}.0.1"
MAX_NODES = 65_533
NAME_PREFIX = "ne-"
_CLONE_NEWNET = 0x40000000


def node_address(index: int) -> str:
    """The address of the node with scenario index ``index`` (0-based).

    >>> node_address(0), node_address(300)
    ('10.77.0.2', '10.77.1.46')
    """
    if not 0 <= index < MAX_NODES:
        raise NetemuError(f"--isolation netns supports up to {MAX_NODES} nodes")
    host = index + 2
    return f"{SUBNET_PREFIX}.{host >> 8}.{host & 0xFF}"


def list_netns() -> list[str]:
    """Names of the namespaces ``ip netns`` knows (the files in ``/run/netns``)."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except OSError:
        return []


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open as ``fd`` (``setns(2)``;
    Python 3.11's ``os`` has no ``setns``)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetemuError(f"setns into a network namespace failed: {os.strerror(err)}")


def _ip(args: Sequence[str], *, batch: Sequence[str] | None = None, check: bool = True) -> str:
    cmd = ["ip", *args]
    if batch is not None:
        cmd += ["-batch", "-"]
    proc = subprocess.run(
        cmd,
        input="".join(line + "\n" for line in batch) if batch is not None else None,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        what = " ".join(cmd) if batch is None else f"{' '.join(cmd)} ({len(batch)} commands)"
        raise NetemuError(f"`{what}` failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


class NetnsIsolation(Isolation):
    """One network namespace per node around a hub namespace (see the module docstring).
    ``euid`` and ``which`` are there for tests (the root and ``ip`` checks)."""

    mode = "netns"
    external_broker_ok = False

    def __init__(
        self,
        *,
        run_id: str,
        nodes: Sequence[NodeSlot] = (),
        state=None,
        euid: Callable[[], int] = os.geteuid,
        which: Callable[[str], str | None] = shutil.which,
    ):
        super().__init__(run_id=run_id, nodes=nodes, state=state)
        self._euid = euid
        self._which = which
        self.hub = f"{NAME_PREFIX}{run_id}-hub"
        self._created: list[str] = []  # namespaces, in creation order

    # -- names and addresses

    def netns_of(self, node: NodeSlot) -> str:
        return f"{NAME_PREFIX}{self.run_id}-{node.number}"

    @staticmethod
    def hub_port(node: NodeSlot) -> str:
        """The hub's end of the node's veth (interface names have at most 15 characters)."""
        return f"v{node.index}"

    @property
    def bind_host(self) -> str:
        return HUB_ADDRESS

    def node_app_host(self, node: NodeSlot) -> str:
        # Inside the node's own namespace: 127.0.0.1 there, and its address from the hub.
        return "0.0.0.0"

    # -- checks

    def check(self) -> None:
        missing = []
        if self._euid() != 0:
            missing.append("root (network namespaces and veths need CAP_SYS_ADMIN/CAP_NET_ADMIN)")
        if self._which("ip") is None:
            missing.append("the `ip` command (Debian package iproute2)")
        if missing:
            raise NetemuError(
                "--isolation netns needs " + " and ".join(missing) + "; run as root, or use "
                "--isolation process"
            )
        if len(self.nodes) > MAX_NODES:
            raise NetemuError(f"--isolation netns supports up to {MAX_NODES} nodes")
        taken = [n for n in list_netns() if n.startswith(f"{NAME_PREFIX}{self.run_id}-")]
        if taken:
            raise NetemuError(f"network namespaces of run {self.run_id} exist already: {taken}")

    # -- lifetime

    def setup(self) -> None:
        mask = f"/{PREFIX_LEN}"
        names = [self.hub] + [self.netns_of(n) for n in self.nodes]
        if self.state is not None:  # everything recorded before anything is created
            items = [("netns", self.hub, {})]
            for node in self.nodes:
                ns = self.netns_of(node)
                items.append(("netns", ns, {}))
                items.append(("veth", self.hub_port(node), {"netns": self.hub, "peer_netns": ns}))
            self.state.record_many(items)
        before = set(list_netns())
        try:
            _ip([], batch=[f"netns add {name}" for name in names])
        finally:
            # Ours are those that exist now and did not before (a batch stops at an error).
            present = set(list_netns()) - before
            self._created = [name for name in names if name in present]
            if self.state is not None:
                for name in names:
                    if name not in present:
                        self.state.forget("netns", name)
        hub = [
            "link set lo up",
            "link add br0 type bridge",
            f"addr add {HUB_ADDRESS}{mask} dev br0",
        ]
        for node in self.nodes:
            port = self.hub_port(node)
            hub += [
                f"link add {port} type veth peer name eth0 netns {self.netns_of(node)}",
                f"link set {port} master br0",
                f"link set {port} up",
            ]
        hub.append("link set br0 up")
        _ip(["-n", self.hub], batch=hub)

        def configure(node: NodeSlot) -> None:
            lines = ["link set lo up", f"addr add {node_address(node.index)}{mask} dev eth0"]
            _ip(["-n", self.netns_of(node)], batch=[*lines, "link set eth0 up"])

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(configure, self.nodes))
        log.info("netns: hub %s and %d node namespaces", self.hub, len(self.nodes))

    def teardown(self) -> None:
        """Delete the namespaces (nodes first, then the hub); each one deleted is forgotten,
        with its veth."""
        names = list(reversed(self._created))
        if not names:
            return
        _ip(["-force"], batch=[f"netns del {n}" for n in names], check=False)
        left = set(list_netns())
        ports = {self.netns_of(n): self.hub_port(n) for n in self.nodes}
        for name in names:
            if name in left:
                continue
            self._created.remove(name)
            if self.state is not None:
                if name in ports:
                    self.state.forget("veth", ports[name])
                self.state.forget("netns", name)
        if self.state is not None and self.hub not in left:
            for port in ports.values():  # recorded, but the run stopped before creating them
                self.state.forget("veth", port)
        still = [n for n in names if n in left]
        if still:
            raise NetemuError(f"network namespaces left after the run: {still}")

    # -- running inside

    @contextlib.contextmanager
    def services(self) -> Iterator[None]:
        """The calling thread runs in the hub namespace inside the block (threads and children
        it starts meanwhile too), and back in its own namespace after."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            hub = os.open(NETNS_DIR / self.hub, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(hub)
            finally:
                os.close(hub)
            try:
                yield
            finally:
                setns(own)
        finally:
            os.close(own)

    def wrap_node_argv(self, node: NodeSlot, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns_of(node), *argv]

    def describe(self) -> dict:
        return {
            "mode": self.mode,
            "hub_netns": self.hub,
            "subnet": f"{SUBNET_PREFIX}.0.0/{PREFIX_LEN}",
            "services_address": HUB_ADDRESS,
        }

    def describe_node(self, node: NodeSlot) -> dict:
        return {"netns": self.netns_of(node), "address": node_address(node.index)}


# -- removers for netemu clean ---------------------------------------------------------------------


def _own_name(res: Resource) -> None:
    if not res.name.startswith(NAME_PREFIX) and res.kind == "netns":
        raise NetemuError(f"refusing to delete namespace {res.name!r}: not one netemu names")


@register_remover("netns")
def remove_netns(res: Resource, dry_run: bool = False) -> str:
    """``ip netns del NAME`` for a namespace named ``ne-...``."""
    _own_name(res)
    if res.name not in list_netns():
        return "already gone"
    if dry_run:
        return "would delete"
    _ip(["netns", "del", res.name])
    if res.name in list_netns():
        raise NetemuError(f"namespace {res.name} is still there")
    return "deleted"


@register_remover("veth")
def remove_veth(res: Resource, dry_run: bool = False) -> str:
    """Delete the veth inside its recorded namespace (gone with that namespace anyway)."""
    ns = str(res.info.get("netns") or "")
    if not ns.startswith(NAME_PREFIX) or ns not in list_netns():
        return "already gone (with its namespace)"
    names = _ip(["-n", ns, "-o", "link", "show"], check=False)
    if f" {res.name}@" not in names and f" {res.name}:" not in names:
        return "already gone"
    if dry_run:
        return f"would delete (in {ns})"
    _ip(["-n", ns, "link", "del", res.name])
    return f"deleted (in {ns})"
