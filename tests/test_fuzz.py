"""Property-based fuzzing of everything a user can hand sgdsim (hypothesis).

Generated inputs: topologies in the compact and the explicit form (and node-link JSON),
scenarios, unit strings, command-line values, raw YAML (nesting, aliases, control bytes) and
mutations of the shipped files. The property, for every case: the command ends with exit
status 0, or 2 with exactly one ``error:`` line on stderr; never a traceback; within a time
bound per case and a memory bound for the whole process (the memory budget is pinned with
``SGDSIM_MEMORY_LIMIT`` so that size checks, not the kernel, stop oversized inputs).

Runs are kept tiny: step counts are small or absurd (so refused), never in between. The
budget is fixed and small for CI (about a minute on 2 cores, derandomized so every CI run
tries the same cases). For a longer hunt set ``SGDSIM_FUZZ_EXAMPLES`` to the number of
examples per property (random then, not derandomized), e.g.::

    SGDSIM_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py
"""

import json
import math
import os
import re
import resource
import string
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st

from cli import sgdsim
from simulator.utils.errors import UnitError
from simulator.utils.shipped import shipped_files
from simulator.utils.units import MAX_QUANTITY, parse_quantity
from simulator.utils.yamlfile import load_schema

LONG = os.environ.get("SGDSIM_FUZZ_EXAMPLES")
SECONDS_PER_CASE = 60                 # a case slower than this is a hang
MAX_RSS_BYTES = 3 * 2**30             # the whole test process, all cases together


