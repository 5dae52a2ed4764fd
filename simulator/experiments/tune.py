"""Tuning a schedule's settings for a cluster: ``sgdsim tune``.

The question a sweep answers for a grid the user writes, :func:`run_tune` answers by search:
which values of a variant's settings (H, Hb, the post-local switch, or any scenario path)
give the best objective on this cluster, under constraints such as "no worse than
mini-batch SGD's final accuracy minus half a point"?

How it searches
---------------
* A *space* is a list of dimensions: ``H=1..64:log`` (integers, log-uniform), ``lr=0.01..0.1``
  (floats), ``collective=ring,hierarchical`` (choices). A bare name is a setting of the tuned
  variant (``variants[i].H``; for the newer schedules also ``outer_lr``, ``outer_momentum``,
  ``slow_lr``, ``slow_momentum``, ``alpha``, ``H_min``, ``interval_s``, ``replica``,
  ``graph``); a dotted path addresses any scenario key as in a sweep (``optimizer.lr``,
  ``topology.inter_block.bandwidth``; ``variants[0]`` is the tuned variant, which the search
  holds alone: ``variants[0].optimizer.lr``).
* Optuna samples the space. A finite space no larger than the budget is enumerated
  exhaustively, each point once and without pruning (the true optimum, no guessing);
  otherwise Optuna's TPE (``TPESampler``, multivariate, constant liar for trials in
  flight) samples it, seeded.
* Each trial is one run of the tuned variant, looked at on the way (``rungs`` > 1): it is
  first run for ``steps / 3**(rungs-1)`` steps, then three times as many, up to the full
  run. A rung is a prefix of the full run (:func:`simulator.experiments.runner.run_variant`'s
  ``stop_after``). For an objective that only grows with the steps (time-to-accuracy,
  simulated time, bytes: :data:`MONOTONE`), a prefix's value is a lower bound of the full
  run's; for time-to-accuracy of a prefix that has not reached the target yet, that bound is
  its simulated time so far. A trial whose bound is already no better than the best feasible
  full run of an earlier batch is pruned: it cannot win, so pruning never loses the
  optimum (rank-based successive halving can, and did on the shipped scenarios: it stops
  the trials that sync often early, which are the accurate ones). Pruned trials are told
  to Optuna as pruned, with the value they were stopped at.
* Constraints (``final_test_accuracy>=BASELINE-0.005``) are checked on full runs; BASELINE
  is the result of another variant of the scenario (default: its mini-batch variant), run
  once as written. A run that does not reach the target, fails, or whose status is not
  ``ok`` (diverged, not learning) is infeasible.
  Optuna's TPE takes the constraints into account (``constraints_func``).

Determinism
-----------
Trials are asked in batches of a fixed size (``batch``, not the job count), the runs of a
batch execute on any executor (local processes, Dask: the sweep's executors), and results are
told back in trial order. The same seed therefore gives the same trials and the same result
with any number of jobs, and ``--resume`` replays the finished trials from ``trials.jsonl``
without running them again, so an interrupted search ends where an uninterrupted one would.

Output directory
----------------
``trials.jsonl``: one line per finished trial (number, values, state, the records of its
rungs), appended and fsync'd as each trial ends; ``tune.json``: the whole search (space,
objective, constraints, baseline, every trial's summary, the best trial and the Pareto front
of time-to-accuracy against final accuracy and inter-block bytes), written when it ends.
"""

import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field

from .. import __version__
from ..utils.errors import InputError
from ..utils.files import (
    append_whole,
    check_output_dir,
    read_input,
    read_text_input,
    write_text_atomic,
)
from ..utils.shipped import resolve
from ..utils.yamlfile import did_you_mean, load_yaml
from .runner import planned_steps
from .scenario import PARAMETER_ALGORITHMS, scenario_from_data
from .sweep import build_point, check_path, short_value
from .sweep_runner import _stop, run_task

__all__ = ["Dimension", "Constraint", "TunePlan", "TuneOutcome", "parse_space",
           "parse_constraint", "load_tune", "run_tune", "pareto_front", "METRICS",
           "format_tune", "read_tune_dir"]

METRICS = ("time_to_accuracy_s", "final_test_accuracy", "simulated_time_s", "comm_time_s",
           "compute_time_s", "wait_time_s", "comm_bytes.inter_block", "comm_bytes.intra_block",
           "syncs.global", "syncs.block", "syncs.gossip")
