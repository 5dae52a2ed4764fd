"""The timeline under faults: GPUs fail, jobs restart, survivors continue, stragglers slow.

Semantics (docs/semantics.md, "Faults"; the policies are in :mod:`simulator.engine.faults`)
------------------------------------------------------------------------------------------
The same SimPy timeline as :func:`simulator.engine.timeline.simulate_timeline` (GPUs
compute, then join each sync of the step; a sync starts when its last member arrives),
with these additions. Without faults it computes exactly what that function computes.

- **Checkpoints** (``checkpoint_every: N``): after every step ``c`` with ``c % N == 0`` and
  ``c < T`` the live GPUs meet (a barrier; waiting for it is ``wait``) and write for
  ``checkpoint_write_s``; the checkpoint exists at the end of the write.
- **A GPU fails** at a time, or when the first of its GPUs starts a step. A GPU that has
  finished the last step is past failing. Under ``restart`` the whole job stops at that
  instant: all work since the later of the last checkpoint's end and the last restart is
  discarded; after ``restart_delay_s`` all K GPUs (the failed one replaced) resume at the
  step after the checkpoint, every redone step taking the time it took before. Under
  ``elastic`` only the failed GPUs stop: a sync waiting for them starts without them, a sync
  running with them is abandoned at that instant and run again over the survivors (the time
  already spent is *waiting on failures*), every later sync averages over the live members
  of its group, and a replacement ready ``rejoin_delay_s`` after the failure joins at the
  end of the next step with a global sync (after its checkpoint, if it has one). A group's
  first sync after its members changed starts ``reconfigure_s`` later.
- A failure that hits a GPU slot while it is recovering (the job stopped for a restart, or
  a replacement not yet joined) restarts that recovery's delay.
- **The participation record** (:class:`~simulator.learning.participation.Participation`):
  for ``elastic`` runs, which workers completed each step, whose gradients each gradient
  all-reduce averaged, who joined after which step from which state, and which rows each
  checkpoint saved. ``restart`` runs need none: a redone step computes what the lost one did.

Times, per GPU slot, add up: ``compute + comm + wait`` (as without faults, now including
work later discarded) ``+ checkpoint + waiting on failures + down`` is at most the run's
length (the rest: a GPU finished before the last one). ``step_end_s[t - 1]`` is the first
time the job completed step ``t``: every live GPU had finished it and its syncs.

Cost
----
A fault costs the events it causes: the failure, the syncs it changes, the steps redone. A
collective is simulated once per distinct set of members on an idle network, as without
faults, so survivors' syncs cost one collective each the first time they occur.
"""

from array import array
from dataclasses import dataclass

import numpy as np
import simpy
from simpy.events import EventPriority

from ..cluster.levels import graph_levels, graph_tiers, group_tier
from ..cluster.topology import gpu_blocks
from ..learning.participation import Participation
from ..learning.schedules import GLOBAL, as_step, sync_kind
from ..network.collectives import allreduce, check_group, collective_network, run_groups
from ..network.routing import Router
from .faults import Lifetimes
from .link_faults import LinkFaults
from .timeline import Timeline, _independent, groupings_of

__all__ = ["simulate_fault_timeline", "FaultReport"]

_COMPUTE, _SYNC = 0, 1
_LATE = EventPriority(2)        # after the normal events of an instant


def _after_this_instant(env):
    """An event processed once every other event of the current instant has been."""
    event = env.event()
    event._ok, event._value = True, None
    env.schedule(event, _LATE)
    return event


@dataclass
class FaultReport:
    """What faults did to one run (the ``faults`` block of the record, docs/semantics.md)."""

    policy: str
    events: list                   # dicts: time_s, what, target, step (see _log)
    failures: int                  # GPU and block failures that hit a working GPU
    restarts: int
    redone_steps: int              # steps the job completed, lost, and ran again
    aborted_syncs: int
    checkpoints: int
    discarded_gpu_s: float         # GPU-seconds of work done and thrown away
    failure_wait_s: float          # per GPU: stalled by failures (restart downtime, aborted
                                   # syncs, reconfiguration)
    down_s: float                  # per GPU: slot without a working GPU (elastic)
    checkpoint_s: float            # per GPU: writing checkpoints
    workers: list                  # [[time_s, working GPUs], ...], a step function
    failed: str | None = None      # why the run could not go on, or None
    link_failures: int = 0         # links and switches that went down
    partitions: int = 0            # times a sync found its group without a path


