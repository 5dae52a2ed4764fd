"""sgdsim tune: the space and constraint grammar, the search against an exhaustive one,
pruning on prefixes of runs, determinism over job counts, resuming, and its figures."""

import json
import math

import pytest
from helpers import one_error_line

from simulator.experiments.runner import run_variant
from simulator.experiments.scenario import scenario_from_data
from simulator.experiments.sweep_runner import local_executor
from simulator.experiments.tune import (
    _partial_value,
    _rung_steps,
    load_tune,
    pareto_front,
    parse_constraint,
    parse_space,
    run_tune,
)
from simulator.outputs import search_plots
from simulator.utils.errors import InputError

SCENARIO = """\
name: tiny-tune
topology: seed_8x2
workload: {dataset: digits, model: mlp, hidden: [64], batch_size: 32}
optimizer: {lr: 0.02, warmup_epochs: 2}
variants:
  - {algorithm: minibatch}
  - {algorithm: local, H: 2}
  - {algorithm: hierarchical, H: 2, Hb: 2}
target_accuracy: 0.8
steps: 27
timing: {cost_profile: resnet20-cifar10}
"""


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO)
    return path


# --------------------------------------------------------------------------- grammar
def test_space_texts_parse_to_dimensions():
    dims = parse_space(["H=1..64:log", "lr=0.01..0.1", "optimizer.lr=0.1,0.2", "Hb = 2 .. 8"],
                       variant_index=2, variant_keys=["H", "Hb", "lr"])
    assert [(d.name, d.path, d.kind, d.low, d.high, d.log, d.choices) for d in dims] == [
        ("H", "variants[2].H", "int", 1, 64, True, ()),
        ("lr", "variants[2].lr", "float", 0.01, 0.1, False, ()),
        ("optimizer.lr", "optimizer.lr", "choice", None, None, False, (0.1, 0.2)),
        ("Hb", "variants[2].Hb", "int", 2, 8, False, ())]
    assert [d.size() for d in dims] == [64, math.inf, 2, 7]


@pytest.mark.parametrize("text, says", [
    ("H", "cannot read"),
    ("H=8..1", "LOW must be below HIGH"),
    ("H=0..8:log", "log range needs LOW > 0"),
    ("H=1..inf", "finite"),
    ("Q=1..4", "not a setting of the tuned variant"),
    ("H=1,1", "twice"),
    ("optimizer.lrr=0.1..0.2", "unknown key 'lrr'"),
    ("outer_lr=0.1..1.0", "'outer_lr' is not a setting of the tuned variant"),
    ("variants[0].outer_lr=0.1..1.0", "outer_lr applies to diloco"),
])
def test_bad_space_is_one_line_and_exit_2(run_cli, scenario_file, tmp_path, text, says):
    line = one_error_line(run_cli("tune", scenario_file, "--space", text, "--variant",
                                  "local H=2", "-o", tmp_path / "out"))
    assert "--space" in line and says in line, line


def test_a_space_name_given_twice_is_refused():
    with pytest.raises(InputError, match="given twice"):
        parse_space(["H=1..4", "H=2..8"], variant_keys=["H"])


def test_constraints_parse_and_measure_their_violation():
    c = parse_constraint("final_test_accuracy >= BASELINE - 0.005")
    assert (c.metric, c.op, c.offset, c.relative) == ("final_test_accuracy", ">=", -0.005, True)
    baseline = {"final_test_accuracy": 0.9}
    assert c.violation({"final_test_accuracy": 0.9}, baseline) == pytest.approx(-0.005)
    assert c.violation({"final_test_accuracy": 0.85}, baseline) == pytest.approx(0.045)
    upper = parse_constraint("comm_bytes.inter_block<=1e9")
    assert upper.violation({"comm_bytes": {"inter_block": 2e9}}, None) == 1e9
    for bad in ("final_acc>=0.9", "final_test_accuracy=0.9", "final_test_accuracy>=BASELINE*2"):
        with pytest.raises(InputError):
            parse_constraint(bad)


