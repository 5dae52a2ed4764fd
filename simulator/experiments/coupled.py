"""The coupled pass of a schedule that decides as it goes: engine and replay advance together.

A loss-driven schedule (AdaComm, :class:`simulator.learning.adaptive.AdaComm`) cannot be
written down before training: whether step ``t`` averages depends on the losses so far and,
with a wall-clock interval, on when the last average ended. :func:`decide_steps` runs the
engine (:func:`simulator.engine.timeline.simulate_timeline`) with a *step source*: when the
first GPU has computed step ``t``, the engine asks for its :class:`Step`; the source asks the
schedule, trains step ``t`` at once on the :class:`~simulator.learning.training.Learner` (so
its loss is known), and hands the step to the engine; when the last GPU leaves a step, the
engine tells the schedule the time. The learning never waits for the clock and the clock
never runs ahead of a decision: a global average releases every GPU at once, and each GPU
computes its next step (with DDP overlap, its next forward pass) before it asks.

The pass returns the decided steps. The run then replays them like any fixed schedule
(:func:`simulator.experiments.runner.run_variant`): the same learning, bit for bit, and the
same timeline (tested), with the evaluations and the results contract of every other run.
"""

import numpy as np

from ..engine.timeline import simulate_timeline
from ..learning.schedules import as_step
from ..learning.training import Learner

__all__ = ["decide_steps"]


class _Source:
    """The engine's step source: a schedule's decisions, each step trained when decided."""

    def __init__(self, schedule, learner, total):
        self.schedule, self.learner, self.total = schedule, learner, total
        self.groupings = schedule.groupings
        self.steps = []
        self.diverged = False

    def __len__(self):
        return self.total

    def __getitem__(self, index):
        t = index + 1
        step = as_step(self.schedule.action(t))
        if not self.diverged:
            loss = self.learner.step(t, step)
            if loss is None:
                self.diverged = True                     # the replay stops here too
            else:
                self.schedule.observe(t, float(loss.mean()))
        self.steps.append(step)
        return step

    def ended(self, t, time_s):
        self.schedule.ended(t, time_s)


def decide_steps(schedule, *, model, data, stream, groupings, optimizer, graph, gpus,
                 compute_s, message_bytes, collective, global_sync_delay_s, overlap=None):
    """Run `schedule`'s decisions with the engine and the replay advancing together.

    Parameters
    ----------
    schedule : simulator.learning.adaptive.AdaComm
        Fresh (no step asked yet).
    model, data, stream, optimizer
        As for :func:`simulator.learning.training.train`; `stream` is consumed.
    groupings : dict
        The cluster's groupings (:func:`simulator.engine.timeline.cluster_groupings`).
    graph, gpus, compute_s, message_bytes, collective, global_sync_delay_s, overlap
        As for :func:`simulator.engine.timeline.simulate_timeline`; ``compute_s`` (K, T)
        covers the planned steps.

    Returns
    -------
    tuple
        ``(steps, timeline)``: the :class:`Step` of every planned step, and the coupled
        pass's :class:`~simulator.engine.timeline.Timeline`.
    """
    total = compute_s.shape[1]
    learner = Learner(model, data, stream, groupings, optimizer, total)
    source = _Source(schedule, learner, total)
    with np.errstate(over="ignore", invalid="ignore"):   # divergence is detected, not warned
        timeline = simulate_timeline(graph, gpus, groupings, source, compute_s,
                                     message_bytes=message_bytes, collective=collective,
                                     global_sync_delay_s=global_sync_delay_s,
                                     overlap=overlap)
    return source.steps, timeline
