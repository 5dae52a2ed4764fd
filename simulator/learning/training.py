"""What the cluster learns: the real numpy training a schedule replays, and which models exist.

K workers (one per GPU, in ring order) each take an SGD step on their own batch with
their own momentum buffer; the schedule's :class:`~simulator.learning.schedules.Step` for
that step says what is all-reduced (:mod:`simulator.learning.schedules`):

- ``Step.gradient``: the K gradients are averaged inside each group of that grouping
  before the update (``"global"``: every worker then applies the same gradient);
- ``Step.average``: after the update, parameters are averaged inside each group.

All K replicas are computed together along a leading worker axis. Two more kinds of
average change what the replicas hold (the engine times them like the others):

- an *outer step* (DiLoCo, SlowMo; :mod:`simulator.learning.outer`): a global parameter
  average becomes an outer optimizer's step on the averaged pseudo-gradient, whose state
  is the same on every GPU;
- a *gossip* average (``Step.average == "gossip"``, D-PSGD;
  :mod:`simulator.learning.gossip`): each worker mixes its neighbours' parameters with the
  weights of a doubly stochastic matrix W, ``x_k <- sum_j W_kj x_j - lr d_k``.

:class:`Learner` takes one step at a time (the coupled pass of a loss-driven schedule
drives it step by step); :func:`train` replays a whole schedule with it and evaluates.

Under faults (``participation``, :mod:`simulator.learning.participation`) the replay does what
the engine says happened: a worker that did not complete a step is frozen for it, a sync
averages over the workers of each group that took part, the common model is the one every
live worker holds after a global sync, the virtual average is over the live workers, and a
replacement starts, after the step it joins at, from the state its policy names. Steps that
every worker completed run the same operations as a run without faults, so a run whose
faults change nothing learns exactly the same numbers.

Which models are evaluated (docs/semantics.md, "Accuracy and time-to-accuracy")
-------------------------------------------------------------------------------
A model counts only once some GPU holds it. After a global sync (a gradient all-reduce or a
parameter average over all GPUs; with one GPU, after every step) every GPU holds the same
model, the **common model**; it is
evaluated after the global syncs of steps ``t % eval_every == 0``, after every global
parameter average, and after the last global sync (``TrainingResult.curve``). Between
global syncs no GPU holds the average of the K models; that *virtual average* is still
evaluated every ``eval_every`` steps and after the last step, as a diagnostic only
(``TrainingResult.virtual_curve``; after a global sync it is the common model). With ``evaluate="any_gpu"`` the models the GPUs hold
between global syncs are evaluated too: after every ``eval_every``-th step, after the
common model's steps and after the last step, each distinct model (a block's after a block
average, each worker's own after a local step; equal models are evaluated once) gets its
accuracy, one per worker (``TrainingResult.gpu_accuracy``). Evaluation costs no
simulated time.

A step whose loss is not finite stops the run, which is then reported as diverged.
"""

from dataclasses import dataclass, field

import numpy as np

from .schedules import GLOBAL, GOSSIP, as_step, grouping_members

__all__ = ["TrainingResult", "Learner", "train", "evaluation_steps", "EVALUATE"]

EVALUATE = ("common", "any_gpu")
"""Which models are evaluated: the common model only, or also every model a GPU holds."""


@dataclass
class TrainingResult:
    """The learning of one run, by step."""

    curve: list = field(default_factory=list)   # [step, test_accuracy, train_loss] of the
                                                # common model, after global syncs
    virtual_curve: list = field(default_factory=list)  # the same of the virtual average model
    gpu_accuracy: list = field(default_factory=list)   # any_gpu: [step, (K,) accuracy of the
                                                       # model each worker holds after it]
    losses: np.ndarray = None                   # (steps_done,) mean train loss of each step
    diverged: bool = False
    steps_done: int = 0
    final_params: np.ndarray = None             # (P,) the average model after the last step

    @property
    def final_test_accuracy(self):
        """Accuracy of the last common model, or None (diverged, or no global sync)."""
        return None if self.diverged or not self.curve else self.curve[-1][1]


def _is_global(step):
    return GLOBAL in (step.gradient, step.average)


