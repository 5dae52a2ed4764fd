"""How fast the flow-level network model runs: figures to read, not a test.

    python bench/bench_network.py            # everything (a few minutes; 100,000 transfers dominate)
    python bench/bench_network.py --quick    # a one-minute look: smaller sizes
    python bench/bench_network.py --only transfers --only loading    # some sections

Prints the machine, then

1. all-reduce of 100 MB over 1,024 GPUs (two_tier(128, 8): GPU links 25 GB/s, 1 us; block
   links 40 GB/s, 5 us) with each algorithm: wall time of a first run (which also loads or
   compiles numba's kernels) and of a second, the simulated time and the bus bandwidth;
   then a ring all-reduce run step by step through the flow model, and the same ring
   contended (every block's ring and the ring over all GPUs at once), at 1,024 and 4,096
   GPUs (two_tier(512, 8)). Target: the ring step by step on 4,096 GPUs under 2 s.
2. n transfers of uniform 1-100 MB, starting uniformly within 10 ms, between random
   distinct GPUs of the 1,024-GPU cluster, for n = 1,000, 10,000 and 100,000: wall time,
   peak number of transfers in their byte phase at once, how many times rates were
   recomputed, and the growth exponent of the wall time against the previous n. Targets:
   10,000 under 3 s, 100,000 under 60 s, growth at most n^1.3. Then the 10,000 again on
   the per-flow solver (FlowTable, the reference): its wall time, the ratio, and the
   largest relative difference between the two solvers' finish times.
3. the per-flow table's incremental rate update against recomputing every flow from
   scratch at every event, and the group table (the default) on the same transfers, on
   fewer transfers, timed in the same run (the machine may be shared: compare the ratio,
   not the seconds across runs).
4. routing: the routes of a ring over all GPUs of two_tier(K/8, 8) for K = 1,024, 4,096
   and 16,384, on a fresh router: wall time and peak memory (tracemalloc, which also slows
   the Python parts a little).
5. loading a 4,096-GPU topology file (the explicit YAML that `sgdsim topology generate`
   writes for two_tier(512, 8)), best of 3, and of that the YAML alone beside PyYAML's own
   parser (the reference the fast path is checked against). Target: under 0.5 s.

Targets from the issue are printed beside the figures.
"""

import argparse
import math
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numba
import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.cluster import generators  # noqa: E402
from simulator.cluster.topology import gpu_nodes, load_topology  # noqa: E402
from simulator.cluster.writer import write_topology  # noqa: E402
from simulator.network import maxmin  # noqa: E402
from simulator.network.collectives import (  # noqa: E402
    allreduce,
    collective_network,
    resolve_groups,
    ring_order,
    simulate_allreduce,
)
from simulator.network.flows import Network  # noqa: E402
from simulator.network.flowtable import FlowTable  # noqa: E402
from simulator.network.grouptable import GroupTable  # noqa: E402
from simulator.network.routing import Router  # noqa: E402
from simulator.utils import jit, yamlfile  # noqa: E402
from simulator.utils.units import format_bandwidth, format_time  # noqa: E402

MESSAGE_BYTES = 100e6
STEP_RING_TARGET_S = 2.0          # issue 12: a ring step by step on 4,096 GPUs under 2 s
TRANSFER_TARGETS_S = {10_000: 3.0, 100_000: 60.0}
GROWTH_TARGET = 1.3               # wall time at most ~ n^1.3 in transfers
LOAD_TARGET_S = 0.5               # loading a 4,096-GPU topology


def cluster(blocks=128, gpus_per_block=8):
    """The benchmark cluster: 1,024 GPUs by default."""
    return generators.two_tier(blocks, gpus_per_block, intra_bandwidth=25e9, intra_latency=1e-6,
                               inter_bandwidth=40e9, inter_latency=5e-6)


def wall(fn):
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def random_transfers(graph, n, seed=0, window_s=10e-3):
    """`n` transfers of uniform 1-100 MB, starts uniform in [0, window_s), distinct ends."""
    rng = np.random.default_rng(seed)
    gpus = [node for node, kind in graph.nodes(data="kind") if kind == "gpu"]
    src = rng.integers(len(gpus), size=n)
    dst = (src + rng.integers(1, len(gpus), size=n)) % len(gpus)   # never src
    pairs = tuple((gpus[s], gpus[d]) for s, d in zip(src, dst))
    nbytes = rng.uniform(1e6, 100e6, size=n)
    start_s = np.sort(rng.uniform(0.0, window_s, size=n))
    return pairs, nbytes, start_s


def run_transfers(graph, pairs, nbytes, start_s, table=None):
    """Run transfers on a fresh Network with a `table` (GroupTable, as simulate_transfers
    does; FlowTable: the per-flow table); return (finish_s, net)."""
    env = simpy.Environment()
    net = Network(env, graph, table_class=table or GroupTable)
    done = net._submit(pairs, nbytes, start_s)
    return env.run(done), net


