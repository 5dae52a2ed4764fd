"""All-reduce collectives against their closed forms, and the bytes they put on each link.

Every closed form below is worked out from the step semantics of
:mod:`simulator.network.collectives` (a barrier per step) and the network model (latency phase,
then max-min fair byte phase); a change to either breaks an exact comparison.
"""

import math

import networkx as nx
import pytest
import simpy

from simulator.cluster import generators
from simulator.cluster.topology import gpu_nodes
from simulator.network.collectives import (
    allreduce,
    resolve_groups,
    ring_order,
    run_groups,
    simulate_allreduce,
)
from simulator.network.flows import TIERS, Network
from simulator.network.routing import shortest_route
from simulator.utils.errors import InputError

M = 96e6            # message per GPU, bytes; not a multiple of every p, on purpose


def run(graph, groups, nbytes, algorithm="ring"):
    """Run one all-reduce per group at once in a fresh environment; return (time_s, net)."""
    env = simpy.Environment()
    net = Network(env, graph)
    env.run(allreduce(net, groups, nbytes, algorithm))
    return env.now, net


def all_gpus(graph):
    return resolve_groups(graph, "all")[0]


def star(p, bandwidth, latency):
    """A single block: p GPUs on one switch (two_tier(1, p); the core link carries nothing)."""
    return generators.two_tier(1, p, intra_bandwidth=bandwidth, intra_latency=latency)


