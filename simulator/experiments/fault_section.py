"""A scenario's ``faults`` section: read, checked against the topology, into a FaultPlan.

The JSON Schema (``schemas/scenario.schema.json``, ``$defs/faults``) has already checked
the section's shape, its keys and its enumerations. Here the rest is checked, each problem
one :class:`~simulator.utils.errors.InputError` naming the file, line, field and fix:

- every time is a quantity with a unit (``30 s``, ``2 min``, ``50000 h``), not negative;
  a mean time between failures is positive;
- an event names exactly one of ``gpu``, ``block``, ``link``, ``switch``, known to the
  topology (a did-you-mean for a near miss), and exactly one of ``time``, ``step``;
  ``kind`` belongs to GPUs and blocks, ``down_for`` to links and switches; a step given as
  a share is in (0 %, 100 %];
- the section's semantics are :mod:`simulator.engine.faults`'s (docs/faults.md).
"""

import math

from ..cluster.topology import gpu_blocks, gpu_nodes, natural_key
from ..engine.faults import FaultEvent, FaultPlan, RandomFaults, Stragglers
from ..utils.errors import InputError
from ..utils.units import parse_time
from ..utils.yamlfile import did_you_mean

__all__ = ["fault_plan_from_data", "FAULT_POLICY_KEY"]

FAULT_POLICY_KEY = "fault_policy"
"""The variant key that overrides ``faults.policy`` for one variant."""

_TARGETS = ("gpu", "block", "link", "switch")


def fault_plan_from_data(spec, at, graph):
    """The :class:`~simulator.engine.faults.FaultPlan` of a ``faults`` mapping.

    Parameters
    ----------
    spec : dict or None
        The section as parsed (schema-checked); None: no section.
    at : simulator.utils.yamlfile.Places
        Locates errors in the scenario file (paths start with ``"faults"``).
    graph : networkx.Graph
        The scenario's topology, for the names events give.

    Returns
    -------
    FaultPlan or None

    Raises
    ------
    InputError
        See the module docstring.

    Examples
    --------
    >>> from simulator.cluster.generators import two_tier
    >>> from simulator.utils.yamlfile import Places
    >>> plan = fault_plan_from_data({"policy": "elastic", "rejoin_delay": "2 min",
    ...     "events": [{"block": "block1", "step": "40%", "kind": "preempt"}]},
    ...     Places(None, None), two_tier(2, 2))
    >>> plan.policy, plan.rejoin_delay_s, plan.events[0].fraction
    ('elastic', 120.0, 0.4)
    """
    if spec is None:
        return None
    path = ("faults",)

    def time(key, default=0.0, where=path, positive=False):
        if key not in spec_at(where):
            return default
        value = spec_at(where)[key]
        try:
            seconds = parse_time(value)
        except InputError as err:
            raise InputError(err.message, **at(where + (key,)), fix=err.fix) from None
        if positive and not seconds > 0:
            raise InputError(f"must be positive, got {value!r}", **at(where + (key,)),
                             fix="write e.g. '50000 h': a mean time between failures "
                                 "longer than zero")
        if seconds < 0 or not math.isfinite(seconds):
            raise InputError(f"must not be negative, got {value!r}", **at(where + (key,)),
                             fix="write a time of 0 s or more, e.g. '30 s'")
        return seconds

    def spec_at(where):
        node = spec
        for key in where[1:]:
            node = node[key]
        return node

    checkpoint = spec.get("checkpoint")
    return FaultPlan(
        policy=spec.get("policy", "restart"),
        restart_delay_s=time("restart_delay"),
        checkpoint_every=None if checkpoint is None else int(checkpoint["every"]),
        checkpoint_write_s=0.0 if checkpoint is None else
        time("write_time", where=path + ("checkpoint",)),
        rejoin_delay_s=time("rejoin_delay"),
        rejoin_from=spec.get("rejoin_from", "average"),
        reconfigure_s=time("reconfigure_time"),
        on_partition=spec.get("on_partition", "wait"),
        max_restarts=spec.get("max_restarts", 100),
        events=tuple(_event(e, path + ("events", i), at, graph, time)
                     for i, e in enumerate(spec.get("events", []))),
        random=_random(spec.get("random"), path + ("random",), time),
        stragglers=_stragglers(spec.get("stragglers")),
        seed=spec.get("seed"),
    )


