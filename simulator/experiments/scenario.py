"""Scenarios: what one sgdsim experiment simulates, read from a YAML file and checked.

A scenario names a cluster (a topology file, or a topology written inline), the learning
workload, the optimizer, the SGD variants to compare, the target accuracy and the training
length (docs/scenarios.md describes every key). :func:`load_scenario` reads one, applies the
command line's overrides and returns a frozen :class:`Scenario` that the engine consumes:

* everything is checked before anything runs, and each problem is one
  :class:`~simulator.utils.errors.InputError` naming the file, line, field and fix (an override's
  problem names its option, e.g. ``--H``);
* relative paths (the topology file, ``npz:PATH`` data) are resolved against the scenario
  file's directory; the topology is loaded and validated with ``require_compute=True``;
* a post-local switch given in epochs is resolved to steps (:func:`steps_per_epoch`), the
  schedule convention (``paper`` or ``pytorch``) of every variant is settled, hierarchical
  levels are resolved to the topology's groupings (``periods`` by level name,
  ``period_group_size`` as PyTorch's period -> group size), and every variant gets a unique
  display label.

A scenario is named by a path or by the name of a shipped scenario (``large_batch``; a path
always wins, :func:`simulator.utils.shipped.resolve`). Without either, :func:`load_scenario`
reads the built-in default, the shipped ``scenarios/default.yaml``: the seed paper's 8 x 2
GPU cluster, the digits MLP and all four variants.
"""

import functools
import logging
import math
import os
from dataclasses import dataclass, field, fields, replace

import networkx as nx

from ..cluster.levels import graph_levels, level_sizes
from ..cluster.topology import (
    gpu_blocks,
    gpu_nodes,
    load_topology,
    topology_from_data,
    validate_graph,
)
from ..engine.buckets import DEFAULT_BUCKET_CAP_BYTES, DEFAULT_FIRST_BUCKET_BYTES
from ..engine.overlap import MODES as OVERLAP_MODES
from ..engine.profiles import get_profile
from ..engine.timeline import cluster_gpus
from ..learning.datasets import load_dataset
from ..learning.gossip import GRAPHS, gossip_neighbours
from ..learning.schedules import CONVENTIONS, GLOBAL, resolve_group_sizes
from ..learning.training import EVALUATE
from ..learning.workload import OptimizerConfig, optimizer_config_from_dict
from ..network.collectives import check_group
from ..utils.errors import InputError
from ..utils.shipped import resolve, shipped_dir, shipped_files
from ..utils.units import parse_bytes
from .footprint import check_run_memory, model_copies
from .fault_section import FAULT_POLICY_KEY, fault_plan_from_data
from ..utils.yamlfile import (
    Places,
    did_you_mean,
    load_schema,
    load_yaml,
    parse_yaml,
    validate_schema,
)

__all__ = [
    "Variant", "WorkloadSpec", "TimingSpec", "Scenario",
    "load_scenario", "scenario_from_data", "steps_per_epoch",
    "ALGORITHMS", "COLLECTIVES", "OVERRIDE_OPTIONS", "SETTINGS", "parse_settings", "DEFAULT_SOURCE", "PARAMETER_ALGORITHMS",
]

ALGORITHMS = ("minibatch", "local", "postlocal", "hierarchical", "diloco", "slowmo", "qsr",
              "adacomm", "gossip")
COLLECTIVES = ("ring", "hierarchical", "halving-doubling")
DATASET_NAMES = ("digits", "mnist1d", "teacher")   # and npz:PATH
DEFAULT_SOURCE = "<built-in default>"

_REPLICATED = ("diloco", "slowmo", "qsr", "adacomm")
PARAMETER_ALGORITHMS = {  # which algorithms take each variant parameter
    "H": ("local", "postlocal", "hierarchical", "diloco", "slowmo", "qsr", "adacomm", "gossip"),
    "Hb": ("hierarchical",),
    "switch_epoch": ("postlocal",), "switch_step": ("postlocal",),
    "warmup_steps": ("local", "hierarchical"), "periods": ("hierarchical",),
    "period_group_size": ("hierarchical",),
    "post_local_gradient_allreduce": ("local", "postlocal", "hierarchical"),
    "outer_lr": ("diloco",), "outer_momentum": ("diloco",),
    "slow_lr": ("slowmo",), "slow_momentum": ("slowmo",),
    "alpha": ("qsr",), "H_min": ("adacomm",), "interval_s": ("adacomm",),
    "replica": _REPLICATED, "graph": ("gossip",),
    "overlap": tuple(a for a in ALGORITHMS if a != "gossip")}   # gossip all-reduces no gradients
_NEWER = ("outer_lr", "outer_momentum", "slow_lr", "slow_momentum", "alpha", "H_min",
          "interval_s", "replica", "graph")
"""The newer schedules' parameters (docs/schedules.md): Variant fields of the same names."""
_MAX_BUCKET_BYTES = 1e15
"""The largest DDP bucket limit a scenario may give (bytes)."""
_FILE_ONLY = ("warmup_steps", "periods", "period_group_size",
              "post_local_gradient_allreduce") + _NEWER
"""Variant parameters with no command-line option (their applicability is checked too)."""
PAPER_ONLY = ("diloco", "slowmo", "qsr", "adacomm", "gossip")
"""Algorithms with no torch.distributed averager to follow: the paper convention only."""

SETTINGS = ("warmup_steps", "post_local_gradient_allreduce") + _NEWER
"""Variant parameters that ``sgdsim run --set NAME=VALUE`` gives (they have no option)."""

OVERRIDE_OPTIONS = {key: "--" + key.replace("_", "-") for key in (
    "algorithm", "Hb", "switch_epoch", "switch_step", "topology", "epochs", "steps",
    "target_accuracy", "seed", "cost_profile", "convention", "evaluate", "overlap")}
OVERRIDE_OPTIONS.update(H="-H", global_sync_delay_s="--global-sync-delay", settings="--set",
                        bucket_cap_bytes="--bucket-cap")
"""Override key -> the ``sgdsim run`` option named in its errors (``"H"`` -> ``"-H"``)."""


