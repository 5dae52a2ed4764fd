"""Benchmark of whole runs: the simulator's overhead over the numpy training alone, and scale.

    python bench/bench_engine.py            # everything (about 15 minutes; 16,384 GPUs dominate)
    python bench/bench_engine.py --quick    # a one-minute look: smaller sizes, fewer steps

Prints figures, asserts nothing. The machine may be shared and noisy: compare the ratios,
each measured in one process, back to back, never seconds across runs.

0. The machine: cores, BLAS, and its measured one-thread GEMM peak (a square matmul of
   2,048, float64 and float32, best of 3): the ceiling for the training step.
1. Overhead: a whole simulated run (run_variant: training, SimPy timeline, network model,
   record) divided by the same numpy training alone (training.train with the same batches,
   gradients, updates, averaging and evaluations; no engine, no network model), for every
   variant, at 16 GPUs (8 x 2) and 256 GPUs (32 x 8), best of 10 and of 4 alternating
   runs. Both sides run with one BLAS thread and the cyclic garbage collector paused (the
   run does both itself; the baseline is set so here), so the ratio does not swing with the
   machine's load. Target: at most 1.05.
2. Scale: K = 64 ... 16,384 GPUs (two_tier(K/8, 8)), hierarchical local SGD H=2 Hb=4, 100
   steps of 32 samples per GPU on MNIST-1D (100,000 samples), a flat learning rate of 0.05.
   Each size runs in a fresh child process so that its peak memory (max RSS, read after the
   whole run) is its own; up to 1,024 GPUs the run and the baseline are timed three times
   each, alternating, and the best of each kept (the machine's noise is ~10 %); above, each
   once, in a process of its own (after a run of ~2 GB in the same process, the baseline's
   pass over fresh memory took 11-19 % longer than the whole run itself). Columns:
   wall time of the run, of the numpy training alone, their ratio, peak memory,
   microseconds per GPU-step (wall / (K x steps)), the log-log slope of the wall time
   against the previous size, and the training's GFLOP/s (6 x weights x batch x K x steps
   / numpy time) beside the GEMM peak of 0. Targets: 16,384 GPUs under 60 s and
   2 GB, slope at most 1.05 from 1,024 up, the training at 40 % of the float64 peak.

MNIST-1D is generated once into the cache before timing; numba's kernels are loaded in
each process before its timed runs, and each size's process trains three steps before
timing the run, so that the process's first pass through the shared training code does not
fall on the run alone.
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from simulator.cluster.generators import two_tier
from simulator.engine.timeline import cluster_gpus
from simulator.experiments.runner import load_workload, planned_steps, run_variant
from simulator.experiments.scenario import Variant, load_scenario
from simulator.learning.datasets import BatchStream, shard_indices
from simulator.learning.schedules import schedule_for
from simulator.learning.training import train
from simulator.utils.bulk import paused_gc

VARIANTS = [Variant("minibatch", label="minibatch"), Variant("local", H=4, label="local H=4"),
            Variant("postlocal", H=4, switch_step=20, label="postlocal H=4 S=20"),
            Variant("hierarchical", H=2, Hb=4, label="hierarchical H=2 Hb=4")]
HIERARCHICAL = VARIANTS[3]
SIZES = (64, 256, 1024, 4096, 16384)
QUICK_SIZES = (64, 256, 1024)
OVERHEAD_TARGET = 1.05
SMALL_SIZE, SMALL_REPEATS = 1024, 3
"""Sizes up to SMALL_SIZE GPUs time the run and its baseline SMALL_REPEATS times each,
alternating in one process, and keep the best of each (a few seconds more in all);
bigger ones once each, in two processes."""
PEAK_FRACTION_TARGET = 0.40


def numpy_alone(scenario, variant, workload):
    """The same training as run_variant, without engine or network: the baseline.

    Pinned to one BLAS thread and with the cyclic garbage collector paused, as run_variant
    runs itself, so that the two compare.
    """
    data, model = workload
    gpus, blocks = cluster_gpus(scenario.topology)
    batch = variant.batch_size or scenario.workload.batch_size
    steps = planned_steps(scenario, variant, len(data.y_train))
    action = schedule_for(variant)
    stream = BatchStream(shard_indices(data.y_train, len(gpus), seed=scenario.seed), batch,
                         seed=scenario.seed)
    with threadpool_limits(limits=1), paused_gc():
        return train(model, data, stream, actions=[action(t) for t in range(1, steps + 1)],
                     blocks=blocks, optimizer=scenario.optimizer, eval_every=scenario.eval_every)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def gemm_peak_flops(dtype, n=2048, repeats=3):
    """FLOP/s of one n x n x n matmul on one BLAS thread, best of `repeats`."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    with threadpool_limits(limits=1):
        np.matmul(a, b, out=out)                                   # warm-up
        best_s = min(timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2.0 * n**3 / best_s


def load_numba_kernels():
    """Load (or compile) the network model's kernels once; return the seconds it took."""
    from simulator.cluster.generators import two_tier as _two_tier
    from simulator.network.flows import simulate_transfers

    start = time.perf_counter()
    try:                                   # kernels compiled only when a problem is big
        from simulator.utils import jit
        jit.compile_kernels()
    except ImportError:                    # an older sgdsim: numba loads at import
        pass
    # The training's one-pass update (compiled for big problems): load it here, not in
    # whichever of the run and its baseline happens to call it first.
    from simulator.learning.workload import FUSED_FROM, sgd_step
    weights = np.zeros((1, FUSED_FROM))
    sgd_step(weights, np.zeros_like(weights), np.zeros_like(weights), 0.1)
    # So are the training step's fused passes: a tiny step through the same code, with the
    # same array kinds as a real one (numba loads one version per kind of argument).
    try:
        from simulator.learning import fused
    except ImportError:                    # an older sgdsim: no fused passes
        fused = None
    if fused is not None:
        from simulator.learning.workload import make_model
        model = make_model("mlp", 4, 3, hidden=(2,))
        stream = BatchStream([np.arange(6), np.arange(6)], 3, seed=0)
        saved, fused.FUSED_STEP_FROM = fused.FUSED_STEP_FROM, 1
        try:
            model.batch_loss_and_grad(model.init_params(2), np.zeros((6, 4)), np.zeros(6, int),
                                      stream.next_batch(), out=np.empty((2, model.num_params)))
        finally:
            fused.FUSED_STEP_FROM = saved
    graph = _two_tier(4, 8)
    # 64 transfers: enough flows that the network model uses its compiled kernels.
    simulate_transfers(graph, [{"src": f"gpu{i % 4}_{i % 8}", "dst": f"gpu{(i + 1) % 4}_{i % 7}",
                                "bytes": 1e6, "start": 0.0} for i in range(64)])
    # The collectives' bandwidth phases call the same kernels with other kinds of argument:
    # a block's and a global ring on two_tier(8, 8) load those.
    from simulator.network.collectives import run_groups
    graph = _two_tier(8, 8)
    gpus, blocks = cluster_gpus(graph)
    for members in (blocks[0], range(len(gpus))):
        run_groups(graph, [[gpus[i] for i in members]], 1e6, "ring")
    return time.perf_counter() - start


def overhead(scenario, variants, repeats):
    workload = load_workload(scenario)
    rows = []
    for v in variants:
        run_variant(scenario, v, workload=workload)          # warm-up
        numpy_alone(scenario, v, workload)
        run_s, alone_s = [], []
        for _ in range(repeats):                             # alternate: drift hits both
            run_s.append(timed(lambda: run_variant(scenario, v, workload=workload)))
            alone_s.append(timed(lambda: numpy_alone(scenario, v, workload)))
        rows.append((v.label, min(run_s), min(alone_s)))
    return rows


def mnist_workload(base):
    return dataclasses.replace(base.workload, dataset="mnist1d", n_samples=100_000)


def scale_scenario(base, gpus, steps):
    """Hierarchical on two_tier(gpus / 8, 8), MNIST-1D, a flat learning rate."""
    # No linear scaling of the learning rate to thousands of workers: 0.05 flat.
    optimizer = dataclasses.replace(base.optimizer, lr=0.05, scale_lr_with_workers=False)
    blocks = gpus // 8
    return dataclasses.replace(base, topology=two_tier(blocks, 8), workload=mnist_workload(base),
                               steps=steps, epochs=None, eval_every=10, optimizer=optimizer,
                               topology_source=f"two_tier({blocks}, 8)")


def one_size(gpus, steps, part):
    """Child process: time one size (`part`: "both", alternating in this process, or only
    the "run" or the "numpy" baseline); print one JSON line."""
    kernels_s = load_numba_kernels()
    base = load_scenario(None)
    scenario = scale_scenario(base, gpus, steps)
    workload = load_workload(scenario)
    _, model = workload
    # A few steps of the training first, which both sides share: the process's first pass
    # through it (fresh pages for the arrays, first calls) would otherwise fall on the run.
    numpy_alone(dataclasses.replace(scenario, steps=3), HIERARCHICAL, workload)
    record = {"gpus": gpus, "steps": steps, "kernels_s": kernels_s,
              "train_flops": float(model.flops_per_sample) * 32 * gpus * steps}
    if part in ("both", "run"):
        start = time.perf_counter()
        result = run_variant(scenario, HIERARCHICAL, workload=workload)
        record["run_s"] = [time.perf_counter() - start]
        record["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        record.update(simulated_s=result["simulated_time_s"],
                      final_accuracy=result["final_test_accuracy"])
    if part in ("both", "numpy"):
        record["numpy_s"] = [timed(lambda: numpy_alone(scenario, HIERARCHICAL, workload))]
    for _ in range(SMALL_REPEATS - 1 if part == "both" and gpus <= SMALL_SIZE else 0):
        record["run_s"].append(timed(lambda: run_variant(scenario, HIERARCHICAL, workload=workload)))
        record["numpy_s"].append(timed(lambda: numpy_alone(scenario, HIERARCHICAL, workload)))
    for name in ("run_s", "numpy_s"):
        if name in record:
            record[name] = min(record[name])
    print(json.dumps(record))


def child(gpus, steps, part):
    """Run one_size in a fresh process; return its record, or None (after saying why)."""
    done = subprocess.run([sys.executable, __file__, "--one-size", str(gpus), "--steps", str(steps),
                           "--part", part], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"   {gpus:>6} failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def scale_table(sizes, steps, peak64):
    print(f"\n2. scale: hierarchical H=2 Hb=4, {steps} steps x 32 samples per GPU, MNIST-1D 100k, "
          "two_tier(K/8, 8); one child process per size")
    print(f"   {'K':>6} {'run':>8} {'numpy':>8} {'ratio':>6} {'peak mem':>9} {'us/GPU-step':>11} "
          f"{'slope':>6} {'GFLOP/s':>8} {'of peak':>7}")
    rows = []
    for gpus in sizes:
        if gpus <= SMALL_SIZE:
            r = child(gpus, steps, "both")
        else:
            # Once each, in two fresh processes: after a run of ~2 GB in the same process
            # the baseline's pass over fresh memory took 11-19 % longer than the run.
            r, alone = child(gpus, steps, "run"), child(gpus, steps, "numpy")
            if r and alone:
                r["numpy_s"] = alone["numpy_s"]
            else:
                r = None
        if r is None:
            continue
        slope = ""
        if rows:
            prev = rows[-1]
            slope = f"{math.log(r['run_s'] / prev['run_s']) / math.log(gpus / prev['gpus']):6.2f}"
        gflops = r["train_flops"] / r["numpy_s"] / 1e9
        print(f"   {gpus:>6} {r['run_s']:7.2f}s {r['numpy_s']:7.2f}s {r['run_s'] / r['numpy_s']:6.2f} "
              f"{r['peak_rss_bytes'] / 2**20:6.0f} MB {r['run_s'] / (gpus * steps) * 1e6:11.2f} "
              f"{slope:>6} {gflops:8.1f} {gflops * 1e9 / peak64:6.0%}", flush=True)
        rows.append(r)
    big = [r for r in rows if r["gpus"] >= 1024]
    if len(big) >= 2:
        slope = math.log(big[-1]["run_s"] / big[0]["run_s"]) / math.log(big[-1]["gpus"] / big[0]["gpus"])
        print(f"   slope of the whole run from {big[0]['gpus']:,} to {big[-1]['gpus']:,} GPUs: {slope:.2f} "
              "(target <= 1.05)")
    print(f"   targets: 16,384 GPUs under 60 s and 2 GB; ratio <= {OVERHEAD_TARGET}; "
          f"training >= {PEAK_FRACTION_TARGET:.0%} of the float64 GEMM peak")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a one-minute look: smaller sizes")
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--part", default="both", choices=("both", "run", "numpy"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_size:
        one_size(args.one_size, args.steps, args.part)
        return 0
    blas = threadpool_info()
    blas_text = ", ".join(f"{b.get('internal_api')} {b.get('version')} {b.get('architecture')}"
                          for b in blas if b.get("user_api") == "blas") or "unknown"
    print(f"machine: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
          f"numpy {np.__version__}, BLAS {blas_text}; load average {os.getloadavg()[0]:.2f}")
    peak64, peak32 = gemm_peak_flops(np.float64), gemm_peak_flops(np.float32)
    print(f"0. one-thread GEMM peak (2048^3 matmul, best of 3): {peak64 / 1e9:.1f} GFLOP/s float64, "
          f"{peak32 / 1e9:.1f} GFLOP/s float32")
    print(f"   numba kernels loaded in {load_numba_kernels():.2f} s (once per process)")

    base = load_scenario(None)
    steps = 60 if args.quick else 300
    print("   generating MNIST-1D (100,000 samples) into the cache if needed ...", flush=True)
    load_workload(dataclasses.replace(base, workload=mnist_workload(base)))

    # A 16-GPU run takes tens of milliseconds: ten of each, alternating, for a steady best.
    repeats = {"16": 10, "256": 4}
    print(f"\n1. overhead = whole run / numpy training alone (one BLAS thread each), {steps} steps, "
          f"best of 10 (16 GPUs) or 4 (256), alternating (target <= {OVERHEAD_TARGET})")
    print(f"   {'GPUs':>5}  {'dataset':<8} {'variant':<24} {'run':>8} {'numpy':>8} {'ratio':>6}")
    cases = [("16", dataclasses.replace(base, steps=steps, epochs=None, eval_every=10)),
             ("256", dataclasses.replace(base, topology=two_tier(32, 8), workload=mnist_workload(base),
                                         steps=steps, epochs=None, eval_every=10,
                                         topology_source="two_tier(32, 8)"))]
    if args.quick:
        cases = cases[:1]
    for gpus, scenario in cases:
        for label, run_s, alone_s in overhead(scenario, VARIANTS, repeats=repeats[gpus]):
            print(f"   {gpus:>5}  {scenario.workload.dataset:<8} {label:<24} {run_s * 1e3:6.1f}ms "
                  f"{alone_s * 1e3:6.1f}ms {run_s / alone_s:6.3f}", flush=True)

    scale_table(QUICK_SIZES if args.quick else SIZES, 100, peak64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
