"""Injection and bisection bandwidth, the topology summary and ``sgdsim topology show``.

Bisection estimates are checked by hand on tiny cases and against a brute force that tries
every balanced GPU split and every placement of switches and NICs (the true bisection).
"""

import itertools
import json

import networkx as nx
import pytest
from click.testing import CliRunner

from cli import sgdsim
from simulator.cluster.generators import (
    dgx,
    fat_tree,
    ring,
    torus_2d,
    two_sites,
    two_tier,
)
from simulator.cluster.stats import (
    bisection_bandwidth,
    candidate_bisections,
    cut_bandwidth,
    injection_bandwidth,
)
from simulator.cluster.topology import gpu_nodes, load_topology
from simulator.cluster.writer import write_topology
from simulator.outputs.summary import format_summary, topology_summary
from simulator.utils.errors import InputError


def brute_force_bisection(graph):
    """True bisection bandwidth: every balanced GPU split x every side for the other nodes."""
    gpus = gpu_nodes(graph)
    others = [n for n in graph if n not in set(gpus)]
    best = float("inf")
    for side_a in itertools.combinations(gpus, len(gpus) // 2):
        a = set(side_a)
        for placement in itertools.product((True, False), repeat=len(others)):
            left = a | {n for n, on_a in zip(others, placement) if on_a}
            cut = sum(bw for u, v, bw in graph.edges(data="bandwidth")
                      if (u in left) != (v in left))
            best = min(best, cut)
    return best


# ---------------------------------------------------------------------- injection
def test_injection_bandwidth_is_the_sum_of_a_gpus_links():
    assert injection_bandwidth(two_tier(2, 2, intra_bandwidth=25e9)) == {
        "gpu0_0": 25e9, "gpu0_1": 25e9, "gpu1_0": 25e9, "gpu1_1": 25e9}
    assert set(injection_bandwidth(ring(4, inter_bandwidth=10e9)).values()) == {20e9}
    assert set(injection_bandwidth(torus_2d(3, 3, intra_bandwidth=50e9,
                                            inter_bandwidth=10e9)).values()) == {120e9}
    assert set(injection_bandwidth(dgx(1, 4, 4, intra_bandwidth=300e9,
                                       nic_bandwidth=32e9)).values()) == {332e9}
    assert list(injection_bandwidth(ring(12))) == [f"gpu{i}" for i in range(12)]  # natural


# ---------------------------------------------------------------------- bisection
def test_bisection_by_hand_on_small_cases():
    assert bisection_bandwidth(two_tier(2, 2, intra_bandwidth=25e9,
                                        inter_bandwidth=40e9)) == 40e9
    assert bisection_bandwidth(ring(4, inter_bandwidth=10e9)) == 20e9
    assert bisection_bandwidth(ring(2, inter_bandwidth=10e9)) == 10e9
    # Four blocks: two block uplinks cross; a slow uplink is the cheaper cut than GPU links.
    assert bisection_bandwidth(two_tier(4, 2, intra_bandwidth=25e9,
                                        inter_bandwidth=10e9)) == 20e9
    # Fast uplinks: cutting below a block switch is cheaper (2 GPU links of 25 GB/s).
    assert bisection_bandwidth(two_tier(2, 2, intra_bandwidth=25e9,
                                        inter_bandwidth=400e9)) == 50e9
    # Fat-tree k=4, full bisection: 8 GPUs x 12.5 GB/s; oversubscribed: 8 core links.
    assert bisection_bandwidth(fat_tree(4, intra_bandwidth=12.5e9,
                                        inter_bandwidth=12.5e9)) == 100e9
    assert bisection_bandwidth(fat_tree(4, intra_bandwidth=12.5e9, inter_bandwidth=1e9)) == 8e9
    # Torus 4x4: two row boundaries x 4 columns are cut.
    assert bisection_bandwidth(torus_2d(4, 4, inter_bandwidth=25e9)) == 200e9
    # Two sites: the WAN link.
    assert bisection_bandwidth(two_sites(2, 2, wan_bandwidth=1.25e9)) == 1.25e9


@pytest.mark.parametrize("graph", [
    two_tier(2, 2, inter_bandwidth=40e9),
    two_tier(3, 2, inter_bandwidth=10e9),
    two_tier(2, 3, intra_bandwidth=25e9, inter_bandwidth=100e9),
    ring(6),
    ring(7, inter_bandwidth=3e9),
    ring(8, blocks=2, intra_bandwidth=50e9, inter_bandwidth=10e9),
    torus_2d(3, 4, intra_bandwidth=50e9, inter_bandwidth=10e9),
    torus_2d(2, 5),
    dgx(2, 2, 1),
    two_sites(1, 2),
], ids=lambda g: g.graph["name"])
def test_bisection_estimate_matches_brute_force_on_small_graphs(graph):
    estimate, truth = bisection_bandwidth(graph), brute_force_bisection(graph)
    assert estimate >= truth * (1 - 1e-12)  # an upper bound, always
    assert estimate == pytest.approx(truth, rel=1e-12)  # and exact on these shapes


def test_cut_bandwidth_places_switches_on_the_cheaper_side():
    g = two_tier(2, 2, intra_bandwidth=25e9, inter_bandwidth=40e9)
    assert cut_bandwidth(g, ["gpu0_0", "gpu0_1"], ["gpu1_0", "gpu1_1"]) == 40e9
    assert cut_bandwidth(g, ["gpu0_0", "gpu1_0"], ["gpu0_1", "gpu1_1"]) == 50e9


def test_candidate_bisections_are_balanced_partitions_and_deterministic():
    g = two_tier(10, 3)
    gpus = gpu_nodes(g)
    splits = candidate_bisections(g, windows=4, random_splits=3, seed=1)
    assert splits == candidate_bisections(g, windows=4, random_splits=3, seed=1)
    assert splits[0] == (gpus[:15], gpus[15:])  # the natural-order split first
    assert len(splits) <= 1 + 4 + 3
    assert len({frozenset(a) for a, _ in splits}) == len(splits)
    for a, b in splits:
        assert sorted(a + b) == sorted(gpus) and not set(a) & set(b)
        assert {len(a), len(b)} <= {15}
    # 3 blocks of 4 GPUs cannot be halved block-aligned: only the natural split is left.
    assert len(candidate_bisections(two_tier(3, 4))) == 1


def test_bisection_of_1024_gpus_is_exact_on_a_fat_tree():
    assert bisection_bandwidth(fat_tree(16, intra_bandwidth=12.5e9,
                                        inter_bandwidth=12.5e9)) == 1024 / 2 * 12.5e9


def test_bisection_needs_two_gpus():
    with pytest.raises(InputError, match="at least 2 GPUs"):
        bisection_bandwidth(two_tier(1, 1))


# ------------------------------------------------------------------------ summary
def test_summary_of_a_two_tier_graph():
    s = topology_summary(two_tier(2, 2, intra_bandwidth=25e9, intra_latency=1e-6,
                                  inter_bandwidth=40e9, inter_latency=5e-6))
    busbw = s.pop("ring_allreduce_busbw_Bps")
    assert s == {
        "name": "two-tier 2x2",
        "gpus": 4,
        "blocks": 2,
        "gpus_per_block": {"min": 2, "max": 2},
        "switches": 3,
        "nics": 0,
        "links": {"total": 6, "by_tier": {
            "inter_block": {"count": 2, "min_bandwidth_Bps": 40e9, "max_bandwidth_Bps": 40e9,
                            "min_latency_s": 5e-6, "max_latency_s": 5e-6},
            "intra_block": {"count": 4, "min_bandwidth_Bps": 25e9, "max_bandwidth_Bps": 25e9,
                            "min_latency_s": 1e-6, "max_latency_s": 1e-6},
        }},
        "injection_bandwidth_Bps": {"min": 25e9, "max": 25e9},
        "bisection_bandwidth_Bps": 40e9,
        "ring_allreduce_protocol": "Simple",
        "ring_allreduce_channels": 1,
    }
    assert busbw > 0
    json.dumps(s)  # JSON-ready


def test_summary_ring_allreduce_busbw_comes_from_the_network_model():
    s = topology_summary(two_tier(2, 2, intra_bandwidth=25e9, inter_bandwidth=40e9))
    # 1 GB in 4 GPUs, one channel, the Simple protocol (NCCL's defaults): 8.4 us to start;
    # the ring's hops are 2 us + 3.4 us inside a block, 12 us + 14 us across; a chunk's
    # slowest 6 hops: 2 (5.4 + 26 + 5.4 + 26) - (5.4 + 26) us. Every GPU sends 1.5 GB over its
    # 25 GB/s link at 80 % efficiency.
    time_s = 8.4e-6 + 2 * 62.8e-6 - 31.4e-6 + 1.5e9 / (0.8 * 25e9)
    assert s["ring_allreduce_busbw_Bps"] == pytest.approx(1.5e9 / time_s, rel=1e-12)


def test_summary_of_one_gpu_has_no_bisection():
    s = topology_summary(two_tier(1, 1))
    assert s["bisection_bandwidth_Bps"] is None and s["ring_allreduce_busbw_Bps"] is None


def test_format_summary_has_units():
    text = format_summary(topology_summary(dgx(2, 4, 4)))
    assert "NICs                   8" in text
    assert "inter_block          8 at 25 GB/s, 5 us" in text
    assert "intra_block          16 at 32 GB/s .. 300 GB/s, 1 us" in text
    assert "injection bandwidth    332 GB/s per GPU" in text
    assert "bisection bandwidth    100 GB/s (estimate, upper bound)" in text


# ---------------------------------------------------------------------------- CLI
@pytest.fixture
def topo_file(tmp_path):
    path = tmp_path / "fat-tree.yaml"
    write_topology(fat_tree(4, inter_bandwidth=1e9), path)
    return path


def test_cli_show_prints_the_table(topo_file):
    result = CliRunner().invoke(sgdsim, ["topology", "show", str(topo_file)])
    assert result.exit_code == 0, result.output
    assert "GPUs                   16" in result.output
    assert "switches               20" in result.output
    assert "bisection bandwidth    8 GB/s (estimate, upper bound)" in result.output


def test_cli_show_json_is_the_summary(topo_file):
    result = CliRunner().invoke(sgdsim, ["topology", "show", str(topo_file), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == topology_summary(load_topology(topo_file))


def test_cli_show_missing_file_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(sgdsim, ["topology", "show", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: ")


def test_brute_force_reference_itself_on_a_path():
    # Independent check of the brute force: a path of 4 GPUs is bisected by its middle link.
    g = nx.path_graph([f"gpu{i}" for i in range(4)])
    nx.set_node_attributes(g, "gpu", "kind")
    nx.set_node_attributes(g, {n: f"b{n}" for n in g}, "block")
    nx.set_edge_attributes(g, {("gpu0", "gpu1"): 5.0, ("gpu1", "gpu2"): 3.0,
                               ("gpu2", "gpu3"): 5.0}, "bandwidth")
    assert brute_force_bisection(g) == 3.0
    assert bisection_bandwidth(g) == 3.0
