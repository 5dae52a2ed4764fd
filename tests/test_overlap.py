"""DDP's compute/communication overlap in the engine, against closed forms and a reference.

The reference (:func:`reference_timeline`) is written here from the rules of docs/engine.md
("Overlap: DDP's gradient buckets"), without the engine's code: buckets by PyTorch's
``compute_bucket_assignment_by_size`` loop over the gradients in ready order, ready times
from the layers' FLOPs, one stream per group, the step's end when backward and the last
bucket are done. All-reduce times are the closed form of a ring on a star under the
``ideal`` protocol: ``T(n) = 2(p-1) 2l + 2(p-1)/p n/b``.
"""

import json
import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from simulator.cluster.generators import two_tier
from simulator.engine.buckets import DEFAULT_BUCKET_CAP_BYTES, DEFAULT_FIRST_BUCKET_BYTES
from simulator.engine.overlap import FORWARD_SHARE, ddp_overlap
from simulator.engine.profiles import LayerCost, layer_costs
from simulator.engine.timeline import (
    cluster_gpus,
    cluster_groupings,
    compute_times,
    simulate_timeline,
)
from simulator.learning.schedules import Step
from simulator.network.collectives import run_groups
from simulator.experiments.runner import run_variant
from simulator.experiments.scenario import scenario_from_data
from simulator.experiments.sweep import plan_sweep
from simulator.experiments.sweep_runner import metric_columns
from simulator.outputs.plots import draw, series_for
from simulator.outputs.report import format_table
from simulator.outputs.trace import gpu_spans, trace_document
from simulator.utils.errors import InputError

P = 4                                    # GPUs, all under one switch
LAT = 1e-6                               # s per link


def star(bandwidth, latency=LAT):
    """P GPUs on one switch; the ideal protocol: all-reduces cost the wires alone."""
    graph = two_tier(1, P, intra_bandwidth=bandwidth, intra_latency=latency,
                     peak_flops=10e12, efficiency=0.5)
    graph.graph["collectives"] = {"protocol": "ideal"}
    return graph


def ring_s(nbytes, bandwidth, latency=LAT):
    """A ring all-reduce of `nbytes` over the star's P GPUs: 2(P-1) hops of two links."""
    return 2 * (P - 1) * 2 * latency + 2 * (P - 1) / P * nbytes / bandwidth


# Six layers, 300,000 parameters each (1.2 MB of fp32 gradients), forward FLOPs 1..6: with a
# 3 MiB cap the rebuilt buckets are {f}, {e, d, c}, {b, a} (the first closes at 1 MiB).
LAYERS = tuple(LayerCost(name, ((f"{name}.weight", 299_000), (f"{name}.bias", 1_000)), float(i + 1))
               for i, name in enumerate("abcdef"))
CAP = 3 * 2**20


def reference_buckets(layers, limits):
    """(ready fraction of the backward pass, bytes) per bucket, in reduction order."""
    flops = [2.0 * layer.forward_flops for layer in layers]
    total, done, ready = sum(flops), 0.0, []
    for layer, work in zip(reversed(layers), reversed(flops)):
        done += work
        for _, count in reversed(layer.tensors):
            ready.append((done / total, 4 * count))
    out, size, last, limit = [], 0, 0.0, 0
    for fraction, nbytes in ready:           # compute_bucket_assignment_by_size, one dtype
        size, last = size + nbytes, fraction
        if size >= limits[limit]:
            out.append((last, size))
            size, limit = 0, min(limit + 1, len(limits) - 1)
    if size:
        out.append((last, size))
    return out


