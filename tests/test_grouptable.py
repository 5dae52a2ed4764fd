"""The group table (rates per group of flows with the same candidate links, bytes left
against group clocks) against a full max-min solve and against the per-flow table."""

import numpy as np
import pytest
import simpy
from helpers import random_routes

from simulator.cluster import generators
from simulator.network import grouptable, maxmin
from simulator.network.flows import Network, simulate_transfers
from simulator.network.flowtable import FlowTable
from simulator.network.grouptable import GroupTable
from simulator.utils import jit


@pytest.mark.parametrize("solver", ["levels", "filling", "levels, one round"])
@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_rates_are_those_of_a_full_solve_and_no_other_link_is_full(seed, compact, solver,
                                                                   monkeypatch):
    """Random joins and removals on links whose capacities tie often; after every solve
    every rate equals the stateless full solve's (to rounding), and no link left out of
    the solve carries more than its capacity. With `compact`, the groups and the pairs
    of the load bound are renumbered before every other solve (as a table does after a
    burst of them). The rates come from the bottleneck levels (falling back to
    progressive filling where a guess does not settle), from progressive filling alone,
    or from the levels with a single round of repairs (so that the fallback runs often)."""
    rng = np.random.default_rng(seed)
    n_links = 12
    capacity = np.append(rng.choice([3.0, 6.0, 7.0, 40.0], n_links), np.inf)
    table = GroupTable(capacity)
    table.fast = solver != "filling"
    if solver == "levels, one round":
        monkeypatch.setattr(grouptable, "REPAIR_ROUNDS", 1)
    if compact:
        monkeypatch.setattr(grouptable, "REBUILD_ABOVE", 0)        # drop dead couplings too
    promoted = let_go = 0
    for step in range(80):
        left_level, seeds = np.inf, np.empty(0, np.int64)
        flowing = table.flowing()
        if len(flowing) and rng.random() < 0.5:
            out = flowing[rng.random(len(flowing)) < 0.3]
            if len(out):
                left_level, seeds = table.remove(out)
        k = int(rng.integers(0, 6))
        joined = np.empty(0, np.int64)
        if k:
            joined = table.join(random_routes(rng, k, n_links, int(rng.integers(1, 5))),
                                rng.uniform(1, 5, k), np.zeros(k, np.int64), np.arange(k))
        before = table.candidate.sum()
        if compact and step % 2:
            table._compact()
            table._compact_pairs()
            assert table.n_groups == len(table._key_to_group)
            assert table.pair_n[:len(table._pair_of)].all()
        table.resolve(float(step), left_level, seeds, joined)
        promoted += table.candidate.sum() > before
        let_go += table.candidate.sum() < before
        if table._assigned:
            check_bottleneck_counts(table)
        slots = table.flowing()
        if not len(slots):
            continue
        rows = table.route[slots]
        want = maxmin.max_min_rates(rows, capacity)
        np.testing.assert_allclose(table.rate[slots], want, rtol=1e-12)
        load = np.bincount(rows.ravel(), np.repeat(want, rows.shape[1]), n_links + 1)[:n_links]
        outside = ~table.candidate[:n_links]
        assert np.all(load[outside] <= capacity[:n_links][outside] * (1 + 1e-12))
    assert promoted and let_go or seed                             # both paths were taken
    if solver == "filling":
        assert table.solves_fast == 0
    elif solver == "levels":                                       # mostly levels, some filling
        assert table.solves_fast > 2 * table.solves_filled > 0
    else:
        assert table.solves_fast > 0 and table.solves_filled > 10


