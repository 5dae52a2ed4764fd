"""Adam and AdamW (simulator.learning.workload.adam_step) against torch.optim's rules: a
reference written here element by element in a different form, hand arithmetic, and the
equivalences that must hold (mini-batch Adam on K workers is one Adam on K times the batch)."""

import math

import numpy as np
import pytest

from simulator.learning.workload import (
    AdamState,
    OptimizerConfig,
    adam_step,
    make_model,
    optimizer_config_from_dict,
)
from simulator.utils.errors import InputError


class ReferenceAdam:
    """torch.optim.Adam / AdamW for one worker's parameter vector, element by element, in
    the textbook form of Kingma and Ba (2015) Algorithm 1 with torch's placement of eps:

        m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t),  w -= lr * m_hat / (sqrt(v_hat) + eps)

    (torch computes lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps): the same
    quantity written otherwise.) Weight decay: Adam adds wd * w to the gradient; AdamW
    multiplies w by (1 - lr * wd) first (Loshchilov and Hutter 2019, as torch.optim.AdamW).
    """

    def __init__(self, w, *, betas, eps, weight_decay, decoupled, amsgrad):
        self.w = [float(x) for x in w]
        self.b1, self.b2 = betas
        self.eps, self.wd, self.decoupled, self.amsgrad = eps, weight_decay, decoupled, amsgrad
        self.m = [0.0] * len(self.w)
        self.v = [0.0] * len(self.w)
        self.vmax = [0.0] * len(self.w)
        self.t = 0

    def step(self, g, lr):
        self.t += 1
        for i, gi in enumerate(g):
            gi = float(gi)
            if self.decoupled:
                self.w[i] = self.w[i] - lr * self.wd * self.w[i]
            elif self.wd:
                gi = gi + self.wd * self.w[i]
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * gi
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * gi * gi
            self.vmax[i] = max(self.vmax[i], self.v[i])
            v = self.vmax[i] if self.amsgrad else self.v[i]
            m_hat = self.m[i] / (1 - self.b1 ** self.t)
            v_hat = v / (1 - self.b2 ** self.t)
            self.w[i] = self.w[i] - lr * m_hat / (math.sqrt(v_hat) + self.eps)


@pytest.mark.parametrize("decoupled, weight_decay, amsgrad", [
    (False, 0.0, False), (False, 0.05, False), (True, 0.01, False), (True, 0.1, True),
    (False, 0.02, True)])
def test_adam_matches_the_reference_to_1e_10_over_thirty_steps(decoupled, weight_decay, amsgrad):
    K, P, steps = 3, 7, 30
    rng = np.random.default_rng(4)
    w = rng.normal(size=(K, P))
    state = AdamState(w, amsgrad=amsgrad)
    betas, eps = (0.85, 0.97), 1e-6
    refs = [ReferenceAdam(w[k], betas=betas, eps=eps, weight_decay=weight_decay,
                          decoupled=decoupled, amsgrad=amsgrad) for k in range(K)]
    for t in range(steps):
        g = rng.normal(size=(K, P)) * (2.0 if t % 7 == 3 else 0.5)    # bursts: AMSGrad's max
        lr = np.array([1e-2, 3e-3, 2e-2]) * (1 + t % 4)              # per worker, varying
        adam_step(w, state, g, lr, betas=betas, eps=eps, weight_decay=weight_decay,
                  decoupled=decoupled, amsgrad=amsgrad)
        for k in range(K):
            refs[k].step(g[k], float(lr[k]))
    assert state.step == steps
    for k in range(K):
        np.testing.assert_allclose(w[k], refs[k].w, rtol=0, atol=1e-10)
        np.testing.assert_allclose(state.exp_avg[k], refs[k].m, rtol=0, atol=1e-10)
        np.testing.assert_allclose(state.exp_avg_sq[k], refs[k].v, rtol=0, atol=1e-10)


def test_adam_and_adamw_two_steps_by_hand():
    # One weight w0 = 1, g1 = 0.5, g2 = -0.2, lr 0.1, betas (0.9, 0.999), eps 1e-8.
    # Adam, wd 0: step 1 moves by lr * g / (|g| + eps) ~ lr: w1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8).
    # Step 2: m2 = 0.9 * 0.05 + 0.1 * (-0.2) = 0.025; v2 = 0.999 * 0.00025 + 0.001 * 0.04
    #   = 0.00028975; m_hat = 0.025 / 0.19; v_hat = 0.00028975 / 0.001999.
    w, state = np.array([[1.0]]), AdamState(np.zeros((1, 1)))
    adam_step(w, state, np.array([[0.5]]), 0.1)
    w1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    assert w[0, 0] == pytest.approx(w1, rel=1e-15)
    adam_step(w, state, np.array([[-0.2]]), 0.1)
    m_hat, v_hat = 0.025 / 0.19, 0.00028975 / (1 - 0.999 ** 2)
    assert w[0, 0] == pytest.approx(w1 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8), rel=1e-14)
    # AdamW, wd 0.01: the weight first shrinks by lr * wd; the moments never see the decay.
    w, state = np.array([[1.0]]), AdamState(np.zeros((1, 1)))
    adam_step(w, state, np.array([[0.5]]), 0.1, weight_decay=0.01, decoupled=True)
    assert w[0, 0] == pytest.approx(1 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-15)
    assert state.exp_avg[0, 0] == pytest.approx(0.05, rel=1e-15)
    # Adam, wd 0.01: the decay is in the gradient: g = 0.5 + 0.01 * 1 = 0.51.
    w, state = np.array([[1.0]]), AdamState(np.zeros((1, 1)))
    adam_step(w, state, np.array([[0.5]]), 0.1, weight_decay=0.01)
    assert state.exp_avg[0, 0] == pytest.approx(0.051, rel=1e-14)
    assert w[0, 0] == pytest.approx(1 - 0.1 * 0.51 / (0.51 + 1e-8), rel=1e-15)


