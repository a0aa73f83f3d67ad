"""``netemu run``: start the broker, the fabric and one process per node, run the controller,
stop everything in order, and build the results (docs/runtime.md, "Start, epochs, stop").

:func:`run_emulation` is the whole run as one call. Whatever happens (an exception, Ctrl-C,
SIGTERM, a node crash, the fabric dying) every child process is ended by its PID (SIGTERM,
SIGKILL after 3 s) and the results are built from what is on disk. A node that dies during the
run is not fatal (the controller routes around it); the fabric or the broker dying is.

>>> summary = run_emulation("topologies/demo-small.yaml", duration_s=10)  # doctest: +SKIP
>>> summary["packets"]["delivered"]                                         # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import NetemuError
from ..timebase import NS_PER_S, format_utc
from .config import FabricHostConfig, NodeHostConfig, save_config
from .external import external_env, external_values, resolve_externals, substitute
from .isolation import Isolation, NodeSlot, isolation_class, make_isolation
from .layout import RunLayout
from .state import STATE_FILE, RunState
from .supervisor import ProcessSupervisor

__all__ = ["DTN_EPOCH_UTC", "dtn_ns", "new_run_id", "run_emulation"]

log = logging.getLogger(__name__)

#: DTN time 0 (RFC 9171 section 4.2.6).
DTN_EPOCH_UTC = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: Time the processes get to come up: a base plus a share per process (two cores start about
#: ten Python processes a second).
READY_TIMEOUT_BASE_S = 20.0
READY_TIMEOUT_PER_PROCESS_S = 0.25
#: How long the nodes, then the fabric, get to exit by themselves after ``run {stopped}``.
EXIT_TIMEOUT_BASE_S = 5.0
KILL_GRACE_S = 3.0


def dtn_ns(utc: dt.datetime) -> int:
    """Nanoseconds from 2000-01-01T00:00:00Z to ``utc`` (DTN time; no leap seconds).

    >>> dtn_ns(dt.datetime(2000, 1, 1, 0, 0, 1, tzinfo=dt.UTC))
    1000000000
    """
    delta = utc.astimezone(dt.UTC) - DTN_EPOCH_UTC
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000


def new_run_id() -> str:
    """A short run id, unique enough for topics on a shared broker (8 hex digits)."""
    return secrets.token_hex(4)


def run_emulation(
    scenario_path: str | os.PathLike,
    *,
    duration_s: float = 60.0,
    epoch_s: float = 1.0,
    routing: str = "snapshot",
    traffic: str | None = "ground-to-ground",
    out: str | os.PathLike | None = None,
    capture: bool = False,
    broker_url: str | None = None,
    broker_kind: str = "amqtt",
    seed: int = 0,
    app_port_base: int | None = None,
    progress: bool = True,
    ready_timeout_s: float | None = None,
    faults: str | os.PathLike | None = None,
    external=None,
    isolation: str = "process",
) -> dict:
    """Run one emulation and return its summary (``OUT/summary.json`` as a dict).

    Without ``broker_url`` a private broker is started on a free loopback port:
    ``broker_kind`` ``"amqtt"`` (the default: embedded, pure Python, nothing to install),
    ``"mosquitto"`` (Debian's broker, faster with hundreds of clients) or ``"auto"`` (mosquitto
    when it is installed, else amqtt). ``out`` defaults to ``out/run-<scenario name>``; a
    previous run's ``OUT/run/`` and ``OUT/captures/`` are removed first. The summary also
    carries ``"run"``: run id, stop reason (``duration``, ``interrupted``, ``stop command``),
    epochs, route changes and nodes that went offline. Raises
    :class:`~netemu.errors.NetemuError` with a clear message when the run cannot start or the
    fabric or broker dies; results are written in every case.

    ``external``: ``NODE=COMMAND`` strings (or a ``{node: command}`` map): those nodes run
    the given program instead of netemu's node (docs/external.md).

    ``isolation``: ``"process"`` (plain processes on loopback), ``"netns"`` (a network
    namespace per node; root) or ``"docker"`` (docs/isolation.md). Whatever a run creates is
    recorded in ``OUT/run/state.json`` and removed at the end; ``netemu clean`` removes what a
    killed run left.
    """
    from ..routing import load_scheme
    from ..scenario import load_scenario

    scenario = load_scenario(Path(scenario_path))
    fault_schedule = []
    if faults is not None:  # a bad fault schedule fails before anything starts
        from ..control.faults import load_fault_schedule

        fault_schedule = load_fault_schedule(faults, scenario)
    load_scheme(routing)  # a bad --routing fails before anything starts
    externals = resolve_externals(external, scenario)
    if broker_kind not in ("auto", "amqtt", "mosquitto"):
        raise NetemuError(f"broker kind must be auto, amqtt or mosquitto, got {broker_kind!r}")
    if duration_s <= 0 or epoch_s <= 0:
        raise NetemuError("duration and epoch must be > 0")
    isolation_class(isolation)  # an unknown --isolation fails before anything starts
    if epoch_s > duration_s:
        raise NetemuError(f"the epoch ({epoch_s:g} s) is longer than the run ({duration_s:g} s)")
    out_dir = Path(out) if out is not None else Path("out") / f"run-{scenario.name}"
    launch = _Launch(
        scenario=scenario,
        scenario_path=str(scenario_path),
        out=out_dir,
        duration_ns=int(round(duration_s * NS_PER_S)),
        epoch_ns=int(round(epoch_s * NS_PER_S)),
        routing=routing,
        traffic_spec=traffic,
        capture=capture,
        broker_url=broker_url,
        broker_kind=broker_kind,
        seed=seed,
        app_port_base=app_port_base,
        progress=progress,
        ready_timeout_s=ready_timeout_s,
        externals=externals,
    )
    launch.isolation_mode = isolation
    launch.fault_schedule = fault_schedule
    launch.faults_file = str(faults) if faults is not None else None
    return launch.execute()


class _Launch:
    """One run: files, processes, controller, stop sequence, results."""

    def __init__(
        self,
        *,
        scenario,
        scenario_path,
        out,
        duration_ns,
        epoch_ns,
        routing,
        traffic_spec,
        capture,
        broker_url,
        broker_kind,
        seed,
        app_port_base,
        progress,
        ready_timeout_s,
        externals=None,
    ):
        self.scenario = scenario
        self.externals = dict(externals or {})  # number -> ExternalNode
        self.scenario_path = scenario_path
        self.out = out
        self.duration_ns = duration_ns
        self.epoch_ns = epoch_ns
        self.routing = routing
        self.traffic_spec = traffic_spec
        self.capture = capture
        self.external_broker = broker_url
        self.broker_url = broker_url
        self.broker_kind = broker_kind
        self.seed = int(seed)
        self.app_port_base = app_port_base
        self.progress = bool(progress) and sys.stderr.isatty()
        self.run_id = new_run_id()
        self.layout = RunLayout(out)
        self.sup = ProcessSupervisor()
        self.broker = None
        self.broker_pid: int | None = None
        self._t_start = time.monotonic()
        self.fabric_port = 0
        self.state = "starting"
        self.app_ports: dict[int, int | None] = {}
        self.run_stats: dict[str, Any] = {}
        self.fatal: NetemuError | None = None
        self.interrupted = False
        self._signals = 0
        n_proc = len(scenario.nodes) + 1
        self._ready_timeout_given = bool(ready_timeout_s)
        self.ready_timeout_s = ready_timeout_s or (
            READY_TIMEOUT_BASE_S + READY_TIMEOUT_PER_PROCESS_S * n_proc
        )
        self.started_utc = format_utc(dt.datetime.now(dt.UTC))
        self.isolation_mode = "process"
        self.isolation: Isolation = make_isolation("process", run_id=self.run_id)
        self.slots = {n.number: NodeSlot(n.name, n.number, i) for i, n in enumerate(scenario.nodes)}
        self.run_state: RunState | None = None
        self.node_broker_url = broker_url

    # -- the run ---------------------------------------------------------------------------------

    def execute(self) -> dict:
        error: BaseException | None = None
        scope = contextlib.ExitStack()
        try:
            self._prepare_out()
            traffic = self._load_traffic()
            self._isolate(scope)
            self._start_broker()
            self._write_configs(traffic)
            self._start_children()
            self._t_start = time.monotonic()
            self._write_run_json()
            asyncio.run(self._drive())
        except BaseException as exc:  # noqa: BLE001 - cleaned up below, then re-raised
            error = exc
        finally:
            self._end_everything()
            self._end_isolation(scope)
        if isinstance(error, asyncio.CancelledError) and self._signals >= 2:
            error = KeyboardInterrupt()  # aborted by a second Ctrl-C
        if isinstance(error, KeyboardInterrupt):
            self.interrupted = True
        if self.state in ("starting", "running"):
            if self.fatal is not None or (error is not None and not self.interrupted):
                self.state = "failed"
            elif self.interrupted:
                self.state = "interrupted"
            else:
                self.state = "finished"
        self._write_run_json()
        t = time.monotonic()
        summary = self._results()
        log.info("results: %.1f s", time.monotonic() - t)
        if error is not None:
            raise error
        if self.fatal is not None:
            raise self.fatal
        return summary

    def _prepare_out(self) -> None:
        self._clean_previous()
        # Files of a previous run in the same directory would mix into the results.
        for old in (self.layout.run_dir, self.layout.captures_dir):
            if old.is_dir():
                shutil.rmtree(old)
        for old in (
            self.layout.summary_json,
            self.layout.deliveries_csv,
            self.layout.latency_png,
            self.layout.topology_png,
        ):
            old.unlink(missing_ok=True)
        self.layout.create()

    def _clean_previous(self) -> None:
        """A killed run that used this --out left resources (namespaces, processes): remove
        them first; a run still going on there is an error."""
        path = self.layout.run_dir / STATE_FILE
        if not path.exists():
            return
        try:
            old = RunState.load(path)
        except NetemuError:
            return
        if old.is_live():
            pid = (old.data.get("launcher") or {}).get("pid")
            raise NetemuError(
                f"a run is going on in {self.out} (launcher pid {pid}); use another --out"
            )
        if old.resources:
            log.warning("removing what the killed run %s in %s left behind", old.run_id, self.out)
            old.remove_all(report=lambda r, what: log.warning("  %s %s: %s", r.kind, r.name, what))
            old.finish("cleaned")

    def _isolate(self, scope: contextlib.ExitStack) -> None:
        """Start recording the run's resources, create its isolation (namespaces...) and run
        the rest inside it (the broker, the fabric and the controller in its services place)."""
        self.run_state = RunState.create(
            self.layout.run_dir,
            run_id=self.run_id,
            out=str(self.out),
            isolation=self.isolation_mode,
        )
        self.sup.state = self.run_state
        self.isolation = make_isolation(
            self.isolation_mode,
            run_id=self.run_id,
            nodes=list(self.slots.values()),
            state=self.run_state,
        )
        self.isolation.check_broker_url(self.external_broker)
        if not self._ready_timeout_given:
            # containers start more slowly than processes (docker: about 0.5 s each here)
            extra_s = getattr(self.isolation, "ready_timeout_per_node_s", 0.0)
            self.ready_timeout_s += extra_s * len(self.slots)
        scope.enter_context(self.isolation)
        scope.enter_context(self.isolation.services())

    def _end_isolation(self, scope: contextlib.ExitStack) -> None:
        try:
            scope.close()
        except Exception:
            log.exception("removing the run's %s isolation failed", self.isolation_mode)
        if self.run_state is not None:
            self.run_state.finish()
            left = self.run_state.resources
            if left:
                log.error(
                    "%d resources of this run are left (%s); `netemu clean --run-dir %s` "
                    "removes them", len(left), ", ".join(f"{r.kind} {r.name}" for r in left[:5]),
                    self.out,
                )  # fmt: skip

    def _load_traffic(self):
        if self.traffic_spec in (None, "", "none"):
            return None
        try:
            from ..traffic import load_traffic
        except ImportError as exc:
            raise NetemuError(f"traffic generation is not available: {exc}") from exc
        return load_traffic(
            self.traffic_spec, self.scenario, duration_ns=self.duration_ns, seed=self.seed
        )

    def _start_broker(self) -> None:
        from ..control.broker import BrokerProcess, wait_for_port
        from ..control.mqtt import parse_broker_url

        if self.external_broker:
            host, port = parse_broker_url(self.external_broker)
            try:
                wait_for_port(host, port, timeout_s=3.0)
            except NetemuError:
                raise NetemuError(
                    f"cannot reach the MQTT broker at {self.external_broker} (is it running? "
                    f"leave out --broker to use the embedded one)"
                ) from None
            self.broker_url = f"mqtt://{host}:{port}"
            return
        kind = self.broker_kind
        if kind == "auto":
            kind = "mosquitto" if _mosquitto_installed() else "amqtt"
        self.broker = BrokerProcess(
            kind,
            log_path=self.layout.log("broker"),
            host=self.isolation.bind_host,
            on_start=self._record_broker,
        )
        self.broker.start()
        self.broker_url = self.broker.url
        self.node_broker_url = f"mqtt://{self.isolation.service_host}:{self.broker.port}"
        self.broker_pid = self.broker.proc.pid
        log.info("broker (%s) on %s, pid %d", kind, self.broker_url, self.broker_pid)

    def _record_broker(self, pid: int) -> None:
        if self.run_state is not None:
            self.run_state.record_process("broker", pid)

    def _common(self) -> dict:
        scenario = self.scenario
        return {
            "run_id": self.run_id,
            "broker_url": self.node_broker_url or self.broker_url,
            "out": str(self.out),
            "epoch_utc": format_utc(scenario.epoch_utc),
            "epoch_dtn_ns": dtn_ns(scenario.epoch_utc),
            "epoch_ns": self.epoch_ns,
            "duration_ns": self.duration_ns,
            "seed": self.seed,
            "log_level": "INFO",
        }

    def _write_configs(self, traffic) -> None:
        from ..control.broker import free_port

        nodes = self.scenario.nodes
        iso = self.isolation
        self.fabric_port = free_port(iso.bind_host, socket.SOCK_DGRAM)
        common = self._common()
        fabric = FabricHostConfig(
            **common,
            udp_host=iso.bind_host,
            udp_port=self.fabric_port,
            node_numbers=[n.number for n in nodes],
            node_names=[n.name for n in nodes],
            node_kinds=[n.kind for n in nodes],
            capture=self.capture,
        )
        save_config(fabric, self.layout.config("fabric"))
        for i, node in enumerate(nodes):
            flows = [f.to_dict() for f in traffic.flows_from(node.number)] if traffic else []
            responders = (
                [r.to_dict() for r in traffic.responders_at(node.number)] if traffic else []
            )
            port = 0 if self.app_port_base is None else int(self.app_port_base) + i
            cfg = NodeHostConfig(
                **common,
                number=node.number,
                name=node.name,
                kind=node.kind,
                fabric_host=iso.service_host,
                fabric_port=self.fabric_port,
                app_host=iso.node_app_host(self.slots[node.number]),
                app_port=port,
                flows=flows,
                responders=responders,
            )
            save_config(cfg, self.layout.config(node.name))
            self.app_ports[node.number] = port or None

    def _start_children(self) -> None:
        py = [sys.executable, "-m", "netemu"]
        self.sup.start(
            "fabric",
            [*py, "fabric", "--config", str(self.layout.config("fabric"))],
            log_path=self.layout.log("fabric"),
        )
        for node in self.scenario.nodes:
            self.sup.start(
                node.name,
                self._wrapped_argv(node, py),
                log_path=self.layout.log(node.name),
                number=node.number,
            )
        log.info("started the fabric and %d nodes", len(self.scenario.nodes))

    def _wrapped_argv(self, node, py: list[str]) -> list[str]:
        """The node's command line, started inside its isolation (namespace, container)."""
        return self.isolation.wrap_node_argv(self.slots[node.number], self._node_argv(node, py))

    def _node_argv(self, node, py: list[str]) -> list[str]:
        """netemu's node, or for an ``--external`` node its own command (placeholders
        replaced, ``NETEMU_*`` variables set through ``env``; docs/external.md)."""
        config = str(self.layout.config(node.name))
        ext = self.externals.get(node.number)
        if ext is None:
            return [*py, "node", "--config", config]
        values = external_values(
            ext,
            kind=node.kind,
            config_path=config,
            fabric_host=self.isolation.service_host,
            fabric_port=self.fabric_port,
            broker_url=self.node_broker_url or self.broker_url,
            run_id=self.run_id,
            epoch_dtn_ns=dtn_ns(self.scenario.epoch_utc),
            out=str(self.out),
        )
        env = [f"{k}={v}" for k, v in external_env(values).items()]
        argv = ["env", *env, *substitute(ext.argv, values)]
        log.info("node %s (%d) is external: %s", node.name, node.number, ext.command)
        return argv

    def _write_run_json(self) -> None:
        pids = {"launcher": os.getpid()}
        if self.broker_pid is not None:
            pids["broker"] = self.broker_pid
        fabric = self.sup.get("fabric")
        if fabric is not None:
            pids["fabric"] = fabric.pid
        nodes = {}
        for node in self.scenario.nodes:
            child = self.sup.get(node.name)
            nodes[node.name] = {
                "number": node.number,
                "pid": child.pid if child is not None else None,
                "app_port": self.app_ports.get(node.number),
                **self.isolation.describe_node(self.slots[node.number]),
            }
            if node.number in self.externals:
                nodes[node.name]["external"] = True
        data = {
            "run_id": self.run_id,
            "state": self.state,
            "broker_url": self.broker_url,
            "scenario": self.scenario_path,
            "scenario_name": self.scenario.name,
            "out": str(self.out),
            "started_utc": self.started_utc,
            "options": self._options(),
            "fabric": {"udp_host": self.isolation.bind_host, "udp_port": self.fabric_port},
            "isolation": self.isolation.describe(),
            "pids": pids,
            "nodes": nodes,
        }
        if self.run_stats:
            data["result"] = self.run_stats
        clock = getattr(getattr(self, "_ctl", None), "clock", None)
        if clock is not None:  # the run clock, for programs without MQTT (docs/external.md)
            data["t0_mono_ns"] = clock.t0_mono_ns
        path = self.layout.run_json
        if not path.parent.is_dir():
            return
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)

    def _options(self) -> dict:
        return {
            "duration_s": self.duration_ns / NS_PER_S,
            "epoch_s": self.epoch_ns / NS_PER_S,
            "routing": self.routing,
            "traffic": self.traffic_spec,
            "capture": self.capture,
            "broker": self.external_broker or self.broker_kind,
            "seed": self.seed,
            "app_port_base": self.app_port_base,
            "isolation": self.isolation_mode,
            "faults": getattr(self, "faults_file", None),
            "external": {
                e.name: {"number": e.number, "command": e.command} for e in self.externals.values()
            },
        }

    # -- asyncio part ----------------------------------------------------------------------------

    async def _drive(self) -> None:
        from ..control.controller import Controller

        loop = asyncio.get_running_loop()
        ctl = Controller(
            self.scenario,
            run_id=self.run_id,
            broker_url=self.broker_url,
            epoch_ns=self.epoch_ns,
            duration_ns=self.duration_ns,
            routing=self.routing,
            layout=self.layout,
            run_info={"out": str(self.out)},
            faults=getattr(self, "fault_schedule", ()),
            process_faults=_ProcessFaults(self),
            external=set(self.externals),
        )
        self._ctl = ctl
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            async with ctl:
                watchdog = asyncio.create_task(self._watchdog(ctl))
                try:
                    await self._run_phases(ctl)
                finally:
                    watchdog.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watchdog
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def _run_phases(self, ctl) -> None:
        with _Display(self.progress) as display:
            ready = await ctl.wait_ready(
                timeout_s=self.ready_timeout_s,
                on_progress=display.ready,
                check=self._check_startup,
            )
            log.info(
                "%s: processes ready after %.1f s",
                "ready" if ready else "stopped",
                time.monotonic() - self._t_start,
            )
            if ready:
                for number, status in ctl.node_status.items():
                    port = status.get("app_port")
                    if isinstance(port, int) and port > 0:
                        self.app_ports[number] = port
                self.state = "running"
                self._write_run_json()
                display.running(ctl, self.scenario)
                try:
                    self.run_stats = await ctl.run(on_epoch=self._on_epoch)
                except NetemuError as exc:
                    self.fatal = self.fatal or exc
        if self.fatal is not None and "broker" in str(self.fatal).lower():
            return  # no broker: nothing to announce; children are ended by PID
        t = time.monotonic()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ctl.stop_run(), timeout=5)
        await self._await_exits()
        log.info("stop sequence: %.1f s", time.monotonic() - t)

    def _on_epoch(self, row: dict) -> None:
        if row.get("epoch") == 0:
            self._write_run_json()  # now with t0_mono_ns

    async def _await_exits(self) -> None:
        # External programs need not know the run stopped: ended by PID now (docs/external.md).
        ext = [c for c in self.sup.children if c.number in self.externals]
        if ext:
            await asyncio.to_thread(self.sup.end, ext, grace_s=KILL_GRACE_S)
        nodes = [c for c in self.sup.children if c.number is not None]
        per_node_s = 0.02 + getattr(self.isolation, "exit_timeout_per_node_s", 0.0)
        deadline = time.monotonic() + EXIT_TIMEOUT_BASE_S + per_node_s * len(nodes)
        while any(c.running for c in nodes) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = [c.name for c in nodes if c.running]
        if left:
            log.warning("%d nodes did not exit after the stop; ending them", len(left))
            await asyncio.to_thread(self.sup.end, [self.sup.get(n) for n in left])
        fabric = self.sup.get("fabric")
        if fabric is not None:
            deadline = time.monotonic() + EXIT_TIMEOUT_BASE_S
            while fabric.running and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

    def _on_signal(self, sig: int) -> None:
        self._signals += 1
        self.interrupted = True
        name = signal.Signals(sig).name
        if self._signals == 1:
            log.warning("%s: stopping the run (again to abort)", name)
            self._ctl.request_stop("interrupted")
        else:
            log.warning("%s again: aborting", name)
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

    def _check_startup(self) -> None:
        """Before every process is ready, any exit is fatal."""
        for child in self.sup.children:
            if not child.running:
                raise NetemuError(
                    f"{child.name} {child.describe_exit()} before it was ready; "
                    f"see {child.log_path}{_tail(child.log_path)}"
                )
        self._check_broker()

    def _check_broker(self) -> None:
        if getattr(self, "broker_restarting", False):
            return  # netemu fault broker-restart: the broker is away on purpose
        if self.broker is not None and self.broker.proc is not None:
            if self.broker.proc.poll() is not None:
                raise NetemuError(
                    f"the MQTT broker exited ({self.broker.proc.returncode}); "
                    f"see {self.layout.log('broker')}"
                )

    async def _watchdog(self, ctl) -> None:
        """Child exits while the run is on: a node is reported, the fabric or broker is fatal."""
        while True:
            await asyncio.sleep(0.2)
            if ctl.progress.state in ("stopping", "stopped"):
                continue
            for child in self.sup.poll_exited():
                if child.number is None:
                    exit_text = child.describe_exit()
                    self._fail(ctl, f"the fabric process {exit_text}; see {child.log_path}")
                elif ctl.clock is not None:
                    log.warning(
                        "node %s (%d) %s; routing around it (see %s)",
                        child.name,
                        child.number,
                        child.describe_exit(),
                        child.log_path,
                    )
                if child.number in self.externals:
                    # it may have no MQTT last will: say offline for it
                    await ctl.mark_offline(child.number)
            try:
                self._check_broker()
            except NetemuError as exc:
                self._fail(ctl, str(exc))

    def _fail(self, ctl, message: str) -> None:
        if self.fatal is None:
            log.error("%s", message)
            self.fatal = NetemuError(message)
        ctl.request_stop("failure")

    # -- after -----------------------------------------------------------------------------------

    def _end_everything(self) -> None:
        with contextlib.suppress(BaseException):
            self.sup.end_all(grace_s=KILL_GRACE_S)
        if self.broker is not None:
            with contextlib.suppress(BaseException):
                self.broker.stop()
                if self.run_state is not None:
                    self.run_state.forget("process", "broker", pid=self.broker_pid)

    def _results(self) -> dict:
        ctl = getattr(self, "_ctl", None)
        stats = dict(self.run_stats)
        if ctl is not None:
            stats.setdefault("stop_reason", ctl.stop_reason)
            stats.setdefault("dead_nodes", sorted(ctl.dead))
            stats.setdefault("epochs", len(ctl.epochs))
        if self.interrupted:
            stats["stop_reason"] = "interrupted"
        stats["run_id"] = self.run_id
        stats["state"] = self.state
        options = {
            **self._options(),
            "run_id": self.run_id,
            "scenario": self.scenario_path,
            "broker_url": self.broker_url,
            "run": stats,
        }
        try:
            from ..results import build_results
        except ImportError as exc:
            log.warning("results are not available (%s); writing a minimal summary", exc)
            summary = {"run": stats, "options": options, "results": "not built"}
            self.layout.summary_json.write_text(json.dumps(summary, indent=1))
            return summary
        try:
            summary = build_results(self.layout, self.scenario, options=options)
        except Exception as exc:
            log.exception("building the results failed")
            return {"run": stats, "options": options, "results_error": str(exc)}
        if not isinstance(summary, dict):
            try:
                summary = json.loads(self.layout.summary_json.read_text())
            except (OSError, ValueError):
                summary = {}
        summary.setdefault("run", stats)
        return summary


