"""Topology generators: contract, counts, shapes, the shared reference graph, bad arguments,
and ``sgdsim topology generate`` round trips."""

import json
import math
from pathlib import Path

import networkx as nx
import pytest
import yaml
from click.testing import CliRunner

from cli import sgdsim
from simulator.cluster import topology
from simulator.cluster.generators import (
    FAMILIES,
    dgx,
    family_parameters,
    fat_tree,
    generate,
    ring,
    torus_2d,
    two_sites,
    two_tier,
)
from simulator.utils.errors import InputError

# A copy of shared/reference/transfer_cases.json, kept in the repo so these tests always run.
REFERENCE = Path(__file__).parent / "data" / "transfer_cases.json"


def check_contract(graph):
    """Assert the graph contract of simulator.cluster.topology, independently of validate_graph."""
    assert isinstance(graph, nx.Graph) and not graph.is_directed() and not graph.is_multigraph()
    assert nx.number_of_selfloops(graph) == 0
    assert nx.is_connected(graph)
    for node, attrs in graph.nodes(data=True):
        assert attrs["kind"] in ("gpu", "switch", "nic"), node
        if attrs["kind"] == "gpu":
            assert isinstance(attrs["block"], str) and attrs["block"], node
            assert isinstance(attrs["peak_flops"], float) and attrs["peak_flops"] > 0, node
            assert 0 < attrs["efficiency"] <= 1, node
    for u, v, attrs in graph.edges(data=True):
        assert isinstance(attrs["bandwidth"], float) and attrs["bandwidth"] > 0, (u, v)
        assert isinstance(attrs["latency"], float) and attrs["latency"] >= 0, (u, v)
        bu, bv = graph.nodes[u].get("block"), graph.nodes[v].get("block")
        expected = "intra_block" if bu is not None and bu == bv else "inter_block"
        assert attrs["tier"] == expected, (u, v)
    # A block's switches and NICs belong to a block that has GPUs.
    gpu_blocks = {b for _, b in graph.nodes(data="block") if b is not None}
    assert gpu_blocks == set(topology.gpu_blocks(graph))


def tiers(graph):
    return {frozenset((u, v)): tier for u, v, tier in graph.edges(data="tier")}


def counts(graph):
    kinds = [k for _, k in graph.nodes(data="kind")]
    return {"gpus": kinds.count("gpu"), "switches": kinds.count("switch"),
            "nics": kinds.count("nic"), "links": graph.number_of_edges(),
            "blocks": len(topology.gpu_blocks(graph))}


CASES = [
    (two_tier, (3, 4), {}, dict(gpus=12, switches=4, nics=0, links=15, blocks=3)),
    (two_tier, (1, 1), {}, dict(gpus=1, switches=2, nics=0, links=2, blocks=1)),
    (fat_tree, (4,), {}, dict(gpus=16, switches=20, nics=0, links=48, blocks=8)),
    (fat_tree, (6,), {}, dict(gpus=54, switches=45, nics=0, links=162, blocks=18)),
    (fat_tree, (2,), {}, dict(gpus=2, switches=5, nics=0, links=6, blocks=2)),
    (ring, (8,), {}, dict(gpus=8, switches=0, nics=0, links=8, blocks=8)),
    (ring, (8,), {"blocks": 2}, dict(gpus=8, switches=0, nics=0, links=8, blocks=2)),
    (ring, (2,), {}, dict(gpus=2, switches=0, nics=0, links=1, blocks=2)),
    (torus_2d, (3, 4), {}, dict(gpus=12, switches=0, nics=0, links=24, blocks=3)),
    (torus_2d, (3, 4), {"block_by": "cols"}, dict(gpus=12, switches=0, nics=0, links=24, blocks=4)),
    (torus_2d, (2, 3), {}, dict(gpus=6, switches=0, nics=0, links=9, blocks=2)),
    (dgx, (2,), {}, dict(gpus=16, switches=3, nics=16, links=48, blocks=2)),
    (dgx, (3, 8, 2), {}, dict(gpus=24, switches=4, nics=6, links=54, blocks=3)),
    (two_sites, (2, 3), {}, dict(gpus=12, switches=6, nics=0, links=17, blocks=4)),
]


@pytest.mark.parametrize("make, args, kwargs, expected", CASES,
                         ids=[f"{c[0].__name__}{c[1]}{c[2] or ''}" for c in CASES])
def test_generated_graphs_follow_the_contract_and_have_the_right_counts(make, args, kwargs,
                                                                        expected):
    graph = make(*args, **kwargs)
    check_contract(graph)
    assert counts(graph) == expected
    topology.validate_graph(graph, require_equal_blocks=True, require_compute=True)


