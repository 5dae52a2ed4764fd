"""All-reduce collectives over the flow-level network, as NCCL runs them.

Semantics (docs/semantics.md, "Collectives"; details and closed forms in docs/network.md)
---------------------------------------------------------------------------------------
``M`` is the message held by each of the ``p`` GPUs of a group. An all-reduce runs with an
algorithm, a protocol (:mod:`simulator.network.protocols`: LL, LL128, Simple or ideal) and,
for ring and tree, ``C`` channels (:mod:`simulator.network.channels`).

**Pipelined algorithms** (``ring``, ``tree``, ``in-switch``), as NCCL runs them: the data
flows through the algorithm's hops in a pipeline, so their time is

    T = base latency + critical-path latency + bandwidth time

- *critical-path latency*: the sum, along the slowest chain of dependent hops, of each
  hop's route latency (its links' latencies) and the protocol's hop latency for the hop's
  tier. Ring: a chunk's ``2(p-1)`` consecutive hops of its channel's ring (the slowest such
  window). Tree: up the longest chain-and-tree path to the root, and down the longest.
  In-switch: the protocol's in-switch latency plus the way up to the switch and back.
- *bandwidth time*: every transfer of the algorithm, started together with its whole
  volume, under max-min sharing of links whose capacities are scaled by the protocol's
  efficiency per tier, without latency: the time until the last byte has flowed. Ring:
  every hop of every channel carries ``2(p-1)/p * M / C``. Tree: per channel two trees of
  ``M / (2C)`` each, up and down every tree edge and chain edge. In-switch: each GPU sends
  ``M`` to the switch and receives ``M`` from it.
- a protocol's bus-bandwidth ceiling bounds the bandwidth time from below:
  ``T_bw >= 2(p-1)/p * M / max_busbw``.

**Lock-step algorithms** (``hierarchical``, ``halving-doubling``): steps of transfers
started together, the next step after all have finished (a barrier per step). Each step
first waits the protocol's hop latency (of the highest tier it crosses), then its
transfers cross the network with their route latencies; the protocol's base latency
comes first and its efficiency scales the links. With protocol ``ideal`` these are exactly
the classic lock-step algorithms:

``hierarchical`` over ``B`` blocks of ``g`` GPUs
    reduce-scatter in every block (a ring of ``g``, ``g-1`` steps of ``M/g``), ``g``
    concurrent ring all-reduces of ``M/g`` across blocks (one per local rank), all-gather
    in every block. Blocks must be equal.
``halving-doubling`` over ``p = 2^k`` GPUs (Rabenseifner)
    recursive halving (step ``j`` exchanges ``M/2^(j+1)`` with the partner at distance
    ``2^j``), then recursive doubling in reverse.

``auto`` (algorithm or protocol) picks the candidate whose time, from the same model, is
smallest (the topology's ``thresholds`` fix the protocol by size instead); the choice is
returned. Bytes are counted on every link a transfer crosses (payload bytes: protocol
flags are not counted). Several collectives may run at once on one network; they share
links through the flow model.
"""

import math
from dataclasses import dataclass

import numpy as np
import simpy

from ..cluster.topology import gpu_blocks, natural_key
from ..utils.errors import InputError
from .channels import MAX_CHANNELS, default_channels, reduction_switch, ring_plan, tree_plan
from .flows import TIERS, Network, _link_arrays
from .protocols import IDEAL, PROTOCOLS, collective_model, cost_tier, protocol_for_size
from .routing import Router

__all__ = ["ALGORITHMS", "ALGORITHM_CHOICES", "PROTOCOL_CHOICES", "PIPELINED", "allreduce",
           "simulate_allreduce", "ring_order", "resolve_groups", "check_group",
           "collective_pairs", "run_groups", "choose", "busiest_links", "collective_network",
           "CollectiveShape"]

PIPELINED = ("ring", "tree", "in-switch")
LOCKSTEP = ("hierarchical", "halving-doubling")
ALGORITHMS = (*PIPELINED, *LOCKSTEP)
"""The all-reduce algorithms, by name."""
ALGORITHM_CHOICES = (*ALGORITHMS, "auto")
PROTOCOL_CHOICES = (*PROTOCOLS, IDEAL, "auto")
_AUTO_ALGORITHMS = PIPELINED        # what ``auto`` chooses among, as NCCL does
_M_REF = 1e9                        # bytes: the pipelined bandwidth phase is solved once at
                                    # this size and scaled (max-min times scale with volume)


def ring_order(graph, gpus):
    """Order `gpus` so that each block's GPUs are adjacent (blocks, then GPUs, in natural order)."""
    blocks = list(gpu_blocks(graph))
    rank = {block: i for i, block in enumerate(blocks)}
    return sorted(gpus, key=lambda g: (rank[graph.nodes[g]["block"]], natural_key(g)))


def _split_blocks(graph, members):
    blocks = {}
    for gpu in members:
        blocks.setdefault(graph.nodes[gpu].get("block"), []).append(gpu)
    return list(blocks.values())


# --------------------------------------------------------------------------- checks
def check_group(graph, members, algorithm):
    """Raise InputError unless `algorithm` can all-reduce over `members`."""
    if algorithm not in ALGORITHM_CHOICES:
        raise InputError(f"unknown algorithm {algorithm!r}", field="algorithm",
                         fix="use one of " + ", ".join(ALGORITHM_CHOICES))
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
    if algorithm == "in-switch":
        reduction_switch(graph, members)


