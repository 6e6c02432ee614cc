"""Segments: a market with context (``[traffic]``) by segment: the traffic curve, revenue per round,
a table per segment over the rows and, from the auction sample, winning prices per segment.

It reads ``segments.arrow`` (small: rounds x channels x segments) through
``bidscape.dashboards.segments``, with the sidebar's rounds and channels, as the market is
filtered. A run without ``[traffic]`` has no such table: the page says so.
"""

from typing import Optional

import altair as alt
import polars as pl
import streamlit as st

from bidscape.dashboards import data, segments, ui
from bidscape.dashboards.discovery import fingerprint

BINS = 40


@st.cache_data(show_spinner=False, max_entries=64)
def _rows(source: tuple[str, ...], stamp: tuple, rounds: Optional[tuple[int, int]],
          channels: Optional[tuple[str, ...]]) -> pl.DataFrame:
    return segments.segments_scan(list(source), rounds, channels).collect()


@st.cache_data(show_spinner=False, max_entries=32)
def _prices(source: tuple[str, ...], stamp: tuple, filters: data.Filters) -> pl.DataFrame:
    prices = data.sold_prices(source, filters, "segment").filter(pl.col("segment").is_not_null())
    return segments.series(prices.collect(engine="streaming"))


def render() -> None:
    entry, filters = ui.current()
    ui.header("Segments", entry, filters)
    with ui.guard("show the segments"):
        with_segments, without = segments.runs_with_segments(list(entry.source))
        if not with_segments:
            st.info(f"This {entry.kind} has no segments: its scenario has no [traffic] section, so all its auctions "
                    "are alike. Fix: add [traffic] with [[traffic.segments]] (docs/context.md) and run it again.")
            return
        if without:
            st.caption(f"{len(without)} of {len(with_segments) + len(without)} runs have no segments (no [traffic]) "
                       "and are left out.")
        source = tuple(str(ref.run.path) for ref in with_segments)
        rows = _rows(source, fingerprint(source), filters.rounds, filters.channels)
        if rows.is_empty():
            st.warning("No rounds match the filters.")
            return
        band = "minmax"
        if len(with_segments) > 1:
            band = st.radio("Band over seeds", ["minmax", "se"], horizontal=True, key="segment_band",
                            format_func={"minmax": "min – max", "se": "±2 standard errors"}.get)
        per_round = segments.series(segments.by_round(rows))
        colours = ui.colour_scale(per_round.get_column("series").unique(maintain_order=True))
        by_round(per_round, band, colours)
        table(segments.totals(rows))
        populations(source, filters)
        with ui.guard("show the prices by segment"):
            prices(source, filters, colours)


def by_round(per_round: pl.DataFrame, band: str, colours: alt.Scale) -> None:
    thinned = data.downsample(per_round)
    if thinned.height < per_round.height:
        st.caption(f"{per_round.get_column('round').n_unique():,} rounds: thinned to at most "
                   f"{data.MAX_POINTS:,} points.")
    long = data.over_seeds(thinned, ["round", "series"], ["auctions", "revenue"], band)
    left, right = st.columns(2)
    with left:
        auctions = long.filter(pl.col("metric") == "auctions")
        if long.get_column("group").n_unique() == 1:  # one scenario: stack the segments, the top is the curve
            figure = alt.Chart(auctions).mark_area(opacity=0.8).encode(
                x=alt.X("round:Q", title="round", axis=ui.integer_axis("round")),
                y=alt.Y("mean:Q", title="auctions", stack=True),
                color=alt.Color("series:N", title="segment", scale=colours, legend=ui.legend("segment")),
                tooltip=["round:Q", alt.Tooltip("series:N", title="segment"),
                         alt.Tooltip("mean:Q", title="auctions", format=",.0f")],
            ).properties(title="Traffic: auctions per round (stacked by segment)", height=260)
        else:
            figure = ui.band_chart(auctions, "round", "Traffic: auctions per round", color="series",
                                   y_title="auctions", color_title="segment", scale=colours)
        ui.chart(figure)
    with right:
        ui.chart(ui.band_chart(long.filter(pl.col("metric") == "revenue"), "round", "Revenue per round",
                               color="series", y_title="revenue", color_title="segment", scale=colours))


def table(per_run: pl.DataFrame) -> None:
    st.subheader("By segment")
    columns = [c for c in segments.TOTAL_COLUMNS if c in per_run.columns and per_run.get_column(c).is_not_null().any()]
    several_groups = per_run.get_column("group").n_unique() > 1
    several_runs = per_run.select("group", "seed").n_unique() > 1
    if several_runs:
        shown = segments.mean_over_runs(per_run.select("group", "seed", "segment", *columns))
        ui.table(shown.select(*(["group"] if several_groups else []), "segment", "runs", *columns))
        st.caption("Means over the runs (per variant in a sweep); shares of the auctions of the filtered rounds and "
                   "channels.")
        with st.expander("Per run"):
            ui.table(per_run.select("group", "seed", "segment", *columns))
    else:
        ui.table(per_run.select("segment", *columns))
        st.caption("Over the filtered rounds and channels; share: of their auctions.")


@st.cache_data(show_spinner=False, max_entries=64)
def _populations(source: tuple[str, ...], stamp: tuple, rounds: Optional[tuple[int, int]],
                 channels: Optional[tuple[str, ...]]) -> pl.DataFrame:
    return segments.population_totals(list(source), rounds, channels)


def populations(source: tuple[str, ...], filters: data.Filters) -> None:
    per_run = _populations(source, fingerprint(source), filters.rounds, filters.channels)
    if per_run.is_empty():
        return
    columns = [c for c in segments.POPULATION_COLUMNS if per_run.get_column(c).is_not_null().any()]
    with st.expander("By segment and population"):
        if per_run.select("group", "seed").n_unique() > 1:
            shown = per_run.group_by("group", "segment", "population", maintain_order=True).agg(
                pl.len().alias("runs"), *[pl.col(c).mean() for c in columns])
            ui.table(shown)
            st.caption("Means over the runs; spend_share: the population's share of the segment's spend.")
        else:
            ui.table(per_run.select("segment", "population", *columns))
            st.caption("Over the filtered rounds and channels; spend_share: the population's share of the segment's "
                       "spend.")


def prices(source: tuple[str, ...], filters: data.Filters, colours: alt.Scale) -> None:
    st.subheader("Winning prices by segment")
    prices = _prices(source, fingerprint(source), filters)
    if prices.is_empty():
        st.info("The auction sample has no sold auction here (run.auction_sample_rate may be 0).")
        return
    counts, _ = data.histogram(prices, "price", by="series", bins=BINS)
    st.caption(f"From the auction sample: {prices.height:,} prices counted, {data.price_basis(source)}; prices "
               "above the 99.5% quantile are counted in the last bin.")
    ui.chart(ui.histogram_chart(counts.rename({"series": "segment"}), "Winning price", color="segment",
                                x_title="price", scale=colours))
    summary = segments.price_summary(prices).rename({"series": "segment", "n": "sampled", "q10": "p10",
                                                     "q50": "median", "q90": "p90"})
    st.dataframe(summary, hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.4f")
                                                          for c in ("mean", "p10", "median", "p90")})


render()
