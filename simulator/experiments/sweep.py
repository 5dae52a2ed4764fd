"""Sweeps: the points of a scenario file's ``sweep`` section, expanded and checked.

A scenario file may carry a ``sweep`` section (docs/sweeps.md) whose paths address the
file's own data: ``topology.blocks``, ``variants[0].H``, ``variants[*].H``, ``seed``...

* ``grid: {PATH: [v1, v2, ...], ...}`` is the cartesian product of its axes in the order
  written: the first axis varies slowest, as in nested loops (``itertools.product``).
* ``list: [{PATH: v, ...}, ...]`` gives explicit points, in order.
* Both: every list point is combined with the whole grid (list point 0 with every grid
  point, then list point 1 ...). Within a point, the list point's paths are applied first,
  in the order written, then the grid's; a path may lie inside an earlier one (a list point
  sets ``topology: a.yaml``, the grid sets ``topology.inter_block.bandwidth``), but one path
  cannot be swept by both.

A point is the scenario's data (without ``sweep``) with the point's values set at their
paths. A path into a topology given as a YAML file inlines that file's data first. A path
that changes a key inside a variant drops that variant's written ``label`` (unless the
point sets it too): a label written for other values would mislead, as with ``sgdsim
run``'s overrides. Every point is checked with :func:`~simulator.experiments.scenario.scenario_from_data`
before anything runs; a problem is one InputError naming the point and, for a swept value,
the line of the sweep section where the value is written.

Each variant of each point is one *run*. A run's id is the first 12 hex digits of the
SHA-256 of the canonical JSON of ``{"scenario": point data, "variant": label}``: the same
run has the same id whatever its place in the plan, so ``--resume`` keeps every finished
run of an edited sweep that is still in it, and a changed scenario is run afresh.

Running the runs and writing their files is :mod:`simulator.experiments.sweep_runner`'s job.
"""

import copy
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass

from .. import __version__
from ..utils.errors import InputError
from ..utils.shipped import resolve
from ..utils.yamlfile import (
    Places,
    did_you_mean,
    format_field,
    load_schema,
    load_yaml,
    validate_schema,
)
from ..cluster.levels import graph_levels, graph_tiers
from .scenario import PARAMETER_ALGORITHMS, scenario_from_data

__all__ = ["Point", "Run", "SweepPlan", "load_sweep", "plan_sweep", "parse_path", "run_id",
           "describe_values", "short_value", "check_path", "build_point"]


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Point:
    """One point of a sweep: its values (path -> value, as applied) and scenario data."""

    index: int                     # 0-based, in plan order
    values: dict                   # path text -> value
    data: dict                     # the scenario's data with the values set, no sweep


@dataclass(frozen=True)
class Run:
    """One variant of one point."""

    id: str                        # content hash, see the module docstring
    point: int                     # Point.index
    variant: str                   # the variant's label in that point's scenario


@dataclass(frozen=True)
class SweepPlan:
    """A checked, expanded sweep: what ``sgdsim sweep`` runs."""

    name: str                      # the scenario's name
    source: str                    # the scenario file
    base_dir: str                  # absolute directory of relative paths in the data
    paths: tuple                   # swept path texts, in column order
    points: tuple                  # of Point
    runs: tuple                    # of Run, plan order
    tiers: tuple = ("intra_block", "inter_block")  # the points' topologies' tiers, innermost first
    levels: tuple = ("block",)     # and their levels (summary.csv's columns)
    overlap: bool = False          # some run overlaps gradients with backward (DDP)
    faults: bool = False           # some point has a faults section (summary.csv's columns)

    def task(self, run):
        """The picklable argument of :func:`run_task` for `run` (plain data only)."""
        return {"id": run.id, "data": self.points[run.point].data, "variant": run.variant,
                "file": self.source, "base_dir": self.base_dir, "name": self.name}

    def document(self):
        """The content of sweep.json."""
        return {"sgdsim": __version__, "scenario": self.name, "source": self.source,
                "paths": list(self.paths),
                "points": [{"index": p.index, "values": p.values} for p in self.points],
                "runs": [{"id": r.id, "point": r.point, "variant": r.variant}
                         for r in self.runs]}


def load_sweep(path):
    """Read a scenario file with a ``sweep`` section; check and expand it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    SweepPlan

    Raises
    ------
    InputError
        The first problem: a malformed section, an unknown path (with a did-you-mean), a
        point whose scenario is invalid (``sweep point 7 (variants[0].H=0): ...``).
    """
    file = str(path)
    real = resolve("scenarios", file, missing_ok=True)     # a file, or a shipped sweep's name
    data, locate = load_yaml(real)
    return plan_sweep(data, file=file, locate=locate, base_dir=os.path.dirname(real) or ".")


