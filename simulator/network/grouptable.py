"""The transfers in their byte phase, held per rate class: the table the network model uses.

Semantics
---------
The same max-min fair rates as :mod:`simulator.network.maxmin` (progressive filling,
recomputed whenever a transfer begins or ends its byte phase), held differently:

- **Candidate links.** A link that is not full cannot be any flow's bottleneck, so
  leaving it out of the solve does not change the max-min allocation. Links are
  *candidates* (taken into the solve) or not; every link not a candidate is checked
  after every solve: if the rates of its flows add up to more than ``1 - 1e-6`` of its
  capacity it becomes a candidate and the solve runs again. A candidate link whose flows
  use less than half of it stops being one (unless one of its flows would be left with
  no candidate link). Whatever the split, the rates are the max-min rates of all links:
  a link that is not a candidate is never full.
- **Groups.** Flows crossing the same candidate links (in route order) always have the
  same rate, so they form one *group*, solved once with its number of flows as weight:
  progressive filling over groups takes ``share * n`` off each link of a group of ``n``
  flows where the per-flow solve takes ``share`` off ``n`` times (the only difference,
  in the last bits).
- **Virtual clocks.** A group's clock ``V`` counts the bytes one of its flows has sent
  since the group began (``V += rate * elapsed`` at every event). A flow joining with
  ``b`` bytes left is held as its *virtual finish* ``W = V + b``; its bytes left are
  ``W - V`` and its projected finish is ``now + (W - V) / rate``.
- **The check of links left out, by a bound.** A flow's rate is at most the *top rate*
  of each of its candidate links (the highest rate of a group crossing it). Each flow
  on a link ``l`` not a candidate is counted in the pair ``(l, c)`` of the candidate
  ``c`` nearest to ``l`` on its route, so ``sum over pairs of n * top[c]`` bounds the
  load of ``l``: only a link whose bound passes ``1 - 1e-6`` of its capacity has its
  flows' rates summed exactly. The bound costs a pass over the pairs (about one per
  link and neighbouring candidate), not over the flows.

- **The solve, from bottleneck levels.** Each group keeps the link that bottlenecked it
  at the last solve; the levels of those links then follow from one triangular system
  over the *couplings* (a link, the bottleneck of flows crossing it: how many), solved
  in one pass and checked against the max-min conditions
  (:mod:`simulator.network.bottlenecks`). A group new since the last solve starts at the
  link of its key with the lowest level; where the check finds flows faster than a
  bottleneck they cross, or a link over its capacity, their couplings move and the
  levels are solved again, up to ``REPAIR_ROUNDS`` times (the links solved last time
  before the first whose equation changed keep their levels). If that does not settle,
  progressive filling over the groups runs instead
  (groups below the first level at which the change matters keeping their rate, as in
  :mod:`~simulator.network.maxmin`), and each group's bottleneck is read off its rates.
  Either way the rates are max-min to rounding (the check's tolerance is
  ``LEVEL_TOL``, relative); the two differ in the last bits.

So an event costs what changes, plus a pass over the couplings (the solve), the groups
(their rates and clocks) and the pairs: not a pass over the flows.

The interface is that of :class:`simulator.network.flowtable.FlowTable` (join, advance,
remove, resolve, flowing; ``route``, ``nbytes``, ``batch``, ``slot``, ``rate``, ``left``
per slot), which keeps the per-flow solve and remains the reference.
"""

import numpy as np

from . import bottlenecks, maxmin
from ..utils.jit import kernel

__all__ = ["GroupTable"]

FULL = 1 - 1e-6            # a link not a candidate is taken in above this share of its capacity
SLACK = 0.5                # a candidate link is let go below this share
LET_GO_EVERY = 32          # solves between two looks for candidate links to let go
LEVEL_TOL = 1e-13          # the fast solve's check of the max-min conditions, relative
REPAIR_ROUNDS = 8          # fast solves (moving violated couplings) before progressive filling
REBUILD_ABOVE = 256        # couplings, past which a quarter dead are dropped (every 32 solves)


