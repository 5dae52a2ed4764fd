"""Drawings of a topology: who is linked to whom, how fast, and which links cross blocks.

Two steps, so that tests check data rather than pixels: :func:`drawing_data` computes what
is drawn (node positions, colours and markers, edge widths and styles) as plain dicts, and
:func:`draw_topology` draws that data with matplotlib into a PNG, SVG or PDF file.

What a drawing shows
--------------------
- GPUs are circles coloured by block (one colour per block, listed in the legend when there
  are at most :data:`MAX_LEGEND_BLOCKS` blocks); switches are dark-grey squares, NICs
  light-grey diamonds.
- Line width grows with the logarithm of bandwidth: ``1 pt + 1 pt per doubling`` above the
  slowest link of the graph, capped at :data:`MAX_WIDTH_PT`. The legend shows sample widths.
- ``intra_block`` links are solid, ``inter_block`` links dashed; in a nested topology the
  tiers, innermost first, are solid, dashed, dash-dotted, then dotted
  (:data:`TIER_STYLES`).
- The default layout is deterministic: layered by hop distance from the GPUs (GPUs at the
  bottom, then NICs and edge switches, then the switches above them), each layer ordered to
  sit above its neighbours below; a graph of GPUs only (ring, torus) is laid out on a circle
  (a cycle, or more than 200 GPUs) or by a spring layout seeded with 0.

matplotlib is used through a private ``Figure`` with an Agg canvas: no pyplot, no global
state, no window.
"""

import math

import networkx as nx

from ..utils.errors import InputError
from ..utils.files import FIGURE_FORMATS, check_output, write_figure
from ..utils.units import format_bandwidth
from .levels import graph_tiers
from .topology import gpu_blocks, natural_key

__all__ = ["drawing_data", "draw_topology", "layout_positions", "edge_width", "FORMATS"]

FORMATS = FIGURE_FORMATS
"""File name extensions :func:`draw_topology` writes (``-``: PNG on standard output)."""
MAX_WIDTH_PT = 8.0
"""Widest edge line, points."""
MAX_LEGEND_BLOCKS = 16
"""Blocks listed one by one in the legend; beyond this the legend says 'colour = block'."""

SWITCH_COLOR = "#404040"
NIC_COLOR = "#a0a0a0"
MARKERS = {"gpu": "o", "switch": "s", "nic": "D"}
STYLES = {"intra_block": "solid", "inter_block": "dashed"}
TIER_STYLES = ("solid", "dashed", "dashdot", "dotted")
"""Line styles of a graph's tiers, innermost first (the last repeats for deeper tiers)."""


def _tier_styles(graph):
    """``{tier: line style}`` for the tiers of `graph`."""
    tiers = graph_tiers(graph)
    return {tier: TIER_STYLES[min(i, len(TIER_STYLES) - 1)] for i, tier in enumerate(tiers)}


def _layered(graph):
    """Positions by hop distance from the GPUs, each layer ordered by its neighbours below."""
    gpus = [n for n, k in graph.nodes(data="kind") if k == "gpu"]
    layer = {}
    if gpus:
        layer = dict(nx.multi_source_dijkstra_path_length(graph, gpus, weight=lambda *_: 1))
    top = max(layer.values(), default=0) + 1
    layers = {}
    for node in sorted(graph, key=natural_key):
        layers.setdefault(layer.get(node, top), []).append(node)
    order = {}
    bottom = [gpu for members in gpu_blocks(graph).values() for gpu in members]
    for depth in sorted(layers):
        if depth == 0:
            nodes = bottom
        else:
            def barycenter(node, depth=depth):
                below = [order[m] for m in graph[node] if layer.get(m) == depth - 1]
                return sum(below) / len(below) if below else math.inf
            nodes = sorted(layers[depth], key=lambda n: (barycenter(n), natural_key(n)))
        for i, node in enumerate(nodes):
            order[node] = i
        layers[depth] = nodes
    return {node: ((i + 0.5) / len(nodes), float(depth))
            for depth, nodes in layers.items() for i, node in enumerate(nodes)}


def _circular(graph):
    nodes = sorted(graph, key=natural_key)
    return {node: (math.cos(2 * math.pi * i / len(nodes) + math.pi / 2),
                   math.sin(2 * math.pi * i / len(nodes) + math.pi / 2))
            for i, node in enumerate(nodes)}


