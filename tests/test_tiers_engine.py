"""Bytes and communication time per tier, against closed forms, on two and three levels."""

import numpy as np
import pytest

from simulator.cluster.generators import two_tier
from simulator.cluster.topology import topology_from_data
from simulator.engine.timeline import cluster_gpus, cluster_groupings, simulate_timeline
from simulator.learning.schedules import hierarchical, local, postlocal
from simulator.network.collectives import run_groups

M = 4e6                                     # bytes per GPU per all-reduce
LINK = {"bandwidth": "10 GB/s", "latency": "1 us"}
# 2 sites x 2 racks x 2 nodes x 2 GPUs; every link alike, so only the structure matters.
SITES = {"blocks": 8, "gpus_per_block": 2, "block_level": "node",
         "gpu": {"peak_flops": "10 TFLOP/s", "efficiency": 0.5},
         "intra_block": LINK, "inter_block": LINK,
         "levels": [{"name": "rack", "size": 2, "uplink": LINK},
                    {"name": "site", "size": 2, "uplink": LINK}]}
TIERS = ("intra_node", "inter_node", "inter_rack", "inter_site")


def route_tiers(a, b):
    """Links of each tier on the route between GPUs gpu{n}_{i}: up to the lowest common
    switch and down again, from the names alone (node n is in rack n // 2, site n // 4)."""
    na, nb = int(a[3:].split("_")[0]), int(b[3:].split("_")[0])
    counts = dict.fromkeys(TIERS, 0)
    counts["intra_node"] = 2
    if na != nb:
        counts["inter_node"] = 2
    if na // 2 != nb // 2:
        counts["inter_rack"] = 2
    if na // 4 != nb // 4:
        counts["inter_site"] = 2
    return counts


def ring_bytes(members):
    """Bytes per tier of one ring all-reduce of M over `members`: 2(p-1) steps in which
    every member sends M/p to its successor."""
    p = len(members)
    total = dict.fromkeys(TIERS, 0.0)
    for i in range(p):
        for tier, links in route_tiers(members[i], members[(i + 1) % p]).items():
            total[tier] += 2 * (p - 1) * (M / p) * links
    return total


