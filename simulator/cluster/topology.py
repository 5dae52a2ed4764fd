"""Cluster topologies: load, validate and write them as networkx graphs.

The graph (the contract every other module relies on; docs/semantics.md, "Network model")
-----------------------------------------------------------------------------------------
An undirected ``networkx.Graph``; a link is full-duplex (each direction has the whole
bandwidth), so one edge stands for both directions.

Node attributes
    ``kind``        ``"gpu"``, ``"switch"`` or ``"nic"`` (every node).
    ``block``       the block (node, rack) name: every GPU has one; a switch or NIC that
                    belongs to one block (a node's NVSwitch, its NICs) has it too.
    ``<level>``     for each outer level of a nested topology (``rack``, ``site``): the
                    group of that level the device is in (:mod:`.levels`).
    ``peak_flops``  GPUs: peak FLOP/s (float).
    ``efficiency``  GPUs: achieved fraction of peak, 0 < e <= 1.
    ``gpu_type``    GPUs, optional: a name such as ``"V100"``.
    ``reduction``   switches, optional, True: the switch can reduce in the network (the
                    in-switch all-reduce algorithm).
Edge attributes
    ``bandwidth``   bytes/s, > 0.
    ``latency``     seconds, >= 0.
    ``tier``        ``"intra_block"`` (both ends in one block, or a GPU and its block's own
                    switch) or ``"inter_block"`` (everything else); in a nested topology
                    ``intra_<L0>`` or ``inter_<L>``, named by the level the link crosses.
Graph attributes
    ``name``        optional.
    ``levels``      optional: the level names, innermost first (``"node rack site"``);
                    absent: the one level ``block``.
    ``equal_blocks`` optional, True: every block must hold the same number of GPUs.
    ``collectives`` optional: how collectives run (protocol, channels, rails, rings, costs),
                    base units; see :mod:`.collectives_spec`.

Files (docs/topology.md)
------------------------
YAML in two forms checked against ``schemas/topology.schema.json``: *compact*
(``blocks`` x ``gpus_per_block`` GPUs named ``gpu{b}_{i}`` behind switch ``sw{b}`` (block
``block{b}``), every ``sw{b}`` behind switch ``core``, or behind the switches of nested
``levels``) and *explicit* (named ``gpus``, ``switches``, ``nics`` and ``links``, and the
groups of nested ``levels``; a link's tier, when not given, follows the tier rule of
:mod:`.levels`: ``intra_block`` iff both ends carry the same block). Quantities are strings with units (:mod:`.units`).
networkx's own formats (``.graphml``, ``.gml``, node-link ``.json``) use the contract's
attribute names with plain numbers in base units; a missing tier is inferred as above.

Ranges: a bandwidth is at least :data:`MIN_BANDWIDTH_BPS` (1 bit/s), a peak rate at least
:data:`MIN_PEAK_FLOPS` (1 FLOP/s), an efficiency at least :data:`MIN_EFFICIENCY`, and every
quantity at most :data:`~simulator.utils.units.MAX_QUANTITY` in base units: within them every
simulated time stays a finite number of seconds. A graph is refused before it is built when
it would not fit in memory (:func:`check_graph_size`). Both live in :mod:`.ranges`.

GPUs may lack ``peak_flops``/``efficiency`` (graphs used for network questions only);
``validate_graph(..., require_compute=True)`` demands them. Every check raises one
:class:`~simulator.utils.errors.InputError` naming the file, line and field (for graph formats,
the node or link) and how to fix it. Writing topologies back is
:mod:`simulator.cluster.writer`.
"""

import json
import math
import os
import re
from xml.etree.ElementTree import ParseError

import networkx as nx

from ..utils.bulk import paused_gc
from ..utils.errors import InputError
from ..utils.files import MAX_TEXT_BYTES, check_input, read_text_input
from ..utils.shipped import resolve
from ..utils.units import MAX_QUANTITY, parse_bandwidth, parse_flops, parse_time
from .collectives_spec import check_collectives, collectives_from_yaml
from ..utils.yamlfile import (
    Places,
    did_you_mean,
    format_field,
    load_schema,
    load_yaml,
    validate_schema,
)
from .levels import (
    DEFAULT_LEVELS,
    block_sort_key,
    check_nesting,
    compact_groups,
    graph_levels,
    graph_tiers,
    group_path,
    nest_explicit,
    tier_between,
)
from .ranges import MIN_BANDWIDTH_BPS, MIN_EFFICIENCY, MIN_PEAK_FLOPS, check_graph_size

