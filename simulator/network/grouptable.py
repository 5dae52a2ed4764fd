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
  ``W - V`` and its projected finish is ``now + (W - V) / rate``. So an event costs what
  changes: the groups (not the flows) whose rate moved, the flows that joined or left,
  and the flows of groups whose rate moved (their links' load is kept up to date for
  the check above).

The interface is that of :class:`simulator.network.flowtable.FlowTable` (join, advance,
remove, resolve, flowing; ``route``, ``nbytes``, ``batch``, ``slot``, ``rate``, ``left``
per slot), which keeps the per-flow solve and remains the reference.
"""

import numpy as np

from . import maxmin
from ..utils.jit import kernel

__all__ = ["GroupTable"]

FULL = 1 - 1e-6            # a link not a candidate is taken in above this share of its capacity
SLACK = 0.5                # a candidate link is let go below this share
LET_GO_EVERY = 32          # solves between two looks for candidate links to let go


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
        self.load = np.zeros(n_links)         # sum of counted rates per link not a candidate
        self.n_on = np.zeros(n_links, np.int64)            # flows per link
        self.on_link = [set() for _ in range(n_links)]      # slots per link
        self.n_active = 0
        self.top = 0
        self.width = 1
        self.min_finish = np.inf
        self.now = 0.0                                     # time of the clocks
        self.t_solved = 0.0                                # time of the last solve
        self._key_to_group = {}
        self._free = []
        self._solve_all = True
        self._solves = 0
        self._work = {name: np.zeros(n_links, dtype) for name, dtype in (
            ("seen", np.bool_), ("residual", np.float64), ("count", np.int64),
            ("key", np.float64), ("first", np.int64), ("cursor", np.int64),
            ("heap", np.int64), ("links", np.int64))}
        self._solve = self._members = self._over = np.zeros(0, np.int64)
        self._frozen = np.zeros(0, np.bool_)
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
        for name in ("nbytes", "vfinish", "counted"):
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
                           ("g_rate_counted", -1.0), ("g_min_w", np.inf)):
            grown(name, fill, np.float64)
        grown("g_n", 0, np.int64)
        grown("g_head", -1, np.int64)
        grown("g_dirty", False, np.bool_)                  # flows joined: recount them
        grown("g_changed", True, np.bool_)                 # flows joined or left: solve it

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
        self.g_links[g] = self.pad
        self.g_links[g, :len(key)] = key
        self.g_rate[g] = 0.0
        self.g_clock[g] = self.g_clock0[g] = 0.0
        self.g_rate_counted[g] = -1.0
        self.g_min_w[g] = np.inf
        self.g_n[g] = 0
        self.g_head[g] = -1
        return g

    def _key(self, s):
        return tuple(int(link) for link in self.route[s] if link != self.pad and self.candidate[link])

    def _insert(self, s, g, left):
        """Put slot `s` with `left` bytes into group `g`."""
        w = self.g_clock[g] + left
        self.vfinish[s] = w
        self.group[s] = g
        head = self.g_head[g]
        self.nxt[s], self.prv[s] = head, -1
        if head >= 0:
            self.prv[head] = s
        self.g_head[g] = s
        self.g_n[g] += 1
        self.g_dirty[g] = True
        self.g_changed[g] = True
        if w < self.g_min_w[g]:
            self.g_min_w[g] = w

    def _take_out(self, s):
        """Take slot `s` out of its group; return its bytes left."""
        g = self.group[s]
        left = self.vfinish[s] - self.g_clock[g]
        n, p = self.nxt[s], self.prv[s]
        if p >= 0:
            self.nxt[p] = n
        else:
            self.g_head[g] = n
        if n >= 0:
            self.prv[n] = p
        self.g_n[g] -= 1
        self.g_changed[g] = True
        if self.g_n[g] == 0:
            del self._key_to_group[tuple(int(x) for x in self.g_links[g] if x != self.pad)]
            self._free.append(int(g))
            self.g_head[g] = -1
        elif self.vfinish[s] <= self.g_min_w[g]:
            self.g_min_w[g] = _min_w(self.g_head[g], self.nxt, self.vfinish)
        return left

    def _regroup(self, links):
        """Move every flow on `links` (whose candidacy just changed) to its new group."""
        self._solve_all = True                   # the groups changed: solve them all next
        moving = sorted(set().union(*(self.on_link[link] for link in links)))
        for s in moving:
            left = self._take_out(s)
            self._insert(s, self._group_of(self._key(s)), left)

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
        self.counted[slots] = 0.0
        self.top += k
        self.n_active += k
        cap = self.capacity
        for s in slots.tolist():
            links = [int(x) for x in self.route[s] if x != self.pad]
            for link in links:
                self.n_on[link] += 1
            if not any(self.candidate[link] for link in links):
                # The tightest link, by capacity per flow, is taken in; the check after
                # the solve takes in any other that fills.
                tight = min(links, key=lambda x: cap[x] / self.n_on[x])
                self.candidate[tight] = True
                self._regroup([tight])
            for link in links:
                self.on_link[link].add(s)
            self._insert(s, self._group_of(self._key(s)), float(self.nbytes[s]))
        return slots

    def _leave(self, done):
        """Take finished or removed slots out (join order); return the lowest rate and links."""
        level = np.inf
        seeds = []
        for s in done.tolist():
            g = self.group[s]
            level = min(level, float(self.g_rate[g]))
            self._take_out(s)
            for link in self.route[s].tolist():
                if link == self.pad:
                    break
                seeds.append(link)
                self.on_link[link].discard(s)
                self.n_on[link] -= 1
                self.load[link] -= self.counted[s]
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
        n_done = _due(live, self.g_n, self.t_solved, float(limit_s), self.g_head, self.g_rate, self.g_clock0,
                      self.g_min_w, self.nxt, self.vfinish, self._done_buffer())
        _tick(live, self.g_n, float(elapsed_s), self.g_rate, self.g_clock)
        self.now += float(elapsed_s)
        if not n_done:
            return 0, np.inf, None, None, None
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
        # Groups whose rate is below the first level at which a change matters keep it
        # (maxmin's rule): the lowest rate that left, and for joining flows a lower bound
        # of their entry level, their candidate links' capacity per flow.
        level = float(left_level)
        joined = np.asarray(joined, np.int64)
        if len(joined):
            links = self.route[joined]
            links = links[self.candidate[links]]
            if len(links):
                level = min(level, float((self.capacity[links] / self.n_on[links]).min()))
        self._solves += 1
        tried_letting_go = self._solves % LET_GO_EVERY != 0
        while True:
            if self._solve_all:
                level = 0.0
                self._solve_all = False
            n = self.n_groups
            if len(self._solve) < n or len(self._members) < n * self.g_links.shape[1]:
                self._solve = np.zeros(2 * n, np.int64)
                self._frozen = np.zeros(2 * n, np.bool_)
                self._members = np.zeros(2 * n * self.g_links.shape[1], np.int64)
            if len(self._over) < self.n_active * self.width:
                self._over = np.zeros(2 * self.n_active * self.width, np.int64)
            work = self._work
            _group_fill(n, self.g_links, self.g_n, self.capacity, self.g_rate, self.g_changed,
                        level * (1 - 1e-9), work["seen"], work["residual"], work["count"],
                        work["key"], work["first"], work["cursor"], work["heap"], work["links"],
                        self._solve, self._members, self._frozen)
            n_over = _recount(n, self.g_n, self.g_head, self.g_rate, self.g_rate_counted,
                              self.g_dirty, self.nxt, self.route, self.counted, self.load,
                              self.capacity, self.candidate, FULL, self._over)
            if n_over:
                over = np.unique(self._over[:n_over])
                self.candidate[over] = True
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
                                          self.g_min_w))
        return self.min_finish

    def _let_go(self, links):
        """Stop taking slack links into the solve, where every flow keeps a candidate link."""
        let_go = []
        for link in links.tolist():
            self.candidate[link] = False
            if all(self._key(s) for s in self.on_link[link]):
                let_go.append(link)
            else:
                self.candidate[link] = True
        for link in let_go:         # its load is kept again from now on
            self.load[link] = float(self.counted[sorted(self.on_link[link])].sum())
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
def _min_w(head, nxt, vfinish):  # pragma: no cover - compiled
    best = np.inf
    s = head
    while s >= 0:
        if vfinish[s] < best:
            best = vfinish[s]
        s = nxt[s]
    return best


@kernel
def _tick(n_groups, g_n, elapsed, rate, clock):  # pragma: no cover - compiled
    for g in range(n_groups):
        if g_n[g]:
            clock[g] += rate[g] * elapsed


@kernel
def _due(n_groups, g_n, now, limit, head, rate, clock0, min_w, nxt, vfinish,
         done):  # pragma: no cover - compiled
    """Slots whose projected finish ``now + (W - V) / rate`` (as of the last solve) is at
    most `limit`."""
    n = 0
    for g in range(n_groups):
        if not g_n[g]:
            continue
        r = rate[g]
        if r <= 0.0:
            continue
        if now + (min_w[g] - clock0[g]) / r > limit:
            continue
        s = head[g]
        while s >= 0:
            if now + (vfinish[s] - clock0[g]) / r <= limit:
                done[n] = s
                n += 1
            s = nxt[s]
    return n


@kernel
def _earliest(n_groups, g_n, now, rate, clock, min_w):  # pragma: no cover - compiled
    best = np.inf
    nan = False
    for g in range(n_groups):
        if not g_n[g]:
            continue
        r = rate[g]
        if r > 0.0:
            t = now + (min_w[g] - clock[g]) / r
            if t < best:
                best = t
            elif t != t:
                nan = True
        elif r != r:
            nan = True
    return np.nan if nan else best


@kernel
def _recount(n_groups, g_n, head, rate, counted_rate, dirty, nxt, route, counted, load,
             capacity, candidate, full, over):  # pragma: no cover - compiled
    """Bring every link's load (sum of its flows' rates) up to date for groups whose rate
    moved or which flows joined; return how many links not candidates are above `full`
    of their capacity."""
    width = route.shape[1]
    pad = capacity.shape[0] - 1
    n_over = 0
    for g in range(n_groups):
        if not g_n[g]:
            continue
        r = rate[g]
        if r == counted_rate[g] and not dirty[g]:
            continue
        counted_rate[g] = r
        dirty[g] = False
        s = head[g]
        while s >= 0:
            d = r - counted[s]
            if d != 0.0:
                counted[s] = r
                for h in range(width):
                    link = route[s, h]
                    if link == pad:
                        break
                    if candidate[link]:
                        continue                         # its load is the solve's
                    load[link] += d
                    if d > 0.0 and load[link] > full * capacity[link]:
                        over[n_over] = link
                        n_over += 1
            s = nxt[s]
    return n_over


@kernel
def _group_fill(n_groups, g_links, g_n, capacity, rate, changed, threshold, seen, residual,
                count, key, first, cursor, heap, links, solve, members,
                frozen):  # pragma: no cover - compiled
    """Progressive filling over groups: a group of n flows counts n times on each of its
    links. Groups not `changed` whose rate is below `threshold` keep it (taken off their
    links first); the others are solved again. Touches only the links the groups cross:
    `seen` (all False between calls), `residual`, `count`, `key`, `first`, `cursor` are
    work arrays per link, `heap` and `links` too; `solve`, `members`, `frozen` per group
    (`members` per group and hop)."""
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
                links[n_links] = link
                n_links += 1
            if solving:
                count[link] += g_n[g]
                cursor[link] += 1
            else:
                residual[link] -= rate[g] * g_n[g]
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