def budget(examples):
    """Settings for a property: `examples` in CI (derandomized), or SGDSIM_FUZZ_EXAMPLES."""
    return settings(max_examples=int(LONG) if LONG else examples, derandomize=not LONG,
                    deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(autouse=True)
def _bounded(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("SGDSIM_MEMORY_LIMIT", "256 MB")
    monkeypatch.setenv("SGDSIM_CACHE", str(tmp_path_factory.mktemp("cache")))


def check(*args):
    """Run ``sgdsim args`` in-process; assert exit 0, or 2 with one error line; return it."""
    start = time.monotonic()
    result = CliRunner().invoke(sgdsim, [str(a) for a in args])
    elapsed = time.monotonic() - start
    assert elapsed < SECONDS_PER_CASE, f"{elapsed:.0f} s: {args}"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024      # Linux: kB
    assert rss < MAX_RSS_BYTES, f"{rss / 2**30:.1f} GiB after {args}"
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code in (0, 2), (result.exit_code, result.exc_info, output[-2000:])
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    if currently_in_test_context():
        message = re.sub(r"^error: \S+?:(\d+:)? ", "", result.stderr.strip())[:50]
        event(f"exit {result.exit_code} {message}")   # --hypothesis-show-statistics
    return result


def write(text, name="case.yaml"):
    folder = Path(tempfile.mkdtemp(prefix="sgdsim-fuzz-"))
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


# --------------------------------------------------------------------------- values
def mostly(valid, other):
    """`valid` about fifteen times in sixteen, else `other`: an input has several fields,
    and most of them must be right for a case to reach the code behind the checks. (The
    choice is an integer whose middle value picks `other`: hypothesis favours the ends of a
    range, and one_of its last branches.)"""
    return st.integers(0, 15).flatmap(lambda i: other if i == 7 else valid)


DIGITS = "0123456789"
odd_numbers = st.sampled_from([
    ".nan", ".inf", "-.inf", "1e999", "1e308", "1.0e+308", "1e30", "1e15", "1e16", "1e-305",
    "5e-324", "-0", "0", "-1", "2.0", "0x10", "0o17", "017", "1_000", "٣", "１２", "1e-3",
    "9223372036854775807", "9223372036854775808", "4294967296", "18446744073709551616",
    "100000", "true", "yes", "null", "~", "''", "[]", "{}"])
plain_numbers = st.one_of(
    st.integers(-3, 8).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str), odd_numbers)

UNIT_WORDS = ["B/s", "GB/s", "Gbit/s", "Gbps", "gbps", "b/s", "B", "MB", "GiB", "KiB", "s",
              "ms", "us", "µs", "μs", "ns", "ps", "min", "h", "sec", "seconds", "FLOP/s",
              "TFLOP/s", "TFLOPS", "flops", "PFLOP/s", "EFLOP/s", "Hz", "GHz", "", "bit/s",
              "Tbit/s", "kB/s", "Mi", "/s", "%", "x"]
unit_texts = st.builds(
    lambda number, space, unit, tail: f"{number}{space}{unit}{tail}",
    st.one_of(plain_numbers, st.text(DIGITS + ".-+eE", max_size=8),
              st.text(alphabet=st.characters(codec="utf-8"), max_size=4)),
    st.sampled_from(["", " ", "  ", "\t", "\u00a0", "\u2003"]),
    st.sampled_from(UNIT_WORDS), st.sampled_from(["", "", " ", "s", "/s", "\x00", "\n"]))


@budget(600)
@given(text=unit_texts, kind=st.sampled_from(["bandwidth", "time", "bytes", "flops"]))
def test_units_parse_to_a_finite_quantity_or_fail_with_a_unit_error(text, kind):
    try:
        value = parse_quantity(text, kind)
    except UnitError as err:
        assert err.fix and err.message
        return
    assert isinstance(value, float) and math.isfinite(value) and abs(value) <= MAX_QUANTITY


@budget(400)
@given(text=unit_texts, kind=st.sampled_from(["bandwidth", "time", "flops"]))
def test_the_unit_parser_and_the_schema_pattern_agree(text, kind):
    """A unit string is well-formed for the parser exactly when the schema's pattern (what
    editors check) matches it; only the range ('too large') is the parser's alone."""
    pattern = load_schema("topology")["$defs"][kind]["pattern"]
    try:
        parse_quantity(text, kind)
        parsed = True
    except UnitError as err:
        parsed = "too large" in err.message
    assert parsed == bool(re.search(pattern, text)), (text, parsed)


# --------------------------------------------------------------------------- topologies
def yaml_value(text):
    """A YAML scalar as written (so that '.nan' stays YAML's NaN, '1e3' a number...)."""
    return text


bandwidths = mostly(st.sampled_from(["25 GB/s", "10 Gbit/s", "100Gbps", "1 bit/s", "1e3 B/s",
                                     "0.5 TB/s", "4096 KiB/s"]),
                    st.one_of(unit_texts, plain_numbers))
latencies = mostly(st.sampled_from(["1 us", "5 us", "0 s", "2 ms", "1e-9 s", "3 min"]),
                   st.one_of(unit_texts, plain_numbers))
flops = mostly(st.sampled_from(["10 TFLOP/s", "312 TFLOP/s", "1 FLOP/s", "1.5e13 FLOP/s"]),
               st.one_of(unit_texts, plain_numbers))
efficiencies = mostly(st.sampled_from(["0.5", "1", "0.4", "1e-6", "1.0"]), plain_numbers)
# Sizes are small or absurd (refused by the memory check), never in between: a valid
# cluster of 15,000 GPUs is no bug, just minutes of simulation.
bad_counts = st.one_of(st.sampled_from(["0", "-1", "2.0", "2.5", ".nan", ".inf", "1e12", "'2'",
                                        "٣", "true", "null", "9223372036854775808"]),
                       st.integers(10**9, 10**30).map(str))
counts = mostly(st.integers(1, 3).map(str), bad_counts)
names = mostly(st.sampled_from(["g0", "g1", "sw", "spine", "node0", "node1"]),
               st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=6))


def quoted(value):
    """`value` as a double-quoted YAML string when it holds characters YAML would misread."""
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9 ./+\-µμ%_]*", value):
        return value
    return json.dumps(value)


