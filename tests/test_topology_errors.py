"""Every topology validation error, through the CLI: exit status 2 and ONE line naming the
file, the line (YAML) or node/link (graph formats), the field, what is wrong and the fix."""

import json

import networkx as nx
import pytest
from helpers import EXPLICIT_TOPOLOGY

SCHEMA = "# yaml-language-server: $schema=../schemas/topology.schema.json\n"

# Line numbers below count from the schema comment (line 1).
EXPLICIT = SCHEMA + EXPLICIT_TOPOLOGY

COMPACT = SCHEMA + """\
name: seed
blocks: 2                # blocks
gpus_per_block: 2
gpu: {type: V100, peak_flops: 15.7 TFLOP/s, efficiency: 0.4}
intra_block: {bandwidth: 25 GB/s, latency: 1 us}
inter_block: {bandwidth: 10 Gbit/s, latency: 5 us}
"""


def edit(text, *replacements):
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def assert_one_line_error(result, file, line, field, message, fix):
    """Exit 2; stderr is exactly one line ``error: FILE[:LINE]: FIELD: ...message... (fix)``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    err = result.stderr
    assert err.endswith("\n") and err.count("\n") == 1, err
    where = f"{file}:{line}" if line is not None else f"{file}"
    prefix = f"error: {where}: " + (f"{field}: " if field else "")
    assert err.startswith(prefix), (err, prefix)
    assert message in err, err
    assert err.rstrip().endswith(")") and fix in err[err.index(message) + len(message):], err


YAML_CASES = [
    # id, base, replacements, line, field, message, fix
    ("unknown-key", EXPLICIT, [("bandwidth: 300", "bandwith: 300")], 13, "links[0].bandwith",
     "unknown key 'bandwith'", "did you mean 'bandwidth'?"),
    ("unknown-top-key", EXPLICIT, [("link_defaults:", "link_default:")], 11, "link_default",
     "unknown key 'link_default'", "did you mean 'link_defaults'?"),
    ("unknown-key-own-line", EXPLICIT,
     [("  - {name: g1, block: node1, efficiency: 0.3}",
       "  - name: g1\n    block: node1\n    efficency: 0.3")], 8, "gpus[1].efficency",
     "unknown key 'efficency'", "did you mean 'efficiency'?"),
    ("unknown-key-compact", COMPACT, [("gpus_per_block:", "gpus_per_blok:")], 4,
     "gpus_per_blok", "unknown key 'gpus_per_blok'", "did you mean 'gpus_per_block'?"),
    # A typo of a required key is reported as the typo, not as the key being missing.
    ("typo-of-required-key", COMPACT, [("inter_block: {bandwidth:", "inter_block: {bandwith:")], 7,
     "inter_block.bandwith", "unknown key 'bandwith'", "did you mean 'bandwidth'?"),
    ("bare-number-bandwidth", EXPLICIT, [("300 GB/s", "300")], 13, "links[0].bandwidth",
     "missing unit", "e.g. '25 GB/s'"),
    ("bare-number-flops", EXPLICIT, [("312 TFLOP/s", "312")], 3, "gpu_defaults.peak_flops",
     "missing unit", "e.g. '312 TFLOP/s'"),
    ("bare-number-latency", COMPACT, [("latency: 5 us", "latency: 5")], 7, "inter_block.latency",
     "missing unit", "e.g. '1 us'"),
    ("wrong-unit-bandwidth", EXPLICIT, [("300 GB/s", "300 GHz")], 13, "links[0].bandwidth",
     "'300 GHz' is not a bandwidth", "with its unit, e.g. '25 GB/s'"),
    ("wrong-unit-time", EXPLICIT, [("2 us", "2 parsecs")], 14, "links[1].latency",
     "'2 parsecs' is not a time", "e.g. '1 us'"),
    ("wrong-unit-flops", COMPACT, [("15.7 TFLOP/s", "15.7 TB/s")], 5, "gpu.peak_flops",
     "'15.7 TB/s' is not a compute rate", "e.g. '312 TFLOP/s'"),
    ("zero-bandwidth", EXPLICIT, [("300 GB/s", "0 GB/s")], 13, "links[0].bandwidth",
     "must be positive, got '0 GB/s'", "write e.g. '25 GB/s'"),
    ("negative-bandwidth", COMPACT, [("25 GB/s", "-5 GB/s")], 6, "intra_block.bandwidth",
     "must be positive, got '-5 GB/s'", "write e.g. '25 GB/s'"),
    ("negative-latency", EXPLICIT, [("2 us", "-2 us")], 14, "links[1].latency",
     "must not be negative, got '-2 us'", "write e.g. '1 us'"),
    ("negative-default-latency", EXPLICIT, [("{latency: 1 us}", "{latency: -1 us}")], 11,
     "link_defaults.latency", "must not be negative", "write e.g. '1 us'"),
    ("efficiency-above-1", EXPLICIT, [("efficiency: 0.3", "efficiency: 1.5")], 6,
     "gpus[1].efficiency", "must be in (0, 1], got 1.5", "e.g. 0.4"),
    ("efficiency-zero", COMPACT, [("efficiency: 0.4", "efficiency: 0")], 5, "gpu.efficiency",
     "must be in (0, 1], got 0", "e.g. 0.4"),
    ("peak-flops-zero", EXPLICIT, [("312 TFLOP/s", "0 TFLOP/s")], 3, "gpu_defaults.peak_flops",
     "must be positive, got '0 TFLOP/s'", "e.g. '15.7 TFLOP/s'"),
    ("peak-flops-negative-own", EXPLICIT,
     [("{name: g0, block: node0}", "{name: g0, block: node0, peak_flops: -1 TFLOP/s}")], 5,
     "gpus[0].peak_flops", "must be positive, got '-1 TFLOP/s'", "e.g. '15.7 TFLOP/s'"),
    ("duplicate-name", EXPLICIT, [("{name: spine}", "{name: g1}")], 9, "switches[1].name",
     "duplicate device name 'g1', first at line 6", "its own name"),
    ("duplicate-name-nic", EXPLICIT, [("nics: []", "nics: [{name: nvs0}]")], 10, "nics[0].name",
     "duplicate device name 'nvs0'", "its own name"),
    ("unknown-node", EXPLICIT, [("[g1, spine]", "[g1, spin]")], 15, "links[2].between[1]",
     "unknown device 'spin'", "did you mean 'spine'?"),
    ("self-link", EXPLICIT, [("[g1, spine]", "[g1, g1]")], 15, "links[2]",
     "link from 'g1' to itself", "two different devices"),
    ("duplicate-link", EXPLICIT, [("[g1, spine]", "[spine, nvs0]")], 15, "links[2]",
     "duplicate link between 'spine' and 'nvs0', first at line 14",
     "one link per pair of devices"),
    ("no-path", EXPLICIT, [("  - {between: [g1, spine], bandwidth: 200 Gbit/s}\n", "")], 6,
     "gpus[1]", "gpu 'g1' has no path to 'g0'", "add a link"),
    ("gpu-without-block", EXPLICIT,
     [("{name: g1, block: node1, efficiency: 0.3}", "{name: g1, efficiency: 0.3}")], 6,
     "gpus[1].block", "missing", "add 'block: node0'"),
    ("zero-gpus", SCHEMA + "gpus: []\nlinks: []\n", [], 2, "gpus",
     "a topology needs at least one GPU", "write e.g."),
    ("empty-blocks", COMPACT, [("blocks: 2", "blocks: 0")], 3, "blocks",
     "empty blocks", "write e.g. 8"),
    ("empty-gpus-per-block", COMPACT, [("gpus_per_block: 2", "gpus_per_block: 0")], 4,
     "gpus_per_block", "empty blocks", "write e.g. 2"),
    ("blocks-not-a-number", COMPACT, [("blocks: 2", "blocks: two")], 3, "blocks",
     "expected a whole number, got a string 'two'", "write e.g. 8"),
    ("unequal-blocks", EXPLICIT,
     [("name: two-gpus", "name: two-gpus\nequal_blocks: true"),
      ("  - {name: g0, block: node0}",
       "  - {name: g0, block: node0}\n  - {name: g2, block: node0}"),
      ("links:\n", "links:\n  - {between: [g2, nvs0], bandwidth: 300 GB/s}\n")], 3,
     "equal_blocks", "'node1' has 1, 'node0' has 2", "the same number of GPUs"),
    ("tier-typo", EXPLICIT, [("tier: inter_block", "tier: inter")], 14, "links[1].tier",
     "'inter' is not one of 'intra_block', 'inter_block'", "did you mean 'inter_block'?"),
    ("duplicate-key", EXPLICIT, [("name: two-gpus", "name: two-gpus\nname: again")], 3, "name",
     "duplicate key 'name', first at line 2", "write each key once"),
    ("three-ends", EXPLICIT, [("[g0, nvs0]", "[g0, nvs0, spine]")], 13, "links[0].between",
     "a link joins exactly two devices", "write e.g. [g0, sw0]"),
    ("missing-latency", EXPLICIT, [("link_defaults: {latency: 1 us}", "link_defaults: {}")], 13,
     "links[0].latency", "missing", "to the link or to link_defaults"),
    ("missing-section-compact", COMPACT,
     [("inter_block: {bandwidth: 10 Gbit/s, latency: 5 us}\n", "")], 2, "inter_block",
     "missing", "add 'inter_block: {bandwidth: 10 Gbit/s, latency: 5 us}'"),
    ("missing-links-explicit", SCHEMA + "gpus: [{name: g0, block: b0}]\n", [], 2, "links",
     "missing", "add 'links:"),
    ("yaml-syntax", EXPLICIT, [("{name: g0, block: node0}", "{name: g0, block: node0")], 6,
     None, "YAML syntax error", "check indentation"),
]


@pytest.mark.parametrize("base, replacements, line, field, message, fix",
                         [case[1:] for case in YAML_CASES], ids=[case[0] for case in YAML_CASES])
def test_yaml_error_is_one_line_with_file_line_field_and_fix(
        write_file, run_cli, base, replacements, line, field, message, fix):
    path = write_file("bad.yaml", edit(base, *replacements))
    result = run_cli("topology", "validate", path)
    assert_one_line_error(result, path, line, field, message, fix)


def test_bases_are_valid(write_file, run_cli):
    for text in (EXPLICIT, COMPACT):
        result = run_cli("topology", "validate", write_file("ok.yaml", text))
        assert result.exit_code == 0, result.output


def test_missing_file(tmp_path, run_cli):
    path = tmp_path / "nope.yaml"
    assert_one_line_error(run_cli("topology", "validate", path), path, None, None,
                          "no such file", "check the path")


@pytest.mark.parametrize("ext", ["yaml", "json", "graphml"])
def test_missing_file_any_format(tmp_path, run_cli, ext):
    path = tmp_path / f"nope.{ext}"
    assert_one_line_error(run_cli("topology", "validate", path), path, None, None,
                          "no such file", "check the path")


def test_empty_file(write_file, run_cli):
    path = write_file("empty.yaml", "# nothing here\n")
    assert_one_line_error(run_cli("topology", "validate", path), path, None, None,
                          "the file is empty", "write a YAML mapping")


def test_not_a_mapping(write_file, run_cli):
    path = write_file("list.yaml", "- a\n- b\n")
    assert_one_line_error(run_cli("topology", "validate", path), path, 1, None,
                          "expected a mapping, got a list", "")


def test_unknown_extension(write_file, run_cli):
    path = write_file("topo.txt", "blocks: 2\n")
    assert_one_line_error(run_cli("topology", "validate", path), path, None, None,
                          "unknown topology file type '.txt'", "use .yaml")


# --------------------------------------------------------------------------- graph formats
def _graph():
    graph = nx.Graph()
    graph.add_node("g0", kind="gpu", block="b0")
    graph.add_node("g1", kind="gpu", block="b1")
    graph.add_node("sw", kind="switch")
    for gpu in ("g0", "g1"):
        graph.add_edge(gpu, "sw", bandwidth=1e9, latency=1e-6, tier="inter_block")
    return graph


def _write(graph, path):
    if path.suffix == ".graphml":
        nx.write_graphml(graph, path)
    elif path.suffix == ".gml":
        nx.write_gml(graph, path)
    else:
        path.write_text(json.dumps(nx.node_link_data(graph, edges="links")))


def _no_block(g):
    del g.nodes["g1"]["block"]


def _negative_bandwidth(g):
    g.edges["g0", "sw"]["bandwidth"] = -1.0


def _negative_latency(g):
    g.edges["g0", "sw"]["latency"] = -1e-6


def _bad_efficiency(g):
    g.nodes["g0"]["efficiency"] = 1.5


def _bad_peak(g):
    g.nodes["g0"]["peak_flops"] = 0.0


def _bad_kind(g):
    g.nodes["sw"]["kind"] = "swich"


def _self_loop(g):
    g.add_edge("sw", "sw", bandwidth=1e9, latency=0.0, tier="inter_block")


def _unconnected(g):
    g.remove_edge("g1", "sw")


def _no_gpus(g):
    for gpu in ("g0", "g1"):
        g.nodes[gpu]["kind"] = "nic"


def _bad_tier(g):
    g.edges["g0", "sw"]["tier"] = "intra"


GRAPH_CASES = [
    ("no-block", _no_block, "graphml", "node 'g1'.block", "gpu 'g1' has no block",
     "set block"),
    ("negative-bandwidth", _negative_bandwidth, "gml", "link 'g0'--'sw'.bandwidth",
     "must be positive, got -1.0 bytes/s", "store e.g. 25000000000.0"),
    ("negative-latency", _negative_latency, "json", "link 'g0'--'sw'.latency",
     "must not be negative", "store e.g. 1e-06"),
    ("efficiency", _bad_efficiency, "graphml", "node 'g0'.efficiency", "must be in (0, 1]",
     "store e.g. 0.4"),
    ("peak-flops", _bad_peak, "json", "node 'g0'.peak_flops", "must be positive",
     "store e.g. 15700000000000.0"),
    ("kind", _bad_kind, "graphml", "node 'sw'.kind", "kind must be gpu, switch or nic",
     "did you mean 'switch'?"),
    ("self-link", _self_loop, "graphml", "link 'sw'--'sw'", "link from 'sw' to itself",
     "two different devices"),
    ("no-path", _unconnected, "gml", "node 'g1'", "gpu 'g1' has no path to 'g0'", "add a link"),
    ("no-gpus", _no_gpus, "json", None, "the topology has no GPUs", "kind 'gpu'"),
    ("tier", _bad_tier, "json", "link 'g0'--'sw'.tier", "is not one of", "did you mean"),
]


@pytest.mark.parametrize("change, ext, field, message, fix",
                         [case[1:] for case in GRAPH_CASES], ids=[c[0] for c in GRAPH_CASES])
def test_graph_format_error_names_node_or_link(tmp_path, run_cli, change, ext, field, message,
                                               fix):
    graph = _graph()
    change(graph)
    path = tmp_path / f"bad.{ext}"
    _write(graph, path)
    assert_one_line_error(run_cli("topology", "validate", path), path, None, field, message, fix)


def test_graph_directed(tmp_path, run_cli):
    path = tmp_path / "d.graphml"
    nx.write_graphml(nx.DiGraph(_graph()), path)
    assert_one_line_error(run_cli("topology", "validate", path), path, None, None,
                          "the graph is directed", "undirected")


def test_graphml_parallel_links(tmp_path, run_cli):
    graph = nx.MultiGraph(_graph())
    graph.add_edge("g0", "sw", bandwidth=1e9, latency=1e-6, tier="inter_block")
    path = tmp_path / "m.graphml"
    nx.write_graphml(graph, path)
    assert_one_line_error(run_cli("topology", "validate", path), path, None, "link 'g0'--'sw'",
                          "duplicate link between 'g0' and 'sw'", "one link per pair")


def test_node_link_duplicate_links(tmp_path, run_cli):
    data = nx.node_link_data(_graph(), edges="links")
    data["links"].append(dict(data["links"][0]))
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(data))
    assert_one_line_error(run_cli("topology", "validate", path), path, None, "links[2]",
                          "duplicate link between 'g0' and 'sw', first at links[0]",
                          "one link per pair")


def test_node_link_unknown_node(tmp_path, run_cli):
    data = nx.node_link_data(_graph(), edges="links")
    data["links"].append({"source": "g1", "target": "sww", "bandwidth": 1e9, "latency": 0.0})
    path = tmp_path / "unknown.json"
    path.write_text(json.dumps(data))
    assert_one_line_error(run_cli("topology", "validate", path), path, None, "node 'sww'",
                          "unknown node 'sww'", "did you mean 'sw'?")


def test_node_link_unit_string_instead_of_number(tmp_path, run_cli):
    data = nx.node_link_data(_graph(), edges="links")
    data["links"][0]["bandwidth"] = "25 GB/s"
    path = tmp_path / "str.json"
    path.write_text(json.dumps(data))
    assert_one_line_error(run_cli("topology", "validate", path), path, None,
                          "link 'g0'--'sw'.bandwidth", "expected a number in bytes/s",
                          "plain numbers in base units")


def test_json_syntax_error_has_line(write_file, run_cli):
    path = write_file("bad.json", '{"nodes": [\n  {"id": 1,}\n]}')
    assert_one_line_error(run_cli("topology", "validate", path), path, 2, None,
                          "JSON syntax error", "check commas")


def test_json_that_is_not_a_graph(write_file, run_cli):
    path = write_file("cases.json", '{"cases": []}')
    assert_one_line_error(run_cli("topology", "validate", path), path, None, None,
                          "not a networkx node-link graph", "node_link_data")


def test_graphml_syntax_error_has_line(write_file, run_cli):
    path = write_file("bad.graphml", "<graphml>\n<graph")
    assert_one_line_error(run_cli("topology", "validate", path), path, 2, None,
                          "cannot read this graphml file", "write_graphml")
