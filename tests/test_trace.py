"""Chrome traces of runs (`sgdsim run --trace`): GPU spans, syncs and bytes in flight per tier."""

import json

import networkx as nx
import numpy as np
import pytest
import simpy

from simulator.engine.timeline import cluster_gpus, simulate_timeline
from simulator.experiments.runner import run_variant
from simulator.experiments.scenario import scenario_from_data
from simulator.network.collectives import run_groups
from simulator.network.flows import Network
from simulator.outputs.trace import (
    bytes_in_flight,
    gpu_spans,
    trace_document,
    write_trace,
)

US = 1e6


def scenario(jitter=0.0, algorithm="hierarchical", **params):
    if algorithm == "hierarchical" and not params:
        params = {"H": 1, "Hb": 2}
    variant = {"algorithm": algorithm, **params}
    return scenario_from_data({
        "topology": {"name": "t2x2", "blocks": 2, "gpus_per_block": 2,
                     "gpu": {"peak_flops": "10 TFLOP/s", "efficiency": 0.5},
                     "intra_block": {"bandwidth": "25 GB/s", "latency": "1 us"},
                     "inter_block": {"bandwidth": "10 Gbit/s", "latency": "5 us"}},
        "workload": {"dataset": "digits", "model": "mlp", "hidden": [16], "batch_size": 16},
        "variants": [variant],
        "target_accuracy": 0.5,
        "steps": 6,
        "seed": 0,
        "timing": {"cost_profile": "resnet20-cifar10", "jitter": jitter},
    }, file="t.yaml")


def traced(spec):
    timed = []
    record = run_variant(spec, spec.variants[0], timed=timed)
    [t] = timed
    return record, t, trace_document([(record["label"], t)])


def written(tmp_path, document):
    path = tmp_path / "t.json"
    write_trace(path, document)
    return json.loads(path.read_text())                  # parse the file back


def counter_at(counters, time_s):
    """Counter values in force at `time_s` (the last counter event at or before it)."""
    before = [c for c in counters if c["ts"] <= time_s * US * (1 + 1e-12)]
    return before[-1]["args"] if before else {"intra_block": 0.0, "inter_block": 0.0}


@pytest.fixture(scope="module")
def small():
    return traced(scenario())


def test_tracks_are_one_thread_per_gpu_named_by_gpu(small, tmp_path):
    record, timed, document = small
    doc = written(tmp_path, document)
    assert doc["displayTimeUnit"] == "ms"
    events = doc["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {1: "gpu0_0", 2: "gpu0_1", 3: "gpu1_0", 4: "gpu1_1"}
    [process] = [e for e in events if e["ph"] == "M" and e["name"] == "process_name"]
    assert process["args"]["name"] == record["label"] == "hierarchical H=1 Hb=2"
    assert {e["tid"] for e in events if e["ph"] == "X"} == set(names)
    for e in events:
        assert e["ph"] in {"M", "X", "C"}
        assert isinstance(e["pid"], int) and e["pid"] == 1 and isinstance(e["tid"], int)
        assert isinstance(e["ts"], float) and e["ts"] >= 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], float) and e["dur"] >= 0 and e["cat"] in {"compute", "wait", "sync"}


def test_compute_spans_are_the_compute_times(small):
    record, timed, document = small
    spans = [e for e in document["traceEvents"] if e["ph"] == "X" and e["cat"] == "compute"]
    compute_s = timed["compute_s"]
    for k in range(4):
        mine = [e for e in spans if e["tid"] == k + 1]
        assert len(mine) == record["steps"] == 6
        assert [e["args"]["step"] for e in mine] == [1, 2, 3, 4, 5, 6]
        assert [e["dur"] for e in mine] == pytest.approx((compute_s[k] * US).tolist(), rel=1e-9)


def test_sync_spans_match_the_sync_log(small):
    record, timed, document = small
    sync_log = timed["timeline"].sync_log
    # hierarchical H=1 Hb=2 over 6 steps: block syncs after 1, 3, 5 (one per block), global after 2, 4, 6
    assert sorted((step, kind, group) for step, kind, group, _, _ in sync_log) == sorted(
        [(s, "block", b) for s in (1, 3, 5) for b in (0, 1)] + [(s, "global", -1) for s in (2, 4, 6)])
    spans = [e for e in document["traceEvents"] if e["ph"] == "X" and e["cat"] == "sync"]
    assert len(spans) == 4 * 6                                # every GPU is in a sync after every step
    for step, kind, group, start_s, end_s in sync_log:
        members = [e for e in spans if e["args"]["step"] == step and e["args"]["group"] == group]
        assert len(members) == (4 if group == -1 else 2)
        assert {e["tid"] for e in members} == ({1, 2, 3, 4} if group == -1 else {2 * group + 1, 2 * group + 2})
        for e in members:
            assert e["name"] == ("global sync" if kind == "global" else "block sync")
            assert e["ts"] == pytest.approx(start_s * US, rel=1e-12)
            assert e["ts"] + e["dur"] == pytest.approx(end_s * US, rel=1e-12)
            assert e["args"]["bytes"] == timed["message_bytes"]
    assert record["syncs"] == {"block": 3, "global": 3}


