"""The flow-level network model, running inside a SimPy environment.

Semantics (docs/semantics.md, "Network model")
----------------------------------------------
- A link is full-duplex: each direction has the link's whole bandwidth.
- A transfer ``(src, dst, bytes)`` follows the route of :mod:`simulator.network.routing`. It first
  waits the sum of its links' latencies (the *latency phase*), then its bytes flow (the
  *byte phase*) at its max-min fair share of every link on its route
  (:func:`simulator.network.maxmin.max_min_rates`).
- Rates are recomputed whenever a transfer begins or ends its byte phase; all such
  changes at one instant are gathered into a single recomputation.
- A transfer finishes when its last byte has flowed; its bytes are then counted on every
  link it crossed and on that link's tier (the graph's tiers,
  :func:`simulator.cluster.levels.graph_tiers`: ``intra_block`` and ``inter_block``, or one
  per level of a nested topology).

How it runs
-----------
:class:`Network` is passive: it schedules one *wake-up* event at the next instant
something happens in the world (a latency phase ends or a transfer finishes), at a
priority below SimPy's normal events so that every transfer started at that instant is
already known when rates are recomputed. A transfer is not a SimPy process of its own,
so a collective step of 1,024 transfers costs one event, not thousands. Transfers in
their byte phase live in a table that each wake-up updates in place: by default a
:class:`~simulator.network.flowtable.FlowTable` (rates per flow, each link's flows in join
order: what an event costs grows with what it changes); :func:`simulate_transfers` uses a
:class:`~simulator.network.grouptable.GroupTable` (rates per group of flows crossing the
same links that can fill, bytes left against group clocks: cheaper when many transfers
overlap, equal to rounding; docs/network.md, "What an event costs").

Links going down
----------------
:meth:`Network.reroute` switches to a router that avoids links that are down
(:meth:`simulator.network.routing.Router.avoiding`; faults, docs/faults.md). Every transfer
whose route crosses one of them continues, from where it is, on its new route: one in its
latency phase keeps its start and takes the new route when its bytes begin to flow; one in
its byte phase takes it at once with the bytes it has left (the bytes already sent are
counted on the links they crossed, the rest on the new route's; no second latency phase).
A transfer with no path left stalls, holding its bytes, until a later reroute finds one
(``Network.stalled``). Transfers on routes that avoid the down links keep them.

:func:`simulate_transfers` runs a list of transfers on a graph by itself, and takes links
going down and coming back at given times.
"""

import heapq
import weakref

import numpy as np
import simpy
from simpy.events import EventPriority

from ..cluster.levels import graph_tiers
from ..utils.errors import InputError, NetworkError
from .flowtable import FlowTable
from .grouptable import GroupTable
from .routing import Router

__all__ = ["Network", "simulate_transfers", "TIERS"]

TIERS = ("intra_block", "inter_block")
"""The tiers of a topology of one level; a nested one has more (``Network.tiers``)."""

# After every NORMAL event of the same instant (SimPy has URGENT=0 and NORMAL=1).
_LATE = EventPriority(2)

# Transfers whose projected finish lies within this fraction of the clock of a wake-up
# finish at it: they differ from it only by rounding.
_FINISH_RTOL = 1e-12

# router -> (capacity_Bps, latency_s, tier_of_link, tiers): built once per router, so that
# the many Networks an engine run makes on one router cost nothing to set up.
_LINK_ARRAYS = weakref.WeakKeyDictionary()


def _link_arrays(graph, router):
    found = _LINK_ARRAYS.get(router)
    if found is None:
        tiers = graph_tiers(graph)
        edges = graph.edges
        capacity, latency, tier = [], [], []
        for link in router.links:
            attrs = edges[link]
            capacity.append(attrs["bandwidth"])
            latency.append(attrs["latency"])
            tier.append(tiers.index(attrs["tier"]))
        arrays = (np.array(capacity + [np.inf]), np.array(latency + [0.0]),
                  np.array(tier + [len(tiers)]))
        for array in arrays:
            array.flags.writeable = False
        found = _LINK_ARRAYS[router] = (*arrays, tiers)
    return found


