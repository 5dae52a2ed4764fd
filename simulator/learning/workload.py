"""The learning side: numpy models, SGD with Nesterov momentum and the learning-rate rules.

Everything here is pure numpy, computed for K model replicas ("workers") at once along a
leading axis, so that one call does the work of every GPU in the simulated cluster:

* :class:`MLP` (``make_model("mlp")``, ReLU hidden layers) and softmax regression
  (``make_model("softmax")``, an MLP without hidden layers), with a mean cross-entropy loss.
  The parameters of K replicas are ONE array ``params`` of shape (K, P): averaging over all
  workers is ``params.mean(0)``, a message is ``P * itemsize`` bytes (``model.param_bytes``),
  and each layer's weights are views into it (:meth:`MLP.unflatten`).
* :func:`sgd_step`: torch.optim.SGD semantics (Nesterov momentum, weight decay) applied in
  place to every replica, each with its own momentum buffer (never averaged).
* :func:`adam_step`: torch.optim.Adam and torch.optim.AdamW semantics (bias-corrected
  moments, L2 or decoupled weight decay, AMSGrad), every replica with its own moments.
* :func:`learning_rate`: the rules of Lin et al. (2020) "Don't use large mini-batches, use
  local SGD" (code: github.com/epfml/LocalSGD-Code, ``pcode/create_scheduler.py``): linear
  scaling with the number of workers, gradual warm-up (Goyal et al. 2017), step decay.
* :class:`OptimizerConfig`: the optimizer's settings as a user writes them, validated.

See docs/workload.md for the formulas and a worked example.
"""

from dataclasses import dataclass, fields

import numpy as np

from ..utils import jit
from . import fused
from ..utils.errors import InputError
from ..utils.jit import kernel
from ..utils.yamlfile import did_you_mean, format_field

__all__ = [
    "Dense", "MLP", "MODELS", "make_model",
    "sgd_step", "adam_step", "AdamState", "learning_rate", "OptimizerConfig",
    "optimizer_config_from_dict", "OPTIMIZERS",
]

DTYPES = (np.float64, np.float32)


# --------------------------------------------------------------------------- models
@dataclass(frozen=True)
class Dense:
    """Where one fully connected layer ``z = h @ W + b`` lives in the flat parameter vector.

    ``W`` (fan_in, fan_out) is stored row-major at ``[offset, offset + fan_in*fan_out)``,
    followed by ``b`` (fan_out,).
    """

    fan_in: int
    fan_out: int
    offset: int

    @property
    def weight_slice(self):
        return slice(self.offset, self.offset + self.fan_in * self.fan_out)

    @property
    def bias_slice(self):
        start = self.offset + self.fan_in * self.fan_out
        return slice(start, start + self.fan_out)

    @property
    def size(self):
        return (self.fan_in + 1) * self.fan_out


