"""Position auctions (GSP, VCG) against theory: brute-force externalities, dominance, EOS equilibrium.

The deterministic checks build small hand-made instances for the kernel
(``bidscape.mechanisms.conformance.Instance``): every agent bids (``bidders="all"``),
values and value scales are 1 so that each agent's bid is its multiplier, and pricing is
per impression so that payments are the expected payment ``ppc * q * ctr`` with no
click draw. Qualities and CTRs keep ``q * ctr <= 1`` so that the click probability is
exactly ``q * ctr``, except in the capped tests (``min(1, q * ctr)``: VCG must then
assign slots efficiently, ``bidscape.engine.capped``), which hold the kernel to a brute
force over every assignment. These quantities are deterministic, so their tolerances only
allow floating-point rounding (a handful of ulps of sums of a few terms: 1e-12
relative, or 1e-9 where the two sides are summed in different orders over several
slots). The statistical check of the output contract allows Z = 4 standard errors.
"""

import itertools
import math

import numpy as np
import pytest

import bidscape
from bidscape import Scenario
from bidscape.engine.kernel import BID_COLUMNS, MULTIPLIER, QUALITY, REMAINING
from bidscape.markets.distributions import Constant
from bidscape.mechanisms.base import MechanismSettings
from bidscape.mechanisms.conformance import Instance, run_kernel
from bidscape.mechanisms.gsp import MECHANISM as GSP
from bidscape.mechanisms.vcg import MECHANISM as VCG

Z = 4.0
RTOL = 1e-12  # deterministic: a few terms summed in floating point differ by a few ulps
ATOL = 1e-15  # payments are O(0.01 .. 1), so this only matters for exact zeros


def kernel_payments(mechanism, bids, qualities, ctrs, key=12345, reserve=0.0):
    """One auction, every agent bidding its multiplier (constant value 1, value scale 1), priced per impression.

    Returns (winner per slot, per-impression payment per slot).
    """
    result = run_kernel(mechanism, one_auction(bids, qualities, ctrs, key, reserve))
    return result.winner[0], result.price[0]


def one_auction(bids, qualities, ctrs, key=12345, reserve=0.0, pricing="impression", n_auctions=1):
    n = len(bids)
    bid_state = np.zeros((n, BID_COLUMNS))
    bid_state[:, MULTIPLIER] = bids
    bid_state[:, REMAINING] = math.inf
    bid_state[:, QUALITY] = qualities
    tables = Constant(dist="constant", value=1.0).quantile_table(64)[None, :]
    return Instance(
        settings=MechanismSettings(reserve=reserve, soft_floor=0.0, slot_ctrs=tuple(float(c) for c in ctrs),
                                   pricing=pricing),
        bidders="all", ranges=np.array([[0, n, 0]], np.int64), bid_state=bid_state, cap=None,
        value_scale=np.ones(n), value_tables=tables, key_of_round=key, first_auction=0, n_auctions=n_auctions)


def random_market(rng, n, slots):
    """Distinct bids, qualities in [0.3, 2] and strictly decreasing CTRs in (0.05, 0.5): q * ctr < 1."""
    bids = rng.uniform(0.1, 3.0, n)
    qualities = rng.uniform(0.3, 2.0, n)
    ctrs = np.sort(rng.uniform(0.05, 0.5, slots))[::-1]
    return bids, qualities, ctrs


def best_assignment(weights, ctrs, excluded=None):
    """Brute force: the welfare-maximising assignment of bidders to slots (slot -> bidder, or -1)."""
    bidders = [i for i in range(len(weights)) if i != excluded]
    slots = len(ctrs)
    best, best_welfare = None, -1.0
    filled = min(slots, len(bidders))
    for chosen in itertools.permutations(bidders, filled):
        welfare = sum(ctrs[s] * weights[i] for s, i in enumerate(chosen))
        if welfare > best_welfare:
            best, best_welfare = list(chosen) + [-1] * (slots - filled), welfare
    return best, best_welfare


