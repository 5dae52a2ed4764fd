"""Results files and tables: plain records in, text and JSON out (no plotting here).

The results file is JSON: ``{"sgdsim": VERSION, "scenario": NAME, "source": FILE,
"runs": [record, ...]}`` with the records of :func:`simulator.experiments.runner.run_variant`. It is
written with sorted keys and no wall-clock data, so the same inputs and seed give the
same file byte for byte; it is written to a temporary file and renamed, so an
interrupted write never leaves half a file.
"""

import json

from .. import __version__
from ..utils.files import write_text_atomic
from ..utils.units import format_bytes, format_time

__all__ = ["results_document", "write_results", "format_table", "records_to_dataframe"]


def results_document(scenario, records):
    """The results file's content for a scenario's runs."""
    return {"sgdsim": __version__, "scenario": scenario.name, "source": scenario.source,
            "topology": scenario.topology_source, "runs": list(records)}


def write_results(path, document):
    """Write `document` as JSON to `path` atomically (temporary file, then rename)."""
    text = json.dumps(document, indent=1, sort_keys=True, allow_nan=False) + "\n"
    write_text_atomic(path, text)


_STATUS_TEXT = {"ok": "ok", "diverged": "diverged", "failed": "failed",
                "not_learning": "not learning"}
_SHORT_SYNCS = {"block": "blk", "global": "glob"}


def _tiers(records):
    """The tiers of `records`, innermost first (a record's ``tiers``, else its bytes' keys)."""
    tiers = []
    for record in records:
        for tier in record.get("tiers") or list(record.get("comm_bytes", {})):
            if tier not in tiers:
                tiers.append(tier)
    return tiers


def _columns(records):
    """(header, cell function) of every column of :func:`format_table`."""
    tiers = _tiers(records)
    short = tiers == ["intra_block", "inter_block"]
    sync_keys = []
    for record in records:
        for key in record.get("syncs", {}):
            if key not in sync_keys:
                sync_keys.append(key)
    sync_keys.sort(key=lambda k: k == "global")           # global last

    def tier_cells(tier):
        name = tier.split("_")[0] if short else tier
        time_of = (lambda r: "-" if tier not in (r.get("comm_time_by_tier_s") or {})
                   else format_time(r["comm_time_by_tier_s"][tier]))
        bytes_of = (lambda r: "-" if tier not in r.get("comm_bytes", {})
                    else format_bytes(r["comm_bytes"][tier]))
        return [(f"{name} comm", time_of), (f"{name} bytes", bytes_of)]

    columns = [
        ("variant", lambda r: r["label"]),
        ("status", lambda r: _STATUS_TEXT.get(r.get("status"), "diverged" if r.get("diverged")
                                              else "ok")),
        ("time-to-acc", lambda r: "not reached" if r["time_to_accuracy_s"] is None
            else format_time(r["time_to_accuracy_s"])),
        ("final acc", lambda r: "-" if r["final_test_accuracy"] is None
            else f"{r['final_test_accuracy']:.3f}"),
        ("steps", lambda r: str(r["steps"])),
        ("sim time", lambda r: format_time(r["simulated_time_s"])),
        ("compute", lambda r: format_time(r["compute_time_s"])),
        ("comm", lambda r: format_time(r["comm_time_s"])),
    ]
    if any("overlapped_comm_time_s" in r for r in records):      # DDP overlap: the hidden part
        columns.append(("overlapped", lambda r: "-" if "overlapped_comm_time_s" not in r
                        else format_time(r["overlapped_comm_time_s"])))
    for tier in tiers:
        columns += tier_cells(tier)
    columns.append(("syncs " + "/".join(_SHORT_SYNCS.get(k, k) for k in sync_keys),
                    lambda r: "/".join(str(r.get("syncs", {}).get(k, "-")) for k in sync_keys)))
    if any("faults" in r for r in records):
        columns += _fault_columns()
    return columns


