"""Building many Python objects at once, without the cyclic garbage collector in the way.

Parsing a 4,096-GPU topology creates some 100,000 YAML nodes, dicts and strings, none of
them garbage. CPython's collector, triggered every few hundred new objects, scans them
again and again while they are built: most of the time a big load took, and more the more
other objects the process already holds. :func:`paused_gc` switches the collector off for
such a block (reference counting still frees what is dropped) and back on after it, as
it was.
"""

import contextlib
import gc

__all__ = ["paused_gc"]


@contextlib.contextmanager
def paused_gc():
    """Run the block with the cyclic garbage collector off (restored after, even on error).

    Examples
    --------
    >>> import gc
    >>> with paused_gc():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
