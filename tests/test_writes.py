"""Every command that writes: its locations checked before the work, its files written whole
or not at all, '-' as standard output; each failure one line and exit status 2.

A full disk is simulated by replacing ``os`` inside the writing module with one whose
``write`` writes a few bytes and then fails with ENOSPC, as a real full disk does.
"""

import errno
import json
import os
import types

import pytest
from helpers import TINY_TOPOLOGY, one_error_line

from simulator.experiments import runner
from simulator.network.nccltests import format_nccl_tests
from simulator.utils import files

SCENARIO = """\
name: tiny
topology:
""" + TINY_TOPOLOGY + """\
variants: [{algorithm: minibatch}, {algorithm: local, H: 2}]
target_accuracy: 0.5
steps: 4
"""
SUITE = """\
baseline: base.json
scenarios:
  - {name: tiny, scenario: s.yaml}
"""


@pytest.fixture
def work(tmp_path, run_cli):
    """A folder with a scenario, a topology, a results file and a suite with its baseline."""
    (tmp_path / "s.yaml").write_text(SCENARIO)
    (tmp_path / "t.yaml").write_text("".join(line[2:] + "\n" for line in
                                             SCENARIO.splitlines()[2:7]))
    (tmp_path / "suite.yaml").write_text(SUITE)
    assert run_cli("run", tmp_path / "s.yaml", "-q", "-o", tmp_path / "r.json").exit_code == 0
    assert run_cli("regress", tmp_path / "suite.yaml", "--update", "-q").exit_code == 0
    rows = [(size, 1e-5 + size / 5e9, None) for size in (2**10, 2**14, 2**18, 2**22)]
    (tmp_path / "n.txt").write_text(format_nccl_tests(rows, ranks=2))   # one node of 2 GPUs
    return tmp_path


def commands(w, out):
    """Every command that writes, writing to `out` (a path in a folder of the test's choice)."""
    return {
        "run -o": ["run", w / "s.yaml", "-q", "-o", out / "x.json"],
        "run --trace": ["run", w / "s.yaml", "-q", "--trace", out / "t.json"],
        "topology generate -o": ["topology", "generate", "two-tier", "--blocks", "2",
                                 "--gpus-per-block", "2", "-o", out / "g.yaml"],
        "topology draw -o": ["topology", "draw", w / "t.yaml", "-o", out / "d.png"],
        "plot -o": ["plot", w / "r.json", "--kind", "accuracy", "-o", out / "p.png"],
        "schema -o": ["schema", "scenario", "-o", out / "s.json"],
        "regress --junit": ["regress", w / "suite.yaml", "-q", "--junit", out / "r.xml"],
        "regress --markdown": ["regress", w / "suite.yaml", "-q", "--markdown", out / "r.md"],
        "scenario copy": ["scenario", "copy", "default", out / "c.yaml"],
        "topology copy": ["topology", "copy", "seed_8x2", out / "c.yaml"],
        "calibrate -o": ["calibrate", w / "n.txt", "--topology", w / "t.yaml", "--folds", "2",
                         "-o", out / "c.yaml"],
        "calibrate --plot": ["calibrate", w / "n.txt", "--topology", w / "t.yaml", "--folds",
                             "2", "-o", w / "cal.yaml", "--plot", out / "c.png"],
    }


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


NAMES = ["run -o", "run --trace", "topology generate -o", "topology draw -o", "plot -o",
         "schema -o", "regress --junit", "regress --markdown", "scenario copy", "topology copy",
         "calibrate -o", "calibrate --plot"]


def test_every_writing_command_is_covered(tmp_path):
    assert sorted(commands(tmp_path, tmp_path)) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_directory_is_one_line_before_any_work(work, run_cli, monkeypatch, name):
    def no_work(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(runner, "run_variant", no_work)     # run, regress: nothing may run
    line = one_error_line(run_cli(*commands(work, work / "missing")[name]))
    assert "no such directory" in line and "missing" in line
    assert not (work / "missing").exists()


@pytest.mark.parametrize("name", ["run -o", "run --trace", "topology generate -o",
                                  "topology draw -o", "plot -o", "schema -o", "calibrate -o",
                                  "calibrate --plot"])
def test_a_path_under_a_file_is_one_line(work, run_cli, name):
    line = one_error_line(run_cli(*commands(work, work / "s.yaml")[name]))
    assert "is not a directory" in line


def test_a_sweep_into_a_file_or_stdout_is_one_line(work, run_cli):
    (work / "sw.yaml").write_text(SCENARIO + "sweep: {grid: {seed: [0, 1]}}\n")
    assert "not a directory" in one_error_line(run_cli("sweep", work / "sw.yaml", "-o",
                                                          work / "s.yaml" / "out"))
    assert "not standard output" in one_error_line(run_cli("sweep", work / "sw.yaml", "-o", "-"))


class FullDisk:
    """``os`` with a ``write`` that fails with ENOSPC after `room` bytes in all."""

    def __init__(self, room=10):
        self.room = room
        self.module = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os)
                                               if not k.startswith("__")})
        self.module.write = self.write

    def write(self, fd, data):
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = os.write(fd, bytes(data[:self.room]))
        self.room -= written
        return written