def reference_timeline(compute, steady, first, cost_s, delay_s=0.0):
    """Per step and GPU, from the rules: ``(end_s, comm_s, overlapped_s, wait_s)``, the last
    three per-GPU means."""
    K, T = compute.shape
    clock = np.zeros(K)
    comm, hidden, wait = np.zeros(K), np.zeros(K), np.zeros(K)
    for t in range(T):
        forward = compute[:, t] / 3.0
        backward = compute[:, t] - forward
        start, end = clock + forward, clock + forward + backward
        spans, stream = [], -np.inf
        for fraction, nbytes in (first if t == 0 else steady):
            begin = max(float(np.max(start + fraction * backward)), stream)
            stream = begin + cost_s(nbytes)
            spans.append((begin, stream))
        if delay_s:
            spans.append((stream, stream + delay_s))
            stream += delay_s
        leave = np.maximum(end, stream)
        busy = sum(e - s for s, e in spans)
        inside = np.array([sum(max(0.0, min(e, end[k]) - max(s, start[k])) for s, e in spans)
                           for k in range(K)])
        comm += busy
        hidden += inside
        wait += (leave - end) - (busy - inside)
        clock = leave
    return float(clock.max()), float(comm.mean()), float(hidden.mean()), float(wait.mean())


def timeline(graph, compute, overlap, actions=None, delay_s=0.0):
    gpus, blocks = cluster_gpus(graph)
    steps = compute.shape[1]
    return simulate_timeline(graph, gpus, blocks, actions or ["gradient"] * steps, compute,
                             message_bytes=overlap.message_bytes, collective="ring",
                             global_sync_delay_s=delay_s, overlap=overlap)


def jittered(steps, seed=1):
    graph = star(25e9)
    gpus, _ = cluster_gpus(graph)
    return compute_times(graph, gpus, steps, flops_per_sample=2e8, batch_size=32, jitter=0.3,
                         seed=seed)                     # ~1.3 ms a step, +-30 %


# --------------------------------------------------------------------------- the rule
def test_buckets_follow_pytorchs_rule_first_one_bucket_then_the_rebuilt_ones():
    overlap = ddp_overlap(LAYERS, bucket_cap_bytes=CAP)
    expected = reference_buckets(LAYERS, [DEFAULT_FIRST_BUCKET_BYTES, CAP])
    assert [b.nbytes for b in overlap.buckets] == [n for _, n in expected]
    assert [b.ready_s for b in overlap.buckets] == pytest.approx([r for r, _ in expected], rel=1e-15)
    assert [b.tensors[0] for b in overlap.buckets] == ["f.bias", "e.bias", "b.bias"]
    assert [(b.ready_s, b.nbytes) for b in overlap.first_buckets] == [(1.0, 6 * 1_200_000)]
    # PyTorch's defaults: ResNet-50's classifier alone in the small first bucket.
    resnet = ddp_overlap(layer_costs("resnet50-imagenet"))
    assert resnet.bucket_cap_bytes == DEFAULT_BUCKET_CAP_BYTES == 25 * 2**20
    assert resnet.first_bucket_cap_bytes == DEFAULT_FIRST_BUCKET_BYTES == 2**20
    assert resnet.buckets[0].tensors == ("fc.bias", "fc.weight")
    assert FORWARD_SHARE == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- closed forms
def test_with_zero_network_cost_the_step_time_is_the_compute_time():
    graph = star(1e30, latency=0.0)
    compute = jittered(6)
    overlap = ddp_overlap(LAYERS, bucket_cap_bytes=CAP)
    tl = timeline(graph, compute, overlap)
    # every GPU leaves each step with the slowest member's backward pass
    assert tl.simulated_time_s == pytest.approx(compute.max(axis=0).sum(), rel=1e-12)
    assert tl.step_end_s == pytest.approx(np.cumsum(compute.max(axis=0)), rel=1e-12)
    assert tl.comm_time_s == pytest.approx(0.0, abs=1e-18)
    assert tl.wait_time_s == pytest.approx((compute.max(axis=0) - compute).sum(axis=1).mean(),
                                           rel=1e-9)
    assert len(tl.bucket_log) == 1 + 3 * 5           # one bucket first, then three a step


