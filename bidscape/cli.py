"""The ``bidscape`` command line: demo, run, validate, list, sweep, compare, run-pair, dashboard, train-rl, llm.

Exit codes: 0 success, 1 a run failed, 2 invalid input (one message naming the field and
the fix), 130 interrupted. A failed or interrupted run leaves ``status = "failed"`` in its
``manifest.json``.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape  # user text (names, paths, bad values) is not markup
from rich.table import Table

from bidscape.cli_help import Group, without_flag_types
from bidscape.cli_summary import console as _summary_console, print_summary as _print_summary
from bidscape.errors import InputError, Interrupted, Problem
from bidscape.interrupts import last_interruption
from bidscape.scenario import Scenario

app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fast, exact agent-based simulation of auctions and markets.")
console = _summary_console  # one console: what the summary prints and the rest interleave in order
if not console.is_terminal:  # piped or captured: keep tables on one line each
    console = Console(width=120)
errors = Console(stderr=True)

DEMO_SCENARIO = files("bidscape") / "scenarios" / "demo.toml"

SetOption = typer.Option(None, "--set", metavar="KEY.PATH=VALUE",
                         help="Override a scenario field, e.g. --set run.rounds=10 (repeatable).")
SizeCheckOption = typer.Option(True, "--size-check/--no-size-check",
                               help="Refuse a run that cannot fit in memory (the default); --no-size-check tries anyway.")
ThreadsOption = typer.Option(None, "--threads", min=1, metavar="N", show_default=False,
                             help="Threads that clear the auctions (default: NUMBA_NUM_THREADS if set, else every core; "
                             "exact clearing uses at most 2). Outputs are the same bytes whatever N is.")


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, help="Output folder (default: runs/demo-TIMESTAMP)."),
    overrides: Optional[list[str]] = SetOption,
    overwrite: bool = typer.Option(False, help="Replace an existing run folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    size_check: bool = SizeCheckOption,
    threads: Optional[int] = ThreadsOption,
) -> None:
    """Run the built-in demo: a day of budget pacing on a second-price exchange."""
    scenario = Scenario.from_toml(str(DEMO_SCENARIO), overrides)
    console.print(f"[bold]bidscape demo[/]: {_describe(scenario)}")
    _check_size(scenario, size_check)
    result = _run(scenario, out, overwrite, quiet, threads)
    _print_findings(result)


@app.command()
def run(
    scenario_file: Optional[Path] = typer.Argument(None, metavar="SCENARIO.toml", show_default=False,
                                                   help="Scenario file."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: runs/NAME-TIMESTAMP)."),
    seed: Optional[int] = typer.Option(None, help="Override run.seed."),
    overrides: Optional[list[str]] = SetOption,
    overwrite: bool = typer.Option(False, help="Replace an existing run folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    llm_base_url: Optional[str] = typer.Option(
        None, "--llm-base-url", metavar="URL", help="Send llm_proxy calls to this OpenAI-compatible API root, "
        "your choice: it overrides the scenario's base_url and may receive your API key."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="DIR", show_default=False,
                                          help="Finish the interrupted run in DIR (killed, or stopped by Ctrl-C or a "
                                          "signal) from its last whole round; no scenario file then."),
    size_check: bool = SizeCheckOption,
    threads: Optional[int] = ThreadsOption,
) -> None:
    """Run one scenario (an auction market, or a market game with a `market_game` table) and write its output folder."""
    settings = list(overrides or []) + ([f"run.seed={seed}"] if seed is not None else [])
    from bidscape.llm.endpoint import user_base_url  # the user's endpoint reaches llm_proxy, not the scenario

    if resume is not None:
        with user_base_url(llm_base_url):
            _resume(resume, scenario_file, out, settings, overwrite, quiet, threads)
        return
    if scenario_file is None:
        raise InputError(Problem("SCENARIO.toml", "no scenario file given",
                                 "name one, e.g. `bidscape run data/scenarios/pacing.toml`, "
                                 "or finish an interrupted run with `bidscape run --resume DIR`"))
    game = _game_of(scenario_file)
    if game is not None:
        from bidscape.api import default_output_folder

        played = game.load(scenario_file, settings)
        console.print(f"[bold]{escape(played.run.name)}[/]: {escape(game.describe(played))}")
        _check_size(played, size_check)
        folder = game.run(played, out=out or default_output_folder(played.run.name), overwrite=overwrite,
                          progress=not quiet)
        game.print_summary(folder, console)
        console.print(f"\nwrote [bold]{escape(str(folder))}[/] ({', '.join(game.output_files())})")
        return
    scenario = Scenario.from_toml(scenario_file, settings)
    console.print(f"[bold]{escape(scenario.run.name)}[/]: {_describe(scenario)}")
    _check_size(scenario, size_check)
    with user_base_url(llm_base_url):
        _run(scenario, out, overwrite, quiet, threads)


@app.command()
def validate(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO.toml"),
    overrides: Optional[list[str]] = SetOption,
    size_check: bool = SizeCheckOption,
) -> None:
    """Check a scenario or a sweep file without running it (also that it fits in memory)."""
    if _is_sweep_file(scenario_file):
        return _validate_sweep(scenario_file, overrides, size_check)
    game = _game_of(scenario_file)
    scenario = game.load(scenario_file, list(overrides or [])) if game is not None else \
        Scenario.from_toml(scenario_file, overrides)
    estimate = _check_size(scenario, size_check, quiet=True)
    described = escape(game.describe(scenario)) if game is not None else _describe(scenario)
    console.print(f"[green]ok[/]: {escape(str(scenario_file))}: {described}; needs {estimate.describe()}")


@app.command(name="list")
def list_entries(
    kind: str = typer.Argument(..., metavar="mechanisms|strategies"),
) -> None:
    """List the registered mechanisms or strategies."""
    from bidscape.bidders import STRATEGIES
    from bidscape.mechanisms import MECHANISMS

    registries: dict[str, Any] = {"mechanisms": MECHANISMS, "strategies": STRATEGIES}
    if kind not in registries:
        from bidscape.errors import Problem, did_you_mean

        raise InputError(Problem("KIND", f"cannot list '{kind}'",
                                 f"{did_you_mean(kind, registries)}use mechanisms or strategies"))
    table = Table(show_header=True, header_style="bold")
    table.add_column(kind[:-1] if kind == "mechanisms" else "strategy")
    table.add_column("what it does")
    if kind == "strategies":
        table.add_column("params")
    for name, entry in registries[kind].items():
        row = [name, entry.summary]
        if kind == "strategies":
            row.append(", ".join(f"{k}={_default(f)}" for k, f in entry.Params.model_fields.items()) or "-")
        table.add_row(*row)
    console.print(table)


# ---- helpers ----

def _run(scenario: Scenario, out: Optional[Path], overwrite: bool, quiet: bool, threads: Optional[int] = None):
    from bidscape.api import default_output_folder, run

    out = out or default_output_folder(scenario.run.name)
    return _report(run(scenario, out=out, overwrite=overwrite, progress=not quiet, size_check=False,  # checked
                       threads=threads))


def _check_size(scenario, size_check: bool, quiet: bool = False):
    """Refuse what cannot fit in memory (exit 2, unless --no-size-check); say so when it will take long."""
    from bidscape.sizing import check_fits, estimate, long_run_note

    needs = check_fits(scenario) if size_check else estimate(scenario)
    note = None if quiet else long_run_note(needs)
    if note:
        console.print(f"[yellow]note[/]: {escape(note)}")
    return needs


def _report(result):
    """The summary of a complete run and where its files are."""
    _print_summary(result.summary)
    path = escape(str(result.path))
    files = ", ".join(sorted(f.name for f in result.path.iterdir() if f.suffix in (".json", ".arrow")))
    console.print(f"\nwrote [bold]{path}[/] ({escape(files)})")
    console.print(f"read it with polars:  pl.read_ipc('{path}/market.arrow')")
    console.print(f"or in Python:         bidscape.Run('{path}').agents")
    hint = _dashboard_hint()
    console.print(f"explore it:           bidscape dashboard {path}" + (f"   {escape(hint)}" if hint else ""))
    return result


def _dashboard_hint() -> str:
    """The install hint for ``bidscape dashboard``, only when Streamlit is missing (found without importing it)."""
    from importlib.util import find_spec

    return "(needs: pip install 'bidscape[dashboard]')" if find_spec("streamlit") is None else ""


def _resume(folder: Path, scenario_file: Optional[Path], out: Optional[Path], settings: list[str], overwrite: bool,
            quiet: bool, threads: Optional[int] = None) -> None:
    """``bidscape run --resume DIR``: the scenario, seed and folder are the interrupted run's own."""
    from bidscape.api import resume

    clashing = [name for name, given in (("SCENARIO.toml", scenario_file), ("--out", out), ("--set/--seed", settings),
                                         ("--overwrite", overwrite)) if given]
    if clashing:
        raise InputError(Problem("--resume", f"cannot be combined with {', '.join(clashing)}",
                                 "a resumed run keeps its own scenario, seed and folder: give only --resume DIR"))
    result = resume(folder, progress=not quiet, threads=threads)
    console.print(f"[bold]resumed[/] {escape(str(folder))} from round {result.manifest['resumed'][-1]['at_round']}")
    _report(result)


