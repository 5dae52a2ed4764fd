"""The cluster engine: when each GPU computes and synchronises, in simulated seconds.

Semantics (docs/semantics.md, "Compute model", "Schedules" and "Communication time per tier")
--------------------------------------------------------------------------------------------
Every GPU is a SimPy process that, for each step ``t = 1..T``, computes for its step
time and then joins the step's syncs (:class:`~simulator.learning.schedules.Step`): first
the gradient all-reduce, if any, then the parameter average, if any:

- A sync is an all-reduce of the message bytes over the GPU's group of the step's
  grouping: all GPUs for ``"global"``, the GPU's block, rack... for a level of the
  topology, ``groups_of_g`` consecutive ranks. It starts when the last member arrives
  (stragglers show) and every member continues when it ends. ``global_sync_delay_s`` is
  added to every sync over all GPUs.
- A GPU's step time is ``flops_per_sample * batch / (peak_flops * efficiency)``, times a
  seeded jitter factor, times the GPU's slowdown (see :func:`compute_times`).
- A sync's time is charged to the tier of its group (:func:`simulator.cluster.levels.group_tier`):
  ``intra_block`` for a block's sync, ``inter_block`` for one over all GPUs of a two-level
  cluster, ``inter_rack`` for a site's sync in a cluster of nodes, racks and sites.
  ``comm_time_by_tier_s`` is the per-GPU mean of the time spent in each tier's syncs
  (delays included); its values add up to ``comm_time_s``.

The numbers a step computes do not depend on when it happens for every schedule whose
steps are known in advance, so the learning itself is replayed separately
(:mod:`simulator.learning.training`) and the two are joined on the step number. A schedule
that decides as it goes (AdaComm) passes its steps as a *step source*: an object with
``groupings`` (every grouping it may use), ``len()``, ``source[i]`` (step ``i + 1``, asked
once, in order, when the first GPU has computed it) and ``ended(t, time_s)`` (called when
the last GPU leaves step t); :mod:`simulator.experiments.coupled` drives the replay from it.

Gossip steps (``Step.average == "gossip"``, :mod:`simulator.learning.gossip`) are no
all-reduce: each GPU exchanges its whole model (the message bytes, each way) with every
neighbour of the gossip graph (`neighbours`). The exchange of a pair starts when both have
computed the step (and done its gradient sync, if any); a GPU leaves the step when all its
exchanges are done. Exchanges are plain transfers of the flow model (full link capacities,
link latencies: :func:`~simulator.network.flows.simulate_transfers`'s, no collective
protocol costs), on one shared network, contending as they overlap; a
GPU's time from its first exchange's start to its leaving is charged to the tier of the
group of it and its neighbours, waiting before the first start to ``wait_time_s``.

Collectives and the network
---------------------------
An all-reduce over all GPUs never overlaps another sync: every GPU is in it, and each
had finished its earlier syncs before arriving. Syncs of smaller groups may overlap when
their groups share no GPU; when no two such groups' collectives use a common link (as on
every tree whose groups have their own switches), they cannot slow each other down. In both
cases a collective's duration and bytes depend only on its group, so each is simulated
once on the network model and reused. Otherwise the syncs of smaller groups run on a
shared :class:`~simulator.network.flows.Network` in the same environment, contending as
they overlap; that network carries the protocol's link efficiencies
(:func:`~simulator.network.collectives.collective_network`).

When every sync's duration is known in advance (no shared network, no overlap, gossip or
step source, no in-flight record), the GPUs' processes reduce to arithmetic along the
worker axis, step by step, which gives the same numbers bit for bit without one SimPy
event per GPU and step (``_closed_form``; tests compare the two on every field).

Overlap
-------
With an :class:`~simulator.engine.overlap.Overlap` (``timing.overlap: ddp``), a step with a
gradient all-reduce computes its forward pass, joins the sync at the start of its backward
pass, and the sync all-reduces the gradients bucket by bucket while the backward passes go
on (:mod:`simulator.engine.overlap` states the rules); a GPU leaves when its backward pass
and the sync are done. This holds for every ``Step.gradient`` (all GPUs', a block's or a
replica's); parameter averages and gossip exchanges still follow the whole step. With
overlap a step source is asked for step t after the first GPU's forward pass of it (DDP
knows before the backward pass whether the step synchronises). ``Timeline.overlapped_comm_time_s`` is the per-GPU mean of the
communication that ran during backward passes, ``Timeline.bucket_log`` every bucket's span.
"""

