"""One run: a scenario's variant replayed on its cluster, as a results record.

A run trains (:mod:`simulator.learning.training`) and times (:mod:`simulator.engine.timeline`) the same
steps and joins them on the step number: the curve's time of step ``t`` is when the last
GPU finished step ``t`` and its sync, i.e. when the average model of step ``t`` exists.
The record's keys and units are the results contract of docs/semantics.md ("Results contract").
"""

import numpy as np
from threadpoolctl import threadpool_limits

from ..engine.profiles import timing_costs
from ..engine.timeline import cluster_gpus, compute_times, simulate_timeline
from ..learning.datasets import BatchStream, load_dataset, shard_indices
from ..learning.schedules import schedule_for
from ..learning.training import train
from ..learning.workload import make_model
from .scenario import steps_per_epoch

__all__ = ["run_variant", "run_scenario", "load_workload", "planned_steps"]


def load_workload(scenario):
    """The scenario's dataset (in the model's dtype) and model, built once for all variants."""
    spec = scenario.workload
    dtype = np.dtype(spec.dtype).type
    data = load_dataset(spec.dataset, seed=scenario.seed, n_samples=spec.n_samples).astype(dtype)
    model = make_model(spec.model, data.input_dim, data.num_classes, hidden=tuple(spec.hidden),
                       seed=scenario.seed, dtype=dtype)
    return data, model


def planned_steps(scenario, variant, n_train):
    """Steps of a variant: ``steps``, or ``epochs`` times the variant's steps per epoch."""
    if scenario.steps is not None:
        return int(scenario.steps)
    workers = len(cluster_gpus(scenario.topology)[0])
    batch = variant.batch_size or scenario.workload.batch_size
    return max(1, round(scenario.epochs * steps_per_epoch(n_train, workers, batch)))


def run_variant(scenario, variant, *, workload=None, progress=None, timed=None):
    """Train and time one variant; return its results record.

    Parameters
    ----------
    scenario : simulator.experiments.scenario.Scenario
    variant : simulator.experiments.scenario.Variant
    workload : tuple, optional
        ``(data, model)`` from :func:`load_workload`, to share between variants.
    progress : callable, optional
        Called after every training step.
    timed : list, optional
        If given, a dict of what the engine timed is appended to it (for
        :mod:`simulator.outputs.trace`): ``gpus``, ``blocks``, ``actions``, ``compute_s``,
        ``message_bytes``, ``collective``, ``global_sync_delay_s`` and ``timeline``
        (recorded with the bytes in flight). The record
        itself is unchanged.

    Returns
    -------
    dict
        The results record (docs/semantics.md, "Results contract"), with ``label``,
        ``diverged``, ``wait_time_s``, ``epochs`` and the provenance of the timing numbers.
    """
    data, model = workload or load_workload(scenario)
    graph = scenario.topology
    gpus, blocks = cluster_gpus(graph)
    batch = variant.batch_size or scenario.workload.batch_size
    steps = planned_steps(scenario, variant, len(data.y_train))
    action = schedule_for(variant)
    actions = [action(t) for t in range(1, steps + 1)]

    shards = shard_indices(data.y_train, len(gpus), seed=scenario.seed,
                           non_iid_alpha=scenario.workload.non_iid_alpha)
    stream = BatchStream(shards, batch, seed=scenario.seed)
    # One BLAS thread: floating-point sums then do not depend on the machine's thread count
    # or on how many runs share it, so the same inputs give the same curve everywhere.
    with threadpool_limits(limits=1):
        learned = train(model, data, stream, actions=actions, blocks=blocks,
                        optimizer=scenario.optimizer, eval_every=scenario.eval_every,
                        progress=progress)

    timed_steps = learned.steps_done + (1 if learned.diverged else 0)
    costs = timing_costs(scenario.timing.cost_profile, model)
    compute_s = compute_times(graph, gpus, timed_steps, flops_per_sample=costs["flops_per_sample"],
                              batch_size=batch, jitter=scenario.timing.jitter,
                              slow_gpus=scenario.timing.slow_gpus, seed=scenario.seed)
    delay_s = variant.global_sync_delay_s
    if delay_s is None:
        delay_s = scenario.timing.global_sync_delay_s
    timeline = simulate_timeline(graph, gpus, blocks, actions[:timed_steps], compute_s,
                                 message_bytes=costs["message_bytes"],
                                 collective=scenario.timing.collective,
                                 global_sync_delay_s=delay_s, record_in_flight=timed is not None)
    if timed is not None:
        timed.append({"gpus": gpus, "blocks": blocks, "actions": actions[:timed_steps],
                      "compute_s": compute_s, "message_bytes": costs["message_bytes"],
                      "collective": scenario.timing.collective, "global_sync_delay_s": delay_s,
                      "timeline": timeline})

    curve = [[float(timeline.step_end_s[t - 1]), t, acc, loss] for t, acc, loss in learned.curve]
    reached = [time_s for time_s, _, acc, _ in curve
               if acc is not None and acc >= scenario.target_accuracy]
    return {
        "label": variant.label,
        "algorithm": variant.algorithm,
        "params": _params(variant, batch, delay_s),
        "workers": len(gpus),
        "seed": scenario.seed,
        "target_accuracy": scenario.target_accuracy,
        "time_to_accuracy_s": reached[0] if reached else None,
        "final_test_accuracy": learned.final_test_accuracy,
        "diverged": learned.diverged,
        "simulated_time_s": timeline.simulated_time_s,
        "steps": learned.steps_done,
        "epochs": learned.steps_done / stream.steps_per_epoch,
        "compute_time_s": timeline.compute_time_s,
        "comm_time_s": timeline.comm_time_s,
        "wait_time_s": timeline.wait_time_s,
        "comm_bytes": timeline.comm_bytes,
        "syncs": timeline.syncs,
        "timing": {
            "cost_profile": costs["profile"],
            "message_bytes": costs["message_bytes"],
            "flops_per_sample": costs["flops_per_sample"],
            "source": costs["source"],
            "collective": scenario.timing.collective,
            "jitter": scenario.timing.jitter,
        },
        "curve": curve,
    }


def _params(variant, batch_size, delay_s):
    params = {"batch_size": batch_size}
    if variant.algorithm in ("local", "postlocal", "hierarchical"):
        params["H"] = variant.H
    if variant.algorithm == "hierarchical":
        params["Hb"] = variant.Hb
    if variant.algorithm == "postlocal":
        params["switch_step"] = variant.switch_step
    if delay_s:
        params["global_sync_delay_s"] = delay_s
    return params


def run_scenario(scenario, *, progress=None):
    """Run every variant of `scenario` in order; return the list of records."""
    workload = load_workload(scenario)
    return [run_variant(scenario, v, workload=workload, progress=progress) for v in scenario.variants]
