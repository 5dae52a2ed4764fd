"""Cluster topologies: load, validate and write them as networkx graphs.

The graph (the contract every other module relies on, DESIGN.md "Network model")
--------------------------------------------------------------------------------
An undirected ``networkx.Graph``; a link is full-duplex (each direction has the whole
bandwidth), so one edge stands for both directions.

Node attributes
    ``kind``        ``"gpu"``, ``"switch"`` or ``"nic"`` (every node).
    ``block``       the block (node, rack) name: every GPU has one; a switch or NIC that
                    belongs to one block (a node's NVSwitch, its NICs) has it too.
    ``peak_flops``  GPUs: peak FLOP/s (float).
    ``efficiency``  GPUs: achieved fraction of peak, 0 < e <= 1.
    ``gpu_type``    GPUs, optional: a name such as ``"V100"``.
Edge attributes
    ``bandwidth``   bytes/s, > 0.
    ``latency``     seconds, >= 0.
    ``tier``        ``"intra_block"`` (both ends in one block, or a GPU and its block's own
                    switch) or ``"inter_block"`` (everything else).
Graph attributes
    ``name``        optional.
"""

import re

__all__ = ["load_topology", "summarize", "gpu_nodes", "gpu_blocks", "natural_key"]


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
    """Return ``{block: [gpu, ...]}`` with blocks and GPUs in natural name order."""
    blocks = {}
    for gpu in gpu_nodes(graph):
        blocks.setdefault(graph.nodes[gpu]["block"], []).append(gpu)
    return {block: blocks[block] for block in sorted(blocks, key=natural_key)}


def load_topology(path):
    """Load and validate a topology file (YAML, GraphML, GML or node-link JSON)."""
    raise NotImplementedError


def summarize(graph):
    """One line: ``16 GPUs in 8 blocks, 9 switches, 0 NICs, 24 links``."""
    raise NotImplementedError
