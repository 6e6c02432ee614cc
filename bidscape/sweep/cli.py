"""``bidscape sweep``: run a grid or list of scenario variants x seeds; resumable.

``sweep`` is a plain typer command function; ``bidscape.cli`` mounts it. Exit codes: 0 all
runs complete, 1 some run failed (or was left pending: its folder is in use), 2 invalid
input, 128 + the signal when the sweep or one of its runs was interrupted and runs are still
pending (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). The index stays consistent; the same command
resumes.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
if not console.is_terminal:  # piped or captured: keep tables on one line each
    console = Console(width=120)


class Backend(str, Enum):
    local = "local"
    ray = "ray"


def sweep(
    sweep_file: Path = typer.Argument(..., metavar="SWEEP.toml", help="Sweep file."),
    out: Optional[Path] = typer.Option(None, help="Sweep folder; the same folder resumes (default: runs/NAME)."),
    backend: Backend = typer.Option(Backend.local, help="Where runs execute: local processes or Ray."),
    workers: Optional[int] = typer.Option(None, min=1, help="Runs at a time (default: one per CPU); 1 runs "
                                                            "in this process."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address, e.g. auto or ray://HOST:10001 "
                                                     "(default: start a local Ray)."),
    retry_failed: bool = typer.Option(True, "--retry-failed/--no-retry-failed",
                                      help="Run failed runs again when resuming."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    size_check: bool = typer.Option(True, "--size-check/--no-size-check",
                                    help="Refuse runs that cannot fit in memory, as many at once as will run (the "
                                    "default); --no-size-check tries anyway."),
) -> None:
    """Run every variant x seed of a sweep file: one run folder each, plus an index (index.arrow)."""
    from bidscape.sizing import long_run_note, sweep_estimate
    from bidscape.sweep.runner import run_sweep
    from bidscape.sweep.spec import load_sweep

    spec = load_sweep(sweep_file)
    out = out or Path("runs") / spec.name  # a safe folder name (bidscape.names)
    runs = len(spec.variants) * len(spec.seeds)
    where = backend.value + (f" at {address}" if address else "") + (f", {workers} workers" if workers else "")
    console.print(f"[bold]sweep {escape(spec.name)}[/]: {len(spec.variants)} variant(s) x {len(spec.seeds)} "
                  f"seed(s) = {runs} runs ({escape(where)}) -> {escape(str(out))}")
    note = long_run_note(sweep_estimate(spec, workers), "this sweep")
    if note:
        console.print(f"[yellow]note[/]: {escape(note)}")
    try:
        result = run_sweep(spec, out, backend=backend.value, workers=workers, address=address,
                           progress=not quiet, retry_failed=retry_failed, size_check=size_check)
    except KeyboardInterrupt:
        console.print(f"[bold red]sweep interrupted[/]: unfinished runs are 'pending' in "
                      f"{escape(str(out / 'index.arrow'))}; run the same command again to resume")
        raise
    _print_result(result)
    _print_summary(result, spec.swept_keys)
    if result.pending:
        why = f"a run was interrupted by {result.interrupted_by}" if result.interrupted_by else "see the error column"
        console.print(f"[bold red]sweep not finished[/]: {result.pending} run(s) pending ({escape(why)}); "
                      "run the same command again to resume")
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _print_result(result) -> None:
    import polars as pl

    table = Table(box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("complete", "of which skipped (done before)", "failed", "pending"):
        table.add_column(column, justify="right")
    table.add_row(str(result.complete), str(result.skipped), str(result.failed), str(result.pending))
    console.print(table)
    unfinished = result.index.filter(pl.col("error").is_not_null())
    for row in unfinished.head(5).iter_rows(named=True):
        console.print(f"[red]{row['status']}[/] {escape(row['run_id'])}: {escape(str(row['error']))}")
    if unfinished.height > 5:
        console.print(f"... and {unfinished.height - 5} more (see the error column of the index)")
    index = escape(str(result.path / "index.arrow"))
    console.print(f"index: [bold]{index}[/] (and index.csv); one run folder per row (column path)")
    console.print(f"read it with polars:  pl.read_ipc('{index}')")


def _print_summary(result, swept_keys: list[str]) -> None:
    """Headline metrics by variant (mean and interval over seeds), and the plot file: what the sweep found."""
    from bidscape.analysis.report import fmt
    from bidscape.sweep.summary import PLOT_FILE, metrics_of, plot, summarise

    summary = summarise(result.path, result.index, swept_keys)
    if summary is None:
        return
    keys = [k for k in swept_keys if k in summary.columns]
    table = Table(title="by variant: mean over seeds ± half-width of its 95% interval (Student t)", box=box.SIMPLE_HEAD,
                  header_style="bold")
    for column in [*(keys or ["variant"]), "seeds", *metrics_of(summary)]:
        table.add_column(escape(column.replace("_", " ") if column in metrics_of(summary) else column),
                         justify="left" if column in keys or column == "variant" else "right",
                         no_wrap=True)
    for row in summary.iter_rows(named=True):
        cells = [escape(str(row[k])) for k in keys or ["variant"]] + [str(row["n"])]
        for metric in metrics_of(summary):
            low, high = row[f"{metric}_low"], row[f"{metric}_high"]
            cells.append(fmt(row[metric]) + ("" if low is None else f" ± {_half(high - low)}"))
        table.add_row(*cells)
    console.print(table)
    path = plot(summary, swept_keys, result.path / PLOT_FILE)
    console.print(f"plot: [bold]{escape(str(path))}[/] (the dashboard's sweep page draws the same)")


def _half(width: float) -> str:
    half = width / 2
    return f"{half:,.0f}" if abs(half) >= 100 else f"{half:.2g}"
