"""latency.png and topology.png are written, decode as PNG, and have the documented size."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from netemu.results import build_results
from netemu.results.plots import LATENCY_SIZE_PX, TOPOLOGY_SIZE_PX, link_segments
from netemu.scenario import load_scenario
from support import TOPOLOGIES

from .runfiles import standard_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plots_written(tmp_path):
    scenario = load_scenario(TOPOLOGIES / "demo-small.yaml")
    layout = standard_run(tmp_path).write()
    build_results(layout, scenario, options={"duration_s": 60, "epoch_s": 1})
    assert png_size(layout.latency_png) == LATENCY_SIZE_PX
    assert png_size(layout.topology_png) == TOPOLOGY_SIZE_PX
    # A real decoder agrees.
    import matplotlib.image

    img = matplotlib.image.imread(layout.topology_png)
    assert img.shape[:2] == (TOPOLOGY_SIZE_PX[1], TOPOLOGY_SIZE_PX[0])
    assert img[..., :3].std() > 0.05  # not a blank canvas


def test_link_across_the_antimeridian_is_split():
    segs = link_segments([170.0, 10.0], [10.0, 0.0], [-170.0, 20.0], [20.0, 5.0])
    assert segs.shape == (3, 2, 2)
    np.testing.assert_allclose(segs[0], [[10.0, 0.0], [20.0, 5.0]])
    np.testing.assert_allclose(segs[1], [[170.0, 10.0], [180.0, 15.0]])
    np.testing.assert_allclose(segs[2], [[-180.0, 15.0], [-170.0, 20.0]])
    west = link_segments([-175.0], [0.0], [175.0], [10.0])
    np.testing.assert_allclose(
        west, [[[-175.0, 0.0], [-180.0, 5.0]], [[180.0, 5.0], [175.0, 10.0]]]
    )


@pytest.mark.slow
def test_topology_for_starlink_size(tmp_path):
    from netemu.links import link_model
    from netemu.results.plots import plot_topology

    scenario = load_scenario(TOPOLOGIES / "starlink-shell1-100gs.yaml")
    path = plot_topology(tmp_path / "t.png", link_model(scenario), 1800 * 10**9, title="shell 1")
    assert png_size(path) == TOPOLOGY_SIZE_PX
