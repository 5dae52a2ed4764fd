"""The ``collectives`` section of topology files and reduction switches: read in base units,
written back equal in every format, and every mistake one line with the file, line and field."""

import json
import re

import networkx as nx
import pytest
from helpers import one_error_line

from simulator.cluster import generators
from simulator.cluster.topology import load_topology, topology_from_data, validate_graph
from simulator.cluster.writer import topology_to_yaml, write_topology
from simulator.network.protocols import collective_model
from simulator.utils import units
from simulator.utils.errors import InputError
from simulator.utils.yamlfile import load_schema

SCHEMA = "# yaml-language-server: $schema=../schemas/topology.schema.json\n"

COMPACT = SCHEMA + """\
name: racks
blocks: 2
gpus_per_block: 2
switch_reduction: true
gpu: {peak_flops: 15.7 TFLOP/s, efficiency: 0.4}
intra_block: {bandwidth: 25 GB/s, latency: 1 us}
inter_block: {bandwidth: 10 Gbit/s, latency: 5 us}
collectives:
  protocol: auto
  channels: 4
  channel_nics: [0, 1]
  thresholds: {LL: 64 KiB, LL128: 8 MiB}
  protocols:
    LL: {base_latency: 6 us, intra_block: {hop_latency: 0.5 us, efficiency: 0.45, max_busbw: 80 GB/s}}
    Simple:
      inter_block: {hop_latency: 12 us, efficiency: 0.9}
    in_switch: {latency: 20 us, efficiency: 0.9}
    tree: {efficiency: 0.9, inter_block: {channel_busbw: 20 GB/s}}
"""

EXPLICIT = SCHEMA + """\
gpus:
  - {name: g0, block: n0}
  - {name: g1, block: n0}
  - {name: g2, block: n0}
switches:
  - {name: nvs, block: n0, reduction: true}
link_defaults: {bandwidth: 300 GB/s, latency: 1 us}
links:
  - {between: [g0, nvs]}
  - {between: [g1, nvs]}
  - {between: [g2, nvs]}
  - {between: [g0, g1]}
  - {between: [g1, g2]}
  - {between: [g2, g0]}
collectives:
  rings: [[g0, g1, g2]]
"""


def test_the_section_is_read_in_base_units(write_file):
    graph = load_topology(write_file("racks.yaml", COMPACT))
    spec = graph.graph["collectives"]
    assert spec["channels"] == 4 and spec["channel_nics"] == [0, 1]
    assert spec["thresholds"] == {"LL": 65536.0, "LL128": 8 * 2.0**20}
    assert spec["protocols"]["LL"] == {"base_latency": 6e-6, "intra_block": {
        "hop_latency": 5e-7, "efficiency": 0.45, "max_busbw": 80e9}}
    assert spec["protocols"]["in_switch"] == {"latency": 20e-6, "efficiency": 0.9}
    assert spec["protocols"]["tree"] == {"efficiency": 0.9, "inter_block": {"channel_busbw": 20e9}}
    assert all(graph.nodes[f"sw{b}"]["reduction"] is True for b in range(2))
    assert "reduction" not in graph.nodes["core"]


def test_the_model_merges_the_topology_over_the_defaults(write_file):
    model = collective_model(load_topology(write_file("racks.yaml", COMPACT)))
    assert model.protocol("LL").base_latency_s == 6e-6
    assert model.protocol("LL").tier("intra_block").max_busbw_Bps == 80e9
    assert model.protocol("LL").tier("inter_block").efficiency == 0.48        # default kept
    assert model.protocol("Simple").tier("inter_block").hop_latency_s == 12e-6
    assert model.protocol("Simple").tier("intra_block").efficiency == 0.8     # default kept
    assert (model.in_switch.latency_s, model.in_switch.efficiency) == (20e-6, 0.9)
    assert model.tree.efficiency == 0.9
    assert dict(model.tree.channel_busbw_Bps) == {"intra_block": 24.0e9, "inter_block": 20e9}
    assert model.channels == 4 and model.channel_nics == (0, 1)


