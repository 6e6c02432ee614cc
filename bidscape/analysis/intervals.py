"""The intervals of a comparison: one metric's effect, over paired seeds or over rounds (batch means).

``effect_row`` takes the whole-run metric of each paired seed in both arms and the two arms'
round series (means over seeds), and returns one row of ``Comparison.table``: the means, the
difference, its interval, the relative change with its interval, the p-value and which interval
the row holds (``bidscape.analysis.compare`` explains the method). The by-segment table
(``bidscape.analysis.segment_compare``) uses the same function on each segment's series.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import polars as pl
from scipy import stats


def effect_row(metric: str, b: np.ndarray, t: np.ndarray, base_rounds: pl.DataFrame, treat_rounds: pl.DataFrame,
               level: float, batches: int, ratios: dict[str, tuple[str, str]],
               cumulative: tuple[str, ...] = ()) -> dict:
    """The effect of the treatment on ``metric``: ``b``, ``t`` per paired seed; ``ratios``: the metrics
    computed per batch from two round sums; ``cumulative``: metrics with no per-round version."""
    ok = np.isfinite(b) & np.isfinite(t)
    b, t = b[ok], t[ok]
    n = int(b.size)
    row = {"metric": metric, "baseline": _mean(b), "treatment": _mean(t), "difference": None,
           "ci_low": None, "ci_high": None, "relative": None, "relative_ci_low": None, "relative_ci_high": None,
           "p_value": None, "rounds_ci_low": None, "rounds_ci_high": None, "batches": None, "method": "", "n": n}
    if n == 0:
        row["method"] = "not recorded"
        return row
    d = t - b
    row["difference"] = float(d.mean())
    if row["baseline"]:
        row["relative"] = row["treatment"] / row["baseline"] - 1.0
    rounds_ci = None if metric in cumulative else \
        batch_means_interval(metric, base_rounds, treat_rounds, level, batches, ratios)
    if rounds_ci is not None:
        row["rounds_ci_low"], row["rounds_ci_high"], row["batches"] = rounds_ci
    if n >= 2:
        half = _t(level, n - 1) * d.std(ddof=1) / math.sqrt(n)
        row["ci_low"], row["ci_high"] = row["difference"] - half, row["difference"] + half
        row["p_value"] = _p_value(d)
        row["method"] = f"paired seeds (n={n}, t interval)"
        rel = _relative_interval(b, t, level)
        if rel is not None:
            row["relative_ci_low"], row["relative_ci_high"] = rel
    elif rounds_ci is not None:
        row["ci_low"], row["ci_high"] = row["rounds_ci_low"], row["rounds_ci_high"]
        row["method"] = f"batch means over rounds ({rounds_ci[2]} batches)"
        if row["baseline"]:
            row["relative_ci_low"] = row["ci_low"] / row["baseline"]
            row["relative_ci_high"] = row["ci_high"] / row["baseline"]
    else:
        row["method"] = "one seed: no interval" if metric in cumulative else "too few rounds for an interval"
    return row


def _mean(x: np.ndarray) -> Optional[float]:
    return float(x.mean()) if x.size else None


def _t(level: float, df: int) -> float:
    return float(stats.t.ppf(0.5 + level / 2, df))


def _p_value(d: np.ndarray) -> Optional[float]:
    sd = d.std(ddof=1)
    if sd == 0:
        return 0.0 if d.mean() != 0 else 1.0
    statistic = d.mean() / (sd / math.sqrt(d.size))
    return float(2 * stats.t.sf(abs(statistic), d.size - 1))


def _relative_interval(b: np.ndarray, t: np.ndarray, level: float) -> Optional[tuple[float, float]]:
    """Delta-method interval for mean(t) / mean(b) - 1 with paired (correlated) arms."""
    n = b.size
    mb, mt = b.mean(), t.mean()
    if mb == 0:
        return None
    ratio = mt / mb
    cov = np.cov(np.vstack([t, b]), ddof=1)
    variance = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio ** 2 * cov[1, 1]) / (n * mb ** 2)
    half = _t(level, n - 1) * math.sqrt(max(variance, 0.0))
    return ratio - 1 - half, ratio - 1 + half


def batch_means_interval(metric: str, b: pl.DataFrame, t: pl.DataFrame, level: float, batches: int,
                         ratios: dict[str, tuple[str, str]]) -> Optional[tuple[float, float, int]]:
    """Interval for the whole-run difference from batch means of the seed-averaged round series ``b``, ``t``
    (the same rounds in the same order)."""
    rounds = min(b.height, t.height)
    k = min(batches, rounds // 2)  # at least two rounds per batch, at least two batches
    if k < 2:
        return None
    edges = np.linspace(0, rounds, k + 1).round().astype(int)
    if metric in ratios:
        a, c = ratios[metric]
        diffs = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            tb = t[a][lo:hi].sum() / t[c][lo:hi].sum() if t[c][lo:hi].sum() else np.nan
            bb = b[a][lo:hi].sum() / b[c][lo:hi].sum() if b[c][lo:hi].sum() else np.nan
            diffs.append(tb - bb)
        diffs = np.array(diffs, float)
        scale = 1.0
    else:
        d = (t[metric][:rounds] - b[metric][:rounds]).to_numpy().astype(float)
        diffs = np.array([d[lo:hi].mean() for lo, hi in zip(edges[:-1], edges[1:])])
        scale = float(rounds)  # per-round mean -> whole-run total
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size < 2:
        return None
    centre = diffs.mean() * scale
    half = _t(level, diffs.size - 1) * diffs.std(ddof=1) / math.sqrt(diffs.size) * scale
    return float(centre - half), float(centre + half), int(diffs.size)
