"""Loading routing schemes (built-in names, module:Class, file.py:Class, entry points) and the
example plug-in in docs/examples."""

from __future__ import annotations

import importlib.metadata
import json
import sys

import pytest

from netemu.cli import main
from netemu.errors import NetemuError, RoutingError
from netemu.routing import (
    CgrScheme,
    MinHopScheme,
    NetworkView,
    SnapshotScheme,
    Topology,
    available_schemes,
    load_scheme,
)
from netemu.routing import plugins as plugins_mod
from support import REPO

EXAMPLE = REPO / "docs" / "examples" / "routing_plugin.py"


def test_builtin_names():
    assert isinstance(load_scheme("cgr"), CgrScheme)
    assert isinstance(load_scheme("snapshot"), SnapshotScheme)
    assert isinstance(load_scheme("minhop"), MinHopScheme)
    assert load_scheme("cgr", margin_ns=5).margin_ns == 5
    assert isinstance(load_scheme("netemu.routing.minhop:MinHopScheme"), MinHopScheme)
    scheme = SnapshotScheme()
    assert load_scheme(scheme) is scheme


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty routing scheme"),
        ("dijkstra", "unknown routing scheme 'dijkstra'"),
        ("no_such_module_xyz:Thing", "cannot import"),
        ("netemu.routing.cgr:Nope", "has no attribute 'Nope'"),
        ("netemu.routing.cgr:Route", "not a subclass of netemu.routing.RoutingScheme"),
        ("netemu.routing.interface:RoutingScheme", "does not implement compute()"),
        ("missing/file.py:Scheme", "no file"),
    ],
)
def test_bad_specs_raise_routing_error(spec, message):
    with pytest.raises(RoutingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_scheme(spec)
    assert issubclass(RoutingError, NetemuError)


def test_bad_options():
    with pytest.raises(RoutingError, match="bad options"):
        load_scheme("snapshot", penalty=3)


def small_view() -> NetworkView:
    topo = Topology(
        a=[1, 2, 1, 3],
        b=[2, 3, 3, 4],
        delay_ns=[4_000_000, 4_000_000, 9_000_000, 1_000_000],
        rate_bps=[1e9] * 4,
    )
    return NetworkView(t_ns=0, nodes=(1, 2, 3, 4), links=topo)


def test_example_plugin_from_file_runs():
    scheme = load_scheme(f"{EXAMPLE}:HopPenaltyScheme", penalty_ms=0)
    assert type(scheme).name == "hop-penalty"
    tables = scheme.compute(small_view())
    assert tables.path(1, 4) == [1, 2, 3, 4]  # 9 ms over two hops beats 10 ms direct + 1 hop
    assert tables.table(1).lookup(4).arrival_ns == 9_000_000
    assert tables.table(1).lookup(4).hops == 3
    # A 2 ms penalty per hop makes the direct 1-3 link worth it.
    penalised = load_scheme(f"{EXAMPLE}:HopPenaltyScheme", penalty_ms=2).compute(small_view())
    assert penalised.path(1, 4) == [1, 3, 4]
    entry = penalised.table(1).lookup(4)
    assert (entry.arrival_ns, entry.hops) == (10_000_000, 2)
    # with no penalty it is the snapshot scheme
    snap = SnapshotScheme().compute(small_view())
    assert (snap.next_hop == tables.next_hop).all()


def test_example_plugin_as_module_and_entry_point(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    assert type(load_scheme("routing_plugin:HopPenaltyScheme")).__name__ == "HopPenaltyScheme"
    point = importlib.metadata.EntryPoint(
        name="hop-penalty", value="routing_plugin:HopPenaltyScheme", group="netemu.routing"
    )
    real = importlib.metadata.entry_points

    def fake(**kwargs):
        if kwargs.get("group") == plugins_mod.ENTRY_POINT_GROUP:
            return [point]
        return real(**kwargs)

    monkeypatch.setattr(plugins_mod.importlib.metadata, "entry_points", fake)
    assert available_schemes()["hop-penalty"] == "routing_plugin:HopPenaltyScheme"
    assert type(load_scheme("hop-penalty")).__name__ == "HopPenaltyScheme"
    sys.modules.pop("routing_plugin", None)


def test_routes_cli_runs_the_example_plugin(capsys):
    rc = main(
        [
            "routes",
            str(REPO / "topologies" / "demo-small.yaml"),
            "--at",
            "2026-01-01T00:10:00Z",
            "--scheme",
            f"{EXAMPLE}:HopPenaltyScheme",
            "--node",
            "svalbard",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scheme"].endswith("routing_plugin.py:HopPenaltyScheme")
    (table,) = out["tables"].values()
    assert table, "svalbard should reach some node"
    assert {
        "destination",
        "next_hop",
        "action",
        "valid_from",
        "valid_until",
        "arrival",
        "hops",
    } == set(table[0])


def test_routes_cli_bad_scheme_is_one_line_error(capsys):
    rc = main(["routes", "x.yaml", "--at", "2026-01-01T00:00:00Z", "--scheme", "nope"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("netemu: error: unknown routing scheme 'nope'")
    assert "\n" not in err
