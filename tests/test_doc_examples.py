"""The examples of docs/network.md and docs/calibrate.md print what the pages show.

Each ``$ sgdsim ...`` line of a ``console`` block is run (in a scratch directory that sees
the repository's topologies/ and bench/), and what it prints, stdout and stderr together,
must be the lines that follow it up to the next ``$`` line. ``$ python bench/...`` lines
are run as scripts. Every ``python`` block followed by a ``text`` block is run and must
print that text. A page whose figures drift from the code fails here.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import sgdsim

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["network.md", "calibrate.md"]


def _commands(page):
    """``[(command, expected lines), ...]`` of every console block of `page`."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for chunk in re.split(r"^(?=\$ )", block, flags=re.M):
            if not chunk.startswith("$ "):
                continue
            first, *rest = chunk.rstrip("\n").split("\n")
            out.append((first[2:], rest))
    return out


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    for name in ("topologies", "bench"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("page", PAGES)
def test_the_console_examples_print_what_the_page_shows(page, scratch):
    commands = _commands(page)
    assert len(commands) >= 5, f"docs/{page} lost its examples"
    runner = CliRunner()
    for command, expected in commands:
        args = shlex.split(command)
        if args[0] == "python":
            result = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True,
                                    cwd=scratch, check=False)
            printed = result.stdout + result.stderr
        else:
            assert args[0] == "sgdsim", command
            result = runner.invoke(sgdsim, args[1:], terminal_width=78)   # an 80-column terminal
            printed = result.output
        assert [line.rstrip() for line in printed.rstrip("\n").split("\n")] == \
            [line.rstrip() for line in expected], f"docs/{page}: $ {command}"


@pytest.mark.parametrize("page", PAGES)
def test_the_python_examples_print_what_the_page_shows(page, scratch, capsys):
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, re.S)
    assert blocks, f"docs/{page} lost its examples"
    for code, expected in blocks:
        exec(compile(code, f"docs/{page}", "exec"), {})
        printed = capsys.readouterr().out
        assert [line.rstrip() for line in printed.splitlines()] == \
            [line.rstrip() for line in expected.splitlines()], code
