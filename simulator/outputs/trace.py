"""Timeline traces of simulated runs in the Chrome trace event format (Perfetto, chrome://tracing).

A trace shows what every GPU did when, in simulated time, and how many bytes were in
flight on each tier of the network. It is built from what the engine already measured
(nothing is simulated again): the compute time of every GPU at every step, the schedule's
actions and the engine's ``Timeline.sync_log`` and ``Timeline.in_flight``, collected by
``run_variant(..., timed=[])`` (:mod:`simulator.experiments.runner`).

What a trace holds
------------------
- One *process* per run (``pid`` 1, 2, ... in the order given), named by the run's label.
- One *thread* (track) per GPU (``tid`` 1..K, in ring order: blocks adjacent), named by the
  GPU's name.
- ``"X"`` (complete) events on each GPU's track, end to end from 0 to the run's end:
  ``compute`` (cat ``compute``) for each step; ``wait`` (cat ``wait``) from the GPU's
  arrival at a sync to the sync's start, when it had to wait for a slower member; and the
  sync itself (cat ``sync``), named ``gradient all-reduce``, ``global sync``, ``block sync``
  (``rack sync``... for the levels of a nested topology) or ``block gradient all-reduce``
  after the sync's kind (:func:`simulator.learning.schedules.sync_kind`), or ``gossip exchange``
  (a GPU's exchanges with its gossip neighbours, from the first one's start), with ``args``
  ``step``, ``group`` (-1: all GPUs, else the group's index in its grouping, as in
  ``sync_log``), ``group_name`` and ``bytes`` (the message each GPU all-reduces), plus
  ``delay_s`` when a global sync delay is charged (the span covers the collective and then
  the delay). A step may have two syncs: gradients before the update, then parameters.
- ``"C"`` (counter) events named ``bytes in flight`` with one series per tier,
  ``intra_block`` and ``inter_block`` (one per tier of a nested topology).

With DDP overlap (``timing.overlap: ddp``, :mod:`simulator.engine.overlap`), a step whose
gradients are all-reduced shows ``forward`` and ``backward`` (cat ``compute``) in place of
``compute``, and, if the GPU still waits for its gradients when its backward pass ends, the
sync span (``gradient all-reduce``...) from then until it leaves the step. Each GPU then has
a second track, ``NAME comm`` (its communication stream, ``tid`` K + 1 + k, sorted just
below the GPU's), with one span per bucket (``bucket 0``, ``bucket 1``...; cat ``sync``;
``args`` ``step``, ``bucket``, ``bytes``, ``group``) and ``delay`` for a global sync delay:
the buckets beside the ``backward`` span are the communication hidden behind it, and a GPU's
comm-track spans add up to its communication time.

Under faults (docs/faults.md) the engine records the spans itself (steps may run twice, GPUs
leave and join), and the trace adds: ``lost compute`` (cat ``fault``: a step cut short by a
failure), a sync abandoned when a member failed (its name with `` (abandoned)``, cat
``fault``), ``reconfigure``, ``checkpoint write`` (cat ``checkpoint``), ``restart`` (the
job's downtime) and ``down`` (a GPU slot without a working GPU, until its replacement
joins), all on the GPU's track; an instant event (``"ph": "i"``) for every fault and
recovery of the run's ``faults.events`` (``gpu fail``, ``block preempt``, ``restart``,
``join``, ``run failed``: on the track of the GPU it hit, process-wide otherwise); and a
counter ``working GPUs``.

The GPU spans are reconstructed exactly as the engine runs them
(:func:`simulator.engine.timeline.simulate_timeline`): GPU ``k`` computes step ``t`` for
``compute_s[k, t - 1]``; if a sync follows, it waits until the sync of its group starts and
stays in it until it ends; then it computes the next step.

Bytes in flight
---------------
At any instant, the bytes in flight on a tier are the bytes of the transfers that have been
submitted and have not yet finished (in their latency phase or their byte phase), each
transfer counted in full on every tier its route crosses (a route through both tiers counts
on both). The value changes only when transfers are submitted or finish, so the counter is
an exact step function; it is 0 outside collectives and returns to 0 when each collective
ends (before any global sync delay). The engine simulates each group's collective once on an
idle network and reuses it; its in-flight series is recorded then
(:class:`simulator.network.flows.Network`'s ``in_flight_log``) and shifted to the start of every
sync that reuses it. Block syncs on a shared network (blocks whose collectives share links)
are recorded on that network directly. Series that overlap in time are summed.

Times are microseconds of simulated time (``ts``, ``dur`` as floats), as the format
expects; ``displayTimeUnit`` is ``"ms"``.

Examples
--------
>>> spans = gpu_spans(["g0", "g1"], [[0, 1]], ["global"], [[1.0], [2.0]],
...                   [(1, "global", -1, 2.0, 2.5)])
>>> [(s["gpu"], s["name"], s["start_s"], s["end_s"]) for s in spans]
[(0, 'compute', 0.0, 1.0), (0, 'wait', 1.0, 2.0), (0, 'global sync', 2.0, 2.5), (1, 'compute', 0.0, 2.0), (1, 'global sync', 2.0, 2.5)]
"""