__all__ = [
    "load_topology", "topology_from_data", "validate_graph", "summarize", "link_tier",
    "gpu_nodes", "gpu_blocks", "natural_key", "graph_levels", "graph_tiers",
    "check_graph_size", "MIN_BANDWIDTH_BPS", "MIN_PEAK_FLOPS", "MIN_EFFICIENCY",
]

KINDS = ("gpu", "switch", "nic")
TIERS = ("intra_block", "inter_block")

YAML_EXTS = (".yaml", ".yml")
_GRAPH_READERS = {".graphml": nx.read_graphml, ".gml": nx.read_gml}


def natural_key(name):
    """Sort key that orders ``gpu2`` before ``gpu10``.

    Examples
    --------
    >>> sorted(["gpu10", "gpu2", "gpu1"], key=natural_key)
    ['gpu1', 'gpu2', 'gpu10']
    """
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(name)) if part != ""]


def gpu_nodes(graph):
    """Return the GPUs of `graph` in natural name order.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.Graph(); g.add_node("gpu1", kind="gpu", block="b"); g.add_node("sw", kind="switch")
    >>> gpu_nodes(g)
    ['gpu1']
    """
    return sorted((n for n, kind in graph.nodes(data="kind") if kind == "gpu"), key=natural_key)


def gpu_blocks(graph):
    """Return ``{block: [gpu, ...]}`` with blocks and GPUs in natural name order.

    In a nested topology the blocks of each outer group stay together: blocks sort by their
    outermost group, then inward, then by name (:func:`.levels.block_sort_key`).
    """
    blocks = {}
    for gpu in gpu_nodes(graph):
        blocks.setdefault(graph.nodes[gpu]["block"], []).append(gpu)
    return {block: blocks[block] for block in sorted(blocks, key=block_sort_key(graph, natural_key))}


def edge_tier(graph, u, v):
    """The tier rule for link `u`--`v` of `graph` (:func:`.levels.tier_between`)."""
    levels = graph_levels(graph)
    return tier_between(group_path(graph.nodes[u], levels), group_path(graph.nodes[v], levels),
                        levels)


def link_tier(block_u, block_v):
    """Tier of a link whose ends carry blocks `block_u` and `block_v` (None: no block), in
    a topology of one level (nested ones: :func:`edge_tier`).

    Examples
    --------
    >>> link_tier("node0", "node0"), link_tier("node0", None)
    ('intra_block', 'inter_block')
    """
    return "intra_block" if block_u is not None and block_u == block_v else "inter_block"


# --------------------------------------------------------------------------- loading
def load_topology(path):
    """Load and validate a topology file (YAML, GraphML, GML or node-link JSON).

    Parameters
    ----------
    path : str or os.PathLike
        ``.yaml``/``.yml`` (compact or explicit form), ``.graphml``, ``.gml`` or ``.json``
        (networkx node-link data, edges under ``links`` or ``edges``); or the name of a
        shipped topology (``"seed_8x2"``). A file of that name wins over a shipped one.

    Returns
    -------
    networkx.Graph
        The graph described in the module docstring.

    Raises
    ------
    InputError
        If the file is missing, unreadable, of an unknown type, or fails a check; the
        message names the file, the line (YAML) or node/link (graph formats), the field
        and a fix.

    Examples
    --------
    >>> graph = load_topology("topologies/seed_8x2.yaml")  # doctest: +SKIP
    >>> summarize(graph)  # doctest: +SKIP
    '16 GPUs in 8 blocks, 9 switches, 0 NICs, 24 links'
    """
    file = resolve("topologies", path, missing_ok=True)
    ext = os.path.splitext(file)[1].lower()
    if ext in YAML_EXTS:
        with paused_gc():                  # thousands of nodes and links: see utils/bulk.py
            data, locate = load_yaml(file)
            return topology_from_data(data, file=file, locate=locate)
    if ext not in _GRAPH_READERS and ext != ".json":
        raise InputError(f"unknown topology file type '{ext}'", file=file,
                         fix="use .yaml, .yml, .graphml, .gml or .json (node-link)")
    check_input(file, max_bytes=MAX_TEXT_BYTES)      # no FIFO, no device, no huge file
    try:
        graph = _read_node_link(file, file) if ext == ".json" else _GRAPH_READERS[ext](file)
    except FileNotFoundError as err:
        raise InputError("no such file", file=file, fix="check the path") from err
    except InputError:
        raise
    except RecursionError:
        raise InputError(f"this {ext[1:]} file nests too deeply to read", file=file,
                         fix="write it with networkx or sgdsim's write_topology") from None
    except (nx.NetworkXError, ParseError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, OSError) as err:
        position = getattr(err, "position", None)  # XML syntax errors know their line
        raise InputError(f"cannot read this {ext[1:]} file: {err}", file=file,
                         line=position[0] if position else None,
                         fix="write it with networkx's write_graphml, write_gml or "
                             "node_link_data, or with sgdsim's write_topology") from err
    graph = _normalized(graph)
    validate_graph(graph, file=file)
    return graph


