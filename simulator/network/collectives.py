"""All-reduce collectives, built from transfers in steps on a :class:`~simulator.network.flows.Network`.

Semantics (docs/semantics.md, "Collectives")
--------------------------------------------
Each algorithm is a SimPy process made of *steps*; a step is a set of transfers started
together, and the next step starts when all of them have finished (a barrier per step,
as in a lock-step implementation). ``M`` is the message size in bytes held by each GPU.

``ring`` over ``p`` GPUs
    ``2(p-1)`` steps; in each, every GPU sends ``M/p`` bytes to its ring successor
    (``p-1`` reduce-scatter steps, then ``p-1`` all-gather steps). Uncontended, with
    per-step latency ``a`` and bandwidth ``b``: ``2(p-1)(a + M/(p b))``. Each GPU sends
    ``2(p-1)/p * M`` bytes.
``hierarchical`` over ``B`` blocks of ``g`` GPUs
    reduce-scatter inside every block (a ring of ``g``, ``g-1`` steps of ``M/g``), then
    ``g`` concurrent ring all-reduces of ``M/g`` across blocks (one per local rank, GPU
    ``i`` of every block), then all-gather inside every block. Blocks must be equal.
``halving-doubling`` over ``p = 2^k`` GPUs (Rabenseifner)
    reduce-scatter by recursive halving (step ``j`` exchanges ``M/2^(j+1)`` bytes with the
    partner at distance ``2^j``: the largest messages go to the nearest GPUs), then
    all-gather by recursive doubling in reverse. Uncontended:
    ``2 log2(p) a + 2 (p-1)/p * M / b``.

Ring order, and rank order, is the GPUs grouped by block (blocks in natural name order,
then GPUs), so the members of a block are adjacent and a ring crosses each block
boundary once. Several collectives may run at once on one network (every block
averaging at the same moment); they share links through the same flow model.
"""

import math

import simpy

from ..cluster.topology import gpu_blocks, natural_key
from ..utils.errors import InputError
from .flows import Network

__all__ = ["ALGORITHMS", "allreduce", "simulate_allreduce", "ring_order", "resolve_groups",
           "check_group", "collective_pairs", "run_groups"]


def ring_order(graph, gpus):
    """Order `gpus` so that each block's GPUs are adjacent (blocks, then GPUs, in natural order)."""
    blocks = list(gpu_blocks(graph))
    rank = {block: i for i, block in enumerate(blocks)}
    return sorted(gpus, key=lambda g: (rank[graph.nodes[g]["block"]], natural_key(g)))


def _ring(net, members, nbytes, steps):
    """`steps` ring steps of ``nbytes / p`` from each member to its successor."""
    p = len(members)
    chunk = nbytes / p
    pairs = tuple((members[i], members[(i + 1) % p]) for i in range(p))
    for _ in range(steps):
        yield net.send_pairs(pairs, chunk)


def ring_allreduce(net, members, nbytes):
    """SimPy process: ring all-reduce of `nbytes` over `members` (in ring order)."""
    yield from _ring(net, members, nbytes, 2 * (len(members) - 1))


def hierarchical_allreduce(net, blocks, nbytes):
    """SimPy process: reduce-scatter in blocks, all-reduce across blocks, all-gather in blocks.

    `blocks` is a list of equal-length GPU lists, each in ring order.
    """
    env = net.env
    g = len(blocks[0])
    if g > 1:
        yield env.all_of([env.process(_ring(net, b, nbytes, g - 1)) for b in blocks])
    if len(blocks) > 1:
        across = [[block[i] for block in blocks] for i in range(g)]
        yield env.all_of([env.process(ring_allreduce(net, ring, nbytes / g)) for ring in across])
    if g > 1:
        yield env.all_of([env.process(_ring(net, b, nbytes, g - 1)) for b in blocks])


def halving_doubling_allreduce(net, members, nbytes):
    """SimPy process: recursive-halving reduce-scatter, recursive-doubling all-gather."""
    p = len(members)
    distances = [1 << j for j in range(p.bit_length() - 1)]
    sizes = [nbytes / (2 * d) for d in distances]
    for d, size in list(zip(distances, sizes)) + list(zip(distances, sizes))[::-1]:
        yield net.send_pairs(tuple((members[i], members[i ^ d]) for i in range(p)), size)