"""Record fields an objective or a constraint may name."""

MAXIMIZED = ("final_test_accuracy",)

MONOTONE = ("time_to_accuracy_s", "simulated_time_s", "comm_time_s", "compute_time_s",
            "wait_time_s", "comm_bytes.inter_block", "comm_bytes.intra_block", "syncs.global",
            "syncs.block", "syncs.gossip")
"""Metrics that only grow with the steps run: a prefix's value is a lower bound of the full
run's (for time-to-accuracy, the simulated time of a prefix that has not reached the target
yet), so a trial whose prefix is already no better than the best full run cannot win."""
"""Metrics whose default direction is up; every other one is minimised."""

PARETO = (("time_to_accuracy_s", "minimize"), ("final_test_accuracy", "maximize"),
          ("comm_bytes.inter_block", "minimize"))
"""The objectives of the Pareto front tune prints."""

REDUCTION = 3
"""Successive halving: each rung keeps the best third and runs 3x as many steps."""


# --------------------------------------------------------------------------- the space
@dataclass(frozen=True)
class Dimension:
    """One searched setting."""

    name: str                      # as written: "H", "optimizer.lr"
    path: str                      # scenario path: "variants[0].H"
    kind: str                      # "int", "float" or "choice"
    low: float = None
    high: float = None
    log: bool = False
    choices: tuple = ()

    def size(self):
        """Number of values (inf for floats)."""
        if self.kind == "int":
            return int(self.high - self.low + 1)
        return len(self.choices) if self.kind == "choice" else math.inf

    def values(self):
        """Every value, in order (finite dimensions only)."""
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1))
        return list(self.choices)

    def suggest(self, trial):
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def text(self):
        if self.kind == "choice":
            return f"{self.name}={','.join(map(str, self.choices))}"
        low, high = (int(v) if self.kind == "int" else v for v in (self.low, self.high))
        return f"{self.name}={low}..{high}" + (":log" if self.log else "")


_RANGE = re.compile(r"^\s*([^=\s]+)\s*=\s*([^.,\s:][^:,]*?)\s*\.\.\s*([^:,]+?)\s*(?::\s*(log))?\s*$")
_CHOICE = re.compile(r"^\s*([^=\s]+)\s*=\s*(.+,.+)$")
_SPACE_FIX = "write NAME=LOW..HIGH, NAME=LOW..HIGH:log or NAME=a,b,c (e.g. H=1..64:log)"


def _number(text):
    try:
        value = int(text)
    except ValueError:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text) from None
    return value


def parse_space(texts, *, variant_index=0, variant_keys=()):
    """Parse ``--space`` texts into Dimensions.

    Parameters
    ----------
    texts : list of str
    variant_index : int
        The tuned variant's index in the scenario's ``variants``: a bare name ``H`` is
        ``variants[variant_index].H``.
    variant_keys : iterable of str
        Names that are variant settings (bare names must be one of them).

    Raises
    ------
    InputError
        A text that is not a range or a list of choices, an empty or reversed range, a
        log range that reaches 0, a name given twice, an unknown name or path.

    Examples
    --------
    >>> [d.text() for d in parse_space(["H=1..64:log", "Hb=1..16", "seed=0,1"],
    ...                                variant_keys=["H", "Hb"])]
    ['H=1..64:log', 'Hb=1..16', 'seed=0,1']
    """
    if not texts:
        raise InputError("no --space given", field="--space", fix=_SPACE_FIX)
    dims, seen = [], set()
    keys = list(variant_keys)
    for text in texts:
        match, choice = _RANGE.match(text), None
        if match is None:
            choice = _CHOICE.match(text)
        if match is None and choice is None:
            raise InputError(f"cannot read {text!r}", field="--space", fix=_SPACE_FIX)
        name = (match or choice).group(1)
        if name in seen:
            raise InputError(f"{name} is given twice", field="--space",
                             fix="search each setting in one --space")
        seen.add(name)
        if "." in name or "[" in name:
            path = name
            check_path(path, field="--space")
        elif name in keys:
            path = f"variants[{variant_index}].{name}"
        elif name in ("seed", "steps", "epochs", "target_accuracy", "eval_every"):
            path = name
        else:
            hint = did_you_mean(name, keys)
            raise InputError(f"{name!r} is not a setting of the tuned variant", field="--space",
                             fix=(hint + " " if hint else "") + "use one of "
                             + ", ".join(keys) + ", or a scenario path such as optimizer.lr")
        if choice is not None:
            items = [item.strip() for item in choice.group(2).split(",")]
            values = []
            for item in items:
                try:
                    values.append(_number(item))
                except ValueError:
                    values.append(item)
            if len(set(map(str, values))) != len(values) or "" in items:
                raise InputError(f"{text!r} lists a choice twice or an empty one",
                                 field="--space", fix="list each value once: NAME=a,b,c")
            dims.append(Dimension(name, path, "choice", choices=tuple(values)))
            continue
        try:
            low, high = _number(match.group(2)), _number(match.group(3))
        except ValueError:
            raise InputError(f"{text!r}: the bounds must be finite numbers", field="--space",
                             fix=_SPACE_FIX) from None
        log = match.group(4) is not None
        if not low < high:
            raise InputError(f"{text!r}: LOW must be below HIGH", field="--space",
                             fix="e.g. H=1..64")
        if log and low <= 0:
            raise InputError(f"{text!r}: a log range needs LOW > 0", field="--space",
                             fix="start at 1, or drop :log")
        kind = "int" if isinstance(low, int) and isinstance(high, int) else "float"
        dims.append(Dimension(name, path, kind, low=low, high=high, log=log))
    return dims