def _read_node_link(path, file):
    """Read node-link JSON, refusing duplicate links that nx.Graph would merge silently."""
    text = read_text_input(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"JSON syntax error: {err.msg}", file=file, line=err.lineno,
                         fix="check commas, quotes and brackets near this line") from err
    fix = "write it with networkx.node_link_data(graph, edges='links')"
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise InputError("not a networkx node-link graph (no 'nodes' list)", file=file, fix=fix)
    edges = "edges" if "edges" in data else "links"
    if not isinstance(data.get(edges, []), list):
        raise InputError(f"'{edges}' must be a list of links", file=file, field=edges, fix=fix)
    for key in ("nodes", edges):
        for index, item in enumerate(data.get(key, [])):
            if not isinstance(item, dict) or "id" not in item and key == "nodes" or \
                    key == edges and not {"source", "target"} <= set(item):
                need = "an 'id'" if key == "nodes" else "a 'source' and a 'target'"
                raise InputError(f"expected a mapping with {need}, got {item!r:.60}",
                                 file=file, field=f"{key}[{index}]", fix=fix)
    check_graph_size(len(data["nodes"]), len(data.get(edges, [])), what="this topology")
    if not data.get("multigraph", False):
        seen = {}
        for index, link in enumerate(data.get(edges, [])):
            pair = frozenset((link.get("source"), link.get("target")))
            if pair in seen:
                raise InputError(
                    f"duplicate link between '{link.get('source')}' and '{link.get('target')}'"
                    f", first at {edges}[{seen[pair]}]", file=file, field=f"{edges}[{index}]",
                    fix="keep one link per pair of devices")
            seen[pair] = index
    return nx.node_link_graph(data, directed=False, multigraph=False, edges=edges)


def _normalized(graph):
    """Graph from a networkx file with string names, float quantities and tiers filled in."""
    if any(not isinstance(node, str) for node in graph):
        graph = nx.relabel_nodes(graph, {node: str(node) for node in graph})
    for _, attrs in graph.nodes(data=True):
        _floats(attrs, ("peak_flops", "efficiency"))
        if isinstance(attrs.get("reduction"), int):  # GML stores booleans as 0/1
            attrs["reduction"] = bool(attrs["reduction"])
    for u, v, attrs in graph.edges(data=True):
        _floats(attrs, ("bandwidth", "latency"))
        if "tier" not in attrs:
            attrs["tier"] = edge_tier(graph, u, v)
    for key in ("node_default", "edge_default"):  # read_graphml's bookkeeping
        graph.graph.pop(key, None)
    if "equal_blocks" in graph.graph:  # GML stores booleans as 0/1
        graph.graph["equal_blocks"] = bool(graph.graph["equal_blocks"])
    if isinstance(graph.graph.get("collectives"), str):  # GraphML and GML hold it as JSON text
        try:
            graph.graph["collectives"] = json.loads(graph.graph["collectives"])
        except json.JSONDecodeError as err:
            raise InputError(f"not JSON: {err.msg}", field="graph.collectives",
                             fix="store the collectives section as JSON text") from err
    return graph


