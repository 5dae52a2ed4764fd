"""A parallel sweep's processes: none outlives the sweep, however it ends.

``sgdsim sweep --jobs 2`` runs in a subprocess of its own session; the test waits until its
two workers (children of multiprocessing's forkserver) are computing, records every process
below it by PID, stops it, and checks by PID that every one of them is gone. Linux only (the
process tree is read from /proc).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY_TOPOLOGY

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="reads the process tree from /proc")

SLOW_SWEEP = """\
name: slow
topology:
""" + TINY_TOPOLOGY + """\
variants: [{algorithm: local, H: 2}]
target_accuracy: 0.5
steps: 100000
eval_every: 1000
sweep: {grid: {seed: [0, 1, 2, 3]}}
"""


def _stat(pid):
    """(parent PID, state) of a process, or None once it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] in "ZX" else (int(fields[1]), fields[0])


def _descendants(root):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None:
                children.setdefault(info[0], []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _start(tmp_path):
    (tmp_path / "slow.yaml").write_text(SLOW_SWEEP)
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "sweep", str(tmp_path / "slow.yaml"), "-o",
         str(tmp_path / "out"), "--jobs", "2", "-q"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        # Ctrl-C as in a terminal, even where the tests themselves run with SIGINT ignored
        # (a shell's background job without job control): an ignored SIGINT is inherited.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:      # the forkserver, its two workers, the tracker
        below = _descendants(process.pid)
        if len(below) >= 4:
            time.sleep(1.0)                 # let both workers start computing
            return process, _descendants(process.pid)
        if process.poll() is not None:
            pytest.fail(f"the sweep ended early: {process.communicate()}")
        time.sleep(0.2)
    process.kill()
    pytest.fail("the sweep's workers did not start within 60 s")


def _gone(pids, within_s):
    deadline = time.monotonic() + within_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _stat(pid) is not None]
        time.sleep(0.1)
    return alive


def test_kill_9_of_a_parallel_sweep_leaves_no_process_behind(tmp_path):
    process, below = _start(tmp_path)
    assert len(below) >= 4
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        alive = _gone(below, within_s=15)
        assert alive == [], [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in alive]
    finally:
        for pid in below:                   # only the processes this test started
            if _stat(pid) is not None:
                os.kill(pid, signal.SIGKILL)


def test_ctrl_c_of_a_parallel_sweep_is_one_line_and_leaves_no_process(tmp_path):
    process, below = _start(tmp_path)
    try:
        os.killpg(process.pid, signal.SIGINT)           # what Ctrl-C in a terminal does
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert err.splitlines() == [err.strip()] and err.startswith("error: interrupted: "), err
        assert "Exception" not in err and "Traceback" not in err
        assert _gone(below, within_s=15) == []
    finally:
        if process.poll() is None:
            process.kill()
        for pid in below:
            if _stat(pid) is not None:
                os.kill(pid, signal.SIGKILL)
