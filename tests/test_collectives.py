"""All-reduce collectives against their closed forms, and the bytes they put on each link.

Every closed form below is worked out by hand from the semantics of
:mod:`simulator.network.collectives` (pipelined ring, tree and in-switch: latency along the
critical path plus a max-min bandwidth phase; lock-step hierarchical and halving-doubling: a
barrier per step), the protocol model (:mod:`simulator.network.protocols`) and the network
model; a change to any of them breaks an exact comparison.
"""

import math

import networkx as nx
import numpy as np
import pytest
import simpy

from simulator.cluster import generators
from simulator.cluster.topology import load_topology
from simulator.network.collectives import (
    ALGORITHMS,
    CollectiveShape,
    allreduce,
    busiest_links,
    choose,
    collective_network,
    collective_pairs,
    resolve_groups,
    ring_order,
    run_groups,
    simulate_allreduce,
)
from simulator.network.flows import TIERS, Network
from simulator.network.protocols import DEFAULTS, PROTOCOLS, collective_model
from simulator.network.routing import Router, shortest_route
from simulator.utils.errors import InputError

M = 96e6            # message per GPU, bytes; not a multiple of every p, on purpose
IDEAL = dict(protocol="ideal")


def run(graph, groups, nbytes, algorithm="ring", **kwargs):
    """Run one all-reduce per group at once on a network made for it; return (time_s, net)."""
    env = simpy.Environment()
    net = collective_network(env, graph, groups[0], nbytes, algorithm, **kwargs)
    env.run(allreduce(net, groups, nbytes, algorithm, **kwargs))
    return env.now, net


def all_gpus(graph):
    return resolve_groups(graph, "all")[0]


def star(p, bandwidth, latency):
    """A single block: p GPUs on one switch (two_tier(1, p); the core link carries nothing)."""
    return generators.two_tier(1, p, intra_bandwidth=bandwidth, intra_latency=latency)


def cost(protocol, tier, key, default=0.0):
    return DEFAULTS[protocol][tier].get(key, default)


# --------------------------------------------------------------------------- ring, ideal
@pytest.mark.parametrize("p", [2, 4, 5, 8])
def test_ring_on_a_ring_of_links_is_2_p_minus_1_hops_of_latency_plus_its_volume(p):
    # One channel, ideal protocol: 2(p-1) hops of latency a (a chunk's way round the ring
    # twice), and every link carries 2(p-1)/p M at b: the classic 2(p-1)(a + M/(p b)).
    b, a = 12.5e9, 3e-6
    g = generators.ring(p, intra_bandwidth=b, intra_latency=a, inter_bandwidth=b, inter_latency=a)
    order = all_gpus(g)
    for i in range(p):                      # ring neighbours are one link apart
        assert len(shortest_route(g, order[i], order[(i + 1) % p])) == 2
    expected = 2 * (p - 1) * (a + M / (p * b))
    got = simulate_allreduce(g, M, channels=1, **IDEAL)["time_s"]
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("p", [2, 3, 8])
def test_ring_on_a_star_pays_two_gpu_link_latencies_per_hop(p):
    b, l = 25e9, 1.5e-6
    expected = 2 * (p - 1) * (2 * l + M / (p * b))
    assert simulate_allreduce(star(p, b, l), M, **IDEAL)["time_s"] == pytest.approx(expected, rel=1e-12)


def test_a_rings_latency_is_its_slowest_window_of_2p_minus_2_hops():
    # two_tier(2, 2): cycle gpu0_0 -> gpu0_1 -> gpu1_0 -> gpu1_1 -> back; intra hops 2 us,
    # block crossings 1 + 5 + 5 + 1 = 12 us. A chunk makes 2(p-1) = 6 consecutive hops:
    # the slowest window leaves out one intra and one crossing hop: 2 (2 + 12 + 2 + 12) - 14.
    g = generators.two_tier(2, 2, intra_bandwidth=25e9, inter_bandwidth=40e9)
    latency = 2 * (2e-6 + 12e-6) * 2 - 14e-6
    assert simulate_allreduce(g, 0.0, **IDEAL)["time_s"] == pytest.approx(latency, rel=1e-12)
    bandwidth = 1.5 * M / 25e9             # each flow 2(p-1)/p M over its 25 GB/s GPU links
    assert simulate_allreduce(g, M, **IDEAL)["time_s"] == pytest.approx(latency + bandwidth,
                                                                          rel=1e-12)