class MLP:
    """A multi-layer perceptron with ReLU hidden layers and a softmax output, K replicas at once.

    ``hidden=()`` is softmax (multinomial logistic) regression. The loss is the cross-entropy
    averaged over the batch; weight decay belongs to the optimizer (:func:`sgd_step`), as in
    PyTorch.

    Shapes: K workers, B samples per worker, d = input_dim, C = num_classes, P = num_params.

    Parameters
    ----------
    input_dim, num_classes : int
        Features per sample and number of classes (C >= 2).
    hidden : tuple of int
        Widths of the hidden layers, e.g. ``(64,)``; ``()`` for softmax regression.
    seed : int
        Seed of the initialisation (He normal for layers followed by a ReLU, Glorot uniform
        for the output layer, zero biases).
    dtype : numpy float dtype
        ``np.float64`` (default) or ``np.float32``: of the parameters and of the arithmetic.
    name : str
        ``"mlp"`` or ``"softmax"``, for reports.
    """

    def __init__(self, input_dim, num_classes, hidden=(64,), *, seed=0, dtype=np.float64,
                 name="mlp"):
        self.name = name
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.hidden = tuple(int(h) for h in hidden)
        self.seed = seed
        self.dtype = np.dtype(dtype)
        widths = (self.input_dim, *self.hidden, self.num_classes)
        layers, offset = [], 0
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers.append(Dense(fan_in, fan_out, offset))
            offset += layers[-1].size
        self.layers = tuple(layers)
        self.num_params = offset                                   # P
        self.param_bytes = self.num_params * self.dtype.itemsize   # one replica, one message
        # Training compute per sample, forward + backward, for dense layers: the forward pass
        # costs 2 FLOPs (one multiply-add) per weight, the backward pass twice that (gradients
        # with respect to the inputs and to the weights), so C = 6 * N_weights per sample --
        # the "C ~ 6N per token" rule of Kaplan et al. (2020) "Scaling Laws for Neural Language
        # Models", Sec. 2.1. Biases, ReLU and softmax are lower order and not counted (nor is
        # the first layer's unneeded input gradient, as in the rule).
        self.flops_per_sample = 6 * sum(l.fan_in * l.fan_out for l in self.layers)

    def __repr__(self):
        return (f"MLP(name={self.name!r}, input_dim={self.input_dim}, "
                f"num_classes={self.num_classes}, hidden={self.hidden}, "
                f"dtype={self.dtype.name}, num_params={self.num_params})")

    # ---------------------------------------------------------------- parameters
    def init_params(self, workers=1):
        """Return seeded initial parameters, identical for every worker: shape (workers, P)."""
        rng = np.random.default_rng(self.seed)
        flat = np.zeros(self.num_params)                           # (P,) biases stay 0
        for i, layer in enumerate(self.layers):
            if i < len(self.layers) - 1:    # He et al. 2015 (ReLU follows): N(0, 2/fan_in)
                w = rng.normal(0.0, np.sqrt(2.0 / layer.fan_in), layer.fan_in * layer.fan_out)
            else:                           # Glorot & Bengio 2010: U(-a, a), a = sqrt(6/(in+out))
                a = np.sqrt(6.0 / (layer.fan_in + layer.fan_out))
                w = rng.uniform(-a, a, layer.fan_in * layer.fan_out)
            flat[layer.weight_slice] = w
        return np.tile(flat.astype(self.dtype), (int(workers), 1))  # (K, P)

    def unflatten(self, params):
        """Views ``[(W, b), ...]`` into `params` (..., P): W (..., fan_in, fan_out), b (..., fan_out).

        Writing into a view writes into `params`.
        """
        lead = params.shape[:-1]
        return [(params[..., l.weight_slice].reshape(*lead, l.fan_in, l.fan_out),
                 params[..., l.bias_slice]) for l in self.layers]

    # ---------------------------------------------------------------- forward / backward
    def _forward(self, params, x, work=None):
        """Logits (K, B, C) and the input of every layer [(K, B, d), (K, B, h1), ...].

        With `work` (:meth:`_workspace`) the layers' outputs go into its buffers."""
        inputs, h = [], x
        last = len(self.layers) - 1
        for i, (W, b) in enumerate(self.unflatten(params)):
            inputs.append(h)
            z = np.matmul(h, W, out=None if work is None else work["z"][i])   # (K, B, fan_out)
            z += b[..., None, :]
            h = np.maximum(z, 0.0, out=z) if i < last else z       # ReLU on hidden layers
        return h, inputs

    def _workspace(self, K, B):
        """Buffers of a (K, B) chunk of a training step, kept for the next one.

        Allocated afresh, a step's temporaries (tens of MB on a big cluster) fault their
        pages in at every step, which cost about as much as the arithmetic (measured at
        K = 1,024). Only the last shape's buffers are kept."""
        work = self.__dict__.get("_work")
        if work is None or work["shape"] != (K, B):
            work = self._work = {
                "shape": (K, B),
                "x": None,                                                   # batch (gathered)
                "z": [np.empty((K, B, l.fan_out), self.dtype) for l in self.layers],
                "mask": [np.empty((K, B, l.fan_out), bool) for l in self.layers[:-1]],
            }
        return work

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_work", None)              # buffers, not part of the model
        return state

    def loss_and_grad(self, params, x, y, *, out=None):
        """Mean cross-entropy of each replica on its own batch, and its gradient.

        Parameters
        ----------
        params : ndarray (K, P)
        x : ndarray (K, B, d)
            Worker k's batch is ``x[k]``; cast to the model's dtype (pass it in that dtype to
            avoid a copy).
        y : ndarray of int (K, B)
        out : ndarray (K, P), optional
            Where to write the gradient (a caller's buffer, reused from step to step);
            by default a new array. The numbers are the same either way.

        Returns
        -------
        loss : ndarray (K,)
        grad : ndarray (K, P)
            d loss[k] / d params[k] (`out` if given).
        """
        x, y = np.asarray(x, dtype=self.dtype), np.asarray(y)
        K, B, d = x.shape
        if params.shape != (K, self.num_params) or d != self.input_dim or y.shape != (K, B):
            raise ValueError(f"shapes params {params.shape}, x {x.shape}, y {y.shape} do not "
                             f"match (K, {self.num_params}), (K, B, {self.input_dim}), (K, B)")
        grad = np.empty_like(params) if out is None else out       # (K, P)
        return self._loss_and_grad(params, x, y, grad, self._workspace(K, B)), grad

    def batch_loss_and_grad(self, params, x_all, y_all, idx, *, out=None):
        """``loss_and_grad(params, x_all[idx], y_all[idx], out=out)``, the same bits, taken
        :data:`CHUNK_WORKERS` workers at a time.

        Every worker's numbers are its own (per-worker matmuls, reductions along its own
        rows), so chunks change nothing but the memory: a chunk's activations stay in the
        processor's cache from one operation to the next, instead of streaming through
        memory at each, and the whole batch (K, B, d) is never gathered at once.

        Parameters
        ----------
        params : ndarray (K, P)
        x_all : ndarray (N, d)
        y_all : ndarray of int (N,)
        idx : ndarray of int (K, B)
            Worker k's samples, indices into `x_all` and `y_all` (in range).
        out : ndarray (K, P), optional

        Returns
        -------
        loss : ndarray (K,)
        grad : ndarray (K, P)
        """
        K, B = idx.shape
        if params.shape != (K, self.num_params) or x_all.shape[1:] != (self.input_dim,):
            raise ValueError(f"shapes params {params.shape}, x_all {x_all.shape}, idx "
                             f"{idx.shape} do not match (K, {self.num_params}), "
                             f"(N, {self.input_dim}), (K, B)")
        grad = np.empty_like(params) if out is None else out       # (K, P)
        rows = min(K, CHUNK_WORKERS)
        work = self._workspace(rows, B)
        if work["x"] is None or work["x"].dtype != x_all.dtype:
            work["x"] = np.empty((rows, B, self.input_dim), x_all.dtype)
        compiled = fused.fused_step_applies(self, K) and x_all.dtype == self.dtype
        if compiled:                     # the elementwise passes in kernels: the same bits
            jit.compile_kernels()
        loss = np.empty(K, self.dtype)
        for k0 in range(0, K, rows):
            k1 = min(K, k0 + rows)
            chunk = idx[k0:k1]
            if compiled:
                x = work["x"][:k1 - k0]
                fused.gather_rows(x_all, chunk, x)
                loss[k0:k1] = self._fused_loss_and_grad(params[k0:k1], x, y_all[chunk],
                                                        grad[k0:k1], work)
                continue
            x = np.take(x_all, chunk, axis=0, out=work["x"][:k1 - k0], mode="clip")
            loss[k0:k1] = self._loss_and_grad(params[k0:k1], np.asarray(x, dtype=self.dtype),
                                              y_all[chunk], grad[k0:k1], work)
        return loss, grad

    def _fused_loss_and_grad(self, params, x, y, grad, work):
        """:meth:`_loss_and_grad` with its elementwise passes in the kernels of
        :mod:`simulator.learning.fused`: the same matmuls on the same operands, the same
        ``np.exp`` and ``np.log``, the same bits (float64)."""
        K, B, _ = x.shape
        z, masks = [a[:K] for a in work["z"]], [m[:K] for m in work["mask"]]
        if "exp" not in work:
            rows, C = work["shape"][0], self.num_classes
            # Biases and their gradients pass through contiguous rows (exact copies): the
            # kernels' inner loops then run over unit strides, a third faster (measured).
            work.update(exp=np.empty((rows, B, C)), sum_exp=np.empty((rows, B)),
                        logit_y=np.empty((rows, B)),
                        bias=[np.empty((rows, l.fan_out)) for l in self.layers])
        exp, sum_exp, logit_y = work["exp"][:K], work["sum_exp"][:K], work["logit_y"][:K]
        bias = [b[:K] for b in work["bias"]]
        weights, grads = self.unflatten(params), self.unflatten(grad)
        last = len(self.layers) - 1
        inputs, h = [], x
        for i, (W, b) in enumerate(weights):
            inputs.append(h)
            np.matmul(h, W, out=z[i])                              # (K, B, fan_out)
            np.copyto(bias[i], b)
            if i < last:
                fused.bias_relu(z[i], bias[i], masks[i])           # h = relu(z + b), h > 0
            else:
                fused.shift_logits(z[i], bias[i])                  # z + b - max
            h = z[i]
        np.exp(h, out=exp)                                         # (K, B, C), numpy's exp
        fused.softmax_grad(h, exp, y, sum_exp, logit_y, bias[last])   # exp -> dz; its sum
        grads[last][1][...] = bias[last]
        loss = (np.log(sum_exp) - logit_y).mean(1)                 # (K,)
        dz = exp
        for i in range(last, -1, -1):
            gW, _ = grads[i]
            np.matmul(inputs[i].transpose(0, 2, 1), dz, out=gW)    # (K, fan_in, fan_out)
            if i > 0:
                # inputs[i] (layer i-1's output) is read for the last time: its buffer takes dz
                dz = np.matmul(dz, weights[i][0].transpose(0, 2, 1), out=z[i - 1])
                fused.relu_backward(dz, masks[i - 1], bias[i - 1])  # dz *= mask; its sum
                grads[i - 1][1][...] = bias[i - 1]
        return loss

    def _loss_and_grad(self, params, x, y, grad, work):
        """The loss (K,) of the replicas, their gradient written into `grad` (K, P).

        The same operations as written plainly (``np.matmul(a, b)`` then a copy into the
        gradient's view, ``exp / sum_exp``, ``dz * (h > 0)``), each writing into a buffer of
        `work` (:meth:`_workspace`, of at least K rows) or of `grad`: the same bits."""
        K, B, _ = x.shape
        if work["shape"][0] != K:
            work = {"z": [z[:K] for z in work["z"]], "mask": [m[:K] for m in work["mask"]]}
        logits, inputs = self._forward(params, x, work)            # (K, B, C)
        logits -= logits.max(-1, keepdims=True)                    # stable softmax
        exp = np.exp(logits)                                       # (K, B, C)
        sum_exp = exp.sum(-1)                                      # (K, B)
        logit_y = np.take_along_axis(logits, y[..., None], -1)[..., 0]   # (K, B)
        loss = (np.log(sum_exp) - logit_y).mean(1)                 # (K,)

        dz = np.divide(exp, sum_exp[..., None], out=exp)           # softmax (K, B, C)
        np.put_along_axis(dz, y[..., None], np.take_along_axis(dz, y[..., None], -1) - 1.0, -1)
        dz /= B                                                    # d loss / d logits
        weights = self.unflatten(params)
        for i, (gW, gb) in reversed(list(enumerate(self.unflatten(grad)))):
            h = inputs[i]                                          # (K, B, fan_in)
            np.matmul(h.transpose(0, 2, 1), dz, out=gW)            # (K, fan_in, fan_out)
            gb[...] = dz.sum(1)                                    # (K, fan_out)
            if i > 0:
                mask = np.greater(h, 0, out=work["mask"][i - 1])   # ReLU'(z) = [h > 0]
                # h (layer i-1's output) is read for the last time: its buffer takes dz
                dz = np.matmul(dz, weights[i][0].transpose(0, 2, 1),
                               out=work["z"][i - 1])               # (K, B, fan_in)
                dz *= mask
        return loss

    def predict(self, params, x):
        """Logits: params (P,) with x (N, d) -> (N, C); params (K, P) with x (N, d) or (K, N, d)
        -> (K, N, C)."""
        params = np.asarray(params)
        x = np.asarray(x, dtype=self.dtype)
        single = params.ndim == 1
        p = params[None] if single else params                     # (K, P)
        xs = x[None] if x.ndim == 2 else x                         # (1 or K, N, d)
        logits, _ = self._forward(p, xs)                           # (K, N, C)
        return logits[0] if single else logits

    def loss(self, params, x, y):
        """Mean cross-entropy of params (P,) on (x (N, d), y (N,)); or (K,) for params (K, P)."""
        return self._evaluate(params, x, y)[0]

    def accuracy(self, params, x, y):
        """Fraction of (x (N, d), y (N,)) classified correctly: a float for params (P,),
        an array (K,) for params (K, P)."""
        return self._evaluate(params, x, y)[1]

    def _evaluate(self, params, x, y):
        """(mean loss, accuracy) over N samples, in row chunks to bound memory at large K."""
        params = np.asarray(params)
        K = 1 if params.ndim == 1 else params.shape[0]
        widest = max(self.hidden + (self.num_classes, self.input_dim))
        rows = max(1, (1 << 22) // (K * widest))                  # ~4M numbers in flight
        loss_sum, correct = np.zeros(K), np.zeros(K)
        for start in range(0, len(y), rows):
            logits = self.predict(params, x[start:start + rows])  # ((K,) n, C)
            yy = y[start:start + rows]
            logits = logits.reshape(K, len(yy), self.num_classes)
            shifted = logits - logits.max(-1, keepdims=True)
            log_z = np.log(np.exp(shifted).sum(-1))                # (K, n)
            logit_y = np.take_along_axis(shifted, np.broadcast_to(yy, (K, len(yy)))[..., None],
                                         -1)[..., 0]
            loss_sum += (log_z - logit_y).sum(1)
            correct += (logits.argmax(-1) == yy).sum(1)
        loss, acc = loss_sum / len(y), correct / len(y)
        return (float(loss[0]), float(acc[0])) if params.ndim == 1 else (loss, acc)


MODELS = ("mlp", "softmax")


def make_model(name, input_dim, num_classes, hidden=(64,), seed=0, dtype=np.float64):
    """Build a model by name: ``"mlp"`` (ReLU hidden layers `hidden`) or ``"softmax"``
    (softmax regression; `hidden` is ignored).

    Raises
    ------
    InputError
        Unknown name (with a did-you-mean), non-positive sizes, fewer than 2 classes, or a
        dtype other than float64/float32.

    Examples
    --------
    >>> m = make_model("mlp", 64, 10, hidden=(64,))
    >>> m.num_params, m.param_bytes, m.flops_per_sample
    (4810, 38480, 28416)
    >>> m.init_params(workers=4).shape
    (4, 4810)
    """
    if name not in MODELS:
        hint = did_you_mean(name, MODELS)
        raise InputError(f"unknown model {name!r}", field="model",
                         fix=(hint + " " if hint else "") + "choose from: " + ", ".join(MODELS))
    hidden = () if name == "softmax" else tuple(hidden)
    for what, value in [("input_dim", input_dim), ("num_classes", num_classes)] + \
            [(f"hidden[{i}]", h) for i, h in enumerate(hidden)]:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"must be a positive integer, got {value!r}", field=what)
    if num_classes < 2:
        raise InputError(f"needs at least 2 classes, got {num_classes}", field="num_classes")
    if np.dtype(dtype) not in [np.dtype(t) for t in DTYPES]:
        raise InputError(f"unsupported dtype {np.dtype(dtype).name!r}", field="dtype",
                         fix="use float64 or float32")
    return MLP(input_dim, num_classes, hidden, seed=seed, dtype=dtype, name=name)


