"""Regression checks: run a suite of scenarios and compare every metric with a baseline.

A *suite* (YAML, ``schemas/regress.schema.json``, docs/regress.md) lists scenarios
(files or inline, with ``load_scenario`` overrides) and per-metric tolerances. Every variant
of every scenario is one *run*; a run's *metrics* are the scalar fields of its results
record, flattened with dotted names (``simulated_time_s``, ``comm_bytes.inter_block``,
``syncs.global``, ``timing.message_bytes``, ...; the curve and the label are not metrics).

The *baseline* (JSON, written by :func:`write_baseline`) holds, per scenario, a fingerprint of
its inputs and, per run, its metrics. :func:`compare` matches a fresh run of the suite with
it and gives one status per difference:

``ok``
    moved, but within the metric's tolerance (shown, does not fail);
``FAIL``
    outside the tolerance; a null on one side only (a target no longer, or newly, reached)
    is always outside;
``STALE``
    the scenario's inputs (scenario data, overrides, topology) differ from the baseline's;
``NEW`` / ``REMOVED``
    a scenario, run or metric present on one side only (the suite changed).

Every status but ``ok`` fails the check until ``sgdsim regress SUITE --update`` records the
new results. Tolerances: ``|now - baseline| <= abs + rel * |baseline|``, exact (0, 0) unless
the suite says otherwise; booleans, strings and nulls are always compared exactly.

"Exact" means equal up to float noise: two floats whose relative difference is at most
:data:`FLOAT_NOISE_REL` (1e-12, about 4,500 units in the last place) are the same value and
are not reported. Such differences come from the order of floating-point sums (another numpy
build, CPU or library version), never from the simulation; the smallest change anyone could
mean, one nanosecond in a run of 100 s, is 1e-11, ten times the floor. Integers (counts)
are compared exactly.

The reports (table, JUnit XML, Markdown) and the command itself live in
:mod:`simulator.experiments.regress_report`.

Simulated timings and bytes do not depend on floating-point training results (only
time-to-accuracy does, through the step at which the target is crossed), so they are
compared exactly by default; the suite is run with one BLAS thread
(``threadpoolctl.threadpool_limits(1)``) so that no result depends on the machine's thread
count.
"""

import hashlib
import json
import numbers
import os
import time
from dataclasses import dataclass, field

from threadpoolctl import threadpool_limits

from ..utils.errors import InputError
from ..utils.files import read_text_input, write_text_atomic
from ..utils.shipped import resolve
from ..utils.yamlfile import (
    Places,
    format_field,
    load_schema,
    load_yaml,
    validate_schema,
)
from .runner import load_workload, run_variant
from .scenario import OVERRIDE_OPTIONS, scenario_from_data

__all__ = [
    "FORMAT_VERSION", "EXACT", "Tolerance", "SuiteEntry", "Suite", "RunResult", "Row",
    "RunOutcome", "ScenarioOutcome", "Comparison", "load_suite", "run_suite", "record_metrics",
    "baseline_document", "read_baseline", "write_baseline", "compare", "update_command",
    "is_number", "same_value", "plural", "DEFAULT_SUITE", "FLOAT_NOISE_REL",
]

FORMAT_VERSION = 1
"""Version of the suite format and of the baseline layout; a baseline of another version is
refused (exit 2) with the command that regenerates it."""

BASELINE_FORMAT = "sgdsim-regress-baseline"
FLOAT_NOISE_REL = 1e-12
"""Relative difference below which two floats are the same value (see the module docstring)."""
DEFAULT_SUITE = "regress"
"""The suite ``sgdsim regress`` runs without one: the shipped ``scenarios/regress.yaml``."""
# Not metrics: the run's key, the learning curve, and the cost profile's prose provenance.
_NOT_METRICS = ("label", "curve", "timing.source")


# --------------------------------------------------------------------------- tolerances
@dataclass(frozen=True)
class Tolerance:
    """How far a metric may move: ``|now - baseline| <= abs + rel * |baseline|``."""

    abs: float = 0.0               # in the metric's own unit
    rel: float = 0.0               # fraction of |baseline|

    def allows(self, baseline, now):
        """True if `now` is within this tolerance of `baseline` (exact for non-numbers)."""
        if same_value(baseline, now):
            return True
        if is_number(baseline) and is_number(now):
            allowed = self.abs + self.rel * abs(baseline)
            # inclusive, and 0.90 - 0.88 (0.0200000000000000018) is within abs: 0.02
            return abs(now - baseline) <= allowed * (1 + 1e-9)
        return type(baseline) is type(now) and baseline == now

    def __str__(self):
        parts = []
        if self.abs:
            parts.append(f"±{self.abs:g}")
        if self.rel:
            parts.append(f"{'+' if parts else '±'}{self.rel * 100:g}%")
        return "".join(parts) or "exact"