class _ProcessFaults:
    """What the controller asks of the launcher for process faults (docs/faults.md): kill and
    start node processes, restart the embedded broker on the same port. Blocking work runs in
    a thread so the controller's loop keeps its epochs."""

    def __init__(self, launch: _Launch):
        self.launch = launch
        self._names = {n.number: n.name for n in launch.scenario.nodes}

    def _child(self, number: int):
        return self.launch.sup.get(self._names[number])

    def node_running(self, number: int) -> bool:
        child = self._child(number)
        return child is not None and child.running

    async def kill_node(self, number: int) -> int:
        """SIGKILL to the node's process (by its PID); its PID."""
        child = self._child(number)
        child.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(child.proc.wait, 5)
        log.warning("fault: killed node %s (pid %d)", child.name, child.pid)
        return child.pid

    async def start_node(self, number: int) -> int:
        """Start the node again with the command and config it had; its new PID."""
        old = self._child(number)
        if old is None or not old.cmd:
            raise NetemuError(f"node {number}: no command to start it again with")
        child = await asyncio.to_thread(
            self.launch.sup.start, old.name, old.cmd, log_path=old.log_path, number=old.number
        )
        self.launch._write_run_json()
        log.warning("fault: started node %s again (pid %d)", child.name, child.pid)
        return child.pid

    def can_restart_broker(self) -> bool:
        return self.launch.broker is not None and not self.launch.external_broker

    async def restart_broker(self) -> dict:
        """Kill the embedded broker (SIGKILL to its PID: a broker stopped with SIGTERM may
        publish its clients' last wills, and every node would look offline) and start it on
        the same port."""
        launch = self.launch
        old_pid = launch.broker_pid
        proc = launch.broker.proc
        launch.broker_restarting = True
        try:
            if proc is not None and proc.poll() is None:
                proc.kill()
                await asyncio.to_thread(proc.wait, 5)
            await asyncio.to_thread(launch.broker.stop)  # reaps it, removes mosquitto's config
            t_stopped = time.monotonic()
            await asyncio.to_thread(launch.broker.start)
        finally:
            launch.broker_restarting = False
        launch.broker_pid = launch.broker.proc.pid
        launch._write_run_json()
        down_ms = (time.monotonic() - t_stopped) * 1e3
        log.warning(
            "fault: broker restarted (pid %s -> %d, down %.0f ms)", old_pid, launch.broker_pid,
            down_ms,
        )  # fmt: skip
        return {"old_pid": old_pid, "pid": launch.broker_pid, "down_ms": round(down_ms, 1)}