# --------------------------------------------------------------------------- optimizer
def sgd_step(params, momentum_buf, grad, lr, *, momentum=0.9, nesterov=True, weight_decay=1e-4):
    """One SGD step for every replica, in place, with torch.optim.SGD semantics (dampening 0).

    For each worker k (rows of the (K, P) arrays)::

        d_p = g + wd * w            # weight decay as an L2 term added to the gradient
        buf = mu * buf + d_p        # momentum buffer (buf starts at 0, so buf_1 = d_p_1)
        d_p = d_p + mu * buf        # Nesterov;  plain momentum: d_p = buf
        w  -= lr * d_p

    Parameters
    ----------
    params, momentum_buf : ndarray (K, P)
        Updated in place. Momentum buffers are per worker and never averaged.
    grad : ndarray (K, P), or (1, P) / (P,) for one gradient shared by every worker
        (mini-batch SGD after the all-reduce).
    lr : float or ndarray (K,)
        Learning rate of this step (see :func:`learning_rate`), or one per worker.

    Notes
    -----
    Big float64 problems (:data:`FUSED_FROM`) run the same arithmetic as one compiled
    pass, :func:`_fused_sgd`: bit for bit the numpy passes' result.
    """
    lr = np.asarray(lr, dtype=params.dtype)
    if params.size >= FUSED_FROM and params.ndim == 2 and params.dtype == np.float64:
        jit.compile_kernels()                          # one pass, the same bits: _fused_sgd
        rows = np.ascontiguousarray(lr.reshape(-1))                 # (1,) or (K,)
        _fused_sgd(params, params if not momentum else momentum_buf,
                   np.reshape(grad, (-1, params.shape[1])), rows, rows * float(momentum),
                   float(weight_decay), float(momentum), bool(momentum), bool(nesterov))
        return
    if lr.ndim == 1:
        lr = lr[:, None]                                           # (K, 1)
    # The same arithmetic written with two temporaries fewer (5x faster at K=256):
    # w -= lr*d_p + lr*mu*buf for Nesterov, w -= lr*buf for plain momentum.
    d_p = np.multiply(params, weight_decay)                        # (K, P)
    d_p += grad
    if momentum:
        momentum_buf *= momentum
        momentum_buf += d_p
        if nesterov:
            d_p *= lr
            params -= d_p
            np.multiply(momentum_buf, lr * momentum, out=d_p)
        else:
            np.multiply(momentum_buf, lr, out=d_p)
    else:
        d_p *= lr
    params -= d_p


