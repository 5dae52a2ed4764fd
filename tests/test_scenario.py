"""Scenarios: the built-in default, the shipped files, every validation error (one line
naming file, line, field and fix), the command-line overrides, switch_epoch resolution and
inline / path topologies."""

import glob
import os
from dataclasses import fields
from pathlib import Path

import jsonschema
import networkx as nx
import numpy as np
import pytest

from simulator.cluster.topology import gpu_blocks, gpu_nodes, load_topology
from simulator.experiments.scenario import (
    DEFAULT_SOURCE,
    OVERRIDE_OPTIONS,
    Scenario,
    TimingSpec,
    Variant,
    WorkloadSpec,
    load_scenario,
    scenario_from_data,
    steps_per_epoch,
)
from simulator.utils.errors import InputError
from simulator.utils.yamlfile import load_schema

ROOT = Path(__file__).resolve().parent.parent

# 2 blocks x 2 GPUs: K = 4; digits has 1437 training samples, so with batch 32 an epoch is
# ceil(1437 / 128) = 12 steps and 30 epochs are 360 steps. Line numbers below count from 1.
BASE = """\
name: t
topology:
  blocks: 2
  gpus_per_block: 2
  gpu: {peak_flops: 15.7 TFLOP/s, efficiency: 0.4}
  intra_block: {bandwidth: 25 GB/s, latency: 1 us}
  inter_block: {bandwidth: 10 Gbit/s, latency: 5 us}
workload:
  dataset: digits
  batch_size: 32
optimizer:
  lr: 0.02
variants:
  - {algorithm: minibatch}
  - {algorithm: local, H: 4}
  - {algorithm: postlocal, H: 4, switch_epoch: 1}
  - {algorithm: hierarchical, H: 2, Hb: 2}
target_accuracy: 0.9
seed: 0
epochs: 30
timing:
  cost_profile: model
  collective: ring
"""

UNEQUAL = """\
topology:
  gpu_defaults: {peak_flops: 15.7 TFLOP/s, efficiency: 0.4}
  link_defaults: {bandwidth: 25 GB/s, latency: 1 us}
  gpus:
    - {name: g0, block: a}
    - {name: g1, block: a}
    - {name: g2, block: b}
  switches: [{name: sw}]
  links:
    - {between: [g0, sw]}
    - {between: [g1, sw]}
    - {between: [g2, sw]}
variants:
  - {algorithm: local, H: 2}
  - {algorithm: hierarchical, H: 2, Hb: 2}
target_accuracy: 0.9
steps: 10
"""


def edit(text, *replacements):
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def error_of(path, overrides=None):
    with pytest.raises(InputError) as info:
        load_scenario(path, overrides=overrides)
    return info.value


def assert_error(err, file, line, field, message, fix):
    """One line ``FILE:LINE: FIELD: ...message... (...fix...)``."""
    text = str(err)
    assert "\n" not in text, text
    where = (f"{file}:{line}: " if line is not None else f"{file}: ") if file else ""
    assert text.startswith(where + f"{field}: "), (text, where, field)
    assert message in text, (text, message)
    assert text.endswith(")") and fix in text[text.index(message) + len(message):], (text, fix)


# --------------------------------------------------------------------------- default
def test_builtin_default_is_the_shipped_default_scenario():
    from dataclasses import replace

    builtin, shipped = load_scenario(), load_scenario(ROOT / "scenarios" / "default.yaml")
    assert replace(builtin, source="x", topology=None) == replace(shipped, source="x", topology=None)
    assert nx.utils.graphs_equal(builtin.topology, shipped.topology)
    assert not list((ROOT / "simulator").rglob("*.yaml")), "one copy: shipped files live outside"