def _check_size(nbytes):
    if not math.isfinite(nbytes) or nbytes < 0:
        raise InputError(f"message size must be a finite number of bytes >= 0, got {nbytes!r}",
                         field="size", fix="give a size such as 100 MB = 1e8 bytes")


def _check_protocol(protocol, algorithm):
    if protocol not in PROTOCOL_CHOICES:
        raise InputError(f"unknown protocol {protocol!r}", field="protocol",
                         fix="use one of " + ", ".join(PROTOCOL_CHOICES))
    if algorithm == "in-switch" and protocol not in ("Simple", IDEAL, "auto"):
        raise InputError(f"in-switch reduction runs the Simple protocol, not {protocol}",
                         field="protocol", fix="use --protocol Simple or auto")


def _check_channels(channels):
    if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int)
                                 or not 1 <= channels <= MAX_CHANNELS):
        raise InputError(f"channels must be an integer from 1 to {MAX_CHANNELS}, got "
                         f"{channels!r}", field="channels",
                         fix=f"give e.g. 8; NCCL runs at most {MAX_CHANNELS}")


# --------------------------------------------------------------------------- structure
@dataclass(frozen=True)
class _Hop:
    """One hop of a pipelined algorithm: its transfers, route latency and tier."""

    legs: tuple          # ((src, dst), ...)
    route_s: float       # sum of the legs' link latencies
    tier: str            # inter_block if a leg crosses an inter_* link (cost_tier)


@dataclass(frozen=True)
class _Pattern:
    """A pipelined collective, independent of the protocol: its transfers (volume per byte
    of message) and the hop structure its latency is computed from."""

    algorithm: str
    channels: int
    pairs: tuple
    volume: np.ndarray
    paths: tuple         # ring: per channel (route seconds, is-inter) arrays of its cycle's
                         # hops; tree and in-switch: per (channel, tree) (up, down) arrays
                         # of (route seconds, intra hops, inter hops), one row per block
    tiers: frozenset     # tiers the transfers cross
    switch: str | None = None


class _Links:
    """Route latency and tiers of transfers, from a Router (cached on it)."""

    def __init__(self, router):
        cache = router.__dict__.setdefault("_collective_links", {})
        if "latency" not in cache:
            graph = router.graph
            cache["latency"] = np.array([graph.edges[l]["latency"] for l in router.links])
            cache["inter"] = np.array([cost_tier(graph.edges[l]["tier"]) == "inter_block"
                                       for l in router.links])
        self.router, self.latency, self.inter = router, cache["latency"], cache["inter"]

    def hop(self, legs):
        legs = tuple(legs)
        hops = self.router.__dict__.setdefault("_collective_hops", {})
        found = hops.get(legs)
        if found is None:
            route_s, inter = 0.0, False
            for src, dst in legs:
                links = self.router.route_links(src, dst)
                route_s += float(self.latency[links].sum())
                inter = inter or bool(self.inter[links].any())
            found = hops[legs] = _Hop(legs, route_s, "inter_block" if inter else "intra_block")
        return found


def _numeric_path(hops):
    """(route seconds, intra hops, inter hops) of a path of hops."""
    inter = sum(h.tier == "inter_block" for h in hops)
    return (sum(h.route_s for h in hops), len(hops) - inter, inter)


def _cache(router):
    return router.__dict__.setdefault("_collective_cache", {})


def _default_channels(graph, router, members, model):
    """:func:`~.channels.default_channels`, cached on `router` (whose graph sets `model`):
    choose() asks it once per protocol, and the engine once more per group."""
    key = ("channels", tuple(members))
    cache = _cache(router)
    if key not in cache:
        cache[key] = default_channels(graph, members, model)
    return cache[key]