def test_two_tier_names_order_and_tiers():
    g = two_tier(2, 3, intra_bandwidth=25e9, intra_latency=1e-6, inter_bandwidth=40e9,
                 inter_latency=5e-6)
    assert list(g) == ["core", "sw0", "gpu0_0", "gpu0_1", "gpu0_2",
                       "sw1", "gpu1_0", "gpu1_1", "gpu1_2"]
    assert g.nodes["sw1"] == {"kind": "switch", "block": "block1"}
    assert g.nodes["gpu1_2"] == {"kind": "gpu", "block": "block1", "peak_flops": 15.7e12,
                                 "efficiency": 0.4, "gpu_type": "V100"}
    assert g.edges["core", "sw0"] == {"bandwidth": 40e9, "latency": 5e-6, "tier": "inter_block"}
    assert g.edges["sw0", "gpu0_2"] == {"bandwidth": 25e9, "latency": 1e-6,
                                        "tier": "intra_block"}


def test_gpu_keywords_reach_every_gpu():
    g = ring(3, peak_flops=312e12, efficiency=0.5, gpu_type="A100")
    assert {(d["peak_flops"], d["efficiency"], d["gpu_type"]) for _, d in g.nodes(data=True)} == {
        (312e12, 0.5, "A100")}
    assert "gpu_type" not in two_tier(1, 1, gpu_type=None).nodes["gpu0_0"]


def _strip_to_reference_attributes(graph):
    """The reference cases carry no switch ``block``, no GPU compute attributes, no name."""
    g = nx.Graph()
    for node, attrs in graph.nodes(data=True):
        keep = ("kind", "block") if attrs["kind"] == "gpu" else ("kind",)
        g.add_node(node, **{k: attrs[k] for k in keep})
    g.add_edges_from(graph.edges(data=True))
    return g


def test_two_tier_equals_the_shared_reference_graph():
    # Decision: generated switches carry their block (``sw0`` has block0) and GPUs carry
    # compute attributes; the reference graph has neither. Both leave every tier and every
    # transfer unchanged, so the graphs are compared without them.
    cases = {c["name"]: c for c in json.loads(REFERENCE.read_text())["cases"]}
    reference = nx.node_link_graph(cases["two_tier_2x2_4_flows"]["graph"], edges="links")
    generated = two_tier(2, 2, intra_bandwidth=25e9, intra_latency=1e-6,
                         inter_bandwidth=40e9, inter_latency=5e-6)
    stripped = _strip_to_reference_attributes(generated)
    assert nx.utils.graphs_equal(stripped, reference)
    assert list(stripped) == list(reference)  # same insertion order, too
    assert tiers(generated) == tiers(reference)


@pytest.mark.parametrize("name", ["two_tier_1x4_3_flows", "two_tier_3x4_10_flows",
                                  "two_tier_4x8_40_flows", "two_tier_8x2_30_flows"])
def test_reference_two_tier_shapes_have_generated_names(name):
    case = next(c for c in json.loads(REFERENCE.read_text())["cases"] if c["name"] == name)
    reference = nx.node_link_graph(case["graph"], edges="links")
    blocks, gpus = map(int, name.split("_")[2].split("x"))
    generated = two_tier(blocks, gpus)
    assert set(generated) == set(reference)
    assert set(map(frozenset, generated.edges)) == set(map(frozenset, reference.edges))
    assert tiers(generated) == tiers(reference)


@pytest.mark.parametrize("name", ["two_tier_1x4_3_flows", "two_tier_2x2_4_flows",
                                  "two_tier_2x8_16_flows"])
def test_generated_two_tier_reproduces_reference_finish_times(name):
    # The cases whose links are uniform per tier (40 GB/s, 5 us up; 25 GB/s, 1 us down); the
    # others vary bandwidth per link, which two_tier does not.
    import simulator.network.flows as network
    case = next(c for c in json.loads(REFERENCE.read_text())["cases"] if c["name"] == name)
    blocks, gpus = map(int, name.split("_")[2].split("x"))
    graph = two_tier(blocks, gpus, intra_bandwidth=25e9, intra_latency=1e-6,
                     inter_bandwidth=40e9, inter_latency=5e-6)
    finish = network.simulate_transfers(graph, case["transfers"])
    assert finish == pytest.approx(case["finish_s"], abs=1e-9, rel=0)


def test_fat_tree_structure():
    k = 6
    g = fat_tree(k)
    degree = dict(g.degree)
    for node, kind in g.nodes(data="kind"):
        if kind == "switch":
            assert degree[node] == k, node  # every switch uses all k ports
        else:
            assert degree[node] == 1
    intra = [(u, v) for u, v, t in g.edges(data="tier") if t == "intra_block"]
    assert len(intra) == k**3 // 4
    assert all({g.nodes[u]["kind"], g.nodes[v]["kind"]} == {"gpu", "switch"} for u, v in intra)
    assert nx.diameter(g) == 6  # GPU-edge-agg-core-agg-edge-GPU
    assert nx.shortest_path_length(g, "gpu0_0", "gpu1_0") == 4  # same pod, other edge


