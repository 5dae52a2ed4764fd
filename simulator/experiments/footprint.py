"""How much memory a run needs, estimated from its scenario before anything is allocated.

A run holds (:mod:`simulator.learning.training`, :mod:`simulator.engine.timeline`):

* the model of every GPU: parameters, momentum buffers, gradients and the update's
  temporary, and the average model: about ``5 K P`` numbers for ``K`` GPUs and ``P``
  parameters (``P`` from the input width, the hidden widths and the classes); Adam and
  AdamW keep two moments and make more temporaries, ``8 K P`` (``9`` with AMSGrad); a
  gossip step gathers every GPU's neighbours and keeps the models before the update,
  ``D + 2`` more (``D`` the graph's largest degree) (:func:`model_copies`);
* one step's activations and their gradients: about ``3 K B (d + sum(hidden) + C)``
  numbers for ``B`` samples per GPU;
* the batches of 64 steps of every GPU, drawn through a tiled copy of its shard: about
  ``3 * 64 K B`` indices;
* per step: every GPU's compute time (with its jitter draw) and, per step, the schedule,
  the learning curve and the timeline: about ``24 K + 600`` bytes.

:func:`check_run_memory` adds these up and refuses a scenario whose largest variant would
not fit (:func:`simulator.utils.limits.check_memory`), naming the setting that costs most:
the steps (or epochs), the hidden widths or data (parameters), the batch size or the
topology (GPUs).
"""

from ..utils.limits import check_memory

__all__ = ["model_parameters", "model_copies", "run_bytes", "check_run_memory"]

_BLOCK_STEPS = 64                       # batches drawn at once (datasets.BatchStream)


def model_parameters(input_dim, hidden, num_classes):
    """Parameters of an MLP with these widths (weights and biases).

    Examples
    --------
    >>> model_parameters(64, (64,), 10)     # the default digits MLP
    4810
    """
    widths = [int(input_dim), *map(int, hidden), int(num_classes)]
    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))


def model_copies(optimizer="sgd", *, amsgrad=False, gossip_degree=None):
    """How many (K, P) arrays a run holds at once (see the module docstring).

    Examples
    --------
    >>> model_copies(), model_copies("adamw"), model_copies("sgd", gossip_degree=2)
    (5, 8, 9)
    """
    copies = 5 if optimizer == "sgd" else 8 + bool(amsgrad)
    if gossip_degree is not None:
        copies += gossip_degree + 2
    return copies


def run_bytes(*, workers, input_dim, hidden, num_classes, batch_size, steps, itemsize=8,
              copies=5):
    """The terms of a run's memory, bytes: ``{"parameters", "activations", "batches", "steps"}``.

    Examples
    --------
    >>> terms = run_bytes(workers=16, input_dim=64, hidden=(64,), num_classes=10,
    ...                   batch_size=32, steps=90)
    >>> sum(terms.values()) < 10 * 2**20
    True
    """
    params = model_parameters(input_dim, hidden, num_classes)
    width = int(input_dim) + sum(map(int, hidden)) + int(num_classes)
    return {"parameters": copies * workers * params * itemsize,
            "activations": 3 * workers * batch_size * width * itemsize,
            "batches": 3 * _BLOCK_STEPS * workers * batch_size * 8,
            "steps": steps * (24 * workers + 600)}


_WHAT = {"parameters": "its model ({params:,} parameters on each of {workers:,} GPUs)",
         "activations": "a batch of {batch:,} samples on each of {workers:,} GPUs",
         "batches": "a batch of {batch:,} samples on each of {workers:,} GPUs",
         "steps": "{steps:,} steps on {workers:,} GPUs"}
_FIX = {"parameters": "use a smaller model (hidden widths) or fewer GPUs",
        "activations": "use a smaller batch_size or fewer GPUs",
        "batches": "use a smaller batch_size or fewer GPUs",
        "steps": "train for fewer steps (or epochs), or on fewer GPUs"}


def check_run_memory(*, workers, input_dim, hidden, num_classes, batch_size, steps, itemsize,
                     where, copies=5):
    """Raise InputError if a run would not fit in memory.

    Parameters
    ----------
    workers, input_dim, hidden, num_classes, batch_size, steps, itemsize
        The run's sizes (``batch_size`` and ``steps`` of its largest variant).
    copies : int
        (K, P) arrays held at once (:func:`model_copies`).
    where : callable
        ``where(term) -> {"file", "line", "field"}``: where the setting behind each term
        (``"parameters"``, ``"activations"``, ``"batches"``, ``"steps"``) is written.
    """
    terms = run_bytes(workers=workers, input_dim=input_dim, hidden=hidden,
                      num_classes=num_classes, batch_size=batch_size, steps=steps,
                      itemsize=itemsize, copies=copies)
    worst = max(terms, key=terms.get)
    what = "this run, for " + _WHAT[worst].format(
        params=model_parameters(input_dim, hidden, num_classes), workers=workers,
        batch=batch_size, steps=steps)
    check_memory(sum(terms.values()), what, fix=_FIX[worst], **where(worst))
