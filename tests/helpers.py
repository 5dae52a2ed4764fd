"""Inputs and assertions shared by the tests (importable: pytest puts tests/ on sys.path)."""


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