# --------------------------------------------------------------------------- protocols
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("p", [2, 8])
def test_ring_time_under_each_protocol_is_its_closed_form(protocol, p):
    # base + 2(p-1) (2 l + hop) + max(2(p-1)/p M / (b e), 2(p-1)/p M / max_busbw).
    b, l = 300e9, 1e-6
    intra = DEFAULTS[protocol]["intra_block"]
    base = DEFAULTS[protocol]["base_latency"]
    data = 2 * (p - 1) / p * M
    bandwidth = max(data / (b * intra["efficiency"]), data / intra.get("max_busbw", math.inf))
    expected = base + 2 * (p - 1) * (2 * l + intra["hop_latency"]) + bandwidth
    got = simulate_allreduce(star(p, b, l), M, protocol=protocol)
    assert got["time_s"] == pytest.approx(expected, rel=1e-12)
    assert (got["algorithm"], got["protocol"], got["channels"]) == ("ring", protocol, 1)
    assert got["latency_s"] == pytest.approx(base + 2 * (p - 1) * (2 * l + intra["hop_latency"]),
                                             rel=1e-12)


def test_ll_is_held_at_its_bus_bandwidth_ceiling():
    # 300 GB/s x 0.4 = 120 GB/s of wire for LL, but LL's GPU side stops at 87.7 GB/s busbw.
    got = simulate_allreduce(star(8, 300e9, 0.0), 1e9, protocol="LL")
    data = 2 * 7 / 8 * 1e9
    assert got["time_s"] - got["latency_s"] == pytest.approx(data / 87.7e9, rel=1e-12)


def test_a_crossing_hop_pays_the_inter_block_hop_latency():
    # two_tier(2, 1): two GPUs in two blocks, every hop crosses: 2 hops of 12 us + 14 us.
    g = generators.two_tier(2, 1)
    got = simulate_allreduce(g, 0.0, protocol="Simple")
    assert got["time_s"] == pytest.approx(8.4e-6 + 2 * (12e-6 + 14e-6), rel=1e-12)


@pytest.mark.parametrize("make", [lambda: generators.dgx(1, intra_bandwidth=300e9),
                                  lambda: generators.dgx(4, intra_bandwidth=300e9),
                                  lambda: generators.two_tier(4, 4)])
def test_auto_runs_the_cheapest_algorithm_and_protocol(make):
    graph = make()
    for size in (4e3, 2**20, 32 * 2**20, 2**30):
        auto = simulate_allreduce(graph, size, algorithm="auto", protocol="auto")
        each = {(a, p): simulate_allreduce(graph, size, algorithm=a, protocol=p)["time_s"]
                for a in ("ring", "tree") for p in PROTOCOLS}
        best = min(each.values())
        assert auto["time_s"] == best
        assert each[(auto["algorithm"], auto["protocol"])] == best
        assert [c["time_s"] for c in auto["candidates"]] == sorted(each.values())


def test_thresholds_in_the_topology_fix_the_protocol_by_size():
    graph = generators.dgx(2, intra_bandwidth=300e9)
    graph.graph["collectives"] = {"thresholds": {"LL": 2.0**20, "LL128": 2.0**24}}
    chosen = [simulate_allreduce(graph, n, algorithm="auto")["protocol"]
              for n in (2**19, 2**20, 2**22, 2**24, 2**26)]
    assert chosen == ["LL", "LL", "LL128", "LL128", "Simple"]


def test_a_topology_can_fix_one_protocol_for_every_collective():
    graph = star(4, 25e9, 1e-6)
    graph.graph["collectives"] = {"protocol": "ideal"}
    assert simulate_allreduce(graph, M)["time_s"] == simulate_allreduce(star(4, 25e9, 1e-6), M,
                                                                        **IDEAL)["time_s"]


def test_time_is_latency_plus_size_times_a_constant():
    graph = generators.dgx(2, intra_bandwidth=300e9)
    t = [simulate_allreduce(graph, n, protocol="Simple")["time_s"] for n in (0.0, 1e8, 2e8)]
    assert t[2] - t[1] == pytest.approx(t[1] - t[0], rel=1e-9)


# --------------------------------------------------------------------------- channels, rails
def rails(nodes, **kwargs):
    links = dict(intra_bandwidth=300e9, nic_bandwidth=32e9, inter_bandwidth=25e9,
                 intra_latency=0.0, nic_latency=0.0, inter_latency=0.0)
    return generators.dgx(nodes, **{**links, **kwargs})


@pytest.mark.parametrize("nodes", [2, 4])
@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_k_rails_give_k_times_the_busbw_of_one(nodes, k):
    # Channel c leaves and enters every node on NIC c: each NIC carries one ring flow each
    # way, at its 25 GB/s (PCIe 32, NVSwitch 300 do not bind): busbw = k x 25 GB/s.
    got = simulate_allreduce(rails(nodes), 1e9, channels=k, **IDEAL)
    assert got["channels"] == k
    assert got["busbw"] == pytest.approx(k * 25e9, rel=1e-12)


def test_more_channels_than_rails_share_them():
    # 16 channels on 8 rails: two flows per NIC, 12.5 GB/s each; the NICs still bind.
    assert simulate_allreduce(rails(2), 1e9, channels=16, **IDEAL)["busbw"] == \
        pytest.approx(8 * 25e9, rel=1e-12)


