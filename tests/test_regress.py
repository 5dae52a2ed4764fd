"""`sgdsim regress`: baselines, tolerances, suite changes, reports and exit statuses.

Every test builds a tiny suite in tmp_path (2 x 2 GPUs, digits, 6 steps): one scenario
written inline in the suite, one in its own file with overrides.
"""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import TINY_TOPOLOGY, one_error_line

from simulator.experiments.regress import (
    EXACT,
    Tolerance,
    compare,
    load_suite,
    read_baseline,
    record_metrics,
    update_command,
)

SCENARIO_FILE = """\
name: file-scenario
topology:
""" + TINY_TOPOLOGY + """\
workload: {dataset: digits, batch_size: 16}
optimizer: {lr: 0.05, warmup_epochs: 0}
variants:
  - {algorithm: minibatch}
  - {algorithm: local, H: 2}
target_accuracy: 0.5
epochs: 30
"""

SUITE = """\
baseline: base.json
tolerances:
  final_test_accuracy: {{abs: 0.02}}
scenarios:
  - name: inline-2x2
    scenario:
      topology:
        blocks: 2
        gpus_per_block: 2
        gpu: {{peak_flops: 10 TFLOP/s, efficiency: 0.5}}
        intra_block: {{bandwidth: 25 GB/s, latency: 1 us}}
        inter_block: {{bandwidth: {inter}, latency: 5 us}}
      workload: {{dataset: digits, batch_size: 16}}
      optimizer: {{lr: 0.05, warmup_epochs: 0}}
      variants:
        - {{algorithm: minibatch}}
        - {{algorithm: hierarchical, H: 2, Hb: 2}}
      target_accuracy: 0.5
      steps: 6
      timing: {{cost_profile: resnet20-cifar10}}
  - {{name: file-2x2, scenario: scen.yaml, overrides: {{steps: 6}}}}
{extra}"""

EXTRA_SCENARIO = ("  - {name: extra, scenario: scen.yaml,\n"
                  "     overrides: {steps: 6, algorithm: minibatch}}\n")


@pytest.fixture
def suite(tmp_path):
    """``suite(inter="10 Gbit/s", extra="") -> path`` of the tiny suite (rewritten in place)."""
    (tmp_path / "scen.yaml").write_text(SCENARIO_FILE)

    def write(inter="10 Gbit/s", extra=""):
        path = tmp_path / "suite.yaml"
        path.write_text(SUITE.format(inter=inter, extra=extra))
        return path
    return write


def junit(path):
    root = ET.parse(path).getroot()
    cases = root.findall("./testsuite/testcase")
    failed = [case for case in cases if case.find("failure") is not None]
    assert int(root.get("tests")) == len(cases) and int(root.get("failures")) == len(failed)
    return root, cases, failed


def test_update_then_check_passes_and_the_baseline_is_deterministic(suite, run_cli, tmp_path):
    path = suite()
    result = run_cli("regress", path, "--update", "-q")
    assert result.exit_code == 0, result.output
    baseline = tmp_path / "base.json"
    first = baseline.read_bytes()
    doc = json.loads(first)
    assert sorted(doc["scenarios"]) == ["file-2x2", "inline-2x2"]
    runs = doc["scenarios"]["inline-2x2"]["runs"]
    assert sorted(runs) == ["hierarchical H=2 Hb=2", "minibatch"]
    metrics = runs["minibatch"]
    assert {"simulated_time_s", "comm_bytes.inter_block", "syncs.global", "diverged",
            "time_to_accuracy_s", "timing.message_bytes"} <= set(metrics)
    assert "curve" not in metrics and not any(key.startswith("curve") for key in metrics)

    result = run_cli("regress", path, "--junit", tmp_path / "r.xml",
                     "--markdown", tmp_path / "r.md")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith("PASS: 4 runs in 2 scenarios")
    root, cases, failed = junit(tmp_path / "r.xml")
    assert len(root.findall("testsuite")) == 2 and len(cases) == 4 and not failed
    assert "PASS" in (tmp_path / "r.md").read_text()

    assert run_cli("regress", path, "--update", "-q").exit_code == 0
    assert baseline.read_bytes() == first                        # same results, same bytes