def layout_positions(graph, layout=None):
    """Return ``{node: (x, y)}`` for `graph`.

    Parameters
    ----------
    graph : networkx.Graph
        A topology.
    layout : None, {"layered", "circular", "spring"}, dict or callable, optional
        None chooses: "layered" when the graph has switches or NICs, else "circular" for a
        cycle or more than 200 nodes, else "spring". "spring" is
        :func:`networkx.spring_layout` with ``seed=0``. A dict is used as given (it must
        place every node); a callable is called with the graph and must return such a dict.

    Returns
    -------
    dict
        Node positions as ``(float, float)``; the same graph gives the same positions.

    Raises
    ------
    InputError
        If `layout` is an unknown name or leaves a node without a position.

    Examples
    --------
    >>> from simulator.cluster.generators import two_tier
    >>> pos = layout_positions(two_tier(2, 2))
    >>> pos["core"][1] > pos["sw0"][1] > pos["gpu0_0"][1]
    True
    """
    if layout is None:
        if any(kind != "gpu" for _, kind in graph.nodes(data="kind")):
            layout = "layered"
        elif len(graph) > 200 or all(d == 2 for _, d in graph.degree()) or len(graph) < 3:
            layout = "circular"
        else:
            layout = "spring"
    if callable(layout):
        layout = layout(graph)
    if isinstance(layout, str):
        makers = {"layered": _layered, "circular": _circular,
                  "spring": lambda g: nx.spring_layout(g, seed=0)}
        if layout not in makers:
            raise InputError(f"unknown layout {layout!r}", field="layout",
                             fix=f"use one of {', '.join(makers)}, a dict or a function")
        layout = makers[layout](graph)
    missing = [node for node in graph if node not in layout]
    if missing:
        raise InputError(f"no position for node {missing[0]!r}", field="layout",
                         fix="give every node an (x, y)")
    return {node: (float(layout[node][0]), float(layout[node][1])) for node in graph}


def _block_colors(blocks):
    """One hex colour per block: tab10/tab20 for up to 10/20 blocks, else turbo resampled."""
    import matplotlib
    from matplotlib.colors import to_hex

    count = len(blocks)
    if count <= 10:
        cmap, values = matplotlib.colormaps["tab10"], range(count)
    elif count <= 20:
        cmap, values = matplotlib.colormaps["tab20"], range(count)
    else:
        cmap, values = matplotlib.colormaps["turbo"], [i / (count - 1) for i in range(count)]
    return {block: to_hex(cmap(v)) for block, v in zip(blocks, values)}


def edge_width(bandwidth, min_bandwidth):
    """Line width in points: ``1 + log2(bandwidth / min_bandwidth)``, at most MAX_WIDTH_PT.

    Examples
    --------
    >>> edge_width(100e9, 25e9)
    3.0
    """
    return min(MAX_WIDTH_PT, 1.0 + math.log2(bandwidth / min_bandwidth))


def drawing_data(graph, *, layout=None):
    """Return what :func:`draw_topology` draws, as plain data.

    Parameters
    ----------
    graph : networkx.Graph
        A topology (contract of :mod:`simulator.cluster.topology`).
    layout
        See :func:`layout_positions`.

    Returns
    -------
    dict
        ``positions``     ``{node: (x, y)}``.
        ``node_colors``   ``{node: "#rrggbb"}``: a GPU has its block's colour.
        ``node_markers``  ``{node: marker}``: "o" GPU, "s" switch, "D" NIC.
        ``block_colors``  ``{block: "#rrggbb"}`` in natural block order, all distinct (up to
        a few hundred blocks).
        ``edge_widths``   ``{(u, v): points}``, see :func:`edge_width`; keys are the links
        as ``graph.edges`` yields them.
        ``edge_styles``   ``{(u, v): "solid" | "dashed" | ...}`` by tier (see
        :data:`TIER_STYLES`; a tier outside the graph's would be "dotted").
        ``min_bandwidth``, ``max_bandwidth``  bytes/s over the links (None without links).

    Examples
    --------
    >>> from simulator.cluster.generators import two_tier
    >>> data = drawing_data(two_tier(2, 2, intra_bandwidth=25e9, inter_bandwidth=100e9))
    >>> data["edge_widths"][("core", "sw0")], data["edge_styles"][("core", "sw0")]
    (3.0, 'dashed')
    """
    blocks = list(gpu_blocks(graph))
    block_colors = _block_colors(blocks)
    node_colors, node_markers = {}, {}
    for node, attrs in graph.nodes(data=True):
        kind = attrs.get("kind")
        node_markers[node] = MARKERS.get(kind, "o")
        node_colors[node] = (block_colors[attrs["block"]] if kind == "gpu"
                             else NIC_COLOR if kind == "nic" else SWITCH_COLOR)
    bandwidths = [float(bw) for _, _, bw in graph.edges(data="bandwidth")]
    lo = min(bandwidths, default=None)
    styles = _tier_styles(graph)
    return {
        "positions": layout_positions(graph, layout),
        "node_colors": node_colors,
        "node_markers": node_markers,
        "block_colors": block_colors,
        "edge_widths": {(u, v): edge_width(float(bw), lo)
                        for u, v, bw in graph.edges(data="bandwidth")},
        "edge_styles": {(u, v): styles.get(tier, "dotted")
                        for u, v, tier in graph.edges(data="tier")},
        "min_bandwidth": lo,
        "max_bandwidth": max(bandwidths, default=None),
    }


