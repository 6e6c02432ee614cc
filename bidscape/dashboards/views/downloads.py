"""Downloads: a table of the selection, with the sidebar filters, as CSV or Parquet.

The file is built with polars only when the button is pressed (``st.download_button``
with a callable)."""

import re

import polars as pl
import streamlit as st

from bidscape.dashboards import data, ui
from bidscape.errors import InputError, Problem

TABLES = {
    "market": "Market, by round and channel",
    "populations": "Populations, by round, channel and population",
    "headline": "Headline metrics, one row per run",
    "auctions": "Auction sample (auctions.arrow)",
    "agents": "Agent sample, one round (agents.arrow, capped)",
}
MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def render() -> None:
    entry, filters = ui.current()
    ui.header("Downloads", entry, filters)
    left, right = st.columns([2, 1])
    table = left.radio("Table", list(TABLES), format_func=TABLES.get, key="download_table")
    kind = right.segmented_control("Format", list(MIME), default="csv", required=True, key="download_format",
                                   format_func=str.upper) or "csv"
    with ui.guard(f"prepare the {table} table"):
        preview, rows, build = prepare(table, entry, filters, right)
        st.dataframe(preview, hide_index=True)
        st.caption(f"First {preview.height} of {rows:,} rows" if rows is not None else
                   f"First {preview.height} rows")
        name = re.sub(r"[^A-Za-z0-9_.=-]+", "-", entry.label).strip("-") or "bidscape"
        st.download_button(f"Download {table}.{kind}", data=lambda: data.to_bytes(build(), kind),
                           file_name=f"{name}-{table}.{kind}", mime=MIME[kind], icon=":material/download:",
                           on_click="ignore", type="primary")


def prepare(table: str, entry: data.Entry, filters: data.Filters, column):
    """(preview, rows or None, build) for a table; ``build()`` makes the whole frame."""
    if table in ("market", "populations", "headline"):
        if table == "market":
            frame = data.market_view(entry.source, filters, by=("round", "channel"))
        elif table == "populations":
            frame = data.populations_view(entry.source, filters, by=("round", "channel", "population"))
        else:
            frame = data.headline_view(entry.source, filters)
        return frame.head(20), frame.height, lambda: frame
    if table == "auctions":
        cap = column.number_input("Row cap", 1_000, 50_000_000, 1_000_000, step=100_000, key="download_auction_cap")
        scan = data.auctions_scan(entry.source, filters)
        rows = scan.select(pl.len()).collect().item()
        if rows > cap:
            st.caption(f"{rows:,} sampled rows match; the file holds the first {cap:,}.")
        return scan.head(20).collect(), rows, lambda: scan.head(cap).collect(engine="streaming")
    options = data.options(entry)
    if any(mode != "agent" for mode in options.record_agents):
        raise InputError(Problem("", f"this {entry.kind} recorded agents by "
                                     f"{', '.join(options.record_agents)}, so there are no per-agent rows",
                                 "re-run with --set run.record_agents=agent"))
    last = options.rounds - 1
    round_ = column.number_input("Round", 0, last, filters.rounds[1] if filters.rounds else last,
                                 key=f"download_round|{entry.path}")
    cap = column.number_input("Row cap", 1_000, 1_000_000, data.AGENT_SAMPLE, step=10_000, key="download_agent_cap")
    with st.spinner(f"Sampling up to {cap:,} agents of round {round_}…"):
        sample = data.agent_sample(entry.source, round_, cap, filters, per_agent=False)
    st.caption(f"A uniform sample of agents (hashed on the agent id), {sample.height:,} rows.")
    return sample.head(20), sample.height, lambda: sample


render()