CHUNK_WORKERS = 64
"""Workers per chunk of :meth:`MLP.batch_loss_and_grad`: a chunk of the default model's
activations then fits in a core's cache (measured fastest among 16 ... 1,024 at K = 1,024)."""

FUSED_FROM = 1 << 20
"""Parameters (K x P, float64) from which :func:`sgd_step` runs as one compiled pass
(:func:`_fused_sgd`) instead of numpy's seven: at a million the numpy passes take about
10 ms a step, which soon pays for loading numba. float32 keeps the numpy passes (whose
scalars' promotion the kernel does not repeat)."""


@kernel
def _fused_sgd(params, buf, grad, lr, lr_mu, wd, mu, momentum, nesterov):  # pragma: no cover
    """:func:`sgd_step`'s numpy arithmetic, element by element in one pass: the same
    operations in the same order (and no fused multiply-add), so the same bits. `grad` is
    (K, P) or (1, P); `lr` and ``lr_mu = lr * mu`` are (K,) or (1,)."""
    K, P = params.shape
    shared = grad.shape[0] == 1
    per_worker = lr.shape[0] > 1
    for k in range(K):
        g = grad[0] if shared else grad[k]
        a = lr[k] if per_worker else lr[0]
        c = lr_mu[k] if per_worker else lr_mu[0]
        w = params[k]
        b = buf[k]
        for j in range(P):
            d = w[j] * wd + g[j]                      # d_p = g + wd * w
            if momentum:
                m = b[j] * mu + d                     # buf = mu * buf + d_p
                b[j] = m
                if nesterov:
                    w[j] = (w[j] - d * a) - m * c     # w -= lr * d_p; w -= lr * mu * buf
                else:
                    w[j] = w[j] - m * a               # w -= lr * buf
            else:
                w[j] = w[j] - d * a                   # w -= lr * d_p


