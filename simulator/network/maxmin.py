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

On a persistent index
---------------------
:func:`max_min_rates`, :func:`refill` and :func:`entry_level` take a route matrix and
index it by link at every call. A simulation that changes a few flows at a time keeps
that index instead (:class:`simulator.network.flowtable.FlowTable`: each link's flows
in the order they joined) and calls :func:`resolve`, which applies the same rule --
the same levels, the same flows solved, the same subtractions in the same order, the
same heap -- and so gives bit for bit the rates that ``entry_level`` then ``refill``
give on the table's rows, in time proportional to the links and flows it touches
rather than to all of them.

The kernels are numba kernels (:mod:`simulator.utils.jit`): progressive filling is a
sequential heap walk (take the link with the smallest fair share, freeze its flows)
that numpy cannot vectorise without many rounds of whole-array passes. Small problems
run them as Python, with the same results.
"""

import numpy as np

from ..utils import jit
from ..utils.jit import kernel

__all__ = ["max_min_rates", "refill", "entry_level", "resolve"]

# Route-matrix entries (flows x hops) above which a call compiles the kernels first.
COMPILE_ABOVE = 512


def _compile_if_big(entries):
    if entries > COMPILE_ABOVE and not jit.compiled():
        jit.compile_kernels()


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
    _compile_if_big(routes.size)
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
    _compile_if_big(np.size(routes))
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
    _compile_if_big(np.size(routes))
    return float(_entry_level(np.ascontiguousarray(routes, dtype=np.int64),
                              np.asarray(capacity_Bps, dtype=np.float64),
                              np.asarray(rates_Bps, dtype=np.float64),
                              np.asarray(joining, dtype=np.bool_)))


def resolve(table, left_level, seeds, joined):
    """Re-solve the rates of a :class:`~simulator.network.flowtable.FlowTable` in place.

    The same rule as ``entry_level`` then ``refill(..., seed_links)`` on the table's
    rows in join order: the level is the lower of `left_level` and the entry level of
    the `joined` flows; the flows joined or at or above ``level * (1 - 1e-9)`` that are
    connected to a seed link or a joined flow's link are solved again; the others keep
    their rates.

    Parameters
    ----------
    table : FlowTable
        Its ``rate`` array is updated for the solved flows.
    left_level : float
        Lowest rate of the flows that left since the last solve (``inf``: none).
    seeds : ndarray of int
        Links whose load changed by flows leaving (padding entries are skipped).
    joined : ndarray of int
        Table slots of the flows that joined since the last solve.

    Returns
    -------
    int
        How many flows were solved.
    """
    _compile_if_big(table.n_active * table.width)
    table.epoch += 1
    joined = np.asarray(joined, np.int64)
    if len(joined) == table.n_active and _alone(joined, table.route, table.hot, table.segments,
                                                  table.capacity):
        return len(joined)
    return _resolve(float(table.epoch), float(left_level), np.asarray(seeds, np.int64),
                    joined, table.route, table.hot, table.segments,
                    table.pool, table.capacity, table.link_seen, table.link_mark,
                    table.residual, table.count, table.key, table.link_queue, table.heap,
                    table.rates_buffer, table.members, table.members_at, table.reached_list)


@kernel
def _alone(joined, route, hot, segments, capacity):  # pragma: no cover - compiled
    """Flows that are all the table holds, each alone on every link: set their rates and
    return True (else change nothing and return False).

    Every flow then joins and is solved on the links' whole capacity, and none shares a
    link, which is _resolve's case without a shared link: each flow's rate is the least of
    max(capacity, 0) / 1 over its links.
    """
    width = route.shape[1]
    pad = capacity.shape[0] - 1
    for s in joined:
        for h in range(width):
            link = route[s, h]
            if link == pad:
                break
            if segments[link, 3] != 1:
                return False
    for s in joined:
        share = np.inf
        for h in range(width):
            link = route[s, h]
            if link == pad:
                break
            mine = max(capacity[link], 0.0) / 1
            if mine < share:
                share = mine
        hot[s, 0] = share
    return True


@kernel
def _resolve(epoch, left_level, seeds, joined, route, hot, segments, pool, capacity, link_seen,
             link_mark, residual, count, key, queue, heap, buffer, members, members_at,
             reached_list):  # pragma: no cover - compiled
    """See :func:`resolve`. A link's flows, in join order (the row order that ``_fill``
    and ``_entry_level`` walk), are ``pool[start:start + length]`` with ``start, length
    = segments[link, :2]``, blanks being -1. ``hot[slot]`` is (rate, joining, reached,
    frozen): marks equal to `epoch` mean "in this solve". ``members_at[link]`` delimits
    in ``members`` the link's flows being solved."""
    width = route.shape[1]
    pad = capacity.shape[0] - 1
    for s in joined:
        hot[s, 1] = epoch
    # The entry level of the joining flows (_entry_level, over their links only).
    level = left_level
    if len(joined):
        best = np.inf
        for s in joined:
            for h in range(width):
                link = route[s, h]
                if link == pad:
                    break
                if link_mark[link] == epoch:
                    continue
                link_mark[link] = epoch
                n_joining = 0
                m = 0
                start = segments[link, 0]
                for j in range(start, start + segments[link, 1]):
                    f = pool[j]
                    if f < 0:
                        continue
                    if hot[f, 1] == epoch:
                        n_joining += 1
                    else:
                        buffer[m] = hot[f, 0]
                        m += 1
                if m == 0:
                    best = min(best, capacity[link] / n_joining)
                    continue
                here = np.sort(buffer[:m])
                below = 0.0
                for k in range(m + 1):
                    lvl = (capacity[link] - below) / (m - k + n_joining)
                    if k == m or lvl <= here[k]:
                        if lvl < best:
                            best = lvl
                        break
                    below += here[k]
        level = min(level, best)
    threshold = level * (1 - 1e-9)
    # Breadth-first from the seeds and the joined flows' links through the flows to solve;
    # on each link reached, the capacity the kept flows leave, subtracted in join order.
    tail = 0
    for link in seeds:
        if link != pad and link_seen[link] != epoch:
            link_seen[link] = epoch
            queue[tail] = link
            tail += 1
    for s in joined:
        tail = _enqueue_route(s, route, pad, link_seen, epoch, queue, tail)
    solved = 0
    first = 0
    n_members = 0
    shared = False                    # does a link carry two of the flows being solved?
    while first < tail:
        link = queue[first]
        first += 1
        left = capacity[link]
        members_at[link, 0] = n_members
        start = segments[link, 0]
        for j in range(start, start + segments[link, 1]):
            f = pool[j]
            if f < 0:
                continue
            rate = hot[f, 0]
            if hot[f, 1] == epoch or rate >= threshold:
                members[n_members] = f
                n_members += 1
                if hot[f, 2] != epoch:
                    hot[f, 2] = epoch
                    reached_list[solved] = f
                    solved += 1
                    tail = _enqueue_route(f, route, pad, link_seen, epoch, queue, tail)
            else:
                left -= rate
        residual[link] = left
        n = n_members - members_at[link, 0]
        count[link] = n
        members_at[link, 1] = n_members
        if n > 1:
            shared = True
    if not shared:
        # Every flow being solved is alone on each of its links among them: the heap walk
        # freezes it at the first of its links to come up, whose share is the least of
        # them -- max(residual, 0) / 1 -- whatever order links with equal shares come in,
        # and nothing else changes those links. So the walk's answer, without the walk.
        for i in range(solved):
            f = reached_list[i]
            share = np.inf
            for h in range(width):
                link = route[f, h]
                if link == pad:
                    break
                mine = max(residual[link], 0.0) / count[link]
                if mine < share:
                    share = mine
            hot[f, 0] = share
        return solved
    # The heap walk of _fill, over the same links in the same array order (ascending).
    size = 0
    if 8 * tail < pad:
        for i in range(tail):
            link = queue[i]
            if count[link] > 0:
                heap[size] = link
                size += 1
        heap[:size] = np.sort(heap[:size])
    else:
        for link in range(pad):
            if link_seen[link] == epoch and count[link] > 0:
                heap[size] = link
                size += 1
    for i in range(size):
        link = heap[i]
        key[link] = max(residual[link], 0.0) / count[link]
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap, key, i, size)
    while size > 0:
        link = heap[0]
        share = max(residual[link], 0.0) / count[link] if count[link] > 0 else np.inf
        if share > key[link]:
            key[link] = share                                  # stale: refresh, sift down
        else:
            for i in range(members_at[link, 0], members_at[link, 1]):
                f = members[i]
                if hot[f, 3] != epoch:
                    hot[f, 3] = epoch
                    hot[f, 0] = share
                    for h in range(width):
                        other = route[f, h]
                        if other == pad:
                            break
                        residual[other] -= share
                        count[other] -= 1
            size -= 1                                          # pop: last element to the root
            heap[0] = heap[size]
        _sift_down(heap, key, 0, size)
    return solved