import json
import math

from ..learning.schedules import GLOBAL, GOSSIP, as_step, sync_kind
from ..network.flows import TIERS
from ..utils.files import check_output, write_text_atomic

__all__ = ["SYNC_NAMES", "COUNTER_NAME", "WORKERS_NAME", "gpu_spans", "recorded_spans",
           "bytes_in_flight", "trace_document", "write_trace", "check_trace_path"]

SYNC_NAMES = {"gradient": "gradient all-reduce", "global": "global sync", "block": "block sync",
              GOSSIP: "gossip exchange"}
"""Span name of each sync kind of a one-level topology (others: :func:`sync_name`)."""


def sync_name(kind):
    """The span name of a sync kind: ``"rack sync"``, ``"block gradient all-reduce"``...

    Examples
    --------
    >>> sync_name("global"), sync_name("rack"), sync_name("node gradient")
    ('global sync', 'rack sync', 'node gradient all-reduce')
    """
    if kind in SYNC_NAMES:
        return SYNC_NAMES[kind]
    if kind.endswith(" gradient"):
        return kind + " all-reduce"
    return kind + " sync"
COUNTER_NAME = "bytes in flight"
"""Name of the counter events; their ``args`` are ``{tier: bytes}``."""
WORKERS_NAME = "working GPUs"
"""Name of the counter of GPUs at work, under faults; ``args`` are ``{"gpus": n}``."""

_US = 1e6                                        # microseconds per second