# --------------------------------------------------------------------------- constraints
@dataclass(frozen=True)
class Constraint:
    """``metric op rhs``, rhs a number or ``BASELINE + offset`` (the baseline's metric)."""

    text: str
    metric: str
    op: str                        # ">=" or "<="
    offset: float                  # the number, or the offset from the baseline
    relative: bool                 # True: rhs is BASELINE + offset

    def bound(self, baseline):
        if not self.relative:
            return self.offset
        value = _metric(baseline, self.metric) if baseline else None
        if value is None:
            raise InputError(f"the baseline has no {self.metric}", field="--constraint",
                             fix="choose a baseline that reaches the target, or a number")
        return value + self.offset

    def violation(self, record, baseline):
        """How far `record` is from satisfying the constraint (<= 0: satisfied)."""
        value = _metric(record, self.metric)
        if value is None:
            return 1.0
        bound = self.bound(baseline)
        return bound - value if self.op == ">=" else value - bound


_CONSTRAINT = re.compile(r"^\s*([\w.]+)\s*(>=|<=)\s*(BASELINE)?\s*([+-]?\s*[\d.eE+-]+)?\s*$")


def parse_constraint(text):
    """Parse ``--constraint`` text.

    Examples
    --------
    >>> c = parse_constraint("final_test_accuracy>=BASELINE-0.005")
    >>> (c.metric, c.op, c.offset, c.relative)
    ('final_test_accuracy', '>=', -0.005, True)
    >>> parse_constraint("comm_bytes.inter_block <= 1e9").offset
    1000000000.0
    """
    match = _CONSTRAINT.match(text)
    fix = "write METRIC>=NUMBER or METRIC>=BASELINE-0.005 (or <=)"
    if match is None or (match.group(3) is None and match.group(4) is None):
        raise InputError(f"cannot read {text!r}", field="--constraint", fix=fix)
    metric = match.group(1)
    if metric not in METRICS:
        hint = did_you_mean(metric, METRICS)
        raise InputError(f"unknown metric {metric!r}", field="--constraint",
                         fix=(hint + " " if hint else "") + "one of " + ", ".join(METRICS))
    try:
        number = float(match.group(4).replace(" ", "")) if match.group(4) else 0.0
    except ValueError:
        raise InputError(f"cannot read the number in {text!r}", field="--constraint",
                         fix=fix) from None
    if not math.isfinite(number):
        raise InputError(f"{text!r}: the number must be finite", field="--constraint", fix=fix)
    return Constraint(text.strip(), metric, match.group(2), number, match.group(3) is not None)


def _metric(record, metric):
    if isinstance(record, dict) and metric in record:     # a summary: dotted keys, flat
        value = record[metric]
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    value = record
    for key in metric.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class TunePlan:
    """A checked search: what ``sgdsim tune`` runs."""

    name: str
    source: str
    base_dir: str
    data: dict                     # the scenario with only the tuned variant
    variant: str                   # the tuned variant's label as written
    algorithm: str                 # its algorithm
    space: tuple                   # of Dimension
    objective: str
    direction: str                 # "minimize" or "maximize"
    constraints: tuple             # of Constraint
    baseline_data: dict = None     # the scenario with only the baseline variant
    baseline: str = None           # its label
    budget: int = 30
    seed: int = 0
    batch: int = 4
    rungs: int = 1                 # 1: no pruning

    def document(self):
        return {"sgdsim": __version__, "scenario": self.name, "source": self.source,
                "variant": self.variant, "space": [d.text() for d in self.space],
                "objective": self.objective, "direction": self.direction,
                "constraints": [c.text for c in self.constraints], "baseline": self.baseline,
                "budget": self.budget, "seed": self.seed, "batch": self.batch,
                "rungs": self.rungs}


