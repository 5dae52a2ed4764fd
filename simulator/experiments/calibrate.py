"""Calibration: fit a topology's collective costs to measured nccl-tests ``all_reduce_perf`` runs.

Semantics (docs/calibrate.md)
-----------------------------
Each file is one run of ``all_reduce_perf`` (:mod:`simulator.network.nccltests`). Its
GPUs are mapped onto the topology: ``n`` hosts of ``g`` GPUs are the first ``n`` blocks of
the topology (natural order) and the first ``g`` GPUs of each. Every row gives one
observation per measured placement (out-of-place, in-place, or both): a size and a time.

**The model fitted** is the one :func:`simulator.network.collectives.simulate_allreduce`
runs with ``auto``: for each protocol (LL, LL128, Simple) its base latency and, per tier,
its hop latency, efficiency and bus-bandwidth ceiling (where it has one, as LL by
default); the in-switch latency and efficiency when a file's GPUs share a reducing
switch; and the protocol thresholds. A tier none of the files crosses keeps its values
(one-node files leave ``inter_block`` alone); the topology's links stay as given.

**The fit** minimises the squared relative errors ``log(predicted / measured)`` of all
observations (scipy's ``least_squares``, trust region within bounds: latencies 0-2 ms,
efficiencies 0.01-1), plus a weak pull (weight 0.003, relative) of every parameter towards
its starting value, so that parameters the data cannot see stay where they were. It
predicts with the cheapest candidate (algorithm, protocol) first; then it chooses the two
protocol thresholds that fit best (each half-way, on a log scale, between the last measured
size of one protocol and the first of the next), and refits with them (twice); it keeps the
thresholds only if they fit at least 1 % better than the cheapest-candidate rule (refitted
from the thresholds' solution too, as the objective has local minima where a choice flips).
For speed the bandwidth phase of each candidate is solved exactly at 49 ratios of the two
tiers' efficiencies (it depends on nothing else) and interpolated between them; the
errors reported are those of the full simulation with the fitted topology.

**Errors** (per size, per file): the *fit error* of the fit on every observation, and the
*held-out error*: the prediction for a size by a fit that did not see it, either of the
``holdout`` sizes (one split) or, by default, by ``k``-fold over the distinct sizes
(sizes sorted, fold ``i`` holds every ``k``-th from the ``i``-th). An error is
``predicted busbw / measured busbw - 1``.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ..cluster.topology import gpu_blocks
from ..network.collectives import CollectiveShape, simulate_allreduce
from ..network.nccltests import read_nccl_tests
from ..network.protocols import PROTOCOLS, collective_model, protocol_for_size
from ..network.routing import Router
from ..utils.errors import InputError

__all__ = ["CalibrationFile", "Calibration", "calibrate", "calibrated_topology", "fit",
           "observations_of"]

_TIERS = ("intra_block", "inter_block")
_PRIOR = 0.003
_LAT_MAX_US = 2000.0


@dataclass
class CalibrationFile:
    """One nccl-tests file mapped onto the topology."""

    file: str
    run: object
    members: list
    nodes: int
    gpus_per_node: int


@dataclass
class Calibration:
    """The outcome of :func:`calibrate`.

    Attributes
    ----------
    files : list of CalibrationFile
    params : dict
        The fitted ``collectives`` section (base units) of the calibrated topology.
    rows : list of dict
        Per file and size: ``file``, ``nodes``, ``size_bytes``, ``measured_busbw_Bps`` (mean
        of the placements used), ``fitted_busbw_Bps``, ``fit_error``, ``heldout_busbw_Bps``,
        ``heldout_error``, ``algorithm`` and ``protocol`` of the fitted prediction,
        ``heldout`` (True if the size was held out in a single split).
    method : str
        ``"k-fold (k=5)"`` or ``"holdout"``.
    """

    files: list
    params: dict
    rows: list
    method: str
    graph: object = None
    summary: dict = field(default_factory=dict)


def _group(graph, run, file):
    """The GPUs of `graph` that stand for the GPUs of `run`."""
    blocks = list(gpu_blocks(graph).values())
    per_block = min(len(b) for b in blocks)
    if run.hosts is not None and run.gpus_per_host is not None:
        nodes, per_node = run.hosts, run.gpus_per_host
    elif run.ranks <= per_block:
        nodes, per_node = 1, run.ranks
    elif run.ranks % per_block == 0:
        nodes, per_node = run.ranks // per_block, per_block
    else:
        raise InputError(f"{run.ranks} GPUs do not fill blocks of {per_block}", file=file,
                         fix="give output whose '# Using devices' lines name the hosts")
    if nodes > len(blocks) or per_node > per_block:
        raise InputError(f"the run used {nodes} node(s) of {per_node} GPUs, more than the "
                         f"topology has ({len(blocks)} blocks of {per_block})", file=file,
                         fix="calibrate a topology at least as large as the measured runs")
    members = [g for b in blocks[:nodes] for g in b[:per_node]]
    return members, nodes, per_node


def observations_of(files, placement="both"):
    """``(file index, size_bytes, time_s)`` rows of every measured placement."""
    rows = []
    for i, f in enumerate(files):
        rows += [(i, size, t) for size, t in f.run.times(placement)]
    return rows


# --------------------------------------------------------------------------- the model
_RATIOS = np.geomspace(0.05, 20.0, 49)     # inter/intra efficiency ratios solved exactly


class _Bandwidth:
    """A shape's bandwidth seconds per byte for any pair of tier efficiencies: the flow
    model solved exactly at a grid of ratios ``inter / intra``, interpolated in log-log
    between them (the time only depends on the ratio, scaled by the intra efficiency)."""

    def __init__(self, shape):
        if "inter_block" in shape.tiers and "intra_block" in shape.tiers:
            self.log_tau = np.log([shape.seconds_per_byte({"intra_block": 1.0,
                                                           "inter_block": r}) for r in _RATIOS])
        else:
            self.log_tau = None
            self.only = next(iter(shape.tiers))
            self.tau = shape.seconds_per_byte({t: 1.0 for t in _TIERS})

    def __call__(self, factor):
        if self.log_tau is None:
            return self.tau / factor[self.only]
        ratio = factor["inter_block"] / factor["intra_block"]
        return math.exp(np.interp(math.log(ratio), np.log(_RATIOS), self.log_tau)) \
            / factor["intra_block"]


class _Candidates:
    """For every file and pipelined algorithm, its shape (latency structure) and its
    bandwidth time per byte as a function of the tiers' efficiencies."""

    def __init__(self, graph, files):
        router = Router(graph)
        model = collective_model(graph)
        self.shapes = []
        for f in files:
            shapes = {}
            for algorithm in ("ring", "tree", "in-switch"):
                try:
                    shape = CollectiveShape(graph, f.members, algorithm, router=router)
                except InputError:
                    continue
                shapes[algorithm] = (shape, _Bandwidth(shape))
            self.shapes.append(shapes)
        self.tiers = sorted({t for s in self.shapes for sh, _ in s.values() for t in sh.tiers},
                            key=_TIERS.index)
        self.in_switch = any("in-switch" in s for s in self.shapes)
        self.base_model = model