def gpu_spans(gpus, blocks, actions, compute_s, sync_log, overlap=None, bucket_log=None):
    """What each GPU did, as spans in seconds of simulated time.

    Parameters
    ----------
    gpus : list of str
        GPU names in ring order (:func:`simulator.engine.timeline.cluster_gpus`).
    blocks : dict or list of list of int
        The groupings (grouping name -> groups of positions in `gpus`,
        :func:`simulator.engine.timeline.cluster_groupings`), or the blocks alone.
    actions : sequence of Step, str or None
        The schedule's step after each timed step.
    compute_s : array_like, shape (K, T)
        Compute time of each GPU at each step.
    sync_log : list
        ``Timeline.sync_log``: ``(step, kind, group, start_s, end_s)``.
    overlap : simulator.engine.overlap.Overlap, optional
        The run's DDP buckets, if its gradient all-reduces overlapped the backward pass.
    bucket_log : list, optional
        ``Timeline.bucket_log``: ``(step, kind, group, bucket, bytes, start_s, end_s)``.

    Returns
    -------
    list of dict
        GPU by GPU, in time order: ``gpu`` (index into `gpus`), ``name`` (``compute``,
        ``wait`` or a :data:`SYNC_NAMES` value; with overlap also ``forward``, ``backward``,
        and on the GPU's comm track ``bucket i`` and ``delay``), ``cat`` (``compute``,
        ``wait``, ``sync``), ``start_s``, ``end_s``, ``step``, and for syncs ``kind`` and
        ``group``; a comm-track span has ``track`` ``"comm"``, ``bucket`` and ``bytes``. A
        wait of zero length is left out.
    """
    syncs = {(step, kind, group): (start_s, end_s) for step, kind, group, start_s, end_s in sync_log}
    buckets = {}                                 # (step, kind, group) -> [(bucket, bytes, start, end)]
    for step, kind, group, index, nbytes, start_s, end_s in bucket_log or ():
        buckets.setdefault((step, kind, group), []).append((index, nbytes, start_s, end_s))
    groupings = blocks if isinstance(blocks, dict) else {"block": blocks}
    group_of = {name: {k: g for g, members in enumerate(groups) for k in members}
                for name, groups in groupings.items()}
    steps = [as_step(a) for a in actions]
    spans = []
    for k in range(len(gpus)):
        clock_s = 0.0
        for t, step in enumerate(steps):
            ddp = overlap is not None and step.gradient is not None
            if ddp:                                            # as the engine splits the step
                compute = float(compute_s[k][t])
                forward_s = compute * overlap.forward_share
                backward_s = compute - forward_s
                backward_end_s = (clock_s + forward_s) + backward_s
                spans.append({"gpu": k, "name": "forward", "cat": "compute", "start_s": clock_s,
                              "end_s": clock_s + forward_s, "step": t + 1})
                spans.append({"gpu": k, "name": "backward", "cat": "compute",
                              "start_s": clock_s + forward_s, "end_s": backward_end_s,
                              "step": t + 1})
                clock_s = clock_s + forward_s
            else:
                end_s = clock_s + float(compute_s[k][t])       # as SimPy adds a timeout
                spans.append({"gpu": k, "name": "compute", "cat": "compute", "start_s": clock_s,
                              "end_s": end_s, "step": t + 1})
                clock_s = end_s
            for what, name in (("gradient", step.gradient), ("average", step.average)):
                if name is None:
                    continue
                kind = sync_kind(what, name)
                group = -1 if name == GLOBAL else k if name == GOSSIP else \
                    _group_of(group_of, name, k, len(gpus))
                start_s, end_s = syncs[(t + 1, kind, group)]
                start_s, end_s = float(start_s), float(end_s)
                if ddp and what == "gradient":
                    clock_s = _overlapped(spans, k, t + 1, kind, group, name, backward_end_s,
                                          end_s, buckets.get((t + 1, kind, group), ()))
                    continue
                if start_s > clock_s:
                    spans.append({"gpu": k, "name": "wait", "cat": "wait", "start_s": clock_s,
                                  "end_s": start_s, "step": t + 1})
                spans.append({"gpu": k, "name": sync_name(kind), "cat": "sync",
                              "start_s": start_s, "end_s": end_s, "step": t + 1, "kind": kind,
                              "group": group, "grouping": name})
                clock_s = end_s
    return spans


def _overlapped(spans, k, step, kind, group, grouping, backward_end_s, sync_end_s, buckets):
    """GPU k's spans of an overlapped gradient sync; returns when it leaves the step."""
    for index, nbytes, start_s, end_s in buckets:
        spans.append({"gpu": k, "track": "comm", "name": f"bucket {index}", "cat": "sync",
                      "start_s": float(start_s), "end_s": float(end_s), "step": step,
                      "kind": kind, "group": group, "grouping": grouping, "bucket": index,
                      "bytes": float(nbytes)})
    if buckets and sync_end_s > buckets[-1][3]:
        spans.append({"gpu": k, "track": "comm", "name": "delay", "cat": "sync",
                      "start_s": float(buckets[-1][3]), "end_s": sync_end_s, "step": step,
                      "kind": kind, "group": group, "grouping": grouping})
    leave_s = max(backward_end_s, sync_end_s)
    if leave_s > backward_end_s:
        spans.append({"gpu": k, "name": sync_name(kind), "cat": "sync", "start_s": backward_end_s,
                      "end_s": leave_s, "step": step, "kind": kind, "group": group,
                      "grouping": grouping})
    return leave_s


def recorded_spans(spans):
    """The spans an engine under faults recorded (``Timeline.spans``), as :func:`gpu_spans`
    gives them, GPU by GPU in time order; fault marks left out (they are instant events).

    Examples
    --------
    >>> recorded_spans([(1, "global", "sync", 2.0, 2.5, 3, {"group": -1, "grouping": "global"}),
    ...                 (1, "global", "fault", 1.0, 1.5, 3, {"aborted": True, "group": -1,
    ...                                                      "grouping": "global"})])[0]["name"]
    'global sync (abandoned)'
    """
    out = []
    for k, name, cat, start_s, end_s, step, args in spans:
        if cat == "mark":
            continue
        span = {"gpu": int(k), "name": name, "cat": cat, "start_s": float(start_s),
                "end_s": float(end_s), "step": step}
        if args and "grouping" in args:
            span.update(kind=name, group=args["group"], grouping=args["grouping"],
                        name=sync_name(name) + (" (abandoned)" if args.get("aborted") else ""))
        out.append(span)
    out.sort(key=lambda span: (span["gpu"], span["start_s"], span["end_s"]))
    return out