from dataclasses import dataclass

import numpy as np
import simpy

from ..cluster.levels import graph_levels, graph_tiers, group_tier, level_groups
from ..cluster.topology import gpu_blocks
from ..learning.schedules import GLOBAL, GOSSIP, as_step, grouping_members, sync_kind
from ..network.collectives import (
    allreduce,
    check_group,
    collective_network,
    collective_pairs,
    run_groups,
)
from ..network.flows import Network
from ..network.routing import Router
from ..utils.bulk import paused_gc
from .overlap import BucketedSync, run_buckets

__all__ = ["Timeline", "compute_times", "simulate_timeline", "cluster_gpus", "cluster_groupings",
           "groupings_of"]


@dataclass
class Timeline:
    """What the engine measured for one run. Times in seconds, per-GPU figures are means."""

    step_end_s: np.ndarray          # (T,) when the last GPU finished step t, with its syncs
    simulated_time_s: float         # when the last GPU finished the last step
    compute_time_s: float           # mean over GPUs of the time spent computing
    comm_time_s: float              # mean over GPUs of the time spent in collectives (with delays)
    wait_time_s: float              # mean over GPUs of the time spent waiting for a sync to start
    comm_bytes: dict                # bytes carried per tier, summed over links
    syncs: dict                     # {level: steps with a sync inside every group of that
                                    #  level (gradients or parameters), ..., "global": syncs
                                    #  over all GPUs}
    sync_log: list                  # (step, kind, group, start_s, end_s) of every collective;
                                    # kind from schedules.sync_kind; group -1 is all GPUs,
                                    # else the group's index in its grouping (gossip: the
                                    # GPU's position, one entry per GPU: its first exchange's
                                    # start, its leaving)
    comm_time_by_tier_s: dict = None  # per GPU, mean time in the syncs of each tier's groups
    gpu_step_end_s: np.ndarray = None  # with record_gpu_steps: (K, T) when GPU k finished
                                    # step t and its syncs
    in_flight: list = None          # with record_in_flight: series of (time_s, bytes per tier...)
                                    # in flight, one per collective run on an idle network
                                    # (shifted to its start) plus one for the shared network;
                                    # a series' value holds until its next entry
    overlapped_comm_time_s: float = 0.0  # with overlap: mean over GPUs of the time in
                                    # collectives that ran during their backward passes
    bucket_log: list = None         # with overlap: (step, kind, group, bucket, bytes, start_s,
                                    # end_s) of every bucket's all-reduce (engine/overlap.py)
    faults: object = None           # under faults: what they did (fault_timeline.FaultReport)
    participation: object = None    # elastic runs: who took part in each step
                                    # (learning.participation.Participation)
    spans: list = None              # under faults, with record_in_flight: what each GPU did,
                                    # (gpu, name, cat, start_s, end_s, step, args)
    steps_completed: int = None     # under faults: steps the job completed (all of them,
                                    # unless the run failed)


def cluster_gpus(graph):
    """GPUs in ring order (blocks adjacent) and their blocks as lists of positions.

    Returns
    -------
    tuple
        ``(gpus, blocks)``: names in ring order, and for each block the list of indices
        into `gpus` of its members.
    """
    # gpu_blocks lists the blocks in the order ring_order ranks them by, each block's GPUs
    # in natural order, so its lists one after another are ring_order's result (a stable
    # sort by block rank, then natural key) without sorting the GPUs again.
    by_block = gpu_blocks(graph)
    gpus = [g for members in by_block.values() for g in members]
    position = {g: i for i, g in enumerate(gpus)}
    blocks = [[position[g] for g in members] for members in by_block.values()]
    return gpus, blocks


