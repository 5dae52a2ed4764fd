"""Channels: the rings and trees a collective runs at once, and which NIC each one uses.

Semantics (docs/network.md, "Channels and rails")
-------------------------------------------------
A ring or tree all-reduce is split into ``C`` *channels* that run at the same time, each
carrying ``1/C`` of the message (NCCL's channels). This module decides, from the topology
alone, the order of every channel's ring, the NIC every channel crosses a block boundary
through, and the trees; :mod:`simulator.network.collectives` times them.

**Rails.** The NICs of a block, in natural name order, are its rails ``0 .. k-1``; a rail's
GPUs are the GPUs linked to that NIC. Channel ``c`` uses rail ``channel_nics[c] mod k`` in
every block (rail-aligned), by default rail ``c mod k``.

**Switched networks.** A channel's ring visits the blocks in natural order. Inside a block
it starts at the first GPU of the channel's rail (the *rail GPU*, which receives from the
previous block through the rail's NIC), visits the block's other GPUs in natural order
from there, and ends with the rail's second GPU when the rail has one. The hop to the next
block leaves through the channel's rail: directly when the last GPU is on the rail, else
through the rail GPU (the last GPU hands its data to the rail GPU inside the block, which
sends it on: NCCL's PXN), so every block boundary is crossed on the same rail at both ends.
Without NICs the ring of channel ``c`` starts at the block's GPU number ``c mod g``.

**Direct networks** (GPUs linked to GPUs: rings, tori). A ring follows neighbours: it is a
Hamiltonian cycle of the GPU-to-GPU links, so every hop is one link. The topology may give
the cycles (``collectives.rings``; the torus generator gives two edge-disjoint ones for
square tori); otherwise one is searched for (depth first, fewest onward neighbours first,
bounded). Cycle ``k`` runs forwards in channel ``2k`` and backwards in channel ``2k+1``,
so the default ``2 x cycles`` channels use every link of the cycles once per direction.

**Trees** (NCCL's double binary tree). Over the blocks, two binary trees built as NCCL's
``src/graph/trees.cc`` does (the second mirrored for an even number of blocks, shifted by
one for an odd number), each carrying half of a channel's data, so that a block that is
inside one tree is a leaf of the other. Inside a block, a chain from the channel's rail
GPU (its head, which talks to the other blocks) through the other GPUs.

**Default channel count**: ``2 x`` the cycles of a direct network; else the fewest rails of
any block of the group when the group spans several blocks with NICs; else 1.
"""

import weakref
from dataclasses import dataclass

from ..cluster.topology import natural_key
from ..utils.errors import InputError

__all__ = ["MAX_CHANNELS", "RingPlan", "TreePlan", "block_rails", "direct_rings",
           "default_channels", "ring_plan", "tree_plan", "btree", "dtree", "reduction_switch"]

MAX_CHANNELS = 64
"""The most channels a collective runs: NCCL's ``MAXCHANNELS`` (32 in NCCL 2.x's
``src/include/device.h``, 64 in recent versions)."""
_SEARCH_BUDGET = 200_000    # node expansions of the Hamiltonian-cycle search


@dataclass(frozen=True)
class RingPlan:
    """Rings of ``C`` channels. ``orders[c]`` lists the group's GPUs in channel ``c``'s ring;
    ``legs[c][i]`` is the hop from ``orders[c][i]`` to its successor, as a tuple of
    transfers ``(src, dst)`` (two for a PXN hop)."""

    orders: tuple
    legs: tuple

    @property
    def channels(self):
        return len(self.orders)


@dataclass(frozen=True)
class TreePlan:
    """Trees of ``C`` channels. For channel ``c``: ``chains[c]`` maps each block to its chain
    (head first); ``trees`` are the two binary trees over block indices, each a tuple of
    ``(parent, child)``; ``blocks`` the group's blocks in natural order."""

    blocks: tuple
    chains: tuple
    trees: tuple

    @property
    def channels(self):
        return len(self.chains)


