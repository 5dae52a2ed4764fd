"""Faults: what can go wrong in a run, when, and the seeded draws of the random ones.

Semantics (docs/semantics.md, "Faults"; the topic page is docs/faults.md)
------------------------------------------------------------------------
A :class:`FaultPlan` is a scenario's ``faults`` section, checked and in base units. It names

- **events** (:class:`FaultEvent`): a GPU or a whole block (a node) that fails or is
  preempted, at a simulated time or at a step (the moment the first of its GPUs starts that
  step); a link or a switch that goes down at a time or step, for a while or for good;
- **random failures** (:class:`RandomFaults`): every GPU, every block (correlated failures
  of all its GPUs at once) and every link fails after lifetimes drawn from an exponential
  law of mean ``mtbf``, or a Weibull law of that mean and shape ``k`` (``k < 1``: failures
  come early, as infant mortality; ``k > 1``: wear-out); each GPU, block or link is a
  renewal process in simulated time, its next lifetime counted from its previous failure;
- **transient stragglers** (:class:`Stragglers`): at every step, each GPU begins a slow
  episode with probability ``p``; an episode lasts ``duration_steps`` steps, during which
  the GPU's compute is ``slowdown`` times longer (episodes that overlap do not stack); this
  multiplies the compute time beside the jitter and the fixed slowdowns
  (:func:`straggler_factors`);
- what a GPU failure does (``policy``): ``restart`` stops the whole job and restarts it from
  the last checkpoint after ``restart_delay_s`` (checkpoints every ``checkpoint_every``
  steps, each costing ``checkpoint_write_s``; a failure during the delay starts it again;
  the failure after ``max_restarts`` fails the run, as torchelastic's ``--max-restarts``), or ``elastic`` lets the rest continue,
  averaging over the survivors, with a replacement joining after ``rejoin_delay_s`` at the
  next global sync, from the current average or from the checkpoint;
- what a partition does (``on_partition``): a sync whose group has no path between two of
  its GPUs waits until a link comes back (``wait``) or fails the run (``fail``).

Every draw comes from ``numpy.random.SeedSequence([seed, tag, ...])`` streams of the
scenario's seed: the same seed gives the same faults, another seed other faults, and the
draws of one GPU do not depend on how long the run is or on what happens to the others.
:mod:`simulator.engine.fault_timeline` runs a plan.
"""

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FaultEvent", "RandomFaults", "Stragglers", "FaultPlan", "POLICIES", "TARGETS",
           "KINDS", "ON_PARTITION", "DISTRIBUTIONS", "straggler_factors", "Lifetimes",
           "resolve_steps"]

POLICIES = ("restart", "elastic")
"""What a GPU or block failure does to the job."""
TARGETS = ("gpu", "block", "link", "switch")
"""What an event can name."""
KINDS = ("fail", "preempt")
"""How a GPU or block goes away (both lose the GPU's state; the label is reported)."""
ON_PARTITION = ("wait", "fail")
"""What a sync whose group is cut apart does."""
DISTRIBUTIONS = ("exponential", "weibull")
"""Lifetime laws of random failures."""

_TAG_STRAGGLERS = 0x57A6
_TAG_LIFETIMES = {"gpu": 0x6F01, "block": 0x6F02, "link": 0x6F03}


@dataclass(frozen=True)
class FaultEvent:
    """One fault written in the scenario (docs/faults.md, "Events").

    Exactly one of ``time_s``, ``step`` and ``fraction`` is set; ``fraction`` (``step:
    40%``) becomes a step once the run's length is known (:func:`resolve_steps`).
    """

    target: str                    # "gpu" | "block" | "link" | "switch"
    name: object                   # GPU name, block name, (u, v) of a link, switch name
    time_s: float | None = None    # simulated seconds from the start
    step: int | None = None        # 1-based: when the first of its GPUs starts this step
    fraction: float | None = None  # of the run's steps, in (0, 1]
    kind: str = "fail"             # gpu, block: "fail" | "preempt"
    down_for_s: float | None = None  # link, switch: None = for good


@dataclass(frozen=True)
class RandomFaults:
    """Failures drawn from mean times between failures (seconds; None: none of that kind)."""

    gpu_mtbf_s: float | None = None
    block_mtbf_s: float | None = None
    block_kind: str = "fail"       # label of block failures: "fail" | "preempt"
    link_mtbf_s: float | None = None
    link_down_for_s: float = 600.0  # how long a randomly failed link stays down
    distribution: str = "exponential"
    weibull_shape: float = 1.0     # k, for distribution "weibull"


@dataclass(frozen=True)
class Stragglers:
    """Transient slow episodes (see the module docstring)."""

    probability: float             # per GPU per step, in [0, 1]
    slowdown: float                # >= 1
    duration_steps: int = 1        # >= 1


