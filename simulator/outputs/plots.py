"""Figures of results: scaling, learning curves, time and bytes per run, sweep heatmaps.

Plain records in, matplotlib out, in two steps so that tests check data rather than
pixels: :func:`series_for` turns runs into the data series a figure shows (plain dicts),
and :func:`draw` draws such series into a PNG, SVG or PDF file. :func:`load_runs` reads a
results file of ``sgdsim run -o`` or a sweep's ``runs.jsonl``; :func:`plot_file` does all
three (``sgdsim plot``).

Kinds
-----
``speedup``
    Time-to-accuracy speedup against the number of GPUs (``record["workers"]``), one line
    per variant (algorithm and its H, Hb and global sync delay, e.g. ``local H=4``; plus
    any other swept path that varies at one number of GPUs), with the ideal linear
    speedup; a second panel shows the time-to-accuracy itself. A line's speedup at K GPUs
    is ``T(K0) / T(K)``, where K0 is 1 when the line has a run on 1 GPU that reached the
    target, else its fewest GPUs whose run reached it; the ideal is ``K / K0``. Runs of a
    line at one K that differ only by seed are averaged over those that reached the
    target. A run that never reached the target, diverged or is not learning is not a
    speedup of 0: it is drawn as an ``x`` at the top of the axes, annotated with why, and
    named in the legend; failed sweep runs (no record) are counted in a footnote.
``accuracy``
    Test accuracy against simulated time, one line per run (a step function: an accuracy
    holds until the next evaluation): solid, the model every GPU holds after each global
    sync (``curve``, what time-to-accuracy counts); dotted in the same colour, the virtual
    average of the GPUs' models (``virtual_average_curve``, a diagnostic: no GPU holds it
    between global syncs); dashed, the best model some GPU holds (``best_gpu_curve``, runs
    evaluated with ``any_gpu``). The target is a horizontal line; the time-to-accuracy is
    marked with a dot, a diverged or not-learning run with an ``x`` at its last point.
    When runs' lengths differ more than 20-fold the time axis is logarithmic (and says so).
``comm``
    Per run, stacked bars of the per-GPU mean compute time, communication time per tier
    (``comm_time_by_tier_s``: the syncs of each tier's groups, with any global sync delay)
    and wait time (their sum is about the simulated time, marked), and a second panel of
    the bytes carried per tier (summed over links), each bar labelled with its total.
``tradeoff``
    What each schedule buys with its traffic: per run, its time-to-accuracy (x) against the
    bytes it carried on the outermost tier (y, the slow links: ``inter_block``, or the
    last tier of a nested topology), both on log axes, each point labelled with the run
    and its final accuracy; one panel per point of a sweep (per cluster). A run that did not
    reach the target (diverged, not learning) is an ``x`` at the right edge, saying why.
``heatmap``
    Time-to-accuracy over two swept paths of a sweep (``x`` and ``y``; default the first
    two that vary, in the sweep's order; ``variant``, the variant's label, counts as one
    after them when a point runs several variants), one panel per combination of the
    other swept values. A cell never reached shows
    hatched grey with "not reached" (or "diverged", "not learning", "failed", "missing"),
    never as 0.

``workers``, ``resilience``
    Runs under faults (:mod:`simulator.outputs.fault_plots`): the working GPUs of each run
    over time; and time-to-accuracy and goodput of each variant against a swept fault
    setting (``--x``, e.g. ``faults.random.gpu_mtbf``). Under faults, ``comm`` also stacks
    the checkpoint writes, the time stalled by failures and the time a GPU slot was down,
    and ``accuracy`` marks each run's failures on its curve.

Time axes choose s, ms or us from the data, byte axes B, kB, MB or GB (decimal units, as
everywhere in sgdsim); the unit is in the axis label.
"""

import json
import math
from pathlib import Path

from ..learning.schedules import PARAMETER_DEFAULTS
from ..utils.errors import InputError
from ..utils.files import FIGURE_FORMATS, check_output, read_text_input, write_figure
from . import fault_plots

__all__ = ["KINDS", "FORMATS", "VARIANT", "load_runs", "series_for", "draw", "plot_file", "variant_label"]

KINDS = ("speedup", "accuracy", "comm", "heatmap", "tradeoff", "workers", "resilience")
"""Figure kinds :func:`series_for` and :func:`draw` know."""
FORMATS = FIGURE_FORMATS
"""File name extensions :func:`draw` writes (``-``: PNG on standard output)."""

VARIANT = "variant"
"""The heatmap axis (or panel key) of the variant's label, when a sweep runs several per point."""
_RESULTS_FIX = "give a results JSON of 'sgdsim run -o', a sweep directory or its runs.jsonl"
MISSING_COLOR = "#b0b0b0"
_RECORDED = ("ok", "diverged", "not_learning")    # sweep statuses of runs with a record


# --------------------------------------------------------------------------- reading
def load_runs(path):
    """Read the runs of a results file or of a sweep.

    Parameters
    ----------
    path : str or pathlib.Path
        A results JSON of ``sgdsim run -o`` (``{"runs": [record, ...]}``), a sweep
        directory of ``sgdsim sweep`` (its ``runs.jsonl``, and ``sweep.json`` for the
        order of the swept paths) or a ``runs.jsonl`` file: one JSON object a line, with
        ``id``, ``values`` (``{path: value}``; ``point`` when it is a mapping),
        ``variant``, ``status`` and ``record`` (simulator/experiments/sweep.py).

    Returns
    -------
    dict
        ``runs``: one entry per run, ``{run_id, point, variant, status, record}``, where
        ``point`` is ``{}`` for a results file and ``status`` is ``"ok"`` for a run with a
        record (diverged or not: the record says) or else the sweep's status
        (``"failed"`` when it gave none), with ``record`` None. ``paths``: the swept
        paths in the sweep's column order (None when unknown).

    Raises
    ------
    InputError
        A missing file, a file that is not JSON, or one of another shape. In a
        ``runs.jsonl`` an unreadable last line without its newline (a sweep still
        writing it) is skipped, as the sweep itself does.
    """
    path = Path(path)
    if path.is_dir():
        jsonl = path / "runs.jsonl"
        if not jsonl.is_file():
            raise InputError("a directory without runs.jsonl", file=str(path), fix=_RESULTS_FIX)
        return _in_plan_order(_load_jsonl(jsonl), path / "sweep.json")
    if not path.is_file():
        raise InputError("no such file or directory", file=str(path), fix=_RESULTS_FIX)
    if path.suffix == ".jsonl":
        return _in_plan_order(_load_jsonl(path), path.parent / "sweep.json")
    try:
        document = json.loads(read_text_input(path, max_bytes=None))   # any size sgdsim wrote
    except (json.JSONDecodeError, RecursionError) as err:
        line = getattr(err, "lineno", None)
        raise InputError("not a JSON file", file=str(path), line=line, fix=_RESULTS_FIX) from err
    runs = document.get("runs") if isinstance(document, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, dict) and "workers" in r for r in runs):
        raise InputError("not a results file: expected an object with a list 'runs' of records",
                         file=str(path), fix=_RESULTS_FIX)
    return {"runs": [{"run_id": i, "point": {}, "variant": r.get("label"), "status": "ok",
                      "record": r} for i, r in enumerate(runs)], "paths": None}


