"""Time-to-accuracy counts only models that exist on the GPUs, at the moment they exist."""

import json

import numpy as np
import pytest

from simulator.cluster.generators import two_tier
from simulator.cluster.writer import write_topology
from simulator.engine.timeline import cluster_gpus
from simulator.experiments.runner import learning_status, run_variant
from simulator.experiments.scenario import scenario_from_data
from simulator.learning.training import TrainingResult, _accuracy_per_worker
from simulator.network.collectives import run_groups

DELAY_S = 1.0
TOPOLOGY = {"blocks": 2, "gpus_per_block": 2,
            "gpu": {"peak_flops": "10 TFLOP/s", "efficiency": 0.5},
            "intra_block": {"bandwidth": "25 GB/s", "latency": "1 us"},
            "inter_block": {"bandwidth": "10 Gbit/s", "latency": "5 us"}}


def scenario(variants, **extra):
    data = {"topology": TOPOLOGY, "workload": {"dataset": "digits", "batch_size": 32},
            "optimizer": {"lr": 0.05, "warmup_epochs": 1}, "variants": variants,
            "target_accuracy": 0.85, "steps": 60, "seed": 0,
            "timing": {"global_sync_delay_s": DELAY_S}}
    data.update(extra)
    return scenario_from_data(data, file="tta.yaml")


@pytest.fixture(scope="module")
def costs():
    """Compute time of one step and the time of one all-reduce over all 4 GPUs, by hand."""
    s = scenario([{"algorithm": "minibatch"}])
    gpus, _ = cluster_gpus(s.topology)
    record = run_variant(s, s.variants[0])
    message = record["timing"]["message_bytes"]
    compute_s = record["timing"]["flops_per_sample"] * 32 / (10e12 * 0.5)
    all_s, _ = run_groups(s.topology, [gpus], message)
    block_s, _ = run_groups(s.topology, [gpus[:2]], message)
    return {"compute_s": compute_s, "all_s": all_s, "block_s": block_s, "minibatch": record}


def test_minibatch_time_is_its_steps_with_every_sync_and_delay(costs):
    record = costs["minibatch"]
    step = record["steps_to_accuracy"]
    one = costs["compute_s"] + costs["all_s"] + DELAY_S      # compute, all-reduce, delay
    assert record["time_to_accuracy_s"] == pytest.approx(step * one, rel=1e-12)
    first = next(t for _, t, acc, _ in record["curve"] if acc >= record["target_accuracy"])
    assert step == first


