"""Benchmark of evaluation: what counting only models that exist costs, and any_gpu at scale.

    python bench/bench_evaluation.py [--gpus 1024] [--steps 100]

Prints figures, asserts nothing (shared, noisy machines: compare the ratios, measured in one
process, back to back, best of two). A run of hierarchical local SGD (H = 2, Hb = 4), 32 samples per GPU
on MNIST-1D (100,000 samples), evaluated every 10 steps, on a two-tier cluster of 8 GPUs per
block, timed whole (run_variant) three ways:

- ``common`` (the default): the model every GPU holds after a global sync, plus the virtual
  average as a diagnostic: two evaluations of one model at most per evaluated step;
- ``any_gpu``: also every distinct model a GPU holds (up to K per evaluated step,
  vectorised over the models, equal ones evaluated once);
- the same run with evaluations every 1,000 steps (nearly none): what training and the
  engine cost without them.

Target: ``common`` within 1.1x of the run without evaluations; ``any_gpu`` is what it is
(K models per evaluation), and is only run when a scenario asks for it.
"""

import argparse
import dataclasses
import sys
import time

from simulator.cluster.generators import two_tier
from simulator.experiments.runner import load_workload, run_variant
from simulator.experiments.scenario import Variant, load_scenario


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=1024, help="GPUs, a multiple of 8 [1024]")
    parser.add_argument("--steps", type=int, default=100, help="steps [100]")
    args = parser.parse_args()
    base = load_scenario(None)
    mnist = dataclasses.replace(base.workload, dataset="mnist1d", n_samples=100_000)
    # No linear scaling of the learning rate to so many workers: 0.05 flat.
    optimizer = dataclasses.replace(base.optimizer, lr=0.05, scale_lr_with_workers=False)
    scenario = dataclasses.replace(base, topology=two_tier(args.gpus // 8, 8), workload=mnist,
                                   steps=args.steps, epochs=None, eval_every=10,
                                   optimizer=optimizer,
                                   topology_source=f"two_tier({args.gpus // 8}, 8)")
    variant = Variant("hierarchical", H=2, Hb=4, label="hierarchical H=2 Hb=4")
    print("generating MNIST-1D (100,000 samples) into the cache if needed ...", flush=True)
    workload = load_workload(scenario)
    run_variant(dataclasses.replace(scenario, steps=2), variant, workload=workload)   # warm-up

    def timed(**changes):
        """Best of two whole runs (s) and the record."""
        s = dataclasses.replace(scenario, **changes)
        best = None
        for _ in range(2):
            start = time.perf_counter()
            record = run_variant(s, variant, workload=workload)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        return best, record

    print(f"\n{args.gpus} GPUs ({args.gpus // 8} x 8), hierarchical H=2 Hb=4, {args.steps} steps "
          "x 32 samples, MNIST-1D 100k, evaluated every 10 steps")
    none_s, _ = timed(eval_every=1000)
    common_s, common = timed()
    any_s, anyg = timed(evaluate="any_gpu")
    evals = len(anyg["best_gpu_curve"])
    print(f"   without evaluations   {none_s:7.2f} s")
    print(f"   common (default)      {common_s:7.2f} s   {common_s / none_s:5.2f}x   "
          f"{len(common['curve'])} common + {len(common['virtual_average_curve'])} virtual "
          "evaluations")
    print(f"   any_gpu               {any_s:7.2f} s   {any_s / none_s:5.2f}x   {evals} steps x "
          f"up to {args.gpus} models; {(any_s - common_s) / max(evals, 1):.2f} s per evaluated step")
    print(f"   time to accuracy {common['time_to_accuracy_s']} (common), "
          f"{anyg['time_to_accuracy_s']} (any GPU); final accuracy "
          f"{common['final_test_accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
