"""``--external NODE=COMMAND``: parsing, checking against the scenario, argv and environment
(netemu.runtime.external; docs/external.md)."""

from __future__ import annotations

import pytest

from netemu.errors import NetemuError
from netemu.runtime.external import (
    PLACEHOLDERS,
    ExternalSpec,
    external_env,
    external_values,
    parse_external_spec,
    resolve_externals,
    substitute,
)
from netemu.scenario import load_scenario
from support import REPO


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(REPO / "topologies" / "demo-small.yaml")


def _station(scenario):
    return next(n for n in scenario.nodes if n.kind == "ground")


def test_parse_splits_like_a_shell():
    spec = parse_external_spec("madrid = python3 node.py --log 'a b.jsonl' --n={number}")
    assert spec == ExternalSpec(
        "madrid", ("python3", "node.py", "--log", "a b.jsonl", "--n={number}")
    )


def test_parse_keeps_equals_signs_in_the_command():
    assert parse_external_spec("1=env A=1 prog").argv == ("env", "A=1", "prog")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("madrid", "expected NODE=COMMAND"),
        ("=prog", "node is empty"),
        ("madrid=", "command is empty"),
        ("madrid=   ", "command is empty"),
        ("madrid=prog 'open", "cannot split"),
        ("madrid=prog {nope}", "unknown placeholder {nope}"),
        ("madrid=prog {number:>5}", "unknown placeholder"),
        ("madrid=prog {name.upper}", "unknown placeholder"),
        ("madrid=prog {", "bad braces"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(NetemuError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_external_spec(text)


def test_resolve_by_name_and_number(scenario):
    gs = _station(scenario)
    sat = scenario.nodes[0]
    found = resolve_externals([f"{gs.name}=prog a", f"{sat.number}=prog b"], scenario)
    assert list(found) == [n.number for n in scenario.nodes if n.number in found]
    assert found[gs.number].name == gs.name and found[gs.number].argv == ("prog", "a")
    assert found[sat.number].name == sat.name and found[sat.number].command == "prog b"
    assert resolve_externals({gs.name: "prog 'x y'"}, scenario)[gs.number].command == "prog 'x y'"
    assert resolve_externals(None, scenario) == {} and resolve_externals([], scenario) == {}


def test_resolve_errors(scenario):
    gs = _station(scenario)
    with pytest.raises(NetemuError, match="no node of that name or number"):
        resolve_externals(["atlantis=prog"], scenario)
    with pytest.raises(NetemuError, match="no node of that name or number"):
        resolve_externals(["999999=prog"], scenario)
    with pytest.raises(NetemuError, match="given twice"):
        resolve_externals([f"{gs.name}=a", f"{gs.number}=b"], scenario)


def test_values_env_and_substitution(scenario):
    gs = _station(scenario)
    ext = resolve_externals(
        [f"{gs.name}=prog --id {{number}} --fabric {{fabric_host}}:{{fabric_port}} {{{{lit}}}}"],
        scenario,
    )[gs.number]
    values = external_values(
        ext,
        kind="ground",
        config_path="out/run/config/x.json",
        fabric_host="127.0.0.1",
        fabric_port=40001,
        broker_url="mqtt://127.0.0.1:1883",
        run_id="abcd1234",
        epoch_dtn_ns=820540800000000000,
        out="out",
    )
    assert set(values) == set(PLACEHOLDERS)
    assert values["broker_host"] == "127.0.0.1" and values["broker_port"] == "1883"
    argv = substitute(ext.argv, values)
    assert argv == ["prog", "--id", str(gs.number), "--fabric", "127.0.0.1:40001", "{lit}"]
    env = external_env(values)
    assert env["NETEMU_NODE_NUMBER"] == str(gs.number)
    assert env["NETEMU_NODE_NAME"] == gs.name
    assert env["NETEMU_FABRIC_PORT"] == "40001"
    assert env["NETEMU_EPOCH_DTN_NS"] == "820540800000000000"
    assert env["NETEMU_RUN_ID"] == "abcd1234"
    assert env["NETEMU_CONFIG"] == "out/run/config/x.json"
    assert all(k.startswith("NETEMU_") for k in env)


def test_run_emulation_rejects_a_bad_external_before_starting(tmp_path):
    from netemu.runtime.launcher import run_emulation

    with pytest.raises(NetemuError, match="no node of that name"):
        run_emulation(
            REPO / "topologies" / "demo-small.yaml",
            duration_s=1,
            out=tmp_path / "out",
            external=["atlantis=prog"],
        )
    assert not (tmp_path / "out").exists()


def test_cli_rejects_an_empty_command(tmp_path, capsys):
    from netemu.cli import main

    code = main(
        ["run", str(REPO / "topologies" / "demo-small.yaml"), "--out", str(tmp_path / "o"),
         "--external", "madrid="]
    )  # fmt: skip
    assert code != 0
    assert "command is empty" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
