"""sgdsim tune against an exhaustive grid over the same space: is the setting it finds as
good, and how many runs does it take?

    python bench/bench_tune.py                      # default scenario, H=1..16 x Hb=1..8
    python bench/bench_tune.py --budget 50 --seeds 4 --jobs 2
    python bench/bench_tune.py --scenario hierarchical_grid --space H=1..8 --space Hb=1..8

Both searches use the same scenario, space, objective and constraints; the grid is tune's
own exhaustive mode (every point once, no pruning), so the two differ only in the search.
Prints the best point of each, its figures, the runs and the steps each took (a rung of a
pruned trial is a run of fewer steps; "full runs" is steps / steps of one full run), and the
wall time. Figures, not pass/fail.
"""

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.experiments.sweep_runner import local_executor  # noqa: E402
from simulator.experiments.tune import load_tune, run_tune  # noqa: E402


def search(args, budget, rungs):
    plan = load_tune(args.scenario, space=args.space, variant=args.variant,
                     constraints=args.constraint, budget=budget, rungs=rungs, seed=args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out, local_executor(args.jobs) as executor:
        outcome = run_tune(plan, executor, directory=out)
    return plan, outcome, time.perf_counter() - started


def row(name, outcome, wall_s):
    best = outcome.best
    names = " ".join(f"{k.split('.')[-1]}={v}" for k, v in best["values"].items()) if best else "-"
    r = best["record"] if best else {}
    tta = r.get("time_to_accuracy_s")
    return (f"{name:<10} {len(outcome.trials):>6} {outcome.total_runs():>5} "
            f"{outcome.steps_run() / outcome.full_steps:>9.1f} {wall_s:>7.1f}  {names:<14} "
            f"{'-' if tta is None else f'{tta * 1e3:.3f} ms':>11} "
            f"{r.get('final_test_accuracy') or float('nan'):>8.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--variant", default="hierarchical H=2 Hb=4")
    parser.add_argument("--space", action="append")
    parser.add_argument("--constraint", action="append")
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rungs", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=4, help="searches, with seeds seed.. ")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    args.space = args.space or ["H=1..16", "Hb=1..8"]
    args.constraint = args.constraint or ["final_test_accuracy>=BASELINE-0.01"]

    print(f"scenario {args.scenario}, variant {args.variant!r}, space {' x '.join(args.space)}, "
          f"constraints {args.constraint}, {args.jobs} jobs")
    print(f"{'search':<10} {'trials':>6} {'runs':>5} {'full runs':>9} {'wall s':>7}  "
          f"{'best':<14} {'time-to-acc':>11} {'final acc':>8}")
    grid_plan, grid, grid_s = search(args, budget=10**9, rungs=1)
    size = math.prod(d.size() for d in grid_plan.space)
    print(row("grid", grid, grid_s))
    found = 0
    for seed in range(args.seed, args.seed + args.seeds):
        args_seed = argparse.Namespace(**{**vars(args), "seed": seed})
        _, tuned, tune_s = search(args_seed, budget=args.budget, rungs=args.rungs)
        print(row(f"tune s={seed}", tuned, tune_s))
        if grid.best and tuned.best:
            ratio = tuned.best["value"] / grid.best["value"]
            found += ratio <= 1
            print(f"  best / grid's best: {ratio:.4f} (<= 1: at least as good); grid {size} "
                  f"points, tune {tuned.total_runs()} runs "
                  f"({tuned.steps_run() / tuned.full_steps:.1f} full-run equivalents)")
    print(f"{found} of {args.seeds} seeds found a setting at least as good as the grid's best")


if __name__ == "__main__":
    main()
