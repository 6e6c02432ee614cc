"""What a round writes: market totals per channel, population totals, agents, the auction sample.

The columns and their types are ``bidscape.outputs``'; this module fills them from the loop's
arrays (``Simulation.state`` and a channel's outcome state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from bidscape.engine.kernel import CLICKS, SPEND, VALUE, WINS
from bidscape.mechanisms import Outcomes
from bidscape.outputs.recorder import Recorder
from bidscape.outputs.summary import expected_conversions

if TYPE_CHECKING:
    from bidscape.loop.simulation import ChannelPlay, RoundResult, Simulation


def auction_sample(sim: "Simulation", play: "ChannelPlay", out: Outcomes, keep: np.ndarray, first: int,
                    r: int) -> dict[str, np.ndarray]:
    slots = out.slots
    rows = keep.size * slots
    winner = out.winner[keep].ravel()
    scale = np.where(winner >= 0, sim.state.value_scale[np.maximum(winner, 0)], 0.0)
    position = play.mechanism.capabilities.clicks
    clicks = out.clicks[keep].ravel()
    segment = {}
    if play.market.context is not None:
        names = np.array(sim.state.contexts[play.index].names)
        segment = {"segment": np.repeat(names[play.market.context[0][keep + first]], slots)}
    return {
        "round": np.full(rows, r, np.int32),
        "channel": np.full(rows, play.index, np.int16),
        "auction": np.repeat(keep + first, slots),
        "slot": np.tile(np.arange(slots, dtype=np.int16), keep.size),
        "winner": winner,
        "price": out.price[keep].ravel(),
        "top_bid": out.bid[keep].ravel(),
        "second_bid": out.next_bid[keep].ravel(),
        "winner_value": out.value[keep].ravel() * scale * (clicks if position else 1.0),
        "clicks": clicks.copy(),
    } | segment


def record_segments(sim: "Simulation", recorder: Recorder, r: int, plays: list["ChannelPlay"]) -> None:
    """The round's totals per channel and segment (``segments.arrow``, markets with ``[traffic]``)."""
    for play in plays:
        names = sim.state.contexts[play.index].names
        auctions, sold, clicks, revenue, welfare, max_welfare = play.segments.T
        position = play.mechanism.capabilities.clicks
        recorder.write_table("segments", {
            "round": pa.array(np.full(len(names), r, np.int32)),
            "channel": [play.channel.name] * len(names),
            "segment": pa.array(names, pa.string()),
            "auctions": pa.array(auctions.astype(np.int64)),
            "sold": pa.array(sold.astype(np.int64)),
            "clicks": pa.array(clicks.astype(np.int64)) if position else pa.nulls(len(names), pa.int64()),
            "revenue": pa.array(revenue),
            "welfare": pa.array(welfare),
            "max_welfare": pa.array(max_welfare),
            "mean_price": pa.array(np.divide(revenue, sold, out=np.zeros_like(revenue), where=sold > 0),
                                   mask=sold == 0),
        })
        table = play.segment_populations  # [S, P, 4]: sold, spend, value, clicks
        segments, populations = table.shape[:2]
        recorder.write_table("segment_populations", {
            "round": pa.array(np.full(segments * populations, r, np.int32)),
            "channel": [play.channel.name] * (segments * populations),
            "segment": pa.array(np.repeat(names, populations).tolist(), pa.string()),
            "population": sim.state.population_names * segments,
            "sold": pa.array(table[:, :, 0].ravel().astype(np.int64)),
            "spend": pa.array(table[:, :, 1].ravel()),
            "value": pa.array(table[:, :, 2].ravel()),
            "clicks": pa.array(table[:, :, 3].ravel().astype(np.int64)) if position
            else pa.nulls(segments * populations, pa.int64()),
        })

