"""Metrics by segment of traffic, for markets with context (a scenario's ``[traffic]``).

A run with traffic writes ``segments.arrow``: per round, channel and segment, the auctions,
filled slot impressions, clicks, revenue, welfare and max welfare. ``segment_metrics``
sums them over the run (or keeps the rounds) and adds the ratios, with the same names as
``bidscape.analysis.market``:

- ``auction_share``: the segment's share of the channel's auctions (of the round's, by round).
- ``sold_share`` (sell-through): filled slot impressions over slot impressions offered
  (auctions x the channel's slots in that round).
- ``revenue_per_auction``: revenue over auctions; ``mean_price``: revenue over filled slots.
- ``efficiency``: welfare over max welfare (each auction to the participant valuing it most).

Per channel and segment over the run, then per round too, then per segment over all channels:

>>> from bidscape import analysis
>>> analysis.segment_metrics("runs/segments")                    # doctest: +SKIP
>>> analysis.segment_metrics("runs/segments", by_round=True)     # doctest: +SKIP
>>> analysis.segment_metrics("runs/segments", by_channel=False)  # doctest: +SKIP

Each population's share of a segment (``segment_populations.arrow``):

>>> analysis.segment_population_metrics("runs/segments")         # doctest: +SKIP
"""

from __future__ import annotations

import polars as pl

from bidscape.analysis.metrics import _collect, with_ratios
from bidscape.analysis.sources import RunRef, Source, runs_of
from bidscape.errors import InputError, Problem

SEGMENT_SUMS = ("auctions", "slots_offered", "sold", "clicks", "revenue", "welfare", "max_welfare")
SEGMENT_RATIOS = {
    "sold_share": ("sold", "slots_offered"),
    "revenue_per_auction": ("revenue", "auctions"),
    "mean_price": ("revenue", "sold"),
    "efficiency": ("welfare", "max_welfare"),
}


def _segments(ref: RunRef) -> pl.LazyFrame:
    path = ref.run.path / "segments.arrow"
    if not path.is_file():
        has_traffic = ref.run.manifest.get("scenario", {}).get("traffic") is not None
        why = ("written by an older bidscape?" if has_traffic
               else "its scenario has no [traffic] section, so its auctions have no segments")
        fix = ("re-run the scenario with this version" if has_traffic
               else "add a [traffic] section with [[traffic.segments]] to the scenario and run it again")
        raise InputError(Problem("", f"run '{ref.run.path}' has no segments.arrow ({why})", fix))
    return pl.scan_ipc(path)


def summed(column: str) -> pl.Expr:
    """The sum of ``column``, null when every value is (clicks of single-item auctions: not recorded, not 0)."""
    return pl.when(pl.col(column).is_not_null().any()).then(pl.col(column).sum()).otherwise(None).alias(column)


def segment_metrics(source: Source, by_round: bool = False, by_channel: bool = True) -> pl.DataFrame:
    """Auctions, share of auctions, sold, sell-through (``sold_share``), revenue, revenue per auction,
    mean price, welfare, max welfare and efficiency per channel and segment, summed over the run
    (``by_round=True``: per round, channel and segment; ``by_channel=False``: the channels summed).

    ``source`` is anything ``bidscape.analysis.market`` takes (a run, a group, a sweep); the
    frame starts with ``group`` and ``seed``. A run without ``segments.arrow`` (no ``[traffic]``)
    is an ``InputError``. The segments' sums add up to the market's (``analysis.market``).
    """
    keys = (["round"] if by_round else []) + (["channel"] if by_channel else []) + ["segment"]

    def build(ref: RunRef) -> pl.LazyFrame:
        rows = _segments(ref).with_columns(pl.col("channel").cast(pl.String))
        slots = pl.scan_ipc(ref.run.path / "market.arrow").select(
            "round", pl.col("channel").cast(pl.String), pl.col("slot_impressions").list.len().alias("_slots"))
        rows = rows.join(slots, on=["round", "channel"], how="left").with_columns(
            (pl.col("auctions") * pl.col("_slots")).alias("slots_offered"))
        totals = rows.group_by(keys).agg(*[pl.col(c).sum() for c in SEGMENT_SUMS if c != "clicks"], summed("clicks"))
        share_of = [k for k in keys if k != "segment"]
        all_auctions = pl.col("auctions").sum()
        totals = totals.with_columns(
            (pl.col("auctions") / (all_auctions.over(share_of) if share_of else all_auctions)).alias("auction_share"))
        return with_ratios(totals, SEGMENT_RATIOS).select(
            *keys, "auctions", "auction_share", "slots_offered", "sold", "sold_share", "clicks", "revenue",
            "revenue_per_auction", "mean_price", "welfare", "max_welfare", "efficiency")

    return _collect(runs_of(source), build, keys)


POPULATION_SUMS = ("sold", "spend", "value", "clicks")
POPULATION_RATIOS = {"mean_price": ("spend", "sold"), "return_on_spend": ("value", "spend")}


def segment_population_metrics(source: Source, by_round: bool = False, by_channel: bool = False) -> pl.DataFrame:
    """Per segment and population (``by_round``: and round; ``by_channel``: and channel): slot
    impressions won (``sold``), ``spend``, ``value`` won, ``utility`` (value - spend), ``clicks``,
    the population's share of the segment's spend (``spend_share``, of the same round and channel
    where those are kept), ``mean_price`` (spend per impression won) and ``return_on_spend``.

    From ``segment_populations.arrow``; over populations the spend adds up to the segment's revenue
    in ``segment_metrics`` (auctions without losers' payments). A run without it is an ``InputError``.
    """
    keys = (["round"] if by_round else []) + (["channel"] if by_channel else []) + ["segment", "population"]

    def build(ref: RunRef) -> pl.LazyFrame:
        path = ref.run.path / "segment_populations.arrow"
        if not path.is_file():
            _segments(ref)  # the error for a run without [traffic]
            raise InputError(Problem("", f"run '{ref.run.path}' has no segment_populations.arrow (written by an "
                                     "older bidscape?)", "re-run the scenario with this version"))
        rows = pl.scan_ipc(path).with_columns(pl.col("channel").cast(pl.String), pl.col("population").cast(pl.String))
        totals = rows.group_by(keys).agg(*[pl.col(c).sum() for c in POPULATION_SUMS if c != "clicks"],
                                         summed("clicks"))
        spend_of_segment = pl.col("spend").sum().over([k for k in keys if k != "population"])
        totals = totals.with_columns((pl.col("value") - pl.col("spend")).alias("utility"),
                                     (pl.col("spend") / spend_of_segment).alias("spend_share"))
        return with_ratios(totals, POPULATION_RATIOS).select(
            *keys, "sold", "spend", "spend_share", "value", "utility", "clicks", "mean_price", "return_on_spend")

    return _collect(runs_of(source), build, keys)
