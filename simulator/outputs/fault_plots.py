"""Figures of runs under faults: working GPUs over time, and schedules against a fault rate.

Plain records in, matplotlib out, in two steps as in :mod:`simulator.outputs.plots` (which
dispatches here): ``*_series`` turn runs into plain data (tested), ``draw_*`` draw it.

Kinds
-----
``workers``
    The working GPUs of each run over simulated time (``faults.workers``, a step function:
    it drops at a failure, to 0 while a restarting job is down, and climbs back when
    replacements join or the job resumes), one line per run, each fault and recovery marked
    on its line; the legend gives each run's time-weighted mean.
``resilience``
    Schedules under failures, over a swept fault setting (``--x``, default the first swept
    path under ``faults.``, else the first that varies): the time-to-accuracy of each variant
    against it (left) and its goodput in steps per simulated second (right), one line per
    variant. A point that never reached the target, diverged, failed or is not learning is
    an ``x`` at the top of the left panel, with why; values with units (``1000 h``) are
    placed by their value (log scale when they span 10x or more), others in sweep order.
    Runs of several seeds at one value are averaged (over those that reached the target).
"""

from ..utils.errors import InputError, UnitError
from ..utils.units import parse_time

__all__ = ["KINDS", "workers_series", "resilience_series", "draw_workers", "draw_resilience"]

KINDS = ("workers", "resilience")

_NO_FAULTS_FIX = "run a scenario with a faults section (docs/faults.md), e.g. 'sgdsim run " \
                 "faults_preempt_8x2 -o out/faults.json'"


def workers_series(ok, labels):
    """The ``workers`` figure's data (see the module docstring).

    Parameters
    ----------
    ok : list of dict
        Entries with a record (:func:`simulator.outputs.plots.load_runs`'s ``runs``).
    labels : list of str
        A legend label per entry.

    Examples
    --------
    >>> rec = {"simulated_time_s": 4.0, "faults": {"workers": [[0.0, 2], [1.0, 1], [3.0, 2]],
    ...        "mean_workers": 1.5, "events": [{"time_s": 1.0, "what": "gpu fail"}]}}
    >>> line = workers_series([{"record": rec}], ["local"])["lines"][0]
    >>> line["x"], line["y"], line["events"]
    ([0.0, 1.0, 3.0, 4.0], [2, 1, 2, 2], [[1.0, 'gpu fail']])
    """
    lines = []
    for entry, label in zip(ok, labels):
        record = entry["record"]
        faults = record.get("faults")
        if faults is None:
            continue
        series = faults["workers"]
        end_s = float(record["simulated_time_s"])
        lines.append({"label": label, "x": [float(t) for t, _ in series] + [end_s],
                      "y": [int(n) for _, n in series] + [int(series[-1][1])],
                      "mean": float(faults["mean_workers"]),
                      "events": [[float(e["time_s"]), e["what"]] for e in faults["events"]]})
    if not lines:
        raise InputError("no run in these results was run under faults", field="--kind",
                         fix=_NO_FAULTS_FIX)
    return {"xlabel": "simulated time (s)", "ylabel": "working GPUs", "lines": lines}


def resilience_series(ok, x=None, paths=None):
    """The ``resilience`` figure's data (see the module docstring).

    Returns
    -------
    dict
        ``x_path``, ``x_unit`` (``"h"``, ``"min"``, ``"s"`` or None), ``categorical``,
        ``x_values`` and ``lines``: ``{label, x, time_to_accuracy_s, goodput_steps_per_s,
        missing: [{x, reason}]}`` with the x values placed (hours, minutes, seconds or an
        index).

    Examples
    --------
    >>> runs = [{"point": {"faults.random.gpu_mtbf": m}, "record": {"label": "local H=4",
    ...          "time_to_accuracy_s": t, "faults": {"goodput_steps_per_s": 2.0}}}
    ...         for m, t in (("10 h", 50.0), ("1000 h", 40.0), ("1 h", None))]
    >>> s = resilience_series(runs)
    >>> s["x_unit"], s["lines"][0]["x"], s["lines"][0]["missing"]
    ('h', [10.0, 1000.0], [{'x': 1.0, 'reason': 'not reached'}])
    """
    from .plots import _outcome, _varying_keys

    varying = _varying_keys([e["point"] for e in ok])
    order = [p for p in (paths or []) if p in varying] + [p for p in varying
                                                        if p not in (paths or [])]
    if x is None:
        x = next((p for p in order if p.startswith("faults.")), order[0] if order else None)
    if x is None:
        raise InputError("resilience needs a sweep over a fault setting, and these runs vary "
                         "in nothing", field="--kind",
                         fix="sweep e.g. faults.random.gpu_mtbf (docs/faults.md), then plot "
                             "the sweep directory")
    if x not in varying:
        raise InputError(f"{x!r} is not a swept path that varies", field="--x",
                         fix="use one of: " + ", ".join(varying) if varying else
                         "sweep a fault setting")
    raw = []
    for entry in ok:
        value = entry["point"].get(x)
        if value not in raw:
            raw.append(value)
    placed, unit, categorical = _place(raw)
    others = [p for p in varying if p not in (x, "seed")]
    groups = {}
    for entry in ok:
        record = entry["record"]
        label = record.get("label") or record.get("algorithm", "?")
        if others:
            label += " (" + ", ".join(f"{p}={entry['point'].get(p)}" for p in others) + ")"
        groups.setdefault(label, {}).setdefault(placed[raw.index(entry["point"].get(x))],
                                                []).append(record)
    lines = []
    for label, by_x in groups.items():
        line = {"label": label, "x": [], "time_to_accuracy_s": [], "goodput_steps_per_s": [],
                "missing": []}
        for value in sorted(by_x):
            records = by_x[value]
            reached = [r["time_to_accuracy_s"] for r in records if _outcome(r) == "ok"]
            goodput = [r["faults"]["goodput_steps_per_s"] for r in records
                       if (r.get("faults") or {}).get("goodput_steps_per_s") is not None]
            if reached:
                line["x"].append(value)
                line["time_to_accuracy_s"].append(sum(reached) / len(reached))
                line["goodput_steps_per_s"].append(sum(goodput) / len(goodput) if goodput
                                                   else None)
            else:
                reasons = {_outcome(r) for r in records}
                line["missing"].append({"x": value, "reason": reasons.pop() if len(reasons) == 1
                                        else "not reached"})
        lines.append(line)
    return {"x_path": x, "x_unit": unit, "categorical": categorical,
            "x_values": [str(v) for v in raw], "x_placed": sorted(placed),
            "xlabel": x + (f" ({unit})" if unit else ""), "ylabel": "time to accuracy (s)",
            "goodput_label": "goodput (steps per simulated second)", "lines": lines}


