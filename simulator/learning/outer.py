"""Outer optimizers: DiLoCo and SlowMo, a momentum step on the averaged change every H steps.

Semantics (docs/schedules.md, "DiLoCo" and "SlowMo")
----------------------------------------------------
Both schedules are local SGD on the clock: every worker takes H steps of its own (inner)
optimizer, then the workers all-reduce over all GPUs. What the all-reduce feeds differs:
instead of replacing every model by the average, an *outer optimizer* steps from the
parameters of the last outer step, ``x0`` (the same on every GPU), with the averaged
*pseudo-gradient* ``delta = mean_k (x0 - x_k)`` (global minus the workers' parameters, so
that an outer SGD step of rate 1 lands on the average):

DiLoCo (Douillard et al. 2023, "DiLoCo: Distributed Low-Communication Training of Language
Models", Algorithm 1; paper: inner AdamW, outer SGD with Nesterov momentum, rate 0.7,
momentum 0.9), the outer step of ``torch.optim.SGD(lr, momentum, nesterov=True)``::

    buf = mu * buf + delta;   x0 = x0 - lr * (delta + mu * buf)     # nesterov=False: x0 - lr * buf

SlowMo (Wang et al. 2020, "SlowMo: Improving Communication-Efficient Distributed SGD with
Slow Momentum", Algorithm 1; as ``torchdistx``'s ``SlowMomentumOptimizer`` and fairscale's
``SlowMoDistributedDataParallel`` code it), with ``gamma`` the inner learning rate of the
step that averages, slow learning rate ``alpha`` and slow momentum ``beta``::

    u = beta * u + delta / gamma;   x0 = x0 - alpha * gamma * u

Every worker then continues from ``x0``. The outer state (``x0`` and the buffer) is the same
on every GPU, so it is held once; the inner optimizers' state (momentum buffers, Adam
moments) stays each worker's own and is never averaged. Reductions (tested): DiLoCo with
``outer_lr = 1, outer_momentum = 0`` and SlowMo with ``slow_lr = 1, slow_momentum = 0``
are local SGD with the same H (``x0 - (x0 - mean) = mean``, to rounding).

``replica`` (a level of the topology, e.g. ``block``) makes every group of that level one
DiLoCo or SlowMo worker: its GPUs all-reduce their gradients at every step (data parallel
inside the replica, as DiLoCo's replicas and fairscale's ``nprocs_per_node`` are), and the
outer all-reduce spans every GPU.
"""

from dataclasses import dataclass

import numpy as np

from .steps import GLOBAL, NOTHING as _NOTHING, Step

__all__ = ["OuterOptimizer", "DiLoCoOuter", "SlowMoOuter", "OuterState", "diloco", "slowmo",
           "outer_for", "DILOCO_DEFAULTS", "SLOWMO_DEFAULTS"]

DILOCO_DEFAULTS = {"outer_lr": 0.7, "outer_momentum": 0.9}
"""The DiLoCo paper's outer optimizer: SGD with Nesterov momentum 0.9 at rate 0.7."""
SLOWMO_DEFAULTS = {"slow_lr": 1.0, "slow_momentum": 0.5}
"""torchdistx's and fairscale's defaults (slowmo_lr 1.0, slowmo_factor/momentum 0.5)."""


class OuterState:
    """The outer optimizer's state, the same on every GPU: ``x0`` (P,), the parameters of
    the last outer step, and ``buf`` (P,), its momentum."""

    __slots__ = ("x0", "buf")

    def __init__(self, params):
        self.x0 = np.array(params, copy=True)                          # (P,)
        self.buf = np.zeros_like(self.x0)                              # (P,)


class OuterOptimizer:
    """An outer step from the averaged pseudo-gradient; see the module docstring."""

    def new_state(self, params):
        """The state at the start: ``x0`` the initial model `params` (P,), a zero buffer."""
        return OuterState(params)

    def apply(self, params, state, inner_lr):
        """Replace every row of `params` (K, P) by the outer step's result, in place."""
        delta = (state.x0[None, :] - params).mean(axis=0)              # (P,): the all-reduce
        self._step(state, delta, inner_lr)
        params[:] = state.x0

    def _step(self, state, delta, inner_lr):
        raise NotImplementedError