EXACT = Tolerance()


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def same_value(old, now):
    """True if `old` and `now` are equal, floats up to :data:`FLOAT_NOISE_REL`.

    Examples
    --------
    >>> same_value(0.1 + 0.2, 0.3), same_value(0.3, 0.3000001), same_value(3, 3.0)
    (True, False, True)
    """
    if type(old) is type(now) and old == now or (is_number(old) and is_number(now)
                                                  and old == now):
        return True
    if isinstance(old, float) and isinstance(now, float):
        return abs(now - old) <= FLOAT_NOISE_REL * max(abs(old), abs(now))
    return False


# --------------------------------------------------------------------------- the suite
@dataclass(frozen=True)
class SuiteEntry:
    """One scenario of a suite, loaded and checked."""

    name: str                      # unique in the suite; the baseline's key
    scenario: object               # simulator.experiments.scenario.Scenario (overrides applied)
    source: str                    # the scenario file as written in the suite, or "inline"
    tolerances: dict               # metric -> Tolerance (suite's, then the entry's)
    fingerprint: str               # sha256 of the scenario's inputs (see _fingerprint)


@dataclass(frozen=True)
class Suite:
    """A checked suite: where it is, where its baseline is, its scenarios."""

    path: str
    baseline_path: str
    entries: tuple                 # of SuiteEntry, in the suite's order


def load_suite(path, baseline=None):
    """Read and check a suite file and every scenario it names; nothing is run.

    Parameters
    ----------
    path : str or os.PathLike
        The suite YAML file, or the name of a shipped suite (``regress``).
    baseline : str or os.PathLike, optional
        The baseline file, in place of the suite's ``baseline`` (relative to the current
        directory). Default: the suite's ``baseline`` relative to the suite's directory, or
        the suite's file name with ``_baseline.json`` in place of its extension.

    Returns
    -------
    Suite

    Raises
    ------
    InputError
        The first problem, located in the suite file (or in a scenario file it names).
    """
    file = resolve("scenarios", os.fspath(path), missing_ok=True)    # or a shipped suite's name
    data, locate = load_yaml(file)
    at = Places(file, locate)
    if not isinstance(data, dict):
        raise InputError(f"a suite is a mapping of keys, got {type(data).__name__}", **at(()),
                         fix="write e.g. 'scenarios: [{name: seed, scenario: default.yaml}]'")
    validate_schema(data, load_schema("regress"), file=file, locate=locate)
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise InputError(f"suite format version {version} is not one this sgdsim reads",
                         **at(("version",)), fix=f"write version: {FORMAT_VERSION}")
    base_dir = os.path.dirname(file) or "."
    if baseline is None:
        written = data.get("baseline",
                           os.path.splitext(os.path.basename(file))[0] + "_baseline.json")
        baseline = os.path.normpath(os.path.join(os.path.dirname(file), written))
    suite_tolerances = _tolerances(data.get("tolerances", {}))
    entries, seen = [], {}
    for index, spec in enumerate(data["scenarios"]):
        where = ("scenarios", index)
        name = spec["name"]
        if name in seen:
            raise InputError(f"duplicate scenario name '{name}', first at {at.text(seen[name])}",
                             **at(where + ("name",)), fix="give every scenario its own name")
        seen[name] = where + ("name",)
        tolerances = {**suite_tolerances, **_tolerances(spec.get("tolerances", {}))}
        entries.append(_entry(spec, where, at, base_dir, tolerances))
    return Suite(path=file, baseline_path=str(baseline), entries=tuple(entries))


def _tolerances(spec):
    return {metric: Tolerance(abs=float(t.get("abs", 0.0)), rel=float(t.get("rel", 0.0)))
            for metric, t in spec.items()}


_OPTION_KEYS = {option: key for key, option in OVERRIDE_OPTIONS.items()}