def _floats(attrs, keys):
    for key in keys:
        if isinstance(attrs.get(key), int) and not isinstance(attrs[key], bool):
            attrs[key] = float(attrs[key])


def topology_from_data(data, *, file=None, locate=None):
    """Build and validate a topology from parsed YAML data (compact or explicit form).

    Parameters
    ----------
    data : dict
        The parsed file, e.g. from :func:`simulator.utils.yamlfile.load_yaml`.
    file : str, optional
        File name to put in errors.
    locate : callable, optional
        ``locate(path_tuple) -> line`` to put line numbers in errors.

    Returns
    -------
    networkx.Graph

    Raises
    ------
    InputError
        The first problem found: schema violations (unknown keys, missing or malformed
        units...), then structural ones (duplicate names, unknown devices, duplicate links),
        then the checks of :func:`validate_graph`.

    Examples
    --------
    >>> graph = topology_from_data({
    ...     "blocks": 2, "gpus_per_block": 2,
    ...     "gpu": {"peak_flops": "15.7 TFLOP/s", "efficiency": 0.4},
    ...     "intra_block": {"bandwidth": "25 GB/s", "latency": "1 us"},
    ...     "inter_block": {"bandwidth": "10 Gbit/s", "latency": "5 us"}})
    >>> list(graph)
    ['core', 'sw0', 'gpu0_0', 'gpu0_1', 'sw1', 'gpu1_0', 'gpu1_1']
    >>> graph.edges["gpu0_0", "sw0"]
    {'bandwidth': 25000000000.0, 'latency': 1e-06, 'tier': 'intra_block'}
    """
    validate_schema(data, load_schema("topology"), file=file, locate=locate)
    at = Places(file, locate)
    if "blocks" in data:                  # a few bytes can describe billions of GPUs
        gpus = data["blocks"] * data["gpus_per_block"]
        check_graph_size(gpus + data["blocks"] + 1, gpus + data["blocks"],
                         what=f"a topology of {gpus:,} GPUs",
                         fix="use fewer blocks or fewer GPUs per block", **at(("blocks",)))
    build = _build_compact if "blocks" in data else _build_explicit
    graph, origins = build(data, at)
    if data.get("equal_blocks"):
        graph.graph["equal_blocks"] = True
        origins[(None, "equal_blocks")] = ("equal_blocks",)
    if "collectives" in data:
        spec = collectives_from_yaml(data["collectives"], at)
        check_collectives(spec, gpu_nodes(graph), _yaml_fail(at))
        graph.graph["collectives"] = spec
    _check_graph(graph, file, _yaml_where(origins, data, locate))
    return graph


def _yaml_fail(at):
    """A `fail` for :func:`check_collectives` that names the line of the section's key."""
    def fail(path, message, fix):
        raise InputError(message, fix=fix, **at(("collectives",) + tuple(path)))
    return fail