def plan_sweep(data, *, file=None, locate=None, base_dir="."):
    """:func:`load_sweep` for data already parsed (``yamlfile.load_yaml``)."""
    at = Places(file, locate)
    if not isinstance(data, dict) or "sweep" not in data:
        raise InputError("no sweep section", **at(("sweep",)),
                         fix="add e.g. 'sweep: {grid: {variants[0].H: [1, 2, 4]}}' "
                             "(docs/sweeps.md), or use 'sgdsim run'")
    _check_section(data["sweep"], at)
    section = data["sweep"]
    base = {key: value for key, value in data.items() if key != "sweep"}
    base_dir = os.path.abspath(base_dir)
    name = data.get("name") or (os.path.splitext(os.path.basename(file))[0] if file
                                else "scenario")

    axes = []                       # (text, parts, [(value, where_path)])
    listed = section.get("list")
    for index, item in enumerate(listed or ()):
        for text in item:
            where = ("sweep", "list", index, text)
            if text in section.get("grid", {}):
                raise InputError(f"{text} is swept by both grid and list", **at(where),
                                 fix="sweep each path in one of them")
            _parse_checked(text, at, where)
    for text, values in section.get("grid", {}).items():
        axes.append((text, _parse_checked(text, at, ("sweep", "grid", text)),
                     [(value, ("sweep", "grid", text, j)) for j, value in enumerate(values)]))
    paths = list(dict.fromkeys(t for item in listed or () for t in item))
    paths += [text for text, _, _ in axes]

    points, runs, seen = [], [], {}
    tiers, levels, overlap, faults = [], [], False, False
    list_items = list(enumerate(listed)) if listed else [(None, {})]
    for (list_index, item), combo in itertools.product(
            list_items, itertools.product(*[values for _, _, values in axes])):
        assignments = [(text, parse_path(text), value, ("sweep", "list", list_index, text))
                       for text, value in item.items()]
        assignments += [(text, parts, value, where)
                        for (text, parts, _), (value, where) in zip(axes, combo)]
        index = len(points)
        point, scenario = _build_point(index, base, assignments, at, base_dir, name)
        points.append(point)
        for tier in graph_tiers(scenario.topology):
            if tier not in tiers:
                tiers.append(tier)
        for level in graph_levels(scenario.topology):
            if level not in levels:
                levels.append(level)
        faults = faults or getattr(scenario, "faults", None) is not None
        for variant in scenario.variants:
            overlap = overlap or (variant.overlap or scenario.timing.overlap) == "ddp"
            run = Run(id=run_id(point.data, variant.label), point=index, variant=variant.label)
            if run.id in seen:
                where = assignments[-1][3] if assignments else ("sweep",)
                raise InputError(f"sweep point {index} ({describe_values(point.values)}) "
                                 f"repeats point {seen[run.id]}", **at(where),
                                 fix="sweep each value once")
            seen[run.id] = index
            runs.append(run)
    return SweepPlan(name=name, source=file if file is not None else "<data>",
                     base_dir=base_dir, paths=tuple(paths), points=tuple(points),
                     runs=tuple(runs), tiers=tuple(tiers), levels=tuple(levels), overlap=overlap,
                     faults=faults)