def test_a_three_level_schedule_matches_closed_forms_for_syncs_bytes_and_time():
    graph = topology_from_data(SITES)
    gpus, _ = cluster_gpus(graph)
    groups = cluster_groupings(graph, gpus)
    assert list(groups) == ["node", "rack", "site", "global"]
    T, c, delay = 32, 1e-3, 0.5
    action = hierarchical(periods=[("node", 2), ("rack", 4), ("site", 8), ("global", 16)],
                          block_level="node")
    timeline = simulate_timeline(graph, gpus, groups, [action(t) for t in range(1, T + 1)],
                                 np.full((16, T), c), message_bytes=M, global_sync_delay_s=delay)
    # syncs: the outermost level whose period divides t
    n = {"node": T // 2 - T // 4, "rack": T // 4 - T // 8, "site": T // 8 - T // 16,
         "global": T // 16}
    assert timeline.syncs == n == {"node": 8, "rack": 4, "site": 2, "global": 2}
    # bytes: every group of the level all-reduces at once
    want = dict.fromkeys(TIERS, 0.0)
    for level, count in n.items():
        for members in groups[level]:
            for tier, b in ring_bytes([gpus[i] for i in members]).items():
                want[tier] += count * b
    assert timeline.comm_bytes == pytest.approx(want, rel=1e-12)
    assert want["inter_site"] == 2 * 30 * (M / 16) * 2 * 2     # 2 syncs, 30 steps, 2 ring edges
    # time: each level's syncs on the tier it crosses outermost, per GPU
    one = {level: run_groups(graph, [[gpus[i] for i in groups[level][0]]], M)[0] for level in n}
    by_tier = timeline.comm_time_by_tier_s
    assert by_tier["intra_node"] == pytest.approx(n["node"] * one["node"], rel=1e-12)
    assert by_tier["inter_node"] == pytest.approx(n["rack"] * one["rack"], rel=1e-12)
    assert by_tier["inter_rack"] == pytest.approx(n["site"] * one["site"], rel=1e-12)
    assert by_tier["inter_site"] == pytest.approx(n["global"] * (one["global"] + delay), rel=1e-12)
    assert sum(by_tier.values()) == pytest.approx(timeline.comm_time_s, rel=1e-12)
    assert timeline.simulated_time_s == pytest.approx(T * c + sum(by_tier.values()), rel=1e-12)


def test_two_level_time_per_tier_is_block_syncs_inside_and_global_syncs_between():
    graph = two_tier(4, 2, intra_bandwidth=25e9, intra_latency=1e-6, inter_bandwidth=1.25e9,
                     inter_latency=5e-6, peak_flops=10e12, efficiency=0.5)
    gpus, blocks = cluster_gpus(graph)
    T, delay = 24, 0.25
    action = hierarchical(2, 3)
    timeline = simulate_timeline(graph, gpus, blocks, [action(t) for t in range(1, T + 1)],
                                 np.full((8, T), 1e-3), message_bytes=M, global_sync_delay_s=delay)
    t_block, _ = run_groups(graph, [[gpus[0], gpus[1]]], M)
    t_all, _ = run_groups(graph, [gpus], M)
    assert timeline.comm_time_by_tier_s == pytest.approx(
        {"intra_block": (T // 2 - T // 6) * t_block, "inter_block": (T // 6) * (t_all + delay)},
        rel=1e-12)


def test_pytorch_post_local_sgd_times_both_syncs_of_a_step():
    graph = two_tier(4, 2, intra_bandwidth=25e9, intra_latency=1e-6, inter_bandwidth=1.25e9,
                     inter_latency=5e-6, peak_flops=10e12, efficiency=0.5)
    gpus, blocks = cluster_gpus(graph)
    T, S, H = 20, 4, 4
    action = postlocal(H, S, convention="pytorch")          # block gradients after the switch
    timeline = simulate_timeline(graph, gpus, blocks, [action(t) for t in range(1, T + 1)],
                                 np.full((8, T), 1e-3), message_bytes=M)
    t_block, b_block = run_groups(graph, [[gpus[i] for i in b] for b in blocks], M)
    t_all, b_all = run_groups(graph, [gpus], M)
    n_global = S + len(range(S + 1, T + 1, H))               # gradients, then averages at 5, 9..
    n_block = T - S
    assert timeline.syncs == {"block": n_block, "global": n_global}
    assert timeline.simulated_time_s == pytest.approx(
        T * 1e-3 + n_global * t_all + n_block * t_block, rel=1e-12)
    for tier in ("intra_block", "inter_block"):
        assert timeline.comm_bytes[tier] == pytest.approx(
            n_global * b_all[tier] + n_block * b_block[tier], rel=1e-12)
    kinds = [(step, kind) for step, kind, group, _, _ in timeline.sync_log if group in (-1, 0)]
    assert (5, "block gradient") in kinds and (5, "global") in kinds
    assert kinds.index((5, "block gradient")) < kinds.index((5, "global"))  # gradients first


def test_local_sgd_in_both_conventions_costs_the_same_per_sync():
    graph = two_tier(2, 2, peak_flops=10e12, efficiency=0.5)
    gpus, blocks = cluster_gpus(graph)
    T = 13
    paper = simulate_timeline(graph, gpus, blocks, [local(4)(t) for t in range(1, T + 1)],
                              np.full((4, T), 1e-3), message_bytes=M)
    torch = simulate_timeline(graph, gpus, blocks,
                              [local(4, convention="pytorch")(t) for t in range(1, T + 1)],
                              np.full((4, T), 1e-3), message_bytes=M)
    assert paper.syncs["global"] == 3 and torch.syncs["global"] == 4     # 4, 8, 12 / 1, 5, 9, 13
    assert (torch.comm_time_s / 4) == pytest.approx(paper.comm_time_s / 3, rel=1e-12)