def others_score(bids, qualities, i):
    return sorted((bids[j] * qualities[j] for j in range(len(bids)) if j != i), reverse=True)


@pytest.mark.parametrize("seed", range(30))
def test_vcg_payment_is_the_brute_force_externality(seed):
    rng = np.random.default_rng([seed, 1])
    n, slots = int(rng.integers(1, 7)), int(rng.integers(1, 5))
    bids, qualities, ctrs = random_market(rng, n, slots)
    weights = bids * qualities  # expected welfare of bidder i in slot s is ctrs[s] * q_i * b_i
    allocation, _ = best_assignment(weights, ctrs)
    winners, paid = kernel_payments(VCG, bids, qualities, ctrs)
    assert winners == allocation  # ranking by bid x quality is the efficient allocation
    for s, i in enumerate(allocation):
        if i < 0:
            assert paid[s] == 0.0
            continue
        others_with_i = sum(ctrs[t] * weights[j] for t, j in enumerate(allocation) if j >= 0 and j != i)
        _, others_without_i = best_assignment(weights, ctrs, excluded=i)
        externality = others_without_i - others_with_i
        ppc = VCG.reference_price_per_click(s, others_score(bids, qualities, i), qualities[i], 0.0, list(ctrs))
        assert math.isclose(ppc * qualities[i] * ctrs[s], externality, rel_tol=RTOL, abs_tol=ATOL)
        assert math.isclose(paid[s], externality, rel_tol=RTOL, abs_tol=ATOL)


def expected_utility(winners, paid, agent, value, quality, ctrs):
    for s, w in enumerate(winners):
        if w == agent:
            return value * quality * ctrs[s] - paid[s]
    return 0.0


@pytest.mark.parametrize("seed", range(12))
def test_truthful_bidding_is_dominant_in_vcg(seed):
    """No deviation on a grid of bids 0 .. 2 x value beats bidding the value (kernel and reference)."""
    rng = np.random.default_rng([seed, 2])
    n, slots = int(rng.integers(2, 6)), int(rng.integers(1, 4))
    values, qualities, ctrs = random_market(rng, n, slots)  # the others bid their values
    for i in range(n):
        truthful_winners, truthful_paid = kernel_payments(VCG, values, qualities, ctrs)
        truthful = expected_utility(truthful_winners, truthful_paid, i, values[i], qualities[i], ctrs)
        assert truthful >= -ATOL  # individually rational
        others = others_score(values, qualities, i)
        for factor in np.linspace(0.0, 2.0, 41):
            bids = values.copy()
            bids[i] = factor * values[i]
            winners, paid = kernel_payments(VCG, bids, qualities, ctrs)
            deviation = expected_utility(winners, paid, i, values[i], qualities[i], ctrs)
            # 1e-12: both utilities are the same few terms up to rounding (equal when the slot is kept)
            assert deviation <= truthful + 1e-12, (i, factor, deviation, truthful)
            # the same with the reference pricing rule: slot = number of others' scores above the bid's
            slot = sum(score > bids[i] * qualities[i] for score in others)
            if bids[i] > 0 and slot < slots:
                ppc = VCG.reference_price_per_click(slot, others, qualities[i], 0.0, list(ctrs))
                assert (values[i] - ppc) * qualities[i] * ctrs[slot] <= truthful + 1e-12


def eos_bids(values, ctrs):
    """Edelman-Ostrovsky-Schwarz lowest envy-free bids, values sorted descending, quality 1."""
    n, slots = len(values), len(ctrs)
    bids = np.array(values, dtype=float)  # the excluded bidders (ranked slots+1 ..) bid their values
    for k in range(min(slots, n - 1) - 1, 0, -1):  # 0-indexed slot k = 1-indexed slot k+1 >= 2
        bids[k] = values[k] - ctrs[k] / ctrs[k - 1] * (values[k] - bids[k + 1])
    bids[0] = values[0]  # anything above bids[1] keeps slot 0
    return bids