def run_id(data, label):
    """The id of the run of variant `label` on scenario `data` (12 hex digits)."""
    text = json.dumps({"scenario": data, "variant": label}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check_section(section, at):
    """The section's shape, against the scenario schema's ``sweep`` property."""
    schema = load_schema("scenario")
    sub = dict(schema["properties"]["sweep"], **{"$defs": schema.get("$defs", {})})
    try:
        validate_schema(section, sub, file=at.file,
                        locate=None if at.locate is None else
                        (lambda path: at.locate(("sweep",) + tuple(path))))
    except InputError as err:
        field = "sweep" + (f".{err.field}" if err.field else "")
        raise InputError(err.message, file=err.file, line=err.line, field=field,
                         fix=err.fix) from None
    if not section.get("grid") and not section.get("list"):
        raise InputError("a sweep needs a grid or a list", **at(("sweep",)),
                         fix="add e.g. 'grid: {variants[0].H: [1, 2, 4]}'")


# --------------------------------------------------------------------------- paths
_SEGMENT = re.compile(r"([\w-]+)((?:\[(?:\d+|\*)\])*)")
_INDEX = re.compile(r"\[(\d+|\*)\]")


def parse_path(text):
    """The parts of a sweep path: keys, list indices (int) and ``"*"`` (every item).

    Examples
    --------
    >>> parse_path("variants[*].H")
    ('variants', '*', 'H')
    >>> parse_path("topology.inter_block.bandwidth")
    ('topology', 'inter_block', 'bandwidth')
    """
    parts = []
    for segment in str(text).split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            raise ValueError(f"cannot read the path {text!r}")
        parts.append(match.group(1))
        parts += ["*" if i == "*" else int(i) for i in _INDEX.findall(match.group(2))]
    return tuple(parts)


def _parse_checked(text, at, where):
    """parse_path(text), checked against the schemas; errors located at `where`."""
    try:
        parts = parse_path(text)
    except ValueError as err:
        raise InputError(str(err), **at(where),
                         fix="write keys joined by dots, with [N] or [*] after a list, "
                             "e.g. variants[0].H or topology.inter_block.bandwidth") from None
    if parts[0] == "sweep":
        raise InputError("a sweep cannot change the sweep section", **at(where),
                         fix="sweep a key of the scenario, e.g. variants[0].H")
    scenario, topology = load_schema("scenario"), load_schema("topology")
    schema, root = scenario, scenario
    for depth, part in enumerate(parts):
        if depth == 1 and parts[0] == "topology":
            schema, root = topology, topology          # into a topology's own keys
        options = _branches(schema, root)
        if part == "*" or isinstance(part, int):
            items = [s["items"] for s in options if "items" in s]
            if not items and any(options):              # {}: free-form, anything goes
                raise InputError(f"{format_field(parts[:depth])} is not a list", **at(where),
                                 fix="remove the index")
            schema = items[0] if items else {}
            continue
        declared = {}
        for option in options:
            declared.update({k: v for k, v in option.get("properties", {}).items()
                             if k not in declared})
        extra = [s["additionalProperties"] for s in options
                 if isinstance(s.get("additionalProperties"), dict)]
        if part in declared:
            schema = declared[part]
        elif extra:
            schema = extra[0]
        elif declared or any(s.get("additionalProperties") is False for s in options):
            inside = format_field(parts[:depth]) or "the scenario"
            same = [k for k in declared if k.lower() == part.lower()]
            hint = f"did you mean '{same[0]}'?" if same else did_you_mean(part, declared)
            raise InputError(f"unknown key '{part}' in {inside}", **at(where),
                             fix=hint or f"known here: {', '.join(declared)}")
        else:
            schema = {}                                  # free-form below here
    return parts


def _branches(schema, root):
    """The schema and its oneOf/anyOf alternatives, $refs resolved."""
    schema = _resolve(schema, root)
    found = [schema]
    for key in ("oneOf", "anyOf"):
        for option in schema.get(key, ()):
            found += _branches(option, root)
    return found


def _resolve(schema, root):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema if isinstance(schema, dict) else {}


# --------------------------------------------------------------------------- points
def _build_point(index, base, assignments, at, base_dir, name):
    """(Point, Scenario) with `assignments` applied to a copy of `base`, checked."""
    data = copy.deepcopy(base)
    values, swept = {}, []          # swept: (concrete path, where) in order applied
    changed, labelled = set(), set()  # variants whose keys / labels the point sets
    for text, parts, value, where in assignments:
        values[text] = value
        for concrete in _assign(data, parts, value, at, where, base_dir):
            swept.append((concrete, where))
            if concrete[0] == "variants" and len(concrete) >= 3:
                (labelled if concrete[2] == "label" else changed).add(concrete[1])
    for variant in sorted(changed - labelled):
        if isinstance(data["variants"][variant], dict):
            data["variants"][variant].pop("label", None)

    def locate(path):
        for concrete, where in reversed(swept):
            if tuple(path[:len(concrete)]) == concrete:
                return at.line(where)
        return at.line(path)

    try:
        scenario = scenario_from_data(data, file=at.file,
                                      locate=None if at.locate is None else locate,
                                      base_dir=base_dir, name=name)
    except InputError as err:
        prefix = f"sweep point {index} ({describe_values(values)})"
        raise InputError(err.message, file=err.file, line=err.line,
                         field=prefix + (f": {err.field}" if err.field else ""),
                         fix=err.fix) from None
    return Point(index=index, values=values, data=data), scenario


def _assign(data, parts, value, at, where, base_dir):
    """Set `value` at `parts` in `data`; return the concrete paths set."""
    if parts[0] == "topology" and len(parts) > 1 and isinstance(data.get("topology"), str):
        data["topology"] = _topology_data(data["topology"], at, where, base_dir)
    targets = [((), data)]
    for depth, part in enumerate(parts[:-1]):
        nxt = []
        for path, node in targets:
            for key, child in _children(node, part, parts[depth + 1], path, at, where):
                nxt.append((path + (key,), child))
        targets = nxt
    done = []
    for path, node in targets:
        last = parts[-1]
        if last == "*" or isinstance(last, int):
            if not isinstance(node, list) or (isinstance(last, int) and last >= len(node)):
                raise _missing(path, last, node, at, where)
            keys = range(len(node)) if last == "*" else [last]
        elif isinstance(node, dict):
            keys = [last]
        else:
            raise _missing(path, last, node, at, where)
        for key in keys:
            node[key] = copy.deepcopy(value)
            done.append(path + (key,))
    return done


def _children(node, part, next_part, path, at, where):
    """[(key, child)] that `part` selects in `node`, creating a missing mapping.

    ``variants[*]`` followed by an algorithm's parameter (``H``, ``Hb``, ``switch_epoch``,
    ``switch_step``) selects the variants that take it, as ``sgdsim run -H`` does.
    """
    if part == "*":
        if not isinstance(node, list):
            raise _missing(path, part, node, at, where)
        if path == ("variants",) and next_part in PARAMETER_ALGORITHMS:
            chosen = [(i, v) for i, v in enumerate(node) if isinstance(v, dict)
                      and v.get("algorithm") in PARAMETER_ALGORITHMS[next_part]]
            if not chosen:
                raise InputError(f"{next_part} applies to {', '.join(PARAMETER_ALGORITHMS[next_part])} "
                                 "variants, and this scenario has none", **_at_key(at, where),
                                 fix="sweep another path, or add such a variant")
            return chosen
        return list(enumerate(node))
    if isinstance(part, int):
        if not isinstance(node, list) or part >= len(node):
            raise _missing(path, part, node, at, where)
        return [(part, node[part])]
    if not isinstance(node, dict):
        raise _missing(path, part, node, at, where)
    if part not in node:
        if isinstance(next_part, int) or next_part == "*":
            raise _missing(path + (part,), next_part, None, at, where)
        node[part] = {}
    return [(part, node[part])]


def _at_key(at, where):
    """InputError location of a sweep entry: the value's line, the swept key's field."""
    key = where[:3] if where[1] == "grid" else where
    return {"file": at.file, "line": at.line(where), "field": format_field(key)}


def _missing(path, key, node, at, where):
    inside = format_field(path) or "the scenario"
    if isinstance(node, list):
        what = f"{inside} has {len(node)} item{'s' if len(node) != 1 else ''}, no [{key}]"
    elif node is None:
        what = f"the scenario has no {inside} list to index"
    else:
        what = f"{inside} is {_kind(node)}, not a {'list' if isinstance(key, int) else 'mapping'}"
    return InputError(what, **_at_key(at, where), fix="sweep a path that exists in the scenario")


def _kind(value):
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), "a value")