def _is_sweep_file(path: Path) -> bool:
    from bidscape.scenario import read_toml

    try:
        return Path(path).is_file() and "sweep" in read_toml(path)[0]
    except InputError:  # reported when the file is read as a scenario
        return False


def _validate_sweep(path: Path, overrides: Optional[list[str]], size_check: bool) -> None:
    """``validate`` on a file with a [sweep] table: every variant resolved and checked, as ``bidscape sweep`` would."""
    from bidscape.sizing import check_sweep_fits, sweep_estimate
    from bidscape.sweep.spec import load_sweep

    if overrides:
        raise InputError(Problem("--set", "applies to scenario files, not to a sweep file",
                                 "put sweep-wide overrides in the sweep file's [sweep] set"), str(path))
    spec = load_sweep(path)
    needs = (check_sweep_fits(spec) if size_check else None) or sweep_estimate(spec)
    console.print(f"[green]ok[/]: {escape(str(path))}: sweep '{escape(spec.name)}' of "
                  f"{escape(str(spec.scenario_file))}: {len(spec.variants)} variant(s) x {len(spec.seeds)} seed(s) = "
                  f"{len(spec.runs)} runs, every variant valid; needs {needs.describe()}")


def _game_of(scenario_file: Path):
    """The market game (``bidscape.games``) whose scenario the file is, or None for an auction scenario."""
    from bidscape.games import game_of_file

    return game_of_file(scenario_file)