def test_with_an_infinitely_slow_network_the_step_is_compute_plus_the_serial_buckets():
    bandwidth = 1e6                                  # 1 MB/s: every bucket outlasts backward
    graph = star(bandwidth)
    c, steps = 2e-3, 5
    compute = np.full((P, steps), c)
    overlap = ddp_overlap(LAYERS, bucket_cap_bytes=CAP)
    tl = timeline(graph, compute, overlap)
    sizes = [b.nbytes for b in overlap.buckets]
    first = c + ring_s(overlap.message_bytes, bandwidth)       # one bucket, after backward
    later = c / 3 + overlap.buckets[0].ready_s * (2 * c / 3) + sum(ring_s(n, bandwidth) for n in sizes)
    assert tl.step_end_s[0] == pytest.approx(first, rel=1e-12)
    assert np.diff(tl.step_end_s) == pytest.approx([later] * (steps - 1), rel=1e-12)
    # the buckets run back to back from the first one's ready time
    log = [entry for entry in tl.bucket_log if entry[0] == 2]
    assert [entry[4] for entry in log] == sizes
    for previous, entry in zip(log, log[1:]):
        assert entry[5] == previous[6]
    assert log[0][5] == pytest.approx(tl.step_end_s[0] + c / 3 + overlap.buckets[0].ready_s * 2 * c / 3,
                                      rel=1e-12)


def test_the_overlap_matches_the_reference_step_by_step_with_stragglers_and_a_delay():
    graph = star(5e9)                      # buckets take 0.3-1 ms beside ~1.3 ms of compute
    compute = jittered(8, seed=4)
    overlap = ddp_overlap(LAYERS, bucket_cap_bytes=CAP)
    steady = reference_buckets(LAYERS, [DEFAULT_FIRST_BUCKET_BYTES, CAP])
    first = [(1.0, overlap.message_bytes)]
    tl = timeline(graph, compute, overlap, delay_s=1e-4)
    end, comm, hidden, wait = reference_timeline(compute, steady, first,
                                                 lambda n: ring_s(n, 5e9), delay_s=1e-4)
    assert tl.simulated_time_s == pytest.approx(end, rel=1e-12)
    assert tl.comm_time_s == pytest.approx(comm, rel=1e-12)
    assert tl.overlapped_comm_time_s == pytest.approx(hidden, rel=1e-12)
    assert tl.wait_time_s == pytest.approx(wait, rel=1e-9)
    assert 0 < tl.overlapped_comm_time_s < tl.comm_time_s
    # every GPU's time is compute + wait + comm - overlapped; all leave the last step at once
    assert tl.simulated_time_s == pytest.approx(
        tl.compute_time_s + tl.wait_time_s + tl.comm_time_s - tl.overlapped_comm_time_s, rel=1e-12)
    assert sum(tl.comm_time_by_tier_s.values()) == pytest.approx(tl.comm_time_s, rel=1e-12)


def test_overlap_hides_communication_and_changes_no_bytes():
    graph = star(5e9)
    compute = jittered(8, seed=4)
    overlap = ddp_overlap(LAYERS, bucket_cap_bytes=CAP)
    gpus, blocks = cluster_gpus(graph)
    plain = simulate_timeline(graph, gpus, blocks, ["gradient"] * 8, compute,
                              message_bytes=overlap.message_bytes, collective="ring")
    ddp = timeline(graph, compute, overlap)
    assert ddp.simulated_time_s < plain.simulated_time_s
    assert plain.overlapped_comm_time_s == 0.0 and plain.bucket_log is None
    for tier in plain.comm_bytes:
        assert ddp.comm_bytes[tier] == pytest.approx(plain.comm_bytes[tier], rel=1e-12)