def load_tune(path, *, space, objective="time_to_accuracy_s", direction=None,
              constraints=(), variant=None, baseline=None, budget=30, seed=0, batch=4,
              rungs=1):
    """Read a scenario and check a search over it (see :func:`run_tune`).

    Parameters
    ----------
    path : str or os.PathLike
        A scenario file or shipped name.
    space : list of str
        ``--space`` texts (:func:`parse_space`).
    objective : str
        A metric of :data:`METRICS`.
    direction : {"minimize", "maximize"}, optional
        Default: up for accuracy, down for everything else.
    constraints : list of str
        ``--constraint`` texts (:func:`parse_constraint`).
    variant : str, optional
        Label of the variant to tune; default: the one variant that takes every bare name of
        the space.
    baseline : str, optional
        Label or algorithm of the variant that BASELINE names; default: the scenario's
        mini-batch variant.
    budget : int
        Trials.
    seed : int
        Seeds the sampler (the runs keep the scenario's own seed unless ``seed`` is searched).
    batch : int
        Trials asked at once (fixed: it, not the job count, decides the trials).
    rungs : int
        Looks at each trial for pruning (see the module docstring); 1 turns it off.

    Raises
    ------
    InputError
        A bad scenario, space, constraint, objective, variant or baseline.
    """
    file = os.fspath(path)
    real = resolve("scenarios", file, missing_ok=True)
    data, locate = load_yaml(real)
    base_dir = os.path.dirname(os.path.abspath(real))
    scenario = scenario_from_data(data, file=file, locate=locate, base_dir=base_dir)
    if objective not in METRICS:
        hint = did_you_mean(objective, METRICS)
        raise InputError(f"unknown objective {objective!r}", field="--objective",
                         fix=(hint + " " if hint else "") + "one of " + ", ".join(METRICS))
    for value, name, low in ((budget, "--budget", 1), (batch, "--batch", 1),
                             (rungs, "--rungs", 1)):
        if not isinstance(value, int) or value < low:
            raise InputError(f"must be an integer >= {low}, got {value!r}", field=name,
                             fix=f"e.g. {name} 20")
    labels = [v.label for v in scenario.variants]
    bare = [t.split("=", 1)[0].strip() for t in space if "=" in t]
    bare = [n for n in bare if "." not in n and "[" not in n and n in PARAMETER_ALGORITHMS]
    if variant is None:
        fits = [i for i, v in enumerate(scenario.variants)
                if all(v.algorithm in PARAMETER_ALGORITHMS[n] for n in bare)]
        if len(fits) != 1:
            raise InputError(("no variant" if not fits else f"{len(fits)} variants")
                             + f" of the scenario take{'s' if len(fits) == 1 else ''} "
                             + (", ".join(bare) or "the space"),
                             field="--variant", fix="name the one to tune: --variant LABEL "
                             "(one of: " + ", ".join(labels) + ")")
        index = fits[0]
    elif variant in labels:
        index = labels.index(variant)
    else:
        hint = did_you_mean(variant, labels)
        raise InputError(f"no variant {variant!r} in the scenario", field="--variant",
                         fix=(hint + " " if hint else "") + "one of: " + ", ".join(labels))
    tuned = scenario.variants[index]
    keys = [k for k, algorithms in PARAMETER_ALGORITHMS.items() if tuned.algorithm in algorithms]
    keys += ["batch_size", "global_sync_delay_s"]
    dims = parse_space(space, variant_index=0, variant_keys=keys)
    for d in dims:                     # a written path into the tuned variant: does it apply?
        key = d.path[len("variants[0]."):] if d.path.startswith("variants[0].") else None
        if key in PARAMETER_ALGORITHMS and tuned.algorithm not in PARAMETER_ALGORITHMS[key]:
            raise InputError(f"{d.name}: {key} does not apply to {tuned.algorithm}",
                             field="--space", fix=f"{key} applies to "
                             + ", ".join(PARAMETER_ALGORITHMS[key]))
    parsed = tuple(parse_constraint(text) for text in constraints)
    written = data["variants"]
    only = dict(data, variants=[written[index]])
    only.pop("sweep", None)
    baseline_data, baseline_label = None, None
    if any(c.relative for c in parsed) or baseline is not None:
        wanted = baseline or "minibatch"
        matches = [i for i, v in enumerate(scenario.variants) if wanted in (v.label, v.algorithm)]
        if matches:
            entry, baseline_label = written[matches[0]], scenario.variants[matches[0]].label
        elif wanted == "minibatch":            # mini-batch SGD needs no settings
            entry, baseline_label = {"algorithm": "minibatch"}, "minibatch"
        else:
            raise InputError(f"no variant {wanted!r} to be the BASELINE", field="--baseline",
                             fix="name a variant of the scenario by label or algorithm ("
                                 + ", ".join(labels) + "), or minibatch")
        baseline_data = dict(data, variants=[entry])
        baseline_data.pop("sweep", None)
    return TunePlan(name=scenario.name, source=file, base_dir=base_dir, data=only,
                    variant=tuned.label, algorithm=tuned.algorithm, space=tuple(dims), objective=objective,
                    direction=direction or ("maximize" if objective in MAXIMIZED
                                            else "minimize"),
                    constraints=parsed, baseline_data=baseline_data, baseline=baseline_label,
                    budget=budget, seed=seed, batch=batch, rungs=rungs)


