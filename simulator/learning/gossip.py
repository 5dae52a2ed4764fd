"""Gossip (decentralised) SGD: every GPU averages with its neighbours in a graph.

Semantics (docs/schedules.md, "Gossip")
---------------------------------------
D-PSGD (Lian et al., NeurIPS 2017, "Can Decentralized Algorithms Outperform Centralized
Algorithms?", Algorithm 1): at every step each worker k computes its direction ``d_k`` at its
own parameters ``x_k`` (the inner optimizer's: momentum or Adam, the worker's own state), then
takes the weighted average of its neighbours' parameters::

    x_k <- sum_j W_kj x_j - lr * d_k

The mixing matrix W holds Metropolis-Hastings weights of the gossip graph G (Xiao and Boyd
2004, "Fast linear iterations for distributed averaging"; Boyd et al. 2006): for an edge
``{i, j}`` of G, ``W_ij = 1 / (1 + max(deg_i, deg_j))``; ``W_ii = 1 - sum_j W_ij``; every
other entry 0. W is symmetric with rows and columns summing to 1 (doubly stochastic, tested)
and non-negative, so the mean of the K models is what plain averaging would keep, and on a
connected graph repeated mixing converges to it. On a ring every weight is 1/3 (Lian et al.'s
choice), on a torus 1/5.

The graphs (``graph``), over the GPUs in ring order (blocks adjacent):

- ``ring``: GPU k with k - 1 and k + 1 (mod K); a ring crosses each block boundary once;
- ``torus``: the K GPUs as an r x c grid, r the largest divisor of K at most sqrt(K) (r >= 2),
  each GPU with its four wrap-around neighbours (three distinct ones when r = 2);
- ``topology``: the GPUs the topology links directly (a ring or torus built by ``sgdsim
  topology generate``); refused when GPUs only meet at switches.

Optionally (``H``) every H-th step is a plain average over all GPUs in place of the gossip
step (gossip with periodic global averaging, Chen et al., ICML 2021, "Accelerating Gossip
SGD with Periodic Global Averaging"): only then does a common model exist. On the clock a
gossip step is one exchange per edge, both directions at once, of the whole model (``M``
bytes each way), started when both ends have computed the step; a GPU leaves the step when
all its exchanges are done (:mod:`simulator.engine.timeline`).
"""

import math

import numpy as np

from ..utils.errors import InputError
from .steps import GLOBAL, GOSSIP, Step

__all__ = ["GRAPHS", "MixingMatrix", "metropolis_weights", "ring_neighbours",
           "torus_neighbours", "linked_neighbours", "gossip_neighbours", "gossip"]

GRAPHS = ("ring", "torus", "topology")


class MixingMatrix:
    """A sparse mixing matrix W over K workers.

    Parameters
    ----------
    neighbours : list of list of int
        Each worker's neighbours (not itself), symmetric.
    weights : list of list of float
        ``W_kj`` for each neighbour j of k, in the same order.
    self_weights : sequence of float
        ``W_kk``.
    """

    def __init__(self, neighbours, weights, self_weights):
        self.neighbours = [list(n) for n in neighbours]
        K = len(self.neighbours)
        width = max((len(n) for n in self.neighbours), default=0) + 1
        index = np.tile(np.arange(K)[:, None], (1, width))             # (K, D+1), pad: self
        weight = np.zeros((K, width))
        for k in range(K):
            row = self.neighbours[k]
            index[k, 1:1 + len(row)] = row
            weight[k, 0] = self_weights[k]
            weight[k, 1:1 + len(row)] = weights[k]
        self._index, self._weight = index, weight

    @property
    def workers(self):
        return len(self.neighbours)

    def dense(self):
        """W as a (K, K) array."""
        K = self.workers
        W = np.zeros((K, K))
        np.add.at(W, (np.repeat(np.arange(K), self._index.shape[1]), self._index.ravel()),
                  self._weight.ravel())
        return W

    def mix(self, params):
        """``W @ params`` for params (K, P), without forming W."""
        out = np.einsum("kd,kdp->kp", self._weight.astype(params.dtype), params[self._index])
        return out

    def edges(self):
        """The undirected edges ``(i, j)``, ``i < j``, in order."""
        return [(i, j) for i, row in enumerate(self.neighbours) for j in row if i < j]


