"""Links and switches going down under a run: rerouted collectives and partitions.

Semantics (docs/semantics.md, "Faults"; the network side is
:meth:`simulator.network.flows.Network.reroute`)
--------------------------------------------------------------------------------------------
- A link goes down at a time or a step (when the first GPU starts it), for ``down_for`` or
  for good; a switch takes all its links with it; each link may also fail at random
  (``random.link_mtbf``, down for ``random.link_down_for``). A failure of a link already
  down restarts its time down. The graph's routes are then the shortest paths of what is
  up (:meth:`simulator.network.routing.Router.avoiding`).
- A collective that starts is timed on the network as it is then. One that is running when
  a link it crosses goes down (or when a link it had to avoid comes back) is simulated
  again from its start with the link events since then: its transfers in flight continue
  on their new routes from where they were, later ones take the routes of the moment. Its
  time and bytes are those of that simulation: a fault costs the collectives it touches,
  not the others. Block syncs that share a network (the contended case) are rerouted on
  that network directly.
- A sync whose group has no path between two of its GPUs (a *partition*) does not start,
  or, running, cannot finish: with ``on_partition: wait`` it waits until links come back;
  with ``fail`` the run fails, saying which group lost its path when. A sync that waits to
  start is *waiting on failures*; a running one holds its transfers in flight (those with
  no path stall with the bytes they have left and go on when a path comes back), and that
  time is communication time.
- Only a pipelined collective (ring, tree, in-switch: all its transfers in flight at once)
  can hold through a partition; a lockstep one (hierarchical, halving-doubling) whose next
  step would find no path fails the run, saying so.
"""

import numpy as np
import simpy

from ..cluster.topology import natural_key
from ..network.collectives import allreduce, collective_network, collective_pairs, run_groups
from ..utils.errors import NetworkError
from .faults import Lifetimes

__all__ = ["LinkFaults"]