def check_bottleneck_counts(table):
    """The fast solve's counts, kept up to date event by event, against counts made
    afresh from the groups: flows bottlenecked per link, flows per coupling (link,
    bottleneck), and the per-link lists of bottlenecked groups."""
    n = table.n_groups
    live = np.flatnonzero(table.g_n[:n] > 0)
    assert (table.g_b[live] >= 0).all()
    n_b = np.zeros_like(table.n_b)
    np.add.at(n_b, table.g_b[live], table.g_n[live])
    assert n_b.tolist() == table.n_b.tolist()
    cp_n = np.zeros(table.n_cp[0], np.int64)
    for g in live:
        for h, link in enumerate(table._key_of[g]):
            p = table.g_cp[g, h]
            if link == table.g_b[g]:
                assert p == -1
                continue
            assert (table.cp_link[p], table.cp_b[p]) == (link, table.g_b[g])
            cp_n[p] += table.g_n[g]
    assert cp_n.tolist() == table.cp_n[:table.n_cp[0]].tolist()
    for link in range(len(table.capacity)):
        listed, g = [], table.b_head[link]
        while g >= 0:
            listed.append(int(g))
            g = table.b_nxt[g]
        assert sorted(listed) == sorted(int(g) for g in live if table.g_b[g] == link)


def run(graph, pairs, nbytes, start_s, table_class):
    env = simpy.Environment()
    net = Network(env, graph, table_class=table_class)
    finish = env.run(net._submit(pairs, nbytes, start_s))
    return np.asarray(finish), net.link_bytes, net.rate_updates, net._table


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("inter_bandwidth", [5e9, 25e9, 200e9])
def test_finish_times_match_the_per_flow_table(seed, inter_bandwidth):
    """Block links narrower than, tied with, or wider than the GPU links (so that GPU
    links are, or are not, bottlenecks): finish times within 1e-12 of the per-flow
    table's, the same bytes per link, and as many recomputations give or take one (two
    finishes 1e-12 apart may fall into one instant in one table and not in the other);
    the group table's rates came mostly from the bottleneck levels."""
    rng = np.random.default_rng(seed)
    graph = generators.two_tier(4, 4, inter_bandwidth=inter_bandwidth)
    gpus = [n for n, kind in graph.nodes(data="kind") if kind == "gpu"]
    n = 300
    src = rng.integers(len(gpus), size=n)
    dst = (src + rng.integers(1, len(gpus), size=n)) % len(gpus)
    pairs = tuple((gpus[s], gpus[d]) for s, d in zip(src, dst))
    nbytes = rng.choice([1e6, 2e6, 5e6, 5e7], size=n)            # equal sizes: equal finishes
    start_s = np.sort(rng.integers(0, 20, size=n) * 1e-4)
    got = run(graph, pairs, nbytes, start_s, GroupTable)
    want = run(graph, pairs, nbytes, start_s, FlowTable)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    assert abs(got[2] - want[2]) <= 1
    assert got[3].solves_fast > 10 * got[3].solves_filled         # the levels did the work


@pytest.mark.parametrize("seed", range(2))
def test_interpreted_and_compiled_kernels_agree_bit_for_bit(seed):
    """The group table's kernels (the levels, their moves, progressive filling) give the
    same bits compiled by numba as run as Python."""
    jit.compile_kernels()
    rng = np.random.default_rng(seed)
    graph = generators.two_tier(4, 4, inter_bandwidth=25e9)         # GPU and block links tie
    gpus = [n for n, kind in graph.nodes(data="kind") if kind == "gpu"]
    src = rng.integers(len(gpus), size=200)
    dst = (src + rng.integers(1, len(gpus), size=200)) % len(gpus)
    pairs = tuple((gpus[s], gpus[d]) for s, d in zip(src, dst))
    nbytes = rng.choice([1e6, 2e6, 5e7], size=200)
    start_s = np.sort(rng.integers(0, 20, size=200) * 1e-4)
    compiled = run(graph, pairs, nbytes, start_s, GroupTable)
    with jit.interpreted():
        interpreted = run(graph, pairs, nbytes, start_s, GroupTable)
    assert compiled[0].tobytes() == interpreted[0].tobytes()
    assert compiled[1].tobytes() == interpreted[1].tobytes()
    assert compiled[3].solves_fast == interpreted[3].solves_fast > 0


