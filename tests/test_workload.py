"""Models, optimizer and learning-rate rules of simulator.learning.workload, checked against
independent computations: finite differences, one-worker runs, hand arithmetic."""

import contextlib

import numpy as np
import pytest

from simulator.learning.datasets import BatchStream, load_dataset, shard_indices
from simulator.learning.workload import (
    OptimizerConfig,
    learning_rate,
    make_model,
    optimizer_config_from_dict,
    sgd_step,
)
from simulator.utils.errors import InputError

MODELS = [("mlp", (7, 5)), ("softmax", ())]


def _problem(name, hidden, K=3, B=6, d=5, C=4, seed=1, dtype=np.float64):
    """A model and K distinct replicas with K batches of random data."""
    model = make_model(name, d, C, hidden=hidden, seed=0, dtype=dtype)
    rng = np.random.default_rng(seed)
    params = model.init_params(K) + rng.normal(0, 0.3, (K, model.num_params))   # (K, P)
    x = rng.normal(size=(K, B, d))                                              # (K, B, d)
    y = rng.integers(0, C, (K, B))                                              # (K, B)
    return model, params.astype(dtype), x.astype(dtype), y


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name,hidden", MODELS)
def test_gradient_matches_central_differences_for_three_workers_at_once(name, hidden):
    model, params, x, y = _problem(name, hidden, K=3)
    _, grad = model.loss_and_grad(params, x, y)                         # (K, P)
    eps = 1e-6
    numeric = np.empty_like(grad)
    for j in range(model.num_params):    # perturb parameter j of every worker together
        step = np.zeros_like(params)
        step[:, j] = eps
        up, _ = model.loss_and_grad(params + step, x, y)                # (K,)
        down, _ = model.loss_and_grad(params - step, x, y)
        numeric[:, j] = (up - down) / (2 * eps)
    rel = np.linalg.norm(grad - numeric, axis=1) / np.linalg.norm(numeric, axis=1)   # (K,)
    assert rel.max() < 1e-6, rel


@pytest.mark.parametrize("name,hidden", MODELS)
def test_loss_is_mean_cross_entropy(name, hidden):
    model, params, x, y = _problem(name, hidden, K=2)
    loss, _ = model.loss_and_grad(params, x, y)
    for k in range(2):
        logits = model.predict(params[k], x[k])                          # (B, C)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        assert loss[k] == pytest.approx(-np.log(p[np.arange(len(y[k])), y[k]]).mean(), rel=1e-12)


@pytest.mark.parametrize("name,hidden", MODELS)
def test_vectorised_call_equals_separate_single_worker_calls(name, hidden):
    model, params, x, y = _problem(name, hidden, K=5, B=7)
    loss, grad = model.loss_and_grad(params, x, y)
    for k in range(5):
        loss_k, grad_k = model.loss_and_grad(params[k:k + 1], x[k:k + 1], y[k:k + 1])
        np.testing.assert_allclose(loss[k], loss_k[0], rtol=1e-13)
        np.testing.assert_allclose(grad[k], grad_k[0], rtol=1e-12, atol=1e-14)


def test_float32_model_computes_in_float32():
    model, params, x, y = _problem("mlp", (8,), dtype=np.float32)
    loss, grad = model.loss_and_grad(params, x, y)
    assert grad.dtype == np.float32 and params.dtype == np.float32
    assert model.param_bytes == 4 * model.num_params
    ref = make_model("mlp", 5, 4, hidden=(8,))
    loss64, grad64 = ref.loss_and_grad(params.astype(np.float64), x.astype(np.float64), y)
    np.testing.assert_allclose(grad, grad64, rtol=1e-3, atol=1e-5)


# --------------------------------------------------------------------------- model facts
def test_sizes_flops_and_views():
    model = make_model("mlp", 64, 10, hidden=(64,))
    assert model.num_params == 64 * 64 + 64 + 64 * 10 + 10 == 4810
    assert model.param_bytes == 4810 * 8
    assert model.flops_per_sample == 6 * (64 * 64 + 64 * 10)         # 6N, N = weights
    assert make_model("softmax", 64, 10).num_params == 650
    params = model.init_params(workers=3)                              # (K, P)
    (W1, b1), (W2, b2) = model.unflatten(params)
    assert W1.shape == (3, 64, 64) and b1.shape == (3, 64) and W2.shape == (3, 64, 10)
    assert all(np.shares_memory(v, params) for v in (W1, b1, W2, b2))
    W2[1, 0, 0] = 7.0
    assert params[1, 64 * 64 + 64] == 7.0


