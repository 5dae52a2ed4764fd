"""Sweeps: expansion of grid and list, path and value errors, serial / parallel / Dask runs
with identical records, resume after an interruption, failed runs, the output directory."""

import json
import logging
import shutil
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import TINY_TOPOLOGY, one_error_line

from cli import sgdsim
from simulator.experiments import runner
from simulator.experiments.scenario import scenario_from_data
from simulator.experiments.sweep import load_sweep, parse_path, plan_sweep
from simulator.experiments.sweep_runner import SweepDir, local_executor, run_sweep
from simulator.utils.errors import InputError
from simulator.utils.yamlfile import load_yaml

ROOT = Path(__file__).resolve().parent.parent

# 2 blocks x 2 GPUs, digits, 6 steps: a run takes milliseconds. Line numbers count from 1.
BASE = """\
name: tiny
topology:
""" + TINY_TOPOLOGY + """\
variants:
  - {algorithm: minibatch}
  - {algorithm: local, H: 2, label: mine}
target_accuracy: 0.5
steps: 6
eval_every: 3
"""
SWEEP_LINE = BASE.count("\n") + 1           # the line of "sweep:"

GRID = """\
sweep:
  grid:
    variants[1].H: [1, 3]
    topology.inter_block.bandwidth: [1 Gbit/s, 100 Gbit/s]
"""


@pytest.fixture
def scenario(tmp_path):
    """``scenario(sweep_text, base=BASE) -> path`` of a scenario file with that sweep."""
    def write(sweep, base=BASE, name="s.yaml"):
        path = tmp_path / name
        path.write_text(base + sweep, encoding="utf-8")
        return path
    return write


def sweep(*args):
    return CliRunner().invoke(sgdsim, ["sweep", *map(str, args)])


def entries(directory):
    """run id -> that run's runs.jsonl entry, as canonical JSON text."""
    lines = (Path(directory) / "runs.jsonl").read_text().splitlines()
    found = [json.loads(line) for line in lines]
    assert len({e["id"] for e in found}) == len(found), "a run id appears twice"
    return {e["id"]: json.dumps(e, sort_keys=True) for e in found}


# --------------------------------------------------------------------------- expansion
def test_parse_path():
    assert parse_path("variants[0].H") == ("variants", 0, "H")
    assert parse_path("variants[*].H") == ("variants", "*", "H")
    assert parse_path("topology.inter_block.bandwidth") == ("topology", "inter_block",
                                                            "bandwidth")
    with pytest.raises(ValueError):
        parse_path("variants[0]..H")


def test_grid_is_the_product_in_the_order_written(scenario):
    plan = load_sweep(scenario(GRID))
    assert plan.paths == ("variants[1].H", "topology.inter_block.bandwidth")
    assert [p.values for p in plan.points] == [
        {"variants[1].H": 1, "topology.inter_block.bandwidth": "1 Gbit/s"},
        {"variants[1].H": 1, "topology.inter_block.bandwidth": "100 Gbit/s"},
        {"variants[1].H": 3, "topology.inter_block.bandwidth": "1 Gbit/s"},
        {"variants[1].H": 3, "topology.inter_block.bandwidth": "100 Gbit/s"}]
    assert [(r.point, r.variant) for r in plan.runs] == [
        (0, "minibatch"), (0, "local H=1"), (1, "minibatch"), (1, "local H=1"),
        (2, "minibatch"), (2, "local H=3"), (3, "minibatch"), (3, "local H=3")]
    assert len({r.id for r in plan.runs}) == 8
    point = plan.points[3].data
    assert point["topology"]["inter_block"]["bandwidth"] == "100 Gbit/s"
    assert point["variants"][1] == {"algorithm": "local", "H": 3}     # label dropped
    assert "sweep" not in point


def test_every_list_point_is_combined_with_the_whole_grid(scenario):
    plan = load_sweep(scenario("sweep:\n"
                               "  list:\n"
                               "    - {topology.blocks: 1, topology.gpus_per_block: 4}\n"
                               "    - {seed: 3}\n"
                               "  grid:\n"
                               "    variants[1].H: [2, 4]\n"))
    assert plan.paths == ("topology.blocks", "topology.gpus_per_block", "seed",
                          "variants[1].H")
    assert [p.values for p in plan.points] == [
        {"topology.blocks": 1, "topology.gpus_per_block": 4, "variants[1].H": 2},
        {"topology.blocks": 1, "topology.gpus_per_block": 4, "variants[1].H": 4},
        {"seed": 3, "variants[1].H": 2},
        {"seed": 3, "variants[1].H": 4}]
    assert plan.points[1].data["topology"]["gpus_per_block"] == 4
    assert plan.points[2].data["seed"] == 3 and plan.points[2].data["topology"]["blocks"] == 2


