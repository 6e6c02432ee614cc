"""The Streamlit dashboard: data views against bidscape.analysis, every page through AppTest, the CLI command."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("streamlit")

import typer  # noqa: E402
from polars.testing import assert_frame_equal  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import bidscape  # noqa: E402
from bidscape import analysis, processes  # noqa: E402
from bidscape.dashboards import APP  # noqa: E402
from bidscape.dashboards import data  # noqa: E402
from bidscape.dashboards.cli import dashboard, streamlit_command  # noqa: E402
from bidscape.errors import InputError  # noqa: E402
from dashboard_testing import TIMEOUT, charts, ok, select  # noqa: E402

# two populations, one paced with budgets; two channels so the channel filter has work
SCENARIO = """\
[run]
name = "dash"
seed = 1
rounds = 4
auctions_per_round = 800
record_agents = "agent"
auction_sample_rate = 0.1

[mechanism]
type = "second_price"
reserve = 0.1

[market]
bidders_per_auction = 4

[[channels]]
name = "premium"
auctions_per_round = 300
mechanism = { type = "first_price", reserve = 0.2 }

[[channels]]
name = "open"

[[populations]]
name = "brand"
size = 40
strategy = "truthful"
values = { dist = "uniform", low = 0.0, high = 1.0 }

[[populations]]
name = "paced"
size = 30
strategy = "adaptive_pacing"
values = { dist = "lognormal", mean = -0.5, sigma = 0.4 }
budget = { dist = "uniform", low = 5.0, high = 10.0 }
params = { step = 0.5 }
"""


def make_root(root: Path, old: bool = True) -> Path:
    """A run, a baseline/treatment pair of groups (3 seeds, reserve 0 vs 0.3), a sweep with a failed
    run and (``old``) an old-style run without populations.arrow."""
    (root.parent / "dash.toml").write_text(SCENARIO)
    scenario = bidscape.Scenario.from_toml(root.parent / "dash.toml")
    bidscape.run(scenario, out=root / "single")
    for arm, reserve in (("baseline", 0.0), ("treatment", 0.3)):
        for seed in (1, 2, 3):
            bidscape.run(scenario.with_updates({"mechanism.reserve": reserve}), out=root / "ab" / arm / f"seed-{seed}",
                         seed=seed)
    sweep = root / "sweep"
    rows = []
    for reserve in (0.0, 0.3):
        variant = f"reserve={reserve:g}"
        for seed in (1, 2):
            path = f"{variant}/seed-{seed}"
            result = bidscape.run(scenario.with_updates({"mechanism.reserve": reserve}), out=sweep / path, seed=seed)
            rows.append({"run_id": path, "variant": variant, "seed": seed, "path": path, "status": "complete",
                         "wall_seconds": result.manifest["wall_seconds"], "error": None, "mechanism.reserve": reserve})
    rows.append({"run_id": "reserve=0.6/seed-1", "variant": "reserve=0.6", "seed": 1, "path": "reserve=0.6/seed-1",
                 "status": "failed", "wall_seconds": None, "error": "RuntimeError: boom", "mechanism.reserve": 0.6})
    failed = sweep / "reserve=0.6" / "seed-1"
    failed.mkdir(parents=True)
    failed_manifest = {**result.manifest, "status": "failed", "seed": 1, "summary": None,
                       "error": {"type": "RuntimeError", "message": "boom"}}
    (failed / "manifest.json").write_text(json.dumps(failed_manifest))
    pl.DataFrame(rows).write_ipc(sweep / "index.arrow")
    (sweep / "sweep.json").write_text(json.dumps({"name": "reserve", "swept_keys": ["mechanism.reserve"]}))
    if old:
        shutil.copytree(root / "single", root / "old")
        (root / "old" / "populations.arrow").unlink()
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_root(tmp_path_factory.mktemp("dashboard") / "runs")


# ---- data layer ----

def test_discovery_finds_runs_groups_and_the_sweep(root):
    found = data.discover(root)
    assert not found.problem
    kinds = {(e.kind, e.label) for e in found.entries}
    assert ("run", "single") in kinds and ("run", "old") in kinds
    assert ("group", "ab/baseline") in kinds and ("group", "ab/treatment") in kinds
    assert ("sweep", "sweep") in kinds and ("group", "sweep/reserve=0.3") in kinds
    assert ("group", "ab") not in kinds  # two scenarios: not seeds of one
    sweep = found.find(str((root / "sweep").resolve()))
    assert (sweep.runs, sweep.complete, len(sweep.members)) == (5, 4, 2)
    assert any(s.status == "failed" for s in found.skipped)


def test_views_without_filters_equal_the_analysis_functions(root):
    source = (str(root / "ab" / "baseline"),)
    for by in [(), ("round",), ("channel",), ("round", "channel")]:
        expected = analysis.market(source[0], by=by)
        got = data.market_view(source, data.Filters(), by)
        assert_frame_equal(got.select(expected.columns).drop("mechanism"), expected.drop("mechanism"),
                           check_exact=False)
        mechanisms = [set(m.split("+")) for m in expected.get_column("mechanism")]
        assert [set(m.split("+")) for m in got.get_column("mechanism")] == mechanisms  # the order may differ
    for by in [(), ("population",), ("channel",), ("channel", "population"), ("round", "population")]:
        expected = analysis.populations(source[0], by=by)
        got = data.populations_view(source, data.Filters(), by)
        assert_frame_equal(got.select(expected.columns), expected, check_exact=False)
    assert_frame_equal(data.headline_view(source), analysis.headline(source[0]), check_exact=False)


def test_filters_restrict_rounds_channels_and_populations(root):
    source = (str(root / "single"),)
    whole = data.populations_view(source, data.Filters(), ("round", "channel", "population"))
    only = data.Filters(rounds=(1, 2), channels=("open",), populations=("paced",))
    rows = data.populations_view(source, only, ("round", "channel", "population"))
    assert rows.get_column("round").unique().sort().to_list() == [1, 2]
    assert set(rows.get_column("channel")) == {"open"} and set(rows.get_column("population")) == {"paced"}
    expected = whole.filter(pl.col("round").is_between(1, 2), pl.col("channel") == "open",
                            pl.col("population") == "paced")
    assert rows.get_column("spend").to_list() == pytest.approx(expected.get_column("spend").to_list())
    market = data.market_view(source, data.Filters(rounds=(3, 3)), ())
    by_round = analysis.market(source[0], by=("round",)).filter(pl.col("round") == 3)
    assert market.get_column("revenue").item() == pytest.approx(by_round.get_column("revenue").item())
    # spend against budget counts from the first round even when the filter starts later
    cumulative = data.populations_view(source, data.Filters(rounds=(2, 3)), ("round", "population"))
    full = analysis.populations(source[0], by=("round", "population")).filter(pl.col("round") >= 2)
    assert cumulative.get_column("cumulative_spend").to_list() == pytest.approx(
        full.get_column("cumulative_spend").to_list())


def test_downsample_and_over_seeds():
    frame = pl.DataFrame({"group": "g", "seed": 1, "round": range(10_000), "revenue": [1.0] * 10_000})
    thinned = data.downsample(frame, max_points=2000)
    assert 1900 <= thinned.height <= 2001 and thinned.get_column("round").max() == 9999
    seeds = pl.DataFrame({"group": ["g"] * 4, "seed": [1, 2, 3, 4], "round": [0] * 4, "x": [1.0, 2.0, 3.0, 6.0]})
    minmax = data.over_seeds(seeds, ["round"], ["x"], "minmax").row(0, named=True)
    assert (minmax["mean"], minmax["low"], minmax["high"], minmax["n"]) == (3.0, 1.0, 6.0, 4)
    se = data.over_seeds(seeds, ["round"], ["x"], "se").row(0, named=True)
    assert se["high"] - se["mean"] == pytest.approx(2 * seeds.get_column("x").std() / 2)


# ---- pages ----

def test_overview_shows_headline_metrics_and_the_scenario(app, root):
    at = app.run()
    assert not at.exception
    select(at, "run", root / "single")
    ok(at)
    labels = {m.label for m in at.metric}
    for expected in ("Revenue", "Welfare", "Efficiency", "Price of anarchy", "Sold share", "Mean price",
                     "Budget utilisation", "Bidder utility", "Liquid welfare"):
        assert expected in labels
    assert len(at.dataframe) >= 3  # scenario, populations, manifest
    assert any("first_price" in str(df.value) for df in at.dataframe)


def test_overview_of_a_group_and_a_sweep(app, root):
    at = app.run()
    select(at, "group", root / "ab" / "treatment")
    ok(at)
    assert any("Mean over 3 seeds" in c.value for c in at.caption)
    assert {m.label for m in at.metric} >= {"Revenue", "Efficiency"}
    select(at, "sweep", root / "sweep")
    ok(at)
    assert at.dataframe[0].value.shape[0] == 2  # one row per complete variant


def test_time_series_draws_market_and_bidder_charts(app, root):
    at = app.run()
    select(at, "group", root / "ab" / "baseline")
    at.switch_page("views/time_series.py").run()
    ok(at)
    assert len(charts(at)) >= 7  # four market series, multipliers, spend against budget, spend per round
    at.radio(key="band").set_value("se").run()
    ok(at)


def test_distributions_sample_agents_lazily(app, root):
    at = app.run()
    select(at, "run", root / "single")
    at.switch_page("views/distributions.py").run()
    ok(at)
    assert len(charts(at)) >= 5  # prices + four agent distributions
    assert any("Sample of 70 agent rows" in c.value for c in at.caption)
    at.number_input(key="agent_cap").set_value(1_000).run()
    ok(at)


def test_populations_page_shows_formatted_tables(app, root):
    at = app.run()
    select(at, "run", root / "single")
    at.switch_page("views/populations.py").run()
    ok(at)
    assert len(at.dataframe) == 3
    populations = at.dataframe[0].value
    assert list(populations.iloc[:, 0]) == ["brand", "paced"]
    channels = at.dataframe[2].value
    assert sorted(channels.iloc[:, 0]) == ["open", "premium"]


def test_ab_page_compares_the_pair(app, root):
    at = app.run()
    at.switch_page("views/ab.py").run()
    ok(at)
    table = at.dataframe[0].value
    assert {"difference", "ci_low", "ci_high", "relative"} <= set(table.columns)
    assert "Revenue" in set(table.iloc[:, 0])
    assert any("paired seeds" in m.value for m in at.markdown)
    assert len(charts(at)) >= 2  # differences with error bars, per seed
    assert any("against" in m.value and "treatment" in m.value for m in at.markdown)


def test_sweep_page_plots_a_metric_against_the_parameter(app, root):
    at = app.run()
    select(at, "sweep", root / "sweep")
    at.switch_page("views/sweep.py").run()
    ok(at)
    assert len(charts(at)) == 1
    index = at.dataframe[-1].value
    assert sorted(index["status"]) == ["complete"] * 4 + ["failed"]
    at.selectbox(key="sweep_metric").set_value("efficiency").run()
    at.radio(key="sweep_band").set_value("minmax").run()
    ok(at)
    assert len(charts(at)) == 1


def test_downloads_page_offers_every_table(app, root):
    at = app.run()
    select(at, "run", root / "single")
    at.switch_page("views/downloads.py").run()
    ok(at)
    assert len(at.get("download_button")) == 1
    for table in ("populations", "headline", "auctions", "agents"):
        at.radio(key="download_table").set_value(table).run()
        ok(at)
        assert len(at.get("download_button")) == 1
        assert len(at.dataframe) == 1


def test_download_bytes_are_csv_and_parquet(root):
    frame = data.market_view((str(root / "single"),), data.Filters(rounds=(0, 1)), ("round", "channel"))
    csv = data.to_bytes(frame, "csv").decode()
    assert csv.splitlines()[0].startswith("group,seed,round,channel") and len(csv.splitlines()) == 5
    import io
    assert_frame_equal(pl.read_parquet(io.BytesIO(data.to_bytes(frame, "parquet"))), frame)


def test_a_run_without_populations_table_shows_the_fix_not_a_traceback(app, root):
    at = app.run()
    select(at, "run", root / "old")
    assert not at.exception
    assert any("populations.arrow" in e.value and "re-run" in e.value for e in at.error)
    at.switch_page("views/time_series.py").run()
    assert not at.exception and at.error


def test_a_corrupt_table_shows_an_error(app, root, tmp_path, monkeypatch):
    broken = tmp_path / "runs" / "broken"
    shutil.copytree(root / "single", broken)
    (broken / "market.arrow").write_bytes(b"not arrow at all")
    monkeypatch.setenv(data.ROOT_ENV, str(tmp_path / "runs"))
    at = app.run()
    assert not at.exception
    assert any("Cannot show the headline metrics" in e.value for e in at.error)


def test_a_run_without_agent_rows_explains_instead_of_sampling(root, tmp_path, monkeypatch):
    scenario = bidscape.Scenario.from_toml(root.parent / "dash.toml").with_updates({"run.record_agents": "none"})
    bidscape.run(scenario, out=tmp_path / "runs" / "lean")
    monkeypatch.setenv(data.ROOT_ENV, str(tmp_path / "runs"))
    data.clear_caches()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page("views/distributions.py").run()
    ok(at)
    assert any("record_agents=agent" in i.value for i in at.info)
    assert len(charts(at)) == 1  # the prices still
    at.switch_page("views/downloads.py").run()
    at.radio(key="download_table").set_value("agents").run()
    assert not at.exception
    assert any("no per-agent rows" in e.value for e in at.error)


def test_sidebar_filters_reach_the_pages(app, root):
    at = app.run()
    select(at, "run", root / "single")
    at.sidebar.slider[0].set_value((1, 2)).run()
    at.sidebar.multiselect[0].set_value(["open"]).run()
    ok(at)
    assert any("filtered: rounds 1–2; channel open" in c.value for c in at.caption)
    filters = at.session_state["filters"]
    assert filters == data.Filters(rounds=(1, 2), channels=("open",))


def test_empty_root_says_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ROOT_ENV, str(tmp_path))
    data.clear_caches()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("holds no complete bidscape run" in e.value for e in at.error)


# ---- the command ----

def _app() -> typer.Typer:
    """The command in a small app that maps input errors to exit code 2, as ``bidscape.cli.main`` does."""
    wrapper = typer.Typer()

    @wrapper.command()
    def run(folder: Path = typer.Argument(Path("runs")), port: int = 8501, host: str = "127.0.0.1",
            headless: bool = True) -> None:
        try:
            dashboard(folder, port, host, headless)
        except InputError as error:
            typer.echo(f"error: {error.render()}", err=True)
            raise typer.Exit(2)

    return wrapper


def test_command_refuses_a_missing_or_empty_folder(tmp_path):
    runner = CliRunner()
    result = runner.invoke(_app(), [str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "bidscape dashboard runs/" in result.output
    result = runner.invoke(_app(), [str(tmp_path)])
    assert result.exit_code == 2
    assert "holds no complete bidscape run" in result.output


def test_command_needs_streamlit(tmp_path, root, monkeypatch):
    import bidscape.dashboards.cli as cli

    monkeypatch.setattr(cli, "streamlit_available", lambda: False)
    result = CliRunner().invoke(_app(), [str(root)])
    assert result.exit_code == 2
    assert "pip install 'bidscape[dashboard]'" in result.output


def test_command_runs_streamlit_on_the_folder(root, monkeypatch):
    import bidscape.dashboards.cli as cli

    calls = []

    class Process:
        def __init__(self, command, env):
            calls.append((command, env))

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(cli.subprocess, "Popen", Process)
    monkeypatch.setattr(cli, "check_address", lambda host, port: None)  # whether 8765 is free here does not matter
    result = CliRunner().invoke(_app(), [str(root), "--port", "8765"])
    assert result.exit_code == 0, result.output
    command, env = calls[0]
    assert command[1:6] == ["-m", "bidscape.processes", "streamlit", "run", str(APP)]  # ends with this process
    assert command[command.index("--server.port") + 1] == "8765"
    assert command[-2:] == ["--root", str(root.resolve())]
    assert env[data.ROOT_ENV] == str(root.resolve()) and env[processes.PARENT_ENV] == str(os.getpid())
    assert streamlit_command(root)[-1] == str(root)


def test_registered_command_exits_with_code_2(tmp_path, bidscape_cli):
    from bidscape import cli

    if "dashboard" not in {c.name for c in cli.app.registered_commands}:
        pytest.skip("`bidscape dashboard` is not registered in bidscape/cli.py yet")
    result = bidscape_cli("dashboard", tmp_path / "nowhere")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


# ---- what a user sees (issue "Trust II", item 10) ----

def _colour_scales(at: AppTest, field: str) -> list[dict]:
    """The colour scale of every chart (and layer) of the page that colours by ``field``."""
    scales = []

    def walk(spec: dict) -> None:
        colour = (spec.get("encoding") or {}).get("color") or {}
        if colour.get("field") == field:
            scales.append(colour.get("scale"))
        for layer in spec.get("layer") or []:
            walk(layer)

    for element in charts(at):
        walk(json.loads(element.proto.spec))
    return scales


def test_a_population_keeps_its_colour_in_every_chart_of_a_page(app, root):
    at = app.run()
    select(at, "run", root / "single")
    at.switch_page("views/distributions.py").run()
    ok(at)
    scales = _colour_scales(at, "population")
    # spend, utility, multiplier, and remaining budget (where the unbudgeted "brand" has no bar)
    assert len(scales) == 4
    assert all(s == scales[0] for s in scales), scales
    assert scales[0]["domain"] == ["brand", "paced"] and len(set(scales[0]["range"])) == 2
    at.switch_page("views/time_series.py").run()
    ok(at)
    scales = _colour_scales(at, "series")
    assert len(scales) >= 4 and all(s == scales[0] for s in scales), scales  # the budget line's layer too
    assert scales[0]["domain"] == ["brand", "paced"]


def test_unlimited_budgets_read_unlimited(app, root):
    at = app.run()
    select(at, "run", root / "single")
    at.switch_page("views/populations.py").run()
    ok(at)
    populations = at.dataframe[0].value.set_index("population")
    assert populations.loc["brand", "budget"] == "unlimited"
    assert populations.loc["brand", "budget_remaining"] == "unlimited"
    assert float(populations.loc["paced", "budget"]) > 0  # a finite budget stays a number
    assert "None" not in populations.astype(str).to_numpy()


def test_level_charts_start_at_zero():
    from bidscape.dashboards import ui

    long = pl.DataFrame({"group": ["a", "a"], "round": [0, 1], "mean": [0.996, 1.0], "low": [0.995, 0.999],
                         "high": [0.997, 1.0], "n": [2, 2]})
    spec = ui.band_chart(long, "round", "Efficiency").to_dict()
    line = next(layer for layer in spec["layer"] if layer["encoding"]["y"]["field"] == "mean")
    assert line["encoding"]["y"]["scale"]["zero"] is True
    zoomed = ui.band_chart(long, "round", "Efficiency (zoomed)", zero=False).to_dict()
    assert next(layer for layer in zoomed["layer"] if layer["encoding"]["y"]["field"] == "mean"
                )["encoding"]["y"]["scale"]["zero"] is False


def test_gsp_price_histogram_counts_the_cost_per_click_of_clicked_slots(tmp_path):
    (tmp_path / "dash.toml").write_text(SCENARIO)
    scenario = bidscape.Scenario.from_toml(tmp_path / "dash.toml").with_updates({
        "mechanism.type": "gsp", "mechanism.slot_ctrs": [0.3, 0.15, 0.05], "mechanism.pricing": "click",
        "run.auction_sample_rate": 0.5, "channels": []})
    bidscape.run(scenario, out=tmp_path / "gsp")
    slots = pl.read_ipc(tmp_path / "gsp" / "auctions.arrow").filter(pl.col("winner") >= 0)
    clicked = slots.filter(pl.col("clicks") > 0).select((pl.col("price") / pl.col("clicks")).alias("cpc"))
    assert clicked.height < slots.height / 2  # most filled slots get no click (and pay 0)
    data.clear_caches()
    counts, summary = data.price_histogram([str(tmp_path / "gsp")], bins=20)
    assert summary.get_column("n").to_list() == [clicked.height]
    assert summary.get_column("mean")[0] == pytest.approx(clicked.get_column("cpc").mean(), rel=1e-12)
    assert counts.get_column("count").sum() == clicked.height
    assert counts.get_column("low").min() == pytest.approx(clicked.get_column("cpc").min())  # no bar at 0
    assert "cost per click" in data.price_basis([str(tmp_path / "gsp")])
