"""The ranges a topology's numbers must lie in, and its size before it is built.

Within these ranges every transfer, step and run takes a finite number of simulated seconds
(docs/semantics.md, "Units"): a bandwidth of at least :data:`MIN_BANDWIDTH_BPS` (1 bit/s), a
peak rate of at least :data:`MIN_PEAK_FLOPS` (1 FLOP/s), an efficiency of at least
:data:`MIN_EFFICIENCY`, every quantity at most
:data:`~simulator.utils.units.MAX_QUANTITY` in base units. :func:`check_graph_size` refuses a
graph that would not fit in memory before a node of it is created. Used by the loader
(:mod:`simulator.cluster.topology`) and the generators alike; this module imports nothing
heavy, so the command line can list the generator families without loading the schemas.
"""

from ..utils.limits import check_memory

__all__ = ["MIN_BANDWIDTH_BPS", "MIN_PEAK_FLOPS", "MIN_EFFICIENCY", "GRAPH_BYTES_PER_ELEMENT",
           "check_graph_size"]

MIN_BANDWIDTH_BPS = 0.125
"""Slowest link accepted: 1 bit/s (bytes/s)."""
MIN_PEAK_FLOPS = 1.0
"""Slowest GPU accepted: 1 FLOP/s."""
MIN_EFFICIENCY = 1e-6
"""Smallest achieved fraction of peak accepted."""
GRAPH_BYTES_PER_ELEMENT = 1024
"""Memory a node or link costs, with the routes and network state built on it (bytes; a
networkx node or edge of the contract takes about 360)."""


def check_graph_size(nodes, links, *, what="this topology", fix="use fewer GPUs", file=None,
                     line=None, field=None):
    """Refuse, before building it, a graph of `nodes` nodes and `links` links that would not
    fit in memory (:func:`simulator.utils.limits.check_memory`).

    Examples
    --------
    >>> check_graph_size(100, 100)
    >>> from simulator.utils.errors import InputError
    >>> try:
    ...     check_graph_size(10**10, 10**10, what="10,000,000,000 GPUs")
    ... except InputError as err:
    ...     print(err.message.split(";")[0])
    10,000,000,000 GPUs would need about 20.48 TB of memory
    """
    check_memory((nodes + links) * GRAPH_BYTES_PER_ELEMENT, what, fix=fix, file=file,
                 line=line, field=field)