def _fault_columns():
    """Columns of runs under faults (docs/semantics.md, "Faults"); "-" for a run without."""
    def cell(text):
        return lambda r: "-" if "faults" not in r else text(r["faults"])

    return [
        ("goodput", cell(lambda f: "-" if f["goodput_steps_per_s"] is None
                         else f"{f['goodput_steps_per_s']:.4g} step/s")),
        ("failures", cell(lambda f: str(f["failures"]))),
        ("restarts", cell(lambda f: str(f["restarts"]))),
        ("fail wait", cell(lambda f: format_time(f["failure_wait_s"]))),
        ("lost GPU time", cell(lambda f: format_time(f["lost_gpu_s"]))),
        ("GPUs mean/min", cell(lambda f: f"{f['mean_workers']:.3g}/{f['min_workers']}")),
    ]


def format_table(records, *, target_accuracy=None):
    """A fixed-width comparison table of runs, one row per run, and why runs failed.

    Times are simulated seconds; ``compute``, ``comm`` and each tier's comm time are means
    per GPU (the tiers' add up to ``comm``); bytes are summed over the links of each tier.
    When a run overlaps its gradient all-reduces with the backward pass (DDP), an
    ``overlapped`` column gives the part of ``comm`` that ran during backward passes
    (``-`` for runs without overlap).
    A run that ``diverged``, ``failed`` or is ``not learning`` gets a line below the table
    saying why. Runs under faults add: ``goodput`` (steps per simulated second),
    ``failures``, ``restarts``, ``fail wait`` (per GPU, time stalled by failures), ``lost
    GPU time`` (summed over GPUs: work discarded, stalled and down) and ``GPUs mean/min``
    (working GPUs over time).
    """
    columns = _columns(records)
    rows = [[name for name, _ in columns]] + [[cell(r) for _, cell in columns] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                       enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if target_accuracy is not None:
        which = ("a model some GPU holds" if any(r.get("evaluate") == "any_gpu" for r in records)
                 else "the model all GPUs hold after a global sync")
        lines.insert(0, f"target test accuracy {target_accuracy:g}, reached by {which}; times "
                        "are simulated, compute and comm are per-GPU means")
    for record in records:
        if record.get("status") not in (None, "ok"):
            lines.append(f"{record['label']}: {_STATUS_TEXT[record['status']]}: "
                         f"{record.get('status_reason') or ''}".rstrip(": "))
    return "\n".join(lines)


def _flat(record, prefix=""):
    """`record` with nested mappings flattened to dotted keys (``comm_bytes.inter_block``)."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            flat[prefix + key] = value
    return flat


def records_to_dataframe(records, *, curve=False):
    """Results records as a pandas DataFrame: one row per run, or per point of each curve.

    Parameters
    ----------
    records : list of dict
        Records of :func:`simulator.run_scenario` (or the ``runs`` of a results file).
    curve : bool
        False: one row per run, nested keys flattened with dots (``comm_bytes.inter_block``,
        ``params.H``), lists (the curve) left out. True: one row per point of every run's
        curve, with columns ``label``, ``simulated_time_s``, ``step``, ``test_accuracy``,
        ``train_loss``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ImportError
        Without pandas, saying how to install it (``pip install 'sgdsim[pandas]'``).

    Examples
    --------
    >>> records = [{"label": "local H=4", "time_to_accuracy_s": 0.02,
    ...             "comm_bytes": {"inter_block": 7e8}, "curve": [[0.01, 1, 0.5, 2.0]]}]
    >>> list(records_to_dataframe(records).columns)
    ['label', 'time_to_accuracy_s', 'comm_bytes.inter_block']
    >>> float(records_to_dataframe(records, curve=True).loc[0, "test_accuracy"])
    0.5
    """
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError("records_to_dataframe needs pandas: pip install pandas "
                          "(or pip install 'sgdsim[pandas]')") from err
    if not curve:
        return pd.DataFrame([_flat(record) for record in records])
    columns = ["label", "simulated_time_s", "step", "test_accuracy", "train_loss"]
    rows = [[record["label"], *point] for record in records for point in record["curve"]]
    return pd.DataFrame(rows, columns=columns)