def compute_times(graph, gpus, steps, *, flops_per_sample, batch_size, jitter=0.0,
                  slow_gpus=None, seed=0):
    """Each GPU's compute time for each step, in seconds.

    Parameters
    ----------
    graph : networkx.Graph
        GPUs carry ``peak_flops`` (FLOP/s) and ``efficiency``.
    gpus : list of str
    steps : int
    flops_per_sample : float
        Training FLOPs (forward and backward) per sample.
    batch_size : int
        Samples per GPU per step.
    jitter : float
        Relative standard deviation of the step time: each step is multiplied by a
        log-normal factor with mean 1, ``exp(s z - s**2 / 2)``, ``z ~ N(0, 1)``, where
        ``s**2 = log(1 + jitter**2)``; 0 turns jitter off.
    slow_gpus : dict, optional
        GPU name -> slowdown factor (>= 1) applied to every step.
    seed : int
        Seeds the jitter (independently of the training's own random numbers).

    Returns
    -------
    ndarray, shape (K, steps)

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.Graph(); g.add_node("g0", kind="gpu", block="b", peak_flops=1e12, efficiency=0.5)
    >>> compute_times(g, ["g0"], 2, flops_per_sample=1e6, batch_size=100).tolist()
    [[0.0002, 0.0002]]
    """
    slow_gpus = slow_gpus or {}
    rate = np.array([graph.nodes[g]["peak_flops"] * graph.nodes[g]["efficiency"] for g in gpus])
    base_s = flops_per_sample * batch_size / rate                              # (K,)
    base_s = base_s * np.array([slow_gpus.get(g, 1.0) for g in gpus])
    times = np.repeat(base_s[:, None], steps, axis=1)                          # (K, T)
    if jitter > 0:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6a17]))
        sigma = np.sqrt(np.log1p(jitter**2))
        times = times * np.exp(sigma * rng.standard_normal(times.shape) - sigma**2 / 2)
    return times


def cluster_groupings(graph, gpus):
    """Every level's groups, and ``"global"``, as lists of positions in `gpus`.

    Parameters
    ----------
    graph : networkx.Graph
    gpus : list of str
        In ring order (:func:`cluster_gpus`).

    Returns
    -------
    dict
        Level name -> groups (innermost level first), then ``"global"`` -> ``[[0..K-1]]``.

    Examples
    --------
    >>> from simulator.cluster.generators import two_tier
    >>> g = two_tier(2, 2)
    >>> cluster_groupings(g, cluster_gpus(g)[0])
    {'block': [[0, 1], [2, 3]], 'global': [[0, 1, 2, 3]]}
    """
    out = level_groups(graph, gpus)
    out[GLOBAL] = [list(range(len(gpus)))]
    return out


def groupings_of(graph, groups, n_gpus, used=()):
    """`groups` as a grouping dict, with the ``groups_of_g`` groupings in `used` added.

    `groups` is a dict of :func:`cluster_groupings`, or a list of blocks (lists of
    positions): the topology's innermost level.
    """
    if isinstance(groups, dict):
        out = {name: [list(g) for g in members] for name, members in groups.items()}
    else:
        out = {graph_levels(graph)[0]: [list(b) for b in groups]}
    out.setdefault(GLOBAL, [list(range(n_gpus))])
    for name in used:
        if name not in out:
            out[name] = grouping_members(name, out, n_gpus)
    return out


