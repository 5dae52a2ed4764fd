"""Traces of runs under faults: every GPU's time tiled by its spans, every fault marked."""

import json

import pytest

from simulator.experiments.runner import run_variant
from simulator.experiments.scenario import scenario_from_data
from simulator.outputs.trace import WORKERS_NAME, trace_document

SCENARIO = {
    "topology": "seed_8x2",
    "workload": {"dataset": "digits", "model": "mlp", "hidden": [16], "batch_size": 32},
    "optimizer": {"lr": 0.02, "warmup_epochs": 2},
    "variants": [{"algorithm": "local", "H": 4},
                 {"algorithm": "hierarchical", "H": 2, "Hb": 2, "fault_policy": "elastic"},
                 {"algorithm": "minibatch", "fault_policy": "elastic"}],
    "target_accuracy": 0.9,
    "steps": 30,
    "timing": {"cost_profile": "resnet20-cifar10", "jitter": 0.1},
    "faults": {"restart_delay": "20 ms", "rejoin_delay": "4 ms", "reconfigure_time": "1 ms",
               "checkpoint": {"every": 5, "write_time": "2 ms"},
               "events": [{"block": "block3", "step": "40%", "kind": "preempt"},
                          {"gpu": "gpu5_1", "time": "40 ms"}]},
}


def mid_sync_time(scenario, variant, after_s):
    """The middle of the first sync of `variant` that starts after `after_s`, in ms."""
    timed = []
    run_variant(scenario, variant, timed=timed)
    start_s, end_s = next((e[3], e[4]) for e in timed[0]["timeline"].sync_log if e[3] > after_s)
    return f"{float(start_s + end_s) / 2 * 1e3!r} ms"


@pytest.fixture(scope="module")
def traced():
    scenario = scenario_from_data(SCENARIO, file="faults.yaml", base_dir=".")
    data = json.loads(json.dumps(SCENARIO))          # gpu6_0 fails inside an all-reduce
    data["faults"]["events"].append({"gpu": "gpu6_0",
                                     "time": mid_sync_time(scenario, scenario.variants[2], 0.025)})
    scenario = scenario_from_data(data, file="faults.yaml", base_dir=".")
    out = []
    for variant in scenario.variants:
        timed = []
        record = run_variant(scenario, variant, timed=timed)
        out.append((record, timed[0]))
    return out


def test_every_gpu_is_accounted_for_from_start_to_end(traced):
    """Per GPU the spans never overlap and leave no gap until the GPU's last span: compute,
    wait, syncs, checkpoints, lost work, restarts and down time tile its time."""
    for record, timed in traced:
        document = trace_document([(record["label"], timed)])
        by_gpu = {}
        for event in document["traceEvents"]:
            if event["ph"] == "X":
                by_gpu.setdefault(event["tid"], []).append((event["ts"], event["ts"] + event["dur"],
                                                            event["name"]))
        assert len(by_gpu) == 16
        for tid, spans in by_gpu.items():
            spans.sort()
            assert spans[0][0] == 0.0
            for (s0, e0, n0), (s1, e1, n1) in zip(spans, spans[1:]):
                assert s1 >= e0 - 1e-6, (record["label"], tid, n0, n1)       # no overlap
                assert s1 - e0 < 1e-6, (record["label"], tid, n0, e0, n1, s1)  # no gap
            assert spans[-1][1] <= record["simulated_time_s"] * 1e6 + 1e-6


def test_every_fault_and_recovery_is_marked(traced):
    for record, timed in traced:
        document = trace_document([(record["label"], timed)])
        marks = [(e["name"], e["ts"]) for e in document["traceEvents"] if e["ph"] == "i"]
        assert marks == [(e["what"], pytest.approx(e["time_s"] * 1e6))
                         for e in record["faults"]["events"]]
        counter = [(e["ts"], e["args"]["gpus"]) for e in document["traceEvents"]
                   if e.get("name") == WORKERS_NAME]
        assert counter == [(pytest.approx(t * 1e6), n) for t, n in record["faults"]["workers"]]
        json.dumps(document, allow_nan=False)
    restart, elastic, _ = traced
    names = {e["name"] for e in trace_document([("r", restart[1])])["traceEvents"]}
    assert {"restart", "lost compute", "checkpoint write", "block preempt"} <= names
    names = {e["name"] for e in trace_document([("e", elastic[1])])["traceEvents"]}
    assert {"down", "join", "reconfigure"} <= names


def test_an_abandoned_sync_is_shown_as_such(traced):
    _, _, (record, timed) = traced                   # mini-batch: a GPU fails mid-all-reduce
    events = trace_document([("m", timed)])["traceEvents"]
    assert record["faults"]["aborted_syncs"] >= 1
    assert any(e["name"] == "gradient all-reduce (abandoned)" and e["cat"] == "fault"
               for e in events)


def test_links_down_are_marked_and_syncs_waiting_for_a_path_tile_the_time():
    data = json.loads(json.dumps(SCENARIO))
    data["variants"] = [{"algorithm": "minibatch"}, {"algorithm": "local", "H": 4}]
    data["faults"] = {"events": [{"link": ["sw3", "core"], "time": "10 ms", "down_for": "20 ms"},
                                 {"switch": "sw5", "step": 20, "down_for": "5 ms"}]}
    scenario = scenario_from_data(data, file="links.yaml", base_dir=".")
    for variant in scenario.variants:
        timed = []
        record = run_variant(scenario, variant, timed=timed)
        assert record["faults"]["link_failures"] == 2 and record["faults"]["partitions"] >= 1
        events = trace_document([(record["label"], timed[0])])["traceEvents"]
        marks = [e["name"] for e in events if e["ph"] == "i"]
        assert marks == [e["what"] for e in record["faults"]["events"]]
        assert {"link down", "link up", "switch down", "switch up", "partition"} <= set(marks)
        assert any(e["name"] == "wait for a path" for e in events if e["ph"] == "X")
        by_gpu = {}
        for event in events:
            if event["ph"] == "X":
                span = (event["ts"], event["ts"] + event["dur"])
                by_gpu.setdefault(event["tid"], []).append(span)
        for spans in by_gpu.values():
            spans.sort()
            assert all(abs(s1 - e0) < 1e-6 for (_, e0), (s1, _) in zip(spans, spans[1:]))