class GroupTable:
    """Flowing transfers held per group of flows with the same candidate links.

    Parameters
    ----------
    capacity_Bps : ndarray of float, shape (L + 1,)
        Capacity of each directed link; the last entry is the padding link of route rows.

    Examples
    --------
    Two flows share link 0 (10 B/s); the second joins later and takes half:

    >>> table = GroupTable(np.array([10.0, 10.0, np.inf]))
    >>> joined = table.join(np.array([[0, 1]]), np.array([100.0]), np.array([0]), np.array([0]))
    >>> table.resolve(0.0, np.inf, np.empty(0, np.int64), joined)
    10.0
    >>> table.advance(2.0, 2.0, np.zeros(3))[0]           # 20 bytes flowed, nothing finishes
    0
    >>> joined = table.join(np.array([[0, 2]]), np.array([50.0]), np.array([1]), np.array([0]))
    >>> table.resolve(2.0, np.inf, np.empty(0, np.int64), joined)
    12.0
    >>> table.rate[:2].tolist(), table.left[:2].tolist()
    ([5.0, 5.0], [80.0, 50.0])
    """

    def __init__(self, capacity_Bps):
        self.capacity = np.ascontiguousarray(capacity_Bps, dtype=np.float64)
        self.pad = len(self.capacity) - 1
        n_links = len(self.capacity)
        self.candidate = np.zeros(n_links, np.bool_)
        self.n_on = np.zeros(n_links, np.int64)            # flows per link
        self.on_link = np.zeros((n_links, 4), np.int64)    # their slots: on_link[l, :n_on[l]]
        self.top_rate = np.zeros(n_links)                  # highest rate of a group crossing it
        # Pairs (link l not a candidate, candidate c): how many flows cross l with c the
        # candidate nearest to l on their route (see _suspects).
        self._pair_of = {}
        self.pair_link = self.pair_cand = self.pair_n = np.zeros(0, np.int64)
        self.n_active = 0
        self.top = 0
        self.width = 1
        self.min_finish = np.inf
        self.now = 0.0                                     # time of the clocks
        self.t_solved = 0.0                                # time of the last solve
        self._key_to_group = {}
        self._key_of = []                                  # group -> its key (links)
        self._free = []
        self._solve_all = True
        self._solves = 0
        self._work = {name: np.zeros(n_links, dtype) for name, dtype in (
            ("seen", np.bool_), ("residual", np.float64), ("count", np.int64),
            ("key", np.float64), ("first", np.int64), ("cursor", np.int64),
            ("heap", np.int64), ("links", np.int64))}
        self._solve = self._members = self._over = np.zeros(0, np.int64)
        self._bound = np.zeros(n_links)
        self._joining = np.zeros(0, np.bool_)
        self._k_on = np.zeros(n_links, np.int64)
        self._frozen = np.zeros(0, np.bool_)
        # The fast solve (simulator.network.bottlenecks): each group's bottleneck link, flows
        # bottlenecked per link, couplings (link, bottleneck) -> flows.
        self.fast = True                                   # False: progressive filling only
        self.solves_fast = self.solves_filled = 0          # how each solve went
        self.n_b = np.zeros(n_links, np.int64)
        self.b_head = np.full(n_links, -1, np.int64)       # groups bottlenecked here (list)
        self.level = np.zeros(n_links)
        self.n_cp = np.zeros(1, np.int64)                  # couplings (some dead: 0 flows)
        self.cp_link = self.cp_b = self.cp_n = np.zeros(0, np.int64)
        self._epoch = 0
        self._candidates = None                            # the candidate links, as an array
        self._dirty = np.ones(n_links, np.bool_)           # links whose equation may have changed
        self._all_dirty = True                             # ... or all of them
        self._viol = np.zeros(0, np.bool_)
        self._assigned = False                             # every live group has a bottleneck
        self._unassigned = []                              # groups made since the last solve
        self.link_cp = np.zeros((n_links, 8), np.int64)   # couplings per link:
        self.n_link_cp = np.zeros(n_links, np.int64)       # link_cp[l, :n_link_cp[l]]
        self._ready = np.zeros(n_links, np.int64)          # epoch of the solve that solved it
        self._seen = np.zeros(n_links, np.int64)
        self._order = np.zeros(n_links, np.int64)          # bottleneck links, as last solved
        self._n_order = 0
        self._moves = np.zeros((16, 2), np.int64)
        self._no_cps = np.zeros(0, np.int64)
        self.n_groups = 0
        self._alloc_flows(16, 1)
        self._alloc_groups(16, 1)

    # ------------------------------------------------------------------ storage
    def _grow(self, name, rows, fill, dtype, shape=()):
        """Make array `name` `rows` long (and `shape` wide), keeping what it holds."""
        new = np.full((rows, *shape), fill, dtype)
        old = getattr(self, name, None)
        if old is not None:
            new[(slice(0, len(old)), *(slice(0, n) for n in old.shape[1:]))] = old
        setattr(self, name, new)

    def _alloc_flows(self, slots, width):
        def grown(name, fill, dtype, shape=()):
            self._grow(name, slots, fill, dtype, shape)
        grown("route", self.pad, np.int64, (width,))
        grown("at", 0, np.int64, (width,))               # place of the slot in on_link, per hop
        grown("pair", -1, np.int64, (width,))            # its pair per hop (-1: a candidate)
        for name in ("nbytes", "vfinish"):
            grown(name, 0.0, np.float64)
        for name in ("batch", "slot", "group"):
            grown(name, 0, np.int64)
        grown("nxt", -1, np.int64)
        grown("prv", -1, np.int64)
        grown("alive", False, np.bool_)
        self.width = max(self.width, width)

    def _alloc_groups(self, groups, width):
        def grown(name, fill, dtype, shape=()):
            self._grow(name, groups, fill, dtype, shape)
        grown("g_links", self.pad, np.int64, (width,))
        for name, fill in (("g_rate", 0.0), ("g_clock", 0.0), ("g_clock0", 0.0),
                           ("g_min_w", np.inf), ("g_finish", np.inf)):
            grown(name, fill, np.float64)
        grown("g_n", 0, np.int64)
        grown("g_head", -1, np.int64)
        grown("g_changed", True, np.bool_)                 # flows joined or left: solve it
        grown("g_b", -1, np.int64)                         # its bottleneck link (-1: none yet)
        grown("b_nxt", -1, np.int64)                       # next and previous group in the
        grown("b_prv", -1, np.int64)                       # list of its bottleneck
        grown("g_cp", -1, np.int64, (width,))              # its coupling per hop (-1: none)

    # ------------------------------------------------------------------ groups
    def _group_of(self, key):
        g = self._key_to_group.get(key)
        if g is not None:
            return g
        if self._free:
            g = self._free.pop()
        else:
            g = self.n_groups
            self.n_groups += 1
        if g >= len(self.g_n) or len(key) > self.g_links.shape[1]:
            self._alloc_groups(max(len(self.g_n), 2 * g + 2), max(self.g_links.shape[1], len(key)))
        self._key_to_group[key] = g
        if g == len(self._key_of):
            self._key_of.append(key)
        else:
            self._key_of[g] = key
        self.g_links[g] = self.pad
        self.g_links[g, :len(key)] = key
        self.g_rate[g] = 0.0
        self.g_clock[g] = self.g_clock0[g] = 0.0
        self.g_min_w[g] = np.inf
        self.g_n[g] = 0
        self.g_head[g] = -1
        self.g_b[g] = -1
        self.g_cp[g] = -1
        self._unassigned.append(g)
        return g

    def _take_out(self, s):
        """Take slot `s` out of its group; return its bytes left."""
        left = _unlink(s, self.group, self.vfinish, self.g_clock, self.g_head, self.nxt, self.prv,
                       self.g_n, self.g_changed, self.g_min_w, self.g_b, self.g_cp, self.n_b,
                       self.cp_n, self.cp_link, self._dirty)
        g = int(self.group[s])
        if self.g_n[g] == 0:
            del self._key_to_group[self._key_of[g]]
            self._free.append(g)
            _rebottleneck(g, -1, self._no_cps, self.g_n, self.g_b, self.g_cp, self.n_b,
                          self.cp_n, self.cp_link, self._dirty, self.b_head, self.b_nxt,
                          self.b_prv)
        return left

    def _flows_on(self, links):
        """Slots of the flows crossing any of `links`, in join order."""
        parts = [self.on_link[link, :self.n_on[link]] for link in links]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    def _place(self, s, left, route=None):
        """Put slot `s` (out of any group, `left` bytes left) into the group of its
        candidate links, and count it in the pair of each of its other links (`route`:
        its links as a list, if at hand)."""
        if route is None:
            route = [x for x in self.route[s].tolist() if x != self.pad]
        taken = self.candidate[route].tolist()
        key = tuple(link for link, c in zip(route, taken) if c)
        hops = [h for h, c in enumerate(taken) if c]
        pairs = [-1] * len(route)
        for h, link in enumerate(route):
            if taken[h]:
                continue
            near = route[min(hops, key=lambda c: abs(c - h))]   # nearest; the earlier of two
            p = self._pair_of.get((link, near))
            if p is None:
                p = self._pair_of[(link, near)] = len(self._pair_of)
                if p >= len(self.pair_n):
                    for name in ("pair_link", "pair_cand", "pair_n"):
                        self._grow(name, max(64, 2 * p), 0, np.int64)
                self.pair_link[p], self.pair_cand[p] = link, near
            pairs[h] = p
        self.pair[s, :len(route)] = pairs
        g = self._group_of(key)
        _insert(s, g, left, self.g_clock, self.vfinish, self.group, self.g_head, self.nxt, self.prv,
                self.g_n, self.g_changed, self.g_min_w, self.pair[s], self.pair_n, self.g_b,
                self.g_cp, self.n_b, self.cp_n, self.cp_link, self._dirty)

    def _unpair(self, s):
        pairs = self.pair[s]
        self.pair_n[pairs[pairs >= 0]] -= 1
        pairs[:] = -1

    def _regroup(self, links):
        """Move every flow on `links` (whose candidacy just changed) to its new group."""
        self._solve_all = True                   # the groups changed: solve them all next
        for s in self._flows_on(links).tolist():
            left = self._take_out(s)
            self._unpair(s)
            self._place(s, left)

    def _renumber(self, kept, names, count):
        """Move rows `kept` (ascending) of the arrays `names` to the front, in order; return
        the map from old numbers to new, ``count + 1`` long, -1 for those dropped and for -1."""
        remap = np.full(count + 1, -1, np.int64)
        remap[kept] = np.arange(len(kept))
        for name in names:
            array = getattr(self, name)
            array[:len(kept)] = array[kept]
        return remap

    def _compact(self):
        """Renumber the live groups 0, 1, ... in their order, so that passes over the
        groups do not also pass over the many freed ones (after a burst of groups)."""
        live = np.flatnonzero(self.g_n[:self.n_groups] > 0)
        remap = self._renumber(live, ("g_links", "g_rate", "g_clock", "g_clock0", "g_min_w",
                                      "g_finish", "g_n", "g_head", "g_changed", "g_b", "g_cp"),
                               self.n_groups)
        self._unassigned = [int(remap[g]) for g in self._unassigned if remap[g] >= 0]
        _list_bottlenecked(len(live), self.g_n, self.g_b, self.b_head, self.b_nxt, self.b_prv)
        flowing = self.flowing()
        self.group[flowing] = remap[self.group[flowing]]
        self._key_to_group = {key: int(remap[g]) for key, g in self._key_to_group.items()}
        self._key_of = [self._key_of[g] for g in live.tolist()]
        self._free = []
        self.n_groups = len(live)

    def _compact_pairs(self):
        """Drop the pairs no flow is counted in any more (renumbering the others in order)."""
        n = len(self._pair_of)
        kept = np.flatnonzero(self.pair_n[:n] > 0)
        remap = self._renumber(kept, ("pair_link", "pair_cand", "pair_n"), n)
        flowing = self.flowing()
        self.pair[flowing] = remap[self.pair[flowing]]            # -1 (no pair) stays -1
        self._pair_of = {(int(link), int(cand)): i for i, (link, cand) in
                         enumerate(zip(self.pair_link[:len(kept)], self.pair_cand[:len(kept)]))}

    # ------------------------------------------------------------------ events
    def join(self, routes, nbytes, batch, slot):
        """Add flows (see :meth:`FlowTable.join <simulator.network.flowtable.FlowTable.join>`);
        return their slots."""
        k, hops = routes.shape
        if self.top + k > len(self.nbytes) or hops > self.width:
            slots = len(self.nbytes)
            while slots < self.top + k:
                slots *= 2
            self._alloc_flows(slots, max(self.width, hops))
        slots = np.arange(self.top, self.top + k, dtype=np.int64)
        self.route[slots] = self.pad
        self.route[slots, :hops] = routes
        self.nbytes[slots] = nbytes
        self.batch[slots] = batch
        self.slot[slots] = slot
        self.alive[slots] = True
        self.pair[slots] = -1
        self.top += k
        self.n_active += k
        cap = self.capacity
        pad = self.pad
        for s, row in zip(slots.tolist(), routes.tolist()):
            links = [x for x in row if x != pad]
            if not self.candidate[links].any():
                # The tightest link, by capacity per flow, is taken in; the check after
                # the solve takes in any other that fills.
                tight = min(links, key=lambda x: cap[x] / (self.n_on[x] + 1))
                self.candidate[tight] = True
                self._candidates_changed()
                self._regroup([tight])
            if not _attach(s, self.route, pad, self.on_link, self.n_on, self.at):
                self._grow("on_link", len(self.on_link), 0, np.int64, (2 * self.on_link.shape[1],))
                _attach(s, self.route, pad, self.on_link, self.n_on, self.at)
            self._place(s, float(self.nbytes[s]), links)
        return slots

    def _leave(self, done):
        """Take finished or removed slots out (join order); return the lowest rate and links."""
        level = np.inf
        seeds = []
        for s in done.tolist():
            g = self.group[s]
            level = min(level, float(self.g_rate[g]))
            self._take_out(s)
            self._unpair(s)
            _detach(s, self.route, self.pad, self.on_link, self.n_on, self.at)
            seeds.extend(link for link in self.route[s].tolist() if link != self.pad)
            self.alive[s] = False
        self.n_active -= len(done)
        return level, np.array(seeds, np.int64)

    def advance(self, elapsed_s, limit_s, link_bytes):
        """Let bytes flow for `elapsed_s`; finish what ends by `limit_s` (as
        :meth:`FlowTable.advance <simulator.network.flowtable.FlowTable.advance>`)."""
        if not self.n_active:
            return 0, np.inf, None, None, None
        maxmin._compile_if_big(self.n_active * self.width)
        live = self.n_groups
        n_done = _due(live, self.g_n, self.t_solved, float(limit_s), float(elapsed_s), self.g_head,
                      self.g_rate, self.g_clock0, self.g_clock, self.g_finish, self.nxt, self.vfinish,
                      self._done_buffer())
        self.now += float(elapsed_s)
        if not n_done:
            return 0, np.inf, None, None, None
        if n_done == 1:                          # the common case: one flow, its links once
            done = self._done[:1].copy()
            route = self.route[done[0]]
            link_bytes[route[route != self.pad]] += self.nbytes[done[0]]
            level, seeds = self._leave(done)
            return 1, level, self.batch[done], self.slot[done], seeds
        done = np.sort(self._done[:n_done])
        # Bytes per link summed from 0 in join order, then added (as np.bincount, +=).
        routes = self.route[done]
        on = routes != self.pad
        sums = np.bincount(routes[on], weights=np.repeat(self.nbytes[done], on.sum(axis=1)),
                           minlength=len(link_bytes))
        touched = np.unique(routes[on])
        link_bytes[touched] += sums[touched]
        level, seeds = self._leave(done)
        return n_done, level, self.batch[done], self.slot[done], seeds

    def _done_buffer(self):
        if getattr(self, "_done", None) is None or len(self._done) < self.n_active:
            self._done = np.zeros(max(16, 2 * self.n_active), np.int64)
        return self._done

    def remove(self, slots):
        """Take flows out before they finish (see :meth:`FlowTable.remove
        <simulator.network.flowtable.FlowTable.remove>`); return ``(left_level, seeds)``."""
        return self._leave(np.sort(np.asarray(slots, np.int64)))

    def resolve(self, now, left_level, seeds, joined):
        """Solve the rates again (all groups); return the earliest projected finish."""
        self.now = self.t_solved = float(now)
        if not self.n_active:
            self.min_finish = np.inf
            return self.min_finish
        maxmin._compile_if_big(self.n_active * self.width)
        cap = self.capacity[:self.pad]
        level = None                             # progressive filling's threshold, if needed
        joined = np.asarray(joined, np.int64)
        self._solves += 1
        if self.n_groups > 2 * len(self._key_to_group) + 64:
            self._compact()
        if self._solves % LET_GO_EVERY == 0 and len(self._pair_of) > 64 and \
                2 * np.count_nonzero(self.pair_n[:len(self._pair_of)]) < len(self._pair_of):
            self._compact_pairs()
        tried_letting_go = self._solves % LET_GO_EVERY != 0
        while True:
            if self._solve_all:
                level = 0.0
                self._solve_all = False
            if len(self._over) < len(self.pair_n):
                self._over = np.zeros(2 * len(self.pair_n), np.int64)
            if not (self.fast and self._assigned and self._fast_solve()):
                if level is None:
                    level = self._threshold(left_level, joined)
                self._fill(level)
            n_over = _suspects(len(self._pair_of), self.pair_link, self.pair_cand, self.pair_n,
                               self.top_rate, self.capacity, self.candidate, FULL, self.on_link,
                               self.n_on, self.group, self.g_rate, self._bound, self._over)
            if n_over:
                over = np.unique(self._over[:n_over])
                self.candidate[over] = True
                self._candidates_changed()
                self._regroup(over.tolist())
                continue
            if tried_letting_go:
                break
            tried_letting_go = True
            # A candidate link's load is what the solve left of it (no flows: none).
            residual = np.where(self.n_on[:self.pad] > 0, self._work["residual"][:self.pad], cap)
            slack = np.flatnonzero(self.candidate[:self.pad] & (cap - residual < SLACK * cap))
            if not (len(slack) and self._let_go(slack)):
                break
        live = self.n_groups
        self.g_clock0[:live] = self.g_clock[:live]
        self.min_finish = float(_earliest(live, self.g_n, self.now, self.g_rate, self.g_clock,
                                          self.g_min_w, self.g_finish))
        return self.min_finish

    def _threshold(self, left_level, joined):
        """Groups whose rate is below the first level at which a change matters keep it
        (maxmin's rule): the lowest rate that left, and for joining flows a lower bound of
        their entry level on their candidate links (_entry_bound)."""
        level = float(left_level)
        if len(joined):
            if len(self._joining) < self.top:
                self._joining = np.zeros(2 * self.top, np.bool_)
            level = min(level, _entry_bound(joined, self.route, self.candidate, self.on_link,
                                            self.n_on, self.group, self.g_rate, self.capacity,
                                            self._joining, self._k_on))
        return level

    def _fill(self, level):
        """Progressive filling over the groups at or above `level`; then read each group's
        bottleneck off the rates, for the fast solve of the next events."""
        n = self.n_groups
        if len(self._solve) < n or len(self._members) < n * self.g_links.shape[1]:
            self._solve = np.zeros(2 * n, np.int64)
            self._frozen = np.zeros(2 * n, np.bool_)
            self._members = np.zeros(2 * n * self.g_links.shape[1], np.int64)
        work = self._work
        _group_fill(n, self.g_links, self.g_n, self.capacity, self.g_rate, self.g_changed,
                    level * (1 - 1e-9), work["seen"], work["residual"], work["count"],
                    work["key"], work["first"], work["cursor"], work["heap"], work["links"],
                    self._solve, self._members, self._frozen, self.top_rate)
        self.solves_filled += 1
        self._all_dirty = True                             # levels overwritten below
        if self.fast:
            missing = bottlenecks.bottlenecks_of(n, self.g_n, self.g_links, self.g_rate,
                                            self.capacity, 1 - 1e-9, self._bound,
                                            self.level, self.g_b)
            self._assigned = not missing
            if self._assigned:
                self._rebuild_couplings()
                self._unassigned = []

    # ------------------------------------------------------------------ fast solve
    def _rebuild_couplings(self):
        """Count every live group at its bottleneck ``g_b`` and in its couplings, anew
        (dropping the couplings no flow is counted in)."""
        n = self.n_groups
        live = self.g_n[:n] > 0
        b = self.g_b[:n]
        n_links = len(self.capacity)
        self.n_b[:] = np.bincount(b[live], weights=self.g_n[:n][live],
                                  minlength=n_links).astype(np.int64)
        links = self.g_links[:n]
        hop = live[:, None] & (links != self.pad) & (links != b[:, None])
        unique, inverse = np.unique((links * n_links + b[:, None])[hop], return_inverse=True)
        self._grow_couplings(len(unique))
        self.n_cp[0] = len(unique)
        self.cp_link[:len(unique)], self.cp_b[:len(unique)] = unique // n_links, unique % n_links
        self.cp_n[:len(unique)] = np.bincount(
            inverse, weights=np.broadcast_to(self.g_n[:n, None], links.shape)[hop],
            minlength=len(unique)).astype(np.int64)
        g_cp = np.full(links.shape, -1, np.int64)
        g_cp[hop] = inverse
        self.g_cp[:n] = g_cp
        _list_bottlenecked(n, self.g_n, self.g_b, self.b_head, self.b_nxt, self.b_prv)
        self._all_dirty = True
        self.n_link_cp[:] = 0
        while not bottlenecks.list_couplings(len(unique), self.cp_link, self.link_cp, self.n_link_cp):
            self.link_cp = np.zeros((len(self.link_cp), 2 * self.link_cp.shape[1]), np.int64)

    def _grow_couplings(self, count):
        """Room for `count` couplings."""
        if len(self.cp_n) < count:
            rows = max(64, 2 * count)
            for name in ("cp_link", "cp_b", "cp_n"):
                self._grow(name, rows, 0, np.int64)
            self._viol = np.zeros(rows, np.bool_)

    def _move(self, moves):
        """Make ``moves[i, 1]`` the bottleneck of group ``moves[i, 0]``, for every row."""
        done = 0
        while done < len(moves):
            done += _move_groups(moves[done:], self.g_links, self.pad, self.g_n, self.g_b, self.g_cp,
                                 self.n_b, self.cp_n, self.cp_link, self.cp_b, self.link_cp,
                                 self.n_link_cp, self.n_cp, self.b_head, self.b_nxt, self.b_prv,
                                 self._dirty)
            if done < len(moves):                  # out of room for a coupling: grow, go on
                self._grow_couplings(self.n_cp[0] + 1)
                width = self.link_cp.shape[1]
                if self.n_link_cp.max() == width:
                    self._grow("link_cp", len(self.link_cp), 0, np.int64, (2 * width,))

    def _fast_solve(self):
        """Rates from the bottleneck levels (:mod:`simulator.network.bottlenecks`): guess the
        bottleneck of groups made since the last solve, solve, move the flows of violated
        couplings and solve again, up to REPAIR_ROUNDS times; True if the rates are set."""
        cap = self.capacity
        if self._unassigned:
            new = np.array(self._unassigned, np.int64)
            self._unassigned = []
            if len(self._moves) < len(new):
                self._moves = np.zeros((2 * len(new), 2), np.int64)
            k = _guess(new, self.g_links, self.g_n, self.g_b, self.n_b, self.level, cap,
                       self.n_on, self._moves)
            self._move(self._moves[:k])
        n_cp = int(self.n_cp[0])
        if n_cp > REBUILD_ABOVE and self._solves % LET_GO_EVERY == 0 and \
                4 * np.count_nonzero(self.cp_n[:n_cp]) < 3 * n_cp:
            self._rebuild_couplings()                          # a quarter of them dead
        if self._candidates is None:
            self._candidates = np.flatnonzero(self.candidate[:self.pad])
        links = self._candidates
        for _ in range(REPAIR_ROUNDS):
            self._epoch += 1
            status, self._n_order = bottlenecks.solve_levels(
                links, self.link_cp, self.n_link_cp, self.cp_b, self.cp_n, self.n_b, cap,
                LEVEL_TOL, self.level, self.top_rate, self._work["residual"], self._viol,
                self._order, self._n_order, self._ready, self._epoch, self._dirty,
                self._all_dirty)
            self._all_dirty = False
            if status == bottlenecks.SOLVED:
                _rates_from_levels(self.n_groups, self.g_n, self.g_b, self.level, self.g_rate,
                                   self.g_changed)
                self.solves_fast += 1
                return True
            n_cp = int(self.n_cp[0])
            if status == bottlenecks.FAILED:
                break
            if len(self._moves) < self.n_groups:
                self._moves = np.zeros((2 * self.n_groups, 2), np.int64)
            k = bottlenecks.repair_moves(n_cp, self.cp_b, self._viol, self.b_head, self.b_nxt,
                                    self.g_links, self.g_cp, self.n_b, self.level, self.pad,
                                    self._moves, self._seen, self._epoch)
            self._move(self._moves[:k])
        self._viol[:n_cp] = False
        return False

    def _candidates_changed(self):
        """The candidate links changed: list them again, and solve every level anew."""
        self._candidates = None
        self._all_dirty = True

    def _let_go(self, links):
        """Stop taking slack links into the solve, where every flow keeps a candidate link."""
        let_go = []
        self._candidates_changed()
        for link in links.tolist():
            self.candidate[link] = False
            if self.candidate[self.route[self.on_link[link, :self.n_on[link]]]].any(axis=1).all():
                let_go.append(link)
            else:
                self.candidate[link] = True
        if let_go:
            self._regroup(let_go)
        return bool(let_go)

    # ------------------------------------------------------------------ views
    def flowing(self):
        """Slots of the flowing transfers, in join order."""
        return np.flatnonzero(self.alive[:self.top])

    @property
    def rate(self):
        """Rate of each slot (meaningful for flowing ones)."""
        return self.g_rate[self.group[:self.top]]

    @property
    def left(self):
        """Bytes left of each slot, as of the last event (meaningful for flowing ones)."""
        return self.vfinish[:self.top] - self.g_clock[self.group[:self.top]]


