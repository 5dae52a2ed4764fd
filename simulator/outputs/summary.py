"""What ``sgdsim topology show`` prints: counts, link tiers, bandwidths, a simulated busbw.

:func:`topology_summary` gathers the static statistics of :mod:`simulator.cluster.stats`
and the bus bandwidth of a ring all-reduce simulated on the network model
(:func:`simulator.network.collectives.simulate_allreduce`) into one JSON-ready dict;
:func:`format_summary` turns it into an aligned table with units. It lives with the
outputs, above both the cluster description and the network, so that the cluster side
never depends on the network model.
"""

import math

from ..cluster.stats import bisection_bandwidth, injection_bandwidth
from ..cluster.topology import gpu_blocks
from ..network.collectives import simulate_allreduce
from ..utils.units import format_bandwidth, format_bytes, format_time

__all__ = ["topology_summary", "format_summary", "collective_summary", "RING_ALLREDUCE_BYTES"]

RING_ALLREDUCE_BYTES = 1e9
"""Message size (bytes) of the ring all-reduce whose bus bandwidth the summary reports."""


def _span(values):
    values = list(values)
    return {"min": min(values), "max": max(values)} if values else {"min": None, "max": None}


def topology_summary(graph):
    """Return counts and bandwidth statistics of `graph` as a JSON-ready dict.

    Parameters
    ----------
    graph : networkx.Graph
        A topology (contract of :mod:`simulator.cluster.topology`).

    Returns
    -------
    dict
        ``name``
            The graph's ``name`` attribute or None.
        ``gpus``, ``switches``, ``nics``
            Node counts by kind.
        ``blocks``
            Number of blocks; ``gpus_per_block`` is ``{"min": int, "max": int}``.
        ``links``
            ``{"total": int, "by_tier": {tier: {"count", "min_bandwidth_Bps",
            "max_bandwidth_Bps", "min_latency_s", "max_latency_s"}}}``.
        ``injection_bandwidth_Bps``
            ``{"min", "max"}`` over GPUs of :func:`injection_bandwidth`.
        ``bisection_bandwidth_Bps``
            :func:`bisection_bandwidth` (an upper-bound estimate); None with fewer than 2 GPUs.
        ``ring_allreduce_busbw_Bps``
            Bus bandwidth of a ring all-reduce of 1 GB over all GPUs under the network and
            protocol model, with the topology's channels and the cheapest protocol
            (:func:`simulator.network.collectives.simulate_allreduce`); None with fewer than 2 GPUs.
        ``ring_allreduce_protocol``, ``ring_allreduce_channels``
            The protocol and channel count it ran with (None with fewer than 2 GPUs).

    Examples
    --------
    >>> from simulator.cluster.generators import two_tier
    >>> s = topology_summary(two_tier(2, 2, inter_bandwidth=40e9))
    >>> s["gpus"], s["blocks"], s["switches"], s["links"]["by_tier"]["inter_block"]["count"]
    (4, 2, 3, 2)
    """
    kinds = [kind for _, kind in graph.nodes(data="kind")]
    blocks = gpu_blocks(graph)
    by_tier = {}
    for _, _, data in graph.edges(data=True):
        by_tier.setdefault(data["tier"], []).append(data)
    links = {
        tier: {
            "count": len(edges),
            "min_bandwidth_Bps": min(float(e["bandwidth"]) for e in edges),
            "max_bandwidth_Bps": max(float(e["bandwidth"]) for e in edges),
            "min_latency_s": min(float(e["latency"]) for e in edges),
            "max_latency_s": max(float(e["latency"]) for e in edges),
        }
        for tier, edges in sorted(by_tier.items())
    }
    gpus = kinds.count("gpu")
    summary = {
        "name": graph.graph.get("name"),
        "gpus": gpus,
        "blocks": len(blocks),
        "gpus_per_block": _span(len(members) for members in blocks.values()),
        "switches": kinds.count("switch"),
        "nics": kinds.count("nic"),
        "links": {"total": graph.number_of_edges(), "by_tier": links},
        "injection_bandwidth_Bps": _span(injection_bandwidth(graph).values()),
        "bisection_bandwidth_Bps": bisection_bandwidth(graph) if gpus >= 2 else None,
        "ring_allreduce_busbw_Bps": None,
        "ring_allreduce_protocol": None,
        "ring_allreduce_channels": None,
    }
    if gpus >= 2:
        result = simulate_allreduce(graph, RING_ALLREDUCE_BYTES, algorithm="ring")
        summary["ring_allreduce_busbw_Bps"] = float(result["busbw"])
        summary["ring_allreduce_protocol"] = result["protocol"]
        summary["ring_allreduce_channels"] = result["channels"]
    return summary


