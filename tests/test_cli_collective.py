"""``sgdsim collective``: text and JSON output agree with the library; bad input is one line."""

import json
import re
from pathlib import Path

import pytest

from simulator.cluster import generators
from simulator.cluster.topology import load_topology
from simulator.cluster.writer import write_topology
from simulator.network.collectives import ALGORITHM_CHOICES, PROTOCOL_CHOICES, simulate_allreduce
from simulator.network.nccltests import parse_nccl_tests
from simulator.utils.units import format_time

SEED = Path(__file__).parent.parent / "topologies" / "seed_8x2.yaml"

# seed_8x2: 8 blocks of 2 GPUs; GPU links 25 GB/s, 1 us; block-core links 10 Gbit/s, 5 us.
# Ring over 16 GPUs, 100 MB, ideal protocol, one channel: the ring's 16 hops alternate
# 2 us (inside a block) and 12 us (across, 1 + 5 + 5 + 1); a chunk's slowest 30 hops leave
# out one of each: 2 x 112 - 14 = 210 us. Every GPU sends 2 x 15/16 x 100 MB = 187.5 MB to
# its successor; the crossing flows go alone through their block's 1.25 GB/s uplink: 150 ms.
SEED_RING_S = 210e-6 + 187.5e6 / 1.25e9


@pytest.fixture
def two_tier_file(tmp_path):
    """two_tier(4, 2) with 25 GB/s, 1 us GPU links and 40 GB/s, 5 us block links, as YAML."""
    path = tmp_path / "two_tier_4x2.yaml"
    write_topology(generators.two_tier(4, 2, inter_bandwidth=40e9), path)
    return path