# --------------------------------------------------------------------------- running
@dataclass
class TuneOutcome:
    """What :func:`run_tune` found."""

    trials: list = field(default_factory=list)    # summaries, trial order
    baseline: dict = None          # the baseline's record, or None
    best: dict = None              # the best feasible trial's summary, or None
    pareto: list = field(default_factory=list)    # summaries on the front
    runs: int = 0                  # runs executed by this call (rungs count one each)
    replayed: int = 0              # trials taken from trials.jsonl (--resume)
    full_steps: int = 0            # steps of one full run of the tuned variant
    interrupted: bool = False
    tried: dict = field(default_factory=dict, repr=False)   # values -> first summary

    def document(self, plan):
        return {**plan.document(), "baseline_record": _summary_record(self.baseline),
                "trials": self.trials, "best": self.best, "pareto": self.pareto,
                "runs": self.total_runs(), "steps_run": self.steps_run(),
                "full_steps": self.full_steps}

    def total_runs(self):
        """Runs the whole search took: the baseline, and every rung of every trial run."""
        return (self.baseline is not None) + sum(len(t["rungs"]) for t in self.trials
                                                 if t["ran"])

    def steps_run(self):
        """Steps the whole search simulated (trials of a point tried before cost none)."""
        return sum(rung["steps"] for t in self.trials if t["ran"] for rung in t["rungs"])


def _summary_record(record):
    if record is None:
        return None
    return {**{m: _metric(record, m) for m in METRICS}, "label": record.get("label"),
            "diverged": record.get("diverged", False), "status": record.get("status", "ok")}


def _task(plan, data, label, stop_after, tag):
    return {"id": tag, "data": data, "variant": label, "file": plan.source,
            "base_dir": plan.base_dir, "name": plan.name, "stop_after": stop_after}


def _execute(executor, tasks):
    """Run `tasks` on `executor`; results in task order."""
    futures = [executor.submit(run_task, task) for task in tasks]
    return [future.result() for future in futures]


def _rung_steps(full, rungs):
    """Step budgets of the rungs: full / 3^(rungs-1), ..., full (at least 1 step each)."""
    budgets = sorted({max(1, math.ceil(full / REDUCTION ** k)) for k in range(rungs)})
    return budgets


def _partial_value(plan, record):
    """The objective of a partial run, as reported to the pruner (see module docstring)."""
    value = _metric(record, plan.objective)
    if value is None and plan.objective == "time_to_accuracy_s":
        return _metric(record, "simulated_time_s")      # a lower bound: not reached yet
    return value