def test_star_sets_the_variants_that_take_the_key(scenario):
    base = BASE.replace("  - {algorithm: local, H: 2, label: mine}\n",
                        "  - {algorithm: local, H: 2, label: mine}\n"
                        "  - {algorithm: hierarchical, H: 1, Hb: 2, label: kept}\n")
    # In a flow mapping ({...}) a key with [ or * is quoted; in block style it need not be.
    plan = load_sweep(scenario("sweep:\n  list:\n    - {'variants[*].H': 4, "
                               "'variants[2].label': kept}\n", base=base))
    variants = plan.points[0].data["variants"]
    assert variants == [{"algorithm": "minibatch"}, {"algorithm": "local", "H": 4},
                        {"algorithm": "hierarchical", "H": 4, "Hb": 2, "label": "kept"}]
    assert [r.variant for r in plan.runs] == ["minibatch", "local H=4", "kept"]


def test_a_path_into_a_topology_file_inlines_the_file(scenario, tmp_path):
    topo = tmp_path / "topo.yaml"
    topo.write_text("blocks: 2\ngpus_per_block: 2\ngpu: {peak_flops: 10 TFLOP/s, "
                    "efficiency: 0.5}\nintra_block: {bandwidth: 25 GB/s, latency: 1 us}\n"
                    "inter_block: {bandwidth: 10 Gbit/s, latency: 5 us}\n")
    before = topo.read_text()
    base = BASE.split("topology:")[0] + "topology: topo.yaml\n" + \
        BASE[BASE.index("variants:"):]
    plan = load_sweep(scenario("sweep:\n  grid:\n    topology.inter_block.bandwidth: "
                               "[1 Gbit/s, 2 Gbit/s]\n", base=base))
    data = plan.points[1].data["topology"]
    assert data["inter_block"] == {"bandwidth": "2 Gbit/s", "latency": "5 us"}
    assert data["blocks"] == 2 and topo.read_text() == before
    s = scenario_from_data(plan.points[1].data, base_dir=str(tmp_path))
    assert s.topology.edges["sw0", "core"]["bandwidth"] == 2e9 / 8


def test_run_ids_depend_on_the_run_not_on_its_place(scenario):
    small = load_sweep(scenario("sweep:\n  grid:\n    seed: [1, 2]\n", name="a.yaml"))
    large = load_sweep(scenario("sweep:\n  grid:\n    seed: [0, 1, 2]\n", name="b.yaml"))
    assert {r.id for r in small.runs} < {r.id for r in large.runs}


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("text, line, expected", [
    ("  grid:\n    variants[0].h: [1]\n", 2, "unknown key 'h' in variants[0] (did you mean 'H'?)"),
    ("  grid:\n    topology.inter_block.bandwith: [1 Gbit/s]\n", 2,
     "sweep.grid.topology.inter_block.bandwith: unknown key 'bandwith' in "
     "topology.inter_block (did you mean 'bandwidth'?)"),
    ("  grid:\n    varients[0].H: [1]\n", 2, "did you mean 'variants'?"),
    ("  grid:\n    seed: []\n", 2, "sweep.grid.seed: an axis of the grid is a list of at "
                                   "least one value"),
    ("  grid:\n    seed: 4\n", 2, "sweep.grid.seed: expected a list, got a number 4"),
    ("  grid:\n    variants[1].H:\n      - 2\n      - 0\n", 4,
     "sweep point 1 (variants[1].H=0): variants[1].H: must be an integer >= 1, got 0"),
    ("  grid:\n    topology.inter_block.bandwidth: [10]\n", 2,
     "sweep point 0 (topology.inter_block.bandwidth=10): topology.inter_block.bandwidth: "
     "missing unit"),
    ("  grid:\n    variants[5].H: [2]\n", 2, "variants has 2 items, no [5]"),
    ("  grid:\n    variants[0]..H: [2]\n", 2, "cannot read the path"),
    ("  grid:\n    variants[*].Hb: [2]\n", 2, "Hb applies to hierarchical variants, and this "
                                              "scenario has none"),
    ("  gird:\n    seed: [1]\n", 1, "unknown key 'gird' (did you mean 'grid'?)"),
    ("  list: []\n", 1, "sweep.list: give at least one point"),
    ("  {}\n", 0, "a sweep needs a grid or a list"),
    ("  grid:\n    seed: [1, 1]\n", 2, "sweep point 1 (seed=1) repeats point 0"),
    ("  list:\n    - {seed: 1}\n  grid:\n    seed: [2]\n", 2, "seed is swept by both grid "
                                                          "and list"),
])
def test_bad_sweeps_are_one_line_naming_file_and_line(scenario, text, line, expected):
    path = scenario("sweep:\n" + text)
    with pytest.raises(InputError) as info:
        load_sweep(path)
    assert expected in str(info.value), str(info.value)
    assert str(info.value).startswith(f"{path}:{SWEEP_LINE + line}: ")
    assert one_error_line(sweep(path, "-o", path.parent / "out")) == f"error: {info.value}"
    assert not (path.parent / "out").exists()