def link_spec(bandwidth, latency):
    return f"{{bandwidth: {quoted(bandwidth)}, latency: {quoted(latency)}}}"


compact_topologies = st.builds(
    lambda blocks, gpb, peak, eff, bw1, lat1, bw2, lat2, extra: (
        f"blocks: {blocks}\ngpus_per_block: {gpb}\n"
        f"gpu: {{peak_flops: {quoted(peak)}, efficiency: {eff}}}\n"
        f"intra_block: {link_spec(bw1, lat1)}\ninter_block: {link_spec(bw2, lat2)}\n" + extra),
    counts, counts, flops, efficiencies, bandwidths, latencies, bandwidths, latencies,
    mostly(st.sampled_from(["", "name: x\n", "description: a cluster\n"]),
           st.sampled_from(["equal_blocks: true\n", "blocks: 2\n", "gpu: 3\n",
                            "bandwith: 1\n"])))

@st.composite
def connected_links(draw):
    """Links of a star around 'sw' over the GPUs g0..g{n-1}: a topology that should load."""
    n = draw(st.integers(1, 3))
    gpus = [(f"g{i}", f"node{i % 2}") for i in range(n)]
    links = [(f"g{i}", "sw", draw(bandwidths), draw(latencies)) for i in range(n)]
    return gpus, ["sw"], links


explicit_topologies = st.builds(
    lambda gpus, switches, links, defaults: (
        f"gpu_defaults: {{peak_flops: 10 TFLOP/s, efficiency: 0.5}}\n{defaults}"
        "gpus:\n" + "".join(f"  - {{name: {quoted(n)}, block: {quoted(b)}}}\n" for n, b in gpus)
        + ("switches:\n" + "".join(f"  - {{name: {quoted(n)}}}\n" for n in switches)
           if switches else "switches: []\n")
        + ("links:\n" + "".join(f"  - {{between: [{quoted(a)}, {quoted(b)}], bandwidth: "
                                f"{quoted(bw)}, latency: {quoted(lat)}}}\n"
                                for a, b, bw, lat in links) if links else "links: []\n")),
    st.lists(st.tuples(names, names), min_size=0, max_size=4),
    st.lists(names, max_size=2),
    st.lists(st.tuples(names, names, bandwidths, latencies), max_size=5),
    st.sampled_from(["", "link_defaults: {latency: 1 us}\n", "equal_blocks: true\n",
                     "nics: [{name: nic0, block: node0}]\n"]))
star_topologies = connected_links().map(lambda parts: (
    "gpu_defaults: {peak_flops: 10 TFLOP/s, efficiency: 0.5}\ngpus:\n"
    + "".join(f"  - {{name: {n}, block: {b}}}\n" for n, b in parts[0])
    + "switches: [{name: sw}]\nlinks:\n"
    + "".join(f"  - {{between: [{a}, {b}], bandwidth: {quoted(bw)}, latency: {quoted(lat)}}}\n"
              for a, b, bw, lat in parts[2])))


@budget(250)
@given(text=st.one_of(compact_topologies, explicit_topologies, star_topologies))
def test_topology_files_validate_or_fail_in_one_line(text):
    check("topology", "validate", write(text))


@budget(60)
@given(text=st.one_of(compact_topologies, star_topologies))
def test_topologies_time_a_collective_or_fail_in_one_line(text):
    check("collective", write(text), "--size", "1MB", "--json")


node_link = st.fixed_dictionaries({
    "nodes": st.lists(st.one_of(
        st.fixed_dictionaries({"id": names, "kind": st.sampled_from(["gpu", "switch", "x"]),
                               "block": names}),
        st.just("x"), st.integers(), st.just({})), max_size=4),
    "links": st.one_of(st.lists(st.one_of(
        st.fixed_dictionaries({"source": names, "target": names,
                               "bandwidth": st.one_of(st.floats(), st.integers(), names),
                               "latency": st.one_of(st.floats(), st.integers())}),
        st.just("x"), st.just([]), st.just({})), max_size=4), st.just("x"), st.just({}))},
    optional={"directed": st.booleans(), "multigraph": st.booleans(),
              "graph": st.just({})})


