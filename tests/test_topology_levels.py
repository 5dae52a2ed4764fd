"""Nested topologies (GPUs in nodes in racks in sites): both YAML forms, tiers, round trips."""

import collections

import networkx as nx
import pytest

from simulator.cluster.levels import graph_levels, graph_tiers, group_tier
from simulator.cluster.topology import gpu_blocks, load_topology, topology_from_data
from simulator.cluster.writer import write_topology
from simulator.network.collectives import ring_order
from simulator.network.flows import Network
from simulator.utils.errors import InputError

GPU = {"type": "V100", "peak_flops": "15.7 TFLOP/s", "efficiency": 0.4}
LINKS = {"gpu": ("25 GB/s", "1 us"), "node": ("100 Gbit/s", "2 us"),
         "rack": ("40 Gbit/s", "5 us"), "site": ("10 Gbit/s", "5 ms")}

# 2 sites x 2 racks x 2 nodes x 2 GPUs, compact form.
COMPACT = {
    "name": "sites", "blocks": 8, "gpus_per_block": 2, "block_level": "node", "gpu": GPU,
    "intra_block": {"bandwidth": LINKS["gpu"][0], "latency": LINKS["gpu"][1]},
    "inter_block": {"bandwidth": LINKS["node"][0], "latency": LINKS["node"][1]},
    "levels": [
        {"name": "rack", "size": 2,
         "uplink": {"bandwidth": LINKS["rack"][0], "latency": LINKS["rack"][1]}},
        {"name": "site", "size": 2,
         "uplink": {"bandwidth": LINKS["site"][0], "latency": LINKS["site"][1]}}],
}


def explicit_data():
    """The same cluster written out device by device, as a user would in the explicit form
    (built here by loops, independently of sgdsim's compact builder)."""
    gpus, switches, links = [], [{"name": "core"}], []

    def link(u, v, kind):
        links.append({"between": [u, v], "bandwidth": LINKS[kind][0], "latency": LINKS[kind][1]})

    for s in range(2):
        switches.append({"name": f"sw_site{s}", "group": f"site{s}"})
        link(f"sw_site{s}", "core", "site")
    for r in range(4):
        switches.append({"name": f"sw_rack{r}", "group": f"rack{r}"})
        link(f"sw_rack{r}", f"sw_site{r // 2}", "rack")
    for n in range(8):
        switches.append({"name": f"sw{n}", "block": f"node{n}"})
        link(f"sw{n}", f"sw_rack{n // 2}", "node")
        for i in range(2):
            gpus.append({"name": f"gpu{n}_{i}", "block": f"node{n}"})
            link(f"gpu{n}_{i}", f"sw{n}", "gpu")
    return {"name": "sites", "block_level": "node", "gpu_defaults": GPU,
            "levels": [{"name": "rack", "groups": {f"rack{r}": [f"node{2 * r}", f"node{2 * r + 1}"]
                                                   for r in range(4)}},
                       {"name": "site", "groups": {"site0": ["rack0", "rack1"],
                                                   "site1": ["rack2", "rack3"]}}],
            "gpus": gpus, "switches": switches, "links": links}


def expected_tier(u, v):
    """The tier each link must have, from what it joins (the level it crosses)."""
    ends = sorted([u, v])
    if any(e.startswith("gpu") for e in ends):
        return "intra_node"
    if "core" in ends:
        return "inter_site"
    if any(e.startswith("sw_site") for e in ends):
        return "inter_rack"
    return "inter_node"                                  # node switch -- rack switch


@pytest.fixture(scope="module")
def compact():
    return topology_from_data(COMPACT)


def test_both_forms_give_the_same_graph_with_the_right_tier_on_every_link(compact):
    explicit = topology_from_data(explicit_data())
    assert nx.utils.graphs_equal(compact, explicit)
    assert graph_levels(compact) == ("node", "rack", "site")
    assert graph_tiers(compact) == ("intra_node", "inter_node", "inter_rack", "inter_site")
    for u, v, tier in compact.edges(data="tier"):
        assert tier == expected_tier(u, v), (u, v)
    assert collections.Counter(t for _, _, t in compact.edges(data="tier")) == \
        {"intra_node": 16, "inter_node": 8, "inter_rack": 4, "inter_site": 2}
    assert compact.nodes["gpu5_1"] == {"kind": "gpu", "block": "node5", "rack": "rack2",
                                       "site": "site1", "gpu_type": "V100",
                                       "peak_flops": 15.7e12, "efficiency": 0.4}
    assert compact.nodes["sw_rack1"] == {"kind": "switch", "rack": "rack1", "site": "site0"}