def test_a_hierarchical_point_on_unequal_blocks_is_rejected_before_anything_runs(scenario):
    path = scenario("sweep:\n  list:\n    - {variants: [{algorithm: hierarchical, H: 2}]}\n"
                    "    - {topology: {gpu_defaults: {peak_flops: 10 TFLOP/s, efficiency: "
                    "0.5}, link_defaults: {bandwidth: 25 GB/s, latency: 1 us}, "
                    "gpus: [{name: a, block: x}, {name: b, block: x}, {name: c, block: y}], "
                    "switches: [{name: s}], links: [{between: [a, s]}, {between: [b, s]}, "
                    "{between: [c, s]}]}}\n"
                    "  grid:\n    seed: [0]\n",
                    base=BASE.replace("{algorithm: local, H: 2, label: mine}",
                                      "{algorithm: hierarchical, H: 2, Hb: 2}"))
    line = one_error_line(sweep(path, "-o", path.parent / "out"))
    # located at the hierarchical variant, as without a sweep; the point names the topology
    assert f"{path}:10: sweep point 1 (topology=" in line
    assert "unequal numbers of GPUs (x: 2, y: 1)" in line
    assert not (path.parent / "out").exists()


def test_plan_sweep_without_a_sweep_section_says_what_to_add():
    with pytest.raises(InputError, match="no sweep section"):
        plan_sweep({"name": "x"})