def test_dgx_paths_use_nvswitch_inside_and_nics_between_nodes():
    g = dgx(2, 4, 2)
    assert nx.shortest_path(g, "gpu0_0", "gpu0_3") == ["gpu0_0", "nvswitch0", "gpu0_3"]
    assert nx.shortest_path_length(g, "gpu0_3", "gpu1_3") == 4
    assert sorted(g["nic0_0"]) == ["gpu0_0", "gpu0_1", "spine"]  # 2 GPUs per NIC
    assert g.nodes["nic1_1"] == {"kind": "nic", "block": "node1"}
    assert g.edges["nic0_0", "spine"]["tier"] == "inter_block"
    assert g.edges["gpu0_0", "nic0_0"]["tier"] == "intra_block"


def test_two_sites_are_joined_by_one_wan_link():
    g = two_sites(2, 2, wan_bandwidth=1e9, wan_latency=0.01)
    assert set(topology.gpu_blocks(g)) == {"s0_block0", "s0_block1", "s1_block0", "s1_block1"}
    assert g.edges["site0", "site1"] == {"bandwidth": 1e9, "latency": 0.01,
                                         "tier": "inter_block"}
    cut = nx.minimum_edge_cut(g, "site0", "site1")
    assert cut == {("site0", "site1")}


def test_ring_and_torus_tiers_follow_blocks():
    g = ring(6, blocks=3, intra_bandwidth=50e9, inter_bandwidth=10e9)
    assert [g.edges[f"gpu{i}", f"gpu{(i + 1) % 6}"]["bandwidth"] for i in range(6)] == [
        50e9, 10e9, 50e9, 10e9, 50e9, 10e9]
    t = torus_2d(3, 3, intra_bandwidth=50e9, inter_bandwidth=10e9)
    assert t.edges["gpu1_2", "gpu1_0"]["bandwidth"] == 50e9  # wrap-around along a row
    assert t.edges["gpu2_1", "gpu0_1"]["bandwidth"] == 10e9  # wrap-around along a column


BAD = [
    (fat_tree, (5,), {}, "k"),
    (fat_tree, (0,), {}, "k"),
    (ring, (1,), {}, "n"),
    (ring, (6,), {"blocks": 4}, "blocks"),
    (two_tier, (2, 2), {"intra_bandwidth": 0}, "intra_bandwidth"),
    (two_tier, (2, 2), {"inter_latency": -1e-6}, "inter_latency"),
    (two_tier, (2, 2), {"inter_bandwidth": math.inf}, "inter_bandwidth"),
    (two_tier, (0, 2), {}, "blocks"),
    (two_tier, (2.5, 2), {}, "blocks"),
    (two_tier, (2, True), {}, "gpus_per_block"),
    (torus_2d, (1, 4), {}, "rows"),
    (torus_2d, (3, 3), {"block_by": "diagonals"}, "block_by"),
    (dgx, (1, 8, 3), {}, "nics_per_node"),
    (dgx, (1,), {"nic_bandwidth": -1.0}, "nic_bandwidth"),
    (two_sites, (1, 1), {"wan_bandwidth": 0.0}, "wan_bandwidth"),
    (ring, (4,), {"efficiency": 1.5}, "efficiency"),
    (ring, (4,), {"peak_flops": 0}, "peak_flops"),
]


