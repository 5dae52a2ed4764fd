"""Calibration against nccl-tests output generated from known parameters: the fit recovers
them, held-out errors are what an independent refit predicts, and the command writes a
topology that predicts what the table says."""

import json

import numpy as np
import pytest
from helpers import one_error_line

from simulator.cluster import generators
from simulator.cluster.topology import load_topology
from simulator.cluster.writer import write_topology
from simulator.experiments.calibrate import (
    calibrate,
    calibrated_topology,
    fit,
    observations_of,
)
from simulator.network.collectives import simulate_allreduce
from simulator.network.nccltests import format_nccl_tests
from simulator.network.protocols import collective_model
from simulator.outputs.calibration import calibration_series

TRUTH = {"protocols": {
    "LL": {"base_latency": 5e-6, "intra_block": {"hop_latency": 1.0e-6},
           "inter_block": {"hop_latency": 4e-6}},
    "LL128": {"base_latency": 12e-6, "intra_block": {"hop_latency": 2.5e-6, "efficiency": 0.6},
              "inter_block": {"hop_latency": 6e-6, "efficiency": 0.8}},
    "Simple": {"base_latency": 10e-6, "intra_block": {"hop_latency": 4.0e-6, "efficiency": 0.75},
               "inter_block": {"hop_latency": 18e-6, "efficiency": 0.92}}}}
# 8 B .. 128 KiB by factors of 4, then 256 KiB .. 1 GiB by 2 (where the protocols change)
SIZES = [8 * 4**k for k in range(8)] + [2**k for k in range(18, 31)]


def cluster():
    return generators.dgx(4, intra_bandwidth=300e9)


def generated(tmp_path, truth=TRUTH, noise=0.0, seed=0, nodes=(1, 2, 4)):
    """nccl-tests files of the truth's predictions (times to nccl-tests' printed precision)."""
    graph = cluster()
    graph.graph["collectives"] = truth
    rng = np.random.default_rng(seed)
    paths = []
    for n in nodes:
        members = [f"gpu{b}_{i}" for b in range(n) for i in range(8)]
        rows = []
        for size in SIZES:
            t = simulate_allreduce(graph, size, "auto", members)["time_s"]
            oop, ip = t * np.exp(noise * rng.standard_normal(2))
            rows.append((size, oop, ip))
        path = tmp_path / f"{n}nodes.txt"
        path.write_text(format_nccl_tests(rows, ranks=8 * n, hosts=[f"h{b}" for b in range(n)]))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    paths = generated(tmp_path_factory.mktemp("exact"))
    return calibrate(cluster(), paths, folds=3)


def test_the_fit_recovers_the_parameters_the_data_can_see(recovered):
    model = collective_model(recovered.graph)
    for p, tolerance in (("Simple", 0.01), ("LL128", 0.05)):   # LL128 runs at few sizes
        for tier in ("intra_block", "inter_block"):
            assert model.protocol(p).tier(tier).efficiency == pytest.approx(
                TRUTH["protocols"][p][tier]["efficiency"], rel=tolerance), (p, tier)
    assert model.protocol("Simple").tier("inter_block").hop_latency_s == pytest.approx(18e-6, rel=0.03)
    # One node's ring and a tree over nodes both make 14 hops inside nodes: the data sees
    # the base latency plus 14 intra hops, not the two apart.
    for p in ("LL", "LL128"):
        cost, truth = model.protocol(p), TRUTH["protocols"][p]
        seen = cost.base_latency_s + 14 * cost.tier("intra_block").hop_latency_s
        assert seen == pytest.approx(truth["base_latency"] + 14 * truth["intra_block"]["hop_latency"],
                                     rel=0.01), p
    assert model.protocol("LL").tier("inter_block").hop_latency_s == pytest.approx(4e-6, rel=0.05)


def test_the_fitted_topology_predicts_the_generated_runs(recovered):
    assert recovered.summary["fit_error"]["max"] < 5e-3
    # Held out, a size next to a change of protocol loses some of what pinned that protocol
    # down: a few per cent there, well under 0.5 % elsewhere.
    assert recovered.summary["heldout_error"]["max"] < 0.08
    errors = sorted(abs(r["heldout_error"]) for r in recovered.rows)
    assert errors[-4] < 0.03 and np.median(errors) < 1e-3
    assert {r["nodes"] for r in recovered.rows} == {1, 2, 4}
    assert len(recovered.rows) == 3 * len(SIZES)
    for row in recovered.rows:
        assert row["fitted_busbw_Bps"] == pytest.approx(row["measured_busbw_Bps"] * (1 + row["fit_error"]),
                                                        rel=1e-12)


