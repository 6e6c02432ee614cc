"""Populations & channels: bidder metrics by population and by channel x population, market by channel."""

import polars as pl
import streamlit as st

from bidscape.dashboards import data, ui

POPULATION_COLUMNS = ("agents", "spend", "budget", "budget_utilisation", "wins", "win_rate", "value", "utility",
                      "return_on_spend", "mean_price", "multiplier", "budget_remaining", "liquid_welfare", "regret")
CHANNEL_POPULATION_COLUMNS = ("spend", "budget_utilisation", "wins", "win_rate", "value", "utility",
                              "return_on_spend", "mean_price")
MARKET_COLUMNS = ("auctions", "sold_share", "revenue", "mean_price", "welfare", "efficiency", "price_of_anarchy",
                  "reserve", "mechanism")


def render() -> None:
    entry, filters = ui.current()
    ui.header("Populations & channels", entry, filters)
    runs = len(data.options(entry).seeds)
    if runs > 1:
        st.caption(f"Means over the {runs} runs (per variant in a sweep); the per-run rows are under each table.")
    with ui.guard("show the populations"):
        st.subheader("By population")
        show(data.populations_view(entry.source, filters, by=("population",)), ["population"], POPULATION_COLUMNS)
    with ui.guard("show channels by population"):
        st.subheader("By channel and population")
        show(data.populations_view(entry.source, filters, by=("channel", "population")), ["channel", "population"],
             CHANNEL_POPULATION_COLUMNS)
    with ui.guard("show the market by channel"):
        st.subheader("Market by channel")
        show(data.market_view(entry.source, filters, by=("channel",)), ["channel"], MARKET_COLUMNS)


def show(frame: pl.DataFrame, keys: list[str], columns: tuple[str, ...]) -> None:
    if frame.is_empty():
        st.warning("No rows match the filters.")
        return
    columns = [c for c in columns if c in frame.columns and frame.get_column(c).is_not_null().any()]
    several_groups = frame.get_column("group").n_unique() > 1
    several_runs = frame.select("group", "seed").n_unique() > 1
    numeric = [c for c in columns if frame.schema[c].is_numeric()]
    text = [c for c in columns if c not in numeric]
    if several_runs:
        shown = frame.group_by(["group", *keys], maintain_order=True).agg(
            pl.len().alias("runs"), *[pl.col(c).mean() for c in numeric], *[pl.col(c).first() for c in text])
        shown = shown.select(*(["group"] if several_groups else []), *keys, "runs", *columns)
    else:
        shown = frame.select(*keys, *columns)
    ui.table(shown)
    if several_runs:
        with st.expander("Per run"):
            ui.table(frame.select("group", "seed", *keys, *columns))


render()