def draw_topology(graph, path, *, layout=None):
    """Draw `graph` into `path` (PNG, SVG or PDF, by extension) and return what was drawn.

    Parameters
    ----------
    graph : networkx.Graph
        A topology (contract of :mod:`simulator.cluster.topology`).
    path : str or pathlib.Path
        Output file; its extension (``.png``, ``.svg``, ``.pdf``) picks the format.
    layout
        See :func:`layout_positions`.

    Returns
    -------
    dict
        :func:`drawing_data` plus ``path`` (str), the file written.

    Raises
    ------
    InputError
        If the extension is not one of :data:`FORMATS`, or `layout` is bad.

    Examples
    --------
    >>> import tempfile, os
    >>> from simulator.cluster.generators import fat_tree
    >>> out = os.path.join(tempfile.mkdtemp(), "fat-tree.png")
    >>> draw_topology(fat_tree(4), out)["path"] == out and os.path.getsize(out) > 0
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    check_output(path, suffixes=FORMATS, what="a drawing")
    data = drawing_data(graph, layout=layout)
    pos = data["positions"]

    widest = max((sum(1 for p in pos.values() if p[1] == y) for y in {p[1] for p in pos.values()}),
                 default=1)
    fig = Figure(figsize=(min(40.0, max(8.0, 0.22 * widest)), 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()

    for style in TIER_STYLES:
        edges = [e for e, s in data["edge_styles"].items() if s == style]
        if edges:
            ax.add_collection(LineCollection(
                [(pos[u], pos[v]) for u, v in edges],
                linewidths=[data["edge_widths"][e] for e in edges],
                linestyles=style, colors="#7a7a7a", alpha=0.8, zorder=1))
    size = 60 if len(pos) <= 64 else max(6, 3000 / len(pos))
    for marker in sorted(set(data["node_markers"].values())):
        nodes = [n for n, m in data["node_markers"].items() if m == marker]
        ax.scatter([pos[n][0] for n in nodes], [pos[n][1] for n in nodes], s=size,
                   c=[data["node_colors"][n] for n in nodes], marker=marker,
                   edgecolors="black", linewidths=0.4, zorder=2)
    if len(pos) <= 48:
        for node, (x, y) in pos.items():
            ax.annotate(str(node), (x, y), xytext=(0, -9), textcoords="offset points",
                        ha="center", va="top", fontsize=6, zorder=3)
    ax.autoscale_view()
    ax.margins(0.05, 0.12)

    handles = []
    if len(data["block_colors"]) <= MAX_LEGEND_BLOCKS:
        handles += [Line2D([], [], ls="", marker="o", color=color, mec="black", label=f"GPU {b}")
                    for b, color in data["block_colors"].items()]
    else:
        handles.append(Line2D([], [], ls="", marker="o", color="#1f77b4", mec="black",
                              label=f"GPU (colour = block, {len(data['block_colors'])} blocks)"))
    kinds = {kind for _, kind in graph.nodes(data="kind")}
    if "switch" in kinds:
        handles.append(Line2D([], [], ls="", marker="s", color=SWITCH_COLOR, label="switch"))
    if "nic" in kinds:
        handles.append(Line2D([], [], ls="", marker="D", color=NIC_COLOR, label="NIC"))
    present = {graph.edges[e]["tier"] for e in data["edge_styles"]}
    for tier, style in _tier_styles(graph).items():
        if tier in present:
            handles.append(Line2D([], [], color="#7a7a7a", ls=style, label=tier))
    if data["min_bandwidth"] is not None:
        for bw in sorted({data["min_bandwidth"], data["max_bandwidth"]}):
            handles.append(Line2D([], [], color="#7a7a7a",
                                  lw=edge_width(bw, data["min_bandwidth"]),
                                  label=format_bandwidth(bw)))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
              frameon=False)
    name = graph.graph.get("name") or "topology"
    gpus = sum(1 for _, kind in graph.nodes(data="kind") if kind == "gpu")
    ax.set_title(f"{name}: {gpus} GPUs in {len(data['block_colors'])} blocks", fontsize=10)
    fig.text(0.01, 0.01, "line width = 1 pt + 1 pt per doubling of bandwidth above the slowest "
             "link; line style = tier (legend)", fontsize=7, color="#555555")
    write_figure(fig, path, dpi=150)
    return {**data, "path": str(path)}
