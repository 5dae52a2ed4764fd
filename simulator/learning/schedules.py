"""Synchronisation schedules: what the GPUs all-reduce after each step, in two conventions.

Semantics (docs/semantics.md, "Schedules"; steps counted from 1 on every GPU)
-----------------------------------------------------------------------------
A schedule is a function ``action(step) -> Step``. A :class:`Step` names at most two
all-reduces, each over a *grouping* of the GPUs: ``"global"`` (one group of every GPU), a
level of the topology (``"block"``, or ``"node"``, ``"rack"``... of a nested one: one group
per block, rack...), or ``"groups_of_g"`` (consecutive ranks in groups of ``g``, as
``torch.distributed.new_subgroups(g)`` makes them):

``Step.gradient``
    the gradients are averaged inside each group *before* this step's update;
``Step.average``
    the parameters are averaged inside each group *after* this step's update.

The legacy one-word actions are Steps too (:func:`as_step`): ``"gradient"`` is
``Step(gradient="global")``, ``"global"`` is ``Step(average="global")``, a level name ``L``
is ``Step(average=L)``, None is ``Step()``.

The variants, in the ``paper`` convention (the default; the rules the paper states):

- mini-batch SGD: gradients over all GPUs at every step;
- local SGD (H): parameters over all GPUs when ``t % H == 0``;
- post-local SGD (H, S): mini-batch for ``t <= S``, then local SGD with H counted from the
  switch: parameters over all GPUs when ``t > S`` and ``(t - S) % H == 0``, so every local
  period has H steps;
- hierarchical local SGD (periods ``p_L`` per level, the last ``global``; ``H``, ``Hb`` is
  ``{block: H, global: H*Hb}``): at step t the outermost level whose period divides t
  averages (an outer average replaces the inner ones).

In the ``pytorch`` convention the same variants follow ``torch.distributed`` step for step
(``PeriodicModelAverager``, ``HierarchicalModelAverager`` and ``post_localSGD_hook``; its
averagers count ``step`` from 0 and are called after every ``optimizer.step()``):

- local SGD (H, warm-up W): steps ``t <= W`` are mini-batch steps (the post-local hook's
  ``start_localSGD_iter = W``, which PyTorch asks to equal ``warmup_steps``); after them the
  parameters are averaged over all GPUs when ``(t - 1 - W) % H == 0`` (1, 5, 9 for H = 4,
  W = 0; 11, 15, 19 for W = 10);
- post-local SGD (H, S): local SGD with ``W = S``; and after the switch the gradients are
  all-reduced inside each block at every step (``post_local_gradient_allreduce``, true by
  default as in ``PostLocalSGDState``);
- hierarchical (periods, warm-up W): mini-batch for ``t <= W``; then, at every step, the
  group of the largest period ``p`` with ``(t - 1) % p == 0`` averages (counted from the
  first step, not from the end of the warm-up).

``post_local_gradient_allreduce`` may be set for local and hierarchical SGD in the pytorch
convention too (default false there). Momentum buffers and other optimizer state are never
averaged.

The schedules beyond the seed (docs/schedules.md), each in its own module and registered in
:data:`SCHEDULES`: ``diloco`` and ``slowmo`` (:mod:`simulator.learning.outer`: local SGD on
the clock, an outer optimizer step at each average), ``qsr`` and ``adacomm``
(:mod:`simulator.learning.adaptive`: periods that change with the learning rate or the
loss) and ``gossip`` (:mod:`simulator.learning.gossip`: ``Step.average == "gossip"``, an
average with the neighbours of a graph instead of an all-reduce).

Adding a variant
----------------
Write a function that takes the variant's parameters and returns an ``action`` function,
and add it to :data:`SCHEDULES`; :func:`schedule_for` passes it the fields of a
:class:`simulator.experiments.scenario.Variant` that it names.
"""

import inspect

from ..utils.errors import InputError
from .adaptive import adacomm, qsr
from .gossip import gossip
from .outer import DILOCO_DEFAULTS, SLOWMO_DEFAULTS, diloco, slowmo
from .steps import ACTIONS, GLOBAL, GOSSIP, NOTHING, Step, as_step, sync_kind

__all__ = ["ACTIONS", "CONVENTIONS", "GLOBAL", "GOSSIP", "SCHEDULES", "PARAMETER_DEFAULTS",
           "Step", "as_step", "sync_kind",
           "minibatch", "local", "postlocal", "hierarchical", "schedule_for", "count_syncs",
           "resolve_group_sizes", "grouping_members"]

CONVENTIONS = ("paper", "pytorch")
_NOTHING = NOTHING


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}", field="convention",
                         fix="use paper or pytorch")


