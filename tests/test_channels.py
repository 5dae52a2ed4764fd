"""Channel plans: NCCL's binary trees, rails and PXN hops, neighbour rings, the protocol model."""

import networkx as nx
import pytest

from simulator.cluster import generators
from simulator.cluster.topology import gpu_nodes
from simulator.network.channels import (
    block_rails,
    btree,
    default_channels,
    direct_rings,
    dtree,
    reduction_switch,
    ring_plan,
    tree_plan,
)
from simulator.network.protocols import DEFAULTS, PROTOCOLS, collective_model, protocol_for_size
from simulator.utils.errors import InputError


def test_btree_is_nccls_tree_of_14_ranks():
    # The illustration in NVIDIA/nccl src/graph/trees.cc: 0 -> 8; 8 -> 4, 12; 4 -> 2, 6;
    # 12 -> 10, 13; 2 -> 1, 3; 6 -> 5, 7; 10 -> 9, 11.
    children = {r: btree(14, r)[1] for r in range(14)}
    assert children == {0: [8], 8: [4, 12], 4: [2, 6], 12: [10, 13], 2: [1, 3], 6: [5, 7],
                        10: [9, 11], 1: [], 3: [], 5: [], 7: [], 9: [], 11: [], 13: []}
    for r in range(1, 14):
        parent = btree(14, r)[0]
        assert r in children[parent]


@pytest.mark.parametrize("n", range(2, 40))
def test_dtree_is_two_spanning_trees_whose_inner_ranks_are_leaves_of_the_other(n):
    first, second = dtree(n)
    for tree in (first, second):
        graph = nx.DiGraph(list(tree))
        assert len(tree) == n - 1 and nx.is_arborescence(graph)
        assert all(graph.out_degree(v) <= 2 for v in graph)
    if n % 2 == 0:      # mirrored: no rank has children in both trees (NCCL's balance)
        inner = [{p for p, _ in tree} for tree in (first, second)]
        assert not inner[0] & inner[1]


def test_rails_are_the_nics_of_a_block_with_their_gpus():
    graph = generators.dgx(2, 8, 4)
    members = [f"gpu0_{i}" for i in range(8)]
    assert block_rails(graph, "node0", members) == [
        (f"nic0_{j}", [f"gpu0_{2 * j}", f"gpu0_{2 * j + 1}"]) for j in range(4)]
    assert block_rails(graph, "node0", ["gpu0_0", "gpu0_2"]) == [("nic0_0", ["gpu0_0"]),
                                                                 ("nic0_1", ["gpu0_2"])]


def test_a_rings_block_starts_on_its_rail_and_ends_on_the_rails_second_gpu():
    # Two GPUs per NIC: channel 1 enters node 0 at gpu0_2 (NIC 1) and leaves from gpu0_3,
    # also on NIC 1: no hand-over needed.
    graph = generators.dgx(2, 8, 4)
    plan = ring_plan(graph, gpu_nodes(graph), 2, collective_model(graph))
    assert plan.orders[1][:8] == ("gpu0_2", "gpu0_4", "gpu0_5", "gpu0_6", "gpu0_7",
                                  "gpu0_0", "gpu0_1", "gpu0_3")
    assert plan.legs[1][7] == (("gpu0_3", "gpu1_2"),)


def test_with_one_gpu_per_nic_the_ring_hands_over_to_the_rail_gpu():
    graph = generators.dgx(3, 4, 4)
    plan = ring_plan(graph, gpu_nodes(graph), 4, collective_model(graph))
    for c in range(4):
        order, legs = plan.orders[c], plan.legs[c]
        assert [order[4 * n] for n in range(3)] == [f"gpu{n}_{c}" for n in range(3)]
        for n in range(3):
            last = order[4 * n + 3]
            assert legs[4 * n + 3] == ((last, f"gpu{n}_{c}"), (f"gpu{n}_{c}",
                                                               f"gpu{(n + 1) % 3}_{c}"))


def test_channel_nics_pick_the_rail_of_each_channel():
    graph = generators.dgx(2, 4, 4)
    graph.graph["collectives"] = {"channel_nics": [3, 1]}
    plan = ring_plan(graph, gpu_nodes(graph), 3, collective_model(graph))
    assert [order[0] for order in plan.orders] == ["gpu0_3", "gpu0_1", "gpu0_3"]


