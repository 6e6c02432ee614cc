"""Time series: the market round by round, pacing multipliers and spend against budget per population.

For a group (or a sweep), lines are the mean over seeds and the band is the range over
seeds or ±2 standard errors. Series longer than ``data.MAX_POINTS`` rounds are thinned.
"""

import altair as alt
import polars as pl
import streamlit as st

from bidscape.dashboards import data, ui

MARKET = ("revenue", "mean_price", "sold_share", "efficiency")


def render() -> None:
    entry, filters = ui.current()
    ui.header("Time series", entry, filters)
    band = "minmax"
    if entry.kind != "run":
        band = st.radio("Band over seeds", ["minmax", "se"], horizontal=True, key="band",
                        format_func={"minmax": "min – max", "se": "±2 standard errors"}.get)
    with ui.guard("show the market by round"):
        market(entry, filters, band)
    with ui.guard("show the populations by round"):
        populations(entry, filters, band)


def market(entry: data.Entry, filters: data.Filters, band: str) -> None:
    frame = data.market_view(entry.source, filters, by=("round",))
    if frame.is_empty():
        st.warning("No rounds match the filters.")
        return
    thinned = data.downsample(frame)
    if thinned.height < frame.height:
        st.caption(f"{frame.get_column('round').n_unique():,} rounds: 1 in "
                   f"{round(frame.height / max(thinned.height, 1))} drawn (at most {data.MAX_POINTS:,} points).")
    long = data.over_seeds(thinned, ["round"], MARKET, band)
    colours = ui.colour_scale(long.get_column("group").unique(maintain_order=True))
    st.subheader("Market")
    columns = st.columns(2)
    for i, metric in enumerate(MARKET):
        one = long.filter(pl.col("metric") == metric)
        with columns[i % 2]:
            ui.chart(ui.band_chart(one, "round", ui.label(metric), color_title="variant", scale=colours))


def populations(entry: data.Entry, filters: data.Filters, band: str) -> None:
    frame = data.populations_view(entry.source, filters, by=("round", "population"))
    if frame.is_empty():
        return
    frame = data.downsample(frame)
    long = data.over_seeds(frame, ["round", "population"], ["multiplier", "cumulative_spend", "budget", "spend"], band)
    several = long.get_column("group").n_unique() > 1  # a sweep: one line per variant and population
    series = (pl.col("group") + " · " + pl.col("population")) if several else pl.col("population")
    long = long.with_columns(series.alias("series"))
    key = "series"
    # every series of the page in one colour map: the budget lines cover only budgeted populations
    colours = ui.colour_scale(long.sort("group", "population").get_column("series").unique(maintain_order=True))
    st.subheader("Bidders")
    left, right = st.columns(2)
    with left:
        ui.chart(ui.band_chart(long.filter(pl.col("metric") == "multiplier"), "round", "Pacing multiplier",
                               color=key, y_title="mean bid multiplier",
                               color_title="population", scale=colours))
    with right:
        spend = long.filter(pl.col("metric") == "cumulative_spend")
        budgets = long.filter((pl.col("metric") == "budget") & pl.col("mean").is_not_null())
        figure = ui.band_chart(spend, "round", "Spend against budget", color=key, y_title="cumulative spend",
                               color_title="population", scale=colours)
        if not budgets.is_empty():
            rule = alt.Chart(budgets).mark_line(strokeDash=[6, 4]).encode(
                x=alt.X("round:Q", axis=ui.integer_axis("round")), y="mean:Q",
                color=alt.Color(f"{key}:N", title="population", scale=colours, legend=ui.legend("population")),
                tooltip=[f"{key}:N", alt.Tooltip("mean:Q", title="budget", format=".4g")])
            figure = alt.layer(figure, rule)
        ui.chart(figure)
        if budgets.is_empty():
            st.caption("No population has a budget.")
        else:
            st.caption("Dashed: the population's total budget; solid: its spend so far.")
    ui.chart(ui.band_chart(long.filter(pl.col("metric") == "spend"), "round", "Spend per round", color=key,
                           y_title="spend", color_title="population", scale=colours))


render()
