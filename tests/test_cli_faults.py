"""Faults through the command line: byte-identical files, seeds, and bad input as one line."""

import json

import pytest
import yaml

from helpers import one_error_line
from simulator.utils.shipped import shipped_files

BASE = yaml.safe_load(shipped_files("scenarios")["default"].read_text(encoding="utf-8"))


def scenario_text(faults=None, **changes):
    data = dict(BASE, **changes)
    if faults is not None:
        data["faults"] = faults
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture
def run_file(tmp_path, run_cli):
    """Run ``sgdsim run scenario.yaml -q -o out.json ARGS`` on `text`; return (result, bytes)."""
    def run(text, *args):
        scenario = tmp_path / "scenario.yaml"           # the same path each time: same source
        scenario.write_text(text, encoding="utf-8")
        out = tmp_path / "out.json"
        if out.exists():
            out.unlink()
        result = run_cli("run", scenario, "-q", "-o", out, "--steps", 30, *args)
        assert result.exit_code == 0, result.output
        return result, out.read_bytes()
    return run


def test_a_failure_after_the_last_step_changes_nothing_byte_for_byte(run_file):
    """Faults that come after the run (a time past its end, a step past its last) leave the
    results file exactly as a faults section with nothing in it; and every record, its
    faults block aside, is the fault-free record."""
    late = {"policy": "elastic", "rejoin_delay": "1 s",
            "events": [{"gpu": "gpu0_1", "time": "1 h"}, {"block": "block5", "step": 31},
                       {"gpu": "gpu3_0", "step": 1000, "kind": "preempt"}]}
    _, with_late = run_file(scenario_text(late))
    _, with_none = run_file(scenario_text({"policy": "elastic", "rejoin_delay": "1 s"}))
    assert with_late == with_none
    _, free = run_file(scenario_text())
    faulty = json.loads(with_late)
    for run in faulty["runs"]:
        block = run.pop("faults")
        assert (block["failures"], block["events"], block["workers"]) == (0, [], [[0.0, 16]])
    assert json.dumps(faulty, sort_keys=True) == json.dumps(json.loads(free), sort_keys=True)


def test_same_seed_same_faults_same_file_another_seed_other_faults(run_file):
    random = {"policy": "elastic", "rejoin_delay": "5 ms",
              "random": {"gpu_mtbf": "400 ms", "block_mtbf": "2 s"},
              "stragglers": {"probability": 0.05, "slowdown": 3, "duration_steps": 2}}
    text = scenario_text(random)
    result, first = run_file(text)
    _, again = run_file(text)
    assert first == again
    events = [r["faults"]["events"] for r in json.loads(first)["runs"]]
    assert all(events) and json.loads(first)["runs"][0]["faults"]["straggler_episodes"] > 0
    _, other = run_file(text, "--seed", 1)
    assert [r["faults"]["events"] for r in json.loads(other)["runs"]] != events
    assert "goodput" in result.stdout and "GPUs mean/min" in result.stdout


def test_restart_vs_elastic_in_one_table(run_file):
    faults = {"policy": "restart", "restart_delay": "20 ms", "rejoin_delay": "20 ms",
              "checkpoint": {"every": 5, "write_time": "1 ms"},
              "events": [{"block": "block3", "step": "40%", "kind": "preempt"}]}
    variants = [{"algorithm": "local", "H": 4}, {"algorithm": "local", "H": 4,
                                                 "fault_policy": "elastic"}]
    result, out = run_file(scenario_text(faults, variants=variants))
    restart, elastic = json.loads(out)["runs"]
    assert (restart["label"], elastic["label"]) == ("local H=4", "local H=4 elastic")
    # preempted as step 12 (40 % of 30) begins: step 11, done after the checkpoint of step 10,
    # is redone
    assert restart["faults"]["restarts"] == 1 and restart["faults"]["redone_steps"] == 1
    assert elastic["faults"]["restarts"] == 0 and elastic["faults"]["min_workers"] == 14
    assert [e["step"] for e in restart["faults"]["events"]] == [12, 11]   # fail, restart
    assert restart["faults"]["events"][0]["what"] == "block preempt"