def _in_plan_order(entries, plan_file):
    """Entries sorted in the sweep's plan order (runs.jsonl is in order of completion),
    with the swept paths, both from sweep.json when it is there and readable."""
    try:
        plan = json.loads(plan_file.read_text(encoding="utf-8"))
        paths = plan.get("paths")
        order = {run["id"]: i for i, run in enumerate(plan.get("runs") or [])}
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        paths, order = None, {}
    entries = sorted(entries, key=lambda e: order.get(e["run_id"], len(order)))
    return {"runs": entries, "paths": list(paths) if isinstance(paths, list) else None}


def _load_jsonl(path):
    text = read_text_input(path, max_bytes=None)          # regular UTF-8 text, any size
    lines = text.split("\n")
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as err:
            if number == len(lines):             # no newline yet: a run being written
                continue
            raise InputError(f"line is not JSON ({getattr(err, 'msg', 'nested too deeply')})",
                             file=str(path), line=number,
                             fix=_RESULTS_FIX) from err
        if not isinstance(row, dict):
            raise InputError("a line is not a JSON object", file=str(path), line=number,
                             fix=_RESULTS_FIX)
        record = row.get("record")
        status = row.get("status") or "ok"
        point = next((row[key] for key in ("values", "point") if isinstance(row.get(key), dict)), {})
        usable = isinstance(record, dict) and "workers" in record and status != "failed"
        entries.append({"run_id": row.get("id", row.get("run_id", number)), "point": point,
                        "variant": row.get("variant"),
                        "status": "ok" if usable else (status if status not in _RECORDED
                                                       else "failed"),
                        "record": record if usable else None})
    return entries


def _entries(runs):
    """Accept what :func:`load_runs` returns, its ``runs``, or plain records."""
    if isinstance(runs, dict):
        runs = runs["runs"]
    out = []
    for i, item in enumerate(runs):
        if isinstance(item, dict) and ("record" in item and "status" in item):
            out.append({"point": {}, "variant": None, **item})
        else:
            out.append({"run_id": i, "point": {}, "variant": item.get("label"), "status": "ok",
                        "record": item})
    return out


def _need(entry, *keys):
    record = entry["record"]
    for key in keys:
        if key not in record:
            raise InputError(f"run {entry['run_id']!r} has no {key!r}", field=key,
                             fix="use results written by this version of sgdsim")
    return record


# --------------------------------------------------------------------------- labels
def variant_label(record):
    """A variant's name without what varies with the cluster: ``"hierarchical H=2 Hb=4"``.

    The post-local switch step is left out (it depends on the number of GPUs when given in
    epochs); a global sync delay is kept.

    Examples
    --------
    >>> variant_label({"algorithm": "hierarchical", "params": {"H": 2, "Hb": 4, "batch_size": 32}})
    'hierarchical H=2 Hb=4'
    >>> variant_label({"algorithm": "local", "params": {"H": 4, "global_sync_delay_s": 1.0}})
    'local H=4 delay 1 s'
    >>> variant_label({"algorithm": "diloco", "params": {"H": 8, "outer_lr": 0.5,
    ...                "outer_momentum": 0.9, "optimizer": "adamw"}})
    'diloco H=8 outer_lr=0.5 adamw'
    """
    params = record.get("params") or {}
    parts = [str(record.get("algorithm", record.get("label", "?")))]
    if "graph" in params:
        parts.append(str(params["graph"]))
    for key in ("H", "Hb"):
        if key in params:
            parts.append(f"{key}={params[key]}")
    for key in ("outer_lr", "outer_momentum", "slow_lr", "slow_momentum", "alpha", "H_min"):
        if key in params and params[key] != PARAMETER_DEFAULTS.get(key):
            parts.append(f"{key}={params[key]:g}")
    if params.get("interval_s"):
        parts.append(f"every {params['interval_s']:g} s")
    for key in ("replica", "optimizer"):
        if key in params:
            parts.append(("replica " if key == "replica" else "") + str(params[key]))
    if params.get("global_sync_delay_s"):
        parts.append(f"delay {params['global_sync_delay_s']:g} s")
    if record.get("faults"):
        parts.append(record["faults"]["policy"])
    return " ".join(parts)


def _point_text(point, keys):
    return ", ".join(f"{key}={_value_text(point.get(key))}" for key in keys)


def _value_text(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _run_labels(entries):
    """A unique legend label per entry: the record's label, plus what tells equal ones apart."""
    labels = [e["record"].get("label") or variant_label(e["record"]) for e in entries]
    counts = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    keys = _varying_keys([e["point"] for e in entries])
    out = []
    for entry, label in zip(entries, labels):
        if counts[label] > 1:
            extra = _point_text(entry["point"], keys) if keys else f"run {entry['run_id']}"
            label = f"{label} ({extra})"
        out.append(label)
    return out


def _varying_keys(points):
    """Point keys, in first-seen order, that take more than one value."""
    order, values = [], {}
    for point in points:
        for key, value in point.items():
            if key not in values:
                order.append(key)
                values[key] = set()
            values[key].add(json.dumps(value, sort_keys=True))
    return [key for key in order if len(values[key]) > 1]


def _ordered_values(values):
    """Distinct values: numbers sorted, anything else in first-seen order."""
    distinct = []
    for value in values:
        if value not in distinct:
            distinct.append(value)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct):
        return sorted(distinct)
    return distinct