def test_sgdsim_run_runs_the_base_scenario_and_notes_the_sweep(scenario, caplog, tmp_path):
    path = scenario(GRID)
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(sgdsim, ["run", str(path), "-o", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert f"note: {path}:{SWEEP_LINE}: this runs the scenario as written and ignores its " \
           "sweep section" in caplog.text
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert [r["label"] for r in runs] == ["minibatch", "mine"]


def test_the_sweep_note_keeps_quiet_with_q_and_never_comes_before_an_error(scenario, tmp_path):
    path = scenario(GRID)
    quiet = CliRunner().invoke(sgdsim, ["run", "-q", str(path), "--steps", "2"])
    assert quiet.exit_code == 0 and "note:" not in quiet.stderr
    bad = scenario(GRID + "sed: 1\n", name="bad.yaml")           # a typo after the sweep
    result = CliRunner().invoke(sgdsim, ["run", str(bad)])
    assert one_error_line(result).startswith("error: ") and "note:" not in result.stderr


# --------------------------------------------------------------------------- running
def test_serial_and_parallel_sweeps_give_identical_records(scenario, tmp_path):
    path = scenario(GRID)
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    first = sweep(path, "-o", serial, "--jobs", "1", "-q")
    assert first.exit_code == 0, first.output
    second = sweep(path, "-o", parallel, "--jobs", "2", "-q")
    assert second.exit_code == 0, second.output
    assert entries(serial) == entries(parallel)
    assert len(entries(serial)) == 8
    for name in ("sweep.json", "runs.jsonl", "summary.csv"):     # every file, byte for byte
        assert (serial / name).read_bytes() == (parallel / name).read_bytes(), name
    assert "8 of 8 runs in" in first.stdout and "local H=3" in first.stdout

    # The same run outside a sweep gives the same record.
    plan = load_sweep(path)
    run = plan.runs[5]                                  # point 2: H = 3, 1 Gbit/s
    scenario_ = scenario_from_data(plan.points[run.point].data, base_dir=str(tmp_path))
    [variant] = [v for v in scenario_.variants if v.label == run.variant]
    alone = json.dumps(runner.run_variant(scenario_, variant), sort_keys=True)
    swept = json.loads(entries(serial)[run.id])["record"]
    assert json.dumps(swept, sort_keys=True) == alone


def test_output_files(scenario, tmp_path):
    out = tmp_path / "out"
    assert sweep(scenario(GRID), "-o", out, "-j", "1", "-q").exit_code == 0
    plan = json.loads((out / "sweep.json").read_text())
    assert plan["paths"] == ["variants[1].H", "topology.inter_block.bandwidth"]
    assert len(plan["points"]) == 4 and len(plan["runs"]) == 8
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0] == ("id,point,variants[1].H,topology.inter_block.bandwidth,variant,status,"
                       "time_to_accuracy_s,steps_to_accuracy,final_test_accuracy,"
                       "simulated_time_s,steps,epochs,compute_time_s,comm_time_s,wait_time_s,"
                       "comm_bytes.intra_block,comm_bytes.inter_block,"
                       "comm_time_by_tier_s.intra_block,comm_time_by_tier_s.inter_block,"
                       "syncs.block,syncs.global,status_reason,error")
    assert [row.split(",")[0] for row in rows[1:]] == [r["id"] for r in plan["runs"]]
    assert all(row.endswith(",-") for row in rows[1:])       # no error: text, not empty
    import pandas as pd
    table = pd.read_csv(out / "summary.csv")
    assert not pd.api.types.is_numeric_dtype(table["error"]) and (table["error"] == "-").all()
    assert table["wait_time_s"].dtype == float and table["epochs"].dtype == float
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r["id"] for r in plan["runs"]]
    entry = json.loads(lines[0])
    assert set(entry) == {"id", "point", "values", "variant", "status", "error", "record"}
    assert entry["status"] == "ok" and entry["record"]["steps"] == 6


def test_an_existing_directory_needs_resume(scenario, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "something").write_text("x")
    line = one_error_line(sweep(scenario(GRID), "-o", out))
    assert "--output: " in line and "--resume" in line


def test_resume_after_an_interruption_runs_each_run_once(scenario, tmp_path):
    path = scenario(GRID)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert sweep(path, "-o", whole, "-j", "1", "-q").exit_code == 0
    reference = entries(whole)
    shutil.copytree(whole, cut)
    lines = (cut / "runs.jsonl").read_text().splitlines(keepends=True)
    (cut / "runs.jsonl").write_text("".join(lines[:3]) + lines[3][:40])   # a torn line
    (cut / "summary.csv").write_text("id,point\n")
    result = sweep(path, "-o", cut, "--resume", "-j", "1", "-q")
    assert result.exit_code == 0, result.output
    assert entries(cut) == reference
    assert (cut / "summary.csv").read_bytes() == (whole / "summary.csv").read_bytes()
    again = sweep(path, "-o", cut, "--resume", "-q")                   # nothing left to run
    assert again.exit_code == 0 and "(0 of them run now" in again.stdout


def test_a_line_that_is_not_a_run_is_an_error(scenario, tmp_path):
    path, out = scenario(GRID), tmp_path / "out"
    assert sweep(path, "-o", out, "-j", "1", "-q").exit_code == 0
    lines = (out / "runs.jsonl").read_text().splitlines(keepends=True)
    (out / "runs.jsonl").write_text(lines[0] + "oops\n" + "".join(lines[1:]))
    line = one_error_line(sweep(path, "-o", out, "--resume"))
    assert f"{out / 'runs.jsonl'}:2: not a run of a sweep" in line