def test_channels_on_one_nic_get_one_nic():
    graph = rails(2)
    graph.graph["collectives"] = {"channel_nics": [0]}
    assert simulate_allreduce(graph, 1e9, channels=8, **IDEAL)["busbw"] == \
        pytest.approx(25e9, rel=1e-12)


@pytest.mark.parametrize("kwargs, busbw", [
    (dict(nic_bandwidth=10e9), 8 * 10e9),      # PCIe to the NIC binds first
    (dict(intra_bandwidth=150e9), 150e9),      # each GPU's NVSwitch link: 8 flows, one a channel
])
def test_rails_help_until_another_link_binds(kwargs, busbw):
    assert simulate_allreduce(rails(2, **kwargs), 1e9, channels=8, **IDEAL)["busbw"] == \
        pytest.approx(busbw, rel=1e-12)


def test_channels_default_to_the_nics_of_a_block():
    assert simulate_allreduce(rails(2), 1e9, **IDEAL)["channels"] == 8
    assert simulate_allreduce(generators.dgx(2, 8, 4), 1e9, **IDEAL)["channels"] == 4
    assert simulate_allreduce(generators.two_tier(2, 2), 1e9, **IDEAL)["channels"] == 1
    graph = rails(2)
    graph.graph["collectives"] = {"channels": 3}
    assert simulate_allreduce(graph, 1e9, **IDEAL)["channels"] == 3


def test_the_shipped_dgx_cluster_reaches_its_rails():
    from simulator.cluster.topology import load_topology

    # 4 nodes x 8 GPUs, every link 1 us. A channel's cycle: in each node 7 hops through the
    # NVSwitch (2 us) and one PXN hop (hand-over 2 us, then GPU-NIC-fabric-NIC-GPU 4 us):
    # 80 us; a chunk's slowest 62 hops leave out two 2 us hops: 156 us of latency.
    graph = load_topology("dgx_a100_4node")
    data = 2 * 31 / 32 * 2**30
    eight = simulate_allreduce(graph, 2**30, **IDEAL)
    assert eight["channels"] == 8
    assert eight["time_s"] == pytest.approx(156e-6 + data / (8 * 25e9), rel=1e-12)
    one = simulate_allreduce(graph, 2**30, channels=1, **IDEAL)["busbw"]
    assert one == pytest.approx(25e9, rel=0.01)       # one NIC at a time, as before


# --------------------------------------------------------------------------- direct networks
def flows_per_directed_link(graph, members, algorithm="ring", channels=None):
    router = Router(graph)
    count = dict.fromkeys(router.links, 0)
    for src, dst in collective_pairs(graph, members, algorithm, channels=channels):
        path = router.route(src, dst)
        for hop in zip(path, path[1:]):
            count[hop] += 1
    return count


@pytest.mark.parametrize("n", [3, 4, 5])
def test_on_a_square_torus_every_link_carries_the_ring_once_per_direction(n):
    graph = generators.torus_2d(n, n, intra_latency=0.0, inter_latency=0.0)
    members = all_gpus(graph)
    assert set(flows_per_directed_link(graph, members).values()) == {1}
    got = simulate_allreduce(graph, 1e9, **IDEAL)
    assert got["channels"] == 4
    assert got["busbw"] == pytest.approx(4 * 25e9, rel=1e-12)


def test_torus_rings_follow_neighbours_so_no_ring_flow_shares_a_link():
    # The case: a 4x4 torus with one channel used to reach 12.5 GB/s (two ring flows
    # on one link); a neighbour ring reaches the link's 25 GB/s.
    graph = generators.torus_2d(4, 4, intra_latency=0.0, inter_latency=0.0)
    assert simulate_allreduce(graph, 1e9, channels=1, **IDEAL)["busbw"] == \
        pytest.approx(25e9, rel=1e-12)
    assert max(flows_per_directed_link(graph, all_gpus(graph), channels=1).values()) == 1


def test_a_torus_without_given_rings_finds_one_by_search():
    graph = generators.torus_2d(3, 4, intra_latency=0.0, inter_latency=0.0)
    assert "collectives" not in graph.graph                 # 3 x 4: no staircase cycle
    members = all_gpus(graph)
    count = flows_per_directed_link(graph, members)
    assert max(count.values()) == 1 and sum(count.values()) == 2 * len(members)
    assert simulate_allreduce(graph, 1e9, **IDEAL)["busbw"] == pytest.approx(2 * 25e9, rel=1e-12)


def test_torus_rings_are_edge_disjoint_hamiltonian_cycles():
    for rows, cols in [(3, 3), (4, 4), (6, 6), (4, 2), (6, 3), (3, 6)]:
        graph = generators.torus_2d(rows, cols)
        rings = graph.graph["collectives"]["rings"]
        used = set()
        for ring in rings:
            assert sorted(ring) == sorted(all_gpus(graph))
            edges = {frozenset((ring[i], ring[(i + 1) % len(ring)])) for i in range(len(ring))}
            assert all(graph.has_edge(*e) for e in edges)
            assert not edges & used
            used |= edges
        assert len(rings) == (2 if rows == cols else 1)


