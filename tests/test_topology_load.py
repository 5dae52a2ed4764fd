"""Loading, writing and round-tripping topologies; the schema; the shipped topology files."""

import copy
import json
import pathlib
import re

import jsonschema
import networkx as nx
import pytest
from helpers import EXPLICIT_TOPOLOGY

from simulator.cluster import topology as topo
from simulator.cluster import writer
from simulator.utils import units
from simulator.utils.errors import InputError
from simulator.utils.yamlfile import load_schema, load_yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "topologies").glob("*.yaml"))
# A copy of shared/reference/transfer_cases.json, kept in the repo so these tests always run.
REFERENCE = pathlib.Path(__file__).parent / "data" / "transfer_cases.json"

COMPACT_2X2 = """\
name: tiny
blocks: 2
gpus_per_block: 2
gpu: {type: V100, peak_flops: 15.7 TFLOP/s, efficiency: 0.4}
intra_block: {bandwidth: 25 GB/s, latency: 1 us}
inter_block: {bandwidth: 40 GB/s, latency: 5 us}
"""

EXPLICIT = EXPLICIT_TOPOLOGY

# Reference case two_tier_2x2_4_flows of /work/shared/reference/transfer_cases.json, verbatim.
REFERENCE_2X2 = json.loads("""{"directed": false, "multigraph": false, "graph": {},
 "nodes": [{"kind": "switch", "id": "core"}, {"kind": "switch", "id": "sw0"},
  {"kind": "gpu", "block": "block0", "id": "gpu0_0"}, {"kind": "gpu", "block": "block0", "id": "gpu0_1"},
  {"kind": "switch", "id": "sw1"}, {"kind": "gpu", "block": "block1", "id": "gpu1_0"},
  {"kind": "gpu", "block": "block1", "id": "gpu1_1"}],
 "links": [
  {"bandwidth": 40000000000.0, "latency": 5e-06, "tier": "inter_block", "source": "core", "target": "sw0"},
  {"bandwidth": 40000000000.0, "latency": 5e-06, "tier": "inter_block", "source": "core", "target": "sw1"},
  {"bandwidth": 25000000000.0, "latency": 1e-06, "tier": "intra_block", "source": "sw0", "target": "gpu0_0"},
  {"bandwidth": 25000000000.0, "latency": 1e-06, "tier": "intra_block", "source": "sw0", "target": "gpu0_1"},
  {"bandwidth": 25000000000.0, "latency": 1e-06, "tier": "intra_block", "source": "sw1", "target": "gpu1_0"},
  {"bandwidth": 25000000000.0, "latency": 1e-06, "tier": "intra_block", "source": "sw1", "target": "gpu1_1"}]}""")


def assert_same_graph(a, b):
    """Same nodes, edges, node/edge/graph attributes (and so isomorphic by identity)."""
    assert nx.utils.graphs_equal(a, b), (a.graph, b.graph)
    assert nx.is_isomorphic(a, b, node_match=dict.__eq__, edge_match=dict.__eq__)


# --------------------------------------------------------------------------- compact form
def test_compact_builds_the_contract_names_in_order(write_file):
    graph = topo.load_topology(write_file("c.yaml", COMPACT_2X2))
    assert list(graph) == ["core", "sw0", "gpu0_0", "gpu0_1", "sw1", "gpu1_0", "gpu1_1"]
    assert graph.graph == {"name": "tiny"}
    assert graph.nodes["core"] == {"kind": "switch"}
    assert graph.nodes["sw1"] == {"kind": "switch", "block": "block1"}
    assert graph.nodes["gpu1_0"] == {"kind": "gpu", "block": "block1", "peak_flops": 15.7e12,
                                     "efficiency": 0.4, "gpu_type": "V100"}
    assert sorted(map(sorted, graph.edges())) == sorted(map(sorted, [
        ("gpu0_0", "sw0"), ("gpu0_1", "sw0"), ("sw0", "core"),
        ("gpu1_0", "sw1"), ("gpu1_1", "sw1"), ("sw1", "core")]))
    assert graph.edges["gpu0_1", "sw0"] == {"bandwidth": 25e9, "latency": 1e-6,
                                            "tier": "intra_block"}
    assert graph.edges["sw1", "core"] == {"bandwidth": 40e9, "latency": 5e-6,
                                          "tier": "inter_block"}