def test_a_slower_link_fails_naming_the_metric_until_updated(suite, run_cli, tmp_path):
    assert run_cli("regress", suite(), "--update", "-q").exit_code == 0
    path = suite(inter="9 Gbit/s")                               # the inter-block link, 10 % slower
    report, summary = tmp_path / "r.xml", tmp_path / "r.md"
    result = run_cli("regress", path, "--junit", report, "--markdown", summary)
    assert result.exit_code == 1, result.output
    lines = result.stdout.strip().splitlines()
    assert any("inline-2x2 / minibatch" in line and "simulated_time_s" in line
               and line.endswith("FAIL") for line in lines)
    assert any("inline-2x2" in line and "inputs" in line and line.endswith("STALE")
               for line in lines)
    assert not any("file-2x2" in line for line in lines[:-1])   # the other scenario: unmoved
    assert lines[-1].startswith("FAIL: 2 of 4 runs differ from the baseline")
    assert f"sgdsim regress {path} --update" in lines[-1]

    root, cases, failed = junit(report)
    assert len(cases) == 4 and len(failed) == 2
    assert {case.get("classname") for case in failed} == {"regress.inline-2x2"}
    for case in failed:
        message = case.find("failure").get("message")
        assert "simulated_time_s" in message and "inputs changed" in message
    markdown = summary.read_text()
    assert "FAIL" in markdown and "`simulated_time_s`" in markdown

    assert run_cli("regress", suite(), "-q").exit_code == 0      # back as it was: passes
    assert run_cli("regress", path, "--update", "-q").exit_code == 0
    assert run_cli("regress", path, "-q").exit_code == 0         # the new link, accepted


def test_update_prints_what_changed_before_writing(suite, run_cli, tmp_path):
    assert run_cli("regress", suite(), "--update", "-q").exit_code == 0
    result = run_cli("regress", suite(inter="9 Gbit/s"), "--update", "-q")
    assert result.exit_code == 0, result.output
    assert "simulated_time_s" in result.stdout and "changes from the old baseline" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith(f"wrote {tmp_path / 'base.json'}")


def test_missing_baseline_is_exit_2_with_the_command_that_creates_it(suite, run_cli, tmp_path):
    path = suite()
    line = one_error_line(run_cli("regress", path))
    assert "base.json" in line and f"sgdsim regress {path} --update" in line
    line = one_error_line(run_cli("regress", path, "--baseline", tmp_path / "other.json"))
    assert f"sgdsim regress {path} --baseline {tmp_path / 'other.json'} --update" in line


def test_baseline_of_another_format_version_is_exit_2(suite, run_cli, tmp_path):
    path = suite()
    assert run_cli("regress", path, "--update", "-q").exit_code == 0
    baseline = tmp_path / "base.json"
    doc = json.loads(baseline.read_text())
    doc["format_version"] = 0
    baseline.write_text(json.dumps(doc))
    line = one_error_line(run_cli("regress", path, "-q"))
    assert "format version 0" in line and "--update" in line


def test_suite_changes_are_reported_and_fail_until_updated(suite, run_cli, tmp_path):
    assert run_cli("regress", suite(), "--update", "-q").exit_code == 0
    added = suite(extra=EXTRA_SCENARIO)
    report = tmp_path / "r.xml"
    result = run_cli("regress", added, "-q", "--junit", report)
    assert result.exit_code == 1, result.output
    assert any(line.startswith("extra") and line.endswith("NEW")
               for line in result.stdout.splitlines())
    assert "1 scenario not in the baseline" in result.stdout
    _, cases, failed = junit(report)
    assert len(cases) == 5 and [case.get("name") for case in failed] == ["minibatch"]
    assert "not in the baseline" in failed[0].find("failure").get("message")

    assert run_cli("regress", added, "--update", "-q").exit_code == 0
    assert run_cli("regress", added, "-q").exit_code == 0
    result = run_cli("regress", suite(), "-q", "--junit", report)   # and removed again
    assert result.exit_code == 1
    assert "1 scenario no longer in the suite" in result.stdout
    _, cases, failed = junit(report)
    assert len(cases) == 5 and len(failed) == 1


def test_a_variant_removed_from_the_baseline_is_new(suite, run_cli, tmp_path):
    path = suite()
    assert run_cli("regress", path, "--update", "-q").exit_code == 0
    baseline = tmp_path / "base.json"
    doc = json.loads(baseline.read_text())
    del doc["scenarios"]["file-2x2"]["runs"]["local H=2"]
    baseline.write_text(json.dumps(doc))
    result = run_cli("regress", path, "-q")
    assert result.exit_code == 1
    assert any("file-2x2 / local H=2" in line and line.endswith("NEW")
               for line in result.stdout.splitlines())
    assert "1 run not in the baseline" in result.stdout