def test_explicit_reduction_switch_and_rings(write_file):
    graph = load_topology(write_file("tri.yaml", EXPLICIT))
    assert graph.nodes["nvs"]["reduction"] is True
    assert graph.graph["collectives"] == {"rings": [["g0", "g1", "g2"]]}


@pytest.mark.parametrize("ext", ["yaml", "graphml", "gml", "json"])
@pytest.mark.parametrize("text", [COMPACT, EXPLICIT])
def test_every_format_round_trips_the_section(write_file, tmp_path, text, ext):
    graph = load_topology(write_file("t.yaml", text))
    path = tmp_path / f"back.{ext}"
    write_topology(graph, path)
    again = load_topology(path)
    assert again.graph.get("collectives") == graph.graph["collectives"]
    assert dict(again.nodes(data=True)) == dict(graph.nodes(data=True))


def test_written_yaml_carries_the_section_with_units(write_file):
    text = topology_to_yaml(load_topology(write_file("racks.yaml", COMPACT)))
    section = text[text.index("collectives:"):]
    assert "thresholds: {LL: 64 KiB, LL128: 8 MiB}" in section
    assert "LL: {base_latency: 6 us, intra_block: {hop_latency: 0.5 us, efficiency: 0.45, " \
           "max_busbw: 80 GB/s}}" in section
    assert "- {name: sw0, block: block0, reduction: true}" in text


def test_generated_tori_carry_their_rings_through_a_file(tmp_path):
    graph = generators.torus_2d(4, 4)
    write_topology(graph, tmp_path / "t.yaml")
    assert load_topology(tmp_path / "t.yaml").graph["collectives"] == graph.graph["collectives"]


def test_dgx_generator_marks_reduction_switches():
    graph = generators.generate("dgx", nodes=2, switch_reduction=True)
    assert [n for n, r in graph.nodes(data="reduction") if r] == ["nvswitch0", "nvswitch1"]