def test_initialisation_is_seeded_and_identical_across_workers():
    a = make_model("mlp", 10, 3, seed=4).init_params(5)
    assert (a == a[0]).all()
    assert (a == make_model("mlp", 10, 3, seed=4).init_params(5)).all()
    assert not (a[0] == make_model("mlp", 10, 3, seed=5).init_params(1)[0]).all()
    (W1, b1), (W2, _) = make_model("mlp", 400, 3, hidden=(300,)).unflatten(
        make_model("mlp", 400, 3, hidden=(300,)).init_params(1)[0])
    assert W1.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)     # He
    assert np.abs(W2).max() <= np.sqrt(6 / 303) and (b1 == 0).all()  # Glorot uniform


def test_predict_and_accuracy_shapes():
    model, params, x, y = _problem("mlp", (6,), K=3, B=9)
    assert model.predict(params[0], x[0]).shape == (9, 4)
    assert model.predict(params, x[0]).shape == (3, 9, 4)
    assert model.predict(params, x).shape == (3, 9, 4)
    acc = model.accuracy(params, x[0], y[0])
    assert acc.shape == (3,) and isinstance(model.accuracy(params[0], x[0], y[0]), float)
    assert acc[0] == model.accuracy(params[0], x[0], y[0])
    assert model.loss(params[0], x[0], y[0]) == pytest.approx(
        model.loss_and_grad(params[:1], x[:1], y[:1])[0][0], rel=1e-12)


@pytest.mark.parametrize("args,field", [
    (("mlpp", 4, 3), "model"), (("mlp", 0, 3), "input_dim"), (("mlp", 4, 1), "num_classes"),
])
def test_make_model_rejects_bad_input(args, field):
    with pytest.raises(InputError) as err:
        make_model(*args)
    assert err.value.field == field
    if field == "model":
        assert "did you mean 'mlp'?" in str(err.value)


def test_make_model_rejects_other_dtypes():
    with pytest.raises(InputError, match="float64 or float32"):
        make_model("mlp", 4, 3, dtype=np.float16)


