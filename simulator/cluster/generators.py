"""Topology generators: common cluster shapes as graphs that follow the topology contract.

Each generator is a pure function, in the manner of ``networkx.grid_2d_graph``: it takes the
shape (counts) positionally and link and GPU properties as keywords, and returns a new
``networkx.Graph`` that follows the contract in :mod:`simulator.cluster.topology` (node ``kind``,
GPU ``block``/``peak_flops``/``efficiency``/``gpu_type``, edge ``bandwidth`` in bytes/s,
``latency`` in s, ``tier``). Nothing is read or written; :func:`simulator.cluster.writer.write_topology`
writes a graph to a file.

Conventions shared by every generator
-------------------------------------
- Bandwidths are floats in bytes/s, latencies floats in seconds (``25e9`` is 25 GB/s,
  ``1e-6`` is 1 us). Keyword names say which links they set: ``intra_*`` for links inside a
  block, ``inter_*`` for links between blocks (or up the switch hierarchy).
- ``tier`` is always derived by the tier rule (docs/semantics.md, "Network model"):
  ``intra_block`` when both ends carry the same ``block`` (so a GPU and its block's own
  switch or NIC), ``inter_block`` otherwise.
  A switch or NIC that belongs to exactly one block (a rack's top-of-rack switch, a fat-tree
  edge switch, a node's NVSwitch and NICs) carries that block; shared switches carry none.
- GPUs get ``peak_flops`` (FLOP/s), ``efficiency`` (0 < e <= 1) and ``gpu_type`` from the
  keywords of the same names; the defaults describe a V100-class GPU (15.7 TFLOP/s FP32,
  40 % achieved).
- Node names are natural-sortable (``gpu2`` before ``gpu10``) and insertion order is
  top-down (switches before the GPUs under them), so drawings and node-link files read well.
- Bad arguments raise :class:`simulator.utils.errors.InputError` whose ``field`` is the keyword
  name (``k``, ``intra_bandwidth``) and whose ``fix`` says what to pass instead.

:data:`FAMILIES` maps the names the CLI uses (``two-tier``, ``fat-tree``, ...) to the
generators, and :func:`generate` builds one by name from keyword parameters, rejecting those
that do not apply to the family.

Examples
--------
>>> g = two_tier(2, 4)
>>> sorted(n for n, k in g.nodes(data="kind") if k == "switch")
['core', 'sw0', 'sw1']
>>> g.edges["sw0", "core"]["tier"], g.edges["gpu0_0", "sw0"]["tier"]
('inter_block', 'intra_block')
"""

import inspect
import math
import numbers

import networkx as nx

from ..utils.errors import InputError
from ..utils.units import MAX_QUANTITY, parse_bandwidth, parse_flops, parse_time
from .ranges import MIN_BANDWIDTH_BPS, MIN_EFFICIENCY, MIN_PEAK_FLOPS, check_graph_size

__all__ = [
    "two_tier",
    "fat_tree",
    "ring",
    "torus_2d",
    "torus_rings",
    "dgx",
    "two_sites",
    "FAMILIES",
    "generate",
    "family_parameters",
    "V100_PEAK_FLOPS",
    "V100_EFFICIENCY",
]

V100_PEAK_FLOPS = 15.7e12
"""Default GPU peak rate, FLOP/s: an NVIDIA V100's FP32 peak (V100 datasheet)."""
V100_EFFICIENCY = 0.4
"""Default achieved fraction of peak: a typical figure for CNN training on V100."""


# ----------------------------------------------------------------------------- checks
def _count(value, name, *, minimum=1, example=None):
    """Check that `value` is an int >= `minimum`; return it."""
    fix = f"give an integer >= {minimum}" + (f", e.g. {example}" if example else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"must be an integer, got {value!r}", field=name, fix=fix)
    if value < minimum:
        raise InputError(f"must be at least {minimum}, got {value}", field=name, fix=fix)
    return int(value)


def _real(value, name, fix):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not (math.isfinite(value) and abs(value) <= MAX_QUANTITY):
        raise InputError(f"must be a finite number at most 1e30, got {value!r}", field=name,
                         fix=fix)
    return float(value)


def _size(nodes, links, field):
    """Refuse a graph too large for memory before building it (named by its option)."""
    check_graph_size(nodes, links, what=f"a topology of {nodes:,} devices",
                     fix="use smaller counts", field=field)


