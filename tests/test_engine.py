"""Schedules, the SimPy timeline and the training replay, against closed forms and equivalences."""

from types import SimpleNamespace

import numpy as np
import pytest

from simulator.cluster.generators import two_tier
from simulator.engine.timeline import cluster_gpus, compute_times, simulate_timeline
from simulator.learning.datasets import BatchStream, load_dataset, shard_indices
from simulator.learning.schedules import count_syncs, schedule_for
from simulator.learning.training import train
from simulator.learning.workload import OptimizerConfig, make_model
from simulator.network.collectives import run_groups


def variant(algorithm, H=1, Hb=1, switch_step=None):
    return SimpleNamespace(algorithm=algorithm, H=H, Hb=Hb, switch_step=switch_step)


def actions_of(v, steps):
    action = schedule_for(v)
    return [action(t) for t in range(1, steps + 1)]


# --------------------------------------------------------------------------- ring order
def test_cluster_gpus_is_ring_order_of_the_gpus():
    """cluster_gpus concatenates gpu_blocks' lists instead of sorting again: the same order
    as ring_order on every shipped topology, generated ones, and names whose natural keys
    tie (gpu01, gpu1) or that a plain sort would misorder (gpu10 before gpu2)."""
    import networkx as nx

    from simulator.cluster import generators
    from simulator.cluster.topology import gpu_blocks, load_topology
    from simulator.network.collectives import ring_order
    from simulator.utils.shipped import shipped_dir

    graphs = [load_topology(p) for p in sorted(shipped_dir("topologies").glob("*.yaml"))]
    graphs += [two_tier(3, 4), generators.dgx(2), generators.two_sites(2, 4),
               generators.fat_tree(4)]
    tied = nx.Graph()
    for name, block in [("gpu1", "b10"), ("gpu01", "b10"), ("gpu10", "b2"), ("gpu2", "b2"),
                        ("gpu3", "b10")]:
        tied.add_node(name, kind="gpu", block=block)
    graphs.append(tied)
    for graph in graphs:
        gpus, blocks = cluster_gpus(graph)
        assert gpus == ring_order(graph, [g for b in gpu_blocks(graph).values() for g in b])
        assert [[gpus[i] for i in b] for b in blocks] == list(gpu_blocks(graph).values())


