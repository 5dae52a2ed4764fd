"""Compute/communication overlap as PyTorch's DistributedDataParallel runs it, in the engine.

Semantics (docs/engine.md, "Overlap: DDP's gradient buckets"; docs/semantics.md, "The clock")
----------------------------------------------------------------------------------------------
With ``timing.overlap: ddp`` a step whose gradients are all-reduced (``Step.gradient``) does
not wait for its whole backward pass before communicating:

- **Forward, then backward.** A GPU's step time (:func:`simulator.engine.timeline.compute_times`)
  is a forward pass of :data:`FORWARD_SHARE` (a third: the profiles' 3x rule, training =
  forward + backward with backward = 2 x forward) and a backward pass of the rest.
- **Buckets.** The gradients are split into DDP's buckets (:func:`simulator.engine.buckets.ddp_buckets`:
  the reducer's rule, last layer first); the backward pass is shared out over the layers by
  their FLOPs, and a bucket is ready on a GPU when the layer of its last tensor is done
  there. DDP builds its buckets twice (``torch/nn/parallel/distributed.py``,
  ``_ddp_init_helper``; ``Reducer::rebuild_buckets`` in ``reducer.cpp``): with the default
  ``find_unused_parameters=False`` the first backward pass has one bucket of every gradient
  (size limit ``sys.maxsize``), ready when the pass ends; from the second on, the buckets
  rebuilt in the order the gradients became ready, with the limits ``[first_bucket_cap,
  bucket_cap]``. So the first gradient sync of a run is one bucket, every later one the
  rebuilt buckets (:attr:`Overlap.first_buckets`, :attr:`Overlap.buckets`).
- **One stream.** A bucket's all-reduce over the group starts when the bucket is ready on
  every member and the group's previous bucket is done: DDP launches buckets in order and a
  communicator's collectives run one after another on the GPU's communication stream. Each
  is timed like any sync's collective (the group's all-reduce of the bucket's bytes, with the
  scenario's algorithm and the topology's protocol; ``auto`` chooses per bucket size).
- **The end of the step.** The sync ends when its last bucket has, plus
  ``global_sync_delay_s`` once after it for a sync over all GPUs; a GPU leaves the step when
  both its own backward pass and the sync have ended (a parameter average, if the step has
  one, follows as usual).

Time per GPU, for an overlapped sync (:meth:`BucketedSync.share`):

- its **communication time** is the time its stream is busy: the buckets' all-reduces and
  the delay. It is charged to the tier of the group, as any sync's
  (``comm_time_by_tier_s``; the tiers still add up to ``comm_time_s``);
- its **overlapped time** is the part of that which runs while the GPU computes its backward
  pass (``overlapped_comm_time_s``);
- its **wait** is the time after its backward pass during which the stream is idle, waiting
  for a slower member's bucket (``wait_time_s``, as a straggler's wait).

So a GPU's time is ``compute + wait + comm - overlapped``, step by step. Without overlap every
gradient all-reduce starts after the whole compute, and nothing here applies.

What is left out: the compute slowdown that collectives cause by taking GPU SMs and memory
bandwidth (NCCL's kernels run beside the backward kernels), the optimizer step's own time,
gradient accumulation (``no_sync``), and DDP with ``find_unused_parameters=True`` (whose first
buckets are the definition-order ones).
"""

from dataclasses import dataclass

from .buckets import DEFAULT_BUCKET_CAP_BYTES, DEFAULT_FIRST_BUCKET_BYTES, Bucket, ddp_buckets

__all__ = ["MODES", "FORWARD_SHARE", "Overlap", "ddp_overlap", "BucketedSync", "run_buckets",
           "overlapped_s"]

MODES = ("none", "ddp")
"""``timing.overlap`` values: ``none`` (every all-reduce after the whole step's compute) and
``ddp`` (gradient buckets all-reduced during the backward pass)."""
FORWARD_SHARE = 1.0 / 3.0
"""The forward pass's share of a step's compute: training FLOPs are 3 x forward (profiles)."""


@dataclass(frozen=True)
class Overlap:
    """DDP's buckets for one model: ready times are fractions of the backward pass (0-1].

    Attributes
    ----------
    buckets : tuple of Bucket
        The rebuilt buckets, in reduction order, used from the second gradient sync on.
    first_buckets : tuple of Bucket
        The first gradient sync's: one bucket of every gradient, ready at the pass's end.
    bucket_cap_bytes, first_bucket_cap_bytes : int
        The size limits of the rebuilt buckets (DDP's ``bucket_cap_mb`` and
        ``dist._DEFAULT_FIRST_BUCKET_BYTES``, as bytes).
    forward_share : float
        Share of a step's compute before the backward pass.
    """

    buckets: tuple
    first_buckets: tuple
    bucket_cap_bytes: int
    first_bucket_cap_bytes: int
    forward_share: float = FORWARD_SHARE

    @property
    def message_bytes(self):
        """Bytes of all the buckets: the gradients of one replica."""
        return sum(b.nbytes for b in self.buckets)


