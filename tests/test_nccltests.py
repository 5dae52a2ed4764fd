"""The nccl-tests reader on every layout nccl-tests has printed, and its refusals.

The layouts below are written from the printf formats of NVIDIA/nccl-tests (src/util.cu,
writeResultHeader and writeBenchmarkLine*; older releases: no root column, an error column
instead of #wrong, times printed by magnitude), with this file's own numbers.
"""

import pytest
from helpers import one_error_line

from simulator.network.nccltests import (
    format_nccl_tests,
    parse_nccl_tests,
    read_nccl_tests,
)
from simulator.utils.errors import InputError

DEVICES = "".join(f"#  Rank {r:2d} Group  0 Pid {4000 + r:6d} on {'node' + str(r // 4):>10} "
                  f"device {r % 4:2d} [0x{r:02x}] NVIDIA A100-SXM4-80GB\n" for r in range(8))

CURRENT = f"""\
# nccl-tests version 2.19.6 nccl-headers=22807 nccl-library=22807
# Collective test starting: all_reduce_perf
# nThread 1 nGpus 1 minBytes 1048576 maxBytes 4194304 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0
#
# Using devices
{DEVICES}#
#                                                              out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw  #wrong     time   algbw   busbw  #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)             (us)  (GB/s)  (GB/s)
     1048576        262144     float     sum      -1   100.00   10.49   18.35       0    98.00   10.70   18.72       0
     2097152        524288     float     sum      -1   150.00   13.98   24.47       0   152.00   13.80   24.15       0
     4194304       1048576     float     sum      -1   250.00   16.78   29.36       0   250.00   16.78   29.36       0
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 24.0683
#
# Collective test concluded: all_reduce_perf
"""


def test_the_current_layout():
    run = parse_nccl_tests(CURRENT)
    assert (run.ranks, run.hosts, run.gpus_per_host, run.collective) == (8, 2, 4, "all_reduce_perf")
    assert [r["size_bytes"] for r in run.rows] == [1048576, 2097152, 4194304]
    assert run.rows[0]["out_of_place"] == {"time_s": 1e-4, "algbw_Bps": 10.49e9,
                                           "busbw_Bps": 18.35e9}
    assert run.rows[0]["in_place"]["time_s"] == pytest.approx(98e-6, rel=1e-12)
    assert len(run.times()) == 6 and len(run.times("in_place")) == 3
    assert run.lines[2097152] == 19


def test_no_placement_line_and_na_fields():
    # Newer releases may print no out-of-place/in-place line; #wrong is N/A without -c.
    text = CURRENT.replace("#                                                              "
                           "out-of-place                       in-place\n", "")
    text = text.replace("       0    ", "     N/A    ").replace("       0\n", "     N/A\n")
    run = parse_nccl_tests(text)
    assert len(run.rows) == 3 and run.rows[2]["in_place"]["time_s"] == pytest.approx(250e-6)


def test_an_old_layout_without_root_and_with_an_error_column():
    # 2019-2020 releases: 'error' column with values like 1e-06, no root; lines behind MPI
    # tags, a banner line between the header and the rows, devices without Group.
    old = """\
[1,0]<stdout>:# nThread 1 nGpus 1 minBytes 8 maxBytes 4194304 step: 2(factor) warmup iters: 5 iters: 20 validation: 1
[1,0]<stdout>:#
[1,0]<stdout>:# Using devices
[1,0]<stdout>:#   Rank  0 Pid  12001 on     alpha device  0 [0x1a] Tesla V100-SXM2-32GB
[1,0]<stdout>:#   Rank  1 Pid  12002 on     alpha device  1 [0x1b] Tesla V100-SXM2-32GB
[1,0]<stdout>:#   Rank  2 Pid  12003 on      beta device  0 [0x1a] Tesla V100-SXM2-32GB
[1,0]<stdout>:#   Rank  3 Pid  12004 on      beta device  1 [0x1b] Tesla V100-SXM2-32GB
[1,0]<stdout>:#
[1,0]<stdout>:#                                                     out-of-place                       in-place
[1,0]<stdout>:#       size         count    type   redop     time   algbw   busbw  error     time   algbw   busbw  error
[1,0]<stdout>:#        (B)    (elements)                     (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
NCCL version 2.7.8+cuda11.0
[1,0]<stdout>:     1048576        262144   float     sum    200.0    5.24    7.86  1e-06    201.0    5.22    7.83  1e-06
[1,0]<stdout>:     4194304       1048576   float     sum    600.0    6.99   10.49  1e-06    598.0    7.01   10.52  1e-06
"""
    run = parse_nccl_tests(old)
    assert (run.ranks, run.hosts, run.gpus_per_host, run.collective) == (4, 2, 2, None)
    assert run.rows[1]["out_of_place"]["time_s"] == pytest.approx(600e-6, rel=1e-12)
    assert run.rows[0]["root"] is None