@pytest.mark.parametrize("seed", range(20))
def test_gsp_at_eos_equilibrium_earns_vcg_revenue(seed):
    rng = np.random.default_rng([seed, 3])
    slots = int(rng.integers(1, 5))
    n = slots + int(rng.integers(1, 3))  # at least one bidder left without a slot
    values = np.sort(rng.uniform(0.1, 2.0, n))[::-1]
    ctrs = np.sort(rng.uniform(0.05, 1.0, slots))[::-1]
    ones = np.ones(n)
    bids = eos_bids(values, ctrs)
    assert np.all(np.diff(bids) < 0)  # the EOS bids keep the value order
    gsp_winners, gsp_paid = kernel_payments(GSP, bids, ones, ctrs)
    vcg_winners, vcg_paid = kernel_payments(VCG, values, ones, ctrs)
    assert gsp_winners == vcg_winners == list(range(slots))
    # per slot and in total, the GSP payments equal the truthful VCG payments (EOS 2007, Thm. 1);
    # the sides are sums over up to 4 slots in different orders: 1e-9 is far above rounding
    np.testing.assert_allclose(gsp_paid, vcg_paid, rtol=1e-9, atol=1e-12)
    assert math.isclose(sum(gsp_paid), sum(vcg_paid), rel_tol=1e-9)
    # locally envy-free: the bidder in slot k does not prefer slot k-1 at the price per click
    # it would pay there (the bid of the current occupant of slot k)
    for k in range(1, slots):
        stay = values[k] * ctrs[k] - gsp_paid[k]
        move_up = (values[k] - bids[k]) * ctrs[k - 1]
        assert stay >= move_up - 1e-12
        assert math.isclose(stay, move_up, rel_tol=1e-9, abs_tol=1e-12)  # lowest: indifferent
    # and the first excluded bidder does not envy the last slot (its bid there is its value)
    assert values[slots] - bids[slots] <= 1e-12
    # every winner gets non-negative utility
    assert all(values[k] * ctrs[k] - gsp_paid[k] >= -1e-12 for k in range(slots))


def test_position_auction_output_contract(tmp_path):
    ctrs, quality, auctions = [0.5, 0.3, 0.1], 1.5, 20_000
    scenario = Scenario.from_dict({
        "run": {"seed": 5, "rounds": 1, "auctions_per_round": auctions, "record_agents": "none",
                "auction_sample_rate": 1.0},
        "mechanism": {"type": "gsp", "slot_ctrs": ctrs},
        "market": {"bidders_per_auction": "all"},
        "populations": [{"name": "b", "size": 4, "strategy": "truthful",
                         "quality": {"dist": "constant", "value": quality},
                         "values": {"dist": "uniform", "low": 0.0, "high": 1.0}}],
    })
    run = bidscape.run(scenario, out=tmp_path / "run")
    rows, market = run.auctions, run.market.row(0, named=True)
    assert rows.height == 3 * auctions
    counts = rows.group_by("slot").len().sort("slot")
    assert counts["slot"].to_list() == [0, 1, 2] and counts["len"].to_list() == [auctions] * 3
    for column in ("slot_impressions", "slot_clicks", "slot_revenue"):
        assert len(market[column]) == 3
    assert sum(market["slot_impressions"]) == market["sold"] == 3 * auctions  # 4 bidders > 3 slots
    assert sum(market["slot_clicks"]) == market["clicks"] == int(rows["clicks"].sum())
    # the same prices summed per slot and overall: only the summation order differs
    assert math.isclose(sum(market["slot_revenue"]), market["revenue"], rel_tol=1e-9)
    assert math.isclose(float(rows["price"].sum()), market["revenue"], rel_tol=1e-9)
    for s, ctr in enumerate(ctrs):
        p = ctr * quality
        rate = market["slot_clicks"][s] / market["slot_impressions"][s]
        # a binomial proportion: standard error sqrt(p (1 - p) / impressions)
        assert abs(rate - p) < Z * math.sqrt(p * (1 - p) / market["slot_impressions"][s]), (s, rate, p)
        slot_rows = rows.filter(rows["slot"] == s)
        assert int(slot_rows["clicks"].sum()) == market["slot_clicks"][s]
        assert math.isclose(float(slot_rows["price"].sum()), market["slot_revenue"][s], rel_tol=1e-9)
        # click pricing: a slot's winner pays only when clicked
        assert (slot_rows.filter(slot_rows["clicks"] == 0)["price"] == 0).all()


