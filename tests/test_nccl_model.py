"""On one NVSwitch node without link latencies, sgdsim's ring is NCCL's own cost model.

NCCL's tuning model (``src/graph/tuning.cc`` of NVIDIA/nccl, Ampere constants) for a ring
all-reduce over the 8 GPUs of an A100 NVSwitch node, written out here from that source:
time = baseLatency + 2(p-1) x hwLatency[NVLINK] + size / algBw, with busBw = 12 channels x
20 GB/s (240 GB/s; LL: min(llMaxBw 87.7, x 0.5); LL128: x 0.92) and algBw = busBw p / 2(p-1).
sgdsim's defaults describe the same node when its NVLinks carry 300 GB/s (Simple's
efficiency 0.8 gives the 240) and no latency of their own: docs/network.md explains why the
one-node targets compare against this and what the shipped file's 1 us per link adds.
"""

import pytest

from simulator.cluster.generators import dgx
from simulator.network.collectives import simulate_allreduce

P = 8
STEPS = 2 * (P - 1)
NCCL = {  # protocol: (base latency us, NVLink hop latency us, ring busBw GB/s)
    "LL": (6.6, 0.6, min(87.7, 240.0 * 0.5)),
    "LL128": (14.0, 1.9, min(240.0 * 0.92, 12 * 20.0)),
    "Simple": (8.4, 3.4, 240.0),
}


def nccl_ring_s(size, protocol):
    base, hop, bus = NCCL[protocol]
    return (base + STEPS * hop) * 1e-6 + size / (bus * 1e9 * P / STEPS)


@pytest.mark.parametrize("protocol", sorted(NCCL))
@pytest.mark.parametrize("size", [2**10, 2**20, 16 * 2**20, 2**30])
def test_a_one_node_ring_is_nccls_model_when_links_add_no_latency(protocol, size):
    graph = dgx(1, intra_bandwidth=300e9, intra_latency=0.0)
    result = simulate_allreduce(graph, size, "ring", protocol=protocol)
    assert result["time_s"] == pytest.approx(nccl_ring_s(size, protocol), rel=1e-9)


def test_auto_picks_nccls_choice_on_one_node():
    graph = dgx(1, intra_bandwidth=300e9, intra_latency=0.0)
    for size, expected in ((2**20, "LL"), (8 * 2**20, "LL128"), (64 * 2**20, "Simple")):
        assert simulate_allreduce(graph, size, "ring")["protocol"] == expected
        assert min(NCCL, key=lambda p: nccl_ring_s(size, p)) == expected
