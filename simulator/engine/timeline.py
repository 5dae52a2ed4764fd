"""The cluster engine: when each GPU computes and synchronises, in simulated seconds.

Semantics (docs/semantics.md, "Compute model" and "Schedules")
--------------------------------------------------------------
Every GPU is a SimPy process that, for each step ``t = 1..T``, computes for its step
time and then, if the schedule names a sync after step ``t``, joins it:

- A sync is an all-reduce of the message bytes over its group: all GPUs for
  ``"gradient"`` and ``"global"``, the GPU's block for ``"block"``. It starts when the
  last member arrives (stragglers show) and every member continues when it ends.
  ``global_sync_delay_s`` is added to every sync over all GPUs.
- A GPU's step time is ``flops_per_sample * batch / (peak_flops * efficiency)``, times a
  seeded jitter factor, times the GPU's slowdown (see :func:`compute_times`).

The numbers a step computes do not depend on when it happens (every schedule here is
synchronous), so the learning itself is replayed separately
(:mod:`simulator.learning.training`) and the two are joined on the step number.

Collectives and the network
---------------------------
An all-reduce over all GPUs never overlaps another sync: every GPU is in it, and each
had finished its earlier syncs before arriving. Block syncs of different blocks may
overlap; when the links their collectives use are disjoint (as on every topology whose
blocks have their own switch), they cannot slow each other down either. In both cases a
collective's duration and bytes depend only on its group, so each is simulated once on
the network model and reused. Otherwise (blocks that share links), block syncs run on a
shared :class:`~simulator.network.flows.Network` in the same environment, contending as they
overlap.
"""

from dataclasses import dataclass

import numpy as np
import simpy

from ..cluster.topology import gpu_blocks
from ..network.collectives import (
    allreduce,
    check_group,
    collective_pairs,
    ring_order,
    run_groups,
)
from ..network.flows import TIERS, Network
from ..network.routing import Router

__all__ = ["Timeline", "compute_times", "simulate_timeline", "cluster_gpus"]


@dataclass
class Timeline:
    """What the engine measured for one run. Times in seconds, per-GPU figures are means."""

    step_end_s: np.ndarray          # (T,) when the last GPU finished step t, with its sync
    simulated_time_s: float         # when the last GPU finished the last step
    compute_time_s: float           # mean over GPUs of the time spent computing
    comm_time_s: float              # mean over GPUs of the time spent in collectives (with delays)
    wait_time_s: float              # mean over GPUs of the time spent waiting for a sync to start
    comm_bytes: dict                # bytes carried per tier, summed over links
    syncs: dict                     # {"block": steps after which every block averaged,
                                    #  "global": syncs over all GPUs (gradient or parameters)}
    sync_log: list                  # (step, kind, group, start_s, end_s) of every collective;
                                    # group -1 is all GPUs, else the block's index
    in_flight: list = None          # with record_in_flight: series of (time_s, intra_block_bytes,
                                    # inter_block_bytes) in flight, one per collective run on an
                                    # idle network (shifted to its start) plus one for the shared
                                    # network; a series' value holds until its next entry


def cluster_gpus(graph):
    """GPUs in ring order (blocks adjacent) and their blocks as lists of positions.

    Returns
    -------
    tuple
        ``(gpus, blocks)``: names in ring order, and for each block the list of indices
        into `gpus` of its members.
    """
    gpus = ring_order(graph, [g for members in gpu_blocks(graph).values() for g in members])
    position = {g: i for i, g in enumerate(gpus)}
    blocks = [[position[g] for g in members] for members in gpu_blocks(graph).values()]
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


