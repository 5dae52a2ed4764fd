"""DiLoCo, SlowMo, QSR and AdaComm: each update rule against a hand-worked two- or
three-worker example, and their schedules' closed forms."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from simulator.learning.adaptive import AdaComm, adacomm_period, qsr, qsr_sync_steps
from simulator.learning.outer import DiLoCoOuter, SlowMoOuter, outer_for
from simulator.learning.schedules import GLOBAL, Step, count_syncs, schedule_for
from simulator.learning.training import Learner, train
from simulator.learning.workload import OptimizerConfig


# --------------------------------------------------------------------------- a toy workload
class Quadratic:
    """Worker k minimises 0.5 * ||w - c_k||^2: its gradient is w - c_k, c_k its batch's row.

    Tiny enough to follow by hand; shaped like the MLP (params (K, P), a batch (K, B, d))."""

    def __init__(self, P):
        self.num_params = P

    def init_params(self, workers):
        return np.zeros((workers, self.num_params))

    def loss_and_grad(self, params, x, y):
        target = x[:, 0, :]                                            # (K, P)
        diff = params - target
        return 0.5 * (diff ** 2).sum(axis=1), diff

    def accuracy(self, params, x, y):
        return 0.0 if np.ndim(params) == 1 else np.zeros(len(params))


class FixedStream:
    """Worker k always draws training row k."""

    def __init__(self, workers):
        self.workers, self.steps_per_epoch = workers, 1

    def next_batch(self):
        return np.arange(self.workers)[:, None]                        # (K, 1)


def toy(targets):
    """(model, data, stream) whose worker k is pulled towards ``targets[k]``."""
    x = np.array(targets, dtype=float).reshape(len(targets), -1)       # (K, P)
    data = SimpleNamespace(x_train=x, y_train=np.zeros(len(x), dtype=int),
                           x_test=x, y_test=np.zeros(len(x), dtype=int))
    return Quadratic(x.shape[1]), data, FixedStream(len(x))


PLAIN_SGD = OptimizerConfig(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0,
                            warmup_epochs=0, scale_lr_with_workers=False)
"""w -= 0.1 * g: every step of the hand-worked examples."""


def learn(targets, steps, actions, outer=None):
    model, data, stream = toy(targets)
    groupings = {GLOBAL: [list(range(len(targets)))]}
    learner = Learner(model, data, stream, groupings, PLAIN_SGD, steps, outer=outer)
    for t in range(1, steps + 1):
        learner.step(t, actions(t))
    return learner


# --------------------------------------------------------------------------- DiLoCo
def test_diloco_two_workers_by_hand():
    # Workers pulled to 1 and 3 from 0, H = 2, inner SGD at 0.1, outer Nesterov 0.7 / 0.9.
    # Steps 1-2: w = [0.1, 0.3], then [0.19, 0.57]. Outer: delta = mean(0 - w) = -0.38;
    # buf = -0.38; direction = -0.38 + 0.9 * -0.38 = -0.722; x0 = 0 - 0.7 * -0.722 = 0.5054.
    learner = learn([1.0, 3.0], 2, schedule_for(SimpleNamespace(algorithm="diloco", H=2)),
                    outer=DiLoCoOuter(0.7, 0.9))
    np.testing.assert_allclose(learner.params, [[0.5054], [0.5054]], rtol=1e-14)
    # Steps 3-4 from 0.5054: w = [0.55486, 0.75486], then [0.599374, 0.979374];
    # delta = mean(0.5054 - w) = -0.283974; buf = 0.9 * -0.38 - 0.283974 = -0.625974;
    # direction = -0.283974 + 0.9 * -0.625974 = -0.8473506; x0 = 0.5054 + 0.7 * 0.8473506.
    learner = learn([1.0, 3.0], 4, schedule_for(SimpleNamespace(algorithm="diloco", H=2)),
                    outer=DiLoCoOuter(0.7, 0.9))
    np.testing.assert_allclose(learner.outer_state.buf, [-0.625974], rtol=1e-13)
    np.testing.assert_allclose(learner.params, [[1.09854542]] * 2, rtol=1e-13)


def test_diloco_outer_sgd_of_rate_one_lands_on_the_average():
    params, outer = np.array([[0.2, 1.0], [0.6, -1.0], [1.0, 3.0]]), DiLoCoOuter(1.0, 0.0)
    state = outer.new_state(np.zeros(2))
    outer.apply(params, state, inner_lr=0.3)
    np.testing.assert_allclose(params, [[0.6, 1.0]] * 3, rtol=1e-15)


def test_diloco_without_nesterov_is_heavy_ball():
    outer = DiLoCoOuter(0.5, 0.9, nesterov=False)
    state = outer.new_state(np.array([1.0]))
    for workers in ([[0.4], [0.8]], [[0.8], [0.8]]):
        outer.apply(np.array(workers), state, inner_lr=0.1)
    # delta1 = 0.4: buf 0.4, x0 = 1 - 0.2 = 0.8; delta2 = 0: buf 0.36, x0 = 0.8 - 0.18
    np.testing.assert_allclose(state.x0, [0.62], rtol=1e-14)


# --------------------------------------------------------------------------- SlowMo
def test_slowmo_two_workers_by_hand():
    # Same workers, H = 2, alpha 1, beta 0.5, gamma = 0.1 (the inner rate).
    # After step 2: average 0.38; u = (0 - 0.38) / 0.1 = -3.8; x0 = 0 - 1 * 0.1 * -3.8 = 0.38.
    # Steps 3-4 from 0.38: w = [0.442, 0.642], then [0.4978, 0.8778]; average 0.6878;
    # u = 0.5 * -3.8 + (0.38 - 0.6878) / 0.1 = -4.978; x0 = 0.38 + 0.1 * 4.978 = 0.8778.
    learner = learn([1.0, 3.0], 4, schedule_for(SimpleNamespace(algorithm="slowmo", H=2)),
                    outer=SlowMoOuter(1.0, 0.5))
    np.testing.assert_allclose(learner.outer_state.buf, [-4.978], rtol=1e-13)
    np.testing.assert_allclose(learner.params, [[0.8778]] * 2, rtol=1e-13)


def test_slowmo_three_workers_scale_by_the_inner_rate():
    # Three workers end at 0.1, 0.4, 0.7 from x0 = 1 with inner rate 0.05; alpha 0.5, beta 0:
    # u = (1 - 0.4) / 0.05 = 12; x0 = 1 - 0.5 * 0.05 * 12 = 0.7.
    outer = SlowMoOuter(0.5, 0.0)
    params = np.array([[0.1], [0.4], [0.7]])
    state = outer.new_state(np.array([1.0]))
    outer.apply(params, state, inner_lr=0.05)
    np.testing.assert_allclose(params, [[0.7]] * 3, rtol=1e-14)


def test_outer_for_reads_the_variant_and_its_defaults():
    assert outer_for(SimpleNamespace(algorithm="diloco")) == DiLoCoOuter(0.7, 0.9)
    assert outer_for(SimpleNamespace(algorithm="slowmo", slow_momentum=0.7)) == \
        SlowMoOuter(1.0, 0.7)
    assert outer_for(SimpleNamespace(algorithm="hierarchical")) is None


def test_outer_state_is_held_once_and_optimizer_state_per_worker():
    model, data, stream = toy([1.0, 3.0])
    cfg = OptimizerConfig(lr=0.1, warmup_epochs=0, scale_lr_with_workers=False)  # momentum 0.9
    learner = Learner(model, data, stream, {GLOBAL: [[0, 1]]}, cfg, 4,
                      outer=DiLoCoOuter(0.7, 0.9))
    for t in range(1, 5):
        learner.step(t, schedule_for(SimpleNamespace(algorithm="diloco", H=2))(t))
    assert learner.outer_state.x0.shape == (1,)
    assert (learner.params == learner.params[0]).all()                 # after an outer step
    assert learner.state[0, 0] != learner.state[1, 0]                  # buffers never averaged


def test_diloco_and_slowmo_schedules_with_a_replica_level():
    for algorithm in ("diloco", "slowmo", "qsr", "adacomm"):
        assert "replica" in __import__("inspect").signature(
            schedule_for.__globals__["SCHEDULES"][algorithm]).parameters
    act = schedule_for(SimpleNamespace(algorithm="diloco", H=3, replica="block"))
    assert [act(t) for t in (1, 2, 3)] == [Step(gradient="block")] * 2 + \
        [Step(gradient="block", average=GLOBAL)]
    assert count_syncs(act, 9) == {"gradient": 0, "global": 3, "block": 0, "block gradient": 9}


# --------------------------------------------------------------------------- QSR
def test_qsr_rounds_by_hand():
    # H_base 2, alpha 0.5; rates (exact in binary): 0.5 for steps 1-4, 0.25 for 5-16,
    # 0.125 after (to 40). Round from 1: (0.5 / 0.5)^2 = 1 < 2: 2 steps (ends at 2); from 3:
    # 2 (4); from 5: (0.5 / 0.25)^2 = 4 (8); from 9: 4 (12); from 13: 4 (16); from 17:
    # (0.5 / 0.125)^2 = 16 (32); from 33: 16, cut at the last step, 40.
    rates = [0.5] * 4 + [0.25] * 12 + [0.125] * 24
    assert qsr_sync_steps(2, 0.5, rates) == [2, 4, 8, 12, 16, 32, 40]
    # During a 6-step warm-up every round is H_base: 2, 4, 6; from 7 (0.25): 4 (10); from 11:
    # 4 (14); from 15: 4 (18); from 19 (0.125): 16 (34); from 35: cut at 40.
    assert qsr_sync_steps(2, 0.5, rates, warmup_steps=6) == [2, 4, 6, 10, 14, 18, 34, 40]


def test_qsr_with_a_small_alpha_is_local_sgd():
    rates = np.linspace(0.4, 0.01, 48)                         # lr_min 0.01: alpha <= 0.01 sqrt(3)
    act = qsr(3, alpha=0.01 * math.sqrt(3), learning_rates=rates)
    local = schedule_for(SimpleNamespace(algorithm="local", H=3))
    assert [act(t) for t in range(1, 49)] == [local(t) for t in range(1, 49)]


def test_qsr_needs_alpha():
    with pytest.raises(Exception, match="alpha"):
        qsr(2, learning_rates=[0.1])


# --------------------------------------------------------------------------- AdaComm
def test_adacomm_period_rule_by_hand():
    # ceil(16 * sqrt(F / F0)): F = F0 / 4 -> 8; F = F0 / 9 -> ceil(5.33) = 6; clamped to H_min.
    assert adacomm_period(16, 1, 0.5, 2.0) == 8
    assert adacomm_period(16, 1, 2 / 9, 2.0) == 6
    assert adacomm_period(16, 7, 2 / 9, 2.0) == 7
    assert adacomm_period(16, 1, 3.0, 2.0) == 16                       # never above H_0
    assert adacomm_period(16, 1, 0.0, 2.0) == 1


def drive(schedule, losses, times):
    """Ask `schedule` for every step, report `losses[t]` and `times[t]` as the engine would."""
    steps = []
    for t in range(1, len(losses) + 1):
        steps.append(schedule.action(t))
        schedule.observe(t, losses[t - 1])
        schedule.ended(t, times[t - 1])
    return steps


def test_adacomm_three_rounds_by_hand():
    # H_0 = 8, F0 = 4 (step 1). Average after step 8 at loss 1: ceil(8 * sqrt(1/4)) = 4;
    # after step 12 at loss 0.25: ceil(8 * 0.25) = 2; after 14 and 16 (loss 0.25): 2.
    losses = [4.0] + [1.0] * 7 + [0.25] * 8
    a = AdaComm(8, 1)
    steps = drive(a, losses, [float(t) for t in range(1, 17)])
    assert a.sync_steps == [8, 12, 14, 16] and a.periods == [8, 4, 2, 2, 2]
    assert [t for t, s in enumerate(steps, 1) if s.average == GLOBAL] == a.sync_steps


def test_adacomm_with_an_interval_rechooses_only_once_per_interval():
    # Steps of 1 s; interval 10 s: the average ending at 8 s is before 10 s (the period stays
    # 8 although the loss fell to 1); the one at 16 s is the first at or after 10 s
    # (re-chosen: ceil(8 * sqrt(0.25 / 4)) = 2), then the next check is at 20 s: the average
    # at 18 s keeps 2, the one at 20 s re-chooses.
    losses = [4.0] + [1.0] * 7 + [0.25] * 16
    a = AdaComm(8, 1, interval_s=10.0)
    drive(a, losses, [float(t) for t in range(1, 25)])
    assert a.sync_steps == [8, 16, 18, 20, 22, 24]
    assert a.periods[:3] == [8, 8, 2]


def test_adacomm_with_h_min_equal_to_h_is_local_sgd():
    losses = list(np.geomspace(3.0, 0.01, 40))
    steps = drive(AdaComm(5, 5), losses, list(range(1, 41)))
    local = schedule_for(SimpleNamespace(algorithm="local", H=5))
    assert steps == [local(t) for t in range(1, 41)]


def test_adacomm_refuses_to_run_ahead_of_an_average():
    a = AdaComm(1, 1)
    a.action(1)
    with pytest.raises(RuntimeError, match="before the average of step 1 ended"):
        a.action(2)


# --------------------------------------------------------------------------- train() joins
def test_train_applies_the_outer_step_at_global_averages_only():
    model, data, stream = toy([1.0, 3.0])
    act = schedule_for(SimpleNamespace(algorithm="diloco", H=2))
    result = train(model, data, stream, actions=[act(t) for t in range(1, 5)],
                   blocks={GLOBAL: [[0, 1]]}, optimizer=PLAIN_SGD, eval_every=1,
                   outer=DiLoCoOuter(0.7, 0.9))
    np.testing.assert_allclose(result.final_params, [1.09854542], rtol=1e-13)
    assert [point[0] for point in result.curve] == [2, 4]              # common models only
