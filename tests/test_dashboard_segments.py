"""The dashboard's segment view: ``bidscape.dashboards.segments`` against segments.arrow and
``analysis.market``, and the Segments page through AppTest (a run and a group with traffic, a run without)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("streamlit")

import bidscape  # noqa: E402
from bidscape import analysis  # noqa: E402
from bidscape.dashboards import data, segments  # noqa: E402
from dashboard_testing import charts, ok, segment_scenario, select  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("segments") / "runs"
    bidscape.run(segment_scenario(channels=True), out=root / "traffic")
    for seed in (1, 2):
        bidscape.run(segment_scenario(), out=root / "seeds" / f"seed-{seed}", seed=seed)
    bidscape.run(segment_scenario(traffic=False), out=root / "plain")
    return root


# ---- data ----

def test_totals_add_up_to_the_market_and_follow_the_shares(root):
    rows = segments.segments_scan(root / "traffic")
    totals = segments.totals(rows)
    assert totals.get_column("segment").to_list() == ["news-mobile", "sports-desktop"]  # the scenario's order
    market = analysis.market(root / "traffic", by=())
    for column in ("auctions", "sold", "revenue", "welfare", "max_welfare"):
        assert totals.get_column(column).sum() == pytest.approx(market.get_column(column).item(), rel=1e-12)
    assert totals.get_column("auction_share").sum() == pytest.approx(1.0)
    assert totals.get_column("auction_share").to_list() == pytest.approx([0.6, 0.4], abs=1e-3)
    for row in totals.iter_rows(named=True):
        assert row["efficiency"] == pytest.approx(row["welfare"] / row["max_welfare"])
        assert row["revenue_per_auction"] == pytest.approx(row["revenue"] / row["auctions"])
        assert row["mean_price"] == pytest.approx(row["revenue"] / row["sold"])
        assert row["clicks"] is None  # single-item auctions: no clicks, not 0


def test_by_round_is_the_traffic_curve_summed_over_channels(root):
    per_round = segments.by_round(segments.segments_scan(root / "traffic"))
    auctions = per_round.group_by("round").agg(pl.col("auctions").sum()).sort("round")
    market = analysis.market(root / "traffic", by=("round",))
    assert auctions.get_column("auctions").to_list() == market.get_column("auctions").to_list()
    assert per_round.height == 3 * 2  # rounds x segments: the channels are summed
    assert per_round.get_column("auctions").n_unique() > 2  # the curve moves the volume


def test_filters_restrict_rounds_and_channels_as_the_market(root):
    rows = segments.segments_scan(root / "traffic", rounds=(1, 2), channels=["open"])
    assert set(rows.collect().get_column("round")) == {1, 2}
    assert set(rows.collect().get_column("channel")) == {"open"}
    totals = segments.totals(rows)
    market = analysis.market(root / "traffic", by=(), rounds=(1, 2), channels=["open"])
    assert totals.get_column("revenue").sum() == pytest.approx(market.get_column("revenue").item(), rel=1e-12)
    assert totals.get_column("auctions").sum() == market.get_column("auctions").item()


def test_a_group_has_one_block_per_seed_and_means_over_runs(root):
    per_run = segments.totals(segments.segments_scan(root / "seeds"))
    assert per_run.select("group", "seed").n_unique() == 2
    means = segments.mean_over_runs(per_run)
    assert means.get_column("runs").to_list() == [2, 2]
    expected = per_run.filter(pl.col("segment") == "news-mobile").get_column("revenue").mean()
    assert means.filter(pl.col("segment") == "news-mobile").get_column("revenue").item() == pytest.approx(expected)


def test_runs_without_traffic_have_no_segments(root):
    with_segments, without = segments.runs_with_segments([root / "traffic", root / "plain"])
    assert [r.run.path.name for r in with_segments] == ["traffic"]
    assert [r.run.path.name for r in without] == ["plain"]
    with pytest.raises(ValueError, match="traffic"):
        segments.segments_scan(root / "plain")


def test_sold_prices_carry_the_segment(root):
    prices = data.sold_prices([str(root / "traffic")], data.Filters(), "segment").collect()
    assert set(prices.get_column("segment")) == {"news-mobile", "sports-desktop"}
    summary = segments.price_summary(segments.series(prices))
    assert summary.get_column("n").sum() == prices.height


# ---- the page ----

def test_segments_page_shows_traffic_revenue_table_and_prices(app, root):
    at = app.run()
    select(at, "run", root / "traffic")
    at.switch_page("views/segments.py").run()
    ok(at)
    assert len(charts(at)) == 3  # traffic, revenue per round, price histogram
    table = at.dataframe[0].value
    assert list(table.iloc[:, 0]) == ["news-mobile", "sports-desktop"]
    assert {"auctions", "auction_share", "revenue", "revenue_per_auction", "mean_price", "efficiency"} \
        <= set(table.columns)
    assert any("From the auction sample" in c.value for c in at.caption)
    by_population = at.dataframe[1].value  # the expander "By segment and population"
    assert {"segment", "population", "spend", "spend_share", "value", "utility"} <= set(by_population.columns)
    assert set(by_population["segment"]) == {"news-mobile", "sports-desktop"}
    prices = at.dataframe[2].value
    assert list(prices.iloc[:, 0]) == ["news-mobile", "sports-desktop"]


def test_segments_page_follows_the_sidebar_filters(app, root):
    at = app.run()
    select(at, "run", root / "traffic")
    at.switch_page("views/segments.py").run()
    at.sidebar.slider[0].set_value((1, 2)).run()
    at.sidebar.multiselect[0].set_value(["open"]).run()
    ok(at)
    assert any("filtered: rounds 1–2; channel open" in c.value for c in at.caption)
    market = analysis.market(root / "traffic", by=(), rounds=(1, 2), channels=["open"])
    shown = at.dataframe[0].value
    assert shown["auctions"].sum() == market.get_column("auctions").item()


def test_segments_page_of_a_group_means_over_seeds(app, root):
    at = app.run()
    select(at, "group", root / "seeds")
    at.switch_page("views/segments.py").run()
    ok(at)
    assert "runs" in at.dataframe[0].value.columns
    assert len(at.dataframe) == 4  # means, per run, by segment and population (means), prices
    assert "runs" in at.dataframe[2].value.columns and "population" in at.dataframe[2].value.columns
    at.radio(key="segment_band").set_value("se").run()
    ok(at)


def test_a_run_without_traffic_says_it_has_no_segments(app, root):
    at = app.run()
    select(at, "run", root / "plain")
    at.switch_page("views/segments.py").run()
    ok(at)
    assert any("has no segments" in i.value and "[traffic]" in i.value for i in at.info)
    assert not charts(at) and not at.dataframe