def simulate_timeline(graph, gpus, groups, actions, compute_s, *, message_bytes,
                      collective="ring", global_sync_delay_s=0.0, record_in_flight=False,
                      record_gpu_steps=False, neighbours=None, overlap=None):
    """Run the GPUs' compute and syncs in a SimPy environment.

    Parameters
    ----------
    graph : networkx.Graph
    gpus : list of str
        In ring order (:func:`cluster_gpus`).
    groups : dict or list of list of int
        The groupings (:func:`cluster_groupings`), or the blocks' positions in `gpus`.
    actions : sequence of Step, str or None, or a step source
        ``actions[t - 1]`` is the schedule's step ``t`` (:mod:`simulator.learning.schedules`;
        one-word actions are read by :func:`~simulator.learning.schedules.as_step`); or a
        step source deciding each step when it is needed (see the module docstring).
    compute_s : ndarray, shape (K, T)
        Compute time of each GPU at each step (:func:`compute_times`).
    message_bytes : float
        Bytes each GPU all-reduces in a sync.
    collective : str
        All-reduce algorithm (:data:`simulator.network.collectives.ALGORITHMS`).
    global_sync_delay_s : float
        Extra time added to every sync over all GPUs.
    record_in_flight : bool
        Also fill ``Timeline.in_flight`` with the bytes in flight per tier (the
        ``in_flight_log`` of :class:`~simulator.network.flows.Network`); observes only.
    record_gpu_steps : bool
        Also fill ``Timeline.gpu_step_end_s`` (K, T): when each GPU finished each step.
    neighbours : list of list of int, optional
        Each GPU's gossip neighbours (positions in `gpus`), for steps that gossip.
    overlap : simulator.engine.overlap.Overlap, optional
        DDP's buckets: gradient all-reduces overlap the backward pass (module docstring).

    Returns
    -------
    Timeline
    """
    env = simpy.Environment()
    n_gpus, n_steps = compute_s.shape
    source = actions if hasattr(actions, "ended") else None       # decided as the run goes
    if source is None:
        steps = [as_step(a) for a in actions]
        named = list(dict.fromkeys(name for st in steps for name in st if name is not None))
    else:
        steps = _Decided(source)
        named = list(source.groupings)
    used = [name for name in named if name != GOSSIP]             # the groupings
    groupings = groupings_of(graph, groups, n_gpus, used)
    tiers = graph_tiers(graph)
    router = Router(graph)
    names = {name: [[gpus[i] for i in g] for g in groupings[name]] for name in used}
    for name in used:                            # a group of one GPU has nothing to exchange
        for members in names[name]:
            if len(members) > 1:
                check_group(graph, members, collective)
    smaller = [members for name in used if name != GLOBAL for members in names[name]
               if len(members) > 1]
    # Working out every group's collective (routes, plans, patterns) builds many objects
    # and frees few: the cyclic collector, run every few hundred of them, would scan the
    # graph's and the caches' again and again (a quarter of the timeline at 4,096 GPUs).
    # It is paused for that work and for the closed form, not for the SimPy events.
    with paused_gc():
        contended = bool(smaller) and not _independent(router, smaller, collective)
    in_flight = [] if record_in_flight else None
    shared_log = [] if record_in_flight and contended else None
    # The shared network carries the efficiencies of the protocol the first such group's
    # collective runs with (collective_network), and no link latencies when it is pipelined.
    shared = collective_network(env, graph, smaller[0], message_bytes, collective, router,
                                in_flight_log=shared_log) if contended else None
    flight_logs = {}                             # members -> in-flight series from the collective's start

    group_index = {}                             # grouping -> (K,) index of each GPU's group
    group_tiers = {}                             # grouping -> tier index of each group
    for name in used:
        index = np.full(n_gpus, -1, dtype=np.intp)
        for g, members in enumerate(groupings[name]):
            index[members] = g
        group_index[name] = index
        group_tiers[name] = [tiers.index(group_tier(graph, members)) for members in names[name]]
    gossiping = GOSSIP in named
    if gossiping:
        if neighbours is None:
            raise ValueError("a schedule that gossips needs the GPUs' neighbours")
        gossip_log = [] if record_in_flight else None
        gossip_net = Network(env, graph, router, in_flight_log=gossip_log)
        gossip_tier = [tiers.index(group_tier(graph, [gpus[k]] + [gpus[j] for j in neighbours[k]]))
                       for k in range(n_gpus)]
        exchanges = {}                           # (step, i, j) -> _Sync of the pair i < j
    costs = {}                                   # (members, bytes) -> (time_s, bytes_by_tier) on an idle network
    comm_bytes = dict.fromkeys(tiers, 0.0)
    step_end_s = np.zeros(n_steps)
    gpu_end_s = np.zeros((n_gpus, n_steps)) if record_gpu_steps else None
    compute_total = compute_s.sum(axis=1)
    tier_total = np.zeros((n_gpus, len(tiers)))   # time in syncs, by the tier of their group
    wait_total = np.zeros(n_gpus)
    hidden_total = np.zeros(n_gpus)              # overlap: time in collectives during backward
    bucket_log = [] if overlap is not None else None
    first_gradient = []                          # overlap: the first step with gradients
    pending = {}                                 # (step, what, grouping, group) -> _Sync
    sync_log = []
    left = np.zeros(n_steps, dtype=np.intp) if source is not None else None

    def cost_of(members, size):
        """(time_s, bytes_by_tier) of one all-reduce on an idle network (cached)."""
        key = (tuple(members), size)
        if key not in costs:
            log = flight_logs[key] = [] if record_in_flight else None
            costs[key] = run_groups(graph, [members], size, collective, router,
                                    in_flight_log=log)
        return costs[key]

    if source is None and overlap is None and not gossiping and shared is None \
            and not record_in_flight and CLOSED_FORM:
        with paused_gc():
            found = _closed_form(steps, compute_s, groupings, names, group_index, group_tiers,
                                 tier_total, wait_total, step_end_s, gpu_end_s, sync_log,
                                 cost_of, message_bytes, global_sync_delay_s, tiers)
        if found is not None:
            now_s, comm_bytes = found
            return _timeline(graph, steps, named, now_s, comm_bytes, step_end_s, compute_total,
                             tier_total, wait_total, hidden_total, sync_log, tiers, gpu_end_s,
                             in_flight, bucket_log)
        tier_total[:] = 0.0                      # not provably order-free: run the events
        wait_total[:] = 0.0
        step_end_s[:] = 0.0
        if gpu_end_s is not None:
            gpu_end_s[:] = 0.0
        sync_log.clear()

    def reduce(members, size, everyone, extra_s=0.0):
        """One all-reduce of `size` bytes over `members` from now, then `extra_s` more."""
        if everyone or shared is None:
            time_s, nbytes = cost_of(members, size)
            if record_in_flight:
                in_flight.append([(float(env.now + t), *rest)
                                  for t, *rest in flight_logs[(tuple(members), size)]])
            for tier in tiers:
                comm_bytes[tier] += nbytes[tier]
            yield env.timeout(time_s + extra_s)
        else:
            yield allreduce(shared, [members], size, collective)

    def run_sync(sync, members, everyone):
        sync.start_s = env.now
        delay_s = global_sync_delay_s if everyone else 0.0
        if len(members) == 1:
            pass
        elif sync.buckets is None:
            yield from reduce(members, message_bytes, everyone, delay_s)
        else:                                    # DDP: bucket by bucket (engine/overlap.py)
            yield from run_buckets(env, sync.buckets, lambda size: reduce(members, size, everyone),
                                   delay_s, bucket_log, (sync.step, sync.kind, sync.group))
            sync.start_s = sync.buckets.spans[0][0]
        sync.end_s = env.now
        sync_log.append((sync.step, sync.kind, sync.group, sync.start_s, sync.end_s))
        sync.done.succeed()

    def run_exchange(sync, a, b):
        sync.start_s = env.now
        yield gossip_net.send_pairs(((a, b), (b, a)), message_bytes)
        sync.end_s = env.now
        sync.done.succeed()

    def exchange(k, t):
        """GPU k's gossip of step t: one exchange with each neighbour."""
        arrived_s = env.now
        mine = []
        for j in neighbours[k]:
            key = (t, min(k, j), max(k, j))
            sync = exchanges.get(key)
            if sync is None:
                sync = exchanges[key] = _Sync(env, 2, t + 1, GOSSIP, k)
            sync.waiting -= 1
            if sync.waiting == 0:
                del exchanges[key]
                env.process(run_exchange(sync, gpus[key[1]], gpus[key[2]]))
            mine.append(sync)
        if mine:
            yield env.all_of([sync.done for sync in mine])
            first_s = min(sync.start_s for sync in mine)
        else:
            first_s = arrived_s
        wait_total[k] += first_s - arrived_s
        tier_total[k, gossip_tier[k]] += env.now - first_s
        sync_log.append((t + 1, GOSSIP, k, first_s, env.now))

    def gpu(k):
        for t in range(n_steps):
            if overlap is None:
                yield env.timeout(compute_s[k, t])
                step = steps[t]
                ddp = False
            else:                                # the step is asked after the forward pass
                forward_s = compute_s[k, t] * overlap.forward_share
                backward_s = compute_s[k, t] - forward_s
                yield env.timeout(forward_s)
                step = steps[t]
                ddp = step.gradient is not None  # buckets during the backward pass
                if not ddp:
                    yield env.timeout(backward_s)
                elif not first_gradient:
                    first_gradient.append(t)
            for what, name in (("gradient", step.gradient), ("average", step.average)):
                if name is None:
                    continue
                if name == GOSSIP:
                    yield from exchange(k, t)
                    continue
                g = int(group_index[name][k])
                key = (t, what, name, g)
                sync = pending.get(key)
                everyone = name == GLOBAL
                if sync is None:
                    sync = pending[key] = _Sync(env, len(groupings[name][g]), t + 1,
                                                sync_kind(what, name), -1 if everyone else g)
                    if ddp and what == "gradient":
                        sync.buckets = BucketedSync(overlap.first_buckets if t == first_gradient[0]
                                                    else overlap.buckets)
                arrived_s = env.now
                if sync.buckets is not None:     # joins at the start of its backward pass
                    sync.buckets.join(k, arrived_s, backward_s)
                    backward = env.timeout(backward_s)
                sync.waiting -= 1
                if sync.waiting == 0:
                    del pending[key]
                    env.process(run_sync(sync, names[name][g], everyone))
                if sync.buckets is None:
                    yield sync.done
                    wait_total[k] += sync.start_s - arrived_s
                    tier_total[k, group_tiers[name][g]] += sync.end_s - sync.start_s
                else:
                    yield backward & sync.done
                    busy_s, hidden_s, wait_s = sync.buckets.share(arrived_s, arrived_s + backward_s,
                                                                  env.now)
                    wait_total[k] += wait_s
                    hidden_total[k] += hidden_s
                    tier_total[k, group_tiers[name][g]] += busy_s
            if env.now > step_end_s[t]:
                step_end_s[t] = env.now
            if gpu_end_s is not None:
                gpu_end_s[k, t] = env.now
            if left is not None:
                left[t] += 1
                if left[t] == n_gpus:
                    source.ended(t + 1, env.now)

    for k in range(n_gpus):
        env.process(gpu(k))
    env.run()
    for network in ([shared] if shared is not None else []) + ([gossip_net] if gossiping else []):
        for tier, nbytes in network.bytes_by_tier().items():
            comm_bytes[tier] += nbytes
    if shared_log:
        in_flight.append(shared_log)
    if gossiping and gossip_log:
        in_flight.append(gossip_log)
    return _timeline(graph, steps, named, env.now, comm_bytes, step_end_s, compute_total,
                     tier_total, wait_total, hidden_total, sync_log, tiers, gpu_end_s, in_flight,
                     bucket_log)


