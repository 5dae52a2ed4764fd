"""Synchronisation schedules: what the GPUs average after each step.

Semantics (docs/semantics.md, "Schedules"; steps counted from 1 on every GPU)
-----------------------------------------------------------------------------
A schedule is a function ``action(step) -> str or None``:

``"gradient"``
    the gradients are averaged over all GPUs *before* this step's update (an all-reduce
    of the gradient bytes): a mini-batch SGD step.
``"global"``
    after this step's update, the parameters are averaged over all GPUs.
``"block"``
    after this step's update, the parameters are averaged inside each block.
``None``
    a purely local step.

The four variants of the seed:

- mini-batch SGD: ``"gradient"`` at every step (this is H = 1);
- local SGD (H): ``"global"`` when ``step % H == 0``;
- post-local SGD (H, S): ``"gradient"`` for ``step <= S``, then local SGD (H);
- hierarchical local SGD (H, Hb): ``"global"`` when ``step % (H*Hb) == 0``, else
  ``"block"`` when ``step % H == 0`` (a global average replaces the block average).

Momentum buffers and other optimizer state are never averaged.

Adding a variant
----------------
Write a function that takes the variant's parameters and returns an ``action``
function, and add it to :data:`SCHEDULES`; :func:`schedule_for` passes it the fields of
a :class:`simulator.experiments.scenario.Variant` that it names.
"""

import inspect

from ..utils.errors import InputError

__all__ = ["ACTIONS", "SCHEDULES", "minibatch", "local", "postlocal", "hierarchical",
           "schedule_for", "count_syncs"]

ACTIONS = ("gradient", "global", "block")


def minibatch():
    """Mini-batch SGD: average gradients at every step.

    Examples
    --------
    >>> [minibatch()(t) for t in (1, 2)]
    ['gradient', 'gradient']
    """
    return lambda step: "gradient"


def local(H):
    """Local SGD: average parameters over all GPUs after every `H`-th step.

    Examples
    --------
    >>> [local(2)(t) for t in (1, 2, 3, 4)]
    [None, 'global', None, 'global']
    """
    return lambda step: "global" if step % H == 0 else None


def postlocal(H, switch_step):
    """Post-local SGD: mini-batch SGD for steps ``<= switch_step``, then local SGD (`H`).

    Examples
    --------
    >>> [postlocal(2, 2)(t) for t in (1, 2, 3, 4)]
    ['gradient', 'gradient', None, 'global']
    """
    after = local(H)
    return lambda step: "gradient" if step <= switch_step else after(step)


def hierarchical(H, Hb):
    """Hierarchical local SGD: block average every `H` steps, global every ``H*Hb``.

    Examples
    --------
    >>> [hierarchical(1, 2)(t) for t in (1, 2, 3, 4)]
    ['block', 'global', 'block', 'global']
    """
    period = H * Hb
    return lambda step: "global" if step % period == 0 else ("block" if step % H == 0 else None)


SCHEDULES = {
    "minibatch": minibatch,
    "local": local,
    "postlocal": postlocal,
    "hierarchical": hierarchical,
}


def schedule_for(variant):
    """Return the action function of a :class:`simulator.experiments.scenario.Variant`.

    Raises
    ------
    InputError
        For an algorithm not in :data:`SCHEDULES`.
    """
    make = SCHEDULES.get(variant.algorithm)
    if make is None:
        raise InputError(f"unknown algorithm {variant.algorithm!r}", field="algorithm",
                         fix="use one of " + ", ".join(SCHEDULES))
    names = inspect.signature(make).parameters
    return make(**{name: getattr(variant, name) for name in names})


def count_syncs(action, steps):
    """Count the actions of a schedule over steps ``1..steps``.

    Returns
    -------
    dict
        ``{"gradient": n, "global": n, "block": n}``.

    Examples
    --------
    >>> count_syncs(hierarchical(2, 3), 12)
    {'gradient': 0, 'global': 2, 'block': 4}
    """
    counts = dict.fromkeys(ACTIONS, 0)
    for step in range(1, steps + 1):
        kind = action(step)
        if kind is not None:
            counts[kind] += 1
    return counts