def _event(spec, where, at, graph, time):
    """One event, its target checked against the graph."""
    targets = [key for key in _TARGETS if key in spec]
    if len(targets) != 1:
        raise InputError("names " + (" and ".join(targets) if targets else "nothing"),
                         **at(where + ((targets[1],) if len(targets) > 1 else ())),
                         fix="give exactly one of gpu, block, link or switch")
    target = targets[0]
    whens = [key for key in ("time", "step") if key in spec]
    if len(whens) != 1:
        raise InputError("has both a time and a step" if whens else "has no time or step",
                         **at(where + ((whens[1],) if whens else ())),
                         fix="give one of them: 'time: 12 s' or 'step: 36' (or 'step: 40%')")
    if "kind" in spec and target in ("link", "switch"):
        raise InputError(f"kind applies to a gpu or a block, not a {target}",
                         **at(where + ("kind",)), fix="remove it; a link or switch goes down "
                                                      "(give down_for for how long)")
    if "down_for" in spec and target in ("gpu", "block"):
        raise InputError(f"down_for applies to a link or a switch, not a {target}",
                         **at(where + ("down_for",)),
                         fix="remove it: a failed GPU is replaced by the policy "
                             "(restart_delay, rejoin_delay)")
    name = _target_name(target, spec[target], where + (target,), at, graph)
    step = fraction = time_s = None
    if "time" in spec:
        time_s = time("time", where=where)
    else:
        value = spec["step"]
        if isinstance(value, str):
            share = float(value.strip().rstrip("%")) / 100.0
            if not 0 < share <= 1:
                raise InputError(f"a share of the run's steps must be in (0%, 100%], got "
                                 f"{value!r}", **at(where + ("step",)),
                                 fix="write e.g. '40%', or a step number")
            fraction = share
        else:
            step = int(value)
    down_for = time("down_for", default=None, where=where) if "down_for" in spec else None
    return FaultEvent(target=target, name=name, time_s=time_s, step=step, fraction=fraction,
                      kind=spec.get("kind", "fail"), down_for_s=down_for)


def _target_name(target, value, where, at, graph):
    """The graph's name for what an event targets, or a located error with a hint."""
    if target == "gpu":
        known = gpu_nodes(graph)
        what = "GPU"
    elif target == "block":
        known = list(gpu_blocks(graph))
        what = "block"
    elif target == "switch":
        known = sorted((n for n, d in graph.nodes(data=True) if d.get("kind") == "switch"),
                       key=natural_key)
        what = "switch"
    else:
        u, v = value
        for end in (u, v):
            if end not in graph:
                hint = did_you_mean(end, list(graph))
                raise InputError(f"no node '{end}' in the topology", **at(where),
                                 fix=hint or "name the two ends of one of its links")
        if not graph.has_edge(u, v):
            near = sorted(graph[u], key=natural_key)
            raise InputError(f"no link between '{u}' and '{v}' in the topology", **at(where),
                             fix=f"'{u}' is linked to " + ", ".join(near[:6])
                             + (", ..." if len(near) > 6 else ""))
        return (u, v)
    if value not in known:
        hint = did_you_mean(value, known)
        shown = ", ".join(known[:4]) + (", ..." if len(known) > 4 else "")
        plural = what + ("es" if what == "switch" else "s")
        raise InputError(f"no {what} '{value}' in the topology", **at(where),
                         fix=hint or (f"name one of its {plural}: {shown}" if known else
                                      f"the topology has no {what}"))
    return value


def _random(spec, where, time):
    if spec is None:
        return None
    return RandomFaults(
        gpu_mtbf_s=time("gpu_mtbf", None, where, positive=True),
        block_mtbf_s=time("block_mtbf", None, where, positive=True),
        block_kind=spec.get("block_kind", "fail"),
        link_mtbf_s=time("link_mtbf", None, where, positive=True),
        link_down_for_s=time("link_down_for", 600.0, where),
        distribution=spec.get("distribution", "exponential"),
        weibull_shape=float(spec.get("weibull_shape", 1.0)),
    )


def _stragglers(spec):
    if spec is None:
        return None
    return Stragglers(probability=float(spec["probability"]), slowdown=float(spec["slowdown"]),
                      duration_steps=int(spec.get("duration_steps", 1)))