# --------------------------------------------------------------------------- the contract
@dataclass(frozen=True)
class Variant:
    """One SGD variant to simulate (docs/semantics.md, "Schedules")."""

    algorithm: str                 # "minibatch" | "local" | "postlocal" | "hierarchical"
    H: int = 1                     # local steps between averages (local, postlocal, hierarchical)
    Hb: int = 1                    # block averages per global average (hierarchical)
    switch_step: int | None = None  # postlocal: mini-batch for steps t <= switch_step
    batch_size: int | None = None  # per-GPU batch override for this variant
    global_sync_delay_s: float | None = None  # overrides TimingSpec.global_sync_delay_s
    label: str = ""                # unique display name, e.g. "local H=4"
    convention: str = "paper"      # "paper" | "pytorch": how steps are counted (schedules.py)
    warmup_steps: int = 0          # pytorch: mini-batch steps before the averager starts
    periods: tuple = ()            # hierarchical: ((grouping, period), ...) innermost first,
                                   # the last "global"; () = the H, Hb form
    post_local_gradient_allreduce: bool | None = None  # pytorch: gradients all-reduced in
                                   # each block after the warm-up (None: PyTorch's default)
    # The newer schedules (docs/schedules.md); None: the schedule's default
    outer_lr: float | None = None        # diloco: outer SGD rate (0.7)
    outer_momentum: float | None = None  # diloco: outer Nesterov momentum (0.9)
    slow_lr: float | None = None         # slowmo: alpha (1.0)
    slow_momentum: float | None = None   # slowmo: beta (0.5)
    alpha: float | None = None           # qsr: growth coefficient (required)
    H_min: int | None = None             # adacomm: shortest period (1)
    interval_s: float | None = None      # adacomm: re-choose the period every this many s
    replica: str | None = None           # diloco, slowmo, qsr, adacomm: a level whose groups
                                         # all-reduce gradients at every step
    graph: str | None = None             # gossip: ring | torus | topology (ring)
    optimizer: OptimizerConfig | None = None  # this variant's own optimizer (else the scenario's)
    overlap: str | None = None     # "none" | "ddp": overrides TimingSpec.overlap
    fault_policy: str | None = None  # "restart" | "elastic": overrides Scenario.faults.policy


@dataclass(frozen=True)
class WorkloadSpec:
    """The learning problem (see docs/workload.md)."""

    dataset: str = "digits"        # digits | mnist1d | teacher | npz:PATH (PATH resolved)
    n_samples: int | None = None   # train + test samples; None: the dataset's own
    model: str = "mlp"             # mlp | softmax
    hidden: tuple = (64,)          # hidden layer widths of the MLP
    batch_size: int = 32           # per GPU (B_loc)
    dtype: str = "float64"         # float64 | float32
    non_iid_alpha: float | None = None  # None: iid shards; > 0: Dirichlet(alpha) per class


@dataclass(frozen=True)
class TimingSpec:
    """How simulated time is charged beyond the topology's numbers."""

    cost_profile: str = "model"    # key of profiles.PROFILES
    jitter: float = 0.0            # relative std of each step's compute time (seeded), 0 = off
    slow_gpus: dict = field(default_factory=dict)  # GPU name -> slowdown factor >= 1
    global_sync_delay_s: float = 0.0  # extra seconds added to every global sync
    collective: str = "ring"       # ring | tree | in-switch | hierarchical | halving-doubling | auto
    overlap: str = "none"          # none | ddp: gradient buckets all-reduced during backward
    bucket_cap_bytes: int = DEFAULT_BUCKET_CAP_BYTES          # DDP's bucket_cap_mb, in bytes
    first_bucket_cap_bytes: int = DEFAULT_FIRST_BUCKET_BYTES  # dist._DEFAULT_FIRST_BUCKET_BYTES


@dataclass(frozen=True)
class Scenario:
    """A checked experiment, ready for the engine."""

    name: str
    source: str                    # file path or "<built-in default>"
    topology: nx.Graph             # loaded and validated (require_compute=True)
    topology_source: str           # path, or "inline"
    workload: WorkloadSpec
    optimizer: OptimizerConfig
    variants: tuple                # of Variant, >= 1, labels unique
    target_accuracy: float         # 0 < x <= 1
    seed: int
    epochs: float | None           # exactly one of epochs / steps is set
    steps: int | None
    eval_every: int                # evaluate every N steps (see training.evaluation_steps)
    timing: TimingSpec
    convention: str = "paper"      # the variants' default schedule convention
    evaluate: str = "common"       # "common" | "any_gpu": which models count (training.py)
    eval_every_epochs: float | None = None  # if set: eval_every is this many epochs, in
                                   # each variant's steps (round(e * steps_per_epoch), >= 1)
    faults: object = None          # engine.faults.FaultPlan of the faults section, or None