def _build_compact(data, at):
    """Graph of the compact form; returns (graph, origins).

    Blocks ``block{b}`` (``{block_level}{b}``) of GPUs ``gpu{b}_{i}`` behind switch
    ``sw{b}``; with ``levels``, the blocks are grouped further (innermost first): group
    ``j`` of level ``L`` is ``{L}{j}``, numbered across the cluster, behind switch
    ``sw_{L}{j}``; the outermost switches (or, without levels, the block switches) join
    ``core``.
    """
    gpu = data["gpu"]
    gpu_attrs = {"kind": "gpu",
                 "peak_flops": at.parse(parse_flops, gpu["peak_flops"], ("gpu", "peak_flops")),
                 "efficiency": float(gpu["efficiency"])}
    if "type" in gpu:
        gpu_attrs["gpu_type"] = gpu["type"]
    specs = {key: ((key,), data[key]) for key in TIERS}    # link kind -> (path, spec)
    specs.update({("levels", k): (("levels", k, "uplink"), spec["uplink"])
                  for k, spec in enumerate(data.get("levels", []))})
    links = {key: {"bandwidth": at.parse(parse_bandwidth, spec["bandwidth"], path + ("bandwidth",)),
                   "latency": at.parse(parse_time, spec["latency"], path + ("latency",))}
             for key, (path, spec) in specs.items()}
    names, sizes = compact_groups(data, at)
    graph = nx.Graph()
    for key in ("name", "description"):
        if key in data:
            graph.graph[key] = data[key]
    if tuple(names) != DEFAULT_LEVELS:
        graph.graph["levels"] = " ".join(names)
    origins, link_origin = {}, {}

    def groups_of(b):
        """{level: group name} of the outer levels holding block b."""
        out, per = {}, 1
        for name, size in sizes:
            per *= size
            out[name] = f"{name}{b // per}"
        return out

    def add_link(u, v, key):
        graph.add_edge(u, v, **links[key])
        link_origin[frozenset((u, v))] = specs[key][0]

    graph.add_node("core", kind="switch")
    top = [f"sw_{sizes[-1][0]}{j}" for j in range(data["blocks"] // _product(sizes))] \
        if sizes else []
    for j, switch in enumerate(top):               # outermost groups, then inward
        graph.add_node(switch, kind="switch", **{sizes[-1][0]: f"{sizes[-1][0]}{j}"})
        add_link(switch, "core", ("levels", len(sizes) - 1))
    for k in range(len(sizes) - 2, -1, -1):
        name, outer = sizes[k][0], sizes[k + 1]
        for j in range(data["blocks"] // _product(sizes[:k + 1])):
            first_block = j * _product(sizes[:k + 1])
            attrs = {level: group for level, group in groups_of(first_block).items()
                     if [n for n, _ in sizes].index(level) >= k}
            graph.add_node(f"sw_{name}{j}", kind="switch", **attrs)
            add_link(f"sw_{name}{j}", f"sw_{outer[0]}{j // outer[1]}", ("levels", k))
    for b in range(data["blocks"]):
        block, switch = f"{names[0]}{b}", f"sw{b}"
        outer = groups_of(b)
        graph.add_node(switch, kind="switch", block=block, **outer,
                       **({"reduction": True} if data.get("switch_reduction") else {}))
        for i in range(data["gpus_per_block"]):
            name = f"gpu{b}_{i}"
            graph.add_node(name, block=block, **gpu_attrs, **outer)
            add_link(name, switch, "intra_block")
            origins[(name, None)] = ("gpus_per_block",)
            origins.update({(name, key): ("gpu", key) for key in ("peak_flops", "efficiency")})
        add_link(switch, f"sw_{sizes[0][0]}{b // sizes[0][1]}" if sizes else "core", "inter_block")
    for u, v, attrs in graph.edges(data=True):
        attrs["tier"] = edge_tier(graph, u, v)
        path = link_origin[frozenset((u, v))]
        origins.update({(frozenset((u, v)), key): path + (key,) for key in ("bandwidth", "latency")})
    return graph, origins


def _product(sizes):
    out = 1
    for _, size in sizes:
        out *= size
    return out


class _Remembering:
    """`Places` whose ``parse`` remembers what each text parsed to: thousands of links
    and GPUs repeat the same few quantities (``25 GB/s``)."""

    def __init__(self, at):
        self._at, self._parsed = at, {}

    def __getattr__(self, name):
        return getattr(self._at, name)

    def __call__(self, path):
        return self._at(path)

    def parse(self, parse, value, path):
        if not isinstance(value, str):
            return self._at.parse(parse, value, path)
        key = (parse, value)
        if key not in self._parsed:
            self._parsed[key] = self._at.parse(parse, value, path)
        return self._parsed[key]


_GPU_KEYS = {"type": ("gpu_type", str), "peak_flops": ("peak_flops", parse_flops),
             "efficiency": ("efficiency", float)}


def _build_explicit(data, at):
    """Graph of the explicit form; returns (graph, origins)."""
    graph, origins, where = nx.Graph(), {}, {}
    at = _Remembering(at)
    for key in ("name", "description"):
        if key in data:
            graph.graph[key] = data[key]

    def claim(name, path):
        if name in where:
            raise InputError(f"duplicate device name '{name}', first at {at.text(where[name])}",
                             fix="give every GPU, switch and NIC its own name",
                             **at(path + ("name",)))
        where[name] = path
        origins[(name, None)] = path

    gpu_defaults = data.get("gpu_defaults", {})
    for index, item in enumerate(data["gpus"]):
        path = ("gpus", index)
        claim(item["name"], path)
        attrs = {"kind": "gpu", "block": item["block"]}
        for key, (attr, convert) in _GPU_KEYS.items():
            if key in item or key in gpu_defaults:
                source = path + (key,) if key in item else ("gpu_defaults", key)
                value = item.get(key, gpu_defaults.get(key))
                attrs[attr] = at.parse(convert, value, source)
                origins[(item["name"], attr)] = source
        graph.add_node(item["name"], **attrs)
    for section, kind in (("switches", "switch"), ("nics", "nic")):
        for index, item in enumerate(data.get(section, [])):
            claim(item["name"], (section, index))
            if "block" in item and "group" in item:
                raise InputError("block and group are both given", fix="give one: block for a "
                                 "device inside a block, group for one above the blocks",
                                 **at((section, index, "group")))
            graph.add_node(item["name"], kind=kind, **{key: item[key] for key in ("block", "group")
                                                       if key in item},
                           **({"reduction": True} if item.get("reduction") else {}))
    nest_explicit(graph, data, at, where)

    link_defaults = data.get("link_defaults", {})
    pairs = {}
    for index, link in enumerate(data["links"]):
        path = ("links", index)
        ends = link["between"]
        for j, end in enumerate(ends):
            if end not in where:
                raise InputError(f"unknown device '{end}'",
                                 fix=did_you_mean(end, where)
                                 or "declare it under gpus, switches or nics",
                                 **at(path + ("between", j)))
        pair = frozenset(ends)
        if pair in pairs:
            raise InputError(f"duplicate link between '{ends[0]}' and '{ends[1]}', "
                             f"first at {at.text(pairs[pair])}",
                             fix="keep one link per pair of devices; raise its bandwidth "
                                 "for more capacity", **at(path))
        pairs[pair] = path
        origins[(pair, None)] = path
        attrs = {}
        for key, parse, example in (("bandwidth", parse_bandwidth, "25 GB/s"),
                                    ("latency", parse_time, "1 us")):
            source = path + (key,) if key in link else ("link_defaults", key)
            if key not in link and key not in link_defaults:
                raise InputError("missing", **at(path + (key,)),
                                 fix=f"add '{key}: {example}' to the link or to link_defaults")
            attrs[key] = at.parse(parse, link.get(key, link_defaults.get(key)), source)
            origins[(pair, key)] = source
        attrs["tier"] = link.get("tier") or edge_tier(graph, *ends)
        if "tier" in link:
            origins[(pair, "tier")] = path + ("tier",)
        graph.add_edge(*ends, **attrs)
    return graph, origins


# --------------------------------------------------------------------------- checking
def validate_graph(graph, *, file=None, require_equal_blocks=False, require_compute=False):
    """Check that `graph` follows the topology contract and can carry every transfer.

    Parameters
    ----------
    graph : networkx.Graph
        A topology from any source: a file, a generator, networkx code.
    file : str, optional
        File the graph came from, to put in errors.
    require_equal_blocks : bool
        Also demand that every block holds the same number of GPUs (hierarchical
        algorithms). A graph attribute ``equal_blocks=True`` demands it too.
    require_compute : bool
        Also demand ``peak_flops`` and ``efficiency`` on every GPU (the compute model).

    Raises
    ------
    InputError
        On the first problem, naming the node or link (``node 'g3'.efficiency``,
        ``link 'g0'--'sw0'.bandwidth``): a directed graph or parallel links, an unknown
        kind, a GPU without block, peak_flops <= 0, efficiency outside (0, 1], no GPUs, a
        link from a node to itself, bandwidth <= 0, negative latency, an unknown tier, a GPU
        with no path to another GPU, or unequal blocks when required.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.Graph()
    >>> g.add_node("g0", kind="gpu", block="b0"); g.add_node("g1", kind="gpu", block="b1")
    >>> validate_graph(g)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    simulator.utils.errors.InputError: node 'g1': gpu 'g1' has no path to 'g0' (add a link ...)
    """
    _check_graph(graph, file, _graph_where, require_equal_blocks=require_equal_blocks,
                 require_compute=require_compute)


def _graph_where(item, attr=None):
    """(line, field, text as written) of a node or link of a graph without a file of lines."""
    if item is None:
        return None, None if attr is None else f"graph.{attr}", None
    if isinstance(item, frozenset):
        u, v = sorted(item, key=natural_key) if len(item) == 2 else (*item, *item)
        field = f"link '{u}'--'{v}'"
    else:
        field = f"node '{item}'"
    return None, field + (f".{attr}" if attr else ""), None


def _yaml_where(origins, data, locate):
    """Where-function for a graph built from YAML `data` with the given origins."""
    def where(item, attr=None):
        path = origins.get((item, attr), origins.get((item, None)))
        if path is None:
            return _graph_where(item, attr)
        written = data
        for part in path:
            written = written[part] if isinstance(written, (dict, list)) else None
        return (locate(path) if locate is not None else None, format_field(path),
                written if isinstance(written, str) else None)
    return where


_BASE_UNITS = {"bandwidth": "bytes/s", "latency": "s", "peak_flops": "FLOP/s", "efficiency": ""}
_EXAMPLES = {"bandwidth": "'25 GB/s'", "latency": "'1 us'", "peak_flops": "'15.7 TFLOP/s'",
             "efficiency": "0.4"}
_BASE_EXAMPLES = {"bandwidth": "25000000000.0 for 25 GB/s", "latency": "1e-06 for 1 us",
                  "peak_flops": "15700000000000.0 for 15.7 TFLOP/s", "efficiency": "0.4"}


def _check_graph(graph, file, where, *, require_equal_blocks=False, require_compute=False):
    """All semantic checks; `where(item, attr)` gives (line, field, text as written)."""
    def fail(item, attr, message, fix):
        line, field, _ = where(item, attr)
        raise InputError(message, file=file, line=line, field=field, fix=fix)

    def check_number(item, attrs, key, ok, rule, required=True):
        if key not in attrs:
            if required:
                fail(item, key, "missing", f"set {key}, e.g. {_BASE_EXAMPLES[key]}")
            return
        value = attrs[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(item, key, f"expected a number in {_BASE_UNITS[key] or 'plain units'}, "
                            f"got {value!r}",
                 f"graph files store plain numbers in base units, e.g. {_BASE_EXAMPLES[key]}")
        if not (math.isfinite(value) and abs(value) <= MAX_QUANTITY and ok(value)):
            written = where(item, key)[2]                  # only needed to say what is wrong
            shown = repr(written) if written is not None else \
                f"{value!r} {_BASE_UNITS[key]}".strip()
            example = (f"write e.g. {_EXAMPLES[key]}" if written is not None
                       else f"store e.g. {_BASE_EXAMPLES[key]}")
            if not (math.isfinite(value) and abs(value) <= MAX_QUANTITY):
                fail(item, key, f"must be a finite number at most 1e30, got {shown}", example)
            fail(item, key, f"{rule(value) if callable(rule) else rule}, got {shown}", example)

    if graph.is_directed():
        fail(None, None, "the graph is directed", "links are full-duplex: use an undirected graph")
    if graph.is_multigraph():
        pair = next(((u, v) for u, v in graph.edges() if graph.number_of_edges(u, v) > 1), None)
        if pair is None:
            fail(None, None, "the graph is a multigraph", "store a simple graph (one link per "
                             "pair of devices; node-link JSON: \"multigraph\": false)")
        u, v = pair
        fail(frozenset((u, v)), None, f"duplicate link between '{u}' and '{v}'",
             "keep one link per pair of devices")
    for node, attrs in graph.nodes(data=True):
        kind = attrs.get("kind")
        if not attrs:  # networkx creates the nodes that only links name
            fail(node, None, f"unknown node '{node}': a link names it but no node declares it",
                 did_you_mean(node, [n for n in graph if graph.nodes[n]])
                 or "declare the node with its kind, or fix the link")
        if kind not in KINDS:
            fail(node, "kind", f"kind must be gpu, switch or nic, got {kind!r}",
                 did_you_mean(kind, KINDS) or "set kind to gpu, switch or nic")
        if "reduction" in attrs and (kind != "switch" or not isinstance(attrs["reduction"], bool)):
            fail(node, "reduction", f"reduction is a true/false property of switches, got "
                                    f"{attrs['reduction']!r} on a {kind}",
                 "set reduction: true on a switch that reduces in the network, or remove it")
        if kind != "gpu":
            continue
        if not attrs.get("block"):
            fail(node, "block", f"gpu '{node}' has no block",
                 "set block to the node or rack it sits in, e.g. 'node0'")
        check_number(node, attrs, "peak_flops", lambda x: x >= MIN_PEAK_FLOPS,
                     lambda x: "must be positive" if x <= 0 else "must be at least 1 FLOP/s",
                     required=require_compute)
        check_number(node, attrs, "efficiency", lambda x: MIN_EFFICIENCY <= x <= 1,
                     lambda x: "must be in (0, 1]" if not 0 < x <= 1 else "must be at least 1e-6",
                     required=require_compute)
    gpus = gpu_nodes(graph)
    if not gpus:
        fail(None, None, "the topology has no GPUs", "add at least one node of kind 'gpu'")
    check_nesting(graph, fail)
    if "collectives" in graph.graph and where is _graph_where:
        check_collectives(graph.graph["collectives"], gpus,
                          lambda path, message, fix: fail(None, "collectives" + (
                              "." + format_field(path) if path else ""), message, fix))
    tiers = graph_tiers(graph)
    for u, v, attrs in graph.edges(data=True):
        link = frozenset((u, v))
        if u == v:
            fail(link, None, f"link from '{u}' to itself", "join two different devices")
        check_number(link, attrs, "bandwidth", lambda x: x >= MIN_BANDWIDTH_BPS,
                     lambda x: "must be positive" if x <= 0 else "must be at least 1 bit/s")
        check_number(link, attrs, "latency", lambda x: x >= 0, "must not be negative")
        if attrs.get("tier") not in tiers:
            choices = ", ".join(repr(t) for t in tiers)
            fail(link, "tier", f"{attrs.get('tier')!r} is not one of {choices}",
                 did_you_mean(attrs.get("tier"), tiers) or f"set tier to one of {choices}: "
                                                           "the level the link crosses")
    reachable = nx.node_connected_component(graph, gpus[0])
    for gpu in gpus[1:]:
        if gpu not in reachable:
            fail(gpu, None, f"gpu '{gpu}' has no path to '{gpus[0]}'",
                 f"add a link joining '{gpu}', or a switch it reaches, to a device "
                 f"connected to '{gpus[0]}'")
    if require_equal_blocks or graph.graph.get("equal_blocks"):
        sizes = {block: len(members) for block, members in gpu_blocks(graph).items()}
        if len(set(sizes.values())) > 1:
            (small, n_small), (large, n_large) = min(sizes.items(), key=lambda kv: kv[1]), \
                max(sizes.items(), key=lambda kv: kv[1])
            fail(None, "equal_blocks",
                 f"blocks hold unequal numbers of GPUs: '{small}' has {n_small}, "
                 f"'{large}' has {n_large}",
                 "give every block the same number of GPUs")


def summarize(graph):
    """One line: ``16 GPUs in 8 blocks, 9 switches, 0 NICs, 24 links``.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.Graph(); g.add_node("g0", kind="gpu", block="b0")
    >>> summarize(g)
    '1 GPU in 1 block, 0 switches, 0 NICs, 0 links'
    """
    counts = {kind: 0 for kind in KINDS}
    for _, kind in graph.nodes(data="kind"):
        counts[kind] = counts.get(kind, 0) + 1

    def count(n, word, plural=None):
        return f"{n} {word if n == 1 else plural or word + 's'}"

    return (f"{count(counts['gpu'], 'GPU')} in {count(len(gpu_blocks(graph)), 'block')}, "
            f"{count(counts['switch'], 'switch', 'switches')}, {count(counts['nic'], 'NIC')}, "
            f"{count(graph.number_of_edges(), 'link')}")