def _group_of(group_of, name, k, n_gpus):
    """Index of GPU k's group in grouping `name` (``groups_of_g``: consecutive ranks)."""
    if name not in group_of and name.startswith("groups_of_"):
        return k // int(name[len("groups_of_"):])
    return group_of[name][k]


def bytes_in_flight(series):
    """Sum in-flight series that may overlap into one step function.

    Parameters
    ----------
    series : list of list of tuple
        Each a list of ``(time_s, intra_block_bytes, inter_block_bytes)`` sorted by time,
        whose value holds until its next entry (``Timeline.in_flight``).

    Returns
    -------
    list of tuple
        ``(time_s, intra_block_bytes, inter_block_bytes)`` at every instant where any
        series changes, sorted by time. Each total is the sum of the series' current
        values, so it is exactly 0 whenever every series is.

    Examples
    --------
    >>> bytes_in_flight([[(0.0, 4.0, 0.0), (1.0, 0.0, 0.0)], [(0.5, 1.0, 2.0), (2.0, 0.0, 0.0)]])
    [(0.0, 4.0, 0.0), (0.5, 5.0, 2.0), (1.0, 1.0, 2.0), (2.0, 0.0, 0.0)]
    """
    changes = sorted((entry[0], i, j) for i, s in enumerate(series) for j, entry in enumerate(s))
    current = {}                                  # series index -> its current values
    merged = []
    for n, (time_s, i, j) in enumerate(changes):
        values = series[i][j][1:]
        if any(values):
            current[i] = values
        else:
            current.pop(i, None)
        if n + 1 < len(changes) and changes[n + 1][0] == time_s:
            continue                              # more changes at this instant
        width = len(series[i][j]) - 1
        totals = tuple(sum(v[tier] for v in current.values()) for tier in range(width))
        if not merged or merged[-1][1:] != totals:
            merged.append((time_s, *[float(x) for x in totals]))
    return merged


def _duration_us(start_s, end_s):
    """``end - start`` in microseconds, rounded down so that ``ts + dur`` never passes the
    next span's ``ts`` (``end_s * 1e6``): viewers nest a span that starts before the last
    one ends inside it."""
    ts_us, end_us = start_s * _US, end_s * _US
    dur_us = max(end_us - ts_us, 0.0)
    while ts_us + dur_us > end_us:
        dur_us = math.nextafter(dur_us, 0.0)
    return dur_us


def _group_name(group, grouping, groupings, gpus, neighbours=None):
    if group == -1:
        return f"all {len(gpus)} GPUs"
    if grouping == GOSSIP:
        return f"{gpus[group]} with {', '.join(gpus[j] for j in neighbours[group])}"
    if grouping in groupings:
        members = groupings[grouping][group]
    else:                                          # groups_of_g: consecutive ranks
        size = int(grouping[len("groups_of_"):])
        members = range(group * size, (group + 1) * size)
    return f"{grouping} {group} ({', '.join(gpus[k] for k in members)})"