# --------------------------------------------------------------------------- optimizer
def test_sgd_step_matches_hand_computed_two_steps():
    # One worker, two parameters; lr 0.1, mu 0.9, wd 0.01, Nesterov (torch.optim.SGD rules):
    # step 1: d = g1 + wd*w0 = [0.5+0.01, 0.1-0.02] = [0.51, 0.08]; buf = d = [0.51, 0.08]
    #         d + mu*buf = [0.969, 0.152];        w1 = w0 - 0.1*that = [0.9031, -2.0152]
    # step 2: d = g2 + wd*w1 = [-0.2+0.009031, 0.3-0.020152] = [-0.190969, 0.279848]
    #         buf = 0.9*[0.51, 0.08] + d = [0.268031, 0.351848]
    #         d + mu*buf = [0.0502589, 0.5965112]; w2 = w1 - 0.1*that = [0.89807411, -2.07485112]
    w = np.array([[1.0, -2.0]])
    buf = np.zeros_like(w)
    sgd_step(w, buf, np.array([[0.5, 0.1]]), 0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    np.testing.assert_allclose(w, [[0.9031, -2.0152]], rtol=1e-13)
    sgd_step(w, buf, np.array([[-0.2, 0.3]]), 0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    np.testing.assert_allclose(buf, [[0.268031, 0.351848]], rtol=1e-13)
    np.testing.assert_allclose(w, [[0.89807411, -2.07485112]], rtol=1e-13)


def test_sgd_step_plain_momentum_and_plain_sgd():
    # Plain momentum: buf1 = [0.51, 0.08], w1 = w0 - 0.1*buf1 = [0.949, -2.008];
    # d2 = g2 + wd*w1 = [-0.19051, 0.27992]; buf2 = 0.9*buf1 + d2 = [0.26849, 0.35192]
    w, buf = np.array([[1.0, -2.0]]), np.zeros((1, 2))
    for g in ([[0.5, 0.1]], [[-0.2, 0.3]]):
        sgd_step(w, buf, np.array(g), 0.1, momentum=0.9, nesterov=False, weight_decay=0.01)
    np.testing.assert_allclose(w, [[0.949 - 0.026849, -2.008 - 0.035192]], rtol=1e-13)
    w = np.array([[1.0, -2.0]])
    sgd_step(w, np.zeros((1, 2)), np.array([[0.5, 0.1]]), 0.1, momentum=0.0, nesterov=False,
             weight_decay=0.0)
    np.testing.assert_allclose(w, [[0.95, -2.01]], rtol=1e-15)


def test_sgd_step_per_worker_rates_and_shared_gradient():
    w, buf = np.ones((2, 3)), np.zeros((2, 3))
    sgd_step(w, buf, np.ones(3), np.array([0.1, 0.2]), momentum=0.0, nesterov=False,
             weight_decay=0.0)
    np.testing.assert_allclose(w, [[0.9] * 3, [0.8] * 3])


def _plain_loss_and_grad(model, params, x, y):
    """loss_and_grad as numpy writes it plainly, every temporary fresh: the reference the
    buffered one must match bit for bit."""
    K, B, _ = x.shape
    inputs, h = [], x
    layers = model.unflatten(params)
    for i, (W, b) in enumerate(layers):
        inputs.append(h)
        z = np.matmul(h, W) + b[..., None, :]
        h = np.maximum(z, 0.0) if i < len(layers) - 1 else z
    logits = h - h.max(-1, keepdims=True)
    exp = np.exp(logits)
    sum_exp = exp.sum(-1)
    loss = (np.log(sum_exp) - np.take_along_axis(logits, y[..., None], -1)[..., 0]).mean(1)
    dz = exp / sum_exp[..., None]
    np.put_along_axis(dz, y[..., None], np.take_along_axis(dz, y[..., None], -1) - 1.0, -1)
    dz = dz / B
    grad = np.zeros_like(params)
    for i, (gW, gb) in reversed(list(enumerate(model.unflatten(grad)))):
        gW[...] = np.matmul(inputs[i].transpose(0, 2, 1), dz)
        gb[...] = dz.sum(1)
        if i > 0:
            dz = np.matmul(dz, layers[i][0].transpose(0, 2, 1)) * (inputs[i] > 0)
    return loss, grad


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, hidden", MODELS + [("mlp", (64,)), ("mlp", (16, 9))])
def test_buffered_gradient_has_the_plain_computations_bits(monkeypatch, name, hidden, dtype):
    """Workspace buffers, out= matmuls, a caller's gradient buffer and chunks of workers
    (one, several, a short last one) change no bit, over steps that reuse the buffers."""
    from simulator.learning import workload

    rng = np.random.default_rng(3)
    x_all = rng.normal(size=(500, 40)).astype(dtype)
    y_all = rng.integers(0, 10, 500)
    for K, B, chunk in ((3, 6, 1), (64, 32, 64), (67, 32, 16), (3, 6, 2)):
        monkeypatch.setattr(workload, "CHUNK_WORKERS", chunk)
        model, params, _, _ = _problem(name, hidden, K=K, B=B, d=40, C=10, dtype=dtype)
        out = np.full_like(params, np.nan)
        for step in range(3):
            idx = rng.integers(0, 500, (K, B))
            want_loss, want_grad = _plain_loss_and_grad(model, params, x_all[idx], y_all[idx])
            for loss, grad in (model.loss_and_grad(params, x_all[idx], y_all[idx],
                                                   out=out if step else None),
                               model.batch_loss_and_grad(params, x_all, y_all, idx, out=out)):
                assert loss.dtype == want_loss.dtype and loss.tobytes() == want_loss.tobytes()
                assert grad.tobytes() == want_grad.tobytes()
            assert grad is out
            params = params - 0.1 * want_grad


def _random_fused_case(rng):
    """A random float64 problem for the fused passes: widths from 2, classes on both sides
    of numpy's pairwise blocks, batches of one, chunks that leave a single worker, inputs
    with exact zeros and magnitudes from tiny to large."""
    hidden = tuple(int(h) for h in rng.integers(2, 40, rng.integers(0, 3)))
    C = int(rng.choice([2, 3, 7, 8, 9, 10, 16, 17, 33, 128]))
    d, K, B = int(rng.integers(1, 20)), int(rng.integers(1, 70)), int(rng.choice([1, 3, 8, 32]))
    model = make_model("mlp" if hidden else "softmax", d, C, hidden=hidden)
    x_all = rng.normal(size=(200, d)) * rng.choice([1e-3, 3.0, 100.0])
    x_all[rng.random(x_all.shape) < 0.3] = 0.0
    params = model.init_params(K) + rng.normal(size=(K, model.num_params)) * rng.choice(
        [0.01, 0.3, 3.0])
    return model, params, x_all, rng.integers(0, C, 200), rng.integers(0, 200, (K, B))


@pytest.mark.parametrize("seed", range(4))
def test_fused_passes_give_numpys_bits(monkeypatch, seed):
    """The training step with its elementwise passes in kernels (compiled, and as Python)
    against numpy's passes, bit for bit: losses and gradients, on random problems."""
    from simulator.learning import fused, workload
    from simulator.utils import jit

    rng = np.random.default_rng(seed)
    for case in range(40):
        model, params, x_all, y_all, idx = _random_fused_case(rng)
        monkeypatch.setattr(workload, "CHUNK_WORKERS", int(rng.choice([1, 7, 64])))
        monkeypatch.setattr(fused, "FUSED_STEP_FROM", 10**18)
        assert not fused.fused_step_applies(model, len(idx))
        want_loss, want_grad = (a.copy() for a in
                                model.batch_loss_and_grad(params, x_all, y_all, idx))
        monkeypatch.setattr(fused, "FUSED_STEP_FROM", 1)
        assert fused.fused_step_applies(model, len(idx))
        runs = [model.batch_loss_and_grad(params, x_all, y_all, idx)]
        if case < 3:                                     # the Python form is slow
            with jit.interpreted():
                runs.append(model.batch_loss_and_grad(params, x_all, y_all, idx))
        for loss, grad in runs:
            assert loss.tobytes() == want_loss.tobytes()
            assert grad.tobytes() == want_grad.tobytes()


def test_fused_passes_keep_numpys_relu_and_max_on_signed_zeros_and_nans():
    """np.maximum(v, 0) gives +0.0 for -0.0 and keeps a NaN's bits; a row's max is NaN if
    the row holds one: the kernels do the same."""
    from simulator.learning import fused
    from simulator.utils import jit

    jit.compile_kernels()
    nan = np.array([0x7FF8000000000123], dtype=np.int64).view(np.float64)[0]
    z = np.array([[[-0.0, 0.0, -1.0, 2.0, nan, -np.inf, np.inf, 1e-310]]])
    b = np.zeros((1, z.shape[2]))
    want = np.maximum(z + b[:, None], 0.0)
    got, mask = z.copy(), np.empty(z.shape, bool)
    fused.bias_relu(got, b, mask)
    assert got.tobytes() == want.tobytes() and (mask == (want > 0)).all()
    logits = np.array([[[1.0, nan, 3.0], [2.0, -np.inf, 0.5]]])
    want = logits - logits.max(-1, keepdims=True)
    got = logits.copy()
    fused.shift_logits(got, np.zeros((1, 3)))
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert got[~np.isnan(got)].tobytes() == want[~np.isnan(want)].tobytes()


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 10, 15, 16, 17, 100, 128])
def test_row_sum_is_numpys_pairwise_sum(n):
    """Terms of wildly different magnitudes make every order of summation show."""
    from simulator.learning import fused
    from simulator.utils import jit

    jit.compile_kernels()
    rng = np.random.default_rng(n)
    a = rng.standard_normal((3, 50, n)) * np.exp(rng.uniform(-30, 30, (3, 50, n)))
    want = a.sum(-1)
    got = np.array([[fused.row_sum(a, k, i) for i in range(50)] for k in range(3)])
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("momentum, nesterov", [(0.9, True), (0.9, False), (0.0, False)])
@pytest.mark.parametrize("weight_decay", [1e-4, 0.0])
@pytest.mark.parametrize("lr_kind, grad_kind", [("scalar", "own"), ("per_worker", "shared"),
                                                ("scalar", "flat")])