def steps_per_epoch(n_train, workers, batch_size):
    """Steps for `workers` GPUs with `batch_size` samples each to see `n_train` samples once.

    ``ceil(n_train / (workers * batch_size))``, the unit of every epoch-based setting (as
    :class:`simulator.learning.datasets.BatchStream` counts it).

    Examples
    --------
    >>> steps_per_epoch(1437, 16, 32)
    3
    """
    return -(-int(n_train) // (int(workers) * int(batch_size)))


# --------------------------------------------------------------------------- loading
def load_scenario(path=None, overrides=None):
    """Read, check and resolve a scenario file; without `path`, the built-in default.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A scenario YAML file, or the name of a shipped scenario. None: the shipped
        ``default``.
    overrides : dict, optional
        Command-line overrides; every key optional, None meaning not given:
        ``algorithm`` (replaces the variants with ONE variant of that algorithm),
        ``H``, ``Hb``, ``switch_epoch``, ``switch_step`` (with ``algorithm``: that variant's
        parameters; without: applied to every variant they are meaningful for),
        ``topology`` (a path relative to the current directory), ``epochs`` (replaces
        steps), ``steps`` (replaces epochs), ``target_accuracy``, ``seed``,
        ``cost_profile``, ``global_sync_delay_s`` (for every variant, replacing their own),
        ``convention`` (for every variant, replacing their own), ``evaluate``,
        ``settings`` (a dict of :data:`SETTINGS` names to values, ``sgdsim run --set``:
        with ``algorithm`` that variant's, without it every variant's they apply to; see
        :func:`parse_settings`),
        ``overlap`` (``none`` or ``ddp``, for every variant, replacing their own),
        ``bucket_cap_bytes`` (DDP's bucket size limit, bytes, replacing ``timing.bucket_cap``).

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        The first problem found, naming the file, line, field and fix; a bad override names
        its option (see :data:`OVERRIDE_OPTIONS`).

    Notes
    -----
    A ``sweep`` section (docs/sweeps.md) is checked for its shape and otherwise ignored:
    the scenario runs as written, and a note on the ``simulator.experiments.scenario`` logger (shown on
    stderr when logging is not configured) says so.

    Examples
    --------
    >>> scenario = load_scenario()  # doctest: +SKIP
    >>> [v.label for v in scenario.variants]  # doctest: +SKIP
    ['minibatch', 'local H=4', 'postlocal H=4 after epoch 1', 'hierarchical H=2 Hb=4']
    >>> load_scenario(overrides={"algorithm": "local", "H": 8}).variants  # doctest: +SKIP
    (Variant(algorithm='local', H=8, Hb=1, switch_step=None, batch_size=None, ...),)
    """
    if path is None:
        data, locate = load_yaml(shipped_files("scenarios")["default"])
        return scenario_from_data(data, file=DEFAULT_SOURCE, locate=locate,
                                  base_dir=str(shipped_dir("scenarios")), overrides=overrides,
                                  name="default")
    file = os.fspath(path)
    real = resolve("scenarios", file, missing_ok=True)
    data, locate = load_yaml(real)
    scenario = scenario_from_data(data, file=file, locate=locate,
                                  base_dir=os.path.dirname(real) or ".", overrides=overrides)
    if "sweep" in data:             # the base scenario runs, and says so (once it is checked)
        logging.getLogger(__name__).warning(
            "note: %s:%s: this runs the scenario as written and ignores its sweep section "
            "('sgdsim sweep %s -o DIR' runs every point)", file, locate(("sweep",)), file)
    return scenario


def scenario_from_data(data, *, file=None, locate=None, base_dir=".", overrides=None,
                       name=None):
    """Build a :class:`Scenario` from parsed YAML `data` (see :func:`load_scenario`).

    Parameters
    ----------
    data : object
        The parsed file.
    file : str, optional
        The file named in errors and recorded as ``Scenario.source``.
    locate : callable, optional
        ``locate(path_tuple) -> line`` from :func:`simulator.utils.yamlfile.load_yaml`.
    base_dir : str
        Directory that relative paths in `data` are relative to.
    overrides : dict, optional
        As for :func:`load_scenario`.
    name : str, optional
        Name when `data` has none; default: `file`'s name without extension.
    """
    at = Places(file, locate)
    if not isinstance(data, dict):
        raise InputError(f"a scenario is a mapping of keys, got {type(data).__name__}",
                         **at(()), fix="write e.g. 'topology: ../topologies/seed_8x2.yaml'")
    schema = load_schema("scenario")
    validate_schema(data, schema, file=file, locate=locate)
    given = _checked_overrides(overrides)

    graph, topology_source = _topology(data, at, base_dir, given)
    workload = _workload(data.get("workload", {}), at, base_dir)
    optimizer = optimizer_config_from_dict(data.get("optimizer", {}), file=file, locate=locate,
                                           path=("optimizer",))
    timing = _timing(data.get("timing", {}), at, graph, given)
    epochs, steps = _length(data, at, given)
    seed = given.get("seed", data.get("seed", 0))
    n_train = _train_size(workload, seed, at, len(gpu_nodes(graph)))  # loads the dataset
    convention = given.get("convention", data.get("convention", "paper"))
    faults = fault_plan_from_data(data.get("faults"), at, graph)
    variants = _variants(data, at, given, graph, workload, epochs, steps, n_train, convention)
    _check_overlap(data, at, given, timing, variants)
    _check_memory(data, at, given, graph, workload, seed, epochs, steps, variants, optimizer)
    _check_fault_policies(data, at, faults)
    _check_faulted_variants(at, faults, variants, optimizer, timing)
    if name is None:
        name = os.path.splitext(os.path.basename(file))[0] if file else "scenario"
    return Scenario(
        name=data.get("name", name),
        source=file if file is not None else "<data>",
        topology=graph,
        topology_source=topology_source,
        workload=workload,
        optimizer=optimizer,
        variants=variants,
        target_accuracy=float(given.get("target_accuracy", data["target_accuracy"])),
        seed=int(seed),
        epochs=epochs,
        steps=steps,
        eval_every=int(data.get("eval_every", 1)),
        eval_every_epochs=_eval_every_epochs(data, at),
        timing=timing,
        convention=convention,
        evaluate=given.get("evaluate", data.get("evaluate", "common")),
        faults=faults,
    )


def _check_fault_policies(data, at, faults):
    """A variant's fault_policy needs a faults section to apply to."""
    if faults is not None:
        return
    for index, spec in enumerate(data.get("variants") or []):
        if FAULT_POLICY_KEY in spec:
            raise InputError(f"{FAULT_POLICY_KEY} applies to the faults of the scenario, and "
                             "it has none", **at(("variants", index, FAULT_POLICY_KEY)),
                             fix="add a faults section (docs/faults.md), or remove it")


_UNTIMED_UNDER_FAULTS = ("gossip", "adacomm")
"""Schedules the fault engine cannot time: gossip's neighbour exchanges, and AdaComm's periods,
which are decided from the loss as the run goes (a run under faults is timed first)."""


def _check_faulted_variants(at, faults, variants, optimizer, timing):
    """Refuse what a run under faults does not model, rather than run it wrong."""
    if faults is None:
        return
    for variant in variants:
        if (variant.overlap or timing.overlap) == "ddp":
            raise InputError(f"variant '{variant.label}': DDP overlap is not modelled under "
                             "faults", **at(("faults",)),
                             fix="use overlap: none for runs with a faults section")
        if variant.algorithm in _UNTIMED_UNDER_FAULTS:
            raise InputError(f"variant '{variant.label}': faults are not modelled for "
                             f"{variant.algorithm}", **at(("faults",)),
                             fix="remove the faults section, or use minibatch, local, "
                                 "postlocal, hierarchical, diloco, slowmo or qsr")
        policy = variant.fault_policy or faults.policy
        name = (variant.optimizer or optimizer).name
        if policy == "elastic" and (variant.algorithm in ("diloco", "slowmo") or name != "sgd"):
            what = variant.algorithm if variant.algorithm in ("diloco", "slowmo") else name
            raise InputError(f"variant '{variant.label}': elastic training is modelled for SGD "
                             f"workers without an outer optimizer, not {what}",
                             **at(("faults",)),
                             fix="use fault_policy: restart; its learning is the fault-free "
                                 "learning, with any optimizer")


def _option(key):
    """Keyword arguments that locate an InputError at a command-line option."""
    return {"file": None, "line": None, "field": OVERRIDE_OPTIONS[key]}


# --------------------------------------------------------------------------- overrides
def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


_OVERRIDE_RULES = {  # key -> (test, what it must be, example)
    "H": (lambda v: _is_int(v) and v >= 1, "an integer >= 1", "8"),
    "Hb": (lambda v: _is_int(v) and v >= 1, "an integer >= 1", "4"),
    "switch_epoch": (lambda v: _is_number(v) and v >= 0, "a number of epochs >= 0", "2"),
    "switch_step": (lambda v: _is_int(v) and v >= 0, "an integer >= 0", "100"),
    "topology": (lambda v: isinstance(v, (str, os.PathLike)) and str(v) != "",
                 "a path to a topology file", "topologies/seed_8x2.yaml"),
    "epochs": (lambda v: _is_number(v) and v > 0, "a positive number", "30"),
    "steps": (lambda v: _is_int(v) and v >= 1, "an integer >= 1", "90"),
    "target_accuracy": (lambda v: _is_number(v) and 0 < v <= 1, "a fraction in (0, 1]", "0.9"),
    "seed": (lambda v: _is_int(v) and v >= 0, "a non-negative integer", "0"),
    "global_sync_delay_s": (lambda v: _is_number(v) and v >= 0,
                            "a non-negative number of seconds", "1"),
    "bucket_cap_bytes": (lambda v: _is_number(v) and 1 <= v <= _MAX_BUCKET_BYTES,
                         f"a size from 1 B to {_MAX_BUCKET_BYTES:.0e} B", "'25 MiB'"),
}


_OVERRIDE_CHOICES = {"algorithm": ALGORITHMS, "convention": CONVENTIONS, "evaluate": EVALUATE,
                     "overlap": OVERLAP_MODES}
"""Overrides that name one of a few choices: key -> the choices."""


def _checked_overrides(overrides):
    """The overrides that are given (not None), each checked; raise naming the option."""
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    for key, value in given.items():
        if key not in OVERRIDE_OPTIONS:
            raise TypeError(f"unknown override {key!r}; known: {', '.join(OVERRIDE_OPTIONS)}")
        if key == "cost_profile":
            try:
                get_profile(value)
            except InputError as err:
                raise InputError(err.message, **_option(key), fix=err.fix) from None
            continue
        if key == "settings":
            given[key] = _checked_settings(value)
            continue
        if key in _OVERRIDE_CHOICES:
            choices = _OVERRIDE_CHOICES[key]
            if value not in choices:
                hint = did_you_mean(value, choices)
                raise InputError(f"unknown {key} {value!r}", **_option(key),
                                 fix=(hint + " " if hint else "") + "choose from: "
                                 + ", ".join(choices))
            continue
        test, what, example = _OVERRIDE_RULES[key]
        if not test(value):
            raise InputError(f"must be {what}, got {value!r}", **_option(key),
                             fix=f"write e.g. {OVERRIDE_OPTIONS[key]} {example}")
    for first, second in (("epochs", "steps"), ("switch_epoch", "switch_step")):
        if first in given and second in given:
            raise InputError(f"{OVERRIDE_OPTIONS[first]} and {OVERRIDE_OPTIONS[second]} are "
                             "both given", **_option(second), fix="give one of them")
    if "topology" in given:
        given["topology"] = str(given["topology"])
    return given


def parse_settings(texts):
    """``{name: value}`` from ``NAME=VALUE`` texts (``sgdsim run --set``), values read as YAML.

    Parameters
    ----------
    texts : iterable of str
        E.g. ``["alpha=0.2", "replica=block"]``; a later NAME replaces an earlier one.

    Returns
    -------
    dict
        Checked as :func:`load_scenario` checks its ``settings`` override.

    Raises
    ------
    InputError
        A text without ``=``, a name that is not in :data:`SETTINGS`, a value the
        scenario schema refuses; the line names ``--set NAME``.

    Examples
    --------
    >>> parse_settings(["alpha=0.2", "graph=torus"])
    {'alpha': 0.2, 'graph': 'torus'}
    """
    settings = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise InputError(f"{text!r} is not NAME=VALUE", file=None, line=None, field="--set",
                             fix="write e.g. --set alpha=0.2")
        try:
            settings[name] = parse_yaml(value, file=None)[0]
        except InputError as err:
            raise InputError(f"{value!r}: {err.message}", **_setting(name), fix=err.fix) from None
    return _checked_settings(settings)


def _checked_settings(settings):
    """`settings` with every name known and every value as the variant schema wants it."""
    if not isinstance(settings, dict):
        raise TypeError("the settings override is a dict of names to values")
    schema = load_schema("scenario")
    properties = schema["$defs"]["variant"]["properties"]
    for name, value in settings.items():
        field_name = f"--set {name}"
        if name not in SETTINGS:
            if name in OVERRIDE_OPTIONS and name != "settings":
                fix = f"use the option {OVERRIDE_OPTIONS[name]}"
            else:
                hint = did_you_mean(name, SETTINGS)
                fix = (hint + " " if hint else "") + "settable: " + ", ".join(SETTINGS)
            raise InputError(f"{name!r} is not a variant setting", file=None, line=None,
                             field=field_name, fix=fix)
        try:
            validate_schema({name: value}, {"$defs": schema["$defs"], "type": "object",
                                            "properties": {name: properties[name]}})
        except InputError as err:
            raise InputError(err.message, file=None, line=None, field=field_name,
                             fix=err.fix) from None
    return dict(settings)


def _setting(name):
    """Keyword arguments that locate an InputError at ``--set NAME``."""
    return {"file": None, "line": None, "field": f"--set {name}"}


# --------------------------------------------------------------------------- sections
def _topology(data, at, base_dir, given):
    """(graph, topology_source): loaded from a file, a shipped name or inline, validated for
    compute. A shipped topology named by its name has that name as its source, so results
    do not depend on where sgdsim is installed."""
    if "topology" in given:
        spec, where, base_dir = os.fspath(given["topology"]), _option("topology"), None
    elif isinstance(data["topology"], str):
        spec, where = data["topology"], at(("topology",))
    else:
        spec = None
    if spec is not None:
        relative_to = ("the current directory" if base_dir is None
                       else "the scenario file's directory")
        path = resolve("topologies", spec, base_dir, relative_to=relative_to, **where)
        joined = spec if base_dir is None else os.path.normpath(os.path.join(base_dir, spec))
        graph = load_topology(path)
        validate_graph(graph, file=path, require_compute=True)
        return graph, (path if path == joined else spec)
    spec = data["topology"]
    inner = None if at.locate is None else (lambda path: at.locate(("topology",) + tuple(path)))
    try:
        graph = topology_from_data(spec, file=at.file, locate=inner)
        validate_graph(graph, file=at.file, require_compute=True)
    except InputError as err:
        raise _inside_topology(err, at) from None
    return graph, "inline"


def _inside_topology(err, at):
    """`err` from an inline topology, with its field under ``topology.``."""
    field_ = err.field
    if field_ and not field_.startswith(("node ", "link ", "graph.")):
        field_ = "topology." + field_
    elif field_:
        field_ = f"topology: {field_}"
    else:
        field_ = "topology"
    line = err.line if err.line is not None else at.line(("topology",))
    return InputError(err.message, file=err.file, line=line, field=field_, fix=err.fix)


def _workload(spec, at, base_dir):
    """WorkloadSpec from the ``workload`` mapping (already schema-checked)."""
    dataset = spec.get("dataset", "digits")
    where = at(("workload", "dataset"))
    if dataset.startswith("npz:"):
        path = dataset[len("npz:"):]
        if path == "":
            raise InputError("npz: needs a path", **where, fix="write e.g. npz:data/mine.npz")
        resolved = path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))
        if not os.path.exists(resolved):
            raise InputError(f"no such file '{path}' (looked for {resolved})", **where,
                             fix="check the path; it is relative to the scenario file's "
                                 "directory")
        dataset = "npz:" + resolved
        if "n_samples" in spec:
            raise InputError("n_samples does not apply to an .npz file",
                             **at(("workload", "n_samples")),
                             fix="leave it out, or save fewer samples")
    elif dataset not in DATASET_NAMES:
        hint = did_you_mean(dataset, DATASET_NAMES + ("npz:PATH",))
        raise InputError(f"unknown dataset {dataset!r}", **where,
                         fix=(hint + " " if hint else "")
                         + "choose from: digits, mnist1d, teacher, npz:PATH")
    model = spec.get("model", "mlp")
    if model == "softmax" and "hidden" in spec:
        raise InputError("hidden does not apply to the softmax model",
                         **at(("workload", "hidden")),
                         fix="remove it, or write model: mlp")
    return WorkloadSpec(dataset=dataset, n_samples=spec.get("n_samples"), model=model,
                        hidden=() if model == "softmax" else tuple(spec.get("hidden", (64,))),
                        batch_size=int(spec.get("batch_size", 32)),
                        dtype=spec.get("dtype", "float64"),
                        non_iid_alpha=spec.get("non_iid_alpha"))