@dataclass(frozen=True)
class FaultPlan:
    """A scenario's ``faults`` section, checked, times in seconds."""

    policy: str = "restart"
    restart_delay_s: float = 0.0
    checkpoint_every: int | None = None   # steps; None: no checkpoints (restart from step 0)
    checkpoint_write_s: float = 0.0
    rejoin_delay_s: float = 0.0
    rejoin_from: str = "average"          # "average" | "checkpoint"
    reconfigure_s: float = 0.0            # elastic: extra time of a group's first sync after
                                          # its members changed
    on_partition: str = "wait"
    max_restarts: int | None = 100        # restart: failures the job restarts after; the
                                          # next fails the run (None: no limit)
    events: tuple = ()
    random: RandomFaults | None = None
    stragglers: Stragglers | None = None
    seed: int | None = None               # None: the scenario's seed
    meta: dict = field(default_factory=dict, compare=False)   # where each key was written

    @property
    def network_faults(self):
        """True if a link or switch can go down."""
        return any(e.target in ("link", "switch") for e in self.events) or \
            (self.random is not None and self.random.link_mtbf_s is not None)


def resolve_steps(plan, steps):
    """`plan` with every ``step: P%`` event turned into a step of a run of `steps` steps.

    ``round(fraction * steps)``, at least 1.

    Examples
    --------
    >>> plan = FaultPlan(events=(FaultEvent("block", "b3", fraction=0.4),))
    >>> resolve_steps(plan, 90).events[0].step
    36
    """
    from dataclasses import replace

    if not any(e.fraction is not None for e in plan.events):
        return plan
    events = tuple(replace(e, step=max(1, round(e.fraction * steps)), fraction=None)
                   if e.fraction is not None else e for e in plan.events)
    return replace(plan, events=events)


def straggler_factors(stragglers, n_gpus, steps, seed):
    """The (K, T) factors by which transient stragglers multiply each step's compute time.

    At each step each GPU begins an episode with probability ``p``; it is slow at step
    ``t`` if an episode began at one of the steps ``t - duration + 1 .. t``, and a slow
    step takes ``slowdown`` times as long (overlapping episodes do not stack). The draws of
    GPU ``k`` depend only on `seed` and ``k`` (not on the number of GPUs or steps).

    Returns
    -------
    tuple
        ``(factors, episodes)``: the (K, T) array, 1 where not slow; and the number of
        episodes begun.

    Examples
    --------
    >>> f, n = straggler_factors(Stragglers(1.0, 3.0, 2), 2, 3, seed=0)   # always slow
    >>> f.tolist(), n
    ([[3.0, 3.0, 3.0], [3.0, 3.0, 3.0]], 6)
    """
    begins = np.zeros((n_gpus, steps), dtype=bool)
    if stragglers.probability > 0 and steps > 0:
        for k in range(n_gpus):
            rng = np.random.default_rng(np.random.SeedSequence([seed, _TAG_STRAGGLERS, k]))
            begins[k] = _uniforms(rng, steps) < stragglers.probability
    d = stragglers.duration_steps
    counts = np.cumsum(begins, axis=1)                                    # (K, T)
    before = np.zeros_like(counts)
    before[:, d:] = counts[:, :-d] if d < steps else 0
    slow = (counts - before) > 0                                          # a begin in the window
    return np.where(slow, float(stragglers.slowdown), 1.0), int(begins.sum())


def _uniforms(rng, n):
    """`n` uniforms of `rng`, drawn in fixed chunks so that a prefix does not depend on n."""
    chunk = 4096
    out = np.concatenate([rng.random(chunk) for _ in range(-(-n // chunk))])
    return out[:n]


class Lifetimes:
    """Seeded lifetimes of a family of units (GPUs, blocks or links), drawn on demand.

    Unit ``i``'s lifetimes come from its own stream ``SeedSequence([seed, tag, i])``: its
    failure times ``L1, L1 + L2, ...`` do not depend on the others or on the run's length.

    Parameters
    ----------
    what : {"gpu", "block", "link"}
    n : int
        Units.
    mtbf_s : float
        Mean lifetime, > 0.
    distribution : {"exponential", "weibull"}
    shape : float
        Weibull's k (the scale is then ``mtbf / Gamma(1 + 1/k)``, so the mean is `mtbf_s`).
    seed : int

    Examples
    --------
    >>> life = Lifetimes("gpu", 2, 100.0, "exponential", 1.0, seed=0)
    >>> first = life.next(0); first == Lifetimes("gpu", 5, 100.0, "exponential", 1.0, seed=0).next(0)
    True
    """

    def __init__(self, what, n, mtbf_s, distribution, shape, seed):
        if not mtbf_s > 0 or not math.isfinite(mtbf_s):
            raise ValueError(f"a mean time between failures must be positive, got {mtbf_s!r}")
        self.mtbf_s, self.distribution, self.shape = float(mtbf_s), distribution, float(shape)
        self._rngs = [None] * n
        self._seed, self._tag = seed, _TAG_LIFETIMES[what]

    def next(self, i):
        """The next lifetime of unit `i`, in seconds."""
        rng = self._rngs[i]
        if rng is None:
            rng = self._rngs[i] = np.random.default_rng(
                np.random.SeedSequence([self._seed, self._tag, i]))
        if self.distribution == "weibull":
            scale = self.mtbf_s / math.gamma(1.0 + 1.0 / self.shape)
            return float(scale * rng.weibull(self.shape))
        return float(rng.exponential(self.mtbf_s))
