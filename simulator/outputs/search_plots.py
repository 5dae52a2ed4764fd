"""Figures of a ``sgdsim tune`` search: the objective over trials, and the Pareto front.

Both read the search directory's ``tune.json`` (written by
:mod:`simulator.experiments.tune` when the search ends) and follow
:mod:`simulator.outputs.plots`: :func:`series_for` turns the file into plain data (tested),
:func:`draw` puts that data on a private matplotlib Figure.

``tune``
    Each trial's objective value against its number: complete trials that meet the
    constraints (filled), that do not (hollow), pruned trials at the value they were pruned
    with (grey), failed ones (red crosses at the bottom); the best feasible value so far as a
    step line, and the baseline's value as a dashed line.
``pareto``
    Complete trials as time-to-accuracy against final test accuracy, coloured by inter-block
    bytes; the Pareto front (no trial better on all three) outlined and joined, the best
    trial starred, the baseline as a square.
"""

import json
import os

from ..utils.errors import InputError
from ..utils.files import FIGURE_FORMATS, check_output, read_text_input, write_figure

__all__ = ["KINDS", "load_search", "series_for", "draw", "plot_search"]

KINDS = ("tune", "pareto")


def load_search(path):
    """``tune.json`` of a search directory (or the file itself) as a dict.

    Raises
    ------
    InputError
        No such directory or file, or a file that is not a finished search.
    """
    path = os.fspath(path)
    file = os.path.join(path, "tune.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise InputError("no tune.json here: not a finished search", file=path,
                         fix="give the directory of 'sgdsim tune -o DIR' once it has ended "
                             "(or --resume it to the end)")
    try:
        document = json.loads(read_text_input(file, max_bytes=None))
    except (ValueError, RecursionError) as err:
        raise InputError(f"cannot read it: {err}", file=file,
                         fix="give the tune.json that sgdsim tune wrote") from None
    if not isinstance(document, dict) or "trials" not in document:
        raise InputError("not a search's tune.json", file=file,
                         fix="give the directory of 'sgdsim tune -o DIR'")
    return document


def _names(document):
    """Scenario path -> the name the user searched it under (``variants[0].H`` -> ``H``)."""
    names = {}
    for text in document.get("space", []):
        name = text.split("=", 1)[0]
        names[name if "." in name or "[" in name else f"variants[0].{name}"] = name
    return names


def _values_text(values, names):
    return " ".join(f"{names.get(path, path)}={value}" for path, value in values.items())


def series_for(kind, document):
    """Plain data for a figure of `kind` from a search's ``tune.json`` document.

    Examples
    --------
    >>> doc = {"objective": "time_to_accuracy_s", "direction": "minimize", "space": ["H=1..4"],
    ...        "baseline_record": None, "trials": [
    ...     {"number": 0, "state": "complete", "feasible": True, "value": 2.0, "values": {}},
    ...     {"number": 1, "state": "pruned", "feasible": False, "value": 3.0, "values": {}},
    ...     {"number": 2, "state": "complete", "feasible": True, "value": 1.0, "values": {}}]}
    >>> series_for("tune", doc)["best_so_far"]
    [2.0, 2.0, 1.0]
    """
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}", field="--kind", fix="use one of " + ", ".join(KINDS))
    trials = document["trials"]
    names = _names(document)
    baseline = document.get("baseline_record") or {}
    if kind == "tune":
        sign = 1 if document.get("direction", "minimize") == "minimize" else -1
        best, best_so_far = None, []
        for trial in trials:
            if trial["state"] == "complete" and trial["feasible"] and trial["value"] is not None:
                if best is None or sign * trial["value"] < sign * best:
                    best = trial["value"]
            best_so_far.append(best)
        return {"objective": document["objective"], "direction": document.get("direction"),
                "numbers": [t["number"] for t in trials],
                "values": [t["value"] for t in trials],
                "states": [t["state"] if t["state"] != "complete" or t["feasible"]
                           else "infeasible" for t in trials],
                "best_so_far": best_so_far,
                "baseline": baseline.get(document["objective"]),
                "baseline_label": baseline.get("label"),
                "title": ", ".join(document.get("space", []))}
    complete = [t for t in trials if t["state"] == "complete"
                and t["record"].get("time_to_accuracy_s") is not None]
    front = {t["number"] for t in document.get("pareto", [])}
    best = (document.get("best") or {}).get("number")
    return {"points": [{"number": t["number"], "label": _values_text(t["values"], names),
                        "tta": t["record"]["time_to_accuracy_s"],
                        "accuracy": t["record"].get("final_test_accuracy"),
                        "bytes": t["record"].get("comm_bytes.inter_block") or 0.0,
                        "feasible": t["feasible"], "front": t["number"] in front,
                        "best": t["number"] == best} for t in complete],
            "baseline": (None if baseline.get("time_to_accuracy_s") is None else
                         {"tta": baseline["time_to_accuracy_s"],
                          "accuracy": baseline.get("final_test_accuracy"),
                          "label": baseline.get("label")}),
            "title": ", ".join(document.get("space", []))}


