"""Real containers: ``netemu run --isolation docker`` and ``netemu compose`` + ``docker-compose
up`` on the 8-node ring8 scenario, with the image built without a registry (debootstrap +
``docker import``) and, where no engine runs, a private dockerd in its own network namespace.

Skipped with the reason when neither an engine nor a private one (root, Debian's docker.io)
is available, or debootstrap is missing and the engine has no image; ``NETEMU_DOCKER_TESTS=0``
skips them too. Time on a 2-vCPU machine: the first build of the image 2-3 min (cached in
~/.cache/netemu/images), then about 40 s for the run and 40 s for compose.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from netemu.runtime import dockerd, images
from netemu.runtime.compose import write_compose
from netemu.runtime.isolation.docker import docker_env_for, private_engine
from netemu.runtime.launcher import run_emulation
from netemu.runtime.state import RunState

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]

DATA = Path(__file__).parent / "data"
RING = DATA / "ring8.yaml"
TRAFFIC = DATA / "ring8-traffic.yaml"


def _why_not() -> str | None:
    if os.environ.get("NETEMU_DOCKER_TESTS", "1") == "0":
        return "NETEMU_DOCKER_TESTS=0"
    if shutil.which("docker") is None:
        return "the docker client is not installed (apt-get install -y docker.io)"
    can_build = os.geteuid() == 0 and (
        shutil.which("debootstrap") is not None or os.path.exists("/usr/sbin/debootstrap")
    )
    if dockerd.engine_reachable():
        if not can_build and not images.image_exists(images.default_image_tag()):
            return (
                f"the engine has no {images.default_image_tag()} image and it cannot be built "
                "here (root and debootstrap needed; or docker build -f docker/Dockerfile)"
            )
        return None
    why = dockerd.docker_available()
    if why:
        return f"no Docker engine runs and a private one cannot start: {why}"
    if not can_build:
        return "debootstrap is not installed: the image cannot be built without a registry"
    return None


@pytest.fixture(scope="module")
def docker_ok():
    why = _why_not()
    if why:
        pytest.skip(why)


def _netns() -> set[str]:
    try:
        return {p.name for p in Path("/run/netns").iterdir()}
    except OSError:
        return set()


def _dockerds() -> set[int]:
    """PIDs of dockerd processes whose data root is below a netemu directory."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"dockerd") and any(b"netemu" in a for a in argv):
            found.add(int(proc.name))
    return found


@pytest.fixture
def nothing_left():
    """Fails the test when it leaves a private dockerd or an engine namespace behind."""
    before_ns, before_d = _netns(), _dockerds()
    yield
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new_ns = {n for n in _netns() - before_ns if n.startswith("ne-dockerd-")}
        new_d = _dockerds() - before_d
        if not new_ns and not new_d:
            break
        time.sleep(0.2)
    assert not new_ns, f"namespaces left: {new_ns}"
    assert not new_d, f"dockerd processes left: {new_d}"


def test_run_isolation_docker(docker_ok, nothing_left, tmp_path):
    """Every node in a container; ring-p01-s04 as ``--external NODE=IMAGE ARGS`` (the netemu
    image standing in for a user's, its command given here: it writes the NETEMU_* variable
    it got, then runs netemu's node)."""
    out = tmp_path / "out"
    script = 'echo "$NETEMU_NODE_NUMBER $NETEMU_FABRIC_HOST" > {out}/ext-env.txt; '
    script += "exec python3 -m netemu node --config {config}"
    external = f"ring-p01-s04={images.default_image_tag()} sh -c '{script}'"
    t = time.monotonic()
    summary = run_emulation(
        RING,
        duration_s=8,
        routing="snapshot",
        traffic=str(TRAFFIC),
        out=out,
        isolation="docker",
        progress=False,
        ready_timeout_s=180,
        external=[external],
    )
    took = time.monotonic() - t
    packets = summary["packets"]
    assert packets["originated"] >= 200
    assert packets["delivered"] >= 0.9 * packets["originated"], packets
    assert packets["unaccounted"] == 0
    run = json.loads((out / "run" / "run.json").read_text())
    iso = run["isolation"]
    assert iso["mode"] == "docker" and iso["network"].startswith("ne-")
    subnet = ipaddress.ip_network(iso["subnet"])
    assert ipaddress.ip_address(iso["services_address"]) in subnet
    containers = {v["container"] for v in run["nodes"].values()}
    assert len(containers) == 8
    assert run["nodes"]["ring-p01-s04"].get("external") is True
    number, fabric_host = (out / "ext-env.txt").read_text().split()
    assert number == "4" and fabric_host == iso["services_address"]
    for number in [v["number"] for v in run["nodes"].values()]:
        assert (out / "run" / "final" / f"{number}.json").is_file()
    # every node attached to the fabric from its own container address on the run network
    fabric_log = (out / "run" / "logs" / "fabric.log").read_text()
    addrs = re.findall(r"attached from \('([0-9.]+)', \d+\)", fabric_log)
    assert len(set(addrs)) == 8, addrs
    assert all(ipaddress.ip_address(a) in subnet for a in addrs)
    # nothing of the run is left: state file empty, no container or network on the engine
    state = RunState.load(out / "run")
    assert state.resources == [] and state.data["state"] == "ended"
    if iso["engine"] == "host":
        env = docker_env_for(iso["docker_host"])
        ps = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label=org.netemu.run={run['run_id']}", "-q"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert ps.stdout.strip() == ""
    else:
        assert iso["engine_netns"] not in _netns()
    print(f"docker run of 8 nodes: {took:.1f} s, {packets['delivered']} delivered")


