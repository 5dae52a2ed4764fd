"""The learning follows the faults: survivors' averages, frozen workers, replacements' states.

The replay under a participation record is checked against a reference implementation of
the same rules written here, loop by loop, from the model's gradients alone.
"""

import numpy as np
import pytest

from simulator.learning.datasets import BatchStream, load_dataset, shard_indices
from simulator.learning.participation import Participation
from simulator.learning.schedules import Step
from simulator.learning.training import _average_groups, train
from simulator.learning.workload import OptimizerConfig, make_model

K, B, LR, MU = 4, 8, 0.05, 0.9
GROUPS = {"block": [[0, 1], [2, 3]], "global": [[0, 1, 2, 3]]}


def test_an_average_over_survivors_is_their_mean_by_hand():
    values = np.array([[1.0, 4.0], [2.0, 5.0], [3.0, 9.0], [10.0, 0.0]])
    _average_groups(values, [[0, 1, 2, 3]], np.array([True, True, True, False]))
    assert values.tolist() == [[2.0, 6.0], [2.0, 6.0], [2.0, 6.0], [10.0, 0.0]]
    values = np.array([[1.0], [3.0], [5.0], [6.0]])
    _average_groups(values, [[0, 1], [2, 3]], np.array([False, True, True, True]))
    assert values.tolist() == [[1.0], [3.0], [5.5], [5.5]]      # a group of one survivor keeps it


@pytest.fixture(scope="module")
def problem():
    data = load_dataset("teacher", seed=0, n_samples=400)
    model = make_model("mlp", data.input_dim, data.num_classes, hidden=(8,), seed=0)
    shards = shard_indices(data.y_train, K, seed=0)
    optimizer = OptimizerConfig(lr=LR, momentum=MU, nesterov=False, weight_decay=0.0,
                                warmup_epochs=0, scale_lr_with_workers=False)
    return data, model, shards, optimizer


def reference(problem, actions, alive, joins, saved_after):
    """The rules of docs/faults.md, worker by worker: who steps, who averages, who joins."""
    data, model, shards, _ = problem
    stream = BatchStream(shards, B, seed=0)
    params = model.init_params(K)
    momentum = np.zeros_like(params)
    saved = (params.copy(), momentum.copy())
    for t, step in enumerate(actions, start=1):
        idx = stream.next_batch()
        _, grad = model.loss_and_grad(params, data.x_train[idx], data.y_train[idx])
        live = [k for k in range(K) if alive[t - 1][k]]
        if step.gradient == "global":
            mean = sum(grad[k] for k in live) / len(live)
            grad = np.array([mean] * K)
        for k in live:                                   # the others are frozen
            momentum[k] = MU * momentum[k] + grad[k]
            params[k] = params[k] - LR * momentum[k]
        if step.average is not None:
            for members in GROUPS[step.average]:
                there = [k for k in members if k in live]
                if there:
                    mean = sum(params[k] for k in there) / len(there)
                    for k in there:
                        params[k] = mean
        if t in saved_after:
            for k in live:
                saved[0][k], saved[1][k] = params[k], momentum[k]
        for k, source in joins.get(t, []):
            holder = live[0]
            block = next(members for members in GROUPS["block"] if k in members)
            mate = next((j for j in block if j in live), holder)
            if source == "checkpoint" and step.gradient != "global":
                params[k], momentum[k] = saved[0][k], saved[1][k]
            else:                                        # the group's model and optimizer state
                params[k], momentum[k] = params[holder], momentum[mate]
    last = [k for k in range(K) if alive[-1][k]]
    return params, np.mean([params[k] for k in last], axis=0)


def replay(problem, actions, alive, joins, saved_after):
    data, model, shards, optimizer = problem
    alive = np.array(alive, dtype=bool)
    part = Participation(alive=alive, joins=joins,
                         checkpoints=[(t, alive[t - 1].copy()) for t in saved_after])
    return train(model, data, BatchStream(shards, B, seed=0), actions=actions, blocks=GROUPS,
                 optimizer=optimizer, eval_every=1, participation=part)


LOCAL = [Step(average="global"), Step(), Step(average="block"), Step(average="global"),
         Step(), Step(average="global")]
# worker 3 fails in step 2 and rejoins after step 4's global average
ALIVE = [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]


@pytest.mark.parametrize("source", ["average", "checkpoint"])
def test_elastic_local_sgd_follows_the_participation_record(problem, source):
    joins = {4: [(3, source)]}
    _, expected = reference(problem, LOCAL, ALIVE, joins, saved_after={1})
    learned = replay(problem, LOCAL, ALIVE, joins, saved_after={1})
    np.testing.assert_allclose(learned.final_params, expected, rtol=1e-12, atol=1e-14)
    assert learned.steps_done == 6 and len(learned.curve) == 3     # global syncs 1, 4, 6


def test_the_replacement_holds_the_state_its_policy_names(problem):
    """After step 4, the joiner holds the common model (average) or the row it saved at step
    1 (checkpoint): stop the replay there and look at the model everyone then averages."""
    data, model, shards, optimizer = problem
    first4 = LOCAL[:4] + [Step(average="global")]               # step 5 averages everyone
    alive = ALIVE[:5]
    common, _ = reference(problem, LOCAL[:4], ALIVE[:4], {}, saved_after=set())
    from_average, _ = reference(problem, first4[:4], alive[:4], {4: [(3, "average")]}, {1})
    assert np.array_equal(from_average[3], common[0])              # the common model of step 4
    from_checkpoint, _ = reference(problem, first4[:4], alive[:4], {4: [(3, "checkpoint")]}, {1})
    after_one, _ = reference(problem, LOCAL[:1], ALIVE[:1], {}, saved_after=set())
    assert np.array_equal(from_checkpoint[3], after_one[3])        # its row after step 1
    for source in ("average", "checkpoint"):                       # and the replay agrees
        learned = replay(problem, first4, alive, {4: [(3, source)]}, saved_after={1})
        _, expected = reference(problem, first4, alive, {4: [(3, source)]}, {1})
        np.testing.assert_allclose(learned.final_params, expected, rtol=1e-12, atol=1e-14)


def test_after_a_gradient_all_reduce_a_replacement_takes_its_group_parameters(problem):
    minibatch = [Step(gradient="global")] * 5
    alive = [[1, 1, 1, 1], [1, 1, 0, 1], [1, 1, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    joins = {3: [(2, "checkpoint")]}
    _, expected = reference(problem, minibatch, alive, joins, saved_after={1})
    learned = replay(problem, minibatch, alive, joins, saved_after={1})
    np.testing.assert_allclose(learned.final_params, expected, rtol=1e-12, atol=1e-14)
    # mini-batch SGD keeps one model: every row is the same after the join
    reference_params, _ = reference(problem, minibatch, alive, joins, saved_after={1})
    assert np.array_equal(reference_params, np.repeat(reference_params[:1], K, axis=0))


def test_everyone_present_is_the_fault_free_replay_bit_for_bit(problem):
    data, model, shards, optimizer = problem
    alive = np.ones((6, K), dtype=bool)
    plain = train(model, data, BatchStream(shards, B, seed=0), actions=LOCAL, blocks=GROUPS,
                  optimizer=optimizer, eval_every=1)
    followed = train(model, data, BatchStream(shards, B, seed=0), actions=LOCAL, blocks=GROUPS,
                     optimizer=optimizer, eval_every=1,
                     participation=Participation(alive=alive))
    assert np.array_equal(plain.final_params, followed.final_params)
    assert plain.curve == followed.curve and plain.virtual_curve == followed.virtual_curve