def _outcome(record):
    """"ok", "diverged", "not learning" or "not reached" for a record."""
    if record.get("diverged") or record.get("status") == "diverged":
        return "diverged"
    if record.get("status") == "not_learning":
        return "not learning"
    if record.get("status") == "failed":
        return "failed"
    if record.get("time_to_accuracy_s") is None:
        return "not reached"
    return "ok"


# --------------------------------------------------------------------------- series
def series_for(kind, runs, *, x=None, y=None):
    """The data a figure of `kind` shows, as plain data.

    Parameters
    ----------
    kind : {"speedup", "accuracy", "comm", "heatmap", "tradeoff"}
    runs : dict or list
        What :func:`load_runs` returns, its ``runs``, or plain results records.
    x, y : str, optional
        ``heatmap`` only: the point paths on the x and y axes (default: the first two
        swept paths whose values vary, in the sweep's order), or :data:`VARIANT` for the
        variants of a sweep whose points run several (the default axis after the paths).

    Returns
    -------
    dict
        Always ``kind``, ``xlabel``, ``ylabel`` (base units: seconds, bytes) and
        ``failed``: the ids of runs without a record. Then, by kind:

        ``speedup``: ``lines``, each ``{label, baseline_workers, baseline_time_s, x
        (workers), y (speedup), time_to_accuracy_s, runs (how many runs each x averages),
        missing: [{x, reason}]}`` with reason ``"not reached"``, ``"diverged"`` or
        ``"not learning"``; ``ideal``: ``[{baseline_workers, x, y}]``.

        ``accuracy``: ``target_accuracy`` and ``lines``, each ``{label, x (s), y, diverged,
        status, reached: [time_s, acc] or None, last: [time_s, acc], virtual_x,
        virtual_y, gpu_x, gpu_y}`` (the virtual average's and the best GPU model's curves;
        empty lists when the record has none).

        ``comm``: ``labels``, ``tiers`` and per run ``compute_s``, ``comm_s``, ``wait_s``,
        ``overlapped_s`` (the comm that ran during backward passes, DDP overlap; 0 without),
        ``simulated_time_s``; ``comm_by_tier_s`` and ``bytes_by_tier``: ``{tier: [per
        run]}``; and ``{tier}_bytes`` for each tier (``intra_block_bytes``...).

        ``tradeoff``: ``panels``, each ``{title, point (the swept values), tier (the
        outermost), runs}``; a run is ``{label, time_to_accuracy_s (or None), bytes (on
        that tier), final_test_accuracy, status}`` (``"ok"``, ``"not reached"``,
        ``"diverged"`` or ``"not learning"``).

        ``heatmap``: ``x_path``, ``y_path``, ``x_values``, ``y_values`` and ``panels``, each
        ``{title, point (the other swept values, and the variant when several), cells,
        status}``: ``cells[i][j]`` is the time-to-accuracy (s) at ``y_values[i]``,
        ``x_values[j]``, or None, and ``status[i][j]`` is ``"ok"``, ``"not reached"``,
        ``"diverged"``, ``"not learning"``, ``"failed"`` or ``"missing"`` (no such run).

    Raises
    ------
    InputError
        An unknown kind, no runs, records lacking a key the kind needs, a speedup of runs
        on one number of GPUs only, or for ``heatmap`` fewer than two swept values or an
        unknown `x` / `y`.

    Examples
    --------
    >>> records = [{"algorithm": "local", "params": {"H": 4}, "workers": k,
    ...             "time_to_accuracy_s": t, "diverged": False}
    ...            for k, t in ((2, 8.0), (4, 5.0), (8, None))]
    >>> line = series_for("speedup", records)["lines"][0]
    >>> line["label"], line["x"], line["y"], line["missing"]
    ('local H=4', [2, 4], [1.0, 1.6], [{'x': 8, 'reason': 'not reached'}])
    """
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}", field="--kind", fix="use one of " + ", ".join(KINDS))
    paths = runs.get("paths") if isinstance(runs, dict) else None
    entries = _entries(runs)
    ok = [e for e in entries if e["status"] == "ok"]
    failed = [e["run_id"] for e in entries if e["status"] != "ok"]
    if not ok and kind != "heatmap":
        raise InputError("no run with a record to plot" + (f" ({len(failed)} failed)" if failed else ""),
                         fix=_RESULTS_FIX)
    if kind == "heatmap":
        out = _heatmap(entries, x, y, paths)
    elif kind == "resilience" and y is None:
        out = fault_plots.resilience_series(ok, x, paths)
    elif x is not None or y is not None:
        raise InputError("--x and --y apply to --kind heatmap only (and --x to resilience)",
                         field="--x" if x else "--y", fix="leave them out")
    elif kind == "workers":
        out = fault_plots.workers_series(ok, _run_labels(ok))
    else:
        out = {"speedup": _speedup, "accuracy": _accuracy, "comm": _comm,
               "tradeoff": _tradeoff}[kind](ok)
    return {"kind": kind, **out, "failed": failed}