def ok_json(run_cli, *args):
    result = run_cli("collective", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_text_output_has_the_choice_time_bandwidths_and_bytes_with_units(run_cli):
    result = run_cli("collective", SEED, "--algorithm", "ring", "--protocol", "ideal")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"all-reduce of 100 MB over 1 group(s) of 16 GPUs on {SEED}"
    assert lines[1] == "  ran          ring, ideal, 1 channel"
    fields = {}
    for line in lines[2:]:
        match = re.fullmatch(r"  (time|latency|algbw|busbw|bytes \w+)\s+([-\d.e+]+) (\S+).*", line)
        assert match, line
        fields[match[1]] = (float(match[2]), match[3])
    assert set(fields) == {"time", "latency", "algbw", "busbw", "bytes inter_block",
                           "bytes intra_block"}
    assert f"{fields['time'][0]} {fields['time'][1]}" == format_time(SEED_RING_S) == "150.2 ms"
    assert fields["latency"] == (210.0, "us")
    assert fields["algbw"] == (665.7, "MB/s")            # 100 MB / 150.21 ms
    assert fields["busbw"] == (1.248, "GB/s")            # algbw * 2 * 15 / 16
    # Every GPU sends 187.5 MB over 2 GPU links; 8 of the 16 transfers cross 2 block links.
    assert fields["bytes inter_block"] == (3.0, "GB")
    assert fields["bytes intra_block"] == (6.0, "GB")


def test_auto_reports_what_it_chose(run_cli):
    result = run_cli("collective", SEED)
    assert result.exit_code == 0, result.output
    expected = simulate_allreduce(load_topology(SEED), 100e6, algorithm="auto")
    line = result.stdout.splitlines()[1]
    assert line == (f"  ran          {expected['algorithm']}, {expected['protocol']}, 1 channel  "
                    f"(algorithm and protocol auto: cheapest of {len(expected['candidates'])})")


@pytest.mark.parametrize("algorithm", ["ring", "tree", "hierarchical", "halving-doubling", "auto"])
def test_json_equals_simulate_allreduce(run_cli, algorithm):
    out = ok_json(run_cli, SEED, "--algorithm", algorithm, "--size", "64 MiB")
    expected = simulate_allreduce(load_topology(SEED), 64 * 2**20, algorithm=algorithm)
    assert {"time_s", "algbw_Bps", "busbw_Bps", "bytes", "protocol", "channels",
            "candidates"} <= set(out)                                   # every unit named
    assert set(out["bytes"]) == {"intra_block", "inter_block"}
    for key in ("time_s", "bytes", "groups", "gpus_per_group", "size_bytes",
                "algorithm", "protocol", "channels", "requested"):
        assert out[key] == expected[key], key
    assert (out["algbw_Bps"], out["busbw_Bps"]) == (expected["algbw"], expected["busbw"])
    if algorithm == "ring":
        got = ok_json(run_cli, SEED, "-a", "ring", "-p", "ideal")["time_s"]
        assert got == pytest.approx(SEED_RING_S, rel=1e-12)


def test_the_cli_offers_the_librarys_choices(run_cli):
    result = run_cli("collective", "--help")
    text = " ".join(result.stdout.split())
    assert "[" + "|".join(ALGORITHM_CHOICES) + "]" in text
    assert "[" + "|".join(PROTOCOL_CHOICES) + "]" in text


def test_links_lists_the_busiest_links(run_cli):
    result = run_cli("collective", SEED, "-a", "ring", "-p", "ideal", "--links", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index("busiest links (3, longest busy first)")
    rows = lines[start + 2:]
    assert len(rows) == 3
    # The crossing hops put 187.5 MB on each block uplink, busy the whole 150 ms.
    assert all(re.search(r"inter_block\s+187\.5 MB\s+150 ms\s+100 %$", r) for r in rows), rows
    out = ok_json(run_cli, SEED, "-p", "ideal", "-a", "ring", "--links")
    assert len(out["links"]) == 10 and out["links"][0]["bytes"] == pytest.approx(187.5e6)


def test_sweep_prints_one_row_per_size(run_cli):
    result = run_cli("collective", "dgx_a100_4node", "--sweep", "1KiB:1MiB:4")
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()[2:]
    assert [r.split()[0] for r in rows] == ["1.024", "4.096", "16.38", "65.54", "262.1", "1.049"]
    out = ok_json(run_cli, "dgx_a100_4node", "--sweep", "1KiB:1MiB:4")
    graph = load_topology("dgx_a100_4node")
    assert [r["time_s"] for r in out] == [simulate_allreduce(graph, 4**k * 1024, "auto")["time_s"]
                                          for k in range(6)]


def test_sweep_in_nccl_tests_layout_reads_back(run_cli):
    result = run_cli("collective", "dgx_a100_4node", "--sweep", "8B:1GiB", "--nccl-tests")
    assert result.exit_code == 0, result.output
    run = parse_nccl_tests(result.stdout)
    assert (run.ranks, run.hosts, run.gpus_per_host) == (32, 4, 8)
    graph = load_topology("dgx_a100_4node")
    for row in run.rows:
        expected = simulate_allreduce(graph, row["size_bytes"], "auto")["time_s"]
        assert row["out_of_place"]["time_s"] == pytest.approx(expected, rel=1e-3, abs=6e-9)


def test_group_block_runs_every_block_at_once(run_cli, two_tier_file):
    out = ok_json(run_cli, two_tier_file, "--group", "block", "--size", "100MB", "-p", "ideal")
    assert (out["groups"], out["gpus_per_group"]) == (4, 2)
    # One step each way inside every block: 2 x (2 us + 50 MB / 25 GB/s), all blocks at once.
    assert out["time_s"] == pytest.approx(2 * (2e-6 + 50e6 / 25e9), rel=1e-12)
    assert out["bytes"] == {"inter_block": 0.0, "intra_block": pytest.approx(4 * 2 * 2 * 100e6, rel=1e-12)}


def test_group_as_a_list_of_gpus(run_cli, two_tier_file):
    out = ok_json(run_cli, two_tier_file, "-g", "gpu0_0,gpu0_1", "-s", "100MB", "-p", "ideal")
    assert (out["groups"], out["gpus_per_group"]) == (1, 2)
    assert out["time_s"] == pytest.approx(2 * (2e-6 + 50e6 / 25e9), rel=1e-12)
    # Across blocks the same pair goes through the core; spaces after commas are allowed.
    out = ok_json(run_cli, two_tier_file, "-g", "gpu0_0, gpu3_1", "-s", "100MB", "-p", "ideal")
    graph = load_topology(two_tier_file)
    assert out["time_s"] == simulate_allreduce(graph, 100e6, "auto", group=["gpu0_0", "gpu3_1"],
                                               protocol="ideal")["time_s"]
    assert out["time_s"] == pytest.approx(2 * (12e-6 + 50e6 / 25e9), rel=1e-12)


def test_node_link_json_topology_works_too(run_cli, tmp_path):
    path = tmp_path / "ring.json"
    write_topology(generators.ring(4, intra_bandwidth=10e9, inter_bandwidth=10e9,
                                   intra_latency=0.0, inter_latency=0.0), path)
    # Both directions of the ring (two channels), no latency: 6 x 1 MB / 4 / 10 GB/s / 2.
    out = ok_json(run_cli, path, "--size", "1MB", "-a", "ring", "-p", "ideal")
    assert out["channels"] == 2
    assert out["time_s"] == pytest.approx(6 * 1e6 / 4 / 10e9 / 2, rel=1e-12)


@pytest.mark.parametrize("args, start", [
    (["--size", "100"], "error: --size: '100' has no unit"),
    (["--size", "-5MB"], "error: --size: must not be negative"),
    (["--size=-5MB"], "error: --size: must not be negative"),
    (["--group", "gpu0_0,gpu42_0"], "error: group: 'gpu42_0' is not a GPU of the topology"),
    (["--group", "gpu0_0"], "error: group: an all-reduce needs at least 2 GPUs"),
    (["--group", "gpu0_0,gpu0_0"], "error: group: 'gpu0_0' is named more than once"),
    (["--group", "gpu0_0,gpu0_1,gpu1_0", "-a", "halving-doubling"],
     "error: algorithm: halving-doubling needs a power-of-two group, got 3 GPUs"),
    (["-a", "in-switch"], "error: algorithm: in-switch all-reduce needs a switch with reduction"),
    (["--nccl-tests"], "error: --nccl-tests: --nccl-tests prints a table of sizes"),
    (["--sweep", "1GiB:1MiB"], "error: --sweep: '1GiB:1MiB' needs 0 < MIN <= MAX and FACTOR > 1"),
    (["--sweep", "1MiB"], "error: --sweep: '1MiB' is not MIN:MAX or MIN:MAX:FACTOR"),
    (["--sweep", "1MiB:1GiB:x"], "error: --sweep: factor 'x' is not a number"),
    (["--sweep", "1:1GiB"], "error: --sweep: '1' has no unit"),
    (["--channels", "0"], "error: Invalid value for '--channels' / '-c'"),
])
def test_bad_input_is_one_error_line_and_exit_2(run_cli, args, start):
    result = run_cli("collective", SEED, *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), result.output
    assert result.stdout == "" and "Traceback" not in result.output


def test_missing_topology_file_is_one_error_line(run_cli, tmp_path):
    missing = tmp_path / "nowhere.yaml"
    result = run_cli("collective", missing)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nowhere.yaml" in lines[0], result.output


def test_unknown_algorithm_and_option_are_one_line_usage_errors(run_cli):
    result = run_cli("collective", SEED, "--algorithm", "butterfly")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "'butterfly' is not one of 'ring', 'tree', 'in-switch'" in lines[0]
    result = run_cli("collective", SEED, "--algoritm", "ring")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: No such option '--algoritm'. Did you mean '--algorithm'? (see 'sgdsim collective --help')"]


def test_an_allreduce_that_takes_no_time_has_no_bandwidth_and_the_json_is_json(
        run_cli, write_file):
    path = write_file("zero.yaml", "blocks: 2\ngpus_per_block: 2\n"
                      "gpu: {peak_flops: 10 TFLOP/s, efficiency: 0.5}\n"
                      "intra_block: {bandwidth: 25 GB/s, latency: 0 s}\n"
                      "inter_block: {bandwidth: 10 Gbit/s, latency: 0 s}\n")
    # The wires alone (no protocol latency): nothing to move on links without latency.
    result = run_cli("collective", path, "--size", "0B", "--protocol", "ideal", "--json")
    assert result.exit_code == 0, result.output
    assert "Infinity" not in result.stdout and "NaN" not in result.stdout
    out = json.loads(result.stdout)                       # strict JSON
    assert out["time_s"] == 0.0 and out["algbw_Bps"] is None and out["busbw_Bps"] is None
    text = run_cli("collective", path, "--size", "0B", "--protocol", "ideal")
    assert text.exit_code == 0 and "algbw        -" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["--channels", "65"], "65 is not in the range 1<=x<=64"),
    (["--sweep", "1B:1PB:1.001"], "--sweep: '1B:1PB:1.001' makes 34,557 sizes, more than 1,000"),
])
def test_what_would_not_finish_is_refused_at_once(run_cli, args, message):
    # NCCL runs at most 64 channels; a sweep of a thousand sizes is already a long table.
    result = run_cli("collective", SEED, *args)
    assert result.exit_code == 2 and message in result.output, result.output
