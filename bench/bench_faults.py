"""Benchmark of runs under faults: what a failure costs the simulator, at 1,024 GPUs.

    python bench/bench_faults.py [--quick]

Prints figures, asserts nothing (these machines are shared and noisy: compare the ratios,
measured in one process, back to back).

1. Timeline alone, 1,024 GPUs (128 nodes x 8), 10,000 steps (1,000 with --quick),
   hierarchical local SGD (H = 4, Hb = 8) timed as GPT-2 small: the fault-free engine
   (timeline.simulate_timeline), the fault engine with nothing failing, and the fault engine
   with failures drawn from a per-GPU MTBF (chosen so that about 20 failures fall in the
   run), under restart (checkpoints every 500 steps) and elastic. Target: minutes, not hours;
   the cost of a failure is the events it causes (the steps it makes redo, the syncs it
   changes), not a re-simulation: (faulty - fault-free) / failures is printed per policy.
2. The whole run (learning + timeline + record, run_variant) of the elastic case, on
   MNIST-1D with a 40-16-10 MLP and 8 samples per GPU.
"""

import argparse
import dataclasses
import os
import platform
import sys
import time

import numpy as np

from simulator.cluster.generators import two_tier
from simulator.engine.fault_timeline import simulate_fault_timeline
from simulator.engine.faults import FaultPlan, RandomFaults
from simulator.engine.profiles import get_profile
from simulator.engine.timeline import (
    cluster_gpus,
    cluster_groupings,
    compute_times,
    simulate_timeline,
)
from simulator.experiments.runner import load_workload, run_variant
from simulator.experiments.scenario import Variant, load_scenario
from simulator.learning.schedules import hierarchical

GPT2 = get_profile("gpt2-small")


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 steps, no whole run")
    args = parser.parse_args()
    steps = 1_000 if args.quick else 10_000
    print(f"machine: {os.cpu_count()} cores ({platform.machine()}), Python "
          f"{platform.python_version()}, numpy {np.__version__}")
    graph = two_tier(128, 8, intra_bandwidth=300e9, intra_latency=1e-6, inter_bandwidth=25e9,
                     inter_latency=5e-6, peak_flops=15.7e12, efficiency=0.4)
    gpus, _ = cluster_gpus(graph)
    groups = cluster_groupings(graph, gpus)
    batch = 16
    compute_s = compute_times(graph, gpus, steps, flops_per_sample=GPT2.flops_per_sample,
                              batch_size=batch, jitter=0.02, seed=0)
    act = hierarchical(4, 8)
    actions = [act(t) for t in range(1, steps + 1)]
    engine = {"message_bytes": GPT2.message_bytes, "collective": "ring"}
    simulate_timeline(graph, gpus, groups, actions[:20], compute_s[:, :20], **engine)  # warm-up

    print(f"\n1. timeline alone: {len(gpus)} GPUs, {steps:,} steps, hierarchical H=4 Hb=8, "
          f"GPT-2 small on V100-class GPUs (target: minutes)")
    free_s, free = timed(lambda: simulate_timeline(graph, gpus, groups, actions, compute_s,
                                                   **engine))
    run_h = free.simulated_time_s / 3600
    print(f"   fault-free engine        {free_s:7.1f} s   (simulated {run_h:.2f} h)")
    none_s, _ = timed(lambda: simulate_fault_timeline(graph, gpus, groups, actions, compute_s,
                                                      plan=FaultPlan(), **engine))
    print(f"   fault engine, no faults  {none_s:7.1f} s   ratio {none_s / free_s:.2f}")
    mtbf_s = free.simulated_time_s * len(gpus) / 20            # about 20 failures per run
    random = RandomFaults(gpu_mtbf_s=mtbf_s)
    for name, plan in (
            ("restart", FaultPlan(policy="restart", restart_delay_s=120.0, checkpoint_every=500,
                                  checkpoint_write_s=10.0, random=random)),
            ("elastic", FaultPlan(policy="elastic", rejoin_delay_s=600.0, reconfigure_s=10.0,
                                  random=random))):
        run_s, run = timed(lambda: simulate_fault_timeline(graph, gpus, groups, actions,
                                                           compute_s, plan=plan, **engine))
        report = run.faults
        extra = (run_s - none_s) / max(report.failures, 1)
        print(f"   {name:<8} MTBF {mtbf_s / 3600:,.0f} h/GPU: {run_s:7.1f} s, {report.failures} "
              f"failures, {report.restarts} restarts, {report.redone_steps} steps redone, "
              f"{report.aborted_syncs} syncs abandoned; simulated {run.simulated_time_s / 3600:.2f} h; "
              f"{extra:+.2f} s per failure over no faults")

    if args.quick:
        return 0
    print(f"\n2. whole run (run_variant), elastic, same cluster and failures, {steps:,} steps, "
          "MNIST-1D 100k, MLP 40-16-10, 16 samples per GPU")
    base = load_scenario(None)
    workload = dataclasses.replace(base.workload, dataset="mnist1d", n_samples=100_000,
                                   hidden=(16,), batch_size=batch)
    optimizer = dataclasses.replace(base.optimizer, lr=0.05, scale_lr_with_workers=False,
                                    warmup_epochs=0.0, decay_epochs=())
    timing = dataclasses.replace(base.timing, cost_profile="gpt2-small", jitter=0.02)
    plan = FaultPlan(policy="elastic", rejoin_delay_s=600.0, reconfigure_s=10.0, random=random)
    scenario = dataclasses.replace(base, topology=graph, topology_source="two_tier(128, 8)",
                                   workload=workload, optimizer=optimizer, timing=timing,
                                   steps=steps, epochs=None, eval_every=500, faults=plan)
    variant = Variant("hierarchical", H=4, Hb=8, label="hierarchical H=4 Hb=8")
    print("   loading MNIST-1D (generated once into the cache) ...", flush=True)
    data = timed(lambda: load_workload(scenario))
    run_s, record = timed(lambda: run_variant(scenario, variant, workload=data[1]))
    faults = record["faults"]
    print(f"   whole run {run_s:.1f} s: {faults['failures']} failures, simulated "
          f"{record['simulated_time_s'] / 3600:.2f} h, final accuracy "
          f"{record['final_test_accuracy']:.3f}, goodput {faults['goodput_steps_per_s']:.3f} "
          f"steps/s, GPUs mean {faults['mean_workers']:.1f} (min {faults['min_workers']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