def _split_blocks(graph, members):
    """``{block: [gpus]}`` of `members`, blocks and GPUs in natural order."""
    blocks = {}
    for gpu in sorted(members, key=natural_key):
        blocks.setdefault(graph.nodes[gpu].get("block"), []).append(gpu)
    return {b: blocks[b] for b in sorted(blocks, key=lambda b: natural_key(b or ""))}


_NICS = weakref.WeakKeyDictionary()


def _nics_by_block(graph):
    """``{block: [nic, ...]}`` (natural order), computed once per graph (again if its nodes
    change in number)."""
    cached = _NICS.get(graph)
    if cached is not None and cached[0] == graph.number_of_nodes():
        return cached[1]
    index = {}
    for n, kind in graph.nodes(data="kind"):
        if kind == "nic":
            index.setdefault(graph.nodes[n].get("block"), []).append(n)
    index = {b: sorted(nics, key=natural_key) for b, nics in index.items()}
    _NICS[graph] = (graph.number_of_nodes(), index)
    return index


def block_rails(graph, block, members):
    """The rails of `block` for a group: ``[(nic, [gpus on it]), ...]``.

    NICs carrying `block`, in natural order, each with the group's GPUs linked to it
    (natural order); NICs with none of the group's GPUs are left out.

    Examples
    --------
    >>> from simulator.cluster.generators import dgx
    >>> g = dgx(1, 4, 2)
    >>> block_rails(g, "node0", ["gpu0_0", "gpu0_1", "gpu0_2", "gpu0_3"])
    [('nic0_0', ['gpu0_0', 'gpu0_1']), ('nic0_1', ['gpu0_2', 'gpu0_3'])]
    """
    chosen = set(members)
    nics = _nics_by_block(graph).get(block, [])
    rails = []
    for nic in nics:
        gpus = sorted((g for g in graph[nic] if g in chosen), key=natural_key)
        if gpus:
            rails.append((nic, gpus))
    return rails


def _hamiltonian_cycle(adjacency, nodes, budget=_SEARCH_BUDGET):
    """A Hamiltonian cycle of the graph `adjacency` ({node: set}) or None.

    Depth first from the first node, trying neighbours with the fewest unvisited onward
    neighbours first (Warnsdorff), ties by natural order; gives up after `budget` steps.
    """
    if len(nodes) < 3:
        return None
    start = nodes[0]
    path, seen = [start], {start}
    stack = [iter(_warnsdorff(adjacency, start, seen))]
    steps = 0
    while stack:
        steps += 1
        if steps > budget:
            return None
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            seen.discard(path.pop())
            continue
        path.append(nxt)
        seen.add(nxt)
        if len(path) == len(nodes):
            if start in adjacency[nxt]:
                return path
            seen.discard(path.pop())
            continue
        stack.append(iter(_warnsdorff(adjacency, nxt, seen)))
    return None


def _warnsdorff(adjacency, node, seen):
    options = [n for n in adjacency[node] if n not in seen]
    return sorted(options, key=lambda n: (sum(1 for m in adjacency[n] if m not in seen),
                                          natural_key(n)))


def direct_rings(graph, members, declared=None):
    """Neighbour rings of a direct network over `members`, or () if there are none.

    Parameters
    ----------
    graph : networkx.Graph
    members : list of str
    declared : sequence of sequence of str, optional
        The topology's ``collectives.rings``: each restricted to `members` (kept in its
        order) is used when it is a cycle of GPU-to-GPU links over them.

    Returns
    -------
    tuple of tuple of str
        Cycles over all of `members` whose consecutive GPUs (and last and first) are linked.

    Examples
    --------
    >>> from simulator.cluster.generators import ring
    >>> direct_rings(ring(4), ["gpu0", "gpu1", "gpu2", "gpu3"])
    (('gpu0', 'gpu1', 'gpu2', 'gpu3'),)
    """
    chosen = set(members)
    if declared:
        rings = []
        for ring in declared:
            order = tuple(g for g in ring if g in chosen)
            if len(order) == len(chosen) and _is_cycle(graph, order):
                rings.append(order)
        if rings:
            return tuple(rings)
    adjacency = {g: {n for n in graph[g] if n in chosen} for g in members}
    if not all(len(adjacency[g]) >= 2 for g in members):
        return ()
    nodes = sorted(members, key=natural_key)
    cycle = _hamiltonian_cycle(adjacency, nodes)
    return () if cycle is None else (tuple(cycle),)