def evaluation_steps(actions, eval_every, workers=None):
    """Steps (from 1) after which the common model is evaluated.

    Among the steps with a global sync (gradients or parameters over all GPUs; with one
    worker, every step): the first at or after every multiple of `eval_every`, and the last.
    With ``eval_every=1``, every global sync.

    Examples
    --------
    >>> evaluation_steps([None, None, "global", None, None], eval_every=2)
    [3]
    >>> evaluation_steps(["gradient"] * 5, eval_every=2)
    [2, 4, 5]
    >>> evaluation_steps([None, None, "global"] * 4, eval_every=4)   # syncs 3, 6, 9, 12
    [6, 9, 12]
    """
    steps = [as_step(a) for a in actions]
    synced = [t for t, step in enumerate(steps, start=1) if workers == 1 or _is_global(step)]
    out, due = [], eval_every
    for t in synced:
        if t >= due or t == synced[-1]:
            out.append(t)
            due = (t // eval_every + 1) * eval_every
    return out


class Learner:
    """K replicas learning a schedule one step at a time (the core of the numpy replay).

    Parameters
    ----------
    model, data, stream
        As for :func:`train`.
    groupings : dict
        Grouping name -> groups of worker positions, for every grouping the steps will use.
    optimizer : simulator.learning.workload.OptimizerConfig
    total_steps : int
        Planned steps (the learning-rate rules need them for nothing else).
    outer : simulator.learning.outer.OuterOptimizer, optional
        Turns every global parameter average into an outer step (DiLoCo, SlowMo).
    mixing : simulator.learning.gossip.MixingMatrix, optional
        The gossip weights, for steps that average with neighbours.

    Attributes
    ----------
    params : ndarray (K, P)
    state
        The optimizer state of every worker (:meth:`OptimizerConfig.new_state`), never averaged.
    lrs : ndarray (total_steps,)
        The learning rate of each step.
    """

    def __init__(self, model, data, stream, groupings, optimizer, total_steps, *, outer=None,
                 mixing=None):
        self.model, self.data, self.stream = model, data, stream
        self.groupings, self.optimizer = groupings, optimizer
        self.params = model.init_params(stream.workers)                     # (K, P)
        self.state = optimizer.new_state(self.params)                       # (K, P) ..., never averaged
        self.lrs = optimizer.learning_rate(np.arange(1, total_steps + 1), workers=stream.workers,
                                           steps_per_epoch=stream.steps_per_epoch)
        self.outer = outer
        self.outer_state = None if outer is None else outer.new_state(self.params[0])
        self.mixing = mixing
        self._held = None
        # The gradient's buffer, reused at every step: a fresh (K, P) array faults its
        # pages in again each time.
        self._grad = np.empty_like(self.params)                             # (K, P)

    def step(self, t, step, live=None, took=None):
        """Take step `t` (from 1) of the schedule, :class:`Step` `step`, in place.

        With `live` (K,) bool (under faults: the workers that completed step `t`) and `took`
        (K,) bool (those whose gradients its all-reduce averaged), the other workers are
        frozen for the step and every sync averages over those who took part (see the
        module docstring); SGD only, without an outer optimizer or gossip.

        Returns
        -------
        ndarray (K,) or None
            Each worker's loss on its batch, computed before the update; None if a loss (of
            a live worker) is not finite (the update is then not taken).
        """
        params, data = self.params, self.data
        idx = self.stream.next_batch()                                      # (K, B)
        if hasattr(self.model, "batch_loss_and_grad"):   # gathers by chunks, into our buffer
            loss, grad = self.model.batch_loss_and_grad(params, data.x_train, data.y_train, idx,
                                                        out=self._grad)
        else:
            loss, grad = self.model.loss_and_grad(params, data.x_train[idx], data.y_train[idx])
        if live is not None:
            if not np.all(np.isfinite(loss[live])):
                return None
            self._partial_step(step, grad, self.lrs[t - 1], live, took)
            self._held = grad
            return loss
        if not np.all(np.isfinite(loss)):
            return None
        if step.gradient == GLOBAL:
            grad = grad.mean(axis=0, keepdims=True)                         # (1, P): the all-reduce
        elif step.gradient is not None:
            _average_groups(grad, self.groupings[step.gradient])            # (K, P), per group
        lr = self.lrs[t - 1]
        if step.average == GOSSIP:                     # D-PSGD: mix x_t, subtract lr d(x_t)
            before = params.copy()
            self.optimizer.step(params, self.state, grad, lr)
            params += self.mixing.mix(before)
            params -= before
        else:
            self.optimizer.step(params, self.state, grad, lr)
        if step.average == GLOBAL:
            if self.outer is not None:
                self.outer.apply(params, self.outer_state, lr)
            else:
                params[:] = params.mean(axis=0)
        elif step.average is not None and step.average != GOSSIP:
            _average_groups(params, self.groupings[step.average])
        # Hold this step's gradient until the next one exists. Freed here, a (K, P) array
        # of several hundred kB goes back to the system at every step and the next one
        # faults in fresh pages: that made a local SGD step twice as slow (measured).
        self._held = grad
        return loss

    def _partial_step(self, step, grad, lr, live, took):
        """One step that some workers missed: syncs over those who took part; the others
        frozen (parameters and momentum as they were)."""
        params, momentum = self.params, self.state
        if self.outer is not None or step.average == GOSSIP or \
                not isinstance(momentum, np.ndarray):
            raise ValueError("a step some workers missed is replayed for SGD without an outer "
                             "optimizer or gossip only")
        frozen = ~live
        kept = params[frozen].copy(), momentum[frozen].copy()
        if step.gradient == GLOBAL:
            grad = grad[took].mean(axis=0, keepdims=True)                   # (1, P)
        elif step.gradient is not None:
            _average_groups(grad, self.groupings[step.gradient], took)
        self.optimizer.step(params, momentum, grad, lr)
        params[frozen], momentum[frozen] = kept
        if step.average == GLOBAL:
            params[live] = params[live].mean(axis=0)
        elif step.average is not None:
            _average_groups(params, self.groupings[step.average], live)


def train(model, data, stream, *, actions, blocks, optimizer, eval_every, evaluate="common",
          progress=None, outer=None, mixing=None, participation=None):
    """Replay a schedule on real data and return the learning curves.

    Parameters
    ----------
    model : simulator.learning.workload.MLP
    data : simulator.learning.datasets.Dataset
        In the model's dtype.
    stream : simulator.learning.datasets.BatchStream
        One shard per worker; its worker count is K.
    actions : sequence of Step, str or None
        The schedule's step after each step (``actions[t - 1]`` for step t).
    blocks : dict or list of list of int
        The groupings, grouping name -> groups of worker positions
        (:func:`simulator.engine.timeline.cluster_groupings`); or the blocks alone.
    optimizer : simulator.learning.workload.OptimizerConfig
    eval_every : int
        Evaluate every this many steps (and see :func:`evaluation_steps`).
    evaluate : {"common", "any_gpu"}
        Also evaluate the models GPUs hold between global syncs (see the module docstring).
    progress : callable, optional
        Called with no argument after every step.
    outer : simulator.learning.outer.OuterOptimizer, optional
        The outer optimizer of every global parameter average (DiLoCo, SlowMo).
    mixing : simulator.learning.gossip.MixingMatrix, optional
        The gossip weights of ``"gossip"`` averages.
    participation : simulator.learning.participation.Participation, optional
        Who took part in each step of an elastic run under faults (see the module
        docstring); None: every worker in every step.

    Returns
    -------
    TrainingResult
    """
    workers = stream.workers
    steps = [as_step(a) for a in actions]
    groupings = _groupings(blocks, steps, workers)
    learner = Learner(model, data, stream, groupings, optimizer, len(steps), outer=outer,
                      mixing=mixing)
    common = set(evaluation_steps(steps, eval_every, workers))
    virtual = {t for t in range(1, len(steps) + 1) if t % eval_every == 0 or t == len(steps)}
    per_gpu = (virtual | common) if evaluate == "any_gpu" else set()
    result = TrainingResult()
    losses = np.zeros(len(steps))
    with np.errstate(over="ignore", invalid="ignore"):   # divergence is detected, not warned
        _replay(learner, steps, (common, virtual, per_gpu), result, losses, progress,
                participation)
    result.losses = losses[:result.steps_done]
    live = None if participation is None or not result.steps_done else \
        participation.alive[result.steps_done - 1]
    result.final_params = learner.params.mean(axis=0) if live is None or live.all() else \
        learner.params[live].mean(axis=0)
    return result


def _groupings(blocks, steps, workers):
    """Grouping name -> groups, for every grouping the steps use."""
    given = blocks if isinstance(blocks, dict) else {"block": blocks}
    out = {name: [list(g) for g in groups] for name, groups in given.items()}
    for step in steps:
        for name in step:
            if name is not None and name != GOSSIP and name not in out:
                out[name] = grouping_members(name, out, workers)
    return out


def _replay(learner, steps, plan, result, losses, progress, participation=None):
    common, virtual, per_gpu = plan
    model, data, params = learner.model, learner.data, learner.params
    workers = len(params)
    groupings = learner.groupings
    saved = _Checkpoints(params, learner.state, participation,
                         next(iter(groupings.values())) if groupings else None)
    for t, step in enumerate(steps, start=1):
        live = None
        if participation is not None and not participation.everyone(t):
            live = participation.alive[t - 1]                           # (K,) completed step t
            loss = learner.step(t, step, live, participation.gradient_mask(t))
        else:
            loss = learner.step(t, step)
        if loss is None:
            _diverged(result, t)
            return
        result.steps_done = t
        mean_loss = float(loss.mean()) if live is None else float(loss[live].mean())
        losses[t - 1] = mean_loss
        synced = workers == 1 or _is_global(step)
        holder = 0 if live is None else int(np.argmax(live))           # a live worker
        if t in common:                                  # every (live) GPU holds this model
            common_accuracy = float(model.accuracy(params[holder], data.x_test, data.y_test))
            result.curve.append([t, common_accuracy, mean_loss])
        if t in virtual:                                 # after a global sync, the same model
            accuracy = common_accuracy if synced and t in common else float(model.accuracy(
                params[holder] if synced else
                (params.mean(axis=0) if live is None else params[live].mean(axis=0)),
                data.x_test, data.y_test))
            result.virtual_curve.append([t, accuracy, mean_loss])
        if t in per_gpu:
            result.gpu_accuracy.append([t, _accuracy_per_worker(model, params, data, live)])
        if participation is not None:
            saved.after_step(t, step, holder)
        if progress is not None:
            progress()


def _diverged(result, t):
    result.diverged = True
    result.curve.append([t, None, None])
    result.virtual_curve.append([t, None, None])


class _Checkpoints:
    """The rows an elastic run saved to checkpoints, and replacements joining after a step
    (the rules are in :mod:`simulator.learning.participation`)."""

    def __init__(self, params, momentum, participation, blocks=None):
        self.params, self.momentum = params, momentum
        self.joins = {} if participation is None else participation.joins
        self.due = {} if participation is None else dict(participation.checkpoints)
        self.alive = None if participation is None else participation.alive
        self.block_of = {k: members for members in (blocks or []) for k in members}
        wanted = any(source == "checkpoint" for joins in self.joins.values()
                     for _, source in joins)
        # the initial model, zero momentum: what a rank that never saved loads
        self.saved = (params.copy(), momentum.copy()) if wanted else None

    def after_step(self, t, step, holder):
        if self.saved is not None and t in self.due:
            rows = self.due[t]
            self.saved[0][rows], self.saved[1][rows] = self.params[rows], self.momentum[rows]
        for k, source in self.joins.get(t, ()):
            live = self.alive[t - 1]
            mate = next((j for j in self.block_of.get(k, ()) if live[j]), holder)
            if source == "checkpoint" and step.gradient != GLOBAL:
                self.params[k], self.momentum[k] = self.saved[0][k], self.saved[1][k]
            else:                         # the common model, a live block mate's optimizer state
                self.params[k], self.momentum[k] = self.params[holder], self.momentum[mate]


def _accuracy_per_worker(model, params, data, live=None):
    """(K,) test accuracy of the model each worker holds; equal models evaluated once.

    With `live` (K,) bool, only the live workers' models: the others get NaN.
    """
    if live is not None:
        out = np.full(len(params), np.nan)
        out[live] = _accuracy_per_worker(model, params[live], data)
        return out
    rows = np.ascontiguousarray(params)
    view = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(view, return_index=True, return_inverse=True)
    accuracy = np.atleast_1d(model.accuracy(rows[first], data.x_test, data.y_test))
    return accuracy[inverse.ravel()]


def _average_groups(values, groups, mask=None):
    """Replace each group's rows of `values` (K, P) by their mean, in place.

    With `mask` (K,) bool, only the rows of each group that it marks take part: they get
    their mean, the others are left alone (a group with none is left alone).
    """
    if mask is not None:
        for members in groups:
            rows = [k for k in members if mask[k]]
            if rows:
                values[rows] = values[rows].mean(axis=0)
        return
    sizes = {len(g) for g in groups}
    if len(sizes) == 1 and [i for g in groups for i in g] == list(range(len(values))):
        per_group = values.reshape(len(groups), sizes.pop(), -1)       # (groups, g, P): contiguous
        per_group[:] = per_group.mean(axis=1, keepdims=True)
    else:
        for members in groups:
            values[members] = values[members].mean(axis=0)