def _pattern(graph, router, members, algorithm, channels, model):
    """The :class:`_Pattern` of a pipelined algorithm over `members` (cached on `router`)."""
    key = ("pattern", algorithm, tuple(members), channels)
    cache = _cache(router)
    if key in cache:
        return cache[key]
    links = _Links(router)
    router.prepare(members)             # hop counts to every GPU in one sweep (C code)
    p = len(members)
    volume = {}

    def add(src, dst, v):
        volume[(src, dst)] = volume.get((src, dst), 0.0) + v

    switch = None
    if algorithm == "ring":
        plan = ring_plan(graph, members, channels, model)
        paths = []
        for legs in plan.legs:
            cycle = tuple(links.hop(hop) for hop in legs)
            paths.append((np.array([h.route_s for h in cycle]),
                          np.array([h.tier == "inter_block" for h in cycle])))
            for hop in cycle:
                for src, dst in hop.legs:
                    add(src, dst, 2 * (p - 1) / p / channels)
    elif algorithm == "tree":
        plan = tree_plan(graph, members, channels, model)
        paths = []
        half = 1.0 / (2 * channels)
        for chains in plan.chains:
            heads = [chains[b][0] for b in plan.blocks]
            ups = {b: tuple(links.hop([(chain[i], chain[i - 1])])
                            for i in range(len(chain) - 1, 0, -1))
                   for b, chain in chains.items()}
            downs = {b: tuple(links.hop([(chain[i - 1], chain[i])]) for i in range(1, len(chain)))
                     for b, chain in chains.items()}
            for chain in chains.values():
                for i in range(1, len(chain)):
                    add(chain[i], chain[i - 1], 2 * half)
                    add(chain[i - 1], chain[i], 2 * half)
            for edges in plan.trees if len(plan.blocks) > 1 else ((),):
                parent = {child: par for par, child in edges}
                for par, child in edges:
                    add(heads[child], heads[par], half)
                    add(heads[par], heads[child], half)
                up_paths, down_paths = [], []
                for i, b in enumerate(plan.blocks):
                    up, down, node = list(ups[b]), [], i
                    while node in parent:
                        up.append(links.hop([(heads[node], heads[parent[node]])]))
                        down.insert(0, links.hop([(heads[parent[node]], heads[node])]))
                        node = parent[node]
                    up_paths.append(_numeric_path(up))
                    down_paths.append(_numeric_path(down + list(downs[b])))
                paths.append((np.array(up_paths), np.array(down_paths)))
    else:                                              # in-switch
        switch = reduction_switch(graph, members)
        ups = tuple(links.hop([(g, switch)]) for g in members)
        downs = tuple(links.hop([(switch, g)]) for g in members)
        for g in members:
            add(g, switch, 1.0)
            add(switch, g, 1.0)
        paths = ((np.array([_numeric_path([u]) for u in ups]),
                  np.array([_numeric_path([d]) for d in downs])),)
    pairs = tuple(volume)
    tiers = set()
    for src, dst in pairs:
        tiers.add(links.hop([(src, dst)]).tier)
    pattern = _Pattern(algorithm, channels, pairs, np.array([volume[k] for k in pairs]),
                       tuple(paths), frozenset(tiers), switch)
    cache[key] = pattern
    return pattern


def _path_latency_s(pattern, cost, model):
    """Critical-path latency of `pattern` under protocol cost `cost` (base latency excluded)."""
    h_intra = cost.tier("intra_block").hop_latency_s
    h_inter = cost.tier("inter_block").hop_latency_s
    if pattern.algorithm == "ring":
        worst = 0.0
        for route_s, inter in pattern.paths:
            h = route_s + np.where(inter, h_inter, h_intra)
            if len(h) == 2:
                worst = max(worst, float(h.sum()))
                continue
            worst = max(worst, float(2 * h.sum() - (h + np.roll(h, -1)).min()))
        return worst
    in_switch = pattern.algorithm == "in-switch"
    weights = np.array([1.0, 0.0, 0.0]) if in_switch else np.array([1.0, h_intra, h_inter])
    worst = 0.0
    for up_paths, down_paths in pattern.paths:
        worst = max(worst, float((up_paths @ weights).max() + (down_paths @ weights).max()))
    if in_switch and cost.name != IDEAL:
        worst += model.in_switch.latency_s
    return worst


def _latency_terms(pattern):
    """The hop structure of `pattern` reduced to what :func:`_path_latency_s` maximises over,
    as plain floats, for timing many protocol costs quickly.

    Ring: per distinct channel ``(route seconds, inter hops, intra hops, pairs)`` of its
    cycle, ``pairs`` the cheapest route seconds of two adjacent hops per (inter, intra)
    count (None for a 2-hop cycle). Tree and in-switch: per distinct (channel, tree) the
    (up, down) rows ``(route seconds, intra hops, inter hops)``, the slowest per count."""
    terms = set()
    if pattern.algorithm == "ring":
        for route_s, inter in pattern.paths:
            inter = np.asarray(inter, dtype=bool)
            n_inter = int(inter.sum())
            pairs = None
            if len(route_s) != 2:
                r = route_s + np.roll(route_s, -1)
                e = inter.astype(int) + np.roll(inter, -1).astype(int)
                best = {}
                for r_k, e_k in zip(r.tolist(), e.tolist()):
                    best[e_k] = min(best.get(e_k, math.inf), r_k)
                pairs = tuple(sorted((r_k, e_k, 2 - e_k) for e_k, r_k in best.items()))
            terms.add((float(route_s.sum()), n_inter, len(route_s) - n_inter, pairs))
        return sorted(terms, key=repr)

    def slowest(rows):
        best = {}
        for r, i, e in np.asarray(rows).tolist():
            best[(i, e)] = max(best.get((i, e), -math.inf), r)
        return tuple(sorted((r, i, e) for (i, e), r in best.items()))

    for up_paths, down_paths in pattern.paths:
        terms.add((slowest(up_paths), slowest(down_paths)))
    return sorted(terms, key=repr)


def _capacity_factor(pattern, cost, model):
    """Link efficiencies of `pattern` under `cost`: the protocol's, times the in-switch or
    tree algorithm's own efficiency."""
    factor = cost.capacity_factor()
    if cost.name == IDEAL:
        return factor
    extra = {"in-switch": model.in_switch.efficiency, "tree": model.tree.efficiency}
    if pattern.algorithm in extra:
        factor = {t: e * extra[pattern.algorithm] for t, e in factor.items()}
    return factor


def _ceiling_Bps(pattern, cost, model):
    """The bus-bandwidth ceiling of `pattern` under `cost` (inf: none): the protocol's for
    the tiers it crosses, and the tree's per channel."""
    ceiling = cost.max_busbw_Bps(pattern.tiers)
    if pattern.algorithm == "tree" and cost.name != IDEAL:
        ceiling = min(ceiling, model.tree.ceiling_Bps(pattern.channels, pattern.tiers))
    return ceiling


