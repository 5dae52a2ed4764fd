"""What the cluster learns: the real numpy training a schedule replays.

K workers (one per GPU, in ring order) each take an SGD step on their own batch with
their own momentum buffer; then the schedule's action for that step is applied
(:mod:`simulator.learning.schedules`):

- ``"gradient"``: the K gradients are averaged before the update (every worker then
  applies the same gradient);
- ``"global"``: after the update, parameters are averaged over all workers;
- ``"block"``: after the update, parameters are averaged inside each block.

All K replicas are computed together along a leading worker axis. The test accuracy is
that of the *average* model, evaluated every ``eval_every`` steps, after every parameter
average over all workers, and after the last step; evaluation costs no simulated time.
A step whose loss is not finite stops the run, which is then reported as diverged.
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["TrainingResult", "train", "evaluation_steps"]


@dataclass
class TrainingResult:
    """The learning curve of one run, by step."""

    curve: list = field(default_factory=list)   # [step, test_accuracy, train_loss] at evaluations
    diverged: bool = False
    steps_done: int = 0
    final_params: np.ndarray = None             # (P,) the average model after the last step

    @property
    def final_test_accuracy(self):
        """Accuracy at the last evaluation, or None if the run diverged."""
        return None if self.diverged or not self.curve else self.curve[-1][1]


def evaluation_steps(actions, eval_every):
    """Steps (from 1) after which the average model is evaluated.

    Examples
    --------
    >>> evaluation_steps([None, None, "global", None, None], eval_every=2)
    [2, 3, 4, 5]
    """
    steps = len(actions)
    return [t for t in range(1, steps + 1)
            if t % eval_every == 0 or actions[t - 1] == "global" or t == steps]


def train(model, data, stream, *, actions, blocks, optimizer, eval_every, progress=None):
    """Replay a schedule on real data and return the learning curve.

    Parameters
    ----------
    model : simulator.learning.workload.MLP
    data : simulator.learning.datasets.Dataset
        In the model's dtype.
    stream : simulator.learning.datasets.BatchStream
        One shard per worker; its worker count is K.
    actions : sequence of str or None
        The schedule's action after each step (``actions[t - 1]`` for step t).
    blocks : list of list of int
        Worker positions of each block, for ``"block"`` averages.
    optimizer : simulator.learning.workload.OptimizerConfig
    eval_every : int
        Evaluate the average model every this many steps (and see :func:`evaluation_steps`).
    progress : callable, optional
        Called with no argument after every step.

    Returns
    -------
    TrainingResult
    """
    workers = stream.workers
    params = model.init_params(workers)                                 # (K, P)
    momentum = np.zeros_like(params)                                    # (K, P), never averaged
    lrs = optimizer.learning_rate(np.arange(1, len(actions) + 1), workers=workers,
                                  steps_per_epoch=stream.steps_per_epoch)
    evaluate = set(evaluation_steps(actions, eval_every))
    result = TrainingResult()
    with np.errstate(over="ignore", invalid="ignore"):   # divergence is detected, not warned
        _replay(model, data, stream, actions, blocks, optimizer, params, momentum, lrs,
                evaluate, result, progress)
    result.final_params = params.mean(axis=0)
    return result


def _replay(model, data, stream, actions, blocks, optimizer, params, momentum, lrs, evaluate,
            result, progress):
    for t, action in enumerate(actions, start=1):
        idx = stream.next_batch()                                       # (K, B)
        loss, grad = model.loss_and_grad(params, data.x_train[idx], data.y_train[idx])
        if not np.all(np.isfinite(loss)):
            result.diverged = True
            result.curve.append([t, None, None])
            return
        if action == "gradient":
            grad = grad.mean(axis=0, keepdims=True)                     # (1, P): the all-reduce
        optimizer.step(params, momentum, grad, lrs[t - 1])
        if action == "global":
            params[:] = params.mean(axis=0)
        elif action == "block":
            _average_blocks(params, blocks)
        result.steps_done = t
        if t in evaluate:
            accuracy = model.accuracy(params.mean(axis=0), data.x_test, data.y_test)
            result.curve.append([t, float(accuracy), float(loss.mean())])
        if progress is not None:
            progress()


def _average_blocks(params, blocks):
    """Replace each block's rows of `params` (K, P) by their mean, in place."""
    sizes = {len(b) for b in blocks}
    if len(sizes) == 1 and [i for b in blocks for i in b] == list(range(len(params))):
        per_block = params.reshape(len(blocks), sizes.pop(), -1)       # (blocks, g, P): contiguous
        per_block[:] = per_block.mean(axis=1, keepdims=True)
    else:
        for members in blocks:
            params[members] = params[members].mean(axis=0)
