"""Tiers, statuses and the new curves in the table, plots, traces and sweep summaries."""

import numpy as np
import pytest

from simulator.cluster.generators import two_tier
from simulator.engine.timeline import cluster_gpus, simulate_timeline
from simulator.experiments.runner import run_variant
from simulator.experiments.scenario import load_scenario, scenario_from_data
from simulator.experiments.sweep import plan_sweep
from simulator.experiments.sweep_runner import SweepDir
from simulator.learning.schedules import postlocal
from simulator.outputs.plots import series_for
from simulator.outputs.report import format_table
from simulator.outputs.trace import gpu_spans
from simulator.utils.errors import InputError

LINK = {"bandwidth": "10 GB/s", "latency": "1 us"}
NESTED = {"blocks": 4, "gpus_per_block": 2, "block_level": "node",
          "gpu": {"peak_flops": "10 TFLOP/s", "efficiency": 0.5},
          "intra_block": LINK, "inter_block": LINK,
          "levels": [{"name": "rack", "size": 2, "uplink": LINK}]}
TIERS = ["intra_node", "inter_node", "inter_rack"]


@pytest.fixture(scope="module")
def nested_records():
    s = scenario_from_data({"topology": NESTED, "variants": [
        {"algorithm": "minibatch"},
        {"algorithm": "hierarchical", "periods": {"node": 2, "rack": 4, "global": 8}}],
        "target_accuracy": 0.5, "steps": 16, "optimizer": {"lr": 0.05, "warmup_epochs": 0}})
    return [run_variant(s, v) for v in s.variants]


def test_records_carry_bytes_and_time_on_every_tier(nested_records):
    for record in nested_records:
        assert record["tiers"] == TIERS
        assert list(record["comm_bytes"]) == TIERS == list(record["comm_time_by_tier_s"])
        assert sum(record["comm_time_by_tier_s"].values()) == pytest.approx(record["comm_time_s"])
        assert list(record["syncs"]) == ["node", "rack", "global"]
    hier = nested_records[1]
    assert hier["syncs"] == {"node": 4, "rack": 2, "global": 2}
    assert hier["comm_time_by_tier_s"]["intra_node"] > 0 and hier["comm_time_by_tier_s"]["inter_node"] > 0
    assert nested_records[0]["comm_time_by_tier_s"]["intra_node"] == 0   # global syncs only


def test_the_table_has_a_column_pair_per_tier(nested_records):
    header = format_table(nested_records).splitlines()[0]
    for tier in TIERS:
        assert f"{tier} comm" in header and f"{tier} bytes" in header
    assert "syncs node/rack/glob" in header


def test_the_table_says_why_a_run_did_not_learn():
    records = [{"label": "x", "status": "not_learning", "status_reason": "final test accuracy "
                "0.100 is at chance level (0.103)", "diverged": False, "time_to_accuracy_s": None,
                "final_test_accuracy": 0.1, "steps": 3, "simulated_time_s": 1.0,
                "compute_time_s": 0.5, "comm_time_s": 0.5, "tiers": ["intra_block", "inter_block"],
                "comm_bytes": {"intra_block": 1.0, "inter_block": 2.0},
                "comm_time_by_tier_s": {"intra_block": 0.1, "inter_block": 0.4},
                "syncs": {"block": 0, "global": 3}}]
    lines = format_table(records).splitlines()
    assert "not learning" in lines[2] and "not reached" in lines[2]
    assert lines[-1] == "x: not learning: final test accuracy 0.100 is at chance level (0.103)"


def test_plots_show_tiers_and_the_virtual_average(nested_records):
    comm = series_for("comm", nested_records)
    assert comm["tiers"] == TIERS
    for tier in TIERS:
        assert comm["comm_by_tier_s"][tier] == [r["comm_time_by_tier_s"][tier] for r in nested_records]
        assert comm["bytes_by_tier"][tier] == [r["comm_bytes"][tier] for r in nested_records]
    accuracy = series_for("accuracy", nested_records)
    hier = accuracy["lines"][1]
    assert hier["virtual_x"] == [p[0] for p in nested_records[1]["virtual_average_curve"]]
    assert len(hier["virtual_x"]) > len(hier["x"])          # every step, against global syncs


def test_speedup_and_heatmap_name_runs_that_did_not_learn():
    def record(workers, time_s, status):
        return {"algorithm": "local", "params": {"H": 4}, "workers": workers, "seed": 0,
                "time_to_accuracy_s": time_s, "diverged": status == "diverged",
                "status": status}
    line = series_for("speedup", [record(2, 8.0, "ok"), record(4, 5.0, "ok"),
                                  record(8, None, "not_learning")])["lines"][0]
    assert line["missing"] == [{"x": 8, "reason": "not learning"}]


def test_a_trace_shows_both_syncs_of_a_step_in_order():
    graph = two_tier(2, 2, peak_flops=10e12, efficiency=0.5)
    gpus, blocks = cluster_gpus(graph)
    actions = [postlocal(2, 1, convention="pytorch")(t) for t in range(1, 5)]
    compute_s = np.full((4, 4), 1e-3)
    timeline = simulate_timeline(graph, gpus, blocks, actions, compute_s, message_bytes=1e6)
    spans = [s for s in gpu_spans(gpus, blocks, actions, compute_s, timeline.sync_log)
             if s["gpu"] == 0]
    names = [(s["step"], s["name"]) for s in spans if s["cat"] == "sync"]
    assert names == [(1, "gradient all-reduce"), (2, "block gradient all-reduce"),
                     (2, "global sync"), (3, "block gradient all-reduce"),
                     (4, "block gradient all-reduce"), (4, "global sync")]
    for before, after in zip(spans, spans[1:]):                 # a track is tiled, in order
        assert before["end_s"] == pytest.approx(after["start_s"], abs=1e-15)
    assert spans[-1]["end_s"] == pytest.approx(timeline.simulated_time_s)


def test_a_sweep_summary_has_the_columns_of_its_topologies_tiers(tmp_path):
    data = {"topology": NESTED, "variants": [{"algorithm": "local", "H": 2}],
            "target_accuracy": 0.5, "steps": 4, "sweep": {"grid": {"variants[0].H": [2, 4]}}}
    plan = plan_sweep(data, base_dir=str(tmp_path))
    assert plan.tiers == tuple(TIERS) and plan.levels == ("node", "rack")
    columns = SweepDir(tmp_path, plan, {}, []).columns()
    assert [c for c in columns if c.startswith(("comm_bytes.", "comm_time_by_tier_s.", "syncs."))] \
        == [f"comm_bytes.{t}" for t in TIERS] + [f"comm_time_by_tier_s.{t}" for t in TIERS] \
        + ["syncs.node", "syncs.rack", "syncs.global"]
    assert "status_reason" in columns


def test_h_does_not_apply_to_a_hierarchy_given_by_periods(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("topology: {blocks: 2, gpus_per_block: 2, gpu: {peak_flops: 10 TFLOP/s, "
                    "efficiency: 0.5}, intra_block: {bandwidth: 10 GB/s, latency: 1 us}, "
                    "inter_block: {bandwidth: 10 GB/s, latency: 1 us}}\n"
                    "variants: [{algorithm: hierarchical, periods: {block: 2, global: 4}}]\n"
                    "target_accuracy: 0.5\nsteps: 8\n")
    with pytest.raises(InputError) as err:
        load_scenario(path, {"H": 4})
    assert err.value.field == "-H" and "given by periods" in err.value.message