def _bandwidth_per_byte(graph, router, pattern, factor):
    """(seconds, {tier: bytes}) of the bandwidth phase per byte of message (cached)."""
    intra = factor.get("intra_block", 1.0)
    norm = tuple(round(factor.get(t, 1.0) / intra, 12) for t in TIERS)
    key = ("bandwidth", id(pattern), norm)
    cache = _cache(router)
    if key not in cache:
        shape = ("bandwidth shape", _link_shape(graph, router, pattern), norm)
        if shape not in cache:
            env = simpy.Environment()
            net = Network(env, graph, router, with_latency=False,
                          capacity_factor=dict(zip(TIERS, norm)))
            if pattern.pairs:
                env.run(net.send_pairs(pattern.pairs, pattern.volume * _M_REF))
            # Only the figures are kept: a Network holds arrays as long as the links.
            cache[shape] = (env.now / _M_REF,
                            {t: b / _M_REF for t, b in net.bytes_by_tier().items()})
        cache[key] = cache[shape]
    seconds, tiers = cache[key]
    return seconds / intra, tiers


def _link_shape(graph, router, pattern):
    """What the bandwidth phase of `pattern` on an idle network depends on, and nothing else.

    On an idle network the flow model's result depends on the links the transfers cross
    only through their capacities, tiers and order (:class:`~.flows.Network`: progressive
    filling walks the used links in ascending order, links no transfer crosses take no
    part, and bytes per tier are summed in link order, where idle links add exact zeros).
    So two patterns with the same volumes whose routes are the same sequences once each
    used link is renamed by its rank among them, over links of equal capacities and
    tiers, have the same bandwidth phase, bit for bit: the blocks of a symmetric cluster
    solve one network between them instead of one each. Tests check the equality.
    """
    routes = [router.route_links(src, dst) for src, dst in pattern.pairs]
    if not routes:
        return ()
    used = np.unique(np.concatenate(routes))                         # ascending link numbers
    capacity, _, tier, _ = _link_arrays(graph, router)
    return (tuple(tuple(np.searchsorted(used, r).tolist()) for r in routes),
            pattern.volume.tobytes(), capacity[used].tobytes(), tier[used].tobytes())


def _pipelined_time(graph, router, pattern, nbytes, cost, model, members):
    """(time_s, latency_s, bytes_by_tier) of a lone pipelined collective."""
    p = len(members)
    latency = cost.base_latency_s * (pattern.algorithm != "in-switch") \
        + _path_latency_s(pattern, cost, model)
    per_byte, tiers = _bandwidth_per_byte(graph, router, pattern,
                                                _capacity_factor(pattern, cost, model))
    bandwidth = per_byte * nbytes
    ceiling = _ceiling_Bps(pattern, cost, model)
    if math.isfinite(ceiling):
        bandwidth = max(bandwidth, 2 * (p - 1) / p * nbytes / ceiling)
    return latency + bandwidth, latency, {t: b * nbytes for t, b in tiers.items()}


class CollectiveShape:
    """A pipelined all-reduce on one group, to time it under many protocol costs quickly.

    ``time = latency_s(cost) + max(nbytes * seconds_per_byte(efficiencies), ceiling)``: the
    latency is a cheap sum over the hop structure, and the bandwidth phase is solved once
    per set of efficiencies (cached). Calibration evaluates thousands of costs this way.

    Parameters
    ----------
    graph : networkx.Graph
    members : list of str
        The group, in ring order.
    algorithm : {"ring", "tree", "in-switch"}
    channels : int, optional
    router : Router, optional
    """

    def __init__(self, graph, members, algorithm, channels=None, router=None):
        if algorithm not in PIPELINED:
            raise InputError(f"{algorithm!r} is not a pipelined algorithm", field="algorithm",
                             fix="use one of " + ", ".join(PIPELINED))
        check_group(graph, members, algorithm)
        self.graph, self.members, self.algorithm = graph, list(members), algorithm
        self.router = router if router is not None else Router(graph)
        model = collective_model(graph)
        self.channels = channels or model.channels or default_channels(graph, members, model)
        self.pattern = _pattern(graph, self.router, self.members, algorithm, self.channels, model)
        p = len(self.members)
        self.bus_factor = 2 * (p - 1) / p
        self.tiers = self.pattern.tiers
        self._terms = _latency_terms(self.pattern)

    def latency_s(self, cost, model):
        """Base and critical-path latency under :class:`~.protocols.ProtocolCost` `cost`
        (what :func:`simulate_allreduce` charges, to rounding)."""
        h_intra = cost.tier("intra_block").hop_latency_s
        h_inter = cost.tier("inter_block").hop_latency_s
        worst = 0.0
        if self.algorithm == "ring":
            for total, n_inter, n_intra, pairs in self._terms:
                whole = total + n_inter * h_inter + n_intra * h_intra
                if pairs is None:
                    worst = max(worst, whole)
                    continue
                cheapest = min(r + e * h_inter + i * h_intra for r, e, i in pairs)
                worst = max(worst, 2 * whole - cheapest)
        else:
            if self.algorithm == "in-switch":
                h_intra = h_inter = 0.0
            for up, down in self._terms:
                worst = max(worst, max(r + i * h_intra + e * h_inter for r, i, e in up)
                            + max(r + i * h_intra + e * h_inter for r, i, e in down))
        if self.algorithm == "in-switch":
            return worst + (model.in_switch.latency_s if cost.name != IDEAL else 0.0)
        return cost.base_latency_s + worst

    def capacity_factor(self, cost, model):
        """``{tier: efficiency}`` of the links under `cost` (with the algorithm's own)."""
        return _capacity_factor(self.pattern, cost, model)

    def ceiling_Bps(self, cost, model):
        """The bus-bandwidth ceiling under `cost` (inf: none)."""
        return _ceiling_Bps(self.pattern, cost, model)

    def seconds_per_byte(self, factor):
        """Bandwidth-phase seconds per byte of message with links scaled by `factor`
        (``{tier: efficiency}``), exactly as the flow model solves it."""
        return _bandwidth_per_byte(self.graph, self.router, self.pattern, factor)[0]

    def tier_seconds_per_byte(self):
        """``{tier: seconds per byte}`` with only that tier's links limiting (the others
        a million times faster): when one tier binds, ``seconds_per_byte(e)`` is
        ``max(tier_seconds_per_byte()[t] / e[t])``."""
        fast = 1e6
        return {t: self.seconds_per_byte({u: (1.0 if u == t else fast) for u in TIERS})
                for t in self.tiers}