class _WakeUp(simpy.events.Event):
    """The network's own wake-up, processed after the normal events of its instant."""

    def __init__(self, env, delay_s, callback):
        super().__init__(env)
        self._ok = True
        self._value = None
        self.callbacks.append(callback)
        env.schedule(self, _LATE, delay_s)


class _Batch:
    """Transfers submitted together; `done` succeeds with their finish times."""

    __slots__ = ("done", "finish_s", "left")

    def __init__(self, env, size):
        self.done = env.event()
        self.finish_s = np.full(size, np.nan)
        self.left = size


def _tier_factor(capacity_factor, tier):
    """The factor of `tier` in `capacity_factor` (see :class:`Network`)."""
    if tier in capacity_factor:
        return capacity_factor[tier]
    kind = "intra_block" if tier.startswith("intra_") else "inter_block"
    return capacity_factor.get(kind, 1.0)


class Network:
    """Carries transfers over a topology graph inside a SimPy environment.

    Parameters
    ----------
    env : simpy.Environment
    graph : networkx.Graph
        A topology with edge attributes ``bandwidth`` (bytes/s), ``latency`` (s) and
        ``tier`` (see :mod:`simulator.cluster.topology`).
    router : Router, optional
        A router of `graph` to share (routes are cached in it).
    in_flight_log : list, optional
        If given, the network appends ``(time_s, *bytes_per_tier)`` (``intra_block``,
        ``inter_block``: the order of ``tiers``) to it whenever the bytes in flight may change (when transfers are submitted, and
        at every wake-up): the bytes of transfers submitted and not yet finished (latency
        and byte phases alike), each transfer counted in full on every tier its route
        crosses. One entry per instant (a later one at the same instant replaces it); the
        value holds until the next entry. Off (None) by default; it only observes.
    capacity_factor : mapping, optional
        ``{tier: factor}``: every link of that tier carries at most ``factor`` times its
        bandwidth (a protocol's bandwidth efficiency, :mod:`simulator.network.protocols`);
        on a nested topology ``intra_block`` stands for its innermost tier and
        ``inter_block`` for every ``inter_`` tier not named itself; tiers not named keep
        factor 1. Byte counts are unchanged: a link still counts the bytes that crossed it.
    with_latency : bool, default True
        False skips every transfer's latency phase (a collective that charges its
        latencies separately, :mod:`simulator.network.collectives`).

    Attributes
    ----------
    link_bytes : ndarray
        Bytes carried so far on each directed link (``router.links`` order; one extra
        padding slot at the end, always 0).
    rate_updates : int
        How many times rates were recomputed.
    tiers : tuple of str
        The graph's tiers, innermost first (the keys of :meth:`bytes_by_tier`).

    Examples
    --------
    >>> import networkx as nx, simpy
    >>> g = nx.Graph()
    >>> g.add_edge("a", "b", bandwidth=1e9, latency=1e-6, tier="intra_block")
    >>> env = simpy.Environment()
    >>> net = Network(env, g)
    >>> done = net.send("a", "b", 1e6)
    >>> finish_s = env.run(done)
    >>> round(env.now, 9)
    0.001001
    """

    # The table of flows in their byte phase: rates per flow (FlowTable, the default: bit
    # for bit the reference rule, and cheapest when few flows share links, as in
    # collective steps), or per group of flows with the same candidate links (GroupTable:
    # many overlapping transfers, as simulate_transfers runs). `table_class=` per Network.
    table_class = FlowTable

    def __init__(self, env, graph, router=None, *, in_flight_log=None, capacity_factor=None,
                 with_latency=True, table_class=None):
        self.env = env
        if table_class is not None:
            self.table_class = table_class
        self.in_flight_log = in_flight_log
        self._in_flight = {}                             # batch number -> (n, tiers) bytes not yet finished
        self.router = router if router is not None else Router(graph)
        self.pad = len(self.router.links)                # index of the padding link
        self.capacity_Bps, self.latency_s, self.tier_of_link, self.tiers = \
            _link_arrays(graph, self.router)
        if capacity_factor:
            factor = np.array([_tier_factor(capacity_factor, t) for t in self.tiers] + [1.0])
            self.capacity_Bps = self.capacity_Bps * factor[self.tier_of_link]
        if not with_latency:
            self.latency_s = np.zeros_like(self.latency_s)
        self.link_bytes = np.zeros(self.pad + 1)
        self.rate_updates = 0

        self._batches = []                               # batch number -> _Batch
        self._patterns = {}                              # (src, dst) pairs -> _Pattern
        self._last_pairs = self._last_pattern = None
        # Latency phase: heap of (byte phase start, sequence, batch number, slots).
        self._waiting = []
        self._sequence = 0
        # Byte phase: the flow table (created with the first flow).
        self._table = None
        self._clock_s = env.now                          # when the table's bytes left were brought up to date
        self._wake = None
        self._wake_at = np.inf
        self._pending = {}                               # batch number -> (routes, nbytes)
        self._pairs = {}                                 # batch number -> its (src, dst) pairs
        self._unroutable = {}                            # batch number -> (n,) no path now
        self._stalled = []                               # (batch, slot, src, dst, bytes left)

    @property
    def stalled(self):
        """Transfers that have no path (their links down) and wait for one: how many."""
        return len(self._stalled) + sum(int(m.sum()) for m in self._unroutable.values())

    # ------------------------------------------------------------------ public
    def send(self, src, dst, nbytes):
        """Start one transfer now; return an event that succeeds at its finish time."""
        return self.send_all([(src, dst, nbytes)])

    def send_all(self, transfers):
        """Start several transfers now.

        Parameters
        ----------
        transfers : sequence of (src, dst, nbytes)

        Returns
        -------
        simpy.Event
            Succeeds when the last one finishes; its value is the array of finish times
            (seconds), in the order given.
        """
        transfers = list(transfers)
        pairs = tuple((src, dst) for src, dst, _ in transfers)
        return self.send_pairs(pairs, [n for _, _, n in transfers])

    def send_pairs(self, pairs, nbytes, delay_s=0.0):
        """Start transfers between `pairs` now: the fast form of :meth:`send_all`.

        Parameters
        ----------
        pairs : tuple of (src, dst)
            Routes are cached per distinct tuple, so a collective that repeats a pattern
            of pairs step after step pays for routing once.
        nbytes : float or array_like
            Bytes of every transfer, or of each.
        delay_s : float or array_like, default 0
            Extra time before the transfers' latency phase ends (a collective's own
            latency), for all or for each: they are submitted, and in flight, from now.

        Returns
        -------
        simpy.Event
            As for :meth:`send_all`.
        """
        nbytes = np.broadcast_to(np.asarray(nbytes, dtype=float), (len(pairs),))
        if np.ndim(delay_s) == 0:                     # one start for all: the fast path
            return self._submit(pairs, nbytes, self.env.now + float(delay_s))
        delay_s = np.broadcast_to(np.asarray(delay_s, dtype=float), (len(pairs),))
        return self._submit(pairs, nbytes, self.env.now + delay_s)

    def bytes_by_tier(self):
        """Bytes carried so far, summed over the links of each tier: ``{tier: bytes}``."""
        sums = np.bincount(self.tier_of_link, weights=self.link_bytes,
                           minlength=len(self.tiers) + 1)
        return {tier: float(sums[i]) for i, tier in enumerate(self.tiers)}

    def bytes_by_link(self):
        """Bytes carried so far on each directed link: ``{(u, v): bytes}``."""
        return {link: float(b) for link, b in zip(self.router.links, self.link_bytes)}

    def route_latency_s(self, src, dst):
        """Sum of the link latencies on the route from `src` to `dst`."""
        return float(self.latency_s[self.router.route_links(src, dst)].sum())

    def reroute(self, router):
        """Carry on with `router`'s routes (see "Links going down" in the module docstring).

        Returns
        -------
        int
            Transfers that moved to a new route (not counting those left stalled).
        """
        now = self.env.now
        self.router = router
        self._patterns, self._last_pairs, self._last_pattern = {}, None, None
        down = np.array(sorted(self.router.index[(u, v)] for edge in router.down
                               for u, v in (tuple(edge), tuple(edge)[::-1])), dtype=np.int64)
        moved = 0
        # in their latency phase: new routes for their byte phase
        for number, (routes, nbytes) in list(self._pending.items()):
            crossing = np.isin(routes, down).any(axis=1) if len(down) else \
                np.zeros(len(routes), dtype=bool)
            unroutable = self._unroutable.get(number)
            redo = crossing | (unroutable if unroutable is not None else False)
            if not redo.any():
                continue
            pairs = self._pairs[number]
            new_rows, blocked = {}, np.zeros(len(routes), dtype=bool)
            for row in np.flatnonzero(redo):
                src, dst = pairs[row]
                try:
                    new_rows[row] = self.router.route_links(src, dst)
                except NetworkError:
                    blocked[row] = True
            width = max([routes.shape[1]] + [len(r) for r in new_rows.values()])
            routes = _widen(routes.copy(), width, self.pad)
            for row, links in new_rows.items():
                routes[row] = self.pad
                routes[row, :len(links)] = links
            self._pending[number] = (routes, nbytes)
            if blocked.any():
                self._unroutable[number] = blocked
            else:
                self._unroutable.pop(number, None)
            moved += len(new_rows)
        # in their byte phase: bring the table to now, move the ones crossing a down link
        table = self._table
        left_level, seeds, joined = np.inf, [], None
        if table is not None and table.n_active:
            limit_s = now + _FINISH_RTOL * max(now, 1e-9)
            n_done, left_level, batch_no, slot, done_seeds = table.advance(
                now - self._clock_s, limit_s, self.link_bytes)
            self._clock_s = now
            if n_done:
                self._complete(batch_no, slot, now)
                seeds.append(done_seeds)
            flowing = table.flowing()
            hits = flowing[np.isin(table.route[flowing], down).any(axis=1)] if len(down) else \
                flowing[:0]
            if len(hits):
                routes_old = table.route[hits].copy()
                sent = table.nbytes[hits] - table.left[hits]
                keep_bytes = table.left[hits].copy()
                batches, slots = table.batch[hits].copy(), table.slot[hits].copy()
                on_route = routes_old != self.pad                     # the bytes sent so far
                self.link_bytes += np.bincount(routes_old[on_route],
                                               weights=np.repeat(sent, on_route.sum(axis=1)),
                                               minlength=len(self.link_bytes))
                level, out_links = table.remove(hits)
                left_level = min(left_level, level)
                seeds.append(out_links)
                self._stalled += [(int(b), int(s), *self._pairs[int(b)][int(s)], float(n))
                                  for b, s, n in zip(batches, slots, keep_bytes)]
        self._clock_s = now
        # stalled ones, old and new: rejoin where a path exists
        rejoin, still = [], []
        for number, slot, src, dst, left in self._stalled:
            try:
                rejoin.append((number, slot, self.router.route_links(src, dst), left))
            except NetworkError:
                still.append((number, slot, src, dst, left))
        self._stalled = still
        if rejoin:
            if self._table is None:
                self._table = self.table_class(self.capacity_Bps)
            width = max(len(links) for _, _, links, _ in rejoin)
            routes = np.full((len(rejoin), width), self.pad, dtype=np.intp)
            for row, (_, _, links, _) in enumerate(rejoin):
                routes[row, :len(links)] = links
            joined = self._table.join(routes, np.array([r[3] for r in rejoin]),
                                      np.array([r[0] for r in rejoin]),
                                      np.array([r[1] for r in rejoin]))
            if self.in_flight_log is not None:
                tiers = self.tier_of_link[routes]
                for row, (number, slot, _, left) in enumerate(rejoin):
                    if number in self._in_flight:
                        self._in_flight[number][slot] = left * np.array(
                            [(tiers[row] == i).any() for i in range(len(self.tiers))])
            moved += len(rejoin)
        self._settle(now, left_level, np.concatenate(seeds) if seeds else None, joined)
        return moved


    # ------------------------------------------------------------------ internals
    def _stall_unroutable(self, number, slots, routes, nbytes):
        """Of transfers starting their byte phase, set aside those with no path now."""
        blocked = self._unroutable.get(number)
        if blocked is None:
            return number, slots, routes, nbytes
        here = blocked[slots]
        if not here.any():
            return number, slots, routes, nbytes
        pairs = self._pairs[number]
        self._stalled += [(number, int(s), *pairs[int(s)], float(n))
                          for s, n in zip(slots[here], nbytes[here])]
        return number, slots[~here], routes[~here], nbytes[~here]

    def _pattern(self, pairs):
        """Routes, path latencies and grouping by latency of a sequence of (src, dst), cached."""
        if pairs is self._last_pairs:                 # a collective repeating its step's pairs:
            return self._last_pattern                 # spare hashing thousands of them again
        found = self._patterns.get(pairs)
        if found is None:
            links = [self.router.route_links(src, dst) for src, dst in pairs]
            width = max([len(l) for l in links] + [1])
            routes = np.full((len(links), width), self.pad, dtype=np.intp)
            for row, l in enumerate(links):
                routes[row, :len(l)] = l
            found = self._patterns[pairs] = _Pattern(routes, self.latency_s[routes].sum(axis=1))
        self._last_pairs, self._last_pattern = pairs, found
        return found

    def _submit(self, pairs, nbytes, start_s):
        """Start transfers; `start_s` is one time for all (a float) or one each (an array)."""
        if not np.all(nbytes >= 0):
            raise InputError(f"transfer sizes must be >= 0 bytes, got {nbytes.min()!r}",
                             fix="give sizes in bytes, 0 or more")
        pattern = self._pattern(pairs)
        routes, latency_s = pattern.routes, pattern.latency_s
        batch = _Batch(self.env, len(pairs))
        if not len(pairs):
            batch.done.succeed(batch.finish_s)
            return batch.done
        number = len(self._batches)
        self._batches.append(batch)
        self._pending[number] = (routes, nbytes)
        self._pairs[number] = pairs
        if self.in_flight_log is not None:
            tiers = self.tier_of_link[routes]                                  # (n, H)
            crosses = np.stack([(tiers == i).any(axis=1) for i in range(len(self.tiers))], axis=1)
            self._in_flight[number] = nbytes[:, None] * crosses                # (n, tiers)
            self._log_in_flight()
        ready_s = start_s + latency_s
        groups = pattern.groups_at(ready_s) if np.ndim(start_s) == 0 else None
        if groups is None:
            order = np.argsort(ready_s, kind="stable")          # slots grouped by ready time
            times, first = np.unique(ready_s[order], return_index=True)
            groups = zip(times.tolist(), np.split(order, first[1:]))
        first_s = None
        for time_s, slots in groups:
            first_s = time_s if first_s is None else first_s
            self._sequence += 1
            heapq.heappush(self._waiting, (time_s, self._sequence, number, slots))
        self._wake_no_later_than(first_s)
        return batch.done

    def _wake_no_later_than(self, time_s):
        if time_s < self._wake_at:
            self._wake_at = time_s
            self._wake = _WakeUp(self.env, max(time_s - self.env.now, 0.0), self._on_wake)

    def _on_wake(self, event):
        if event is not self._wake:
            return                                       # superseded by an earlier wake-up
        self._wake, self._wake_at = None, np.inf
        now = self.env.now
        table = self._table
        left_level, seeds = np.inf, None
        if table is not None and table.n_active:
            limit_s = now + _FINISH_RTOL * max(now, 1e-9)
            n_done, left_level, batch_no, slot, seeds = table.advance(now - self._clock_s, limit_s,
                                                                      self.link_bytes)
            if n_done:
                self._complete(batch_no, slot, now)
        self._clock_s = now
        self._settle(now, left_level, seeds, self._start_flows(now))

    def _settle(self, now, left_level, seeds, joined):
        """After flows left (the lowest rate among them `left_level`, their links `seeds`)
        and joined: re-solve the rates, then wake at the next finish or start."""
        if left_level < np.inf or joined is not None:
            self._update_rates(now, left_level, seeds, joined)
        table = self._table
        if table is not None and table.n_active:
            self._wake_no_later_than(float(table.min_finish))
        if self._waiting:
            self._wake_no_later_than(self._waiting[0][0])
        if self.in_flight_log is not None:
            self._log_in_flight()

    def _log_in_flight(self):
        """Append the bytes in flight per tier now to `in_flight_log` (one entry per instant)."""
        total = np.zeros(len(self.tiers))
        for contributions in self._in_flight.values():
            total += contributions.sum(axis=0)
        entry = (float(self.env.now), *map(float, total))
        log = self.in_flight_log
        if log and log[-1][0] == entry[0]:
            log.pop()                                    # superseded within this instant
        if not log or log[-1][1:] != entry[1:]:
            log.append(entry)

    def _complete(self, batch_no, slot, now):
        """Record finish times; succeed the batches that are now complete."""
        if batch_no[0] == batch_no[-1] and (batch_no == batch_no[0]).all():
            numbers, counts = [int(batch_no[0])], [len(batch_no)]
        else:
            numbers, counts = np.unique(batch_no, return_counts=True)
            numbers, counts = numbers.tolist(), counts.tolist()
        for number, count in zip(numbers, counts):
            batch = self._batches[number]
            batch.finish_s[slot[batch_no == number] if len(numbers) > 1 else slot] = now
            batch.left -= count
            if number in self._in_flight:
                self._in_flight[number][slot[batch_no == number] if len(numbers) > 1 else slot] = 0.0
            if batch.left == 0:
                self._in_flight.pop(number, None)
                self._batches[number] = None
                self._pending.pop(number, None)
                self._pairs.pop(number, None)
                self._unroutable.pop(number, None)
                batch.done.succeed(batch.finish_s)

    def _start_flows(self, now):
        """Begin the byte phase of transfers whose latency is over; return their table slots
        (None if none joined)."""
        parts = []
        while self._waiting and self._waiting[0][0] <= now:
            _, _, number, slots = heapq.heappop(self._waiting)
            routes, nbytes = self._pending[number]
            parts.append((number, slots, routes[slots], nbytes[slots]))
        if not parts:
            return None
        if self._unroutable:                          # no path now: they stall instead
            parts = [self._stall_unroutable(*part) for part in parts]
            parts = [part for part in parts if len(part[1])]
            if not parts:
                return None
        if len(parts) == 1:
            number, slot, routes, nbytes = parts[0]
            batch_no = np.full(len(slot), number, dtype=np.intp)
        else:
            batch_no = np.concatenate([np.full(len(slots), number, dtype=np.intp)
                                       for number, slots, _, _ in parts])
            slot = np.concatenate([slots for _, slots, _, _ in parts])
            nbytes = np.concatenate([n for _, _, _, n in parts])
            width = max(r.shape[1] for _, _, r, _ in parts)
            routes = np.vstack([_widen(r, width, self.pad) for _, _, r, _ in parts])
        # A transfer with no bytes or no links (src == dst) finishes as its byte phase begins.
        flows = (nbytes > 0) & (routes[:, 0] != self.pad)
        if not flows.all():
            self._complete(batch_no[~flows], slot[~flows], now)
            batch_no, slot, nbytes, routes = batch_no[flows], slot[flows], nbytes[flows], routes[flows]
        if not len(nbytes):
            return None
        if self._table is None:
            self._table = self.table_class(self.capacity_Bps)
        return self._table.join(routes, nbytes, batch_no, slot)

    def _update_rates(self, now, left_level, seeds, joined):
        """Recompute rates after flows left (the slowest at `left_level`, crossing the
        links `seeds`) or joined (table slots `joined`).

        Only flows at or above the first level where a change matters, and connected to
        a link whose load changed, are solved again (see :mod:`simulator.network.maxmin`).
        """
        self.rate_updates += 1
        if self._table is None or not self._table.n_active:
            return
        self._table.resolve(now, left_level, _NO_LINKS if seeds is None else seeds,
                            _NO_LINKS if joined is None else joined)


