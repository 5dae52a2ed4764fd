"""Who took part in each step: what the engine hands the replay when GPUs fail and rejoin.

Semantics (docs/semantics.md, "Faults")
---------------------------------------
The timeline under faults (:mod:`simulator.engine.fault_timeline`) decides, without looking
at any number learned, which workers took part in what; the replay
(:func:`simulator.learning.training.train`) then does exactly that:

- ``alive[t - 1, k]``: worker ``k`` completed step ``t`` (its compute and every sync of the
  step), so it holds a live model after step ``t``. A worker that failed during step ``t``,
  or had not yet rejoined, did not: its row is frozen (it computes nothing, its momentum
  does not move) until a replacement takes its place.
- ``gradient_members``: for the steps where they differ from ``alive`` (a worker whose
  gradient reached the step's gradient all-reduce but who failed before the step's end),
  the workers whose gradients were averaged.
- A sync averages over the workers of each group that took part; a group with none does
  not sync.
- ``joins[t]``: the replacements that join after step ``t`` (at the end of that step's
  global sync) and the state each starts from. A replacement takes the momentum buffer
  (all optimizer state) of a live worker of its block (of the lowest live rank if its
  block has none), as Horovod's elastic ``State.sync()`` broadcasts a survivor's state;
  its parameters: ``"average"``, the model the global sync produced (the common model);
  ``"checkpoint"``, the parameters and momentum its rank last saved to a checkpoint (the
  initial model if it never did). After a global *gradient* all-reduce both give the
  group's parameters and momentum: a data-parallel group holds one model and one optimizer
  state, and a process joining it receives them
  (``torch.nn.parallel.DistributedDataParallel`` broadcasts its parameters), so
  ``rejoin_from`` matters only where GPUs hold models of their own.
- ``checkpoints``: the steps after which a checkpoint was written, and which workers' rows
  it saved.

Under the ``restart`` policy every redone step computes what the lost one did (the
checkpoint holds the parameters, the momentum buffers and the data position), so the
replay of a restarted run is the fault-free replay: it needs no participation record.
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Participation", "JOIN_SOURCES"]

JOIN_SOURCES = ("average", "checkpoint")
"""The states a replacement can start from (see the module docstring)."""


@dataclass
class Participation:
    """Which workers took part in each step of an elastic run (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> alive = np.ones((3, 2), dtype=bool); alive[1:, 1] = False     # worker 1 fails in step 2
    >>> p = Participation(alive=alive, joins={2: [(1, "average")]})
    >>> p.everyone(1), p.everyone(2), p.alive[2].tolist()
    (True, False, [True, False])
    """

    alive: np.ndarray                                # (T, K) bool: completed step t
    gradient_members: dict = field(default_factory=dict)   # step -> (K,) bool, where not alive
    joins: dict = field(default_factory=dict)        # step -> [(worker, source), ...]
    checkpoints: list = field(default_factory=list)  # [(step, (K,) bool saved rows), ...]

    def __post_init__(self):
        self._partial = ~self.alive.all(axis=1)      # (T,) steps some worker missed

    def everyone(self, t):
        """True if every worker completed step `t` (from 1) and no gradient was dropped."""
        return not self._partial[t - 1] and t not in self.gradient_members

    def gradient_mask(self, t):
        """(K,) bool: the workers whose gradients step `t`'s gradient all-reduce averaged."""
        return self.gradient_members.get(t, self.alive[t - 1])

    @property
    def steps(self):
        """T, the steps the record covers."""
        return len(self.alive)