ALGORITHMS = {
    "ring": ring_allreduce,
    "hierarchical": hierarchical_allreduce,
    "halving-doubling": halving_doubling_allreduce,
}


def check_group(graph, members, algorithm):
    """Raise InputError unless `algorithm` can all-reduce over `members`."""
    if algorithm not in ALGORITHMS:
        raise InputError(f"unknown algorithm {algorithm!r}", field="algorithm",
                         fix="use one of " + ", ".join(ALGORITHMS))
    if len(members) < 2:
        raise InputError(f"an all-reduce needs at least 2 GPUs, the group has {len(members)}",
                         field="group", fix="choose a group of 2 or more GPUs")
    if algorithm == "halving-doubling" and len(members) & (len(members) - 1):
        raise InputError(f"halving-doubling needs a power-of-two group, got {len(members)} GPUs",
                         field="algorithm", fix="use --algorithm ring or a group of 2, 4, 8, ... GPUs")
    if algorithm == "hierarchical":
        sizes = {len(b) for b in _split_blocks(graph, members)}
        if len(sizes) > 1:
            raise InputError(f"hierarchical all-reduce needs equal blocks, the group's have "
                             f"{sorted(sizes)} GPUs", field="algorithm",
                             fix="use --algorithm ring, or a topology with equal blocks")


def _split_blocks(graph, members):
    blocks = {}
    for gpu in members:
        blocks.setdefault(graph.nodes[gpu]["block"], []).append(gpu)
    return list(blocks.values())


def allreduce(net, groups, nbytes, algorithm="ring"):
    """Start one all-reduce per group, all at once; return the process that waits for all.

    Parameters
    ----------
    net : Network
    groups : list of list of str
        GPU groups, each in ring order (:func:`ring_order`).
    nbytes : float
        Message size per GPU in bytes.
    algorithm : {"ring", "hierarchical", "halving-doubling"}

    Returns
    -------
    simpy.Process
        Succeeds when every group has finished.

    Raises
    ------
    InputError
        Unknown algorithm, a negative size, or a group the algorithm cannot handle.
    """
    _check_size(nbytes)
    env = net.env
    graph = net.router.graph
    procs = []
    for members in groups:
        check_group(graph, members, algorithm)
        if algorithm == "hierarchical":
            procs.append(env.process(hierarchical_allreduce(net, _split_blocks(graph, members), nbytes)))
        else:
            procs.append(env.process(ALGORITHMS[algorithm](net, members, nbytes)))

    def wait_all():
        yield env.all_of(procs)

    return env.process(wait_all())


def collective_pairs(graph, members, algorithm):
    """The (src, dst) pairs an all-reduce over `members` (in ring order) sends between.

    Two collectives whose pairs' routes share no link cannot slow each other down.
    """
    if algorithm == "hierarchical":
        blocks = _split_blocks(graph, members)
        rings = blocks + [[block[i] for block in blocks] for i in range(len(blocks[0]))]
    elif algorithm == "ring":
        rings = [members]
    else:
        p = len(members)
        return {(members[i], members[i ^ (1 << j)]) for j in range(p.bit_length() - 1) for i in range(p)}
    return {(ring[i], ring[(i + 1) % len(ring)]) for ring in rings if len(ring) > 1
            for i in range(len(ring))}


def run_groups(graph, groups, nbytes, algorithm="ring", router=None, *, in_flight_log=None):
    """Run one all-reduce per group at once on an otherwise idle network.

    `router` (a :class:`~simulator.network.routing.Router` of `graph`) may be shared between calls.
    `in_flight_log`, a list, receives the network's bytes in flight per tier, with times
    from the collective's start (see :class:`~simulator.network.flows.Network`).

    Returns
    -------
    tuple
        ``(time_s, bytes_by_tier)``.
    """
    if algorithm == "ring" and len(groups) == 1 and in_flight_log is None:
        return _repeated_ring_step(graph, groups[0], nbytes, router)
    env = simpy.Environment()
    net = Network(env, graph, router, in_flight_log=in_flight_log)
    env.run(allreduce(net, groups, nbytes, algorithm))
    return env.now, net.bytes_by_tier()


def _check_size(nbytes):
    if not math.isfinite(nbytes) or nbytes < 0:
        raise InputError(f"message size must be a finite number of bytes >= 0, got {nbytes!r}",
                         field="size", fix="give a size such as 100 MB = 1e8 bytes")