def _entry(spec, where, at, base_dir, tolerances):
    """Load one suite entry's scenario, its errors located in the suite where they belong."""
    overrides = dict(spec.get("overrides", {}))
    relative_to = "the suite file's directory"
    if "topology" in overrides:
        overrides["topology"] = resolve("topologies", overrides["topology"], base_dir,
                                        relative_to=relative_to,
                                        **at(where + ("overrides", "topology")))
    scenario_spec = spec["scenario"]
    try:
        if isinstance(scenario_spec, str):
            source = scenario_spec
            scenario_file = resolve("scenarios", scenario_spec, base_dir,
                                    relative_to=relative_to, **at(where + ("scenario",)))
            data, locate = load_yaml(scenario_file)
            scenario = scenario_from_data(data, file=scenario_file, locate=locate,
                                          base_dir=os.path.dirname(scenario_file) or ".",
                                          overrides=overrides)
        else:
            source, data = "inline", scenario_spec
            inner = None if at.locate is None else \
                (lambda path: at.locate(where + ("scenario",) + tuple(path)))
            scenario = scenario_from_data(data, file=at.file, locate=inner, base_dir=base_dir,
                                          overrides=overrides, name=spec["name"])
    except InputError as err:
        raise _located(err, spec, where, at) from None
    fingerprint = _fingerprint(data, spec.get("overrides", {}), scenario)
    return SuiteEntry(name=spec["name"], scenario=scenario, source=source,
                      tolerances=tolerances, fingerprint=fingerprint)


def _located(err, spec, where, at):
    """`err` with an override's option (``-H``) or an inline scenario's field put in the suite."""
    if err.file is None and err.field in _OPTION_KEYS:
        key = _OPTION_KEYS[err.field]
        path = where + ("overrides", key) if key in spec.get("overrides", {}) else where
        return InputError(err.message.replace(err.field, key), **at(path))
    if err.file == at.file and not isinstance(spec["scenario"], str):
        prefix = format_field(where + ("scenario",))
        field_ = f"{prefix}.{err.field}" if err.field else prefix
        return InputError(err.message, file=err.file, line=err.line, field=field_, fix=err.fix)
    return err


