"""The flow-level network model against hand-worked cases, the shared reference cases and
an independent, deliberately naive simulator written here."""

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import simpy

from simulator.network.flows import Network, simulate_transfers
from simulator.network.maxmin import entry_level, max_min_rates, refill
from simulator.network.routing import shortest_route
from simulator.utils.errors import InputError, NetworkError

# A copy of shared/reference/transfer_cases.json, kept in the repo so these tests always run.
REFERENCE = Path(__file__).parent / "data" / "transfer_cases.json"


def star(n_gpus, bandwidth=10e9, latency=1e-6):
    """GPUs g0..g{n-1} on one switch; every link the same."""
    g = nx.Graph()
    g.add_node("sw", kind="switch")
    for i in range(n_gpus):
        g.add_node(f"g{i}", kind="gpu", block="b0")
        g.add_edge(f"g{i}", "sw", bandwidth=bandwidth, latency=latency, tier="intra_block")
    return g


def t(src, dst, nbytes, start=0.0):
    return {"src": src, "dst": dst, "bytes": nbytes, "start": start}


# --------------------------------------------------------------------------- hand-worked
def test_one_transfer_is_latency_plus_bytes_over_bandwidth():
    g = star(2, bandwidth=10e9, latency=3e-6)
    [finish] = simulate_transfers(g, [t("g0", "g1", 5e6, start=0.25)])
    assert finish == pytest.approx(0.25 + 2 * 3e-6 + 5e6 / 10e9, rel=1e-12)


def test_two_flows_unequal_sizes_staggered_starts():
    # g0 -> g1 (10 MB at t=0) and g0 -> g2 (4 MB at t=0.5 ms) share g0's 10 GB/s uplink; no latency.
    # 0 .. 0.5 ms: A alone at 10 GB/s moves 5 MB. Then both at 5 GB/s: B's 4 MB take 0.8 ms
    # (ends 1.3 ms), A moves 4 MB meanwhile, 1 MB left at 10 GB/s: ends 1.4 ms.
    g = star(3, bandwidth=10e9, latency=0.0)
    finish = simulate_transfers(g, [t("g0", "g1", 10e6), t("g0", "g2", 4e6, start=0.5e-3)])
    assert finish == pytest.approx([1.4e-3, 1.3e-3], rel=1e-12)


def test_three_flows_share_a_link_then_speed_up_as_others_finish():
    # Three flows out of g0 (1, 2, 3 MB at t=0) on a 3 GB/s uplink, no latency.
    # 1 GB/s each until the 1 MB one ends at 1 ms; 1.5 GB/s each: the 2 MB one has 1 MB left,
    # ends at 1 ms + 1/1.5 ms; the last then has 1.5 MB - ... worked in steps:
    # t1 = 1 ms (A done; B, C have 1 MB, 2 MB left); t2 = t1 + 1e6/1.5e9 (B done, C 1 MB left);
    # t3 = t2 + 1e6/3e9.
    g = star(4, bandwidth=3e9, latency=0.0)
    finish = simulate_transfers(g, [t("g0", "g1", 1e6), t("g0", "g2", 2e6), t("g0", "g3", 3e6)])
    t1 = 1e-3
    t2 = t1 + 1e6 / 1.5e9
    t3 = t2 + 1e6 / 3e9
    assert finish == pytest.approx([t1, t2, t3], rel=1e-12)


def test_max_min_gives_spare_capacity_to_the_unbottlenecked_flow():
    # Flow X: a -> c crosses a-b (10 GB/s) and b-c (2 GB/s); flow Y: a -> b only.
    # Equal split of a-b would give 5 and 5; max-min gives X its bottleneck 2 and Y the spare 8.
    g = nx.Graph()
    g.add_edge("a", "b", bandwidth=10e9, latency=0.0, tier="intra_block")
    g.add_edge("b", "c", bandwidth=2e9, latency=0.0, tier="intra_block")
    finish = simulate_transfers(g, [t("a", "c", 2e6), t("a", "b", 8e6)])
    assert finish == pytest.approx([1e-3, 1e-3], rel=1e-12)


def test_links_are_full_duplex():
    g = star(2, bandwidth=10e9, latency=0.0)
    finish = simulate_transfers(g, [t("g0", "g1", 10e6), t("g1", "g0", 10e6)])
    assert finish == pytest.approx([1e-3, 1e-3], rel=1e-12)


def test_zero_bytes_take_the_latency_and_self_transfers_take_nothing():
    g = star(2, bandwidth=10e9, latency=2e-6)
    assert simulate_transfers(g, [t("g0", "g1", 0, 1.0), t("g0", "g0", 5e6, 2.0)]) == [1.0 + 4e-6, 2.0]


def test_shared_reference_cases_to_1e_9():
    cases = json.loads(REFERENCE.read_text())["cases"]
    assert len(cases) >= 8
    for case in cases:
        graph = nx.node_link_graph(case["graph"], edges="links")
        got = simulate_transfers(graph, case["transfers"])
        assert got == pytest.approx(case["finish_s"], rel=1e-9, abs=0), case["name"]