def test_local_sgd_is_reached_at_the_end_of_a_global_sync_never_at_a_compute_end(costs):
    H = 4
    s = scenario([{"algorithm": "local", "H": H}])
    record = run_variant(s, s.variants[0])
    # The common model exists only after steps H, 2H, ...: the k-th global sync ends at
    # k H compute steps plus k syncs, each with its 1 s delay.
    ends = {k * H: k * H * costs["compute_s"] + k * (costs["all_s"] + DELAY_S)
            for k in range(1, 60 // H + 1)}
    assert [t for _, t, _, _ in record["curve"]] == sorted(ends)
    for time_s, t, _, _ in record["curve"]:
        assert time_s == pytest.approx(ends[t], rel=1e-12)
    k = record["steps_to_accuracy"] // H
    assert record["steps_to_accuracy"] == k * H
    assert record["time_to_accuracy_s"] == pytest.approx(ends[k * H], rel=1e-12)
    assert record["time_to_accuracy_s"] >= DELAY_S          # not before the first sync ends
    # the first common model at or above the target is the one that counts
    reached = [t for _, t, acc, _ in record["curve"] if acc >= record["target_accuracy"]]
    assert reached[0] == k * H
    # The virtual average (a diagnostic) is timed at step ends and reaches it earlier: what
    # was credited before, to a model no GPU held.
    virtual = [p for p in record["virtual_average_curve"] if p[2] >= record["target_accuracy"]]
    assert virtual[0][0] < record["time_to_accuracy_s"]


def test_any_gpu_counts_the_models_gpus_hold_between_global_syncs(costs):
    variant = {"algorithm": "hierarchical", "H": 1, "Hb": 8}
    common = run_variant(*(lambda s: (s, s.variants[0]))(scenario([variant])))
    s = scenario([variant], evaluate="any_gpu")
    timed = []
    record = run_variant(s, s.variants[0], timed=timed)
    assert record["evaluate"] == "any_gpu" and common["evaluate"] == "common"
    assert record["time_to_accuracy_s"] <= common["time_to_accuracy_s"]
    # it is the end of a sync some GPU took part in: a block average, or a global one
    ends = {end for _, _, _, _, end in timed[0]["timeline"].sync_log}
    assert record["time_to_accuracy_s"] in ends
    # at a global sync every GPU holds the common model: best and common accuracies agree
    best = {t: acc for _, t, acc, _ in record["best_gpu_curve"]}
    for _, t, acc, _ in record["curve"]:
        assert best[t] == acc
    # the same curve and time as the common run for what the two share
    assert record["curve"] == common["curve"]


def test_every_gpu_holds_the_same_model_after_a_global_sync(costs):
    s = scenario([{"algorithm": "postlocal", "H": 3, "switch_step": 6}], evaluate="any_gpu")
    record = run_variant(s, s.variants[0])
    common_steps = {t for _, t, _, _ in record["curve"]}
    assert common_steps == set(range(1, 7)) | set(range(9, 61, 3))
    # after a common step, the best and the common model are one model
    best = {t: acc for _, t, acc, _ in record["best_gpu_curve"]}
    assert all(best[t] == acc for _, t, acc, _ in record["curve"])


def test_per_worker_accuracy_evaluates_equal_models_once_and_is_exact():
    from simulator.learning.datasets import load_dataset
    from simulator.learning.workload import make_model

    data = load_dataset("digits", seed=0)
    model = make_model("mlp", data.input_dim, data.num_classes, seed=0)
    rng = np.random.default_rng(0)
    params = model.init_params(6) + rng.normal(0, 0.1, (6, model.num_params))
    params[3] = params[1]                                   # two workers share a model
    got = _accuracy_per_worker(model, params, data)
    want = [model.accuracy(row, data.x_test, data.y_test) for row in params]
    assert got.tolist() == want


# --------------------------------------------------------------------------- did not learn
def test_learning_status_by_rule():
    def result(losses, accuracy):
        return TrainingResult(curve=[[len(losses), accuracy, losses[-1]]],
                              losses=np.array(losses), steps_done=len(losses))
    assert learning_status(result([2.3, 1.0, 0.4], 0.9), 0.1) == ("ok", None)
    status, reason = learning_status(result([2.3, 2.2, 2.25], 0.12), 0.1)
    assert status == "not_learning" and "0.120 is at chance level (0.100)" in reason
    status, reason = learning_status(result([2.3, 50.0, 230.0], 0.6), 0.1)
    assert status == "diverged" and "(100x)" in reason
    nan = TrainingResult(diverged=True, steps_done=4, curve=[[5, None, None]])
    assert learning_status(nan, 0.1) == ("diverged", "the train loss of step 5 is not finite")


def test_a_512_gpu_cluster_on_the_default_workload_warns_and_says_it_did_not_learn(
        tmp_path, run_cli):
    big = tmp_path / "big.yaml"
    write_topology(two_tier(256, 2, peak_flops=15.7e12, efficiency=0.4), big)
    out = tmp_path / "r.json"
    result = run_cli("run", "--topology", big, "--algorithm", "minibatch", "-q", "-o", out)
    assert result.exit_code == 0, result.output
    assert "warning: minibatch: 512 GPUs x 32 samples = 16384 samples a step, more than the " \
           "1437 training samples" in result.stderr
    assert "peak learning rate 10.24 (512 x 0.02), above optimizer.max_peak_lr" in result.stderr
    [record] = json.loads(out.read_text())["runs"]
    assert record["status"] in ("not_learning", "diverged"), record["status_reason"]
    assert "chance level" in record["status_reason"]
    assert len(record["warnings"]) == 2
    assert "not learning" in result.stdout or "diverged" in result.stdout


def test_an_epoch_of_two_steps_is_warned_of():
    data = {"topology": {**TOPOLOGY, "blocks": 16}, "variants": [{"algorithm": "minibatch"}],
            "target_accuracy": 0.5, "steps": 2}
    s = scenario_from_data(data)
    record = run_variant(s, s.variants[0])
    assert record["warnings"] == ["an epoch is only 2 steps (1437 samples / (32 GPUs x 32)): "
                                  "warm-up, decay and switch epochs round to so few steps (use "
                                  "fewer GPUs, a smaller batch or more data)"]
