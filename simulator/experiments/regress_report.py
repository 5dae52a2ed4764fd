"""Reports of a regression check, and the ``sgdsim regress`` command's body.

Plain comparisons in (:class:`simulator.experiments.regress.Comparison`), text out: a fixed-width table
of what moved, a one-line verdict, JUnit XML (one test suite per scenario, one test case per
run) and a Markdown summary for a CI system to post. :func:`check_suite` runs a suite and
writes these; see :mod:`simulator.experiments.regress` for statuses and tolerances.
"""

import os
import xml.etree.ElementTree as ET

from ..utils.errors import InputError
from ..utils.files import check_output, write_text_atomic
from ..utils.shipped import is_installed_copy, is_shipped
from .regress import (
    BASELINE_FORMAT,
    DEFAULT_SUITE,
    STATUSES,
    baseline_document,
    compare,
    is_number,
    load_suite,
    plural,
    read_baseline,
    run_suite,
    update_command,
    write_baseline,
)

__all__ = ["format_rows", "verdict", "junit_xml", "markdown_summary", "check_suite"]


def _value_text(value, other=None):
    """A metric value for a table; floats to 6 digits unless that would hide a change."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        short = f"{value:.6g}"
        if is_number(other) and other != value and short == f"{other:.6g}":
            return repr(value)
        return short
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _change_text(row):
    old, now = row.baseline, row.now
    if not (is_number(old) and is_number(now)):
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
        return (f"PASS: {plural(len(runs), 'run')} in {plural(n_scenarios, 'scenario')} "
                f"match the baseline ({plural(compared, 'metric')} compared, "
                f"{moved} moved within tolerance)")
    failed = sum(1 for run in runs if run.failed)
    text = f"FAIL: {failed} of {plural(len(runs), 'run')} differ from the baseline: " \
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
    phrases = [
        (count["FAIL"], "metric", "{} outside tolerance"),
        (count["STALE"], "scenario", "inputs changed in {}"),
        (scenario_level["NEW"], "scenario", "{} not in the baseline"),
        (scenario_level["REMOVED"], "scenario", "{} no longer in the suite"),
        (run_level["NEW"], "run", "{} not in the baseline"),
        (run_level["REMOVED"], "run", "{} no longer in the suite"),
        (metric_level["NEW"], "metric", "{} not in the baseline"),
        (metric_level["REMOVED"], "metric", "{} no longer reported"),
        (count["ok"], "metric", "{} moved within tolerance"),
    ]
    parts = [text.format(plural(n, noun)) for n, noun, text in phrases if n]
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
        lines += [f"<details><summary>{plural(len(moved), 'metric')} moved within "
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
    for path, option in ((junit, "--junit"), (markdown, "--markdown")):
        if path is not None:
            check_output(path, field=option, what="a report")     # before running anything
    suite = load_suite(DEFAULT_SUITE if suite_path is None else suite_path, baseline)
    command = update_command(suite_path, baseline)
    if update and is_installed_copy() and is_shipped(suite.baseline_path):
        raise InputError("the shipped suite's baseline belongs to the installed package",
                         file=suite.path, field="baseline",
                         fix="copy the suite out (sgdsim scenario copy regress DIR) and run "
                             "'sgdsim regress DIR/regress.yaml --update' there")
    old = None
    if not update:
        old = read_baseline(suite.baseline_path, command=command)   # before running anything
    else:
        old = _replaceable_baseline(suite, command, echo)
        check_output(suite.baseline_path, field="baseline", what="a baseline",
                     stdout_ok=False)

    def progress(entry, runs):
        if note is not None:
            note(f"{entry.name}: {plural(len(runs), 'run')} in "
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
        echo(f"wrote {suite.baseline_path}: {plural(len(suite.entries), 'scenario')}, "
             f"{plural(runs, 'run')}")
        return 0
    comparison = compare(suite, results, old)
    echo(format_rows(comparison.rows) or "nothing moved: every metric equals the baseline")
    echo(verdict(comparison, command))
    if junit:
        write_text_atomic(junit, junit_xml(comparison), field="--junit")
    if markdown:
        write_text_atomic(markdown, markdown_summary(comparison, suite=suite.path, command=command),
                          field="--markdown")
    return 0 if comparison.passed else 1


def _replaceable_baseline(suite, command, echo):
    """The old baseline that ``--update`` will replace (None if there is none).

    ``--update`` replaces only a file that is a baseline: one that does not exist yet, or
    one marked as an sgdsim regress baseline (of any format version, so an old one can be
    regenerated). Any other file at the suite's ``baseline`` path (``../notes.txt``, a
    results file, an absolute path to something else) is refused, not overwritten.
    """
    path = suite.baseline_path
    if not os.path.lexists(path):
        return None
    try:
        return read_baseline(path, command=command)
    except InputError as err:
        if not _is_marked_baseline(path):
            raise InputError(f"is not an sgdsim regress baseline ({err.message}); --update "
                             "replaces only a baseline", file=path, field="baseline",
                             fix=f"point the suite's 'baseline' at a new file (or pass "
                                 f"--baseline NEW.json), or delete {path} yourself if it "
                                 "may go") from None
        echo(f"not comparing with the old baseline ({err.message}): replacing it")
        return None


def _is_marked_baseline(path):
    """True if `path` is a regular JSON file with ``"format": "sgdsim-regress-baseline"``."""
    import json

    from ..utils.files import read_text_input

    try:
        doc = json.loads(read_text_input(path))
    except (InputError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == BASELINE_FORMAT