@budget(120)
@given(data=node_link)
def test_node_link_json_validates_or_fails_in_one_line(data):
    check("topology", "validate", write(json.dumps(data), name="case.json"))


# --------------------------------------------------------------------------- scenarios
TOPOLOGY = ("topology: {blocks: 2, gpus_per_block: 2, gpu: {peak_flops: 10 TFLOP/s, "
            "efficiency: 0.5}, intra_block: {bandwidth: 25 GB/s, latency: 1 us}, "
            "inter_block: {bandwidth: 10 Gbit/s, latency: 5 us}}\n")
small_or_absurd_steps = mostly(st.integers(1, 4).map(str), st.sampled_from([
    "0", "-1", "2.0", "2.5", "1e12", "10000000000", "9223372036854775807", ".nan", ".inf",
    "'3'", "٣", "1e999"]))
small_or_absurd_epochs = mostly(st.sampled_from(["0.1", "0.25", "1", "1e-9"]),
                                st.sampled_from(["0", "-1", "1e12", "1e30", ".inf", ".nan",
                                                 "1e-320", "'1'"]))
algorithms = mostly(st.sampled_from(["minibatch", "local", "postlocal", "hierarchical"]),
                    st.sampled_from(["locl", "", "LOCAL"]))
small_counts = mostly(st.integers(1, 3).map(str), plain_numbers)
KEYS_OF = {"minibatch": (), "local": ("H",), "postlocal": ("H", "switch"),
           "hierarchical": ("H", "Hb")}


@st.composite
def variant(draw):
    algorithm = draw(algorithms)
    keys = KEYS_OF.get(algorithm, ())
    if draw(mostly(st.just(False), st.just(True))):
        keys = ("H", "Hb", "switch")                  # parameters that may not apply
    parts = [f"algorithm: {algorithm}" if algorithm else ""]
    if "H" in keys and draw(st.booleans()):
        parts.append(f"H: {draw(small_counts)}")
    if "Hb" in keys and draw(st.booleans()):
        parts.append(f"Hb: {draw(small_counts)}")
    if "switch" in keys:
        parts.append(draw(mostly(st.sampled_from(["switch_step: 1", "switch_epoch: 0.1"]),
                                 st.sampled_from(["switch_epoch: .nan", "switch_step: -1",
                                                  "switch_epoch: 1e30", "switch_step: 99999999",
                                                  ""]))))
    if draw(st.booleans()):
        batch = draw(mostly(st.sampled_from(["1", "8", "16"]),
                            st.sampled_from(["1e15", "0", "2.0", "9223372036854775807"])))
        parts.append(f"batch_size: {batch}")
    if draw(st.booleans()):
        delay = draw(mostly(st.sampled_from(["0", "0.5", "1"]), plain_numbers))
        parts.append(f"global_sync_delay_s: {delay}")
    if draw(st.booleans()):
        parts.append(f"label: {quoted(draw(names))}")
    if draw(st.integers(0, 3)) == 0:          # the schedule settings of nested clusters
        parts.append(draw(st.sampled_from([
            "convention: pytorch", "convention: paper", "convention: nope",
            "warmup_steps: 2", "warmup_steps: .nan", "warmup_steps: 1e30",
            "periods: {block: 2, global: 4}", "periods: {global: 2}", "periods: {rack: 2}",
            "periods: {block: 4, global: 2}", "period_group_size: {2: 2, 4: 4}",
            "period_group_size: {'٣': 2}", "period_group_size: {2: 1000000000000}",
            "post_local_gradient_allreduce: true", "post_local_gradient_allreduce: yes"])))
    return "{" + ", ".join(p for p in parts if p) + "}"