def metropolis_weights(neighbours):
    """The Metropolis-Hastings mixing matrix of an undirected graph (see the module docstring).

    Examples
    --------
    >>> W = metropolis_weights([[1], [0, 2], [1]]).dense()    # a path of three workers
    >>> W.round(4).tolist()
    [[0.6667, 0.3333, 0.0], [0.3333, 0.3333, 0.3333], [0.0, 0.3333, 0.6667]]
    """
    degree = [len(row) for row in neighbours]
    weights = [[1.0 / (1 + max(degree[k], degree[j])) for j in row]
               for k, row in enumerate(neighbours)]
    self_weights = [1.0 - math.fsum(w) for w in weights]
    return MixingMatrix(neighbours, weights, self_weights)


def ring_neighbours(K):
    """Neighbours on a ring of K workers (one for K = 2, none for K = 1).

    Examples
    --------
    >>> ring_neighbours(4)
    [[3, 1], [0, 2], [1, 3], [2, 0]]
    """
    if K <= 2:
        return [[j for j in range(K) if j != k] for k in range(K)]
    return [[(k - 1) % K, (k + 1) % K] for k in range(K)]


def torus_neighbours(K):
    """Neighbours on an r x c torus of K workers (r the largest divisor of K <= sqrt(K)).

    Examples
    --------
    >>> torus_neighbours(4)             # 2 x 2: up and down coincide
    [[1, 2], [0, 3], [3, 0], [2, 1]]
    >>> len(torus_neighbours(16)[0])
    4
    """
    rows = max(r for r in range(1, math.isqrt(K) + 1) if K % r == 0)
    if rows < 2:
        raise InputError(f"a torus of {K} GPUs needs K = rows x columns with rows >= 2",
                         field="graph", fix="use graph: ring, or a cluster of e.g. 16 GPUs")
    cols = K // rows
    out = []
    for k in range(K):
        r, c = divmod(k, cols)
        found = []
        for j in (r * cols + (c - 1) % cols, r * cols + (c + 1) % cols,
                  ((r - 1) % rows) * cols + c, ((r + 1) % rows) * cols + c):
            if j != k and j not in found:
                found.append(j)
        out.append(found)
    return out


def linked_neighbours(graph, gpus):
    """Neighbours from the GPU-GPU links of a topology graph (positions in `gpus`).

    Raises
    ------
    InputError
        A GPU without a link to another GPU, or GPUs that the links do not connect.
    """
    position = {g: i for i, g in enumerate(gpus)}
    out = [[] for _ in gpus]
    for u, v in graph.edges():
        if u in position and v in position:
            out[position[u]].append(position[v])
            out[position[v]].append(position[u])
    out = [sorted(set(row)) for row in out]
    fix = "use graph: ring or graph: torus (the GPUs meet at switches)"
    for k, row in enumerate(out):
        if not row:
            raise InputError(f"GPU {gpus[k]} has no link to another GPU", field="graph", fix=fix)
    seen, todo = {0}, [0]
    while todo:
        for j in out[todo.pop()]:
            if j not in seen:
                seen.add(j)
                todo.append(j)
    if len(seen) != len(gpus):
        raise InputError(f"the GPU-GPU links connect {len(seen)} of the {len(gpus)} GPUs",
                         field="graph", fix=fix)
    return out


def gossip_neighbours(name, gpus, graph=None):
    """Each GPU's neighbours in gossip graph `name` (:data:`GRAPHS`), GPUs in ring order."""
    if name == "ring":
        return ring_neighbours(len(gpus))
    if name == "torus":
        return torus_neighbours(len(gpus))
    if name == "topology":
        return linked_neighbours(graph, gpus)
    raise InputError(f"unknown gossip graph {name!r}", field="graph",
                     fix="use one of " + ", ".join(GRAPHS))


def gossip(H=None, *, graph="ring"):
    """D-PSGD's schedule: a gossip average at every step, or a global one every `H` steps.

    Examples
    --------
    >>> act = gossip(3)
    >>> [act(t).average for t in range(1, 7)]
    ['gossip', 'gossip', 'global', 'gossip', 'gossip', 'global']
    """
    if graph not in GRAPHS:
        raise InputError(f"unknown gossip graph {graph!r}", field="graph",
                         fix="use one of " + ", ".join(GRAPHS))
    mix, average = Step(average=GOSSIP), Step(average=GLOBAL)
    if H is None:
        return lambda t: mix
    return lambda t: average if t % H == 0 else mix