def record_round(sim: "Simulation", recorder: Recorder, result: "RoundResult", plays: list["ChannelPlay"]) -> None:
    """Write the round: market totals per channel, population totals, and agents as ``record_agents`` says."""
    for play, channel in zip(plays, result.channels):
        settings = play.settings
        bidders = play.channel.bidders_per_auction
        totals = channel.totals
        position = play.mechanism.capabilities.clicks
        recorder.write_market({
            "round": [result.round],
            "channel": [channel.name],
            "auctions": [channel.auctions],
            "sold": [totals.sold],
            "revenue": [totals.revenue],
            "welfare": [totals.welfare],
            "max_welfare": [totals.max_welfare],
            "mean_price": [totals.revenue / totals.sold if totals.sold else None],
            "reserve": [settings.reserve],
            "soft_floor": [settings.soft_floor],
            "mechanism": [settings.type],
            "bidders_per_auction": [int(play.market.ranges[:, 1].sum()) if bidders == "all" else bidders],
            "clicks": [int(totals.slot_totals[:, 1].sum()) if position else None],
            "slot_impressions": [totals.slot_totals[:, 0].astype(np.int64).tolist()],
            "slot_clicks": [totals.slot_totals[:, 1].astype(np.int64).tolist() if position else None],
            "slot_revenue": [totals.slot_totals[:, 2].tolist()],
        })
    s = sim.state
    regret = sim.regret()
    record_populations(sim, recorder, result.round, plays, regret)
    mode = sim.settings.run.record_agents
    if mode == "none":
        return
    for play in plays:
        outcome = play.market.outcome_state
        position = play.mechanism.capabilities.clicks
        columns = {
            "spend": outcome[:, SPEND], "wins": outcome[:, WINS], "value": outcome[:, VALUE],
            "utility": outcome[:, VALUE] - outcome[:, SPEND],
            "budget_remaining": s.remaining_budget, "multiplier": s.multiplier, "regret": regret,
        } | ({"clicks": outcome[:, CLICKS]} if position else {})  # else null, below
        ranges = play.market.ranges
        codes = np.repeat(ranges[:, 2].astype(np.int16), ranges[:, 1])
        channel_codes = np.full(codes.size, play.index, np.int16)
        if mode == "agent":
            if int(ranges[-1, 0] + ranges[-1, 1] - ranges[0, 0]) == codes.size:  # contiguous: views
                who = slice(int(ranges[0, 0]), int(ranges[-1, 0] + ranges[-1, 1]))
                agent_ids = np.arange(who.start, who.stop, dtype=np.int64)
            else:
                agent_ids = np.concatenate([np.arange(a, a + n, dtype=np.int64) for a, n, _ in ranges])
                who = agent_ids
            recorder.write_agents({
                "round": np.full(codes.size, result.round, np.int32),
                "agent": agent_ids,
                **{name: np.ascontiguousarray(column[who]) for name, column in columns.items()},
                "agents": np.ones(codes.size, np.int64),
            } | ({} if position else {"clicks": pa.nulls(codes.size, pa.float64())}), codes, channel_codes)
        else:
            sums = {name: np.array([column[a:a + n].sum() for a, n, _ in ranges])
                    for name, column in columns.items()}
            sums["multiplier"] = sums["multiplier"] / ranges[:, 1]  # mean multiplier of the population
            sums["regret"] = sums["regret"] / ranges[:, 1]  # mean regret of the population
            recorder.write_agents({
                "round": np.full(len(ranges), result.round, np.int32),
                "agent": pa.nulls(len(ranges), pa.int64()),
                **sums,
                "agents": ranges[:, 1].astype(np.int64),
            } | ({} if position else {"clicks": pa.nulls(len(ranges), pa.float64())}),
                ranges[:, 2].astype(np.int16), np.full(len(ranges), play.index, np.int16))


def record_populations(sim: "Simulation", recorder: Recorder, r: int, plays: list["ChannelPlay"],
                        regret: np.ndarray) -> None:
    """The round's totals per channel and population (``populations.arrow``), cheap at any size."""
    s = sim.state
    starts = s.population_start[:-1]
    sizes = np.diff(s.population_start)
    budget = np.add.reduceat(s.budget, starts)
    remaining = np.add.reduceat(s.remaining_budget, starts)
    liquid = np.add.reduceat(np.minimum(s.budget, sim.value_won), starts)
    multiplier = np.add.reduceat(s.multiplier, starts) / sizes
    with np.errstate(invalid="ignore"):  # NaN regret (none recorded) stays NaN, written as null
        mean_regret = np.add.reduceat(regret, starts) / sizes
    rates = sim.scenario.conversion_rates()  # None: no conversions column
    for play in plays:
        ranges = play.market.ranges
        who = ranges[:, 2]
        outcome = play.market.outcome_state
        totals = {name: np.array([outcome[a:a + n, column].sum() for a, n, _ in ranges])
                  for name, column in (("spend", SPEND), ("wins", WINS), ("value", VALUE))
                  + ((("clicks", CLICKS),) if play.mechanism.capabilities.clicks else ())}
        per_agent = _participations_per_agent(sim, play)
        finite = np.isfinite(budget[who])
        position = play.mechanism.capabilities.clicks
        conversions = {} if rates is None else {
            "conversions": expected_conversions(play.market.outcome_state, ranges, position, np.array(rates))}
        recorder.write_populations({
            "round": np.full(len(ranges), r, np.int32),
            "agents": ranges[:, 1].astype(np.int64),
            "participations": per_agent * ranges[:, 1],
            **{k: v for k, v in totals.items() if k != "clicks"},
            "utility": totals["value"] - totals["spend"],
            "clicks": totals["clicks"] if play.mechanism.capabilities.clicks else np.full(len(ranges), np.nan),
            "budget": np.where(finite, budget[who], np.nan),
            "budget_remaining": np.where(finite, remaining[who], np.nan),
            "multiplier": multiplier[who],
            "regret": mean_regret[who],
            "liquid_welfare": liquid[who],
        } | conversions, who.astype(np.int16), np.full(len(ranges), play.index, np.int16))


def _participations_per_agent(sim: "Simulation", play: "ChannelPlay") -> np.ndarray:
    """Expected auctions an agent of each of the channel's ranges entered this round."""
    bidders = play.channel.bidders_per_auction
    ranges = play.market.ranges
    if play.segment_counts is None:
        eligible = ranges[:, 1].sum()
        return np.full(len(ranges), play.auctions * (1.0 if bidders == "all" else min(1.0, bidders / eligible)))
    context = sim.state.contexts[play.index]  # per segment: its auctions, shared by the agents eligible there
    share = np.minimum(1.0, bidders / np.maximum(context.eligible, 1))
    return ((play.segment_counts * share)[:, np.newaxis] * (context.ranges[:, :, 1] > 0)).sum(axis=0)