# --------------------------------------------------------------------------- tree
def test_tree_on_two_nodes_moves_each_nics_share_once_each_way():
    # dtree(2): node 0 is the root of one tree and the child of the other; each tree carries
    # M/(2C) per channel, so each NIC moves M/C each way: T = M/(C b), busbw 2(p-1)/p C b.
    # (NVSwitch links fast enough that the chains inside a node, 2 M per GPU, do not bind.)
    got = simulate_allreduce(rails(2, intra_bandwidth=1e12), 1e9, algorithm="tree", channels=8,
                             **IDEAL)
    p = 16
    assert got["time_s"] == pytest.approx(1e9 / (8 * 25e9), rel=1e-12)
    assert got["busbw"] == pytest.approx(2 * (p - 1) / p * 8 * 25e9, rel=1e-12)


def test_tree_on_four_nodes_is_bound_by_the_inner_nodes():
    # dtree(4): node 2 is inner in the first tree (parent 0, children 1 and 3) and a leaf of
    # the second: 3 + 1 quarter-shares = 2 M/C each way on its NICs.
    got = simulate_allreduce(rails(4, intra_bandwidth=1e12), 1e9, algorithm="tree", channels=8,
                             **IDEAL)
    assert got["time_s"] == pytest.approx(2 * 1e9 / (8 * 25e9), rel=1e-12)


def test_tree_latency_is_up_the_chain_and_tree_and_back_down():
    # dgx(2, 2, 2), every link l: chain hop gpu -> nvswitch -> gpu 2 l, tree edge
    # gpu -> nic -> spine -> nic -> gpu 4 l; up 2 l + 4 l, down the same.
    l = 1e-6
    graph = generators.dgx(2, 2, 2, intra_latency=l, nic_latency=l, inter_latency=l)
    got = simulate_allreduce(graph, 0.0, algorithm="tree", **IDEAL)
    assert got["time_s"] == pytest.approx(12 * l, rel=1e-12)
    with_protocol = simulate_allreduce(graph, 0.0, algorithm="tree", protocol="LL")
    hops = 2 * (cost("LL", "intra_block", "hop_latency") + cost("LL", "inter_block", "hop_latency"))
    assert with_protocol["time_s"] == pytest.approx(12 * l + DEFAULTS["LL"]["base_latency"] + hops,
                                                    rel=1e-12)


def test_the_chains_of_a_tree_load_each_gpus_switch_link_with_twice_the_message():
    # 8 channels, each a chain through the 8 GPUs of a node: a GPU inside a chain sends M/C
    # up and M/C down, 2 M over its 150 GB/s NVSwitch link in all, more than its NIC's M/C x 8.
    got = simulate_allreduce(rails(2, intra_bandwidth=150e9), 1e9, algorithm="tree",
                             channels=8, **IDEAL)
    assert got["time_s"] > 1e9 / (8 * 25e9) * 1.5


def test_a_tree_pays_its_own_efficiency_and_its_per_channel_ceiling():
    # NCCL's tree refinements: links at 0.92 x the protocol's efficiency, and at most
    # 23.6 GB/s of bus bandwidth per channel across nodes (Ampere).
    graph = rails(2, intra_bandwidth=1e12)
    got = simulate_allreduce(graph, 1e9, algorithm="tree", protocol="Simple", channels=8)
    p, e = 16, DEFAULTS["Simple"]["inter_block"]["efficiency"] * DEFAULTS["tree"]["efficiency"]
    wires = 1e9 / (8 * 25e9 * e)                          # M/C per NIC each way, see above
    ceiling = 2 * (p - 1) / p * 1e9 / (8 * DEFAULTS["tree"]["inter_block"]["channel_busbw"])
    assert got["time_s"] - got["latency_s"] == pytest.approx(max(wires, ceiling), rel=1e-12)
    assert ceiling > wires                                # the ceiling binds here
    graph.graph["collectives"] = {"protocols": {"tree": {
        "efficiency": 1.0, "inter_block": {"channel_busbw": 1e12},
        "intra_block": {"channel_busbw": 1e12}}}}
    free = simulate_allreduce(graph, 1e9, algorithm="tree", protocol="Simple", channels=8)
    assert free["time_s"] - free["latency_s"] == pytest.approx(
        1e9 / (8 * 25e9 * DEFAULTS["Simple"]["inter_block"]["efficiency"]), rel=1e-12)


def test_tree_inside_one_block_is_a_chain():
    # Chain of p GPUs on a star: up p-1 hops, down p-1 hops; every link carries M each way.
    b, l, p = 25e9, 1e-6, 4
    got = simulate_allreduce(star(p, b, l), M, algorithm="tree", **IDEAL)
    assert got["time_s"] == pytest.approx(2 * (p - 1) * 2 * l + 2 * M / b, rel=1e-12)