# --------------------------------------------------------------------------- kernels
@kernel
def _insert(s, g, left, clock, vfinish, group, head, nxt, prv, g_n, changed, min_w, pairs,
            pair_n, g_b, g_cp, n_b, cp_n, cp_link, dirty):  # pragma: no cover - compiled
    """Put slot `s` with `left` bytes into group `g` (at the head of its list), and count
    it in its `pairs` (-1: none) and, if the group has a bottleneck, there and in its
    couplings."""
    w = clock[g] + left
    vfinish[s] = w
    group[s] = g
    _push(s, g, head, nxt, prv)
    g_n[g] += 1
    changed[g] = True
    if w < min_w[g]:
        min_w[g] = w
    for p in pairs:
        if p >= 0:
            pair_n[p] += 1
    _count_in(g, 1, g_b, g_cp, n_b, cp_n, cp_link, dirty)


@kernel
def _guess(groups, g_links, g_n, g_b, n_b, level, capacity, n_on, moves):  # pragma: no cover - compiled
    """A first bottleneck for each new group of `groups` still without one: the link of
    its key of lowest level, or of least capacity per flow where none bottlenecks flows
    yet. Writes ``moves[:k]``; returns k."""
    pad = capacity.shape[0] - 1
    k = 0
    for g in groups:
        if not g_n[g] or g_b[g] >= 0:
            continue
        best = -1
        best_level = np.inf
        for h in range(g_links.shape[1]):
            link = g_links[g, h]
            if link == pad:
                break
            here = level[link] if n_b[link] > 0 else capacity[link] / max(n_on[link], 1)
            if best < 0 or here < best_level:
                best = link
                best_level = here
        moves[k, 0] = g
        moves[k, 1] = best
        k += 1
    return k