sections = st.lists(st.sampled_from([
    "optimizer: {lr: %s}\n", "optimizer: {momentum: %s}\n", "optimizer: {weight_decay: %s}\n",
    "optimizer: {warmup_epochs: %s}\n", "optimizer: {decay_epochs: [%s]}\n",
    "optimizer: {decay_factor: %s}\n", "timing: {jitter: %s}\n",
    "timing: {global_sync_delay_s: %s}\n", "timing: {slow_gpus: {gpu0_0: %s}}\n",
    "workload: {batch_size: %s}\n", "workload: {hidden: [%s]}\n", "seed: %s\n",
    "eval_every: %s\n", "workload: {non_iid_alpha: %s}\n", "workload: {n_samples: %s}\n",
    "optimizer: {max_peak_lr: %s}\n", "eval_every_epochs: %s\n"]),
    max_size=2, unique=True)
extras = st.lists(st.sampled_from([
    "workload: {dataset: teacher, n_samples: 100}\n", "workload: {dataset: mnist1d, "
    "n_samples: 60}\n", "workload: {model: softmax}\n", "workload: {dtype: float32}\n",
    "timing: {cost_profile: resnet20-cifar10}\n", "timing: {collective: hierarchical}\n",
    "timing: {collective: halving-doubling}\n",
    "sweep: {grid: {seed: [0, 1]}}\n", "description: 'x'\n", "convention: pytorch\n",
    "evaluate: any_gpu\n", "evaluate: common\n"]), max_size=2, unique=True)
bad_extras = st.lists(st.sampled_from([
    "workload: {dataset: 'npz:missing.npz'}\n", "name: ''\n", "timing: {cost_profile: nope}\n",
    "workload: {dataset: mnist1d, n_samples: 1e15}\n", "sweep: {grid: {seed: 1}}\n",
    "timing: {slow_gpus: {nope: 2}}\n"]), min_size=1, max_size=2, unique=True)


@st.composite
def scenarios(draw):
    text = TOPOLOGY if draw(st.booleans()) else "topology: seed_8x2\n"
    text += "variants: [" + ", ".join(draw(st.lists(variant(), min_size=1, max_size=2))) + "]\n"
    text += f"target_accuracy: {draw(mostly(st.just('0.5'), plain_numbers))}\n"
    length = draw(st.sampled_from(["steps", "steps", "steps", "epochs", "both", "none"]))
    if length in ("steps", "both"):
        text += f"steps: {draw(small_or_absurd_steps)}\n"
    if length in ("epochs", "both"):
        text += f"epochs: {draw(small_or_absurd_epochs)}\n"
    used = set()
    for template in draw(sections) + draw(mostly(extras, bad_extras)):
        key = template.split(":")[0]
        if key in used:                   # one section each: a key twice is its own case
            continue
        used.add(key)
        value = draw(mostly(st.sampled_from(["0", "1", "0.5", "0.01", "1e-3", "2"]),
                            plain_numbers))
        text += template % value if "%s" in template else template
    return text


@budget(150)
@given(text=scenarios())
def test_scenarios_run_or_fail_in_one_line(text):
    check("run", write(text), "-q")


# --------------------------------------------------------------------------- CLI values
RUN_BASE = (TOPOLOGY + "variants: [{algorithm: postlocal, H: 2, switch_step: 1}, "
            "{algorithm: hierarchical, H: 1, Hb: 2}]\ntarget_accuracy: 0.5\nsteps: 3\n")
cli_numbers = st.one_of(plain_numbers, st.text(max_size=5))


def option_values(valid):
    return mostly(st.sampled_from(valid), st.one_of(cli_numbers, unit_texts, st.sampled_from(
        ["/dev/null", "-", "", "nope.yaml", "1e12", "0", "-1", ".nan", "inf", "٣"])))


