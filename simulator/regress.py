"""Regression checks: run a suite of scenarios and compare every metric with a baseline.

A *suite* (YAML, ``simulator/schemas/regress.schema.json``, docs/regress.md) lists scenarios
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
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from threadpoolctl import threadpool_limits

from .errors import InputError
from .runner import load_workload, run_variant
from .scenario import OVERRIDE_OPTIONS, scenario_from_data
from .yamlfile import Places, format_field, load_schema, load_yaml, validate_schema

__all__ = [
    "FORMAT_VERSION", "EXACT", "Tolerance", "SuiteEntry", "Suite", "RunResult", "Row",
    "RunOutcome", "ScenarioOutcome", "Comparison", "load_suite", "run_suite", "record_metrics",
    "baseline_document", "read_baseline", "write_baseline", "compare", "format_rows",
    "verdict", "junit_xml", "markdown_summary", "update_command", "write_text", "check_suite",
]

FORMAT_VERSION = 1
"""Version of the suite format and of the baseline layout; a baseline of another version is
refused (exit 2) with the command that regenerates it."""

BASELINE_FORMAT = "sgdsim-regress-baseline"
DEFAULT_SUITE = os.path.join("scenarios", "regress.yaml")
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
        if _is_number(baseline) and _is_number(now):
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


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- the suite
@dataclass(frozen=True)
class SuiteEntry:
    """One scenario of a suite, loaded and checked."""

    name: str                      # unique in the suite; the baseline's key
    scenario: object               # simulator.scenario.Scenario (overrides applied)
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
        The suite YAML file.
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
    file = str(path)
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
    if "topology" in overrides:
        written = overrides["topology"]
        resolved = written if os.path.isabs(written) else \
            os.path.normpath(os.path.join(base_dir, written))
        if not os.path.exists(resolved):
            raise InputError(f"no such topology file '{written}' (looked for {resolved})",
                             **at(where + ("overrides", "topology")),
                             fix="check the path; it is relative to the suite file's directory")
        overrides["topology"] = resolved
    scenario_spec = spec["scenario"]
    try:
        if isinstance(scenario_spec, str):
            source = scenario_spec
            scenario_file = scenario_spec if os.path.isabs(scenario_spec) else \
                os.path.normpath(os.path.join(base_dir, scenario_spec))
            if not os.path.exists(scenario_file):
                raise InputError(f"no such scenario file '{scenario_spec}' "
                                 f"(looked for {scenario_file})", **at(where + ("scenario",)),
                                 fix="check the path; it is relative to the suite file's "
                                     "directory")
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


def write_text(path, text):
    """Write `text` to `path` atomically (a temporary file beside it, then a rename)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        out.write(text)
    os.replace(tmp, path)


def write_baseline(path, document):
    """Write a baseline atomically, with sorted keys: the same results give the same bytes."""
    write_text(path, json.dumps(document, indent=1, sort_keys=True, allow_nan=False) + "\n")


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
    try:
        with open(file, encoding="utf-8") as stream:
            doc = json.load(stream)
    except FileNotFoundError:
        raise InputError("no such baseline", file=file,
                         fix=f"create it with: {command}") from None
    except json.JSONDecodeError as err:
        raise InputError(f"JSON syntax error: {err.msg}", file=file, line=err.lineno,
                         fix=fix) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the baseline: {err}", file=file, fix=fix) from None
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
                                          f"{_plural(len(runs), 'run')}", None, "NEW")))
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
            row=Row(name, "*", "-", _plural(len(runs), "run"), "absent", None, "REMOVED")))
    return Comparison(outcomes)


