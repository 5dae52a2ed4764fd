"""Gradient buckets as PyTorch's DistributedDataParallel forms them, and when each is ready.

Semantics (docs/engine.md, "Gradient buckets")
----------------------------------------------
DDP all-reduces gradients in *buckets* while the backward pass goes on. Its reducer
(``compute_bucket_assignment_by_size`` in PyTorch's ``torch/csrc/distributed/c10d/
reducer.cpp``, with the size limits ``[kDefaultFirstBucketBytes, bucket_bytes_cap]`` =
``[1 MiB, 25 MiB]`` by default, ``bucket_cap_mb=25``) walks the parameter tensors in the
order their gradients become ready, adds each to the open bucket, and closes the bucket as
soon as it holds at least its limit; the first bucket's limit is the small one, every later
one the cap. A tensor is never split, so a bucket may exceed its limit by its last tensor;
what is left at the end is the last bucket. From the second iteration on (DDP rebuilds its
buckets after the first) the order is the order gradients were ready, which for a model
run layer after layer is the reverse of the definition order: the *last* layers fill the
small first bucket, so the first all-reduce can start early in the backward pass.

:func:`ddp_buckets` applies this rule to a model's layers (:mod:`simulator.engine.profiles`).
The backward pass is split over the layers in proportion to their backward FLOPs (twice the
forward FLOPs, as in the profiles), walked from the last layer to the first; a layer's
gradients are ready when its backward step ends, and a bucket is ready when its last
tensor is. :func:`overlapped_step_s` then serialises the buckets' all-reduces on one
communication stream, each starting when its bucket is ready and the previous one is done,
and the step ends when both the backward pass and the last all-reduce have: the closed form
of one step on one group, which :mod:`simulator.engine.overlap` runs in the engine (every
group, stragglers, contention, DDP's one-bucket first pass).
"""

from dataclasses import dataclass

from ..utils.errors import InputError

__all__ = ["Bucket", "DEFAULT_BUCKET_CAP_BYTES", "DEFAULT_FIRST_BUCKET_BYTES", "ddp_buckets",
           "overlapped_step_s"]

DEFAULT_BUCKET_CAP_BYTES = 25 * 2**20
"""DDP's ``bucket_cap_mb=25`` as bytes (``int(bucket_cap_mb * 1024 * 1024)``)."""
DEFAULT_FIRST_BUCKET_BYTES = 2**20
"""PyTorch's ``kDefaultFirstBucketBytes`` (``dist._DEFAULT_FIRST_BUCKET_BYTES``): 1 MiB."""


@dataclass(frozen=True)
class Bucket:
    """One bucket, in reduction order: its tensors' names, bytes, and ready time (s)."""

    index: int
    tensors: tuple
    nbytes: int
    ready_s: float


def ddp_buckets(layers, backward_s, *, bucket_cap_bytes=DEFAULT_BUCKET_CAP_BYTES,
                first_bucket_bytes=DEFAULT_FIRST_BUCKET_BYTES, bytes_per_param=4):
    """Split a model's gradients into DDP buckets, with the time each is ready.

    Parameters
    ----------
    layers : sequence of LayerCost
        In definition (forward) order (:func:`simulator.engine.profiles.layer_costs`).
    backward_s : float
        Seconds of the whole backward pass, shared out over the layers by FLOPs.
    bucket_cap_bytes, first_bucket_bytes : int
        DDP's ``bucket_cap_mb`` in bytes and the first bucket's limit.
    bytes_per_param : int
        4 for fp32 gradients.

    Returns
    -------
    list of Bucket
        In the order DDP reduces them (the first holds the last layers).

    Raises
    ------
    InputError
        For a negative time, a non-positive limit, or no parameters.

    Examples
    --------
    >>> from simulator.engine.profiles import LayerCost
    >>> layers = [LayerCost("a", (("a.w", 600_000),), 1.0), LayerCost("b", (("b.w", 300_000),), 1.0)]
    >>> [(b.tensors, b.nbytes, b.ready_s) for b in ddp_buckets(layers, 2.0)]
    [(('b.w',), 1200000, 1.0), (('a.w',), 2400000, 2.0)]
    """
    if not backward_s >= 0:
        raise InputError(f"backward time must be >= 0 s, got {backward_s!r}", field="backward_s",
                         fix="give the seconds of the backward pass")
    for name, value in (("bucket_cap_bytes", bucket_cap_bytes),
                        ("first_bucket_bytes", first_bucket_bytes),
                        ("bytes_per_param", bytes_per_param)):
        if not value > 0:
            raise InputError(f"must be positive, got {value!r}", field=name,
                             fix="give a size in bytes, e.g. 26214400 for 25 MiB")
    flops = [2.0 * layer.forward_flops for layer in layers]
    total = sum(flops)
    if not layers or sum(layer.params for layer in layers) == 0:
        raise InputError("the model has no parameters to reduce", field="layers",
                         fix="give the layers of a model")
    tensors, done = [], 0.0
    for i, (layer, work) in enumerate(zip(reversed(layers), reversed(flops))):
        done += work
        elapsed = backward_s * (done / total if total > 0 else (i + 1) / len(layers))
        # within a layer, PyTorch's autograd produces the last-defined tensor's gradient first
        for name, count in reversed(layer.tensors):
            if count:
                tensors.append((name, count * bytes_per_param, elapsed))
    buckets, current, size, limit = [], [], 0, first_bucket_bytes
    for name, nbytes, ready in tensors:
        current.append((name, ready))
        size += nbytes
        if size >= limit:
            buckets.append((current, size))
            current, size, limit = [], 0, bucket_cap_bytes
    if current:
        buckets.append((current, size))
    return [Bucket(i, tuple(n for n, _ in items), int(nbytes), max(r for _, r in items))
            for i, (items, nbytes) in enumerate(buckets)]


def overlapped_step_s(buckets, allreduce_s, backward_s, *, start_s=0.0):
    """When the backward pass and its bucket all-reduces end, serialised on one stream.

    Parameters
    ----------
    buckets : list of Bucket
        In reduction order (:func:`ddp_buckets`), ready times from the start of the backward pass.
    allreduce_s : callable
        ``allreduce_s(nbytes) -> seconds`` of one bucket's all-reduce.
    backward_s : float
    start_s : float
        When the backward pass starts.

    Returns
    -------
    tuple
        ``(end_s, spans)``: the step's end, and ``(start_s, end_s)`` of every bucket's all-reduce.

    Examples
    --------
    >>> from simulator.engine.buckets import Bucket
    >>> bs = [Bucket(0, ("b",), 100, 1.0), Bucket(1, ("a",), 200, 2.0)]
    >>> overlapped_step_s(bs, lambda n: n / 100, 2.0)
    (4.0, [(1.0, 2.0), (2.0, 4.0)])
    """
    stream, spans = start_s, []
    for bucket in buckets:
        begin = max(start_s + bucket.ready_s, stream)
        stream = begin + allreduce_s(bucket.nbytes)
        spans.append((begin, stream))
    return max(start_s + backward_s, stream), spans
