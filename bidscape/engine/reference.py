"""Plain-Python reference implementation of a round of single-item auctions.

Slow and written for reading: the jitted kernels in ``bidscape.engine.kernel`` must give
exactly the same winners, prices and budgets on any instance (``tests/test_kernel.py``).
It shares only the random numbers (the hash in ``bidscape.engine.rng``) and the value
table lookup with the kernel; participant choice, bids, allocation, tie-breaking,
pricing and budget accounting are written again here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bidscape.engine.rng import (
    STREAM_PARTICIPANT,
    STREAM_TIE,
    STREAM_VALUE,
    py_auction_key,
    py_draw_u64,
    py_round_key,
    py_to_unit,
)
from bidscape.mechanisms.base import SingleItemAuction


@dataclass
class Outcome:
    winner: int  # -1 when unsold
    price: float
    top_bid: float
    second_bid: float
    winner_value: float  # the winner's base value (before its value scale)


def reference_value(key: int, slot: int, table: Sequence[float]) -> float:
    intervals = len(table) - 1
    x = py_to_unit(py_draw_u64(key, STREAM_VALUE, slot)) * intervals
    k = int(x)
    return table[k] + (x - k) * (table[k + 1] - table[k])


def reference_participants(key: int, n_agents: int, bidders: int) -> list[int]:
    chosen: list[int] = []
    for slot in range(bidders):
        attempt = slot
        while True:
            agent = int(py_to_unit(py_draw_u64(key, STREAM_PARTICIPANT, attempt)) * n_agents)
            if agent not in chosen:
                break
            attempt += bidders
        chosen.append(agent)
    return chosen


def reference_round(
    mechanism: SingleItemAuction,
    run_key: int,
    round_index: int,
    first_auction: int,
    n_auctions: int,
    bidders: int | str,
    bid_factor: Sequence[float],
    remaining_budget: list[float],  # charged in place
    population_start: Sequence[int],
    value_tables: Sequence[Sequence[float]],
    reserve: float,
) -> list[Outcome]:
    n_agents = len(bid_factor)

    def population(agent: int) -> int:
        return max(p for p in range(len(population_start) - 1) if population_start[p] <= agent)

    outcomes = []
    round_key = py_round_key(run_key, round_index)
    for auction in range(first_auction, first_auction + n_auctions):
        key = py_auction_key(round_key, auction)
        if bidders == "all":
            agents = list(range(n_agents))
        else:
            agents = reference_participants(key, n_agents, int(bidders))
        # slot j holds agents[j]; its value is drawn from slot j's value stream
        values = [reference_value(key, j, value_tables[population(a)]) for j, a in enumerate(agents)]
        bids = [min(bid_factor[a] * v, remaining_budget[a]) for a, v in zip(agents, values)]
        top = max(bids)
        second = sorted(bids)[-2] if len(bids) > 1 else 0.0
        second = max(second, 0.0)
        if top <= 0.0 or top < reserve:
            outcomes.append(Outcome(-1, 0.0, max(top, 0.0), second, 0.0))
            continue
        tied = [j for j, b in enumerate(bids) if b == top]
        if bidders == "all":
            slot = max(tied, key=lambda j: py_draw_u64(key, STREAM_TIE, agents[j]))
        else:
            slot = tied[0]  # slots are a uniformly random order of the participants
        winner = agents[slot]
        price = mechanism.reference_price(top, second, reserve)
        assert 0.0 <= price <= top <= remaining_budget[winner]
        remaining_budget[winner] -= price
        outcomes.append(Outcome(winner, price, top, second, values[slot]))
    return outcomes


def reference_totals(outcomes: list[Outcome], value_scale: Sequence[float], n_agents: int):
    """Per-agent (spend, wins, value) and market (sold, revenue, welfare) of a round."""
    spend = [0.0] * n_agents
    wins = [0.0] * n_agents
    value = [0.0] * n_agents
    sold, revenue, welfare = 0, 0.0, 0.0
    for o in outcomes:
        if o.winner < 0:
            continue
        won = value_scale[o.winner] * o.winner_value
        spend[o.winner] += o.price
        wins[o.winner] += 1.0
        value[o.winner] += won
        sold += 1
        revenue += o.price
        welfare += won
    return spend, wins, value, (sold, revenue, welfare)
