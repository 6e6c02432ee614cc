"""Segments of traffic (markets with ``[traffic]``): what the Segments page shows, in polars.

A run with traffic writes ``segments.arrow``: one row per round, channel and segment
(auctions, sold, clicks, revenue, welfare, max_welfare). These functions read it for the
runs of a source that have it, filtered like ``analysis.market`` (``rounds``, ``channels``),
and sum it by round and segment or over the rows. No Streamlit here: the page caches.

Definitions (sums over the rows' rounds and channels):

- ``auction_share``: the segment's auctions over the run's auctions in the rows;
- ``revenue_per_auction``: revenue over auctions (an unsold auction counts, at 0);
- ``mean_price``: revenue per filled slot impression (as ``analysis.market``);
- ``efficiency``: welfare over max welfare.
"""

from __future__ import annotations

from typing import Optional, Sequence

import polars as pl

from bidscape.analysis import runs_of
from bidscape.analysis.metrics import ratio, where
from bidscape.analysis.sources import RunRef, Source

TABLE = "segments"
SUMS = ("auctions", "sold", "clicks", "revenue", "welfare", "max_welfare")
RATIOS = {"revenue_per_auction": ("revenue", "auctions"), "mean_price": ("revenue", "sold"),
          "efficiency": ("welfare", "max_welfare")}
TOTAL_COLUMNS = ("auctions", "auction_share", "revenue", "revenue_per_auction", "mean_price", "efficiency", "sold",
                 "clicks", "welfare", "max_welfare")


def has_segments(ref: RunRef) -> bool:
    return (ref.run.path / f"{TABLE}.arrow").is_file()


def runs_with_segments(source: Source) -> tuple[list[RunRef], list[RunRef]]:
    """The runs of ``source`` with ``segments.arrow``, and those without (no ``[traffic]``)."""
    refs = runs_of(source)
    return [r for r in refs if has_segments(r)], [r for r in refs if not has_segments(r)]


def segments_scan(source: Source, rounds: Optional[tuple[int, int]] = None,
                  channels: Optional[Sequence[str]] = None) -> pl.LazyFrame:
    """``segments.arrow`` of every run of ``source`` that has it, labelled by group and seed, filtered (lazy).

    ``rounds`` (first, last; inclusive) and ``channels`` keep only those rows, as in ``analysis.market``.
    Raises ``ValueError`` when no run of the source has segments."""
    refs, _ = runs_with_segments(source)
    if not refs:
        raise ValueError("no run of the source has segments (a [traffic] section)")
    frames = [pl.scan_ipc(ref.run.path / f"{TABLE}.arrow").with_columns(
        pl.col("channel").cast(pl.String), pl.col("segment").cast(pl.String),
        pl.lit(ref.group).alias("group"), pl.lit(ref.seed, pl.Int64).alias("seed")) for ref in refs]
    scan = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    return where(scan, rounds, channels)


def _summed(rows: pl.LazyFrame | pl.DataFrame, keys: list[str]) -> pl.LazyFrame:
    names = rows.collect_schema().names()
    # clicks are null for single-item auctions: a sum of nulls stays null rather than reading 0 clicks
    sums = [pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c) for c in SUMS if c in names]
    grouped = rows.lazy().group_by(keys).agg(*sums)
    return grouped.with_columns(*[ratio(a, b).alias(name) for name, (a, b) in RATIOS.items()])


def by_round(rows: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """One row per run, round and segment (summed over channels): auctions, sold, clicks, revenue,
    welfare, max welfare and the ratios."""
    keys = ["group", "seed", "round", "segment"]
    return _summed(rows, keys).sort(keys).collect()


def totals(rows: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """One row per run and segment over all the rows: ``TOTAL_COLUMNS``, ordered by the run's segment order."""
    keys = ["group", "seed", "segment"]
    order = rows.lazy().select("segment").unique(maintain_order=True).with_row_index("_order")
    summed = _summed(rows, keys).with_columns(
        (pl.col("auctions") / pl.col("auctions").sum().over("group", "seed")).alias("auction_share"))
    frame = summed.join(order, on="segment").sort("group", "seed", "_order").drop("_order").collect()
    return frame.select(*keys, *[c for c in TOTAL_COLUMNS if c in frame.columns])


def mean_over_runs(per_run: pl.DataFrame) -> pl.DataFrame:
    """``totals`` averaged over the seeds of each group (``runs``: how many), segments in their order."""
    numeric = [c for c in per_run.columns if c not in ("group", "seed", "segment")]
    return per_run.group_by("group", "segment", maintain_order=True).agg(
        pl.len().alias("runs"), *[pl.col(c).mean() for c in numeric])


def series(frame: pl.DataFrame) -> pl.DataFrame:
    """A ``series`` column naming each line: the segment, or ``variant · segment`` when there are several groups."""
    several = frame.get_column("group").n_unique() > 1
    name = (pl.col("group") + " · " + pl.col("segment")) if several else pl.col("segment")
    return frame.with_columns(name.alias("series"))


def price_summary(prices: pl.DataFrame, by: str = "series") -> pl.DataFrame:
    """Per ``by``: sampled prices ``n``, their mean and 10%, 50% and 90% quantiles."""
    return prices.group_by(by).agg(
        pl.len().alias("n"), pl.col("price").mean().alias("mean"),
        *[pl.col("price").quantile(q, "linear").alias(f"q{int(q * 100):02d}") for q in (0.1, 0.5, 0.9)]).sort(by)


POPULATION_TABLE = "segment_populations"
POPULATION_COLUMNS = ("sold", "spend", "spend_share", "value", "utility", "clicks")


def population_totals(source: Source, rounds: Optional[tuple[int, int]] = None,
                      channels: Optional[Sequence[str]] = None) -> pl.DataFrame:
    """Per run, segment and population over the filtered rows of ``segment_populations.arrow``: impressions
    won, spend, the population's share of the segment's spend, value won, utility and clicks (empty when no
    run has the table)."""
    refs = [ref for ref in runs_of(source) if (ref.run.path / f"{POPULATION_TABLE}.arrow").is_file()]
    if not refs:
        return pl.DataFrame()
    frames = [pl.scan_ipc(ref.run.path / f"{POPULATION_TABLE}.arrow").with_columns(
        pl.col("channel").cast(pl.String), pl.col("segment").cast(pl.String), pl.col("population").cast(pl.String),
        pl.lit(ref.group).alias("group"), pl.lit(ref.seed, pl.Int64).alias("seed")) for ref in refs]
    rows = where(pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0], rounds, channels)
    keys = ["group", "seed", "segment", "population"]
    summed = rows.group_by(keys, maintain_order=True).agg(
        pl.col("sold").sum(), pl.col("spend").sum(), pl.col("value").sum(),
        pl.when(pl.col("clicks").is_not_null().any()).then(pl.col("clicks").sum()).alias("clicks"))
    return summed.with_columns(
        (pl.col("spend") / pl.col("spend").sum().over("group", "seed", "segment")).alias("spend_share"),
        (pl.col("value") - pl.col("spend")).alias("utility")).collect().select(*keys, *POPULATION_COLUMNS)
