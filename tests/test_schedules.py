"""Schedules in both conventions: PyTorch's averaging steps exactly, the paper's closed forms."""

from types import SimpleNamespace

import pytest

from simulator.experiments.scenario import scenario_from_data
from simulator.learning.schedules import (
    Step,
    count_syncs,
    hierarchical,
    local,
    postlocal,
    resolve_group_sizes,
    schedule_for,
)
from simulator.utils.errors import InputError


def averaged(action, steps, grouping=None):
    """Steps (1-based) after which parameters are averaged (over `grouping` if given)."""
    return [t for t in range(1, steps + 1) if action(t).average is not None
            and (grouping is None or action(t).average == grouping)]


# --------------------------------------------------------------------------- PyTorch, fixed
# torch 2.x, run for real on gloo (the measurements): the steps after which
# averagers average, with steps counted from 1.

def test_pytorch_periodic_averager_without_warmup():
    assert averaged(local(4, convention="pytorch"), 15) == [1, 5, 9, 13]


def test_pytorch_periodic_averager_with_warmup_10():
    action = local(4, convention="pytorch", warmup_steps=10)
    assert averaged(action, 25) == [11, 15, 19, 23]
    assert all(action(t) == Step(gradient="global") for t in range(1, 11))  # mini-batch first


def test_pytorch_hierarchical_averager_three_levels_with_warmup_10():
    # HierarchicalModelAverager({2: 2, 4: 4, 8: 8}, warmup_steps=10) on 8 processes, here
    # 4 nodes of 2 GPUs: groups of 2 are the nodes, groups of 4 consecutive ranks, all 8.
    periods = resolve_group_sizes([(2, 2), (4, 4), (8, 8)], level_sizes={"block": 2}, workers=8)
    assert periods == (("block", 2), ("groups_of_4", 4), ("global", 8))
    action = hierarchical(periods=periods, convention="pytorch", warmup_steps=10)
    assert averaged(action, 26, "block") == [11, 15, 19, 23]
    assert averaged(action, 26, "groups_of_4") == [13, 21]
    assert averaged(action, 26, "global") == [17, 25]
    assert all(action(t) == Step(gradient="global") for t in range(1, 11))


def test_pytorch_post_local_sgd_keeps_the_intra_block_gradient_allreduce():
    action = postlocal(4, 10, convention="pytorch")
    assert averaged(action, 25) == [11, 15, 19, 23]
    assert [action(t) for t in (10, 11, 12)] == [
        Step(gradient="global"), Step(gradient="block", average="global"), Step(gradient="block")]
    off = postlocal(4, 10, convention="pytorch", block_gradients=False)
    assert averaged(off, 25) == [11, 15, 19, 23] and off(12) == Step()


# --------------------------------------------------------------------------- PyTorch, reference
class PeriodicModelAverager:
    """torch.distributed.algorithms.model_averaging.averagers.PeriodicModelAverager's step
    logic, written out here: ``step`` starts at 0 and grows after every call."""

    def __init__(self, period, warmup_steps=0):
        self.period, self.warmup_steps, self.step = period, warmup_steps, 0

    def average_parameters(self):
        hit = self.step >= self.warmup_steps and (self.step - self.warmup_steps) % self.period == 0
        self.step += 1
        return hit


class HierarchicalModelAverager:
    """HierarchicalModelAverager's: after the warm-up, the group of the largest period
    dividing ``step``."""

    def __init__(self, period_group_size, warmup_steps=0):
        self.periods = list(period_group_size)
        self.sizes = dict(period_group_size)
        self.warmup_steps, self.step = warmup_steps, 0

    def average_parameters(self):
        size = None
        if self.step >= self.warmup_steps:
            for period in reversed(self.periods):
                if self.step % period == 0:
                    size = self.sizes[period]
                    break
        self.step += 1
        return size