def _bandwidth(value, name):
    """Check a bandwidth in bytes/s (>= 1 bit/s); return it as float."""
    fix = "give a positive bandwidth, e.g. 25 GB/s = 25e9 bytes/s"
    value = _real(value, name, fix)
    if value <= 0:
        raise InputError(f"must be positive, got {value!r}", field=name, fix=fix)
    if value < MIN_BANDWIDTH_BPS:
        raise InputError(f"must be at least 1 bit/s, got {value!r}", field=name, fix=fix)
    return value


def _latency(value, name):
    """Check a latency in seconds (>= 0); return it as float."""
    fix = "give a latency >= 0, e.g. 1 us = 1e-6 s"
    value = _real(value, name, fix)
    if value < 0:
        raise InputError(f"must not be negative, got {value!r}", field=name, fix=fix)
    return value


def _link_props(prefix, bandwidth, latency):
    """Check ``{prefix}_bandwidth`` and ``{prefix}_latency``; return them as a pair."""
    return _bandwidth(bandwidth, f"{prefix}_bandwidth"), _latency(latency, f"{prefix}_latency")


def _gpu_attrs(peak_flops, efficiency, gpu_type):
    """Check the GPU keywords; return the attribute dict every GPU node gets."""
    fix = "give a positive FLOP/s, e.g. 15.7 TFLOP/s = 15.7e12 FLOP/s"
    peak_flops = _real(peak_flops, "peak_flops", fix)
    if peak_flops < MIN_PEAK_FLOPS:
        raise InputError(f"must be {'positive' if peak_flops <= 0 else 'at least 1 FLOP/s'}, "
                         f"got {peak_flops!r}", field="peak_flops", fix=fix)
    fix = "give a fraction in (0, 1], e.g. 0.4"
    efficiency = _real(efficiency, "efficiency", fix)
    if not MIN_EFFICIENCY <= efficiency <= 1:
        raise InputError(f"must be {'in (0, 1]' if not 0 < efficiency <= 1 else 'at least 1e-6'}"
                         f", got {efficiency!r}", field="efficiency", fix=fix)
    attrs = {"kind": "gpu", "peak_flops": peak_flops, "efficiency": efficiency}
    if gpu_type is not None:
        attrs["gpu_type"] = str(gpu_type)
    return attrs


def _link(graph, u, v, bandwidth, latency):
    """Add link u—v with its tier derived from the ends' ``block`` (the tier rule)."""
    bu, bv = graph.nodes[u].get("block"), graph.nodes[v].get("block")
    tier = "intra_block" if bu is not None and bu == bv else "inter_block"
    graph.add_edge(u, v, bandwidth=bandwidth, latency=latency, tier=tier)


def _add_two_tier_site(graph, core, blocks, gpus_per_block, gpu, prefix,
                       intra_bandwidth, intra_latency, inter_bandwidth, inter_latency):
    """Add `blocks` switched blocks under switch `core` (names prefixed with `prefix`)."""
    for b in range(blocks):
        block, switch = f"{prefix}block{b}", f"{prefix}sw{b}"
        graph.add_node(switch, kind="switch", block=block)
        _link(graph, core, switch, inter_bandwidth, inter_latency)
        for i in range(gpus_per_block):
            name = f"{prefix}gpu{b}_{i}"
            graph.add_node(name, block=block, **gpu)
            _link(graph, switch, name, intra_bandwidth, intra_latency)