_NO_LINKS = np.empty(0, dtype=np.int64)


def _widen(routes, width, pad):
    """Pad a route matrix on the right to `width` columns."""
    if routes.shape[1] == width:
        return routes
    return np.hstack([routes, np.full((len(routes), width - routes.shape[1]), pad, dtype=routes.dtype)])


class _Pattern:
    """The routes of a sequence of (src, dst) and its transfers grouped by path latency."""

    __slots__ = ("routes", "latency_s", "_order", "_first", "_groups")

    def __init__(self, routes, latency_s):
        self.routes, self.latency_s = routes, latency_s
        self._order = np.argsort(latency_s, kind="stable")
        _, self._first = np.unique(latency_s[self._order], return_index=True)
        self._groups = np.split(self._order, self._first[1:])

    def groups_at(self, ready_s):
        """``(time, slots)`` of transfers starting together, grouped by ready time, when
        that grouping is the one by latency (same start, no two latencies rounding to one
        ready time): exactly what sorting and ``np.unique`` of `ready_s` would give.
        None otherwise."""
        heads = ready_s[self._order[self._first]]
        if len(heads) > 1 and not np.all(heads[1:] > heads[:-1]):
            return None
        return zip(heads.tolist(), self._groups)


def simulate_transfers(graph, transfers, link_events=()):
    """Finish time of each transfer under the network model, run on its own.

    Parameters
    ----------
    graph : networkx.Graph
        A topology with edge attributes ``bandwidth`` (bytes/s), ``latency`` (s), ``tier``.
    transfers : list of mapping
        Each with keys ``src``, ``dst``, ``bytes`` and ``start`` (seconds).
    link_events : list of mapping, optional
        Links going down and coming back: ``{"time": s, "link": (u, v), "up": bool}``
        (``up`` false: down). At each, routes avoid the links then down and transfers in
        flight continue from where they are ("Links going down" in the module docstring).

    Returns
    -------
    list of float
        Finish times in seconds, in the order of `transfers`; ``inf`` for a transfer left
        without a path when the last link event is over.

    Raises
    ------
    InputError
        If a transfer lacks a key or has a negative size or start, or a link event names
        no link of the graph or a negative time.
    NetworkError
        If an end point is unknown or unreachable at its start.

    Examples
    --------
    Two 1 MB transfers out of one GPU share its 1 GB/s link: each gets 0.5 GB/s.

    >>> import networkx as nx
    >>> g = nx.star_graph(["sw", "g0", "g1", "g2"])
    >>> for u, v in g.edges:
    ...     g.edges[u, v].update(bandwidth=1e9, latency=0.0, tier="intra_block")
    >>> simulate_transfers(g, [{"src": "g0", "dst": "g1", "bytes": 1e6, "start": 0},
    ...                        {"src": "g0", "dst": "g2", "bytes": 1e6, "start": 0}])
    [0.002, 0.002]

    Two paths from a to b; the first (via s1) goes down after 0.4 ms, when 0.4 MB of 1 MB
    have flowed: the other 0.6 MB take the path via s2, at its 0.5 GB/s.

    >>> g = nx.Graph()
    >>> for u, v, bw in (("a", "s1", 1e9), ("s1", "b", 1e9), ("a", "s2", 5e8), ("s2", "b", 5e8)):
    ...     g.add_edge(u, v, bandwidth=bw, latency=0.0, tier="inter_block")
    >>> [round(t, 12) for t in simulate_transfers(
    ...     g, [{"src": "a", "dst": "b", "bytes": 1e6, "start": 0}],
    ...     [{"time": 4e-4, "link": ("a", "s1"), "up": False}])]
    [0.0016]
    """
    for i, t in enumerate(transfers):
        missing = {"src", "dst", "bytes", "start"} - set(t)
        if missing:
            raise InputError(f"transfer {i} lacks {sorted(missing)}", fix="give src, dst, bytes and start")
        if not t["start"] >= 0:
            raise InputError(f"transfer {i} starts at {t['start']!r}", fix="start at 0 s or later")
    for i, event in enumerate(link_events):
        u, v = event["link"]
        if not graph.has_edge(u, v):
            raise InputError(f"link event {i}: no link between {u!r} and {v!r}",
                             fix="name the two ends of a link of the topology")
        if not event["time"] >= 0:
            raise InputError(f"link event {i} is at {event['time']!r}", fix="give a time >= 0 s")
    env = simpy.Environment()
    router = Router(graph)
    net = Network(env, graph, router, table_class=GroupTable)   # many overlapping transfers
    down = set()

    def apply(event):
        edge = frozenset(event["link"])
        if event.get("up"):
            down.discard(edge)
        else:
            down.add(edge)
        net.reroute(router.avoiding(down))

    for event in sorted(link_events, key=lambda e: e["time"]):
        env.timeout(event["time"]).callbacks.append(lambda _, e=event: apply(e))
    pairs = tuple((t["src"], t["dst"]) for t in transfers)
    done = net._submit(pairs, np.array([t["bytes"] for t in transfers], dtype=float),
                       np.array([t["start"] for t in transfers], dtype=float))
    batch = net._batches[-1] if net._batches else None
    env.run()
    if done.triggered:
        return done.value.tolist()
    return [float("inf") if np.isnan(t) else float(t) for t in batch.finish_s]