@pytest.mark.parametrize("factor, code", [(1 + 3e-15, 0), (1 + 1e-13, 0), (1 + 1e-10, 1)])
def test_float_noise_is_not_a_regression_but_a_real_change_is(suite, run_cli, tmp_path,
                                                              factor, code):
    """A wait_time_s that moved by a few units in the last place (another summation order)
    passes unreported; a change a million times larger than that fails."""
    path = suite()
    assert run_cli("regress", path, "--update", "-q").exit_code == 0
    baseline = tmp_path / "base.json"
    doc = json.loads(baseline.read_text())
    metrics = doc["scenarios"]["inline-2x2"]["runs"]["minibatch"]
    assert metrics["simulated_time_s"] > 0
    metrics["simulated_time_s"] *= factor
    baseline.write_text(json.dumps(doc))
    result = run_cli("regress", path, "-q")
    assert result.exit_code == code, result.output
    listed = [line for line in result.stdout.splitlines() if "simulated_time_s" in line]
    assert (listed == []) if code == 0 else listed[0].endswith("FAIL")


@pytest.mark.parametrize("name", ["UP/victim/notes.txt", "ABSOLUTE", "results.json"])
def test_update_never_replaces_a_file_that_is_not_a_baseline(suite, run_cli, tmp_path, name):
    victim = tmp_path / "victim"
    victim.mkdir()
    notes = victim / "notes.txt"
    notes.write_text("precious notes\n")
    (tmp_path / "results.json").write_text('{"runs": []}\n')
    target = {"ABSOLUTE": str(notes)}.get(name, name.replace("UP", f"../{tmp_path.name}"))
    path = suite()
    path.write_text(path.read_text().replace("baseline: base.json", f"baseline: {target}"))
    line = one_error_line(run_cli("regress", path, "--update", "-q"))
    assert "is not an sgdsim regress baseline" in line and "--update replaces only" in line
    assert notes.read_text() == "precious notes\n"
    assert (tmp_path / "results.json").read_text() == '{"runs": []}\n'
    # A baseline of an older format is still a baseline: --update regenerates it.
    (tmp_path / "old.json").write_text('{"format": "sgdsim-regress-baseline", '
                                       '"format_version": 0}\n')
    path.write_text(path.read_text().replace(f"baseline: {target}", "baseline: old.json"))
    result = run_cli("regress", path, "--update", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "old.json").read_text())["format_version"] == 1


def test_reports_go_where_asked_or_fail_before_anything_runs(suite, run_cli, tmp_path):
    path = suite()
    assert run_cli("regress", path, "--update", "-q").exit_code == 0
    for option in ("--junit", "--markdown"):
        line = one_error_line(run_cli("regress", path, option, tmp_path / "no" / "r.out"))
        assert f"{option}: no such directory" in line
    assert not (tmp_path / "no").exists()
    result = run_cli("regress", path, "--markdown", "-", "-q")   # the summary on stdout
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("### ✅ sgdsim regress") and "PASS:" in result.stderr
    line = one_error_line(run_cli("regress", path, "--markdown", "-", "--junit", "-"))
    assert "cannot both be '-'" in line


@pytest.mark.parametrize("shift, code", [(0.01, 0), (0.05, 1)])
def test_accuracy_tolerance_is_honoured(suite, run_cli, tmp_path, shift, code):
    path = suite()
    assert run_cli("regress", path, "--update", "-q").exit_code == 0
    baseline = tmp_path / "base.json"
    doc = json.loads(baseline.read_text())
    metrics = doc["scenarios"]["inline-2x2"]["runs"]["minibatch"]
    metrics["final_test_accuracy"] -= shift
    baseline.write_text(json.dumps(doc))
    result = run_cli("regress", path, "-q")
    assert result.exit_code == code, result.output
    [row] = [line for line in result.stdout.splitlines() if "final_test_accuracy" in line]
    assert "±0.02" in row and row.endswith("ok" if code == 0 else "FAIL")


def test_a_target_no_longer_reached_always_fails(suite, run_cli, tmp_path):
    path = suite()
    assert run_cli("regress", path, "--update", "-q").exit_code == 0
    baseline = tmp_path / "base.json"
    doc = json.loads(baseline.read_text())
    metrics = doc["scenarios"]["file-2x2"]["runs"]["minibatch"]
    assert metrics["time_to_accuracy_s"] is not None
    metrics["time_to_accuracy_s"] = None
    baseline.write_text(json.dumps(doc))
    result = run_cli("regress", path, "-q")
    assert result.exit_code == 1
    assert "time_to_accuracy_s" in result.stdout and "null" in result.stdout