def load_kernels(graph):
    """Load numba's compiled kernels and call each of them once (a run of 2,000 transfers):
    return the seconds it took. Kernels are compiled only for problems big enough to need
    them (see simulator.utils.jit), so without this the first timed run would pay for
    loading them (about a second) and run its first events interpreted."""
    start = time.perf_counter()
    jit.compile_kernels()
    run_transfers(graph, *random_transfers(graph, 2_000, seed=1))
    return time.perf_counter() - start


def peak_overlap(begin_s, finish_s):
    """Most transfers in their byte phase at one instant (finishes counted before starts)."""
    times = np.concatenate([finish_s, begin_s])
    steps = np.concatenate([-np.ones(len(finish_s)), np.ones(len(begin_s))])
    order = np.lexsort((steps, times))
    return int(np.cumsum(steps[order]).max())


def full_recompute(self, now, left_level, seeds, joined):
    """Replacement for Network._update_rates: every flow solved again from scratch."""
    self.rate_updates += 1
    table = getattr(self, "_table", None)
    if table is None and hasattr(self, "_routes"):           # sgdsim before the flow table
        if len(self._rate_Bps):
            self._rate_Bps = maxmin.max_min_rates(self._routes, self.capacity_Bps)
            self._finish_s = now + self._left_bytes / self._rate_Bps
        return
    if table is None or not table.n_active:
        return
    slots = table.flowing()                                    # join order: the rows
    table.rate[slots] = maxmin.max_min_rates(table.route[slots], self.capacity_Bps)
    table.finish[slots] = now + table.left[slots] / table.rate[slots]
    table.min_finish = float(table.finish[slots].min())


def growth(prev, this):
    """Log-log slope between two (n, seconds) points."""
    return math.log(this[1] / prev[1]) / math.log(this[0] / prev[0])


def collectives(quick):
    graph = cluster()
    n_gpus = sum(kind == "gpu" for _, kind in graph.nodes(data="kind"))
    print(f"\n1. all-reduce of 100 MB over {n_gpus} GPUs, two_tier(128, 8): "
          "GPU links 25 GB/s 1 us, block links 40 GB/s 5 us")
    print(f"   {'algorithm':<26} {'first run':>10} {'wall':>9} {'simulated':>11} {'busbw':>11}   target")
    for algorithm in ("ring", "hierarchical", "halving-doubling"):
        first_s, _ = wall(lambda: simulate_allreduce(graph, MESSAGE_BYTES, algorithm))
        wall_s, result = wall(lambda: simulate_allreduce(graph, MESSAGE_BYTES, algorithm))
        print(f"   {algorithm:<26} {first_s:>9.3f}s {wall_s:>8.3f}s {format_time(result['time_s']):>11} "
              f"{format_bandwidth(result['busbw']):>11}")
    # simulate_allreduce times a lone ring as one lock-step step x 2(p-1) (exact on an idle
    # network); these run every step through the flow model.
    for blocks in (128,) if quick else (128, 512):
        graph = cluster(blocks)
        members = ring_order(graph, gpu_nodes(graph))
        contended = resolve_groups(graph, "block") + [members]

        def step_by_step(groups):
            env = simpy.Environment()
            # As the engine runs block syncs that share links: a SimPy process on a Network
            # made for the collective (collective_network), every transfer through the model.
            env.run(allreduce(collective_network(env, graph, groups[-1], MESSAGE_BYTES, "ring"),
                              groups, MESSAGE_BYTES, "ring"))
            return env.now

        for label, groups in ((f"ring, every step, {len(members)}", [members]),
                              (f"+ every block, {len(members)}", contended)):
            runs = 1 if blocks > 128 else 2
            times = [wall(lambda: step_by_step(groups)) for _ in range(runs)]
            target = f"< {STEP_RING_TARGET_S:g} s wall" if blocks == 512 and len(groups) == 1 else ""
            print(f"   {label:<26} {times[0][0]:>9.3f}s {times[-1][0]:>8.3f}s "
                  f"{format_time(times[-1][1]):>11} {'':>11}   {target}", flush=True)