def test_parameter_averages_do_not_overlap():
    graph = star(5e9)
    compute = jittered(6, seed=2)
    overlap = ddp_overlap(LAYERS, bucket_cap_bytes=CAP)
    gpus, blocks = cluster_gpus(graph)
    actions = [None, "global", None, "global", None, "global"]
    plain = simulate_timeline(graph, gpus, blocks, actions, compute,
                              message_bytes=overlap.message_bytes, collective="ring")
    ddp = timeline(graph, compute, overlap, actions=actions)
    assert ddp.simulated_time_s == plain.simulated_time_s and ddp.bucket_log == []


def test_block_gradient_syncs_overlap_and_stay_on_their_tier():
    graph = two_tier(2, 2, peak_flops=10e12, efficiency=0.5)
    gpus, blocks = cluster_gpus(graph)
    compute = compute_times(graph, gpus, 6, flops_per_sample=2e8, batch_size=32)
    overlap = ddp_overlap(LAYERS, bucket_cap_bytes=CAP)
    actions = [Step(gradient="block")] * 5 + [Step(gradient="block", average="global")]
    tl = simulate_timeline(graph, gpus, blocks, actions, compute,
                           message_bytes=overlap.message_bytes, collective="ring", overlap=overlap)
    assert tl.overlapped_comm_time_s > 0
    assert {entry[2] for entry in tl.bucket_log} == {0, 1}            # each block's stream
    intra, inter = tl.comm_time_by_tier_s["intra_block"], tl.comm_time_by_tier_s["inter_block"]
    assert intra + inter == pytest.approx(tl.comm_time_s, rel=1e-12)
    global_sync = [e for e in tl.sync_log if e[2] == -1]
    assert inter == pytest.approx(global_sync[0][4] - global_sync[0][3], rel=1e-12)


# --------------------------------------------------------------------------- runs, records, traces
def scenario(overlap="ddp", **timing):
    return scenario_from_data({
        "topology": {"name": "t1x4", "blocks": 1, "gpus_per_block": 4,
                     "gpu": {"peak_flops": "10 TFLOP/s", "efficiency": 0.5},
                     "intra_block": {"bandwidth": "5 GB/s", "latency": "1 us"},
                     "inter_block": {"bandwidth": "5 GB/s", "latency": "1 us"}},
        "workload": {"dataset": "digits", "model": "mlp", "hidden": [16], "batch_size": 16},
        "variants": [{"algorithm": "minibatch"}, {"algorithm": "minibatch", "overlap": "none"}],
        "target_accuracy": 0.5,
        "steps": 5,
        "seed": 0,
        "timing": {"cost_profile": "resnet50-imagenet", "jitter": 0.2, "overlap": overlap,
                   **timing},
    }, file="o.yaml")


def test_a_run_records_its_overlap_and_learns_the_same():
    spec = scenario(bucket_cap="10 MiB")
    assert [v.label for v in spec.variants] == ["minibatch", "minibatch no overlap"]
    ddp, plain = (run_variant(spec, v) for v in spec.variants)
    assert ddp["timing"]["overlap"] == "ddp" and "overlap" not in plain["timing"]
    assert ddp["timing"]["bucket_cap_bytes"] == 10 * 2**20
    assert sum(ddp["timing"]["bucket_bytes"]) == ddp["timing"]["message_bytes"] == 4 * 25_557_032
    assert "overlapped_comm_time_s" not in plain
    assert 0 < ddp["overlapped_comm_time_s"] < ddp["comm_time_s"]
    assert ddp["simulated_time_s"] < plain["simulated_time_s"]
    assert [p[1:] for p in ddp["curve"]] == [p[1:] for p in plain["curve"]]
    table = format_table([ddp, plain])
    assert "overlapped" in table.splitlines()[0]
    assert table.splitlines()[3].split()[-1] == "0/5"