def test_pareto_front_keeps_exactly_the_non_dominated_trials():
    def trial(n, tta, acc, nbytes):
        return {"number": n, "record": {"time_to_accuracy_s": tta, "final_test_accuracy": acc,
                                        "comm_bytes.inter_block": nbytes}}
    trials = [trial(0, 1.0, 0.9, 5), trial(1, 2.0, 0.95, 5), trial(2, 2.0, 0.9, 5),
              trial(3, 1.0, 0.9, 9), trial(4, 3.0, 0.96, 1), trial(5, 1.0, 0.9, 5)]
    # 2 is beaten by 1, 3 by 0; 0 and 5 tie on everything: neither dominates the other
    assert [t["number"] for t in pareto_front(trials)] == [0, 1, 4, 5]


def test_rungs_grow_by_three_and_end_at_the_full_run():
    assert _rung_steps(90, 3) == [10, 30, 90]
    assert _rung_steps(90, 1) == [90]
    assert _rung_steps(2, 3) == [1, 2]


# --------------------------------------------------------------------------- the search
def test_a_rung_is_the_prefix_of_the_full_run(scenario_file):
    scenario = scenario_from_data(__import__("yaml").safe_load(SCENARIO),
                                  base_dir=str(scenario_file.parent))
    variant = scenario.variants[1]
    full = run_variant(scenario, variant)
    short = run_variant(scenario, variant, stop_after=6)
    assert short["steps"] == 6
    assert short["curve"] == [point for point in full["curve"] if point[1] <= 6]


def test_a_run_short_of_the_target_reports_its_simulated_time_as_a_lower_bound(scenario_file):
    plan = load_tune(scenario_file, space=["H=1..4"], variant="local H=2")
    assert _partial_value(plan, {"time_to_accuracy_s": None, "simulated_time_s": 0.25}) == 0.25
    assert _partial_value(plan, {"time_to_accuracy_s": 0.1, "simulated_time_s": 0.25}) == 0.1


def test_a_small_space_is_searched_exhaustively_and_finds_the_true_optimum(scenario_file,
                                                                            tmp_path):
    plan = load_tune(scenario_file, space=["H=1..4", "Hb=1..2"], budget=20,
                     constraints=["final_test_accuracy>=BASELINE-0.05"])
    with local_executor(1) as executor:
        outcome = run_tune(plan, executor, directory=str(tmp_path / "out"))
    # the same optimum worked out independently: every point run on its own
    data = __import__("yaml").safe_load(SCENARIO)
    base = scenario_from_data(data, base_dir=str(scenario_file.parent))
    baseline = run_variant(base, base.variants[0])["final_test_accuracy"]
    best = None
    for H in range(1, 5):
        for Hb in (1, 2):
            point = dict(data, variants=[{"algorithm": "hierarchical", "H": H, "Hb": Hb}])
            s = scenario_from_data(point, base_dir=str(scenario_file.parent))
            r = run_variant(s, s.variants[0])
            if r["time_to_accuracy_s"] is not None and r["final_test_accuracy"] >= baseline - 0.05:
                key = (r["time_to_accuracy_s"], -r["final_test_accuracy"],
                       r["comm_bytes"]["inter_block"])
                best = min(best or (key, H, Hb), (key, H, Hb))
    assert len(outcome.trials) == 8 and outcome.runs == 8 + 1        # each point once, + baseline
    assert outcome.best["values"] == {"variants[0].H": best[1], "variants[0].Hb": best[2]}
    assert outcome.best["value"] == best[0][0]