def ddp_overlap(layers, *, bucket_cap_bytes=DEFAULT_BUCKET_CAP_BYTES,
                first_bucket_cap_bytes=DEFAULT_FIRST_BUCKET_BYTES, bytes_per_param=4):
    """DDP's buckets for a model's layers, with ready times as fractions of the backward pass.

    Parameters
    ----------
    layers : sequence of LayerCost
        In definition order (:func:`simulator.engine.profiles.layer_costs`).
    bucket_cap_bytes, first_bucket_cap_bytes : int
        DDP's limits; PyTorch's defaults 25 MiB and 1 MiB.
    bytes_per_param : int
        4 for fp32 gradients.

    Returns
    -------
    Overlap

    Raises
    ------
    InputError
        A non-positive limit, or a model without parameters (from ``ddp_buckets``).

    Examples
    --------
    >>> from simulator.engine.profiles import layer_costs
    >>> o = ddp_overlap(layer_costs("resnet50-imagenet"))
    >>> [round(b.nbytes / 2**20, 1) for b in o.buckets], len(o.first_buckets)
    ([7.8, 30.0, 25.0, 25.3, 9.3], 1)
    >>> o.first_buckets[0].nbytes == o.message_bytes, o.first_buckets[0].ready_s
    (True, 1.0)
    """
    buckets = tuple(ddp_buckets(layers, 1.0, bucket_cap_bytes=bucket_cap_bytes,
                                first_bucket_bytes=first_bucket_cap_bytes,
                                bytes_per_param=bytes_per_param))
    every = tuple(name for b in buckets for name in b.tensors)
    first = (Bucket(0, every, sum(b.nbytes for b in buckets), 1.0),)
    return Overlap(buckets, first, int(bucket_cap_bytes), int(first_bucket_cap_bytes))


class BucketedSync:
    """One overlapped gradient sync of a group: its members' backward passes and its spans.

    Members :meth:`join` at the start of their backward pass; once all have, the bucket
    ready times are known (:meth:`ready_s`) and :func:`run_buckets` runs the buckets.
    ``spans`` collects ``(start_s, end_s)`` of every bucket's all-reduce, then of the delay.
    """

    __slots__ = ("buckets", "backward", "spans")

    def __init__(self, buckets):
        self.buckets = buckets
        self.backward = {}                 # member -> (start_s, duration_s) of its backward pass
        self.spans = []

    def join(self, member, start_s, backward_s):
        """`member` starts its backward pass of `backward_s` seconds at `start_s`."""
        self.backward[member] = (start_s, backward_s)

    def ready_s(self, bucket):
        """When `bucket` is ready on every member."""
        return max(start + bucket.ready_s * length for start, length in self.backward.values())

    def share(self, start_s, end_s, leave_s):
        """``(comm_s, overlapped_s, wait_s)`` of a member whose backward pass ran from
        `start_s` to `end_s` and which left the step at `leave_s`."""
        busy = sum(e - s for s, e in self.spans)
        hidden = overlapped_s(self.spans, start_s, end_s)
        wait = (leave_s - end_s) - (busy - hidden)
        return busy, hidden, max(wait, 0.0)


def overlapped_s(spans, start_s, end_s):
    """Seconds of the disjoint `spans` that fall inside ``[start_s, end_s]``.

    >>> overlapped_s([(0.0, 2.0), (3.0, 5.0)], 1.0, 4.0)
    2.0
    """
    return sum(max(0.0, min(e, end_s) - max(s, start_s)) for s, e in spans)


def run_buckets(env, state, reduce, delay_s=0.0, log=None, tag=()):
    """SimPy process body: a group's bucket all-reduces, one after another on its stream.

    Parameters
    ----------
    env : simpy.Environment
    state : BucketedSync
        Every member has joined.
    reduce : callable
        ``reduce(nbytes)``: a generator that runs one all-reduce of `nbytes` over the group.
    delay_s : float
        Added once after the last bucket (``global_sync_delay_s`` of a sync over all GPUs).
    log : list, optional
        Receives ``(*tag, bucket index, bytes, start_s, end_s)`` of every bucket.
    tag : tuple
        What identifies the sync in `log`: ``(step, kind, group)``.
    """
    for i, bucket in enumerate(state.buckets):
        ready = state.ready_s(bucket)
        if ready > env.now:
            yield env.timeout(ready - env.now)
        begin = env.now
        yield from reduce(bucket.nbytes)
        state.spans.append((begin, env.now))
        if log is not None:
            log.append((*tag, i, bucket.nbytes, begin, env.now))
    if delay_s:
        begin = env.now
        yield env.timeout(delay_s)
        state.spans.append((begin, env.now))