def test_fused_sgd_step_gives_numpys_bits(monkeypatch, momentum, nesterov, weight_decay,
                                          lr_kind, grad_kind):
    """The one-pass update (compiled, and as Python) against the numpy passes, bit for bit,
    over five steps whose buffers build up."""
    from simulator.learning import workload
    from simulator.utils import jit

    rng = np.random.default_rng(7)
    K, P = 5, 37
    start = rng.standard_normal((K, P)) * 10.0 ** rng.integers(-8, 3, (K, P))
    grads = [rng.standard_normal({"own": (K, P), "shared": (1, P), "flat": (P,)}[grad_kind])
             for _ in range(5)]
    lrs = [0.05 * (i + 1) if lr_kind == "scalar" else rng.uniform(0.01, 1.0, K)
           for i in range(5)]

    def run(fused_from, interpreted=False):
        monkeypatch.setattr(workload, "FUSED_FROM", fused_from)
        w, buf = start.copy(), np.zeros((K, P))
        with (jit.interpreted() if interpreted else contextlib.nullcontext()):
            for g, lr in zip(grads, lrs):
                sgd_step(w, buf, g, lr, momentum=momentum, nesterov=nesterov,
                         weight_decay=weight_decay)
        return w, buf

    numpy_w, numpy_buf = run(fused_from=10**18)
    for w, buf in (run(fused_from=1), run(fused_from=1, interpreted=True)):
        assert w.tobytes() == numpy_w.tobytes()
        assert buf.tobytes() == numpy_buf.tobytes()