@kernel
def _move_groups(moves, g_links, pad, g_n, g_b, g_cp, n_b, cp_n, cp_link, cp_b, link_cp,
                 n_link_cp, n_cp, head, nxt, prv, dirty):  # pragma: no cover - compiled
    """Make ``moves[i, 1]`` the bottleneck of group ``moves[i, 0]``, row by row, finding
    each coupling in its link's list or adding it; return the rows done (fewer if the
    coupling arrays or a link's list ran out of room)."""
    width = g_links.shape[1]
    cps = np.full(width, -1, np.int64)
    for i in range(moves.shape[0]):
        g = moves[i, 0]
        b = moves[i, 1]
        for h in range(width):
            link = g_links[g, h]
            cps[h] = -1
            if link == pad or link == b:
                continue
            found = -1
            for k in range(n_link_cp[link]):
                p = link_cp[link, k]
                if cp_b[p] == b:
                    found = p
                    break
            if found < 0:
                if n_cp[0] == cp_n.shape[0] or n_link_cp[link] == link_cp.shape[1]:
                    return i
                found = n_cp[0]
                n_cp[0] += 1
                cp_link[found] = link
                cp_b[found] = b
                cp_n[found] = 0
                link_cp[link, n_link_cp[link]] = found
                n_link_cp[link] += 1
            cps[h] = found
        _rebottleneck(g, b, cps, g_n, g_b, g_cp, n_b, cp_n, cp_link, dirty, head, nxt, prv)
    return moves.shape[0]


