"""The docker pieces that need no engine: the image's dependency closure and mirror lookup,
the private engine's checks and PID safety, the docker isolation's ``docker run`` command
lines and errors, and the removers of ``netemu clean`` when the engine is gone."""

from __future__ import annotations

import os
import sys

import pytest

from netemu.errors import NetemuError
from netemu.runtime import dockerd, images
from netemu.runtime.isolation import NodeSlot, isolation_class
from netemu.runtime.isolation.docker import (
    DockerIsolation,
    remove_container,
    remove_dockerd,
    remove_network,
)
from netemu.runtime.state import Resource, RunState, remover_for


def test_dependency_closure_follows_requirement_extras():
    names = {d.metadata["Name"].lower().replace("_", "-") for d in images.dependency_closure()}
    assert {"netemu", "numpy", "aiomqtt", "paho-mqtt", "amqtt", "uvloop"} <= names
    # amqtt needs pwdlib[argon2]: the extra's own requirement must be in the image
    assert "argon2-cffi" in names
    # netemu's own dev extra is not
    assert "pytest" not in names and "ruff" not in names


def test_host_mirror_reads_deb822_and_one_line_sources(tmp_path):
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.invalid/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    one_line = tmp_path / "x.list"
    one_line.write_text("deb [arch=amd64] http://other.invalid/debian trixie main\n")
    assert images.host_mirror("bookworm", [sources, one_line]) == "http://mirror.invalid/debian"
    assert images.host_mirror("trixie", [sources, one_line]) == "http://other.invalid/debian"
    assert images.host_mirror("sid", [sources, one_line]) is None


def test_image_tarball_rejects_bad_options(tmp_path):
    with pytest.raises(NetemuError, match="unknown suite"):
        images.image_tarball(tmp_path, suite="hamm")
    with pytest.raises(NetemuError, match="install must be"):
        images.image_tarball(tmp_path, install="conda")


def test_stop_dockerd_never_signals_another_program(tmp_path):
    # our own PID is not a dockerd: nothing is signalled (we are still here), dirs removed
    victim = tmp_path / "data"
    victim.mkdir()
    dockerd.stop_dockerd(pid=os.getpid(), data_root=str(victim), remove=[str(victim)])
    assert not victim.exists()
    assert dockerd._is_dockerd(os.getpid()) is False


def test_private_engine_paths_need_a_start():
    engine = dockerd.PrivateDockerEngine()
    assert engine.netns.startswith("ne-dockerd-")
    with pytest.raises(NetemuError, match="not started"):
        _ = engine.socket
    engine.stop()  # not started: nothing to do


def _iso(tmp_path, **kw) -> DockerIsolation:
    state = RunState.create(tmp_path, run_id="c0ffee00", out=str(tmp_path), register=False)
    iso = DockerIsolation(
        run_id="c0ffee00", nodes=[NodeSlot("a", 1, 0), NodeSlot("b", 2, 1)], state=state, **kw
    )
    iso.gateway, iso.subnet = "172.30.0.1", "172.30.0.0/16"
    return iso


def test_isolation_is_registered():
    assert isolation_class("docker") is DockerIsolation
    assert remover_for("container") is remove_container
    assert remover_for("network") is remove_network
    assert remover_for("dockerd") is remove_dockerd


def test_wrap_node_argv_runs_the_node_in_the_image(tmp_path):
    iso = _iso(tmp_path, image="netemu-node:t")
    iso.docker_host = "unix:///x/docker.sock"
    node = iso.nodes[0]
    argv = iso.wrap_node_argv(node, [sys.executable, "-m", "netemu", "node", "--config", "c.json"])
    assert argv[:4] == ["docker", "-H", "unix:///x/docker.sock", "run"]
    assert argv[-7:] == ["netemu-node:t", "python3", "-m", "netemu", "node", "--config", "c.json"]
    i = argv.index("--name")
    assert argv[i + 1] == "ne-c0ffee00-1"
    assert argv[argv.index("--network") + 1] == "ne-c0ffee00"
    out = str(tmp_path.resolve())
    assert argv[argv.index("--volume") + 1] == f"{out}:{out}"
    assert argv[argv.index("--workdir") + 1] == os.getcwd()
    assert "--init" in argv
    assert "--rm" not in argv  # the client would wait for the engine to remove it
    # recorded before it exists, so netemu clean finds it after a crash
    recorded = {(r.kind, r.name) for r in iso.state.resources}
    assert ("container", "ne-c0ffee00-1") in recorded
    assert iso.bind_host == "172.30.0.1" and iso.service_host == "172.30.0.1"
    assert iso.node_app_host(node) == "0.0.0.0"
    assert iso.describe_node(node) == {"container": "ne-c0ffee00-1"}


def test_wrap_node_argv_external_image(tmp_path):
    iso = _iso(tmp_path, image="netemu-node:t")
    iso.docker_host = None  # the default engine: no -H
    ext = ["env", "NETEMU_NODE_NUMBER=2", "NETEMU_CONFIG=/o/b.json", "impl:3", "--id", "2"]
    argv = iso.wrap_node_argv(iso.nodes[1], ext)
    assert argv[-3:] == ["impl:3", "--id", "2"]
    envs = [argv[i + 1] for i, a in enumerate(argv) if a == "--env"]
    assert envs == ["NETEMU_NODE_NUMBER=2", "NETEMU_CONFIG=/o/b.json"]
    assert argv[:2] == ["docker", "run"]
    with pytest.raises(NetemuError, match="no image"):
        iso.wrap_node_argv(iso.nodes[1], ["env", "A=1"])


def test_check_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    iso = DockerIsolation(run_id="c0ffee01", engine="host")
    with pytest.raises(NetemuError, match="no Docker engine answers"):
        iso.check()
    with pytest.raises(NetemuError, match="NETEMU_DOCKER_ENGINE"):
        DockerIsolation(run_id="c0ffee01", engine="cloud").check()
    with pytest.raises(NetemuError, match="cannot be used"):
        DockerIsolation(run_id="c0ffee01").check_broker_url("mqtt://127.0.0.1:1883")


def test_removers_when_the_engine_is_gone(tmp_path):
    gone = f"unix://{tmp_path}/gone.sock"
    c = Resource("container", "ne-c0ffee00-1", {"docker_host": gone})
    n = Resource("network", "ne-c0ffee00", {"docker_host": gone})
    assert remove_container(c).startswith("already gone")
    assert remove_network(n).startswith("already gone")
    with pytest.raises(NetemuError, match="refusing"):
        remove_container(Resource("container", "postgres", {"docker_host": gone}))
    d = Resource(
        "dockerd",
        "ne-dockerd-abcdef",
        {"pid": os.getpid(), "start_time": 1, "netns": "ne-dockerd-abcdef", "remove": []},
    )
    assert remove_dockerd(d) == "already gone"  # our PID with another start time: not it
    with pytest.raises(NetemuError, match="refusing"):
        remove_dockerd(Resource("dockerd", "x", {"pid": None, "netns": "host-ns"}))
