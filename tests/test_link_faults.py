"""Links and switches going down: rerouted transfers by hand, partitions, equivalences."""

import dataclasses

import networkx as nx
import numpy as np
import pytest

from helpers import fault_cluster
from simulator.cluster.generators import two_tier
from simulator.engine.fault_timeline import simulate_fault_timeline
from simulator.engine.faults import FaultEvent, FaultPlan, RandomFaults
from simulator.engine.timeline import (
    cluster_gpus,
    cluster_groupings,
    compute_times,
    simulate_timeline,
)
from simulator.learning.schedules import hierarchical, local, minibatch
from simulator.network.collectives import run_groups
from simulator.network.flows import simulate_transfers
from simulator.network.routing import Router


def two_paths(fast=1e9, slow=5e8, latency=1e-6):
    """a and b joined through s1 (fast, taken first: 's1' < 's2') and through s2 (slow)."""
    g = nx.Graph()
    for u, v, bw in (("a", "s1", fast), ("s1", "b", fast), ("a", "s2", slow), ("s2", "b", slow)):
        g.add_edge(u, v, bandwidth=bw, latency=latency, tier="inter_block")
    return g


def one(graph, nbytes=1e6, start=0.0, events=()):
    return simulate_transfers(graph, [{"src": "a", "dst": "b", "bytes": nbytes, "start": start}],
                              list(events))[0]


# --------------------------------------------------------------------------- transfers
def test_a_transfer_continues_on_the_other_path_from_where_it_was():
    """2 us of latency, then 1 GB/s; at 0.4 ms 398 kB have flowed: the other 602 kB take the
    0.5 GB/s path at once (no second latency phase)."""
    down = {"time": 4e-4, "link": ("s1", "b"), "up": False}
    assert one(two_paths(), events=[down]) == pytest.approx(4e-4 + (1e6 - 398e3) / 5e8, rel=1e-12)
    assert one(two_paths()) == pytest.approx(2e-6 + 1e6 / 1e9, rel=1e-12)     # without it


def test_a_transfer_rerouted_in_its_latency_phase_keeps_its_start():
    down = {"time": 1e-6, "link": ("a", "s1"), "up": False}
    assert one(two_paths(), events=[down]) == pytest.approx(2e-6 + 1e6 / 5e8, rel=1e-12)


def test_the_new_path_is_shared_max_min_fair():
    """A second transfer already on the slow path: the rerouted one shares its 0.5 GB/s."""
    g = two_paths()
    g.add_edge("c", "s2", bandwidth=1e9, latency=1e-6, tier="inter_block")   # c - s2 - b
    transfers = [{"src": "a", "dst": "b", "bytes": 1e6, "start": 0.0},
                 {"src": "c", "dst": "b", "bytes": 1e6, "start": 0.0}]
    a_s, c_s = simulate_transfers(g, transfers, [{"time": 4e-4, "link": ("a", "s1"),
                                                  "up": False}])
    # Until 0.4 ms: a alone on s1 at 1 GB/s (398 kB sent), c alone on s2-b at 0.5 GB/s
    # (199 kB). Then both on s2-b at 0.25 GB/s each: a has 602 kB left, c 801 kB.
    c_left, a_left = 1e6 - (4e-4 - 2e-6) * 5e8, 1e6 - 398e3
    t_a = 4e-4 + a_left / 2.5e8                               # a finishes first (602 < 801)
    c_left -= a_left
    assert a_s == pytest.approx(t_a, rel=1e-12)
    assert c_s == pytest.approx(t_a + c_left / 5e8, rel=1e-12)


def test_a_partition_holds_a_transfer_until_a_link_returns():
    cut = [{"time": 4e-4, "link": ("a", "s1"), "up": False},
           {"time": 4e-4, "link": ("a", "s2"), "up": False}]
    heal = [*cut, {"time": 1e-3, "link": ("a", "s2"), "up": True}]
    assert one(two_paths(), events=heal) == pytest.approx(1e-3 + 602e3 / 5e8, rel=1e-12)
    assert one(two_paths(), events=cut) == float("inf")


def test_bytes_are_counted_on_the_links_they_crossed():
    from simulator.network.flows import Network
    import simpy

    g = two_paths()
    env = simpy.Environment()
    router = Router(g)
    net = Network(env, g, router)
    net.send("a", "b", 1e6)
    env.timeout(4e-4).callbacks.append(lambda _: net.reroute(router.avoiding([("s1", "b")])))
    env.run()
    links = net.bytes_by_link()
    assert links[("a", "s1")] == pytest.approx(398e3) and links[("s1", "b")] == pytest.approx(398e3)
    assert links[("a", "s2")] == pytest.approx(602e3) and links[("s2", "b")] == pytest.approx(602e3)
    assert sum(net.bytes_by_tier().values()) == pytest.approx(2e6)