def minibatch():
    """Mini-batch SGD: average gradients over all GPUs at every step (both conventions).

    Examples
    --------
    >>> minibatch()(1)
    Step(gradient='global', average=None)
    """
    step = Step(gradient=GLOBAL)
    return lambda t: step


def local(H, *, convention="paper", warmup_steps=0, block_gradients=False, block_level="block"):
    """Local SGD: average parameters over all GPUs every `H` steps.

    Parameters
    ----------
    H : int
        Steps per average.
    convention : {"paper", "pytorch"}
        paper: after steps ``t % H == 0``; pytorch: ``PeriodicModelAverager(H, W)``, after
        steps ``t > W`` with ``(t - 1 - W) % H == 0``, mini-batch steps before.
    warmup_steps : int
        W, pytorch convention only.
    block_gradients : bool
        pytorch: after the warm-up, all-reduce gradients inside each block at every step.
    block_level : str
        The grouping of blocks (the topology's innermost level).

    Examples
    --------
    >>> [t for t in range(1, 14) if local(4)(t).average]
    [4, 8, 12]
    >>> [t for t in range(1, 14) if local(4, convention="pytorch")(t).average]
    [1, 5, 9, 13]
    """
    _check_convention(convention)
    if convention == "paper":
        if warmup_steps:
            raise InputError("warmup_steps is a key of the pytorch convention", field="warmup_steps",
                             fix="use algorithm postlocal with switch_step, or convention pytorch")
        if block_gradients:
            raise InputError("post_local_gradient_allreduce is a key of the pytorch convention",
                             field="post_local_gradient_allreduce",
                             fix="remove it, or use convention pytorch")
        average = Step(average=GLOBAL)
        return lambda t: average if t % H == 0 else _NOTHING
    return _pytorch(lambda t: GLOBAL if (t - 1 - warmup_steps) % H == 0 else None,
                    warmup_steps, block_gradients, block_level)


def postlocal(H, switch_step, *, convention="paper", block_gradients=None, block_level="block"):
    """Post-local SGD: mini-batch SGD for steps ``<= switch_step``, then local SGD (`H`).

    paper: H counted from the switch (averages after ``S + H, S + 2H, ...``); pytorch:
    ``post_localSGD_hook`` with ``start_localSGD_iter = S`` and
    ``PeriodicModelAverager(H, warmup_steps=S)`` (averages after ``S + 1, S + 1 + H, ...``),
    with the hook's intra-block gradient all-reduce after the switch unless
    `block_gradients` is False (None: PyTorch's default, True).

    Examples
    --------
    >>> [t for t in range(11, 25) if postlocal(4, 10)(t).average]
    [14, 18, 22]
    >>> [t for t in range(11, 25) if postlocal(4, 10, convention="pytorch")(t).average]
    [11, 15, 19, 23]
    >>> postlocal(4, 10, convention="pytorch")(12)
    Step(gradient='block', average=None)
    """
    _check_convention(convention)
    S = switch_step
    if convention == "paper":
        if block_gradients:
            raise InputError("post_local_gradient_allreduce is a key of the pytorch convention",
                             field="post_local_gradient_allreduce",
                             fix="remove it, or use convention pytorch")
        gradient, average = Step(gradient=GLOBAL), Step(average=GLOBAL)
        return lambda t: gradient if t <= S else (average if (t - S) % H == 0 else _NOTHING)
    return _pytorch(lambda t: GLOBAL if (t - 1 - S) % H == 0 else None, S,
                    True if block_gradients is None else block_gradients, block_level)


