"""Static statistics of a topology: injection and bisection bandwidth.

Pure functions over a graph that follows the contract in :mod:`simulator.cluster.topology`. All
bandwidths are in bytes/s (a link is full-duplex, so a bandwidth is per direction) and all
latencies in seconds.

Definitions
-----------
injection bandwidth of a GPU
    The sum of the bandwidths of the GPU's links: what it can push into the network at once
    when it sends on all of them. (A GPU whose traffic takes a single link can use only that
    link's share; see :func:`injection_bandwidth`.)
bisection bandwidth
    The least total bandwidth of links that must be cut to separate the GPUs into two halves
    of equal size (sizes differ by one when the count is odd), i.e. the minimum over
    balanced GPU bipartitions of the min-cut capacity between the halves. Finding it
    exactly is NP-hard, so :func:`bisection_bandwidth` tries a small deterministic set of
    balanced splits and returns the least cut found: an *upper bound* on the true value,
    exact on the regular shapes of :mod:`simulator.cluster.generators`.
"""

import random

import networkx as nx

from ..utils.errors import InputError
from .topology import gpu_blocks, gpu_nodes, natural_key

__all__ = [
    "injection_bandwidth",
    "bisection_bandwidth",
    "candidate_bisections",
    "cut_bandwidth",
]

def injection_bandwidth(graph, *, weight="bandwidth"):
    """Return the injection bandwidth of every GPU, bytes/s.

    Parameters
    ----------
    graph : networkx.Graph
        A topology (contract of :mod:`simulator.cluster.topology`).
    weight : str, default "bandwidth"
        Edge attribute holding a link's bandwidth in bytes/s.

    Returns
    -------
    dict
        ``{gpu: bytes/s}`` in natural GPU order: the sum of the bandwidths of the links at
        the GPU, i.e. what it can push into the network at once when all its links are busy.
        A GPU under a single switch has its one link's bandwidth; a GPU in a ring has twice
        its link bandwidth (it can send both ways at once).

    Examples
    --------
    >>> from simulator.cluster.generators import ring
    >>> injection_bandwidth(ring(3, inter_bandwidth=10e9))
    {'gpu0': 20000000000.0, 'gpu1': 20000000000.0, 'gpu2': 20000000000.0}
    """
    return {gpu: float(sum(bw for _, _, bw in graph.edges(gpu, data=weight)))
            for gpu in gpu_nodes(graph)}


def _flow_graph(graph, weight):
    """Directed graph with both arcs of every link, each with capacity = bandwidth."""
    flow = nx.DiGraph()
    flow.add_nodes_from(graph)
    for u, v, bw in graph.edges(data=weight):
        flow.add_edge(u, v, capacity=float(bw))
        flow.add_edge(v, u, capacity=float(bw))
    return flow


_SOURCE, _SINK = ("__bisection_source__",), ("__bisection_sink__",)


def _cut(flow, side_a, side_b, flow_func=None):
    """Min-cut capacity between node sets `side_a` and `side_b` of the flow graph."""
    flow.add_node(_SOURCE)
    flow.add_node(_SINK)
    # Arcs without a capacity attribute have infinite capacity in networkx flow functions.
    flow.add_edges_from((_SOURCE, node) for node in side_a)
    flow.add_edges_from((node, _SINK) for node in side_b)
    try:
        return float(nx.minimum_cut_value(flow, _SOURCE, _SINK, flow_func=flow_func))
    finally:
        flow.remove_node(_SOURCE)
        flow.remove_node(_SINK)


def cut_bandwidth(graph, side_a, side_b, *, weight="bandwidth", flow_func=None):
    """Return the min-cut capacity (bytes/s) separating GPU set `side_a` from `side_b`.

    Switches and NICs go to whichever side makes the cut smallest. Each link counts once,
    with its bandwidth (per direction). `flow_func` is passed to
    :func:`networkx.minimum_cut_value` (default: preflow-push).

    Examples
    --------
    >>> from simulator.cluster.generators import ring
    >>> cut_bandwidth(ring(4, inter_bandwidth=10e9), ["gpu0", "gpu1"], ["gpu2", "gpu3"])
    20000000000.0
    """
    return _cut(_flow_graph(graph, weight), side_a, side_b, flow_func)


