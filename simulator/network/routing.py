"""Routes: which links a transfer crosses.

A transfer from ``src`` to ``dst`` follows a shortest path (fewest hops). Among several
shortest paths it takes the one whose sequence of node names is smallest in natural
order (:func:`simulator.cluster.topology.natural_key`: ``sw2`` before ``sw10``), so routes are
deterministic, independent of the order nodes were added, and easy to work out by
hand. There is no ECMP spreading: two flows between the same pair always share a route.

Links are full-duplex, so a route is a list of *directed* links; :class:`Router` numbers
them ``0 .. 2E-1`` (edge ``(u, v)`` gives ``u->v`` and ``v->u``).

When links are down (faults, docs/faults.md), :meth:`Router.avoiding` gives a router of the
same links, numbered the same, whose routes are the shortest paths of the graph without
them, chosen by the same rule.

How a route is found
--------------------
A breadth-first search from both ends at once, a whole layer at a time, always growing the
side whose last layer is smaller, until the two meet: the meeting layer is at ``a`` hops
from ``src`` and ``b`` from ``dst``, and every shortest path (``a + b`` hops) crosses it.
The route is then built from ``src``, hop by hop, taking at each node the naturally
smallest neighbour that is still on a shortest path (on ``src``'s side: one from which the
meeting layer is reached in the remaining hops; on ``dst``'s side: one a hop nearer to
``dst``): the naturally smallest sequence among the shortest paths. The work is that of
the two searches, which on a tree of switches stay near the ends (a GPU, its switch and
the switch's neighbours), so routing a ring over a cluster costs time and memory linear
in the cluster; nothing of size nodes x destinations is kept.
"""

import numpy as np

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
    >>> import networkx as nx
    >>> g = nx.cycle_graph(["a", "b", "c", "d"])
    >>> shortest_route(g, "a", "c")   # a-b-c and a-d-c tie: 'b' < 'd'
    ['a', 'b', 'c']
    """
    return Router(graph).route(src, dst)


class Router:
    """Numbers the directed links of a graph and computes (and caches) routes.

    Attributes
    ----------
    graph : networkx.Graph
    links : list of (u, v)
        Directed link ``i`` is ``links[i]``.
    index : dict
        ``(u, v) -> i``.

    Examples
    --------
    >>> import networkx as nx
    >>> router = Router(nx.path_graph(["a", "b", "c"]))
    >>> router.links
    [('a', 'b'), ('b', 'a'), ('b', 'c'), ('c', 'b')]
    >>> router.route("a", "c"), router.route_links("c", "a").tolist()
    (['a', 'b', 'c'], [3, 1])
    """

    def __init__(self, graph):
        self.graph = graph
        self.links = []
        for u, v in graph.edges():
            self.links.append((u, v))
            self.links.append((v, u))
        self.index = {link: i for i, link in enumerate(self.links)}
        self._around = {}    # node -> {neighbour: None} in the graph's order, as needed
        self._keys = {}      # node -> natural_key(node), as needed
        self._ordered = {}   # node -> its neighbours in natural order, as needed (rare ties)
        self._cache = {}     # (src, dst) -> np.ndarray of link indices
        self.down = frozenset()   # edges routed around, as frozensets {u, v} (avoiding)

    def avoiding(self, down):
        """A router of the same graph and link numbering that routes around the edges `down`.

        Parameters
        ----------
        down : iterable of (u, v)
            Edges (either direction) that no route may cross.

        Returns
        -------
        Router
            Routes are the shortest paths of the graph without those edges, ties broken as
            here; :meth:`route` raises NetworkError where none is left. With no edge down,
            this router itself.

        Examples
        --------
        >>> import networkx as nx
        >>> router = Router(nx.cycle_graph(["a", "b", "c", "d"]))
        >>> router.route("a", "c"), router.avoiding([("b", "c")]).route("a", "c")
        (['a', 'b', 'c'], ['a', 'd', 'c'])
        """
        down = frozenset(frozenset(edge) for edge in down)
        if down == self.down:
            return self
        other = Router.__new__(Router)
        other.graph, other.links, other.index = self.graph, self.links, self.index
        other._keys, other._ordered, other._cache = self._keys, {}, {}
        other._around = {}
        other.down = down
        return other

    def prepare(self, destinations):
        """Announce destinations about to be routed to (kept for callers; routes are
        computed on demand, so there is nothing to do ahead)."""

    def route(self, src, dst):
        """Node sequence from `src` to `dst` (see the module docstring for tie-breaking)."""
        for end in (src, dst):
            if end not in self.graph:
                raise NetworkError(f"unknown node {end!r}", fix="name a node of the topology")
        if src == dst:
            return [src]
        around = self._neighbours
        dist = ({src: 0}, {dst: 0})                   # hops from src, hops from dst
        layers = ([[src]], [[dst]])
        meet = None
        while meet is None:
            side = 0 if len(layers[0][-1]) <= len(layers[1][-1]) else 1
            seen, other = dist[side], dist[1 - side]
            depth = len(layers[side])
            grown = []
            for u in layers[side][-1]:
                for v in around(u):
                    if v not in seen:
                        seen[v] = depth
                        grown.append(v)
            if not grown:
                raise NetworkError(f"no path from {src!r} to {dst!r}",
                                   fix="add links so that every GPU can reach every other")
            layers[side].append(grown)
            meet = [v for v in grown if v in other] or None
        a, b = len(layers[0]) - 1, len(layers[1]) - 1  # the meeting layer: a from src, b from dst
        # On src's side, the nodes of each layer from which the meeting layer is reached.
        good = [None] * (a + 1)
        good[a] = {v for v in layers[0][a] if dist[1].get(v) == b}
        for j in range(a - 1, 0, -1):
            good[j] = {u for u in layers[0][j] if self._touches(u, good[j + 1])}
        path = [src]
        node = src
        for k in range(1, a + 1):
            node = self._smallest(node, good[k])
            path.append(node)
        for hops in range(b - 1, -1, -1):               # layers[1][hops]: hops from dst
            node = self._smallest(node, set(layers[1][hops]))
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

    # ------------------------------------------------------------------ internals
    def _neighbours(self, u):
        """`u`'s neighbours as a dict (graph order, O(1) membership), built once."""
        found = self._around.get(u)
        if found is None:
            down = self.down
            found = self._around[u] = dict.fromkeys(
                v for v in self.graph.adj[u] if not down or frozenset((u, v)) not in down)
        return found

    def _touches(self, u, nodes):
        """True if `u` has a neighbour in the set `nodes`."""
        around = self._neighbours(u)
        if len(around) <= len(nodes):
            return any(v in nodes for v in around)
        return any(v in around for v in nodes)

    def _key(self, node):
        key = self._keys.get(node)
        if key is None:
            key = self._keys[node] = natural_key(node)
        return key

    def _smallest(self, u, candidates):
        """The naturally smallest neighbour of `u` in the set `candidates`."""
        around = self._neighbours(u)
        if len(around) <= len(candidates):
            found = [v for v in around if v in candidates]
        else:
            found = [v for v in candidates if v in around]
        if len(found) == 1:
            return found[0]
        keys = [self._key(v) for v in found]
        best = min(keys)
        if keys.count(best) == 1:
            return found[keys.index(best)]
        # Distinct names with equal natural keys ('a01', 'a1'): the first of them in u's
        # neighbours sorted naturally (a stable sort keeps the graph's own order).
        ordered = self._ordered.get(u)
        if ordered is None:
            ordered = self._ordered[u] = sorted(around, key=self._key)
        tied = {v for v, key in zip(found, keys) if key == best}
        return next(v for v in ordered if v in tied)