class AdamState:
    """Adam's per-worker state, as torch keeps it per parameter: ``step`` (steps taken),
    ``exp_avg`` and ``exp_avg_sq`` (K, P), and ``max_exp_avg_sq`` (K, P) with AMSGrad.

    Every worker takes every step, so one step count serves all of them.
    """

    __slots__ = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, *, amsgrad=False):
        self.step = 0
        self.exp_avg = np.zeros_like(params)                       # m, (K, P)
        self.exp_avg_sq = np.zeros_like(params)                    # v, (K, P)
        self.max_exp_avg_sq = np.zeros_like(params) if amsgrad else None


def adam_step(params, state, grad, lr, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              decoupled=False, amsgrad=False):
    """One Adam (or AdamW) step for every replica, in place, with torch.optim semantics.

    For each worker k (rows of the (K, P) arrays), with ``t`` the steps taken so far
    including this one (``torch.optim.Adam``'s ``_single_tensor_adam``; AdamW when
    `decoupled`)::

        w  = w * (1 - lr * wd)        # AdamW: decoupled weight decay, before the moments
        g  = g + wd * w               # Adam: weight decay as an L2 term in the gradient
        m  = b1 * m + (1 - b1) * g
        v  = b2 * v + (1 - b2) * g**2
        vmax = max(vmax, v)           # AMSGrad only; then v below is vmax
        w -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)

    Parameters
    ----------
    params : ndarray (K, P)
        Updated in place.
    state : AdamState
        Updated in place; never averaged between workers.
    grad : ndarray (K, P), or (1, P) / (P,) for one gradient shared by every worker
    lr : float or ndarray (K,)
    betas : (float, float)
        b1, b2 in [0, 1).
    eps : float
        Added to the denominator, after the bias correction (as torch does).
    weight_decay : float
    decoupled : bool
        AdamW (Loshchilov and Hutter 2019): the decay multiplies the weights instead of
        entering the gradient.
    amsgrad : bool
        Normalise by the running maximum of ``v`` (Reddi et al. 2018).

    Examples
    --------
    The first step moves every weight by ``lr`` against the sign of its gradient:

    >>> w = np.array([[1.0, -2.0]]); s = AdamState(w)
    >>> adam_step(w, s, np.array([[0.5, -4.0]]), 0.1)
    >>> np.round(w, 6).tolist(), s.step
    ([[0.9, -1.9]], 1)
    """
    lr = np.asarray(lr, dtype=params.dtype)
    if lr.ndim == 1:
        lr = lr[:, None]                                           # (K, 1)
    beta1, beta2 = betas
    state.step += 1
    if weight_decay:
        if decoupled:
            params *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * params                    # (K, P)
    m, v = state.exp_avg, state.exp_avg_sq
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * (grad * grad)
    if amsgrad:
        np.maximum(state.max_exp_avg_sq, v, out=state.max_exp_avg_sq)
        v = state.max_exp_avg_sq
    bias_correction1 = 1 - beta1 ** state.step
    bias_correction2_sqrt = np.sqrt(1 - beta2 ** state.step)
    denom = np.sqrt(v)                                             # (K, P)
    denom /= bias_correction2_sqrt
    denom += eps
    params -= (lr / bias_correction1) * (m / denom)