# --------------------------------------------------------------------------- in-switch
def reducing_star(p, b, l):
    graph = star(p, b, l)
    graph.nodes["sw0"]["reduction"] = True
    return graph


def test_in_switch_sends_the_message_up_once_and_down_once():
    b, l, p = 300e9, 1e-6, 8
    ideal = simulate_allreduce(reducing_star(p, b, l), M, algorithm="in-switch", **IDEAL)
    assert ideal["time_s"] == pytest.approx(2 * l + M / b, rel=1e-12)
    simple = simulate_allreduce(reducing_star(p, b, l), M, algorithm="in-switch")
    e = DEFAULTS["Simple"]["intra_block"]["efficiency"] * DEFAULTS["in_switch"]["efficiency"]
    assert simple["protocol"] == "Simple"
    assert simple["time_s"] == pytest.approx(DEFAULTS["in_switch"]["latency"] + 2 * l + M / (b * e),
                                             rel=1e-12)
    assert simple["bytes"]["intra_block"] == pytest.approx(2 * p * M, rel=1e-12)


def test_auto_takes_in_switch_reduction_where_the_switch_offers_it():
    graph = generators.dgx(1, switch_reduction=True, intra_bandwidth=450e9)
    assert simulate_allreduce(graph, 2**30, algorithm="auto")["algorithm"] == "in-switch"
    assert "in-switch" not in {c["algorithm"] for c in
                               simulate_allreduce(generators.dgx(1), 2**30,
                                                  algorithm="auto")["candidates"]}


