"""What-if comparisons: a treatment against a baseline, with confidence intervals.

The two arms are paired by seed. bidscape draws every auction (participants, values,
ties) from a hash of the run's seed, so a baseline and a treatment run with the same
seed see the same auctions: common random numbers. The differences then carry only
the treatment's effect plus the noise of how it plays out, which makes the intervals
much narrower than those of independent runs.

Two intervals for every headline metric (``bidscape.analysis.HEADLINE``):

- **over seeds** (needs at least two paired seeds): the paired differences of the
  whole-run metric, a Student-t interval with ``n - 1`` degrees of freedom. The
  relative change ``treatment / baseline - 1`` gets a delta-method interval that
  accounts for the baseline's noise and its correlation with the treatment.
- **over rounds** (any number of seeds): the round-by-round differences (averaged over
  seeds) are cut into ``batches`` consecutive batches; batch means are much less
  autocorrelated than rounds (learning and budgets carry over from round to round),
  and the interval is Student-t over the batch means (Law and Carson's batch means).
  Additive metrics are scaled to whole-run totals; ratios (efficiency, prices, shares)
  are computed per batch. Cumulative metrics (liquid welfare, regret) have no
  per-round version and get no interval over rounds.

The ``method`` column says which interval ``ci_low``/``ci_high`` holds: over seeds
when there are two or more, else over rounds.

**By segment.** When both arms have segments (scenarios with ``[traffic]``), ``segments``
holds the same effects for each segment (``bidscape.analysis.segment_compare``); otherwise it
is ``None`` and nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import polars as pl

from bidscape.analysis.events import Overlap, equal_rounds, identical
from bidscape.analysis.intervals import effect_row
from bidscape.analysis.metrics import HEADLINE, headline, market, populations, with_ratios
from bidscape.analysis.segment_compare import SEGMENT_EFFECTS, has_segments, segment_effects
from bidscape.analysis.sources import RunRef, Source, runs_of
from bidscape.errors import InputError, Problem
from bidscape.outputs.summary import MARKET_RATIOS, POPULATION_RATIOS

# the headline ratios from per-round sums (the others are sums); a round's share of the budget is budget / rounds
_ROUND_RATIOS = {
    "return_on_spend": POPULATION_RATIOS["return_on_spend"],
    "win_rate": POPULATION_RATIOS["win_rate"],
    "budget_utilisation": ("budgeted_spend", "budget_per_round"),
    **MARKET_RATIOS,
}
_CUMULATIVE = ("liquid_welfare", "regret")


@dataclass
class Comparison:
    """The result of ``compare``: ``table`` (one row per metric), ``per_seed`` and ``by_round``; with segments,
    ``segments`` (one row per segment and metric) and ``segments_by_round``."""

    baseline: str
    treatment: str
    seeds: list[int]
    level: float
    table: pl.DataFrame
    per_seed: pl.DataFrame
    by_round: pl.DataFrame
    unpaired: dict[str, list[int]] = field(default_factory=dict)
    scenario_changes: list[tuple[str, object, object]] = field(default_factory=list)
    # keys the arms differ on in some round but share in others (events), and whether they never differ
    overlaps: list[Overlap] = field(default_factory=list)
    identical_arms: bool = False
    segments: Optional[pl.DataFrame] = None
    segments_by_round: Optional[pl.DataFrame] = None

    @property
    def warnings(self) -> list[str]:
        """What makes the effects mislead, one line each: arms equal over some or all rounds."""
        lines = []
        if self.identical_arms:
            lines.append("the arms have the same settings in every round (events included): the treatment "
                         "changes nothing, and every difference is 0 by construction")
        lines.extend(o.message() for o in self.overlaps)
        return lines

    def to_html(self, path) -> None:
        from bidscape.analysis.report import write_report

        write_report(self, path)


def compare(baseline: Source, treatment: Source, metrics: Optional[Sequence[str]] = None, level: float = 0.95,
            batches: int = 10) -> Comparison:
    """Compare two arms (runs or groups of runs), paired by seed; see the module docstring."""
    chosen = list(metrics or HEADLINE)
    known = HEADLINE + tuple(m for m in SEGMENT_EFFECTS if m not in HEADLINE)
    unknown = [m for m in chosen if m not in known]
    if unknown:
        raise InputError(Problem("--metrics", f"unknown metric(s) {', '.join(unknown)}",
                                 f"use any of {', '.join(known)} (the last {len(known) - len(HEADLINE)} "
                                 "by segment only)"))
    by_segment = [m for m in chosen if m in SEGMENT_EFFECTS] if metrics else list(SEGMENT_EFFECTS)
    segment_only = [m for m in chosen if m not in HEADLINE]
    metrics = [m for m in chosen if m in HEADLINE]
    if not 0 < level < 1:
        raise InputError(Problem("--level", f"confidence level {level} is not in (0, 1)", "e.g. 0.95"))
    base_refs, treat_refs = runs_of(baseline), runs_of(treatment)
    base_by_seed, treat_by_seed = _by_seed(base_refs, "baseline"), _by_seed(treat_refs, "treatment")
    seeds = sorted(set(base_by_seed) & set(treat_by_seed))
    if not seeds:
        raise InputError(Problem("TREATMENT", f"no seed is in both arms (baseline seeds {sorted(base_by_seed)}, "
                                 f"treatment seeds {sorted(treat_by_seed)})",
                                 "run both arms with the same seeds (bidscape run-pair does)"))
    if {r.run.path.resolve() for r in base_refs} & {r.run.path.resolve() for r in treat_refs}:
        raise InputError(Problem("TREATMENT", "the baseline and the treatment share runs",
                                 "point to two different runs or groups"))
    base = [base_by_seed[s] for s in seeds]
    treat = [treat_by_seed[s] for s in seeds]
    if segment_only and not (has_segments(base) and has_segments(treat)):
        raise InputError(Problem("--metrics", f"{', '.join(segment_only)} are by segment, and the arms have no "
                                 "segments (segments.arrow: scenarios with [traffic])",
                                 f"use any of {', '.join(HEADLINE)}"))
    base_head, treat_head = headline(base), headline(treat)
    base_rounds, treat_rounds = _mean_over_seeds(_round_frame(base)), _mean_over_seeds(_round_frame(treat))

    rows = []
    for metric in metrics:
        b = base_head[metric].to_numpy().astype(float)
        t = treat_head[metric].to_numpy().astype(float)
        rows.append(effect_row(metric, b, t, base_rounds, treat_rounds, level, batches, _ROUND_RATIOS, _CUMULATIVE))
    table = pl.DataFrame(rows, schema_overrides={"n": pl.Int64}, infer_schema_length=None)
    per_seed = pl.concat([
        pl.DataFrame({"seed": seeds, "metric": [m] * len(seeds),
                      "baseline": base_head[m].cast(pl.Float64), "treatment": treat_head[m].cast(pl.Float64)})
        for m in metrics
    ] or [pl.DataFrame(schema={"seed": pl.Int64, "metric": pl.String, "baseline": pl.Float64,
                               "treatment": pl.Float64})]
    ).with_columns((pl.col("treatment") - pl.col("baseline")).alias("difference"))
    by_round = pl.concat([base_rounds.with_columns(pl.lit("baseline").alias("arm")),
                          treat_rounds.with_columns(pl.lit("treatment").alias("arm"))])
    unpaired = {"baseline": sorted(set(base_by_seed) - set(seeds)),
                "treatment": sorted(set(treat_by_seed) - set(seeds))}
    base_scenario, treat_scenario = base[0].run.manifest["scenario"], treat[0].run.manifest["scenario"]
    by_segments = segment_effects(base, treat, by_segment, level, batches)
    segments, segments_by_round = (by_segments.table, by_segments.by_round) if by_segments else (None, None)
    return Comparison(_name(base_refs), _name(treat_refs), seeds, level, table, per_seed,
                      by_round.select("arm", *[c for c in by_round.columns if c != "arm"]),
                      {k: v for k, v in unpaired.items() if v}, scenario_changes(base_scenario, treat_scenario),
                      equal_rounds(base_scenario, treat_scenario), identical(base_scenario, treat_scenario),
                      segments, segments_by_round)


def _by_seed(refs: list[RunRef], arm: str) -> dict[int, RunRef]:
    found: dict[int, RunRef] = {}
    for ref in refs:
        if ref.seed in found:
            raise InputError(Problem(arm.upper(), f"two {arm} runs have seed {ref.seed} "
                                     f"('{found[ref.seed].run.path}' and '{ref.run.path}')",
                                     "point to one group (one variant of a sweep), not a whole sweep"))
        found[ref.seed] = ref
    return found


def _name(refs: list[RunRef]) -> str:
    groups = sorted({r.group for r in refs})
    return groups[0] if len(groups) == 1 else "+".join(groups)


def _round_frame(refs: list[RunRef]) -> pl.DataFrame:
    """Per seed and round: the sums every headline metric is built from."""
    m = market(refs, by=("round",)).select("seed", "round", "auctions", "slots_offered", "sold", "revenue",
                                            "welfare", "max_welfare")
    p = populations(refs, by=("round",)).select(
        "seed", "round", "spend", "budgeted_spend", "value", "wins", "participations",
        pl.col("utility").alias("bidder_utility"), pl.col("budget").alias("budget_total"))
    rounds = m.join(p, on=["seed", "round"], how="left")
    per_run = rounds.group_by("seed").agg(pl.col("round").count().alias("_rounds"))
    return (rounds.join(per_run, on="seed")
            .with_columns((pl.col("budget_total") / pl.col("_rounds")).alias("budget_per_round"))
            .drop("_rounds").sort("seed", "round"))


def _mean_over_seeds(rounds: pl.DataFrame) -> pl.DataFrame:
    numeric = [c for c in rounds.columns if c not in ("seed", "round")]
    frame = rounds.group_by("round").agg(*[pl.col(c).mean() for c in numeric]).sort("round")
    return with_ratios(frame.lazy(), _ROUND_RATIOS).collect()


def scenario_changes(base: dict, treat: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """The scenario fields that differ between the arms: (dotted path, baseline, treatment)."""
    changes: list[tuple[str, object, object]] = []
    for key in sorted(set(base) | set(treat)):
        path = f"{prefix}{key}"
        if path in ("run.seed", "run.name"):
            continue
        a, b = base.get(key), treat.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes.extend(scenario_changes(a, b, path + "."))
        elif _named(a) and _named(b) and [x["name"] for x in a] == [x["name"] for x in b]:
            # lists of named tables (populations, channels, segments): by name, as --treatment writes them
            for x, y in zip(a, b):
                changes.extend(scenario_changes(x, y, f"{path}.{x['name']}."))
        elif a != b:
            changes.append((path, a, b))
    return changes


def _named(items: object) -> bool:
    return isinstance(items, list) and all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in items)