# --------------------------------------------------------------------------- an independent simulator
def naive_progressive_filling(routes, capacity):
    """Textbook progressive filling: raise all unfrozen flows until some link fills."""
    rates = {f: 0.0 for f in routes}
    frozen = set()
    while len(frozen) < len(routes):
        slack = {}
        for link, cap in capacity.items():
            users = [f for f in routes if link in routes[f] and f not in frozen]
            if users:
                used = sum(rates[f] for f in routes if link in routes[f])
                slack[link] = ((cap - used) / len(users), users)
        step = min(s for s, _ in slack.values())
        for f in routes:
            if f not in frozen:
                rates[f] += step
        for link, (s, users) in slack.items():
            if s <= step * (1 + 1e-12):
                frozen.update(users)
    return rates


def naive_simulation(graph, transfers):
    """Event loop that recomputes every rate from scratch at every event."""
    links = {}
    for u, v, d in graph.edges(data=True):
        links[(u, v)] = links[(v, u)] = d
    routes, ready = {}, {}
    for i, tr in enumerate(transfers):
        path = nx.shortest_path(graph, tr["src"], tr["dst"])  # trees only: the route is unique
        routes[i] = [(a, b) for a, b in zip(path, path[1:])]
        ready[i] = tr["start"] + sum(links[l]["latency"] for l in routes[i])
    left = {i: float(tr["bytes"]) for i, tr in enumerate(transfers)}
    finish, now, active = {}, 0.0, set()
    while len(finish) < len(transfers):
        rates = naive_progressive_filling({i: routes[i] for i in active},
                                          {l: d["bandwidth"] for l, d in links.items()}) if active else {}
        next_ready = min([ready[i] for i in ready if i not in active and i not in finish] + [np.inf])
        next_done = min([now + left[i] / rates[i] for i in active] + [np.inf])
        step_to = min(next_ready, next_done)
        for i in active:
            left[i] -= rates[i] * (step_to - now)
        now = step_to
        for i in list(active):
            if left[i] <= 1e-6:
                active.discard(i)
                finish[i] = now
        for i in ready:
            if i not in active and i not in finish and ready[i] <= now:
                active.add(i)
    return [finish[i] for i in range(len(transfers))]


def random_tree_cluster(rng, blocks, per_block):
    g = nx.Graph()
    g.add_node("core", kind="switch")
    for b in range(blocks):
        g.add_node(f"sw{b}", kind="switch")
        g.add_edge(f"sw{b}", "core", bandwidth=float(rng.choice([10e9, 20e9, 50e9])),
                   latency=float(rng.choice([2e-6, 10e-6])), tier="inter_block")
        for i in range(per_block):
            g.add_node(f"gpu{b}_{i}", kind="gpu", block=f"block{b}")
            g.add_edge(f"gpu{b}_{i}", f"sw{b}", bandwidth=float(rng.choice([10e9, 25e9])),
                       latency=1e-6, tier="intra_block")
    return g


@pytest.mark.parametrize("seed", range(6))
def test_incremental_model_matches_naive_full_recompute(seed):
    rng = np.random.default_rng(seed)
    g = random_tree_cluster(rng, 3, 3)
    gpus = [n for n, k in g.nodes(data="kind") if k == "gpu"]
    transfers = []
    for _ in range(25):
        src, dst = rng.choice(gpus, 2, replace=False)
        # Starts on a coarse grid so that several transfers begin at one instant.
        transfers.append(t(str(src), str(dst), float(rng.choice([1e6, 3e6, 8e6])),
                           float(rng.integers(0, 8)) * 1e-4))
    got = simulate_transfers(g, transfers)
    want = naive_simulation(g, transfers)
    assert got == pytest.approx(want, rel=1e-9)


# --------------------------------------------------------------------------- max-min kernels
def check_max_min(routes, capacity, rates):
    """Feasible, and every flow has a full link on which no flow is faster."""
    n_links = len(capacity) - 1
    load = np.bincount(routes.ravel(), weights=np.repeat(rates, routes.shape[1]), minlength=n_links + 1)
    assert np.all(load[:n_links] <= capacity[:n_links] * (1 + 1e-9))
    for f, route in enumerate(routes):
        ok = False
        for link in route[route != n_links]:
            users = np.flatnonzero((routes == link).any(axis=1))
            if load[link] >= capacity[link] * (1 - 1e-9) and rates[f] >= rates[users].max() * (1 - 1e-9):
                ok = True
        assert ok, f"flow {f} has no bottleneck"


