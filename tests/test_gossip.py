"""Gossip SGD: the mixing matrix (doubly stochastic), D-PSGD's update by hand, neighbour
exchanges on the network model (bytes per step in closed form, times against the flow model
run on its own), and its reduction to local SGD."""

from types import SimpleNamespace

import numpy as np
import pytest
from test_outer_schedules import PLAIN_SGD, toy

from simulator.cluster.generators import ring, torus_2d, two_tier
from simulator.engine.timeline import cluster_gpus, compute_times, simulate_timeline
from simulator.experiments.runner import run_variant
from simulator.experiments.scenario import scenario_from_data
from simulator.learning.gossip import (
    gossip,
    gossip_neighbours,
    linked_neighbours,
    metropolis_weights,
    ring_neighbours,
    torus_neighbours,
)
from simulator.learning.schedules import GLOBAL, GOSSIP, Step
from simulator.learning.training import Learner
from simulator.network.flows import simulate_transfers
from simulator.utils.errors import InputError


# --------------------------------------------------------------------------- the matrix
def graphs():
    for K in (1, 2, 3, 4, 5, 8, 16, 17):
        yield f"ring {K}", ring_neighbours(K)
    for K in (4, 6, 8, 12, 16, 36):
        yield f"torus {K}", torus_neighbours(K)
    g = torus_2d(3, 4)
    yield "topology torus 3x4", linked_neighbours(g, cluster_gpus(g)[0])
    yield "a path", [[1], [0, 2], [1, 3], [2]]
    yield "a star", [[1, 2, 3, 4], [0], [0], [0], [0]]


@pytest.mark.parametrize("name, neighbours", list(graphs()))
def test_the_mixing_matrix_is_symmetric_nonnegative_and_doubly_stochastic(name, neighbours):
    W = metropolis_weights(neighbours).dense()
    K = len(neighbours)
    np.testing.assert_allclose(W.sum(axis=1), np.ones(K), rtol=0, atol=1e-15)
    np.testing.assert_allclose(W.sum(axis=0), np.ones(K), rtol=0, atol=1e-15)
    assert (W == W.T).all() and (W >= 0).all()
    for k, row in enumerate(neighbours):                  # nonzero exactly on G and the diagonal
        assert set(np.flatnonzero(W[k])) <= set(row) | {k}
        assert set(row) <= set(np.flatnonzero(W[k]))
    if K > 1:                                             # connected: consensus, |lambda_2| < 1
        assert sorted(np.abs(np.linalg.eigvalsh(W)))[-2] < 1 - 1e-9


def test_ring_and_torus_weights_are_lian_et_al_s_thirds_and_fifths():
    W = metropolis_weights(ring_neighbours(6)).dense()
    assert np.allclose(W[2, [1, 2, 3]], 1 / 3) and W[2, [0, 4, 5]].sum() == 0
    W = metropolis_weights(torus_neighbours(16)).dense()                # 4 x 4
    assert np.allclose(W[5, [1, 4, 5, 6, 9]], 1 / 5)


def test_mix_is_the_dense_product():
    rng = np.random.default_rng(1)
    for neighbours in (ring_neighbours(7), torus_neighbours(12), [[1, 2], [0], [0]]):
        m = metropolis_weights(neighbours)
        x = rng.normal(size=(len(neighbours), 5))
        np.testing.assert_allclose(m.mix(x), m.dense() @ x, rtol=1e-14, atol=1e-15)


def test_graphs_that_cannot_be_built_are_one_error():
    with pytest.raises(InputError, match="torus of 7 GPUs"):
        torus_neighbours(7)
    g = two_tier(2, 2)
    with pytest.raises(InputError, match="no link to another GPU"):
        linked_neighbours(g, cluster_gpus(g)[0])
    with pytest.raises(InputError, match="unknown gossip graph"):
        gossip(graph="star")


# --------------------------------------------------------------------------- D-PSGD by hand
def learn_gossip(targets, steps, neighbours):
    model, data, stream = toy(targets)
    learner = Learner(model, data, stream, {GLOBAL: [list(range(len(targets)))]}, PLAIN_SGD,
                      steps, mixing=metropolis_weights(neighbours))
    for t in range(1, steps + 1):
        learner.step(t, Step(average=GOSSIP))
    return learner.params[:, 0]


def test_dpsgd_three_workers_by_hand():
    # A ring of 3: every weight 1/3. Targets 1, 2, 3 from 0, lr 0.1; x <- W x - lr (x - c).
    # Step 1: W x = 0, x = 0.1 c = [0.1, 0.2, 0.3].
    # Step 2: W x = 0.2 each; gradients [-0.9, -1.8, -2.7]; x = [0.29, 0.38, 0.47].
    np.testing.assert_allclose(learn_gossip([1.0, 2.0, 3.0], 2, ring_neighbours(3)),
                               [0.29, 0.38, 0.47], rtol=1e-14)