@kernel
def _rebottleneck(g, b, cps, g_n, g_b, g_cp, n_b, cp_n, cp_link, dirty, head, nxt,
                  prv):  # pragma: no cover - compiled
    """Make link `b` (-1: none) the bottleneck of group `g`, its couplings per hop `cps`
    (-1: none; empty with no bottleneck): move its flows' counts and its place in the
    per-link lists of bottlenecked groups."""
    n = g_n[g]
    _count_in(g, -n, g_b, g_cp, n_b, cp_n, cp_link, dirty)
    if g_b[g] >= 0:
        _drop(g, g_b[g], head, nxt, prv)
    g_b[g] = b
    g_cp[g] = -1
    g_cp[g, :len(cps)] = cps
    if b >= 0:
        _push(g, b, head, nxt, prv)
    _count_in(g, n, g_b, g_cp, n_b, cp_n, cp_link, dirty)


@kernel
def _list_bottlenecked(n_groups, g_n, g_b, head, nxt, prv):  # pragma: no cover - compiled
    """Rebuild the per-link lists of bottlenecked groups from ``g_b``."""
    head[:] = -1
    for g in range(n_groups - 1, -1, -1):
        if g_n[g] and g_b[g] >= 0:
            _push(g, g_b[g], head, nxt, prv)


