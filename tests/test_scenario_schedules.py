"""The newer schedules in scenario files and on the command line: labels, defaults, and one
located line for every mistake."""

import pytest
from helpers import one_error_line

from simulator.experiments.scenario import scenario_from_data
from simulator.utils.errors import InputError

HEAD = """\
name: s
topology: seed_8x2
workload: {dataset: digits, batch_size: 32}
optimizer: {lr: 0.02, warmup_epochs: 2}
target_accuracy: 0.9
steps: 12
variants:
"""


def load(variants, **top):
    data = {"topology": "seed_8x2", "workload": {"dataset": "digits"},
            "optimizer": {"lr": 0.02}, "target_accuracy": 0.9, "steps": 12,
            "variants": variants, **top}
    return scenario_from_data(data)


def test_labels_and_fields_of_the_newer_schedules():
    s = load([{"algorithm": "diloco", "H": 8},
              {"algorithm": "diloco", "H": 8, "outer_lr": 0.5, "replica": "block"},
              {"algorithm": "slowmo", "H": 4, "slow_momentum": 0.7},
              {"algorithm": "qsr", "H": 2, "alpha": 0.2},
              {"algorithm": "adacomm", "H": 16, "H_min": 2, "interval_s": 0.5},
              {"algorithm": "gossip"}, {"algorithm": "gossip", "graph": "torus", "H": 6},
              {"algorithm": "local", "H": 8, "optimizer": {"name": "adam"}}])
    assert [v.label for v in s.variants] == [
        "diloco H=8", "diloco H=8 outer_lr=0.5 replica block", "slowmo H=4 slow_momentum=0.7",
        "qsr H=2 alpha=0.2", "adacomm H=16 H_min=2 every 0.5 s", "gossip ring",
        "gossip torus H=6", "local H=8 adam"]
    gossip = s.variants[5]
    assert gossip.H is None and gossip.graph == "ring"
    assert s.variants[7].optimizer.name == "adam" and s.optimizer.name == "sgd"


@pytest.mark.parametrize("variant, line, text", [
    ("{algorithm: qsr, H: 2}", 8, "QSR needs its growth coefficient alpha"),
    ("{algorithm: diloco, H: 4, replica: rack}", 8, "'rack' is not a level of the topology"),
    ("{algorithm: adacomm, H: 4, H_min: 8}", 8, "H_min (8) is above H (4)"),
    ("{algorithm: gossip, graph: star}", 8, "is not one of"),
    ("{algorithm: local, H: 4, outer_lr: 0.5}", 8, "outer_lr does not apply to local"),
    ("{algorithm: slowmo, H: 4, outer_momentum: 0.5}", 8, "outer_momentum does not apply"),
    ("{algorithm: diloco, H: 4, outer_momentum: 1.0}", 8, "must be in [0, 1)"),
    ("{algorithm: diloco, H: 4, convention: pytorch}", 8, "diloco has no pytorch convention"),
    ("{algorithm: diloco, H: 4, optimizer: {name: adamw, momentum: 0.9}}", 8,
     "momentum is a setting of sgd, not of adamw"),
    ("{algorithm: gossip, graph: topology}", 8, "has no link to another GPU"),
])
def test_mistakes_in_the_newer_schedules_are_one_line_and_exit_2(run_cli, write_file, variant,
                                                                  line, text):
    path = write_file("s.yaml", HEAD + f"  - {variant}\n")
    error = one_error_line(run_cli("run", path, "-q"))
    assert f"s.yaml:{line}:" in error and text in error, error


def test_a_torus_needs_a_composite_number_of_gpus():
    with pytest.raises(InputError, match="torus of 7 GPUs"):
        scenario_from_data({"topology": {"blocks": 7, "gpus_per_block": 1,
                                         "gpu": {"peak_flops": "1 TFLOP/s", "efficiency": 0.5},
                                         "intra_block": {"bandwidth": "1 GB/s", "latency": "1 us"},
                                         "inter_block": {"bandwidth": "1 GB/s", "latency": "1 us"}},
                            "target_accuracy": 0.5, "steps": 3,
                            "variants": [{"algorithm": "gossip", "graph": "torus"}]})


def test_the_pytorch_convention_of_the_scenario_leaves_the_newer_schedules_alone(run_cli,
                                                                                  write_file):
    s = load([{"algorithm": "local", "H": 4}, {"algorithm": "diloco", "H": 4}],
             convention="pytorch")
    assert [v.convention for v in s.variants] == ["pytorch", "paper"]
    path = write_file("s.yaml", HEAD + "  - {algorithm: diloco, H: 4}\n")
    error = one_error_line(run_cli("run", path, "--convention", "pytorch", "-q"))
    assert "--convention: diloco has no pytorch convention" in error