# --------------------------------------------------------------------------- processes
def _lockstep_steps(graph, members, nbytes, algorithm):
    """The steps of a lock-step algorithm: a list of lists of (pairs, bytes) run together."""
    if algorithm == "halving-doubling":
        p = len(members)
        distances = [1 << j for j in range(p.bit_length() - 1)]
        sizes = [nbytes / (2 * d) for d in distances]
        order = list(zip(distances, sizes)) + list(zip(distances, sizes))[::-1]
        return [[(tuple((members[i], members[i ^ d]) for i in range(p)), size)]
                for d, size in order]
    blocks = _split_blocks(graph, members)
    g = len(blocks[0])

    def ring_steps(rings, chunk, count):
        pairs = tuple((r[i], r[(i + 1) % len(r)]) for r in rings for i in range(len(r)))
        return [[(pairs, chunk)] for _ in range(count)]

    steps = []
    if g > 1:
        steps += ring_steps(blocks, nbytes / g, g - 1)
    if len(blocks) > 1:
        across = [[block[i] for block in blocks] for i in range(g)]
        steps += ring_steps(across, nbytes / g / len(blocks), 2 * (len(blocks) - 1))
    if g > 1:
        steps += ring_steps(blocks, nbytes / g, g - 1)
    return steps


class _Stats:
    """Per-link busy time, filled by the processes below when asked (``--links``)."""

    def __init__(self, router):
        self.router = router
        self.busy_s = np.zeros(len(router.links))
        self.links = _Links(router)

    def add(self, pairs, started_s, finish_s, scale=1.0, with_latency=True):
        for (src, dst), end in zip(pairs, np.atleast_1d(finish_s)):
            links = self.router.route_links(src, dst)
            begin = started_s + (float(self.links.latency[links].sum()) if with_latency else 0.0)
            if len(links):
                np.maximum.at(self.busy_s, links, np.full(len(links), (end - begin) * scale))


def _pipelined_process(net, graph, members, nbytes, pattern, cost, model, stats):
    env = net.env
    latency = cost.base_latency_s * (pattern.algorithm != "in-switch") \
        + _path_latency_s(pattern, cost, model)
    start = env.now + latency
    if pattern.pairs and nbytes > 0:
        # Every transfer starts moving bytes when the collective's latency is over, also on
        # a network whose links add their own latency phase (it is part of `latency`).
        own = np.array([net.route_latency_s(src, dst) for src, dst in pattern.pairs])
        finish = yield net.send_pairs(pattern.pairs, pattern.volume * nbytes,
                                      delay_s=np.maximum(latency - own, 0.0))
        if stats is not None:
            stats.add(pattern.pairs, start, finish, with_latency=False)
    else:
        yield env.timeout(latency)
    ceiling = _ceiling_Bps(pattern, cost, model)
    p = len(members)
    if math.isfinite(ceiling):
        left = start + 2 * (p - 1) / p * nbytes / ceiling - env.now
        if left > 0:
            yield env.timeout(left)


def _lockstep_process(net, graph, members, nbytes, algorithm, cost, stats):
    env = net.env
    links = _Links(net.router)
    yield env.timeout(cost.base_latency_s)
    for step in _lockstep_steps(graph, members, nbytes, algorithm):
        tier = "intra_block"
        for pairs, _ in step:
            if any(links.hop([pair]).tier == "inter_block" for pair in pairs):
                tier = "inter_block"
        yield env.timeout(cost.tier(tier).hop_latency_s)
        start = env.now
        events = [net.send_pairs(pairs, size) for pairs, size in step]
        done = yield env.all_of(events)
        if stats is not None:
            for (pairs, _), event in zip(step, events):
                stats.add(pairs, start, done[event])


