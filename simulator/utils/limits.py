"""How much memory sgdsim may use, and the check made before every large allocation.

A few bytes of input can ask for terabytes: ``blocks: 100000`` with ``gpus_per_block:
100000``, ``hidden: [100000000]``, ``--steps 10000000000``, an ``.npz`` label of 10^9 (a
10^9-class output layer). Rather than let the allocation fail halfway through a run (a
``MemoryError`` traceback, or the kernel killing the process), every place that is about to
allocate memory in proportion to an input first estimates the bytes it needs and calls
:func:`check_memory`, which refuses what cannot fit with one
:class:`~simulator.utils.errors.InputError` that says how much it would need.

The budget (:func:`memory_budget_bytes`) is the machine's physical memory, or less where the
process has a lower address-space or data limit (``ulimit -v``, ``ulimit -d``), or what the
environment variable ``SGDSIM_MEMORY_LIMIT`` says (a size with a unit, e.g. ``8 GB``). It
depends only on the machine and the environment, never on what else happens to be running,
so the same inputs give the same verdict on the same machine.

Estimates are upper bounds within a small factor (they count the working copies the code
makes), not exact figures; the message says "about".
"""

import os

from .errors import InputError

__all__ = ["ENV_VAR", "memory_budget_bytes", "check_memory"]

ENV_VAR = "SGDSIM_MEMORY_LIMIT"
"""Environment variable that sets the budget, e.g. ``SGDSIM_MEMORY_LIMIT='2 GB'``."""


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _process_limit():
    try:
        import resource
    except ImportError:                               # Windows
        return None
    limits = []
    for name in ("RLIMIT_AS", "RLIMIT_DATA"):
        which = getattr(resource, name, None)
        if which is None:
            continue
        soft, _ = resource.getrlimit(which)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft)
    return min(limits) if limits else None


def memory_budget_bytes():
    """The bytes one allocation may need: ``SGDSIM_MEMORY_LIMIT``, else the machine's memory
    (or the process's address-space or data limit, if lower).

    Raises
    ------
    InputError
        If ``SGDSIM_MEMORY_LIMIT`` is set but is not a positive size with a unit.

    Examples
    --------
    >>> import os
    >>> os.environ["SGDSIM_MEMORY_LIMIT"] = "2 GiB"
    >>> memory_budget_bytes()
    2147483648.0
    >>> del os.environ["SGDSIM_MEMORY_LIMIT"]
    """
    return _budget()[0]


def _budget():
    """(bytes, where the figure comes from)."""
    text = os.environ.get(ENV_VAR)
    if text:
        from .units import parse_bytes

        try:
            budget = parse_bytes(text, field=ENV_VAR)
        except InputError as err:
            raise InputError(err.message, field=ENV_VAR,
                             fix="set it to a size with a unit, e.g. '8 GB'") from None
        if not budget > 0:
            raise InputError(f"must be positive, got {text!r}", field=ENV_VAR,
                             fix="set it to a size with a unit, e.g. '8 GB'")
        return budget, ENV_VAR
    physical, limit = _physical_memory(), _process_limit()
    if limit is not None and (physical is None or limit < physical):
        return float(limit), "this process's memory limit (ulimit)"
    if physical is not None:
        return float(physical), "this machine's memory"
    return float("inf"), "no limit known"


def check_memory(nbytes, what, *, fix, file=None, line=None, field=None):
    """Raise InputError if `what` would need more than :func:`memory_budget_bytes`.

    Parameters
    ----------
    nbytes : float
        Estimated bytes (may be huge: it is compared, never allocated).
    what : str
        What needs them, e.g. ``"a topology of 10,000,000,000 GPUs"``.
    fix : str
        What to do instead.
    file, line, field
        Where the value that asks for it was written.

    Examples
    --------
    >>> try:
    ...     check_memory(2e15, "this run", fix="train for fewer steps", field="steps")
    ... except InputError as err:
    ...     print(err.message.split(";")[0])
    this run would need about 2 PB of memory
    """
    budget, source = _budget()
    if nbytes <= budget:
        return
    from .units import format_bytes

    raise InputError(f"{what} would need about {format_bytes(nbytes)} of memory; sgdsim may "
                     f"use {format_bytes(budget)} ({source})", file=file, line=line,
                     field=field, fix=fix)
