"""Topology drawings: the data series drawn (colours, widths, styles, positions), the files
written, and ``sgdsim topology draw``."""

import math

import pytest
from click.testing import CliRunner

from cli import sgdsim
from simulator.cluster.draw import (
    MAX_WIDTH_PT,
    draw_topology,
    drawing_data,
    edge_width,
    layout_positions,
)
from simulator.cluster.generators import (
    dgx,
    fat_tree,
    ring,
    torus_2d,
    two_sites,
    two_tier,
)
from simulator.cluster.topology import gpu_blocks
from simulator.cluster.writer import write_topology
from simulator.utils.errors import InputError


def test_gpus_are_coloured_by_block_and_blocks_are_distinct():
    g = two_tier(3, 2)
    data = drawing_data(g)
    for block, members in gpu_blocks(g).items():
        assert {data["node_colors"][gpu] for gpu in members} == {data["block_colors"][block]}
    assert len(set(data["block_colors"].values())) == 3
    gpu_colors = {data["node_colors"][n] for n, k in g.nodes(data="kind") if k == "gpu"}
    assert data["node_colors"]["core"] not in gpu_colors
    assert data["node_markers"]["core"] == "s" and data["node_markers"]["gpu0_0"] == "o"
    assert drawing_data(dgx(1, 2, 2))["node_markers"]["nic0_1"] == "D"


@pytest.mark.parametrize("blocks", [2, 10, 11, 20, 64, 128])
def test_block_colours_stay_distinct_for_many_blocks(blocks):
    colors = drawing_data(ring(blocks))["block_colors"]
    assert len(colors) == blocks and len(set(colors.values())) == blocks


def test_edge_widths_grow_with_bandwidth_and_inter_block_is_dashed():
    g = dgx(2, 4, 4, intra_bandwidth=300e9, nic_bandwidth=32e9, inter_bandwidth=25e9)
    data = drawing_data(g)
    assert set(data["edge_widths"]) == set(g.edges)
    by_bandwidth = sorted(g.edges(data="bandwidth"), key=lambda e: e[2])
    widths = [data["edge_widths"][(u, v)] for u, v, _ in by_bandwidth]
    assert widths == sorted(widths)

    def of(series, u, v):  # keys follow graph.edges, whose end order is networkx's
        return series[(u, v)] if (u, v) in series else series[(v, u)]

    assert of(data["edge_widths"], "nic0_0", "spine") == 1.0  # the slowest link
    assert of(data["edge_widths"], "gpu0_0", "nic0_0") == pytest.approx(1 + math.log2(32 / 25))
    assert of(data["edge_widths"], "nvswitch0", "gpu0_0") == pytest.approx(1 + math.log2(12))
    assert of(data["edge_styles"], "nic0_0", "spine") == "dashed"
    assert of(data["edge_styles"], "nvswitch0", "gpu0_0") == "solid"
    assert (data["min_bandwidth"], data["max_bandwidth"]) == (25e9, 300e9)


def test_edge_width_is_capped():
    assert edge_width(1e15, 1.0) == MAX_WIDTH_PT
    assert edge_width(2e9, 1e9) == 2.0


def test_layered_layout_puts_gpus_at_the_bottom_and_is_deterministic():
    g = fat_tree(4)
    pos = layout_positions(g)
    assert pos == layout_positions(fat_tree(4))
    assert {pos[f"gpu{b}_{h}"][1] for b in range(8) for h in range(2)} == {0.0}
    assert {pos[f"edge{b}"][1] for b in range(8)} == {1.0}
    assert {pos[n][1] for n in g if n.startswith("core")} == {3.0}
    # GPUs in natural order from left to right; each edge switch above its GPUs.
    xs = [pos[f"gpu{b}_{h}"][0] for b in range(8) for h in range(2)]
    assert xs == sorted(xs)
    assert pos["gpu3_0"][0] < pos["edge3"][0] < pos["gpu3_1"][0]


def test_switchless_graphs_get_circular_or_spring_layouts():
    pos = layout_positions(ring(6))
    assert all(math.isclose(math.hypot(x, y), 1.0) for x, y in pos.values())
    torus = torus_2d(3, 4)
    assert layout_positions(torus) == layout_positions(torus)  # seeded spring layout
    assert set(layout_positions(two_sites(1, 2), "circular")) == set(two_sites(1, 2))


def test_bad_layouts_raise_input_error():
    with pytest.raises(InputError, match="unknown layout"):
        layout_positions(ring(3), "radial")
    with pytest.raises(InputError, match="no position for node 'gpu2'"):
        layout_positions(ring(3), {"gpu0": (0, 0), "gpu1": (1, 0)})
    g = ring(3)
    assert layout_positions(g, lambda graph: {n: (i, 0) for i, n in enumerate(graph)}) == {
        "gpu0": (0.0, 0.0), "gpu1": (1.0, 0.0), "gpu2": (2.0, 0.0)}


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"),
                                           (".svg", b"<?xml")])
def test_draw_topology_writes_the_format_of_the_extension(tmp_path, suffix, magic):
    path = tmp_path / f"t{suffix}"
    drawn = draw_topology(two_tier(2, 2, inter_bandwidth=40e9), path)
    assert drawn["path"] == str(path)
    assert path.read_bytes().startswith(magic)
    assert drawn["edge_widths"] == drawing_data(two_tier(2, 2, inter_bandwidth=40e9))[
        "edge_widths"]


def test_draw_topology_refuses_unknown_formats(tmp_path):
    with pytest.raises(InputError, match="cannot write a drawing") as info:
        draw_topology(ring(3), tmp_path / "t.jpg")
    assert ".png" in info.value.fix
    assert not (tmp_path / "t.jpg").exists()


def test_cli_draw_writes_a_png(tmp_path):
    topo, fig = tmp_path / "t.yaml", tmp_path / "fig.png"
    write_topology(dgx(2, 4, 2), topo)
    result = CliRunner().invoke(sgdsim, ["topology", "draw", str(topo), "-o", str(fig)])
    assert result.exit_code == 0, result.output
    assert fig.read_bytes().startswith(b"\x89PNG")


def test_cli_draw_bad_extension_exits_2_with_one_line(tmp_path):
    topo = tmp_path / "t.yaml"
    write_topology(ring(4), topo)
    result = CliRunner().invoke(sgdsim, ["topology", "draw", str(topo),
                                         "-o", str(tmp_path / "fig.bmp")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