class LinkFaults:
    """The network side of a run under faults (a mixin of the engine's run state)."""

    def _init_links(self):
        self.causes = {}                         # cause -> set of edges it holds down
        self.restore_tokens = {}                 # cause -> token of its pending restore
        self.down = frozenset()                  # edges down now (frozensets {u, v})
        self.routers = {frozenset(): self.router}
        self.link_costs = {}                     # (members, down) -> (time_s, bytes) or None
        self.link_sets = {}                      # (members, down) -> edges its routes cross
        self.blocked = []                        # syncs waiting for a path
        self.report.link_failures = 0
        self.report.partitions = 0

    # ------------------------------------------------------------------ events
    def _schedule_link_events(self):
        plan = self.plan
        for number, event in enumerate(plan.events):
            if event.target not in ("link", "switch"):
                continue
            if event.time_s is not None:
                self._at(event.time_s, lambda _, e=event: self._fault_link(e))
            else:
                for k in range(self.K):
                    self.step_triggers.setdefault((k, event.step - 1), []).append(number)
        random = plan.random
        if random is not None and random.link_mtbf_s is not None:
            edges = sorted((tuple(sorted(e, key=natural_key)) for e in self.graph.edges),
                           key=lambda e: (natural_key(e[0]), natural_key(e[1])))
            life = Lifetimes("link", len(edges), random.link_mtbf_s, random.distribution,
                             random.weibull_shape, self.seed)
            for i, edge in enumerate(edges):
                self._renew_link(life, i, 0.0, edge, random.link_down_for_s)

    def _renew_link(self, life, i, since_s, edge, down_for_s):
        when = since_s + life.next(i)

        def fire(_):
            self._link_down(("link", edge), {frozenset(edge)}, down_for_s, "link down",
                            f"{edge[0]}-{edge[1]}")
            self._renew_link(life, i, when, edge, down_for_s)
        self._at(when, fire)

    def _fault_link(self, event):
        """A link or switch event of the scenario, now."""
        if event.target == "link":
            u, v = event.name
            self._link_down(("link", tuple(sorted((u, v), key=natural_key))),
                            {frozenset((u, v))}, event.down_for_s, "link down", f"{u}-{v}")
        else:
            edges = {frozenset((event.name, n)) for n in self.graph.adj[event.name]}
            self._link_down(("switch", event.name), edges, event.down_for_s, "switch down",
                            event.name)

    def _link_down(self, cause, edges, down_for_s, what, target):
        if self.done.triggered:
            return
        now = self.env.now
        self.report.link_failures += 1
        self._log(now, what, target, None)
        self.causes[cause] = set(edges)
        token = self.restore_tokens[cause] = object()
        if down_for_s is not None:
            self._at(now + down_for_s, lambda _: self._link_up(cause, token, what, target))
        self._links_changed(now)

    def _link_up(self, cause, token, what, target):
        if self.done.triggered or self.restore_tokens.get(cause) is not token:
            return
        del self.restore_tokens[cause]
        del self.causes[cause]
        self._log(self.env.now, what.replace("down", "up"), target, None)
        self._links_changed(self.env.now)

    def _router_for(self, down):
        router = self.routers.get(down)
        if router is None:
            router = self.routers[down] = self.router.avoiding(down)
        return router

    def _links_changed(self, now):
        """The edges down changed: reroute the shared network, retime what runs, unblock."""
        before = self.down
        self.down = frozenset(e for edges in self.causes.values() for e in edges)
        changed = before ^ self.down
        if not changed:
            return
        router = self._router_for(self.down)
        if self.shared is not None:
            self.shared.reroute(router)
            if self.shared.stalled and self.plan.on_partition == "fail":
                self._partition_failed(now, "the block syncs on the shared network")
                return
        for sync in list(self.running):
            if sync.what != "checkpoint" and getattr(sync, "link_state", None) is not None \
                    and sync.aborted_s is None:
                self._retime(sync, now, changed)
        for sync in list(self.blocked):
            self._try_unblock(sync, now)

    # ------------------------------------------------------------------ syncs
    def _sync_over_links(self, sync, names, everyone):
        """SimPy process body of a collective under link faults; True when it completed."""
        env = self.env
        key = tuple(names)
        if self.shared is not None and not everyone:
            try:
                process = allreduce(self.shared, [names], self.message_bytes, self.collective)
            except NetworkError:
                if not (yield from self._wait_for_path(sync, names)):
                    return False
                process = allreduce(self.shared, [names], self.message_bytes, self.collective)
            try:
                yield process
            except NetworkError:                 # a lockstep step found no path
                self._lockstep_cut(self.env.now, self._group_text(sync, names))
                return False
            return True
        cost = self._link_cost(key, self.down)
        if cost is None:
            if not (yield from self._wait_for_path(sync, names)):
                return False
            cost = self._link_cost(key, self.down)
        time_s, nbytes = cost
        sync.cost, sync.nbytes = time_s, nbytes
        sync.link_state, sync.link_events = self.down, []
        sync.extra_s = self.delay_s if everyone else 0.0
        sync.wake = env.event()
        self._arm(sync, sync.start_s + time_s + sync.extra_s)
        yield sync.wake
        return True

    def _wait_for_path(self, sync, names):
        """Park `sync` until its group has a path (on_partition wait); False if the run fails."""
        now = self.env.now
        self.report.partitions += 1
        self._log(now, "partition", self._group_text(sync, names), sync.step)
        if self.plan.on_partition == "fail":
            self._partition_failed(now, self._group_text(sync, names))
            return False
        sync.start_s = None
        sync.blocked = True
        sync.unblocked = self.env.event()
        self.blocked.append(sync)
        yield sync.unblocked
        return sync.aborted_s is None and sync.gen == self.gen

    def _try_unblock(self, sync, now):
        if sync.aborted_s is not None or sync.gen != self.gen:
            self.blocked.remove(sync)
            return
        names = [self.gpus[i] for i in sync.arrived]
        if self.shared is not None and sync.name != "global":
            try:
                collective_network(simpy.Environment(), self.graph, names, self.message_bytes,
                                   self.collective, self._router_for(self.down))
            except NetworkError:
                return
        elif self._link_cost(tuple(names), self.down) is None:
            return
        self.blocked.remove(sync)
        sync.start_s = now
        sync.unblocked.succeed()

    def _partition_failed(self, now, what):
        self._stop_run(now, f"{what} lost every path between two of its GPUs at {now:.6g} s "
                            "(faults.on_partition: fail; 'wait' waits for the links)")

    def _lockstep_cut(self, now, what):
        self._stop_run(now, f"{what} lost every path between two of its GPUs at {now:.6g} s "
                            f"in the middle of a {self.collective} all-reduce, whose steps "
                            "cannot wait for a link (use timing.collective: ring or tree)")

    def _group_text(self, sync, names):
        if sync.name == "global":
            return f"the global sync of step {sync.step}"
        return f"the {sync.name} sync of group {sync.g} ({', '.join(names[:3])}" \
               f"{', ...' if len(names) > 3 else ''}) at step {sync.step}"

    def _link_cost(self, key, down):
        """(time_s, bytes) of the collective over `key` with edges `down`; None: no path."""
        found = self.link_costs.get((key, down), False)
        if found is False:
            try:
                found = run_groups(self.graph, [list(key)], self.message_bytes,
                                   self.collective, self._router_for(down))
            except NetworkError:
                found = None
            self.link_costs[(key, down)] = found
        return found

    def _crossed(self, key, down):
        """Edges the collective over `key` crosses with `down` down (frozensets)."""
        found = self.link_sets.get((key, down))
        if found is None:
            router = self._router_for(down)
            found = set()
            for src, dst in collective_pairs(self.graph, list(key), self.collective):
                try:
                    path = router.route(src, dst)
                except NetworkError:
                    continue
                found.update(frozenset(hop) for hop in zip(path, path[1:]))
            self.link_sets[(key, down)] = found
        return found

    def _arm(self, sync, end_s):
        """Make `sync.wake` succeed at `end_s` (inf: not until retimed)."""
        token = sync.wake_token = object()
        if end_s == np.inf:
            return

        def ring(_):
            if sync.wake_token is token and not sync.wake.triggered:
                sync.wake.succeed()
        self._at(end_s, ring)

    def _retime(self, sync, now, changed):
        """A running collective that a link change touches, simulated again from its start."""
        key = tuple(self.gpus[i] for i in sync.arrived)
        seen = {sync.link_state, *(state for _, state in sync.link_events)}
        touched = any(edge in self._crossed(key, sync.link_state) for edge in changed) or \
            any(edge in state for edge in changed for state in seen)
        if not touched or now >= sync.start_s + sync.cost:
            return                               # (the collective is over: only its delay left)
        sync.link_events.append((now - sync.start_s, self.down))
        found = self._resimulate(key, sync.link_state, sync.link_events)
        if found is None:
            self._lockstep_cut(now, self._group_text(sync, list(key)))
            return
        time_s, nbytes, stalled = found
        sync.nbytes = nbytes
        if stalled:
            if self.plan.on_partition == "fail":
                self._partition_failed(now, self._group_text(sync, list(key)))
                return
            self.report.partitions += 1
            self._log(now, "partition", self._group_text(sync, list(key)), sync.step)
            sync.cost = np.inf
            self._arm(sync, np.inf)
            return
        sync.cost = time_s
        self._arm(sync, sync.start_s + time_s + sync.extra_s)

    def _resimulate(self, key, state0, events):
        """The collective over `key` from its start under link changes at their offsets.

        Returns ``(time_s, bytes_by_tier, stalled)``: stalled if it cannot finish with the
        links as the last change leaves them; None if a step of a lockstep algorithm found
        no path (only the transfers of a pipelined one, all in flight, can wait for a link).
        """
        env = simpy.Environment()
        names = list(key)
        net = collective_network(env, self.graph, names, self.message_bytes, self.collective,
                                 self._router_for(state0))
        for offset, state in events:
            env.timeout(offset).callbacks.append(
                lambda _, st=state: net.reroute(self._router_for(st)))
        process = allreduce(net, [names], self.message_bytes, self.collective)
        try:
            env.run()
        except NetworkError:
            return None
        if not process.triggered:
            return np.inf, net.bytes_by_tier(), True
        return env.now, net.bytes_by_tier(), False