def _canonical(value):
    """Stable text of plain data (sorted keys, shortest float repr)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=True)


def _fingerprint(data, overrides, scenario):
    """sha256 of what a scenario's results depend on besides the code.

    The scenario's data as written (parsed YAML: comments and formatting do not count), the
    suite's overrides as written, the loaded topology graph (so a topology *file* counts,
    not only its path) and, for ``npz:`` data, the file's bytes.
    """
    graph = scenario.topology
    nodes = sorted([str(n), attrs] for n, attrs in graph.nodes(data=True))
    links = sorted([*sorted((str(u), str(v))), attrs] for u, v, attrs in graph.edges(data=True))
    payload = {"format": FORMAT_VERSION, "scenario": data, "overrides": overrides,
               "topology": {"graph": dict(graph.graph), "nodes": nodes, "links": links}}
    dataset = scenario.workload.dataset
    if dataset.startswith("npz:"):
        with open(dataset[len("npz:"):], "rb") as stream:
            payload["npz_sha256"] = hashlib.sha256(stream.read()).hexdigest()
    return hashlib.sha256(_canonical(payload).encode("ascii")).hexdigest()


# --------------------------------------------------------------------------- running
@dataclass(frozen=True)
class RunResult:
    """One run of a suite scenario: its label, its metrics and the wall-clock it took."""

    label: str
    metrics: dict                  # dotted metric name -> bool | int | float | str | None
    wall_s: float                  # real seconds (reports only; never in the baseline)


def record_metrics(record):
    """The metrics of a results record: its scalar fields, flattened with dotted names.

    Lists (the curve), the label and ``timing.source`` (prose naming where the cost profile's
    numbers come from) are left out; numpy scalars become Python numbers.

    Examples
    --------
    >>> record_metrics({"label": "x", "steps": 3, "syncs": {"block": 0, "global": 3},
    ...                 "curve": [[0.1, 1, 0.5, 2.0]]})
    {'steps': 3, 'syncs.block': 0, 'syncs.global': 3}
    """
    metrics = {}

    def walk(prefix, value):
        if prefix in _NOT_METRICS:
            return
        if isinstance(value, dict):
            for key in sorted(value):
                walk(f"{prefix}.{key}", value[key])
        elif not isinstance(value, (list, tuple)):
            metrics[prefix] = _plain(value)

    for key in sorted(record):
        walk(key, record[key])
    return metrics


def _plain(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if type(value).__name__ == "bool_":                  # numpy.bool_
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def run_suite(suite, *, progress=None):
    """Run every variant of every scenario of `suite`, with one BLAS thread.

    Parameters
    ----------
    suite : Suite
    progress : callable, optional
        ``progress(entry, results)`` after each scenario.

    Returns
    -------
    dict
        Scenario name -> list of :class:`RunResult`, in the scenario's variant order.
    """
    results = {}
    with threadpool_limits(limits=1):
        for entry in suite.entries:
            workload = load_workload(entry.scenario)
            runs = []
            for variant in entry.scenario.variants:
                start = time.perf_counter()
                record = run_variant(entry.scenario, variant, workload=workload)
                runs.append(RunResult(variant.label, record_metrics(record),
                                      time.perf_counter() - start))
            results[entry.name] = runs
            if progress is not None:
                progress(entry, runs)
    return results


# --------------------------------------------------------------------------- baseline file
def baseline_document(suite, results):
    """The baseline file's content: per scenario its fingerprint and its runs' metrics."""
    return {
        "format": BASELINE_FORMAT,
        "format_version": FORMAT_VERSION,
        "scenarios": {
            entry.name: {"scenario": entry.source, "fingerprint": entry.fingerprint,
                         "runs": {run.label: run.metrics for run in results[entry.name]}}
            for entry in suite.entries},
    }


def write_baseline(path, document):
    """Write a baseline atomically, with sorted keys: the same results give the same bytes."""
    write_text_atomic(path, json.dumps(document, indent=1, sort_keys=True, allow_nan=False) + "\n")


def read_baseline(path, *, command):
    """Read and check a baseline file.

    Parameters
    ----------
    path : str
    command : str
        The command that writes it (:func:`update_command`), named in every error.

    Raises
    ------
    InputError
        Missing, not JSON, not a baseline, or of another format version.
    """
    file = str(path)
    fix = f"regenerate it with: {command}"
    if not os.path.lexists(file):
        raise InputError("no such baseline", file=file, fix=f"create it with: {command}")
    try:
        doc = json.loads(read_text_input(file))
    except json.JSONDecodeError as err:
        raise InputError(f"JSON syntax error: {err.msg}", file=file, line=err.lineno,
                         fix=fix) from None
    except RecursionError:
        raise InputError("not an sgdsim regress baseline (nested too deeply)", file=file,
                         fix=fix) from None
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise InputError("not an sgdsim regress baseline", file=file, fix=fix)
    if doc.get("format_version") != FORMAT_VERSION:
        raise InputError(f"stale baseline: written in format version "
                         f"{doc.get('format_version')!r}, this sgdsim reads version "
                         f"{FORMAT_VERSION}", file=file, fix=fix)
    scenarios = doc.get("scenarios")
    ok = isinstance(scenarios, dict) and all(
        isinstance(s, dict) and isinstance(s.get("fingerprint"), str)
        and isinstance(s.get("runs"), dict)
        and all(isinstance(m, dict) for m in s["runs"].values())
        for s in scenarios.values())
    if not ok:
        raise InputError("malformed baseline: each scenario needs a fingerprint and runs of "
                         "metrics", file=file, fix=fix)
    return doc


def update_command(suite_arg=None, baseline_arg=None):
    """The command that (re)writes the baseline, as the user would type it."""
    import shlex

    words = ["sgdsim", "regress"]
    if suite_arg is not None:
        words.append(shlex.quote(str(suite_arg)))
    if baseline_arg is not None:
        words += ["--baseline", shlex.quote(str(baseline_arg))]
    return " ".join(words + ["--update"])


# --------------------------------------------------------------------------- comparing
STATUSES = ("ok", "FAIL", "STALE", "NEW", "REMOVED")


@dataclass(frozen=True)
class Row:
    """One difference between a run and its baseline (one line of the table)."""

    scenario: str
    run: str                       # the run's label; "*" for the whole scenario
    metric: str                    # dotted metric; "inputs" (fingerprint); "-" (whole run)
    baseline: object               # the baseline's value (or a description such as "absent")
    now: object
    tolerance: Tolerance | None
    status: str                    # one of STATUSES

    @property
    def failed(self):
        return self.status != "ok"


@dataclass
class RunOutcome:
    """One run compared: its differences and the number of metrics compared."""

    scenario: str
    run: str
    rows: list = field(default_factory=list)
    compared: int = 0
    wall_s: float = 0.0
    stale: bool = False            # its scenario's inputs changed

    @property
    def failures(self):
        return [row for row in self.rows if row.failed]

    @property
    def failed(self):
        return self.stale or bool(self.failures)


@dataclass
class ScenarioOutcome:
    """One scenario compared: a STALE/NEW/REMOVED row of its own, and its runs."""

    name: str
    source: str
    runs: list                     # of RunOutcome
    row: Row | None = None         # scenario-wide row (STALE, NEW or REMOVED), if any

    @property
    def failed(self):
        return self.row is not None or any(run.failed for run in self.runs)


@dataclass
class Comparison:
    """A suite's results against a baseline."""

    scenarios: list                # of ScenarioOutcome: the suite's order, then removed ones

    @property
    def runs(self):
        return [run for scenario in self.scenarios for run in scenario.runs]

    @property
    def rows(self):
        """Every difference, scenario-wide rows first in each scenario."""
        rows = []
        for scenario in self.scenarios:
            if scenario.row is not None:
                rows.append(scenario.row)
            for run in scenario.runs:
                rows.extend(run.rows)
        return rows

    @property
    def passed(self):
        return not any(scenario.failed for scenario in self.scenarios)