def _speedup(ok):
    for entry in ok:
        _need(entry, "workers", "time_to_accuracy_s")
    workers = sorted({int(e["record"]["workers"]) for e in ok})
    if len(workers) < 2:
        raise InputError(f"every run has {workers[0]} GPUs: a speedup needs runs on two or more "
                         "numbers of GPUs", field="--kind",
                         fix="sweep the cluster size, e.g. 'sgdsim sweep scenarios/scaling_study.yaml "
                             "-o out/scaling', then plot out/scaling")
    extra = _line_keys(ok)
    groups = {}                                          # line label -> workers -> [entry]
    for entry in ok:
        label = variant_label(entry["record"])
        if extra:
            label += f" ({_point_text(entry['point'], extra)})"
        groups.setdefault(label, {}).setdefault(int(entry["record"]["workers"]), []).append(entry)
    lines, baselines = [], []
    for label, by_k in groups.items():
        times, missing = {}, []
        for k in sorted(by_k):
            reached = [e["record"]["time_to_accuracy_s"] for e in by_k[k]
                       if _outcome(e["record"]) == "ok"]
            if reached:
                times[k] = sum(reached) / len(reached)
            else:
                reasons = {_outcome(e["record"]) for e in by_k[k]}
                missing.append({"x": k, "reason": reasons.pop() if len(reasons) == 1
                                else "not reached"})
        line = {"label": label, "baseline_workers": None, "baseline_time_s": None, "x": [], "y": [],
                "time_to_accuracy_s": [], "runs": [], "missing": missing}
        if times:
            base_k = 1 if 1 in times else min(times)
            base_s = times[base_k]
            line.update(baseline_workers=base_k, baseline_time_s=base_s)
            for k in sorted(times):
                line["x"].append(k)
                line["y"].append(base_s / times[k])
                line["time_to_accuracy_s"].append(times[k])
                line["runs"].append(len(by_k[k]))
            if base_k not in baselines:
                baselines.append(base_k)
        lines.append(line)
    ideal = [{"baseline_workers": b, "x": [k for k in workers if k >= b],
              "y": [k / b for k in workers if k >= b]} for b in sorted(baselines)]
    return {"xlabel": "GPUs (workers)", "ylabel": "speedup in time to accuracy (x)",
            "time_label": "time to accuracy (s)", "lines": lines, "ideal": ideal}


def _line_keys(ok):
    """Swept paths that tell speedup lines apart.

    A path does when two runs of one variant on the same number of GPUs differ in it (a
    bandwidth swept at every size); a path that only sets the size (``topology.blocks``)
    or the variant's own H does not. ``seed`` never does: runs of several seeds are
    averaged.
    """
    keys = []
    for key in _varying_keys([e["point"] for e in ok]):
        if key == "seed":
            continue
        seen = {}
        for entry in ok:
            where = (variant_label(entry["record"]), entry["record"]["workers"])
            seen.setdefault(where, set()).add(json.dumps(entry["point"].get(key), sort_keys=True))
        if any(len(values) > 1 for values in seen.values()):
            keys.append(key)
    return keys


def _accuracy(ok):
    labels = _run_labels(ok)
    lines, targets = [], []
    for entry, label in zip(ok, labels):
        record = _need(entry, "curve", "target_accuracy")
        points = [(float(p[0]), float(p[2])) for p in record["curve"] if p[2] is not None]
        virtual = [(float(p[0]), float(p[2])) for p in record.get("virtual_average_curve") or []
                   if p[2] is not None]
        best = [(float(p[0]), float(p[2])) for p in record.get("best_gpu_curve") or []
                if p[2] is not None]
        reached = None
        if record.get("time_to_accuracy_s") is not None:
            crossing = [p for p in points + best if p[0] == record["time_to_accuracy_s"]
                        and p[1] >= record["target_accuracy"]]
            reached = list(crossing[0]) if crossing else [record["time_to_accuracy_s"],
                                                          record["target_accuracy"]]
        outcome = _outcome(record)
        last = points or virtual
        lines.append({"label": label, "x": [p[0] for p in points], "y": [p[1] for p in points],
                      "diverged": outcome == "diverged", "status": outcome, "reached": reached,
                      "last": list(last[-1]) if last else None,
                      "virtual_x": [p[0] for p in virtual], "virtual_y": [p[1] for p in virtual],
                      "gpu_x": [p[0] for p in best], "gpu_y": [p[1] for p in best],
                      "failures": [float(e["time_s"]) for e in
                                   (record.get("faults") or {}).get("events", [])
                                   if e["what"].endswith(("fail", "preempt"))]})
        if record["target_accuracy"] not in targets:
            targets.append(record["target_accuracy"])
    return {"xlabel": "simulated time (s)", "ylabel": "test accuracy",
            "target_accuracy": targets[0] if len(targets) == 1 else targets, "lines": lines}


def _comm(ok):
    labels = _run_labels(ok)
    records = [_need(e, "compute_time_s", "comm_time_s", "comm_bytes", "simulated_time_s")
               for e in ok]
    tiers = []
    for record in records:
        for tier in record.get("tiers") or list(record["comm_bytes"]):
            if tier not in tiers:
                tiers.append(tier)
    out = {"xlabel": "run", "ylabel": "time per GPU, mean (s)",
           "bytes_label": "bytes carried, summed over links (B)", "labels": labels,
           "tiers": tiers, "compute_s": [], "comm_s": [], "wait_s": [], "overlapped_s": [],
           "simulated_time_s": [],
           "comm_by_tier_s": {tier: [] for tier in tiers},
           "bytes_by_tier": {tier: [] for tier in tiers}}
    for record in records:
        out["compute_s"].append(float(record["compute_time_s"]))
        out["comm_s"].append(float(record["comm_time_s"]))
        out["wait_s"].append(float(record.get("wait_time_s") or 0.0))
        out["overlapped_s"].append(float(record.get("overlapped_comm_time_s") or 0.0))
        out["simulated_time_s"].append(float(record["simulated_time_s"]))
        faults = record.get("faults") or {}
        for key, name in (("checkpoint_s", "checkpoint_time_s"),
                          ("failure_wait_s", "failure_wait_s"), ("down_s", "down_time_s")):
            out.setdefault(key, []).append(float(faults.get(name) or 0.0))
        by_tier = record.get("comm_time_by_tier_s")
        for tier in tiers:
            out["bytes_by_tier"][tier].append(float(record["comm_bytes"].get(tier, 0.0)))
            # a record without times per tier (older sgdsim) shows its comm as one tier, the last
            out["comm_by_tier_s"][tier].append(
                float(by_tier.get(tier, 0.0)) if by_tier is not None
                else (float(record["comm_time_s"]) if tier == tiers[-1] else 0.0))
    for tier in tiers:
        out[f"{tier}_bytes"] = out["bytes_by_tier"][tier]
    return out


