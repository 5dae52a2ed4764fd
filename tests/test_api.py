"""The public API at the package top, and docs/api.md's worked example, run as written."""

import re
from importlib.metadata import version
from pathlib import Path

import pytest

import simulator

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"


def test_version_is_set_once_and_matches_the_installed_metadata():
    assert simulator.__version__ == version("sgdsim")


def test_every_public_name_resolves_and_is_listed():
    for name in simulator.__all__:
        assert getattr(simulator, name) is not None, name
    assert set(simulator.__all__) <= set(dir(simulator))
    with pytest.raises(AttributeError):
        simulator.no_such_function


def test_every_public_function_is_in_docs_api():
    text = API_DOC.read_text(encoding="utf-8")
    missing = [n for n in simulator.__all__ if n != "__version__" and f"`{n}(" not in text]
    assert not missing, f"docs/api.md does not describe {missing}"


def test_records_to_dataframe_flattens_records_and_curves():
    records = [
        {"label": "a", "time_to_accuracy_s": 1.5, "comm_bytes": {"intra_block": 1.0,
         "inter_block": 2.0}, "params": {"H": 4}, "curve": [[0.1, 1, 0.5, 2.0], [0.2, 2, 0.7, 1.0]]},
        {"label": "b", "time_to_accuracy_s": None, "comm_bytes": {"intra_block": 3.0,
         "inter_block": 4.0}, "params": {}, "curve": [[0.3, 1, 0.1, 3.0]]},
    ]
    runs = simulator.records_to_dataframe(records)
    assert list(runs.columns) == ["label", "time_to_accuracy_s", "comm_bytes.intra_block",
                                  "comm_bytes.inter_block", "params.H"]
    assert runs["comm_bytes.inter_block"].tolist() == [2.0, 4.0]
    curves = simulator.records_to_dataframe(records, curve=True)
    assert curves.values.tolist() == [["a", 0.1, 1, 0.5, 2.0], ["a", 0.2, 2, 0.7, 1.0],
                                      ["b", 0.3, 1, 0.1, 3.0]]


def _doc_blocks():
    """(code, expected output or None) for every python block of docs/api.md."""
    text = API_DOC.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```\s*(?:```\n(.*?)```)?", text, re.S)


def test_the_worked_example_in_docs_api_prints_what_the_page_shows(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)                        # it writes racks.yaml
    namespace = {}
    compared = 0
    for code, expected in _doc_blocks():
        exec(compile(code, str(API_DOC), "exec"), namespace)
        printed = capsys.readouterr().out
        if expected:
            assert [line.rstrip() for line in printed.splitlines()] == \
                [line.rstrip() for line in expected.splitlines()], code
            compared += 1
    assert compared >= 5