def _vector_layout(candidates):
    """Names of the free parameters: (protocol, key) with key base/hop:tier/eff:tier."""
    names = []
    model = candidates.base_model
    for p in PROTOCOLS:
        names.append((p, "base_latency"))
        for t in candidates.tiers:
            names += [(p, f"hop_latency:{t}"), (p, f"efficiency:{t}")]
            if math.isfinite(model.protocol(p).tier(t).max_busbw_Bps):
                names.append((p, f"max_busbw:{t}"))
    if candidates.in_switch:
        names += [("in_switch", "latency"), ("in_switch", "efficiency")]
    return names


def _start(model, names):
    values = []
    for p, key in names:
        if p == "in_switch":
            values.append(model.in_switch.latency_s * 1e6 if key == "latency"
                          else model.in_switch.efficiency)
            continue
        cost = model.protocol(p)
        if key == "base_latency":
            values.append(cost.base_latency_s * 1e6)
        else:
            what, tier = key.split(":")
            tc = cost.tier(tier)
            values.append({"hop_latency": tc.hop_latency_s * 1e6, "efficiency": tc.efficiency,
                           "max_busbw": tc.max_busbw_Bps / 1e9}[what])
    return np.array(values)


def _section(model, names, x, thresholds=None):
    """The ``collectives.protocols`` (and thresholds) section for the vector `x`."""
    protocols = {}
    for (p, key), value in zip(names, x):
        if p == "in_switch":
            protocols.setdefault(p, {})[key] = float(value * 1e-6 if key == "latency" else value)
            continue
        cost = protocols.setdefault(p, {})
        if key == "base_latency":
            cost["base_latency"] = float(value * 1e-6)
        else:
            what, tier = key.split(":")
            cost.setdefault(tier, {})[what] = float(
                {"hop_latency": 1e-6, "efficiency": 1.0, "max_busbw": 1e9}[what] * value)
    section = {"protocols": protocols}
    if thresholds is not None:
        section["thresholds"] = dict(thresholds)
    return section