def _timing(spec, at, graph, given):
    """TimingSpec from the ``timing`` mapping and the overrides."""
    profile = given.get("cost_profile", spec.get("cost_profile", "model"))
    try:
        get_profile(profile)
    except InputError as err:
        raise InputError(err.message, **at(("timing", "cost_profile")), fix=err.fix) from None
    gpus = gpu_nodes(graph)
    for gpu, factor in spec.get("slow_gpus", {}).items():
        if gpu not in graph or graph.nodes[gpu].get("kind") != "gpu":
            hint = did_you_mean(gpu, gpus)
            shown = ", ".join(gpus[:4]) + (", ..." if len(gpus) > 4 else "")
            raise InputError(f"no GPU '{gpu}' in the topology",
                             **at(("timing", "slow_gpus", gpu)),
                             fix=hint or f"name one of its GPUs: {shown}")
    collective = spec.get("collective", "ring")
    if collective == "in-switch":
        try:
            check_group(graph, gpus, "in-switch")
        except InputError as err:
            raise InputError(err.message, **at(("timing", "collective")),
                             fix="use collective: ring, tree or auto, or a topology whose GPUs "
                                 "share a switch with reduction: true") from None
    if collective == "hierarchical":
        _require_equal_blocks(graph, at(("timing", "collective")),
                              "the hierarchical all-reduce needs blocks of equal size",
                              "use collective: ring, or give every block the same number "
                              "of GPUs")
    return TimingSpec(
        cost_profile=profile,
        jitter=float(spec.get("jitter", 0.0)),
        slow_gpus={gpu: float(f) for gpu, f in spec.get("slow_gpus", {}).items()},
        global_sync_delay_s=float(given.get("global_sync_delay_s",
                                            spec.get("global_sync_delay_s", 0.0))),
        collective=collective,
        overlap=spec.get("overlap", "none"),
        bucket_cap_bytes=int(given["bucket_cap_bytes"]) if "bucket_cap_bytes" in given
        else _bucket_bytes(spec, "bucket_cap", DEFAULT_BUCKET_CAP_BYTES, at),
        first_bucket_cap_bytes=_bucket_bytes(spec, "first_bucket_cap",
                                             DEFAULT_FIRST_BUCKET_BYTES, at))


