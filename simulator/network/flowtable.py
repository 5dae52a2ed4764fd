"""The transfers in their byte phase, as a table the network model updates in place.

One row (a *slot*) per flowing transfer: its route (directed links, padded), rate, bytes
left, projected finish time, and which transfer it is (batch number and position). Each
link keeps the slots of its flows **in the order they joined**, in a segment of one
shared array (the *pool*): a flow joins by appending to its links' segments and leaves
by blanking its entries, so a change touches only the links and flows it concerns, and
:func:`simulator.network.maxmin.resolve` reads only the segments of the links it reaches,
front to back. Join order is the row order the model's rules are written in
(docs/network.md, "The incremental update"): kept flows' rates are taken off a link's
capacity in that order.

A segment that fills moves to the end of the pool with room to double; one more than
half blank is closed up in place; when the pool runs short it grows as it is if mostly
live (a young table), else every segment is packed again.
None of this changes the order of a segment's flows.

Every pass over all flowing transfers that the model needs at an event -- bytes flowed
since the last event, which transfers finish now, new projected finish times -- is one
kernel over the table (:mod:`simulator.utils.jit`), with the same floating-point
operations as the array expressions of docs/network.md::

    left -= rate * (now - last)          # at every event
    finish = now + left / rate           # after every re-solve

Slots are handed out in join order and a finished transfer leaves a hole, so the passes
over all transfers read the table front to back; when holes outnumber the transfers, the
table is closed up (slots renumbered in order, the pool's entries with them).
"""

import numpy as np

from . import maxmin
from ..utils.jit import kernel

__all__ = ["FlowTable"]

# Segment fields: first pool index, length (with blanks), capacity, live entries.
_START, _LENGTH, _ROOM, _LIVE = range(4)


