"""Shared pytest helpers: write a small input file, run the ``sgdsim`` CLI on it."""

import pytest
from click.testing import CliRunner

from cli import sgdsim


@pytest.fixture
def write_file(tmp_path):
    """``write_file(name, text) -> pathlib.Path``: a file with `text` in a fresh directory."""
    def write(name, text):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


@pytest.fixture
def run_cli():
    """``run_cli(*args) -> click.testing.Result`` of ``sgdsim args...`` (stderr apart)."""
    runner = CliRunner()
    return lambda *args: runner.invoke(sgdsim, [str(a) for a in args])