def _bucket_bytes(spec, key, default, at):
    """A DDP bucket limit of the ``timing`` mapping, in whole bytes (as DDP's
    ``int(bucket_cap_mb * 1024 * 1024)``)."""
    if key not in spec:
        return default
    where = at(("timing", key))
    try:
        value = parse_bytes(spec[key], field=f"timing.{key}")
    except InputError as err:
        raise InputError(err.message, **where, fix=err.fix) from None
    if not 1 <= value <= _MAX_BUCKET_BYTES:
        raise InputError(f"must be from 1 B to {_MAX_BUCKET_BYTES:.0e} B, got {spec[key]!r}",
                         **where, fix="write a size such as '25 MiB'")
    return int(value)


def _check_overlap(data, at, given, timing, variants):
    """Overlap applies to gradient all-reduces, bucket limits only where some variant
    overlaps; say so rather than ignore them."""
    spec = data.get("timing", {})
    overlapping = [v for v in variants if (v.overlap or timing.overlap) == "ddp"]
    if overlapping and all(v.algorithm not in PARAMETER_ALGORITHMS["overlap"]
                           for v in overlapping):
        where = _option("overlap") if "overlap" in given else at(("timing", "overlap"))
        raise InputError("overlap ddp overlaps gradient all-reduces, and gossip has none",
                         **where, fix="leave it out, or overlap a schedule that all-reduces "
                                      "gradients, e.g. minibatch")
    if overlapping:
        return
    for key, option in (("bucket_cap_bytes", "bucket_cap"), ("first_bucket_cap_bytes",
                                                             "first_bucket_cap")):
        if key in given:
            raise InputError("--bucket-cap applies with DDP overlap, and no variant overlaps",
                             **_option(key), fix="add --overlap ddp, or leave it out")
        if option in spec:
            raise InputError(f"{option} applies with DDP overlap, and no variant overlaps",
                             **at(("timing", option)),
                             fix="add 'overlap: ddp' to timing (or to a variant), or remove it")


def _require_equal_blocks(graph, where, what, fix):
    try:
        validate_graph(graph, require_equal_blocks=True)
    except InputError as err:
        sizes = {block: len(members) for block, members in gpu_blocks(graph).items()}
        shown = ", ".join(f"{block}: {n}" for block, n in list(sizes.items())[:6])
        raise InputError(f"{what}, but the topology's blocks hold unequal numbers of GPUs "
                         f"({shown}{', ...' if len(sizes) > 6 else ''})", **where,
                         fix=fix) from err


def _eval_every_epochs(data, at):
    """``eval_every_epochs``, or None; refused beside ``eval_every``."""
    if "eval_every_epochs" not in data:
        return None
    if "eval_every" in data:
        raise InputError("eval_every and eval_every_epochs are both given",
                         **at(("eval_every_epochs",)), fix="keep one of them")
    return float(data["eval_every_epochs"])