def test_dpsgd_four_workers_on_a_ring_by_hand():
    # Ring of 4 (weights 1/3: self and the two neighbours). Step 1: x = [0.1, 0.2, 0.3, 0.4].
    # Step 2: W x = [(0.1+0.4+0.2)/3, (0.2+0.1+0.3)/3, (0.3+0.2+0.4)/3, (0.4+0.3+0.1)/3]
    #             = [0.7/3, 0.2, 0.3, 0.8/3]; gradients x - c = [-0.9, -1.8, -2.7, -3.6].
    x = learn_gossip([1.0, 2.0, 3.0, 4.0], 2, ring_neighbours(4))
    np.testing.assert_allclose(x, [0.7 / 3 + 0.09, 0.2 + 0.18, 0.3 + 0.27, 0.8 / 3 + 0.36],
                               rtol=1e-14)


def test_gossip_keeps_the_mean_that_local_sgd_keeps():
    # W doubly stochastic: the mean of the models after a gossip step is the mean after
    # plain local steps, whatever the graph.
    targets = [0.5, 1.0, 4.0, -2.0, 3.0, 1.5]
    x = learn_gossip(targets, 5, ring_neighbours(6))
    model, data, stream = toy(targets)
    learner = Learner(model, data, stream, {GLOBAL: [list(range(6))]}, PLAIN_SGD, 5)
    for t in range(1, 6):
        learner.step(t, Step())
    # The gradient of these quadratics is linear in x, so the mean follows the same
    # recursion in both: mean(W x - lr (x - c)) = mean(x) - lr (mean(x) - mean(c)).
    np.testing.assert_allclose(x.mean(), learner.params[:, 0].mean(), rtol=1e-13)
    assert np.ptp(x) < np.ptp(learner.params[:, 0])                   # and they are closer


# --------------------------------------------------------------------------- the clock
def gossip_timeline(graph, steps, nbytes=8e6, slow=None, H=None, flops=1e6):
    gpus, blocks = cluster_gpus(graph)
    actions = [gossip(H)(t) for t in range(1, steps + 1)]
    compute_s = compute_times(graph, gpus, steps, flops_per_sample=flops, batch_size=10,
                              slow_gpus=slow)
    neighbours = ring_neighbours(len(gpus))
    return gpus, neighbours, compute_s, simulate_timeline(
        graph, gpus, blocks, actions, compute_s, message_bytes=nbytes, neighbours=neighbours)


@pytest.mark.parametrize("B, G", [(2, 2), (3, 4), (8, 2), (4, 1)])
def test_gossip_bytes_per_step_match_the_closed_form(B, G):
    # A ring over K = B*G GPUs in ring order on a two-tier tree: 2(G-1) directed edges inside
    # each block, each crossing 2 intra-block links; 2 directed edges across each of the B
    # block boundaries, each crossing 2 intra-block and 2 inter-block links. M bytes each:
    #   intra = M (4 B (G - 1) + 4 B) = 4 K M,   inter = 4 B M   per step (K >= 3).
    graph = two_tier(B, G)
    steps, M = 3, 8e6
    _, _, _, tl = gossip_timeline(graph, steps, M)
    K = B * G
    assert tl.comm_bytes["intra_block"] == pytest.approx(steps * 4 * K * M, rel=1e-12)
    assert tl.comm_bytes["inter_block"] == pytest.approx(steps * 4 * B * M, rel=1e-12)
    assert tl.syncs == {"block": 0, "gossip": steps, "global": 0}


def test_a_gossip_step_takes_what_its_transfers_take_on_the_flow_model():
    graph = two_tier(4, 2, inter_bandwidth=1.25e9)
    gpus, neighbours, compute_s, tl = gossip_timeline(graph, 1)
    c = compute_s[0, 0]
    pairs = [(gpus[i], gpus[j]) for i in range(len(gpus)) for j in neighbours[i]]
    finish = simulate_transfers(graph, [{"src": s, "dst": d, "bytes": 8e6, "start": c}
                                        for s, d in pairs])
    leave = {g: max(f for (s, d), f in zip(pairs, finish) if g in (s, d)) for g in gpus}
    assert tl.step_end_s[0] == pytest.approx(max(finish), rel=1e-12)
    for k, g in enumerate(gpus):
        entry = next(e for e in tl.sync_log if e[2] == k)
        assert entry[:3] == (1, GOSSIP, k) and entry[3] == pytest.approx(c, rel=1e-12)
        assert entry[4] == pytest.approx(leave[g], rel=1e-12)
    # every GPU's exchanges cross a block boundary: all the time is inter-block
    assert tl.comm_time_by_tier_s["intra_block"] == 0
    assert tl.comm_time_by_tier_s["inter_block"] == pytest.approx(tl.comm_time_s, rel=1e-12)