def test_a_router_avoiding_links_keeps_the_numbering_and_the_rule():
    g = nx.cycle_graph(["a", "b", "c", "d"])
    router = Router(g)
    other = router.avoiding([("c", "b")])
    assert other.links == router.links and other.route("a", "c") == ["a", "d", "c"]
    assert router.route("a", "c") == ["a", "b", "c"]                   # untouched
    assert router.avoiding([]) is router
    reduced = g.copy()
    reduced.remove_edge("b", "c")
    for src in g:
        for dst in g:
            assert other.route(src, dst) == Router(reduced).route(src, dst)


# --------------------------------------------------------------------------- the engine
@pytest.fixture(scope="module")
def cluster():
    return fault_cluster(2)


def run(cluster, schedule, steps, plan, **kw):
    graph, gpus, groups = cluster
    compute_s = compute_times(graph, gpus, steps, flops_per_sample=2e6, batch_size=50)
    return simulate_fault_timeline(graph, gpus, groups, [schedule(t) for t in range(1, steps + 1)],
                                   compute_s, message_bytes=1e6, plan=plan, **kw)


def test_a_partition_blocks_the_sync_until_the_link_returns(cluster):
    """Block 1's uplink goes down during step 3's compute for 50 ms: the global sync of step
    3 waits for it, then every step is as before. T = tau + D + a + (T - 3)(c + a)."""
    graph, gpus, _ = cluster
    c = 2e6 * 50 / (10e12 * 0.5)
    a, _ = run_groups(graph, [gpus], 1e6)
    tau, down = 2 * (c + a) + c / 2, 0.05
    plan = FaultPlan(events=(FaultEvent("link", ("sw1", "core"), time_s=tau, down_for_s=down),))
    result = run(cluster, minibatch(), 10, plan)
    assert result.simulated_time_s == pytest.approx(tau + down + a + 7 * (c + a), rel=1e-12)
    assert result.sync_log[2][3] == pytest.approx(tau + down)          # step 3's sync starts
    assert result.faults.partitions == 1 and result.faults.link_failures == 1
    assert [e["what"] for e in result.faults.events] == ["link down", "partition", "link up"]
    assert result.faults.failure_wait_s == pytest.approx(tau + down - 3 * c - 2 * a)
    # on_partition: fail stops the run there, saying why
    failed = run(cluster, minibatch(), 10, dataclasses.replace(plan, on_partition="fail"))
    assert failed.faults.failed.startswith("the global sync of step 3 lost every path")
    assert failed.steps_completed == 2


def test_a_partition_mid_collective_holds_its_transfers_until_the_link_returns(cluster):
    """Block 1's uplink goes down half-way through step 1's ring all-reduce, for D = 50 ms.
    The two ring transfers that cross it (gpu0_1 -> gpu1_0 and gpu1_1 -> gpu0_0) stall with
    the bytes they have left; when the link returns they go on at the rate they had (each is
    alone on its links), so the all-reduce ends D later than on the idle network:
    T = 3 (c + a) + D, and the stall is communication time, not waiting on failures."""
    graph, gpus, _ = cluster
    c = 2e6 * 50 / (10e12 * 0.5)
    a, _ = run_groups(graph, [gpus], 1e6)
    down = 0.05
    plan = FaultPlan(events=(FaultEvent("link", ("sw1", "core"), time_s=c + a / 2,
                                        down_for_s=down),))
    result = run(cluster, minibatch(), 3, plan)
    assert result.simulated_time_s == pytest.approx(3 * (c + a) + down, rel=1e-12)
    assert result.sync_log[0][4] == pytest.approx(c + a + down, rel=1e-12)   # step 1's end
    assert result.faults.partitions == 1 and result.faults.failure_wait_s == 0.0
    assert result.comm_time_s == pytest.approx(3 * a + down, rel=1e-12)


def test_a_lockstep_collective_cut_mid_way_fails_the_run_saying_why(cluster):
    """halving-doubling runs step after step; one that finds no path cannot wait for the
    link (only a pipelined collective's transfers, all in flight, can): the run fails."""
    graph, gpus, _ = cluster
    c = 2e6 * 50 / (10e12 * 0.5)
    a, _ = run_groups(graph, [gpus], 1e6, "halving-doubling")
    plan = FaultPlan(events=(FaultEvent("link", ("sw1", "core"), time_s=c + a / 100,
                                        down_for_s=0.05),))
    result = run(cluster, minibatch(), 3, plan, collective="halving-doubling")
    assert "in the middle of a halving-doubling all-reduce" in result.faults.failed
    assert "use timing.collective: ring or tree" in result.faults.failed
    assert result.steps_completed == 0


def test_local_sgd_computes_on_through_a_partition(cluster):
    """Block syncs need no uplink: hierarchical SGD loses only the wait at its global sync."""
    graph, gpus, groups = cluster
    tau = 1e-5
    plan = FaultPlan(events=(FaultEvent("link", ("sw1", "core"), time_s=tau, down_for_s=0.02),))
    mini = run(cluster, minibatch(), 12, plan)
    hier = run(cluster, hierarchical(2, 6), 12, plan)
    free = run(cluster, hierarchical(2, 6), 12, FaultPlan())
    assert hier.simulated_time_s < mini.simulated_time_s
    assert hier.syncs == free.syncs                              # its block syncs all ran
    assert hier.sync_log[0][3] == free.sync_log[0][3]             # the first, inside blocks


