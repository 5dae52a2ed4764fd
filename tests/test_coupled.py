"""A schedule decided as it goes: the engine asking for each step (a step source) times
exactly what a fixed list would, and AdaComm's coupled pass decides what its replay then
reproduces, bit for bit."""

import copy

import numpy as np
import pytest
from test_schedule_reductions import BASE, runs

from simulator.cluster.generators import two_tier
from simulator.engine.profiles import timing_costs
from simulator.engine.timeline import (
    cluster_gpus,
    cluster_groupings,
    compute_times,
    simulate_timeline,
)
from simulator.experiments.coupled import decide_steps
from simulator.experiments.runner import load_workload
from simulator.experiments.scenario import scenario_from_data
from simulator.learning.adaptive import AdaComm, adacomm_period
from simulator.learning.datasets import BatchStream, shard_indices
from simulator.learning.schedules import GLOBAL, Step, schedule_for
from simulator.learning.training import train


class ListSource:
    """A step source that reads a fixed list, recording what the engine tells it."""

    def __init__(self, steps, groupings):
        self._steps, self.groupings = steps, groupings
        self.asked, self.ended_at = [], []

    def __len__(self):
        return len(self._steps)

    def __getitem__(self, index):
        self.asked.append(index)
        return self._steps[index]

    def ended(self, t, time_s):
        self.ended_at.append((t, time_s))


def test_a_step_source_times_exactly_what_the_list_does():
    graph = two_tier(4, 2)
    gpus, _ = cluster_gpus(graph)
    groupings = cluster_groupings(graph, gpus)
    act = schedule_for(type("V", (), {"algorithm": "hierarchical", "H": 2, "Hb": 3})())
    steps = [act(t) for t in range(1, 25)]
    compute_s = compute_times(graph, gpus, 24, flops_per_sample=1e8, batch_size=32,
                              jitter=0.2, slow_gpus={"gpu1_1": 1.5}, seed=4)
    kw = dict(message_bytes=4e6, global_sync_delay_s=0.01, record_gpu_steps=True)
    fixed = simulate_timeline(graph, gpus, groupings, steps, compute_s, **kw)
    source = ListSource(steps, ("block", GLOBAL))
    lazy = simulate_timeline(graph, gpus, groupings, source, compute_s, **kw)
    for field in ("simulated_time_s", "compute_time_s", "comm_time_s", "wait_time_s",
                  "comm_bytes", "syncs", "sync_log", "comm_time_by_tier_s"):
        assert getattr(lazy, field) == getattr(fixed, field), field
    assert (lazy.step_end_s == fixed.step_end_s).all()
    assert (lazy.gpu_step_end_s == fixed.gpu_step_end_s).all()
    assert source.asked == list(range(24))                        # once each, in order
    assert [t for t, _ in source.ended_at] == sorted(t for t, _ in source.ended_at)
    assert dict(source.ended_at) == {t + 1: fixed.step_end_s[t] for t in range(24)}


ADACOMM = {"algorithm": "adacomm", "H": 8}


def coupled_pass(variant, **changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    data["variants"] = [variant]
    scenario = scenario_from_data(data)
    data_, model = load_workload(scenario)
    graph = scenario.topology
    gpus, _ = cluster_gpus(graph)
    groupings = cluster_groupings(graph, gpus)
    v = scenario.variants[0]
    costs = timing_costs(scenario.timing.cost_profile, model)
    shards = shard_indices(data_.y_train, len(gpus), seed=scenario.seed)
    compute_s = compute_times(graph, gpus, scenario.steps, flops_per_sample=costs["flops_per_sample"],
                              batch_size=16, jitter=scenario.timing.jitter, seed=scenario.seed)
    schedule = schedule_for(v)
    steps, timeline = decide_steps(schedule, model=model, data=data_,
                                   stream=BatchStream(shards, 16, seed=scenario.seed),
                                   groupings=groupings, optimizer=scenario.optimizer,
                                   graph=graph, gpus=gpus, compute_s=compute_s,
                                   message_bytes=costs["message_bytes"], collective="ring",
                                   global_sync_delay_s=0.0)
    return scenario, schedule, steps, timeline, (graph, gpus, groupings, compute_s, costs, shards,
                                                 model, data_)


def test_adacomm_replayed_is_what_the_coupled_pass_decided():
    scenario, schedule, steps, timeline, (graph, gpus, groupings, compute_s, costs, shards,
                                          model, data) = coupled_pass(ADACOMM)
    again = simulate_timeline(graph, gpus, groupings, steps, compute_s,
                              message_bytes=costs["message_bytes"])
    assert (again.step_end_s == timeline.step_end_s).all()
    assert again.sync_log == timeline.sync_log
    learned = train(model, data, BatchStream(shards, 16, seed=scenario.seed), actions=steps,
                    blocks=groupings, optimizer=scenario.optimizer, eval_every=1)
    assert [learned.losses[t - 1] for t in sorted(schedule._losses)] == \
        [schedule._losses[t] for t in sorted(schedule._losses)]        # the same numbers
    # and every decision follows the rule from those losses
    first = learned.losses[0]
    for previous, period in zip(schedule.sync_steps, schedule.periods[1:]):
        assert period == adacomm_period(8, 1, learned.losses[previous - 1], first)
    assert schedule.periods[0] == 8 and min(schedule.periods) < 8      # it did adapt


def test_the_record_of_an_adacomm_run_is_the_replay_of_its_decisions():
    [record] = runs(ADACOMM)
    scenario, schedule, steps, timeline, _ = coupled_pass(ADACOMM)
    assert record["rounds"] == schedule.periods[:len(record["rounds"])]
    assert record["syncs"]["global"] == len(schedule.sync_steps)
    assert record["simulated_time_s"] == timeline.simulated_time_s
    assert record["params"] == {"batch_size": 16, "H": 8, "H_min": 1}


def test_an_interval_longer_than_the_run_never_rechooses():
    scenario, schedule, steps, timeline, _ = coupled_pass(dict(ADACOMM, interval_s=1e6))
    local = schedule_for(type("V", (), {"algorithm": "local", "H": 8})())
    assert steps == [local(t) for t in range(1, 25)]
    short = coupled_pass(dict(ADACOMM, interval_s=1e-9))[1]
    assert short.periods == coupled_pass(ADACOMM)[1].periods          # every average re-chooses


def test_adacomm_on_replicas_all_reduces_gradients_in_blocks():
    [record] = runs(dict(ADACOMM, replica="block"))
    assert record["syncs"]["block"] == 24 and record["label"] == "adacomm H=8 replica block"