@pytest.mark.parametrize("variant, space, values", [
    ({"algorithm": "diloco", "H": 3}, ["outer_lr=0.4,1.0", "outer_momentum=0,0.8"],
     {"outer_lr": (0.4, 1.0), "outer_momentum": (0, 0.8)}),
    ({"algorithm": "slowmo", "H": 3}, ["slow_momentum=0,0.6", "H=3,6"],
     {"slow_momentum": (0, 0.6), "H": (3, 6)}),
])
def test_the_newer_schedules_settings_are_searched_by_name(tmp_path, variant, space, values):
    data = __import__("yaml").safe_load(SCENARIO)
    data["variants"] = [{"algorithm": "minibatch"}, variant]
    path = tmp_path / "s.yaml"
    path.write_text(__import__("yaml").safe_dump(data))
    plan = load_tune(path, space=space, budget=10)
    with local_executor(1) as executor:
        outcome = run_tune(plan, executor, directory=str(tmp_path / "out"))
    names = list(values)
    best = None                                      # every point run on its own
    for a in values[names[0]]:
        for b in values[names[1]]:
            point = dict(data, variants=[dict(variant, **{names[0]: a, names[1]: b})])
            s = scenario_from_data(point, base_dir=str(tmp_path))
            r = run_variant(s, s.variants[0])
            if r["time_to_accuracy_s"] is not None:
                key = (r["time_to_accuracy_s"], -r["final_test_accuracy"],
                       r["comm_bytes"]["inter_block"])
                best = min(best or (key, a, b), (key, a, b))
    assert outcome.runs == 4 and best is not None
    assert outcome.best["values"] == {f"variants[0].{names[0]}": best[1],
                                      f"variants[0].{names[1]}": best[2]}
    assert outcome.best["value"] == best[0][0]


def _tune_cli(run_cli, scenario_file, out, *extra):
    return run_cli("tune", scenario_file, "--variant", "hierarchical H=2 Hb=2", "--rungs", "3",
                   "--space", "H=1..12", "--space", "Hb=1..6", "--budget", "9", "--batch", "3",
                   "--constraint", "final_test_accuracy>=BASELINE-0.1", "-q", "-o", out, *extra)


def test_the_same_seed_gives_the_same_search_with_any_job_count(run_cli, scenario_file, tmp_path):
    one = _tune_cli(run_cli, scenario_file, tmp_path / "j1", "--jobs", "1")
    two = _tune_cli(run_cli, scenario_file, tmp_path / "j2", "--jobs", "2")
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    for name in ("tune.json", "trials.jsonl", "plan.json"):
        assert (tmp_path / "j1" / name).read_bytes() == (tmp_path / "j2" / name).read_bytes()
    document = json.loads((tmp_path / "j1" / "tune.json").read_text())
    assert len(document["trials"]) == 9
    assert [len(t["rungs"]) for t in document["trials"]] == [3] * 9     # 3 looks at each
    assert _tune_cli(run_cli, scenario_file, tmp_path / "s1", "--seed", "1").exit_code == 0
    assert json.loads((tmp_path / "s1" / "tune.json").read_text())["trials"] != document["trials"]


def test_resume_after_an_interruption_ends_where_the_whole_search_ends(run_cli, scenario_file,
                                                                      tmp_path):
    assert _tune_cli(run_cli, scenario_file, tmp_path / "whole").exit_code == 0
    cut = tmp_path / "cut"
    assert _tune_cli(run_cli, scenario_file, cut).exit_code == 0
    lines = (cut / "trials.jsonl").read_text().splitlines(keepends=True)
    (cut / "trials.jsonl").write_text("".join(lines[:4]) + lines[4][:20])    # torn 5th line
    (cut / "tune.json").unlink()
    result = _tune_cli(run_cli, scenario_file, cut, "--resume")
    assert result.exit_code == 0, result.output
    assert "4 trials resumed" in result.output
    assert (cut / "tune.json").read_bytes() == (tmp_path / "whole" / "tune.json").read_bytes()
    line = one_error_line(_tune_cli(run_cli, scenario_file, cut))
    assert "not empty" in line and "--resume" in line
    changed = run_cli("tune", scenario_file, "--variant", "hierarchical H=2 Hb=2", "--space",
                      "H=1..12", "--budget", "9", "-q", "-o", cut, "--resume")
    assert "another search" in one_error_line(changed)