def test_compact_with_one_block_still_has_core(write_file):
    graph = topo.load_topology(write_file("c.yaml", COMPACT_2X2.replace("blocks: 2", "blocks: 1")))
    assert list(graph) == ["core", "sw0", "gpu0_0", "gpu0_1"]
    assert graph.has_edge("sw0", "core")


def test_compact_matches_reference_case_graph(write_file):
    """The compact 2x2 with the reference's link specs is the reference graph, plus the
    attributes the reference leaves out (switch blocks, GPU compute)."""
    ours = topo.load_topology(write_file("c.yaml", COMPACT_2X2))
    reference = nx.node_link_graph(REFERENCE_2X2, edges="links")
    assert list(ours) == list(reference)
    assert {frozenset(e) for e in ours.edges} == {frozenset(e) for e in reference.edges}
    for u, v, attrs in reference.edges(data=True):
        assert ours.edges[u, v] == attrs
    for node, attrs in reference.nodes(data=True):
        assert {k: ours.nodes[node][k] for k in attrs} == attrs


# --------------------------------------------------------------------------- explicit form
def test_explicit_merges_defaults_and_infers_tiers(write_file):
    graph = topo.load_topology(write_file("e.yaml", EXPLICIT))
    assert graph.graph == {"name": "two-gpus"}
    assert graph.nodes["g0"] == {"kind": "gpu", "block": "node0", "gpu_type": "A100",
                                 "peak_flops": 312e12, "efficiency": 0.5}
    assert graph.nodes["g1"]["efficiency"] == 0.3  # own value beats gpu_defaults
    assert graph.nodes["nvs0"] == {"kind": "switch", "block": "node0"}
    assert graph.nodes["spine"] == {"kind": "switch"}
    assert graph.edges["g0", "nvs0"] == {"bandwidth": 300e9, "latency": 1e-6,
                                         "tier": "intra_block"}  # same block
    assert graph.edges["nvs0", "spine"] == {"bandwidth": 25e9, "latency": 2e-6,
                                            "tier": "inter_block"}
    assert graph.edges["g1", "spine"]["tier"] == "inter_block"  # spine has no block


def test_explicit_tier_given_overrides_rule(write_file):
    text = EXPLICIT.replace("{between: [g0, nvs0], bandwidth: 300 GB/s}",
                            "{between: [g0, nvs0], bandwidth: 300 GB/s, tier: inter_block}")
    graph = topo.load_topology(write_file("e.yaml", text))
    assert graph.edges["g0", "nvs0"]["tier"] == "inter_block"


def test_equal_blocks_flag_is_kept_and_checked(write_file):
    graph = topo.load_topology(write_file("e.yaml", "equal_blocks: true\n" + EXPLICIT))
    assert graph.graph["equal_blocks"] is True
    graph.add_node("g2", kind="gpu", block="node0")
    graph.add_edge("g2", "nvs0", bandwidth=1e9, latency=0.0, tier="intra_block")
    with pytest.raises(InputError, match="unequal"):
        topo.validate_graph(graph)


@pytest.mark.parametrize("text, kind, expected", [
    ("25 GB/s", "bandwidth", 25e9), ("100 Gbit/s", "bandwidth", 12.5e9),
    ("100Gbps", "bandwidth", 12.5e9), ("2 GiB/s", "bandwidth", 2 * 2**30),
    ("800 Mb/s", "bandwidth", 1e8), ("2 us", "latency", 2e-6), ("0.5 ms", "latency", 5e-4),
    ("3 µs", "latency", 3e-6), ("0 s", "latency", 0.0), ("250ns", "latency", 2.5e-7),
])
def test_units_in_yaml(write_file, text, kind, expected):
    link = {"bandwidth": "25 GB/s", "latency": "1 us"}
    link[kind] = text
    data = COMPACT_2X2.replace("intra_block: {bandwidth: 25 GB/s, latency: 1 us}",
                               f"intra_block: {{bandwidth: {link['bandwidth']}, "
                               f"latency: {link['latency']}}}")
    graph = topo.load_topology(write_file("u.yaml", data))
    assert graph.edges["gpu0_0", "sw0"][kind] == expected