def _range(span, fmt):
    if span["min"] is None:
        return "-"
    if span["min"] == span["max"]:
        return fmt(span["min"])
    return f"{fmt(span['min'])} .. {fmt(span['max'])}"


def format_summary(summary):
    """Return :func:`topology_summary`'s dict as an aligned table with units, one fact a line.

    Examples
    --------
    >>> from simulator.cluster.generators import ring
    >>> print(format_summary(topology_summary(ring(4, inter_bandwidth=10e9))))  # doctest: +ELLIPSIS
    name                   ring n=4
    GPUs                   4
    blocks                 4 (1 GPUs each)
    switches               0
    NICs                   0
    links                  4
      inter_block          4 at 10 GB/s, 1 us
    injection bandwidth    20 GB/s per GPU
    bisection bandwidth    20 GB/s (estimate, upper bound)
    ring all-reduce busbw  ...
    """
    rows = [
        ("name", summary["name"] if summary["name"] is not None else "-"),
        ("GPUs", str(summary["gpus"])),
        ("blocks", f"{summary['blocks']} ({_range(summary['gpus_per_block'], str)} GPUs each)"),
        ("switches", str(summary["switches"])),
        ("NICs", str(summary["nics"])),
        ("links", str(summary["links"]["total"])),
    ]
    for tier, info in summary["links"]["by_tier"].items():
        bandwidth = _range({"min": info["min_bandwidth_Bps"], "max": info["max_bandwidth_Bps"]},
                           format_bandwidth)
        latency = _range({"min": info["min_latency_s"], "max": info["max_latency_s"]},
                         format_time)
        rows.append((f"  {tier}", f"{info['count']} at {bandwidth}, {latency}"))
    rows.append(("injection bandwidth",
                 f"{_range(summary['injection_bandwidth_Bps'], format_bandwidth)} per GPU"))
    bisection = summary["bisection_bandwidth_Bps"]
    rows.append(("bisection bandwidth", "-" if bisection is None
                 else f"{format_bandwidth(bisection)} (estimate, upper bound)"))
    busbw = summary["ring_allreduce_busbw_Bps"]
    channels = summary.get("ring_allreduce_channels")
    rows.append(("ring all-reduce busbw", "-" if busbw is None else
                 f"{format_bandwidth(busbw)} (ring all-reduce of "
                 f"{format_bytes(RING_ALLREDUCE_BYTES)}, {summary['ring_allreduce_protocol']}, "
                 f"{channels} channel{'s' if channels != 1 else ''}, simulated)"))
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


def collective_summary(result):
    """What ``sgdsim collective --json`` prints: one all-reduce, every key with its unit.

    Parameters
    ----------
    result : dict
        From :func:`simulator.network.collectives.simulate_allreduce`.

    Returns
    -------
    dict
        ``algorithm``, ``groups``, ``gpus_per_group``, ``size_bytes``, ``time_s``,
        ``algbw_Bps`` and ``busbw_Bps`` (bytes/s, nccl-tests' definitions), ``bytes``
        (``{tier: bytes}``, summed over links, innermost tier first); what ran:
        ``protocol``, ``channels``, ``requested`` (what was asked), ``latency_s`` (of a
        pipelined algorithm, else None), ``candidates`` (what ``auto`` weighed, each with
        its ``time_s``); and ``links`` when the result has them. A bandwidth that is not a
        finite number (an all-reduce that takes no time: 0 bytes on links without latency)
        is None, so the JSON has no ``Infinity``.

    Examples
    --------
    >>> collective_summary({"algorithm": "ring", "size_bytes": 0.0, "groups": 1,
    ...                     "gpus_per_group": 4, "time_s": 0.0, "algbw": float("inf"),
    ...                     "busbw": float("inf"), "bytes": {"intra_block": 0.0},
    ...                     "protocol": "ideal", "channels": 1, "latency_s": 0.0,
    ...                     "requested": {"algorithm": "ring", "protocol": "ideal"},
    ...                     "candidates": []})["algbw_Bps"] is None
    True
    """
    def finite(value):
        return float(value) if value is not None and math.isfinite(value) else None

    return {"algorithm": result["algorithm"], "groups": result["groups"],
            "gpus_per_group": result["gpus_per_group"], "size_bytes": result["size_bytes"],
            "time_s": result["time_s"], "algbw_Bps": finite(result["algbw"]),
            "busbw_Bps": finite(result["busbw"]), "bytes": dict(result["bytes"]),
            **{key: result[key] for key in ("protocol", "channels", "requested", "latency_s",
                                            "candidates", "links") if key in result}}
