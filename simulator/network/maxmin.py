"""Max-min fair rates of flows sharing links, by progressive filling.

Semantics
---------
Every flow's rate rises together from zero (the *water level*); when a link's capacity
is used up, the flows crossing it freeze at the current level while the others keep
rising (Bertsekas and Gallager, *Data Networks*, 2nd ed., section 6.5.2). The result is
the unique max-min fair allocation: every flow has a *bottleneck* link that is full and
on which no flow is faster.

Updating after a change
-----------------------
When flows leave or join, the freezing sequence is unchanged below the first level at
which a changed flow matters:

- a leaving flow mattered only from its own rate up (below it, it rose with the water
  and none of its links was full, or it would have frozen earlier);
- a joining flow matters from the first level at which one of its links would fill,
  given the rates the other flows had (:func:`entry_level`).

So flows whose rate is below the minimum of those levels keep it, and only the others
are solved again, on the capacity the kept flows leave (:func:`refill`). This is exact,
not an approximation; the tests check it against a full solve.

The kernels are compiled with numba: progressive filling is a sequential heap walk
(take the link with the smallest fair share, freeze its flows) that numpy cannot
vectorise without many rounds of whole-array passes.
"""

import numba
import numpy as np

__all__ = ["max_min_rates", "refill", "entry_level"]


def max_min_rates(routes, capacity_Bps):
    """Return the max-min fair rate of each flow.

    Parameters
    ----------
    routes : ndarray of int, shape (F, H)
        Row ``f`` lists the links flow ``f`` crosses, padded on the right with
        ``len(capacity_Bps) - 1``: the last slot of `capacity_Bps` is a padding link.
        Every row must name at least one real link.
    capacity_Bps : ndarray of float, shape (L + 1,)
        Capacity of each link in bytes/s; the last entry (padding) is ignored.

    Returns
    -------
    ndarray of float, shape (F,)
        Rates in bytes/s.

    Examples
    --------
    Two flows share link 0 (10 B/s); the second also crosses link 1 (2 B/s), so it gets
    2 and the first takes the spare 8 (max-min, not an equal split):

    >>> routes = np.array([[0, 2], [0, 1]])
    >>> max_min_rates(routes, np.array([10.0, 2.0, np.inf])).tolist()
    [8.0, 2.0]
    """
    routes = np.ascontiguousarray(routes, dtype=np.int64)
    solve = np.ones(len(routes), dtype=np.bool_)
    return _fill(routes, np.asarray(capacity_Bps, dtype=np.float64),
                 np.zeros(len(routes)), solve, np.empty(0, np.int64), False)


def refill(routes, capacity_Bps, rates_Bps, solve, seed_links=None):
    """Solve again the flows marked in `solve`, keeping the others at `rates_Bps`.

    The kept flows' rates are taken off their links' capacity first; the solved flows
    then share what is left, max-min fairly. See the module docstring for when this
    gives the same answer as :func:`max_min_rates` on all flows.

    With `seed_links`, only the flows of `solve` connected to those links (through
    links that flows of `solve` share) are solved; the rest of `solve` keeps its rates.
    That is exact when the seeds are the links whose load changed: the other flows
    form separate sub-problems whose capacities and flows did not change.

    Parameters
    ----------
    routes : ndarray of int, shape (F, H)
        As for :func:`max_min_rates`.
    capacity_Bps : ndarray of float, shape (L + 1,)
    rates_Bps : ndarray of float, shape (F,)
        Current rates; entries of solved flows are ignored.
    solve : ndarray of bool, shape (F,)
    seed_links : ndarray of int, optional
        Links whose load changed.

    Returns
    -------
    ndarray of float, shape (F,)
        New rates (a new array).

    Examples
    --------
    Flows 0 and 1 share link 1; flow 2 is alone on link 3. Seeded at link 0, flow 2 is
    not reached and keeps its (here deliberately wrong) rate:

    >>> routes = np.array([[0, 1], [1, 2], [3, 5]])
    >>> cap = np.array([4.0, 10.0, 10.0, 10.0, 10.0, np.inf])
    >>> refill(routes, cap, np.array([0.0, 0.0, 1.0]), np.ones(3, bool), np.array([0])).tolist()
    [4.0, 6.0, 1.0]
    """
    seeds = np.empty(0, np.int64) if seed_links is None else np.asarray(seed_links, np.int64)
    return _fill(np.ascontiguousarray(routes, dtype=np.int64),
                 np.asarray(capacity_Bps, dtype=np.float64),
                 np.array(rates_Bps, dtype=np.float64), np.asarray(solve, dtype=np.bool_),
                 seeds, seed_links is not None)


def entry_level(routes, capacity_Bps, rates_Bps, joining):
    """Lowest water level at which a link of a joining flow fills up.

    For each link ``l`` crossed by ``n`` joining flows, the level ``x`` solving
    ``sum(min(r, x) for r in rates of the other flows on l) + n * x == capacity[l]``;
    the minimum over those links. Flows of `rates_Bps` below this level keep their rate
    when the joining flows are added.

    Parameters
    ----------
    routes : ndarray of int, shape (F, H)
    capacity_Bps : ndarray of float, shape (L + 1,)
    rates_Bps : ndarray of float, shape (F,)
        Rates of the flows already there (entries of joining flows are ignored).
    joining : ndarray of bool, shape (F,)

    Returns
    -------
    float
        The level in bytes/s (``inf`` if nothing joins).

    Examples
    --------
    A link of 10 B/s carries flows at 1 and 6 B/s; one flow joins. At level x the load is
    min(1, x) + min(6, x) + x, which reaches 10 at x = 4.5.

    >>> routes = np.array([[0, 1], [0, 1], [0, 1]])
    >>> entry_level(routes, np.array([10.0, np.inf]), np.array([1.0, 6.0, 0.0]),
    ...             np.array([False, False, True]))
    4.5
    """
    return float(_entry_level(np.ascontiguousarray(routes, dtype=np.int64),
                              np.asarray(capacity_Bps, dtype=np.float64),
                              np.asarray(rates_Bps, dtype=np.float64),
                              np.asarray(joining, dtype=np.bool_)))


