"""The elementwise passes of a float64 training step, fused into compiled kernels, bit for bit.

Around the matmuls of :meth:`~simulator.learning.workload.MLP.batch_loss_and_grad`, numpy
walks a chunk's activations once per operation: the bias, the ReLU, its mask, the softmax's
max, sum, division and label correction, each bias gradient's sum. On the small layers of
the default models these passes cost as much as the matmuls. The kernels below do the same
operations, in the same order and on the same operands, in one or two walks:

- :func:`bias_relu`: ``z += b``, ``z = np.maximum(z, 0)`` (a NaN stays itself, -0.0 becomes
  0.0, as numpy's), and the mask ``z > 0`` that the backward pass multiplies by;
- :func:`shift_logits`: ``z += b`` then ``z -= z.max(-1)`` (a row with a NaN becomes NaN);
- ``np.exp`` stays numpy's own call (its SIMD exp is not libm's, nor LLVM's);
- :func:`softmax_grad`: ``sum_exp = exp.sum(-1)`` in numpy's pairwise order
  (:func:`row_sum`), the label's logit, ``dz = exp / sum_exp``, ``dz[y] -= 1``, ``dz /= B``,
  and the bias gradient ``dz.sum(1)`` in numpy's order along a strided axis (from 0.0,
  each row added in turn);
- :func:`relu_backward`: ``dz *= mask`` (a multiply by 1.0 or 0.0, as numpy's by a bool) and
  the bias gradient ``dz.sum(1)``;
- :func:`gather_rows`: ``np.take(x_all, idx, axis=0, mode="clip")``, a copy.

``np.log`` of the loss stays numpy's too. No fused multiply-add, no reassociation (numba
without ``fastmath``), so the bits are numpy's; ``tests/test_workload.py`` compares the
gradients and losses, compiled and as Python, with the plain numpy computation.
The kernels are for float64 only (numba's promotion of float32 scalars is not numpy's);
:data:`FUSED_STEP_FROM` says when a training step uses them.
"""

import numpy as np

from ..utils.jit import kernel

__all__ = ["FUSED_STEP_FROM", "PAIRWISE_MAX", "fused_step_applies", "bias_relu", "shift_logits",
           "softmax_grad", "relu_backward", "gather_rows", "row_sum"]

FUSED_STEP_FROM = 1 << 20
"""Parameters in all (K x P, float64) from which a training step's elementwise passes run
as these kernels (the same size from which the SGD update is compiled, so numba is loaded
for both or for neither)."""

PAIRWISE_MAX = 128
"""Classes up to which :func:`row_sum` follows numpy's pairwise sum (its block of 128
elements); wider softmaxes keep numpy's passes."""


@kernel
def row_sum(a, k, i):  # pragma: no cover
    """``a[k, i, :].sum()`` as numpy sums a contiguous row of at most 128 elements: from its
    identity 0.0, plus the row's pairwise sum (eight running sums, combined as a tree, then
    the rest one by one; fewer than eight, one by one)."""
    n = a.shape[2]
    if n < 8:
        res = 0.0
        for j in range(n):
            res += a[k, i, j]
        return 0.0 + res
    r0, r1, r2, r3 = a[k, i, 0], a[k, i, 1], a[k, i, 2], a[k, i, 3]
    r4, r5, r6, r7 = a[k, i, 4], a[k, i, 5], a[k, i, 6], a[k, i, 7]
    j = 8
    while j < n - n % 8:
        r0 += a[k, i, j]
        r1 += a[k, i, j + 1]
        r2 += a[k, i, j + 2]
        r3 += a[k, i, j + 3]
        r4 += a[k, i, j + 4]
        r5 += a[k, i, j + 5]
        r6 += a[k, i, j + 6]
        r7 += a[k, i, j + 7]
        j += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while j < n:
        res += a[k, i, j]
        j += 1
    return 0.0 + res


