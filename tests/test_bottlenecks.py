"""The fast solve from bottleneck levels (simulator.network.bottlenecks), on hand-worked
examples: the levels of a right guess, the violation a wrong guess shows, the move that
repairs it, and the cases that must not be taken as solved (a cycle, an infinite
level)."""

import numpy as np
import pytest

from simulator.network import bottlenecks


def solve(capacity, n_b, couplings, order=(), last=None):
    """solve_levels on links 0..L-1 (plus a padding link), couplings (link, bottleneck,
    flows), the levels of the last solve `last` (zeros if None); return (status, level,
    viol, top, residual)."""
    capacity = np.append(np.asarray(capacity, float), np.inf)
    n_links = len(capacity)
    n_b = np.append(np.asarray(n_b, np.int64), 0)
    cp_link = np.array([c[0] for c in couplings], np.int64)
    cp_b = np.array([c[1] for c in couplings], np.int64)
    cp_n = np.array([c[2] for c in couplings], np.int64)
    link_cp = np.zeros((n_links, 4), np.int64)
    n_link_cp = np.zeros(n_links, np.int64)
    assert bottlenecks.list_couplings(len(couplings), cp_link, link_cp, n_link_cp)
    level, top, residual = np.zeros(n_links), np.zeros(n_links), np.zeros(n_links)
    if last is not None:
        level[:-1] = last
    viol = np.zeros(max(len(couplings), 1), np.bool_)
    order_work = np.zeros(n_links, np.int64)
    order_work[:len(order)] = order
    status, _ = bottlenecks.solve_levels(np.arange(n_links - 1), link_cp, n_link_cp, cp_b, cp_n, n_b,
                                    capacity, 1e-13, level, top, residual, viol, order_work,
                                    len(order), np.zeros(n_links, np.int64), 1,
                                    np.ones(n_links, np.bool_), True)
    return status, level[:-1], viol[:len(couplings)], top[:-1], residual[:-1]


# Link 0 (10 B/s) carries A and B, link 1 (9 B/s) carries B and two C flows. Max-min:
# link 1 shares 3 each (B, C, C), so A takes 10 - 3 = 7 on link 0.
A_B_C = dict(capacity=[10.0, 9.0])


def test_a_right_guess_solves_the_levels_of_the_hand_worked_example():
    # B bottlenecked at 1 crosses 0: coupling (0, 1) of one flow.
    status, level, viol, top, residual = solve(n_b=[1, 3], couplings=[(0, 1, 1)], **A_B_C)
    assert status == bottlenecks.SOLVED
    assert level.tolist() == [7.0, 3.0] and top.tolist() == [7.0, 3.0]
    assert not viol.any() and residual.tolist() == [0.0, 0.0]


def test_a_wrong_guess_shows_as_the_violated_coupling_and_its_move_repairs_it():
    # B guessed at link 0: L0 = 10 / 2 = 5, L1 = (9 - 5) / 2 = 2 < 5, the rate of B on 1.
    status, level, viol, _, _ = solve(n_b=[2, 2], couplings=[(1, 0, 1)], **A_B_C)
    assert status == bottlenecks.VIOLATED
    assert level.tolist() == [5.0, 2.0] and viol.tolist() == [True]
    # Groups: A = {0}, B = {0, 1} (coupling 0 on its hop to link 1), C = {1}; pad = 2.
    g_links = np.array([[0, 2], [0, 1], [1, 2]])
    g_cp = np.array([[-1, -1], [-1, 0], [-1, -1]])
    head = np.array([1, 2, -1])                    # bottlenecked at 0: B then A; at 1: C
    nxt = np.array([-1, 0, -1])
    moves = np.zeros((3, 2), np.int64)
    k = bottlenecks.repair_moves(1, np.array([0]), viol, head, nxt, g_links, g_cp,
                            np.array([2, 2, 0]), np.append(level, 0.0), 2, moves,
                            np.zeros(3, np.int64), 1)
    assert moves[:k].tolist() == [[1, 1]]          # B moves to link 1: the right guess
    assert solve(n_b=[1, 3], couplings=[(0, 1, 1)], **A_B_C)[0] == bottlenecks.SOLVED


def test_a_link_its_couplings_overfill_shows_their_flows_as_violated():
    # Link 2 (1 B/s) is no one's bottleneck but carries a flow at level 7: over.
    status, _, viol, top, residual = solve(capacity=[10.0, 9.0, 1.0], n_b=[1, 3, 0],
                                           couplings=[(0, 1, 1), (2, 0, 1)])
    assert status == bottlenecks.VIOLATED and viol.tolist() == [False, True]
    assert top[2] == 7.0 and residual[2] == 1.0 - 7.0
    # A bottleneck link its couplings alone fill: the solve stops there, the fastest flagged.
    status, _, viol, _, _ = solve(capacity=[10.0, 2.0], n_b=[1, 1], couplings=[(1, 0, 1)])
    assert status == bottlenecks.VIOLATED and viol.tolist() == [True]


@pytest.mark.parametrize("order", [(), (1, 0), (0, 1)])
def test_the_levels_do_not_depend_on_the_order_they_are_tried_in(order):
    assert solve(n_b=[1, 3], couplings=[(0, 1, 1)], order=order, **A_B_C)[1].tolist() == [7.0, 3.0]


def test_a_cycle_of_couplings_never_solves_and_an_infinite_level_fails():
    # B bottlenecked at 0 crossing 1, and a flow bottlenecked at 1 crossing 0: a cycle. Its
    # first link is solved with the levels of the last solve (0 here: L0 = 10, then L1 =
    # 9 - 10 < 0), which shows the coupling to move, but cannot solve the system.
    status, _, viol, _, _ = solve(n_b=[1, 1], couplings=[(0, 1, 1), (1, 0, 1)], **A_B_C)
    assert status == bottlenecks.VIOLATED and viol.tolist() == [False, True]
    # A true tie (two links of 10 B/s, one flow each way: both at 5) given the right last
    # levels: nothing to move, yet the levels came from last time's, so it falls back.
    status, level, viol, _, _ = solve(capacity=[10.0, 10.0], n_b=[1, 1],
                                      couplings=[(0, 1, 1), (1, 0, 1)], last=[5.0, 5.0])
    assert status == bottlenecks.FAILED and level.tolist() == [5.0, 5.0] and not viol.any()
    assert solve(capacity=[np.inf], n_b=[1], couplings=[])[0] == bottlenecks.FAILED


def test_bottlenecks_are_read_off_progressive_fillings_rates():
    # The example's max-min rates: A 7 (link 0), B 3 and C 3 (link 1).
    g_links = np.array([[0, 2], [0, 1], [1, 2]])
    b = np.zeros(3, np.int64)
    missing = bottlenecks.bottlenecks_of(3, np.array([1, 1, 2]), g_links, np.array([7.0, 3.0, 3.0]),
                                    np.array([10.0, 9.0, np.inf]), 1 - 1e-9, np.zeros(3),
                                    np.zeros(3), b)
    assert missing == 0 and b.tolist() == [0, 1, 1]
    # Rates that leave link 1 short of full: neither B (slower than A on link 0) nor C
    # has a bottleneck.
    missing = bottlenecks.bottlenecks_of(3, np.array([1, 1, 2]), g_links, np.array([7.0, 3.0, 2.0]),
                                    np.array([10.0, 9.0, np.inf]), 1 - 1e-9, np.zeros(3),
                                    np.zeros(3), b)
    assert missing == 2 and b.tolist() == [0, -1, -1]
