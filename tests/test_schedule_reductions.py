"""Each newer schedule at its trivial setting is an existing one (whole runs compared), and
their bytes and time per tier on a hierarchy match collectives timed independently."""

import copy

import numpy as np
import pytest

from simulator.engine.timeline import cluster_gpus
from simulator.experiments.runner import run_variant
from simulator.experiments.scenario import scenario_from_data
from simulator.network.collectives import run_groups

BASE = {
    "topology": {"blocks": 4, "gpus_per_block": 2,
                 "gpu": {"type": "V100", "peak_flops": "15.7 TFLOP/s", "efficiency": 0.4},
                 "intra_block": {"bandwidth": "25 GB/s", "latency": "1 us"},
                 "inter_block": {"bandwidth": "10 Gbit/s", "latency": "5 us"}},
    "workload": {"dataset": "digits", "model": "mlp", "hidden": [16], "batch_size": 16},
    "optimizer": {"lr": 0.02, "warmup_epochs": 1, "decay_epochs": [4]},
    "target_accuracy": 0.6, "seed": 3, "steps": 24,
    "timing": {"cost_profile": "resnet20-cifar10", "jitter": 0.05},
}

TIMING = ("simulated_time_s", "comm_bytes", "comm_time_by_tier_s", "syncs", "compute_time_s",
          "wait_time_s", "steps")


def runs(*variants, **changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    data["variants"] = list(variants)
    scenario = scenario_from_data(data)
    return [run_variant(scenario, v) for v in scenario.variants]


def same_learning(a, b, atol=1e-10):
    """The curves of two runs agree to `atol` (accuracies on 360 images: equal)."""
    for key in ("curve", "virtual_average_curve"):
        assert len(a[key]) == len(b[key])
        for p, q in zip(a[key], b[key]):
            assert p[:3] == q[:3], key                     # time, step, accuracy
            assert p[3] == pytest.approx(q[3], abs=atol), key


@pytest.mark.parametrize("variant", [
    {"algorithm": "diloco", "H": 4, "outer_lr": 1.0, "outer_momentum": 0.0},
    {"algorithm": "slowmo", "H": 4, "slow_lr": 1.0, "slow_momentum": 0.0},
    {"algorithm": "adacomm", "H": 4, "H_min": 4},
    {"algorithm": "qsr", "H": 4, "alpha": 1e-6},
])
def test_at_their_trivial_settings_the_newer_schedules_are_local_sgd(variant):
    new, local = runs(variant, {"algorithm": "local", "H": 4})
    for key in TIMING:
        assert new[key] == local[key], key
    same_learning(new, local)
    assert new["final_test_accuracy"] == local["final_test_accuracy"]


def test_slowmo_averaging_every_step_is_minibatch_sgd():
    # SGD is linear in the gradient: averaging the models after every step moves the mean
    # model exactly as averaging the gradients would, and the all-reduces are the same size.
    new, mini = runs({"algorithm": "slowmo", "H": 1, "slow_lr": 1.0, "slow_momentum": 0.0},
                     {"algorithm": "minibatch"})
    for key in ("simulated_time_s", "comm_bytes", "comm_time_by_tier_s"):
        assert new[key] == mini[key], key
    same_learning(new, mini, atol=1e-9)


def test_diloco_replicas_sync_gradients_in_blocks_and_steps_outer_over_all():
    # replica: block -> a block gradient all-reduce at every step, an outer all-reduce over
    # all 8 GPUs every H = 3 steps (24 steps: 8 outer steps), timed with 0 jitter.
    data = copy.deepcopy(BASE)
    data["timing"] = {"cost_profile": "resnet20-cifar10"}
    [record] = runs({"algorithm": "diloco", "H": 3, "replica": "block"},
                    timing=data["timing"])
    scenario = scenario_from_data(dict(data, variants=[{"algorithm": "local"}]))
    graph = scenario.topology
    gpus, blocks = cluster_gpus(graph)
    M = record["timing"]["message_bytes"]
    t_all, bytes_all = run_groups(graph, [gpus], M)
    t_block, bytes_block = run_groups(graph, [[gpus[i] for i in b] for b in blocks], M)
    assert record["syncs"] == {"block": 24, "global": 8}
    for tier in ("intra_block", "inter_block"):
        assert record["comm_bytes"][tier] == pytest.approx(
            24 * bytes_block[tier] + 8 * bytes_all[tier], rel=1e-12)
    assert record["comm_time_by_tier_s"]["intra_block"] == pytest.approx(24 * t_block, rel=1e-12)
    assert record["comm_time_by_tier_s"]["inter_block"] == pytest.approx(8 * t_all, rel=1e-12)
    assert record["params"] == {"batch_size": 16, "H": 3, "outer_lr": 0.7,
                                "outer_momentum": 0.9, "replica": "block"}


def test_diloco_with_an_inner_adamw_of_its_own():
    records = runs({"algorithm": "diloco", "H": 4,
                    "optimizer": {"name": "adamw", "lr": 1e-3, "warmup_epochs": 1}},
                   {"algorithm": "local", "H": 4})
    assert records[0]["label"] == "diloco H=4 adamw"
    assert records[0]["params"]["optimizer"] == "adamw" and "optimizer" not in records[1]["params"]
    assert records[0]["curve"] != records[1]["curve"]
    for key in TIMING:                               # the clock does not see the optimizer
        assert records[0][key] == records[1][key], key