def test_builtin_default_loads():
    s = load_scenario()
    assert isinstance(s, Scenario)
    assert (s.name, s.source, s.topology_source) == ("default", DEFAULT_SOURCE, "inline")
    assert [v.label for v in s.variants] == [
        "minibatch", "local H=4", "postlocal H=4 after epoch 1", "hierarchical H=2 Hb=4"]
    assert s.variants == (
        Variant("minibatch", label="minibatch"),
        Variant("local", H=4, label="local H=4"),
        Variant("postlocal", H=4, switch_step=3, label="postlocal H=4 after epoch 1"),
        Variant("hierarchical", H=2, Hb=4, label="hierarchical H=2 Hb=4"))
    assert s.workload == WorkloadSpec("digits", None, "mlp", (64,), 32, "float64", None)
    assert (s.target_accuracy, s.seed, s.epochs, s.steps, s.eval_every) == (0.9, 0, 30.0,
                                                                          None, 1)
    assert s.timing == TimingSpec(cost_profile="resnet20-cifar10")
    assert (s.optimizer.lr, s.optimizer.warmup_epochs, s.optimizer.decay_epochs) == \
        (0.02, 2.0, (20.0, 25.0))


def test_builtin_default_topology_is_seed_8x2():
    inline = load_scenario().topology
    seed = load_topology(ROOT / "topologies" / "seed_8x2.yaml")
    assert dict(inline.nodes(data=True)) == dict(seed.nodes(data=True))
    assert sorted(map(sorted, inline.edges())) == sorted(map(sorted, seed.edges()))
    for u, v, attrs in seed.edges(data=True):
        assert inline.edges[u, v] == attrs
    assert inline.graph == seed.graph


SCENARIO_FILES = sorted(p for p in glob.glob(str(ROOT / "scenarios" / "*.yaml"))
                        if not os.path.basename(p).startswith("regress"))   # regress*: suites


LARGE_SCENARIOS = {"faults_mtbf_1024.yaml": 1024, "ddp_overlap.yaml": 32}
"""Shipped scenarios that are not on the seed's 16 GPUs: the scale is their question
(ddp_overlap.yaml asks its question of 4 DGX A100 nodes)."""


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=os.path.basename)
def test_every_shipped_scenario_loads(path):
    s = load_scenario(path)
    assert len(s.variants) >= 1
    assert len({v.label for v in s.variants}) == len(s.variants)
    assert len(gpu_nodes(s.topology)) == LARGE_SCENARIOS.get(os.path.basename(path), 16)
    text = Path(path).read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schemas/")
    assert "# Question" in text          # each file says what it answers


@pytest.mark.parametrize("shape", ["2x8", "4x4", "8x2"])
def test_block_scenarios_differ_only_in_topology(shape):
    s = load_scenario(ROOT / "scenarios" / f"blocks_{shape}.yaml")
    blocks, per_block = map(int, shape.split("x"))
    sizes = [len(g) for g in gpu_blocks(s.topology).values()]
    assert sizes == [per_block] * blocks
    assert s.topology_source == f"blocks_{shape}"                # a shipped name, as written
    assert nx.utils.graphs_equal(s.topology, load_topology(ROOT / "topologies" / f"blocks_{shape}.yaml"))
    other = load_scenario(ROOT / "scenarios" / "blocks_4x4.yaml")
    assert (s.variants, s.workload, s.optimizer, s.epochs) == \
        (other.variants, other.workload, other.optimizer, other.epochs)


def test_large_batch_and_delay_scenarios():
    lb = load_scenario(ROOT / "scenarios" / "large_batch.yaml")
    big = next(v for v in lb.variants if v.label == "minibatch K*H*B_loc")
    local = next(v for v in lb.variants if v.algorithm == "local")
    assert big.batch_size == local.H * lb.workload.batch_size
    post = next(v for v in lb.variants if v.algorithm == "postlocal")
    assert post.switch_step == 2 * steps_per_epoch(1437, 16, 8) == 24
    delays = load_scenario(ROOT / "scenarios" / "hierarchical_delays.yaml")
    assert [v.global_sync_delay_s for v in delays.variants if v.algorithm == "hierarchical"] \
        == [0.0, 1.0, 50.0]
    assert any(v.algorithm == "local" for v in delays.variants)


