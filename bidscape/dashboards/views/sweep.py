"""Sweep: a headline metric against a swept parameter (mean over seeds with a band), and the index."""

import polars as pl
import streamlit as st

from bidscape.analysis.metrics import HEADLINE
from bidscape.dashboards import data, ui


def render() -> None:
    entry, filters = ui.current()
    found = st.session_state.get("discovery")
    sweeps = found.of_kind("sweep") if found is not None else []
    ui.header("Sweep")
    if not sweeps:
        st.info("No sweep under the root. A sweep folder holds sweep.json and index.arrow; write one with "
                "`bidscape sweep SWEEP.toml --out runs/NAME`.")
        return
    paths = [s.path for s in sweeps]
    index = paths.index(entry.path) if entry.kind == "sweep" and entry.path in paths else 0
    if len(sweeps) > 1 or entry.kind != "sweep":
        path = st.selectbox("Sweep", paths, index=index, key="sweep_pick", format_func=lambda p: found.find(p).title())
    else:
        path = paths[0]
    sweep = found.find(path)
    if entry.path != sweep.path:
        filters = data.Filters()  # the sidebar's filters belong to another selection
    elif filters.active:
        st.caption(f"Filtered: {filters.describe()}")
    with ui.guard("show the sweep"):
        plot(sweep, filters)
    with ui.guard("read the sweep index"):
        show_index(sweep)


def plot(sweep: data.Entry, filters: data.Filters) -> None:
    index = data.sweep_index(sweep.path)
    params = data.swept_parameters(index)
    if not params:
        st.warning("The index names no swept parameter (no column besides the run columns).")
        return
    results = data.sweep_results(sweep, filters)
    if results.is_empty():
        st.warning("No complete run yet.")
        return
    metrics = [m for m in HEADLINE if results.get_column(m).is_not_null().any()]
    left, middle, right, last = st.columns(4)
    metric = left.selectbox("Metric", metrics, format_func=ui.label, key="sweep_metric")
    x = middle.selectbox("Parameter (x axis)", params, key="sweep_x")
    colours = ["(none)"] + [p for p in params if p != x]
    colour = right.selectbox("Colour", colours, key="sweep_colour")
    band = last.radio("Band over seeds", ["se", "minmax"], key="sweep_band", horizontal=True,
                      format_func={"minmax": "min – max", "se": "±2 SE"}.get)
    keys = [x] + ([colour] if colour != "(none)" else [])
    safe = {k: ui.safe_name(k) for k in keys}
    frame = results.select("seed", *keys, metric).rename(safe).with_columns(pl.lit("all").alias("group"))
    if colour != "(none)":
        frame = frame.with_columns(pl.col(safe[colour]).cast(pl.String).alias("group"))
    long = data.over_seeds(frame, [safe[x]], [metric], band)
    nominal = not results.schema[x].is_numeric()
    ui.chart(ui.band_chart(long, safe[x], f"{ui.label(metric)} against {x}", x_title=x, y_title=ui.label(metric),
                           color_title=colour if colour != "(none)" else " ", nominal_x=nominal, height=360))
    st.caption(f"Mean over seeds of each variant; {'±2 standard errors' if band == 'se' else 'range over seeds'} "
               f"as a {'bar' if nominal else 'band'}; {results.height} complete run(s).")
    summary = long.select(*([pl.col("group").alias(colour)] if colour != "(none)" else []),
                          pl.col(safe[x]).alias(x), "n", "mean", "low", "high")
    st.dataframe(summary, hide_index=True, width="stretch", column_config={
        **ui.label_columns(summary), **{c: st.column_config.NumberColumn(format="%.5g") for c in ("mean", "low", "high")}})


def show_index(sweep: data.Entry) -> None:
    index = data.sweep_index(sweep.path)
    st.subheader("Runs")
    counts = index.group_by("status").len().sort("status")
    st.caption(" · ".join(f"{row['status']}: {row['len']}" for row in counts.iter_rows(named=True)))
    status = st.multiselect("Status", sorted(index.get_column("status").unique().to_list()), key="sweep_status",
                            placeholder="every status")
    shown = index.filter(pl.col("status").is_in(status)) if status else index
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        **ui.label_columns(shown), "wall_seconds": st.column_config.NumberColumn("wall time (s)", format="%.2f")})


render()