def test_the_trace_shows_the_buckets_beside_the_backward_pass_and_adds_up():
    spec = scenario()
    timed = []
    record = run_variant(spec, spec.variants[0], timed=timed)
    [t] = timed
    tl = t["timeline"]
    spans = gpu_spans(t["gpus"], t["groupings"], t["actions"], t["compute_s"], tl.sync_log,
                      t["overlap"], tl.bucket_log)
    per_gpu_comm, per_gpu_hidden = np.zeros(P), np.zeros(P)
    for k in range(P):
        mine = [s for s in spans if s["gpu"] == k]
        backward = [(s["start_s"], s["end_s"]) for s in mine if s["name"] == "backward"]
        buckets = [(s["start_s"], s["end_s"]) for s in mine if s.get("track") == "comm"]
        per_gpu_comm[k] = sum(e - s for s, e in buckets)
        per_gpu_hidden[k] = sum(max(0.0, min(e, be) - max(s, bs)) for s, e in buckets
                                for bs, be in backward)
        main = [s for s in mine if s.get("track") != "comm"]
        for a, b in zip(main, main[1:]):              # the GPU's own track has no gaps
            assert b["start_s"] == a["end_s"]
        assert main[-1]["end_s"] == pytest.approx(record["simulated_time_s"], rel=1e-12)
    assert per_gpu_comm.mean() == pytest.approx(record["comm_time_s"], rel=1e-12)
    assert per_gpu_hidden.mean() == pytest.approx(record["overlapped_comm_time_s"], rel=1e-12)
    document = trace_document([(record["label"], t)])
    names = {e["args"]["name"] for e in document["traceEvents"] if e["name"] == "thread_name"}
    assert {"gpu0_0", "gpu0_0 comm"} <= names
    bucket_events = [e for e in document["traceEvents"] if e["name"].startswith("bucket ")]
    assert {e["tid"] for e in bucket_events} == {P + 1 + k for k in range(P)}
    json.dumps(document, allow_nan=False)


def test_overlap_is_deterministic():
    spec = scenario()
    a = json.dumps(run_variant(spec, spec.variants[0]), sort_keys=True)
    b = json.dumps(run_variant(spec, spec.variants[0]), sort_keys=True)
    assert a == b


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("timing, field, message", [
    ({"bucket_cap": "25"}, "timing.bucket_cap", "is not a size"),
    ({"bucket_cap": "0 MiB"}, "timing.bucket_cap", "must be from 1 B"),
    ({"first_bucket_cap": "1 GHz"}, "timing.first_bucket_cap", ""),
])
def test_bad_bucket_limits_name_the_line(timing, field, message):
    with pytest.raises(InputError) as info:
        scenario(**timing)
    assert info.value.field == field and info.value.file == "o.yaml"
    assert message in info.value.message


def test_bucket_limits_without_overlap_are_an_error_not_ignored():
    with pytest.raises(InputError) as info:
        scenario_from_data({**_minimal(), "timing": {"bucket_cap": "10 MiB"}}, file="o.yaml")
    assert info.value.field == "timing.bucket_cap" and "no variant overlaps" in info.value.message


def _minimal():
    return {"topology": "seed_8x2", "variants": [{"algorithm": "minibatch"}],
            "target_accuracy": 0.5, "steps": 2}


def test_the_command_line_overlaps_every_variant(run_cli, tmp_path):
    out = tmp_path / "r.json"
    trace = tmp_path / "t.json"
    result = run_cli("run", "--algorithm", "minibatch", "--steps", "3", "--cost-profile",
                     "resnet50-imagenet", "--overlap", "ddp", "--bucket-cap", "10MiB", "-q",
                     "-o", out, "--trace", trace)
    assert result.exit_code == 0, result.output
    assert "overlapped" in result.output
    [record] = json.loads(out.read_text())["runs"]
    assert record["timing"]["bucket_cap_bytes"] == 10 * 2**20
    assert any(e["name"] == "backward" for e in json.loads(trace.read_text())["traceEvents"])