@dataclass(frozen=True)
class DiLoCoOuter(OuterOptimizer):
    """``torch.optim.SGD(lr, momentum, nesterov)`` on the pseudo-gradient (dampening 0).

    Examples
    --------
    Two workers from x0 = 1 end an inner phase at 0.4 and 0.8: delta = 0.4, and the first
    Nesterov step moves x0 by 0.7 * (0.4 + 0.9 * 0.4):

    >>> outer = DiLoCoOuter(0.7, 0.9)
    >>> params = np.array([[0.4], [0.8]]); state = outer.new_state(np.array([1.0]))
    >>> outer.apply(params, state, inner_lr=0.1)
    >>> np.round(params, 12).tolist()
    [[0.468], [0.468]]
    """

    lr: float = 0.7
    momentum: float = 0.9
    nesterov: bool = True

    def _step(self, state, delta, inner_lr):
        if self.momentum:
            state.buf *= self.momentum
            state.buf += delta
            direction = delta + self.momentum * state.buf if self.nesterov else state.buf
        else:
            direction = delta
        state.x0 -= self.lr * direction


@dataclass(frozen=True)
class SlowMoOuter(OuterOptimizer):
    """SlowMo's slow momentum step, scaled by the inner learning rate ``gamma``.

    Examples
    --------
    Workers from x0 = 1 at 0.4 and 0.8 after steps of rate 0.1: u = 0.4 / 0.1 = 4, and
    x0 = 1 - 1.0 * 0.1 * 4:

    >>> outer = SlowMoOuter(1.0, 0.5)
    >>> params = np.array([[0.4], [0.8]]); state = outer.new_state(np.array([1.0]))
    >>> outer.apply(params, state, inner_lr=0.1)
    >>> np.round(params, 12).tolist(), np.round(state.buf, 12).tolist()
    ([[0.6], [0.6]], [4.0])
    """

    slow_lr: float = 1.0
    slow_momentum: float = 0.5

    def _step(self, state, delta, inner_lr):
        state.buf *= self.slow_momentum
        state.buf += delta / inner_lr
        state.x0 -= (self.slow_lr * inner_lr) * state.buf


def _periodic(H, replica):
    """Parameters over all GPUs when ``t % H == 0``; gradients inside each `replica` group
    at every step when a replica level is given."""
    average = Step(gradient=replica, average=GLOBAL)
    between = Step(gradient=replica) if replica else _NOTHING
    return lambda t: average if t % H == 0 else between


def diloco(H, *, outer_lr=None, outer_momentum=None, replica=None):
    """DiLoCo's schedule: an outer step over all GPUs every `H` steps (paper convention).

    The all-reduce carries the pseudo-gradients, as many bytes as the parameters; the outer
    optimizer that `outer_lr` and `outer_momentum` set is :func:`outer_for`'s (they do not
    change when the GPUs communicate).

    Examples
    --------
    >>> [t for t in range(1, 13) if diloco(4)(t).average]
    [4, 8, 12]
    >>> diloco(4, replica="block")(3)
    Step(gradient='block', average=None)
    """
    return _periodic(H, replica)


def slowmo(H, *, slow_lr=None, slow_momentum=None, replica=None):
    """SlowMo's schedule on local SGD: average and slow momentum every `H` (the paper's tau)
    steps; `slow_lr` and `slow_momentum` are :func:`outer_for`'s.

    Examples
    --------
    >>> [t for t in range(1, 10) if slowmo(3)(t).average]
    [3, 6, 9]
    """
    return _periodic(H, replica)


def outer_for(variant):
    """The outer optimizer of a variant (DiLoCo, SlowMo), or None for every other algorithm.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> outer_for(NS(algorithm="diloco", outer_lr=None, outer_momentum=0.8))
    DiLoCoOuter(lr=0.7, momentum=0.8, nesterov=True)
    >>> outer_for(NS(algorithm="local")) is None
    True
    """
    def given(name, defaults):
        value = getattr(variant, name, None)
        return defaults[name] if value is None else value

    if variant.algorithm == "diloco":
        return DiLoCoOuter(float(given("outer_lr", DILOCO_DEFAULTS)),
                           float(given("outer_momentum", DILOCO_DEFAULTS)))
    if variant.algorithm == "slowmo":
        return SlowMoOuter(float(given("slow_lr", SLOWMO_DEFAULTS)),
                           float(given("slow_momentum", SLOWMO_DEFAULTS)))
    return None