def test_spans_tile_each_gpu_and_end_at_the_simulated_time(small):
    record, timed, document = small
    spans = [e for e in document["traceEvents"] if e["ph"] == "X"]
    for tid in range(1, 5):
        mine = sorted((e for e in spans if e["tid"] == tid), key=lambda e: e["ts"])
        assert mine[0]["ts"] == 0.0
        for a, b in zip(mine, mine[1:]):
            assert a["ts"] + a["dur"] == pytest.approx(b["ts"], rel=1e-12, abs=1e-9)
    end_us = max(e["ts"] + e["dur"] for e in spans)
    assert end_us == pytest.approx(record["simulated_time_s"] * US, rel=1e-12)


def test_counters_are_exact_bytes_in_flight_and_return_to_zero(small):
    record, timed, document = small
    counters = [e for e in document["traceEvents"] if e["ph"] == "C"]
    assert counters and all(e["name"] == "bytes in flight" for e in counters)
    assert [e["ts"] for e in counters] == sorted(e["ts"] for e in counters)
    for e in counters:
        assert set(e["args"]) == {"intra_block", "inter_block"}
        assert min(e["args"].values()) >= 0
    M = timed["message_bytes"]
    for step, kind, group, start_s, end_s in timed["timeline"].sync_log:
        assert counter_at(counters, end_s) == {"intra_block": 0.0, "inter_block": 0.0}
        during = counter_at(counters, start_s)
        # A pipelined ring puts all its transfers in flight at once: each GPU sends
        # 2(p-1)/p M to its successor, counted on every tier the transfer crosses.
        if kind == "global":
            # ring of 4: 4 transfers of 3/2 M, all leave a GPU (intra), 2 cross blocks (inter too)
            assert during == pytest.approx({"intra_block": 6 * M, "inter_block": 3 * M})
        else:
            # both blocks at once (no jitter): 2 rings of 2, each 2 transfers of M, intra only
            assert during == pytest.approx({"intra_block": 4 * M, "inter_block": 0.0})
    assert counters[-1]["args"] == {"intra_block": 0.0, "inter_block": 0.0}


def test_waits_show_and_means_match_the_engine_with_jitter():
    record, timed, document = traced(scenario(jitter=0.3))
    spans = [e for e in document["traceEvents"] if e["ph"] == "X"]
    waits = [e for e in spans if e["cat"] == "wait"]
    assert waits and all(e["dur"] > 0 for e in waits)
    for cat, key in (("compute", "compute_time_s"), ("sync", "comm_time_s"), ("wait", "wait_time_s")):
        mean_s = sum(e["dur"] for e in spans if e["cat"] == cat) / 4 / US
        assert mean_s == pytest.approx(record[key], rel=1e-9, abs=1e-15)
    counters = [e for e in document["traceEvents"] if e["ph"] == "C"]
    assert min(min(e["args"].values()) for e in counters) >= 0
    assert counters[-1]["args"] == {"intra_block": 0.0, "inter_block": 0.0}


def test_gradient_all_reduce_spans_are_named_for_minibatch():
    record, timed, document = traced(scenario(algorithm="minibatch"))
    names = {e["name"] for e in document["traceEvents"] if e["ph"] == "X" and e["cat"] == "sync"}
    assert names == {"gradient all-reduce"}


def test_tracing_leaves_the_record_unchanged(small):
    spec = scenario()
    assert run_variant(spec, spec.variants[0]) == small[0]
    assert "trace" not in small[0]


# --------------------------------------------------------------------------- network recorder
def star():
    g = nx.star_graph(["sw", "g0", "g1", "g2"])
    for u, v in g.edges:
        g.edges[u, v].update(bandwidth=1e9, latency=0.0, tier="intra_block")
    g.graph["collectives"] = {"protocol": "ideal"}
    return g


def test_network_logs_bytes_in_flight_as_a_step_function():
    env = simpy.Environment()
    log = []
    net = Network(env, star(), in_flight_log=log)
    net.send_all([("g0", "g1", 1e6), ("g0", "g2", 1e6)])    # share g0's link: both end at 2 ms
    env.run()
    assert log == [(0.0, 2e6, 0.0), (pytest.approx(0.002), 0.0, 0.0)]
    env = simpy.Environment()
    assert Network(env, star()).in_flight_log is None          # off by default


