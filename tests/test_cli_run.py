"""`sgdsim run` end to end: the default, results files, determinism, bad input, divergence."""

import json

import pytest
from click.testing import CliRunner
from helpers import one_error_line

from cli import sgdsim

DESIGN_KEYS = {"algorithm", "params", "workers", "seed", "target_accuracy", "time_to_accuracy_s",
               "final_test_accuracy", "simulated_time_s", "steps", "compute_time_s", "comm_time_s",
               "comm_bytes", "syncs", "curve"}


def run(*args):
    return CliRunner().invoke(sgdsim, ["run", *args])


def test_run_with_no_arguments_compares_the_four_variants():
    result = run("-q")
    assert result.exit_code == 0, result.output
    table = result.stdout
    for label in ("minibatch", "local H=4", "postlocal", "hierarchical"):
        assert label in table
    assert "time-to-acc" in table and "inter bytes" in table


def test_results_file_follows_the_contract_and_is_byte_identical_on_rerun(tmp_path):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    assert run("-q", "--steps", "12", "-o", str(a)).exit_code == 0
    assert run("-q", "--steps", "12", "-o", str(b)).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    doc = json.loads(a.read_text())
    assert len(doc["runs"]) == 4
    for record in doc["runs"]:
        assert DESIGN_KEYS <= set(record)
        assert set(record["comm_bytes"]) == {"intra_block", "inter_block"}
        assert set(record["syncs"]) == {"block", "global"}
        assert record["steps"] == 12 and record["workers"] == 16
        times = [point[0] for point in record["curve"]]      # global syncs only
        assert times == sorted(times) and times[-1] <= record["simulated_time_s"]
        virtual = [point[0] for point in record["virtual_average_curve"]]
        assert virtual == sorted(virtual) and virtual[-1] == record["simulated_time_s"]
        assert record["status"] == "ok" and record["status_reason"] is None
    assert run("-q", "--steps", "12", "--seed", "1", "-o", str(c)).exit_code == 0
    other = json.loads(c.read_text())
    assert [r["curve"] for r in other["runs"]] != [r["curve"] for r in doc["runs"]]


def test_overrides_select_one_variant_and_its_parameters(tmp_path):
    out = tmp_path / "r.json"
    result = run("-q", "--algorithm", "hierarchical", "-H", "3", "--Hb", "2", "--steps", "12",
                 "--global-sync-delay", "1 s", "-o", str(out))
    assert result.exit_code == 0, result.output
    [record] = json.loads(out.read_text())["runs"]
    assert record["algorithm"] == "hierarchical"
    assert record["params"]["H"] == 3 and record["params"]["Hb"] == 2
    assert record["syncs"] == {"block": 2, "global": 2}                 # 12 steps, period 6
    assert record["simulated_time_s"] > 2.0                            # two 1 s delays


@pytest.mark.parametrize("args, expected", [
    (["--algorithm", "locl"], "'locl' is not one of"),
    (["-H", "0"], "-H"),
    (["--target-accuracy", "1.5"], "--target-accuracy"),
    (["missing.yaml"], "missing.yaml"),
    (["--topology", "nowhere.yaml"], "nowhere.yaml"),
    (["--global-sync-delay", "1"], "--global-sync-delay"),
])
def test_bad_options_are_one_line_and_exit_2(args, expected):
    assert expected in one_error_line(run(*args))


def test_bad_scenario_file_names_file_line_and_fix(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntopology: ../topologies/seed_8x2.yaml\nvariants:\n  - {algorithm: locl, H: 2}\n"
                   "target_accuracy: 0.9\nseed: 0\nsteps: 5\n")
    line = one_error_line(run(str(bad)))
    assert str(bad) in line and "local" in line


def test_a_diverging_run_is_reported_as_diverged(tmp_path):
    scenario = tmp_path / "diverge.yaml"
    scenario.write_text(
        "name: diverge\n"
        "topology: {blocks: 2, gpus_per_block: 2, gpu: {peak_flops: 10 TFLOP/s, efficiency: 0.5},\n"
        "           intra_block: {bandwidth: 25 GB/s, latency: 1 us},\n"
        "           inter_block: {bandwidth: 10 Gbit/s, latency: 5 us}}\n"
        "optimizer: {lr: 1000000.0, warmup_epochs: 0}\n"
        "variants: [{algorithm: local, H: 2}]\n"
        "target_accuracy: 0.9\nseed: 0\nsteps: 40\n")
    out = tmp_path / "r.json"
    result = run("-q", str(scenario), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "diverged" in result.stdout
    [record] = json.loads(out.read_text())["runs"]
    assert record["diverged"] is True and record["final_test_accuracy"] is None
    assert record["time_to_accuracy_s"] is None
