"""Benchmark of whole runs: engine overhead over the numpy training alone, and scale.

    python bench/bench_engine.py [--quick]

Prints figures, asserts nothing (these machines are shared and noisy: compare the ratios,
which are measured in one process, back to back).

1. Overhead: a whole simulated run (run_variant: training, SimPy timeline, network model,
   record) divided by the same numpy training alone (training.train with the same batches,
   gradients, updates, averaging and evaluations; no engine, no network model), for every
   variant, at 16 GPUs (8 x 2) and 256 GPUs (32 x 8). Target: at most 1.3.
2. Scale: 1,024 GPUs (128 x 8), hierarchical local SGD, 100 steps of 32 samples per GPU on
   MNIST-1D (100,000 samples). Target: under 15 s, with the overhead ratio there.

Both runs are warmed up first (numba loads its compiled kernels once per process, about
0.2-0.5 s, reported separately), and MNIST-1D is generated once into the cache before timing.
"""

import argparse
import dataclasses
import os
import platform
import sys
import time

import numpy as np

from simulator.cluster.generators import two_tier
from simulator.engine.timeline import cluster_gpus
from simulator.experiments.runner import load_workload, planned_steps, run_variant
from simulator.experiments.scenario import Variant, load_scenario
from simulator.learning.datasets import BatchStream, shard_indices
from simulator.learning.schedules import schedule_for
from simulator.learning.training import train

VARIANTS = [Variant("minibatch", label="minibatch"), Variant("local", H=4, label="local H=4"),
            Variant("postlocal", H=4, switch_step=20, label="postlocal H=4 S=20"),
            Variant("hierarchical", H=2, Hb=4, label="hierarchical H=2 Hb=4")]


def numpy_alone(scenario, variant, workload):
    """The same training as run_variant, without engine or network: the baseline."""
    data, model = workload
    gpus, blocks = cluster_gpus(scenario.topology)
    batch = variant.batch_size or scenario.workload.batch_size
    steps = planned_steps(scenario, variant, len(data.y_train))
    action = schedule_for(variant)
    stream = BatchStream(shard_indices(data.y_train, len(gpus), seed=scenario.seed), batch,
                         seed=scenario.seed)
    return train(model, data, stream, actions=[action(t) for t in range(1, steps + 1)],
                 blocks=blocks, optimizer=scenario.optimizer, eval_every=scenario.eval_every)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def overhead(scenario, variants, repeats):
    workload = load_workload(scenario)
    rows = []
    for v in variants:
        run_variant(scenario, v, workload=workload)          # warm-up (and numba load)
        numpy_alone(scenario, v, workload)
        run_s = min(timed(lambda: run_variant(scenario, v, workload=workload)) for _ in range(repeats))
        alone_s = min(timed(lambda: numpy_alone(scenario, v, workload)) for _ in range(repeats))
        rows.append((v.label, run_s, alone_s))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, no 1,024-GPU run")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    start = time.perf_counter()
    import simulator.network.maxmin as maxmin  # noqa: F401  numba kernels load
    maxmin.max_min_rates(np.array([[0, 1]]), np.array([1.0, np.inf]))
    print(f"numba kernels loaded in {time.perf_counter() - start:.2f} s (once per process)\n")

    base = load_scenario(None)
    steps = 60 if args.quick else 300
    mnist = dataclasses.replace(base.workload, dataset="mnist1d", n_samples=100_000)
    print("generating MNIST-1D (100,000 samples) into the cache if needed ...", flush=True)
    load_workload(dataclasses.replace(base, workload=mnist))

    print(f"\n1. overhead = whole run / numpy training alone, {steps} steps, best of 2 "
          f"(target <= 1.3)")
    print(f"   {'GPUs':>5}  {'dataset':<8} {'variant':<24} {'run':>8} {'numpy':>8} {'ratio':>6}")
    cases = [("16", dataclasses.replace(base, steps=steps, epochs=None, eval_every=10)),
             ("256", dataclasses.replace(base, topology=two_tier(32, 8), workload=mnist, steps=steps,
                                         epochs=None, eval_every=10, topology_source="two_tier(32, 8)"))]
    if args.quick:
        cases = cases[:1]
    for gpus, scenario in cases:
        for label, run_s, alone_s in overhead(scenario, VARIANTS, repeats=2):
            print(f"   {gpus:>5}  {scenario.workload.dataset:<8} {label:<24} {run_s:7.2f}s "
                  f"{alone_s:7.2f}s {run_s / alone_s:6.2f}", flush=True)

    if not args.quick:
        print("\n2. scale: 1,024 GPUs (128 x 8), hierarchical H=2 Hb=4, 100 steps x 32 samples, "
              "MNIST-1D 100k (target < 15 s)")
        # No linear scaling of the learning rate to 1,024 workers (it would be 20): 0.05 flat.
        optimizer = dataclasses.replace(base.optimizer, lr=0.05, scale_lr_with_workers=False)
        scenario = dataclasses.replace(base, topology=two_tier(128, 8), workload=mnist, steps=100,
                                       epochs=None, eval_every=10, optimizer=optimizer,
                                       topology_source="two_tier(128, 8)")
        v = VARIANTS[3]
        workload = load_workload(scenario)
        run_s = timed(lambda: run_variant(scenario, v, workload=workload))
        alone_s = timed(lambda: numpy_alone(scenario, v, workload))
        record = run_variant(scenario, v, workload=workload)
        print(f"   whole run {run_s:.2f} s, numpy alone {alone_s:.2f} s, ratio {run_s / alone_s:.2f}; "
              f"simulated {record['simulated_time_s'] * 1e3:.2f} ms, final accuracy "
              f"{record['final_test_accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
