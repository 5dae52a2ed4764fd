"""Routes: which links a transfer crosses.

A transfer from ``src`` to ``dst`` follows a shortest path (fewest hops). Among several
shortest paths it takes the one whose sequence of node names is smallest in natural
order (:func:`simulator.cluster.topology.natural_key`: ``sw2`` before ``sw10``), so routes are
deterministic, independent of the order nodes were added, and easy to work out by
hand. There is no ECMP spreading: two flows between the same pair always share a route.

Links are full-duplex, so a route is a list of *directed* links; :class:`Router` numbers
them ``0 .. 2E-1`` (edge ``(u, v)`` gives ``u->v`` and ``v->u``).
"""

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import shortest_path

from ..cluster.topology import natural_key
from ..utils.errors import NetworkError

__all__ = ["Router", "shortest_route"]


def shortest_route(graph, src, dst):
    """Return the node sequence of the route from `src` to `dst`.

    Parameters
    ----------
    graph : networkx.Graph
        A topology (see :mod:`simulator.cluster.topology`).
    src, dst : node
        End points.

    Returns
    -------
    list
        ``[src, ..., dst]``; ``[src]`` when ``src == dst``.

    Raises
    ------
    NetworkError
        If either end is not in the graph or no path joins them.

    Examples
    --------
    >>> g = nx.cycle_graph(["a", "b", "c", "d"])
    >>> shortest_route(g, "a", "c")   # a-b-c and a-d-c tie: 'b' < 'd'
    ['a', 'b', 'c']
    """
    return Router(graph).route(src, dst)


class Router:
    """Numbers the directed links of a graph and computes (and caches) routes.

    Attributes
    ----------
    links : list of (u, v)
        Directed link ``i`` is ``links[i]``.
    index : dict
        ``(u, v) -> i``.
    """

    def __init__(self, graph):
        self.graph = graph
        self.links = []
        for u, v in graph.edges():
            self.links.append((u, v))
            self.links.append((v, u))
        self.index = {link: i for i, link in enumerate(self.links)}
        self._nodes = list(graph)
        self._node_no = {n: i for i, n in enumerate(self._nodes)}
        self._neighbours = {n: sorted(graph[n], key=natural_key) for n in graph}
        self._adjacency = None
        self._hops_to = {}   # dst -> array of hops from every node to dst (inf: unreachable)
        self._cache = {}     # (src, dst) -> np.ndarray of link indices

    def prepare(self, destinations):
        """Compute hop counts towards many destinations in one breadth-first sweep each (C code)."""
        todo = [d for d in dict.fromkeys(destinations) if d not in self._hops_to and d in self._node_no]
        if not todo:
            return
        if self._adjacency is None:
            self._adjacency = nx.to_scipy_sparse_array(self.graph, nodelist=self._nodes, weight=None,
                                                       format="csr")
        rows = shortest_path(self._adjacency, unweighted=True, directed=False,
                             indices=[self._node_no[d] for d in todo])
        for dst, row in zip(todo, np.atleast_2d(rows)):
            self._hops_to[dst] = row

    def route(self, src, dst):
        """Node sequence from `src` to `dst` (see module docstring for tie-breaking)."""
        for end in (src, dst):
            if end not in self.graph:
                raise NetworkError(f"unknown node {end!r}",
                                   fix="name a node of the topology")
        self.prepare([dst])
        hops = self._hops_to[dst]
        number = self._node_no
        if not np.isfinite(hops[number[src]]):
            raise NetworkError(f"no path from {src!r} to {dst!r}",
                               fix="add links so that every GPU can reach every other")
        path = [src]
        node = src
        while node != dst:
            left = hops[number[node]] - 1
            node = next(n for n in self._neighbours[node] if hops[number[n]] == left)
            path.append(node)
        return path

    def route_links(self, src, dst):
        """Directed link indices along the route, as an int array (cached)."""
        key = (src, dst)
        links = self._cache.get(key)
        if links is None:
            path = self.route(src, dst)
            links = np.array([self.index[hop] for hop in zip(path, path[1:])], dtype=np.intp)
            self._cache[key] = links
        return links
