"""Inputs and assertions shared by the tests (importable: pytest puts tests/ on sys.path)."""

import numpy as np


def random_routes(rng, n, n_links, max_hops):
    """Route rows of distinct links, 1..max_hops long, padded with `n_links`."""
    rows = np.full((n, max_hops), n_links, np.int64)
    for i in range(n):
        k = rng.integers(1, max_hops + 1)
        rows[i, :k] = rng.choice(n_links, k, replace=False)
    return rows


def one_error_line(result):
    """Assert a click result failed as bad input: exit 2, one ``error:`` line on stderr, no
    traceback; return that line."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


# An explicit-form topology: two GPUs in two blocks, an NVSwitch, a spine; defaults used.
EXPLICIT_TOPOLOGY = """\
name: two-gpus
gpu_defaults: {type: A100, peak_flops: 312 TFLOP/s, efficiency: 0.5}
gpus:
  - {name: g0, block: node0}
  - {name: g1, block: node1, efficiency: 0.3}
switches:
  - {name: nvs0, block: node0}
  - {name: spine}
nics: []
link_defaults: {latency: 1 us}
links:
  - {between: [g0, nvs0], bandwidth: 300 GB/s}
  - {between: [nvs0, spine], bandwidth: 200 Gbit/s, latency: 2 us, tier: inter_block}
  - {between: [g1, spine], bandwidth: 200 Gbit/s}
"""


def fault_cluster(blocks):
    """(graph, gpus, groupings) of `blocks` blocks of 2 GPUs: 25 GB/s inside a block, 10 Gbit/s
    to the core, GPUs of 10 TFLOP/s at 50 %; the small cluster of the fault engine's tests."""
    from simulator.cluster.generators import two_tier
    from simulator.engine.timeline import cluster_gpus, cluster_groupings

    graph = two_tier(blocks, 2, intra_bandwidth=25e9, intra_latency=1e-6, inter_bandwidth=1.25e9,
                     inter_latency=5e-6, peak_flops=10e12, efficiency=0.5)
    gpus, _ = cluster_gpus(graph)
    return graph, gpus, cluster_groupings(graph, gpus)


def paths(data, prefix=(), items=None):
    """Every path into parsed YAML `data`, the root first (only the first `items` of each
    list, if given)."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, prefix + (key,), items)
    elif isinstance(data, list):
        for index, value in enumerate(data[:items]):
            yield from paths(value, prefix + (index,), items)


# The smallest compact topology the tests run on: 2 blocks x 2 GPUs, indented to sit under a
# scenario's `topology:` key.
TINY_TOPOLOGY = """\
  blocks: 2
  gpus_per_block: 2
  gpu: {peak_flops: 10 TFLOP/s, efficiency: 0.5}
  intra_block: {bandwidth: 25 GB/s, latency: 1 us}
  inter_block: {bandwidth: 10 Gbit/s, latency: 5 us}
"""