def _timeline(graph, steps, named, now_s, comm_bytes, step_end_s, compute_total, tier_total,
              wait_total, hidden_total, sync_log, tiers, gpu_end_s, in_flight, bucket_log):
    """The Timeline of a finished run, from what it accumulated."""
    counts = {name: 0 for name in list(graph_levels(graph)) + named if name != GLOBAL}
    counts[GLOBAL] = 0
    for t in range(len(step_end_s)):
        for name in steps[t]:
            if name is not None:
                counts[name] += 1
    by_tier = tier_total.mean(axis=0)
    return Timeline(
        step_end_s=step_end_s,
        simulated_time_s=float(now_s),
        compute_time_s=float(compute_total.mean()),
        comm_time_s=float(tier_total.sum(axis=1).mean()),
        wait_time_s=float(wait_total.mean()),
        comm_bytes=comm_bytes,
        syncs=counts,
        sync_log=sorted(sync_log, key=lambda entry: (entry[3], entry[0], entry[2], entry[1])),
        comm_time_by_tier_s={tier: float(by_tier[i]) for i, tier in enumerate(tiers)},
        gpu_step_end_s=gpu_end_s,
        in_flight=in_flight,
        overlapped_comm_time_s=float(hidden_total.mean()),
        bucket_log=bucket_log,
    )