@pytest.mark.parametrize("seed", range(5))
def test_max_min_rates_have_a_bottleneck_for_every_flow(seed):
    rng = np.random.default_rng(seed)
    n_links, n_flows, hops = 12, 40, 3
    capacity = np.append(rng.uniform(1, 10, n_links), np.inf)
    routes = np.full((n_flows, hops), n_links)
    for f in range(n_flows):
        k = rng.integers(1, hops + 1)
        routes[f, :k] = rng.choice(n_links, k, replace=False)
    rates = max_min_rates(routes, capacity)
    check_max_min(routes, capacity, rates)
    named = {f: [int(l) for l in r if l != n_links] for f, r in enumerate(routes)}
    naive = naive_progressive_filling(named, dict(enumerate(capacity[:n_links])))
    assert rates == pytest.approx([naive[f] for f in range(n_flows)], rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_refill_above_the_entry_level_equals_a_full_solve(seed):
    rng = np.random.default_rng(seed)
    n_links, n_flows, hops = 10, 30, 3
    capacity = np.append(rng.uniform(1, 10, n_links), np.inf)
    routes = np.full((n_flows, hops), n_links)
    for f in range(n_flows):
        k = rng.integers(1, hops + 1)
        routes[f, :k] = rng.choice(n_links, k, replace=False)
    old = max_min_rates(routes[:-3], capacity)           # the last three flows join
    joining = np.arange(n_flows) >= n_flows - 3
    rates = np.append(old, [0.0, 0.0, 0.0])
    level = entry_level(routes, capacity, rates, joining)
    solve = joining | (rates >= level)
    got = refill(routes, capacity, rates, solve, routes[joining].ravel())
    assert got == pytest.approx(max_min_rates(routes, capacity), rel=1e-12)
    # and leaving: drop flow 0, solve from its rate up
    kept = max_min_rates(routes, capacity)
    solve = kept[1:] >= kept[0]
    got = refill(routes[1:], capacity, kept[1:], solve, routes[0])
    assert got == pytest.approx(max_min_rates(routes[1:], capacity), rel=1e-12)


# --------------------------------------------------------------------------- accounting, routing, SimPy
def test_bytes_are_counted_on_every_link_and_tier():
    g = nx.Graph()
    g.add_node("core", kind="switch")
    for b in (0, 1):
        g.add_edge(f"sw{b}", "core", bandwidth=40e9, latency=5e-6, tier="inter_block")
        g.add_edge(f"gpu{b}", f"sw{b}", bandwidth=25e9, latency=1e-6, tier="intra_block")
    env = simpy.Environment()
    net = Network(env, g)
    env.run(net.send_all([("gpu0", "gpu1", 7e6), ("gpu1", "gpu0", 1e6)]))
    per_link = net.bytes_by_link()
    assert per_link[("gpu0", "sw0")] == 7e6 and per_link[("sw0", "core")] == 7e6
    assert per_link[("core", "sw1")] == 7e6 and per_link[("sw1", "gpu1")] == 7e6
    assert per_link[("gpu1", "sw1")] == 1e6 and per_link[("sw0", "gpu0")] == 1e6
    assert net.bytes_by_tier() == {"intra_block": 2 * 8e6, "inter_block": 2 * 8e6}
    assert sum(per_link.values()) == sum(net.bytes_by_tier().values())


def test_routes_break_ties_by_natural_node_order():
    g = nx.cycle_graph(["a", "sw10", "z", "sw9"])
    assert shortest_route(g, "a", "z") == ["a", "sw9", "z"]      # sw9 < sw10 naturally


def test_unknown_or_unreachable_end_points_are_input_errors():
    g = star(2)
    g.add_node("lonely", kind="gpu", block="b1")
    with pytest.raises(NetworkError, match="unknown node 'nope'"):
        simulate_transfers(g, [t("g0", "nope", 1)])
    with pytest.raises(NetworkError, match="no path from 'g0' to 'lonely'"):
        simulate_transfers(g, [t("g0", "lonely", 1)])
    with pytest.raises(InputError, match="lacks"):
        simulate_transfers(g, [{"src": "g0", "dst": "g1"}])
    assert issubclass(NetworkError, InputError)


def test_transfers_run_inside_a_simpy_environment_with_other_processes():
    g = star(3, bandwidth=10e9, latency=0.0)
    env = simpy.Environment()
    net = Network(env, g)
    log = []

    def trainer(name, compute_s, nbytes):
        yield env.timeout(compute_s)
        log.append((name, "sends", env.now))
        yield net.send(name, "g2", nbytes)
        log.append((name, "done", env.now))

    env.process(trainer("g0", 1e-3, 10e6))
    env.process(trainer("g1", 1.5e-3, 10e6))
    env.run()
    # g0 alone for 0.5 ms (5 MB), then both share g2's downlink at 5 GB/s: g0's last 5 MB
    # end at 2.5 ms; g1 then has 5 MB left at 10 GB/s: 3.0 ms.
    assert log == [("g0", "sends", 1e-3), ("g1", "sends", 1.5e-3),
                   ("g0", "done", pytest.approx(2.5e-3)), ("g1", "done", pytest.approx(3.0e-3))]