# --------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("steps", [1, 7, 24, 25])
def test_sync_counts_match_closed_forms(steps):
    H, Hb, S = 3, 2, 5
    assert count_syncs(schedule_for(variant("minibatch")), steps) == \
        {"gradient": steps, "global": 0, "block": 0}
    assert count_syncs(schedule_for(variant("local", H)), steps) == \
        {"gradient": 0, "global": steps // H, "block": 0}
    post = count_syncs(schedule_for(variant("postlocal", H, switch_step=S)), steps)
    assert post == {"gradient": min(steps, S),                    # H counted from the switch
                    "global": (steps - S) // H if steps > S else 0, "block": 0}
    assert count_syncs(schedule_for(variant("hierarchical", H, Hb)), steps) == \
        {"gradient": 0, "global": steps // (H * Hb), "block": steps // H - steps // (H * Hb)}


def test_degenerate_variants_have_the_same_schedule():
    steps = 30
    assert actions_of(variant("hierarchical", 3, 1), steps) == actions_of(variant("local", 3), steps)
    assert actions_of(variant("postlocal", 3, switch_step=0), steps) == actions_of(variant("local", 3), steps)
    assert actions_of(variant("postlocal", 3, switch_step=steps), steps) == \
        actions_of(variant("minibatch"), steps)


def test_unknown_algorithm_is_an_input_error():
    with pytest.raises(ValueError, match="unknown algorithm 'locl'"):
        schedule_for(variant("locl"))


# --------------------------------------------------------------------------- timeline
@pytest.fixture(scope="module")
def cluster():
    graph = two_tier(4, 2, intra_bandwidth=25e9, intra_latency=1e-6,
                     inter_bandwidth=1.25e9, inter_latency=5e-6, peak_flops=10e12, efficiency=0.5)
    gpus, blocks = cluster_gpus(graph)
    return graph, gpus, blocks


def test_cluster_gpus_keep_blocks_adjacent(cluster):
    graph, gpus, blocks = cluster
    assert gpus == ["gpu0_0", "gpu0_1", "gpu1_0", "gpu1_1", "gpu2_0", "gpu2_1", "gpu3_0", "gpu3_1"]
    assert blocks == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_compute_time_is_flops_over_achieved_rate_and_jitter_has_mean_one(cluster):
    graph, gpus, _ = cluster
    c = compute_times(graph, gpus, 3, flops_per_sample=2e6, batch_size=50)
    assert np.all(c == 2e6 * 50 / (10e12 * 0.5))
    j = compute_times(graph, gpus, 4000, flops_per_sample=2e6, batch_size=50, jitter=0.2, seed=1)
    assert j.mean() == pytest.approx(2e-5, rel=0.01)
    assert (j / 2e-5).std() == pytest.approx(0.2, rel=0.05)
    again = compute_times(graph, gpus, 4000, flops_per_sample=2e6, batch_size=50, jitter=0.2, seed=1)
    assert np.array_equal(j, again)


@pytest.mark.parametrize("v", [variant("minibatch"), variant("local", 4), variant("postlocal", 2, switch_step=5),
                               variant("hierarchical", 2, 3)])
def test_simulated_time_is_compute_plus_independently_computed_collectives(cluster, v):
    graph, gpus, blocks = cluster
    steps, nbytes, delay_s = 24, 4e6, 0.25
    actions = actions_of(v, steps)
    compute_s = compute_times(graph, gpus, steps, flops_per_sample=1e7, batch_size=32)
    tl = simulate_timeline(graph, gpus, blocks, actions, compute_s, message_bytes=nbytes,
                           global_sync_delay_s=delay_s)
    t_all, bytes_all = run_groups(graph, [gpus], nbytes)
    t_blocks, bytes_blocks = run_groups(graph, [[gpus[i] for i in b] for b in blocks], nbytes)
    n = count_syncs(schedule_for(v), steps)
    n_global = n["gradient"] + n["global"]
    want = steps * compute_s[0, 0] + n_global * (t_all + delay_s) + n["block"] * t_blocks
    assert tl.simulated_time_s == pytest.approx(want, rel=1e-12)
    assert tl.syncs == {"global": n_global, "block": n["block"]}
    for tier in ("intra_block", "inter_block"):
        assert tl.comm_bytes[tier] == pytest.approx(
            n_global * bytes_all[tier] + n["block"] * bytes_blocks[tier], rel=1e-12)
    assert tl.compute_time_s == pytest.approx(steps * compute_s[0, 0], rel=1e-12)
    assert tl.wait_time_s == 0
    assert tl.step_end_s[-1] == tl.simulated_time_s


def test_a_slow_gpu_delays_exactly_the_syncs_of_its_groups(cluster):
    graph, gpus, blocks = cluster
    # hierarchical H=1, Hb=2: block syncs after odd steps, global after even steps.
    actions = actions_of(variant("hierarchical", 1, 2), 2)
    compute_s = compute_times(graph, gpus, 2, flops_per_sample=1e7, batch_size=32,
                              slow_gpus={"gpu2_1": 3.0})
    c = compute_s[0, 0]
    tl = simulate_timeline(graph, gpus, blocks, actions, compute_s, message_bytes=1e6)
    t_block, _ = run_groups(graph, [[gpus[0], gpus[1]]], 1e6)
    starts = {(step, group): start for step, kind, group, start, end in tl.sync_log}
    for b in (0, 1, 3):
        assert starts[(1, b)] == pytest.approx(c, rel=1e-12)          # on time
    assert starts[(1, 2)] == pytest.approx(3 * c, rel=1e-12)          # waits for gpu2_1
    # The global sync waits for block 2: gpu2_1 computes 3c, syncs, computes 3c again.
    assert starts[(2, -1)] == pytest.approx(3 * c + t_block + 3 * c, rel=1e-12)
    assert tl.wait_time_s > 0


def test_blocks_that_share_links_contend_on_the_shared_network():
    # A ring of 4 GPUs where blocks are {g0, g2} and {g1, g3}: each block's pair route
    # crosses the other block's GPUs' links, so their syncs share the network.
    import networkx as nx
    g = nx.cycle_graph([f"g{i}" for i in range(4)])
    for i, n in enumerate(g):
        g.nodes[n].update(kind="gpu", block=f"b{i % 2}", peak_flops=1e12, efficiency=1.0)
    for e in g.edges:
        g.edges[e].update(bandwidth=1e9, latency=0.0, tier="inter_block")
    gpus, blocks = cluster_gpus(g)
    tl = simulate_timeline(g, gpus, blocks, ["block"], np.zeros((4, 1)), message_bytes=1e6)
    alone, _ = run_groups(g, [[gpus[i] for i in blocks[0]]], 1e6)
    together, _ = run_groups(g, [[gpus[i] for i in b] for b in blocks], 1e6)
    assert together > alone
    assert tl.simulated_time_s == pytest.approx(together, rel=1e-12)


# --------------------------------------------------------------------------- training equivalences
class FixedStream:
    """Hands out given batches: idx[t] of shape (K, B)."""

    def __init__(self, batches, steps_per_epoch=10):
        self.batches = list(batches)
        self.workers = self.batches[0].shape[0]
        self.steps_per_epoch = steps_per_epoch

    def next_batch(self):
        return self.batches.pop(0)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def run(model, data, batches, actions, blocks, optimizer):
    return train(model, data, FixedStream(batches), actions=actions, blocks=blocks,
                 optimizer=optimizer, eval_every=1000)


def test_minibatch_on_k_workers_equals_one_worker_with_k_times_the_batch(digits):
    K, B, steps = 4, 8, 15
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, len(digits.y_train), (K, B)) for _ in range(steps)]
    model = make_model("mlp", digits.input_dim, digits.num_classes, hidden=(16,), seed=3)
    opt = OptimizerConfig(lr=0.05, warmup_epochs=0.5, decay_epochs=(1,), scale_lr_with_workers=False)
    many = run(model, digits, batches, ["gradient"] * steps, [[0, 1], [2, 3]], opt)
    one = run(model, digits, [b.reshape(1, K * B) for b in batches], [None] * steps, [[0]], opt)
    np.testing.assert_allclose(many.final_params, one.final_params, rtol=0, atol=1e-10)


def test_local_sgd_with_h1_equals_minibatch_and_hierarchical_hb1_equals_local(digits):
    K, B, steps = 4, 8, 12
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, len(digits.y_train), (K, B)) for _ in range(steps)]
    model = make_model("mlp", digits.input_dim, digits.num_classes, hidden=(16,), seed=3)
    opt = OptimizerConfig(lr=0.05, warmup_epochs=0.5)
    blocks = [[0, 1], [2, 3]]
    mini = run(model, digits, batches, actions_of(variant("minibatch"), steps), blocks, opt)
    local1 = run(model, digits, batches, actions_of(variant("local", 1), steps), blocks, opt)
    np.testing.assert_allclose(local1.final_params, mini.final_params, rtol=0, atol=1e-10)
    local3 = run(model, digits, batches, actions_of(variant("local", 3), steps), blocks, opt)
    hier = run(model, digits, batches, actions_of(variant("hierarchical", 3, 1), steps), blocks, opt)
    post = run(model, digits, batches, actions_of(variant("postlocal", 3, switch_step=0), steps), blocks, opt)
    assert np.array_equal(hier.final_params, local3.final_params)
    assert np.array_equal(post.final_params, local3.final_params)
    assert not np.allclose(local3.final_params, mini.final_params)    # H matters