def _predict(candidates, model, names, x, obs, thresholds):
    """Predicted seconds of each observation (fast model): per observation the cheapest
    (algorithm, protocol) candidate, the protocol by `thresholds` when given."""
    graph_model = model_with(model, _section(model, names, x))
    file_of = np.array([fi for fi, _, _ in obs])
    size_of = np.array([size for _, size, _ in obs], dtype=float)
    out = np.full(len(obs), math.inf)
    costs = {p: graph_model.protocol(p) for p in PROTOCOLS}
    if thresholds:
        by_size = np.array([protocol_for_size(thresholds, size) for size in size_of])
    for fi, shapes in enumerate(candidates.shapes):
        rows = np.flatnonzero(file_of == fi)
        if not len(rows):
            continue
        sizes = size_of[rows]
        best = np.full(len(rows), math.inf)
        for algorithm, (shape, bandwidth) in shapes.items():
            for p in ["Simple"] if algorithm == "in-switch" else PROTOCOLS:
                cost = costs[p]
                tau = bandwidth(shape.capacity_factor(cost, graph_model))
                ceiling = shape.ceiling_Bps(cost, graph_model)
                cap = shape.bus_factor / ceiling if math.isfinite(ceiling) else 0.0
                t = shape.latency_s(cost, graph_model) + sizes * max(tau, cap)
                if thresholds:
                    t = np.where(by_size[rows] == p, t, math.inf)
                best = np.minimum(best, t)
        left = ~np.isfinite(best)          # thresholds left no candidate: ring, its protocol
        if left.any():
            shape, bandwidth = shapes["ring"]
            for j in np.flatnonzero(left):
                cost = costs[by_size[rows][j]]
                best[j] = shape.latency_s(cost, graph_model) + \
                    sizes[j] * bandwidth(shape.capacity_factor(cost, graph_model))
        out[rows] = best
    return out


def model_with(model, section):
    """`model` with the protocol costs of `section` (base units) on top."""
    import networkx as nx

    from ..network.protocols import collective_model as build

    spec = {"protocols": {}}
    for p in PROTOCOLS:
        cost = model.protocol(p)
        given = section["protocols"].get(p, {})
        tiers = {}
        for t in _TIERS:
            tc = cost.tier(t)
            tiers[t] = {"hop_latency": tc.hop_latency_s, "efficiency": tc.efficiency,
                        **({"max_busbw": tc.max_busbw_Bps} if math.isfinite(tc.max_busbw_Bps)
                           else {}), **given.get(t, {})}
        spec["protocols"][p] = {"base_latency": given.get("base_latency", cost.base_latency_s),
                                **tiers}
    spec["protocols"]["in_switch"] = {"latency": model.in_switch.latency_s,
                                      "efficiency": model.in_switch.efficiency,
                                      **section["protocols"].get("in_switch", {})}
    spec["protocols"]["tree"] = {"efficiency": model.tree.efficiency,
                                 **{t: {"channel_busbw": model.tree.channel_busbw_Bps[t]}
                                    for t in _TIERS}}
    return build(nx.Graph(collectives=spec))


def _bounds(names):
    low, high = [], []
    for _, key in names:
        if "efficiency" in key:
            low.append(0.01)
            high.append(1.0)
        elif "max_busbw" in key:            # GB/s
            low.append(0.1)
            high.append(1e4)
        else:
            low.append(0.0)
            high.append(_LAT_MAX_US)
    return np.array(low), np.array(high)