def _describe(scenario: Scenario) -> str:
    channels = scenario.resolved_channels()
    if scenario.channels:
        market = "; ".join(f"{escape(c.name)}: {c.auctions_per_round:,} x {c.mechanism.type} "
                           f"(reserve {c.mechanism.reserve:g}, {c.bidders_per_auction} bidders)" for c in channels)
        market = f"{len(channels)} channels per round ({market})"
    else:
        bidders = scenario.market.bidders_per_auction
        slots = len(scenario.mechanism.slot_ctrs)
        market = (f"{scenario.run.auctions_per_round:,} auctions, {scenario.mechanism.type} "
                  f"(reserve {scenario.mechanism.reserve:g}" + (f", {slots} slots" if slots > 1 else "")
                  + f"), {bidders} bidders per auction")
    traffic = scenario.traffic
    if traffic is not None:
        market += (f"; {len(traffic.segments)} segment(s)"
                   + (f", traffic curve of {len(traffic.curve)} rounds" if len(traffic.curve) > 1 else ""))
    return (f"{scenario.total_agents:,} agents in {len(scenario.populations)} population(s), "
            f"{scenario.run.rounds} rounds x {market}"
            + (f", {len(scenario.events)} scheduled event(s)" if scenario.events else ""))


def _print_findings(result) -> None:
    """What the demo found, in words, from its per-population table (the demo records no per-agent rows)."""
    import polars as pl

    paced = result.scenario.populations[0].name
    by_round = (result.scan("populations").filter(pl.col("population") == paced)  # budget, multiplier: per population
                .group_by("round").agg(pl.col("spend").sum(), pl.col("multiplier", "budget", "budget_remaining").first())
                .sort("round").collect())
    p = next(x for x in result.summary["populations"] if x["population"] == paced)
    active = by_round.filter(pl.col("spend") > 0.01 * by_round["spend"].max())
    console.print("\n[bold]What the demo found[/]")
    console.print(f"- '{escape(paced)}' advertisers spent {p['budget_utilisation']:.1%} of their budgets; "
                  f"{by_round['budget_remaining'][-1] / by_round['budget'][-1]:.1%} of the total was left at the end.")
    console.print(f"- Pacing cut their mean bid multiplier from {by_round['multiplier'][0]:.2f} to "
                  f"{by_round['multiplier'][-1]:.2f}; they kept buying in {active.height} of {by_round.height} rounds.")
    market = result.market
    first, last = market.row(0, named=True), market.row(-1, named=True)
    console.print(f"- The exchange's revenue per round went from {first['revenue']:,.0f} to {last['revenue']:,.0f} "
                  f"as pacing took hold (mean price {first['mean_price']:.3f} -> {last['mean_price']:.3f}).")
    console.print(f"- Explore it with polars: pl.scan_ipc('{escape(str(result.path))}/populations.arrow'); "
                  "per-advertiser rows: --set run.record_agents=agent")


