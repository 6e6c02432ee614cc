"""``bidscape compare`` and ``bidscape run-pair``: what-if studies from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bidscape.errors import InputError, Problem

console = Console()
if not console.is_terminal:
    console = Console(width=160)


def compare(
    baseline: Path = typer.Argument(..., metavar="BASELINE", help="A run folder, or a group of runs (one per seed)."),
    treatment: Path = typer.Argument(..., metavar="TREATMENT", help="The same for the treatment arm."),
    report: Optional[Path] = typer.Option(None, help="HTML report (default: compare-BASELINE-vs-TREATMENT.html)."),
    metrics: Optional[str] = typer.Option(None, help="Comma-separated metrics (default: all headline metrics)."),
    level: float = typer.Option(0.95, help="Confidence level of the intervals."),
    batches: int = typer.Option(10, help="Batches for the interval over rounds (batch means)."),
    csv: Optional[Path] = typer.Option(None, help="Also write the table as CSV."),
) -> None:
    """Compare a treatment with a baseline, paired by seed, with confidence intervals; writes an HTML report."""
    from bidscape.analysis.compare import compare as run_compare

    chosen = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    result = run_compare(baseline, treatment, chosen, level, batches)
    report = report or Path(f"compare-{_slug(result.baseline)}-vs-{_slug(result.treatment)}.html")
    _finish(result, report, csv)


def run_pair(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO.toml", help="The baseline scenario."),
    treatment: list[str] = typer.Option(..., "--treatment", "-t", metavar="KEY.PATH=VALUE",
                                        help="What the treatment changes (repeatable)."),
    seeds: int = typer.Option(10, help="Paired seeds: 1..N in both arms."),
    out: Path = typer.Option(Path("runs/pair"), help="Output folder; the same command resumes it."),
    overwrite: bool = typer.Option(False, help="Replace the folder when it holds another run-pair."),
    hold: bool = typer.Option(True, "--hold/--no-hold",
                              help="The treatment holds for the whole run: events that set a treated key are "
                                   "dropped from both arms (default). --no-hold keeps them (the arms may then "
                                   "be equal over some rounds: warned)."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY.PATH=VALUE",
                                                  help="Change both arms, e.g. --set run.rounds=10 (repeatable)."),
    workers: Optional[int] = typer.Option(None, help="Processes (default: one per core)."),
    backend: str = typer.Option("local", help="local or ray."),
    level: float = typer.Option(0.95, help="Confidence level of the intervals."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run a baseline and a treatment over the same seeds (common random numbers) and compare them."""
    from bidscape.analysis.compare import compare as run_compare
    from bidscape.analysis.pair import arms, prepare_out
    from bidscape.scenario import Scenario, parse_value
    from bidscape.sweep import SweepSpec, run_sweep

    base = Scenario.from_toml(scenario_file, overrides)
    changes: dict[str, object] = {}
    for item in treatment:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(Problem("--treatment", f"'{item}' is not KEY.PATH=VALUE",
                                     "write e.g. --treatment mechanism.reserve=0.3"))
        changes[key.strip()] = parse_value(value)
    base, notes, warnings = arms(base, changes, hold)
    spec = SweepSpec.from_scenario(base, {"baseline": {}, "treatment": changes}, list(range(1, seeds + 1)),
                                   f"{base.run.name}-pair", swept_keys=list(changes))
    prepare_out(out, overwrite, spec)
    console.print(f"[bold]run-pair[/]: {seeds} seeds x 2 arms into [bold]{escape(str(out))}[/] "
                  f"({escape(str(out / 'baseline'))}, {escape(str(out / 'treatment'))}); treatment: "
                  + escape(", ".join(f"{k} = {v!r}" for k, v in changes.items())))
    for note in notes:
        console.print(f"[bold]note[/]: {escape(note)}")
    for warning in warnings:
        console.print(f"[bold red]warning[/]: {escape(warning)}")
    result = run_sweep(spec, out, backend=backend, workers=workers, progress=not quiet)
    if not result.ok:
        raise InputError(Problem("--treatment", f"{result.failed} run(s) failed and {result.pending} did not finish "
                                 f"(see {out / 'index.csv'})", "fix the cause and run the same command again: "
                                 "complete runs are kept"))
    _finish(run_compare(out / "baseline", out / "treatment", level=level), out / "report.html", None)
    console.print(f"arms: [bold]{escape(str(out / 'baseline'))}[/] and [bold]{escape(str(out / 'treatment'))}[/] "
                  f"(bidscape compare {escape(str(out / 'baseline'))} {escape(str(out / 'treatment'))})")


def _finish(result, report: Path, csv: Optional[Path]) -> None:
    print_table(result)
    result.to_html(report)
    if csv is not None:
        result.table.write_csv(csv)
    console.print(f"\nreport: [bold]{escape(str(report))}[/]" + (f"   table: {escape(str(csv))}" if csv else ""))


def print_table(result) -> None:
    from bidscape.analysis.report import fmt

    seeds = len(result.seeds)
    title = (f"{result.treatment} vs {result.baseline}: {seeds} paired seed(s), {result.level:.0%} intervals")
    table = Table(title=escape(title), box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("metric", "baseline", "treatment", "difference", "interval", "relative", "relative interval",
                   "over"):
        table.add_column(column, justify="left" if column in ("metric", "over") else "right")
    for r in result.table.iter_rows(named=True):
        if r["difference"] is None:
            table.add_row(r["metric"], "-", "-", "-", "-", "-", "-", escape(r["method"]))
            continue
        low, high = r["ci_low"], r["ci_high"]
        style = "" if low is None or low <= 0 <= high else ("green" if low > 0 else "red")
        interval = "-" if low is None else f"[{fmt(low)}, {fmt(high)}]"
        rel = "-" if r["relative_ci_low"] is None else \
            f"[{fmt(r['relative_ci_low'], True)}, {fmt(r['relative_ci_high'], True)}]"
        table.add_row(r["metric"], fmt(r["baseline"]), fmt(r["treatment"]),
                      f"[{style}]{fmt(r['difference'])}[/]" if style else fmt(r["difference"]), interval,
                      fmt(r["relative"], True), rel, "seeds" if r["method"].startswith("paired") else
                      ("rounds" if r["method"].startswith("batch") else escape(r["method"])))
    console.print(table)
    for warning in result.warnings:  # after the table, where the eye lands, and in red: the effects mislead
        console.print(f"[bold red]WARNING[/]: {escape(warning)}")
    if result.scenario_changes:
        console.print("changed: " + escape("; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in result.scenario_changes)))
    if result.unpaired:
        console.print(f"[yellow]left out (no partner seed)[/]: {escape(str(result.unpaired))}")
    console.print("green/red: the interval excludes 0. Over seeds: paired t; over rounds: batch means.")


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:60]