# --------------------------------------------------------------------------- lock-step
def hierarchical_time(B, g, M, b_in, l_in, b_out, l_out):
    """Closed form of hierarchical all-reduce on two_tier(B, g), ideal protocol.

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
    graph = generators.two_tier(B, g, **LINKS)
    expected = hierarchical_time(B, g, M, 25e9, 1e-6, 40e9, 5e-6)
    got = simulate_allreduce(graph, M, algorithm="hierarchical", **IDEAL)["time_s"]
    assert got == pytest.approx(expected, rel=1e-12)


def test_hierarchical_closed_form_by_hand_for_two_blocks_of_two():
    # M = 100 MB, b_in 25 GB/s, l_in 1 us, b_out 40 GB/s, l_out 5 us.
    # Reduce-scatter: 1 step, 2 us + 50 MB / 25 GB/s = 2.002 ms. All-gather: the same.
    # Across blocks: rings (gpu0_0, gpu1_0) and (gpu0_1, gpu1_1), 2 steps of 25 MB; both
    # flows of a step leave sw0 on one 40 GB/s uplink: 20 GB/s each (< 25 on the GPU link),
    # 12 us + 25 MB / 20 GB/s = 1.262 ms per step. Total 2 * 2.002 + 2 * 1.262 = 6.528 ms.
    assert hierarchical_time(2, 2, 100e6, 25e9, 1e-6, 40e9, 5e-6) == pytest.approx(6.528e-3, rel=1e-12)
    got = simulate_allreduce(generators.two_tier(2, 2, **LINKS), 100e6, algorithm="hierarchical",
                             **IDEAL)
    assert got["time_s"] == pytest.approx(6.528e-3, rel=1e-12)


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_halving_doubling_on_a_star_matches_its_closed_form(p):
    # log2(p) halving steps of M/2, M/4, ..., M/p, then the same doubling steps in reverse;
    # every GPU sends one flow and receives one per step: 2 log2(p) (2 l) + 2 (p-1)/p M / b.
    b, l = 25e9, 1.5e-6
    expected = 2 * math.log2(p) * 2 * l + 2 * (p - 1) / p * M / b
    got = simulate_allreduce(star(p, b, l), M, algorithm="halving-doubling", **IDEAL)["time_s"]
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("p", [2, 8])
def test_a_lock_step_algorithm_pays_the_protocol_per_step(p):
    # base + 2 log2(p) (hop + 2 l) + 2(p-1)/p M / (b e).
    b, l = 25e9, 1.5e-6
    simple = DEFAULTS["Simple"]
    expected = simple["base_latency"] + 2 * math.log2(p) * (simple["intra_block"]["hop_latency"]
                                                           + 2 * l) \
        + 2 * (p - 1) / p * M / (b * simple["intra_block"]["efficiency"])
    got = simulate_allreduce(star(p, b, l), M, algorithm="halving-doubling", protocol="Simple")
    assert got["time_s"] == pytest.approx(expected, rel=1e-12)
    assert got["channels"] is None and got["latency_s"] is None


# --------------------------------------------------------------------------- bytes
def uplink(graph, gpu):
    [switch] = list(graph[gpu])
    return gpu, switch


def assert_tiers_are_sums_of_links(graph, net):
    per_tier = dict.fromkeys(TIERS, 0.0)
    for (u, v), nbytes in net.bytes_by_link().items():
        per_tier[graph.edges[u, v]["tier"]] += nbytes
    assert net.bytes_by_tier() == pytest.approx(per_tier, rel=1e-12)


def assert_switches_conserve_bytes(graph, net, reducing=()):
    """What enters a switch leaves it: collectives start and end at GPUs (or reduce in a
    switch named in `reducing`)."""
    by_link = net.bytes_by_link()
    for node, kind in graph.nodes(data="kind"):
        if kind == "switch" and node not in reducing:
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
    # Every GPU sends 2(p-1)/p M to its successor, over its uplink and the successor's
    # downlink (2 intra links). With blocks kept adjacent, the ring crosses B block
    # boundaries (B > 1), each through sw -> core -> sw (2 inter links).
    assert tiers["intra_block"] == pytest.approx(2 * 2 * (p - 1) * M, rel=1e-12)
    crossings = B if B > 1 else 0
    assert tiers["inter_block"] == pytest.approx(2 * crossings * 2 * (p - 1) * M / p, rel=1e-12)


@pytest.mark.parametrize("channels", [1, 3, 8])
def test_channels_split_the_message_not_the_bytes(channels):
    graph = rails(2)
    one = simulate_allreduce(graph, M, channels=1, **IDEAL)["bytes"]
    many = simulate_allreduce(graph, M, channels=channels, **IDEAL)["bytes"]
    # Inter-block bytes are the same; inside a node a PXN hop adds the hand-over to the rail GPU.
    assert many["inter_block"] == pytest.approx(one["inter_block"], rel=1e-12)


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


def test_tree_and_in_switch_bytes_add_up_per_link():
    graph = rails(4)
    _, net = run(graph, [all_gpus(graph)], M, "tree", protocol="ideal")
    assert_tiers_are_sums_of_links(graph, net)
    assert_switches_conserve_bytes(graph, net)
    reducing = reducing_star(4, 25e9, 1e-6)
    _, net = run(reducing, [all_gpus(reducing)], M, "in-switch")
    assert_tiers_are_sums_of_links(reducing, net)


def test_simulate_allreduce_reports_the_networks_tier_bytes():
    graph = generators.two_tier(3, 2, **LINKS)
    result = simulate_allreduce(graph, M)
    _, net = run(graph, [all_gpus(graph)], M)
    assert result["bytes"] == pytest.approx(net.bytes_by_tier(), rel=1e-12)
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


# --------------------------------------------------------------------------- links
def test_busiest_links_give_bytes_and_busy_time():
    b, l, p = 25e9, 0.0, 4
    got = simulate_allreduce(star(p, b, l), M, links=100, **IDEAL)
    assert len(got["links"]) == 2 * p                    # every GPU link, both directions
    for row in got["links"]:
        assert row["bytes"] == pytest.approx(2 * (p - 1) / p * M, rel=1e-12)
        assert row["busy_s"] == pytest.approx(got["time_s"], rel=1e-12)
        assert row["utilization"] == pytest.approx(1.0, rel=1e-12)
    assert busiest_links(star(p, b, l), {}, 5) == []


def test_busiest_links_come_first():
    graph = generators.two_tier(2, 2, intra_bandwidth=25e9, inter_bandwidth=40e9)
    rows = simulate_allreduce(graph, M, links=3, **IDEAL)["links"]
    assert [r["busy_s"] for r in rows] == sorted((r["busy_s"] for r in rows), reverse=True)
    assert len(rows) == 3 and rows[0]["tier"] in TIERS


# --------------------------------------------------------------------------- concurrency
@pytest.mark.parametrize("p", [2, 4, 6])
def test_two_identical_groups_at_once_take_as_long_as_one_group_with_twice_the_message(p):
    b, l = 25e9, 1.5e-6
    graph = star(p, b, l)
    group = all_gpus(graph)
    both_s, both = run(graph, [group, group], M, protocol="ideal")
    double_s, double = run(graph, [group], 2 * M, protocol="ideal")
    assert both_s == pytest.approx(2 * (p - 1) * (2 * l + 2 * M / (p * b)), rel=1e-12)
    assert both_s == pytest.approx(double_s, rel=1e-12)
    assert both.bytes_by_tier() == pytest.approx(double.bytes_by_tier(), rel=1e-12)


@pytest.mark.parametrize("algorithm", ["ring", "tree", "halving-doubling"])
def test_every_block_at_once_takes_as_long_as_one_block_alone(algorithm):
    B, g, b, l = 4, 4, 25e9, 1e-6
    graph = generators.two_tier(B, g, **LINKS)
    blocks = simulate_allreduce(graph, M, algorithm=algorithm, group="block")
    alone = simulate_allreduce(graph, M, algorithm=algorithm,
                               group=["gpu2_0", "gpu2_1", "gpu2_2", "gpu2_3"])
    assert blocks["groups"] == B and blocks["gpus_per_group"] == g
    assert blocks["time_s"] == pytest.approx(alone["time_s"], rel=1e-12)
    assert blocks["bytes"]["inter_block"] == 0
    assert blocks["bytes"]["intra_block"] == pytest.approx(B * alone["bytes"]["intra_block"], rel=1e-12)


def test_a_collective_shares_links_with_other_traffic():
    # A 2-GPU ring on a star while g0 also sends a big transfer to g2: g0's uplink is shared.
    b, l = 10e9, 0.0
    graph = star(3, b, l)
    env = simpy.Environment()
    net = Network(env, graph)
    net.send("gpu0_0", "gpu0_2", 1e9)
    done = allreduce(net, [["gpu0_0", "gpu0_1"]], 10e6, protocol="ideal")
    env.run(done)
    # The ring's flows carry 10 MB each way: g0 -> g1 at 5 GB/s (shared) = 2 ms; g1 -> g0 at
    # 10 GB/s = 1 ms; it ends with the slower one, against 1 ms alone.
    assert env.now == pytest.approx(2e-3, rel=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_on_a_network_made_for_it_allreduce_costs_what_run_groups_says(algorithm):
    graph = reducing_star(8, 300e9, 1e-6) if algorithm == "in-switch" else rails(2, intra_latency=1e-6)
    members = all_gpus(graph)
    for protocol in ("ideal", "auto"):
        time_s, nbytes = run(graph, [members], 3e7, algorithm, protocol=protocol)
        expected_s, expected_bytes = run_groups(graph, [members], 3e7, algorithm, protocol=protocol)
        assert time_s == pytest.approx(expected_s, rel=1e-12)
        assert nbytes.bytes_by_tier() == pytest.approx(expected_bytes, rel=1e-12)


@pytest.mark.parametrize("algorithm, graph", [
    ("hierarchical", generators.two_tier(3, 4, inter_bandwidth=7e9)),
    ("hierarchical", generators.dgx(4)),
    ("halving-doubling", generators.two_tier(4, 2)),
    ("halving-doubling", generators.dgx(2)),
])
@pytest.mark.parametrize("protocol", ["LL", "LL128", "Simple", "ideal"])
def test_a_lock_step_algorithm_alone_costs_its_steps_run_one_after_another(algorithm, graph,
                                                                            protocol):
    # simulate_allreduce runs each distinct step once; step by step on a network must agree.
    members = ring_order(graph, all_gpus(graph))
    expected = simulate_allreduce(graph, 1e7, algorithm, members, protocol=protocol)
    env = simpy.Environment()
    factor = collective_model(graph).protocol(protocol).capacity_factor()
    net = Network(env, graph, capacity_factor=factor)
    env.run(allreduce(net, [members], 1e7, algorithm, protocol=protocol))
    assert env.now == pytest.approx(expected["time_s"], rel=1e-12)
    assert net.bytes_by_tier() == pytest.approx(expected["bytes"], rel=1e-12)


def uneven_latencies(graph, seed=0):
    """`graph` with every link's latency drawn from 0.1-10 us (routes of equal hop counts
    then differ)."""
    rng = np.random.default_rng(seed)
    for _, _, data in graph.edges(data=True):
        data["latency"] = float(rng.uniform(0.1e-6, 10e-6))
    return graph


@pytest.mark.parametrize("algorithm, graph", [
    ("ring", generators.two_tier(3, 4, inter_latency=7e-6)),
    ("ring", uneven_latencies(generators.two_tier(3, 4))),
    ("tree", uneven_latencies(generators.dgx(4))),
    ("tree", uneven_latencies(generators.two_tier(5, 3), seed=1)),
    ("ring", generators.dgx(3)),
    ("ring", generators.two_tier(2, 1)),
    ("tree", generators.dgx(4)),
    ("tree", generators.two_tier(3, 2)),
    ("in-switch", reducing_star(6, 100e9, 2e-6)),
])
def test_a_collective_shape_times_latency_as_the_simulation_does(algorithm, graph):
    # Calibration times thousands of costs with CollectiveShape; it must charge what
    # simulate_allreduce does, also when hop latencies differ a lot between tiers.
    members = all_gpus(graph)
    graph = graph.copy()
    for name in ("Simple", "ideal") if algorithm == "in-switch" else ("LL", "Simple", "ideal"):
        for intra_s, inter_s in ((1e-6, 1e-6), (9e-6, 0.3e-6), (0.2e-6, 40e-6)):
            graph.graph["collectives"] = {"protocols": {} if name == "ideal" else {name: {
                "base_latency": 5e-6, "intra_block": {"hop_latency": intra_s},
                "inter_block": {"hop_latency": inter_s}}, "in_switch": {"latency": inter_s}}}
            model = collective_model(graph)
            shape = CollectiveShape(graph, members, algorithm)
            simulated = simulate_allreduce(graph, 0.0, algorithm, members, protocol=name)
            assert simulated["time_s"] > 0
            assert shape.latency_s(model.protocol(name), model) == \
                pytest.approx(simulated["time_s"], rel=1e-12)


@pytest.mark.parametrize("algorithm", ["ring", "tree", "hierarchical"])
@pytest.mark.parametrize("protocol", ["LL", "LL128", "Simple"])
def test_in_a_nested_topology_every_inter_tier_costs_as_inter_block(algorithm, protocol):
    # sites_2x2x2x2: nodes in racks in sites, tiers intra_node, inter_node, inter_rack,
    # inter_site. The same graph with its tiers renamed to the two-level ones must cost the
    # same: intra_node as intra_block, every inter_* as inter_block.
    nested = load_topology("sites_2x2x2x2")
    flat = nested.copy()
    del flat.graph["levels"]
    for _, _, data in flat.edges(data=True):
        data["tier"] = "intra_block" if data["tier"] == "intra_node" else "inter_block"
    got = simulate_allreduce(nested, 3e7, algorithm, protocol=protocol)
    expected = simulate_allreduce(flat, 3e7, algorithm, protocol=protocol)
    assert got["time_s"] == pytest.approx(expected["time_s"], rel=1e-12)
    assert set(got["bytes"]) == {"intra_node", "inter_node", "inter_rack", "inter_site"}
    assert sum(got["bytes"].values()) == pytest.approx(sum(expected["bytes"].values()), rel=1e-12)
    assert got["bytes"]["intra_node"] == pytest.approx(expected["bytes"]["intra_block"], rel=1e-12)


def test_choose_reports_what_runs():
    graph = generators.dgx(1)
    members = all_gpus(graph)
    chosen = choose(graph, members, 1e3)
    assert chosen["protocol"] == "LL" and chosen["algorithm"] in ("ring", "tree")
    assert chosen["candidates"][0]["time_s"] == chosen["time_s"]


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
    (star(4, 1e9, 0), dict(algorithm="butterfly"), "algorithm", "unknown algorithm 'butterfly'"),
    (star(4, 1e9, 0), dict(protocol="LL64"), "protocol", "unknown protocol 'LL64'"),
    (star(4, 1e9, 0), dict(channels=0), "channels",
     "channels must be an integer from 1 to 64, got 0"),
    (star(4, 1e9, 0), dict(channels=65), "channels",
     "channels must be an integer from 1 to 64, got 65"),
    (star(4, 1e9, 0), dict(algorithm="in-switch"), "algorithm",
     "in-switch all-reduce needs a switch with reduction: true linked to every GPU of the group"),
    (reducing_star(4, 1e9, 0), dict(algorithm="in-switch", protocol="LL"), "protocol",
     "in-switch reduction runs the Simple protocol, not LL"),
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
    ("butterfly", M, "unknown algorithm 'butterfly'"),
    ("ring", -1.0, "message size must be a finite number of bytes >= 0, got -1.0"),
    ("ring", float("nan"), "message size must be a finite number of bytes >= 0, got nan"),
])
def test_allreduce_checks_its_arguments_before_starting(algorithm, nbytes, message):
    graph = star(4, 1e9, 0)
    net = Network(simpy.Environment(), graph)
    with pytest.raises(InputError) as info:
        allreduce(net, [all_gpus(graph)], nbytes, algorithm)
    assert info.value.message == message


# --------------------------------------------------------------------------- equal shapes
def _level_groups(graph):
    from simulator.cluster.levels import level_groups
    from simulator.engine.timeline import cluster_gpus

    gpus = cluster_gpus(graph)[0]
    return [[gpus[i] for i in g] for groups in level_groups(graph, gpus).values()
            for g in groups if len(g) > 1] + [gpus]


def _slowed(graph, node, factor):
    for u, v, data in graph.edges(data=True):
        if node in (u, v):
            data["bandwidth"] /= factor
    return graph


@pytest.mark.parametrize("make, times", [
    (lambda: generators.two_tier(6, 4), 2), (lambda: generators.fat_tree(4), None),
    (lambda: generators.dgx(3), None), (lambda: generators.two_sites(2, 4), None),
    (lambda: _slowed(generators.two_tier(4, 4), "gpu2_1", 3), 3),
    (lambda: generators.torus_2d(4, 4), None)])
@pytest.mark.parametrize("algorithm", ["ring", "tree"])
def test_groups_sharing_a_router_get_what_each_gets_alone(make, times, algorithm):
    """Groups whose bandwidth phases have the same shape share one solve (_link_shape):
    every group's choice, timed on a router shared with the others, equals the choice
    worked out on a router of its own, bit for bit; and groups that differ still differ
    (two_tier: its blocks and the whole; one block slowed: a third time)."""
    graph = make()
    shared = Router(graph)
    seen = set()
    for members in _level_groups(graph):
        together = choose(graph, members, 3e7, algorithm, router=shared)
        alone = choose(graph, members, 3e7, algorithm, router=Router(graph))
        assert repr(together) == repr(alone)
        seen.add(together["time_s"])
    assert times is None or len(seen) == times
