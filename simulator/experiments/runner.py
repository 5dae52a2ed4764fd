"""One run: a scenario's variant replayed on its cluster, as a results record.

A run trains (:mod:`simulator.learning.training`) and times (:mod:`simulator.engine.timeline`)
the same steps and joins them on the step number (docs/semantics.md, "Accuracy and
time-to-accuracy"):

- the **common model** after a global sync of step ``t`` exists when that sync ends (its
  delay included), the time every GPU leaves step ``t``; ``curve`` and
  ``time_to_accuracy_s`` use these models only;
- with ``evaluate: any_gpu``, the model GPU ``k`` holds after step ``t`` exists when GPU
  ``k`` leaves step ``t`` (after its block's sync, if any); time-to-accuracy is then the
  earliest moment some GPU holds a model at or above the target;
- the virtual average of the K models, which exists on no GPU between global syncs, is
  kept as ``virtual_average_curve``, timed at the end of its step, for diagnosis only.

A schedule that decides as it goes (AdaComm) first runs a coupled pass
(:mod:`simulator.experiments.coupled`) that fixes its steps; the run then replays those
steps like any other. DiLoCo and SlowMo hand the replay their outer optimizer, gossip its
mixing matrix and the engine its neighbours.

Under faults (a scenario's ``faults`` section, docs/faults.md) the order is the other way
round, because the learning must follow what happened: the timeline is simulated first
(:func:`simulator.engine.fault_timeline.simulate_fault_timeline`, which needs no number
learned), then the learning replays it (:func:`simulator.learning.training.train` with the
engine's participation record: who averaged with whom, who rejoined from what); the record
gets a ``faults`` block (:func:`fault_metrics`). Without a ``faults`` section nothing of
this runs, and runs are what they were.

Before a run, :func:`run_warnings` says when the workload cannot be trusted at this scale
(an epoch of fewer than :data:`MIN_STEPS_PER_EPOCH` steps, a step larger than the training
set, a peak learning rate above the scenario's ``max_peak_lr``); after it,
:func:`learning_status` says whether it ``diverged`` or is ``not_learning``. The record's
keys and units are the results contract of docs/semantics.md ("Results contract").
"""

import contextlib
import logging

import numpy as np
from threadpoolctl import threadpool_limits

from ..cluster.levels import graph_levels, graph_tiers
from ..engine.fault_timeline import simulate_fault_timeline
from ..engine.faults import resolve_steps, straggler_factors
from ..engine.overlap import ddp_overlap
from ..engine.profiles import FP32_BYTES, PROFILES, layer_costs, timing_costs
from ..engine.timeline import cluster_gpus, cluster_groupings, compute_times, simulate_timeline
from ..learning.datasets import BatchStream, load_dataset, shard_indices
from ..learning.gossip import gossip_neighbours, metropolis_weights
from ..learning.outer import outer_for
from ..learning.schedules import GLOBAL, PARAMETER_DEFAULTS, schedule_for
from ..learning.training import train
from ..learning.workload import make_model
from ..utils.bulk import paused_gc
from .coupled import decide_steps
from .scenario import steps_per_epoch

__all__ = ["run_variant", "run_scenario", "load_workload", "planned_steps", "run_warnings",
           "learning_status", "fault_metrics", "variant_faults", "MIN_STEPS_PER_EPOCH",
           "LOSS_GROWTH", "CHANCE_MARGIN", "STATUSES"]

MIN_STEPS_PER_EPOCH = 3
"""Fewer steps per epoch than this draw a warning: epoch-based settings (warm-up, decay,
the post-local switch) then round to very few steps, and each step is a large share of the
data."""
LOSS_GROWTH = 100.0
"""A run whose last step's train loss is this many times its first step's has diverged."""
CHANCE_MARGIN = 0.05
"""A run whose final test accuracy is at most chance level plus this is not learning."""
STATUSES = ("ok", "diverged", "failed", "not_learning")
"""``failed``: faults stopped the run before its last step (docs/faults.md)."""

_log = logging.getLogger(__name__)


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