# ---- capped click probabilities: q * ctr > 1 ----

def click_probability(quality, ctr):
    return min(1.0, quality * ctr)


def brute_force(amounts, qualities, ctrs, lowered=None):
    """Every assignment of bidders to the top slots: the best expected welfare and one assignment.

    ``lowered = (i, r)`` replaces bidder i's amount by r (r = 0: bidder i left out).
    """
    amounts = list(amounts)
    if lowered is not None:
        amounts[lowered[0]] = lowered[1]
    bidders = [i for i in range(len(amounts)) if amounts[i] > 0]
    filled = min(len(ctrs), len(bidders))
    best, best_welfare = [], 0.0
    for chosen in itertools.permutations(bidders, filled):
        welfare = sum(amounts[i] * click_probability(qualities[i], ctrs[s]) for s, i in enumerate(chosen))
        if welfare > best_welfare:
            best, best_welfare = list(chosen), welfare
    return best_welfare, best


def capped_market(rng, n, slots):
    """Distinct bids in (0.1, 3), qualities in (0.5, 4), CTRs in (0.05, 1), and one bidder with
    quality x top CTR in (1, 3): some click probability is capped at 1."""
    bids, qualities = rng.uniform(0.1, 3.0, n), rng.uniform(0.5, 4.0, n)
    ctrs = np.sort(rng.uniform(0.05, 1.0, slots))[::-1]
    qualities[rng.integers(n)] = rng.uniform(1.0, 3.0) / ctrs[0]
    return bids, qualities, ctrs


def utility(winners, paid, agent, value, quality, ctrs):
    """Expected utility per impression: value x click probability - payment."""
    for s, w in enumerate(winners):
        if w == agent:
            return value * click_probability(quality, ctrs[s]) - paid[s]
    return 0.0


def test_vcg_issue_example_truthful_bidding_is_a_best_response():
    """Quality 2 and value 1 against quality-1 bidders of values 0.9 and 0.3, CTRs (0.8, 0.5).

    Ranking by bid x quality put it on top (probability 1) for 0.7375, while bidding 0.4
    took slot 2 (still probability 1) for 0.85. VCG assigns it slot 2 at its value:
    W* = 0.72 + 1 = 1.72, without it 0.72 + 0.15 = 0.87, so its utility is 0.85.
    """
    values, qualities, ctrs = np.array([1.0, 0.9, 0.3]), np.array([2.0, 1.0, 1.0]), [0.8, 0.5]
    winners, paid = kernel_payments(VCG, values, qualities, ctrs)
    assert winners == [1, 0]
    truthful = utility(winners, paid, 0, 1.0, 2.0, ctrs)
    assert math.isclose(truthful, 0.85, rel_tol=RTOL)
    for factor in np.linspace(0.0, 2.0, 201):
        bids = values.copy()
        bids[0] = factor
        deviation = utility(*kernel_payments(VCG, bids, qualities, ctrs), 0, 1.0, 2.0, ctrs)
        assert deviation <= truthful + 1e-12, (factor, deviation, truthful)


