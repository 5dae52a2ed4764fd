"""The reproducers of bad input that once crashed, hung or passed: now one line and exit 2.

Each case is an input a fuzzer found (a traceback, a MemoryError, a hang, a NaN that passed
validation); the test runs it through the CLI and checks the one line it now gets. The
classes behind them are tested more widely in tests/test_fuzz.py; these pin the messages.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import TINY_TOPOLOGY, one_error_line

TOPOLOGY = TINY_TOPOLOGY


def scenario(extra="", topology=TOPOLOGY, length="steps: 4\n",
             variants="variants: [{algorithm: local, H: 2}]\n"):
    return "topology:\n" + topology + variants + "target_accuracy: 0.5\n" + length + extra


@pytest.mark.parametrize("text, expected", [
    # sizes: refused before anything is allocated, saying how much they would need
    (scenario(topology=TOPOLOGY.replace("blocks: 2\n  gpus_per_block: 2",
                                        "blocks: 100000\n  gpus_per_block: 100000")),
     ":2: topology.blocks: a topology of 10,000,000,000 GPUs would need about 20.48 TB"),
    (scenario("workload: {hidden: [100000000]}\n"),
     "workload.hidden: this run, for its model (7,500,000,010 parameters on each of 4 GPUs)"),
    (scenario(topology=TOPOLOGY.replace("blocks: 2", "blocks: 9223372036854775808", 1)),
     "topology.blocks: 9223372036854775808 is too large: numbers in sgdsim files are at most"),
    (scenario(length="epochs: 1.0e+30\n"), "epochs: 1e+30 is too large"),
    (scenario("workload: {batch_size: 9223372036854775807}\n"), "workload.batch_size: "),
    # NaN and infinity, and numbers whose arithmetic overflowed
    (scenario(length="epochs: .inf\n"), "epochs: must be a finite number, got .inf"),
    (scenario(length="epochs: .nan\n"), "epochs: must be a finite number, got .nan"),
    (scenario("optimizer: {decay_epochs: [.inf]}\n"),
     "optimizer.decay_epochs[0]: must be a finite number, got .inf"),
    (scenario("optimizer: {warmup_epochs: 1.0e+308}\n"), "optimizer.warmup_epochs: 1e+308"),
    (scenario(variants="variants: [{algorithm: postlocal, H: 2, switch_epoch: .nan}]\n"),
     "variants[0].switch_epoch: must be a finite number, got .nan"),
    (scenario("timing: {jitter: 1.0e+308}\n"), "timing.jitter: 1e+308 is too large"),
    (scenario("timing: {jitter: .nan}\n"), "timing.jitter: must be a finite number, got .nan"),
    (scenario("timing: {global_sync_delay_s: .inf}\n"), "timing.global_sync_delay_s: must be a"),
    (scenario("timing: {slow_gpus: {gpu0_0: .inf}}\n"), "timing.slow_gpus.gpu0_0: must be a"),
    (scenario().replace("target_accuracy: 0.5", "target_accuracy: .nan"),
     "target_accuracy: must be a finite number, got .nan"),
    (scenario("optimizer: {lr: 1e30}\n"), "optimizer.lr: 1e+30 is too large"),
    (scenario("optimizer: {lr: 1000000000000000000000000000000}\n"), "optimizer.lr: "),
    (scenario("seed: 4294967296\n"), "seed: must be an integer from 0 to 4294967295"),
    (scenario(topology=TOPOLOGY.replace("{bandwidth: 25 GB/s", "{bandwidth: 1e-305 B/s")),
     "topology.intra_block.bandwidth: must be at least 1 bit/s, got '1e-305 B/s'"),
    (scenario(topology=TOPOLOGY.replace("latency: 1 us", "latency: 1e999 s")),
     "topology.intra_block.latency: '1e999 s' is too large: a time is at most 1e30 s"),
    (scenario("seed: ٣\n"), "seed: expected a whole number, got a string '٣'"),
])
def test_a_bad_scenario_is_one_line(write_file, run_cli, text, expected):
    assert expected in one_error_line(run_cli("run", write_file("s.yaml", text), "-q"))


@pytest.mark.parametrize("text, expected", [
    ("blocks: 2\x00\n", ":1: a NUL byte in column 10: YAML files are text"),
    ("a: " + "[" * 1000 + "]" * 1000 + "\n", ":1: lists and mappings nested more than 64"),
    ("a: &x\n  b: *x\n", ":2: the alias *x is inside the collection &x names"),
    ("a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n"
        for i in range(8)), ":9: aliases expand the data to 1,234,567,909 values"),
])
def test_raw_yaml_that_crashed_or_hung_is_one_line(write_file, run_cli, text, expected):
    path = write_file("t.yaml", text)
    assert expected in one_error_line(run_cli("topology", "validate", path))
    assert expected in one_error_line(run_cli("run", path))


def test_node_link_json_with_links_that_are_not_links_is_one_line(write_file, run_cli):
    path = write_file("t.json", json.dumps(
        {"nodes": [{"id": "g", "kind": "gpu", "block": "b"}], "links": ["x"]}))
    assert "links[0]: expected a mapping with a 'source' and a 'target', got 'x'" in \
        one_error_line(run_cli("topology", "validate", path))


def test_a_huge_npz_label_is_refused_before_the_one_hot_layer(tmp_path, write_file, run_cli):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", x=rng.normal(size=(20, 3)),
             y=np.array([0, 1] * 9 + [1, 1_000_000_000]), x_test=rng.normal(size=(4, 3)),
             y_test=np.array([0, 1, 0, 1]))
    path = write_file("s.yaml", scenario("workload: {dataset: 'npz:big.npz'}\n"))
    assert "workload.dataset: this run, for its model (65,000,000,321 parameters" in \
        one_error_line(run_cli("run", path, "-q"))


@pytest.mark.parametrize("args, expected", [
    (["--steps", "10000000000"], "--steps: this run, for 10,000,000,000 steps on 4 GPUs"),
    (["--steps", "٣"], "'٣' is not a whole number (write it in the digits 0-9)"),
    (["--epochs", "nan"], "'nan' is not a number"),
    (["--seed", "4294967296"], "'4294967296' must be <= 4294967295"),
    (["--global-sync-delay", "1e999 s"], "'1e999 s' is too large: a time is at most 1e30 s"),
])
def test_bad_command_line_values_are_one_line(write_file, run_cli, args, expected):
    assert expected in one_error_line(run_cli("run", write_file("s.yaml", scenario()), "-q",
                                              *args))


def test_unit_strings_take_ascii_digits_only(run_cli):
    assert "'٣MB' is not a size in bytes" in one_error_line(
        run_cli("collective", "seed_8x2", "--size", "٣MB"))


def test_what_editors_accept_sgdsim_accepts(write_file, run_cli, tmp_path):
    """YAML 1.2 numbers (1e-3 was a string) and whole floats where integers go."""
    text = scenario("optimizer: {lr: 1e-3}\n",
                    topology=TOPOLOGY.replace("gpus_per_block: 2", "gpus_per_block: 2.0"))
    out = tmp_path / "r.json"
    result = run_cli("run", write_file("s.yaml", text), "-q", "-o", out)
    assert result.exit_code == 0, result.output
    [record] = json.loads(out.read_text())["runs"]
    assert record["workers"] == 4
    bad = scenario("optimizer: {nesterov: yes}\n")        # YAML 1.1's boolean: a string now
    line = one_error_line(run_cli("run", write_file("b.yaml", bad), "-q"))
    assert "optimizer.nesterov: expected true or false, got 'yes' (write true or false" in line


def test_a_lone_surrogate_is_refused_in_yaml_and_escaped_from_json(write_file, run_cli):
    # Found by tests/test_fuzz.py: a label "\ud800\udc00" crashed printing the table.
    text = scenario(variants='variants: [{algorithm: local, H: 2, label: "\\ud800\\udc00"}]\n')
    assert ":7: a string holds the lone surrogate \\ud800, which is not a character" in \
        one_error_line(run_cli("run", write_file("s.yaml", text), "-q"))
    graph = {"nodes": [{"id": "\ud800", "kind": "gpu", "block": "b"},
                       {"id": "g1", "kind": "gpu", "block": "b"}],
             "links": [{"source": "\ud800", "target": "g1", "bandwidth": 1e9, "latency": 0}]}
    path = write_file("t.json", json.dumps(graph))
    result = run_cli("topology", "show", path)
    assert result.exit_code == 0, result.output


def test_control_characters_in_names_are_escaped_on_the_terminal(write_file, run_cli):
    text = scenario(variants='variants: [{algorithm: local, H: 2, label: "a\\x1b[31mred"}]\n')
    result = run_cli("run", write_file("s.yaml", text), "-q")
    assert result.exit_code == 0 and "\x1b" not in result.stdout
    assert "a\\x1b[31mred" in result.stdout
    line = one_error_line(run_cli("run", write_file("k.yaml", scenario('"a\\x1bb\\nc": 1\n'))))
    assert "\x1b" not in line and "unknown key 'a\\x1bb\\nc'" in line


def test_a_fifo_is_refused_at_once_not_read_forever(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    for command in (["topology", "validate"], ["run"]):
        result = subprocess.run([sys.executable, "-m", "simulator", *command, str(fifo)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        assert result.stderr.strip() == (f"error: {fifo}: is a FIFO (named pipe), not a "
                                          "regular file (name a file; sgdsim does not read "
                                          "from devices, pipes or sockets)")


def test_bare_sgdsim_prints_its_help_not_an_error(run_cli):
    result = run_cli()
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith("Usage: sgdsim") and "Commands:" in result.stdout
    assert run_cli("topology").stdout.startswith("Usage: sgdsim topology")


def test_q_prints_the_table_only_and_says_so(write_file, run_cli, tmp_path):
    path = write_file("s.yaml", scenario())
    quiet = run_cli("run", path, "-q", "--trace", tmp_path / "t.json")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.splitlines()[0].startswith("target test accuracy")
    loud = run_cli("run", path, "--trace", tmp_path / "t.json", "-o", tmp_path / "r.json")
    assert loud.stdout.splitlines()[0].startswith("s: 4 GPUs on")     # the header
    assert "trace written to" in loud.stderr and "results written to" in loud.stderr
    assert "written to" not in loud.stdout
    help_text = " ".join(run_cli("run", "--help").stdout.split())
    assert "no progress bar, no header naming the scenario and cluster, no notes" in help_text