def test_simulate_transfers_runs_on_the_group_table_and_networks_on_the_per_flow_one():
    assert Network.table_class is FlowTable
    g = generators.two_tier(2, 2)
    transfers = [{"src": "gpu0_0", "dst": "gpu1_0", "bytes": 100e6, "start": 0.0},
                 {"src": "gpu0_1", "dst": "gpu1_1", "bytes": 100e6, "start": 0.0},
                 {"src": "gpu0_0", "dst": "gpu0_1", "bytes": 10e6, "start": 1e-3}]
    original = GroupTable.resolve
    calls = []
    GroupTable.resolve = lambda self, *a: calls.append(1) or original(self, *a)
    try:
        finish_s = simulate_transfers(g, transfers)
    finally:
        GroupTable.resolve = original
    assert calls
    # docs/network.md: 12 us + 16 ms; 1.002 ms + 10 MB / 18.75 GB/s
    np.testing.assert_allclose(finish_s, [16.012e-3, 16.012e-3, 1.002e-3 + 10e6 / 18.75e9], rtol=1e-12)


def test_a_link_left_out_is_taken_in_when_it_fills():
    """Link 0 (10 B/s) is left out while flow A (links 0, 1) is held by link 1 (8 B/s) and
    flow C by link 2 (8 B/s). Flow B (links 0, 2) joins C's group: solved without link 0,
    A would keep 8 and B get 4, 12 B/s on link 0; so link 0 is taken in and the solve
    runs again: B and C 4 on link 2, A the 6 that B leaves on link 0."""
    table = GroupTable(np.array([10.0, 8.0, 8.0, np.inf]))

    def join(route):
        return table.join(np.array([route]), np.array([80.0]), np.array([0]), np.array([0]))

    table.resolve(0.0, np.inf, [], np.concatenate([join([0, 1]), join([2, 3])]))
    assert table.candidate[:3].tolist() == [False, True, True]
    assert table.rate[:2].tolist() == [8.0, 8.0]
    table.resolve(0.0, np.inf, [], join([0, 2]))
    assert table.candidate[:3].tolist() == [True, True, True]
    assert table.rate[:3].tolist() == [6.0, 4.0, 4.0]
    assert grouptable.FULL < 1


@pytest.mark.parametrize("seed", range(20))
def test_the_entry_bound_is_a_lower_bound_of_the_entry_level_and_no_worse_than_capacity_per_flow(seed):
    """One candidate link, flows on it at random rates (ties at the top often, as flows
    bottlenecked there share one rate), k joining: the kernel's bound never exceeds the
    level the link really fills at (maxmin.entry_level, the per-flow table's exact level),
    and is at least capacity / flows."""
    rng = np.random.default_rng(seed)
    n_old, k = int(rng.integers(1, 30)), int(rng.integers(1, 4))
    capacity = float(rng.uniform(10, 100))
    top = capacity / n_old * rng.uniform(0.5, 1.5)
    rates = np.where(rng.random(n_old) < 0.5, top, rng.uniform(0, top, n_old))
    if rates.sum() > capacity:                        # the other flows fit on the link
        rates *= capacity / rates.sum()
    table = GroupTable(np.array([capacity, np.inf]))
    slots = table.join(np.zeros((n_old + k, 1), np.int64), np.ones(n_old + k),
                       np.zeros(n_old + k, np.int64), np.arange(n_old + k))
    table.candidate[0] = True
    table.group[slots] = slots                        # a group of its own per flow
    table.g_rate = np.append(rates, np.zeros(k))
    joined = slots[n_old:]
    bound = grouptable._entry_bound(joined, table.route, table.candidate, table.on_link,
                                    table.n_on, table.group, table.g_rate, table.capacity,
                                    np.zeros(len(slots), np.bool_), np.zeros(2, np.int64))
    truth = maxmin.entry_level(np.zeros((n_old + k, 1), np.int64), table.capacity,
                               np.append(rates, np.zeros(k)), np.arange(n_old + k) >= n_old)
    assert bound <= truth * (1 + 1e-12)
    assert bound >= capacity / (n_old + k) * (1 - 1e-12)