def _tradeoff(ok):
    keys = _varying_keys([e["point"] for e in ok])
    panels = {}
    for entry in ok:
        record = _need(entry, "comm_bytes", "time_to_accuracy_s")
        facet = {k: entry["point"].get(k) for k in keys}
        panel = panels.setdefault(json.dumps(facet, sort_keys=True),
                                  {"title": _point_text(facet, keys), "point": facet,
                                   "tier": None, "entries": []})
        panel["entries"].append(entry)
    out = []
    for panel in panels.values():
        entries = panel.pop("entries")
        tiers = []
        for entry in entries:
            for tier in entry["record"].get("tiers") or list(entry["record"]["comm_bytes"]):
                if tier not in tiers:
                    tiers.append(tier)
        tier = tiers[-1]
        panel["tier"] = tier
        panel["runs"] = [{"label": label, "time_to_accuracy_s": e["record"]["time_to_accuracy_s"],
                          "bytes": float(e["record"]["comm_bytes"].get(tier, 0.0)),
                          "final_test_accuracy": e["record"].get("final_test_accuracy"),
                          "status": _outcome(e["record"])}
                         for e, label in zip(entries, _run_labels(entries))]
        out.append(panel)
    return {"xlabel": "time to accuracy (s)", "ylabel": "bytes on the outermost tier (B)",
            "panels": out}


def _heatmap(entries, x, y, paths):
    if not entries:
        raise InputError("no runs to plot", fix=_RESULTS_FIX)
    per_point = {}
    for entry in entries:
        per_point.setdefault(json.dumps(entry["point"], sort_keys=True), set()).add(entry["variant"])
    several = any(len(labels) > 1 for labels in per_point.values())     # variants run side by side
    # Where each run sits: its swept values, and its variant when points run several.
    points = [dict(e["point"], **({VARIANT: e["variant"]} if several else {})) for e in entries]
    varying = _varying_keys(points)
    order = [p for p in (paths or []) if p in varying] + [p for p in varying if p not in (paths or [])]
    known = list(dict.fromkeys(key for point in points for key in point))
    for name, option in ((x, "--x"), (y, "--y")):
        if name is not None and name not in known:
            raise InputError(f"{name!r} is not a swept path", field=option,
                             fix="use one of " + (", ".join(known) if known else
                                                  "the swept paths of a sweep (give a sweep directory)"))
    free = [key for key in order if key not in (x, y)]
    x = x if x is not None else (free.pop(0) if free else None)
    y = y if y is not None else (free.pop(0) if free else None)
    if x is None or y is None or x == y:
        raise InputError("a heatmap needs two different swept paths, found "
                         f"{len(order)}{': ' + ', '.join(order) if order else ''}",
                         field="--x" if x is None or x == y else "--y",
                         fix="plot a sweep of two or more paths, or of one path and several "
                             "variants (e.g. sgdsim sweep scenarios/hierarchical_grid.yaml), and "
                             "name them with --x and --y")
    x_values = _ordered_values([point.get(x) for point in points])
    y_values = _ordered_values([point.get(y) for point in points])
    others = [key for key in order if key not in (x, y)]
    panels = {}
    for entry, point in zip(entries, points):
        facet = {k: point.get(k) for k in others}
        key = json.dumps(facet, sort_keys=True)
        panel = panels.get(key)
        if panel is None:
            panel = panels[key] = {"title": _point_text(facet, others), "point": facet,
                                   "runs": [[[] for _ in x_values] for _ in y_values]}
        panel["runs"][y_values.index(point.get(y))][x_values.index(point.get(x))].append(entry)
    for panel in panels.values():
        grid = panel.pop("runs")
        panel["cells"] = [[_cell(runs)[0] for runs in row] for row in grid]
        panel["status"] = [[_cell(runs)[1] for runs in row] for row in grid]
    return {"xlabel": x, "ylabel": y, "x_path": x, "y_path": y, "x_values": x_values,
            "y_values": y_values, "value_label": "time to accuracy (s)",
            "panels": list(panels.values())}


def _cell(runs):
    """Mean time-to-accuracy of the runs that reached it, and the cell's status."""
    if not runs:
        return None, "missing"
    done = [e for e in runs if e["status"] == "ok"]
    reached = [e["record"]["time_to_accuracy_s"] for e in done if _outcome(e["record"]) == "ok"]
    if reached:
        return sum(reached) / len(reached), "ok"
    if not done:
        return None, "failed"
    outcomes = {_outcome(e["record"]) for e in done}
    return None, outcomes.pop() if len(outcomes) == 1 else "not reached"


# --------------------------------------------------------------------------- drawing
def _time_unit(max_s):
    """(factor, unit) so that times read as 1-1000 of the unit."""
    for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if max_s >= factor:
            return factor, unit
    return (1e-6, "us") if max_s > 0 else (1.0, "s")


def _bytes_unit(max_bytes):
    for factor, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if max_bytes >= factor:
            return factor, unit
    return 1.0, "B"


def _with_unit(label, unit):
    """Replace the base unit in a label's trailing ``(s)`` / ``(B)``."""
    for base in (" (s)", " (B)"):
        if label.endswith(base):
            return label[: -len(base)] + f" ({unit})"
    return label