def learning_rate(step, *, base_lr, workers, warmup_steps, decay_steps=(), decay_factor=0.1,
                  scale_with_workers=True):
    """The learning rate of step `step` (counted from 1), as in Lin et al. (2020)'s code.

    With ``t = step - 1`` steps completed before this one (the epfml/LocalSGD-Code scheduler
    advances after each optimizer step)::

        peak = base_lr * workers   if scale_with_workers else base_lr    # Goyal et al. 2017
        lr   = base_lr + (peak - base_lr) * min(t / warmup_steps, 1)     # gradual warm-up
        lr  *= decay_factor ** #{d in decay_steps : t >= d}              # step decay

    so step 1 uses `base_lr`, step ``warmup_steps + 1`` is the first at `peak`, and step
    ``d + 1`` is the first after the decay at `d` (torch's MultiStepLR with milestone d).
    Epochs are converted to steps by the caller (``round(epochs * steps_per_epoch)``, see
    :meth:`OptimizerConfig.learning_rate`).

    Parameters
    ----------
    step : int or array of int (>= 1)
    base_lr : float
        The one-worker learning rate.
    workers : int
        K, the number of workers whose gradients make one (effective) batch.
    warmup_steps : int
        Steps of linear warm-up from `base_lr` to the peak; 0 for none.
    decay_steps : sequence of int
    decay_factor : float
    scale_with_workers : bool

    Returns
    -------
    float, or ndarray shaped like `step`.

    Examples
    --------
    >>> [learning_rate(s, base_lr=0.1, workers=4, warmup_steps=2, decay_steps=[4])
    ...  for s in (1, 2, 3, 4, 5)]
    [0.1, 0.25, 0.4, 0.4, 0.04000000000000001]
    """
    done = np.asarray(step, dtype=np.float64) - 1.0                # steps completed
    if np.any(done < 0):
        raise ValueError(f"steps are counted from 1, got {step!r}")
    peak = base_lr * workers if scale_with_workers else base_lr
    ramp = np.clip(done / warmup_steps, 0.0, 1.0) if warmup_steps > 0 else np.ones_like(done)
    lr = base_lr + (peak - base_lr) * ramp
    n_decays = np.searchsorted(np.sort(np.asarray(decay_steps, dtype=np.float64)), done,
                               side="right")                       # #{d <= t}
    lr = lr * decay_factor ** n_decays
    return float(lr) if np.ndim(step) == 0 else lr


