"""quickschema says "valid" exactly when jsonschema finds no error: on every shipped file
and on thousands of broken copies of them (a value replaced, a key dropped or added)."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import paths

from simulator.utils import quickschema
from simulator.utils.yamlfile import _Validator, load_schema, load_yaml

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"topology": ROOT / "topologies", "scenario": ROOT / "scenarios", "regress": ROOT / "scenarios"}
REPLACEMENTS = [None, True, False, 0, 1, -1, 1.0, 2.5, -0.5, 1e300, float("inf"), float("nan"), "",
                "x", "25 GB/s", "1 us", "15.7 TFLOP/s", "gpu0", "ring", "0.5", [], ["a"], [1, 2],
                {}, {"a": 1}, {"name": "g0", "block": "b0"}]


def shipped(kind):
    files = sorted(KINDS[kind].glob("*.yaml"))
    if kind != "topology":           # suites (a scenarios: list) have the regress schema
        files = [f for f in files if ("\nscenarios:" in f.read_text()) == (kind == "regress")]
    return [load_yaml(f)[0] for f in files]


def mutated(data, rng, n):
    spots = list(paths(data, items=3))
    for _ in range(n):
        copy_ = copy.deepcopy(data)
        path = spots[rng.integers(len(spots))]
        parent, last = None, copy_
        for part in path:
            parent, last = last, last[part]
        action = rng.integers(3)
        if parent is None:
            continue
        if action == 0:
            parent[path[-1]] = copy.deepcopy(REPLACEMENTS[rng.integers(len(REPLACEMENTS))])
        elif action == 1 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(last, dict):
            last[["bandwidth", "nme", "H", "extra", "type"][rng.integers(5)]] = \
                copy.deepcopy(REPLACEMENTS[rng.integers(len(REPLACEMENTS))])
        else:
            parent[path[-1]] = str(last) + "?"
        yield copy_


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_quickschema_agrees_with_jsonschema(kind):
    schema = load_schema(kind)
    validator = _Validator(schema)              # jsonschema as sgdsim configures it
    rng = np.random.default_rng(0)
    checked = sure = 0
    for data in shipped(kind):
        assert quickschema.valid(data, schema) is True
        for broken in mutated(data, rng, 150 if kind != "regress" else 600):
            verdict = quickschema.valid(broken, schema)
            clean = not any(True for _ in validator.iter_errors(broken))
            assert verdict in (True, None)
            assert (verdict is True) == clean, json.dumps(broken, default=str)[:300]
            checked += 1
            sure += verdict is True
    assert checked >= 150 and 0 < sure < checked


def test_unknown_keywords_leave_the_verdict_to_jsonschema():
    assert quickschema.valid(3, {"const": 3}) is None
    assert quickschema.valid([1, 1], {"type": "array", "uniqueItems": True}) is None
    assert quickschema.valid(1.0, {"type": "integer"}) is None        # validate_schema normalises it
    assert quickschema.valid(True, {"type": "integer"}) is None       # a boolean is no integer
    assert quickschema.valid(float("inf"), {"type": "number"}) is None
    assert quickschema.valid("ab", {"type": "string", "pattern": "b"}) is True   # searched