@kernel
def _push(item, key, head, nxt, prv):  # pragma: no cover - compiled
    """Put `item` at the head of list `key` (lists threaded through `nxt` and `prv`)."""
    first = head[key]
    nxt[item] = first
    prv[item] = -1
    if first >= 0:
        prv[first] = item
    head[key] = item


@kernel
def _drop(item, key, head, nxt, prv):  # pragma: no cover - compiled
    """Take `item` out of list `key`."""
    n = nxt[item]
    p = prv[item]
    if p >= 0:
        nxt[p] = n
    else:
        head[key] = n
    if n >= 0:
        prv[n] = p


@kernel
def _count_in(g, n, g_b, g_cp, n_b, cp_n, cp_link, dirty):  # pragma: no cover - compiled
    """Count `n` more flows of group `g` at its bottleneck and in its couplings, and mark
    those links `dirty` (their equations changed)."""
    if g_b[g] >= 0:
        n_b[g_b[g]] += n
        dirty[g_b[g]] = True
        for p in g_cp[g]:
            if p >= 0:
                cp_n[p] += n
                dirty[cp_link[p]] = True


@kernel
def _unlink(s, group, vfinish, clock, head, nxt, prv, g_n, changed, min_w, g_b, g_cp, n_b,
            cp_n, cp_link, dirty):  # pragma: no cover - compiled
    """Take slot `s` out of its group's list (and its bottleneck's and couplings' counts);
    return its bytes left."""
    g = group[s]
    _count_in(g, -1, g_b, g_cp, n_b, cp_n, cp_link, dirty)
    left = vfinish[s] - clock[g]
    _drop(s, g, head, nxt, prv)
    g_n[g] -= 1
    changed[g] = True
    if g_n[g] == 0:
        head[g] = -1
    elif vfinish[s] <= min_w[g]:
        min_w[g] = _min_w(head[g], nxt, vfinish)
    return left