class _Sync:
    """One all-reduce of a group after one step (or a checkpoint barrier)."""

    __slots__ = ("done", "key", "step", "what", "name", "g", "kind", "group", "arrived",
                 "waiting", "ready_s", "start_s", "end_s", "aborted_s", "gen", "cost",
                 "tier", "nbytes", "flight", "link_state", "link_events", "extra_s", "wake",
                 "wake_token", "unblocked", "blocked")

    def __init__(self, env, key, step, what, name, g, kind, group, gen):
        self.done = env.event()
        self.key, self.step, self.what, self.name, self.g = key, step, what, name, g
        self.kind, self.group, self.gen = kind, group, gen
        self.arrived = []
        self.waiting = 0
        self.ready_s = self.start_s = self.end_s = self.aborted_s = None
        self.cost = self.tier = self.nbytes = self.flight = None
        self.link_state = self.link_events = self.wake = self.wake_token = None
        self.unblocked = None
        self.extra_s = 0.0
        self.blocked = False


def simulate_fault_timeline(graph, gpus, groups, actions, compute_s, *, message_bytes, plan,
                            collective="ring", global_sync_delay_s=0.0, seed=0,
                            record_in_flight=False, record_gpu_steps=False):
    """Run the GPUs' compute and syncs under the faults of `plan`.

    Parameters
    ----------
    graph, gpus, groups, actions, compute_s, message_bytes, collective, global_sync_delay_s,
    record_in_flight, record_gpu_steps
        As for :func:`simulator.engine.timeline.simulate_timeline`; `compute_s` already
        holds any straggler factors (:func:`simulator.engine.faults.straggler_factors`).
    plan : simulator.engine.faults.FaultPlan
        With every ``step: P%`` resolved (:func:`simulator.engine.faults.resolve_steps`).
    seed : int
        Seeds the random failures (unless the plan gives its own seed).

    Returns
    -------
    Timeline
        With ``faults`` (a :class:`FaultReport`), ``participation`` (elastic runs) and
        ``spans`` (what each GPU did, for traces, when `record_in_flight`).
    """
    run = _FaultRun(graph, gpus, groups, actions, compute_s, message_bytes, plan, collective,
                    global_sync_delay_s, seed, record_in_flight, record_gpu_steps)
    return run.simulate()