@numba.njit(cache=True)
def _fill(routes, capacity, rates, solve, seeds, seeded):  # pragma: no cover - compiled
    n_flows, hops = routes.shape
    pad = capacity.shape[0] - 1
    residual = capacity.copy()
    for f in range(n_flows):
        if not solve[f]:
            for h in range(hops):
                link = routes[f, h]
                if link == pad:
                    break
                residual[link] -= rates[f]
    start, members = _flows_by_link(routes, solve, pad)
    count = start[1:] - start[:-1]
    frozen = ~solve
    if seeded:
        # Breadth-first from the seed links; solved flows not reached keep their rate.
        reached = np.zeros(n_flows, np.bool_)
        seen = np.zeros(pad + 1, np.bool_)
        queue = np.empty(pad + 1, np.int64)
        tail = 0
        for link in seeds:
            if link != pad and not seen[link]:
                seen[link] = True
                queue[tail] = link
                tail += 1
        head = 0
        while head < tail:
            link = queue[head]
            head += 1
            for k in range(start[link], start[link + 1]):
                f = members[k]
                if reached[f]:
                    continue
                reached[f] = True
                for h in range(hops):
                    other = routes[f, h]
                    if other == pad:
                        break
                    if not seen[other]:
                        seen[other] = True
                        queue[tail] = other
                        tail += 1
        for f in range(n_flows):
            if solve[f] and not reached[f]:
                frozen[f] = True
                for h in range(hops):
                    link = routes[f, h]
                    if link == pad:
                        break
                    residual[link] -= rates[f]
                    count[link] -= 1
    # A binary min-heap of links keyed by fair share. Keys go stale as other links
    # freeze, but only upwards (a link's share never falls while the water rises), so
    # a key is a lower bound: at the root, refresh it and sift down until it is exact.
    key = np.full(pad + 1, np.inf)
    heap = np.empty(pad, np.int64)
    size = 0
    for link in range(pad):
        if count[link] > 0:
            key[link] = max(residual[link], 0.0) / count[link]
            heap[size] = link
            size += 1
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap, key, i, size)
    while size > 0:
        link = heap[0]
        share = max(residual[link], 0.0) / count[link] if count[link] > 0 else np.inf
        if share > key[link]:
            key[link] = share                                  # stale: refresh, sift down
        else:
            for k in range(start[link], start[link + 1]):
                f = members[k]
                if frozen[f]:
                    continue
                frozen[f] = True
                rates[f] = share
                for h in range(hops):
                    other = routes[f, h]
                    if other == pad:
                        break
                    residual[other] -= share
                    count[other] -= 1
            size -= 1                                          # pop: last element to the root
            heap[0] = heap[size]
        _sift_down(heap, key, 0, size)
    return rates


@numba.njit(cache=True)
def _flows_by_link(routes, mask, pad):  # pragma: no cover - compiled
    """The flows of `mask` on each link, as compressed rows: link l's are
    ``members[start[l]:start[l + 1]]``."""
    n_flows, hops = routes.shape
    start = np.zeros(pad + 2, np.int64)
    for f in range(n_flows):
        if mask[f]:
            for h in range(hops):
                link = routes[f, h]
                if link == pad:
                    break
                start[link + 1] += 1
    for link in range(pad + 1):
        start[link + 1] += start[link]
    cursor = start[:-1].copy()
    members = np.empty(start[-1], np.int64)
    for f in range(n_flows):
        if mask[f]:
            for h in range(hops):
                link = routes[f, h]
                if link == pad:
                    break
                members[cursor[link]] = f
                cursor[link] += 1
    return start, members


@numba.njit(cache=True)
def _sift_down(heap, key, i, size):  # pragma: no cover - compiled
    while True:
        child = 2 * i + 1
        if child >= size:
            return
        if child + 1 < size and key[heap[child + 1]] < key[heap[child]]:
            child += 1
        if key[heap[child]] >= key[heap[i]]:
            return
        heap[i], heap[child] = heap[child], heap[i]
        i = child


@numba.njit(cache=True)
def _entry_level(routes, capacity, rates, joining):  # pragma: no cover - compiled
    pad = capacity.shape[0] - 1
    joined_start, _ = _flows_by_link(routes, joining, pad)
    n_joining = joined_start[1:] - joined_start[:-1]              # joining flows per link
    start, others = _flows_by_link(routes, ~joining, pad)
    best = np.inf
    for link in range(pad):
        if n_joining[link] == 0:
            continue
        if start[link] == start[link + 1]:                   # only joining flows here
            best = min(best, capacity[link] / n_joining[link])
            continue
        here = np.sort(rates[others[start[link]:start[link + 1]]])
        m = len(here)
        below = 0.0                                    # sum of the rates already frozen below
        for k in range(m + 1):
            level = (capacity[link] - below) / (m - k + n_joining[link])
            if k == m or level <= here[k]:
                if level < best:
                    best = level
                break
            below += here[k]
    return best