def draw(kind, series, path):
    """Draw `series` of `kind` into `path` (.png, .svg or .pdf); return `path` as str."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check_output(path, suffixes=FIGURE_FORMATS, what="a figure")
    fig = Figure(figsize=(8.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    (_draw_tune if kind == "tune" else _draw_pareto)(fig, series)
    write_figure(fig, path, dpi=150)               # drawn whole, then written atomically
    return str(path)


def _time_scale(values):
    from .plots import _time_unit

    return _time_unit(max([v for v in values if v is not None] or [0.0]))


def _draw_tune(fig, series):
    ax = fig.add_subplot()
    seconds = series["objective"].endswith("_s")
    factor, unit = _time_scale(series["values"]) if seconds else (1.0, "")
    style = {"complete": dict(marker="o", color="#1f77b4", ls=""),
             "infeasible": dict(marker="o", mfc="none", color="#ff7f0e", ls=""),
             "pruned": dict(marker=".", color="#9a9a9a", ls=""),
             "failed": dict(marker="x", color="#c00000", ls="")}
    names = {"complete": "meets the constraints", "infeasible": "misses a constraint or the target",
             "pruned": "pruned (value when stopped)", "failed": "failed"}
    shown = [v for v in series["values"] if v is not None]
    bottom = min(shown) / factor if shown else 0.0
    for state, kwargs in style.items():
        xs = [n for n, s in zip(series["numbers"], series["states"]) if s == state]
        ys = [(v / factor if v is not None else bottom)
              for v, s in zip(series["values"], series["states"]) if s == state]
        if xs:
            ax.plot(xs, ys, label=names[state], **kwargs)
    steps = [(n, b / factor) for n, b in zip(series["numbers"], series["best_so_far"])
             if b is not None]
    if steps:
        ax.plot([n for n, _ in steps], [b for _, b in steps], drawstyle="steps-post",
                color="black", lw=1.2, label="best so far")
    if series["baseline"] is not None:
        ax.axhline(series["baseline"] / factor, color="#2ca02c", ls="--", lw=1,
                   label=f"baseline ({series['baseline_label']})")
    if shown and min(shown) > 0 and max(shown) / min(shown) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    name = series["objective"].removesuffix("_s").replace("_", " ").replace(".", " ")
    ax.set_ylabel(name + (f" ({unit}, simulated)" if unit else "")
                  + f", {series['direction'] or 'minimize'}")
    ax.set_title(f"sgdsim tune over {series['title']}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)


def _draw_pareto(fig, series):
    from matplotlib.colors import LogNorm, Normalize

    ax = fig.add_subplot()
    points = series["points"]
    if not points:
        ax.text(0.5, 0.5, "no complete trial reached the target", ha="center",
                transform=ax.transAxes)
        return
    factor, unit = _time_scale([p["tta"] for p in points])
    sizes = [p["bytes"] for p in points]
    positive = [b for b in sizes if b > 0]
    norm = (LogNorm(min(positive), max(positive)) if positive and max(positive) > min(positive)
            else Normalize(0, max(sizes) or 1))
    colours = [max(b, min(positive)) if positive else b for b in sizes]
    scatter = ax.scatter([p["tta"] / factor for p in points], [p["accuracy"] for p in points],
                         c=colours, cmap="viridis", norm=norm, s=28, zorder=2,
                         edgecolors=["black" if p["front"] else "none" for p in points],
                         linewidths=[1.2 if p["front"] else 0 for p in points])
    front = sorted((p for p in points if p["front"]), key=lambda p: p["tta"])
    ax.plot([p["tta"] / factor for p in front], [p["accuracy"] for p in front], color="black",
            lw=0.8, zorder=1, label="Pareto front")
    for p in front:
        ax.annotate(p["label"], (p["tta"] / factor, p["accuracy"]), fontsize=6,
                    xytext=(4, 3), textcoords="offset points")
    for p in points:
        if p["best"]:
            ax.plot([p["tta"] / factor], [p["accuracy"]], marker="*", ms=14, color="#d62728",
                    ls="", zorder=3, label="best (objective)")
        if not p["feasible"]:
            ax.plot([p["tta"] / factor], [p["accuracy"]], marker="o", ms=9, mfc="none",
                    color="#ff7f0e", ls="", zorder=3)
    if series["baseline"] is not None:
        b = series["baseline"]
        ax.plot([b["tta"] / factor], [b["accuracy"]], marker="s", ms=8, color="#2ca02c", ls="",
                label=f"baseline ({b['label']})")
    fig.colorbar(scatter, ax=ax, label="inter-block bytes (B)")
    ax.set_xlabel(f"time to accuracy ({unit}, simulated)")
    ax.set_ylabel("final test accuracy")
    ax.set_title(f"sgdsim tune over {series['title']}: trials that reached the target "
                 "(hollow ring: misses a constraint)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def plot_search(path, kind, output):
    """Read the search at `path`, draw `kind` into `output`; return the series with ``path``."""
    series = series_for(kind, load_search(path))
    series["path"] = draw(kind, series, output)
    return series