@pytest.mark.parametrize("text, expected", [("312 TFLOP/s", 312e12), ("19.5 TFLOPS", 19.5e12),
                                            ("1.5 PFLOP/s", 1.5e15)])
def test_flops_units_in_yaml(write_file, text, expected):
    graph = topo.load_topology(write_file("f.yaml", COMPACT_2X2.replace("15.7 TFLOP/s", text)))
    assert graph.nodes["gpu0_0"]["peak_flops"] == expected


def test_topology_from_data_without_file():
    data = {"gpus": [{"name": "a", "block": "x"}], "links": []}
    assert topo.summarize(topo.topology_from_data(data)) == \
        "1 GPU in 1 block, 0 switches, 0 NICs, 0 links"
    with pytest.raises(InputError) as err:
        topo.topology_from_data({**data, "linkz": []})
    assert str(err.value) == "linkz: unknown key 'linkz' (did you mean 'links'?)"


# --------------------------------------------------------------------------- the schema
def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_schema_is_valid_draft_2020_12_and_documented():
    schema = load_schema("topology")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert len(schema["oneOf"]) == 2
    objects = [node for node in _walk(schema) if "properties" in node]
    assert len(objects) >= 6
    for node in objects:
        assert node.get("additionalProperties") is False, node.get("description")
        for name, prop in node["properties"].items():
            assert prop.get("description"), name


UNIT_SAMPLES = ["25 GB/s", "25GB/s", "100 Gbit/s", "100Gbps", "1 GiB/s", "3 bytes/s",
                "1.5e3 MB/s", " 25 GB/s ", "-5 GB/s", "25 GHz", "25", "GB/s", "25 G B/s",
                "2 us", "0.5 ms", "1 s", "3 µs", "2 min", "1 h", "5 parsecs", "10 m",
                "312 TFLOP/s", "19.5 TFLOPS", "1 flop/s", "1 TFLOP", "1e3 kFLOP/s", ".5 ns"]


@pytest.mark.parametrize("kind", ["bandwidth", "time", "flops"])
def test_schema_unit_patterns_agree_with_units_py(kind):
    definition = load_schema("topology")["$defs"][kind]
    assert definition["x-unit"] == kind
    pattern = re.compile(definition["pattern"])
    for text in UNIT_SAMPLES + definition["examples"]:
        try:
            units.parse_quantity(text, kind)
            parses = True
        except units.UnitError:
            parses = False
        assert bool(pattern.search(text)) == parses, text


def test_load_yaml_locates_keys_and_items(write_file):
    data, locate = load_yaml(write_file("e.yaml", "# comment\n" + EXPLICIT))
    assert data["links"][2]["between"] == ["g1", "spine"]
    assert locate(()) == 2
    assert locate(("gpu_defaults", "peak_flops")) == 3
    assert locate(("gpus", 1)) == 6
    assert locate(("links", 2, "between", 1)) == 15
    assert locate(("links", 7, "bandwidth")) == 12  # deepest existing part: links
    assert locate(("nope",)) == 2


def test_load_yaml_rejects_nested_duplicate_keys(write_file):
    path = write_file("d.yaml", "a:\n  b: 1\n  c: 2\n  b: 3\n")
    with pytest.raises(InputError) as err:
        load_yaml(path)
    assert (err.value.line, err.value.field) == (4, "a.b")
    assert "duplicate key 'b', first at line 2" in str(err.value)


# --------------------------------------------------------------------------- shipped files
EXPECTED = {
    "seed_8x2.yaml": "16 GPUs in 8 blocks, 9 switches, 0 NICs, 24 links",
    "blocks_2x8.yaml": "16 GPUs in 2 blocks, 3 switches, 0 NICs, 18 links",
    "blocks_4x4.yaml": "16 GPUs in 4 blocks, 5 switches, 0 NICs, 20 links",
    "blocks_8x2.yaml": "16 GPUs in 8 blocks, 9 switches, 0 NICs, 24 links",
    "dgx_a100_4node.yaml": "32 GPUs in 4 blocks, 5 switches, 32 NICs, 96 links",
    "two_datacenter.yaml": "16 GPUs in 4 blocks, 6 switches, 0 NICs, 21 links",
}