def _topology_data(spec, at, where, base_dir):
    """The data of the YAML topology file `spec`, to be inlined."""
    path = resolve("topologies", spec, base_dir, relative_to="the scenario file's directory",
                   **at(("topology",)))
    if not path.lower().endswith((".yaml", ".yml")):
        raise InputError(f"the topology is the file '{spec}', not YAML: a sweep cannot change "
                         "keys inside it", **_at_key(at, where),
                         fix="write the topology inline, or sweep whole files: "
                             "'topology: [a.graphml, b.graphml]'")
    data, _ = load_yaml(path)
    return data


def short_value(value, width=40):
    """`value` as compact text, at most `width` characters."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"),
                                                           default=str)
    return text if len(text) <= width else text[:width - 3] + "..."


def describe_values(values):
    """``"variants[0].H=4, seed=1"``: a point's values on one line, long ones shortened."""
    return ", ".join(f"{path}={short_value(value)}" for path, value in values.items())


def check_path(text, *, field):
    """:func:`parse_path` of `text`, checked against the schemas; errors name `field`."""
    try:
        return _parse_checked(text, Places(None, None), ())
    except InputError as err:
        raise InputError(f"{text}: {err.message}", field=field, fix=err.fix) from None


def build_point(base, values, *, index=0, file=None, base_dir=".", name=None):
    """(Point, Scenario): scenario data `base` with `values` (path text -> value) set.

    The same rules as a sweep point (a changed variant drops its written label; a path
    into a topology file inlines it); `sgdsim tune` builds its trials with it.
    """
    at = Places(file, None)
    assignments = [(text, parse_path(text), value, ()) for text, value in values.items()]
    return _build_point(index, base, assignments, at, os.path.abspath(base_dir),
                        name or base.get("name") or "scenario")