def test_a_shared_gradient_keeps_the_workers_equal():
    w = np.tile(np.array([0.3, -1.2, 2.0]), (4, 1))
    state = AdamState(w)
    for g in ([0.5, -0.1, 0.0], [0.2, 0.3, -1.0]):
        adam_step(w, state, np.array([g]), 1e-2, weight_decay=0.01, decoupled=True)
    assert (w == w[0]).all() and (state.exp_avg == state.exp_avg[0]).all()


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_minibatch_adam_on_k_workers_equals_one_worker_with_k_times_the_batch(name):
    K, B, steps = 4, 8, 20
    model = make_model("mlp", 6, 3, hidden=(10,), seed=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps, K, B, 6))
    y = rng.integers(0, 3, (steps, K, B))
    cfg = OptimizerConfig(name=name, lr=1e-3, warmup_epochs=1, decay_epochs=(3,))
    many = model.init_params(K)
    one = model.init_params(1)
    many_state, one_state = cfg.new_state(many), cfg.new_state(one)
    for t in range(steps):
        lr = cfg.learning_rate(t + 1, workers=K, steps_per_epoch=5)
        _, grad = model.loss_and_grad(many, x[t], y[t])
        cfg.step(many, many_state, grad.mean(0, keepdims=True), lr)
        _, grad1 = model.loss_and_grad(one, x[t].reshape(1, K * B, 6), y[t].reshape(1, K * B))
        cfg.step(one, one_state, grad1, lr)
    assert (many == many[0]).all()
    np.testing.assert_allclose(many, np.broadcast_to(one, many.shape), rtol=0, atol=1e-10)
    assert np.abs(many - model.init_params(1)).max() > 1e-3              # it did move


# --------------------------------------------------------------------------- configuration
def test_each_optimizer_has_torch_defaults():
    sgd, adam, adamw = (optimizer_config_from_dict({"name": n}) for n in ("sgd", "adam", "adamw"))
    assert sgd == OptimizerConfig() and (sgd.lr, sgd.weight_decay) == (0.1, 1e-4)
    assert (adam.lr, adam.weight_decay, adam.betas, adam.eps, adam.amsgrad) == \
        (1e-3, 0.0, (0.9, 0.999), 1e-8, False)
    assert (adamw.lr, adamw.weight_decay) == (1e-3, 1e-2)
    cfg = optimizer_config_from_dict({"name": "adamw", "lr": 4e-4, "betas": [0.9, 0.95],
                                      "weight_decay": 0.1, "amsgrad": True})
    assert (cfg.betas, cfg.weight_decay, cfg.amsgrad) == ((0.9, 0.95), 0.1, True)
    assert isinstance(cfg.new_state(np.zeros((2, 3))), AdamState)


@pytest.mark.parametrize("d, field, text", [
    ({"name": "adan"}, "optimizer.name", "did you mean 'adam'?"),
    ({"name": "adam", "momentum": 0.9}, "optimizer.momentum", "a setting of sgd, not of adam"),
    ({"name": "adamw", "nesterov": False}, "optimizer.nesterov", "a setting of sgd"),
    ({"betas": [0.9, 0.99]}, "optimizer.betas", "a setting of adam and adamw, not of sgd"),
    ({"name": "adam", "betas": [0.9]}, "optimizer.betas", "two numbers in [0, 1)"),
    ({"name": "adam", "betas": [0.9, 1.0]}, "optimizer.betas", "two numbers in [0, 1)"),
    ({"name": "adam", "eps": 0}, "optimizer.eps", "positive"),
    ({"name": "adam", "amsgrad": "no"}, "optimizer.amsgrad", "true or false"),
])
def test_bad_adam_settings_are_one_located_error(d, field, text):
    with pytest.raises(InputError) as err:
        optimizer_config_from_dict(d, file="s.yaml", locate=lambda path: 7, path=("optimizer",))
    assert err.value.field == field and text in str(err.value)
    assert str(err.value).startswith("s.yaml:7: ")