def _repeated_ring_step(graph, members, nbytes, router):
    """A lone ring all-reduce: one lock-step step, times its 2(p-1) steps.

    On an otherwise idle network every step of the ring is the same set of transfers
    starting on an empty network (the barrier lets the previous step drain), so every
    step takes the same time and carries the same bytes as the first.
    """
    _check_size(nbytes)
    check_group(graph, members, "ring")
    p = len(members)
    env = simpy.Environment()
    net = Network(env, graph, router)
    env.run(net.send_pairs(tuple((members[i], members[(i + 1) % p]) for i in range(p)), nbytes / p))
    steps = 2 * (p - 1)
    return env.now * steps, {tier: b * steps for tier, b in net.bytes_by_tier().items()}


def resolve_groups(graph, group):
    """Turn a ``--group`` value into GPU groups in ring order.

    Parameters
    ----------
    graph : networkx.Graph
    group : str or list
        ``"all"`` (one group of every GPU), ``"block"`` (one group per block, all
        running at once), a comma-separated string or a list of GPU names.

    Returns
    -------
    list of list of str

    Raises
    ------
    InputError
        For a name that is not a GPU of the graph, or a GPU named twice.
    """
    if group == "all":
        return [ring_order(graph, [g for b in gpu_blocks(graph).values() for g in b])]
    if group == "block":
        return list(gpu_blocks(graph).values())
    names = [n.strip() for n in group.split(",")] if isinstance(group, str) else list(group)
    for name in names:
        if graph.nodes.get(name, {}).get("kind") != "gpu":
            raise InputError(f"{name!r} is not a GPU of the topology", field="group",
                             fix="use 'all', 'block' or a comma-separated list of GPU names")
    twice = sorted({n for n in names if names.count(n) > 1}, key=natural_key)
    if twice:
        raise InputError(f"{twice[0]!r} is named more than once", field="group",
                         fix="name each GPU of the group once")
    return [ring_order(graph, names)]


def simulate_allreduce(graph, nbytes, algorithm="ring", group="all"):
    """Time an all-reduce on `graph` under the flow-level network model.

    Parameters
    ----------
    graph : networkx.Graph
        A topology (:mod:`simulator.cluster.topology`).
    nbytes : float
        Message size per GPU in bytes.
    algorithm : {"ring", "hierarchical", "halving-doubling"}
    group : str or list
        See :func:`resolve_groups`.

    Returns
    -------
    dict
        ``time_s``; ``algbw`` = ``nbytes / time_s`` and ``busbw`` = ``algbw * 2(p-1)/p``
        in bytes/s (nccl-tests' convention, ``p`` GPUs per group); ``bytes``: bytes carried
        per tier, summed over links; ``groups``, ``gpus_per_group``, ``algorithm``,
        ``size_bytes``.

    Raises
    ------
    InputError
        Unknown algorithm, a negative size, a group of fewer than 2 GPUs or with a GPU
        named twice, a group the algorithm cannot handle.

    Examples
    --------
    Four GPUs on a ring of 10 GB/s links with no latency: 2(p-1) M/(p b) = 6 * 25 us.

    >>> import networkx as nx
    >>> g = nx.cycle_graph([f"g{i}" for i in range(4)])
    >>> for n in g: g.nodes[n].update(kind="gpu", block=n)
    >>> for e in g.edges: g.edges[e].update(bandwidth=10e9, latency=0.0, tier="inter_block")
    >>> round(simulate_allreduce(g, 1e6)["time_s"], 12)
    0.00015
    """
    if algorithm not in ALGORITHMS:
        raise InputError(f"unknown algorithm {algorithm!r}", field="algorithm",
                         fix="use one of " + ", ".join(ALGORITHMS))
    groups = resolve_groups(graph, group)
    time_s, bytes_by_tier = run_groups(graph, groups, nbytes, algorithm)
    p = len(groups[0])
    algbw = nbytes / time_s if time_s > 0 else float("inf")
    return {
        "algorithm": algorithm,
        "size_bytes": float(nbytes),
        "groups": len(groups),
        "gpus_per_group": p,
        "time_s": time_s,
        "algbw": algbw,
        "busbw": algbw * 2 * (p - 1) / p,
        "bytes": bytes_by_tier,
    }