def test_a_link_down_from_the_start_is_the_graph_without_it():
    """Two paths between the blocks' switches: down for good at time 0, every sync is timed
    as on the graph without that link (same routes, by the same rule)."""
    graph = two_tier(2, 2)
    graph.add_edge("sw0", "sw1", bandwidth=2.5e9, latency=2e-6, tier="inter_block")
    gpus, _ = cluster_gpus(graph)
    groups = cluster_groupings(graph, gpus)
    reduced = graph.copy()
    reduced.remove_edge("sw0", "sw1")
    steps = 8
    compute_s = compute_times(graph, gpus, steps, flops_per_sample=2e6, batch_size=50,
                              jitter=0.1, seed=2)
    for schedule in (minibatch(), local(2)):
        acts = [schedule(t) for t in range(1, steps + 1)]
        ref = simulate_timeline(reduced, gpus, groups, acts, compute_s, message_bytes=1e6)
        plan = FaultPlan(events=(FaultEvent("link", ("sw0", "sw1"), time_s=0.0),))
        got = simulate_fault_timeline(graph, gpus, groups, acts, compute_s, message_bytes=1e6,
                                      plan=plan)
        assert got.simulated_time_s == pytest.approx(ref.simulated_time_s, rel=1e-12)
        assert np.allclose(got.step_end_s, ref.step_end_s, rtol=1e-12)
        assert got.comm_bytes == pytest.approx(ref.comm_bytes)


def test_a_link_failing_mid_collective_reroutes_it(cluster):
    """The direct sw0 - sw1 link (taken first) fails mid all-reduce: the collective finishes
    on the slower path through the core, later than on the idle network, no later than on
    the core path alone."""
    graph = two_tier(2, 2, inter_bandwidth=0.5e9)
    graph.add_edge("sw0", "sw1", bandwidth=1.25e9, latency=5e-6, tier="inter_block")
    gpus, _ = cluster_gpus(graph)
    groups = cluster_groupings(graph, gpus)
    reduced = graph.copy()
    reduced.remove_edge("sw0", "sw1")
    fast, _ = run_groups(graph, [gpus], 1e6)
    slow, _ = run_groups(reduced, [gpus], 1e6)
    assert slow > fast
    compute_s = compute_times(graph, gpus, 1, flops_per_sample=2e6, batch_size=50)
    tau = compute_s[0, 0] + fast / 2
    plan = FaultPlan(events=(FaultEvent("link", ("sw0", "sw1"), time_s=tau),))
    got = simulate_fault_timeline(graph, gpus, groups, [minibatch()(1)], compute_s,
                                  message_bytes=1e6, plan=plan)
    took = got.simulated_time_s - compute_s[0, 0]
    assert fast < took <= slow * (1 + 1e-9)
    assert got.faults.partitions == 0 and got.faults.link_failures == 1


def test_a_switch_takes_its_links_down(cluster):
    graph, gpus, _ = cluster
    plan = FaultPlan(events=(FaultEvent("switch", "core", step=2, down_for_s=0.01),))
    result = run(cluster, minibatch(), 4, plan)
    assert [e["what"] for e in result.faults.events][:2] == ["switch down", "partition"]
    assert result.faults.events[-1]["what"] == "switch up"


def test_random_link_failures_are_seeded():
    graph = two_tier(4, 2)
    gpus, _ = cluster_gpus(graph)
    groups = cluster_groupings(graph, gpus)
    compute_s = compute_times(graph, gpus, 40, flops_per_sample=2e8, batch_size=50)
    acts = [local(2)(t) for t in range(1, 41)]
    plan = FaultPlan(random=RandomFaults(link_mtbf_s=0.05, link_down_for_s=2e-3))
    a = simulate_fault_timeline(graph, gpus, groups, acts, compute_s, message_bytes=1e6,
                                plan=plan, seed=3)
    b = simulate_fault_timeline(graph, gpus, groups, acts, compute_s, message_bytes=1e6,
                                plan=plan, seed=3)
    c = simulate_fault_timeline(graph, gpus, groups, acts, compute_s, message_bytes=1e6,
                                plan=plan, seed=4)
    assert a.faults.link_failures > 0 and a.faults.events == b.faults.events
    assert a.simulated_time_s == b.simulated_time_s and a.faults.events != c.faults.events


def test_the_rerouting_example_of_docs_faults_md_prints_what_it_shows():
    import doctest
    from pathlib import Path

    page = Path(__file__).resolve().parent.parent / "docs" / "faults.md"
    failures, tried = doctest.testfile(str(page), module_relative=False)
    assert tried >= 5 and failures == 0