def test_without_nics_each_channel_starts_one_gpu_further():
    graph = generators.two_tier(2, 3)
    plan = ring_plan(graph, gpu_nodes(graph), 2, collective_model(graph))
    assert plan.orders == (("gpu0_0", "gpu0_1", "gpu0_2", "gpu1_0", "gpu1_1", "gpu1_2"),
                           ("gpu0_1", "gpu0_2", "gpu0_0", "gpu1_1", "gpu1_2", "gpu1_0"))


def test_direct_rings_use_neighbours_and_run_both_ways():
    graph = generators.ring(5)
    members = gpu_nodes(graph)
    assert direct_rings(graph, members) == (tuple(members),)
    plan = ring_plan(graph, members, 2, collective_model(graph))
    assert plan.orders[1] == ("gpu0", "gpu4", "gpu3", "gpu2", "gpu1")
    for legs in plan.legs:
        for (hop,) in legs:
            assert graph.has_edge(*hop)


def test_the_search_finds_a_cycle_in_a_torus_and_none_in_a_line():
    torus = generators.torus_2d(3, 5)
    [cycle] = direct_rings(torus, gpu_nodes(torus))
    assert sorted(cycle) == gpu_nodes(torus)
    assert all(torus.has_edge(cycle[i], cycle[(i + 1) % len(cycle)]) for i in range(len(cycle)))
    line = nx.path_graph(["a", "b", "c"])
    assert direct_rings(line, ["a", "b", "c"]) == ()


def test_default_channels():
    model = collective_model(nx.Graph())
    assert default_channels(generators.dgx(2), gpu_nodes(generators.dgx(2)), model) == 8
    one_node = generators.dgx(1)
    assert default_channels(one_node, gpu_nodes(one_node), model) == 1
    torus = generators.torus_2d(4, 4)
    assert default_channels(torus, gpu_nodes(torus), collective_model(torus)) == 4


def test_tree_chains_start_at_the_rail_gpu():
    graph = generators.dgx(4, 4, 4)
    plan = tree_plan(graph, gpu_nodes(graph), 4, collective_model(graph))
    assert plan.blocks == ("node0", "node1", "node2", "node3")
    assert plan.trees == dtree(4)
    assert [plan.chains[c]["node2"][0] for c in range(4)] == [f"gpu2_{c}" for c in range(4)]


def test_reduction_switch_is_the_common_reducing_neighbour():
    graph = generators.dgx(2, switch_reduction=True)
    assert reduction_switch(graph, [f"gpu1_{i}" for i in range(8)]) == "nvswitch1"
    with pytest.raises(InputError, match="needs a switch with reduction: true"):
        reduction_switch(graph, ["gpu0_0", "gpu1_0"])


def test_protocol_defaults_are_nccls_ratios():
    # LL moves half of what Simple does, LL128 120/128 rounded to 0.92 (tuning.cc).
    for tier in ("intra_block", "inter_block"):
        simple = DEFAULTS["Simple"][tier]["efficiency"]
        assert DEFAULTS["LL"][tier]["efficiency"] == pytest.approx(0.5 * simple, rel=1e-12)
        assert DEFAULTS["LL128"][tier]["efficiency"] == pytest.approx(0.92 * simple, rel=1e-12)
    assert DEFAULTS["Simple"]["intra_block"]["efficiency"] == 20.0 / 25.0
    assert DEFAULTS["Simple"]["inter_block"]["efficiency"] == 24.0 / 25.0
    model = collective_model(nx.Graph())
    assert [model.protocol(p).base_latency_s for p in PROTOCOLS] == [6.6e-6, 14.0e-6, 8.4e-6]
    with pytest.raises(InputError, match="unknown protocol 'LL64'"):
        model.protocol("LL64")


def test_thresholds_pick_protocols_inclusively():
    thresholds = {"LL": 1024.0, "LL128": 4096.0}
    assert [protocol_for_size(thresholds, n) for n in (1, 1024, 1025, 4096, 4097)] == \
        ["LL", "LL", "LL128", "LL128", "Simple"]