RUN_OPTIONS = {
    "--steps": option_values(["1", "2", "4"]), "--epochs": option_values(["0.1", "0.5"]),
    "-H": option_values(["1", "2", "3"]), "--Hb": option_values(["1", "2"]),
    "--seed": option_values(["0", "7", "4294967295"]),
    "--target-accuracy": option_values(["0.5", "1", "0.01"]),
    "--switch-epoch": option_values(["0", "0.1"]), "--switch-step": option_values(["0", "1"]),
    "--global-sync-delay": option_values(["0 s", "1 ms", "2 s"]),
    "--algorithm": option_values(["minibatch", "local", "postlocal", "hierarchical"]),
    "--cost-profile": option_values(["model", "resnet20-cifar10", "gpt2-small"]),
    "--topology": option_values(["seed_8x2", "blocks_4x4", "two_datacenter"]),
}


@budget(100)
@given(options=st.lists(st.sampled_from(sorted(RUN_OPTIONS)), min_size=1, max_size=3,
                        unique=True).flatmap(
    lambda keys: st.tuples(*[st.tuples(st.just(k), RUN_OPTIONS[k]) for k in keys])))
def test_run_options_run_or_fail_in_one_line(options):
    args = []
    for option, value in options:
        if option in ("--steps", "--switch-step", "-H", "--Hb") and \
                re.fullmatch(r"\+?0*\d{2,}", value.strip()):
            value = "1e12"                # small or absurd step counts, never in between
        if option == "--epochs" and re.fullmatch(r"\+?0*[1-9][0-9.]*(e\+?0*[0-9])?", value.strip()):
            value = "1e15"
        args += [option, value]
    check("run", write(RUN_BASE), "-q", *args)


GENERATE_VALUES = {"bandwidth": ["25 GB/s", "10 Gbit/s", "1 bit/s"], "latency": ["1 us", "0 s"],
                   "flops": ["15.7 TFLOP/s"], "efficiency": ["0.4", "1"], "type": ["V100"]}


@st.composite
def generate_args(draw):
    from simulator.cluster.generators import family_parameters

    family = draw(st.sampled_from(["two-tier", "fat-tree", "ring", "torus", "dgx",
                                   "two-sites"]))
    flags = {"peak_flops": "--gpu-flops"}
    args = []
    for name in family_parameters(family):
        if not draw(mostly(st.booleans(), st.just(True))):
            continue
        kind = next((k for k in GENERATE_VALUES if k in name or (k == "flops" and "peak" in name)),
                    None)
        valid = GENERATE_VALUES[kind] if kind else ["2", "4"]
        if name == "k":
            valid = ["2", "4"]
        flag = flags.get(name, "--" + name.replace("_", "-"))
        if name == "block_by":
            continue
        args += [flag, draw(option_values(valid))]
    if draw(mostly(st.just(False), st.just(True))):                # an option it does not take
        args += ["--k", "4"] if family != "fat-tree" else ["--n", "4"]
    return family, args


@budget(120)
@given(case=generate_args())
def test_topology_generate_options_generate_or_fail_in_one_line(case):
    family, args = case
    args = [("1000000000000" if re.fullmatch(r"\s*\+?0*([5-9]|[1-9][0-9]{1,8})\s*", a) else a)
            for a in args]                               # small or absurd, never in between
    check("topology", "generate", family, *args, "-o", write("").parent / "g.yaml")


@budget(60)
@given(size=mostly(st.sampled_from(["1MB", "0 B", "100 MB", "1 GiB", "1e30 B", "4096 B"]),
                   st.one_of(unit_texts, cli_numbers)),
       group=mostly(st.sampled_from(["all", "block", "gpu0_0,gpu0_1"]),
                    st.sampled_from(["gpu0_0", "x", "", "all,all", "gpu0_0,gpu0_0"])),
       algorithm=st.sampled_from(["ring", "hierarchical", "halving-doubling"]))
def test_collective_options_time_or_fail_in_one_line(size, group, algorithm):
    check("collective", "seed_8x2", "--size", size, "--group", group, "-a", algorithm,
          "--json")