def transfers(quick):
    graph = cluster()
    sizes = (1_000, 3_000, 10_000) if quick else (1_000, 10_000, 100_000)
    print(f"\n2. transfers, 1-100 MB, starting within 10 ms, random distinct GPUs of 1,024 (seed 0)")
    print(f"   {'n':>8} {'wall':>9} {'growth':>7} {'simulated':>11} {'peak overlap':>13} "
          f"{'recomputations':>15}   target")
    load_s = load_kernels(graph)
    print(f"   (numba's kernels loaded and every one called once, untimed: {load_s:.2f} s, once per process)")
    points = []
    for n in sizes:
        pairs, nbytes, start_s = random_transfers(graph, n)
        wall_s, (finish_s, net) = wall(lambda: run_transfers(graph, pairs, nbytes, start_s))
        latency_s = np.array([net.route_latency_s(s, d) for s, d in pairs])
        slope = f"{growth(points[-1], (n, wall_s)):7.2f}" if points else ""
        points.append((n, wall_s))
        target = f"< {TRANSFER_TARGETS_S[n]:g} s" if n in TRANSFER_TARGETS_S else ""
        print(f"   {n:>8,} {wall_s:>8.3f}s {slope:>7} {format_time(float(finish_s.max())):>11} "
              f"{peak_overlap(start_s + latency_s, finish_s):>13,} {net.rate_updates:>15,}   {target}",
              flush=True)
    print(f"   growth from {points[0][0]:,} to {points[-1][0]:,}: "
          f"{growth(points[0], points[-1]):.2f} (target <= {GROWTH_TARGET})")
    n = 10_000
    pairs, nbytes, start_s = random_transfers(graph, n)
    group_s, (finish_group, _) = wall(lambda: run_transfers(graph, pairs, nbytes, start_s))
    flow_s, (finish_flow, _) = wall(lambda: run_transfers(graph, pairs, nbytes, start_s, FlowTable))
    diff = float(np.max(np.abs(finish_group - finish_flow) / finish_flow))
    print(f"   {n:,} again, group table {group_s:.3f} s, per-flow table (FlowTable) {flow_s:.3f} s: "
          f"x{flow_s / group_s:.2f}; finish times differ by at most {diff:.1e} (relative)")


def incremental(quick):
    graph = cluster()
    n_naive = 500 if quick else 2_000
    print(f"\n3. per-flow table: incremental update against a full recompute at every event, "
          f"{n_naive:,} transfers")
    small = random_transfers(graph, n_naive, seed=2)
    incremental_s, (finish_inc, net_inc) = wall(lambda: run_transfers(graph, *small, FlowTable))
    original = Network._update_rates
    Network._update_rates = full_recompute
    try:
        full_s, (finish_full, net_full) = wall(lambda: run_transfers(graph, *small, FlowTable))
    finally:
        Network._update_rates = original
    group_s, (finish_group, _) = wall(lambda: run_transfers(graph, *small))
    diff = float(np.max(np.abs(finish_inc - finish_full) / finish_full))
    diff_group = float(np.max(np.abs(finish_group - finish_full) / finish_full))
    print(f"   incremental          {incremental_s:.3f} s   ({net_inc.rate_updates:,} recomputations)")
    print(f"   full recompute       {full_s:.3f} s   ({net_full.rate_updates:,} recomputations)")
    print(f"   ratio                {full_s / incremental_s:.1f}x   (largest relative difference "
          f"in finish times {diff:.1e})")
    print(f"   group table          {group_s:.3f} s   (x{full_s / group_s:.1f} against the full "
          f"recompute; largest relative difference {diff_group:.1e})")


def routing(quick):
    print("\n4. routes of a ring over all GPUs of two_tier(K/8, 8), fresh router (under tracemalloc)")
    print(f"   {'K':>6} {'wall':>9} {'growth':>7} {'peak memory':>12}")
    points = []
    for gpus in (1024, 4096) if quick else (1024, 4096, 16384):
        graph = cluster(gpus // 8)
        members = ring_order(graph, gpu_nodes(graph))
        pairs = [(members[i], members[(i + 1) % len(members)]) for i in range(len(members))]

        def route_all():
            router = Router(graph)
            router.prepare([dst for _, dst in pairs])
            return [router.route_links(src, dst) for src, dst in pairs]

        tracemalloc.start()
        wall_s, _ = wall(route_all)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        slope = f"{growth(points[-1], (gpus, wall_s)):7.2f}" if points else ""
        points.append((gpus, wall_s))
        print(f"   {gpus:>6} {wall_s:>8.3f}s {slope:>7} {peak / 2**20:>9.1f} MB", flush=True)


def loading(quick=False):
    graph = cluster(512)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "two_tier_512x8.yaml"
        write_topology(graph, path)
        print(f"\n5. loading a 4,096-GPU topology ({path.stat().st_size / 1e3:.0f} kB of explicit YAML)")
        best_s = min(wall(lambda: load_topology(path))[0] for _ in range(3))
        text = path.read_text(encoding="utf-8")
        fast_s = min(wall(lambda: yamlfile.parse_yaml(text))[0] for _ in range(3))
        reference_s = wall(lambda: yamlfile._parse(yamlfile._Loader, text, None))[0]
    print(f"   load_topology        {best_s:.3f} s   (target < {LOAD_TARGET_S:g} s)")
    print(f"   of which YAML        {fast_s:.3f} s   (PyYAML's own parser, the reference for "
          f"errors: {reference_s:.3f} s, x{reference_s / fast_s:.0f})")


SECTIONS = {"collectives": collectives, "transfers": transfers, "incremental": incremental,
            "routing": routing, "loading": loading}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a one-minute look: smaller sizes")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append",
                        help="run only this section (repeatable)")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
          f"numpy {np.__version__}, numba {numba.__version__}; load average {os.getloadavg()[0]:.2f}")
    for name, section in SECTIONS.items():
        if not args.only or name in args.only:
            section(args.quick)


if __name__ == "__main__":
    main()