def test_contract_fields():
    assert [f.name for f in fields(Variant)] == [
        "algorithm", "H", "Hb", "switch_step", "batch_size", "global_sync_delay_s", "label",
        "convention", "warmup_steps", "periods", "post_local_gradient_allreduce",
        "outer_lr", "outer_momentum", "slow_lr", "slow_momentum", "alpha", "H_min",
        "interval_s", "replica", "graph", "optimizer", "overlap", "fault_policy"]
    assert [f.name for f in fields(Scenario)] == [
        "name", "source", "topology", "topology_source", "workload", "optimizer", "variants",
        "target_accuracy", "seed", "epochs", "steps", "eval_every", "timing", "convention",
        "evaluate", "eval_every_epochs", "faults"]
    assert TimingSpec() == TimingSpec("model", 0.0, {}, 0.0, "ring", "none", 25 * 2**20, 2**20)


def test_schema_is_valid_and_strict():
    schema = load_schema("scenario")
    jsonschema.Draft202012Validator.check_schema(schema)

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, where
                for key, sub in node["properties"].items():
                    assert "description" in sub, f"{where}.{key}"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")
    walk(schema, "#")


# --------------------------------------------------------------------------- errors
ERROR_CASES = [
    # id, replacements, line, field, message, fix
    ("unknown key", [("seed: 0", "sead: 0")], 19, "sead", "unknown key 'sead'",
     "did you mean 'seed'?"),
    ("unknown variant key", [("{algorithm: local, H: 4}", "{algorithm: local, h: 4}")], 15,
     "variants[1].h", "unknown key 'h'", "did you mean 'H'?"),
    ("unknown workload key", [("  batch_size: 32", "  batch_sise: 32")], 10,
     "workload.batch_sise", "unknown key 'batch_sise'", "did you mean 'batch_size'?"),
    ("unknown optimizer key", [("  lr: 0.02", "  lr: 0.02\n  momentun: 0.9")], 13,
     "optimizer.momentun", "unknown key 'momentun'", "did you mean 'momentum'?"),
    ("unknown timing key", [("  collective: ring", "  colective: ring")], 23,
     "timing.colective", "unknown key 'colective'", "did you mean 'collective'?"),
    ("unknown algorithm", [("{algorithm: local, H: 4}", "{algorithm: locl, H: 4}")], 15,
     "variants[1].algorithm", "'locl' is not one of", "did you mean 'local'?"),
    ("H zero", [("{algorithm: local, H: 4}", "{algorithm: local, H: 0}")], 15,
     "variants[1].H", "must be an integer >= 1, got 0", "write e.g. 4"),
    ("H negative", [("{algorithm: local, H: 4}", "{algorithm: local, H: -3}")], 15,
     "variants[1].H", "must be an integer >= 1, got -3", "write e.g. 4"),
    ("H not integer", [("{algorithm: local, H: 4}", "{algorithm: local, H: 2.5}")], 15,
     "variants[1].H", "expected a whole number, got a number 2.5", "write e.g. 4"),
    ("Hb zero", [("H: 2, Hb: 2", "H: 2, Hb: 0")], 17, "variants[3].Hb",
     "must be an integer >= 1, got 0", "write e.g. 4"),
    ("Hb on local", [("{algorithm: local, H: 4}", "{algorithm: local, H: 4, Hb: 2}")], 15,
     "variants[1].Hb", "Hb does not apply to local", "Hb applies to hierarchical"),
    ("H on minibatch", [("{algorithm: minibatch}", "{algorithm: minibatch, H: 2}")], 14,
     "variants[0].H", "H does not apply to minibatch", "remove it"),
    ("target above 1", [("target_accuracy: 0.9", "target_accuracy: 90")], 18,
     "target_accuracy", "must be a fraction in (0, 1], got 90", "write e.g. 0.9"),
    ("target zero", [("target_accuracy: 0.9", "target_accuracy: 0")], 18,
     "target_accuracy", "must be a fraction in (0, 1], got 0", "write e.g. 0.9"),
    ("epochs and steps", [("epochs: 30", "epochs: 30\nsteps: 100")], 21, "steps",
     "epochs and steps are both given (epochs at line 20)", "keep one of them"),
    ("neither epochs nor steps", [("epochs: 30\n", "")], 1, "epochs",
     "the training length is missing", "add 'epochs: 30' or 'steps: 90'"),
    ("epochs zero", [("epochs: 30", "epochs: 0")], 20, "epochs", "must be positive, got 0",
     "write e.g. 30"),
    ("steps zero", [("epochs: 30", "steps: 0")], 20, "steps", "must be at least 1, got 0",
     "write e.g. 90"),
    ("batch size zero", [("  batch_size: 32", "  batch_size: 0")], 10, "workload.batch_size",
     "must be an integer >= 1, got 0", "write e.g. 32"),
    ("variant batch size", [("{algorithm: minibatch}", "{algorithm: minibatch, batch_size: 0}")],
     14, "variants[0].batch_size", "must be an integer >= 1, got 0", "write e.g. 128"),
    ("unknown dataset", [("dataset: digits", "dataset: digit")], 9, "workload.dataset",
     "unknown dataset 'digit'", "did you mean 'digits'?"),
    ("missing npz", [("dataset: digits", "dataset: npz:nope.npz")], 9, "workload.dataset",
     "no such file 'nope.npz'", "relative to the scenario file's directory"),
    ("too few samples", [("dataset: digits", "dataset: digits\n  n_samples: 20")], 10,
     "workload.n_samples", "digits has 1797 samples; asked for 20", "ask for 50 to 1797"),
    ("unknown model", [("  batch_size: 32", "  batch_size: 32\n  model: mpl")], 11,
     "workload.model", "'mpl' is not one of 'mlp', 'softmax'", "did you mean 'mlp'?"),
    ("unknown cost profile", [("cost_profile: model", "cost_profile: resnet20")], 22,
     "timing.cost_profile", "unknown cost profile 'resnet20'",
     "did you mean 'resnet20-cifar10'?"),
    ("unknown collective", [("collective: ring", "collective: rnig")], 23, "timing.collective",
     "'rnig' is not one of 'ring', 'tree', 'in-switch', 'hierarchical', 'halving-doubling', "
     "'auto'", "did you mean 'ring'?"),
    ("in-switch without a reducing switch", [("collective: ring", "collective: in-switch")], 23,
     "timing.collective", "in-switch all-reduce needs a switch with reduction: true",
     "use collective: ring, tree or auto"),
    ("negative jitter", [("collective: ring", "collective: ring\n  jitter: -0.1")], 24,
     "timing.jitter", "must not be negative, got -0.1", "write e.g. 0.05"),
    ("slow GPU not in topology", [("collective: ring",
                                   "collective: ring\n  slow_gpus: {gpu1_2: 2}")], 24,
     "timing.slow_gpus.gpu1_2", "no GPU 'gpu1_2' in the topology", "did you mean 'gpu1_1'?"),
    ("slow factor below 1", [("collective: ring",
                              "collective: ring\n  slow_gpus: {gpu0_1: 0.5}")], 24,
     "timing.slow_gpus.gpu0_1", "a slowdown factor must be >= 1, got 0.5", "write e.g. 2"),
    ("negative delay", [("collective: ring", "collective: ring\n  global_sync_delay_s: -1")],
     24, "timing.global_sync_delay_s", "must not be negative, got -1", "write e.g. 1"),
    ("negative variant delay", [("{algorithm: local, H: 4}",
                                 "{algorithm: local, H: 4, global_sync_delay_s: -2}")], 15,
     "variants[1].global_sync_delay_s", "must not be negative, got -2", "write e.g. 1"),
    ("duplicate labels", [("{algorithm: minibatch}",
                           "{algorithm: minibatch, label: local H=4}")], 15, "variants[1]",
     "duplicate variant label 'local H=4', first at line 14", "give each variant its own label"),
    ("duplicate derived labels", [("{algorithm: minibatch}", "{algorithm: local, H: 4}")], 15,
     "variants[1]", "duplicate variant label 'local H=4', first at line 14",
     "give each variant its own label"),
    ("postlocal without switch", [("H: 4, switch_epoch: 1", "H: 4")], 16, "variants[2]",
     "post-local SGD needs a switch point", "add 'switch_epoch: 1'"),
    ("postlocal with two switches", [("switch_epoch: 1", "switch_epoch: 1, switch_step: 5")],
     16, "variants[2].switch_step", "switch_epoch and switch_step are both given",
     "keep one of them"),
    ("postlocal switch after the end", [("switch_epoch: 1", "switch_epoch: 30")], 16,
     "variants[2].switch_epoch", "after step 360 comes at or after the last step (360)",
     "switch earlier"),
    ("missing topology file", [(BASE[BASE.index("topology:"):BASE.index("workload:")],
                                "topology: ../nope/t.yaml\n")], 2, "topology",
     "no such topology file '../nope/t.yaml'", "relative to the scenario file's directory"),
    ("inline topology: bad value", [("efficiency: 0.4}", "efficiency: 1.4}")], 5,
     "topology.gpu.efficiency", "must be in (0, 1], got 1.4", "write e.g. 0.4"),
    ("inline topology: unknown key", [("  gpus_per_block: 2", "  gpus_per_blok: 2")], 4,
     "topology.gpus_per_blok", "unknown key 'gpus_per_blok'", "did you mean 'gpus_per_block'?"),
    ("inline topology: missing unit", [("bandwidth: 25 GB/s", "bandwidth: 25")], 6,
     "topology.intra_block.bandwidth", "missing unit: 25 is a bare number", "'25 GB/s'"),
    ("no variants", [(BASE[BASE.index("  - {algorithm: minibatch}"):BASE.index("target")], ""),
                     ("variants:\n", "variants: []\n")], 13, "variants",
     "give at least one variant", "write e.g."),
]


