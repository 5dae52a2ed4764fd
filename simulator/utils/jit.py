"""Numba kernels that are compiled only when a problem is big enough to need them.

Importing numba and loading its cached machine code costs most of a second per process,
more than a small run takes in total. So a kernel is written once, as a plain Python
function in numba's subset (loops over numpy arrays, no Python objects), and marked with
:func:`kernel`. Until :func:`compile_kernels` is called, kernels run as the Python they
are; it compiles every marked kernel with ``numba.njit(cache=True)`` and puts the
compiled function in its module in place of the Python one, so callers (and kernels
calling kernels) name it as before. Callers decide when: typically when the work at hand
passes a size that the interpreter would take long over.

Both forms compute the same IEEE double arithmetic, operation for operation (numba
neither reorders nor fuses floating-point operations without ``fastmath``), so results
are bit for bit the same whichever runs; the tests check it on random cases.
"""

import contextlib

__all__ = ["kernel", "compile_kernels", "compiled", "interpreted"]

_KERNELS = []          # (module namespace, name), in the order they were marked
_state = {"compiled": False}


def kernel(fn):
    """Mark `fn`, a module-level function in numba's subset, as a kernel of its module."""
    _KERNELS.append((fn.__globals__, fn.__name__))
    return fn


def compiled():
    """True once :func:`compile_kernels` has run in this process."""
    return _state["compiled"]


def compile_kernels():
    """Replace every marked kernel in its module by its numba compilation (once).

    Compilation itself is lazy (numba compiles, or loads from its on-disk cache, at a
    kernel's first call) and cached next to the source, so only the first call after
    an install pays for compiling.
    """
    if _state["compiled"]:
        return
    import numba

    for namespace, name in _KERNELS:
        namespace[name] = numba.njit(cache=True)(namespace[name])
    _state["compiled"] = True


@contextlib.contextmanager
def interpreted():
    """Within this block every kernel runs as plain Python, compiled or not (for tests).

    Examples
    --------
    >>> import numpy as np
    >>> from simulator.network.maxmin import max_min_rates
    >>> with interpreted():
    ...     max_min_rates(np.array([[0, 1]]), np.array([2.0, np.inf])).tolist()
    [2.0]
    """
    saved = [(namespace, name, namespace[name]) for namespace, name in _KERNELS]
    for namespace, name, fn in saved:
        namespace[name] = getattr(fn, "py_func", fn)
    was = _state["compiled"]
    _state["compiled"] = True          # callers must not compile inside the block
    try:
        yield
    finally:
        for namespace, name, fn in saved:
            namespace[name] = fn
        _state["compiled"] = was