@pytest.mark.parametrize("faults, field, message, fix", [
    ({"events": [{"gpu": "nvlink3", "time": "1 s"}]}, "faults.events[0].gpu",
     "no GPU 'nvlink3' in the topology", "name one of its GPUs: gpu0_0, gpu0_1"),
    ({"events": [{"gpu": "GPU1_0", "time": "1 s"}]}, "faults.events[0].gpu",
     "no GPU 'GPU1_0' in the topology", "did you mean 'gpu1_0'?"),
    ({"events": [{"link": ["sw1", "sw2"], "time": "1 s"}]}, "faults.events[0].link",
     "no link between 'sw1' and 'sw2' in the topology", "'sw1' is linked to"),
    ({"events": [{"link": ["sw1", "coer"], "time": "1 s"}]}, "faults.events[0].link",
     "no node 'coer' in the topology", "did you mean 'core'?"),
    ({"events": [{"block": "block1", "time": "-5 s"}]}, "faults.events[0].time",
     "must not be negative, got '-5 s'", "write a time of 0 s or more"),
    ({"restart_delay": "-1 min"}, "faults.restart_delay", "must not be negative", "0 s or more"),
    ({"random": {"gpu_mtbf": "0 h"}}, "faults.random.gpu_mtbf", "must be positive, got '0 h'",
     "longer than zero"),
    ({"random": {"gpu_mtbf": 5000}}, "faults.random.gpu_mtbf", "missing unit: 5000 is a bare "
     "number", "with its unit"),
    ({"policy": "elastc"}, "faults.policy", "'elastc' is not one of", "did you mean 'elastic'?"),
    ({"events": [{"gpu": "gpu0_0"}]}, "faults.events[0]", "has no time or step", "give one"),
    ({"events": [{"gpu": "gpu0_0", "block": "block1", "step": 3}]}, "faults.events[0].block",
     "names gpu and block", "exactly one of gpu, block, link or switch"),
    ({"events": [{"gpu": "gpu0_0", "step": "0%"}]}, "faults.events[0].step",
     "a share of the run's steps must be in (0%, 100%]", "'40%'"),
    ({"events": [{"link": ["sw1", "core"], "time": "1 s", "kind": "preempt"}]},
     "faults.events[0].kind", "kind applies to a gpu or a block, not a link", "down_for"),
    ({"events": [{"switch": "leaf", "time": "1 s"}]}, "faults.events[0].switch",
     "no switch 'leaf' in the topology", "name one of its switches: core, sw0, sw1, sw2, ..."),
    ({"events": [{"switch": "gpu0_0", "time": "1 s"}]}, "faults.events[0].switch",
     "no switch 'gpu0_0' in the topology", None),
    ({"events": [{"link": ["sw1", "core"], "time": "1 s", "down_for": "-2 s"}]},
     "faults.events[0].down_for", "must not be negative, got '-2 s'", "0 s or more"),
    ({"random": {"link_mtbf": "0 h"}}, "faults.random.link_mtbf", "must be positive",
     "longer than zero"),
    ({"stragglers": {"probability": 1.5, "slowdown": 2}}, "faults.stragglers.probability",
     "must be a probability in [0, 1]", None),
])
def test_bad_faults_are_one_line_and_exit_2(tmp_path, run_cli, faults, field, message, fix):
    # the default's cluster, written as a file: sw0..sw7 and core are its switches
    path = tmp_path / "bad.yaml"
    path.write_text(scenario_text(faults, topology="seed_8x2"), encoding="utf-8")
    line = one_error_line(run_cli("run", path, "-q"))
    assert line.startswith(f"error: {path}:") and f": {field}: {message}" in line, line
    if fix:
        assert fix in line, line


def test_a_fault_policy_without_faults_is_an_error(tmp_path, run_cli):
    path = tmp_path / "bad.yaml"
    path.write_text(scenario_text(variants=[{"algorithm": "local", "H": 2,
                                             "fault_policy": "elastic"}]), encoding="utf-8")
    line = one_error_line(run_cli("run", path, "-q"))
    assert "variants[0].fault_policy: fault_policy applies to the faults of the scenario, " \
           "and it has none" in line


@pytest.mark.parametrize("variant, message, fix", [
    ({"algorithm": "gossip", "H": 8}, "faults are not modelled for gossip",
     "or use minibatch, local, postlocal, hierarchical, diloco, slowmo or qsr"),
    ({"algorithm": "adacomm", "H": 8}, "faults are not modelled for adacomm", None),
    ({"algorithm": "minibatch", "overlap": "ddp"}, "DDP overlap is not modelled under faults",
     "use overlap: none"),
    ({"algorithm": "diloco", "H": 8, "fault_policy": "elastic"},
     "elastic training is modelled for SGD workers without an outer optimizer, not diloco",
     "use fault_policy: restart"),
    ({"algorithm": "local", "H": 4, "fault_policy": "elastic",
      "optimizer": {"name": "adamw", "lr": 0.001}},
     "elastic training is modelled for SGD workers without an outer optimizer, not adamw",
     "use fault_policy: restart"),
])
def test_schedules_faults_do_not_model_are_refused_in_one_line(tmp_path, run_cli, variant,
                                                              message, fix):
    path = tmp_path / "bad.yaml"
    faults = {"events": [{"block": "block1", "step": 5}]}
    path.write_text(scenario_text(faults, variants=[variant]), encoding="utf-8")
    line = one_error_line(run_cli("run", path, "-q"))
    assert line.startswith(f"error: {path}:") and f": faults: variant '" in line, line
    assert message in line, line
    if fix:
        assert fix in line, line


def test_a_restarted_diloco_run_learns_what_it_learns_without_faults(run_file):
    """restart: the learning is the fault-free learning whatever the optimizer; only the
    clock moves (a failure at step 10, no checkpoints: restart from step 1)."""
    variants = [{"algorithm": "diloco", "H": 5}]
    free = json.loads(run_file(scenario_text(variants=variants))[1])["runs"][0]
    faults = {"restart_delay": "1 s", "events": [{"gpu": "gpu1_0", "step": 10}]}
    hit = json.loads(run_file(scenario_text(faults, variants=variants))[1])["runs"][0]
    assert hit["faults"]["restarts"] == 1 and hit["faults"]["redone_steps"] == 9
    assert [c[1:] for c in hit["curve"]] == [c[1:] for c in free["curve"]]
    assert hit["simulated_time_s"] > free["simulated_time_s"] + 1.0