def test_kfold_holds_out_every_size_once(recovered):
    assert recovered.method == "k-fold (k=3)"
    assert all(r["heldout_busbw_Bps"] is not None for r in recovered.rows)
    assert recovered.summary["heldout_error"]["max"] == max(abs(r["heldout_error"])
                                                            for r in recovered.rows)


def test_held_out_errors_are_what_a_fit_without_them_predicts(tmp_path):
    paths = generated(tmp_path, noise=0.03, seed=4)
    holdout = [8 * 4**6, 2**30]
    result = calibrate(cluster(), paths, holdout=holdout)
    # An independent refit on the other sizes, and the prediction it makes for the held-out ones.
    files = result.files
    training = [o for o in observations_of(files) if o[1] not in holdout]
    again = calibrated_topology(cluster(), fit(cluster(), files, training))
    held = [r for r in result.rows if r["heldout"]]
    assert len(held) == 2 * 3 and {r["size_bytes"] for r in held} == set(holdout)
    for row in held:
        f = next(f for f in files if f.file == row["file"])
        times = [t for s, t in f.run.times() if s == row["size_bytes"]]
        measured = np.mean([row["size_bytes"] / t * 2 * (f.run.ranks - 1) / f.run.ranks
                            for t in times])
        predicted = simulate_allreduce(again, row["size_bytes"], "auto", f.members)["busbw"]
        assert row["measured_busbw_Bps"] == pytest.approx(measured, rel=1e-12)
        assert row["heldout_error"] == pytest.approx(predicted / measured - 1, rel=1e-9, abs=1e-12)
    assert all(r["heldout_error"] is None for r in result.rows if not r["heldout"])
    # 3 % noise on each time: the held-out sizes are predicted to a few per cent.
    assert result.summary["heldout_error"]["max"] < 0.08
    assert result.summary["heldout_error"]["count"] == 6


def test_the_command_writes_a_topology_that_predicts_its_table(tmp_path, run_cli):
    paths = generated(tmp_path, nodes=(1, 2))
    topo = tmp_path / "dgx.yaml"
    write_topology(cluster(), topo)
    out, plot = tmp_path / "calibrated.yaml", tmp_path / "fit.png"
    result = run_cli("calibrate", *paths, "--topology", topo, "-o", out, "--holdout",
                     "32 KiB, 1 GiB", "--plot", plot, "--json")
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    assert table["method"] == "holdout" and plot.stat().st_size > 10_000
    graph = load_topology(out)
    assert graph.graph["collectives"]["protocols"] == table["collectives"]["protocols"]
    members = [f"gpu0_{i}" for i in range(8)]
    for row in table["rows"]:
        if row["nodes"] == 1:
            busbw = simulate_allreduce(graph, row["size_bytes"], "auto", members)["busbw"]
            assert busbw == pytest.approx(row["fitted_busbw_Bps"], rel=1e-9)
    text = run_cli("calibrate", *paths, "--topology", topo, "-o", out, "--folds", "2")
    assert text.exit_code == 0, text.output
    assert "held-out error (k-fold (k=2))" in text.stdout
    assert text.stdout.splitlines()[0] == f"{paths[0]}: 8 GPUs on 1 node(s)"


def test_the_figure_shows_one_series_per_file(recovered):
    series = calibration_series(recovered)
    assert [s["label"] for s in series] == ["8 GPUs, 1 node", "16 GPUs, 2 nodes", "32 GPUs, 4 nodes"]
    assert all(len(s["sizes"]) == len(SIZES) == len(s["measured"]) == len(s["heldout"])
               for s in series)


@pytest.mark.parametrize("args, message", [
    (["--holdout", "3 MiB"], "--holdout: no measured size 3145728 B to hold out"),
    (["-o", "{tmp}/out.txt"], "--output: cannot write a topology as '.txt'"),
    (["-o", "{tmp}/nowhere/out.yaml"], "no such directory"),
    (["--plot", "{tmp}/fit.jpg"], "cannot write a figure as '.jpg'"),
    (["--topology", "seed_8x2"], "the run used 1 node(s) of 8 GPUs, more than the topology has"),
])
def test_bad_calibrations_are_one_line(tmp_path, run_cli, args, message):
    paths = generated(tmp_path, nodes=(1,))
    base = {"--topology": "dgx_a100_4node", "-o": str(tmp_path / "out.yaml")}
    extra = []
    for i in range(0, len(args), 2):
        value = args[i + 1].format(tmp=tmp_path)
        if args[i] in base:
            base[args[i]] = value
        else:
            extra += [args[i], value]
    flat = [x for kv in base.items() for x in kv]
    line = one_error_line(run_cli("calibrate", *paths, *flat, *extra))
    assert message in line, line
    assert not (tmp_path / "out.yaml").exists()
