"""Published nccl-tests all_reduce_perf measurements that the benchmarks compare against.

Numbers only (message size, and the out-of-place and in-place times nccl-tests printed,
in microseconds), each table with where it was published. They are not shipped with
sgdsim; bench/bench_collectives.py turns a table back into nccl-tests' layout
(simulator.network.nccltests.format_nccl_tests) to calibrate from it, and

    python bench/published.py oci_one_node.txt

writes the one-node table as an all_reduce_perf output, for ``sgdsim calibrate``
(docs/calibrate.md).
"""

import sys
from pathlib import Path

# One Oracle Cloud BM.GPU4.8 node: 8 x A100-SXM4-40GB on NVSwitch (third-generation NVLink),
# float sum, all_reduce_perf -b 64 -e 10G -f 2 -g 8 (one process, 8 GPUs). Published in
# Oracle Japan's OCI tutorials, "GPUクラスタを構築する" (build a GPU cluster),
# https://oracle-japan.github.io/ocitutorials/intermediates/spinup-gpu-cluster/
# (source: github.com/oracle-japan/ocitutorials, tutorials/_intermediates/spinup-gpu-cluster.md).
OCI_A100_ONE_NODE = {
    "source": "Oracle Japan OCI tutorials, BM.GPU4.8 (8 x A100-SXM4-40GB, NVSwitch), "
              "https://oracle-japan.github.io/ocitutorials/intermediates/spinup-gpu-cluster/",
    "ranks": 8,
    "hosts": 1,
    # size (B), out-of-place time (us), in-place time (us)
    "rows": [
        (64, 32.01, 31.82), (128, 32.01, 32.15), (256, 31.75, 32.02), (512, 32.21, 31.72),
        (1024, 32.03, 32.17), (2048, 31.77, 32.24), (4096, 32.13, 32.20), (8192, 32.22, 32.14),
        (16384, 32.48, 32.20), (32768, 32.02, 32.20), (65536, 35.40, 34.20),
        (131072, 38.50, 37.47), (262144, 45.21, 44.01), (524288, 58.96, 57.54),
        (1048576, 76.71, 77.73), (2097152, 112.4, 113.7), (4194304, 134.5, 134.7),
        (8388608, 185.8, 183.2), (16777216, 245.1, 241.4), (33554432, 398.2, 397.6),
        (67108864, 589.5, 587.8), (134217728, 1191.2, 1182.6), (268435456, 2121.9, 2110.9),
        (536870912, 4208.2, 4208.0), (1073741824, 8166.8, 8165.2), (2147483648, 16232, 16238),
        (4294967296, 32097, 32099), (8589934592, 63929, 63911),
    ],
}

# Large all-reduces across DGX A100-class nodes, 8 x 200 Gbit/s InfiniBand (or 16 x 100 Gbit/s
# RoCE) per node: bus bandwidth in GB/s at a size, with its source.
MULTI_NODE_BUSBW = [
    ("DGX A100, 8 x 200 Gbit/s IB (NVIDIA, NVIDIA/nccl issue 812)", None, None, 192.0),
    ("Azure NDmv4, 2 nodes x 8 A100, NCCL 2.17.1 (microsoft/mscclpp, performance-ndmv4.md)",
     2, 2**30, 183.82),
    ("Azure NDmv4, 2 nodes x 8 A100, NCCL 2.17.1 (microsoft/mscclpp, performance-ndmv4.md)",
     2, 4 * 2**30, 188.18),
    ("OCI BM.GPU4.8, 2 nodes, NCCL 2.26.5 (oracle-japan/ocitutorials, run-nccltests-ubuntu)",
     2, 10 * 2**30, 191.76),
]

# Small-message latency on one 8 x A100 NVSwitch node: time in us at a size.
ONE_NODE_LATENCY = [
    ("Azure NDmv4, 1 node x 8 A100, NCCL 2.17.1, 1 KiB (microsoft/mscclpp, performance-ndmv4.md)",
     1024, 16.96),
]


def oci_one_node_text():
    """The OCI one-node table in nccl-tests' ``all_reduce_perf`` layout."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from simulator.network.nccltests import format_nccl_tests

    table = OCI_A100_ONE_NODE
    rows = [(size, a * 1e-6, b * 1e-6) for size, a, b in table["rows"]]
    return format_nccl_tests(rows, ranks=table["ranks"], hosts=["oci-node"],
                             gpu_name="NVIDIA A100-SXM4-40GB")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/published.py OUTPUT.txt")
    Path(sys.argv[1]).write_text(oci_one_node_text())
    print(f"wrote {sys.argv[1]}: {OCI_A100_ONE_NODE['source']}")