CLOSED_FORM = True
"""Time uncontended runs with :func:`_closed_form` (tests turn it off to compare with the
events it stands for)."""


def _closed_form(steps, compute_s, groupings, names, group_index, group_tiers, tier_total,
                 wait_total, step_end_s, gpu_end_s, sync_log, cost_of, message_bytes, delay_s,
                 tiers):
    """The GPUs' processes of :func:`simulate_timeline` without SimPy, when every sync's
    duration is known in advance (no shared network, overlap, gossip or step source).

    Then the events reduce to arithmetic over the worker axis, step by step: a GPU arrives
    at ``end + compute`` (SimPy's ``now + delay``), a group's sync starts at its last
    member's arrival (a max: exact) and ends at ``start + (time_s + delay)``, and each GPU
    adds its wait and its sync's span to its own totals in step order, as its process
    does. Only the bytes per tier are added across GPUs, once per sync in the order the
    syncs start; SimPy orders syncs that start at the same instant by its event ids, so
    this returns None (run the events) unless all syncs starting at a same instant add the
    same bytes, where order cannot matter. Fills the arrays and `sync_log` in place and
    returns ``(simulated_time_s, comm_bytes)``.
    """
    n_gpus, n_steps = compute_s.shape
    now = np.zeros(n_gpus)
    started = []                              # (start_s, bytes per tier) of every sync that ran
    durations, bytes_of = {}, {}              # grouping -> (groups,) seconds; bytes per tier
    for name in dict.fromkeys(name for step in steps for name in step if name is not None):
        time_s = np.zeros(len(names[name]))
        keys = []
        for g, members in enumerate(names[name]):
            if len(members) == 1:
                keys.append(None)
                continue
            cost_s, nbytes = cost_of(members, message_bytes)
            time_s[g] = cost_s + (delay_s if name == GLOBAL else 0.0)
            keys.append(tuple(nbytes[tier] for tier in tiers))
        durations[name], bytes_of[name] = time_s, keys
    single = {name: np.array([len(m) == 1 for m in names[name]]) for name in durations}
    tier_of = {name: np.asarray(group_tiers[name], dtype=np.intp)[group_index[name]]
               for name in durations}                             # (K,) tier of each GPU's group
    rows = np.arange(n_gpus)
    for t in range(n_steps):
        arrived = now + compute_s[:, t]
        for what, name in (("gradient", steps[t].gradient), ("average", steps[t].average)):
            if name is None:
                continue
            index, n_groups = group_index[name], len(groupings[name])
            start = np.full(n_groups, -np.inf)
            np.maximum.at(start, index, arrived)
            end = np.where(single[name], start, start + durations[name])
            wait_total += start[index] - arrived
            tier_total[rows, tier_of[name]] += (end - start)[index]     # one entry per GPU
            kind, everyone = sync_kind(what, name), name == GLOBAL
            for g in range(n_groups):
                sync_log.append((t + 1, kind, -1 if everyone else g, start[g], end[g]))
                key = bytes_of[name][g]
                if key is not None:
                    started.append((start[g], key))
            arrived = end[index]
        now = arrived
        step_end_s[t] = max(0.0, now.max())
        if gpu_end_s is not None:
            gpu_end_s[:, t] = now
    started.sort(key=lambda entry: entry[0])
    for (at_s, nbytes), (next_s, other) in zip(started, started[1:]):
        if at_s == next_s and nbytes != other:
            return None
    sums = [0.0] * len(tiers)
    for _, nbytes in started:
        for i, b in enumerate(nbytes):
            sums[i] += b
    comm_bytes = dict(zip(tiers, sums))
    return (now.max() if n_steps else 0.0), comm_bytes