class FlowTable:
    """Flowing transfers, indexed by link in join order (see the module docstring).

    Parameters
    ----------
    capacity_Bps : ndarray of float, shape (L + 1,)
        Capacity of each directed link; the last entry is the padding link of route rows.

    Attributes
    ----------
    n_active : int
        Transfers in their byte phase.
    width : int
        Columns of ``route``: the longest route seen so far.
    route, rate, left, finish, nbytes, batch, slot : ndarray
        Per slot; only the slots of flowing transfers are meaningful.
    min_finish : float
        Earliest projected finish time after the last :meth:`resolve` (``inf``: none).

    Examples
    --------
    Two flows share link 0 (10 B/s); the second joins later and takes half:

    >>> table = FlowTable(np.array([10.0, 10.0, np.inf]))
    >>> joined = table.join(np.array([[0, 1]]), np.array([100.0]), np.array([0]), np.array([0]))
    >>> table.resolve(0.0, np.inf, np.empty(0, np.int64), joined)
    10.0
    >>> link_bytes = np.zeros(3)
    >>> table.advance(2.0, 2.0, link_bytes)[0]           # 20 bytes flowed, nothing finishes
    0
    >>> joined = table.join(np.array([[0, 2]]), np.array([50.0]), np.array([1]), np.array([0]))
    >>> table.resolve(2.0, np.inf, np.empty(0, np.int64), joined)
    12.0
    >>> table.rate[:2].tolist()
    [5.0, 5.0]
    """

    def __init__(self, capacity_Bps):
        self.capacity = np.ascontiguousarray(capacity_Bps, dtype=np.float64)
        self.pad = len(self.capacity) - 1
        self.n_active = 0
        self.top = 0                                         # slots handed out so far
        self.epoch = 0
        self.min_finish = np.inf
        self._seq = 0
        n_links = len(self.capacity)
        self.segments = np.zeros((n_links, 4), np.int64)
        self.pool = np.full(64, -1, np.int64)
        self.pool_top = 0
        self.link_seen = np.full(n_links, -1, np.int64)
        self.link_mark = np.full(n_links, -1, np.int64)
        self.residual = np.zeros(n_links)
        self.key = np.zeros(n_links)
        self.count = np.zeros(n_links, np.int64)
        self.link_queue = np.zeros(n_links, np.int64)
        self.heap = np.zeros(n_links, np.int64)
        self.link_sums = np.zeros(n_links)
        self.members_at = np.zeros((n_links, 2), np.int64)
        self.route = None
        self._allocate(16, 1)

    # ------------------------------------------------------------------ storage
    def _allocate(self, slots, width):
        """Grow to `slots` slots of `width` hops, keeping every flowing transfer."""
        old = self.route
        n_old = 0 if old is None else len(old)

        def grown(name, fill, dtype=np.float64, shape=()):
            new = np.full((slots, *shape), fill, dtype)
            if old is not None:
                before = getattr(self, name)
                new[(slice(0, n_old), *(slice(0, n) for n in before.shape[1:]))] = before
            setattr(self, name, new)

        grown("route", self.pad, np.int64, (width,))
        grown("where_in_pool", -1, np.int64, (width,))       # pool index of each hop's entry
        # hot[slot] = (rate, joining, reached, frozen): what a solve reads per flow, in one
        # cache line; the marks are solve numbers (maxmin.resolve).
        grown("hot", -1.0, np.float64, (4,))
        self.rate = self.hot[:, 0]
        for name in ("left", "finish", "nbytes", "rates_buffer"):
            grown(name, 0.0)
        for name in ("seq", "batch", "slot", "reached_list", "renumber"):
            grown(name, 0, np.int64)
        grown("alive", False, np.bool_)
        self.width = width
        self.done = np.zeros(slots, np.int64)
        self.seeds = np.zeros(slots * width, np.int64)
        self.members = np.zeros(slots * width, np.int64)

    def _make_room(self, entries):
        """Make sure `entries` more can join without the pool running out.

        Appending one entry moves a full segment to the end of the pool with room for
        twice its flows (at least 4), so a join of `entries` entries onto segments holding
        ``live`` flows in all takes at most ``4 * (live + entries) + 8 * entries`` more.
        """
        live = self.n_active * self.width                    # an upper bound
        need = 4 * (live + entries) + 8 * entries
        if self.pool_top + need <= len(self.pool):
            return
        if self.pool_top <= 2 * need:
            # Mostly live entries (a young table, a fresh network): grow the pool as it
            # is, segments where they are, in time proportional to the pool rather than to
            # every link of the topology.
            pool = np.full(2 * (self.pool_top + need), -1, np.int64)
            pool[:self.pool_top] = self.pool[:self.pool_top]
            self.pool = pool
            return
        held = self.segments[:, _LIVE]
        packed = int(np.where(held > 0, np.maximum(4, 2 * held), 0).sum())
        pool = np.full(max(len(self.pool), 2 * (packed + need)), -1, np.int64)
        self.pool_top = _repack(self.pool, pool, self.segments, self.route, self.where_in_pool,
                                self.pad)
        self.pool = pool

    def _close_holes(self):
        """Renumber the flowing transfers 0 .. n-1 in join order, moving their rows."""
        keep = np.flatnonzero(self.alive[:self.top])
        self.renumber[:self.top] = -1
        self.renumber[keep] = np.arange(len(keep))
        _renumber_pool(self.pool, self.pool_top, self.renumber)
        for name in ("route", "where_in_pool", "hot", "left", "finish", "nbytes", "seq", "batch",
                     "slot"):
            array = getattr(self, name)
            array[:len(keep)] = array[keep]
        self.alive[:self.top] = False
        self.alive[:len(keep)] = True
        self.top = len(keep)

    # ------------------------------------------------------------------ events
    def join(self, routes, nbytes, batch, slot):
        """Add flows, after every flow already there (join order = row order given).

        Parameters
        ----------
        routes : ndarray of int, shape (k, h)
            Directed links of each, padded with the padding link; at least one real link.
        nbytes : ndarray of float, shape (k,)
            Bytes of each (> 0).
        batch, slot : ndarray of int, shape (k,)
            Which transfer each is, handed back when it finishes.

        Returns
        -------
        ndarray of int
            The slots given to them, for :meth:`resolve`.
        """
        k, hops = routes.shape
        if self.top - self.n_active > max(64, self.n_active):
            self._close_holes()
        if self.top + k > len(self.rate) or hops > self.width:
            slots = len(self.rate)
            while slots < self.top + k:
                slots *= 2
            self._allocate(slots, max(self.width, hops))
        self._make_room(k * hops)
        maxmin._compile_if_big((self.n_active + k) * self.width)
        slots = np.arange(self.top, self.top + k, dtype=np.int64)
        self.pool_top = _join(
            slots, np.ascontiguousarray(routes, np.int64), np.asarray(nbytes, np.float64),
            np.asarray(batch, np.int64), np.asarray(slot, np.int64), self._seq, self.pad,
            self.route, self.hot, self.left, self.finish, self.nbytes, self.seq, self.batch,
            self.slot, self.alive, self.segments, self.pool, self.pool_top, self.where_in_pool)
        self.top += k
        self.n_active += k
        self._seq += k
        return slots

    def advance(self, elapsed_s, limit_s, link_bytes):
        """Let bytes flow for `elapsed_s` at the current rates; finish what ends by `limit_s`.

        A transfer finishes when its projected finish time is at most `limit_s`; its
        bytes are then added to `link_bytes` for every link it crossed (transfers in join
        order, summed per link before adding, as ``np.bincount`` would), and it leaves.

        Returns
        -------
        tuple
            ``(n, left_level, batch, slot, seeds)``: how many finished, the lowest rate
            among them (``inf``: none), their batch numbers and positions in join
            order, and the links they crossed (with padding entries).
        """
        if not self.n_active:
            return 0, np.inf, None, None, None
        maxmin._compile_if_big(self.n_active * self.width)
        n_done, left_level, n_seeds = _advance(
            float(elapsed_s), float(limit_s), self.pad, self.route, self.hot, self.left,
            self.finish, self.nbytes, self.alive, self.top, self.segments, self.pool,
            self.where_in_pool, self.done, self.seeds, self.link_sums, link_bytes)
        if not n_done:
            return 0, np.inf, None, None, None
        self.n_active -= n_done
        done = self.done[:n_done]
        return n_done, float(left_level), self.batch[done], self.slot[done], self.seeds[:n_seeds]

    def remove(self, slots):
        """Take flows out of the table before they finish (a link they cross went down).

        Their entries are blanked as a finishing flow's are; their bytes are not counted
        (the caller counts what they carried). The caller re-solves with the returned
        level and links, as after flows finish.

        Parameters
        ----------
        slots : sequence of int
            Slots of flowing transfers.

        Returns
        -------
        tuple
            ``(left_level, seeds)``: the lowest rate among them (``inf`` for none) and the
            links they crossed.
        """
        left_level, seeds = np.inf, []
        segments, pool = self.segments, self.pool
        for s in slots:
            s = int(s)
            left_level = min(left_level, float(self.rate[s]))
            for h in range(self.route.shape[1]):
                link = int(self.route[s, h])
                if link == self.pad:
                    break
                seeds.append(link)
                pool[self.where_in_pool[s, h]] = -1
                segments[link, _LIVE] -= 1
                if segments[link, _LIVE] == 0:
                    segments[link, _LENGTH] = 0
            self.alive[s] = False
            self.n_active -= 1
        return left_level, np.array(seeds, dtype=np.int64)

    def resolve(self, now, left_level, seeds, joined):
        """Re-solve rates after flows left and joined, then project finish times.

        See :func:`simulator.network.maxmin.resolve`. Every flowing transfer's finish
        time becomes ``now + left / rate``.

        Returns
        -------
        float
            The earliest finish time (``inf`` if nothing flows; NaN if one is NaN, as
            ``ndarray.min`` gives).
        """
        if self.n_active:
            maxmin.resolve(self, left_level, seeds, joined)
            self.min_finish = float(_finish_times(float(now), self.alive, self.top, self.left,
                                                  self.hot, self.finish))
        else:
            self.min_finish = np.inf
        return self.min_finish

    def flowing(self):
        """Slots of the flowing transfers, in join order."""
        return np.flatnonzero(self.alive[:self.top])

    def link_flows(self, link):
        """Slots of the flows on `link`, in join order."""
        start, length = self.segments[link, _START], self.segments[link, _LENGTH]
        part = self.pool[start:start + length]
        return part[part >= 0]


