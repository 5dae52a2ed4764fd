"""What a user reads of runs under faults: figure data, sweep summaries, the table."""

import csv
import json

import pytest
import yaml

from simulator.engine.fault_timeline import simulate_fault_timeline
from simulator.engine.faults import FaultEvent, FaultPlan
from simulator.engine.timeline import cluster_gpus, cluster_groupings, compute_times
from simulator.cluster.generators import two_tier
from simulator.learning.schedules import minibatch
from simulator.outputs.fault_plots import resilience_series, workers_series
from simulator.outputs.plots import series_for
from simulator.outputs.report import format_table
from simulator.utils.errors import InputError
from simulator.utils.shipped import shipped_files


def record(label, tta, mtbf, status="ok", goodput=2.0):
    return {"point": {"faults.random.block_mtbf": mtbf, "seed": 0},
            "record": {"label": label, "status": status, "time_to_accuracy_s": tta,
                       "diverged": False, "faults": {"goodput_steps_per_s": goodput}}}


def test_resilience_places_times_by_value_and_marks_what_failed():
    runs = [record("local H=4 restart", 120.0, "20 min", status="failed"),
            record("local H=4 restart", 90.0, "3 h"), record("local H=4 restart", 80.0, "10 h"),
            record("local H=4 elastic", 70.0, "20 min", goodput=3.0),
            record("local H=4 elastic", 65.0, "3 h", goodput=3.5),
            record("local H=4 elastic", None, "10 h")]
    series = resilience_series(runs)
    assert (series["x_path"], series["x_unit"], series["categorical"]) == \
        ("faults.random.block_mtbf", "h", False)
    restart, elastic = series["lines"]
    assert restart["x"] == [3.0, 10.0] and restart["time_to_accuracy_s"] == [90.0, 80.0]
    assert restart["missing"] == [{"x": pytest.approx(1 / 3), "reason": "failed"}]
    assert elastic["goodput_steps_per_s"] == [3.0, 3.5]
    assert elastic["missing"] == [{"x": 10.0, "reason": "not reached"}]


def test_resilience_averages_seeds_and_needs_a_swept_fault_setting():
    runs = [dict(record("m", t, "1 h"), point={"faults.random.gpu_mtbf": "1 h", "seed": s})
            for s, t in ((0, 10.0), (1, 30.0))]
    runs += [dict(record("m", 50.0, "5 h"), point={"faults.random.gpu_mtbf": "5 h", "seed": 0})]
    line = resilience_series(runs)["lines"][0]
    assert line["x"] == [1.0, 5.0] and line["time_to_accuracy_s"] == [20.0, 50.0]
    with pytest.raises(InputError, match="these runs vary in nothing"):
        resilience_series([record("m", 1.0, "1 h")])
    with pytest.raises(InputError, match="is not a swept path"):
        resilience_series(runs, x="faults.policy")


def test_workers_series_ends_at_the_run_end_and_needs_faults():
    rec = {"label": "local", "simulated_time_s": 9.0,
           "faults": {"workers": [[0.0, 16], [2.0, 14], [5.0, 16]], "mean_workers": 15.0,
                      "events": [{"time_s": 2.0, "what": "block preempt"},
                                 {"time_s": 5.0, "what": "join"}]}}
    line = series_for("workers", [rec])["lines"][0]
    assert (line["x"], line["y"]) == ([0.0, 2.0, 5.0, 9.0], [16, 14, 16, 16])
    assert line["events"] == [[2.0, "block preempt"], [5.0, "join"]]
    with pytest.raises(InputError, match="no run in these results was run under faults"):
        workers_series([{"record": {"simulated_time_s": 1.0}}], ["x"])


def test_the_comm_bars_add_up_to_the_simulated_time_under_faults():
    rec = {"label": "r", "workers": 4, "compute_time_s": 1.0, "comm_time_s": 0.5,
           "wait_time_s": 0.25, "comm_bytes": {"intra_block": 0.0, "inter_block": 1.0},
           "simulated_time_s": 3.0, "tiers": ["intra_block", "inter_block"],
           "faults": {"checkpoint_time_s": 0.25, "failure_wait_s": 0.75, "down_time_s": 0.25}}
    series = series_for("comm", [rec])
    parts = [series[k][0] for k in ("compute_s", "comm_s", "wait_s", "checkpoint_s",
                                    "failure_wait_s", "down_s")]
    assert sum(parts) == series["simulated_time_s"][0]


def test_the_table_shows_fault_columns_only_for_runs_under_faults():
    base = {"label": "a", "status": "ok", "time_to_accuracy_s": 1.0, "final_test_accuracy": 0.9,
            "steps": 10, "simulated_time_s": 2.0, "compute_time_s": 1.0, "comm_time_s": 0.5,
            "comm_bytes": {}, "syncs": {}}
    assert "goodput" not in format_table([base])
    faulty = dict(base, label="b", status="failed", status_reason="every GPU had failed",
                  faults={"goodput_steps_per_s": 5.0, "failures": 2, "restarts": 0,
                          "failure_wait_s": 0.1, "lost_gpu_s": 3.0, "mean_workers": 7.5,
                          "min_workers": 6})
    text = format_table([base, faulty])
    assert "5 step/s" in text and "7.5/6" in text
    assert text.splitlines()[2].split()[-1] == "-"              # the run without faults
    assert text.splitlines()[-1] == "b: failed: every GPU had failed"


def test_max_restarts_fails_a_run_that_cannot_restart():
    graph = two_tier(2, 2)
    gpus, _ = cluster_gpus(graph)
    compute_s = compute_times(graph, gpus, 10, flops_per_sample=1e9, batch_size=10)
    events = tuple(FaultEvent("gpu", gpus[0], time_s=0.001 + 0.5 * i) for i in range(5))
    run = simulate_fault_timeline(graph, gpus, cluster_groupings(graph, gpus),
                                  [minibatch()(t) for t in range(1, 11)], compute_s,
                                  message_bytes=1e6, plan=FaultPlan(restart_delay_s=1.0,
                                                                    max_restarts=3,
                                                                    events=events))
    assert run.faults.failed.startswith("the job was hit by 4 failures")
    assert "more than faults.max_restarts (3)" in run.faults.failed
    assert run.steps_completed == 0 and run.faults.restarts == 0   # never got going again


def test_a_sweep_summary_has_the_fault_columns(tmp_path, run_cli):
    data = yaml.safe_load(shipped_files("scenarios")["default"].read_text(encoding="utf-8"))
    data.update(variants=[{"algorithm": "local", "H": 4, "fault_policy": "restart"},
                          {"algorithm": "local", "H": 4, "fault_policy": "elastic"}],
                steps=20, faults={"restart_delay": "10 ms", "rejoin_delay": "10 ms",
                                  "random": {"block_mtbf": "1 s", "block_kind": "preempt"}},
                sweep={"grid": {"faults.random.block_mtbf": ["100 ms", "1 s"]}})
    del data["epochs"]
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = run_cli("sweep", path, "-o", tmp_path / "out", "--jobs", 1, "-q")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open(encoding="utf-8")))
    assert len(rows) == 4 and {r["faults.policy"] for r in rows} == {"restart", "elastic"}
    assert all(r["faults.goodput_steps_per_s"] for r in rows)
    assert int(rows[0]["faults.failures"]) >= int(rows[2]["faults.failures"])
    out = tmp_path / "res.png"
    result = run_cli("plot", tmp_path / "out", "--kind", "resilience", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000
    runs = [json.loads(line) for line in (tmp_path / "out" / "runs.jsonl").open()]
    assert all("faults" in r["record"] for r in runs)