@kernel
def _rates_from_levels(n_groups, g_n, g_b, level, rate, changed):  # pragma: no cover - compiled
    """Each live group's rate is its bottleneck's level."""
    for g in range(n_groups):
        if g_n[g]:
            rate[g] = level[g_b[g]]
            changed[g] = False


@kernel
def _min_w(head, nxt, vfinish):  # pragma: no cover - compiled
    best = np.inf
    s = head
    while s >= 0:
        if vfinish[s] < best:
            best = vfinish[s]
        s = nxt[s]
    return best


@kernel
def _due(n_groups, g_n, now, limit, elapsed, head, rate, clock0, clock, finish, nxt, vfinish,
         done):  # pragma: no cover - compiled
    """Slots whose projected finish ``now + (W - V) / rate`` (as of the last solve) is at
    most `limit` (looked for only in groups whose first `finish` is); every group's clock
    moves on by ``rate * elapsed``."""
    n = 0
    for g in range(n_groups):
        if not g_n[g]:
            continue
        r = rate[g]
        clock[g] += r * elapsed
        if r <= 0.0:
            continue
        if finish[g] > limit:
            continue
        s = head[g]
        while s >= 0:
            if now + (vfinish[s] - clock0[g]) / r <= limit:
                done[n] = s
                n += 1
            s = nxt[s]
    return n


@kernel
def _earliest(n_groups, g_n, now, rate, clock, min_w, finish):  # pragma: no cover - compiled
    """The earliest projected finish; `finish[g]`, each group's (``now + (W - V) / rate``
    of its first flow to finish; kept for :func:`_due` until the next solve)."""
    best = np.inf
    nan = False
    for g in range(n_groups):
        if not g_n[g]:
            continue
        r = rate[g]
        if r > 0.0:
            t = now + (min_w[g] - clock[g]) / r
            finish[g] = t
            if t < best:
                best = t
            elif t != t:
                nan = True
        else:
            finish[g] = np.inf
            if r != r:
                nan = True
    return np.nan if nan else best


@kernel
def _attach(s, route, pad, on_link, n_on, at):  # pragma: no cover - compiled
    """Append slot `s` to the flow list of each link it crosses; False (and nothing
    done) if one of those lists is full."""
    for h in range(route.shape[1]):
        link = route[s, h]
        if link == pad:
            break
        if n_on[link] == on_link.shape[1]:
            return False
    for h in range(route.shape[1]):
        link = route[s, h]
        if link == pad:
            break
        at[s, h] = n_on[link]
        on_link[link, n_on[link]] = s
        n_on[link] += 1
    return True


@kernel
def _detach(s, route, pad, on_link, n_on, at):  # pragma: no cover - compiled
    """Take slot `s` off the flow list of each link it crosses (the last one on the
    list takes its place)."""
    for h in range(route.shape[1]):
        link = route[s, h]
        if link == pad:
            break
        n_on[link] -= 1
        last = on_link[link, n_on[link]]
        i = at[s, h]
        on_link[link, i] = last
        for k in range(route.shape[1]):
            if route[last, k] == link:
                at[last, k] = i
                break