def trace_document(runs):
    """The Chrome trace of several runs.

    Parameters
    ----------
    runs : list of (str, dict)
        ``(label, timed)`` per run, where `timed` is the dict
        ``run_variant(..., timed=[])`` appends (``gpus``, ``blocks``, ``groupings``,
        ``actions``, ``compute_s``, ``message_bytes``, ``global_sync_delay_s``, ``timeline``).

    Returns
    -------
    dict
        ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``.
    """
    events = []
    for pid, (label, timed) in enumerate(runs, start=1):
        gpus, timeline = timed["gpus"], timed["timeline"]
        groupings = timed.get("groupings") or {"block": timed["blocks"]}
        tiers = list((timeline.comm_time_by_tier_s or dict.fromkeys(TIERS)).keys())
        delay_s = timed.get("global_sync_delay_s") or 0.0
        events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "ts": 0.0,
                       "args": {"name": label}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "ts": 0.0,
                       "args": {"sort_index": pid}})
        overlap = timed.get("overlap")
        streams = overlap is not None and bool(timeline.bucket_log)   # a comm track per GPU
        for k, gpu in enumerate(gpus):
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": k + 1, "ts": 0.0,
                           "args": {"name": gpu}})
            events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": k + 1,
                           "ts": 0.0, "args": {"sort_index": 2 * k + 1 if streams else k + 1}})
            if streams:
                tid = len(gpus) + 1 + k
                events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                               "ts": 0.0, "args": {"name": f"{gpu} comm"}})
                events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                               "ts": 0.0, "args": {"sort_index": 2 * k + 2}})
        recorded = getattr(timeline, "spans", None)
        spans = recorded_spans(recorded) if recorded is not None else \
            gpu_spans(gpus, groupings, timed["actions"], timed["compute_s"], timeline.sync_log,
                      overlap, timeline.bucket_log)
        for span in spans:
            comm = span.get("track") == "comm"
            event = {"ph": "X", "name": span["name"], "cat": span["cat"], "pid": pid,
                     "tid": span["gpu"] + 1 + (len(gpus) if comm else 0), "ts": span["start_s"] * _US,
                     "dur": _duration_us(span["start_s"], span["end_s"]), "args": {"step": span["step"]}}
            if span["step"] is None:
                del event["args"]["step"]
            if comm:
                event["args"].update(group=span["group"],
                                     group_name=_group_name(span["group"], span["grouping"],
                                                            groupings, gpus))
                if "bucket" in span:
                    event["args"].update(bucket=span["bucket"], bytes=span["bytes"])
                else:
                    event["args"]["delay_s"] = float(delay_s)
            elif "grouping" in span:
                event["args"].update(group=span["group"],
                                     group_name=_group_name(span["group"], span["grouping"],
                                                            groupings, gpus,
                                                            timed.get("neighbours")),
                                     bytes=float(timed["message_bytes"]))
                if span["group"] == -1 and delay_s:
                    event["args"]["delay_s"] = float(delay_s)
            events.append(event)
        for time_s, *values in bytes_in_flight(timeline.in_flight or []):
            events.append({"ph": "C", "name": COUNTER_NAME, "pid": pid, "tid": 0,
                           "ts": time_s * _US, "args": dict(zip(tiers, values))})
        if getattr(timeline, "faults", None) is not None:
            events += _fault_events(pid, gpus, timeline.faults)
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "generator": "sgdsim run --trace",
            "time": "ts and dur are microseconds of simulated time",
            COUNTER_NAME: "bytes of transfers submitted and not yet finished, each counted "
                          "in full on every tier its route crosses",
        },
    }


def _fault_events(pid, gpus, report):
    """Instant events of a run's faults and recoveries, and the working-GPUs counter."""
    track = {gpu: k + 1 for k, gpu in enumerate(gpus)}
    events = []
    for entry in report.events:
        event = {"ph": "i", "name": entry["what"], "cat": "fault", "pid": pid,
                 "ts": entry["time_s"] * _US, "args": {"target": entry["target"]}}
        if entry["step"] is not None:
            event["args"]["step"] = entry["step"]
        if entry["target"] in track:
            event.update(tid=track[entry["target"]], s="t")
        else:
            event.update(tid=0, s="p")
        events.append(event)
    for time_s, n in report.workers:
        events.append({"ph": "C", "name": WORKERS_NAME, "pid": pid, "tid": 0,
                       "ts": time_s * _US, "args": {"gpus": n}})
    return events


def check_trace_path(path):
    """Raise InputError unless `path` can be written (checked before a long run)."""
    check_output(path, field="--trace", what="a trace")


def write_trace(path, document):
    """Write a trace document as JSON (one event per line), atomically.

    The file is written to a temporary name and renamed, so an interrupted write never
    leaves half a file.

    Raises
    ------
    InputError
        If the file cannot be written (:func:`simulator.utils.files.write_text_atomic`).
    """
    head = {key: value for key, value in document.items() if key != "traceEvents"}
    lines = [json.dumps(event, sort_keys=True, allow_nan=False) for event in document["traceEvents"]]
    text = ("{" + json.dumps(head, sort_keys=True, allow_nan=False)[1:-1] + ',\n"traceEvents": [\n'
            + ",\n".join(lines) + "\n]}\n")
    write_text_atomic(path, text, field="--trace")