@pytest.mark.parametrize("args, expected", [
    (["--bucket-cap", "10MiB"], "error: --bucket-cap: --bucket-cap applies with DDP overlap"),
    (["--overlap", "ddp", "--bucket-cap", "10"], "error: --bucket-cap: '10' has no unit"),
])
def test_bad_overlap_options_are_one_line(run_cli, args, expected):
    result = run_cli("run", "--algorithm", "minibatch", "--steps", "2", "-q", *args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(expected), result.output


def test_the_comm_plot_shows_the_overlapped_part(tmp_path):
    spec = scenario()
    records = [run_variant(spec, v) for v in spec.variants]
    series = series_for("comm", records)
    assert series["overlapped_s"] == [records[0]["overlapped_comm_time_s"], 0.0]
    for c, m, w, o, total in zip(series["compute_s"], series["comm_s"], series["wait_s"],
                                 series["overlapped_s"], series["simulated_time_s"]):
        assert c + w + m - o == pytest.approx(total, rel=1e-9)      # all leave the last step at once
    assert draw("comm", series, tmp_path / "c.png") and (tmp_path / "c.png").stat().st_size > 0


def test_the_worked_example_of_the_engine_page_prints_what_it_shows(run_cli):
    text = (Path(__file__).resolve().parent.parent / "docs" / "engine.md").read_text()
    block = re.search(r"```console\n\$ sgdsim run ddp_overlap -q\n(.*?)```", text, re.S).group(1)
    result = run_cli("run", "ddp_overlap", "-q")
    assert result.exit_code == 0
    assert [l.rstrip() for l in result.output.splitlines()] == \
        [l.rstrip() for l in block.splitlines()]


def test_a_sweep_over_bucket_caps_has_the_overlapped_column():
    data = {**_minimal(), "timing": {"overlap": "ddp"},
            "sweep": {"grid": {"timing.bucket_cap": ["5 MiB", "50 MiB"]}}}
    plan = plan_sweep(data, file="s.yaml")
    assert plan.overlap and len(plan.runs) == 2
    assert not plan_sweep({**_minimal(), "sweep": {"grid": {"steps": [2, 3]}}}, file="s.yaml").overlap
    columns = metric_columns(plan.tiers, plan.levels, plan.overlap)
    assert columns[columns.index("wait_time_s") + 1] == "overlapped_comm_time_s"
    assert "overlapped_comm_time_s" not in metric_columns()


def test_buckets_of_groups_that_share_links_contend_on_the_shared_network():
    # A ring of 4 GPUs, blocks {g0, g2} and {g1, g3}: each block's route crosses the other's
    # links (as in test_engine), so both blocks' buckets run at once on one network.
    import networkx as nx
    from simulator.network.collectives import run_groups

    g = nx.cycle_graph([f"g{i}" for i in range(4)])
    for i, n in enumerate(g):
        g.nodes[n].update(kind="gpu", block=f"b{i % 2}", peak_flops=1e12, efficiency=1.0)
    for e in g.edges:
        g.edges[e].update(bandwidth=1e6, latency=0.0, tier="inter_block")   # slow: buckets dominate
    gpus, blocks = cluster_gpus(g)
    c, steps = 1e-3, 3
    overlap = ddp_overlap(LAYERS, bucket_cap_bytes=CAP)
    tl = simulate_timeline(g, gpus, blocks, [Step(gradient="block")] * steps, np.full((4, steps), c),
                           message_bytes=overlap.message_bytes, collective="ring", overlap=overlap)
    groups = [[gpus[i] for i in b] for b in blocks]
    together = {n: run_groups(g, groups, n)[0] for n in
                [overlap.message_bytes] + [b.nbytes for b in overlap.buckets]}
    alone = run_groups(g, groups[:1], overlap.message_bytes)[0]
    assert together[overlap.message_bytes] > alone                  # they do contend
    first = c + together[overlap.message_bytes]
    later = c / 3 + overlap.buckets[0].ready_s * 2 * c / 3 + sum(together[b.nbytes] for b in overlap.buckets)
    assert tl.step_end_s[0] == pytest.approx(first, rel=1e-9)
    assert np.diff(tl.step_end_s) == pytest.approx([later] * (steps - 1), rel=1e-9)


# --------------------------------------------------------------------------- main's schedules
def test_a_step_source_with_overlap_times_what_the_list_does_and_is_asked_in_order():
    from test_coupled import ListSource

    graph = two_tier(4, 2, peak_flops=10e12, efficiency=0.5)
    gpus, blocks = cluster_gpus(graph)
    groupings = cluster_groupings(graph, gpus)
    # no gradients at step 1: the first gradient sync (step 2) is DDP's one bucket
    steps = [Step()] + [Step(gradient="block", average="global" if t % 3 == 0 else None)
                        for t in range(2, 11)] + [Step(gradient="global")] * 2
    compute = compute_times(graph, gpus, len(steps), flops_per_sample=2e8, batch_size=32,
                            jitter=0.2, slow_gpus={"gpu1_1": 1.5}, seed=4)
    overlap = ddp_overlap(LAYERS, bucket_cap_bytes=CAP)
    kw = dict(message_bytes=overlap.message_bytes, overlap=overlap, record_gpu_steps=True)
    fixed = simulate_timeline(graph, gpus, groupings, steps, compute, **kw)
    source = ListSource(steps, ("block", "global"))
    lazy = simulate_timeline(graph, gpus, groupings, source, compute, **kw)
    for field in ("simulated_time_s", "comm_time_s", "wait_time_s", "overlapped_comm_time_s",
                  "sync_log", "bucket_log", "comm_time_by_tier_s", "comm_bytes"):
        assert getattr(lazy, field) == getattr(fixed, field), field
    assert (lazy.gpu_step_end_s == fixed.gpu_step_end_s).all()
    assert source.asked == list(range(len(steps)))                  # once each, in order
    per_step = {}
    for step, _, group, index, nbytes, *_ in fixed.bucket_log:
        per_step.setdefault((step, group), []).append(nbytes)
    assert per_step[(2, 0)] == [overlap.message_bytes]
    assert per_step[(3, 0)] == [b.nbytes for b in overlap.buckets]
    assert per_step[(11, -1)] == [b.nbytes for b in overlap.buckets]
    assert 0 < fixed.overlapped_comm_time_s < fixed.comm_time_s


def test_adacomm_on_replicas_overlaps_its_block_gradients_and_decides_by_its_losses():
    from test_coupled import coupled_pass
    from test_schedule_reductions import runs

    variant = {"algorithm": "adacomm", "H": 8, "replica": "block"}
    [record] = runs(variant, timing={"cost_profile": "resnet20-cifar10", "jitter": 0.05,
                                     "overlap": "ddp", "bucket_cap": "64 KiB"})
    _, schedule, _, timeline, _ = coupled_pass(variant)                 # without overlap
    assert record["rounds"] == schedule.periods[:len(record["rounds"])]  # the losses decide
    assert 0 < record["overlapped_comm_time_s"] < record["comm_time_s"]
    assert record["simulated_time_s"] < timeline.simulated_time_s
    assert record["syncs"]["block"] == 24


@pytest.mark.parametrize("where, expected", [
    ("variant", "variants[1].overlap: overlap does not apply to gossip"),
    ("timing", "timing.overlap: overlap ddp overlaps gradient all-reduces, and gossip has none"),
])
def test_gossip_refuses_overlap_in_one_line(where, expected):
    data = {**_minimal(), "variants": [{"algorithm": "minibatch"}, {"algorithm": "gossip", "H": 4}]}
    if where == "variant":
        data["variants"][1]["overlap"] = "ddp"
    else:
        data["variants"] = data["variants"][1:]
        data["timing"] = {"overlap": "ddp"}
        expected = expected.replace("variants[1]", "variants[0]")
    with pytest.raises(InputError) as info:
        scenario_from_data(data, file="o.yaml")
    assert f"{info.value.field}: {info.value.message}" == expected