def test_every_format_round_trips_a_nested_topology(compact, tmp_path):
    for ext in ("yaml", "graphml", "gml", "json"):
        path = tmp_path / f"sites.{ext}"
        write_topology(compact, path)
        assert nx.utils.graphs_equal(load_topology(path), compact), ext


def test_blocks_of_one_group_stay_adjacent_in_ring_order():
    # Racks named so that natural block order would interleave them.
    data = explicit_data()
    data["levels"][0]["groups"] = {"rack0": ["node0", "node4"], "rack1": ["node1", "node5"],
                                   "rack2": ["node2", "node6"], "rack3": ["node3", "node7"]}
    graph = topology_from_data(data)
    assert list(gpu_blocks(graph)) == ["node0", "node4", "node1", "node5",
                                       "node2", "node6", "node3", "node7"]
    order = ring_order(graph, sorted(g for g, kind in graph.nodes(data="kind") if kind == "gpu"))
    assert order[:4] == ["gpu0_0", "gpu0_1", "gpu4_0", "gpu4_1"]


def test_a_group_of_gpus_has_the_tier_of_the_outermost_boundary_it_spans(compact):
    assert group_tier(compact, ["gpu0_0", "gpu0_1"]) == "intra_node"
    assert group_tier(compact, ["gpu0_0", "gpu1_0"]) == "inter_node"
    assert group_tier(compact, ["gpu0_0", "gpu2_0"]) == "inter_rack"
    assert group_tier(compact, ["gpu0_0", "gpu7_1"]) == "inter_site"


def test_the_network_counts_bytes_on_every_level(compact):
    import simpy

    env = simpy.Environment()
    net = Network(env, compact)
    env.run(net.send("gpu0_0", "gpu7_0", 1e6))        # across sites: 8 links
    assert net.bytes_by_tier() == {"intra_node": 2e6, "inter_node": 2e6, "inter_rack": 2e6,
                                   "inter_site": 2e6}


def test_two_level_files_are_unchanged():
    graph = load_topology("seed_8x2")
    assert "levels" not in graph.graph
    assert graph_tiers(graph) == ("intra_block", "inter_block")
    assert {t for _, _, t in graph.edges(data="tier")} == {"intra_block", "inter_block"}


@pytest.mark.parametrize("change, field, message", [
    (lambda d: d.update(blocks=6), "blocks", "6 is not a multiple of 4"),
    (lambda d: d["levels"][1].update(name="rack"), "levels[1].name", "named twice"),
    (lambda d: d["levels"][0].update(name="global"), "levels[0].name", "cannot name a level"),
])
def test_bad_compact_levels_are_one_located_error(change, field, message):
    data = {**COMPACT, "levels": [dict(level) for level in COMPACT["levels"]]}
    change(data)
    with pytest.raises(InputError) as err:
        topology_from_data(data, file="t.yaml")
    assert err.value.field == field and message in err.value.message


@pytest.mark.parametrize("change, field, message", [
    (lambda d: d["levels"][0]["groups"].update(rack0=["node0", "nod1"]),
     "levels[0].groups.rack0[1]", "'nod1' is not a node"),
    (lambda d: d["levels"][0]["groups"].update(rack3=["node6"]),
     "levels[0].groups", "node 'node7' is in no rack"),
    (lambda d: d["levels"][0]["groups"].update(rack1=["node2", "node3", "node1"]),
     "levels[0].groups.rack1[2]", "node 'node1' is in two racks"),
    (lambda d: d["switches"][3].update(group="rak0"), "switches[3].group",
     "unknown group 'rak0'"),
    (lambda d: d["links"][0].update(tier="inter_blok"), "links[0].tier",
     "'inter_blok' is not one of 'intra_node', 'inter_node', 'inter_rack', 'inter_site'"),
])
def test_bad_explicit_levels_are_one_located_error(change, field, message):
    data = explicit_data()
    change(data)
    with pytest.raises(InputError) as err:
        topology_from_data(data, file="t.yaml")
    assert err.value.field == field and message in err.value.message


def test_graph_files_must_nest_consistently(compact, tmp_path):
    graph = compact.copy()
    graph.nodes["gpu1_0"]["rack"] = "rack1"            # node1 is in rack0 elsewhere
    nx.write_graphml(graph, tmp_path / "bad.graphml")
    with pytest.raises(InputError, match="node 'node1' is in rack 'rack0'"):
        load_topology(tmp_path / "bad.graphml")
    graph = compact.copy()
    del graph.nodes["gpu1_0"]["site"]
    nx.write_graphml(graph, tmp_path / "bad2.graphml")
    with pytest.raises(InputError, match="gpu 'gpu1_0' is in no site"):
        load_topology(tmp_path / "bad2.graphml")