@pytest.mark.parametrize("make, args, kwargs, field", BAD,
                         ids=[f"{b[0].__name__}-{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments_name_the_parameter_and_the_fix(make, args, kwargs, field):
    with pytest.raises(InputError) as info:
        make(*args, **kwargs)
    assert info.value.field == field
    assert info.value.fix


def test_families_registry_and_generate():
    assert list(FAMILIES) == ["two-tier", "fat-tree", "ring", "torus", "dgx", "two-sites"]
    assert nx.utils.graphs_equal(generate("fat-tree", k=4), fat_tree(4))
    # --blocks stands for blocks_per_site, also in errors.
    assert nx.utils.graphs_equal(generate("two-sites", blocks=2, gpus_per_block=1),
                                 two_sites(2, 1))
    assert "blocks" in family_parameters("two-sites")
    with pytest.raises(InputError) as info:
        generate("two-sites", blocks=0, gpus_per_block=1)
    assert info.value.field == "blocks"
    with pytest.raises(InputError, match="does not apply") as info:
        generate("ring", n=4, k=4)
    assert info.value.field == "k"
    with pytest.raises(InputError, match="needs it") as info:
        generate("torus", rows=4)
    assert info.value.field == "cols"
    with pytest.raises(InputError, match="unknown topology family"):
        generate("hypercube")


# ------------------------------------------------------------------------------ CLI
CLI_FAMILIES = {
    "two-tier": ["--blocks", "3", "--gpus-per-block", "2", "--intra-bandwidth", "25 GB/s",
                 "--intra-latency", "1 us", "--inter-bandwidth", "100 Gbit/s",
                 "--inter-latency", "5 us", "--gpu-flops", "125 TFLOP/s", "--efficiency", "0.5",
                 "--gpu-type", "V100"],
    "fat-tree": ["--k", "4", "--inter-bandwidth", "50Gbps"],
    "ring": ["--n", "6", "--blocks", "3"],
    "torus": ["--rows", "3", "--cols", "4"],
    "dgx": ["--nodes", "2", "--gpus-per-node", "4", "--nics-per-node", "2",
            "--nic-bandwidth", "32 GB/s", "--nic-latency", "2 us"],
    "two-sites": ["--blocks", "2", "--gpus-per-block", "2", "--wan-bandwidth", "10 Gbit/s",
                  "--wan-latency", "5 ms"],
}


def _same_topology(a, b):
    """Nodes, edges and their attributes equal (graph attributes and order aside)."""
    assert dict(a.nodes(data=True)) == dict(b.nodes(data=True))
    assert {frozenset((u, v)): d for u, v, d in a.edges(data=True)} == {
        frozenset((u, v)): d for u, v, d in b.edges(data=True)}


@pytest.mark.parametrize("family", list(CLI_FAMILIES))
def test_cli_generate_then_validate_round_trip(family, tmp_path):
    out = tmp_path / f"{family}.yaml"
    runner = CliRunner()
    result = runner.invoke(sgdsim, ["topology", "generate", family, *CLI_FAMILIES[family],
                                    "-o", str(out)])
    assert result.exit_code == 0, result.output
    checked = runner.invoke(sgdsim, ["topology", "validate", str(out)])
    assert checked.exit_code == 0, checked.output
    assert ": ok" in checked.output
    # The file holds the graph the library generates from the same (parsed) values.
    expected = {
        "two-tier": lambda: two_tier(3, 2, intra_bandwidth=25e9, intra_latency=1e-6,
                                     inter_bandwidth=12.5e9, inter_latency=5e-6,
                                     peak_flops=125e12, efficiency=0.5, gpu_type="V100"),
        "fat-tree": lambda: fat_tree(4, inter_bandwidth=6.25e9),
        "ring": lambda: ring(6, blocks=3),
        "torus": lambda: torus_2d(3, 4),
        "dgx": lambda: dgx(2, 4, 2, nic_bandwidth=32e9, nic_latency=2e-6),
        "two-sites": lambda: two_sites(2, 2, wan_bandwidth=1.25e9, wan_latency=5e-3),
    }[family]()
    _same_topology(topology.load_topology(out), expected)


def test_cli_generate_without_output_prints_yaml():
    result = CliRunner().invoke(sgdsim, ["topology", "generate", "ring", "--n", "3"])
    assert result.exit_code == 0, result.output
    assert isinstance(yaml.safe_load(result.output), dict)


@pytest.mark.parametrize("args, flag", [
    (["two-tier", "--blocks", "2", "--gpus-per-block", "2", "--k", "4"], "--k"),
    (["fat-tree", "--k", "5"], "--k"),
    (["fat-tree"], "--k"),
    (["ring", "--n", "1"], "--n"),
    (["ring", "--n", "4", "--intra-bandwidth", "25"], "--intra-bandwidth"),
    (["ring", "--n", "4", "--inter-bandwidth", "0 GB/s"], "--inter-bandwidth"),
    (["ring", "--n", "4", "--inter-latency", "5 GB/s"], "--inter-latency"),
    (["torus", "--rows", "3", "--cols", "3", "--wan-latency", "1 ms"], "--wan-latency"),
    (["torus", "--rows", "3", "--cols", "3", "--blocks", "3"], "--blocks"),
    (["dgx", "--nodes", "2", "--nics-per-node", "3"], "--nics-per-node"),
    (["two-sites", "--blocks", "0", "--gpus-per-block", "2"], "--blocks"),
    (["two-tier", "--blocks", "1", "--gpus-per-block", "1", "--gpu-flops", "1 GB/s"],
     "--gpu-flops"),
    (["two-tier", "--blocks", "1", "--gpus-per-block", "1", "--efficiency", "0"],
     "--efficiency"),
])
def test_cli_generate_bad_options_exit_2_with_one_line(args, flag, tmp_path):
    out = tmp_path / "t.yaml"
    result = CliRunner().invoke(sgdsim, ["topology", "generate", *args, "-o", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {flag}: "), result.output
    assert not out.exists()