OPTIMIZERS = ("sgd", "adam", "adamw")
"""The optimizers a scenario may name: ``torch.optim.SGD``, ``Adam`` and ``AdamW``."""

_DEFAULTS = {  # name -> (lr, weight_decay): Lin et al. 2020's SGD recipe; torch's Adam(W)
    "sgd": (0.1, 1e-4), "adam": (1e-3, 0.0), "adamw": (1e-3, 1e-2)}
_ONLY = {"momentum": ("sgd",), "nesterov": ("sgd",), "betas": ("adam", "adamw"),
         "eps": ("adam", "adamw"), "amsgrad": ("adam", "adamw")}
"""Keys that belong to some optimizers only (an error elsewhere)."""


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer settings as written in a scenario.

    ``name`` picks the update: ``sgd`` (defaults: Lin et al. 2020's CIFAR-10 recipe, lr 0.1,
    Nesterov momentum 0.9, weight decay 1e-4), ``adam`` or ``adamw`` (defaults: torch's, lr
    1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0 for Adam and 1e-2 for AdamW). The
    learning-rate rules (warm-up, decay, linear scaling) apply to every optimizer.
    """

    name: str = "sgd"                   # sgd | adam | adamw
    lr: float = None                    # one-worker learning rate; None: the optimizer's default
    momentum: float = 0.9               # sgd: mu, in [0, 1)
    nesterov: bool = True               # sgd: Nesterov momentum (torch.optim.SGD nesterov=True)
    weight_decay: float = None          # >= 0; None: the optimizer's default (sgd: L2 added
                                        # to the gradient; adamw: decoupled)
    warmup_epochs: float = 5.0          # linear warm-up from lr to K*lr (Goyal et al. 2017); 0: none
    decay_epochs: tuple = ()            # epochs after which lr is multiplied by decay_factor
    decay_factor: float = 0.1           # in (0, 1]
    scale_lr_with_workers: bool = True  # linear scaling rule: peak lr = K * lr
    max_peak_lr: float | None = None    # a peak above this is warned of before a run; None: no bound
    betas: tuple = (0.9, 0.999)         # adam, adamw: b1, b2 in [0, 1)
    eps: float = 1e-8                   # adam, adamw: > 0
    amsgrad: bool = False               # adam, adamw: the AMSGrad variant

    def __post_init__(self):
        name = _check_option("name", self.name)
        object.__setattr__(self, "name", name)
        lr, weight_decay = _DEFAULTS[name]
        if self.lr is None:
            object.__setattr__(self, "lr", lr)
        if self.weight_decay is None:
            object.__setattr__(self, "weight_decay", weight_decay)
        for f in fields(self):
            object.__setattr__(self, f.name, _check_option(f.name, getattr(self, f.name)))
        if name == "sgd" and self.nesterov and self.momentum == 0:
            raise InputError("Nesterov momentum needs momentum > 0", field="nesterov",
                             fix="set nesterov: false, or momentum to e.g. 0.9")

    def learning_rate(self, step, *, workers, steps_per_epoch):
        """:func:`learning_rate` with this config's epochs converted to steps."""
        return learning_rate(
            step, base_lr=self.lr, workers=workers,
            warmup_steps=round(self.warmup_epochs * steps_per_epoch),
            decay_steps=[round(e * steps_per_epoch) for e in self.decay_epochs],
            decay_factor=self.decay_factor, scale_with_workers=self.scale_lr_with_workers)

    def peak_lr(self, workers):
        """The peak learning rate on `workers` GPUs: ``workers * lr`` with linear scaling."""
        return self.lr * workers if self.scale_lr_with_workers else self.lr

    def new_state(self, params):
        """The optimizer state of the replicas `params` (K, P), zero: for SGD the (K, P)
        momentum buffers, for Adam and AdamW an :class:`AdamState`."""
        if self.name == "sgd":
            return np.zeros_like(params)
        return AdamState(params, amsgrad=self.amsgrad)

    def step(self, params, state, grad, lr):
        """One step of this optimizer (:func:`sgd_step` or :func:`adam_step`) in place;
        `state` is from :meth:`new_state` (for SGD, the momentum buffers)."""
        if self.name == "sgd":
            sgd_step(params, state, grad, lr, momentum=self.momentum,
                     nesterov=self.nesterov, weight_decay=self.weight_decay)
        else:
            adam_step(params, state, grad, lr, betas=self.betas, eps=self.eps,
                      weight_decay=self.weight_decay, decoupled=self.name == "adamw",
                      amsgrad=self.amsgrad)