def run_warnings(scenario, variant, n_train):
    """What makes a run's learning untrustworthy at this scale, known before it runs.

    Parameters
    ----------
    scenario : simulator.experiments.scenario.Scenario
    variant : simulator.experiments.scenario.Variant
    n_train : int
        Training samples.

    Returns
    -------
    list of str
        One line each: a step of ``K x B`` samples larger than the training set, or an epoch
        of fewer than :data:`MIN_STEPS_PER_EPOCH` steps; a peak learning rate above the
        optimizer's ``max_peak_lr``.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> from simulator.cluster.generators import two_tier
    >>> from simulator.learning.workload import OptimizerConfig
    >>> s = NS(topology=two_tier(256, 2), workload=NS(batch_size=32),
    ...        optimizer=OptimizerConfig(lr=0.02, max_peak_lr=1.0))
    >>> for line in run_warnings(s, NS(batch_size=None), 1437):
    ...     print(line)
    512 GPUs x 32 samples = 16384 samples a step, more than the 1437 training samples: every step is 11.4 epochs (use fewer GPUs, a smaller batch or more data)
    linear scaling makes the peak learning rate 10.24 (512 x 0.02), above optimizer.max_peak_lr 1 (lower lr, or set scale_lr_with_workers: false)
    """
    workers = len(cluster_gpus(scenario.topology)[0])
    batch = variant.batch_size or scenario.workload.batch_size
    per_epoch = steps_per_epoch(n_train, workers, batch)
    out = []
    if workers * batch > n_train:
        out.append(f"{workers} GPUs x {batch} samples = {workers * batch} samples a step, more "
                   f"than the {n_train} training samples: every step is "
                   f"{workers * batch / n_train:.3g} epochs (use fewer GPUs, a smaller batch or "
                   "more data)")
    elif per_epoch < MIN_STEPS_PER_EPOCH:
        out.append(f"an epoch is only {per_epoch} step{'s' if per_epoch > 1 else ''} "
                   f"({n_train} samples / ({workers} GPUs x {batch})): warm-up, decay and "
                   "switch epochs round to so few steps (use fewer GPUs, a smaller batch or "
                   "more data)")
    optimizer = getattr(variant, "optimizer", None) or scenario.optimizer
    bound = getattr(optimizer, "max_peak_lr", None)
    peak = optimizer.peak_lr(workers)
    if bound is not None and peak > bound:
        how = f"{workers} x {optimizer.lr:g}" if optimizer.scale_lr_with_workers else "lr"
        out.append(f"linear scaling makes the peak learning rate {peak:g} ({how}), above "
                   f"optimizer.max_peak_lr {bound:g} (lower lr, or set "
                   "scale_lr_with_workers: false)")
    if getattr(variant, "algorithm", None) == "gossip" and variant.H is None and \
            getattr(scenario, "evaluate", "common") == "common":
        out.append("gossip without H never averages over all GPUs, so no common model exists "
                   "and the target cannot be reached (give H for a global average every H "
                   "steps, or use evaluate: any_gpu)")
    plan = variant_faults(scenario, variant)
    if plan is not None and plan.policy == "restart" and plan.checkpoint_every is None and \
            (plan.random is not None or any(e.target in ("gpu", "block") for e in plan.events)):
        out.append("restart without checkpoints: every GPU failure restarts the run from its "
                   "first step (add faults.checkpoint: {every: N, write_time: ...})")
    return out


def variant_faults(scenario, variant):
    """The scenario's FaultPlan with the variant's ``fault_policy``, or None without faults."""
    plan = getattr(scenario, "faults", None)
    if plan is None:
        return None
    policy = getattr(variant, "fault_policy", None)
    if policy is not None and policy != plan.policy:
        from dataclasses import replace

        plan = replace(plan, policy=policy)
    return plan


def learning_status(learned, chance_accuracy, failed=None):
    """``(status, reason)`` of a finished training: ``ok``, ``diverged``, ``failed`` or
    ``not_learning``.

    ``failed``: faults stopped the run, `failed` saying why (checked after ``diverged``).

    ``diverged``: a step's loss was not finite, or the last step's train loss is
    :data:`LOSS_GROWTH` times the first step's or more. ``not_learning``: the final test
    accuracy (of the last common model, else of the virtual average) is at most
    `chance_accuracy` + :data:`CHANCE_MARGIN`. `reason` is one line (None when ok).

    Examples
    --------
    >>> import numpy as np
    >>> from simulator.learning.training import TrainingResult
    >>> run = TrainingResult(curve=[[30, 0.1, 652.0]], losses=np.array([2.3, 40.0, 652.0]),
    ...                      steps_done=3)
    >>> learning_status(run, 0.101)
    ('diverged', 'train loss grew from 2.3 at step 1 to 652 at step 3 (283x); final test accuracy 0.100 is at chance level (0.101)')
    """
    if learned.diverged:
        step = learned.steps_done + 1
        return "diverged", f"the train loss of step {step} is not finite"
    if failed:
        return "failed", failed
    final = learned.final_test_accuracy
    which = "final test accuracy"
    if final is None and learned.virtual_curve:
        final, which = learned.virtual_curve[-1][1], "final accuracy of the virtual average"
    chance = None
    if final is not None and final <= chance_accuracy + CHANCE_MARGIN:
        chance = f"{which} {final:.3f} is at chance level ({chance_accuracy:.3f})"
    losses = learned.losses
    if losses is not None and len(losses) > 1 and losses[0] > 0 \
            and losses[-1] >= LOSS_GROWTH * losses[0]:
        reason = (f"train loss grew from {losses[0]:.3g} at step 1 to {losses[-1]:.3g} at step "
                  f"{len(losses)} ({losses[-1] / losses[0]:.0f}x)")
        return "diverged", reason + (f"; {chance}" if chance else "")
    if chance:
        return "not_learning", chance
    return "ok", None