# ------------------------------------------------------------------------- generators
def two_tier(blocks, gpus_per_block, *, intra_bandwidth=25e9, intra_latency=1e-6,
             inter_bandwidth=12.5e9, inter_latency=5e-6, peak_flops=V100_PEAK_FLOPS,
             efficiency=V100_EFFICIENCY, gpu_type="V100"):
    """Return a two-tier tree: GPUs under one switch per block, block switches under a core.

    Parameters
    ----------
    blocks : int
        Number of blocks (racks, nodes), >= 1.
    gpus_per_block : int
        GPUs in each block, >= 1.
    intra_bandwidth : float, default 25e9
        Bandwidth of each GPU—block-switch link, bytes/s (25 GB/s).
    intra_latency : float, default 1e-6
        Latency of each GPU—block-switch link, s (1 us).
    inter_bandwidth : float, default 12.5e9
        Bandwidth of each block-switch—core link, bytes/s (100 Gbit/s).
    inter_latency : float, default 5e-6
        Latency of each block-switch—core link, s (5 us).
    peak_flops : float, default 15.7e12
        Peak FLOP/s of every GPU.
    efficiency : float, default 0.4
        Achieved fraction of peak of every GPU.
    gpu_type : str or None, default "V100"
        Name stored as ``gpu_type`` (omitted when None).

    Returns
    -------
    networkx.Graph
        Switch ``core``; for block ``b`` switch ``sw{b}`` and GPUs ``gpu{b}_{i}``, all with
        ``block="block{b}"``. GPU—``sw{b}`` links are ``intra_block``, ``sw{b}``—``core``
        links ``inter_block``. Nodes are inserted in the order ``core, sw0, gpu0_0, ...,
        sw1, gpu1_0, ...``. ``blocks * gpus_per_block`` GPUs, ``blocks + 1`` switches,
        ``blocks * (gpus_per_block + 1)`` links.

    Raises
    ------
    InputError
        If a count is below 1, a bandwidth not positive or a latency negative.

    Notes
    -----
    These are the node names of the shared reference cases
    (``reference/transfer_cases.json``); there the switches carry no ``block`` and the GPUs
    no compute attributes, which changes no tier and no transfer.

    Examples
    --------
    >>> g = two_tier(2, 2, inter_bandwidth=40e9)
    >>> list(g.nodes)
    ['core', 'sw0', 'gpu0_0', 'gpu0_1', 'sw1', 'gpu1_0', 'gpu1_1']
    >>> g.edges["core", "sw1"]["bandwidth"]
    40000000000.0
    """
    blocks = _count(blocks, "blocks", example=4)
    gpus_per_block = _count(gpus_per_block, "gpus_per_block", example=4)
    _size(blocks * (gpus_per_block + 1) + 1, blocks * (gpus_per_block + 1), "blocks")
    gpu = _gpu_attrs(peak_flops, efficiency, gpu_type)
    graph = nx.Graph(name=f"two-tier {blocks}x{gpus_per_block}")
    graph.add_node("core", kind="switch")
    _add_two_tier_site(graph, "core", blocks, gpus_per_block, gpu, "",
                       *_link_props("intra", intra_bandwidth, intra_latency),
                       *_link_props("inter", inter_bandwidth, inter_latency))
    return graph


