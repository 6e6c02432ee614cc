"""The end of a sweep: headline metrics against the swept parameters, as a table and a plot file.

The metrics are ``bidscape.analysis.headline``'s (the dashboard's sweep page reads the same),
one value per complete run; each variant gets the mean over its seeds and a Student-t
interval (``n - 1`` degrees of freedom; none with one seed). The plot draws the same means and
intervals against the first swept key (one line per value of the other swept keys) into
``OUT/summary.png``.

>>> frame = summarise("runs/reserve", read_index("runs/reserve"), ["mechanism.reserve"])  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import polars as pl
from scipy import stats

from bidscape.analysis import headline

METRICS = ("revenue", "efficiency", "sold_share", "mean_price", "bidder_utility")
PLOT_FILE = "summary.png"


def summarise(path: str | Path, index: pl.DataFrame, swept_keys: Sequence[str], level: float = 0.95,
              metrics: Sequence[str] = METRICS) -> Optional[pl.DataFrame]:
    """One row per variant with a complete run: its swept values, ``n`` (seeds), and for each metric
    ``METRIC`` (mean over seeds), ``METRIC_low`` and ``METRIC_high`` (the interval; null with one seed).

    None when no run is complete. Variants keep the sweep's order."""
    complete = index.filter(pl.col("status") == "complete")
    if complete.is_empty():
        return None
    # a sweep folder's groups are its variant folders, named after the variants
    values = headline(Path(path)).rename({"group": "variant"}).join(
        complete.select("variant", pl.col("seed").cast(pl.Int64)), on=["variant", "seed"], how="inner")
    metrics = [m for m in metrics if values.get_column(m).is_not_null().any()]
    t = pl.col("n").map_elements(lambda n: float(stats.t.ppf(0.5 + level / 2, n - 1)) if n > 1 else math.nan,
                                 return_dtype=pl.Float64)
    summary = values.group_by("variant", maintain_order=True).agg(
        pl.len().alias("n"), *[pl.col(m).mean().alias(m) for m in metrics],
        *[pl.col(m).std().alias(f"_{m}_sd") for m in metrics])
    half = {m: t * pl.col(f"_{m}_sd") / pl.col("n").cast(pl.Float64).sqrt() for m in metrics}
    summary = summary.with_columns(*[(pl.col(m) - half[m]).fill_nan(None).alias(f"{m}_low") for m in metrics],
                                   *[(pl.col(m) + half[m]).fill_nan(None).alias(f"{m}_high") for m in metrics])
    keys = [k for k in swept_keys if k in index.columns]
    swept = index.select("variant", *keys).unique("variant", maintain_order=True)
    order = {name: i for i, name in enumerate(index.get_column("variant").unique(maintain_order=True))}
    return (swept.join(summary, on="variant", how="inner")
            .sort(pl.col("variant").replace_strict(order, return_dtype=pl.Int64))
            .select("variant", *keys, "n", *[c for m in metrics for c in (m, f"{m}_low", f"{m}_high")]))


def metrics_of(summary: pl.DataFrame) -> list[str]:
    return [m for m in METRICS if m in summary.columns]


def plot(summary: pl.DataFrame, swept_keys: Sequence[str], path: str | Path, level: float = 0.95) -> Path:
    """Each metric against the first swept key (the variants in order when there is none), mean over
    seeds with its interval as error bars; one line per value of the other swept keys. PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in swept_keys if k in summary.columns]
    x_key = keys[0] if keys else "variant"
    numeric = summary.schema[x_key].is_numeric()
    rest = keys[1:]
    groups = (summary.with_columns(pl.concat_str([pl.format(f"{k}={{}}", pl.col(k)) for k in rest], separator=", ")
                                   .alias("_line")) if rest else summary.with_columns(pl.lit("").alias("_line")))
    labels = summary.get_column(x_key).cast(pl.String).unique(maintain_order=True).to_list()
    metrics = metrics_of(summary)
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.0), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for name, part in groups.group_by("_line", maintain_order=True):
            x = part.get_column(x_key).to_list() if numeric else \
                [labels.index(str(v)) for v in part.get_column(x_key).cast(pl.String)]
            mean = part.get_column(metric).to_numpy()
            low = part.get_column(f"{metric}_low").fill_null(float("nan")).to_numpy()
            high = part.get_column(f"{metric}_high").fill_null(float("nan")).to_numpy()
            errors = [mean - low, high - mean]
            axis.errorbar(x, mean, yerr=errors, marker="o", capsize=3, label=name[0] or None)
        axis.set_title(metric.replace("_", " "), fontsize=10)
        axis.set_xlabel(x_key)
        if not numeric:
            axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    if rest:
        axes[0][0].legend(fontsize=7)
    figure.suptitle(f"mean over seeds with its {level:.0%} interval", fontsize=9)
    figure.tight_layout()
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(path)
    return path