def hierarchical(H=None, Hb=None, *, periods=None, convention="paper", warmup_steps=0,
                 block_gradients=False, block_level="block"):
    """Hierarchical local SGD: each level averages with its own period.

    Parameters
    ----------
    H, Hb : int, optional
        The two-level form: ``periods = ((block_level, H), ("global", H * Hb))``.
    periods : sequence of (str, int), optional
        ``(grouping, period)`` innermost first, periods increasing, the last ``"global"``.
    convention : {"paper", "pytorch"}
        paper: at step t the outermost grouping whose period divides t; pytorch
        (``HierarchicalModelAverager(periods, W)``): at steps ``t > W``, the grouping of the
        largest period p with ``(t - 1) % p == 0``, mini-batch steps before.
    warmup_steps : int
        W, pytorch convention only.
    block_gradients : bool
        pytorch: after the warm-up, all-reduce gradients inside each block at every step.
    block_level : str
        The grouping of blocks (the topology's innermost level), for the H, Hb form.

    Examples
    --------
    >>> [hierarchical(1, 2)(t).average for t in (1, 2, 3, 4)]
    ['block', 'global', 'block', 'global']
    >>> act = hierarchical(periods=[("groups_of_2", 2), ("groups_of_4", 4), ("global", 8)],
    ...                    convention="pytorch", warmup_steps=10)
    >>> [(t, act(t).average) for t in range(11, 18) if act(t).average]
    [(11, 'groups_of_2'), (13, 'groups_of_4'), (15, 'groups_of_2'), (17, 'global')]
    """
    _check_convention(convention)
    if periods is None:
        periods = ((block_level, H), (GLOBAL, H * Hb))
    periods = tuple((str(name), int(p)) for name, p in periods)
    if not periods or periods[-1][0] != GLOBAL:
        raise InputError("the outermost level of a hierarchical schedule must be global",
                         field="periods", fix="end the periods with global, e.g. "
                                              "{block: 2, global: 8}")
    outward = tuple(reversed(periods))
    if convention == "paper":
        if warmup_steps or block_gradients:
            key = "warmup_steps" if warmup_steps else "post_local_gradient_allreduce"
            raise InputError(f"{key} is a key of the pytorch convention", field=key,
                             fix="remove it, or use convention pytorch")
        steps = {name: Step(average=name) for name, _ in periods}

        def action(t):
            for name, period in outward:
                if t % period == 0:
                    return steps[name]
            return _NOTHING
        return action

    def group_at(t):
        for name, period in outward:                  # the largest period first
            if (t - 1) % period == 0:
                return name
        return None
    return _pytorch(group_at, warmup_steps, block_gradients, block_level)


def _pytorch(group_at, warmup_steps, block_gradients, block_level):
    """The pytorch convention's action: mini-batch for ``t <= W``, then the averager's
    grouping ``group_at(t)`` (or None), with block gradients if asked."""
    gradient = block_level if block_gradients else None
    cache = {}

    def action(t):
        if t <= warmup_steps:
            return Step(gradient=GLOBAL)
        average = group_at(t)
        step = cache.get(average)
        if step is None:
            step = cache[average] = Step(gradient=gradient, average=average)
        return step
    return action


SCHEDULES = {
    "minibatch": minibatch,
    "local": local,
    "postlocal": postlocal,
    "hierarchical": hierarchical,
    "diloco": diloco,
    "slowmo": slowmo,
    "qsr": qsr,
    "adacomm": adacomm,
    "gossip": gossip,
}
"""Algorithm name -> the function that makes its schedule from the variant's parameters.
Each returns ``action(step) -> Step``, except ``adacomm``, whose decisions depend on the run
(an :class:`~simulator.learning.adaptive.AdaComm`, driven step by step)."""

_VARIANT_FIELDS = ("outer_lr", "outer_momentum", "slow_lr", "slow_momentum", "alpha", "H_min",
                   "interval_s", "replica", "graph")
"""Parameters of the newer schedules, passed by name from the variant."""
PARAMETER_DEFAULTS = {**DILOCO_DEFAULTS, **SLOWMO_DEFAULTS, "H_min": 1, "graph": "ring"}
"""The newer schedules' parameters that have a default (alpha, interval_s and replica have
none), as the schedules use them when a variant leaves them out."""


def schedule_for(variant, *, block_level="block", learning_rates=None, lr_warmup_steps=0):
    """Return the action function of a :class:`simulator.experiments.scenario.Variant`.

    The variant's ``convention`` (default ``"paper"``), ``warmup_steps``, ``periods`` (the
    hierarchical levels as grouping names) and ``post_local_gradient_allreduce`` are
    passed where the variant's algorithm takes them, and so are the newer schedules'
    parameters (``outer_lr``, ``alpha``, ``replica``, ``graph``, ...; None: the schedule's
    default); `block_level` names the topology's innermost level; `learning_rates` (the
    rate of every planned step) and `lr_warmup_steps` are what ``qsr`` reads.

    Raises
    ------
    InputError
        For an algorithm not in :data:`SCHEDULES`.
    """
    make = SCHEDULES.get(variant.algorithm)
    if make is None:
        raise InputError(f"unknown algorithm {variant.algorithm!r}", field="algorithm",
                         fix="use one of " + ", ".join(SCHEDULES))
    values = {"H": variant.H, "Hb": getattr(variant, "Hb", None),
              "switch_step": getattr(variant, "switch_step", None),
              "periods": getattr(variant, "periods", None) or None,
              "convention": getattr(variant, "convention", None) or "paper",
              "warmup_steps": getattr(variant, "warmup_steps", None) or 0,
              "block_gradients": getattr(variant, "post_local_gradient_allreduce", None),
              "block_level": block_level} if variant.algorithm != "minibatch" else {}
    if variant.algorithm != "minibatch":
        values["learning_rates"] = learning_rates
        values["lr_warmup_steps"] = lr_warmup_steps
        for name in _VARIANT_FIELDS:
            value = getattr(variant, name, None)
            if value is not None:
                values[name] = value
    names = inspect.signature(make).parameters
    kwargs = {name: values[name] for name in names if name in values}
    if "block_gradients" in kwargs and kwargs["block_gradients"] is None \
            and variant.algorithm != "postlocal":
        kwargs["block_gradients"] = False
    if variant.algorithm == "hierarchical" and kwargs.get("periods"):
        kwargs.pop("H"), kwargs.pop("Hb")
    return make(**kwargs)