def _fit_vector(candidates, model, names, x0, obs, thresholds):
    from scipy.optimize import least_squares

    measured = np.log(np.array([t for _, _, t in obs]))
    scale = np.maximum(np.abs(x0), 1e-3)

    def residuals(x):
        predicted = _predict(candidates, model, names, x, obs, thresholds)
        return np.concatenate([np.log(predicted) - measured, _PRIOR * (x - x0) / scale])

    low, high = _bounds(names)
    start = np.clip(x0, low, high)
    result = least_squares(residuals, start, bounds=(low, high), x_scale=scale, method="trf",
                           max_nfev=400)
    return result.x


def _best_thresholds(candidates, model, names, x, obs):
    """The LL and LL128 thresholds among the measured sizes that fit `x` best."""
    sizes = sorted({size for _, size, _ in obs})
    measured = np.log(np.array([t for _, _, t in obs]))
    errors = {}
    for p in PROTOCOLS:
        forced = {"LL": math.inf, "LL128": math.inf} if p == "LL" else \
            ({"LL": -1.0, "LL128": math.inf} if p == "LL128" else {"LL": -1.0, "LL128": -1.0})
        predicted = _predict(candidates, model, names, x, obs, forced)
        errors[p] = (np.log(predicted) - measured) ** 2
    size_of = np.array([size for _, size, _ in obs])
    edges = [-1.0] + sizes
    best, pick = math.inf, None
    for i, t1 in enumerate(edges):
        for t2 in edges[i:]:
            total = np.where(size_of <= t1, errors["LL"],
                             np.where(size_of <= t2, errors["LL128"], errors["Simple"])).sum()
            if total < best - 1e-15:
                best, pick = total, (t1, t2)
    # Between the last measured size of one protocol and the first of the next, the
    # threshold sits half-way on a log scale: a size in between is as close to either.
    def between(t):
        if t < 0:
            return 0.0
        above = [size for size in sizes if size > t]
        return math.sqrt(t * above[0]) if above else t
    t1, t2 = pick
    return {"LL": between(t1), "LL128": between(t2)}


def fit(graph, files, obs):
    """Fit the collective costs of `graph` to the observations `obs`.

    Returns
    -------
    dict
        The ``collectives`` section (base units) to put on the topology: ``protocols``
        (the fitted values) and ``thresholds``.
    """
    candidates = _Candidates(graph, files)
    model = collective_model(graph)
    names = _vector_layout(candidates)
    x0 = _start(model, names)
    x = _fit_vector(candidates, model, names, x0, obs, None)
    free = _squared_error(candidates, model, names, x, obs, None)
    y, thresholds = x, None
    for _ in range(2):
        thresholds = _best_thresholds(candidates, model, names, y, obs)
        y = _fit_vector(candidates, model, names, y, obs, thresholds)
    fixed = _squared_error(candidates, model, names, y, obs, thresholds)
    # The cheapest-candidate rule again, from where the thresholds led (the objective has
    # local minima where the choice of protocol flips).
    x2 = _fit_vector(candidates, model, names, y, obs, None)
    again = _squared_error(candidates, model, names, x2, obs, None)
    if again < free:
        x, free = x2, again
    if fixed < 0.99 * free:           # thresholds explain the choices better than the costs
        return _section(model, names, y, thresholds)
    return _section(model, names, x, None)


def _squared_error(candidates, model, names, x, obs, thresholds):
    predicted = _predict(candidates, model, names, x, obs, thresholds)
    measured = np.array([t for _, _, t in obs])
    return float(((np.log(predicted) - np.log(measured)) ** 2).sum())


def calibrated_topology(graph, section):
    """A copy of `graph` whose ``collectives`` carries `section` over what it had."""
    calibrated = graph.copy()
    spec = dict(graph.graph.get("collectives") or {})
    protocols = {name: dict(cost) for name, cost in (spec.get("protocols") or {}).items()}
    for name, cost in section["protocols"].items():
        merged = protocols.setdefault(name, {})
        for key, value in cost.items():
            merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    spec["protocols"] = protocols
    if section.get("thresholds") is not None:
        spec["thresholds"] = section["thresholds"]
    calibrated.graph["collectives"] = spec
    return calibrated


def _predicted_busbw(graph, f, size):
    result = simulate_allreduce(graph, size, "auto", f.members)
    return result["busbw"], result["algorithm"], result["protocol"]


