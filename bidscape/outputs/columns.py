"""An auction run folder's files: every table, its columns and their types, in one place.

Writers (``recorder.py``) and readers (``bidscape.api.Run``, ``bidscape.analysis``, the
dashboard) take the tables and columns from here. Columns of the per-agent and per-population
tables are *flows* (this round, this channel: summed over channels and rounds) or *stocks*
(the agent or population after the round: the same in every channel's row).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from bidscape.outputs.manifest import MANIFEST_FILE

TABLES = ("market", "populations", "agents", "auctions")

OUTPUT_FILES = (MANIFEST_FILE,) + tuple(f"{table}.arrow" for table in TABLES)

_NAME = pa.dictionary(pa.int16(), pa.string())  # population and channel names, stored once per batch

MARKET_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("channel", _NAME),
    ("auctions", pa.int64()),
    ("sold", pa.int64()),  # filled slot impressions (single item: auctions sold)
    ("revenue", pa.float64()),
    ("welfare", pa.float64()),
    ("max_welfare", pa.float64()),  # welfare of the efficient allocations of the same auctions (values, bids aside)
    ("mean_price", pa.float64()),
    ("reserve", pa.float64()),
    ("soft_floor", pa.float64()),
    ("mechanism", pa.string()),
    ("bidders_per_auction", pa.int64()),
    ("clicks", pa.int64()),  # position auctions; null for single-item auctions
    ("slot_impressions", pa.list_(pa.int64())),  # per slot, top slot first
    ("slot_clicks", pa.list_(pa.int64())),
    ("slot_revenue", pa.list_(pa.float64())),
])

POPULATIONS_SCHEMA = pa.schema([  # one row per round, channel and population, whatever record_agents says
    ("round", pa.int32()),
    ("channel", _NAME),
    ("population", _NAME),
    ("agents", pa.int64()),
    ("participations", pa.float64()),  # expected auctions entered: auctions x bidders x agents / eligible agents
    ("spend", pa.float64()),
    ("wins", pa.float64()),
    ("value", pa.float64()),
    ("utility", pa.float64()),
    ("clicks", pa.int64()),  # null for single-item auctions
    # the population as a whole, after the round (the same in every channel's row):
    ("budget", pa.float64()),  # total budget; null when unlimited
    ("budget_remaining", pa.float64()),  # total; null when unlimited
    ("multiplier", pa.float64()),  # mean
    ("regret", pa.float64()),  # mean regret so far; null when the strategy records none
    ("liquid_welfare", pa.float64()),  # so far: sum over agents of min(budget, value won so far)
])

AGENT_BATCH_ROWS = 1 << 18  # agents.arrow record batches: readers find a round's rows a batch at a time

AGENT_COLUMNS = ("spend", "wins", "value", "utility", "budget_remaining", "multiplier", "clicks", "regret")
AGENT_FLOWS = ("spend", "wins", "value", "utility", "clicks")
AGENT_STOCKS = ("budget_remaining", "multiplier", "regret")
POPULATION_FLOWS = ("participations", "spend", "wins", "value", "utility", "clicks")
POPULATION_STOCKS = ("budget", "budget_remaining", "multiplier", "regret", "liquid_welfare")
# NaN written as null: no budget (unlimited), no regret recorded, no clicks (single-item auctions)
NULLABLE = {"agents": ("regret", "clicks"),
            "populations": ("budget", "budget_remaining", "regret", "clicks", "conversions")}


def agents_schema() -> pa.Schema:
    return pa.schema(
        [("round", pa.int32()), ("agent", pa.int64()), ("population", _NAME), ("channel", _NAME)]
        + [(c, pa.int64() if c == "clicks" else pa.float64()) for c in AGENT_COLUMNS]
        + [("agents", pa.int64())]
    )


AUCTIONS_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("channel", _NAME),
    ("auction", pa.int64()),
    ("slot", pa.int16()),  # one row per slot of a position auction; 0 for single-item auctions
    ("winner", pa.int64()),  # -1 when unsold or the slot is empty
    ("price", pa.float64()),  # what the winner paid in this auction
    ("top_bid", pa.float64()),  # single item: the highest bid; position: the slot winner's bid
    ("second_bid", pa.float64()),  # single item: the second bid; position: the next-ranked bid
    ("winner_value", pa.float64()),  # null when unsold or the slot is empty
    ("clicks", pa.int64()),  # position auctions; null for single-item auctions
])


SEGMENTS_SCHEMA = pa.schema([  # markets with [traffic] only: one row per round, channel and segment
    ("round", pa.int32()),
    ("channel", _NAME),
    ("segment", pa.string()),
    ("auctions", pa.int64()),
    ("sold", pa.int64()),  # filled slot impressions
    ("clicks", pa.int64()),  # position auctions; null for single-item auctions
    ("revenue", pa.float64()),
    ("welfare", pa.float64()),
    ("max_welfare", pa.float64()),
    ("mean_price", pa.float64()),  # revenue / sold; null when nothing sold
])


SEGMENT_POPULATIONS_SCHEMA = pa.schema([  # markets with [traffic] only: per round, channel, segment, population
    ("round", pa.int32()),
    ("channel", _NAME),
    ("segment", pa.string()),
    ("population", _NAME),
    ("sold", pa.int64()),  # slot impressions the population won there
    ("spend", pa.float64()),
    ("value", pa.float64()),  # value won (x clicks in position auctions)
    ("clicks", pa.int64()),  # position auctions; null for single-item auctions
])


CONVERSIONS = pa.field("conversions", pa.float64())  # expected: clicks (or wins) x conversion rate; null where none


def extra_tables(scenario: Any) -> dict[str, pa.Schema]:
    """The tables a run writes besides ``TABLES``, or with more columns: ``segments`` in a market
    with ``[traffic]``, the populations' ``conversions`` when some population values conversions,
    and the strategies' own tables (``strategy_tables``)."""
    tables = strategy_tables(scenario)
    if any(getattr(p, "value_per", None) == "conversion" for p in scenario.populations):
        tables["populations"] = POPULATIONS_SCHEMA.append(CONVERSIONS)
    if getattr(scenario, "traffic", None) is not None:
        if "segments" in tables:
            raise ValueError("a strategy declares a table named 'segments', which markets with traffic write")
        if "segment_populations" in tables:
            raise ValueError("a strategy declares a table named 'segment_populations', which markets with traffic write")
        tables["segments"] = SEGMENTS_SCHEMA
        tables["segment_populations"] = SEGMENT_POPULATIONS_SCHEMA
        tables["auctions"] = AUCTIONS_SCHEMA.append(pa.field("segment", pa.string()))  # the impression's segment
    return tables


def strategy_tables(scenario: Any) -> dict[str, pa.Schema]:
    """The extra tables (name -> Arrow schema) the scenario's strategies write (``Strategy.tables``)."""
    from bidscape.bidders import STRATEGIES

    tables: dict[str, pa.Schema] = {}
    for population in scenario.populations:
        for name, schema in STRATEGIES.get(population.strategy).tables.items():
            if name in tables and not tables[name].equals(schema):
                raise ValueError(f"two strategies declare table '{name}' with different schemas")
            tables[name] = schema
    return tables


assert set(AGENT_FLOWS + AGENT_STOCKS) == set(AGENT_COLUMNS)
assert set(POPULATION_FLOWS + POPULATION_STOCKS) <= set(POPULATIONS_SCHEMA.names)