@pytest.fixture
def compose_engine(docker_ok):
    """The host's engine, else a private one (images kept in ~/.cache/netemu/dockerd)."""
    if dockerd.engine_reachable():
        yield {"DOCKER_HOST": os.environ["DOCKER_HOST"]} if "DOCKER_HOST" in os.environ else {}
        return
    with private_engine() as engine:
        yield engine.env


def test_compose_up(compose_engine, nothing_left, tmp_path):
    tool = None
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
    if probe.returncode == 0:
        tool = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        tool = ["docker-compose"]
    else:
        pytest.skip("neither docker compose nor docker-compose is installed")
    env = {**os.environ, **compose_engine}
    tag = images.build_image(env=compose_engine)
    project = write_compose(
        RING,
        tmp_path / "deploy" / "docker-compose.yml",
        image=tag,
        duration_s=8,
        routing="snapshot",
        traffic=str(TRAFFIC),
    )
    name = f"ne-test-{secrets.token_hex(3)}"
    base = [*tool, "-f", str(project.path), "-p", name]
    t = time.monotonic()
    try:
        up = subprocess.run(
            [*base, "up", "--no-color"], env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        subprocess.run(
            [*base, "down", "-v", "--remove-orphans"], env=env, capture_output=True, timeout=120
        )
    took = time.monotonic() - t
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
    assert "run finished" in up.stdout
    summary = json.loads((project.out / "summary.json").read_text())
    packets = summary["packets"]
    assert packets["originated"] >= 200
    assert packets["delivered"] >= 0.9 * packets["originated"], packets
    assert packets["unaccounted"] == 0
    finals = {p.name for p in (project.out / "run" / "final").iterdir()}
    assert finals == {f"{n}.json" for n in range(1, 9)} | {"fabric.json"}
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={name}", "-q"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.strip() == ""
    print(f"compose up of 8 nodes: {took:.1f} s, {packets['delivered']} delivered")


def test_clean_after_a_killed_docker_run(docker_ok, nothing_left, tmp_path):
    """SIGKILL the launcher of a docker run while it runs: `netemu clean --run-dir` ends the
    `docker run` clients, removes the containers and the network, and stops a private
    engine by its PID."""
    import signal
    import sys

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "netemu", "run", str(RING), "--isolation", "docker"]
    cmd += ["--duration", "120s", "--routing", "snapshot", "--traffic", "none"]
    cmd += ["--out", str(out), "--no-progress"]
    log = open(tmp_path / "launcher.log", "wb")  # noqa: SIM115 - closed below
    launcher = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    run_json = out / "run" / "run.json"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and launcher.poll() is None:
            try:
                if json.loads(run_json.read_text()).get("state") == "running":
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        assert launcher.poll() is None, (tmp_path / "launcher.log").read_text()[-2000:]
        assert json.loads(run_json.read_text())["state"] == "running"
    finally:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        log.close()
    state = RunState.load(out / "run")
    kinds = {r.kind for r in state.resources}
    assert {"network", "container", "process"} <= kinds
    run = json.loads(run_json.read_text())
    iso = run["isolation"]
    clean = subprocess.run(
        [sys.executable, "-m", "netemu", "clean", "--run-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"network   {iso['network']}: removed" in clean.stdout
    state = RunState.load(out / "run")
    assert state.resources == []
    if iso["engine"] == "private":
        assert "dockerd" in kinds and "stopped pid" in clean.stdout
        assert iso["engine_netns"] not in _netns()
    else:
        env = docker_env_for(iso["docker_host"])
        ps = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label=org.netemu.run={run['run_id']}", "-q"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert ps.stdout.strip() == ""
