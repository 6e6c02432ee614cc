"""``bidscape compare``: what-if comparisons from the command line (``run-pair`` is in ``bidscape.sweep.pair_cli``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table


console = Console()
if not console.is_terminal:
    console = Console(width=160)


def compare(
    baseline: Path = typer.Argument(..., metavar="BASELINE", help="A run folder, or a group of runs (one per seed)."),
    treatment: Path = typer.Argument(..., metavar="TREATMENT", help="The same for the treatment arm."),
    report: Optional[Path] = typer.Option(None, help="HTML report (default: compare-BASELINE-vs-TREATMENT.html)."),
    metrics: Optional[str] = typer.Option(None, help="Comma-separated metrics (default: all headline metrics and, "
                                           "with segments, all metrics by segment)."),
    level: float = typer.Option(0.95, help="Confidence level of the intervals."),
    batches: int = typer.Option(10, help="Batches for the interval over rounds (batch means)."),
    csv: Optional[Path] = typer.Option(None, help="Also write the table as CSV (with segments, also the table by "
                                       "segment as NAME-segments.csv)."),
) -> None:
    """Compare a treatment with a baseline, paired by seed, with confidence intervals; writes an HTML report."""
    from bidscape.analysis.compare import compare as run_compare

    chosen = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    result = run_compare(baseline, treatment, chosen, level, batches)
    report = report or Path(f"compare-{_slug(result.baseline)}-vs-{_slug(result.treatment)}.html")
    report_comparison(result, report, csv)


def report_comparison(result, report: Path, csv: Optional[Path]) -> None:
    print_table(result)
    result.to_html(report)
    tables = f"   table: {escape(str(csv))}" if csv else ""
    if csv is not None:
        result.table.write_csv(csv)
        if result.segments is not None:
            by_segment = csv.with_name(f"{csv.stem}-segments{csv.suffix}")
            result.segments.write_csv(by_segment)
            tables += f", by segment: {escape(str(by_segment))}"
    console.print(f"\nreport: [bold]{escape(str(report))}[/]" + tables)


def print_table(result) -> None:
    seeds = len(result.seeds)
    title = (f"{result.treatment} vs {result.baseline}: {seeds} paired seed(s), {result.level:.0%} intervals")
    console.print(_effects(result.table, title))
    if result.segments is not None:
        console.print(_effects(result.segments, "by segment", first="segment"))
    for warning in result.warnings:  # after the table, where the eye lands, and in red: the effects mislead
        console.print(f"[bold red]WARNING[/]: {escape(warning)}")
    if result.scenario_changes:
        console.print("changed: " + escape("; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in result.scenario_changes)))
    if result.unpaired:
        console.print(f"[yellow]left out (no partner seed)[/]: {escape(str(result.unpaired))}")
    console.print("green/red: the interval excludes 0. Over seeds: paired t; over rounds: batch means.")


def _effects(rows, title: str, first: Optional[str] = None) -> Table:
    """One row per effect (``Comparison.table``, or ``segments`` with ``first="segment"``)."""
    from bidscape.analysis.report import fmt

    table = Table(title=escape(title), box=box.SIMPLE_HEAD, header_style="bold")
    for column in ([first] if first else []) + ["metric", "baseline", "treatment", "difference", "interval",
                                                  "relative", "relative interval", "over"]:
        table.add_column(column, justify="left" if column in (first, "metric", "over") else "right")
    for r in rows.iter_rows(named=True):
        lead = [escape(str(r[first]))] if first else []
        if r["difference"] is None:
            table.add_row(*lead, r["metric"], "-", "-", "-", "-", "-", "-", escape(r["method"]))
            continue
        low, high = r["ci_low"], r["ci_high"]
        style = "" if low is None or low <= 0 <= high else ("green" if low > 0 else "red")
        interval = "-" if low is None else f"[{fmt(low)}, {fmt(high)}]"
        rel = "-" if r["relative_ci_low"] is None else \
            f"[{fmt(r['relative_ci_low'], True)}, {fmt(r['relative_ci_high'], True)}]"
        table.add_row(*lead, r["metric"], fmt(r["baseline"]), fmt(r["treatment"]),
                      f"[{style}]{fmt(r['difference'])}[/]" if style else fmt(r["difference"]), interval,
                      fmt(r["relative"], True), rel, "seeds" if r["method"].startswith("paired") else
                      ("rounds" if r["method"].startswith("batch") else escape(r["method"])))
    return table


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:60]
