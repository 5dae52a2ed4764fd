"""`sgdsim plot`: the data series of each kind (not pixels), files by extension, bad input."""

import json

import pytest
from helpers import one_error_line

from simulator.experiments.runner import run_scenario
from simulator.experiments.scenario import scenario_from_data
from simulator.outputs.plots import draw, load_runs, series_for
from simulator.outputs.report import write_results
from simulator.utils.errors import InputError

TINY = {
    "name": "tiny",
    "topology": {"name": "t2x2", "blocks": 2, "gpus_per_block": 2,
                 "gpu": {"peak_flops": "10 TFLOP/s", "efficiency": 0.5},
                 "intra_block": {"bandwidth": "25 GB/s", "latency": "1 us"},
                 "inter_block": {"bandwidth": "10 Gbit/s", "latency": "5 us"}},
    "workload": {"dataset": "digits", "model": "mlp", "hidden": [16], "batch_size": 16},
    "variants": [{"algorithm": "minibatch"}, {"algorithm": "hierarchical", "H": 1, "Hb": 2}],
    "target_accuracy": 0.5,
    "steps": 8,
    "seed": 0,
    "timing": {"cost_profile": "resnet20-cifar10"},
}

MAGIC = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}


def record(algorithm, workers, time_s, *, params=None, diverged=False, label=None, seed=0):
    """A hand-written results record with what the plots read."""
    return {"label": label or algorithm, "algorithm": algorithm, "params": params or {},
            "workers": workers, "seed": seed, "target_accuracy": 0.9,
            "time_to_accuracy_s": time_s, "diverged": diverged,
            "final_test_accuracy": 0.95, "simulated_time_s": 10.0, "steps": 10,
            "compute_time_s": 6.0, "comm_time_s": 3.0, "wait_time_s": 1.0,
            "comm_bytes": {"intra_block": 2e9, "inter_block": 5e8}, "syncs": {"block": 0, "global": 5},
            "curve": [[1.0, 1, 0.5, 1.0], [2.0, 2, None, 0.9], [3.0, 3, 0.95, 0.5]]}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results file of real runs (2x2 GPUs, 8 steps, minibatch and hierarchical)."""
    spec = scenario_from_data(TINY, file="tiny.yaml")
    path = tmp_path_factory.mktemp("results") / "results.json"
    write_results(path, {"runs": run_scenario(spec)})
    return path


def write_sweep(directory, rows, paths, *, torn=False):
    """A sweep directory as simulator/experiments/sweep.py writes it: sweep.json and runs.jsonl."""
    directory.mkdir()
    (directory / "sweep.json").write_text(json.dumps({"paths": paths}))
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    (directory / "runs.jsonl").write_text(text + ('{"id": "half", "rec' if torn else ""))
    return directory


def sweep_row(i, values, rec, status=None):
    return {"id": f"run{i}", "point": i, "values": values, "variant": "hierarchical",
            "status": status or ("failed" if rec is None else "diverged" if rec["diverged"] else "ok"),
            "error": "ValueError: boom" if rec is None else None, "record": rec}


# --------------------------------------------------------------------------- speedup
def test_speedup_is_relative_to_each_lines_fewest_gpus_with_the_misses_flagged():
    runs = [record("minibatch", 2, 8.0), record("minibatch", 4, 5.0), record("minibatch", 8, None),
            record("local", 2, 6.0, params={"H": 4}), record("local", 4, 2.0, params={"H": 4}),
            record("local", 8, None, params={"H": 4}, diverged=True)]
    series = series_for("speedup", runs)
    assert series["xlabel"] == "GPUs (workers)" and "speedup" in series["ylabel"]
    mini, local = series["lines"]
    assert mini["label"] == "minibatch" and local["label"] == "local H=4"
    assert (mini["x"], mini["y"]) == ([2, 4], [1.0, 8.0 / 5.0])
    assert (local["x"], local["y"]) == ([2, 4], [1.0, 3.0])
    assert mini["baseline_workers"] == local["baseline_workers"] == 2
    assert mini["missing"] == [{"x": 8, "reason": "not reached"}]
    assert local["missing"] == [{"x": 8, "reason": "diverged"}]
    assert series["ideal"] == [{"baseline_workers": 2, "x": [2, 4, 8], "y": [1.0, 2.0, 4.0]}]


def test_speedup_prefers_one_gpu_and_averages_seeds_and_skips_an_unreached_baseline():
    runs = [record("local", 1, 12.0, params={"H": 2}), record("local", 4, 4.0, params={"H": 2}),
            record("local", 4, 2.0, params={"H": 2}, seed=1),                 # mean 3.0
            record("minibatch", 2, None), record("minibatch", 4, 9.0), record("minibatch", 8, 3.0)]
    local, mini = series_for("speedup", runs)["lines"]
    assert (local["baseline_workers"], local["x"], local["y"], local["runs"]) == (1, [1, 4], [1.0, 4.0], [1, 2])
    # minibatch never reached the target on 2 GPUs: its baseline is 4 GPUs, and 2 is flagged
    assert (mini["baseline_workers"], mini["x"], mini["y"]) == (4, [4, 8], [1.0, 3.0])
    assert mini["missing"] == [{"x": 2, "reason": "not reached"}]
    ideals = series_for("speedup", runs)["ideal"]
    assert [i["baseline_workers"] for i in ideals] == [1, 4]
    assert ideals[1] == {"baseline_workers": 4, "x": [4, 8], "y": [1.0, 2.0]}


def test_speedup_splits_lines_by_other_swept_paths(tmp_path):
    rows, i = [], 0
    for bandwidth in ("10 Gbit/s", "100 Gbit/s"):
        for blocks in (2, 4):
            i += 1
            time_s = (8.0 if bandwidth.startswith("10 ") else 4.0) / blocks
            rows.append(sweep_row(i, {"topology.blocks": blocks, "topology.inter_block.bandwidth": bandwidth},
                                  record("local", 2 * blocks, time_s, params={"H": 2})))
    sweep = write_sweep(tmp_path / "s", rows, ["topology.inter_block.bandwidth", "topology.blocks"])
    lines = series_for("speedup", load_runs(sweep))["lines"]
    assert [line["label"] for line in lines] == [
        "local H=2 (topology.inter_block.bandwidth=10 Gbit/s)",
        "local H=2 (topology.inter_block.bandwidth=100 Gbit/s)"]
    assert all(line["x"] == [4, 8] and line["y"] == [1.0, 2.0] for line in lines)


def test_speedup_of_one_cluster_size_is_an_error(results, run_cli, tmp_path):
    line = one_error_line(run_cli("plot", results, "--kind", "speedup", "-o", tmp_path / "s.png"))
    assert "two or more numbers of GPUs" in line and "scaling_study" in line


# --------------------------------------------------------------------------- accuracy, comm
def test_accuracy_series_follow_the_curves(results):
    runs = load_runs(results)["runs"]
    series = series_for("accuracy", load_runs(results))
    assert series["target_accuracy"] == 0.5
    assert [line["label"] for line in series["lines"]] == ["minibatch", "hierarchical H=1 Hb=2"]
    for line, entry in zip(series["lines"], runs):
        curve = entry["record"]["curve"]
        assert line["x"] == [p[0] for p in curve if p[2] is not None]
        assert line["y"] == [p[2] for p in curve if p[2] is not None]
        assert line["diverged"] is False
        if entry["record"]["time_to_accuracy_s"] is None:
            assert line["reached"] is None
        else:
            assert line["reached"][0] == entry["record"]["time_to_accuracy_s"]
            assert line["reached"][1] >= 0.5


def test_accuracy_marks_diverged_runs_and_skips_missing_evaluations():
    runs = [record("local", 4, 3.0, params={"H": 2}),
            record("local", 4, None, params={"H": 8}, diverged=True, label="local H=8")]
    ok, bad = series_for("accuracy", runs)["lines"]
    assert ok["x"] == [1.0, 3.0] and ok["y"] == [0.5, 0.95] and ok["reached"] == [3.0, 0.95]
    assert bad["diverged"] is True and bad["reached"] is None and bad["last"] == [3.0, 0.95]


def test_comm_series_are_the_records_times_and_bytes(results):
    records = [e["record"] for e in load_runs(results)["runs"]]
    series = series_for("comm", records)
    assert series["labels"] == ["minibatch", "hierarchical H=1 Hb=2"]
    assert series["compute_s"] == [r["compute_time_s"] for r in records]
    assert series["comm_s"] == [r["comm_time_s"] for r in records]
    assert series["wait_s"] == [r["wait_time_s"] for r in records]
    assert series["intra_block_bytes"] == [r["comm_bytes"]["intra_block"] for r in records]
    assert series["inter_block_bytes"] == [r["comm_bytes"]["inter_block"] for r in records]
    assert series["inter_block_bytes"][1] < series["inter_block_bytes"][0]   # block syncs stay inside
    for c, m, w, total in zip(series["compute_s"], series["comm_s"], series["wait_s"],
                              series["simulated_time_s"]):
        assert c + m + w == pytest.approx(total, rel=1e-9)                   # equal GPUs, no jitter
    assert "(s)" in series["ylabel"] and "(B)" in series["bytes_label"]


# --------------------------------------------------------------------------- heatmap
@pytest.fixture
def grid_sweep(tmp_path):
    rows, i, expected = [], 0, {}
    for H in (1, 2, 4):
        for Hb in (1, 2):
            i += 1
            if (H, Hb) == (4, 2):
                rec = None                                                   # failed
            elif (H, Hb) == (4, 1):
                rec = record("hierarchical", 4, None, params={"H": H, "Hb": Hb})
            elif (H, Hb) == (2, 2):
                rec = record("hierarchical", 4, None, params={"H": H, "Hb": Hb}, diverged=True)
            else:
                rec = record("hierarchical", 4, 10.0 / (H * Hb), params={"H": H, "Hb": Hb})
            expected[(H, Hb)] = rec
            rows.append(sweep_row(i, {"variants[0].H": H, "variants[0].Hb": Hb}, rec))
    return write_sweep(tmp_path / "grid", rows, ["variants[0].H", "variants[0].Hb"], torn=True), expected


def test_heatmap_cells_match_the_records(grid_sweep):
    sweep, expected = grid_sweep
    loaded = load_runs(sweep)
    assert len(loaded["runs"]) == 6                                          # the torn line is skipped
    series = series_for("heatmap", loaded)
    assert (series["x_path"], series["y_path"]) == ("variants[0].H", "variants[0].Hb")
    assert (series["x_values"], series["y_values"]) == ([1, 2, 4], [1, 2])
    [panel] = series["panels"]
    for i, Hb in enumerate(series["y_values"]):
        for j, H in enumerate(series["x_values"]):
            rec = expected[(H, Hb)]
            cell, status = panel["cells"][i][j], panel["status"][i][j]
            if rec is None:
                assert (cell, status) == (None, "failed")
            elif rec["diverged"]:
                assert (cell, status) == (None, "diverged")
            elif rec["time_to_accuracy_s"] is None:
                assert (cell, status) == (None, "not reached")
            else:
                assert (cell, status) == (rec["time_to_accuracy_s"], "ok")
    assert series["failed"] == ["run6"]


def test_heatmap_axes_can_be_chosen(grid_sweep):
    sweep, _ = grid_sweep
    series = series_for("heatmap", load_runs(sweep), x="variants[0].Hb", y="variants[0].H")
    assert (series["x_values"], series["y_values"]) == ([1, 2], [1, 2, 4])
    assert series["panels"][0]["cells"][0] == [10.0, 5.0]                    # H=1: Hb=1, Hb=2


def test_heatmap_makes_a_panel_per_other_swept_value(tmp_path):
    rows, i = [], 0
    for seed in (0, 1):
        for H in (1, 2):
            for Hb in (1, 2):
                i += 1
                rows.append(sweep_row(i, {"seed": seed, "variants[0].H": H, "variants[0].Hb": Hb},
                                      record("hierarchical", 4, float(seed + H * Hb))))
    sweep = write_sweep(tmp_path / "s", rows, ["seed", "variants[0].H", "variants[0].Hb"])
    series = series_for("heatmap", load_runs(sweep), x="variants[0].H", y="variants[0].Hb")
    assert [p["title"] for p in series["panels"]] == ["seed=0", "seed=1"]
    assert series["panels"][1]["cells"] == [[2.0, 3.0], [3.0, 5.0]]


def test_heatmap_needs_two_swept_paths(results, run_cli, tmp_path):
    line = one_error_line(run_cli("plot", results, "--kind", "heatmap", "-o", tmp_path / "h.png"))
    assert "two different swept paths" in line


def test_heatmap_unknown_axis_is_one_line(grid_sweep, run_cli, tmp_path):
    sweep, _ = grid_sweep
    line = one_error_line(run_cli("plot", sweep, "--kind", "heatmap", "--x", "variants[0].h",
                                  "-o", tmp_path / "h.png"))
    assert "--x" in line and "variants[0].H" in line


# --------------------------------------------------------------------------- tradeoff
def test_tradeoff_puts_each_run_at_its_time_and_outermost_bytes_per_cluster(tmp_path):
    fast = dict(record("local", 16, 2.0, label="local H=8"), tiers=["intra_block", "inter_block"])
    slow = dict(record("minibatch", 16, None, label="minibatch"), status="not_learning")
    nested = dict(record("diloco", 16, 4.0, label="diloco H=8"),
                  comm_bytes={"intra_node": 1e9, "inter_node": 3e8, "inter_rack": 7e7},
                  tiers=["intra_node", "inter_node", "inter_rack"])
    rows = [sweep_row(0, {"topology": "a"}, fast), sweep_row(1, {"topology": "a"}, slow),
            sweep_row(2, {"topology": "b"}, nested)]
    for row, variant in zip(rows, ("local", "minibatch", "diloco")):
        row["variant"] = variant
    rows[1]["status"] = "ok"
    series = series_for("tradeoff", load_runs(write_sweep(tmp_path / "s", rows, ["topology"])))
    a, b = series["panels"]
    assert (a["title"], a["tier"], b["title"], b["tier"]) == \
        ("topology=a", "inter_block", "topology=b", "inter_rack")
    assert a["runs"] == [
        {"label": "local H=8", "time_to_accuracy_s": 2.0, "bytes": 5e8,
         "final_test_accuracy": 0.95, "status": "ok"},
        {"label": "minibatch", "time_to_accuracy_s": None, "bytes": 5e8,
         "final_test_accuracy": 0.95, "status": "not learning"}]
    assert b["runs"][0]["bytes"] == 7e7 and b["runs"][0]["time_to_accuracy_s"] == 4.0
    out = tmp_path / "t.png"
    draw("tradeoff", series, out)
    assert out.read_bytes().startswith(MAGIC[".png"])


# --------------------------------------------------------------------------- files
@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
@pytest.mark.parametrize("kind", ["accuracy", "comm", "tradeoff"])
def test_each_kind_writes_the_format_of_its_extension(results, run_cli, tmp_path, kind, suffix):
    out = tmp_path / f"fig{suffix}"
    result = run_cli("plot", results, "--kind", kind, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(MAGIC[suffix])
    assert str(out) in result.stdout


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_speedup_and_heatmap_files(grid_sweep, tmp_path, suffix):
    sweep, _ = grid_sweep
    out = tmp_path / f"h{suffix}"
    draw("heatmap", series_for("heatmap", load_runs(sweep)), out)
    assert out.read_bytes().startswith(MAGIC[suffix])
    runs = [record("local", k, 8.0 / k, params={"H": 2}) for k in (1, 2, 4, 8)] + \
           [record("local", 16, None, params={"H": 2})]
    out = tmp_path / f"s{suffix}"
    draw("speedup", series_for("speedup", runs), out)
    assert out.read_bytes().startswith(MAGIC[suffix])


def test_results_jsonl_file_is_read_like_its_directory(grid_sweep, run_cli, tmp_path):
    sweep, _ = grid_sweep
    out = tmp_path / "h.png"
    result = run_cli("plot", sweep / "runs.jsonl", "--kind", "heatmap", "-o", out)
    assert result.exit_code == 0, result.output
    assert "1 run(s) failed" in result.stdout and out.exists()


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("content, args, expected", [
    (None, ["--kind", "comm"], "no such file"),
    ("{not json", ["--kind", "comm"], "not a JSON file"),
    ('{"runs": 3}', ["--kind", "comm"], "not a results file"),
    ('[1, 2]', ["--kind", "comm"], "not a results file"),
    ('{"runs": []}', ["--kind", "comm"], "no run with a record"),
    ("VALID", ["--kind", "spedup"], "'spedup' is not one of"),
    ("VALID", ["--kind", "comm", "--x", "seed"], "--x"),
])
def test_bad_input_is_one_line_and_exit_2(results, run_cli, tmp_path, content, args, expected):
    path = tmp_path / "in.json"
    if content == "VALID":
        path = results
    elif content is not None:
        path.write_text(content)
    line = one_error_line(run_cli("plot", path, *args, "-o", tmp_path / "out.png"))
    assert expected in line


def test_bad_extension_and_bad_directory(results, run_cli, tmp_path):
    assert ".gif" in one_error_line(run_cli("plot", results, "--kind", "comm", "-o", tmp_path / "f.gif"))
    assert "no such directory" in one_error_line(run_cli("plot", results, "--kind", "comm", "-o",
                                                         tmp_path / "nowhere" / "f.png"))
    (tmp_path / "empty").mkdir()
    assert "runs.jsonl" in one_error_line(run_cli("plot", tmp_path / "empty", "--kind", "heatmap",
                                                  "-o", tmp_path / "f.png"))


def test_bad_line_inside_runs_jsonl_names_the_line(tmp_path):
    sweep = write_sweep(tmp_path / "s", [sweep_row(1, {"seed": 0}, record("local", 4, 1.0))], ["seed"])
    with open(sweep / "runs.jsonl", "a") as out:
        out.write("garbage\n")
    with pytest.raises(InputError, match=r"runs.jsonl:2: line is not JSON"):
        load_runs(sweep)


def test_series_for_rejects_an_unknown_kind():
    with pytest.raises(InputError, match="unknown kind 'pie'"):
        series_for("pie", [record("local", 4, 1.0)])


# --------------------------------------------------------------------------- with sgdsim sweep
def test_plots_read_a_real_sweep(run_cli, tmp_path):
    from cli import sgdsim

    if "sweep" not in sgdsim.commands:
        pytest.skip("sgdsim sweep is not there yet")
    scenario = dict(TINY, variants=[{"algorithm": "hierarchical", "H": 1, "Hb": 2}],
                    sweep={"grid": {"variants[0].H": [1, 2], "variants[0].Hb": [1, 2]}})
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps(scenario))                                    # JSON is YAML
    out = tmp_path / "out"
    result = run_cli("sweep", path, "-o", out, "--jobs", "1", "-q")
    assert result.exit_code == 0, result.output
    series = series_for("heatmap", load_runs(out))
    assert (series["x_path"], series["y_path"]) == ("variants[0].H", "variants[0].Hb")
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    for row in rows:
        H, Hb = row["values"]["variants[0].H"], row["values"]["variants[0].Hb"]
        cell = series["panels"][0]["cells"][series["y_values"].index(Hb)][series["x_values"].index(H)]
        assert cell == row["record"]["time_to_accuracy_s"]
    result = run_cli("plot", out, "--kind", "heatmap", "-o", tmp_path / "h.png")
    assert result.exit_code == 0, result.output


def test_heatmap_of_one_path_and_several_variants_uses_the_variant_axis(tmp_path):
    rows, i = [], 0
    for bandwidth in ("1 Gbit/s", "10 Gbit/s"):
        for algorithm, time_s in (("minibatch", 9.0), ("local", 3.0)):
            i += 1
            row = sweep_row(i, {"topology.inter_block.bandwidth": bandwidth},
                            record(algorithm, 16, time_s / (1 if bandwidth == "1 Gbit/s" else 2)))
            row["variant"] = algorithm
            rows.append(row)
    sweep = write_sweep(tmp_path / "s", rows, ["topology.inter_block.bandwidth"])
    series = series_for("heatmap", load_runs(sweep))
    assert (series["x_path"], series["y_path"]) == ("topology.inter_block.bandwidth", "variant")
    assert series["x_values"] == ["1 Gbit/s", "10 Gbit/s"]                 # as swept, not sorted
    assert series["y_values"] == ["minibatch", "local"]
    assert series["panels"][0]["cells"] == [[9.0, 4.5], [3.0, 1.5]]


def test_sweep_runs_are_read_in_plan_order(tmp_path):
    rows = [sweep_row(i, {"seed": i}, record("local", 4, float(i), label=f"local seed {i}"))
            for i in (3, 1, 2)]                                              # as they finished
    sweep = write_sweep(tmp_path / "s", rows, ["seed"])
    (sweep / "sweep.json").write_text(json.dumps(
        {"paths": ["seed"], "runs": [{"id": f"run{i}"} for i in (1, 2, 3)]}))
    labels = [line["label"] for line in series_for("accuracy", load_runs(sweep))["lines"]]
    assert labels == ["local seed 1", "local seed 2", "local seed 3"]