def allreduce(net, groups, nbytes, algorithm="ring", *, protocol="auto", channels=None,
              stats=None):
    """Start one all-reduce per group, all at once, on `net`; return the process that waits.

    Parameters
    ----------
    net : Network
    groups : list of list of str
        GPU groups, each in ring order (:func:`ring_order`).
    nbytes : float
        Message size per GPU in bytes.
    algorithm : str
        One of :data:`ALGORITHM_CHOICES`.
    protocol : str
        One of :data:`PROTOCOL_CHOICES`; ``auto`` chooses as :func:`choose` does.
    channels : int, optional
        Channels of ring and tree; by default the topology's.
    stats : object, optional
        Internal: collects per-link busy times.

    Returns
    -------
    simpy.Process
        Succeeds when every group has finished.

    Notes
    -----
    A pipelined algorithm's transfers start moving bytes when its latency is over, whether
    or not `net` charges link latencies (they are part of that latency). `net`'s capacities
    are used as they are: :func:`collective_network` builds a network with the protocol's
    efficiencies, as :func:`run_groups` does.

    Raises
    ------
    InputError
        Unknown algorithm or protocol, a negative size, or a group the algorithm cannot handle.
    """
    _check_size(nbytes)
    _check_protocol(protocol, algorithm)
    _check_channels(channels)
    env = net.env
    graph = net.router.graph
    procs = []
    for members in groups:
        check_group(graph, members, algorithm)
        chosen = choose(graph, members, nbytes, algorithm, protocol, channels=channels,
                        router=net.router)
        procs.append(env.process(_run_chosen(net, graph, members, nbytes, chosen, stats)))

    def wait_all():
        yield env.all_of(procs)

    return env.process(wait_all())


def _run_chosen(net, graph, members, nbytes, chosen, stats):
    model = collective_model(graph)
    cost = model.protocol(chosen["protocol"])
    if chosen["algorithm"] in PIPELINED:
        pattern = _pattern(graph, net.router, members, chosen["algorithm"],
                           chosen["channels"], model)
        yield from _pipelined_process(net, graph, members, nbytes, pattern, cost, model, stats)
    else:
        yield from _lockstep_process(net, graph, members, nbytes, chosen["algorithm"], cost,
                                     stats)


# --------------------------------------------------------------------------- choice
def _lockstep_time(graph, router, members, nbytes, algorithm, cost):
    key = ("lockstep", algorithm, tuple(members), nbytes, cost.name, cost.base_latency_s,
           tuple(cost.tiers.items()))
    cache = _cache(router)
    if key not in cache:
        # On an idle network every step starts on empty links, so equal steps take equal
        # time: each distinct step is run once (as _lockstep_process runs it) and counted.
        links = _Links(router)
        factor = cost.capacity_factor()
        distinct = {}
        for step in _lockstep_steps(graph, members, nbytes, algorithm):
            sig = tuple((id(pairs), size) for pairs, size in step)
            if sig in distinct:
                distinct[sig][1] += 1
            else:
                distinct[sig] = [step, 1]
        total_s, by_tier = cost.base_latency_s, {}
        for step, count in distinct.values():
            inter = any(links.hop([pair]).tier == "inter_block" for pairs, _ in step
                        for pair in pairs)
            env = simpy.Environment()
            net = Network(env, graph, router, capacity_factor=factor)
            env.run(env.all_of([net.send_pairs(pairs, size) for pairs, size in step]))
            hop_s = cost.tier("inter_block" if inter else "intra_block").hop_latency_s
            total_s += count * (hop_s + env.now)
            for tier, nbytes_tier in net.bytes_by_tier().items():
                by_tier[tier] = by_tier.get(tier, 0.0) + count * nbytes_tier
        cache[key] = (total_s, by_tier)
    return cache[key]


def choose(graph, members, nbytes, algorithm="auto", protocol="auto", *, channels=None,
           router=None):
    """The algorithm and protocol an all-reduce of `nbytes` over `members` runs with.

    Parameters
    ----------
    graph : networkx.Graph
    members : list of str
        The group, in ring order.
    nbytes : float
    algorithm, protocol : str
        A name, or ``auto``: ``auto`` algorithm chooses among ring, tree and (where a switch
        can reduce) in-switch; ``auto`` protocol among LL, LL128 and Simple, or by the
        topology's ``thresholds``.
    channels : int, optional
    router : Router, optional
        Shared with other calls: patterns and bandwidth phases are cached on it.

    Returns
    -------
    dict
        ``algorithm``, ``protocol``, ``channels`` (None for lock-step algorithms),
        ``time_s`` and ``latency_s`` of the choice on an idle network, ``bytes`` per tier,
        and ``candidates``: the same for every combination considered, cheapest first.

    Examples
    --------
    >>> from simulator.cluster.generators import dgx
    >>> g = dgx(1)
    >>> members = [f"gpu0_{i}" for i in range(8)]
    >>> [choose(g, members, n)["protocol"] for n in (4e3, 4e6, 4e8)]
    ['LL', 'LL128', 'Simple']
    """
    router = router if router is not None else Router(graph)
    model = collective_model(graph)
    if protocol == "auto":
        protocol = model.default_protocol
    algorithms = [algorithm] if algorithm != "auto" else \
        [a for a in _AUTO_ALGORITHMS if a != "in-switch" or _can_reduce(graph, members)]
    candidates = []
    for name in algorithms:
        if protocol != "auto":
            protocols = [protocol]
        elif name == "in-switch":
            protocols = ["Simple"]
        elif model.thresholds is not None:
            protocols = [protocol_for_size(model.thresholds, nbytes)]
        else:
            protocols = list(PROTOCOLS)
        if name == "in-switch" and model.thresholds is not None and protocol == "auto" \
                and protocol_for_size(model.thresholds, nbytes) != "Simple":
            continue
        for proto in protocols:
            cost = model.protocol(proto)
            if name in PIPELINED:
                count = channels or model.channels or _default_channels(graph, router, members,
                                                                        model)
                pattern = _pattern(graph, router, members, name, count, model)
                time_s, latency_s, nbytes_by_tier = _pipelined_time(
                    graph, router, pattern, nbytes, cost, model, members)
            else:
                count, latency_s = None, None
                time_s, nbytes_by_tier = _lockstep_time(graph, router, members, nbytes, name, cost)
            candidates.append({"algorithm": name, "protocol": proto, "channels": count,
                               "time_s": time_s, "latency_s": latency_s,
                               "bytes": nbytes_by_tier})
    if not candidates:      # thresholds excluded every in-switch candidate: fall back to ring
        return choose(graph, members, nbytes, "ring", protocol, channels=channels, router=router)
    candidates.sort(key=lambda c: (c["time_s"], ALGORITHMS.index(c["algorithm"]),
                                   PROTOCOL_CHOICES.index(c["protocol"])))
    return {**candidates[0], "candidates": candidates}


