"""Cost profiles: the published numbers, an independent count of ResNet-20, the numpy model's
own numbers, and unknown names."""

import numpy as np
import pytest

from simulator.engine.profiles import (
    PROFILES,
    CostProfile,
    get_profile,
    resnet20_cifar_counts,
    timing_costs,
)
from simulator.learning.workload import make_model
from simulator.utils.errors import InputError


def resnet20_closed_form():
    """ResNet-20 counts written as sums over stages (independent of the profile's loop).

    Stage s (s = 0, 1, 2) has c = 16 * 2**s channels on an n x n map, n = 32 / 2**s, and 6
    3x3 convolutions; the first of stages 1 and 2 reads c / 2 channels.
    """
    params = 3 * 9 * 16 + 2 * 16                                 # first conv + its BN
    macs = 3 * 9 * 16 * 32 * 32
    for s in range(3):
        c, n = 16 * 2 ** s, 32 // 2 ** s
        c_first = c if s == 0 else c // 2
        weights = 9 * c_first * c + 5 * 9 * c * c                # 6 convs, no bias
        params += weights + 6 * 2 * c                            # + BN gamma and beta
        macs += weights * n * n
    params += 64 * 10 + 10
    macs += 64 * 10
    return params, macs


def test_resnet20_counts_match_an_independent_count_and_the_paper():
    params, macs = resnet20_cifar_counts()
    assert (params, macs) == resnet20_closed_form() == (269_722, 40_551_040)
    assert round(params / 1e6, 2) == 0.27              # He et al. 2016, Table 6
    assert round(macs / 1e6) == 41                     # "~41 M multiply-adds"


def test_profile_numbers():
    r20 = PROFILES["resnet20-cifar10"]
    assert (r20.params, r20.bytes_per_param, r20.flops_per_sample) == \
        (269_722, 4, 3 * 2 * 40_551_040)
    assert r20.message_bytes == 4 * 269_722
    r50 = PROFILES["resnet50-imagenet"]
    assert (r50.params, r50.bytes_per_param) == (25_557_032, 4)
    assert r50.flops_per_sample == pytest.approx(3 * 2 * 4.1e9)
    gpt = PROFILES["gpt2-small"]
    assert (gpt.params, gpt.bytes_per_param) == (124_439_808, 4)
    assert gpt.flops_per_sample == pytest.approx(6 * 124_439_808 * 1024)
    assert PROFILES["model"] == CostProfile("model", None, None, None, PROFILES["model"].source)
    for name, profile in PROFILES.items():
        assert profile.name == name and profile.source


def test_gpt2_small_parameter_count():
    """124,439,808 = token + position embeddings + 12 blocks + final layer norm (tied head)."""
    d, vocab, ctx, layers = 768, 50_257, 1024, 12
    block = (2 * 2 * d                       # two layer norms
             + d * 3 * d + 3 * d             # attention qkv
             + d * d + d                     # attention output
             + d * 4 * d + 4 * d             # MLP up
             + 4 * d * d + d)                # MLP down
    assert vocab * d + ctx * d + layers * block + 2 * d == PROFILES["gpt2-small"].params


def test_timing_costs_of_the_numpy_model():
    model = make_model("mlp", 64, 10, hidden=(64,))
    costs = timing_costs("model", model)
    # (64 + 1) * 64 + (64 + 1) * 10 = 4810 parameters, sent as fp32 (docs/semantics.md,
    # "Compute model") although the replay computes in float64.
    assert (costs["message_bytes"], costs["flops_per_sample"], costs["profile"]) == \
        (4810 * 4, model.flops_per_sample, "model") == (19_240, 28_416, "model")
    assert "4810 parameters x 4 bytes (fp32)" in costs["source"]
    single = timing_costs("model", make_model("mlp", 64, 10, hidden=(64,), dtype=np.float32))
    assert single["message_bytes"] == 19_240


def test_timing_costs_of_a_profile_ignore_the_model():
    model = make_model("softmax", 40, 10)
    costs = timing_costs("resnet50-imagenet", model)
    assert costs == {"message_bytes": 102_228_128, "flops_per_sample": 24.6e9,
                     "profile": "resnet50-imagenet",
                     "source": PROFILES["resnet50-imagenet"].source}
    assert "He et al. 2016" in costs["source"]


@pytest.mark.parametrize("name, hint", [
    ("resnet50-imagnet", "did you mean 'resnet50-imagenet'?"),
    ("gpt2", "did you mean 'gpt2-small'?"),
    ("Model", "did you mean 'model'?"),
])
def test_unknown_profile_did_you_mean(name, hint):
    with pytest.raises(InputError) as info:
        timing_costs(name, make_model("softmax", 4, 2))
    err = info.value
    assert err.field == "cost_profile"
    assert str(err) == (f"cost_profile: unknown cost profile {name!r} ({hint} choose from: "
                        "model, resnet20-cifar10, resnet50-imagenet, gpt2-small)")


def test_unknown_profile_without_a_close_name():
    with pytest.raises(InputError) as info:
        get_profile("vgg16")
    assert info.value.fix == "choose from: model, resnet20-cifar10, resnet50-imagenet, gpt2-small"