# --------------------------------------------------------------------------- kernels
@kernel
def _join(slots, routes, nbytes, batch, slot, seq0, pad, route, hot, left, finish, nb, seq,
          batch_of, slot_of, alive, segments, pool, pool_top,
          where_in_pool):  # pragma: no cover - compiled
    width = route.shape[1]
    hops = routes.shape[1]
    for i in range(len(slots)):
        s = slots[i]
        for h in range(width):
            link = routes[i, h] if h < hops else pad
            route[s, h] = link
            if link == pad:
                continue
            start, length, room = segments[link, 0], segments[link, 1], segments[link, 2]
            if length == room:
                live = segments[link, 3]
                if 2 * live < length:                   # mostly blank: close up in place
                    length = _close_up(link, segments, pool, route, where_in_pool, pad)
                else:                                   # full: move to the end, double
                    room = max(4, 2 * (live + 1))
                    n = _copy_live(pool, start, length, pool, pool_top, link, route,
                                   where_in_pool, pad)
                    start, length = pool_top, n
                    pool_top += room
                    segments[link, 0], segments[link, 2] = start, room
            pool[start + length] = s
            where_in_pool[s, h] = start + length
            segments[link, 1] = length + 1
            segments[link, 3] += 1
        hot[s, 0] = 0.0
        left[s] = nbytes[i]
        finish[s] = np.inf
        nb[s] = nbytes[i]
        seq[s] = seq0 + i
        batch_of[s] = batch[i]
        slot_of[s] = slot[i]
        alive[s] = True
    return pool_top