def test_a_slow_gpu_delays_its_neighbours_not_the_whole_ring():
    # Compute 1.6 ms, the straggler 8 ms; an exchange of 8 MB about 1.3 ms. The straggler's
    # two neighbours exchange with their other neighbour at once, then wait for it; the
    # GPUs further away never wait.
    graph = two_tier(4, 2)
    gpus, neighbours, compute_s, tl = gossip_timeline(graph, 1, slow={"gpu2_0": 5.0}, flops=1e9)
    c = compute_s[0, 0]
    start = {e[2]: e[3] for e in tl.sync_log}
    ends = {e[2]: e[4] for e in tl.sync_log}
    slow = gpus.index("gpu2_0")
    assert start[slow] == pytest.approx(5 * c, rel=1e-12)
    for k in neighbours[slow]:
        assert start[k] == pytest.approx(c, rel=1e-12)      # its other exchange started on time
    far = [k for k in range(len(gpus)) if k != slow and k not in neighbours[slow]]
    assert max(ends[k] for k in far) < 5 * c < min(ends[k] for k in neighbours[slow])
    assert tl.wait_time_s == 0          # every GPU's first exchange started when it arrived


def test_gossip_with_periodic_global_averages():
    graph = two_tier(2, 2)
    _, _, _, tl = gossip_timeline(graph, 6, H=3)
    assert tl.syncs == {"block": 0, "gossip": 4, "global": 2}


# --------------------------------------------------------------------------- runs
SCENARIO = {
    "topology": {"blocks": 4, "gpus_per_block": 2,
                 "gpu": {"type": "V100", "peak_flops": "15.7 TFLOP/s", "efficiency": 0.4},
                 "intra_block": {"bandwidth": "25 GB/s", "latency": "1 us"},
                 "inter_block": {"bandwidth": "10 Gbit/s", "latency": "5 us"}},
    "workload": {"dataset": "digits", "model": "mlp", "hidden": [16], "batch_size": 16},
    "optimizer": {"lr": 0.02, "warmup_epochs": 1},
    "variants": [{"algorithm": "gossip", "H": 1}, {"algorithm": "local", "H": 1},
                 {"algorithm": "gossip", "graph": "torus", "H": 4}],
    "target_accuracy": 0.5, "seed": 1, "steps": 12,
    "timing": {"cost_profile": "resnet20-cifar10"},
}


def test_gossip_with_h_1_is_local_sgd_with_h_1():
    scenario = scenario_from_data(SCENARIO)
    g, loc, _ = (run_variant(scenario, v) for v in scenario.variants)
    for key in ("curve", "simulated_time_s", "comm_bytes", "comm_time_by_tier_s", "syncs",
                "final_test_accuracy", "virtual_average_curve"):
        assert g[key] == loc[key], key
    assert g["params"] == {"batch_size": 16, "H": 1, "graph": "ring"}


def test_a_gossip_run_reports_its_graph_and_exchanges():
    scenario = scenario_from_data(SCENARIO)
    record = run_variant(scenario, scenario.variants[2])
    assert record["label"] == "gossip torus H=4" and record["params"]["graph"] == "torus"
    assert record["syncs"] == {"block": 0, "gossip": 9, "global": 3}
    assert [point[1] for point in record["curve"]] == [4, 8, 12]        # common models only


def test_gossip_without_h_warns_that_no_common_model_exists():
    data = dict(SCENARIO, variants=[{"algorithm": "gossip"}])
    scenario = scenario_from_data(data)
    lines = []
    record = run_variant(scenario, scenario.variants[0], warn=lines.append)
    assert "no common model exists" in lines[0] and record["time_to_accuracy_s"] is None
    assert record["final_test_accuracy"] is None and record["status"] == "ok"
    anyone = scenario_from_data(dict(data, evaluate="any_gpu"))
    lines = []
    record = run_variant(anyone, anyone.variants[0], warn=lines.append)
    assert lines == [] and record["time_to_accuracy_s"] is not None


def test_topology_graph_gossips_on_the_direct_links():
    graph = ring(6)
    got = gossip_neighbours("topology", cluster_gpus(graph)[0], graph)
    assert [set(row) for row in got] == [set(row) for row in ring_neighbours(6)]