def test_every_expected_topology_is_shipped():
    assert set(EXPECTED) <= {path.name for path in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_topology_validates(run_cli, path):
    graph = topo.load_topology(path)
    topo.validate_graph(graph, require_equal_blocks=True, require_compute=True)
    result = run_cli("topology", "validate", path)
    assert result.exit_code == 0, result.output
    assert result.output == f"{path}: ok ({EXPECTED.get(path.name, topo.summarize(graph))})\n"
    assert path.read_text().startswith(
        "# yaml-language-server: $schema=../schemas/topology.schema.json\n")


def test_seed_topology_is_the_seed_cluster():
    graph = topo.load_topology(ROOT / "topologies" / "seed_8x2.yaml")
    assert topo.gpu_blocks(graph) == {f"block{b}": [f"gpu{b}_0", f"gpu{b}_1"] for b in range(8)}
    assert graph.edges["gpu3_1", "sw3"]["bandwidth"] == 25e9
    assert graph.edges["sw3", "core"] == {"bandwidth": 1.25e9, "latency": 5e-6,
                                          "tier": "inter_block"}
    assert graph.nodes["gpu0_0"]["peak_flops"] == 15.7e12


def test_dgx_topology_links_and_tiers():
    graph = topo.load_topology(ROOT / "topologies" / "dgx_a100_4node.yaml")
    assert graph.nodes["n2_gpu5"] == {"kind": "gpu", "block": "node2", "gpu_type": "A100",
                                      "peak_flops": 312e12, "efficiency": 0.5}
    assert graph.edges["n2_gpu5", "n2_nvswitch"] == {"bandwidth": 300e9, "latency": 1e-6,
                                                     "tier": "intra_block"}
    assert graph.edges["n2_gpu5", "n2_nic5"]["tier"] == "intra_block"
    assert graph.edges["n2_nic5", "fabric"] == {"bandwidth": 25e9, "latency": 1e-6,
                                                "tier": "inter_block"}
    assert all(graph.nodes[n]["block"] == "node2" for n in ("n2_nvswitch", "n2_nic0"))


def test_two_datacenter_has_one_wan_link():
    graph = topo.load_topology(ROOT / "topologies" / "two_datacenter.yaml")
    assert graph.edges["site_a", "site_b"] == {"bandwidth": 1.25e9, "latency": 5e-3,
                                               "tier": "inter_block"}
    assert nx.has_bridges(graph) and ("site_a", "site_b") in {
        tuple(sorted(b)) for b in nx.bridges(graph)}


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
@pytest.mark.parametrize("ext", ["yaml", "graphml", "gml", "json"])
def test_round_trip_through_every_format(tmp_path, path, ext):
    graph = topo.load_topology(path)
    out = tmp_path / f"copy.{ext}"
    writer.write_topology(graph, out)
    assert_same_graph(topo.load_topology(out), graph)


def test_yaml_round_trip_text_is_explicit_and_stable(write_file):
    graph = topo.load_topology(write_file("e.yaml", EXPLICIT))
    text = writer.topology_to_yaml(graph)
    assert text.startswith("# yaml-language-server: $schema=../schemas/")
    again = topo.load_topology(write_file("again.yaml", text))
    assert_same_graph(again, graph)
    assert writer.topology_to_yaml(again) == text
    assert "gpu_defaults: {type: A100, peak_flops: 312 TFLOP/s}" in text
    assert "  - {between: [nvs0, spine], bandwidth: 25 GB/s, latency: 2 us}" in text


def test_compact_to_explicit_yaml(write_file):
    graph = topo.load_topology(write_file("c.yaml", COMPACT_2X2))
    text = writer.topology_to_yaml(graph)
    assert "blocks:" not in text and "links:" in text and "tier:" not in text
    assert_same_graph(topo.load_topology(write_file("x.yaml", text)), graph)


def test_written_yaml_points_at_the_schema(tmp_path):
    graph = topo.load_topology(ROOT / "topologies" / "blocks_4x4.yaml")
    out = tmp_path / "sub" / "t.yaml"
    out.parent.mkdir()
    writer.write_topology(graph, out)
    first = out.read_text().splitlines()[0]
    ref = first.removeprefix("# yaml-language-server: $schema=")
    assert ref != first and (out.parent / ref).resolve() == \
        (ROOT / "schemas" / "topology.schema.json").resolve()


def test_awkward_floats_round_trip_exactly(write_file):
    graph = nx.Graph(name="odd")
    graph.add_node("a", kind="gpu", block="b0", peak_flops=1.23456789e13, efficiency=1 / 3)
    graph.add_node("b", kind="gpu", block="b1", peak_flops=7.0, efficiency=1.0)
    graph.add_edge("a", "b", bandwidth=1e10 / 3, latency=0.1 + 0.2, tier="intra_block")
    graph.add_node("c", kind="nic", block="b1")
    graph.add_edge("b", "c", bandwidth=12345.678, latency=0.0, tier="intra_block")
    again = topo.load_topology(write_file("odd.yaml", writer.topology_to_yaml(graph)))
    assert_same_graph(again, graph)


# --------------------------------------------------------------------------- networkx forms
def test_reference_graph_loads_from_node_link_json(write_file):
    path = write_file("ref.json", json.dumps(REFERENCE_2X2))
    graph = topo.load_topology(path)
    assert_same_graph(graph, nx.node_link_graph(REFERENCE_2X2, edges="links"))
    assert topo.summarize(graph) == "4 GPUs in 2 blocks, 3 switches, 0 NICs, 6 links"


def test_all_shared_reference_graphs_load(tmp_path):
    for case in json.loads(REFERENCE.read_text())["cases"]:
        path = tmp_path / f"{case['name']}.json"
        path.write_text(json.dumps(case["graph"]))
        graph = topo.load_topology(path)
        assert_same_graph(graph, nx.node_link_graph(case["graph"], edges="links"))
        out = tmp_path / f"{case['name']}.yaml"
        writer.write_topology(graph, out)
        assert_same_graph(topo.load_topology(out), graph)


def test_node_link_edges_key_int_ids_and_missing_tier(write_file):
    data = {"nodes": [{"id": 0, "kind": "gpu", "block": "n0"},
                      {"id": 1, "kind": "switch", "block": "n0"},
                      {"id": 2, "kind": "gpu", "block": "n1"}],
            "edges": [{"source": 0, "target": 1, "bandwidth": 10, "latency": 0},
                      {"source": 1, "target": 2, "bandwidth": 10, "latency": 0}]}
    graph = topo.load_topology(write_file("g.json", json.dumps(data)))
    assert list(graph) == ["0", "1", "2"]
    assert graph.edges["0", "1"] == {"bandwidth": 10.0, "latency": 0.0, "tier": "intra_block"}
    assert graph.edges["1", "2"]["tier"] == "inter_block"


# --------------------------------------------------------------------------- API
def test_validate_graph_keywords():
    graph = nx.node_link_graph(copy.deepcopy(REFERENCE_2X2), edges="links")
    topo.validate_graph(graph, require_equal_blocks=True)
    with pytest.raises(InputError, match=r"node 'gpu0_0'\.peak_flops: missing"):
        topo.validate_graph(graph, require_compute=True)
    graph.remove_node("gpu1_1")
    topo.validate_graph(graph)
    with pytest.raises(InputError, match="'block1' has 1, 'block0' has 2"):
        topo.validate_graph(graph, require_equal_blocks=True)


def test_summarize_counts():
    graph = nx.node_link_graph(REFERENCE_2X2, edges="links")
    graph.add_node("nic", kind="nic")
    assert topo.summarize(graph) == "4 GPUs in 2 blocks, 3 switches, 1 NIC, 6 links"


def test_write_topology_refuses_unknown_extension_and_invalid_graph(tmp_path):
    graph = nx.node_link_graph(REFERENCE_2X2, edges="links")
    with pytest.raises(InputError, match="unknown topology file type '.txt'"):
        writer.write_topology(graph, tmp_path / "t.txt")
    graph.edges["core", "sw0"]["bandwidth"] = 0.0
    with pytest.raises(InputError, match="must be positive"):
        writer.write_topology(graph, tmp_path / "t.yaml")
    assert not (tmp_path / "t.yaml").exists()
