"""sgdsim: which SGD synchronisation schedule reaches the target accuracy first on a cluster,
and what it costs on each tier of the network.

The public API, for notebooks and scripts (docs/api.md has a worked example); the ``sgdsim``
command is a thin shell over these same functions.

Clusters
    :func:`load_topology` (a file or a shipped name such as ``"seed_8x2"``),
    :func:`generate_topology` (a family such as ``"two-tier"``), :func:`write_topology`,
    :func:`topology_summary`.
Scenarios and runs
    :func:`load_scenario` (a file, a shipped name, or None for the built-in default),
    :func:`scenario_from_data` (a scenario written as a dict), :func:`run_scenario` (every
    variant, one results record each), :func:`run_variant`.
The network on its own
    :func:`simulate_transfers` (finish time of point-to-point transfers),
    :func:`simulate_allreduce` (time, algbw, busbw and bytes per tier of one all-reduce, and
    what ``auto`` chose), :func:`read_nccl_tests` (a measured ``all_reduce_perf`` output),
    :func:`calibrate` (fit a topology's collective costs to such outputs).
Results
    :func:`records_to_dataframe` (one row per run; needs pandas), :func:`format_table`,
    :func:`results_document`, :func:`write_results`.
Shipped files
    :func:`shipped` (``{name: (kind, description)}`` of the shipped topologies or scenarios).

Names are imported on first use, so ``import simulator`` stays cheap.
"""

import importlib

__version__ = "0.2.0"

_API = {
    "load_topology": "simulator.cluster.topology",
    "generate_topology": ("simulator.cluster.generators", "generate"),
    "write_topology": "simulator.cluster.writer",
    "topology_summary": "simulator.outputs.summary",
    "load_scenario": "simulator.experiments.scenario",
    "scenario_from_data": "simulator.experiments.scenario",
    "run_scenario": "simulator.experiments.runner",
    "run_variant": "simulator.experiments.runner",
    "simulate_transfers": "simulator.network.flows",
    "simulate_allreduce": "simulator.network.collectives",
    "read_nccl_tests": "simulator.network.nccltests",
    "calibrate": "simulator.experiments.calibrate",
    "records_to_dataframe": "simulator.outputs.report",
    "format_table": "simulator.outputs.report",
    "results_document": "simulator.outputs.report",
    "write_results": "simulator.outputs.report",
    "shipped": ("simulator.utils.shipped", "catalog"),
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    where = _API.get(name)
    if where is None:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