def _busbw(size, time_s, ranks):
    return size / time_s * 2 * (ranks - 1) / ranks


def _check_sizes(holdout, obs):
    sizes = {size for _, size, _ in obs}
    missing = [s for s in holdout if s not in sizes]
    if missing:
        raise InputError(f"no measured size {missing[0]:.0f} B to hold out", field="--holdout",
                         fix="hold out sizes the files measured, e.g. --holdout 64MiB,1GiB")
    if len(sizes - set(holdout)) < 2:
        raise InputError("holding these out leaves fewer than 2 sizes to fit", field="--holdout",
                         fix="hold out fewer sizes")


def calibrate(graph, paths, *, holdout=None, folds=5, placement="both"):
    """Fit `graph`'s collective costs to nccl-tests files and say how well it predicts.

    Parameters
    ----------
    graph : networkx.Graph
        The topology to calibrate.
    paths : list of str
        nccl-tests ``all_reduce_perf`` outputs, e.g. one per node count.
    holdout : list of float, optional
        Sizes (bytes) to leave out of the fit and predict; without, `folds`-fold
        cross-validation over the distinct sizes.
    folds : int
    placement : {"both", "out_of_place", "in_place"}

    Returns
    -------
    Calibration

    Raises
    ------
    InputError
        A bad file (one line naming it), GPUs the topology does not have, holdout sizes
        that were not measured, fewer than 2 sizes left to fit.
    """
    if placement not in ("both", "out_of_place", "in_place"):
        raise InputError(f"unknown placement {placement!r}", field="--placement",
                         fix="use both, out-of-place or in-place")
    if not paths:
        raise InputError("no nccl-tests files given", fix="name one or more all_reduce_perf outputs")
    files = []
    for path in paths:
        run = read_nccl_tests(path)
        members, nodes, per_node = _group(graph, run, str(path))
        files.append(CalibrationFile(str(path), run, members, nodes, per_node))
    obs = observations_of(files, placement)
    sizes = sorted({size for _, size, _ in obs})
    if holdout:
        _check_sizes(holdout, obs)
        splits = [set(holdout)]
        method = "holdout"
    else:
        k = max(2, min(folds, len(sizes)))
        splits = [set(sizes[i::k]) for i in range(k)]
        method = f"k-fold (k={k})"
    full = fit(graph, files, [o for o in obs if not holdout or o[1] not in holdout])
    fitted_graph = calibrated_topology(graph, full)
    heldout_pred = {}
    for held in splits:
        section = full if holdout else fit(graph, files, [o for o in obs if o[1] not in held])
        fold_graph = fitted_graph if holdout else calibrated_topology(graph, section)
        for i, f in enumerate(files):
            for size in {o[1] for o in obs if o[0] == i and o[1] in held}:
                heldout_pred[(i, size)] = _predicted_busbw(fold_graph, f, size)[0]
    rows = []
    for i, f in enumerate(files):
        for size in sorted({o[1] for o in obs if o[0] == i}):
            times = [t for fi, s, t in obs if fi == i and s == size]
            measured = float(np.mean([_busbw(size, t, f.run.ranks) for t in times]))
            busbw, algorithm, protocol = _predicted_busbw(fitted_graph, f, size)
            held = heldout_pred.get((i, size))
            rows.append({"file": f.file, "nodes": f.nodes, "gpus": f.run.ranks,
                         "size_bytes": size, "measured_busbw_Bps": measured,
                         "fitted_busbw_Bps": busbw, "fit_error": busbw / measured - 1,
                         "heldout_busbw_Bps": held,
                         "heldout_error": None if held is None else held / measured - 1,
                         "algorithm": algorithm, "protocol": protocol,
                         "heldout": bool(holdout) and size in holdout})
    summary = _summary(rows, holdout)
    return Calibration(files, full, rows, method, fitted_graph, summary)


def _summary(rows, holdout):
    def stats(key, subset):
        values = [abs(r[key]) for r in subset if r[key] is not None]
        return {"mean": float(np.mean(values)) if values else None,
                "max": float(np.max(values)) if values else None, "count": len(values)}

    scored = [r for r in rows if r["heldout"]] if holdout else rows
    return {"fit_error": stats("fit_error", [r for r in rows if not r["heldout"]] or rows),
            "heldout_error": stats("heldout_error", scored)}
