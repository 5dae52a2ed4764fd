"""Adaptive periods: local SGD whose period changes during training.

Semantics (docs/schedules.md, "QSR" and "AdaComm")
--------------------------------------------------
Both are local SGD: between two averages over all GPUs every worker steps alone; a
*round* is the steps from one average to the next. They differ in what sets a round's
length H.

Quadratic Synchronization Rule, ``qsr`` (Gu et al., ICLR 2024, "A Quadratic Synchronization
Rule for Distributed Deep Learning", Sec. 3; the authors' code, github.com/hmgxr128/QSR,
``LocalOptimizer.adjust_h``): a round that starts at step ``s`` (step 1, then the step after
each average) lasts::

    H_s = min(max(H_base, floor((alpha / lr_s) ** 2)), T - s + 1)

steps, ``lr_s`` the learning rate of step s (the schedule's own: warm-up, decay and linear
scaling included) and T the run's last step: the last round is cut to end at it, so the run
ends with an average. Rounds that start during the learning-rate warm-up (``s - 1 < W``,
W warm-up steps) last ``H_base``, as in the authors' code: the rule is for a decaying rate,
and the small rates of the warm-up would otherwise make the first round the whole run.
The period grows as the learning rate decays. Everything it needs is known before training,
so it is a fixed list of steps like the seed's schedules. With ``alpha <= lr_min *
sqrt(H_base)`` (``lr_min`` the smallest rate after the warm-up) and T a multiple of H_base
every round is ``H_base``: local SGD (tested).

AdaComm, ``adacomm`` (Wang and Joshi, SysML 2019, "Adaptive Communication Strategies to
Achieve the Best Error-Runtime Trade-off in Local-Update SGD", Sec. 4, the rule for a fixed
learning rate): the period starts at ``H_0`` and shrinks as the training loss falls::

    H_l = clamp(ceil(H_0 * sqrt(F_l / F_0)), H_min, H_0)

re-chosen at the end of every global average (as PaddlePaddle's
``AdaptiveLocalSGDOptimizer`` does), or with ``interval_s`` at the first global average that
ends at or after each multiple of ``interval_s`` simulated seconds (the paper's wall-clock
intervals ``T_0``). ``F_0`` is the mean train loss over workers of step 1 and ``F_l`` that
of the step of the average. The decision depends on what is learned and, with
``interval_s``, on when the average ends: the engine and the replay must advance together
(:class:`AdaComm` is driven step by step by :mod:`simulator.experiments.coupled`). With
``H_min = H_0`` it is local SGD (tested).

``replica`` (a level of the topology) all-reduces gradients inside each group of that level
at every step, as for DiLoCo (:mod:`simulator.learning.outer`).
"""

import math

import numpy as np

from ..utils.errors import InputError
from .steps import GLOBAL, NOTHING as _NOTHING, Step

__all__ = ["qsr", "qsr_sync_steps", "AdaComm", "adacomm", "adacomm_period"]


def qsr_sync_steps(H, alpha, learning_rates, warmup_steps=0):
    """Steps (from 1) after which QSR averages, over ``len(learning_rates)`` steps.

    Parameters
    ----------
    H : int
        H_base, the shortest round.
    alpha : float
        The growth coefficient (> 0).
    learning_rates : sequence of float
        The rate of every step, ``learning_rates[t - 1]`` for step t.
    warmup_steps : int
        W: rounds starting at steps ``s <= W`` last H.

    Examples
    --------
    Rate 0.1 for 6 steps, then 0.05: rounds of max(2, floor((0.2 / 0.1)**2)) = 4 steps
    while the rate is 0.1, of floor((0.2 / 0.05)**2) = 16 from a round starting after, the
    last cut to end at step 30:

    >>> qsr_sync_steps(2, 0.2, [0.1] * 6 + [0.05] * 24)
    [4, 8, 24, 30]
    >>> qsr_sync_steps(2, 0.2, [0.1] * 6 + [0.05] * 24, warmup_steps=6)
    [2, 4, 6, 22, 30]
    """
    out, start, total = [], 1, len(learning_rates)
    while start <= total:
        lr = float(learning_rates[start - 1])
        length = int(H)
        if start - 1 >= warmup_steps and lr > 0:
            length = max(length, math.floor((alpha / lr) ** 2))
        end = min(start + length - 1, total)
        out.append(end)
        start = end + 1
    return out


