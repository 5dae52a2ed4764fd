"""The two ways YAML is read give the same data, the same lines and the same errors.

:func:`simulator.utils.yamlfile.parse_yaml` reads the common case in one pass over libyaml's
events (``_parse_common``) and hands everything else to the reference, PyYAML's own
parser under sgdsim's composer (``_parse(_Loader, ...)``). The two are compared here on
the shipped files, a generated 4,096-GPU topology and the fuzz suite's generated inputs:
the same data (``repr``, so ``1``, ``1.0`` and ``True`` differ), the line of every path
in it (and of paths that lead nowhere), or the same one-line error. Every check the
reference makes on a file (issue 11: nesting depth, aliases, duplicate keys, control
characters, lone surrogates...) is also shown to keep the file off the fast path.
"""

import pytest
from helpers import paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import YAMLISH, compact_topologies, explicit_topologies, mutated, raw_yaml, scenarios

from simulator.cluster import generators, topology
from simulator.cluster.writer import write_topology
from simulator.utils import yamlfile
from simulator.utils.errors import InputError
from simulator.utils.shipped import shipped_files


def reference(text):
    return yamlfile._parse(yamlfile._Loader, text, "f.yaml")


def parsed(text):
    return yamlfile.parse_yaml(text, file="f.yaml")


def outcome(parse, text):
    """("ok", repr of the data, lines of every path and of paths past them) or the error."""
    try:
        data, locate = parse(text)
    except InputError as err:
        return "error", str(err)
    lines = [(path, [locate(path + tail) for tail in ((), ("zz",), (0,), (True,), (-1,))])
             for path in paths(data)]
    return "ok", repr(data), lines


def common(text):
    """Whether `text` takes the fast path."""
    try:
        yamlfile._parse_common(text)
    except Exception:                                        # noqa: BLE001
        return False
    return True


SHIPPED = sorted(path for kind in ("topologies", "scenarios")
                 for path in shipped_files(kind).values() if path.suffix == ".yaml")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_files_read_the_same_and_fast(path):
    text = path.read_text(encoding="utf-8")
    assert common(text)
    assert outcome(parsed, text) == outcome(reference, text)


def test_a_4096_gpu_topology_gives_the_same_graph_and_lines(tmp_path):
    path = tmp_path / "big.yaml"
    write_topology(generators.two_tier(512, 8), path)
    text = path.read_text(encoding="utf-8")
    assert common(text)                     # the speed of loading it rests on this
    fast, slow = outcome(parsed, text), outcome(reference, text)
    assert fast == slow
    assert len(fast[2]) > 40_000
    graphs = [topology.topology_from_data(*parse(text)[:1], file="big.yaml",
                                          locate=parse(text)[1]) for parse in (parsed, reference)]
    assert list(graphs[0].nodes(data=True)) == list(graphs[1].nodes(data=True))
    assert list(graphs[0].edges(data=True)) == list(graphs[1].edges(data=True))
    broken = text.replace("bandwidth: 25 GB/s", "bandwidth: 25 GB/z", 1)   # an error's line
    line = next(i for i, row in enumerate(broken.splitlines(), 1) if "GB/z" in row)
    for parse in (parsed, reference):
        data, locate = parse(broken)
        with pytest.raises(InputError) as err:
            topology.topology_from_data(data, file="big.yaml", locate=locate)
        assert err.value.line == line


REFUSED = {   # each of the reference's checks, on a file that fails only that check
    "depth": "a: " + "[" * 65 + "]" * 65 + "\n",
    "alias inside itself": "a: &x\n  b: *x\n",
    "alias bomb": "a0: &a0 [x]\n" + "".join(
        f"a{i + 1}: &a{i + 1} [{', '.join([f'*a{i}'] * 9)}]\n" for i in range(8)),
    "duplicate key": "a: 1\nb: 2\na: 3\n",
    "lone surrogate": 'a: "\\ud800"\n',
    "NUL byte": "a: 1\x00\n",
    "escape character": "a: \x1b[0m\n",
    "empty": "# nothing\n",
    "two documents": "--- 1\n--- 2\n",
    "a list as a key": "? [a, b]\n: c\n",
    "unknown tag": "a: !!python/object:os.system x\n",
    "undefined alias": "a: *nope\n",
    "tab": "a: 1\t\n",
    "syntax": "a: [1, 2\n",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_every_check_keeps_a_file_off_the_fast_path(name):
    text = REFUSED[name]
    assert not common(text)
    with pytest.raises(InputError) as fast:
        parsed(text)
    with pytest.raises(InputError) as slow:
        reference(text)
    assert str(fast.value) == str(slow.value)


def test_anchors_and_merge_keys_take_the_reference_path_and_read_the_same():
    text = "base: &b {bandwidth: 25 GB/s}\nlinks:\n  - <<: *b\n    latency: 1 us\n"
    assert not common(text)
    assert outcome(parsed, text) == outcome(reference, text)
    assert parsed(text)[0]["links"][0] == {"bandwidth": "25 GB/s", "latency": "1 us"}


texts = st.one_of(raw_yaml.filter(lambda t: isinstance(t, str)),
                  st.text(alphabet=YAMLISH, max_size=300),
                  st.text(alphabet=YAMLISH + "\r\x85\u2028\u2029\ufeff\u00e9\U0001F600\x7f\x00",
                          max_size=120),
                  mutated().map(lambda case: case[2]), compact_topologies, explicit_topologies,
                  scenarios())


@settings(max_examples=400, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(text=texts)
def test_generated_yaml_reads_the_same_both_ways(text):
    assert outcome(parsed, text) == outcome(reference, text)