def test_the_command_line_runs_each_newer_schedule(run_cli, write_file):
    path = write_file("s.yaml", HEAD + "  - {algorithm: minibatch}\n")
    for algorithm, extra in (("diloco", ["-H", "4"]), ("slowmo", ["-H", "4"]),
                             ("adacomm", ["-H", "4"]), ("gossip", ["-H", "4"])):
        result = run_cli("run", path, "--algorithm", algorithm, *extra, "-q")
        assert result.exit_code == 0, result.output
        assert f"{algorithm} " in result.output
    error = one_error_line(run_cli("run", path, "--algorithm", "qsr", "-H", "2", "-q"))
    assert "--algorithm: QSR needs its growth coefficient alpha" in error


def test_the_memory_check_counts_adams_moments_and_gossips_neighbours(monkeypatch):
    import simulator.experiments.scenario as scenario_module

    seen = []
    monkeypatch.setattr(scenario_module, "check_run_memory",
                        lambda **kw: seen.append(kw["copies"]))
    load([{"algorithm": "local", "H": 4}, {"algorithm": "diloco", "H": 4,
                                           "optimizer": {"name": "adamw", "amsgrad": True}},
          {"algorithm": "gossip", "graph": "torus"}, {"algorithm": "gossip"}],
         optimizer={"name": "adam"})
    # adam 8; adamw with AMSGrad 9; gossip on a 4 x 4 torus: adam 8 + 4 neighbours + 2; ring: + 2 + 2
    assert seen == [8, 9, 14, 12]


# --------------------------------------------------------------------------- run --set
def test_set_gives_the_algorithm_variant_the_settings_a_file_would():
    from simulator.experiments.scenario import load_scenario, parse_settings

    settings = parse_settings(["outer_lr=0.5", "outer_momentum=0", "replica=block"])
    by_option = load_scenario(overrides={"algorithm": "diloco", "H": 4, "settings": settings})
    by_file = load([{"algorithm": "diloco", "H": 4, "outer_lr": 0.5, "outer_momentum": 0,
                     "replica": "block"}])
    assert by_option.variants[0] == by_file.variants[0]
    assert by_option.variants[0].label == "diloco H=4 outer_lr=0.5 outer_momentum=0 replica block"


def test_set_without_algorithm_changes_only_the_variants_it_applies_to():
    from simulator.experiments.scenario import scenario_from_data

    data = {"topology": "seed_8x2", "workload": {"dataset": "digits"},
            "optimizer": {"lr": 0.02}, "target_accuracy": 0.9, "steps": 12,
            "variants": [{"algorithm": "local", "H": 4},
                         {"algorithm": "qsr", "H": 2, "alpha": 0.1, "label": "mine"}]}
    s = scenario_from_data(data, overrides={"settings": {"alpha": 0.3}})
    assert s.variants[0] == scenario_from_data(data).variants[0]
    assert s.variants[1].alpha == 0.3 and s.variants[1].label == "qsr H=2 alpha=0.3"


@pytest.mark.parametrize("args, expected", [
    (["--algorithm", "qsr", "-H", "4"], "error: --algorithm: QSR needs its growth coefficient "
                                        "alpha (add e.g. --set alpha=0.2"),
    (["--set", "alpha"], "error: --set: 'alpha' is not NAME=VALUE"),
    (["--set", "alpah=0.1"], "error: --set alpah: 'alpah' is not a variant setting (did you "
                             "mean 'alpha'?"),
    (["--set", "H=3"], "error: --set H: 'H' is not a variant setting (use the option -H)"),
    (["--algorithm", "local", "--set", "alpha=0.1"], "error: --set alpha: alpha does not apply "
                                                     "to local"),
    (["--set", "alpha=0.1"], "error: --set alpha: alpha applies to qsr variants, and this "
                             "scenario has none"),
    (["--algorithm", "qsr", "--set", "alpha=-1"], "error: --set alpha: must be positive"),
    (["--algorithm", "qsr", "--set", "alpha=nan"], "error: --set alpha:"),
    (["--algorithm", "diloco", "--set", "outer_lr=[1"], "error: --set outer_lr: '[1': YAML "
                                                        "syntax error"),
    (["--algorithm", "diloco", "--set", "replica=rack"], "error: --set replica: 'rack' is not a "
                                                         "level of the topology"),
])
def test_bad_set_values_are_one_line_and_exit_2(run_cli, args, expected):
    assert one_error_line(run_cli("run", "-q", "--steps", "4", *args)).startswith(expected)


def test_set_runs_the_same_numbers_as_the_file(run_cli, write_file):
    import json

    path = write_file("qsr.yaml", HEAD + "  - {algorithm: qsr, H: 2, alpha: 0.2}\n")
    from_file = run_cli("run", path, "-q", "-o", "-")
    from_option = run_cli("run", path, "-q", "-o", "-", "--algorithm", "qsr", "-H", "2",
                          "--set", "alpha=0.2")
    assert from_file.exit_code == 0 and from_option.exit_code == 0, from_option.output
    records = [json.loads(r.stdout)["runs"] for r in (from_file, from_option)]
    assert records[0] == records[1] and records[0][0]["label"] == "qsr H=2 alpha=0.2"