BAD = [
    # id, text, replacement, line, field, message, fix
    ("protocol-name", COMPACT, ("protocol: auto", "protocol: LL256"), 10, "collectives.protocol",
     "'LL256' is not one of", "did you mean 'LL128'?"),
    ("channels-zero", COMPACT, ("channels: 4", "channels: 0"), 11, "collectives.channels",
     "channels must be an integer from 1 to 64, got 0", "write e.g. 8"),
    ("channels-too-many", COMPACT, ("channels: 4", "channels: 1000000000"), 11,
     "collectives.channels", "channels must be an integer from 1 to 64", "write e.g. 8"),
    ("efficiency-over-1", COMPACT, ("efficiency: 0.45", "efficiency: 1.5"), 15,
     "collectives.protocols.LL.intra_block.efficiency", "must be in (0, 1]", "0.4"),
    ("bare-number-latency", COMPACT, ("hop_latency: 0.5 us", "hop_latency: 0.5"), 15,
     "collectives.protocols.LL.intra_block.hop_latency", "missing unit: 0.5 is a bare number",
     "write a time with its unit"),
    ("wrong-unit", COMPACT, ("max_busbw: 80 GB/s", "max_busbw: 80 GB"), 15,
     "collectives.protocols.LL.intra_block.max_busbw", "'80 GB' is not a bandwidth",
     "write a bandwidth with its unit"),
    ("typo-in-tier", COMPACT, ("inter_block: {hop_latency: 12 us", "inter_blok: {hop_latency: 12 us"),
     17, "collectives.protocols.Simple.inter_blok", "unknown key 'inter_blok'",
     "did you mean 'inter_block'?"),
    ("unknown-protocol", COMPACT, ("    LL: {base", "    LL64: {base"), 15,
     "collectives.protocols.LL64", "unknown key 'LL64'", "did you mean 'LL'?"),
    ("threshold-order", COMPACT, ("LL128: 8 MiB", "LL128: 8 KiB"), 13,
     "collectives.thresholds.LL128", "the LL128 threshold is below the LL one", "LL <= LL128"),
    ("threshold-unit", COMPACT, ("LL: 64 KiB", "LL: 64 us"), 13, "collectives.thresholds.LL",
     "'64 us' is not a size", "write a size with its unit"),
    ("ring-not-a-gpu", EXPLICIT, ("rings: [[g0, g1, g2]]", "rings: [[g0, g1, nvs]]"), 17,
     "collectives.rings[0][2]", "'nvs' is not a GPU of the topology", "list the GPUs"),
    ("ring-twice", EXPLICIT, ("rings: [[g0, g1, g2]]", "rings: [[g0, g1, g1]]"), 17,
     "collectives.rings[0][2]", "'g1' appears twice in the ring", "name each GPU once"),
    ("ring-short", EXPLICIT, ("rings: [[g0, g1, g2]]", "rings: [[g0, g1]]"), 17,
     "collectives.rings[0]", "the ring leaves out 'g2'", "every GPU of the topology once"),
    ("reduction-on-a-nic", EXPLICIT, ("switches:\n", "nics:\n  - {name: nic, reduction: true}\n"
                                      "switches:\n"), 7, "nics[0].reduction",
     "unknown key 'reduction'", "allowed here: name, block"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_mistakes_are_one_line_with_line_and_field(write_file, run_cli, case):
    _, text, (old, new), line, field, message, fix = case
    assert old in text
    path = write_file("bad.yaml", text.replace(old, new, 1))
    error = one_error_line(run_cli("topology", "validate", path))
    assert error.startswith(f"error: {path}:{line}: {field}: "), error
    assert message in error and fix in error[error.index(message):], error


def test_graph_formats_check_the_section_too(tmp_path, run_cli):
    graph = generators.two_tier(2, 2)
    graph.graph["collectives"] = {"protocols": {"LL": {"intra_block": {"efficiency": 2.0}}}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(nx.node_link_data(graph, edges="links")))
    error = one_error_line(run_cli("topology", "validate", path))
    assert error == (f"error: {path}: graph.collectives.protocols.LL.intra_block.efficiency: "
                     "must be in (0, 1], got 2.0 (write e.g. 0.8)")
    graph = generators.two_tier(2, 2)
    graph.graph["collectives"] = "{not json"
    nx.write_graphml(graph, tmp_path / "t.graphml")
    error = one_error_line(run_cli("topology", "validate", tmp_path / "t.graphml"))
    assert "graph.collectives: not JSON" in error


def test_reduction_belongs_to_switches():
    graph = generators.two_tier(2, 2)
    graph.nodes["gpu0_0"]["reduction"] = True
    with pytest.raises(InputError, match=re.escape("node 'gpu0_0'.reduction: reduction is a "
                                                   "true/false property of switches")):
        validate_graph(graph)


def test_the_size_pattern_of_the_schema_agrees_with_units_py():
    definition = load_schema("topology")["$defs"]["size"]
    pattern = re.compile(definition["pattern"])
    for text in ["64 KiB", "8 MiB", "1 GB", "100B", "8 bit", "64", "64 KiB/s", "1 s", " 2 MB "]:
        try:
            units.parse_quantity(text, definition["x-unit"])
            parses = True
        except units.UnitError:
            parses = False
        assert bool(pattern.search(text)) == parses, text


def test_topology_from_data_takes_the_section_without_a_file():
    graph = topology_from_data({
        "gpus": [{"name": "a", "block": "x"}, {"name": "b", "block": "y"}],
        "links": [{"between": ["a", "b"], "bandwidth": "1 GB/s", "latency": "1 us"}],
        "collectives": {"protocol": "ideal"}})
    assert graph.graph["collectives"] == {"protocol": "ideal"}
