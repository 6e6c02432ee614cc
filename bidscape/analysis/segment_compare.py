"""What-if comparisons by segment of traffic: ``compare``'s effects for each segment of a market with context.

When every paired run of both arms has ``segments.arrow`` (a scenario with ``[traffic]``),
``compare`` adds one row per segment and metric (``SEGMENT_EFFECTS``), each with the
intervals of the whole-market table (``bidscape.analysis.intervals``): over the paired seeds
when there are two or more, else batch means over the rounds of the segment's series (summed
over channels, averaged over seeds). Sums (revenue, clicks, welfare) are whole-run totals;
ratios (``revenue_per_auction``, ``mean_price``, ``sold_share``, ``efficiency``) are the
ratios of the segment's sums, as in ``analysis.segment_metrics``. Segments are matched by
name; one that only one arm has is left out. Runs without segments get no segment rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import polars as pl

from bidscape.analysis.intervals import effect_row
from bidscape.analysis.metrics import with_ratios
from bidscape.analysis.segments import SEGMENT_RATIOS, SEGMENT_SUMS, segment_metrics, summed
from bidscape.analysis.sources import RunRef

SEGMENT_EFFECTS = ("revenue", "revenue_per_auction", "mean_price", "sold_share", "clicks", "welfare", "efficiency")


@dataclass
class SegmentEffects:
    """``table``: one row per segment and metric (``segment``, then the columns of ``Comparison.table``);
    ``by_round``: per arm, segment and round, the sums and ratios averaged over seeds."""

    table: pl.DataFrame
    by_round: pl.DataFrame


def has_segments(refs: Sequence[RunRef]) -> bool:
    return bool(refs) and all((ref.run.path / "segments.arrow").is_file() for ref in refs)


def segment_effects(base: list[RunRef], treat: list[RunRef], metrics: Sequence[str], level: float,
                    batches: int) -> Optional[SegmentEffects]:
    """The effects by segment of the paired runs ``base[i]``, ``treat[i]``; ``None`` unless both arms have segments."""
    if not metrics or not (has_segments(base) and has_segments(treat)):
        return None
    base_runs = segment_metrics(base, by_channel=False)
    treat_runs = segment_metrics(treat, by_channel=False)
    treated = set(treat_runs.get_column("segment").cast(pl.String))
    segments = [s for s in base_runs.get_column("segment").cast(pl.String).unique(maintain_order=True)
                if s in treated]
    runs = base_runs.with_columns(pl.col("segment").cast(pl.String)).join(
        treat_runs.with_columns(pl.col("segment").cast(pl.String)), on=["seed", "segment"], suffix="_treatment")
    base_rounds, treat_rounds = _aligned_rounds(_mean_over_seeds(base), _mean_over_seeds(treat))
    rows = []
    for segment in segments:
        paired = runs.filter(pl.col("segment") == segment).sort("seed")
        b_rounds = base_rounds.filter(pl.col("segment") == segment)
        t_rounds = treat_rounds.filter(pl.col("segment") == segment)
        for metric in metrics:
            b = paired.get_column(metric).cast(pl.Float64).fill_null(float("nan")).to_numpy()
            t = paired.get_column(f"{metric}_treatment").cast(pl.Float64).fill_null(float("nan")).to_numpy()
            rows.append({"segment": segment, **effect_row(metric, b, t, b_rounds, t_rounds, level, batches,
                                                           SEGMENT_RATIOS)})
    table = pl.DataFrame(rows, schema_overrides={"n": pl.Int64}, infer_schema_length=None)
    by_round = pl.concat([base_rounds.with_columns(pl.lit("baseline").alias("arm")),
                          treat_rounds.with_columns(pl.lit("treatment").alias("arm"))])
    return SegmentEffects(table, by_round.select("arm", *[c for c in by_round.columns if c != "arm"]))


def _mean_over_seeds(refs: list[RunRef]) -> pl.DataFrame:
    """Per segment and round, the sums over channels averaged over the runs (a round a run lacks counts as 0)."""
    rounds = segment_metrics(refs, by_round=True, by_channel=False).with_columns(pl.col("segment").cast(pl.String))
    runs = len(refs)
    return rounds.group_by("segment", "round", maintain_order=True).agg(
        *[(pl.col(c).sum() / runs) for c in SEGMENT_SUMS if c != "clicks"], summed("clicks") / runs)


def _aligned_rounds(base: pl.DataFrame, treat: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both arms over the same (segment, round) rows in round order, 0 where an arm has none, with the ratios."""
    grid = pl.concat([base.select("segment", "round"), treat.select("segment", "round")]).unique().sort(
        "segment", "round")
    zeros = [pl.col(c).fill_null(0.0) for c in SEGMENT_SUMS if c != "clicks"]

    def on_grid(arm: pl.DataFrame) -> pl.DataFrame:
        frame = grid.join(arm, on=["segment", "round"], how="left").with_columns(*zeros)
        return with_ratios(frame.lazy(), SEGMENT_RATIOS).collect()

    return on_grid(base), on_grid(treat)