def test_the_per_iteration_layout():
    header = ("#       size         count      type   redop    root     time   algbw   busbw  "
              "#wrong    i_min    i_max    i_p99    i_cv%     time   algbw   busbw  #wrong    "
              "i_min    i_max    i_p99    i_cv%\n")
    row = ("     {size}   {count}     float     sum      -1   {t:.2f}   1.00   1.75     N/A   "
           "90.00  110.00  109.00     5.00   {t:.2f}   1.00   1.75     N/A   90.00  110.00  "
           "109.00     5.00\n")
    text = header + row.format(size=1048576, count=262144, t=100.0) + \
        row.format(size=2097152, count=524288, t=160.0)
    run = parse_nccl_tests(text)
    assert run.ranks == 8                                  # from busbw / algbw = 1.75
    assert [r["out_of_place"]["time_s"] for r in run.rows] == pytest.approx([1e-4, 1.6e-4])


def test_a_row_with_in_place_only():
    # writeBenchMarkLineNullBody: trace replay prints spaces where out-of-place would be.
    text = CURRENT.replace("   100.00   10.49   18.35       0", " " * 32)
    run = parse_nccl_tests(text)
    assert run.rows[0]["out_of_place"] is None and run.rows[0]["in_place"]["time_s"] > 0
    assert len(run.times()) == 5


def test_what_sgdsim_writes_reads_back():
    rows = [(2.0**k, 3e-5 + 2.0**k / 50e9, 3.1e-5 + 2.0**k / 49e9) for k in range(10, 31)]
    run = parse_nccl_tests(format_nccl_tests(rows, ranks=16, hosts=["a", "b"]))
    assert (run.ranks, run.hosts, run.gpus_per_host) == (16, 2, 8)
    for row, (size, oop, ip) in zip(run.rows, rows):
        assert row["size_bytes"] == size
        assert row["out_of_place"]["time_s"] == pytest.approx(oop, rel=2e-4)
        assert row["in_place"]["time_s"] == pytest.approx(ip, rel=2e-4)


@pytest.mark.parametrize("text, message", [
    ("hello\nworld\n", "not nccl-tests output: no result table found"),
    (CURRENT.replace("Collective test starting: all_reduce_perf",
                     "Collective test starting: reduce_scatter_perf"),
     "this is reduce_scatter_perf output, not all_reduce_perf"),
    (CURRENT.replace("  sum      -1", " none      -1"), "not an all-reduce: this row has no reduction"),
    (CURRENT.replace("  sum      -1", "  sum       0"), "not an all-reduce: this row has root 0"),
    ("\n".join(line for line in CURRENT.splitlines() if not line.startswith("     2")
               and not line.startswith("     4")), "one point: a fit needs at least 2 message sizes"),
    (CURRENT.replace("     4194304       1048576", "     2097152        524288"),
     "size 2097152 B appears twice, first at line 19"),
    (CURRENT.replace("18.35", "9.17").replace("24.47", "12.23").replace("29.36", "14.68")
     .replace("18.72", "9.36").replace("24.15", "12.08"),
     "busbw / algbw is 0.875, not an all-reduce over 8 GPUs (1.75)"),
    (CURRENT.replace("   100.00   10.49   18.35       0    98.00", "   100.00   10.49   18.35"),
     "a row of 11 fields under a header of 13"),
])
def test_refusals_name_the_file(text, message):
    with pytest.raises(InputError) as info:
        parse_nccl_tests(text, file="run.txt")
    assert info.value.message == message
    assert info.value.file == "run.txt" and info.value.fix


def test_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_nccl_tests(tmp_path / "nope.txt")


def test_the_cli_refuses_a_bad_file_in_one_line(write_file, run_cli, tmp_path):
    bad = write_file("scatter.txt", CURRENT.replace("all_reduce_perf", "reduce_scatter_perf"))
    good = write_file("good.txt", CURRENT)
    line = one_error_line(run_cli("calibrate", good, bad, "--topology", "dgx_a100_4node", "-o",
                                  tmp_path / "out.yaml"))
    assert line == (f"error: {bad}: this is reduce_scatter_perf output, not all_reduce_perf "
                    "(calibrate from all_reduce_perf runs)")
    assert not (tmp_path / "out.yaml").exists()
