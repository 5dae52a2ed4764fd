"""What a step synchronises: the :class:`Step` every schedule returns, and its grouping names.

A :class:`Step` names at most two all-reduces, each over a *grouping* of the GPUs:
``"global"`` (:data:`GLOBAL`, one group of every GPU), a level of the topology (``"block"``,
``"node"``, ``"rack"``...: one group per block, rack...) or ``"groups_of_g"`` (consecutive
ranks in groups of ``g``). ``Step.gradient`` averages the gradients inside each group before
the step's update, ``Step.average`` the parameters after it. ``Step.average`` may also be
:data:`GOSSIP`: not a grouping, an average of each GPU with its neighbours in a gossip graph
(:mod:`simulator.learning.gossip`). The schedules themselves are in
:mod:`simulator.learning.schedules` and the modules it registers.
"""

from typing import NamedTuple

__all__ = ["ACTIONS", "GLOBAL", "GOSSIP", "Step", "as_step", "sync_kind", "NOTHING"]

ACTIONS = ("gradient", "global", "block")
"""The one-word actions of a topology of one level (see :func:`as_step`)."""
GLOBAL = "global"
"""The grouping of every GPU."""
GOSSIP = "gossip"
"""Not a grouping: ``Step.average == GOSSIP`` averages each GPU with its gossip neighbours."""


class Step(NamedTuple):
    """What one step all-reduces: gradients before the update, parameters after it.

    Each field is None (nothing) or a grouping name (``"global"``, a level, ``groups_of_g``).
    """

    gradient: str | None = None
    average: str | None = None

    def __bool__(self):
        return self.gradient is not None or self.average is not None


NOTHING = Step()
"""The step that synchronises nothing."""


def as_step(action):
    """A :class:`Step` from a Step, None, or a one-word action.

    Examples
    --------
    >>> as_step("gradient"), as_step("block"), as_step(None)
    (Step(gradient='global', average=None), Step(gradient=None, average='block'), Step(gradient=None, average=None))
    """
    if isinstance(action, Step):
        return action
    if action is None:
        return NOTHING
    if action == "gradient":
        return Step(gradient=GLOBAL)
    return Step(average=str(action))


def sync_kind(what, grouping):
    """The name of a sync in logs and traces: ``"gradient"`` (over all GPUs), ``"global"``,
    a level (``"block"``), or ``"block gradient"`` for gradients inside each block.

    Examples
    --------
    >>> sync_kind("gradient", "global"), sync_kind("average", "rack"), sync_kind("gradient", "node")
    ('gradient', 'rack', 'node gradient')
    """
    if what == "gradient":
        return "gradient" if grouping == GLOBAL else f"{grouping} gradient"
    return grouping
