"""Results files and tables: plain records in, text and JSON out (no plotting here).

The results file is JSON: ``{"sgdsim": VERSION, "scenario": NAME, "source": FILE,
"runs": [record, ...]}`` with the records of :func:`simulator.experiments.runner.run_variant`. It is
written with sorted keys and no wall-clock data, so the same inputs and seed give the
same file byte for byte; it is written to a temporary file and renamed, so an
interrupted write never leaves half a file.
"""

import json
import os
from importlib.metadata import PackageNotFoundError, version

from ..utils.units import format_bytes, format_time

__all__ = ["results_document", "write_results", "format_table"]


def _version():
    try:
        return version("sgdsim")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def results_document(scenario, records):
    """The results file's content for a scenario's runs."""
    return {"sgdsim": _version(), "scenario": scenario.name, "source": scenario.source,
            "topology": scenario.topology_source, "runs": list(records)}


def write_results(path, document):
    """Write `document` as JSON to `path` atomically (temporary file, then rename)."""
    text = json.dumps(document, indent=1, sort_keys=True, allow_nan=False) + "\n"
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


_COLUMNS = [
    ("variant", lambda r: r["label"]),
    ("time-to-acc", lambda r: "diverged" if r["diverged"] else
        ("not reached" if r["time_to_accuracy_s"] is None else format_time(r["time_to_accuracy_s"]))),
    ("final acc", lambda r: "-" if r["final_test_accuracy"] is None else f"{r['final_test_accuracy']:.3f}"),
    ("steps", lambda r: str(r["steps"])),
    ("sim time", lambda r: format_time(r["simulated_time_s"])),
    ("compute", lambda r: format_time(r["compute_time_s"])),
    ("comm", lambda r: format_time(r["comm_time_s"])),
    ("intra bytes", lambda r: format_bytes(r["comm_bytes"]["intra_block"])),
    ("inter bytes", lambda r: format_bytes(r["comm_bytes"]["inter_block"])),
    ("syncs blk/glob", lambda r: f"{r['syncs']['block']}/{r['syncs']['global']}"),
]


def format_table(records, *, target_accuracy=None):
    """A fixed-width comparison table of runs, one row per run.

    Times are simulated seconds; ``compute`` and ``comm`` are means per GPU; bytes are
    summed over the links of each tier.
    """
    rows = [[name for name, _ in _COLUMNS]] + [[cell(r) for _, cell in _COLUMNS] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                       enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if target_accuracy is not None:
        lines.insert(0, f"target test accuracy {target_accuracy:g}; times are simulated, "
                        "compute and comm are per-GPU means")
    return "\n".join(lines)