def _mosquitto_installed() -> bool:
    return shutil.which("mosquitto") is not None or os.path.exists("/usr/sbin/mosquitto")


def _tail(path: Path | None, lines: int = 5) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    if not text:
        return ""
    return "\n  " + "\n  ".join(text)


class _Display:
    """Live progress on stderr (rich): a bar while processes start, then run numbers at 4 Hz.
    Does nothing when disabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress = None
        self._task = None
        self._live = None

    def __enter__(self) -> _Display:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._console = Console(stderr=True)
            self._progress = Progress(
                TextColumn("processes ready"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._progress.start()
        return self

    def ready(self, done: int, total: int) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task("ready", total=total)
        self._progress.update(self._task, completed=done)

    def running(self, ctl, scenario) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        from rich.live import Live

        def render():
            return _render(ctl.snapshot())

        self._live = Live(
            get_renderable=render, console=self._console, refresh_per_second=4, transient=False
        )
        self._live.start()

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._live is not None:
            self._live.stop()


def _render(p: dict):
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    for _ in range(4):
        table.add_column()
    epoch = p["epoch"]
    t_s = (p["t_ns"] or 0) / NS_PER_S
    table.add_row(
        "[bold]scenario time[/]",
        f"{p['utc']} (t = {t_s:.1f} s)",
        "[bold]epoch[/]",
        f"{max(epoch, 0)}/{p['n_epochs']}  ({p['compute_ms']:.0f} ms)",
    )
    table.add_row(
        "[bold]delivered[/]",
        f"{p['delivered']} data packets",
        "[bold]dropped[/]",
        str(p["dropped"]),
    )
    table.add_row(
        "[bold]frames in flight[/]",
        str(p["frames_in_flight"]),
        "[bold]route changes[/]",
        str(p["route_changes_total"]),
    )
    table.add_row(
        "[bold]nodes alive[/]",
        f"{p['nodes_alive']}/{p['nodes_total']}",
        "[bold]links up[/]",
        str(p["links_up"]),
    )
    return table


def read_run_json(out: str | os.PathLike) -> dict:
    """The ``OUT/run/run.json`` of a run (for ``netemu ping``/``trace`` and tests)."""
    path = RunLayout(Path(out)).run_json
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NetemuError(f"{path}: cannot read the run description: {exc}") from exc


def child_alive(pid: int) -> bool:
    """Whether a process with this PID exists and is not a zombie (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