def draw(kind, series, path):
    """Draw `series` (from :func:`series_for`) of `kind` into `path`; return `path` as str.

    The extension picks the format: ``.png``, ``.svg`` or ``.pdf``. matplotlib is used
    through a private ``Figure`` with an Agg canvas (no pyplot, no global state).

    Raises
    ------
    InputError
        An unknown kind or extension.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}", field="--kind", fix="use one of " + ", ".join(KINDS))
    check_output(path, suffixes=FORMATS, what="a figure")
    drawer = {"speedup": _draw_speedup, "accuracy": _draw_accuracy, "comm": _draw_comm,
              "heatmap": _draw_heatmap, "tradeoff": _draw_tradeoff,
              "workers": fault_plots.draw_workers, "resilience": fault_plots.draw_resilience}[kind]
    fig = Figure(figsize=_figure_size(kind, series), layout="constrained")
    FigureCanvasAgg(fig)
    drawer(fig, series)
    if series.get("failed") and kind != "heatmap":                # a heatmap shows them
        fig.text(0.01, 0.005, f"{len(series['failed'])} run(s) failed and are not shown: "
                 + ", ".join(map(str, series["failed"][:8])) + (" ..." if len(series["failed"]) > 8 else ""),
                 fontsize=7, color="#a00000")
    write_figure(fig, path, dpi=150)
    return str(path)


def _figure_size(kind, series):
    """Width and height in inches."""
    if kind == "comm":
        return (max(7.0, 1.0 + 0.9 * len(series["labels"])), 7.0)
    if kind == "heatmap":
        n = max(1, len(series["panels"]))
        cols = min(n, 3)
        rows = -(-n // cols)
        width = 1.2 + 0.9 * max(3, len(series["x_values"]))
        height = 1.0 + 0.6 * max(3, len(series["y_values"]))
        return (min(24.0, cols * width + 1.5), min(24.0, rows * height + 0.8))
    if kind in ("speedup", "resilience"):
        return (11.0, 5.5)
    if kind == "tradeoff":
        n = max(1, len(series["panels"]))
        return (min(24.0, 10.0 * min(n, 2)), 5.0 * -(-n // 2))
    return (8.0, 5.0)


def _colors(n):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _draw_speedup(fig, series):
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullLocator
    from matplotlib.transforms import offset_copy

    left, right = fig.subplots(1, 2)
    lines = series["lines"]
    all_x = sorted({k for line in lines for k in line["x"] + [m["x"] for m in line["missing"]]})
    ys = [v for line in lines for v in line["y"]] + [v for ideal in series["ideal"] for v in ideal["y"]]
    times = [t for line in lines for t in line["time_to_accuracy_s"]]
    wide = bool(all_x) and max(all_x) / min(all_x) >= 4                    # log x axes
    log_y = wide and bool(times)                                           # and y, with data
    factor, unit = _time_unit(max(times, default=0.0))
    room = 1.5 if any(line["missing"] for line in lines) else 1.0   # for the x markers
    top = {left: max(ys + [1.0]) * (room if log_y else 1.1 * room),
           right: max(times, default=1.0) / factor * (room if log_y else 1.1 * room)}
    for ideal in series["ideal"]:
        left.plot(ideal["x"], ideal["y"], color="black", ls="--", lw=1,
                  label="ideal (linear)" + ("" if len(series["ideal"]) == 1 else
                                            f" from {ideal['baseline_workers']} GPUs"))
    any_missing, stacked = False, {}
    for color, line in zip(_colors(len(lines)), lines):
        label = line["label"]
        if line["baseline_workers"] is not None and line["baseline_workers"] != min(all_x):
            label += f" (vs {line['baseline_workers']} GPUs)"
        left.plot(line["x"], line["y"], marker="o", color=color, label=label)
        right.plot(line["x"], [t / factor for t in line["time_to_accuracy_s"]], marker="o", color=color)
        for miss in line["missing"]:
            any_missing = True
            below = stacked.get(miss["x"], 0)            # several lines missing at one K: stack
            stacked[miss["x"]] = below + 1
            for ax in (left, right):
                shift = offset_copy(ax.transData, fig=fig, y=-20 * below, units="points")
                ax.plot([miss["x"]], [top[ax]], marker="x", ms=8, mew=2, color=color, clip_on=False,
                        zorder=5, transform=shift)
                ax.annotate(miss["reason"], (miss["x"], top[ax]), xytext=(0, -7 - 20 * below),
                            textcoords="offset points", ha="center", va="top", fontsize=6.5,
                            color=color)
    handles, labels = left.get_legend_handles_labels()
    if any_missing:
        handles.append(Line2D([], [], ls="", marker="x", mew=2, color="#555555"))
        labels.append("target not reached / diverged (drawn at the top)")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for ax in (left, right):
        if wide:
            ax.set_xscale("log", base=2)
        if log_y:
            ax.set_yscale("log", base=2 if ax is left else 10)
            low = min(ys) if ax is left else min(times) / factor
            ax.set_ylim(low / 1.3, top[ax] * 1.25)
            ax.yaxis.set_major_formatter(plain)
            low, high = ax.get_ylim()
            ax.yaxis.set_minor_formatter(plain if high / low < 20 else FuncFormatter(lambda v, _: ""))
        else:
            ax.set_ylim(0, top[ax] * 1.1)
        ax.set_xticks(all_x, [str(k) for k in all_x])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(True, alpha=0.3)
        ax.set_xlabel(series["xlabel"])
    left.set_ylabel(series["ylabel"])
    left.set_title("speedup: each line vs its fewest GPUs that reached the target", fontsize=9)
    right.set_ylabel(_with_unit(series["time_label"], unit))
    right.set_title("simulated time to reach the target", fontsize=9)
    fig.legend(handles, labels, fontsize=7, loc="outside lower center",
               ncols=min(3, max(1, len(labels))), frameon=False)


def _draw_accuracy(fig, series):
    from matplotlib.lines import Line2D

    ax = fig.add_subplot()
    lines = series["lines"]
    ends = [max(xs) for line in lines for xs in (line["x"], line.get("virtual_x") or [])
            if xs and max(xs) > 0]
    factor, unit = _time_unit(max(ends, default=0.0))
    log = bool(ends) and max(ends) / min(ends) > 20         # runs of very different lengths
    status_text = {"diverged": " (diverged)", "not learning": " (not learning)",
                   "failed": " (failed)"}
    for index, (color, line) in enumerate(zip(_colors(len(lines)), lines)):
        label = line["label"] + status_text.get(line.get("status"), "")
        for xs, ys, style, width, name in ((line["x"], line["y"], "-", 1.3, label),
                                           (line.get("virtual_x") or [], line.get("virtual_y") or [],
                                            ":", 1.0, None),
                                           (line.get("gpu_x") or [], line.get("gpu_y") or [],
                                            "--", 1.0, None)):
            shown = [(t, a) for t, a in zip(xs, ys) if t > 0 or not log]
            if shown:                                # an accuracy holds until the next evaluation
                ax.plot([t / factor for t, _ in shown], [a for _, a in shown], color=color,
                        lw=width, ls=style, label=name, drawstyle="steps-post",
                        alpha=1.0 if style == "-" else 0.7)
        if line["reached"] is not None:
            ax.plot([line["reached"][0] / factor], [line["reached"][1]], "o", color=color, ms=5)
        if line.get("status") in status_text and line["last"] is not None:
            ax.plot([line["last"][0] / factor], [line["last"][1]], "x", color="#c00000", ms=9, mew=2)
        failures = [t / factor for t in line.get("failures") or [] if t > 0 or not log]
        if failures:                                 # faults: where this run lost GPUs
            ax.plot(failures, [0.015 + 0.022 * index] * len(failures), "v", color=color, ms=6,
                    ls="")
    targets = series["target_accuracy"]
    for target in targets if isinstance(targets, list) else [targets]:
        ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="#555555", lw=1.3))
    labels.append("model every GPU holds, after each global sync")
    if any(line.get("virtual_x") for line in lines):
        handles.append(Line2D([], [], color="#555555", lw=1.0, ls=":"))
        labels.append("virtual average of the GPUs' models (no GPU holds it)")
    if any(line.get("gpu_x") for line in lines):
        handles.append(Line2D([], [], color="#555555", lw=1.0, ls="--"))
        labels.append("best model some GPU holds")
    handles.append(Line2D([], [], ls="", marker="o", color="#555555"))
    labels.append("time to accuracy")
    if any(line.get("status") in status_text for line in lines):
        handles.append(Line2D([], [], ls="", marker="x", mew=2, color="#c00000"))
        labels.append("diverged / failed / not learning")
    if any(line.get("failures") for line in lines):
        handles.append(Line2D([], [], ls="", marker="v", color="#555555"))
        labels.append("a GPU failure or preemption")
    xlabel = _with_unit(series["xlabel"], unit)
    if log:
        ax.set_xscale("log")
        xlabel += ", log scale"
    else:
        ax.set_xlim(left=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(series["ylabel"])
    ax.set_ylim(0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(handles, labels, fontsize=7, loc="lower right")


def _draw_comm(fig, series):
    from ..utils.units import format_bytes, format_time

    labels = series["labels"]
    tiers = series.get("tiers") or ["intra_block", "inter_block"]
    tier_colors = _tier_colors(len(tiers))
    positions = list(range(len(labels)))
    top, bottom = fig.subplots(2, 1, sharex=True)
    extra = [(series.get(key), name, color) for key, name, color in (
        ("checkpoint_s", "checkpoint writes", "#937860"),
        ("failure_wait_s", "stalled by failures (restarts, abandoned syncs, partitions)",
         "#17becf"),
        ("down_s", "down: no working GPU in the slot", "#7f7f7f"))
        if series.get(key) and any(series[key])]
    totals = [c + m + w + sum(values[i] for values, _, _ in extra) for i, (c, m, w) in
              enumerate(zip(series["compute_s"], series["comm_s"], series["wait_s"]))]
    factor, unit = _time_unit(max(totals, default=0.0))
    base = [0.0] * len(labels)
    stacks = [(series["compute_s"], "compute", "#4c72b0")]
    by_tier = series.get("comm_by_tier_s") or {tiers[-1]: series["comm_s"]}
    stacks += [(by_tier.get(tier, [0.0] * len(labels)), f"comm {tier} (with sync delays)"
                if tier == tiers[-1] else f"comm {tier}", color)
               for tier, color in zip(tiers, tier_colors)]
    stacks.append((series["wait_s"], "wait for a sync to start", "#c0c0c0"))
    stacks += extra
    for values, name, color in stacks:
        values = [v / factor for v in values]
        top.bar(positions, values, bottom=base, color=color, label=name)
        base = [b + v for b, v in zip(base, values)]
    hidden = series.get("overlapped_s") or [0.0] * len(labels)
    if any(hidden):                  # DDP overlap: the comm that ran during backward passes
        tops = [(c + m) / factor for c, m in zip(series["compute_s"], series["comm_s"])]
        top.bar(positions, [h / factor for h in hidden],
                bottom=[t - h / factor for t, h in zip(tops, hidden)], fill=False,
                hatch="///", edgecolor="black", linewidth=0.0,
                label="of the comm: overlapped with backward")
    top.plot(positions, [t / factor for t in series["simulated_time_s"]], ls="", marker="_", ms=18,
             mew=2, color="black", label="simulated time")
    for i, total in enumerate(totals):                       # small bars stay readable
        top.annotate(format_time(total), (i, total / factor), xytext=(0, 3),
                     textcoords="offset points", ha="center", va="bottom", fontsize=7)
    top.set_ylabel(_with_unit(series["ylabel"], unit))
    top.set_ylim(0, max(totals + series["simulated_time_s"] + [0.0]) / factor * 1.12 or 1.0)
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    top.grid(True, axis="y", alpha=0.3)
    per_tier = series.get("bytes_by_tier") or {t: series[f"{t}_bytes"] for t in tiers}
    sums = [sum(per_tier[t][i] for t in tiers) for i in range(len(labels))]
    bfactor, bunit = _bytes_unit(max(sums, default=0.0))
    base = [0.0] * len(labels)
    for tier, color in zip(tiers, tier_colors):
        values = [v / bfactor for v in per_tier[tier]]
        bottom.bar(positions, values, bottom=base, color=color, label=tier)
        base = [b + v for b, v in zip(base, values)]
    outer = tiers[-1]
    for i, total in enumerate(sums):
        bottom.annotate(f"{format_bytes(per_tier[outer][i])} {outer}", (i, total / bfactor),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        fontsize=7)
    bottom.set_ylim(0, max(sums + [0.0]) / bfactor * 1.12 or 1.0)
    bottom.set_ylabel(_with_unit(series["bytes_label"], bunit))
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    bottom.grid(True, axis="y", alpha=0.3)
    bottom.set_xticks(positions, labels, rotation=30 if len(labels) > 3 else 0, ha="right"
                      if len(labels) > 3 else "center", fontsize=8)
    bottom.set_xlabel(series["xlabel"])


def _draw_tradeoff(fig, series):
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    from ..utils.units import format_bytes

    panels = series["panels"]
    cols = min(len(panels), 2)
    axes = fig.subplots(-(-len(panels) // cols), cols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, panel in zip(axes, panels):
        runs = panel["runs"]
        reached = [r["time_to_accuracy_s"] for r in runs if r["status"] == "ok"]
        factor, unit = _time_unit(max(reached, default=1.0))
        edge = max(reached, default=1.0) * 1.6           # where runs that never got there sit
        positive = [r["bytes"] for r in runs if r["bytes"] > 0]
        floor = min(positive, default=1.0) / 2           # runs that sent no bytes on the tier
        from matplotlib.lines import Line2D

        spots, handles, names = [], [], []               # nearby runs share one number label
        for number, (color, run) in enumerate(zip(_colors(len(runs)), runs), start=1):
            ok = run["status"] == "ok"
            x = (run["time_to_accuracy_s"] if ok else edge) / factor
            y = run["bytes"] if run["bytes"] > 0 else floor
            marker = {"marker": "o" if ok else "x", "color": color if ok else "#c00000",
                      "ms": 7, "mew": 2, "ls": ""}
            ax.plot([x], [y], alpha=0.85, **marker)
            near = next((spot for spot in spots if abs(math.log(spot[0] / x)) < 0.04
                         and abs(math.log(spot[1] / y)) < 0.04), None)
            if near is None:
                spots.append([x, y, [str(number)]])
            else:
                near[2].append(str(number))
            accuracy = run["final_test_accuracy"]
            note = f" ({run['status']})" if not ok else \
                (f", final acc {accuracy:.3f}" if accuracy is not None else "")
            handles.append(Line2D([], [], **marker))
            names.append(f"{number}  {run['label']}{note}")
        for x, y, numbers in spots:
            ax.annotate(",".join(numbers), (x, y), xytext=(6, 0), textcoords="offset points",
                        fontsize=8, va="center")
        ax.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  frameon=False)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis, text in ((ax.xaxis, lambda v, _: f"{v:g}"),
                           (ax.yaxis, lambda v, _: format_bytes(v))):
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_minor_locator(NullLocator())
            axis.set_major_formatter(FuncFormatter(text))
        low, high = ax.get_xlim()
        ax.set_xlim(low, high * 1.15)                    # room for the numbers
        ax.set_xlabel(_with_unit(series["xlabel"], unit) + ", log scale")
        ax.set_ylabel(f"bytes on {panel['tier']}, log scale")
        ax.grid(True, alpha=0.3)
        title = panel["title"] or "runs"
        ax.set_title(f"{title}: time to accuracy against {panel['tier']} bytes", fontsize=9)


def _tier_colors(n):
    """Colours of n tiers, innermost first: greens inside, reds for the outermost."""
    palette = ["#55a868", "#dd8452", "#8172b3", "#c44e52"]
    if n <= len(palette):
        return palette[:n - 1] + [palette[-1]] if n > 1 else palette[:1]
    return _colors(n)


def _draw_heatmap(fig, series):
    import matplotlib
    import numpy as np
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import FuncFormatter

    panels = series["panels"]
    n = max(1, len(panels))
    cols = min(n, 3)
    rows = -(-n // cols)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    values = [v for p in panels for row in p["cells"] for v in row if v is not None]
    factor, unit = _time_unit(max(values, default=0.0))
    cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad=MISSING_COLOR)
    if values and min(values) > 0 and max(values) / min(values) > 8:
        norm = LogNorm(min(values) / factor, max(values) / factor)
    else:
        norm = Normalize(min(values, default=0.0) / factor, max(values, default=1.0) / factor)
    image = None
    for ax, panel in zip(axes, panels):
        grid = np.array([[np.nan if v is None else v / factor for v in row] for row in panel["cells"]])
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, origin="lower", aspect="auto")
        for i, row in enumerate(panel["status"]):
            for j, state in enumerate(row):
                if state == "ok":
                    value = grid[i, j]
                    shade = cmap(norm(value))
                    ink = "white" if sum(shade[:3]) < 1.5 else "black"
                    ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=8, color=ink)
                else:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=MISSING_COLOR,
                                           edgecolor="#707070", hatch="///", lw=0))
                    ax.text(j, i, "no run" if state == "missing" else state, ha="center",
                            va="center", fontsize=7, color="black",
                            bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
        ax.set_xticks(range(len(series["x_values"])), [_value_text(v) for v in series["x_values"]],
                      fontsize=8)
        ax.set_yticks(range(len(series["y_values"])), [_value_text(v) for v in series["y_values"]],
                      fontsize=8)
        ax.set_xlabel(series["x_path"])
        ax.set_ylabel(series["y_path"])
        if panel["title"]:
            ax.set_title(panel["title"], fontsize=9)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes[:len(panels)]), shrink=0.9)
        bar.set_label(_with_unit(series["value_label"], unit))
        if isinstance(norm, LogNorm):
            bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            bar.ax.yaxis.set_minor_formatter(FuncFormatter(          # 20, 30, 50; not 40, 60, ...
                lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
    fig.legend(handles=[Patch(facecolor=MISSING_COLOR, edgecolor="#707070", hatch="///",
                              label="not reached / diverged / failed / no run")],
               loc="outside lower right", fontsize=7, frameon=False)


# --------------------------------------------------------------------------- all three
def plot_file(results, kind, output, *, x=None, y=None):
    """Read `results` (see :func:`load_runs`), draw a figure of `kind` into `output`.

    The kinds ``tune`` and ``pareto`` draw a ``sgdsim tune`` directory instead
    (:mod:`simulator.outputs.search_plots`).

    Returns
    -------
    dict
        The series drawn (:func:`series_for`), with ``path``: the file written.
    """
    check_output(output, suffixes=FORMATS, what="a figure")     # before reading anything
    from . import search_plots

    if kind in search_plots.KINDS:
        series = search_plots.plot_search(results, kind, output)
        series.setdefault("failed", [])
        return series
    series = series_for(kind, load_runs(results), x=x, y=y)
    series["path"] = draw(kind, series, output)
    return series