def _is_cycle(graph, order):
    return len(order) >= 3 and all(graph.has_edge(order[i], order[(i + 1) % len(order)])
                                   for i in range(len(order)))


def default_channels(graph, members, model):
    """The channel count of a group when neither the call nor the topology sets one (at
    most :data:`MAX_CHANNELS`)."""
    rings = direct_rings(graph, members, model.rings)
    if rings:
        return min(2 * len(rings), MAX_CHANNELS)
    blocks = _split_blocks(graph, members)
    if len(blocks) > 1:
        counts = [len(block_rails(graph, b, gpus)) for b, gpus in blocks.items()]
        if min(counts) > 0:
            return min(min(counts), MAX_CHANNELS)
    return 1


def _rail_index(model, channel, k):
    nics = model.channel_nics
    chosen = channel if not nics else nics[channel % len(nics)]
    return chosen % k


def _block_order(graph, block, gpus, channel, model, rails=None):
    """(order, rail GPU) of `block`'s GPUs in `channel`: rail GPU first, rail's second GPU last."""
    rails = block_rails(graph, block, gpus) if rails is None else rails
    if not rails:
        start = gpus[channel % len(gpus)]
        i = gpus.index(start)
        return gpus[i:] + gpus[:i], None
    _, on_rail = rails[_rail_index(model, channel, len(rails))]
    head = on_rail[0]
    i = gpus.index(head)
    order = gpus[i:] + gpus[:i]
    if len(on_rail) > 1 and len(order) > 2:
        order.remove(on_rail[1])
        order.append(on_rail[1])
    return order, (head, set(on_rail))