@pytest.mark.parametrize("name", NAMES)
def test_a_full_disk_is_one_line_and_leaves_no_file(work, run_cli, monkeypatch, name):
    out = work / "out"
    out.mkdir()
    monkeypatch.setattr(files, "os", FullDisk().module)
    line = one_error_line(run_cli(*commands(work, out)[name]))
    assert "cannot write: No space left on device" in line and "free some space" in line
    assert leftovers(out) == []                              # no partial, no temporary file


def test_a_full_disk_keeps_the_old_file(work, run_cli, monkeypatch):
    before = (work / "r.json").read_bytes()
    monkeypatch.setattr(files, "os", FullDisk().module)
    one_error_line(run_cli("run", work / "s.yaml", "-q", "-o", work / "r.json"))
    assert (work / "r.json").read_bytes() == before
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_a_sweep_on_a_full_disk_stops_with_whole_lines_and_resumes(work, run_cli, monkeypatch):
    (work / "sw.yaml").write_text(SCENARIO + "sweep: {grid: {seed: [0, 1, 2]}}\n")
    out = work / "out"
    disk = FullDisk(room=10**9)
    monkeypatch.setattr(files, "os", disk.module)           # append_whole writes the lines
    real, calls = runner.run_variant, []

    def fill_the_disk(*args, **kwargs):        # the disk fills up while the third run runs
        calls.append(1)
        if len(calls) == 3:
            disk.room = 100
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_variant", fill_the_disk)
    line = one_error_line(run_cli("sweep", work / "sw.yaml", "-o", out, "-j", "1", "-q"))
    assert "cannot write: No space left on device" in line and "--resume" in line
    lines = (out / "runs.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3            # two whole runs, nothing torn
    assert all(json.loads(line)["status"] == "ok" for line in lines[:-1])
    monkeypatch.setattr(files, "os", os)
    monkeypatch.setattr(runner, "run_variant", real)
    result = run_cli("sweep", work / "sw.yaml", "-o", out, "-j", "1", "-q", "--resume")
    assert result.exit_code == 0, result.output
    assert len((out / "runs.jsonl").read_text().splitlines()) == 6


def test_dash_means_standard_output(work, run_cli):
    result = run_cli("run", work / "s.yaml", "-o", "-")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"][0]["label"] == "minibatch"   # only JSON
    assert "variant" in result.stderr                                     # the table
    assert not (work / "-").exists() and not os.path.exists("-")
    assert result.stdout.count("{") >= 1
    trace = run_cli("run", work / "s.yaml", "-q", "--trace", "-")
    assert json.loads(trace.stdout)["traceEvents"]
    drawn = run_cli("topology", "draw", work / "t.yaml", "-o", "-")
    assert drawn.exit_code == 0 and drawn.stdout_bytes.startswith(b"\x89PNG")
    plotted = run_cli("plot", work / "r.json", "--kind", "comm", "-o", "-")
    assert plotted.exit_code == 0 and plotted.stdout_bytes.startswith(b"\x89PNG")
    generated = run_cli("topology", "generate", "ring", "--n", "4", "-o", "-")
    assert generated.exit_code == 0 and "gpus:" in generated.stdout
    assert json.loads(run_cli("schema", "topology", "-o", "-").stdout)["$defs"]
    assert "name: default" in run_cli("scenario", "copy", "default", "-").stdout
    both = run_cli("run", work / "s.yaml", "-o", "-", "--trace", "-")
    assert "cannot both be '-'" in one_error_line(both)


def test_a_search_checks_its_directory_first_and_survives_a_full_disk(work, run_cli,
                                                                      monkeypatch):
    tune = ["tune", work / "s.yaml", "--space", "H=1..2", "--variant", "local H=2",
            "--budget", "2", "-j", "1", "-q", "-o"]

    def no_work(*args, **kwargs):
        raise AssertionError("the search started before its directory was checked")

    monkeypatch.setattr(runner, "run_variant", no_work)
    assert "not standard output" in one_error_line(run_cli(*tune, "-"))
    assert "is a file" in one_error_line(run_cli(*tune, work / "s.yaml"))
    assert "not a directory" in one_error_line(run_cli(*tune, work / "s.yaml" / "out"))
    monkeypatch.undo()
    disk = FullDisk(room=10**9)
    monkeypatch.setattr(files, "os", disk.module)
    real, calls = runner.run_variant, []

    def fill_the_disk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:                                  # during the second trial
            disk.room = 50
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_variant", fill_the_disk)
    line = one_error_line(run_cli(*tune, work / "search"))
    assert "trials.jsonl: cannot write: No space left on device" in line and "--resume" in line
    raw = (work / "search" / "trials.jsonl").read_bytes()
    assert raw == b"" or raw.endswith(b"\n")                  # whole lines only