def count_syncs(action, steps):
    """Count the all-reduces of a schedule over steps ``1..steps``, by :func:`sync_kind`.

    Returns
    -------
    dict
        ``{"gradient": n, "global": n, "block": n, ...}``: the three one-level kinds always,
        then any other kind the schedule uses, in order of first use.

    Examples
    --------
    >>> count_syncs(hierarchical(2, 3), 12)
    {'gradient': 0, 'global': 2, 'block': 4}
    """
    counts = dict.fromkeys(ACTIONS, 0)
    for t in range(1, steps + 1):
        step = as_step(action(t))
        if step.gradient is not None:
            kind = sync_kind("gradient", step.gradient)
            counts[kind] = counts.get(kind, 0) + 1
        if step.average is not None:
            counts[step.average] = counts.get(step.average, 0) + 1
    return counts


def resolve_group_sizes(period_group_size, *, level_sizes, workers):
    """PyTorch's ``period_group_size_dict`` as ``(grouping, period)`` pairs.

    Parameters
    ----------
    period_group_size : sequence of (int, int)
        ``(period, group size)`` in increasing order of period, as PyTorch takes them.
    level_sizes : dict
        Level name -> its groups' common size in GPUs (None when they differ), innermost
        first.
    workers : int
        All GPUs; the last group size must be this (PyTorch: the world size).

    Returns
    -------
    tuple of (str, int)
        A group size that is the world is ``"global"``; one that is the size of a level's
        groups is that level (the innermost such); any other divisor ``g`` of the world is
        ``"groups_of_g"``, consecutive ranks.

    Raises
    ------
    InputError
        Periods or group sizes not increasing, a period or size below 1, a last size that
        is not the world, or a size that does not divide it (field ``period_group_size``).

    Examples
    --------
    >>> resolve_group_sizes([(2, 2), (4, 4), (8, 8)], level_sizes={"block": 2}, workers=8)
    (('block', 2), ('groups_of_4', 4), ('global', 8))
    """
    pairs = [(int(p), int(g)) for p, g in period_group_size]

    def bad(message, fix):
        raise InputError(message, field="period_group_size", fix=fix)

    if not pairs:
        bad("no levels", "write e.g. {2: 2, 8: 16}: period -> group size")
    for (p0, g0), (p1, g1) in zip(pairs, pairs[1:]):
        if not p1 > p0:
            bad(f"periods must increase, got {p0} then {p1}", "list the periods in increasing order")
        if not g1 > g0:
            bad(f"group sizes must increase with the period, got {g0} then {g1}",
                "give larger groups longer periods")
    for p, g in pairs:
        if p < 1 or g < 1:
            bad(f"periods and group sizes are at least 1, got {p}: {g}", "write e.g. {2: 2, 8: 16}")
    if pairs[-1][1] != workers:
        bad(f"the last group size must be every GPU ({workers}), got {pairs[-1][1]}",
            f"end with {{{pairs[-1][0]}: {workers}}}, as PyTorch asks of the world size")
    out = []
    for p, g in pairs:
        if g == workers:
            name = GLOBAL
        else:
            name = next((level for level, size in level_sizes.items() if size == g), None)
            if name is None:
                if workers % g:
                    bad(f"a group size must divide the {workers} GPUs, got {g}",
                        "use a divisor of the number of GPUs")
                name = f"groups_of_{g}"
        out.append((name, p))
    return tuple(out)


def grouping_members(name, level_groups, workers):
    """The groups (lists of worker positions) of grouping `name`.

    Examples
    --------
    >>> grouping_members("groups_of_2", {}, 6)
    [[0, 1], [2, 3], [4, 5]]
    >>> grouping_members("global", {}, 3)
    [[0, 1, 2]]
    """
    if name == GLOBAL:
        return [list(range(workers))]
    if name in level_groups:
        return [list(g) for g in level_groups[name]]
    if name.startswith("groups_of_"):
        g = int(name[len("groups_of_"):])
        return [list(range(i, i + g)) for i in range(0, workers, g)]
    raise InputError(f"unknown grouping {name!r}", field="periods",
                     fix="name a level of the topology, or global")
