"""Write a topology graph back to a file: explicit YAML, GraphML, GML or node-link JSON.

Any graph that :func:`simulator.cluster.topology.validate_graph` accepts can be written, and reading
the file back gives an equal graph: quantities are written as the shortest unit string that
parses back to exactly the same number (``25 GB/s``, ``10 Gbit/s``, ``1 us``), and the YAML
file starts with the yaml-language-server comment naming the package's schema.
"""

import json
import os

import networkx as nx
import yaml

from ..utils.errors import InputError
from ..utils.files import check_output, is_stdout, write_text_atomic
from ..utils.shipped import schema_reference
from ..utils.units import parse_bandwidth, parse_bytes, parse_flops, parse_time
from .collectives_spec import collectives_to_yaml
from .levels import DEFAULT_LEVELS, graph_levels
from .topology import YAML_EXTS, edge_tier, gpu_blocks, natural_key, validate_graph

__all__ = ["topology_to_yaml", "write_topology", "check_topology_path", "SCHEMA_REF"]

SCHEMA_REF = "../schemas/topology.schema.json"
"""Schema reference written atop YAML files by default (right for files in topologies/)."""

_UNITS = {  # kind -> [(text unit, base units per 1 text unit)], ties go to the first
    "bandwidth": [("GB/s", 1e9), ("TB/s", 1e12), ("MB/s", 1e6), ("kB/s", 1e3), ("B/s", 1.0),
                  ("Gbit/s", 1.25e8), ("Tbit/s", 1.25e11), ("Mbit/s", 1.25e5)],
    "time": [("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)],
    "flops": [("TFLOP/s", 1e12), ("PFLOP/s", 1e15), ("GFLOP/s", 1e9), ("FLOP/s", 1.0)],
    "bytes": [("MiB", 2.0**20), ("KiB", 2.0**10), ("GiB", 2.0**30), ("MB", 1e6), ("kB", 1e3),
              ("GB", 1e9), ("B", 1.0)],
}
_PARSERS = {"bandwidth": parse_bandwidth, "time": parse_time, "flops": parse_flops,
            "bytes": parse_bytes}


def _quantity_text(value, kind):
    """Shortest unit string that parses back to exactly `value`, e.g. ``'25 GB/s'``."""
    parse, best = _PARSERS[kind], None
    for unit, size in _UNITS[kind]:
        for digits in range(1, 18):
            number = repr(float(f"{value / size:.{digits}g}")).removesuffix(".0")
            if parse(f"{number} {unit}") == value:
                if best is None or len(number) < len(best[0]):
                    best = (number, unit)
                break
    return f"{best[0]} {best[1]}"  # the base unit (size 1.0) always round-trips


def _flow(value):
    """One line of YAML for `value` (flow style, quoted only where YAML needs it)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**9,
                          allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


_MISSING = object()


def _common(items, keys):
    """The (key, value) pairs present with one same value in every mapping of `items`."""
    common = {}
    for key in keys:
        values = [item.get(key, _MISSING) for item in items]
        if values and values[0] is not _MISSING and all(v == values[0] for v in values):
            common[key] = values[0]
    return common



def topology_to_yaml(graph, *, schema=SCHEMA_REF):
    """Write `graph` as a topology file in the explicit YAML form.

    Values shared by every GPU (every link) go to ``gpu_defaults`` (``link_defaults``);
    a link's tier is written only where it differs from the tier rule. A nested topology
    gets ``block_level`` and ``levels`` (each group listing the groups it holds), and a
    switch or NIC above the blocks its ``group``; the graph's ``collectives`` section and
    switches' ``reduction`` are written too. Quantities are
    written with units and parse back to exactly the same floats. Node and graph
    attributes outside the contract are not written.

    Parameters
    ----------
    graph : networkx.Graph
        A valid topology (see :func:`validate_graph`).
    schema : str
        Schema reference for the ``# yaml-language-server: $schema=`` comment on top.

    Returns
    -------
    str
        The YAML text; :func:`topology_from_data` of it gives back an equal graph.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.Graph()
    >>> g.add_node("g0", kind="gpu", block="n0"); g.add_node("g1", kind="gpu", block="n1")
    >>> g.add_edge("g0", "g1", bandwidth=1.25e9, latency=5e-6, tier="inter_block")
    >>> print(topology_to_yaml(g, schema="topology.schema.json"))
    # yaml-language-server: $schema=topology.schema.json
    gpus:
      - {name: g0, block: n0}
      - {name: g1, block: n1}
    link_defaults: {bandwidth: 10 Gbit/s, latency: 5 us}
    links:
      - {between: [g0, g1]}
    <BLANKLINE>
    """
    lines = [f"# yaml-language-server: $schema={schema}"]
    for key in ("name", "description"):
        if key in graph.graph:
            lines.append(f"{key}: {_flow(str(graph.graph[key]))}")
    if graph.graph.get("equal_blocks"):
        lines.append("equal_blocks: true")
    levels = graph_levels(graph)
    if "levels" in graph.graph:
        lines.extend(_levels_lines(graph, levels))

    gpus, devices = [], {"switch": [], "nic": []}
    for node, attrs in graph.nodes(data=True):
        item = {"name": str(node)}
        if attrs.get("block") is not None:
            item["block"] = str(attrs["block"])
        elif any(attrs.get(level) is not None for level in levels[1:]):
            item["group"] = str(next(attrs[level] for level in levels[1:]
                                     if attrs.get(level) is not None))
        if attrs.get("reduction"):
            item["reduction"] = True
        if attrs.get("kind") == "gpu":
            if "gpu_type" in attrs:
                item["type"] = str(attrs["gpu_type"])
            if "peak_flops" in attrs:
                item["peak_flops"] = _quantity_text(attrs["peak_flops"], "flops")
            if "efficiency" in attrs:
                item["efficiency"] = float(attrs["efficiency"])
            gpus.append(item)
        else:
            devices[attrs.get("kind")].append(item)
    _section(lines, "gpu", gpus, ("type", "peak_flops", "efficiency"), "gpus")
    for section, kind in (("switches", "switch"), ("nics", "nic")):
        if devices[kind]:
            lines.append(f"{section}:")
            lines.extend(f"  - {_flow(item)}" for item in devices[kind])

    links = []
    for u, v, attrs in graph.edges(data=True):
        link = {"between": [str(u), str(v)],
                "bandwidth": _quantity_text(attrs["bandwidth"], "bandwidth"),
                "latency": _quantity_text(attrs["latency"], "time")}
        if attrs["tier"] != edge_tier(graph, u, v):
            link["tier"] = attrs["tier"]
        links.append(link)
    _section(lines, "link", links, ("bandwidth", "latency"), "links")
    if graph.graph.get("collectives"):
        lines.append("collectives:")
        for key, value in collectives_to_yaml(graph.graph["collectives"], _quantity_text).items():
            if key == "protocols":
                lines.append("  protocols:")
                lines.extend(f"    {name}: {_flow(item)}" for name, item in value.items())
            elif key == "rings":
                lines.append("  rings:")
                lines.extend(f"    - {_flow(item)}" for item in value)
            else:
                lines.append(f"  {key}: {_flow(value)}")
    return "\n".join(lines) + "\n"


def _levels_lines(graph, levels):
    """``block_level`` and ``levels`` lines: each outer group and the groups it holds."""
    lines = []
    if levels[0] != DEFAULT_LEVELS[0]:
        lines.append(f"block_level: {_flow(levels[0])}")
    if len(levels) == 1:
        return lines
    lines.append("levels:")
    blocks = list(gpu_blocks(graph))
    for k, level in enumerate(levels[1:], start=1):
        inner_attr = "block" if k == 1 else levels[k - 1]
        groups = {}
        for _, attrs in graph.nodes(data=True):
            inner, outer = attrs.get(inner_attr), attrs.get(level)
            if inner is not None and outer is not None:
                members = groups.setdefault(str(outer), [])
                if str(inner) not in members:
                    members.append(str(inner))
        order = {b: i for i, b in enumerate(blocks)}
        for members in groups.values():
            members.sort(key=lambda m: (order.get(m, len(order)), natural_key(m)))
        ordered = dict(sorted(groups.items(), key=lambda item: natural_key(item[0])))
        lines.append(f"  - name: {_flow(level)}")
        lines.append(f"    groups: {_flow(ordered)}")
    return lines


def _section(lines, what, items, shared_keys, section):
    """Append ``{what}_defaults`` (values every item shares) and the list of items."""
    defaults = _common(items, shared_keys)
    if defaults:
        lines.append(f"{what}_defaults: {_flow(defaults)}")
    lines.append(f"{section}:")
    for item in items:
        lines.append(f"  - {_flow({k: v for k, v in item.items() if k not in defaults})}")


_EXTS = (*YAML_EXTS, ".graphml", ".gml", ".json")


def check_topology_path(path, field="--output"):
    """Raise InputError unless a topology can be written at `path` (checked before work):
    a known extension, a folder that exists and takes files; not standard output.
    """
    check_output(path, field=field, suffixes=_EXTS, what="a topology", stdout_ok=False)


def write_topology(graph, path):
    """Validate `graph` and write it to `path`, in the format its extension names.

    Parameters
    ----------
    graph : networkx.Graph
        A topology.
    path : str or os.PathLike
        ``.yaml``/``.yml``: explicit YAML form (:func:`topology_to_yaml`) whose schema
        comment points at the package's schema, relative to the file; ``.graphml``,
        ``.gml``, ``.json`` (node-link, edges under ``links``): networkx's writers. ``-``:
        YAML on standard output. The file is written whole or not at all
        (:func:`simulator.utils.files.write_text_atomic`).

    Raises
    ------
    InputError
        If `graph` fails :func:`validate_graph`, the extension is unknown or the file
        cannot be written.

    Examples
    --------
    >>> graph = load_topology("topologies/seed_8x2.yaml")  # doctest: +SKIP
    >>> write_topology(graph, "seed.graphml")  # doctest: +SKIP
    """
    file = str(path)
    ext = ".yaml" if is_stdout(file) else os.path.splitext(file)[1].lower()
    if ext not in YAML_EXTS + (".graphml", ".gml", ".json"):
        raise InputError(f"unknown topology file type '{ext}'", file=file,
                         fix="use .yaml, .yml, .graphml, .gml or .json (node-link)")
    validate_graph(graph)
    if ext in YAML_EXTS:
        schema = schema_reference("topology", "stdout.yaml" if is_stdout(file) else file)
        text = topology_to_yaml(graph, schema=schema)
    elif ext in (".graphml", ".gml"):
        flat = graph
        if "collectives" in graph.graph:        # a mapping: these formats hold it as JSON text
            flat = graph.copy()
            flat.graph["collectives"] = json.dumps(graph.graph["collectives"], sort_keys=True)
        generate = nx.generate_graphml if ext == ".graphml" else nx.generate_gml
        text = "\n".join(generate(flat)) + "\n"
    else:
        text = json.dumps(nx.node_link_data(graph, edges="links"), indent=1) + "\n"
    write_text_atomic(path, text)