def run_tune(plan, executor, *, directory, resume=False, on_trial=None):
    """Search `plan`'s space on `executor`, writing `directory`'s files as trials end.

    Parameters
    ----------
    plan : TunePlan
    executor : concurrent.futures.Executor
        As for sweeps (:func:`~simulator.experiments.sweep_runner.local_executor`,
        :func:`~simulator.experiments.sweep_runner.dask_executor`).
    directory : str
        New or empty (or, with `resume`, a directory of this same search).
    resume : bool
        Take the trials already in ``trials.jsonl`` instead of running them.
    on_trial : callable, optional
        ``on_trial(summary)`` after each trial.

    Returns
    -------
    TuneOutcome
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cached = _open_directory(directory, plan, resume)
    outcome = TuneOutcome()
    if plan.baseline_data is not None:
        [result] = _execute(executor, [_task(plan, plan.baseline_data, plan.baseline, None,
                                             "baseline")])
        if result["record"] is None:
            raise InputError(f"the baseline {plan.baseline!r} failed: {result['error']}",
                             field="--baseline", fix="fix the scenario's baseline variant")
        outcome.baseline = result["record"]
        outcome.runs += 1
    for c in plan.constraints:
        c.bound(outcome.baseline)            # a BASELINE that has no value fails here, once
    full_scenario = scenario_from_data(plan.data, file=plan.source, base_dir=plan.base_dir)
    from .runner import load_workload

    n_train = len(load_workload(full_scenario)[0].y_train)
    outcome.full_steps = planned_steps(full_scenario, full_scenario.variants[0], n_train)

    size = math.prod(d.size() for d in plan.space)
    exhaustive = size <= plan.budget
    budget, rungs = (size, 1) if exhaustive else (plan.budget, plan.rungs)
    no_violation = (1.0,) * (len(plan.constraints) + 1)     # the constraints, and "reached"
    sampler = optuna.samplers.TPESampler(
        seed=plan.seed, multivariate=True, constant_liar=True,
        n_startup_trials=min(10, max(2, plan.budget // 3)))
    study = optuna.create_study(direction=plan.direction, sampler=sampler)
    if exhaustive:                         # every point of the space, in order, once
        for combo in itertools.product(*(d.values() for d in plan.space)):
            study.enqueue_trial({d.name: v for d, v in zip(plan.space, combo)})
    jsonl = os.open(os.path.join(directory, "trials.jsonl"),
                    os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        done = 0
        while done < budget:
            count = min(plan.batch, budget - done)
            trials = [study.ask() for _ in range(count)]
            values = [{d.path: d.suggest(t) for d in plan.space} for t in trials]
            summaries = _run_batch(plan, study, executor, trials, values, cached, outcome,
                                   rungs, no_violation)
            for summary in summaries:
                if summary.pop("_replayed", False):
                    outcome.replayed += 1
                else:
                    _append(jsonl, json.dumps(summary, sort_keys=True, allow_nan=False) + "\n",
                            os.path.join(directory, "trials.jsonl"))
                outcome.trials.append(summary)
                if on_trial is not None:
                    on_trial(summary)
            done += count
    except KeyboardInterrupt:
        outcome.interrupted = True
        _stop(executor)
    except BaseException:
        _stop(executor)                       # a full disk, a bad trial: stop the workers
        raise
    finally:
        os.close(jsonl)
    feasible = [t for t in outcome.trials if t["state"] == "complete" and t["feasible"]]
    if feasible:                 # ties go to the better of the Pareto objectives, in order
        sign = 1 if plan.direction == "minimize" else -1
        outcome.best = min(feasible, key=lambda t: (sign * t["value"], *_pareto_key(t),
                                                    t["number"]))
    distinct = {json.dumps(t["values"], sort_keys=True): t for t in reversed(feasible)}
    outcome.pareto = pareto_front(sorted(distinct.values(), key=lambda t: t["number"]))
    if not outcome.interrupted:
        write_text_atomic(os.path.join(directory, "tune.json"),
                          json.dumps(outcome.document(plan), indent=1, sort_keys=True,
                                     allow_nan=False) + "\n")
    return outcome


def _run_batch(plan, study, executor, trials, values, cached, outcome, rungs, no_violation):
    """Run a batch of trials rung by rung; tell Optuna in trial order; return summaries."""
    import optuna

    full = outcome.full_steps
    budgets = _rung_steps(full, rungs)
    bounded = plan.direction == "minimize" and plan.objective in MONOTONE
    done = [t["value"] for t in outcome.trials if t["state"] == "complete" and t["feasible"]]
    best = min(done) if done else None
    alive = list(range(len(trials)))
    records = [[] for _ in trials]                  # [{"steps", "record"}] per rung
    last = [None] * len(trials)
    data, labels = [], []
    for values_i in values:
        point, scenario = build_point(plan.data, values_i, file=plan.source,
                                      base_dir=plan.base_dir, name=plan.name)
        data.append(point.data)
        labels.append(scenario.variants[0].label)
    replay = {i: cached.get(trial.number) for i, trial in enumerate(trials)}
    for i in range(len(trials)):           # a point tried before: its outcome, not a new run
        key = json.dumps(values[i], sort_keys=True)
        if replay[i] is None and key in outcome.tried:
            replay[i] = dict(outcome.tried[key], values=values[i])
    for i, hit in replay.items():
        if hit is not None and hit["values"] != values[i]:
            raise InputError(f"trials.jsonl holds other values for trial {trials[i].number}: "
                             "this is not the same search", field="--resume",
                             fix="resume with the same scenario, space, seed and batch, or "
                                 "use a new directory")
    pruned = set()
    for budget in budgets:
        todo = [i for i in alive if replay[i] is None]
        tasks = [_task(plan, data[i], labels[i], budget if budget < full else None,
                       f"trial{trials[i].number}") for i in todo]
        results = dict(zip(todo, _execute(executor, tasks))) if tasks else {}
        outcome.runs += len(tasks)
        for i in list(alive):
            if replay[i] is not None:
                rung = [r["record"] for r in replay[i]["rungs"] if r["steps"] == budget]
                if not rung:                       # it stopped before this rung
                    alive.remove(i)
                    continue
                record = rung[0]
            else:
                result = results[i]
                record = _summary_record(result["record"])
                if record is None:
                    record = {"failed": result["error"]}
            records[i].append({"steps": budget, "record": record})
            last[i] = record
            if budget == full or record.get("failed"):
                continue
            value = _partial_value(plan, record)
            if value is not None:
                trials[i].report(value, budget)
                if bounded and best is not None and value >= best:
                    pruned.add(i)                  # already no better than the best: it cannot win
                    alive.remove(i)
    summaries = []
    for i, trial in enumerate(trials):
        record = last[i] or {}
        summary = {"number": trial.number, "values": values[i], "rungs": records[i]}
        if record.get("failed"):
            state, value, violation = "failed", None, no_violation
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif i in pruned:
            state, value, violation = "pruned", _partial_value(plan, record), no_violation
            _set_constraints(trial, violation)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            value = _metric(record, plan.objective)
            violation = tuple(c.violation(record, outcome.baseline) for c in plan.constraints)
            reached = (record.get("time_to_accuracy_s") is not None
                       and record.get("status", "ok") == "ok")
            violation = violation + ((0.0 if reached else 1.0),)
            state = "complete"
            _set_constraints(trial, violation)
            if value is None:              # not reached: tell its lower bound, infeasible
                value = _metric(record, "simulated_time_s")
            study.tell(trial, value)
        summary.update(state=state, value=value, feasible=state == "complete"
                       and all(v <= 0 for v in violation), record=record,
                       ran=(cached[trial.number].get("ran", True) if trial.number in cached
                            else replay[i] is None),
                       _replayed=replay[i] is not None and trial.number in cached)
        outcome.tried.setdefault(json.dumps(values[i], sort_keys=True), summary)
        summaries.append(summary)
    return summaries


def _set_constraints(trial, violation):
    """Hand the constraint values to Optuna (<= 0 is feasible); the last is 'reached'."""
    for number, value in enumerate(violation):
        trial.set_constraint(f"c{number}", float(value))


def _append(fd, text, file):
    append_whole(fd, text, file)              # whole lines only, even on a full disk


def _open_directory(directory, plan, resume):
    """Create or check the output directory; with `resume`, the finished trials by number."""
    check_output_dir(directory, resume=resume, field="--output", what="a search")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the directory: {err.strerror}", file=str(directory),
                         field="--output", fix="check the path and its permissions") from None
    cached = {}
    path = os.path.join(directory, "trials.jsonl")
    if resume and os.path.exists(path):
        raw = read_input(path, max_bytes=None)
        *lines, tail = raw.split(b"\n")
        if tail:                                   # a torn last line: cut it off
            with open(path, "r+b") as stream:
                stream.truncate(len(raw) - len(tail))
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                cached[int(entry["number"])] = entry
            except (ValueError, KeyError, TypeError, RecursionError):
                raise InputError("not a trial of a search", file=path, line=number,
                                 fix="remove the line, or use another directory") from None
    text = json.dumps(plan.document(), indent=1, sort_keys=True) + "\n"
    written = os.path.join(directory, "plan.json")
    if resume and os.path.exists(written):
        if read_text_input(written, max_bytes=None) != text:
            raise InputError("this directory holds another search (plan.json differs)",
                             field="--resume", fix="resume with the same scenario, space, "
                             "objective, constraints, seed, budget and batch, or use a "
                             "new directory")
    write_text_atomic(written, text)
    return cached


# --------------------------------------------------------------------------- results
def _pareto_key(trial):
    record = trial["record"]
    return [record[m] if d == "minimize" else -record[m] for m, d in PARETO]


def pareto_front(trials):
    """The trials no other trial beats on every objective of :data:`PARETO`.

    A trial dominates another when it is at least as good on every objective and better on
    one. The front is in trial order.

    Examples
    --------
    >>> t = lambda n, tta, acc, b: {"number": n, "record": {"time_to_accuracy_s": tta,
    ...     "final_test_accuracy": acc, "comm_bytes.inter_block": b}}
    >>> [x["number"] for x in pareto_front([t(0, 1.0, 0.9, 5), t(1, 2.0, 0.95, 5),
    ...                                     t(2, 2.0, 0.9, 5), t(3, 1.0, 0.9, 9)])]
    [0, 1]
    """
    keys = [_pareto_key(t) for t in trials]
    front = []
    for i, trial in enumerate(trials):
        dominated = any(all(a <= b for a, b in zip(other, keys[i])) and other != keys[i]
                        for j, other in enumerate(keys) if j != i)
        if not dominated:
            front.append(trial)
    return front


def read_tune_dir(path):
    """tune.json of a finished search directory (for ``sgdsim plot``)."""
    file = os.path.join(path, "tune.json")
    if not os.path.isfile(file):
        raise InputError("no tune.json here (the search did not finish?)", file=str(path),
                         fix="run 'sgdsim tune ... -o DIR' (or --resume it) to the end")
    try:
        return json.loads(read_text_input(file, max_bytes=None))
    except (ValueError, RecursionError) as err:
        raise InputError(f"not a search's tune.json ({err})", file=file,
                         fix="run the search again into a new directory") from None


def format_tune(plan, outcome):
    """The text ``sgdsim tune`` prints: the search, the best trial, the Pareto front."""
    from ..utils.units import format_bytes, format_time

    def figures(record):
        tta = record.get("time_to_accuracy_s")
        return (f"time-to-acc {'not reached' if tta is None else format_time(tta)}, "
                f"final acc {record.get('final_test_accuracy') or 0:.3f}, "
                f"inter bytes {format_bytes(record.get('comm_bytes.inter_block') or 0)}")

    def values_text(values):
        names = {d.path: d.name for d in plan.space}
        return " ".join(f"{names.get(p, p)}={short_value(v, 16)}" for p, v in values.items())

    states = [t["state"] for t in outcome.trials]
    equivalent = outcome.steps_run() / outcome.full_steps if outcome.full_steps else 0.0
    lines = [f"tune {plan.algorithm} of {plan.name} over {', '.join(d.text() for d in plan.space)}"
             f" for {plan.direction} {plan.objective}",
             f"{len(outcome.trials)} trials ({states.count('pruned')} pruned, "
             f"{states.count('failed')} failed) in {outcome.total_runs()} runs"
             + (f" ({outcome.runs} now, {outcome.replayed} trials resumed)"
                if outcome.replayed else "")
             + f"; {outcome.steps_run()} steps = {equivalent:.1f} full runs"]
    if outcome.baseline is not None:
        lines.append(f"baseline {plan.baseline}: {figures(_summary_record(outcome.baseline))}")
    for c in plan.constraints:
        lines.append(f"constraint {c.text}: {c.metric} {c.op} {c.bound(outcome.baseline):.6g}")
    if outcome.best is None:
        lines.append("no trial met the constraints and reached the target")
    else:
        best = outcome.best
        lines.append(f"best (trial {best['number']}): {values_text(best['values'])}: "
                     f"{figures(best['record'])}")
    if outcome.pareto:
        lines.append("Pareto front (time-to-accuracy, final accuracy, inter-block bytes):")
        for trial in outcome.pareto:
            lines.append(f"  trial {trial['number']:>3}  {values_text(trial['values']):<28} "
                         f"{figures(trial['record'])}")
    return "\n".join(lines)
