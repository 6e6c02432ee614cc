"""``bidscape run-pair``: a baseline and a treatment over the same seeds (a two-variant sweep), then compared.

It lives with sweeps, which it runs; the comparison it prints is ``bidscape compare``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from bidscape.analysis.cli import console, report_comparison
from bidscape.errors import InputError, Problem


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
    from bidscape.sweep.pair import arms, prepare_out
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
    report_comparison(run_compare(out / "baseline", out / "treatment", level=level), out / "report.html", None)
    console.print(f"arms: [bold]{escape(str(out / 'baseline'))}[/] and [bold]{escape(str(out / 'treatment'))}[/] "
                  f"(bidscape compare {escape(str(out / 'baseline'))} {escape(str(out / 'treatment'))})")