def test_run_groups_records_and_returns_the_same_cost():
    g = star()
    log = []
    assert run_groups(g, [["g0", "g1", "g2"]], 3e6, in_flight_log=log) == run_groups(g, [["g0", "g1", "g2"]], 3e6)
    # 3 transfers of 2(p-1)/p x 3 MB = 4 MB each, in flight from the start
    assert log[0] == (0.0, 12e6, 0.0) and log[-1][1:] == (0.0, 0.0)


def test_bytes_in_flight_sums_overlapping_series():
    merged = bytes_in_flight([[(0.0, 1.0, 0.0), (2.0, 0.0, 0.0)],
                              [(1.0, 0.5, 0.25), (3.0, 0.0, 0.0)],
                              [(1.0, 0.5, 0.0), (2.0, 0.0, 0.0)]])
    assert merged == [(0.0, 1.0, 0.0), (1.0, 2.0, 0.25), (2.0, 0.5, 0.25), (3.0, 0.0, 0.0)]
    assert bytes_in_flight([]) == []


def test_contended_block_syncs_are_recorded_on_the_shared_network():
    # A line g0 - g1 - g2 - g3 with blocks {g0, g2} and {g1, g3}: both block rings cross g1 -> g2.
    g = nx.path_graph(["g0", "g1", "g2", "g3"])
    for n, block in zip(g, "abab"):
        g.nodes[n].update(kind="gpu", block=block, peak_flops=1e12, efficiency=1.0)
    for e in g.edges:
        g.edges[e].update(bandwidth=1e9, latency=0.0, tier="inter_block")
    g.graph["collectives"] = {"protocol": "ideal"}
    gpus, blocks = cluster_gpus(g)
    compute_s = np.array([[1e-3, 1e-3], [1e-3, 1.5e-3], [1e-3, 1e-3], [1e-3, 1e-3]])
    timeline = simulate_timeline(g, gpus, blocks, ["block", "global"], compute_s,
                                 message_bytes=1e6, record_in_flight=True)
    assert len(timeline.in_flight) == 2                       # the global sync's, the shared network's
    # Both block rings (each 2 transfers of M, pipelined) share g1 -> g2 and g2 -> g1 at half
    # rate: 2 ms instead of 1 ms, with 4 MB in flight throughout; then the global ring of 4
    # (g0, g2, g1, g3: 4 transfers of 3/2 M, two on each direction of g1 - g2) after the
    # slow GPU's 1.5 ms step: 3 ms.
    assert [(s, kind, group) for s, kind, group, _, _ in timeline.sync_log] == \
        [(1, "block", 0), (1, "block", 1), (2, "global", -1)]
    merged = bytes_in_flight(timeline.in_flight)
    assert [t for t, *_ in merged] == pytest.approx([1e-3, 3e-3, 4.5e-3, 7.5e-3], rel=1e-12)
    assert [tuple(v) for _, *v in merged] == [(0.0, 4e6), (0.0, 0.0), (0.0, 6e6), (0.0, 0.0)]
    plain = simulate_timeline(g, gpus, blocks, ["block", "global"], compute_s, message_bytes=1e6)
    assert plain.in_flight is None and plain.sync_log == timeline.sync_log
    spans = gpu_spans(gpus, blocks, ["block", "global"], compute_s, timeline.sync_log)
    assert max(s["end_s"] for s in spans) == timeline.simulated_time_s


def test_cli_run_writes_a_trace(run_cli, tmp_path):
    out = tmp_path / "t.json"
    result = run_cli("run", "--steps", "6", "--trace", out, "-q")
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    processes = [e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"]
    assert processes == ["minibatch", "local H=4", "postlocal H=4 after epoch 1", "hierarchical H=2 Hb=4"]
    threads = [e for e in doc["traceEvents"] if e["name"] == "thread_name"]
    assert len(threads) == 4 * 16
    assert {e["ph"] for e in doc["traceEvents"]} == {"M", "X", "C"}


def test_spans_never_overlap_their_successor_on_a_track():
    record, timed, document = traced(scenario(jitter=0.3))
    for tid in range(1, 5):
        mine = sorted((e for e in document["traceEvents"] if e["ph"] == "X" and e["tid"] == tid),
                      key=lambda e: e["ts"])
        assert all(a["ts"] + a["dur"] <= b["ts"] for a, b in zip(mine, mine[1:]))


def test_trace_into_a_missing_directory_is_one_line(run_cli, tmp_path):
    result = run_cli("run", "--steps", "6", "--algorithm", "local", "-H", "2", "-q",
                     "--trace", tmp_path / "nowhere" / "t.json")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and "no such directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