def test_minibatch_sgd_on_k_workers_equals_one_worker_with_k_times_the_batch():
    K, B, steps = 4, 8, 20
    model = make_model("mlp", 6, 3, hidden=(10,), seed=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps, K, B, 6))
    y = rng.integers(0, 3, (steps, K, B))
    cfg = OptimizerConfig(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2,
                          warmup_epochs=1, decay_epochs=(3,))
    many, many_buf = model.init_params(K), np.zeros((K, model.num_params))
    one, one_buf = model.init_params(1), np.zeros((1, model.num_params))
    for t in range(steps):
        lr = cfg.learning_rate(t + 1, workers=K, steps_per_epoch=5)   # K-worker (scaled) rate
        _, grad = model.loss_and_grad(many, x[t], y[t])                 # (K, P)
        cfg.step(many, many_buf, grad.mean(0, keepdims=True), lr)       # all-reduce, then step
        _, grad1 = model.loss_and_grad(one, x[t].reshape(1, K * B, 6), y[t].reshape(1, K * B))
        cfg.step(one, one_buf, grad1, lr)                               # same lr value
    assert (many == many[0]).all()
    np.testing.assert_allclose(many, np.broadcast_to(one, many.shape), rtol=0, atol=1e-10)
    np.testing.assert_allclose(many_buf[0], one_buf[0], rtol=0, atol=1e-10)
    assert np.abs(many - model.init_params(1)).max() > 0.01            # it did move


def test_one_worker_mlp_reaches_95_percent_on_digits():
    data = load_dataset("digits", seed=0)
    model = make_model("mlp", data.input_dim, data.num_classes, hidden=(64,), seed=0)
    cfg = OptimizerConfig(lr=0.05, warmup_epochs=0)
    stream = BatchStream(shard_indices(data.y_train, 1, seed=0), batch_size=32, seed=0)
    params, buf = model.init_params(1), np.zeros((1, model.num_params))
    for step in range(1, 15 * stream.steps_per_epoch + 1):
        idx = stream.next_batch()                                       # (1, 32)
        _, grad = model.loss_and_grad(params, data.x_train[idx], data.y_train[idx])
        cfg.step(params, buf, grad, cfg.learning_rate(step, workers=1,
                                                      steps_per_epoch=stream.steps_per_epoch))
    assert model.accuracy(params[0], data.x_test, data.y_test) >= 0.95