@pytest.mark.parametrize("seed", range(30))
def test_capped_vcg_is_efficient_and_charges_the_brute_force_externality(seed):
    rng = np.random.default_rng([seed, 4])
    n, slots = int(rng.integers(1, 7)), int(rng.integers(1, 5))
    bids, qualities, ctrs = capped_market(rng, n, slots)
    reserve = 0.0 if seed % 2 == 0 else float(rng.uniform(0.0, 1.0))
    taking_part = np.where(bids >= reserve, bids, 0.0)
    winners, paid = kernel_payments(VCG, bids, qualities, ctrs, reserve=reserve)
    best_welfare, _ = brute_force(taking_part, qualities, ctrs)
    welfare = sum(bids[i] * click_probability(qualities[i], ctrs[s]) for s, i in enumerate(winners) if i >= 0)
    # the kernel's assignment is efficient (sums of up to 4 terms in different orders: 1e-9 relative)
    assert math.isclose(welfare, best_welfare, rel_tol=1e-9), (winners, welfare, best_welfare)
    for s, i in enumerate(winners):
        if i < 0:
            assert paid[s] == 0.0
            continue
        others = welfare - bids[i] * click_probability(qualities[i], ctrs[s])
        # Clarke pivot with a floor: the others' best welfare with i's bid lowered to the reserve
        externality = brute_force(taking_part, qualities, ctrs, lowered=(i, reserve))[0] - others
        assert math.isclose(paid[s], externality, rel_tol=1e-9, abs_tol=1e-12), (s, paid[s], externality)


@pytest.mark.parametrize("seed", range(12))
def test_truthful_bidding_is_dominant_in_capped_vcg(seed):
    """No bid on a grid 0 .. 2 x value beats bidding the value, with q * ctr > 1 about."""
    rng = np.random.default_rng([seed, 5])
    n, slots = int(rng.integers(2, 6)), int(rng.integers(1, 4))
    values, qualities, ctrs = capped_market(rng, n, slots)
    for i in range(n):
        truthful = utility(*kernel_payments(VCG, values, qualities, ctrs), i, values[i], qualities[i], ctrs)
        assert truthful >= -ATOL
        for factor in np.linspace(0.0, 2.0, 41):
            bids = values.copy()
            bids[i] = factor * values[i]
            deviation = utility(*kernel_payments(VCG, bids, qualities, ctrs), i, values[i], qualities[i], ctrs)
            assert deviation <= truthful + 1e-12, (i, factor, deviation, truthful)


@pytest.mark.parametrize("seed", range(6))
def test_capped_vcg_per_click_charges_the_same_expectation(seed):
    """Per click, a winner pays P / min(1, q ctr) when clicked: the per-impression P in expectation."""
    rng = np.random.default_rng([seed, 6])
    bids, qualities, ctrs = capped_market(rng, 5, 3)
    _, per_impression = kernel_payments(VCG, bids, qualities, ctrs)
    result = run_kernel(VCG, one_auction(bids, qualities, ctrs, pricing="click", n_auctions=300))
    winners = np.array(result.winner)
    price, clicks = np.array(result.price), np.array(result.clicks)
    for s in range(3):
        assert len(set(winners[:, s])) == 1  # distinct bids, constant values: the same assignment each time
        clicked = price[clicks[:, s] == 1, s]
        assert (price[clicks[:, s] == 0, s] == 0).all() and len(set(clicked)) <= 1
        if clicked.size:
            p = click_probability(qualities[winners[0, s]], ctrs[s])
            assert math.isclose(clicked[0] * p, per_impression[s], rel_tol=RTOL, abs_tol=ATOL)


@pytest.mark.parametrize("seed", range(10))
def test_efficient_welfare_with_capped_click_probabilities(seed):
    """The welfare benchmark (any mechanism) is the best assignment of values under caps."""
    rng = np.random.default_rng([seed, 7])
    values, qualities, ctrs = capped_market(rng, int(rng.integers(1, 7)), int(rng.integers(1, 5)))
    instance = one_auction(np.ones(values.size), qualities, ctrs)
    instance.value_scale = values  # value = value_scale x base value 1, whatever the bids
    for mechanism in (GSP, VCG):
        welfare = run_kernel(mechanism, instance).market[3]
        assert math.isclose(welfare, brute_force(values, qualities, ctrs)[0], rel_tol=1e-9), mechanism.name