@pytest.mark.parametrize("text, expected", [
    ("scenarios:\n  - {name: a, scenario: scen.yaml, overides: {steps: 6}}\n",
     "suite.yaml:2: scenarios[0].overides: unknown key 'overides' (did you mean 'overrides'?)"),
    ("tolerances:\n  final_test_acuracy: {abs: 0.1}\n"
     "scenarios:\n  - {name: a, scenario: scen.yaml}\n",
     "suite.yaml:2: tolerances.final_test_acuracy: unknown key"),
    ("scenarios:\n  - {name: a, scenario: nope.yaml}\n",
     "suite.yaml:2: scenarios[0].scenario: no such scenario file 'nope.yaml'"),
    ("scenarios:\n  - {name: a, scenario: scen.yaml}\n  - {name: a, scenario: scen.yaml}\n",
     "suite.yaml:3: scenarios[1].name: duplicate scenario name 'a'"),
    ("scenarios:\n  - {name: a, scenario: scen.yaml, overrides: {H: 0}}\n",
     "suite.yaml:2: scenarios[0].overrides.H: must be an integer >= 1"),
])
def test_a_bad_suite_is_one_line_and_exit_2(tmp_path, run_cli, text, expected):
    (tmp_path / "scen.yaml").write_text(SCENARIO_FILE)
    (tmp_path / "suite.yaml").write_text(text)
    assert expected in one_error_line(run_cli("regress", tmp_path / "suite.yaml"))


def test_reports_do_not_apply_to_update(suite, run_cli, tmp_path):
    one_error_line(run_cli("regress", suite(), "--update", "--junit", tmp_path / "r.xml"))


def test_the_shipped_suite_validates_and_its_baseline_covers_exactly_its_runs():
    suite = load_suite(Path(__file__).resolve().parent.parent / "scenarios" / "regress.yaml")
    doc = read_baseline(suite.baseline_path, command=update_command())
    assert list(doc["scenarios"]) == sorted(entry.name for entry in suite.entries)
    algorithms, topologies = set(), set()
    for entry in suite.entries:
        stored = doc["scenarios"][entry.name]
        assert stored["fingerprint"] == entry.fingerprint, f"{entry.name}: stale baseline"
        assert set(stored["runs"]) == {v.label for v in entry.scenario.variants}
        algorithms |= {v.algorithm for v in entry.scenario.variants}
        topologies.add(entry.scenario.topology.graph.get("name", entry.scenario.topology_source))
    from simulator.experiments.scenario import ALGORITHMS

    assert algorithms == set(ALGORITHMS)                    # every schedule is guarded
    assert len(topologies) >= 3


# --------------------------------------------------------------------------- units
def test_tolerance_is_abs_plus_rel_of_the_baseline():
    assert EXACT.allows(1.0, 1.0) and not EXACT.allows(1.0, 1.0 + 1e-11)
    assert EXACT.allows(1.0, 1.0 + 1e-15)                 # float noise (FLOAT_NOISE_REL)
    assert not EXACT.allows(3, 4) and not EXACT.allows(10**15, 10**15 + 1)   # counts: exact
    assert Tolerance(abs=0.02).allows(0.90, 0.88) and not Tolerance(abs=0.02).allows(0.90, 0.87)
    assert Tolerance(rel=0.1).allows(10.0, 11.0) and not Tolerance(rel=0.1).allows(10.0, 11.5)
    assert Tolerance(abs=1, rel=0.1).allows(10.0, 12.0)
    assert not Tolerance(abs=1e9).allows(None, 1.0) and not Tolerance(abs=1e9).allows(1.0, None)
    assert Tolerance(abs=1).allows(None, None)
    assert not Tolerance(abs=1).allows(False, True)
    assert [str(t) for t in (EXACT, Tolerance(abs=0.02), Tolerance(rel=0.01),
                             Tolerance(abs=1, rel=0.5))] == ["exact", "±0.02", "±1%", "±1+50%"]


def test_record_metrics_flattens_scalars_and_skips_the_curve():
    record = {"label": "x", "steps": 3, "diverged": False, "time_to_accuracy_s": None,
              "comm_bytes": {"intra_block": 10.0, "inter_block": 5.0},
              "timing": {"message_bytes": 8, "source": "prose"}, "curve": [[0.1, 1, 0.5, 2.0]]}
    assert record_metrics(record) == {
        "steps": 3, "diverged": False, "time_to_accuracy_s": None,
        "comm_bytes.intra_block": 10.0, "comm_bytes.inter_block": 5.0,
        "timing.message_bytes": 8}


def test_compare_without_changes_has_no_rows(suite, tmp_path):
    from simulator.experiments.regress import RunResult, baseline_document

    loaded = load_suite(suite())
    results = {entry.name: [RunResult(v.label, {"steps": 6, "x": 1.5}, 0.0)
                            for v in entry.scenario.variants] for entry in loaded.entries}
    comparison = compare(loaded, results, baseline_document(loaded, results))
    assert comparison.passed and comparison.rows == [] and len(comparison.runs) == 4
    assert sum(run.compared for run in comparison.runs) == 8