@kernel
def _entry_bound(joined, route, candidate, on_link, n_on, group, rate, capacity, joining,
                 k_on):  # pragma: no cover - compiled
    """A lower bound of the level at which a candidate link of the `joined` flows fills
    once they rise with the water while the other flows keep their rates.

    On link ``l`` with ``k`` joining flows, the load at water level ``y`` is
    ``F(y) = sum of min(rate, y) over the other flows + k * y``, concave in ``y``. So
    below ``x``, the other flows' top rate, ``F(y) <= F(x) - s * (x - y)`` with ``s`` the
    slope just below ``x`` (``k`` plus the flows at ``x``): the link fills no lower than
    ``x - (F(x) - capacity) / s`` (no lower than ``x`` if ``F(x)`` fits), nor than
    ``capacity / (k + others)``. `joining` (per slot) and `k_on` (per link) are all False
    and 0 on entry and on return."""
    pad = capacity.shape[0] - 1
    for s in joined:
        joining[s] = True
        for h in range(route.shape[1]):
            link = route[s, h]
            if link == pad:
                break
            if candidate[link]:
                k_on[link] += 1
    best = np.inf
    for s in joined:
        for h in range(route.shape[1]):
            link = route[s, h]
            if link == pad:
                break
            k = k_on[link]
            if not candidate[link] or k == 0:
                continue
            k_on[link] = 0                                 # each link once
            load = 0.0
            top = 0.0
            n_top = 0
            n_old = 0
            for i in range(n_on[link]):
                f = on_link[link, i]
                if joining[f]:
                    continue
                r = rate[group[f]]
                load += r
                n_old += 1
                if r > top:
                    top = r
                    n_top = 1
                elif r == top:
                    n_top += 1
            c = capacity[link]
            entry = c / (n_old + k)
            if n_old:
                filled = load + k * top
                tangent = top if filled <= c else top - (filled - c) / (n_top + k)
                if tangent > entry:
                    entry = tangent
            if entry < best:
                best = entry
    for s in joined:
        joining[s] = False
    return best


@kernel
def _suspects(n_pairs, pair_link, pair_cand, pair_n, top, capacity, candidate, full, on_link,
              n_on, group, rate, bound, over):  # pragma: no cover - compiled
    """Links not candidates whose flows' rates add up to more than `full` of their
    capacity; return how many (in `over`).

    A flow's rate is at most the top rate of any of its candidate links, so the flows
    that cross link ``l`` with candidate ``c`` nearest add at most ``n * top[c]`` to its
    load: that bound, summed over the link's pairs, clears most links; the flows of the
    others are summed exactly."""
    for p in range(n_pairs):
        bound[pair_link[p]] = 0.0
    for p in range(n_pairs):
        if pair_n[p]:
            bound[pair_link[p]] += pair_n[p] * top[pair_cand[p]]
    n_over = 0
    for p in range(n_pairs):
        link = pair_link[p]
        b = bound[link]
        if b <= full * capacity[link] or candidate[link]:
            continue
        bound[link] = 0.0                            # each link's flows summed once
        load = 0.0
        for i in range(n_on[link]):
            load += rate[group[on_link[link, i]]]
        if load > full * capacity[link]:
            over[n_over] = link
            n_over += 1
    return n_over


@kernel
def _group_fill(n_groups, g_links, g_n, capacity, rate, changed, threshold, seen, residual,
                count, key, first, cursor, heap, links, solve, members, frozen,
                top):  # pragma: no cover - compiled
    """Progressive filling over groups: a group of n flows counts n times on each of its
    links. Groups not `changed` whose rate is below `threshold` keep it (taken off their
    links first); the others are solved again. Touches only the links the groups cross:
    `seen` (all False between calls), `residual`, `count`, `key`, `first`, `cursor` are
    work arrays per link, `heap` and `links` too; `solve`, `members`, `frozen` per group
    (`members` per group and hop). Also sets `top[c]`, for every link `c` the groups
    cross, to the highest rate of a group crossing it."""
    pad = capacity.shape[0] - 1
    width = g_links.shape[1]
    n_links = 0
    n_solve = 0
    for g in range(n_groups):
        if not g_n[g]:
            continue
        solving = changed[g] or rate[g] >= threshold
        if solving:
            changed[g] = False
            solve[n_solve] = g
            n_solve += 1
        for h in range(width):
            link = g_links[g, h]
            if link == pad:
                break
            if not seen[link]:
                seen[link] = True
                residual[link] = capacity[link]
                count[link] = 0
                cursor[link] = 0
                top[link] = 0.0
                links[n_links] = link
                n_links += 1
            if solving:
                count[link] += g_n[g]
                cursor[link] += 1
            else:
                residual[link] -= rate[g] * g_n[g]
                if rate[g] > top[link]:
                    top[link] = rate[g]
    # Each link's solved groups, as compressed rows: members[first[l]:cursor[l]].
    total = 0
    for i in range(n_links):
        link = links[i]
        first[link] = total
        total += cursor[link]
        cursor[link] = first[link]
    for i in range(n_solve):
        g = solve[i]
        frozen[g] = False
        for h in range(width):
            link = g_links[g, h]
            if link == pad:
                break
            members[cursor[link]] = g
            cursor[link] += 1
    size = 0
    for i in range(n_links):
        link = links[i]
        seen[link] = False
        if count[link] > 0:
            key[link] = max(residual[link], 0.0) / count[link]
            heap[size] = link
            size += 1
    maxmin._walk(heap, size, key, residual, count, first, cursor, members, frozen, rate, g_links,
                 g_n, pad)
    for i in range(n_solve):
        g = solve[i]
        r = rate[g]
        for h in range(width):
            link = g_links[g, h]
            if link == pad:
                break
            if r > top[link]:
                top[link] = r
