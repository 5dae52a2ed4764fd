"""Max-min rates from bottleneck levels: the fast solve of the group table.

Semantics
---------
In a max-min fair allocation every flow has a *bottleneck*: a full link on which no flow
is faster. All flows bottlenecked at link ``l`` share its *level* ``L[l]``, so, given
which link bottlenecks each group of flows, the levels solve a triangular system, one
equation per bottleneck link::

    n_b[l] * L[l] + sum over couplings (l, m) of n[l, m] * L[m] = capacity[l]

with ``n_b[l]`` the flows bottlenecked at ``l`` and ``n[l, m]`` (a *coupling*) the flows
crossing ``l`` bottlenecked at ``m``. Solving it in a topological order of the couplings
takes one pass over them: no heap, no pass over groups.

The answer is the max-min allocation exactly when the guessed bottlenecks are right,
and :func:`solve_levels` checks that by the bottleneck theorem (Bertsekas and Gallager,
*Data Networks*, section 6.5.2): every level is positive, every link the solve leaves
without bottlenecked flows carries at most its capacity, and no flow crossing a
bottleneck link is faster than its level (both to a relative ``tol``). A coupling that
breaks this is *violated*: its flows are moved to the link it names
(:func:`repair_moves`) and the levels solved again. A cycle of couplings (ties) is
solved through with the last solve's levels, only to find couplings to move: such a
round is never taken as solved. The group table keeps the bottlenecks from one event
to the next, guesses them for new groups, and falls back to progressive filling (then
reads the bottlenecks off its rates, :func:`bottlenecks_of`) when a few rounds do not
settle. So the rates are always the checked max-min rates; the two solves differ in
the last bits only (each rounds differently).

Example
-------
Link 0 (10 B/s) carries flows A and B, link 1 (9 B/s) carries B and two flows C. With A
bottlenecked at 0 and B, C at 1 (``n_b = [1, 3]``, one coupling (0, 1) for B): link 1
solves first, ``L[1] = 9 / 3 = 3``, then ``L[0] = (10 - 1 * 3) / 1 = 7``; no flow on a
bottleneck link is faster than its level, so A gets 7 and B, C get 3 (the max-min
rates). Guess B at 0 instead (``n_b = [2, 2]``, coupling (1, 0)): ``L[0] = 5``,
``L[1] = (9 - 5) / 2 = 2``, and B, at 5, is faster than link 1's level: the coupling
is violated, B moves to link 1, and the next solve is the first. (``tests/test_bottlenecks.py``
runs this.)
"""

import numpy as np

from ..utils.jit import kernel

__all__ = ["solve_levels", "list_couplings", "repair_moves", "bottlenecks_of"]

SOLVED, VIOLATED, FAILED = 0, 1, 2


@kernel
def solve_levels(links, link_cp, n_link_cp, cp_b, cp_n, n_b, capacity, tol, level, top, residual,
                 viol, order, n_order, ready, epoch, dirty, all_dirty):  # pragma: no cover - compiled
    """Solve the levels of the bottleneck links from the couplings of `links` (the links
    any group crosses): link ``l``'s are ``link_cp[l, :n_link_cp[l]]``, each of ``cp_n[p]``
    flows (0: dead, skipped) bottlenecked at ``cp_b[p]``; ``n_b[l]`` flows are bottlenecked
    at ``l`` itself. Check the levels against the max-min conditions.

    The bottleneck links are solved in ``order[:n_order]`` (the order of the last solve),
    then those not in it: a link whose couplings' bottlenecks are not solved yet waits at
    the back of the queue, and a whole pass of the queue without progress is a cycle.
    The links of that order before the first one `dirty` (its count or couplings changed
    since it was solved; every link if `all_dirty`) keep their levels: they depend only
    on links before them, so solving them again would give the same bits.
    Returns ``(status, n)``: SOLVED (``order[:n]`` the order solved in), VIOLATED
    (``viol[p]`` set for the couplings whose flows are to move to their link; a link that
    its couplings alone fill stops the solve there) or FAILED (a cycle, or a level not
    finite). On SOLVED also sets `top` (the fastest flow) and `residual` (capacity left)
    of every link of `links`. `ready` (per link) holds the `epoch` of the solve that last
    solved it."""
    # Kept: the last order up to its first dirty link. The queue: the rest of it, then
    # bottleneck links new to it.
    n_keep = 0
    if not all_dirty:
        while n_keep < n_order and not dirty[order[n_keep]] and n_b[order[n_keep]] > 0:
            ready[order[n_keep]] = epoch
            n_keep += 1
    queue = np.empty(len(links) + n_order, np.int64)
    n_queue = 0
    for i in range(n_keep, n_order):
        link = order[i]
        if n_b[link] > 0 and ready[link] != -epoch:
            ready[link] = -epoch                                # queued
            queue[n_queue] = link
            n_queue += 1
    for link in links:
        if n_b[link] > 0 and ready[link] != -epoch and ready[link] != epoch:
            ready[link] = -epoch
            queue[n_queue] = link
            n_queue += 1
    waits = np.empty(n_queue, np.int64)
    n_solved = n_keep
    status = SOLVED
    stale = False                     # a cycle was broken with levels of the last solve
    force = False
    while n_queue > 0:
        n_wait = 0
        for i in range(n_queue):
            link = queue[i]
            left = capacity[link]
            fastest = 0.0
            waiting = False
            for k in range(n_link_cp[link]):
                p = link_cp[link, k]
                c = cp_n[p]
                if c == 0:
                    continue
                m = cp_b[p]
                if ready[m] != epoch and not force:
                    waiting = True
                    break
                r = level[m]
                left -= c * r
                if r > fastest:
                    fastest = r
            if waiting:
                waits[n_wait] = link
                n_wait += 1
                continue
            share = left / n_b[link]
            if not share < np.inf:
                return FAILED, n_solved
            if not share > 0.0:
                # Its couplings alone fill it: their fastest flows belong here.
                for k in range(n_link_cp[link]):
                    p = link_cp[link, k]
                    if cp_n[p] > 0 and level[cp_b[p]] >= fastest * (1 - tol):
                        viol[p] = True
                return VIOLATED, n_solved
            if fastest > share * (1 + tol):
                # Flows crossing it are faster than its level: they belong here.
                for k in range(n_link_cp[link]):
                    p = link_cp[link, k]
                    if cp_n[p] > 0 and level[cp_b[p]] > share * (1 + tol):
                        viol[p] = True
                status = VIOLATED
            level[link] = share
            top[link] = share
            residual[link] = 0.0
            ready[link] = epoch
            order[n_solved] = link
            n_solved += 1
            dirty[link] = force                    # solved from last time's levels: still
            force = False
        if n_wait == n_queue:
            # A cycle of couplings: solve its first link with the levels its couplings'
            # bottlenecks had, to find which couplings to move. Such levels do not solve
            # the system, so this round cannot end SOLVED.
            stale = True
            force = True
            n_wait = n_queue
        queue[:n_wait] = waits[:n_wait]
        n_queue = n_wait
    for link in links:
        if n_b[link] > 0:
            continue
        dirty[link] = False
        load = 0.0
        fastest = 0.0
        for k in range(n_link_cp[link]):
            p = link_cp[link, k]
            if cp_n[p] > 0:
                r = level[cp_b[p]]
                load += cp_n[p] * r
                if r > fastest:
                    fastest = r
        top[link] = fastest
        residual[link] = capacity[link] - load
        if load > capacity[link] * (1 + tol):                  # over: its fastest belong here
            for k in range(n_link_cp[link]):
                p = link_cp[link, k]
                if cp_n[p] > 0 and level[cp_b[p]] >= fastest * (1 - tol):
                    viol[p] = True
            status = VIOLATED
    if stale and status == SOLVED:
        status = FAILED
    return status, n_solved