@pytest.mark.parametrize("H", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("W", [0, 1, 5, 10])
def test_periodic_averaging_matches_the_reference_step_for_step(H, W):
    reference = PeriodicModelAverager(H, W)
    expected = [t for t in range(1, 60) if reference.average_parameters()]
    assert averaged(local(H, convention="pytorch", warmup_steps=W), 59) == expected
    if W:
        assert averaged(postlocal(H, W, convention="pytorch"), 59) == expected


@pytest.mark.parametrize("sizes", [{2: 2, 4: 4, 8: 8}, {3: 2, 8: 8}, {1: 4, 6: 8}])
@pytest.mark.parametrize("W", [0, 7, 10])
def test_hierarchical_averaging_matches_the_reference_step_for_step(sizes, W):
    reference = HierarchicalModelAverager(sizes, W)
    expected = [reference.average_parameters() for _ in range(60)]
    periods = resolve_group_sizes(list(sizes.items()), level_sizes={"block": 2}, workers=8)
    name_of = {size: name for (name, _), size in zip(periods, sizes.values())}
    action = hierarchical(periods=periods, convention="pytorch", warmup_steps=W)
    got = [action(t).average for t in range(1, 61)]
    assert got == [None if size is None else name_of[size] for size in expected]


# --------------------------------------------------------------------------- the paper
@pytest.mark.parametrize("T", [1, 9, 24, 25, 37])
def test_paper_convention_closed_forms(T):
    H, Hb, S = 3, 2, 5
    assert averaged(local(H), T) == [t for t in range(H, T + 1, H)]
    post = postlocal(H, S)
    assert averaged(post, T) == list(range(S + H, T + 1, H))          # every period has H steps
    assert count_syncs(post, T)["global"] == max(0, (T - S) // H)
    assert count_syncs(post, T)["gradient"] == min(T, S)
    counts = count_syncs(hierarchical(H, Hb), T)
    assert counts == {"gradient": 0, "global": T // (H * Hb),
                      "block": T // H - T // (H * Hb)}
    three = hierarchical(periods=[("node", 2), ("rack", 4), ("site", 8), ("global", 16)])
    counts = count_syncs(three, T)
    assert counts["global"] == T // 16
    assert counts.get("site", 0) == T // 8 - T // 16
    assert counts.get("rack", 0) == T // 4 - T // 8
    assert counts.get("node", 0) == T // 2 - T // 4


def test_post_local_sgd_counts_h_from_the_switch():
    # H = 4 after 10 mini-batch steps: the paper's rule gives every local period 4 steps.
    assert averaged(postlocal(4, 10), 24) == [14, 18, 22]


def test_both_conventions_agree_where_they_must():
    for make in (lambda c: local(1, convention=c),
                 lambda c: postlocal(1, 6, convention=c, block_gradients=False),
                 lambda c: hierarchical(1, 1, convention=c)):
        assert [make("paper")(t) for t in range(1, 30)] == [make("pytorch")(t) for t in range(1, 30)]
    # and mini-batch SGD has no convention
    mini = schedule_for(SimpleNamespace(algorithm="minibatch", H=1))
    assert {mini(t) for t in range(1, 9)} == {Step(gradient="global")}


def test_pytorch_only_settings_are_refused_in_the_paper_convention():
    with pytest.raises(InputError, match="warmup_steps"):
        local(4, warmup_steps=3)
    with pytest.raises(InputError, match="post_local_gradient_allreduce"):
        postlocal(4, 3, block_gradients=True)


@pytest.mark.parametrize("pairs, message", [
    ([(2, 2), (2, 4), (8, 8)], "periods must increase"),
    ([(2, 4), (4, 2), (8, 8)], "group sizes must increase"),
    ([(2, 2), (4, 4)], "the last group size must be every GPU (8)"),
    ([(2, 3), (8, 8)], "must divide the 8 GPUs"),
])
def test_bad_pytorch_levels_are_input_errors(pairs, message):
    with pytest.raises(InputError) as err:
        resolve_group_sizes(pairs, level_sizes={"block": 2}, workers=8)
    assert message in err.value.message


# --------------------------------------------------------------------------- in a scenario
GPU = {"peak_flops": "10 TFLOP/s", "efficiency": 0.5}
LINK = {"bandwidth": "10 GB/s", "latency": "1 us"}


def scenario(variants, topology=None, **top):
    topology = topology or {"blocks": 4, "gpus_per_block": 2, "gpu": GPU, "intra_block": LINK,
                            "inter_block": LINK}
    return scenario_from_data({"topology": topology, "variants": variants,
                               "target_accuracy": 0.5, "steps": 30, **top}, file="s.yaml")


NESTED = {"blocks": 4, "gpus_per_block": 2, "block_level": "node", "gpu": GPU,
          "intra_block": LINK, "inter_block": LINK,
          "levels": [{"name": "rack", "size": 2, "uplink": LINK}]}


def test_a_scenario_gives_levels_as_pytorch_does_or_by_name():
    s = scenario([{"algorithm": "hierarchical", "period_group_size": {2: 2, 4: 4, 8: 8},
                   "warmup_steps": 10}], convention="pytorch")
    [v] = s.variants
    assert v.periods == (("block", 2), ("groups_of_4", 4), ("global", 8))
    assert v.convention == "pytorch" and v.warmup_steps == 10
    assert v.label == "hierarchical 2:2 4:4 8:8 pytorch warmup 10"
    nested = scenario([{"algorithm": "hierarchical", "period_group_size": {2: 2, 4: 4, 8: 8}},
                       {"algorithm": "hierarchical", "periods": {"node": 2, "rack": 4, "global": 8}}],
                      topology=NESTED)
    assert [v.periods for v in nested.variants] == [(("node", 2), ("rack", 4), ("global", 8))] * 2
    assert nested.variants[1].label == "hierarchical node=2 rack=4 global=8"


def test_a_variant_may_choose_its_own_convention():
    s = scenario([{"algorithm": "local", "H": 4},
                  {"algorithm": "local", "H": 4, "convention": "pytorch"}])
    assert [(v.label, v.convention) for v in s.variants] == [
        ("local H=4", "paper"), ("local H=4 pytorch", "pytorch")]
    over = scenario_from_data({"topology": NESTED, "variants": [{"algorithm": "local", "H": 4}],
                               "target_accuracy": 0.5, "steps": 30},
                              overrides={"convention": "pytorch"})
    assert over.variants[0].convention == "pytorch"


@pytest.mark.parametrize("variant, top, field, message", [
    ({"algorithm": "local", "H": 4, "warmup_steps": 3}, {}, "variants[0].warmup_steps",
     "a setting of the pytorch convention"),
    ({"algorithm": "hierarchical", "periods": {"rack": 4, "global": 8}}, {},
     "variants[0].periods", "'rack' is not a level of the topology"),
    ({"algorithm": "hierarchical", "periods": {"block": 4, "global": 2}}, {},
     "variants[0].periods", "periods must grow outward"),
    ({"algorithm": "hierarchical", "periods": {"block": 4}}, {}, "variants[0].periods",
     "must end with global"),
    ({"algorithm": "hierarchical", "H": 2, "periods": {"block": 2, "global": 4}}, {},
     "variants[0].H", "periods and H are both given"),
    ({"algorithm": "hierarchical", "period_group_size": {2: 2, 4: 4}}, {},
     "variants[0].period_group_size", "the last group size must be every GPU (8)"),
    ({"algorithm": "minibatch", "warmup_steps": 3}, {"convention": "pytorch"},
     "variants[0].warmup_steps", "warmup_steps does not apply to minibatch"),
])
def test_bad_levels_in_a_scenario_are_located(variant, top, field, message):
    with pytest.raises(InputError) as err:
        scenario([variant], **top)
    assert err.value.field == field and message in err.value.message, str(err.value)
