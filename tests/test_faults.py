"""Faults in the engine: closed forms of restarts, survivors' syncs, draws, equivalences."""

import dataclasses
import math

import numpy as np
import pytest

from helpers import fault_cluster
from simulator.cluster.topology import load_topology
from simulator.engine.fault_timeline import simulate_fault_timeline
from simulator.engine.faults import (
    FaultEvent,
    FaultPlan,
    Lifetimes,
    RandomFaults,
    Stragglers,
    resolve_steps,
    straggler_factors,
)
from simulator.engine.timeline import (
    cluster_gpus,
    cluster_groupings,
    compute_times,
    simulate_timeline,
)
from simulator.learning.schedules import hierarchical, local, minibatch, postlocal
from simulator.network.collectives import run_groups

MESSAGE = 1e6


@pytest.fixture(scope="module")
def cluster():
    return fault_cluster(4)


def actions(schedule, steps):
    return [schedule(t) for t in range(1, steps + 1)]


def fault_run(cluster, schedule, steps, plan, compute_s=None, **kw):
    graph, gpus, groups = cluster
    if compute_s is None:
        compute_s = compute_times(graph, gpus, steps, flops_per_sample=2e6, batch_size=50)
    return simulate_fault_timeline(graph, gpus, groups, actions(schedule, steps), compute_s,
                                   message_bytes=MESSAGE, plan=plan, **kw)