@kernel
def list_couplings(n_cp, cp_link, link_cp, n_link_cp):  # pragma: no cover - compiled
    """Append couplings ``0 .. n_cp - 1`` to the list of their link; False (nothing
    done) if a list would overflow."""
    for p in range(n_cp):
        n_link_cp[cp_link[p]] += 1
    full = False
    for p in range(n_cp):
        if n_link_cp[cp_link[p]] > link_cp.shape[1]:
            full = True
    for p in range(n_cp):
        n_link_cp[cp_link[p]] = 0
    if full:
        return False
    for p in range(n_cp):
        link = cp_link[p]
        link_cp[link, n_link_cp[link]] = p
        n_link_cp[link] += 1
    return True


@kernel
def repair_moves(n_cp, cp_b, viol, head, nxt, g_links, g_cp, n_b, level, pad, moves, seen,
                 epoch):  # pragma: no cover - compiled
    """The groups with a violated coupling (``viol``), found through the list of groups
    bottlenecked at the coupling's bottleneck (``head[m]``, ``nxt``), and the link each
    moves to: the one of least level among its violated couplings' links (a link
    bottlenecking none counts as infinitely high). Writes ``moves[:k]`` as (group, link)
    rows; returns k, with every flag of `viol` cleared. `seen` (per link) is marked with
    `epoch` for bottlenecks visited."""
    k = 0
    for p in range(n_cp):
        if not viol[p]:
            continue
        m = cp_b[p]
        if seen[m] == epoch:
            continue
        seen[m] = epoch
        g = head[m]
        while g >= 0:
            best = -1
            best_level = np.inf
            for h in range(g_links.shape[1]):
                link = g_links[g, h]
                if link == pad:
                    break
                q = g_cp[g, h]
                if q >= 0 and viol[q]:
                    here = level[link] if n_b[link] > 0 else np.inf
                    if best < 0 or here < best_level:
                        best = link
                        best_level = here
            if best >= 0:
                moves[k, 0] = g
                moves[k, 1] = best
                k += 1
            g = nxt[g]
    viol[:n_cp] = False
    return k


@kernel
def bottlenecks_of(n_groups, g_n, g_links, rate, capacity, full, load, top, b):  # pragma: no cover - compiled
    """Each group's bottleneck as progressive filling left it: the first of its links
    that is full (``load >= full * capacity``) and carries no faster flow (to 1e-12);
    -1 where none is (then the fast solve is not used). `load` and `top` are work
    arrays per link."""
    pad = capacity.shape[0] - 1
    load[:] = 0.0
    top[:] = 0.0
    for g in range(n_groups):
        if not g_n[g]:
            continue
        r = rate[g]
        for h in range(g_links.shape[1]):
            link = g_links[g, h]
            if link == pad:
                break
            load[link] += r * g_n[g]
            if r > top[link]:
                top[link] = r
    missing = 0
    for g in range(n_groups):
        b[g] = -1
        if not g_n[g]:
            continue
        r = rate[g]
        for h in range(g_links.shape[1]):
            link = g_links[g, h]
            if link == pad:
                break
            if load[link] >= full * capacity[link] and r >= top[link] * (1 - 1e-12):
                b[g] = link
                break
        if b[g] < 0:
            missing += 1
    return missing