def _default(field) -> str:
    """A param's default as ``list strategies`` shows it: what a scenario that leaves it out gets."""
    if field.is_required():
        return "required"
    if field.default_factory is None:
        return repr(field.default)
    if getattr(field, "default_factory_takes_validated_data", False):  # computed from the other params
        return "derived"
    return repr(field.get_default(call_default_factory=True))  # field.default is PydanticUndefined here


def _exit_interrupted(error: Optional[BaseException]) -> None:
    """Say what stopped the command and what became of its folder; exit 128 + the signal."""
    while isinstance(error, typer.Abort) and (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__  # click's Abort comes from the KeyboardInterrupt
    signal_name = error.signal_name if isinstance(error, Interrupted) else "SIGINT"
    errors.print(f"[bold red]interrupted[/] by {signal_name}")
    if error is not None:
        _print_notes(error)
    sys.exit(error.exit_code if isinstance(error, Interrupted) else 130)


def _print_notes(error: BaseException) -> None:
    """What happened to the run folder, as the folder itself noted on the error (never guessed here)."""
    for note in getattr(error, "__notes__", ()):
        errors.print(escape(note), highlight=False)


from bidscape.rl.cli import train as _train_rl  # noqa: E402  (torch is imported only when it runs)

app.command(name="train-rl")(_train_rl)

from bidscape.analysis.cli import compare as _compare  # noqa: E402
from bidscape.sweep.pair_cli import run_pair as _run_pair  # noqa: E402
from bidscape.sweep.cli import sweep as _sweep  # noqa: E402
from bidscape.dashboards.cli import dashboard as _dashboard  # noqa: E402  (streamlit is checked when it runs)

app.command(name="sweep")(_sweep)
app.command(name="compare")(_compare)
app.command(name="run-pair")(_run_pair)
app.command(name="dashboard")(_dashboard)

from bidscape.llm.serve_cli import llm_app as _llm_app  # noqa: E402  (xllamacpp is imported only when it serves)

app.add_typer(_llm_app, name="llm")
without_flag_types(app)  # after every command is registered: flags show no <bool> in --help


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except InputError as error:
        errors.print(f"[bold red]error:[/] {escape(error.render())}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort) as error:
        _exit_interrupted(error)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as error:  # click usage errors and run failures
        from bidscape.cli_errors import click_exceptions, usage_problem

        if isinstance(error, click_exceptions()):
            if error.exit_code == 2:  # a usage error: the project's message (option, value, fix)
                usage = InputError(usage_problem(error, sys.argv[1:]))
                errors.print(f"[bold red]error:[/] {escape(usage.render())}", highlight=False, soft_wrap=True)
            else:
                error.show()
            sys.exit(error.exit_code)
        errors.print(f"[bold red]run failed:[/] {type(error).__name__}: {escape(str(error))}", highlight=False)
        _print_notes(error)
        sys.exit(1)
    # without standalone mode, typer returns exit codes instead of exiting: 130 for Ctrl-C, SIGTERM, SIGHUP
    if code == 130:
        _exit_interrupted(last_interruption())
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