def run_variant(scenario, variant, *, workload=None, progress=None, timed=None, warn=None,
                stop_after=None):
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
        :mod:`simulator.outputs.trace`): ``gpus``, ``blocks``, ``groupings``, ``actions``,
        ``compute_s``, ``message_bytes``, ``collective``, ``global_sync_delay_s`` and
        ``timeline`` (recorded with the bytes in flight). The record itself is unchanged.
    warn : callable, optional
        Called with each line of :func:`run_warnings` (``"warning: LABEL: ..."``) before the
        run; by default they go to this module's logger (stderr when logging is not
        configured). They are in the record's ``warnings`` either way.
    stop_after : int, optional
        Train and time only the first this many steps of the planned run: the prefix of
        the full run (a short look at a trial for ``sgdsim tune``'s pruning).

    Returns
    -------
    dict
        The results record (docs/semantics.md, "Results contract").

    Notes
    -----
    A run without faults holds Python's cyclic garbage collector off
    (:func:`~simulator.utils.bulk.paused_gc`): its routes, plans and steps are many objects
    and almost no cyclic garbage (at most a few thousand objects a run on the shipped
    scenarios, freed when the collector resumes), while each pass of the collector would
    scan every object the process holds (numba's alone are hundreds of thousands). Under
    faults the collector runs: their timeline leaves cyclic garbage as it goes (323,000
    objects in a variant of ``faults_mtbf_1024.yaml``).
    """
    faults = variant_faults(scenario, variant) is not None
    with contextlib.nullcontext() if faults else paused_gc():
        return _run_variant(scenario, variant, workload=workload, progress=progress,
                            timed=timed, warn=warn, stop_after=stop_after)


def _run_variant(scenario, variant, *, workload, progress, timed, warn, stop_after):
    data, model = workload or load_workload(scenario)
    graph = scenario.topology
    gpus, blocks = cluster_gpus(graph)
    groupings = cluster_groupings(graph, gpus)
    batch = variant.batch_size or scenario.workload.batch_size
    full_steps = planned_steps(scenario, variant, len(data.y_train))
    steps = full_steps if stop_after is None else min(full_steps, int(stop_after))
    optimizer = getattr(variant, "optimizer", None) or scenario.optimizer
    per_epoch = steps_per_epoch(len(data.y_train), len(gpus), batch)
    warnings = run_warnings(scenario, variant, len(data.y_train))
    for line in warnings:
        text = f"warning: {variant.label}: {line}"
        if warn is None:
            _log.warning("%s", text)
        else:
            warn(text)

    shards = shard_indices(data.y_train, len(gpus), seed=scenario.seed,
                           non_iid_alpha=scenario.workload.non_iid_alpha)
    costs = timing_costs(scenario.timing.cost_profile, model)
    delay_s = variant.global_sync_delay_s
    if delay_s is None:
        delay_s = scenario.timing.global_sync_delay_s
    overlap = _overlap(scenario, variant, model, costs)
    action = schedule_for(variant, block_level=graph_levels(graph)[0],  # of the full run
                          learning_rates=optimizer.learning_rate(
                              np.arange(1, full_steps + 1), workers=len(gpus),
                              steps_per_epoch=per_epoch),
                          lr_warmup_steps=round(optimizer.warmup_epochs * per_epoch))
    neighbours = mixing = None
    if variant.algorithm == "gossip":
        neighbours = gossip_neighbours(variant.graph or "ring", gpus, graph)
        mixing = metropolis_weights(neighbours)
    if hasattr(action, "ended"):               # decided as it goes: the coupled pass first
        with threadpool_limits(limits=1):
            actions, _ = decide_steps(
                action, model=model, data=data, stream=BatchStream(shards, batch,
                                                                   seed=scenario.seed),
                groupings=groupings, optimizer=optimizer, graph=graph, gpus=gpus,
                compute_s=compute_times(graph, gpus, steps,
                                        flops_per_sample=costs["flops_per_sample"],
                                        batch_size=batch, jitter=scenario.timing.jitter,
                                        slow_gpus=scenario.timing.slow_gpus, seed=scenario.seed),
                message_bytes=costs["message_bytes"], collective=scenario.timing.collective,
                global_sync_delay_s=delay_s, overlap=overlap)
    else:
        actions = [action(t) for t in range(1, steps + 1)]
    stream = BatchStream(shards, batch, seed=scenario.seed)
    evaluate = getattr(scenario, "evaluate", "common")
    eval_every = scenario.eval_every
    if getattr(scenario, "eval_every_epochs", None) is not None:
        eval_every = max(1, round(scenario.eval_every_epochs * stream.steps_per_epoch))
    engine = {"message_bytes": costs["message_bytes"], "collective": scenario.timing.collective,
              "global_sync_delay_s": delay_s, "record_in_flight": timed is not None,
              "record_gpu_steps": evaluate == "any_gpu"}
    plan = variant_faults(scenario, variant)

    def compute(n_steps):
        return compute_times(graph, gpus, n_steps, flops_per_sample=costs["flops_per_sample"],
                             batch_size=batch, jitter=scenario.timing.jitter,
                             slow_gpus=scenario.timing.slow_gpus, seed=scenario.seed)

    def learn(n_steps, participation=None):
        # One BLAS thread: floating-point sums then do not depend on the machine's thread
        # count or on how many runs share it, so the same inputs give the same curve everywhere.
        with threadpool_limits(limits=1):
            return train(model, data, stream, actions=actions[:n_steps], blocks=groupings,
                         optimizer=optimizer, eval_every=eval_every,
                         evaluate=evaluate, progress=progress, outer=outer_for(variant),
                         mixing=mixing, participation=participation)

    stragglers = None
    if plan is None:
        learned = learn(steps)
        timed_steps = learned.steps_done + (1 if learned.diverged else 0)
        compute_s = compute(timed_steps)
        timeline = simulate_timeline(graph, gpus, groupings, actions[:timed_steps], compute_s,
                                     neighbours=neighbours, overlap=overlap, **engine)
    else:
        # The clock does not depend on the numbers learned: time first, then replay what
        # the timeline says happened (who averaged with whom, who rejoined from what).
        plan = resolve_steps(plan, full_steps)
        compute_s = compute(steps)
        if plan.stragglers is not None:
            factors, episodes = straggler_factors(plan.stragglers, len(gpus), steps,
                                                  plan.seed if plan.seed is not None
                                                  else scenario.seed)
            stragglers = (compute_s * (factors - 1.0), episodes)       # the extra time
            compute_s = compute_s * factors
        timeline = simulate_fault_timeline(graph, gpus, groupings, actions, compute_s,
                                           plan=plan, seed=scenario.seed, **engine)
        learned = learn(timeline.steps_completed, timeline.participation)
        if learned.diverged:                     # time only up to the diverging step
            timed_steps = learned.steps_done + 1
            compute_s = compute_s[:, :timed_steps]
            timeline = simulate_fault_timeline(graph, gpus, groupings, actions[:timed_steps],
                                               compute_s, plan=plan, seed=scenario.seed,
                                               **engine)
    if timed is not None:
        timed.append({"gpus": gpus, "blocks": blocks, "groupings": groupings,
                      "neighbours": neighbours,
                      "actions": actions[:len(timeline.step_end_s)], "compute_s": compute_s,
                      "message_bytes": costs["message_bytes"],
                      "collective": scenario.timing.collective, "global_sync_delay_s": delay_s,
                      "timeline": timeline, "overlap": overlap})

    def timed_curve(points):
        return [[float(timeline.step_end_s[t - 1]), t, acc, loss] for t, acc, loss in points]

    curve = timed_curve(learned.curve)
    target = scenario.target_accuracy
    reached = next(((time_s, t) for time_s, t, acc, _ in curve
                    if acc is not None and acc >= target), None)
    chance = _chance_accuracy(data.y_test)
    failed = timeline.faults.failed if timeline.faults is not None else None
    status, reason = learning_status(learned, chance, failed)
    record = {
        "label": variant.label,
        "algorithm": variant.algorithm,
        "params": _params(variant, batch, delay_s, optimizer),
        "convention": variant.convention,
        "evaluate": evaluate,
        "eval_every": eval_every,
        "workers": len(gpus),
        "seed": scenario.seed,
        "dtype": scenario.workload.dtype,
        "target_accuracy": target,
        "time_to_accuracy_s": None,
        "steps_to_accuracy": None,
        "final_test_accuracy": learned.final_test_accuracy,
        "status": status,
        "status_reason": reason,
        "diverged": status == "diverged",
        "chance_accuracy": chance,
        "warnings": warnings,
        "simulated_time_s": timeline.simulated_time_s,
        "steps": learned.steps_done,
        "epochs": learned.steps_done / stream.steps_per_epoch,
        "compute_time_s": timeline.compute_time_s,
        "comm_time_s": timeline.comm_time_s,
        "wait_time_s": timeline.wait_time_s,
        "tiers": list(graph_tiers(graph)),
        "comm_bytes": timeline.comm_bytes,
        "comm_time_by_tier_s": timeline.comm_time_by_tier_s,
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
        "virtual_average_curve": timed_curve(learned.virtual_curve),
    }
    if overlap is not None:
        record["overlapped_comm_time_s"] = timeline.overlapped_comm_time_s
        record["timing"].update(overlap="ddp", bucket_cap_bytes=overlap.bucket_cap_bytes,
                                first_bucket_cap_bytes=overlap.first_bucket_cap_bytes,
                                bucket_bytes=[b.nbytes for b in overlap.buckets])
    if plan is not None:
        record["faults"] = fault_metrics(timeline, learned.steps_done, stragglers)
    if evaluate == "any_gpu":
        best, reached_any = _gpu_curve(learned, timeline, target)
        record["best_gpu_curve"] = best
        if reached_any is not None and (reached is None or reached_any[0] < reached[0]):
            reached = reached_any
    if reached is not None:
        record["time_to_accuracy_s"], record["steps_to_accuracy"] = reached
    if variant.algorithm in ("qsr", "adacomm"):
        record["rounds"] = _rounds(actions[:timed_steps])
    return record


def _rounds(actions):
    """The length in steps of every round: from one global average to the next."""
    out, last = [], 0
    for t, step in enumerate(actions, start=1):
        if GLOBAL in (step.gradient, step.average):
            out.append(t - last)
            last = t
    return out


def _overlap(scenario, variant, model, costs):
    """DDP's buckets for this run (:mod:`simulator.engine.overlap`), or None without overlap."""
    if (variant.overlap or scenario.timing.overlap) != "ddp":
        return None
    layers = layer_costs(costs["profile"], model)
    overlap = ddp_overlap(layers, bucket_cap_bytes=scenario.timing.bucket_cap_bytes,
                          first_bucket_cap_bytes=scenario.timing.first_bucket_cap_bytes,
                          bytes_per_param=_bytes_per_param(costs))
    if overlap.message_bytes != costs["message_bytes"]:        # the layers add up to the profile
        raise ValueError(f"the {costs['profile']} layers hold {overlap.message_bytes} bytes, "
                         f"its messages {costs['message_bytes']}")
    return overlap


def _bytes_per_param(costs):
    return PROFILES[costs["profile"]].bytes_per_param or FP32_BYTES


def _chance_accuracy(y_test):
    """Accuracy of always answering the most frequent test class."""
    counts = np.bincount(np.asarray(y_test, dtype=np.int64))
    return float(counts.max() / counts.sum())


def _gpu_curve(learned, timeline, target):
    """The best model some GPU holds at each evaluated step, and the first reaching `target`.

    Returns ``([[time_s, step, accuracy, train_loss], ...], (time_s, step) or None)``: the
    time of a point is the earliest moment a GPU holding that best model left the step.
    """
    end_s = timeline.gpu_step_end_s                                   # (K, T)
    losses = learned.losses
    best, first = [], None
    for t, accuracy in learned.gpu_accuracy:
        when = end_s[:, t - 1]                                        # (K,)
        if np.isnan(accuracy).any():                                  # a GPU held no model
            live = ~np.isnan(accuracy)
            accuracy, when = accuracy[live], when[live]
        top = accuracy.max()
        best.append([float(when[accuracy == top].min()), t, float(top),
                     float(losses[t - 1])])
        hit = accuracy >= target
        if hit.any():
            time_s = float(when[hit].min())
            if first is None or time_s < first[0]:
                first = (time_s, t)
    return best, first


def fault_metrics(timeline, steps, stragglers=None):
    """The ``faults`` block of a record (docs/semantics.md, "Faults"): what faults did.

    Parameters
    ----------
    timeline : simulator.engine.timeline.Timeline
        From :func:`~simulator.engine.fault_timeline.simulate_fault_timeline`.
    steps : int
        Steps completed (and learned).
    stragglers : tuple, optional
        ``((K, T) extra compute time, episodes begun)`` of transient stragglers.

    Returns
    -------
    dict
        Times in seconds; ``*_s`` without ``gpu`` are per-GPU means, ``*_gpu_s`` sums over
        GPUs.
    """
    report = timeline.faults
    end_s = timeline.simulated_time_s
    series = report.workers
    n_gpus = series[0][1]
    times = [t for t, _ in series] + [end_s]
    weighted = sum(n * (times[i + 1] - times[i]) for i, (_, n) in enumerate(series))
    participation = timeline.participation
    useful = int(participation.alive[:steps].sum()) if participation is not None \
        else n_gpus * steps
    lost = report.discarded_gpu_s + n_gpus * (report.failure_wait_s + report.down_s)
    out = {
        "policy": report.policy,
        "failures": report.failures,
        "restarts": report.restarts,
        "redone_steps": report.redone_steps,
        "aborted_syncs": report.aborted_syncs,
        "checkpoints": report.checkpoints,
        "checkpoint_time_s": report.checkpoint_s,
        "failure_wait_s": report.failure_wait_s,
        "down_time_s": report.down_s,
        "discarded_gpu_s": report.discarded_gpu_s,
        "lost_gpu_s": lost,
        "goodput_steps_per_s": steps / end_s if end_s > 0 else None,
        "useful_gpu_steps": useful,
        "mean_workers": weighted / end_s if end_s > 0 else float(n_gpus),
        "min_workers": min(n for _, n in series),
        "workers": [[float(t), int(n)] for t, n in series],
        "events": [dict(e) for e in report.events],
        "link_failures": report.link_failures,
        "partitions": report.partitions,
        "straggler_episodes": 0 if stragglers is None else stragglers[1],
        "straggler_time_s": 0.0 if stragglers is None else
        float(stragglers[0][:, :steps].sum(axis=1).mean()),
    }
    return out


_NEWER_PARAMS = {"diloco": ("outer_lr", "outer_momentum"), "slowmo": ("slow_lr", "slow_momentum"),
                 "qsr": ("alpha",), "adacomm": ("H_min", "interval_s"), "gossip": ("graph",)}


def _params(variant, batch_size, delay_s, optimizer=None):
    params = {"batch_size": batch_size}
    if variant.algorithm in ("local", "postlocal") or \
            (variant.algorithm == "hierarchical" and not variant.periods):
        params["H"] = variant.H
    if variant.algorithm == "hierarchical":
        if variant.periods:
            params["periods"] = {name: period for name, period in variant.periods}
        else:
            params["Hb"] = variant.Hb
    if variant.algorithm == "postlocal":
        params["switch_step"] = variant.switch_step
    if variant.algorithm in _NEWER_PARAMS:
        if variant.H is not None:
            params["H"] = variant.H
        for key in _NEWER_PARAMS[variant.algorithm]:
            value = getattr(variant, key, None)
            value = PARAMETER_DEFAULTS.get(key) if value is None else value
            if value is not None:
                params[key] = value
        if getattr(variant, "replica", None):
            params["replica"] = variant.replica
    if optimizer is not None and optimizer.name != "sgd":
        params["optimizer"] = optimizer.name
    if variant.warmup_steps:
        params["warmup_steps"] = variant.warmup_steps
    if variant.convention == "pytorch" and variant.algorithm != "minibatch":
        grads = variant.post_local_gradient_allreduce
        params["post_local_gradient_allreduce"] = \
            (variant.algorithm == "postlocal") if grads is None else bool(grads)
    if delay_s:
        params["global_sync_delay_s"] = delay_s
    return params


def run_scenario(scenario, *, progress=None):
    """Run every variant of `scenario` in order; return the list of records."""
    workload = load_workload(scenario)
    return [run_variant(scenario, v, workload=workload, progress=progress) for v in scenario.variants]