def fat_tree(k, *, intra_bandwidth=12.5e9, intra_latency=1e-6, inter_bandwidth=12.5e9,
             inter_latency=1e-6, peak_flops=V100_PEAK_FLOPS, efficiency=V100_EFFICIENCY,
             gpu_type="V100"):
    """Return a k-ary fat-tree (Al-Fares et al., SIGCOMM 2008) with GPUs as hosts.

    Parameters
    ----------
    k : int
        Switch radix, even and >= 2. There are ``k`` pods, each with ``k/2`` edge and
        ``k/2`` aggregation switches, ``(k/2)**2`` core switches and ``k/2`` GPUs under
        every edge switch: ``k**3/4`` GPUs, ``5*k**2/4`` switches, ``3*k**3/4`` links.
    intra_bandwidth : float, default 12.5e9
        Bandwidth of each GPU—edge link, bytes/s (100 Gbit/s).
    intra_latency : float, default 1e-6
        Latency of each GPU—edge link, s.
    inter_bandwidth : float, default 12.5e9
        Bandwidth of each edge—aggregation and aggregation—core link, bytes/s. Equal to
        `intra_bandwidth` (the default) gives full bisection bandwidth.
    inter_latency : float, default 1e-6
        Latency of each edge—aggregation and aggregation—core link, s.
    peak_flops, efficiency, gpu_type
        As in :func:`two_tier`.

    Returns
    -------
    networkx.Graph
        A block is the GPUs under one edge switch. With ``h = k/2``, edge switch
        ``b = pod*h + e`` is ``edge{b}`` with ``block="block{b}"`` and GPUs ``gpu{b}_{i}``;
        aggregation switch ``i`` of pod ``p`` is ``agg{p}_{i}`` and connects to core
        switches ``core{i}_{j}`` for every ``j``. Only GPU—edge links are ``intra_block``.

    Raises
    ------
    InputError
        If `k` is odd or below 2, a bandwidth not positive or a latency negative.

    Examples
    --------
    >>> g = fat_tree(4)
    >>> sum(k == "gpu" for _, k in g.nodes(data="kind")), g.number_of_edges()
    (16, 48)
    """
    k = _count(k, "k", minimum=2, example=4)
    if k % 2:
        raise InputError(f"must be even, got {k}", field="k", fix=f"use an even k, e.g. {k + 1}")
    _size(k**3 // 4 + 5 * k**2 // 4, 3 * k**3 // 4, "k")
    gpu = _gpu_attrs(peak_flops, efficiency, gpu_type)
    intra = _link_props("intra", intra_bandwidth, intra_latency)
    inter = _link_props("inter", inter_bandwidth, inter_latency)
    half = k // 2
    graph = nx.Graph(name=f"fat-tree k={k}")
    for i in range(half):
        for j in range(half):
            graph.add_node(f"core{i}_{j}", kind="switch")
    for pod in range(k):
        for i in range(half):
            agg = f"agg{pod}_{i}"
            graph.add_node(agg, kind="switch")
            for j in range(half):
                _link(graph, agg, f"core{i}_{j}", *inter)
        for e in range(half):
            b = pod * half + e
            edge, block = f"edge{b}", f"block{b}"
            graph.add_node(edge, kind="switch", block=block)
            for i in range(half):
                _link(graph, edge, f"agg{pod}_{i}", *inter)
            for h in range(half):
                name = f"gpu{b}_{h}"
                graph.add_node(name, block=block, **gpu)
                _link(graph, edge, name, *intra)
    return graph


def ring(n, *, blocks=None, intra_bandwidth=25e9, intra_latency=1e-6, inter_bandwidth=25e9,
         inter_latency=1e-6, peak_flops=V100_PEAK_FLOPS, efficiency=V100_EFFICIENCY,
         gpu_type="V100"):
    """Return `n` GPUs linked directly in a cycle, without switches.

    Parameters
    ----------
    n : int
        Number of GPUs, >= 2. GPU ``i`` is ``gpu{i}``, linked to ``gpu{(i+1) % n}``; with
        ``n == 2`` the two links of the cycle are one link (the graph has no multi-edges).
    blocks : int or None, default None
        Number of blocks, a divisor of `n`; block ``j`` (``block{j}``) holds the ``n/blocks``
        consecutive GPUs ``gpu{j*n/blocks}`` ... None makes every GPU its own block.
    intra_bandwidth, intra_latency : float, default 25e9, 1e-6
        Bandwidth (bytes/s) and latency (s) of a link between two GPUs of one block.
    inter_bandwidth, inter_latency : float, default 25e9, 1e-6
        Bandwidth (bytes/s) and latency (s) of a link between GPUs of different blocks
        (every link when each GPU is its own block).
    peak_flops, efficiency, gpu_type
        As in :func:`two_tier`.

    Returns
    -------
    networkx.Graph
        `n` GPUs and `n` links (1 link when ``n == 2``).

    Raises
    ------
    InputError
        If ``n < 2``, `blocks` does not divide `n`, a bandwidth is not positive or a latency
        negative.

    Examples
    --------
    >>> g = ring(4, blocks=2)
    >>> [g.edges[e]["tier"] for e in [("gpu0", "gpu1"), ("gpu1", "gpu2"), ("gpu3", "gpu0")]]
    ['intra_block', 'inter_block', 'inter_block']
    """
    n = _count(n, "n", minimum=2, example=8)
    _size(n, n, "n")
    blocks = n if blocks is None else _count(blocks, "blocks", example=n)
    if n % blocks:
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        raise InputError(f"must divide n={n}, got {blocks}", field="blocks",
                         fix=f"use one of {divisors}")
    gpu = _gpu_attrs(peak_flops, efficiency, gpu_type)
    intra = _link_props("intra", intra_bandwidth, intra_latency)
    inter = _link_props("inter", inter_bandwidth, inter_latency)
    per_block = n // blocks
    graph = nx.Graph(name=f"ring n={n}")
    for i in range(n):
        graph.add_node(f"gpu{i}", block=f"block{i // per_block}", **gpu)
    for i in range(n):
        u, v = f"gpu{i}", f"gpu{(i + 1) % n}"
        same = graph.nodes[u]["block"] == graph.nodes[v]["block"]
        _link(graph, u, v, *(intra if same else inter))
    return graph


def torus_2d(rows, cols, *, block_by="rows", intra_bandwidth=25e9, intra_latency=1e-6,
             inter_bandwidth=25e9, inter_latency=1e-6, peak_flops=V100_PEAK_FLOPS,
             efficiency=V100_EFFICIENCY, gpu_type="V100"):
    """Return a `rows` x `cols` 2D torus of GPUs linked directly, with wrap-around links.

    Parameters
    ----------
    rows, cols : int
        Torus size, each >= 2. GPU ``(r, c)`` is ``gpu{r}_{c}``, linked to
        ``gpu{r}_{(c+1) % cols}`` and ``gpu{(r+1) % rows}_{c}``. A dimension of size 2 has
        one link per pair, not two (no multi-edges), so the torus has
        ``rows*cols*(2 - [rows == 2]/2 - [cols == 2]/2)`` links: ``2*rows*cols`` when both
        are >= 3.
    block_by : {"rows", "cols"}, default "rows"
        Block of a GPU: its row (``block{r}``) or its column (``block{c}``).
    intra_bandwidth, intra_latency : float, default 25e9, 1e-6
        Bandwidth (bytes/s) and latency (s) of links inside a block (along a row for
        ``block_by="rows"``).
    inter_bandwidth, inter_latency : float, default 25e9, 1e-6
        Bandwidth (bytes/s) and latency (s) of links between blocks.
    peak_flops, efficiency, gpu_type
        As in :func:`two_tier`.

    Returns
    -------
    networkx.Graph

    Raises
    ------
    InputError
        If `rows` or `cols` is below 2, `block_by` is not "rows" or "cols", a bandwidth is
        not positive or a latency negative.

    Examples
    --------
    >>> g = torus_2d(3, 4)
    >>> g.number_of_nodes(), g.number_of_edges()
    (12, 24)
    >>> g.edges["gpu0_3", "gpu0_0"]["tier"], g.edges["gpu2_0", "gpu0_0"]["tier"]
    ('intra_block', 'inter_block')
    """
    rows = _count(rows, "rows", minimum=2, example=4)
    cols = _count(cols, "cols", minimum=2, example=4)
    _size(rows * cols, 2 * rows * cols, "rows")
    if block_by not in ("rows", "cols"):
        raise InputError(f"must be 'rows' or 'cols', got {block_by!r}", field="block_by",
                         fix="give 'rows' or 'cols'")
    gpu = _gpu_attrs(peak_flops, efficiency, gpu_type)
    intra = _link_props("intra", intra_bandwidth, intra_latency)
    inter = _link_props("inter", inter_bandwidth, inter_latency)
    graph = nx.Graph(name=f"torus {rows}x{cols}")
    for r in range(rows):
        for c in range(cols):
            graph.add_node(f"gpu{r}_{c}", block=f"block{r if block_by == 'rows' else c}", **gpu)
    for r in range(rows):
        for c in range(cols):
            u = f"gpu{r}_{c}"
            for v in (f"gpu{r}_{(c + 1) % cols}", f"gpu{(r + 1) % rows}_{c}"):
                if not graph.has_edge(u, v):
                    same = graph.nodes[u]["block"] == graph.nodes[v]["block"]
                    _link(graph, u, v, *(intra if same else inter))
    rings = torus_rings(rows, cols)
    if rings:
        graph.graph["collectives"] = {"rings": [[f"gpu{r}_{c}" for r, c in ring] for ring in rings]}
    return graph


def torus_rings(rows, cols):
    """Edge-disjoint Hamiltonian cycles of the `rows` x `cols` torus, as lists of (r, c).

    The staircase cycle goes along a row and steps down one row at column ``-r mod cols``
    of row ``r``; it visits every GPU when ``cols`` divides ``rows`` (else the same with
    rows and columns swapped, when ``rows`` divides ``cols``). When the torus links it does
    not use form one cycle too (square tori), that is the second cycle: together they use
    every link once, and a ring all-reduce running each both ways (four channels) uses
    every link once per direction.

    Returns
    -------
    list of list of (int, int)
        Two cycles, one, or none (no divisibility: the collectives search for one).

    Examples
    --------
    >>> [len(r) for r in torus_rings(4, 4)], torus_rings(3, 4)
    ([16, 16], [])
    """
    def staircase(R, C, swap):
        order, (r, c) = [], (0, 0)
        for _ in range(R * C):
            order.append((c, r) if swap else (r, c))
            r, c = ((r + 1) % R, c) if c == (-r) % C else (r, (c + 1) % C)
        return order if (r, c) == (0, 0) and len(set(order)) == R * C else None

    first = staircase(rows, cols, False) if rows % cols == 0 else \
        staircase(cols, rows, True) if cols % rows == 0 else None
    if first is None:
        return []
    edges = {frozenset(((r, c), (r, (c + 1) % cols))) for r in range(rows) for c in range(cols)}
    edges |= {frozenset(((r, c), ((r + 1) % rows, c))) for r in range(rows) for c in range(cols)}
    edges = {e for e in edges if len(e) == 2}
    used = {frozenset((first[i], first[(i + 1) % len(first)])) for i in range(len(first))}
    rest = edges - used
    if len(used) != len(first) or len(rest) != len(first):
        return [first]
    neighbours = {}
    for e in rest:
        a, b = tuple(e)
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    if any(len(n) != 2 for n in neighbours.values()) or len(neighbours) != len(first):
        return [first]
    second, prev = [(0, 0)], None
    while len(second) < len(first):
        here = second[-1]
        step = min(n for n in neighbours[here] if n != prev) if prev is None else \
            next(n for n in neighbours[here] if n != prev)
        if step == (0, 0):
            return [first]
        prev = here
        second.append(step)
    return [first, second]


def dgx(nodes, gpus_per_node=8, nics_per_node=8, *, intra_bandwidth=300e9, intra_latency=1e-6,
        nic_bandwidth=32e9, nic_latency=1e-6, inter_bandwidth=25e9, inter_latency=5e-6,
        peak_flops=V100_PEAK_FLOPS, efficiency=V100_EFFICIENCY, gpu_type="V100",
        switch_reduction=False):
    """Return DGX-style nodes: NVSwitch inside a node, NICs to one network switch between.

    Parameters
    ----------
    nodes : int
        Number of DGX nodes (blocks), >= 1.
    gpus_per_node : int, default 8
        GPUs per node, >= 1.
    nics_per_node : int, default 8
        Network adapters per node, a divisor of `gpus_per_node`; GPU ``i`` uses NIC
        ``i // (gpus_per_node // nics_per_node)`` (with 8 and 8, GPU ``i`` has NIC ``i``).
    intra_bandwidth, intra_latency : float, default 300e9, 1e-6
        GPU—NVSwitch link: bytes/s (300 GB/s, V100 NVLink 2 aggregate) and s.
    nic_bandwidth, nic_latency : float, default 32e9, 1e-6
        GPU—NIC link (PCIe 4.0 x16, ~32 GB/s) and its latency, s.
    inter_bandwidth, inter_latency : float, default 25e9, 5e-6
        NIC—network-switch link: bytes/s (25 GB/s = 200 Gbit/s HDR InfiniBand) and s.
    peak_flops, efficiency, gpu_type
        As in :func:`two_tier`.
    switch_reduction : bool, default False
        The NVSwitches reduce in the switch (NVLink SHARP, from the H100 generation):
        ``reduction: true`` on every ``nvswitch{n}``.

    Returns
    -------
    networkx.Graph
        Per node ``n`` (block ``node{n}``): switch ``nvswitch{n}``, GPUs ``gpu{n}_{i}`` and
        NICs ``nic{n}_{j}`` (kind ``nic``), all with ``block="node{n}"``; one switch
        ``spine`` without a block joins every NIC. GPU—NVSwitch and GPU—NIC links are
        ``intra_block``, NIC—spine links ``inter_block``.

    Raises
    ------
    InputError
        If a count is below 1, `nics_per_node` does not divide `gpus_per_node`, a
        bandwidth is not positive or a latency negative.

    Notes
    -----
    The inter-node network is a single non-blocking switch: every NIC has its full
    bandwidth to every other. A real DGX SuperPOD uses a rail-optimised leaf/spine
    fabric; with full bisection the two carry the same flows, so the simpler one is used.
    Traffic between GPUs of one node takes the NVSwitch (2 hops); between nodes it leaves
    through the sender's NIC and enters through the receiver's (4 hops).

    Examples
    --------
    >>> g = dgx(2)
    >>> g.number_of_nodes(), g.number_of_edges()
    (35, 48)
    >>> nx.shortest_path(g, "gpu0_3", "gpu1_3")
    ['gpu0_3', 'nic0_3', 'spine', 'nic1_3', 'gpu1_3']
    """
    nodes = _count(nodes, "nodes", example=4)
    gpus_per_node = _count(gpus_per_node, "gpus_per_node", example=8)
    nics_per_node = _count(nics_per_node, "nics_per_node", example=gpus_per_node)
    _size(nodes * (gpus_per_node + nics_per_node + 1) + 1,
          nodes * (2 * gpus_per_node + nics_per_node), "nodes")
    if gpus_per_node % nics_per_node:
        divisors = [d for d in range(1, gpus_per_node + 1) if gpus_per_node % d == 0]
        raise InputError(f"must divide gpus_per_node={gpus_per_node}, got {nics_per_node}",
                         field="nics_per_node", fix=f"use one of {divisors}")
    gpu = _gpu_attrs(peak_flops, efficiency, gpu_type)
    nvlink = _link_props("intra", intra_bandwidth, intra_latency)
    pcie = _link_props("nic", nic_bandwidth, nic_latency)
    network = _link_props("inter", inter_bandwidth, inter_latency)
    gpus_per_nic = gpus_per_node // nics_per_node
    graph = nx.Graph(name=f"dgx {nodes}x{gpus_per_node}")
    graph.add_node("spine", kind="switch")
    for n in range(nodes):
        block, nvswitch = f"node{n}", f"nvswitch{n}"
        graph.add_node(nvswitch, kind="switch", block=block,
                       **({"reduction": True} if switch_reduction else {}))
        for j in range(nics_per_node):
            graph.add_node(f"nic{n}_{j}", kind="nic", block=block)
            _link(graph, f"nic{n}_{j}", "spine", *network)
        for i in range(gpus_per_node):
            name = f"gpu{n}_{i}"
            graph.add_node(name, block=block, **gpu)
            _link(graph, nvswitch, name, *nvlink)
            _link(graph, name, f"nic{n}_{i // gpus_per_nic}", *pcie)
    return graph


def two_sites(blocks_per_site, gpus_per_block, *, wan_bandwidth=1.25e9, wan_latency=5e-3,
              intra_bandwidth=25e9, intra_latency=1e-6, inter_bandwidth=12.5e9,
              inter_latency=5e-6, peak_flops=V100_PEAK_FLOPS, efficiency=V100_EFFICIENCY,
              gpu_type="V100"):
    """Return two two-tier sites whose core switches are joined by one WAN link.

    Parameters
    ----------
    blocks_per_site : int
        Blocks in each site, >= 1.
    gpus_per_block : int
        GPUs in each block, >= 1.
    wan_bandwidth : float, default 1.25e9
        Bandwidth of the WAN link, bytes/s (10 Gbit/s).
    wan_latency : float, default 5e-3
        Latency of the WAN link, s (5 ms, about 1,000 km of fibre).
    intra_bandwidth, intra_latency, inter_bandwidth, inter_latency
        As in :func:`two_tier`, for each site.
    peak_flops, efficiency, gpu_type
        As in :func:`two_tier`.

    Returns
    -------
    networkx.Graph
        Site ``s`` has core switch ``site{s}`` and, for block ``b``, switch ``s{s}_sw{b}``
        and GPUs ``s{s}_gpu{b}_{i}``, with ``block="s{s}_block{b}"`` (unique across sites).
        The link ``site0``—``site1`` is ``inter_block``.

    Raises
    ------
    InputError
        If a count is below 1, a bandwidth is not positive or a latency negative.

    Examples
    --------
    >>> g = two_sites(2, 2)
    >>> nx.shortest_path(g, "s0_gpu0_0", "s1_gpu1_1")
    ['s0_gpu0_0', 's0_sw0', 'site0', 'site1', 's1_sw1', 's1_gpu1_1']
    """
    blocks_per_site = _count(blocks_per_site, "blocks_per_site", example=4)
    gpus_per_block = _count(gpus_per_block, "gpus_per_block", example=4)
    _size(2 * blocks_per_site * (gpus_per_block + 1) + 2,
          2 * blocks_per_site * (gpus_per_block + 1) + 1, "blocks_per_site")
    gpu = _gpu_attrs(peak_flops, efficiency, gpu_type)
    links = (*_link_props("intra", intra_bandwidth, intra_latency),
             *_link_props("inter", inter_bandwidth, inter_latency))
    wan = _link_props("wan", wan_bandwidth, wan_latency)
    graph = nx.Graph(name=f"two sites {blocks_per_site}x{gpus_per_block}")
    for s in range(2):
        graph.add_node(f"site{s}", kind="switch")
        _add_two_tier_site(graph, f"site{s}", blocks_per_site, gpus_per_block, gpu, f"s{s}_",
                           *links)
    _link(graph, "site0", "site1", *wan)
    return graph


FAMILIES = {
    "two-tier": two_tier,
    "fat-tree": fat_tree,
    "ring": ring,
    "torus": torus_2d,
    "dgx": dgx,
    "two-sites": two_sites,
}
"""Generator of each topology family, by the name the CLI uses."""

# Shared parameter names that stand for a family's own name (the CLI's ``--blocks``).
_ALIASES = {"two-sites": {"blocks": "blocks_per_site"}}


def family_parameters(family):
    """Return the parameters a family's generator accepts, with their defaults.

    Parameters
    ----------
    family : str
        A key of :data:`FAMILIES`.

    Returns
    -------
    dict
        ``{name: default}`` in signature order, under the names :func:`generate` takes
        (``blocks`` for ``two-sites``' ``blocks_per_site``); a required parameter maps to
        :data:`inspect.Parameter.empty`.

    Raises
    ------
    InputError
        If `family` is not a key of :data:`FAMILIES`.

    Examples
    --------
    >>> list(family_parameters("fat-tree"))[:3]
    ['k', 'intra_bandwidth', 'intra_latency']
    """
    if family not in FAMILIES:
        raise InputError(f"unknown topology family {family!r}", field="family",
                         fix=f"use one of {', '.join(FAMILIES)}")
    back = {canonical: shared for shared, canonical in _ALIASES.get(family, {}).items()}
    signature = inspect.signature(FAMILIES[family])
    return {back.get(name, name): p.default for name, p in signature.parameters.items()}


def _parsed(name, value):
    """`value`, parsed from text with units where the parameter carries a unit."""
    if not isinstance(value, str):
        return value
    if name.endswith("_bandwidth"):
        return parse_bandwidth(value, field=name)
    if name.endswith("_latency"):
        return parse_time(value, field=name)
    if name == "peak_flops":
        return parse_flops(value, field=name)
    return value


def generate(family, **params):
    """Build a topology of `family` from keyword parameters.

    Parameters
    ----------
    family : str
        A key of :data:`FAMILIES`, e.g. ``"fat-tree"``.
    **params
        The generator's parameters by name (``k=4``, ``intra_bandwidth=25e9``). ``blocks``
        also stands for ``blocks_per_site`` of ``two-sites``, so one set of names serves
        every family. Bandwidths, latencies and ``peak_flops`` may also be given as text
        with units (``"25 GB/s"``, ``"1 us"``, ``"15.7 TFLOP/s"``).

    Returns
    -------
    networkx.Graph

    Raises
    ------
    InputError
        If `family` is unknown, a parameter does not apply to it, a required one is
        missing, or a value is bad; ``field`` names the parameter as it was passed.

    Examples
    --------
    >>> generate("two-sites", blocks=1, gpus_per_block=2).number_of_nodes()
    8
    >>> generate("ring", k=4)
    Traceback (most recent call last):
    ...
    simulator.utils.errors.InputError: k: does not apply to family 'ring' (its parameters: n, blocks, \
intra_bandwidth, intra_latency, inter_bandwidth, inter_latency, peak_flops, efficiency, gpu_type)
    """
    accepted = family_parameters(family)
    for name in params:
        if name not in accepted:
            raise InputError(f"does not apply to family {family!r}", field=name,
                             fix=f"its parameters: {', '.join(accepted)}")
    params = {name: _parsed(name, value) for name, value in params.items()}
    for name, default in accepted.items():
        if default is inspect.Parameter.empty and name not in params:
            raise InputError(f"family {family!r} needs it", field=name, fix="give a value")
    aliases = _ALIASES.get(family, {})
    try:
        return FAMILIES[family](**{aliases.get(k, k): v for k, v in params.items()})
    except InputError as err:
        back = {canonical: shared for shared, canonical in aliases.items()}
        if err.field in back:
            raise InputError(err.message, field=back[err.field], fix=err.fix) from err
        raise
