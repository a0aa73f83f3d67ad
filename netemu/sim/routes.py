"""Where the simulator gets each epoch's links and routes: the controller's own
:class:`~netemu.control.controller.EpochComputer`, in this process or one epoch ahead in a
second process.

For Starlink shell 1 the all-pairs route computation takes about 0.4 s per epoch and holds the
GIL, so a thread would not help; :class:`RouteWorker` runs it in a child process while the main
process simulates the previous epoch, as the live controller pipelines epoch k + 1 during
epoch k. The matrices come back through two shared-memory slots (epoch k in slot k % 2; the
worker only writes epoch k + 1 after the main process has moved on to epoch k). Both sources
give identical data, so the choice never changes a result (tests/sim/test_sim.py).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
import traceback

import numpy as np

from ..control.controller import EpochComputer
from ..control.mqtt import encode_json
from ..errors import NetemuError
from .tables import table_payload_bytes

__all__ = ["EpochData", "LocalRoutes", "RouteWorker"]

log = logging.getLogger(__name__)

#: The matrices a node's table is read from: (name, source dict, dtype).
_ARRAYS = (
    ("next_hop", "sig", np.int64),
    ("hold", "sig", np.bool_),
    ("valid_until_ns", "sig", np.int64),
    ("valid_from_ns", "raw", np.int64),
    ("arrival_ns", "raw", np.int64),
    ("hops", "raw", np.int64),
)


@dataclasses.dataclass
class EpochData:
    """One epoch as the simulator uses it: the ``epochs.csv`` row, the nodes whose table
    changed, the link table as published (JSON bytes), the bytes of the table payloads, the
    matrices (``sig`` / ``raw`` as in ``EpochComputer.last_epoch``) and the wall time the
    computation took."""

    epoch: int
    row: dict
    route_changes: int
    published: tuple[int, ...]
    links_json: bytes
    table_bytes: int
    last_epoch: dict
    compute_s: float
    plan_ms: float = 0.0


def _compute(computer: EpochComputer, k: int) -> EpochData:
    t = time.perf_counter()
    result = computer.compute(k, payloads=False)
    compute_s = time.perf_counter() - t
    last = computer.last_epoch
    return EpochData(
        epoch=k,
        row=result.row(),
        route_changes=result.route_changes,
        published=result.published,
        links_json=encode_json(result.links),
        table_bytes=table_payload_bytes(computer, last),
        last_epoch=last,
        compute_s=compute_s,
        plan_ms=computer.plan_ms,
    )


class LocalRoutes:
    """Epochs computed in this process, when asked."""

    def __init__(self, scenario, *, routing, epoch_ns: int, duration_ns: int):
        self.computer = EpochComputer(
            scenario, scheme=routing, epoch_ns=epoch_ns, duration_ns=duration_ns
        )

    def start(self) -> None:
        self.computer.prepare()

    def get(self, k: int) -> EpochData:
        return _compute(self.computer, k)

    def close(self) -> None:
        pass


class RouteWorker:
    """Epochs computed one ahead in a child process. Use :meth:`start`, then :meth:`get` for
    k = 0, 1, 2, ... in order, then :meth:`close` (also on errors: it ends the child by its
    PID and frees the shared memory).

    The child is forked (Linux), not spawned: a spawned child re-imports the caller's main
    module, which breaks every script that calls :func:`~netemu.sim.simulate` without an
    ``if __name__ == "__main__"`` guard, and would load the scenario again."""

    def __init__(self, scenario, n_nodes: int, *, routing, epoch_ns: int, duration_ns: int):
        from multiprocessing import shared_memory

        self._args = (scenario, routing, int(epoch_ns), int(duration_ns))
        self.n_epochs = -(-int(duration_ns) // int(epoch_ns))
        self._n = n_nodes
        self._shm = []
        self._slots: list[dict] = []
        for _ in range(2):
            slot = {}
            for name, _, dtype in _ARRAYS:
                size = n_nodes * n_nodes * np.dtype(dtype).itemsize
                shm = shared_memory.SharedMemory(create=True, size=max(size, 1))
                self._shm.append(shm)
                slot[name] = np.ndarray((n_nodes, n_nodes), dtype=dtype, buffer=shm.buf)
            self._slots.append(slot)
        self._proc = None
        self._conn = None

    def start(self) -> None:
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        names = [[s.name for s in self._shm[i * len(_ARRAYS) : (i + 1) * len(_ARRAYS)]]
                 for i in range(2)]  # fmt: skip
        self._proc = ctx.Process(
            target=_worker_main,
            args=(child, *self._args, names, self._n),
            name="netemu-sim-routes",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self._conn.send(0)

    def get(self, k: int) -> EpochData:
        try:
            msg = self._conn.recv()
        except EOFError:
            raise NetemuError("the route worker process ended unexpectedly") from None
        if msg[0] == "error":
            raise NetemuError(f"route computation failed in the worker:\n{msg[1]}")
        _, data, has_hops = msg
        if data.epoch != k:
            raise NetemuError(f"route worker sent epoch {data.epoch}, expected {k}")
        slot = self._slots[k % 2]
        sig = {n: slot[n] for n, src, _ in _ARRAYS if src == "sig"}
        raw = {n: slot[n] for n, src, _ in _ARRAYS if src == "raw"}
        if not has_hops:
            raw["hops"] = None
        data.last_epoch = {**data.last_epoch, "sig": sig, "raw": {**data.last_epoch["raw"], **raw}}
        if k + 1 < self.n_epochs:
            self._conn.send(k + 1)  # the slot of epoch k - 1 is free now
        return data

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                self._conn.send(None)
            except (OSError, ValueError):
                pass
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()  # our own child, by its PID
                proc.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._slots = []
        for shm in self._shm:
            shm.close()
            shm.unlink()
        self._shm = []


def _worker_main(conn, scenario, routing, epoch_ns, duration_ns, names, n) -> None:
    from multiprocessing import shared_memory

    shms = []
    try:
        slots = []
        for slot_names in names:
            slot = {}
            for (name, _, dtype), shm_name in zip(_ARRAYS, slot_names, strict=True):
                shm = shared_memory.SharedMemory(name=shm_name)
                shms.append(shm)
                slot[name] = np.ndarray((n, n), dtype=dtype, buffer=shm.buf)
            slots.append(slot)
        computer = EpochComputer(
            scenario, scheme=routing, epoch_ns=epoch_ns, duration_ns=duration_ns
        )
        computer.prepare()
        while True:
            try:
                k = conn.recv()
            except EOFError:
                return  # the simulator is gone
            if k is None:
                return
            data = _compute(computer, k)
            slot = slots[k % 2]
            sig, raw = data.last_epoch["sig"], data.last_epoch["raw"]
            for name, src, _ in _ARRAYS:
                value = (sig if src == "sig" else raw)[name]
                if value is not None:
                    np.copyto(slot[name], value)
            has_hops = raw["hops"] is not None
            data.last_epoch = {
                "epoch": data.last_epoch["epoch"],
                "t_ns": data.last_epoch["t_ns"],
                "publish": data.last_epoch["publish"],
                "raw": {"t_ns": raw["t_ns"], "scheme": raw["scheme"]},
            }
            conn.send(("ok", data, has_hops))
    except BaseException:  # noqa: BLE001 - reported to the simulator, which raises
        try:
            conn.send(("error", traceback.format_exc()))
        except (OSError, ValueError):
            pass
    finally:
        for shm in shms:
            shm.close()