@kernel
def _point(f, link, index, route, where_in_pool, pad):  # pragma: no cover - compiled
    """Record that slot `f`'s entry for `link` is now at pool `index`."""
    for h in range(route.shape[1]):
        if route[f, h] == link:
            where_in_pool[f, h] = index
            return


@kernel
def _copy_live(source, start, length, pool, top, link, route, where_in_pool,
               pad):  # pragma: no cover - compiled
    """Copy `link`'s live entries ``source[start:start + length]``, in order, to ``pool[top:]``
    (pointing their slots there); return how many."""
    n = 0
    for j in range(start, start + length):
        f = source[j]
        if f >= 0:
            pool[top + n] = f
            _point(f, link, top + n, route, where_in_pool, pad)
            n += 1
    return n


@kernel
def _close_up(link, segments, pool, route, where_in_pool, pad):  # pragma: no cover - compiled
    """Move a segment's live entries to its front, in order; return its new length."""
    start, length = segments[link, 0], segments[link, 1]
    n = 0
    for j in range(start, start + length):
        f = pool[j]
        if f >= 0:
            if j != start + n:
                pool[start + n] = f
                _point(f, link, start + n, route, where_in_pool, pad)
            n += 1
    for j in range(start + n, start + length):
        pool[j] = -1
    segments[link, 1] = n
    return n


@kernel
def _repack(old, pool, segments, route, where_in_pool, pad):  # pragma: no cover - compiled
    """Copy every segment's live entries, in order, into `pool` with room to double."""
    top = 0
    for link in range(segments.shape[0]):
        start, length, live = segments[link, 0], segments[link, 1], segments[link, 3]
        room = max(4, 2 * live) if live else 0
        n = _copy_live(old, start, length, pool, top, link, route, where_in_pool, pad)
        segments[link, 0], segments[link, 1], segments[link, 2] = top, n, room
        top += room
    return top


@kernel
def _advance(elapsed, limit, pad, route, hot, left, finish, nbytes, alive, top, segments, pool,
             where_in_pool, done, seeds, sums, link_bytes):  # pragma: no cover - compiled
    """Slots are in join order, so the finished flows come out in join order too."""
    width = route.shape[1]
    n_done = 0
    for s in range(top):
        if alive[s]:
            left[s] -= hot[s, 0] * elapsed
            if finish[s] <= limit:
                done[n_done] = s
                n_done += 1
    if n_done == 0:
        return 0, np.inf, 0
    left_level = np.inf
    n_seeds = 0
    for i in range(n_done):
        s = done[i]
        if hot[s, 0] < left_level:
            left_level = hot[s, 0]
        for h in range(width):
            link = route[s, h]
            seeds[n_seeds] = link
            n_seeds += 1
            if link == pad:
                break
            sums[link] += nbytes[s]
            pool[where_in_pool[s, h]] = -1                     # blank the entry
            live = segments[link, 3] - 1
            segments[link, 3] = live
            if live == 0:
                segments[link, 1] = 0
            elif segments[link, 1] > 16 and 2 * live < segments[link, 1]:
                _close_up(link, segments, pool, route, where_in_pool, pad)
        alive[s] = False
    # As np.bincount then +=: each link's bytes summed from 0 in join order, then added.
    for i in range(n_done):
        s = done[i]
        for h in range(width):
            link = route[s, h]
            if link == pad:
                break
            if sums[link] != 0.0:
                link_bytes[link] += sums[link]
                sums[link] = 0.0
    return n_done, left_level, n_seeds


@kernel
def _finish_times(now, alive, top, left, hot, finish):  # pragma: no cover - compiled
    best = np.inf
    nan = False
    for s in range(top):
        if alive[s]:
            t = now + left[s] / hot[s, 0]
            finish[s] = t
            if t < best:
                best = t
            elif t != t:
                nan = True
    return np.nan if nan else best


@kernel
def _renumber_pool(pool, pool_top, renumber):  # pragma: no cover - compiled
    for j in range(pool_top):
        if pool[j] >= 0:
            pool[j] = renumber[pool[j]]