def test_ctrl_c_keeps_the_finished_runs(scenario, tmp_path, monkeypatch):
    path, out = scenario(GRID), tmp_path / "out"
    real, calls = runner.run_variant, []

    def interrupted_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_variant", interrupted_third)
    result = sweep(path, "-o", out, "-j", "1", "-q")
    assert result.exit_code == 130
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: interrupted: 2 of 8 runs finished") and "--resume" in line
    assert len(entries(out)) == 2
    monkeypatch.setattr(runner, "run_variant", real)
    assert sweep(path, "-o", out, "-j", "1", "-q", "--resume").exit_code == 0
    assert len(entries(out)) == 8


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(scenario, tmp_path, monkeypatch):
    path, out = scenario(GRID), tmp_path / "out"
    real = runner.run_variant

    def failing_h3(scenario_, variant, **kwargs):
        if variant.H == 3:
            raise RuntimeError("no luck\nsecond line")
        return real(scenario_, variant, **kwargs)

    monkeypatch.setattr(runner, "run_variant", failing_h3)
    result = sweep(path, "-o", out, "-j", "1", "-q")
    assert result.exit_code == 0, result.output
    found = [json.loads(e) for e in entries(out).values()]
    failed = [e for e in found if e["status"] == "failed"]
    assert len(found) == 8 and len(failed) == 2
    assert {e["error"] for e in failed} == {"RuntimeError: no luck"}
    assert all(e["record"] is None for e in failed)
    assert result.stdout.count("failed: ") == 2
    assert "RuntimeError: no luck" in (out / "summary.csv").read_text()


def test_a_run_failing_in_a_worker_process_is_recorded(scenario, tmp_path):
    # Point 1 reads an .npz file that is there when the plan is checked and gone when its
    # run starts in a worker process: the run fails there, is recorded, and the sweep goes on.
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(40, 3)), y=np.arange(40) % 2,
             x_test=rng.normal(size=(8, 3)), y_test=np.arange(8) % 2)
    path = scenario("sweep:\n  grid:\n    workload.dataset: [digits, 'npz:d.npz']\n",
                    base=BASE.replace("  - {algorithm: minibatch}\n", ""))
    plan = load_sweep(path)
    (tmp_path / "d.npz").unlink()
    directory = SweepDir.open(tmp_path / "out", plan)
    try:
        with local_executor(2) as executor:
            outcome = run_sweep(directory, executor)
    finally:
        directory.close()
    assert (outcome.ran, outcome.failed, outcome.lost) == (2, 1, 0)
    by_point = {json.loads(e)["point"]: json.loads(e) for e in entries(tmp_path / "out").values()}
    assert by_point[0]["status"] == "ok"
    assert by_point[1]["status"] == "failed" and "no such file" in by_point[1]["error"]


def test_a_diverged_run_is_recorded_as_diverged(scenario, tmp_path):
    path = scenario("optimizer: {lr: 1000000.0, warmup_epochs: 0}\n"
                    "sweep:\n  grid:\n    steps: [40]\n")
    assert sweep(path, "-o", tmp_path / "out", "-j", "1", "-q").exit_code == 0
    statuses = {json.loads(e)["status"] for e in entries(tmp_path / "out").values()}
    assert statuses == {"diverged"}


class _BrokenAfter(Executor):
    """Runs `good` calls, then behaves as a pool whose worker was killed."""

    def __init__(self, good):
        self.good = good

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        if self.good > 0:
            self.good -= 1
            future.set_result(fn(*args, **kwargs))
        else:
            future.set_exception(BrokenProcessPool("a worker was killed"))
        return future


def test_a_killed_worker_stops_the_sweep_and_keeps_the_finished_runs(scenario, tmp_path):
    plan = load_sweep(scenario(GRID))
    directory = SweepDir.open(tmp_path / "out", plan)
    outcome = run_sweep(directory, _BrokenAfter(3), window=1)
    directory.close()
    assert (outcome.ran, outcome.interrupted) == (3, False)
    assert outcome.lost == 5 and outcome.lost_error == "BrokenProcessPool: a worker was killed"
    assert len(entries(tmp_path / "out")) == 3


def test_dask_gives_the_same_records(scenario, tmp_path):
    from distributed import LocalCluster

    path = scenario(GRID)
    assert sweep(path, "-o", tmp_path / "local", "-j", "1", "-q").exit_code == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        result = sweep(path, "-o", tmp_path / "dask", "--scheduler",
                       cluster.scheduler_address, "-q")
    assert result.exit_code == 0, result.output
    assert entries(tmp_path / "dask") == entries(tmp_path / "local")


@pytest.mark.parametrize("name, runs", [("scaling_study", 25), ("hierarchical_grid", 16),
                                        ("bandwidth_sweep", 12), ("scaling_mnist1d", 25)])
def test_shipped_sweeps_expand(name, runs):
    plan = load_sweep(ROOT / "scenarios" / f"{name}.yaml")
    assert len(plan.runs) == runs
    data, _ = load_yaml(ROOT / "scenarios" / f"{name}.yaml")
    assert "sweep" in data
