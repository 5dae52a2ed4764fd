"""The timeline's closed form (engine/timeline.py, _closed_form) against the SimPy events it
stands for: every field of the Timeline equal, bit for bit and type for type."""

import itertools

import numpy as np
import pytest

import simulator.engine.timeline as timeline
from simulator.cluster.generators import two_tier
from simulator.learning.schedules import Step

FIELDS = ("step_end_s", "simulated_time_s", "compute_time_s", "comm_time_s", "wait_time_s",
          "comm_bytes", "syncs", "comm_time_by_tier_s", "gpu_step_end_s", "sync_log")

SCHEDULES = {
    "minibatch": [Step(gradient="global")] * 9,
    "hierarchical": [None, "block", None, "global"] * 3,
    "gradient and average": [Step("block", None), Step(None, "global"), Step("block", "global")] * 3,
    "groups of 2": [Step(None, "groups_of_2"), None, Step("global", "groups_of_2")] * 3,
}


def run_both(monkeypatch, graph, actions, compute_s, **kw):
    gpus, blocks = timeline.cluster_gpus(graph)
    used = []
    closed_form = timeline._closed_form

    def spy(*args):
        used.append(closed_form(*args))
        return used[-1]

    monkeypatch.setattr(timeline, "_closed_form", spy)
    fast = timeline.simulate_timeline(graph, gpus, blocks, actions, compute_s, **kw)
    monkeypatch.setattr(timeline, "CLOSED_FORM", False)
    events = timeline.simulate_timeline(graph, gpus, blocks, actions, compute_s, **kw)
    monkeypatch.setattr(timeline, "CLOSED_FORM", True)
    return fast, events, used


def assert_same(fast, events):
    for name in FIELDS:
        a, b = getattr(fast, name), getattr(events, name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
        elif name == "sync_log":
            assert [tuple(map(type, e)) for e in a] == [tuple(map(type, e)) for e in b]
            assert a == b
        else:
            assert repr(a) == repr(b), name


@pytest.mark.parametrize("blocks, per_block, jitter, delay_s",
                         list(itertools.product((1, 2, 5), (1, 4), (0.0, 0.3), (0.0, 1e-3))))
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_closed_form_equals_the_events(monkeypatch, blocks, per_block, jitter, delay_s, schedule):
    graph = two_tier(blocks, per_block)
    gpus = timeline.cluster_gpus(graph)[0]
    if schedule == "groups of 2" and len(gpus) % 2:
        pytest.skip("groups of 2 need an even number of GPUs")
    compute_s = timeline.compute_times(graph, gpus, 9, flops_per_sample=1e6, batch_size=32,
                                       jitter=jitter, seed=3)
    fast, events, used = run_both(monkeypatch, graph, SCHEDULES[schedule], compute_s,
                                  message_bytes=1e6, global_sync_delay_s=delay_s,
                                  record_gpu_steps=True)
    assert used and used[0] is not None           # the closed form answered
    assert_same(fast, events)


def uneven(kind):
    """two_tier(3, 4) with its last block one GPU short, or one GPU's link 3x slower."""
    graph = two_tier(3, 4)
    if kind == "short":
        graph.remove_node(max(n for n in graph.nodes if str(n).startswith("gpu2_")))
    else:
        for u, v, data in graph.edges(data=True):
            if "gpu1_0" in (u, v):
                data["bandwidth"] /= 3
    return graph


@pytest.mark.parametrize("kind", ["short", "slow"])
@pytest.mark.parametrize("jitter", [0.0, 0.2])
def test_uneven_blocks_equal_the_events_and_ties_of_unequal_bytes_run_them(monkeypatch, kind,
                                                                          jitter):
    graph = uneven(kind)
    gpus = timeline.cluster_gpus(graph)[0]
    compute_s = timeline.compute_times(graph, gpus, 8, flops_per_sample=1e6, batch_size=32,
                                       jitter=jitter, seed=5)
    fast, events, used = run_both(monkeypatch, graph, [None, "block", None, "global"] * 2,
                                  compute_s, message_bytes=3e6)
    assert_same(fast, events)
    # Without jitter every block starts its sync at the same instant; a short block's
    # sync carries other bytes, and SimPy's order of adding them is its own: the events run.
    assert (used[0] is None) == (kind == "short" and jitter == 0.0)