def _length(data, at, given):
    """(epochs, steps): exactly one of them set."""
    if "epochs" in given:
        return float(given["epochs"]), None
    if "steps" in given:
        return None, int(given["steps"])
    if "epochs" in data and "steps" in data:
        first = f" (epochs at line {at.line(('epochs',))})" if at.locate is not None else ""
        raise InputError(f"epochs and steps are both given{first}", **at(("steps",)),
                         fix="keep one of them: the training length is epochs or steps")
    if "epochs" in data:
        return float(data["epochs"]), None
    if "steps" in data:
        return None, int(data["steps"])
    raise InputError("the training length is missing", **at(("epochs",)),
                     fix="add 'epochs: 30' or 'steps: 90'")


@functools.lru_cache(maxsize=32)
def _dataset_shape(dataset, n_samples, seed, stamp):
    """(training samples, input width, classes) of a dataset; `stamp` tells .npz versions
    apart (modification time and size)."""
    data = load_dataset(dataset, seed=seed, n_samples=n_samples)
    return len(data.y_train), data.input_dim, data.num_classes


def _shape(workload, seed):
    if workload.dataset.startswith("npz:"):
        try:
            info = os.stat(workload.dataset[len("npz:"):])
            stamp = (info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = None                          # load_dataset says what is wrong
        return _dataset_shape(workload.dataset, None, 0, stamp)
    return _dataset_shape(workload.dataset, workload.n_samples, seed, None)


def _train_size(workload, seed, at, workers):
    """Training samples of the workload's dataset (loading it), located errors."""
    try:
        n_train = _shape(workload, seed)[0]
    except InputError as err:
        if err.file is not None:                   # a problem inside the .npz file
            raise
        key = "n_samples" if err.field == "n_samples" else "dataset"
        raise InputError(err.message, fix=err.fix, **at(("workload", key))) from None
    if n_train < workers:
        raise InputError(f"{n_train} training samples cannot be split across {workers} GPUs",
                         **at(("workload", "n_samples" if workload.n_samples else "dataset")),
                         fix="use more samples or fewer GPUs")
    return n_train


def _check_memory(data, at, given, graph, workload, seed, epochs, steps, variants, optimizer):
    """Refuse, before anything runs, a scenario whose largest run would not fit in memory
    (:mod:`simulator.experiments.footprint`), naming the setting that costs most."""
    n_train, input_dim, num_classes = _shape(workload, seed)
    workers = len(gpu_nodes(graph))
    spec = data.get("workload", {})
    length = next((key for key in ("steps", "epochs") if key in given), None)

    def where(term):
        if term == "steps":
            if length is not None:
                return _option(length)
            return at(("steps",) if "steps" in data else ("epochs",))
        if term == "parameters":
            return at(("workload", "hidden" if "hidden" in spec else "dataset"))
        return at(("workload", "batch_size" if "batch_size" in spec else "dataset"))

    itemsize = 4 if workload.dtype == "float32" else 8
    for variant in variants:
        batch = variant.batch_size or workload.batch_size
        total = steps if steps is not None else \
            max(1, round(epochs * steps_per_epoch(n_train, workers, batch)))
        own = variant.optimizer or optimizer
        degree = None
        if variant.algorithm == "gossip":
            degree = max(map(len, gossip_neighbours(variant.graph, cluster_gpus(graph)[0],
                                                    graph)), default=0)
        check_run_memory(workers=workers, input_dim=input_dim, hidden=workload.hidden,
                         num_classes=num_classes, batch_size=batch, steps=total,
                         itemsize=itemsize, where=where,
                         copies=model_copies(own.name, amsgrad=own.amsgrad,
                                             gossip_degree=degree))


# --------------------------------------------------------------------------- variants
class _Value:
    """A variant parameter and where it was written (file location or option)."""

    __slots__ = ("value", "where")

    def __init__(self, value, where):
        self.value, self.where = value, where


def _raw_variants(data, at, given):
    """[(params {key: _Value}, where of the variant, overridden keys)] after overrides."""
    params_keys = ("H", "Hb", "switch_epoch", "switch_step")
    if "algorithm" in given:
        params = {"algorithm": _Value(given["algorithm"], _option("algorithm"))}
        for key in params_keys:
            if key in given:
                if given["algorithm"] not in PARAMETER_ALGORITHMS[key]:
                    raise InputError(f"{OVERRIDE_OPTIONS[key]} does not apply to "
                                     f"{given['algorithm']}", **_option(key),
                                     fix=f"leave it out, or use --algorithm "
                                         f"{' or '.join(PARAMETER_ALGORITHMS[key])}")
                params[key] = _Value(given[key], _option(key))
        for key, value in given.get("settings", {}).items():
            if given["algorithm"] not in PARAMETER_ALGORITHMS[key]:
                raise InputError(f"{key} does not apply to {given['algorithm']}",
                                 **_setting(key),
                                 fix=f"leave it out, or use --algorithm "
                                     f"{' or '.join(PARAMETER_ALGORITHMS[key])}")
            params[key] = _Value(value, _setting(key))
        return [(params, _option("algorithm"), set())]

    raw = []
    for index, spec in enumerate(data["variants"]):
        path = ("variants", index)
        params = {key: _Value(value, at(path + (key,))) for key, value in spec.items()}
        if "optimizer" in spec:                     # this variant's own optimizer, whole
            params["optimizer"] = _Value(optimizer_config_from_dict(
                spec["optimizer"], file=at.file, locate=at.locate, path=path + ("optimizer",)),
                at(path + ("optimizer",)))
        algorithm = spec["algorithm"]
        for key in params_keys + _FILE_ONLY + ("overlap",):
            if key in spec and algorithm not in PARAMETER_ALGORITHMS[key]:
                raise InputError(f"{key} does not apply to {algorithm}", **at(path + (key,)),
                                 fix=f"remove it; {key} applies to "
                                     f"{', '.join(PARAMETER_ALGORITHMS[key])}")
        overridden = set()
        for key in params_keys:
            if key in given and algorithm in PARAMETER_ALGORITHMS[key]:
                if key.startswith("switch_"):
                    params.pop("switch_epoch", None)
                    params.pop("switch_step", None)
                params[key] = _Value(given[key], _option(key))
                overridden.add(key)
        for key, value in given.get("settings", {}).items():
            if algorithm in PARAMETER_ALGORITHMS[key]:
                params[key] = _Value(value, _setting(key))
                overridden.add(key)
        if "global_sync_delay_s" in given:          # the command line wins for every variant
            params.pop("global_sync_delay_s", None)
            overridden.add("global_sync_delay_s")
        if "convention" in given:                   # likewise
            params.pop("convention", None)
            overridden.add("convention")
        if "overlap" in given:                      # likewise
            params.pop("overlap", None)
            overridden.add("overlap")
        for key in ("H", "Hb"):
            if key in given and algorithm == "hierarchical" and \
                    ("periods" in spec or "period_group_size" in spec):
                form = "periods" if "periods" in spec else "period_group_size"
                raise InputError(f"{OVERRIDE_OPTIONS[key]} does not apply to a hierarchical "
                                 f"variant given by {form}", **_option(key),
                                 fix=f"leave it out, or edit {form} at line "
                                     f"{at.line(path + (form,))}" if at.locate else "leave it out")
        raw.append((params, at(path), overridden))
    for key in params_keys:
        if key in given and not any(p["algorithm"].value in PARAMETER_ALGORITHMS[key] for p, _, _ in raw):
            raise InputError(f"{OVERRIDE_OPTIONS[key]} applies to {', '.join(PARAMETER_ALGORITHMS[key])} "
                             "variants, and this scenario has none", **_option(key),
                             fix=f"add --algorithm {PARAMETER_ALGORITHMS[key][-1]}, or leave it out")
    for key in given.get("settings", {}):
        if not any(p["algorithm"].value in PARAMETER_ALGORITHMS[key] for p, _, _ in raw):
            raise InputError(f"{key} applies to {', '.join(PARAMETER_ALGORITHMS[key])} "
                             "variants, and this scenario has none", **_setting(key),
                             fix=f"add --algorithm {PARAMETER_ALGORITHMS[key][0]}, or leave it out")
    return raw


def _variants(data, at, given, graph, workload, epochs, steps, n_train, convention):
    """The resolved, labelled, de-duplicated variants."""
    workers = len(gpu_nodes(graph))
    resolved = []
    for params, where, overridden in _raw_variants(data, at, given):
        def value(key, default=None):
            return params[key].value if key in params else default

        algorithm = value("algorithm")
        batch_size = value("batch_size")
        B = batch_size or workload.batch_size
        switch_step = None
        if algorithm == "postlocal":
            switch_step = _switch_step(params, where, n_train, workers, B)
            total = steps if steps is not None else \
                round(epochs * steps_per_epoch(n_train, workers, B))
            if switch_step >= total:
                key = "switch_epoch" if "switch_epoch" in params else "switch_step"
                raise InputError(f"the switch to local SGD after step {switch_step} comes at "
                                 f"or after the last step ({total}): this is mini-batch SGD",
                                 **params[key].where,
                                 fix="switch earlier, train longer, or use algorithm minibatch")
        if algorithm == "hierarchical":
            _require_equal_blocks(graph, params["algorithm"].where,
                                  "hierarchical local SGD averages inside blocks of equal size",
                                  "give every block the same number of GPUs, or use algorithm "
                                  "local")
        variant_convention = value("convention", convention)
        _pytorch_only(params, variant_convention)
        if algorithm in PAPER_ONLY:
            variant_convention = _paper_only(algorithm, params, where, variant_convention,
                                             "convention" in given)
        newer = _newer_parameters(algorithm, params, where, graph, workers)
        H = value("H", None if algorithm == "gossip" else 1)
        variant = Variant(algorithm=algorithm, H=None if H is None else int(H),
                          Hb=int(value("Hb", 1)),
                          switch_step=switch_step,
                          batch_size=None if batch_size is None else int(batch_size),
                          global_sync_delay_s=None if value("global_sync_delay_s") is None
                          else float(value("global_sync_delay_s")),
                          convention=variant_convention,
                          warmup_steps=int(value("warmup_steps", 0)),
                          periods=_periods(params, graph, workers) if algorithm == "hierarchical"
                          else (),
                          post_local_gradient_allreduce=value("post_local_gradient_allreduce"),
                          optimizer=value("optimizer"),
                          overlap=given.get("overlap", value("overlap")),
                          fault_policy=value(FAULT_POLICY_KEY), **newer)
        label = value("label")
        if label is None or overridden:             # a label written for other values
            label = _derived_label(variant, value("switch_epoch"),      # would mislead
                                   value("period_group_size"), "overlap" in params)
        resolved.append((replace(variant, label=label), params.get("label"), where,
                         overridden))

    unique, seen = [], {}
    for variant, label_value, where, overridden in resolved:
        if overridden and any(_same_run(variant, other) for other in unique):
            continue                               # an override made two variants identical
        if variant.label in seen:
            place = label_value.where if label_value is not None else where
            first = seen[variant.label]
            first_text = f"line {first['line']}" if first.get("line") else first["field"]
            raise InputError(f"duplicate variant label '{variant.label}', first at "
                             f"{first_text}", **place,
                             fix="give each variant its own label: 'label: ...'")
        seen[variant.label] = label_value.where if label_value is not None else where
        unique.append(variant)
    return tuple(unique)


def _paper_only(algorithm, params, where, convention, overridden):
    """The convention of a newer schedule: paper; pytorch written for it is an error."""
    if convention == "paper":
        return convention
    if "convention" in params:
        place = params["convention"].where
    elif overridden:
        place = _option("convention")
    else:
        return "paper"                  # the scenario's default convention: not for these
    raise InputError(f"{algorithm} has no pytorch convention (torch.distributed has no "
                     f"averager for it)", **place,
                     fix="leave the convention out of this variant: it follows the paper")


def _newer_parameters(algorithm, params, where, graph, workers):
    """The newer schedules' fields of a variant, checked against the topology."""
    out = {key: params[key].value for key in _NEWER if key in params}
    for key in ("outer_lr", "outer_momentum", "slow_lr", "slow_momentum", "alpha",
                "interval_s"):
        if key in out:
            out[key] = float(out[key])
    if "H_min" in out:
        out["H_min"] = int(out["H_min"])
        H = params["H"].value if "H" in params else 1
        if out["H_min"] > H:
            raise InputError(f"H_min ({out['H_min']}) is above H ({H}): AdaComm only shrinks "
                             "the period", **params["H_min"].where,
                             fix=f"give H_min between 1 and {H}")
    if algorithm == "qsr" and "alpha" not in out:
        written = "--set alpha=0.2" if where["field"] == OVERRIDE_OPTIONS["algorithm"] \
            else "'alpha: 0.2'"
        raise InputError("QSR needs its growth coefficient alpha", **where,
                         fix=f"add e.g. {written}: rounds last max(H, (alpha / lr)^2) steps")
    if "replica" in out:
        levels = list(graph_levels(graph))
        if out["replica"] not in levels:
            hint = did_you_mean(out["replica"], levels)
            raise InputError(f"'{out['replica']}' is not a level of the topology",
                             **params["replica"].where,
                             fix=hint or "name one of its levels: " + ", ".join(levels))
    if algorithm == "gossip":
        name = out.setdefault("graph", "ring")
        place = params["graph"].where if "graph" in params else where
        if name not in GRAPHS:
            hint = did_you_mean(name, GRAPHS)
            raise InputError(f"unknown gossip graph {name!r}", **place,
                             fix=(hint + " " if hint else "") + "choose from: "
                             + ", ".join(GRAPHS))
        try:
            gossip_neighbours(name, cluster_gpus(graph)[0], graph)
        except InputError as err:
            raise InputError(err.message, **place, fix=err.fix) from None
    return out


def _same_run(a, b):
    return all(getattr(a, f.name) == getattr(b, f.name) for f in fields(Variant)
               if f.name != "label")


def _switch_step(params, where, n_train, workers, batch_size):
    """Post-local SGD's switch step, from switch_step or switch_epoch."""
    if "switch_step" in params and "switch_epoch" in params:
        raise InputError("switch_epoch and switch_step are both given",
                         **params["switch_step"].where, fix="keep one of them")
    if "switch_step" in params:
        return int(params["switch_step"].value)
    if "switch_epoch" in params:
        epoch = params["switch_epoch"].value
        return round(epoch * steps_per_epoch(n_train, workers, batch_size))
    if where["field"] == OVERRIDE_OPTIONS["algorithm"]:
        fix = "add --switch-epoch 1 or --switch-step 100"
    else:
        fix = "add 'switch_epoch: 1' (or switch_step) to the variant"
    raise InputError("post-local SGD needs a switch point", **where, fix=fix)


def _derived_label(variant, switch_epoch, period_group_size=None, own_overlap=False):
    """``"local H=4"``, ``"postlocal H=16 after epoch 2"``, ``"minibatch B=128"``,
    ``"hierarchical node=2 rack=4 global=8"``, ``"local H=4 pytorch warmup 10"``,
    ``"diloco H=8 outer_lr=0.5 replica block adamw"``, ``"gossip ring H=8"``,
    ``"minibatch DDP overlap"`` (a variant's own ``overlap``)..."""
    parts = [variant.algorithm]
    if variant.algorithm == "hierarchical" and period_group_size:
        parts.append(" ".join(f"{p}:{g}" for p, g in period_group_size.items()))
    elif variant.algorithm == "hierarchical" and variant.periods:
        parts.append(" ".join(f"{name}={p}" for name, p in variant.periods))
    elif variant.algorithm == "gossip":
        parts.append(variant.graph or "ring")
        if variant.H is not None:
            parts.append(f"H={variant.H}")
    elif variant.algorithm in PARAMETER_ALGORITHMS["H"]:
        parts.append(f"H={variant.H}")
    if variant.algorithm == "hierarchical" and not variant.periods:
        parts.append(f"Hb={variant.Hb}")
    for key in ("outer_lr", "outer_momentum", "slow_lr", "slow_momentum", "alpha", "H_min"):
        if getattr(variant, key) is not None:
            parts.append(f"{key}={getattr(variant, key):g}")
    if variant.interval_s is not None:
        parts.append(f"every {variant.interval_s:g} s")
    if variant.replica is not None:
        parts.append(f"replica {variant.replica}")
    if variant.optimizer is not None:
        parts.append(variant.optimizer.name)
    if variant.algorithm == "postlocal":
        parts.append(f"after epoch {switch_epoch:g}" if switch_epoch is not None
                     else f"after step {variant.switch_step}")
    if variant.batch_size is not None:
        parts.append(f"B={variant.batch_size}")
    if variant.global_sync_delay_s is not None:
        parts.append(f"delay {variant.global_sync_delay_s:g} s")
    if variant.convention != "paper":
        parts.append(variant.convention)
    if variant.warmup_steps:
        parts.append(f"warmup {variant.warmup_steps}")
    default_grads = variant.algorithm == "postlocal"
    if variant.post_local_gradient_allreduce is not None and \
            variant.post_local_gradient_allreduce != default_grads:
        parts.append("block gradients" if variant.post_local_gradient_allreduce
                     else "no block gradients")
    if own_overlap:
        parts.append("DDP overlap" if variant.overlap == "ddp" else "no overlap")
    if variant.fault_policy is not None:
        parts.append(variant.fault_policy)
    return " ".join(parts)


def _pytorch_only(params, convention):
    """warmup_steps and post_local_gradient_allreduce belong to the pytorch convention."""
    if convention == "pytorch":
        return
    for key in ("warmup_steps", "post_local_gradient_allreduce"):
        if key in params:
            fix = ("use algorithm postlocal with switch_step for mini-batch steps first, or "
                   "convention: pytorch") if key == "warmup_steps" else \
                "remove it, or write convention: pytorch"
            raise InputError(f"{key} is a setting of the pytorch convention, and this variant "
                             "follows the paper's", **params[key].where, fix=fix)


def _periods(params, graph, workers):
    """A hierarchical variant's ``((grouping, period), ...)``, innermost first; () for H, Hb."""
    levels = graph_levels(graph)
    given = [key for key in ("periods", "period_group_size") if key in params]
    if not given:
        return ()
    if len(given) == 2 or "H" in params or "Hb" in params:
        other = given[1] if len(given) == 2 else ("H" if "H" in params else "Hb")
        raise InputError(f"{given[0]} and {other} are both given", **params[other].where,
                         fix="give the levels one way: H and Hb, periods, or period_group_size")
    key = given[0]
    spec = params[key].value
    where = params[key].where
    if key == "period_group_size":
        for period in spec:
            if not (_is_int(period) or (isinstance(period, str) and period.isascii()
                                        and period.isdigit())):   # "2": a YAML or JSON key
                raise InputError(f"a period is a whole number of steps, got {period!r}", **where,
                                 fix="write e.g. {2: 2, 8: 16}: period -> group size")
        try:
            return resolve_group_sizes(list(spec.items()), level_sizes=level_sizes(graph),
                                       workers=workers)
        except InputError as err:
            raise InputError(err.message, **where, fix=err.fix) from None
    known = list(levels) + [GLOBAL]
    for name in spec:
        if name not in known:
            hint = did_you_mean(name, known)
            raise InputError(f"'{name}' is not a level of the topology", **where,
                             fix=hint or "name levels of the topology: " + ", ".join(known))
    ordered = [(name, int(spec[name])) for name in known if name in spec]
    if ordered[-1][0] != GLOBAL:
        raise InputError("the levels must end with global", **where,
                         fix=f"add 'global: {ordered[-1][1] * 2}': a hierarchy averages over "
                             "all GPUs at its top")
    for (inner, p0), (outer, p1) in zip(ordered, ordered[1:]):
        if not p1 > p0:
            raise InputError(f"periods must grow outward, but {outer} ({p1}) is not longer "
                             f"than {inner} ({p0})", **where,
                             fix="give each level a longer period than the one inside it")
    return tuple(ordered)