def _can_reduce(graph, members):
    try:
        reduction_switch(graph, members)
    except InputError:
        return False
    return True


# --------------------------------------------------------------------------- running
def collective_pairs(graph, members, algorithm, *, channels=None, router=None):
    """The (src, dst) pairs an all-reduce over `members` (in ring order) sends between.

    Two collectives whose pairs' routes share no link cannot slow each other down. For
    ``auto`` the pairs of every algorithm it may choose. `router`, a Router of `graph`
    shared with other calls, keeps the patterns it works out (a new Router costs time
    linear in the links: once per group of a big cluster, quadratic in it).
    """
    if algorithm == "auto":
        pairs = set()
        for name in _AUTO_ALGORITHMS:
            if name != "in-switch" or _can_reduce(graph, members):
                pairs |= collective_pairs(graph, members, name, channels=channels, router=router)
        return pairs
    if algorithm in PIPELINED:
        model = collective_model(graph)
        router = router if router is not None else Router(graph)
        count = channels or model.channels or _default_channels(graph, router, members, model)
        return set(_pattern(graph, router, members, algorithm, count, model).pairs)
    pairs = set()
    for step in _lockstep_steps(graph, members, 1.0, algorithm):
        for step_pairs, _ in step:
            pairs.update(step_pairs)
    return pairs


def collective_network(env, graph, members, nbytes, algorithm="ring", router=None, *,
                       in_flight_log=None, protocol="auto", channels=None):
    """A :class:`~simulator.network.flows.Network` for collectives like the one over `members`.

    Its links carry the efficiencies of the protocol :func:`choose` picks, and it has no link
    latencies when the algorithm is pipelined (the collective charges them itself), so
    collectives run on it with :func:`allreduce` cost what :func:`run_groups` says. The
    engine runs block syncs that share links on one such network.
    """
    router = router if router is not None else Router(graph)
    chosen = choose(graph, members, nbytes, algorithm, protocol, channels=channels, router=router)
    model = collective_model(graph)
    cost = model.protocol(chosen["protocol"])
    pipelined = chosen["algorithm"] in PIPELINED
    factor = cost.capacity_factor()
    if pipelined:
        pattern = _pattern(graph, router, members, chosen["algorithm"], chosen["channels"], model)
        factor = _capacity_factor(pattern, cost, model)
    return Network(env, graph, router, in_flight_log=in_flight_log, capacity_factor=factor,
                   with_latency=not pipelined)


def run_groups(graph, groups, nbytes, algorithm="ring", router=None, *, in_flight_log=None,
               protocol="auto", channels=None, details=None, link_stats=False):
    """Run one all-reduce per group at once on an otherwise idle network.

    Parameters
    ----------
    graph : networkx.Graph
    groups : list of list of str
    nbytes : float
    algorithm : str
        One of :data:`ALGORITHM_CHOICES`.
    router : Router, optional
        A router of `graph` to share between calls (routes and collective patterns are
        cached in it).
    in_flight_log : list, optional
        Receives the network's bytes in flight per tier, with times from the collectives'
        start (see :class:`~simulator.network.flows.Network`).
    protocol : str
        One of :data:`PROTOCOL_CHOICES`.
    channels : int, optional
    details : dict, optional
        Filled with the choice of the first group (:func:`choose`).
    link_stats : bool
        Also put ``{(u, v): (bytes, busy_s)}`` of every directed link in ``details["links"]``
        (the collective then runs on a network of its own, once more).

    Returns
    -------
    tuple
        ``(time_s, bytes_by_tier)``.

    Notes
    -----
    ``auto`` chooses for the first group alone and runs every group with that choice.
    """
    _check_size(nbytes)
    _check_protocol(protocol, algorithm)
    _check_channels(channels)
    router = router if router is not None else Router(graph)
    for members in groups:
        check_group(graph, members, algorithm)
    chosen = choose(graph, groups[0], nbytes, algorithm, protocol, channels=channels,
                    router=router)
    fixed = {**chosen, "candidates": None}
    if details is not None:
        details.update(chosen)
    if len(groups) == 1 and in_flight_log is None and not link_stats:
        return chosen["time_s"], chosen["bytes"]
    env = simpy.Environment()
    net = collective_network(env, graph, groups[0], nbytes, chosen["algorithm"], router,
                             in_flight_log=in_flight_log, protocol=chosen["protocol"],
                             channels=chosen["channels"])
    stats = _Stats(router) if link_stats else None
    procs = [env.process(_run_chosen(net, graph, members, nbytes, fixed, stats))
             for members in groups]
    env.run(env.all_of(procs))
    if link_stats and details is not None:
        details["links"] = {link: (float(b), float(s)) for link, b, s in
                            zip(router.links, net.link_bytes, stats.busy_s)}
    if len(groups) == 1:            # the same run; the choice's figures, to the last bit
        return chosen["time_s"], chosen["bytes"]
    return env.now, net.bytes_by_tier()