@pytest.mark.parametrize("replacements, line, field, message, fix",
                         [case[1:] for case in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_validation_error(write_file, replacements, line, field, message, fix):
    path = write_file("s.yaml", edit(BASE, *replacements))
    assert_error(error_of(path), str(path), line, field, message, fix)


def test_base_is_valid(write_file):
    s = load_scenario(write_file("s.yaml", BASE))
    assert [v.label for v in s.variants] == [
        "minibatch", "local H=4", "postlocal H=4 after epoch 1", "hierarchical H=2 Hb=2"]
    assert s.variants[2].switch_step == 12
    assert s.name == "t" and s.source.endswith("s.yaml")


def test_hierarchical_needs_equal_blocks(write_file):
    path = write_file("s.yaml", UNEQUAL)
    assert_error(error_of(path), str(path), 15, "variants[1].algorithm",
                 "hierarchical local SGD averages inside blocks of equal size, but the "
                 "topology's blocks hold unequal numbers of GPUs (a: 2, b: 1)",
                 "give every block the same number of GPUs")
    local_only = load_scenario(write_file("t.yaml", edit(
        UNEQUAL, ("  - {algorithm: hierarchical, H: 2, Hb: 2}\n", ""))))
    assert [v.label for v in local_only.variants] == ["local H=2"]


def test_hierarchical_collective_needs_equal_blocks(write_file):
    path = write_file("s.yaml", edit(UNEQUAL, ("  - {algorithm: hierarchical, H: 2, Hb: 2}\n",
                                               ""),
                                     ("steps: 10\n", "steps: 10\ntiming: {collective: "
                                                     "hierarchical}\n")))
    assert_error(error_of(path), str(path), 17, "timing.collective",
                 "the hierarchical all-reduce needs blocks of equal size", "collective: ring")


def test_inline_topology_needs_compute(write_file):
    path = write_file("s.yaml", edit(UNEQUAL, ("  gpu_defaults: {peak_flops: 15.7 TFLOP/s, "
                                               "efficiency: 0.4}\n", "")))
    err = error_of(path)
    assert str(err).startswith(f"{path}:")
    assert "topology" in err.field and "peak_flops" in str(err) and "missing" in str(err)


def test_scenario_file_problems(write_file, tmp_path):
    err = error_of(tmp_path / "none.yaml")
    assert str(err) == f"{tmp_path / 'none.yaml'}: no such file (check the path)"
    path = write_file("list.yaml", "- a\n- b\n")
    assert "a scenario is a mapping" in str(error_of(path))
    path = write_file("missing.yaml", "variants: [{algorithm: local}]\ntarget_accuracy: 0.9\n")
    assert_error(error_of(path), str(path), 1, "topology", "missing", "add 'topology: ")


# --------------------------------------------------------------------------- topologies
def test_topology_path_relative_to_the_scenario_file(tmp_path):
    (tmp_path / "topo").mkdir()
    (tmp_path / "scn").mkdir()
    topo_text = (ROOT / "topologies" / "blocks_4x4.yaml").read_text(encoding="utf-8")
    (tmp_path / "topo" / "t.yaml").write_text(topo_text, encoding="utf-8")
    text = edit(BASE, (BASE[BASE.index("topology:"):BASE.index("workload:")],
                       "topology: ../topo/t.yaml\n"))
    (tmp_path / "scn" / "s.yaml").write_text(text, encoding="utf-8")
    s = load_scenario(tmp_path / "scn" / "s.yaml")
    assert s.topology_source == str(tmp_path / "topo" / "t.yaml")
    assert len(gpu_blocks(s.topology)) == 4
    # K = 16 now: an epoch is ceil(1437 / 512) = 3 steps
    assert s.variants[2].switch_step == 3


def test_errors_inside_a_topology_file_name_that_file(tmp_path):
    (tmp_path / "t.yaml").write_text(
        (ROOT / "topologies" / "seed_8x2.yaml").read_text(encoding="utf-8")
        .replace("efficiency: 0.4", "efficiency: 4"), encoding="utf-8")
    text = edit(BASE, (BASE[BASE.index("topology:"):BASE.index("workload:")],
                       "topology: t.yaml\n"))
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    err = error_of(tmp_path / "s.yaml")
    line = next(i for i, text in enumerate((tmp_path / "t.yaml").read_text().splitlines(), 1)
                if "efficiency: 4" in text)
    assert str(err).startswith(f"{tmp_path / 't.yaml'}:{line}: gpu.efficiency: must be in (0, 1]")


def test_scenario_from_data_with_inline_topology():
    import yaml
    s = scenario_from_data(yaml.safe_load(BASE), file="x.yaml", base_dir=".")
    assert s.topology_source == "inline" and len(gpu_nodes(s.topology)) == 4
    with pytest.raises(InputError) as info:
        scenario_from_data(yaml.safe_load(edit(BASE, ("Hb: 2}", "Hb: 0}"))), file="x.yaml")
    assert str(info.value).startswith("x.yaml: variants[3].Hb: must be an integer >= 1")


# --------------------------------------------------------------------------- switch_epoch
def test_steps_per_epoch():
    assert steps_per_epoch(1437, 16, 32) == 3
    assert steps_per_epoch(1437, 4, 32) == 12
    assert steps_per_epoch(512, 16, 32) == 1
    assert steps_per_epoch(513, 16, 32) == 2


def test_switch_epoch_resolution(write_file):
    text = edit(BASE, ("switch_epoch: 1", "switch_epoch: 2.5, batch_size: 64"))
    s = load_scenario(write_file("s.yaml", text))
    # batch 64 on 4 GPUs: ceil(1437 / 256) = 6 steps per epoch; 2.5 epochs = 15 steps
    assert s.variants[2].switch_step == 15
    assert s.variants[2].label == "postlocal H=4 after epoch 2.5 B=64"
    s = load_scenario(write_file("t.yaml", edit(BASE, ("switch_epoch: 1", "switch_step: 7"))))
    assert (s.variants[2].switch_step, s.variants[2].label) == (7, "postlocal H=4 after step 7")


def test_npz_dataset_path_relative_to_the_scenario_file(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "d.npz", x=rng.random((40, 3)), y=np.arange(40) % 2,
             x_test=rng.random((10, 3)), y_test=np.arange(10) % 2)
    text = edit(BASE, ("dataset: digits", "dataset: npz:data/d.npz"))
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    s = load_scenario(tmp_path / "s.yaml")
    assert s.workload.dataset == "npz:" + str(tmp_path / "data" / "d.npz")
    assert s.variants[2].switch_step == 1        # ceil(40 / (4 * 32)) = 1 step per epoch


# --------------------------------------------------------------------------- overrides
def test_algorithm_override_replaces_the_variants():
    s = load_scenario(overrides={"algorithm": "local", "H": 8})
    assert s.variants == (Variant("local", H=8, label="local H=8"),)
    s = load_scenario(overrides={"algorithm": "hierarchical"})
    assert s.variants == (Variant("hierarchical", label="hierarchical H=1 Hb=1"),)
    s = load_scenario(overrides={"algorithm": "postlocal", "H": 16, "switch_epoch": 2})
    assert s.variants == (Variant("postlocal", H=16, switch_step=6,
                                  label="postlocal H=16 after epoch 2"),)


def test_parameter_overrides_apply_where_meaningful():
    s = load_scenario(overrides={"H": 8, "Hb": 2, "switch_step": 5, "algorithm": None})
    assert [(v.algorithm, v.H, v.Hb, v.switch_step, v.label) for v in s.variants] == [
        ("minibatch", 1, 1, None, "minibatch"),
        ("local", 8, 1, None, "local H=8"),
        ("postlocal", 8, 1, 5, "postlocal H=8 after step 5"),
        ("hierarchical", 8, 2, None, "hierarchical H=8 Hb=2")]


def test_overrides_of_length_and_settings(tmp_path):
    s = load_scenario(overrides={"steps": 50})
    assert (s.epochs, s.steps) == (None, 50)
    s = load_scenario(ROOT / "scenarios" / "default.yaml",
                      overrides={"epochs": 10, "target_accuracy": 0.8, "seed": 3,
                                 "cost_profile": "resnet20-cifar10",
                                 "global_sync_delay_s": 1.5})
    assert (s.epochs, s.steps, s.target_accuracy, s.seed) == (10.0, None, 0.8, 3)
    assert (s.timing.cost_profile, s.timing.global_sync_delay_s) == ("resnet20-cifar10", 1.5)


def test_topology_override_is_relative_to_the_current_directory(monkeypatch):
    monkeypatch.chdir(ROOT)
    s = load_scenario(overrides={"topology": "topologies/blocks_2x8.yaml"})
    assert s.topology_source == "topologies/blocks_2x8.yaml"
    assert [len(g) for g in gpu_blocks(s.topology).values()] == [8, 8]


def test_delay_override_wins_and_merges_identical_variants():
    s = load_scenario(ROOT / "scenarios" / "hierarchical_delays.yaml",
                      overrides={"global_sync_delay_s": 5})
    assert s.timing.global_sync_delay_s == 5.0
    assert [(v.label, v.global_sync_delay_s) for v in s.variants] == [
        ("hierarchical H=2 Hb=4", None), ("local H=2", None)]


def test_overridden_variants_get_truthful_labels():
    s = load_scenario(ROOT / "scenarios" / "hierarchical_delays.yaml", overrides={"Hb": 2})
    assert [v.label for v in s.variants] == [
        "hierarchical H=2 Hb=2 delay 0 s", "hierarchical H=2 Hb=2 delay 1 s",
        "hierarchical H=2 Hb=2 delay 50 s", "local H=2 delay 1 s"]


OVERRIDE_ERRORS = [
    ({"algorithm": "locl"}, "--algorithm", "unknown algorithm 'locl'", "did you mean 'local'?"),
    ({"H": 0}, "-H", "must be an integer >= 1, got 0", "write e.g. -H 8"),
    ({"H": 2.5}, "-H", "must be an integer >= 1, got 2.5", "write e.g. -H 8"),
    ({"Hb": 0}, "--Hb", "must be an integer >= 1, got 0", "write e.g. --Hb 4"),
    ({"algorithm": "postlocal", "H": 8}, "--algorithm", "post-local SGD needs a switch point",
     "add --switch-epoch 1 or --switch-step"),
    ({"algorithm": "local", "Hb": 2}, "--Hb", "--Hb does not apply to local",
     "use --algorithm hierarchical"),
    ({"algorithm": "minibatch", "H": 2}, "-H", "-H does not apply to minibatch",
     "use --algorithm local or postlocal or hierarchical"),
    ({"epochs": 5, "steps": 3}, "--steps", "--epochs and --steps are both given",
     "give one of them"),
    ({"switch_epoch": 1, "switch_step": 3}, "--switch-step",
     "--switch-epoch and --switch-step are both given", "give one of them"),
    ({"switch_step": 200}, "--switch-step", "after step 200 comes at or after the last step "
     "(90)", "switch earlier"),
    ({"epochs": 0}, "--epochs", "must be a positive number, got 0", "write e.g. --epochs 30"),
    ({"target_accuracy": 1.5}, "--target-accuracy", "must be a fraction in (0, 1], got 1.5",
     "--target-accuracy 0.9"),
    ({"seed": -1}, "--seed", "must be a non-negative integer, got -1", "--seed 0"),
    ({"cost_profile": "gpt2"}, "--cost-profile", "unknown cost profile 'gpt2'",
     "did you mean 'gpt2-small'?"),
    ({"global_sync_delay_s": -1}, "--global-sync-delay", "must be a non-negative number",
     "--global-sync-delay 1"),
    ({"topology": "no/such.yaml"}, "--topology", "no such topology file 'no/such.yaml'",
     "relative to the current directory"),
]


@pytest.mark.parametrize("overrides, option, message, fix", OVERRIDE_ERRORS,
                         ids=[str(case[0]) for case in OVERRIDE_ERRORS])
def test_override_error(overrides, option, message, fix):
    err = error_of(None, overrides)
    assert (err.file, err.line, err.field) == (None, None, option)
    assert_error(err, None, None, option, message, fix)


def test_override_that_applies_to_no_variant():
    err = error_of(ROOT / "scenarios" / "large_batch.yaml", {"Hb": 2})
    assert_error(err, None, None, "--Hb", "--Hb applies to hierarchical variants, and this "
                 "scenario has none", "add --algorithm hierarchical")


def test_override_options_are_the_documented_keys():
    assert OVERRIDE_OPTIONS == {
        "algorithm": "--algorithm", "H": "-H", "Hb": "--Hb", "switch_epoch": "--switch-epoch",
        "switch_step": "--switch-step", "topology": "--topology", "epochs": "--epochs",
        "steps": "--steps", "target_accuracy": "--target-accuracy", "seed": "--seed",
        "cost_profile": "--cost-profile", "convention": "--convention",
        "evaluate": "--evaluate", "global_sync_delay_s": "--global-sync-delay",
        "settings": "--set", "overlap": "--overlap", "bucket_cap_bytes": "--bucket-cap"}
    with pytest.raises(TypeError):
        load_scenario(overrides={"bogus": 1})


def test_docs_list_every_key():
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    schema = load_schema("scenario")
    keys = set(schema["properties"])
    for section in ("variant", "workload", "optimizer", "timing"):
        keys |= set(schema["$defs"][section]["properties"])
    for key in keys | set(OVERRIDE_OPTIONS.values()):
        assert f"`{key}`" in text, key


def test_worked_example_in_the_docs_loads(tmp_path):
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    start = text.index("```yaml\n", text.index("## Worked example")) + len("```yaml\n")
    example = text[start:text.index("```", start)]
    (tmp_path / "slow_net.yaml").write_text(example, encoding="utf-8")
    s = load_scenario(tmp_path / "slow_net.yaml")
    assert [(v.label, v.H, v.switch_step) for v in s.variants] == [
        ("minibatch", 1, None), ("local H=8", 8, None), ("postlocal H=8 after epoch 2", 8, 6)]
    assert (s.timing.slow_gpus, s.topology_source) == ({"gpu3_1": 1.5}, "inline")
    assert s.topology.edges["sw0", "core"]["bandwidth"] == 1.25e8