# --------------------------------------------------------------------------- learning rate
def test_learning_rate_warmup_endpoints_scaling_and_decay():
    lr = lambda s, **kw: learning_rate(s, base_lr=0.1, workers=8, **kw)  # noqa: E731
    assert lr(1, warmup_steps=10) == pytest.approx(0.1)                  # warm-up starts at base
    assert lr(6, warmup_steps=10) == pytest.approx(0.1 + 0.7 * 5 / 10)   # linear in between
    assert lr(11, warmup_steps=10) == pytest.approx(0.8)                 # peak = K * base
    assert lr(500, warmup_steps=10) == pytest.approx(0.8)
    assert lr(1, warmup_steps=0) == pytest.approx(0.8)                   # no warm-up
    assert lr(1, warmup_steps=10, scale_with_workers=False) == pytest.approx(0.1)
    assert lr(99, warmup_steps=10, scale_with_workers=False) == pytest.approx(0.1)
    d = dict(warmup_steps=0, decay_steps=(100, 150))
    assert lr(100, **d) == pytest.approx(0.8)          # 99 steps done: not yet decayed
    assert lr(101, **d) == pytest.approx(0.08)         # first step after 100 done
    assert lr(151, **d) == pytest.approx(0.008)
    assert lr(151, decay_factor=0.5, **d) == pytest.approx(0.2)
    steps = np.arange(1, 200)
    np.testing.assert_allclose(lr(steps, **d), [lr(int(s), **d) for s in steps])
    with pytest.raises(ValueError):
        lr(0, warmup_steps=0)


def test_optimizer_config_converts_epochs_to_steps():
    cfg = OptimizerConfig(lr=0.1, warmup_epochs=2, decay_epochs=(5,))
    assert cfg.learning_rate(1, workers=4, steps_per_epoch=10) == pytest.approx(0.1)
    assert cfg.learning_rate(21, workers=4, steps_per_epoch=10) == pytest.approx(0.4)
    assert cfg.learning_rate(51, workers=4, steps_per_epoch=10) == pytest.approx(0.04)


# --------------------------------------------------------------------------- config
def test_optimizer_config_from_dict_defaults_and_values():
    assert optimizer_config_from_dict({}) == OptimizerConfig()
    cfg = optimizer_config_from_dict({"lr": 1, "decay_epochs": [45, 30], "nesterov": False})
    assert cfg.lr == 1.0 and cfg.decay_epochs == (30.0, 45.0) and cfg.nesterov is False


@pytest.mark.parametrize("d,field,text", [
    ({"momentun": 0.9}, "optimizer.momentun", "did you mean 'momentum'?"),
    ({"lr": 0}, "optimizer.lr", "must be positive"),
    ({"lr": -0.1}, "optimizer.lr", "must be positive"),
    ({"lr": True}, "optimizer.lr", "must be a number"),
    ({"lr": "0.1"}, "optimizer.lr", "must be a number"),
    ({"momentum": 1.0}, "optimizer.momentum", "in [0, 1)"),
    ({"momentum": -0.1}, "optimizer.momentum", "in [0, 1)"),
    ({"momentum": 0}, "optimizer.nesterov", "Nesterov momentum needs momentum > 0"),
    ({"weight_decay": -1}, "optimizer.weight_decay", "non-negative"),
    ({"decay_epochs": "30,40"}, "optimizer.decay_epochs", "a list of epochs"),
    ({"decay_factor": 0}, "optimizer.decay_factor", "in (0, 1]"),
    ({"nesterov": "yes"}, "optimizer.nesterov", "true or false"),
])
def test_optimizer_config_from_dict_rejects_with_location(d, field, text):
    lines = {("optimizer",): 3, ("optimizer", "momentun"): 4, ("optimizer", "lr"): 5}
    locate = lambda path: lines.get(tuple(path), 3)   # noqa: E731
    with pytest.raises(InputError) as err:
        optimizer_config_from_dict(d, file="s.yaml", locate=locate, path=("optimizer",))
    assert err.value.field == field and err.value.file == "s.yaml"
    assert text in str(err.value)
    assert str(err.value).startswith(f"s.yaml:{lines.get(('optimizer',) + tuple(d)[:1], 3)}: ")


def test_optimizer_config_rejects_non_mapping():
    with pytest.raises(InputError, match="must be a mapping"):
        optimizer_config_from_dict([0.1])