def test_block_average_touches_only_its_block(digits):
    K, B = 4, 8
    rng = np.random.default_rng(2)
    batches = [rng.integers(0, len(digits.y_train), (K, B))]
    model = make_model("softmax", digits.input_dim, digits.num_classes, seed=0)
    opt = OptimizerConfig(lr=0.1, warmup_epochs=0, scale_lr_with_workers=False)
    # One block step on two blocks equals two separate 2-worker global averages.
    both = train(model, digits, FixedStream(batches), actions=["block"], blocks=[[0, 1], [2, 3]],
                 optimizer=opt, eval_every=1)
    halves = [train(model, digits, FixedStream([batches[0][i:i + 2]]), actions=["global"],
                    blocks=[[0, 1]], optimizer=opt, eval_every=1).final_params for i in (0, 2)]
    np.testing.assert_allclose(both.final_params, (halves[0] + halves[1]) / 2, atol=1e-12)


def test_divergence_is_reported(digits):
    shards = shard_indices(digits.y_train, 2, seed=0)
    model = make_model("mlp", digits.input_dim, digits.num_classes, seed=0)
    opt = OptimizerConfig(lr=1e6, warmup_epochs=0, momentum=0.9)
    result = train(model, digits, BatchStream(shards, 16, seed=0), actions=[None] * 50,
                   blocks=[[0], [1]], optimizer=opt, eval_every=5)
    assert result.diverged
    assert result.final_test_accuracy is None
    assert result.curve[-1][1:] == [None, None]


def test_groups_of_one_gpu_sync_in_no_time():
    graph = two_tier(4, 1, peak_flops=10e12, efficiency=0.5)          # blocks of one GPU
    gpus, blocks = cluster_gpus(graph)
    compute_s = compute_times(graph, gpus, 4, flops_per_sample=1e7, batch_size=32)
    tl = simulate_timeline(graph, gpus, blocks, actions_of(variant("hierarchical", 1, 2), 4),
                           compute_s, message_bytes=1e6)
    t_all, _ = run_groups(graph, [gpus], 1e6)
    assert tl.simulated_time_s == pytest.approx(4 * compute_s[0, 0] + 2 * t_all, rel=1e-12)
    single = two_tier(1, 1, peak_flops=10e12, efficiency=0.5)
    gpus, blocks = cluster_gpus(single)
    tl = simulate_timeline(single, gpus, blocks, ["gradient"] * 3, np.full((1, 3), 0.5),
                           message_bytes=1e6, global_sync_delay_s=9.0)
    assert tl.simulated_time_s == 1.5 and tl.comm_bytes == {"intra_block": 0.0, "inter_block": 0.0}


def test_run_variant_holds_the_collector_off_without_faults_only(monkeypatch):
    """A run without faults makes almost no cyclic garbage: the collector is off for it
    (and back on after); a fault timeline leaves garbage as it goes: the collector runs."""
    import dataclasses
    import gc

    from simulator.experiments import runner
    from simulator.experiments.scenario import load_scenario

    seen = []
    monkeypatch.setattr(runner, "_run_variant", lambda *a, **k: seen.append(gc.isenabled()))
    scenario = load_scenario(None)
    assert gc.isenabled()
    runner.run_variant(scenario, scenario.variants[0])
    runner.run_variant(dataclasses.replace(scenario, faults=SimpleNamespace(policy="restart")),
                       scenario.variants[0])
    assert seen == [False, True] and gc.isenabled()