class _Decided:
    """A step source's steps as a sequence: each asked of the source once, in order."""

    def __init__(self, source):
        self.source, self.steps = source, []

    def __getitem__(self, index):
        while len(self.steps) <= index:
            self.steps.append(as_step(self.source[len(self.steps)]))
        return self.steps[index]


class _Sync:
    """One all-reduce of a group after one step: members arrive, then it runs."""

    __slots__ = ("done", "waiting", "step", "kind", "group", "start_s", "end_s", "buckets")

    def __init__(self, env, size, step, kind, group):
        self.done = env.event()
        self.waiting = size
        self.step, self.kind, self.group = step, kind, group
        self.start_s = self.end_s = None
        self.buckets = None                      # overlap: a BucketedSync (engine/overlap.py)


def _independent(router, groups, algorithm):
    """True if no two of `groups` that share no GPU have collectives crossing a common link.

    Groups that share a GPU never run at once (a GPU is in one sync at a time), so only
    groups without common members can contend.
    """
    members = [set(g) for g in groups]
    users = {}                                   # link -> indices of the groups crossing it
    for i, group in enumerate(groups):
        links = set()
        for src, dst in collective_pairs(router.graph, group, algorithm, router=router):
            links.update(router.route_links(src, dst).tolist())
        for link in links:
            users.setdefault(link, []).append(i)
    for crossing in users.values():
        for a in range(len(crossing)):
            for b in range(a + 1, len(crossing)):
                if not members[crossing[a]] & members[crossing[b]]:
                    return False
    return True