def ring_plan(graph, members, channels, model):
    """The :class:`RingPlan` of `channels` channels over `members` (see the module docstring).

    Examples
    --------
    >>> from simulator.cluster.generators import dgx
    >>> from simulator.network.protocols import collective_model
    >>> g = dgx(2, 2, 2)
    >>> plan = ring_plan(g, ["gpu0_0", "gpu0_1", "gpu1_0", "gpu1_1"], 2, collective_model(g))
    >>> plan.orders[1]
    ('gpu0_1', 'gpu0_0', 'gpu1_1', 'gpu1_0')
    >>> plan.legs[1][1]       # gpu0_0 is not on rail 1: it hands over to gpu0_1 (PXN)
    (('gpu0_0', 'gpu0_1'), ('gpu0_1', 'gpu1_1'))
    """
    rings = direct_rings(graph, members, model.rings)
    orders, all_legs = [], []
    blocks = _split_blocks(graph, members)
    rails = {} if rings else {b: block_rails(graph, b, gpus) for b, gpus in blocks.items()}
    for c in range(channels):
        if rings:
            ring = rings[(c // 2) % len(rings)]
            order = list(ring) if c % 2 == 0 else [ring[0]] + list(reversed(ring[1:]))
            legs = [((order[i], order[(i + 1) % len(order)]),) for i in range(len(order))]
        else:
            order, legs = [], []
            parts = [_block_order(graph, b, gpus, c, model, rails[b])
                     for b, gpus in blocks.items()]
            for j, (part, rail) in enumerate(parts):
                order += part
                legs += [((part[i], part[i + 1]),) for i in range(len(part) - 1)]
                nxt = parts[(j + 1) % len(parts)][0][0]
                last = part[-1]
                if len(parts) == 1:
                    legs.append(((last, nxt),))
                elif rail is None or last in rail[1]:
                    legs.append(((last, nxt),))
                else:
                    legs.append(((last, rail[0]), (rail[0], nxt)))
        orders.append(tuple(order))
        all_legs.append(tuple(legs))
    return RingPlan(tuple(orders), tuple(all_legs))


def btree(n, rank):
    """(parent, children) of `rank` in NCCL's binary tree over ranks ``0..n-1`` (root 0).

    The tree of ``ncclGetBtree`` (NVIDIA/nccl ``src/graph/trees.cc``): in-order over the
    ranks, the lowest set bit of a rank giving its level.

    Examples
    --------
    >>> [btree(7, r) for r in range(7)]   # doctest: +NORMALIZE_WHITESPACE
    [(-1, [4]), (2, []), (4, [1, 3]), (2, []), (0, [2, 6]), (6, []), (4, [5])]
    """
    bit = 1
    while bit < n and not bit & rank:
        bit <<= 1
    if rank == 0:
        return -1, ([bit >> 1] if n > 1 else [])
    up = (rank ^ bit) | (bit << 1)
    if up >= n:
        up = rank ^ bit
    low = bit >> 1
    down0 = rank - low if low else -1
    down1 = rank + low if low else -1
    while down1 >= n:                  # as ncclGetBtree: retry with smaller steps
        down1 = -1 if low == 0 else rank + low
        low >>= 1
    return up, [d for d in (down0, down1) if d >= 0]


def dtree(n):
    """NCCL's double binary tree over ``n`` ranks: two tuples of ``(parent, child)`` edges.

    The second tree mirrors the first (``r -> n-1-r``) when ``n`` is even and shifts it by
    one rank when ``n`` is odd (``ncclGetDtree``), so an inner rank of one tree is a leaf of
    the other.

    Examples
    --------
    >>> dtree(2)
    (((0, 1),), ((1, 0),))
    """
    first = sorted((p, r) for r in range(n) for p in [btree(n, r)[0]] if p >= 0)
    if n % 2 == 0:
        second = sorted((n - 1 - p, n - 1 - r) for p, r in first)
    else:
        second = sorted(((p + 1) % n, (r + 1) % n) for p, r in first)
    return tuple(first), tuple(second)


def tree_plan(graph, members, channels, model):
    """The :class:`TreePlan` of `channels` channels over `members`.

    Examples
    --------
    >>> from simulator.cluster.generators import dgx
    >>> from simulator.network.protocols import collective_model
    >>> g = dgx(3, 2, 2)
    >>> plan = tree_plan(g, [n for n, k in g.nodes(data="kind") if k == "gpu"], 2,
    ...                  collective_model(g))
    >>> plan.trees, plan.chains[1]["node0"]
    ((((0, 2), (2, 1)), ((0, 2), (1, 0))), ('gpu0_1', 'gpu0_0'))
    """
    blocks = _split_blocks(graph, members)
    rails = {b: block_rails(graph, b, gpus) for b, gpus in blocks.items()}
    chains = []
    for c in range(channels):
        chains.append({b: tuple(_block_order(graph, b, gpus, c, model, rails[b])[0])
                       for b, gpus in blocks.items()})
    return TreePlan(tuple(blocks), tuple(chains), dtree(len(blocks)))


def reduction_switch(graph, members):
    """The switch that can reduce for all of `members`: linked to each, ``reduction`` set.

    Raises
    ------
    InputError
        If no switch with ``reduction: true`` is linked to every GPU of the group.
    """
    common = None
    for gpu in members:
        switches = {n for n in graph[gpu] if graph.nodes[n].get("kind") == "switch"
                    and graph.nodes[n].get("reduction")}
        common = switches if common is None else common & switches
    if not common:
        raise InputError("in-switch all-reduce needs a switch with reduction: true linked to "
                         "every GPU of the group", field="algorithm",
                         fix="use --algorithm ring or tree, or mark the switch "
                             "'reduction: true' in the topology")
    return sorted(common, key=natural_key)[0]

