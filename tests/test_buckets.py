"""Per-layer costs add up to the profiles, and DDP's bucket rule against a reference loop."""

import numpy as np
import pytest

from simulator.engine.buckets import (
    DEFAULT_BUCKET_CAP_BYTES,
    DEFAULT_FIRST_BUCKET_BYTES,
    ddp_buckets,
    overlapped_step_s,
)
from simulator.engine.profiles import PROFILES, LayerCost, layer_costs
from simulator.learning.workload import make_model
from simulator.utils.errors import InputError


@pytest.mark.parametrize("name", ["resnet20-cifar10", "resnet50-imagenet", "gpt2-small"])
def test_layers_add_up_to_the_profile(name):
    profile = PROFILES[name]
    layers = layer_costs(name)
    assert sum(l.params for l in layers) == profile.params
    training = 3 * sum(l.forward_flops for l in layers)
    if name == "resnet50-imagenet":     # the profile rounds 4.089 G multiply-adds to 4.1 G
        assert training == 6 * 4_089_184_256
        assert training == pytest.approx(profile.flops_per_sample, rel=0.003)
    else:
        assert training == pytest.approx(profile.flops_per_sample, rel=1e-12)


def test_gpt2_layers_match_the_transformer_formula():
    d, vocab, ctx = 768, 50257, 1024
    layers = layer_costs("gpt2-small")
    per_block = sum(l.params for l in layers if l.name.startswith("h.0."))
    assert per_block == 12 * d * d + 13 * d
    assert sum(l.params for l in layers) == vocab * d + ctx * d + 12 * per_block + 2 * d


def test_resnet50_stages():
    layers = layer_costs("resnet50-imagenet")
    assert len([l for l in layers if l.name.endswith("conv2")]) == 3 + 4 + 6 + 3
    assert [l.name for l in layers if "downsample" in l.name] == \
        [f"layer{s}.0.downsample.0" for s in (1, 2, 3, 4)]


def test_the_numpy_model_has_its_own_layers():
    model = make_model("mlp", 64, 10, hidden=(32, 16))
    layers = layer_costs("model", model)
    assert [l.params for l in layers] == [64 * 32 + 32, 32 * 16 + 16, 16 * 10 + 10]
    assert sum(l.params for l in layers) == model.num_params
    assert 3 * sum(l.forward_flops for l in layers) == model.flops_per_sample
    with pytest.raises(InputError):
        layer_costs("model")


def reference_buckets(tensors, limits):
    """PyTorch's compute_bucket_assignment_by_size loop, for one dtype, written out."""
    result, bucket, size, it = [], [], 0, 0
    for name, nbytes in tensors:
        bucket.append(name)
        size += nbytes
        if size >= limits[it]:
            result.append(bucket)
            bucket, size = [], 0
            it = min(it + 1, len(limits) - 1)
    if bucket:
        result.append(bucket)
    return result


@pytest.mark.parametrize("seed", range(5))
def test_buckets_follow_pytorchs_rule_in_reverse_layer_order(seed):
    rng = np.random.default_rng(seed)
    layers = [LayerCost(f"l{i}", tuple((f"l{i}.t{j}", int(rng.integers(1, 3_000_000)))
                                       for j in range(int(rng.integers(1, 4)))),
                        float(rng.uniform(1, 10)))
              for i in range(40)]
    ready_order = [(name, 4 * n) for layer in reversed(layers) for name, n in reversed(layer.tensors)]
    expected = reference_buckets(ready_order, [DEFAULT_FIRST_BUCKET_BYTES, DEFAULT_BUCKET_CAP_BYTES])
    buckets = ddp_buckets(layers, 1.0)
    assert [list(b.tensors) for b in buckets] == expected
    sizes = dict(ready_order)
    for b in buckets[:-1]:
        limit = DEFAULT_FIRST_BUCKET_BYTES if b.index == 0 else DEFAULT_BUCKET_CAP_BYTES
        assert b.nbytes >= limit > b.nbytes - sizes[b.tensors[-1]]
    assert buckets[0].tensors[0] == layers[-1].tensors[-1][0]    # the last layer goes first
    assert sum(b.nbytes for b in buckets) == 4 * sum(l.params for l in layers)


def test_ready_times_share_the_backward_pass_by_flops():
    layers = [LayerCost("a", (("a", 2**20),), 3.0), LayerCost("b", (("b", 2**20),), 1.0)]
    buckets = ddp_buckets(layers, 8.0, first_bucket_bytes=1, bucket_cap_bytes=1)
    # Backward goes b (1/4 of the FLOPs: 2 s) then a (6 s): b ready at 2 s, a at 8 s.
    assert [(b.tensors, b.ready_s) for b in buckets] == [(("b",), 2.0), (("a",), 8.0)]
    resnet = ddp_buckets(layer_costs("resnet50-imagenet"), 0.1)
    assert [b.ready_s for b in resnet] == sorted(b.ready_s for b in resnet)
    assert resnet[-1].ready_s == pytest.approx(0.1, rel=1e-12)
    assert resnet[0].nbytes >= DEFAULT_FIRST_BUCKET_BYTES and resnet[0].nbytes < 25 * 2**20


def test_overlap_with_a_free_network_ends_with_the_backward_pass():
    buckets = ddp_buckets(layer_costs("resnet50-imagenet"), 0.2)
    end, spans = overlapped_step_s(buckets, lambda nbytes: 0.0, 0.2)
    assert end == 0.2 and all(a == b for a, b in spans)


def test_overlap_with_a_slow_network_is_the_serialised_all_reduces_after_their_ready_times():
    buckets = ddp_buckets(layer_costs("gpt2-small"), 0.3)
    per_byte = 1e-6                                   # 1 MB/s: every all-reduce outlasts backward
    end, spans = overlapped_step_s(buckets, lambda nbytes: nbytes * per_byte, 0.3, start_s=5.0)
    expected = 5.0 + buckets[0].ready_s + sum(b.nbytes for b in buckets) * per_byte
    assert end == pytest.approx(expected, rel=1e-12)
    for (s0, e0), (s1, _) in zip(spans, spans[1:]):
        assert s1 == e0                               # one stream: back to back
    assert spans[0][0] == 5.0 + buckets[0].ready_s


@pytest.mark.parametrize("kwargs, field", [(dict(backward_s=-1.0), "backward_s"),
                                           (dict(bucket_cap_bytes=0), "bucket_cap_bytes")])
def test_bad_bucket_arguments(kwargs, field):
    args = {"backward_s": 1.0, **kwargs}
    with pytest.raises(InputError) as info:
        ddp_buckets(layer_costs("resnet20-cifar10"), args.pop("backward_s"), **args)
    assert info.value.field == field
