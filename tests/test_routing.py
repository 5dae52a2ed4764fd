"""Routes against a reference written here: hop counts from the destination over the whole
graph (networkx's BFS), then from the source the naturally first neighbour one hop nearer
(sorted with Python's stable sort) -- the rule of docs/semantics.md, "Routes"."""

import itertools

import networkx as nx
import numpy as np
import pytest

from simulator.cluster import generators
from simulator.cluster.topology import natural_key
from simulator.network.routing import Router, shortest_route
from simulator.utils.errors import NetworkError


def reference_route(graph, src, dst):
    hops = nx.single_source_shortest_path_length(graph, dst)
    path = [src]
    while path[-1] != dst:
        here = path[-1]
        path.append(next(n for n in sorted(graph[here], key=natural_key) if hops.get(n) == hops[here] - 1))
    return path


def renamed(graph, seed):
    """The same graph under shuffled names ('n7_3' < 'n10_0' naturally, not as text), its
    nodes and edges added in a shuffled order: natural order unlike insertion order."""
    rng = np.random.default_rng(seed)
    nodes = list(graph)
    names = [f"{rng.choice(['n', 'sw', 'gpu'])}{rng.integers(0, 40)}_{i}" for i in range(len(nodes))]
    mapping = dict(zip(nodes, names))
    g = nx.Graph()
    order = rng.permutation(len(nodes))
    g.add_nodes_from(names[i] for i in order)
    edges = [(mapping[u], mapping[v]) for u, v in graph.edges()]
    for i in rng.permutation(len(edges)):
        g.add_edge(*edges[i])
    return g


GRAPHS = {
    "two_tier": generators.two_tier(4, 3),
    "fat_tree": generators.fat_tree(4),
    "torus": generators.torus_2d(4, 5),
    "ring": generators.ring(9),
    "dgx": generators.dgx(2, 4, 2),
    "two_sites": generators.two_sites(2, 2),
    "grid": nx.grid_2d_graph(4, 4),
    "hypercube": nx.hypercube_graph(4),
    "random": nx.random_regular_graph(3, 24, seed=1),
    "ladder": nx.circular_ladder_graph(7),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_every_route_equals_the_reference(name):
    for seed, graph in enumerate([GRAPHS[name], renamed(GRAPHS[name], 0), renamed(GRAPHS[name], 1)]):
        router = Router(graph)
        for src, dst in itertools.permutations(graph, 2):
            assert router.route(src, dst) == reference_route(graph, src, dst), (name, seed, src, dst)


def test_names_with_equal_natural_keys_keep_the_graph_order():
    # 'b01' and 'b1' have the same natural key; sorted() keeps the adjacency order.
    for middle in (["b01", "b1"], ["b1", "b01"]):
        g = nx.Graph()
        for m in middle:
            g.add_edge("a", m)
            g.add_edge(m, "z")
        assert shortest_route(g, "a", "z") == reference_route(g, "a", "z") == ["a", middle[0], "z"]


def test_route_links_are_the_directed_links_of_the_route():
    g = generators.two_tier(3, 2)
    router = Router(g)
    for src, dst in [("gpu0_0", "gpu2_1"), ("gpu2_1", "gpu0_0"), ("gpu1_0", "gpu1_1")]:
        path = router.route(src, dst)
        assert [router.links[i] for i in router.route_links(src, dst)] == list(zip(path, path[1:]))
    assert router.route_links("gpu0_0", "gpu0_0").tolist() == []


def test_unknown_and_unreachable_ends():
    g = nx.path_graph(["a", "b"])
    g.add_node("c")
    with pytest.raises(NetworkError, match="unknown node 'x'"):
        shortest_route(g, "a", "x")
    with pytest.raises(NetworkError, match="no path from 'a' to 'c'"):
        shortest_route(g, "a", "c")
    with pytest.raises(NetworkError, match="no path from 'c' to 'a'"):
        shortest_route(g, "c", "a")
