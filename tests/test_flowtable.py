"""The persistent flow table and its incremental solve against the stateless kernels, bit
for bit; and every kernel interpreted against compiled, bit for bit."""

import networkx as nx
import numpy as np
import pytest
import simpy
from helpers import random_routes

from simulator.cluster import generators
from simulator.network import maxmin
from simulator.network.flows import Network, simulate_transfers
from simulator.network.flowtable import FlowTable
from simulator.utils import jit


@pytest.mark.parametrize("seed", range(8))
def test_resolve_gives_the_bits_of_entry_level_then_refill(seed):
    """Random joins and leaves on a few links whose capacities tie often (so that the
    order of equal shares in the heap matters): after every solve, the table's rates
    equal those of the stateless rule applied to its rows in join order."""
    rng = np.random.default_rng(seed)
    n_links = 12
    capacity = np.append(rng.choice([3.0, 6.0, 7.0, 10.0], n_links), np.inf)
    table = FlowTable(capacity)
    rows, rates = np.empty((0, 1), np.int64), np.empty(0)       # the reference, join order
    for _ in range(60):
        left_level, seeds = np.inf, np.empty(0, np.int64)
        if len(rows) and rng.random() < 0.5:                       # some flows leave
            leaving = rng.random(len(rows)) < 0.3
            slots = table.flowing()
            table.finish[slots[leaving]] = -1.0                    # due now
            n, left_level, _, _, seeds = table.advance(0.0, 0.0, np.zeros(n_links + 1))
            assert n == leaving.sum()
            if n:
                assert left_level == rates[leaving].min()
            else:
                seeds = np.empty(0, np.int64)
            rows, rates = rows[~leaving], rates[~leaving]
        k = int(rng.integers(0, 6))
        joined = np.empty(0, np.int64)
        if k:                                                      # some flows join
            width = int(rng.integers(1, 5))
            new = random_routes(rng, k, n_links, width)
            joined = table.join(new, rng.uniform(1, 5, k), np.zeros(k, np.int64), np.arange(k))
            w = max(rows.shape[1], width)
            rows = np.vstack([np.pad(rows, ((0, 0), (0, w - rows.shape[1])), constant_values=n_links),
                              np.pad(new, ((0, 0), (0, w - width)), constant_values=n_links)])
            rates = np.append(rates, np.zeros(k))
        if not len(rows) or (not k and left_level == np.inf):
            continue
        joining = np.arange(len(rows)) >= len(rows) - k
        level = left_level
        if k:
            level = min(level, maxmin.entry_level(rows, capacity, rates, joining))
        solve = joining | (rates >= level * (1 - 1e-9))
        want = maxmin.refill(rows, capacity, rates, solve, np.concatenate([seeds, rows[joining].ravel()]))
        table.resolve(0.0, left_level, seeds, joined)
        got = table.rate[table.flowing()]
        assert got.tobytes() == want.tobytes()
        rates = want
        for link in range(n_links):                                # lists stay in join order
            assert np.all(np.diff(table.seq[table.link_flows(link)]) > 0)


def test_segments_survive_growth_blanks_and_repacking():
    capacity = np.append(np.full(3, 10.0), np.inf)
    table = FlowTable(capacity)
    order = []                                     # join numbers (seq) of the flows on link 0
    for round_ in range(40):                       # many joins onto link 0, most leave again
        slots = table.join(np.array([[0, 1 + round_ % 2]] * 7), np.ones(7), np.zeros(7, np.int64),
                           np.arange(7))
        order.extend(table.seq[slots].tolist())
        table.resolve(0.0, np.inf, np.empty(0, np.int64), slots)
        doomed = {seq for i, seq in enumerate(order) if i % 3}
        flowing = table.flowing()
        table.finish[flowing[np.isin(table.seq[flowing], list(doomed))]] = -1.0
        table.advance(0.0, 0.0, np.zeros(4))
        order = [seq for i, seq in enumerate(order) if not i % 3]
        assert table.seq[table.link_flows(0)].tolist() == order
        assert table.seq[table.flowing()].tolist() == order
    assert table.n_active == len(order) and table.top < 3 * len(order) + 64 + 7


def network_run(graph, transfers):
    env = simpy.Environment()
    net = Network(env, graph)
    pairs = tuple((t["src"], t["dst"]) for t in transfers)
    done = net._submit(pairs, np.array([t["bytes"] for t in transfers]),
                       np.array([t["start"] for t in transfers]))
    finish = env.run(done)
    return finish.tobytes(), net.link_bytes.tobytes(), net.rate_updates


@pytest.mark.parametrize("seed", range(3))
def test_interpreted_and_compiled_kernels_agree_bit_for_bit(seed):
    jit.compile_kernels()
    rng = np.random.default_rng(seed)
    graph = generators.two_tier(4, 4, inter_bandwidth=25e9)        # GPU and block links tie
    gpus = [n for n, k in graph.nodes(data="kind") if k == "gpu"]
    transfers = []
    for _ in range(60):
        src, dst = rng.choice(len(gpus), 2, replace=False)
        transfers.append({"src": gpus[src], "dst": gpus[dst], "bytes": float(rng.choice([1e6, 2e6, 5e6])),
                          "start": float(rng.integers(0, 6)) * 1e-4})
    compiled = network_run(graph, transfers)
    with jit.interpreted():
        interpreted = network_run(graph, transfers)
        rows = random_routes(rng, 40, 10, 3)
        cap = np.append(rng.uniform(1, 10, 10), np.inf)
        plain = maxmin.max_min_rates(rows, cap)
    assert compiled == interpreted
    assert maxmin.max_min_rates(rows, cap).tobytes() == plain.tobytes()


def test_small_runs_do_not_need_numba():
    # The 2-GPU case of docs/network.md runs as Python; results are the same either way.
    g = nx.star_graph(["sw", "g0", "g1", "g2"])
    for u, v in g.edges:
        g.edges[u, v].update(bandwidth=1e9, latency=0.0, tier="intra_block")
    with jit.interpreted():
        assert simulate_transfers(g, [{"src": "g0", "dst": "g1", "bytes": 1e6, "start": 0},
                                      {"src": "g0", "dst": "g2", "bytes": 1e6, "start": 0}]) == [0.002, 0.002]