# --------------------------------------------------------------------------- ring
@pytest.mark.parametrize("p", [2, 4, 5, 8])
def test_ring_on_a_ring_of_links_is_2_p_minus_1_steps_of_latency_plus_chunk(p):
    b, a = 12.5e9, 3e-6
    g = generators.ring(p, intra_bandwidth=b, intra_latency=a, inter_bandwidth=b, inter_latency=a)
    order = all_gpus(g)
    for i in range(p):                      # ring neighbours are one link apart
        assert len(shortest_route(g, order[i], order[(i + 1) % p])) == 2
    expected = 2 * (p - 1) * (a + M / (p * b))
    assert simulate_allreduce(g, M)["time_s"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("p", [2, 3, 8])
def test_ring_on_a_star_pays_two_gpu_link_latencies_per_step(p):
    # gpu -> sw -> gpu: latency 2 l; each GPU's uplink and downlink carry one flow, so the
    # chunk flows at the GPU link's bandwidth.
    b, l = 25e9, 1.5e-6
    expected = 2 * (p - 1) * (2 * l + M / (p * b))
    assert simulate_allreduce(star(p, b, l), M)["time_s"] == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- hierarchical
def hierarchical_time(B, g, M, b_in, l_in, b_out, l_out):
    """Closed form of hierarchical all-reduce on two_tier(B, g).

    Phases 1 and 3 (reduce-scatter, all-gather inside each block): g-1 steps each; every
    GPU sends M/g to its block neighbour through the block switch (latency 2 l_in), one
    flow per GPU link direction, and blocks use disjoint links: 2(g-1)(2 l_in + M/(g b_in)).

    Phase 2: g concurrent rings of B GPUs (local rank i of every block), each an
    all-reduce of M/g: 2(B-1) steps of chunk M/(g B) along gpu -> sw -> core -> sw -> gpu
    (latency 2 l_in + 2 l_out). In a step, each block sends one flow per ring up its
    uplink sw -> core and receives one per ring down core -> sw: g flows share each, so a
    flow gets min(b_in, b_out / g) (its GPU link carries it alone).
    """
    intra = 2 * (g - 1) * (2 * l_in + M / (g * b_in))
    inter = 2 * (B - 1) * (2 * l_in + 2 * l_out + (M / g) / (B * min(b_in, b_out / g)))
    return intra + inter


LINKS = dict(intra_bandwidth=25e9, intra_latency=1e-6, inter_bandwidth=40e9, inter_latency=5e-6)


@pytest.mark.parametrize("B, g", [(2, 2), (4, 2), (3, 3), (2, 4), (4, 1), (1, 4), (8, 2)])
def test_hierarchical_on_two_tier_matches_its_closed_form(B, g):
    # b_out/g = 40, 20, 13.3, 10 GB/s against b_in = 25 GB/s: both sides of the min occur.
    graph = generators.two_tier(B, g, **LINKS)
    expected = hierarchical_time(B, g, M, 25e9, 1e-6, 40e9, 5e-6)
    got = simulate_allreduce(graph, M, algorithm="hierarchical")["time_s"]
    assert got == pytest.approx(expected, rel=1e-12)


def test_hierarchical_closed_form_by_hand_for_two_blocks_of_two():
    # M = 100 MB, b_in 25 GB/s, l_in 1 us, b_out 40 GB/s, l_out 5 us.
    # Reduce-scatter: 1 step, 2 us + 50 MB / 25 GB/s = 2.002 ms. All-gather: the same.
    # Across blocks: rings (gpu0_0, gpu1_0) and (gpu0_1, gpu1_1), 2 steps of 25 MB; both
    # flows of a step leave sw0 on one 40 GB/s uplink: 20 GB/s each (< 25 on the GPU link),
    # 12 us + 25 MB / 20 GB/s = 1.262 ms per step. Total 2 * 2.002 + 2 * 1.262 = 6.528 ms.
    assert hierarchical_time(2, 2, 100e6, 25e9, 1e-6, 40e9, 5e-6) == pytest.approx(6.528e-3, rel=1e-12)
    got = simulate_allreduce(generators.two_tier(2, 2, **LINKS), 100e6, algorithm="hierarchical")
    assert got["time_s"] == pytest.approx(6.528e-3, rel=1e-12)


# --------------------------------------------------------------------------- halving-doubling
@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_halving_doubling_on_a_star_matches_its_closed_form(p):
    # log2(p) halving steps of M/2, M/4, ..., M/p, then the same doubling steps in reverse;
    # every GPU sends one flow and receives one per step: 2 log2(p) (2 l) + 2 (p-1)/p M / b.
    b, l = 25e9, 1.5e-6
    expected = 2 * math.log2(p) * 2 * l + 2 * (p - 1) / p * M / b
    got = simulate_allreduce(star(p, b, l), M, algorithm="halving-doubling")["time_s"]
    assert got == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- bytes
def uplink(graph, gpu):
    [switch] = list(graph[gpu])
    return gpu, switch


def assert_tiers_are_sums_of_links(graph, net):
    per_tier = dict.fromkeys(TIERS, 0.0)
    for (u, v), nbytes in net.bytes_by_link().items():
        per_tier[graph.edges[u, v]["tier"]] += nbytes
    assert net.bytes_by_tier() == pytest.approx(per_tier, rel=1e-12)


def assert_switches_conserve_bytes(graph, net):
    """What enters a switch leaves it: collectives only start and end at GPUs."""
    by_link = net.bytes_by_link()
    for node, kind in graph.nodes(data="kind"):
        if kind == "switch":
            into = sum(by_link[(n, node)] for n in graph[node])
            out = sum(by_link[(node, n)] for n in graph[node])
            assert into == pytest.approx(out, rel=1e-12), node


@pytest.mark.parametrize("B, g", [(1, 4), (2, 2), (4, 3), (8, 2)])
def test_ring_bytes_per_gpu_per_link_and_per_tier(B, g):
    graph = generators.two_tier(B, g, **LINKS)
    group = all_gpus(graph)
    p = B * g
    _, net = run(graph, [group], M)
    by_link = net.bytes_by_link()
    for gpu in group:
        up = uplink(graph, gpu)
        assert by_link[up] == pytest.approx(2 * (p - 1) / p * M, rel=1e-12)
        assert by_link[up[::-1]] == pytest.approx(2 * (p - 1) / p * M, rel=1e-12)
    assert_tiers_are_sums_of_links(graph, net)
    assert_switches_conserve_bytes(graph, net)
    tiers = net.bytes_by_tier()
    # Each of the 2(p-1) steps moves p chunks of M/p; each crosses its GPU's uplink and its
    # successor's downlink (2 intra links). With blocks kept adjacent, the ring crosses B
    # block boundaries (B > 1), each through sw -> core -> sw (2 inter links).
    assert tiers["intra_block"] == pytest.approx(2 * 2 * (p - 1) * M, rel=1e-12)
    crossings = B if B > 1 else 0
    assert tiers["inter_block"] == pytest.approx(2 * crossings * 2 * (p - 1) * M / p, rel=1e-12)


@pytest.mark.parametrize("algorithm, B, g, per_gpu", [
    ("halving-doubling", 2, 4, lambda B, g: 2 * (B * g - 1) / (B * g) * M),
    # Inside the block 2(g-1)/g M, across blocks 2(B-1)/B of the M/g a GPU holds.
    ("hierarchical", 4, 2, lambda B, g: 2 * (g - 1) / g * M + 2 * (B - 1) / B * M / g),
    ("hierarchical", 3, 3, lambda B, g: 2 * (g - 1) / g * M + 2 * (B - 1) / B * M / g),
])
def test_other_algorithms_bytes_per_gpu(algorithm, B, g, per_gpu):
    graph = generators.two_tier(B, g, **LINKS)
    group = all_gpus(graph)
    _, net = run(graph, [group], M, algorithm)
    by_link = net.bytes_by_link()
    for gpu in group:
        assert by_link[uplink(graph, gpu)] == pytest.approx(per_gpu(B, g), rel=1e-12)
    assert_tiers_are_sums_of_links(graph, net)
    assert_switches_conserve_bytes(graph, net)


def test_simulate_allreduce_reports_the_networks_tier_bytes():
    graph = generators.two_tier(3, 2, **LINKS)
    result = simulate_allreduce(graph, M)
    _, net = run(graph, [all_gpus(graph)], M)
    assert result["bytes"] == net.bytes_by_tier()
    p = 6
    assert result["algbw"] == M / result["time_s"]
    assert result["busbw"] == pytest.approx(result["algbw"] * 2 * (p - 1) / p, rel=1e-12)


def test_ring_order_keeps_blocks_adjacent_whatever_order_the_group_is_given_in():
    graph = generators.two_tier(3, 2)
    scrambled = ["gpu2_1", "gpu0_1", "gpu1_0", "gpu2_0", "gpu0_0", "gpu1_1"]
    expected = ["gpu0_0", "gpu0_1", "gpu1_0", "gpu1_1", "gpu2_0", "gpu2_1"]
    assert ring_order(graph, scrambled) == expected
    assert resolve_groups(graph, ",".join(scrambled)) == [expected]
    assert resolve_groups(graph, "block") == [expected[0:2], expected[2:4], expected[4:6]]


# --------------------------------------------------------------------------- concurrency
@pytest.mark.parametrize("p", [2, 4, 6])
def test_two_identical_groups_at_once_take_as_long_as_one_group_with_twice_the_message(p):
    # In every step both groups' flows share each GPU link: b/2 each for M/p bytes, so a step
    # takes a + 2M/(p b), exactly one group's step with 2M. Both groups end together.
    b, l = 25e9, 1.5e-6
    graph = star(p, b, l)
    group = all_gpus(graph)
    both_s, both = run(graph, [group, group], M)
    double_s, double = run(graph, [group], 2 * M)
    assert both_s == pytest.approx(2 * (p - 1) * (2 * l + 2 * M / (p * b)), rel=1e-12)
    assert both_s == pytest.approx(double_s, rel=1e-12)
    assert both.bytes_by_tier() == pytest.approx(double.bytes_by_tier(), rel=1e-12)


@pytest.mark.parametrize("algorithm", ["ring", "halving-doubling"])
def test_every_block_at_once_takes_as_long_as_one_block_alone(algorithm):
    # --group block: each block's all-reduce stays on its own intra links, so running all
    # of them together changes nothing; run one after another, they would take B times longer.
    B, g, b, l = 4, 4, 25e9, 1e-6
    graph = generators.two_tier(B, g, **LINKS)
    blocks = simulate_allreduce(graph, M, algorithm=algorithm, group="block")
    alone = simulate_allreduce(graph, M, algorithm=algorithm, group=["gpu2_0", "gpu2_1", "gpu2_2", "gpu2_3"])
    assert blocks["groups"] == B and blocks["gpus_per_group"] == g
    assert blocks["time_s"] == pytest.approx(alone["time_s"], rel=1e-12)
    if algorithm == "ring":
        assert blocks["time_s"] == pytest.approx(2 * (g - 1) * (2 * l + M / (g * b)), rel=1e-12)
    assert blocks["bytes"]["inter_block"] == 0
    assert blocks["bytes"]["intra_block"] == pytest.approx(B * alone["bytes"]["intra_block"], rel=1e-12)


def test_a_collective_shares_links_with_other_traffic():
    # A 2-GPU ring on a star while g0 also sends an endless-enough transfer to g2: during the
    # ring's steps g0's uplink is shared, so the ring is slower than alone.
    b, l = 10e9, 0.0
    graph = star(3, b, l)
    env = simpy.Environment()
    net = Network(env, graph)
    net.send("gpu0_0", "gpu0_2", 1e9)
    done = allreduce(net, [["gpu0_0", "gpu0_1"]], 10e6)
    env.run(done)
    # Step 1: g0 -> g1 shares g0's uplink (5 GB/s), g1 -> g0 runs at 10: 5 MB / 5 GB/s = 1 ms.
    # Step 2 the same: 2 ms in all, against 1 ms alone.
    assert env.now == pytest.approx(2e-3, rel=1e-12)


# --------------------------------------------------------------------------- errors
def unequal_blocks():
    """Block b0 with 2 GPUs, block b1 with 3, under a core switch."""
    g = nx.Graph()
    g.add_node("core", kind="switch")
    for b, n in (("b0", 2), ("b1", 3)):
        g.add_node(f"sw_{b}", kind="switch", block=b)
        g.add_edge(f"sw_{b}", "core", bandwidth=10e9, latency=1e-6, tier="inter_block")
        for i in range(n):
            g.add_node(f"{b}_gpu{i}", kind="gpu", block=b)
            g.add_edge(f"{b}_gpu{i}", f"sw_{b}", bandwidth=10e9, latency=1e-6, tier="intra_block")
    return g


@pytest.mark.parametrize("graph, kwargs, field, message", [
    (star(6, 1e9, 0), dict(algorithm="halving-doubling"), "algorithm",
     "halving-doubling needs a power-of-two group, got 6 GPUs"),
    (unequal_blocks(), dict(algorithm="hierarchical"), "algorithm",
     "hierarchical all-reduce needs equal blocks, the group's have [2, 3] GPUs"),
    (star(4, 1e9, 0), dict(group=["gpu0_1"]), "group",
     "an all-reduce needs at least 2 GPUs, the group has 1"),
    (star(4, 1e9, 0), dict(group="gpu0_0,gpu9_9"), "group", "'gpu9_9' is not a GPU of the topology"),
    (star(4, 1e9, 0), dict(group="gpu0_0,sw0"), "group", "'sw0' is not a GPU of the topology"),
    (star(4, 1e9, 0), dict(group="gpu0_1,gpu0_0,gpu0_1"), "group", "'gpu0_1' is named more than once"),
    (star(4, 1e9, 0), dict(algorithm="tree"), "algorithm", "unknown algorithm 'tree'"),
])
def test_bad_collectives_are_input_errors(graph, kwargs, field, message):
    with pytest.raises(InputError) as info:
        simulate_allreduce(graph, M, **kwargs)
    assert info.value.field == field
    assert info.value.message == message
    assert info.value.fix


def test_one_gpu_blocks_cannot_average_alone():
    # ring(4) makes every GPU its own block: --group block would be four 1-GPU groups.
    with pytest.raises(InputError, match="at least 2 GPUs"):
        simulate_allreduce(generators.ring(4), M, group="block")


@pytest.mark.parametrize("algorithm, nbytes, message", [
    ("tree", M, "unknown algorithm 'tree'"),
    ("ring", -1.0, "message size must be a finite number of bytes >= 0, got -1.0"),
    ("ring", float("nan"), "message size must be a finite number of bytes >= 0, got nan"),
])
def test_allreduce_checks_its_arguments_before_starting(algorithm, nbytes, message):
    graph = star(4, 1e9, 0)
    net = Network(simpy.Environment(), graph)
    with pytest.raises(InputError) as info:
        allreduce(net, [all_gpus(graph)], nbytes, algorithm)
    assert info.value.message == message


@pytest.mark.parametrize("make", [lambda: generators.two_tier(4, 3, inter_bandwidth=5e9),
                                  lambda: generators.torus_2d(3, 4),
                                  lambda: generators.fat_tree(4)])
def test_lone_ring_shortcut_equals_the_step_by_step_simulation(make):
    """run_groups times a lone ring by one step x 2(p-1); the full lock-step run must agree,
    also where a step's flows contend (torus, fat-tree routes share links)."""
    graph = make()
    members = ring_order(graph, gpu_nodes(graph))
    env = simpy.Environment()
    net = Network(env, graph)
    env.run(allreduce(net, [members], 3e6, "ring"))
    time_s, nbytes = run_groups(graph, [members], 3e6, "ring")
    assert time_s == pytest.approx(env.now, rel=1e-12)
    assert nbytes == pytest.approx(net.bytes_by_tier(), rel=1e-12)