def _number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_option(name, value):
    """Return `value` normalised for field `name` of OptimizerConfig, or raise InputError."""
    def bad(expected, fix=None):
        return InputError(f"must be {expected}, got {value!r}", field=name, fix=fix)
    if name == "max_peak_lr" and value is None:
        return None
    if name == "name":
        if value not in OPTIMIZERS:
            hint = did_you_mean(value, OPTIMIZERS) if isinstance(value, str) else None
            raise InputError(f"unknown optimizer {value!r}", field=name,
                             fix=(hint + " " if hint else "") + "choose from: "
                             + ", ".join(OPTIMIZERS))
        return value
    if name == "betas":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or \
                len(tuple(value)) != 2 or not all(_number(b) and 0 <= b < 1 for b in value):
            raise bad("two numbers in [0, 1)", fix="write e.g. [0.9, 0.999]")
        return tuple(float(b) for b in value)
    if name in ("nesterov", "scale_lr_with_workers", "amsgrad"):
        if not isinstance(value, (bool, np.bool_)):
            raise bad("true or false")
        return bool(value)
    if name == "decay_epochs":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise bad("a list of epochs", fix="write e.g. [150, 225]")
        epochs = tuple(value)
        if not all(_number(e) and e >= 0 for e in epochs):
            raise bad("a list of non-negative epochs", fix="write e.g. [150, 225]")
        return tuple(sorted(float(e) for e in epochs))
    if not _number(value) or not np.isfinite(value):
        raise bad("a number")
    value = float(value)
    if name in ("lr", "max_peak_lr", "eps") and not value > 0:
        raise bad("positive", fix="write e.g. 0.1")
    if name == "momentum" and not 0 <= value < 1:
        raise bad("in [0, 1)", fix="write e.g. 0.9, or 0 for plain SGD")
    if name in ("weight_decay", "warmup_epochs") and value < 0:
        raise bad("non-negative", fix="write 0 to turn it off")
    if name == "decay_factor" and not 0 < value <= 1:
        raise bad("in (0, 1]", fix="write e.g. 0.1 to divide the rate by 10")
    return value


def optimizer_config_from_dict(d, *, file=None, locate=None, path=()):
    """Build an :class:`OptimizerConfig` from a mapping read from a file.

    Parameters
    ----------
    d : mapping
        Keys are OptimizerConfig's fields; missing keys take the defaults.
    file : str, optional
        File named in errors.
    locate : callable, optional
        ``locate(path_tuple) -> line`` as returned by :func:`simulator.utils.yamlfile.load_yaml`.
    path : tuple
        Where `d` sits in the file, e.g. ``("optimizer",)``; prefixes fields in errors.

    Raises
    ------
    InputError
        An unknown key (with a did-you-mean) or a bad value, naming file, line and field.

    Examples
    --------
    >>> optimizer_config_from_dict({"lr": 0.05, "decay_epochs": [30, 45]}).decay_epochs
    (30.0, 45.0)
    >>> try:
    ...     optimizer_config_from_dict({"momentun": 0.9}, file="s.yaml", path=("optimizer",))
    ... except InputError as err:
    ...     print(err)
    s.yaml: optimizer.momentun: unknown key 'momentun' (did you mean 'momentum'?)
    """
    def where(key):
        full = tuple(path) + ((key,) if key is not None else ())
        return dict(file=file, line=locate(full) if locate else None, field=format_field(full))

    if not isinstance(d, dict):
        raise InputError(f"must be a mapping of optimizer settings, got {type(d).__name__}",
                         fix="write e.g. {lr: 0.1, momentum: 0.9}", **where(None))
    names = [f.name for f in fields(OptimizerConfig)]
    for key in d:
        if key not in names:
            hint = did_you_mean(key, names)
            raise InputError(f"unknown key {key!r}", fix=hint or "allowed: " + ", ".join(names),
                             **where(key))
    values = {}
    for key, value in d.items():
        try:
            values[key] = _check_option(key, value)
        except InputError as err:
            raise InputError(err.message, fix=err.fix, **where(key)) from None
    name = values.get("name", "sgd")
    for key in d:
        if key in _ONLY and name not in _ONLY[key]:
            raise InputError(f"{key} is a setting of {' and '.join(_ONLY[key])}, not of {name}",
                             fix=f"remove it, or write name: {_ONLY[key][0]}", **where(key))
    try:
        return OptimizerConfig(**values)
    except InputError as err:
        raise InputError(err.message, fix=err.fix, **where(err.field)) from None