def _place(values):
    """Where each swept value goes on the x axis: ``(positions, unit, categorical)``."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values], None, False
    try:
        seconds = [parse_time(v) for v in values]
    except UnitError:
        return [float(i) for i in range(len(values))], None, True
    largest = max(seconds)
    factor, unit = next(((f, u) for f, u in ((3600.0, "h"), (60.0, "min"), (1.0, "s"))
                         if largest >= f), (1.0, "s"))
    return [s / factor for s in seconds], unit, False


def draw_workers(fig, series):
    from .plots import _colors, _time_unit, _with_unit

    ax = fig.add_subplot()
    lines = series["lines"]
    factor, unit = _time_unit(max(max(line["x"]) for line in lines))
    top = max(max(line["y"]) for line in lines)
    for color, line in zip(_colors(len(lines)), lines):
        xs = [t / factor for t in line["x"]]
        ax.plot(xs, line["y"], drawstyle="steps-post", color=color, lw=1.4,
                label=f"{line['label']} (mean {line['mean']:.3g})")
        steps = list(zip(line["x"], line["y"]))
        for time_s, what in line["events"]:
            lost = what.endswith(("fail", "preempt"))   # drawn where the line was before it
            at = next((n for t, n in reversed(steps) if (t < time_s if lost else t <= time_s)),
                      line["y"][0])
            ax.plot([time_s / factor], [at], marker="v" if lost else "^", color=color, ms=6,
                    ls="")
    ax.set_xlim(left=0)
    ax.set_ylim(-0.02 * top, top * 1.08)
    ax.set_xlabel(_with_unit(series["xlabel"], unit))
    ax.set_ylabel(series["ylabel"])
    ax.grid(True, alpha=0.3)
    from matplotlib.lines import Line2D
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], ls="", marker="v", color="#555555"),
                Line2D([], [], ls="", marker="^", color="#555555")]
    labels += ["a failure or preemption", "a recovery (restart, join)"]
    ax.legend(handles, labels, fontsize=7, loc="lower left")


def draw_resilience(fig, series):
    from matplotlib.lines import Line2D

    from .plots import _colors, _time_unit, _with_unit

    left, right = fig.subplots(1, 2)
    lines = series["lines"]
    times = [t for line in lines for t in line["time_to_accuracy_s"]]
    factor, unit = _time_unit(max(times, default=0.0))
    placed = series["x_placed"]
    log_x = not series["categorical"] and min(placed) > 0 and max(placed) / min(placed) >= 10
    top = max(times, default=1.0) / factor * 1.25
    stacked = {}
    for color, line in zip(_colors(len(lines)), lines):
        left.plot(line["x"], [t / factor for t in line["time_to_accuracy_s"]], marker="o",
                  color=color, label=line["label"])
        shown = [(x, g) for x, g in zip(line["x"], line["goodput_steps_per_s"]) if g is not None]
        right.plot([x for x, _ in shown], [g for _, g in shown], marker="o", color=color)
        for miss in line["missing"]:
            below = stacked.get(miss["x"], 0)
            stacked[miss["x"]] = below + 1
            left.plot([miss["x"]], [top], marker="x", ms=8, mew=2, color=color, clip_on=False)
            left.annotate(miss["reason"], (miss["x"], top), xytext=(0, -8 - 9 * below),
                          textcoords="offset points", ha="center", va="top", fontsize=6.5,
                          color=color)
    for ax in (left, right):
        if log_x:
            ax.set_xscale("log")
        if series["categorical"]:
            ax.set_xticks(placed, series["x_values"])
        ax.grid(True, alpha=0.3)
        ax.set_xlabel(series["xlabel"])
    left.set_ylim(0, top * 1.08)
    right.set_ylim(bottom=0)
    left.set_ylabel(_with_unit(series["ylabel"], unit))
    left.set_title("simulated time to reach the target", fontsize=9)
    right.set_ylabel(series["goodput_label"])
    right.set_title("useful steps per simulated second", fontsize=9)
    handles, labels = left.get_legend_handles_labels()
    if any(line["missing"] for line in lines):
        handles.append(Line2D([], [], ls="", marker="x", mew=2, color="#555555"))
        labels.append("target not reached / failed / diverged (drawn at the top)")
    fig.legend(handles, labels, fontsize=7, loc="outside lower center",
               ncols=min(3, max(1, len(labels))), frameon=False)