@kernel
def bias_relu(z, b, mask):  # pragma: no cover
    """In place: ``z (K, B, F) += b (K, F)``, then ReLU as ``np.maximum(z, 0.0)``; ``mask``
    (K, B, F) bool gets ``z > 0``."""
    K, B, F = z.shape
    for k in range(K):
        for i in range(B):
            for j in range(F):
                v = z[k, i, j] + b[k, j]
                positive = v > 0.0
                mask[k, i, j] = positive
                # np.maximum(v, 0.0): a NaN stays itself, the rest (-0.0 too) gives +0.0.
                # Written as selects, not branches: half the signs are random.
                z[k, i, j] = v if positive or v != v else 0.0


@kernel
def shift_logits(z, b):  # pragma: no cover
    """In place: ``z (K, B, C) += b (K, C)``, then ``z -= z.max(-1, keepdims=True)``."""
    K, B, C = z.shape
    for k in range(K):
        for i in range(B):
            top = z[k, i, 0] + b[k, 0]
            z[k, i, 0] = top
            for j in range(1, C):
                v = z[k, i, j] + b[k, j]
                z[k, i, j] = v
                if not v <= top:               # np.maximum: a NaN wins, then stays
                    if top == top:
                        top = v
            for j in range(C):
                z[k, i, j] = z[k, i, j] - top


@kernel
def softmax_grad(logits, exp, y, sum_exp, logit_y, gb):  # pragma: no cover
    """From the shifted `logits` (K, B, C) and their `exp` (numpy's): fills ``sum_exp`` and
    ``logit_y`` (K, B), turns `exp` into ``d loss / d logits`` (softmax minus the one-hot of
    `y`, over B) and writes its sum over the batch into ``gb`` (K, C)."""
    K, B, C = exp.shape
    for k in range(K):
        for i in range(B):
            s = row_sum(exp, k, i)
            label = y[k, i]
            sum_exp[k, i] = s
            logit_y[k, i] = logits[k, i, label]
            for j in range(C):
                d = exp[k, i, j] / s
                if j == label:
                    d = d - 1.0
                d = d / B
                exp[k, i, j] = d
                if i == 0:
                    gb[k, j] = 0.0 + d         # numpy's sum starts from its identity
                else:
                    gb[k, j] = gb[k, j] + d


@kernel
def relu_backward(dz, mask, gb):  # pragma: no cover
    """In place: ``dz (K, B, F) *= mask``; ``gb (K, F)`` gets ``dz.sum(1)``."""
    K, B, F = dz.shape
    for k in range(K):
        for i in range(B):
            for j in range(F):
                d = dz[k, i, j] * (1.0 if mask[k, i, j] else 0.0)
                dz[k, i, j] = d
                if i == 0:
                    gb[k, j] = 0.0 + d         # numpy's sum starts from its identity
                else:
                    gb[k, j] = gb[k, j] + d


@kernel
def gather_rows(x_all, idx, out):  # pragma: no cover
    """``np.take(x_all (N, d), idx (K, B), axis=0, out=out (K, B, d), mode="clip")``."""
    K, B = idx.shape
    n, d = x_all.shape
    for k in range(K):
        for i in range(B):
            row = min(max(idx[k, i], 0), n - 1)
            for j in range(d):
                out[k, i, j] = x_all[row, j]


def fused_step_applies(model, K):
    """Whether a training step of `K` replicas of `model` runs the kernels.

    They do in float64, from :data:`FUSED_STEP_FROM` parameters in all, with at most
    :data:`PAIRWISE_MAX` classes and no layer one unit wide (numpy then sums its bias
    gradient along a contiguous axis, in another order).

    Parameters
    ----------
    model : simulator.learning.workload.MLP
    K : int
        Replicas (workers) of the step.

    Returns
    -------
    bool

    Examples
    --------
    >>> from simulator.learning.workload import make_model
    >>> model = make_model("mlp", 40, 10, hidden=(64,))          # 3,274 parameters
    >>> fused_step_applies(model, 256), fused_step_applies(model, 1024)
    (False, True)
    """
    widths = (*model.hidden, model.num_classes)
    return (model.dtype == np.float64 and K * model.num_params >= FUSED_STEP_FROM
            and model.num_classes <= PAIRWISE_MAX and min(widths) >= 2)