def _whole_run(scenario, label, status, metrics, wall_s):
    count = _plural(len(metrics), "metric")
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
        if type(old) is type(now) and old == now or \
                (_is_number(old) and _is_number(now) and old == now):
            continue
        tolerance = entry.tolerances.get(metric, EXACT)
        status = "ok" if tolerance.allows(old, now) else "FAIL"
        outcome.rows.append(Row(entry.name, run.label, metric, old, now, tolerance, status))
    return outcome


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------- reports
def _value_text(value, other=None):
    """A metric value for a table; floats to 6 digits unless that would hide a change."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        short = f"{value:.6g}"
        if _is_number(other) and other != value and short == f"{other:.6g}":
            return repr(value)
        return short
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _change_text(row):
    old, now = row.baseline, row.now
    if not (_is_number(old) and _is_number(now)):
        return "-"
    if old == 0:
        return "0%" if now == 0 else "n/a"
    change = (now - old) / abs(old) * 100
    return f"{change:+.3g}%"


_HEADER = ("run", "metric", "baseline", "now", "change", "tolerance", "status")


def _cells(row):
    run = row.scenario if row.run == "*" else f"{row.scenario} / {row.run}"
    return (run, row.metric, _value_text(row.baseline, row.now),
            _value_text(row.now, row.baseline), _change_text(row),
            "" if row.tolerance is None else str(row.tolerance), row.status)


def format_rows(rows):
    """A fixed-width table of differences (one line per row), or "" for none."""
    if not rows:
        return ""
    table = [_HEADER] + [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_HEADER))]
    right = {2, 3, 4}
    lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
             for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(comparison, command=None):
    """The one-line verdict: ``PASS: ...`` or ``FAIL: ...`` (with the accepting command)."""
    runs = comparison.runs
    n_scenarios = len(comparison.scenarios)
    if comparison.passed:
        compared = sum(run.compared for run in runs)
        moved = sum(1 for row in comparison.rows if row.status == "ok")
        return (f"PASS: {_plural(len(runs), 'run')} in {_plural(n_scenarios, 'scenario')} "
                f"match the baseline ({_plural(compared, 'metric')} compared, "
                f"{moved} moved within tolerance)")
    failed = sum(1 for run in runs if run.failed)
    text = f"FAIL: {failed} of {_plural(len(runs), 'run')} differ from the baseline: " \
        + _differences(comparison)
    if command:
        text += f"; if intended, accept with: {command}"
    return text


def _differences(comparison):
    """``"2 metrics outside tolerance, 1 run not in the baseline"``, or ``"none"``."""
    rows = comparison.rows
    count = {status: 0 for status in STATUSES}
    for row in rows:
        count[row.status] += 1
    run_level = {status: sum(1 for row in rows if row.status == status and row.metric == "-"
                             and row.run != "*") for status in ("NEW", "REMOVED")}
    metric_level = {status: sum(1 for row in rows if row.status == status and row.metric
                                not in ("-", "inputs")) for status in ("NEW", "REMOVED")}
    scenario_level = {status: sum(1 for row in rows if row.status == status and row.run == "*")
                      for status in ("NEW", "REMOVED")}
    parts = []
    if count["FAIL"]:
        parts.append(f"{_plural(count['FAIL'], 'metric')} outside tolerance")
    if count["STALE"]:
        parts.append(f"inputs changed in {_plural(count['STALE'], 'scenario')}")
    if scenario_level["NEW"]:
        parts.append(f"{_plural(scenario_level['NEW'], 'scenario')} not in the baseline")
    if scenario_level["REMOVED"]:
        parts.append(f"{_plural(scenario_level['REMOVED'], 'scenario')} no longer in the "
                     "suite")
    if run_level["NEW"]:
        parts.append(f"{_plural(run_level['NEW'], 'run')} not in the baseline")
    if run_level["REMOVED"]:
        parts.append(f"{_plural(run_level['REMOVED'], 'run')} no longer in the suite")
    if metric_level["NEW"]:
        parts.append(f"{_plural(metric_level['NEW'], 'metric')} not in the baseline")
    if metric_level["REMOVED"]:
        parts.append(f"{_plural(metric_level['REMOVED'], 'metric')} no longer reported")
    if count["ok"]:
        parts.append(f"{_plural(count['ok'], 'metric')} moved within tolerance")
    return ", ".join(parts) or "none"


def _run_message(run, scenario):
    """A run's failure in one line, naming each metric."""
    parts = []
    if run.stale:
        parts.append(f"inputs changed since the baseline ({scenario.row.baseline} -> "
                     f"{scenario.row.now})")
    for row in run.failures:
        if row.status == "NEW" and row.metric == "-":
            parts.append("not in the baseline")
        elif row.status == "REMOVED" and row.metric == "-":
            parts.append("in the baseline but no longer in the suite")
        elif row.status in ("NEW", "REMOVED"):
            side = "not in the baseline" if row.status == "NEW" else "no longer reported"
            parts.append(f"{row.metric}: {side}")
        else:
            cells = _cells(row)
            parts.append(f"{row.metric}: {cells[2]} -> {cells[3]} ({cells[4]}, "
                         f"tolerance {cells[5]})")
    return "; ".join(parts)