@kernel
def _enqueue_route(row, route, pad, link_seen, epoch, queue, tail):  # pragma: no cover - compiled
    """Append the links of `route[row]` not seen in this `epoch` to `queue`; return its tail."""
    for h in range(route.shape[1]):
        link = route[row, h]
        if link == pad:
            break
        if link_seen[link] != epoch:
            link_seen[link] = epoch
            queue[tail] = link
            tail += 1
    return tail


@kernel
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
    _walk(heap, size, key, residual, count, start[:-1], start[1:], members, frozen, rates, routes,
          np.ones(n_flows, np.int64), pad)
    return rates


@kernel
def _walk(heap, size, key, residual, count, lo, hi, members, frozen, rates, routes, weight,
          pad):  # pragma: no cover - compiled
    """Progressive filling's heap walk over ``heap[:size]`` (links keyed by a lower bound
    of their fair share ``max(residual, 0) / count``): take the link of smallest share,
    freeze its flows not yet frozen (``members[lo[link]:hi[link]]``) at that share, each
    taking ``share * weight`` and ``weight`` off the residual and count of its links
    (rows of `routes`, padded with `pad`), until no link is left. A weight of 1 is the
    per-flow walk, bit for bit."""
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap, key, i, size)
    while size > 0:
        link = heap[0]
        share = max(residual[link], 0.0) / count[link] if count[link] > 0 else np.inf
        if share > key[link]:
            key[link] = share                                  # stale: refresh, sift down
        else:
            for k in range(lo[link], hi[link]):
                f = members[k]
                if frozen[f]:
                    continue
                frozen[f] = True
                rates[f] = share
                w = weight[f]
                for h in range(routes.shape[1]):
                    other = routes[f, h]
                    if other == pad:
                        break
                    residual[other] -= share * w
                    count[other] -= w
            size -= 1                                          # pop: last element to the root
            heap[0] = heap[size]
        _sift_down(heap, key, 0, size)


@kernel
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


@kernel
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


@kernel
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
