"""What ``sgdsim calibrate`` shows: the error table and the measured-vs-predicted figure.

:func:`format_calibration` turns a :class:`~simulator.experiments.calibrate.Calibration`'s
rows into a table (one line per file and size: measured busbw, the fit's prediction and
error, the held-out prediction and error) with a summary and the fitted parameters;
:func:`calibration_series` gives the data the figure shows (tested as data) and
:func:`draw_calibration` draws it: busbw against message size on log axes, one colour per
file (node count), measured points, the fitted model as a line, held-out predictions as
open markers.
"""

from ..utils.files import FIGURE_FORMATS, check_output, write_figure
from ..utils.units import format_bandwidth, format_bytes, format_time

__all__ = ["format_calibration", "calibration_series", "draw_calibration", "FORMATS"]

FORMATS = FIGURE_FORMATS


def _percent(value):
    return "-" if value is None else f"{100 * value:+.1f} %"


def format_calibration(calibration):
    """The table of a calibration, as text.

    Examples
    --------
    >>> from types import SimpleNamespace as N
    >>> rows = [{"file": "a.txt", "nodes": 1, "gpus": 8, "size_bytes": 2**20,
    ...          "measured_busbw_Bps": 20e9, "fitted_busbw_Bps": 21e9, "fit_error": 0.05,
    ...          "heldout_busbw_Bps": 22e9, "heldout_error": 0.1, "algorithm": "ring",
    ...          "protocol": "LL", "heldout": False}]
    >>> summary = {"fit_error": {"mean": 0.05, "max": 0.05, "count": 1},
    ...            "heldout_error": {"mean": 0.1, "max": 0.1, "count": 1}}
    >>> print(format_calibration(N(rows=rows, method="k-fold (k=2)", summary=summary,
    ...                            params={"protocols": {}})))  # doctest: +NORMALIZE_WHITESPACE
    a.txt: 8 GPUs on 1 node(s)
          size    measured   predicted     error    held out     error  ran
      1.049 MB   20 GB/s     21 GB/s     +5.0 %     22 GB/s    +10.0 %  ring LL
    fit error: mean 5.0 %, max 5.0 % over 1 points; held-out error (k-fold (k=2)): mean 10.0 %, max 10.0 % over 1 points
    """
    lines = []
    current = None
    for row in calibration.rows:
        if row["file"] != current:
            current = row["file"]
            if lines:
                lines.append("")
            lines.append(f"{row['file']}: {row['gpus']} GPUs on {row['nodes']} node(s)")
            lines.append(f"{'size':>12}  {'measured':>10}  {'predicted':>10}  {'error':>8}  "
                         f"{'held out':>10}  {'error':>8}  ran")
        held = "-" if row["heldout_busbw_Bps"] is None else format_bandwidth(row["heldout_busbw_Bps"])
        mark = " *" if row["heldout"] else ""
        lines.append(f"{format_bytes(row['size_bytes']):>12}  "
                     f"{format_bandwidth(row['measured_busbw_Bps']):>10}  "
                     f"{format_bandwidth(row['fitted_busbw_Bps']):>10}  "
                     f"{_percent(row['fit_error']):>8}  {held:>10}  "
                     f"{_percent(row['heldout_error']):>8}  {row['algorithm']} {row['protocol']}"
                     f"{mark}")
    fit, held = calibration.summary["fit_error"], calibration.summary["heldout_error"]
    text = (f"fit error: mean {100 * fit['mean']:.1f} %, max {100 * fit['max']:.1f} % over "
            f"{fit['count']} points")
    if held["count"]:
        text += (f"; held-out error ({calibration.method}): mean {100 * held['mean']:.1f} %, "
                 f"max {100 * held['max']:.1f} % over {held['count']} points")
    lines.append(text)
    protocols = calibration.params.get("protocols", {})
    if protocols:
        lines.append("fitted: " + "; ".join(
            f"{name} base {format_time(cost['base_latency'])}" + "".join(
                f", {tier.split('_')[0]} hop {format_time(c['hop_latency'])} eff "
                f"{c['efficiency']:.3f}" for tier, c in cost.items() if isinstance(c, dict))
            for name, cost in protocols.items() if name != "in_switch"))
    if calibration.params.get("thresholds"):
        t = calibration.params["thresholds"]
        lines.append(f"thresholds: LL up to {format_bytes(t['LL'])}, LL128 up to "
                     f"{format_bytes(t['LL128'])}, Simple above")
    return "\n".join(lines)


def calibration_series(calibration):
    """The figure's data: one series per file.

    Returns
    -------
    list of dict
        ``label`` (``"8 GPUs, 1 node"``), ``sizes``, ``measured``, ``fitted``, ``heldout``
        (bytes and bytes/s; ``heldout`` entries None where there is no held-out prediction).
    """
    series = {}
    for row in calibration.rows:
        entry = series.setdefault(row["file"], {
            "label": f"{row['gpus']} GPUs, {row['nodes']} node{'s' if row['nodes'] > 1 else ''}",
            "sizes": [], "measured": [], "fitted": [], "heldout": []})
        entry["sizes"].append(row["size_bytes"])
        entry["measured"].append(row["measured_busbw_Bps"])
        entry["fitted"].append(row["fitted_busbw_Bps"])
        entry["heldout"].append(row["heldout_busbw_Bps"])
    return list(series.values())


def check_figure_path(path, field="--plot"):
    """Raise InputError unless a figure can be written at `path` (before any work)."""
    check_output(path, field=field, suffixes=FORMATS, what="a figure", stdout_ok=False)


def draw_calibration(series, path, *, title=None):
    """Draw :func:`calibration_series` into `path` (.png, .svg or .pdf); return `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    check_figure_path(path)
    fig = Figure(figsize=(8.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    import matplotlib

    colors = matplotlib.colormaps["tab10"]
    for i, entry in enumerate(series):
        color = colors(i % 10)
        gb = [v / 1e9 for v in entry["measured"]]
        ax.plot(entry["sizes"], gb, "o", color=color, markersize=4, label=f"{entry['label']}: measured")
        ax.plot(entry["sizes"], [v / 1e9 for v in entry["fitted"]], "-", color=color, linewidth=1.2,
                label=f"{entry['label']}: fitted")
        held = [(s, v / 1e9) for s, v in zip(entry["sizes"], entry["heldout"]) if v is not None]
        if held:
            ax.plot(*zip(*held), "o", markerfacecolor="none", markeredgecolor=color, markersize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("message size per GPU (bytes)")
    ax.set_ylabel("bus bandwidth (GB/s)")
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="o", linestyle="none", markerfacecolor="none",
                          markeredgecolor="black"))
    labels.append("held-out prediction")
    ax.legend(handles, labels, fontsize=8)
    ax.set_title(title or "measured vs predicted all-reduce bus bandwidth")
    write_figure(fig, path, dpi=150)         # whole or not at all
    return str(path)