def junit_xml(comparison, *, name="sgdsim regress"):
    """JUnit XML: one ``testsuite`` per scenario, one ``testcase`` per run.

    A run fails when any of its metrics is outside tolerance, its scenario's inputs changed,
    or it is on one side only; the failure's message names every such metric. So the
    testcases are the runs of the suite plus those of the baseline no longer in it.
    """
    runs = comparison.runs
    root = ET.Element("testsuites", name=name, tests=str(len(runs)),
                      failures=str(sum(1 for run in runs if run.failed)), errors="0",
                      time=f"{sum(run.wall_s for run in runs):.3f}")
    for scenario in comparison.scenarios:
        suite = ET.SubElement(root, "testsuite", name=scenario.name,
                              tests=str(len(scenario.runs)),
                              failures=str(sum(1 for run in scenario.runs if run.failed)),
                              errors="0", skipped="0",
                              time=f"{sum(run.wall_s for run in scenario.runs):.3f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="scenario", value=str(scenario.source))
        for run in scenario.runs:
            case = ET.SubElement(suite, "testcase", classname=f"regress.{scenario.name}",
                                 name=run.run, time=f"{run.wall_s:.3f}")
            if run.failed:
                failure = ET.SubElement(case, "failure", type="regression",
                                        message=_run_message(run, scenario))
                rows = ([scenario.row] if scenario.row is not None else []) + run.rows
                failure.text = format_rows(rows)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _markdown_table(rows):
    def cell(text):
        return text.replace("|", "\\|")
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    for row in rows:
        cells = list(_cells(row))
        cells[1] = f"`{cells[1]}`"
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(lines)


def markdown_summary(comparison, *, suite=None, command=None):
    """A Markdown summary a CI system can post: the verdict, then the table of failures."""
    mark = "✅" if comparison.passed else "❌"
    where = f" (`{suite}`)" if suite else ""
    lines = [f"### {mark} sgdsim regress{where}", "", f"**{verdict(comparison)}**", ""]
    failing = [row for row in comparison.rows if row.failed]
    moved = [row for row in comparison.rows if not row.failed]
    if failing:
        lines += [_markdown_table(failing), ""]
    if moved:
        lines += [f"<details><summary>{_plural(len(moved), 'metric')} moved within "
                  "tolerance</summary>", "", _markdown_table(moved), "", "</details>", ""]
    if failing and command:
        lines += [f"If these changes are intended, accept them with `{command}` and commit "
                  "the baseline.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the command
def check_suite(suite_path=None, *, baseline=None, update=False, junit=None, markdown=None,
                echo=print, note=None):
    """The body of ``sgdsim regress``: run a suite, compare or update, report.

    Parameters
    ----------
    suite_path : str, optional
        The suite file; default ``scenarios/regress.yaml`` (relative to the current directory).
    baseline : str, optional
        The baseline file in place of the suite's.
    update : bool
        Rewrite the baseline with the fresh results (after printing what changed) instead of
        checking them; always returns 0.
    junit, markdown : str, optional
        Files to write the JUnit XML report and the Markdown summary to (checking only).
    echo : callable
        Prints one line of the report (stdout).
    note : callable, optional
        Prints one line of progress (stderr); None for none.

    Returns
    -------
    int
        0 when every run is within tolerance (or after an update), 1 when anything differs.

    Raises
    ------
    InputError
        Bad suite, scenario or baseline, or no baseline yet (exit status 2 from the CLI).
    """
    suite = load_suite(DEFAULT_SUITE if suite_path is None else suite_path, baseline)
    command = update_command(suite_path, baseline)
    old = None
    if not update:
        old = read_baseline(suite.baseline_path, command=command)   # before running anything
    elif os.path.exists(suite.baseline_path):
        try:
            old = read_baseline(suite.baseline_path, command=command)
        except InputError as err:
            echo(f"not comparing with the old baseline ({err.message}): replacing it")

    def progress(entry, runs):
        if note is not None:
            note(f"{entry.name}: {_plural(len(runs), 'run')} in "
                 f"{sum(run.wall_s for run in runs):.1f} s")

    results = run_suite(suite, progress=progress)
    if update:
        document = baseline_document(suite, results)
        if old is not None:
            comparison = compare(suite, results, old)
            echo(format_rows(comparison.rows) or "nothing moved: the results equal the old "
                                                 "baseline")
            echo(f"changes from the old baseline: {_differences(comparison)}")
        write_baseline(suite.baseline_path, document)
        runs = sum(len(s["runs"]) for s in document["scenarios"].values())
        echo(f"wrote {suite.baseline_path}: {_plural(len(suite.entries), 'scenario')}, "
             f"{_plural(runs, 'run')}")
        return 0
    comparison = compare(suite, results, old)
    echo(format_rows(comparison.rows) or "nothing moved: every metric equals the baseline")
    echo(verdict(comparison, command))
    if junit:
        write_text(junit, junit_xml(comparison))
    if markdown:
        write_text(markdown, markdown_summary(comparison, suite=suite.path, command=command))
    return 0 if comparison.passed else 1