# --------------------------------------------------------------------------- raw YAML
YAMLISH = "{}[]:,-&*!|>'\"#%@?`\n\t \\" + string.ascii_letters[:8] + DIGITS[:4]
raw_yaml = st.one_of(
    st.text(alphabet=YAMLISH, max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.binary(max_size=60),
    st.integers(1, 3000).map(lambda depth: "a: " + "[" * depth + "]" * depth + "\n"),
    st.integers(1, 300).map(lambda depth: "".join("  " * i + f"k{i}:\n" for i in range(depth))),
    st.tuples(st.integers(1, 12), st.integers(1, 12)).map(
        lambda wd: "a0: &a0 [x]\n" + "".join(
            f"a{i + 1}: &a{i + 1} [{', '.join(['*a%d' % i] * wd[0])}]\n"
            for i in range(wd[1]))),
    st.sampled_from(["a: &x\n  b: *x\n", "a: &x [*x]\n", "? [a, b]\n: c\n", "a: *nope\n",
                     "blocks: 2\x00\n", "--- 1\n--- 2\n", "!!python/object:os.system x\n",
                     "a: !!binary AAA=\n", "<<: *x\n", "a: 1\na: 2\n", "\ufeffblocks: 2\n"]))


@budget(300)
@given(text=raw_yaml, command=st.sampled_from(["topology", "scenario", "suite"]))
def test_raw_yaml_is_refused_in_one_line_or_read(text, command):
    path = write(text)
    if command == "topology":
        check("topology", "validate", path)
    elif command == "scenario":
        check("run", path, "-q", "--steps", "1")
    else:
        check("regress", path, "-q")


# --------------------------------------------------------------------------- shipped files
SHIPPED = [(kind, path) for kind in ("topologies", "scenarios")
           for path in shipped_files(kind).values() if path.suffix == ".yaml"
           and "regress" not in path.name]


@st.composite
def mutated(draw):
    kind, path = draw(st.sampled_from(SHIPPED))
    text = path.read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 3))):
        if not text:
            break
        where = draw(st.integers(0, len(text) - 1))
        choice = draw(st.sampled_from(["delete", "insert", "number", "duplicate", "swap"]))
        if choice == "delete":
            text = text[:where] + text[where + draw(st.integers(1, 20)):]
        elif choice == "insert":
            text = text[:where] + draw(st.text(alphabet=YAMLISH, min_size=1, max_size=3)) \
                + text[where:]
        elif choice == "number":
            numbers = list(re.finditer(r"\d+(\.\d+)?", text))
            if numbers:
                match = draw(st.sampled_from(numbers))
                text = text[:match.start()] + draw(plain_numbers) + text[match.end():]
        elif choice == "duplicate":
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[:i + 1] + lines[i:])
        else:
            lines = text.splitlines(keepends=True)
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    return kind, path.name, text


@budget(100)
@given(case=mutated())
def test_mutated_shipped_files_are_read_or_refused_in_one_line(case):
    kind, name, text = case
    path = write(text, name=name)
    if kind == "topologies":
        check("topology", "validate", path)
    else:
        check("run", path, "-q", "--steps", "2")


def test_the_fuzz_budget_is_documented():
    """The variable a long hunt sets is named in the module docstring (and README)."""
    assert "SGDSIM_FUZZ_EXAMPLES" in __doc__
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "SGDSIM_FUZZ_EXAMPLES" in readme


def test_yaml_strategies_render_what_they_mean():
    """A sanity check of the generators themselves: a rendered compact topology is YAML."""
    text = ("blocks: 2\ngpus_per_block: 2\ngpu: {peak_flops: 10 TFLOP/s, efficiency: 0.5}\n"
            f"intra_block: {link_spec('25 GB/s', '1 us')}\n"
            f"inter_block: {link_spec('10 Gbit/s', '5 us')}\n")
    assert yaml.safe_load(text)["intra_block"] == {"bandwidth": "25 GB/s", "latency": "1 us"}
    assert check("topology", "validate", write(text)).exit_code == 0