def qsr(H, *, alpha=None, learning_rates=None, lr_warmup_steps=0, replica=None):
    """The Quadratic Synchronization Rule's schedule (see the module docstring).

    `learning_rates` is the rate of every planned step and `lr_warmup_steps` the
    learning-rate warm-up's steps (the runner's).

    Examples
    --------
    >>> act = qsr(2, alpha=0.2, learning_rates=[0.1] * 6 + [0.05] * 24)
    >>> [t for t in range(1, 31) if act(t).average]
    [4, 8, 24, 30]
    """
    if alpha is None or not alpha > 0:
        raise InputError(f"QSR needs a growth coefficient alpha > 0, got {alpha!r}",
                         field="alpha", fix="add e.g. 'alpha: 0.2' to the variant")
    if learning_rates is None:
        raise ValueError("qsr needs the learning rate of every step")
    syncs = set(qsr_sync_steps(H, alpha, learning_rates, lr_warmup_steps))
    average = Step(gradient=replica, average=GLOBAL)
    between = Step(gradient=replica) if replica else _NOTHING
    return lambda t: average if t in syncs else between


def adacomm_period(H, H_min, loss, first_loss):
    """AdaComm's next period: ``clamp(ceil(H * sqrt(loss / first_loss)), H_min, H)``.

    Examples
    --------
    >>> adacomm_period(16, 1, 0.5, 2.0), adacomm_period(16, 1, 2.0, 2.0), adacomm_period(16, 4, 0.01, 2.0)
    (8, 16, 4)
    """
    if not first_loss > 0 or not np.isfinite(loss):
        return int(H)
    ratio = max(loss, 0.0) / first_loss
    return int(min(H, max(H_min, math.ceil(H * math.sqrt(ratio) - 1e-12))))


class AdaComm:
    """AdaComm decided step by step: the engine asks for each step, the replay reports losses.

    Parameters
    ----------
    H : int
        H_0, the first and longest period.
    H_min : int
        The shortest period.
    interval_s : float, optional
        Re-choose the period only at the first average ending at or after each multiple of
        this many simulated seconds; None: after every average.
    replica : str, optional
        A level whose groups all-reduce gradients at every step.

    Notes
    -----
    The protocol (:mod:`simulator.experiments.coupled` follows it): :meth:`action` for steps
    1, 2, ... in order; :meth:`observe` with each step's mean train loss as soon as it is
    trained; :meth:`ended` when every GPU has left a step. A period decided at a global average
    applies from the next step, so :meth:`ended` of an average must come before
    :meth:`action` of the step after it (the engine guarantees it: a global sync releases
    every GPU at once, and each computes before asking).

    Examples
    --------
    >>> a = AdaComm(4, 1)
    >>> for t in range(1, 9):
    ...     step = a.action(t)
    ...     a.observe(t, 2.0 if t == 1 else 0.5)
    ...     a.ended(t, float(t))
    >>> a.sync_steps, a.periods
    ([4, 6, 8], [4, 2, 2, 2])
    """

    def __init__(self, H, H_min=1, *, interval_s=None, replica=None):
        self.H, self.H_min = int(H), int(H_min)
        self.interval_s = interval_s
        self.replica = replica
        self.groupings = (GLOBAL,) + ((replica,) if replica else ())
        self.period = self.H
        self.periods = [self.H]              # the period of each round, as decided
        self.sync_steps = []
        self._last_sync = 0
        self._first_loss = None
        self._losses = {}
        self._next_check_s = interval_s
        self._average = Step(gradient=replica, average=GLOBAL)
        self._between = Step(gradient=replica) if replica else _NOTHING
        self._pending = None                 # a sync step whose end has not been reported

    def action(self, t):
        """The :class:`Step` after step `t`."""
        if self._pending is not None:
            raise RuntimeError(f"AdaComm: step {t} asked before the average of step "
                               f"{self._pending} ended")
        if t - self._last_sync == self.period:
            self._last_sync = t
            self._pending = t
            self.sync_steps.append(t)
            return self._average
        return self._between

    def observe(self, t, mean_loss):
        """Step `t`'s mean train loss over workers (before its update)."""
        if t == 1:
            self._first_loss = mean_loss
        self._losses[t] = mean_loss

    def ended(self, t, time_s):
        """Every GPU has left step `t` at `time_s`: after an average, choose the next period."""
        if self._pending != t:
            return
        self._pending = None
        due = self._next_check_s is None or time_s >= self._next_check_s
        if due:
            self.period = adacomm_period(self.H, self.H_min, self._losses.get(t, np.nan),
                                         self._first_loss or 0.0)
            if self.interval_s:
                self._next_check_s = (math.floor(time_s / self.interval_s) + 1) * self.interval_s
        self.periods.append(self.period)


def adacomm(H, *, H_min=None, interval_s=None, replica=None):
    """An :class:`AdaComm` for a variant; ``H_min`` defaults to 1."""
    H_min = 1 if H_min is None else int(H_min)
    if H_min > H:
        raise InputError(f"H_min ({H_min}) is above H ({H}): AdaComm only shrinks the period",
                         field="H_min", fix=f"give H_min between 1 and {H}")
    if interval_s is not None and not interval_s > 0:
        raise InputError(f"interval_s must be positive, got {interval_s!r}", field="interval_s",
                         fix="give e.g. 'interval_s: 1.0', or leave it out")
    return AdaComm(H, H_min, interval_s=interval_s, replica=replica)