def simulate_timeline(graph, gpus, blocks, actions, compute_s, *, message_bytes,
                      collective="ring", global_sync_delay_s=0.0, record_in_flight=False):
    """Run the GPUs' compute and syncs in a SimPy environment.

    Parameters
    ----------
    graph : networkx.Graph
    gpus : list of str
        In ring order (:func:`cluster_gpus`).
    blocks : list of list of int
        Positions in `gpus` of each block's members.
    actions : sequence of str or None
        ``actions[t - 1]`` is the schedule's action after step ``t`` (:mod:`simulator.learning.schedules`).
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

    Returns
    -------
    Timeline
    """
    env = simpy.Environment()
    n_gpus, n_steps = compute_s.shape
    kinds = set(actions) - {None}
    every = list(gpus)
    block_names = [[gpus[i] for i in b] for b in blocks]
    # A group of one GPU has nothing to exchange: its syncs take no time and no bytes.
    if kinds & {"gradient", "global"} and len(every) > 1:
        check_group(graph, every, collective)
    if "block" in kinds:
        for members in block_names:
            if len(members) > 1:
                check_group(graph, members, collective)
    router = Router(graph)
    contended = "block" in kinds and not _disjoint(router, block_names, collective)
    in_flight = [] if record_in_flight else None
    shared_log = [] if record_in_flight and contended else None
    shared = Network(env, graph, router, in_flight_log=shared_log) if contended else None
    flight_logs = {}                             # members -> in-flight series from the collective's start

    costs = {}                                   # members -> (time_s, bytes_by_tier) on an idle network
    comm_bytes = dict.fromkeys(TIERS, 0.0)
    step_end_s = np.zeros(n_steps)
    compute_total = compute_s.sum(axis=1)
    comm_total = np.zeros(n_gpus)
    wait_total = np.zeros(n_gpus)
    pending = {}                                 # (step, group) -> _Sync
    sync_log = []
    group_of = np.empty(n_gpus, dtype=np.intp)
    for b, members in enumerate(blocks):
        group_of[members] = b + 1                # group 0 is every GPU

    def run_sync(sync, members, everyone):
        sync.start_s = env.now
        if len(members) == 1:
            pass
        elif everyone or shared is None:
            key = tuple(members)
            if key not in costs:
                log = flight_logs[key] = [] if record_in_flight else None
                costs[key] = run_groups(graph, [members], message_bytes, collective, router,
                                        in_flight_log=log)
            time_s, nbytes = costs[key]
            if record_in_flight:
                in_flight.append([(float(sync.start_s + t), *rest) for t, *rest in flight_logs[key]])
            for tier in TIERS:
                comm_bytes[tier] += nbytes[tier]
            yield env.timeout(time_s + (global_sync_delay_s if everyone else 0.0))
        else:
            yield allreduce(shared, [members], message_bytes, collective)
        sync.end_s = env.now
        sync_log.append((sync.step, sync.kind, sync.group, sync.start_s, sync.end_s))
        sync.done.succeed()

    def gpu(k):
        for t in range(n_steps):
            yield env.timeout(compute_s[k, t])
            kind = actions[t]
            if kind is not None:
                everyone = kind != "block"
                group = 0 if everyone else int(group_of[k])
                key = (t, group)
                sync = pending.get(key)
                if sync is None:
                    sync = pending[key] = _Sync(env, n_gpus if everyone else len(blocks[group - 1]),
                                                t + 1, kind, group - 1)
                arrived_s = env.now
                sync.waiting -= 1
                if sync.waiting == 0:
                    del pending[key]
                    env.process(run_sync(sync, every if everyone else block_names[group - 1], everyone))
                yield sync.done
                wait_total[k] += sync.start_s - arrived_s
                comm_total[k] += sync.end_s - sync.start_s
            if env.now > step_end_s[t]:
                step_end_s[t] = env.now

    for k in range(n_gpus):
        env.process(gpu(k))
    env.run()
    if shared is not None:
        for tier, nbytes in shared.bytes_by_tier().items():
            comm_bytes[tier] += nbytes
    if shared_log:
        in_flight.append(shared_log)
    return Timeline(
        step_end_s=step_end_s,
        simulated_time_s=float(env.now),
        compute_time_s=float(compute_total.mean()),
        comm_time_s=float(comm_total.mean()),
        wait_time_s=float(wait_total.mean()),
        comm_bytes=comm_bytes,
        syncs={"block": sum(a == "block" for a in actions),
               "global": sum(a in ("gradient", "global") for a in actions)},
        sync_log=sorted(sync_log, key=lambda entry: (entry[3], entry[0], entry[2])),
        in_flight=in_flight,
    )


class _Sync:
    """One all-reduce of a group after one step: members arrive, then it runs."""

    __slots__ = ("done", "waiting", "step", "kind", "group", "start_s", "end_s")

    def __init__(self, env, size, step, kind, group):
        self.done = env.event()
        self.waiting = size
        self.step, self.kind, self.group = step, kind, group
        self.start_s = self.end_s = None


def _disjoint(router, groups, algorithm):
    """True if no two groups' collectives would cross a common link."""
    seen = set()
    for members in groups:
        links = set()
        for src, dst in collective_pairs(router.graph, members, algorithm):
            links.update(router.route_links(src, dst).tolist())
        if links & seen:
            return False
        seen |= links
    return True