def compare(suite, results, baseline):
    """Compare fresh results of `suite` with a baseline document.

    Parameters
    ----------
    suite : Suite
    results : dict
        From :func:`run_suite`.
    baseline : dict
        From :func:`read_baseline` (or :func:`baseline_document`).

    Returns
    -------
    Comparison
    """
    old = baseline["scenarios"]
    outcomes = []
    for entry in suite.entries:
        runs = results[entry.name]
        before = old.get(entry.name)
        if before is None:
            outcomes.append(ScenarioOutcome(entry.name, entry.source, [
                _whole_run(entry.name, run.label, "NEW", run.metrics, run.wall_s)
                for run in runs], row=Row(entry.name, "*", "-", "absent",
                                          f"{plural(len(runs), 'run')}", None, "NEW")))
            continue
        stale = before["fingerprint"] != entry.fingerprint
        row = Row(entry.name, "*", "inputs", before["fingerprint"][:12],
                  entry.fingerprint[:12], None, "STALE") if stale else None
        outcome = ScenarioOutcome(entry.name, entry.source, [], row=row)
        for run in runs:
            if run.label not in before["runs"]:
                outcome.runs.append(_whole_run(entry.name, run.label, "NEW", run.metrics,
                                               run.wall_s))
                continue
            compared = _compare_run(entry, run, before["runs"][run.label])
            compared.stale = stale
            outcome.runs.append(compared)
        labels = {run.label for run in runs}
        for label in sorted(set(before["runs"]) - labels):
            outcome.runs.append(_whole_run(entry.name, label, "REMOVED",
                                           before["runs"][label], 0.0))
        outcomes.append(outcome)
    names = {entry.name for entry in suite.entries}
    for name in sorted(set(old) - names):
        runs = old[name]["runs"]
        outcomes.append(ScenarioOutcome(name, old[name].get("scenario", "?"), [
            _whole_run(name, label, "REMOVED", runs[label], 0.0) for label in sorted(runs)],
            row=Row(name, "*", "-", plural(len(runs), "run"), "absent", None, "REMOVED")))
    return Comparison(outcomes)


def _whole_run(scenario, label, status, metrics, wall_s):
    count = plural(len(metrics), "metric")
    baseline, now = ("absent", count) if status == "NEW" else (count, "absent")
    return RunOutcome(scenario, label, [Row(scenario, label, "-", baseline, now, None, status)],
                      wall_s=wall_s)


def _compare_run(entry, run, before):
    outcome = RunOutcome(entry.name, run.label, wall_s=run.wall_s)
    for metric in sorted(set(run.metrics) | set(before)):
        if metric not in before:
            outcome.rows.append(Row(entry.name, run.label, metric, "absent",
                                    run.metrics[metric], None, "NEW"))
            continue
        if metric not in run.metrics:
            outcome.rows.append(Row(entry.name, run.label, metric, before[metric], "absent",
                                    None, "REMOVED"))
            continue
        outcome.compared += 1
        old, now = before[metric], run.metrics[metric]
        if same_value(old, now):                   # equal, or only float noise apart
            continue
        tolerance = entry.tolerances.get(metric, EXACT)
        status = "ok" if tolerance.allows(old, now) else "FAIL"
        outcome.rows.append(Row(entry.name, run.label, metric, old, now, tolerance, status))
    return outcome


def plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"