# --------------------------------------------------------------------------- equivalence
def same_timeline(a, b):
    for f in dataclasses.fields(a):
        if f.name in ("faults", "participation", "spans", "steps_completed"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y, f.name


@pytest.mark.parametrize("topology", ["seed_8x2", "two_datacenter", "sites_2x2x2x2"])
@pytest.mark.parametrize("name", ["minibatch", "local", "hierarchical", "postlocal pytorch",
                                  "groups_of_2"])
def test_no_fault_firing_is_exactly_the_fault_free_timeline(topology, name):
    """With nothing failing (or a failure long after the end) the fault engine computes
    what simulate_timeline computes, field for field, bit for bit."""
    graph = load_topology(topology)
    gpus, _ = cluster_gpus(graph)
    groups = cluster_groupings(graph, gpus)
    inner = next(iter(groups))
    schedule = {"minibatch": minibatch(), "local": local(4),
                "hierarchical": hierarchical(2, 3, block_level=inner),
                "postlocal pytorch": postlocal(4, 10, convention="pytorch", block_level=inner),
                "groups_of_2": hierarchical(periods=[("groups_of_2", 2), ("global", 4)])}[name]
    steps = 24
    compute_s = compute_times(graph, gpus, steps, flops_per_sample=2.4e8, batch_size=32,
                              jitter=0.1, seed=3)
    kw = {"message_bytes": 1.08e6, "global_sync_delay_s": 0.01, "record_in_flight": True,
          "record_gpu_steps": True}
    reference = simulate_timeline(graph, gpus, groups, actions(schedule, steps), compute_s, **kw)
    late = (FaultEvent("gpu", gpus[3], time_s=1e6), FaultEvent("block", next(iter(
        graph.nodes[g]["block"] for g in gpus)), step=steps + 1))
    for plan in (FaultPlan(), FaultPlan(policy="elastic", events=late),
                 FaultPlan(events=late, random=RandomFaults(gpu_mtbf_s=1e9))):
        got = simulate_fault_timeline(graph, gpus, groups, actions(schedule, steps), compute_s,
                                      plan=plan, **kw)
        same_timeline(reference, got)
        assert got.faults.failures == 0 and got.faults.events == []


def test_no_fault_firing_on_a_shared_network_is_the_fault_free_timeline():
    """Blocks whose rings cross a common link run on one shared network (the contended path)."""
    import networkx as nx

    g = nx.path_graph(["g0", "g1", "g2", "g3"])
    for n, block in zip(g, "abab"):
        g.nodes[n].update(kind="gpu", block=block, peak_flops=1e12, efficiency=1.0)
    for e in g.edges:
        g.edges[e].update(bandwidth=1e9, latency=1e-6, tier="inter_block")
    gpus, blocks = cluster_gpus(g)
    compute_s = compute_times(g, gpus, 12, flops_per_sample=1e6, batch_size=1000, jitter=0.2,
                              seed=1)
    steps = ["block", None, "global"] * 4
    kw = {"message_bytes": 1e6, "record_in_flight": True}
    reference = simulate_timeline(g, gpus, blocks, steps, compute_s, **kw)
    got = simulate_fault_timeline(g, gpus, blocks, steps, compute_s, plan=FaultPlan(
        events=(FaultEvent("gpu", "g1", time_s=1e3),)), **kw)
    same_timeline(reference, got)


# --------------------------------------------------------------------------- restart
def step_time(cluster):
    """One mini-batch step on the idle cluster, worked out independently: compute, then a
    16-GPU... here 8-GPU ring all-reduce timed on the network model alone."""
    graph, gpus, _ = cluster
    compute_s = 2e6 * 50 / (10e12 * 0.5)
    allreduce_s, _ = run_groups(graph, [gpus], MESSAGE)
    return compute_s, compute_s + allreduce_s


@pytest.mark.parametrize("fail_step, every", [(13, 5), (11, 5), (15, 5), (4, 100)])
def test_restart_loses_exactly_the_steps_since_the_checkpoint(cluster, fail_step, every):
    """A GPU fails as step s begins: the job restarts after the delay from checkpoint c and
    redoes steps c+1..s-1. Closed form: T = T_free + delay + (s - 1 - c) * step time, and the
    GPU-seconds discarded are K (s - 1 - c) * step time."""
    steps, delay_s, write_s = 20, 2.0, 0.1
    _, step_s = step_time(cluster)
    n_ckpt = (steps - 1) // every
    c = (fail_step - 1) // every * every
    plan = FaultPlan(checkpoint_every=every, checkpoint_write_s=write_s, restart_delay_s=delay_s,
                     events=(FaultEvent("gpu", "gpu1_1", step=fail_step),))
    run = fault_run(cluster, minibatch(), steps, plan)
    free_s = steps * step_s + n_ckpt * write_s
    redone = fail_step - 1 - c
    assert run.simulated_time_s == pytest.approx(free_s + delay_s + redone * step_s, rel=1e-12)
    report = run.faults
    assert (report.failures, report.restarts, report.redone_steps) == (1, 1, redone)
    assert report.discarded_gpu_s == pytest.approx(8 * redone * step_s, rel=1e-9, abs=1e-15)
    assert report.failure_wait_s == pytest.approx(delay_s)   # every GPU waits the whole delay
    assert [e["what"] for e in report.events] == ["gpu fail", "restart"]
    assert report.events[0]["step"] == fail_step
    assert report.events[1]["target"] == f"from step {c}"
    assert report.workers == [[0.0, 8], [pytest.approx(report.events[0]["time_s"]), 0],
                              [pytest.approx(report.events[1]["time_s"]), 8]]
    # the first completion of every step stands: the model of step t existed then
    free = fault_run(cluster, minibatch(), steps, dataclasses.replace(plan, events=()))
    assert np.array_equal(run.step_end_s[:fail_step - 1], free.step_end_s[:fail_step - 1])
    # per GPU, the run's time is compute + comm + wait + checkpoints + waiting on failures
    total = run.compute_time_s + run.comm_time_s + run.wait_time_s + report.checkpoint_s \
        + report.failure_wait_s
    assert total == pytest.approx(run.simulated_time_s, rel=1e-12)
    assert report.checkpoint_s == pytest.approx(n_ckpt * write_s)
    assert run.syncs == {"block": 0, "global": steps + redone}      # each execution counts
    assert len(run.sync_log) == steps + redone


def test_restart_at_a_time_loses_the_time_since_the_checkpoint_ended(cluster):
    """A failure at time tau, mid-step: T = T_free + delay + (tau - t_c), t_c the end of the
    last checkpoint's write, whatever the schedule (the resumed run is the old one shifted)."""
    steps, every, write_s, delay_s = 24, 6, 0.05, 1.5
    jittered = compute_times(cluster[0], cluster[1], steps, flops_per_sample=2e6,
                             batch_size=50, jitter=0.3, seed=7)
    for schedule in (minibatch(), local(3), hierarchical(2, 3)):
        base = FaultPlan(checkpoint_every=every, checkpoint_write_s=write_s,
                         restart_delay_s=delay_s)
        free = fault_run(cluster, schedule, steps, base, compute_s=jittered)
        t_c = free.step_end_s[11] + write_s                  # the checkpoint after step 12
        tau = (free.step_end_s[13] + free.step_end_s[14]) / 2
        run = fault_run(cluster, schedule, steps, dataclasses.replace(
            base, events=(FaultEvent("block", "block2", time_s=tau),)), compute_s=jittered)
        assert run.simulated_time_s == pytest.approx(
            free.simulated_time_s + delay_s + (tau - t_c), rel=1e-12)
        assert run.faults.discarded_gpu_s == pytest.approx(8 * (tau - t_c), rel=1e-9)


def test_a_failure_while_restarting_restarts_the_delay(cluster):
    steps = 10
    _, step_s = step_time(cluster)
    plan = FaultPlan(restart_delay_s=1.0, events=(FaultEvent("gpu", "gpu0_0", step=3),
                                                  FaultEvent("gpu", "gpu3_1", time_s=2.5 * step_s + 0.5)))
    run = fault_run(cluster, minibatch(), steps, plan)
    # first failure at 2 steps; the second 0.5 s into the 1 s delay: the job resumes 1 s
    # after it, from step 0 (no checkpoints), and runs all 10 steps
    assert run.simulated_time_s == pytest.approx(2.5 * step_s + 0.5 + 1.0 + steps * step_s)
    assert (run.faults.failures, run.faults.restarts) == (1, 1)   # the second hit no GPU at work


def test_a_failure_during_a_checkpoint_write_loses_that_checkpoint(cluster):
    steps, write_s = 20, 0.4
    _, step_s = step_time(cluster)
    tau = 10 * step_s + write_s / 2                  # writing the checkpoint of step 10
    plan = FaultPlan(checkpoint_every=5, checkpoint_write_s=write_s, restart_delay_s=1.0,
                     events=(FaultEvent("gpu", "gpu0_0", time_s=tau + write_s),))
    run = fault_run(cluster, minibatch(), steps, plan)
    t_c = 5 * step_s + write_s                       # so the one of step 5 is used
    free_s = steps * step_s + 3 * write_s
    assert run.simulated_time_s == pytest.approx(free_s + 1.0 + (tau + write_s - t_c))
    assert run.faults.checkpoints == 3               # step 5, then 10 and 15 after the restart


# --------------------------------------------------------------------------- elastic
def test_elastic_survivors_average_and_the_replacement_joins_at_a_global_sync(cluster):
    """A block fails mid-compute: the survivors' global syncs run over 6 GPUs (the 6-GPU
    ring, timed independently), the replacement joins at the end of the first global sync
    that ends after it is ready, and the participation record says so."""
    graph, gpus, _ = cluster
    steps, H = 12, 3
    compute_s, _ = step_time(cluster)
    all_s, _ = run_groups(graph, [gpus], MESSAGE)
    tau = 4.5 * compute_s + all_s                    # block1 fails computing step 5
    plan = FaultPlan(policy="elastic", rejoin_delay_s=2 * compute_s,
                     events=(FaultEvent("block", "block1", time_s=tau),))
    run = fault_run(cluster, local(H), steps, plan)
    six = [g for g in gpus if not g.startswith("gpu1_")]
    six_s, _ = run_groups(graph, [six], MESSAGE)
    # steps 5-6 (sync 6) without block1; it is ready during the 6-GPU sync of step 6 and
    # joins as it ends, holding its result
    expected = 12 * compute_s + 3 * all_s + six_s
    assert tau + 2 * compute_s < run.step_end_s[5]
    assert run.simulated_time_s == pytest.approx(expected, rel=1e-12)
    part = run.participation
    assert part.alive[:4].all() and part.alive[6:].all()
    assert not part.alive[4:6, 2:4].any() and part.alive[4:6, [0, 1, 4, 5, 6, 7]].all()
    assert part.joins == {6: [(2, "average"), (3, "average")]}
    assert run.faults.workers == [[0.0, 8], [pytest.approx(tau), 6],
                                  [pytest.approx(run.step_end_s[5]), 8]]
    assert run.faults.down_s == pytest.approx(2 / 8 * (run.step_end_s[5] - tau))
    assert run.faults.discarded_gpu_s == pytest.approx(2 * (tau - 4 * compute_s - all_s))


def test_elastic_aborts_a_sync_running_with_the_failed_gpu(cluster):
    """A GPU fails inside the all-reduce: it is abandoned at that instant and run again over
    the 7 survivors after the reconfiguration time; the time spent is waiting on failures."""
    graph, gpus, _ = cluster
    compute_s, _ = step_time(cluster)
    all_s, _ = run_groups(graph, [gpus], MESSAGE)
    seven_s, _ = run_groups(graph, [[g for g in gpus if g != "gpu2_0"]], MESSAGE)
    tau = compute_s + all_s / 3                      # a third into step 1's all-reduce
    reconf_s = 0.01
    plan = FaultPlan(policy="elastic", reconfigure_s=reconf_s, rejoin_delay_s=1e9,
                     events=(FaultEvent("gpu", "gpu2_0", time_s=tau),))
    run = fault_run(cluster, minibatch(), 2, plan)
    # step 1: abort at tau, reconfigure, 7-GPU ring; step 2: its first sync after the change
    # was that one, so no further reconfiguration
    assert run.simulated_time_s == pytest.approx(tau + reconf_s + seven_s + compute_s + seven_s)
    assert run.faults.aborted_syncs == 1
    assert run.faults.failure_wait_s == pytest.approx(7 / 8 * (all_s / 3 + reconf_s))
    assert run.participation.alive[:, 4].tolist() == [False, False]
    assert run.sync_log[0][3] == pytest.approx(tau + reconf_s)   # the re-run's start


def test_elastic_without_survivors_fails_the_run(cluster):
    plan = FaultPlan(policy="elastic", events=tuple(FaultEvent("block", f"block{b}", step=3)
                                                    for b in range(4)))
    run = fault_run(cluster, minibatch(), 10, plan)
    assert run.faults.failed.startswith("every GPU had failed")
    assert run.steps_completed == 2 and len(run.step_end_s) == 2


def test_elastic_checkpoint_rejoin_and_saved_rows(cluster):
    """Ready at once, the replacement joins after the checkpoint of step 8 (a step with a
    global sync): that checkpoint does not hold its row, the one of step 4 does."""
    plan = FaultPlan(policy="elastic", rejoin_from="checkpoint", checkpoint_every=4,
                     checkpoint_write_s=0.0, events=(FaultEvent("gpu", "gpu0_1", step=7),))
    run = fault_run(cluster, local(2), 12, plan)
    part = run.participation
    assert [t for t, _ in part.checkpoints] == [4, 8]
    assert part.checkpoints[0][1].all()
    assert part.checkpoints[1][1].tolist() == [True, False] + [True] * 6
    assert part.joins == {8: [(1, "checkpoint")]}
    assert part.alive[6:8, 1].tolist() == [False, False] and part.alive[8:, 1].all()


# --------------------------------------------------------------------------- draws
def test_random_failures_follow_the_seed_and_only_the_seed(cluster):
    plan = FaultPlan(policy="elastic", rejoin_delay_s=1e-4,
                     random=RandomFaults(gpu_mtbf_s=5e-3, block_mtbf_s=2e-2))
    a = fault_run(cluster, local(2), 40, plan, seed=1)
    b = fault_run(cluster, local(2), 40, plan, seed=1)
    c = fault_run(cluster, local(2), 40, plan, seed=2)
    assert a.faults.events == b.faults.events and a.simulated_time_s == b.simulated_time_s
    assert a.faults.failures > 0 and a.faults.events != c.faults.events
    assert np.array_equal(a.participation.alive, b.participation.alive)


def test_exponential_and_weibull_lifetimes_have_the_mean_asked_for():
    for distribution, shape in (("exponential", 1.0), ("weibull", 0.7), ("weibull", 2.0)):
        life = Lifetimes("gpu", 4000, 100.0, distribution, shape, seed=5)
        draws = np.array([life.next(i) for i in range(4000)])
        assert draws.mean() == pytest.approx(100.0, rel=0.06)
    # unit i's stream depends on i and the seed only
    assert Lifetimes("link", 3, 9.0, "weibull", 0.5, 3).next(2) == \
        Lifetimes("link", 300, 9.0, "weibull", 0.5, 3).next(2)


def test_stragglers_slow_the_expected_share_of_steps():
    p, d = 0.02, 5
    factors, episodes = straggler_factors(Stragglers(p, 4.0, d), 64, 4000, seed=0)
    slow = factors > 1
    assert set(np.unique(factors)) == {1.0, 4.0}
    assert slow.mean() == pytest.approx(1 - (1 - p) ** d, rel=0.05)   # a begin in the window
    assert episodes == pytest.approx(p * 64 * 4000, rel=0.05)
    # GPU k's draws do not depend on the others or on the run's length
    fewer, _ = straggler_factors(Stragglers(p, 4.0, d), 3, 100, seed=0)
    assert np.array_equal(fewer, factors[:3, :100])


def test_a_step_given_as_a_share_of_the_run():
    plan = FaultPlan(events=(FaultEvent("block", "b", fraction=0.4), FaultEvent("gpu", "g", step=7)))
    assert [e.step for e in resolve_steps(plan, 90).events] == [36, 7]
    assert resolve_steps(plan, 1).events[0].step == 1


def test_a_step_event_fires_as_the_first_of_the_block_starts_it(cluster):
    """Local SGD lets GPUs drift apart; the block fails when its first GPU starts step 5."""
    graph, gpus, _ = cluster
    slow = compute_times(graph, gpus, 8, flops_per_sample=2e6, batch_size=50,
                         slow_gpus={"gpu1_1": 2.0})
    plan = FaultPlan(policy="elastic", rejoin_delay_s=1e9,
                     events=(FaultEvent("block", "block1", step=5),))
    run = fault_run(cluster, local(8), 8, plan, compute_s=slow)
    assert run.faults.events[0]["time_s"] == pytest.approx(4 * slow[2, 0])   # gpu1_0's start
    assert math.isclose(run.faults.events[0]["time_s"], 4 * slow[2, 0])