def candidate_bisections(graph, *, windows=8, random_splits=4, seed=0):
    """Return the balanced GPU bipartitions :func:`bisection_bandwidth` tries.

    Parameters
    ----------
    graph : networkx.Graph
        A topology.
    windows : int, default 8
        At most this many block-aligned windows: with the blocks in natural order taken as a
        cycle, window ``i`` is the run of consecutive blocks starting at block ``i`` whose
        GPUs make up half of all GPUs (kept only when exactly balanced). Start blocks are
        spread evenly over the first half of the cycle (a window's complement is the window
        starting where it ends).
    random_splits : int, default 4
        Attempts at random block-aligned halves (blocks shuffled with ``random.Random(seed)``,
        then filled greedily; kept only when balanced).
    seed : int, default 0
        Seed of the random splits, so the result is deterministic.

    Returns
    -------
    list of (list, list)
        Distinct splits ``(half_a, half_b)`` of the GPUs, each half in natural order; the
        first is always the natural-order split (first ``floor(n/2)`` GPUs of
        :func:`simulator.cluster.topology.gpu_nodes` against the rest), which need not keep blocks
        whole. Halves have ``floor(n/2)`` and ``ceil(n/2)`` GPUs.
    """
    gpus = gpu_nodes(graph)
    half = len(gpus) // 2
    sizes = {half, len(gpus) - half}
    blocks = list(gpu_blocks(graph).values())
    splits, seen = [], set()

    def add(side_a):
        key = frozenset(side_a)
        key = min(key, frozenset(gpus) - key, key=lambda s: sorted(map(natural_key, s)))
        if len(side_a) in sizes and key not in seen:
            seen.add(key)
            a = sorted(side_a, key=natural_key)
            b = sorted(set(gpus) - set(side_a), key=natural_key)
            splits.append((a, b))

    add(gpus[:half])
    # A window's complement is the window starting where it ends, so starts in the first
    # half of the cycle cover the rest.
    first_half = (len(blocks) + 1) // 2
    starts = sorted({i * first_half // windows for i in range(windows)}) if windows else []
    for start in starts:
        side = []
        for j in range(len(blocks)):
            if len(side) >= half:
                break
            side.extend(blocks[(start + j) % len(blocks)])
        add(side)
    rng = random.Random(seed)
    for _ in range(random_splits):
        order = blocks[:]
        rng.shuffle(order)
        side = []
        for block in order:
            if len(side) + len(block) <= half:
                side.extend(block)
        add(side)
    return splits


def bisection_bandwidth(graph, *, weight="bandwidth", windows=8, random_splits=4, seed=0,
                        flow_func=None):
    """Estimate the bisection bandwidth of `graph`, bytes/s (an upper bound).

    Parameters
    ----------
    graph : networkx.Graph
        A topology with at least 2 GPUs.
    weight : str, default "bandwidth"
        Edge attribute holding a link's bandwidth in bytes/s.
    windows, random_splits, seed
        Which balanced splits to try; see :func:`candidate_bisections`.
    flow_func : callable, optional
        Max-flow algorithm passed to :func:`networkx.minimum_cut_value` (default:
        preflow-push, the fastest of networkx's on these graphs).

    Returns
    -------
    float
        The least min-cut capacity over the candidate splits, bytes/s per direction.

    Raises
    ------
    InputError
        If the graph has fewer than 2 GPUs.

    Notes
    -----
    The bisection bandwidth is the minimum over *all* balanced bipartitions of the GPUs of
    the cut between the halves; that minimum is NP-hard to find. This function computes, for
    each candidate split (the natural-order split, block-aligned windows in natural order
    and a few seeded random block-aligned halves), the exact minimum cut between the two GPU
    halves, letting switches and NICs fall on either side: a max-flow from a super-source
    joined to every GPU of one half to a super-sink joined to every GPU of the other, on a
    flow graph where each link is two arcs with capacity = bandwidth. Each split's cut is an
    achievable bisection, so the minimum found is an upper bound on the true bisection
    bandwidth; on block-structured, symmetric topologies (trees, fat-trees, rings, tori,
    DGX clusters) it is exact. At most ``1 + windows + random_splits`` max-flows are run.

    Examples
    --------
    >>> from simulator.cluster.generators import two_tier, ring
    >>> bisection_bandwidth(two_tier(2, 2, inter_bandwidth=40e9))
    40000000000.0
    >>> bisection_bandwidth(ring(4, inter_bandwidth=10e9))
    20000000000.0
    """
    if len(gpu_nodes(graph)) < 2:
        raise InputError("bisection bandwidth needs at least 2 GPUs",
                         fix="add GPUs to the topology")
    flow = _flow_graph(graph, weight)
    return min(_cut(flow, a, b, flow_func) for a, b in
               candidate_bisections(graph, windows=windows, random_splits=random_splits,
                                    seed=seed))