def test_bad_choices_of_variant_objective_and_baseline(run_cli, scenario_file, tmp_path):
    out = tmp_path / "o"
    assert "2 variants" in one_error_line(run_cli("tune", scenario_file, "--space", "H=1..4",
                                                  "-o", out))
    assert "unknown objective" in one_error_line(run_cli(
        "tune", scenario_file, "--space", "Hb=1..4", "--objective", "speed", "-o", out))
    assert "no variant 'local H=3'" in one_error_line(run_cli(
        "tune", scenario_file, "--space", "H=1..4", "--variant", "local H=3", "-o", out))
    assert "BASELINE" in one_error_line(run_cli(
        "tune", scenario_file, "--space", "Hb=1..4", "--baseline", "postlocal",
        "--constraint", "final_test_accuracy>=BASELINE", "-o", out))


# --------------------------------------------------------------------------- figures
def test_search_figures_from_a_finished_search(run_cli, scenario_file, tmp_path):
    assert _tune_cli(run_cli, scenario_file, tmp_path / "s").exit_code == 0
    document = search_plots.load_search(tmp_path / "s")
    tune = search_plots.series_for("tune", document)
    assert tune["numbers"] == list(range(9))
    feasible = [v for v, s in zip(tune["values"], tune["states"]) if s == "complete"]
    assert tune["best_so_far"][-1] == min(feasible)
    pareto = search_plots.series_for("pareto", document)
    assert {p["number"] for p in pareto["points"] if p["front"]} == \
        {t["number"] for t in document["pareto"]}
    for kind in ("tune", "pareto"):
        result = run_cli("plot", tmp_path / "s", "--kind", kind, "-o", tmp_path / f"{kind}.png")
        assert result.exit_code == 0, result.output
        assert (tmp_path / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
    assert "no tune.json" in one_error_line(run_cli("plot", tmp_path, "--kind", "tune", "-o",
                                                    tmp_path / "x.png"))


class _SyntheticExecutor:
    """Answers run_task's tasks from a formula instead of training: a run at H averages
    every H steps, each step costs 1 + 4/H ms, and it reaches the target after 12 + 2H
    steps. Time-to-accuracy is then minimal at H = 2 (12 + 4 steps x 3 ms = 48 ms)."""

    def __init__(self):
        self.tasks = []

    def submit(self, fn, task):
        from concurrent.futures import Future

        self.tasks.append(task)
        H = task["data"]["variants"][0]["H"]
        steps = task["stop_after"] or 27
        step_s = (1 + 4 / H) * 1e-3
        need = 12 + 2 * H
        record = {"label": task["variant"], "status": "ok", "diverged": False,
                  "simulated_time_s": steps * step_s, "final_test_accuracy": 0.9,
                  "time_to_accuracy_s": need * step_s if steps >= need else None,
                  "comm_bytes": {"inter_block": 1e6 / H}}
        future = Future()
        future.set_result({"id": task["id"], "status": "ok", "error": None, "record": record})
        return future


def test_pruning_stops_only_trials_that_cannot_win(scenario_file, tmp_path):
    plan = load_tune(scenario_file, space=["H=1..24"], variant="local H=2", budget=12,
                     batch=3, rungs=3)
    executor = _SyntheticExecutor()
    outcome = run_tune(plan, executor, directory=str(tmp_path / "out"))
    pruned = [t for t in outcome.trials if t["state"] == "pruned"]
    assert pruned, "the formula makes large H slow enough to prune"
    for trial in pruned:
        H = trial["values"]["variants[0].H"]
        full = (12 + 2 * H) * (1 + 4 / H) * 1e-3                 # what the full run would give
        earlier = [t["value"] for t in outcome.trials[:trial["number"] // 3 * 3]
                   if t["state"] == "complete" and t["feasible"]]
        assert earlier and trial["value"] >= min(earlier)        # its prefix was no better...
        assert full >= trial["value"] and full >= min(earlier)   # ...and nor is the full run
        assert trial["rungs"][-1]["steps"] < 27
    assert all(t["stop_after"] in (3, 9, None) for t in executor.tasks)