def busiest_links(graph, links, top=10):
    """The `top` busiest directed links: longest busy first, then most bytes.

    Parameters
    ----------
    graph : networkx.Graph
    links : mapping
        ``{(u, v): (bytes, busy_s)}`` (``details["links"]`` of :func:`run_groups`).
    top : int

    Returns
    -------
    list of dict
        ``link`` (``"u->v"``), ``tier``, ``bytes``, ``busy_s`` (time the link carried
        bytes), ``bandwidth_Bps``, ``utilization`` (``bytes / (busy_s * bandwidth)``).
    """
    rows = []
    for (u, v), (nbytes, busy_s) in links.items():
        if nbytes <= 0:
            continue
        bandwidth = graph.edges[u, v]["bandwidth"]
        rows.append({"link": f"{u}->{v}", "tier": graph.edges[u, v]["tier"], "bytes": nbytes,
                     "busy_s": busy_s, "bandwidth_Bps": float(bandwidth),
                     "utilization": nbytes / (busy_s * bandwidth) if busy_s > 0 else None})
    rows.sort(key=lambda r: (-r["busy_s"], -r["bytes"], natural_key(r["link"])))
    return rows[:top]


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


def simulate_allreduce(graph, nbytes, algorithm="ring", group="all", *, protocol="auto",
                       channels=None, links=0):
    """Time an all-reduce on `graph` under the network and protocol model.

    Parameters
    ----------
    graph : networkx.Graph
        A topology (:mod:`simulator.cluster.topology`).
    nbytes : float
        Message size per GPU in bytes.
    algorithm : str
        ``ring``, ``tree``, ``in-switch``, ``hierarchical``, ``halving-doubling`` or ``auto``.
    group : str or list
        See :func:`resolve_groups`.
    protocol : str
        ``LL``, ``LL128``, ``Simple``, ``ideal`` or ``auto``.
    channels : int, optional
        Channels of ring and tree; by default the topology's (docs/network.md).
    links : int
        Also return the `links` busiest directed links (:func:`busiest_links`).

    Returns
    -------
    dict
        ``time_s``; ``algbw`` = ``nbytes / time_s`` and ``busbw`` = ``algbw * 2(p-1)/p``
        in bytes/s (nccl-tests' convention, ``p`` GPUs per group); ``bytes``: bytes carried
        per tier, summed over links; ``algorithm``, ``protocol``, ``channels``: what ran
        (the choice of ``auto``), ``requested`` (what was asked), ``latency_s`` (base and
        critical-path latency of a pipelined algorithm, else None), ``candidates`` (every
        combination ``auto`` weighed, with its time), ``groups``, ``gpus_per_group``,
        ``size_bytes``; with `links`, ``links``.

    Raises
    ------
    InputError
        Unknown algorithm or protocol, a negative size, a group of fewer than 2 GPUs or
        with a GPU named twice, a group the algorithm cannot handle.

    Examples
    --------
    Four GPUs on a ring of 10 GB/s links with no latency, ideal protocol, one channel:
    ``2(p-1) M / (p b)`` = 150 us.

    >>> import networkx as nx
    >>> g = nx.cycle_graph([f"g{i}" for i in range(4)])
    >>> for n in g: g.nodes[n].update(kind="gpu", block=n)
    >>> for e in g.edges: g.edges[e].update(bandwidth=10e9, latency=0.0, tier="inter_block")
    >>> round(simulate_allreduce(g, 1e6, protocol="ideal", channels=1)["time_s"], 12)
    0.00015
    """
    if algorithm not in ALGORITHM_CHOICES:
        raise InputError(f"unknown algorithm {algorithm!r}", field="algorithm",
                         fix="use one of " + ", ".join(ALGORITHM_CHOICES))
    groups = resolve_groups(graph, group)
    details = {}
    time_s, bytes_by_tier = run_groups(graph, groups, nbytes, algorithm, protocol=protocol,
                                       channels=channels, details=details, link_stats=bool(links))
    p = len(groups[0])
    algbw = nbytes / time_s if time_s > 0 else float("inf")
    result = {
        "algorithm": details["algorithm"],
        "protocol": details["protocol"],
        "channels": details["channels"],
        "requested": {"algorithm": algorithm, "protocol": protocol, "channels": channels},
        "size_bytes": float(nbytes),
        "groups": len(groups),
        "gpus_per_group": p,
        "time_s": time_s,
        "latency_s": details["latency_s"],
        "algbw": algbw,
        "busbw": algbw * 2 * (p - 1) / p,
        "bytes": bytes_by_tier,
        "candidates": [{k: c[k] for k in ("algorithm", "protocol", "channels", "time_s")}
                       for c in details["candidates"]],
    }
    if links:
        result["links"] = busiest_links(graph, details["links"], links)
    return result