class _FaultRun(LinkFaults):
    """The state of one run under faults; its methods are the SimPy processes and handlers."""

    def __init__(self, graph, gpus, groups, actions, compute_s, message_bytes, plan,
                 collective, global_sync_delay_s, seed, record_in_flight, record_gpu_steps):
        self.env = env = simpy.Environment()
        self.graph, self.gpus, self.plan = graph, list(gpus), plan
        self.compute_s = compute_s
        self.K, self.T = compute_s.shape
        self.steps = [as_step(a) for a in actions]
        self.message_bytes, self.collective = message_bytes, collective
        self.delay_s = global_sync_delay_s
        self.seed = plan.seed if plan.seed is not None else seed
        self.elastic = plan.policy == "elastic"
        K, T = self.K, self.T
        used = list(dict.fromkeys(n for st in self.steps for n in st if n is not None))
        self.used = used
        self.groupings = groupings_of(graph, groups, K, used)
        self.tiers = graph_tiers(graph)
        self.router = Router(graph)
        self.names = {name: [[gpus[i] for i in g] for g in self.groupings[name]] for name in used}
        for name in used:
            for members in self.names[name]:
                if len(members) > 1:
                    check_group(graph, members, collective)
        smaller = [m for name in used if name != GLOBAL for m in self.names[name] if len(m) > 1]
        contended = bool(smaller) and not _independent(self.router, smaller, collective)
        self.record_in_flight = record_in_flight
        self.in_flight = [] if record_in_flight else None
        self.shared_log = [] if record_in_flight and contended else None
        # as simulate_timeline: the protocol's efficiencies of the first such group's collective
        self.shared = collective_network(env, graph, smaller[0], message_bytes, collective,
                                         self.router, in_flight_log=self.shared_log) \
            if contended else None
        self.flight_logs = {}
        self.group_index = {}                    # grouping -> [group of each GPU]
        for name in used:
            index = [-1] * K
            for g, members in enumerate(self.groupings[name]):
                for k in members:
                    index[k] = g
            self.group_index[name] = index
        self.costs = {}                          # members -> (time_s, bytes_by_tier)
        self.tier_of = {}                        # members -> tier index
        self.comm_bytes = dict.fromkeys(self.tiers, 0.0)
        self.counts = {name: 0 for name in list(graph_levels(graph)) + used if name != GLOBAL}
        self.counts[GLOBAL] = 0
        self.counted = set()                     # (gen, step, what) whose sync was counted
        self.sync_log = []
        self.spans = [] if record_in_flight else None
        # per GPU slot
        self.computed = [array("H", bytes(2 * T)) for _ in range(K)]   # full computes of each step
        self.partial_compute = np.zeros(K)       # computes cut short by a failure
        self.tier_total = np.zeros((K, len(self.tiers)))
        self.wait_total = np.zeros(K)
        self.ckpt_total = np.zeros(K)
        self.stall_total = np.zeros(K)
        self.down_total = np.zeros(K)
        self.alive = np.ones(K, dtype=bool)      # the slot has a working GPU in the job
        self.finished = np.zeros(K, dtype=bool)  # ... that has finished the last step
        self.life = [0] * K                      # bumped when a slot's GPU goes away
        self.phase = [None] * K                  # (_COMPUTE, since) | (_SYNC, arrived, sync)
        self.progress_s = [0.0] * K              # when the slot last completed a step
        self.at_step = [0] * K                   # the 0-based step it is at or in
        self.down_since = np.full(K, np.nan)
        self.ready = {}                          # slot -> token of its pending replacement
        self.joiners = []                        # slots whose replacement is ready
        # steps
        self.step_end_s = [None] * T             # first completion of each step by the job
        self.gen_end_s = [0.0] * T               # this generation's latest completion
        self.gen_count = [0] * T                 # ... and how many GPUs completed it
        self.gpu_end = np.full((K, T), np.nan) if record_gpu_steps else None
        self.took_part = np.zeros((T, K), dtype=bool) if self.elastic else None
        self.gradient_members = {}
        self.joins = {}
        self.ckpt_rows = []
        # the job
        self.gen = 0
        self.pending = {}
        self.running = set()
        self.version = {}                        # (grouping, group) -> membership version
        self.synced_version = {}
        self.membership = 0
        self.ckpt_step, self.durable_s = 0, 0.0
        self.job_down_since = None
        self.restart_token = None
        self.hits = 0                            # failures that hit the job (restart policy)
        self.report = FaultReport(policy=plan.policy, events=[], failures=0, restarts=0,
                                  redone_steps=0, aborted_syncs=0, checkpoints=0,
                                  discarded_gpu_s=0.0, failure_wait_s=0.0, down_s=0.0,
                                  checkpoint_s=0.0, workers=[[0.0, K]])
        self.done = env.event()
        self.blocks = list(gpu_blocks(graph).items())
        position = {g: i for i, g in enumerate(self.gpus)}
        self.block_slots = {block: [position[g] for g in members] for block, members in self.blocks}
        self.step_triggers = {}
        self.live = {}                           # (grouping, group) -> live GPUs in it
        self._recount()
        self.net_faults = plan.network_faults
        if self.net_faults:
            self._init_links()

    def _recount(self):
        """The live GPUs of every group, from ``alive`` (after a restart stopped or resumed)."""
        alive = self.alive.tolist()
        self.n_live = sum(alive)
        for name in self.used:
            for g, members in enumerate(self.groupings[name]):
                self.live[(name, g)] = sum(alive[k] for k in members)

    def _set_alive(self, k, value):
        """Slot k's GPU leaves (False) or joins (True) the job: alive and the live counts."""
        self.alive[k] = value
        change = 1 if value else -1
        self.n_live += change
        for name in self.used:
            self.live[(name, self.group_index[name][k])] += change

    # ------------------------------------------------------------------ the run
    def simulate(self):
        env, K = self.env, self.K
        self._schedule_events()
        for k in range(K):
            env.process(self.gpu(k, 0, 0))
        env.run(until=self.done)
        end_s = float(env.now)
        self._close(end_s)
        return self._timeline(end_s)

    def _schedule_events(self):
        plan = self.plan
        if self.net_faults:
            self._schedule_link_events()
        for number, event in enumerate(plan.events):
            if event.target in ("gpu", "block"):
                slots = self._slots(event)
                if event.time_s is not None:
                    self._at(event.time_s, lambda ev, e=event, s=slots: self._fail(s, e.kind, e))
                else:
                    for k in slots:
                        self.step_triggers.setdefault((k, event.step - 1), []).append(number)
        random = plan.random
        if random is None:
            return
        if random.gpu_mtbf_s is not None:
            life = Lifetimes("gpu", self.K, random.gpu_mtbf_s, random.distribution,
                             random.weibull_shape, self.seed)
            for k in range(self.K):
                self._renew(life, k, 0.0, [k], "fail", "gpu")
        if random.block_mtbf_s is not None:
            life = Lifetimes("block", len(self.blocks), random.block_mtbf_s,
                             random.distribution, random.weibull_shape, self.seed)
            for i, (block, _) in enumerate(self.blocks):
                self._renew(life, i, 0.0, self.block_slots[block], random.block_kind, "block")

    def _renew(self, life, i, since_s, slots, kind, what):
        """Schedule unit `i`'s next random failure, then the one after it, and so on."""
        when = since_s + life.next(i)

        def fire(event):
            self._fail(slots, kind, None, what=what)
            self._renew(life, i, when, slots, kind, what)
        self._at(when, fire)

    def _at(self, time_s, callback):
        self.env.timeout(max(time_s - self.env.now, 0.0)).callbacks.append(callback)

    def _slots(self, event):
        if event.target == "gpu":
            return [self.gpus.index(event.name)]
        return list(self.block_slots[event.name])

    # ------------------------------------------------------------------ a GPU
    def gpu(self, k, first, life):
        """GPU slot `k`'s process for one life of its GPU, from 0-based step `first`."""
        env, steps, compute_s = self.env, self.steps, self.compute_s
        gen = self.gen
        for t in range(first, self.T):
            self.at_step[k] = t
            if self.step_triggers and (k, t) in self.step_triggers:
                yield _after_this_instant(env)   # the others finish the last step first
                if self.life[k] != life or self.gen != gen:
                    return
                if (k, t) in self.step_triggers:
                    self._fire_step(k, t)
                if self.life[k] != life or self.gen != gen:
                    return
            self.phase[k] = (_COMPUTE, env.now, t)
            yield env.timeout(compute_s[k, t])
            if self.life[k] != life or self.gen != gen:
                return                           # failed meanwhile (accounted then)
            self.computed[k][t] += 1
            if self.spans is not None:
                self.spans.append((k, "compute", "compute", env.now - compute_s[k, t], env.now,
                                   t + 1, None))
            step = steps[t]
            for what, name in (("gradient", step.gradient), ("average", step.average)):
                if name is None:
                    continue
                sync = self._arrive(k, t, what, name)
                arrived_s = env.now
                self.phase[k] = (_SYNC, arrived_s, sync)
                chain = None
                while True:
                    following = yield sync.done
                    if self.life[k] != life or self.gen != gen:
                        return
                    if following is None:
                        break
                    chain = (chain or [sync]) + [following]
                    sync = following
                    self.phase[k] = (_SYNC, arrived_s, sync)
                if chain is None and sync.start_s == sync.ready_s and self.spans is None:
                    self.wait_total[k] += sync.ready_s - arrived_s      # as without faults
                    self.tier_total[k, sync.tier] += sync.end_s - sync.start_s
                else:
                    self._account_sync(k, arrived_s, chain or [sync])
                self.phase[k] = None
            self.phase[k] = None
            self._step_done(k, t)
            if self.plan.checkpoint_every and (t + 1) % self.plan.checkpoint_every == 0 \
                    and t + 1 < self.T:
                sync = self._arrive(k, t, "checkpoint", "checkpoint")
                arrived_s = env.now
                self.phase[k] = (_SYNC, arrived_s, sync)
                yield sync.done
                if self.life[k] != life or self.gen != gen:
                    return
                self.phase[k] = None
                self.wait_total[k] += sync.start_s - arrived_s
                self.ckpt_total[k] += sync.end_s - sync.start_s
                if self.spans is not None:
                    self._wait_span(k, arrived_s, sync.start_s, t + 1)
                    self.spans.append((k, "checkpoint write", "checkpoint", sync.start_s,
                                       sync.end_s, t + 1, None))
        self.phase[k] = None
        self.finished[k] = True
        self._check_done()

    def _account_sync(self, k, arrived_s, chain):
        """Time of GPU k from its arrival at a sync to the end of the run that completed it."""
        first = chain[0]
        self.wait_total[k] += first.ready_s - arrived_s
        stalled = first.start_s - first.ready_s          # reconfiguration
        for sync in chain[:-1]:                          # abandoned when a member failed
            stalled += sync.aborted_s - sync.start_s
        for sync in chain[1:]:
            stalled += sync.start_s - sync.ready_s
        self.stall_total[k] += stalled
        last = chain[-1]
        self.tier_total[k, last.tier] += last.end_s - last.start_s
        if self.spans is not None:
            self._wait_span(k, arrived_s, first.ready_s, first.step)
            for sync in chain:
                if sync.start_s > sync.ready_s:
                    self.spans.append((k, "wait for a path" if sync.blocked else "reconfigure",
                                       "fault", sync.ready_s, sync.start_s, sync.step, None))
                if sync.aborted_s is not None:
                    self.spans.append((k, sync.kind, "fault", sync.start_s, sync.aborted_s,
                                       sync.step, {"aborted": True, "group": sync.group,
                                                   "grouping": sync.name}))
            self.spans.append((k, last.kind, "sync", last.start_s, last.end_s, last.step,
                               {"group": last.group, "grouping": last.name}))

    def _wait_span(self, k, start_s, end_s, step):
        if end_s > start_s:
            self.spans.append((k, "wait", "wait", start_s, end_s, step, None))

    def _arrive(self, k, t, what, name):
        """GPU k arrives at its group's sync of step t; start it if k is the last expected."""
        g = 0 if what == "checkpoint" else self.group_index[name][k]
        key = (self.gen, t, what, name, g)
        sync = self.pending.get(key)
        if sync is None:
            kind = "checkpoint" if what == "checkpoint" else sync_kind(what, name)
            group = -1 if name in (GLOBAL, "checkpoint") else g
            sync = self.pending[key] = _Sync(self.env, key, t + 1, what, name, g, kind, group,
                                             self.gen)
            sync.waiting = self.n_live if what == "checkpoint" else self.live[(name, g)]
        sync.arrived.append(k)
        sync.waiting -= 1
        if sync.waiting == 0:
            del self.pending[key]
            self._start(sync)
        return sync

    def _start(self, sync, ready_s=None):
        """Start `sync` over the GPUs that arrived (a barrier, or an all-reduce)."""
        env = self.env
        sync.ready_s = env.now if ready_s is None else ready_s
        sync.arrived.sort()
        if sync.what == "checkpoint":
            sync.start_s = sync.ready_s
            self.running.add(sync)
            env.process(self._write_checkpoint(sync))
            return
        gkey = (sync.name, sync.g)
        delay = 0.0
        if self.plan.reconfigure_s and self.version.get(gkey, 0) != \
                self.synced_version.get(gkey, 0):
            delay = self.plan.reconfigure_s
        self.synced_version[gkey] = self.version.get(gkey, 0)
        sync.start_s = sync.ready_s + delay
        members = sync.arrived
        names = [self.gpus[i] for i in members]
        key = tuple(names)
        if key not in self.tier_of:
            self.tier_of[key] = self.tiers.index(group_tier(self.graph, names))
        sync.tier = self.tier_of[key]
        count = (sync.gen, sync.step, sync.what)
        if count not in self.counted:
            self.counted.add(count)
            self.counts[sync.name] += 1
        self.running.add(sync)
        env.process(self._run_sync(sync, names, delay))

    def _run_sync(self, sync, names, delay):
        env = self.env
        everyone = sync.name == GLOBAL
        if delay:
            yield env.timeout(delay)
        if sync.aborted_s is not None or sync.gen != self.gen:
            return
        if len(names) == 1:
            pass
        elif self.net_faults:
            completed = yield from self._sync_over_links(sync, names, everyone)
            if not completed:
                return
        elif everyone or self.shared is None:
            key = tuple(names)
            if key not in self.costs:
                log = self.flight_logs[key] = [] if self.record_in_flight else None
                self.costs[key] = run_groups(self.graph, [names], self.message_bytes,
                                             self.collective, self.router, in_flight_log=log)
            time_s, nbytes = self.costs[key]
            sync.cost, sync.nbytes = time_s, nbytes
            if self.record_in_flight:
                sync.flight = [(float(sync.start_s + t), *rest) for t, *rest in
                               self.flight_logs[key]]
                self.in_flight.append(sync.flight)
            yield env.timeout(time_s + (self.delay_s if everyone else 0.0))
        else:
            yield allreduce(self.shared, [names], self.message_bytes, self.collective)
        if sync.aborted_s is not None or sync.gen != self.gen:
            return
        sync.end_s = env.now
        if sync.nbytes is not None:
            for tier in self.tiers:
                self.comm_bytes[tier] += sync.nbytes[tier]
        if self.elastic and sync.what == "gradient" and \
                self.steps[sync.step - 1].average is not None:
            mask = self.gradient_members.setdefault(sync.step, np.zeros(self.K, dtype=bool))
            mask[sync.arrived] = True
        self.sync_log.append((sync.step, sync.kind, sync.group, sync.start_s, sync.end_s))
        self.running.discard(sync)
        if everyone and self.joiners and self._last_sync(sync) and \
                not self._checkpoint_after(sync.step):
            self._join(sync.step)
        sync.done.succeed(None)

    def _write_checkpoint(self, sync):
        env = self.env
        yield env.timeout(self.plan.checkpoint_write_s)
        if sync.gen != self.gen:
            return
        sync.end_s = env.now
        self.running.discard(sync)
        rows = np.zeros(self.K, dtype=bool)
        rows[[k for k in sync.arrived if self.alive[k]]] = True
        self.ckpt_step, self.durable_s = sync.step, env.now
        self.ckpt_rows.append((sync.step, rows))
        self.report.checkpoints += 1
        if self.joiners and GLOBAL in self.steps[sync.step - 1]:
            self._join(sync.step)
        sync.done.succeed(None)

    def _last_sync(self, sync):
        """True if `sync` is the last sync of its step (the parameters', or the only one)."""
        return sync.what == "average" or self.steps[sync.step - 1].average is None

    def _checkpoint_after(self, step):
        every = self.plan.checkpoint_every
        return bool(every) and step % every == 0 and step < self.T

    def _step_done(self, k, t):
        now = self.env.now
        self.progress_s[k] = now
        if self.gpu_end is not None and np.isnan(self.gpu_end[k, t]):
            self.gpu_end[k, t] = now
        if now > self.gen_end_s[t]:
            self.gen_end_s[t] = now
        if self.elastic:
            self.took_part[t, k] = True
            self.step_end_s[t] = self.gen_end_s[t]
            return
        self.gen_count[t] += 1
        if self.gen_count[t] == self.K and self.step_end_s[t] is None:
            self.step_end_s[t] = self.gen_end_s[t]

    def _check_done(self):
        if self.done.triggered:
            return
        live = self.alive
        if live.any() and self.finished[live].all():
            self.done.succeed()

    # ------------------------------------------------------------------ faults
    def _fire_step(self, k, t):
        numbers = self.step_triggers.pop((k, t))
        for number in numbers:
            event = self.plan.events[number]
            if event.target in ("link", "switch"):
                for slot in range(self.K):
                    left = self.step_triggers.get((slot, t))
                    if left and number in left:
                        left.remove(number)
                        if not left:
                            del self.step_triggers[(slot, t)]
                self._fault_link(event)
                continue
            slots = self._slots(event)
            for slot in slots:                   # fires once: when the first GPU gets there
                left = self.step_triggers.get((slot, t))
                if left and number in left:
                    left.remove(number)
                    if not left:
                        del self.step_triggers[(slot, t)]
            self._fail(slots, event.kind, event)

    def _fail(self, slots, kind, event, what=None):
        """GPUs `slots` fail now (an event of the scenario, or a random failure)."""
        if self.done.triggered:
            return
        now = self.env.now
        what = what or (event.target if event is not None else "gpu")
        target = event.name if event is not None else \
            (self.gpus[slots[0]] if what == "gpu" else self._block_of(slots[0]))
        working = [k for k in slots if self.alive[k] and not self.finished[k]]
        recovering = [k for k in slots if not self.alive[k]]
        if not working and not recovering:
            return
        label = "preempt" if kind == "preempt" else "fail"
        if working:
            self.report.failures += 1
        self._log(now, f"{what} {label}", target, self._step_of(slots))
        if not self.elastic:
            self._stop_job(now, working)
            return
        for k in working:
            self._account_partial(k, now, discard=True)
            self._set_alive(k, False)
            self.life[k] += 1
            self.down_since[k] = now
            if self.spans is not None:
                self.spans.append((k, f"{what} {label}", "mark", now, now, None, None))
        for k in working + recovering:
            self._replace_later(k, now)
        if working:
            self._members_changed(working)
            self._drop_from_syncs(set(working), now)
            self._workers(now)
            if not self.alive.any():
                self._stop_run(now, f"every GPU had failed at {now:.6g} s; elastic training "
                                    "needs a survivor to average over (use policy: restart)")
                return
            self._check_done()

    def _block_of(self, k):
        return self.graph.nodes[self.gpus[k]]["block"]

    def _step_of(self, slots):
        """The 1-based step the first of `slots` is in (computing or syncing), or None."""
        for k in slots:
            if self.alive[k] and not self.finished[k]:
                phase = self.phase[k]
                if phase is None or phase[0] == _COMPUTE:
                    return int(self.at_step[k] + 1)
                return int(phase[2].step)
        return None

    def _account_partial(self, k, now, discard):
        """Count what GPU k was doing when it stopped now, and the work it loses."""
        phase = self.phase[k]
        self.phase[k] = None
        if phase is None:
            return
        if phase[0] == _COMPUTE:
            self.partial_compute[k] += now - phase[1]
            if self.spans is not None and now > phase[1]:
                self.spans.append((k, "lost compute", "fault", phase[1], now, phase[2] + 1, None))
        else:
            arrived_s, sync = phase[1], phase[2]
            ready_s = sync.ready_s if sync.ready_s is not None and sync.ready_s <= now else now
            begin_s = now if sync.start_s is None else min(sync.start_s, now)
            self.wait_total[k] += ready_s - arrived_s
            self.stall_total[k] += begin_s - ready_s                     # reconfiguring
            if sync.what == "checkpoint":
                self.ckpt_total[k] += now - begin_s
            elif now > begin_s:
                self.tier_total[k, sync.tier] += now - begin_s
            if self.spans is not None:
                self._wait_span(k, arrived_s, ready_s, sync.step)
                if begin_s > ready_s:
                    self.spans.append((k, "reconfigure", "fault", ready_s, begin_s, sync.step,
                                       None))
                if now > begin_s:
                    name = "checkpoint write" if sync.what == "checkpoint" else sync.kind
                    self.spans.append((k, name, "fault", begin_s, now, sync.step,
                                       None if sync.what == "checkpoint" else
                                       {"aborted": True, "group": sync.group,
                                        "grouping": sync.name}))
        if discard:
            self.report.discarded_gpu_s += now - self.progress_s[k]

    def _replace_later(self, k, now):
        """Slot k's replacement is ready rejoin_delay_s from now (a later failure restarts it)."""
        token = object()
        self.ready[k] = token
        if k in self.joiners:
            self.joiners.remove(k)

        def ready(event):
            if self.ready.get(k) is token and not self.done.triggered:
                del self.ready[k]
                self.joiners.append(k)
        self._at(now + self.plan.rejoin_delay_s, ready)

    def _members_changed(self, slots):
        self.membership += 1
        for name in self.used:
            for g in {int(self.group_index[name][k]) for k in slots}:
                self.version[(name, g)] = self.membership

    def _drop_from_syncs(self, gone, now):
        """Syncs that waited for or ran with the GPUs `gone` go on without them."""
        for key, sync in list(self.pending.items()):
            if sync.what == "checkpoint":
                members = range(self.K)
            else:
                members = self.groupings[sync.name][sync.g]
            for k in gone & set(members):
                if k in sync.arrived:
                    sync.arrived.remove(k)
                else:
                    sync.waiting -= 1
            if sync.waiting == 0:
                del self.pending[key]
                if sync.arrived:
                    self._start(sync)
        for sync in list(self.running):
            if not gone & set(sync.arrived):
                continue
            if sync.what == "checkpoint":
                continue                         # the others' rows are still written
            self._abort(sync, now, [k for k in sync.arrived if k not in gone])

    def _abort(self, sync, now, survivors):
        """Abandon a running sync now; run it again over `survivors` from now."""
        self.running.discard(sync)
        self.report.aborted_syncs += 1
        if sync.start_s is None or sync.start_s > now:
            sync.start_s = now                   # still reconfiguring: it never began
        sync.aborted_s = now
        if sync.nbytes is not None and sync.cost and sync.start_s < now:
            share = min(1.0, (now - sync.start_s) / sync.cost)   # bytes sent so far
            for tier in self.tiers:
                self.comm_bytes[tier] += share * sync.nbytes[tier]
        if sync.flight is not None:
            sync.flight[:] = [e for e in sync.flight if e[0] < now] + \
                [(float(now), *([0.0] * len(self.tiers)))]
        again = None
        if survivors:
            again = _Sync(self.env, sync.key, sync.step, sync.what, sync.name, sync.g,
                          sync.kind, sync.group, sync.gen)
            again.arrived = list(survivors)
            self._start(again, ready_s=now)
        sync.done.succeed(again)

    def _join(self, step):
        """Replacements that are ready join after `step` (its global sync, or checkpoint)."""
        if step >= self.T:
            return
        joined = []
        for k in sorted(self.joiners):
            if self.alive[k]:
                continue
            self._set_alive(k, True)
            self.finished[k] = False
            self.down_total[k] += self.env.now - self.down_since[k]
            if self.spans is not None:
                self.spans.append((k, "down", "fault", self.down_since[k], self.env.now, None,
                                   None))
            self.down_since[k] = np.nan
            self.progress_s[k] = self.env.now
            self.joins.setdefault(step, []).append((k, self.plan.rejoin_from))
            self.env.process(self.gpu(k, step, self.life[k]))
            joined.append(k)
        self.joiners = []
        if joined:
            self._members_changed(joined)
            self._log(self.env.now, "join", ", ".join(self.gpus[k] for k in joined), step)
            self._workers(self.env.now)

    def _stop_job(self, now, working):
        """Restart policy: the job stops now and resumes from the last checkpoint."""
        self.hits += 1
        limit = self.plan.max_restarts
        if limit is not None and self.hits > limit:
            if self.job_down_since is None:
                self._stop_job_now(now)
            self._stop_run(now, f"the job was hit by {self.hits} failures at {now:.6g} s, more "
                                f"than faults.max_restarts ({limit}): it gives up")
            return
        if self.job_down_since is None:
            self._stop_job_now(now)
        token = self.restart_token = object()

        def resume(event):
            if self.restart_token is not token or self.done.triggered:
                return
            self._resume()
        self._at(now + self.plan.restart_delay_s, resume)

    def _stop_job_now(self, now):
        """Every GPU stops now: work since the durable state is discarded, syncs abandoned."""
        self.job_down_since = now
        for k in range(self.K):
            if self.alive[k] and not self.finished[k]:
                self._account_partial(k, now, discard=False)
        self.report.discarded_gpu_s += self.K * (now - self.durable_s)
        completed = [t for t, n in enumerate(self.gen_count) if n == self.K]
        last = max(completed) + 1 if completed else 0
        self.report.redone_steps += max(0, last - self.ckpt_step)
        self.gen += 1
        self.alive[:] = False
        self._recount()
        self.life = [life + 1 for life in self.life]
        self.pending.clear()
        for sync in list(self.running):
            self._abort(sync, now, [])
        self.running.clear()
        if self.net_faults:
            self.blocked = []
        self.gen_end_s = [0.0] * self.T
        self.gen_count = [0] * self.T
        self._workers(now)

    def _resume(self):
        now = self.env.now
        down_s = now - self.job_down_since
        self.stall_total += down_s
        if self.spans is not None:
            for k in range(self.K):
                self.spans.append((k, "restart", "fault", self.job_down_since, now, None, None))
        self.job_down_since = None
        self.report.restarts += 1
        self.alive[:] = True
        self._recount()
        self.finished[:] = False
        self.durable_s = now
        self.progress_s = [now] * self.K
        self._log(now, "restart", f"from step {self.ckpt_step}", self.ckpt_step + 1)
        self._workers(now)
        for k in range(self.K):
            self.env.process(self.gpu(k, self.ckpt_step, self.life[k]))

    def _stop_run(self, now, reason):
        self.report.failed = reason
        self._log(now, "run failed", reason, None)
        if not self.done.triggered:
            self.done.succeed()

    def _log(self, time_s, what, target, step):
        self.report.events.append({"time_s": float(time_s), "what": what, "target": str(target),
                                   "step": step})

    def _workers(self, now):
        n = int(self.alive.sum())
        series = self.report.workers
        if series[-1][0] == now:
            series[-1][1] = n
        elif series[-1][1] != n:
            series.append([float(now), n])

    # ------------------------------------------------------------------ the result
    def _close(self, end_s):
        for k in range(self.K):
            if not self.alive[k] and not np.isnan(self.down_since[k]):
                self.down_total[k] += end_s - self.down_since[k]
                if self.spans is not None:
                    self.spans.append((k, "down", "fault", self.down_since[k], end_s, None, None))
        if self.job_down_since is not None:
            self.stall_total += end_s - self.job_down_since
        if self.report.failed:
            for k in range(self.K):
                if self.alive[k]:
                    self._account_partial(k, end_s, discard=False)
        if self.shared is not None:
            for tier, nbytes in self.shared.bytes_by_tier().items():
                self.comm_bytes[tier] += nbytes
        if self.shared_log:
            self.in_flight.append(self.shared_log)
        report = self.report
        report.failure_wait_s = float(self.stall_total.mean())
        report.down_s = float(self.down_total.mean())
        report.checkpoint_s = float(self.ckpt_total.mean())
        report.discarded_gpu_s = float(report.discarded_gpu_s)

    def _timeline(self, end_s):
        completed = next((t for t, end in enumerate(self.step_end_s) if end is None), self.T)
        participation = None
        if self.elastic:
            participation = Participation(
                alive=self.took_part[:completed].copy(),
                gradient_members={t: m for t, m in self.gradient_members.items()
                                  if t <= completed and not np.array_equal(m, self.took_part[t - 1])},
                joins={t: j for t, j in self.joins.items() if t < completed},
                checkpoints=[(t, rows) for t, rows in self.ckpt_rows if t <= completed])
        by_tier = self.tier_total.mean(axis=0)
        computed = np.array([np.frombuffer(row, dtype=np.uint16) for row in self.computed])
        compute_total = (self.compute_s * computed).sum(axis=1) + self.partial_compute
        timeline = Timeline(
            step_end_s=np.array(self.step_end_s[:completed], dtype=float),
            simulated_time_s=end_s,
            compute_time_s=float(compute_total.mean()),
            comm_time_s=float(self.tier_total.sum(axis=1).mean()),
            wait_time_s=float(self.wait_total.mean()),
            comm_bytes=self.comm_bytes,
            syncs=self.counts,
            sync_log=sorted(self.sync_log, key=lambda e: (e[3], e[0], e[2], e[1])),
            comm_time_by_tier_s={tier: float(by_tier[i]) for i, tier in enumerate(self.tiers)},
            gpu_step_end_s=None if self.gpu_end is None else self.gpu_end[:, :completed],
            in_flight=self.in_flight,
            faults=self.report,
            participation=participation,
            spans=self.spans,
            steps_completed=completed,
        )
        return timeline
