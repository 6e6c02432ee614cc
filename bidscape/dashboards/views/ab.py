"""A/B: a treatment against a baseline (two groups or two runs), paired by seed, with confidence
intervals from ``bidscape.analysis.compare``."""

import altair as alt
import polars as pl
import streamlit as st

from bidscape.dashboards import data, ui

METHODS = {
    "paired seeds": "**Paired seeds** (common random numbers): a baseline and a treatment run with the same seed "
                    "see the same auctions, so each seed gives one difference of the whole-run metric. The interval "
                    "is Student-t over those differences (n − 1 degrees of freedom); the relative change "
                    "(treatment / baseline − 1) gets a delta-method interval that accounts for the correlation "
                    "of the two arms.",
    "batch means": "**Batch means over rounds** (one seed): the round-by-round differences are cut into "
                   "consecutive batches whose means are nearly independent; the interval is Student-t over the "
                   "batch means, scaled to the whole run (Law & Carson). Run more seeds for an interval that "
                   "also covers seed-to-seed variation.",
    "no interval": "**No interval**: one seed and a cumulative metric (liquid welfare, regret); "
                   "run at least two seeds per arm.",
    "too few rounds": "**No interval**: one seed and fewer than four rounds; run more seeds or rounds.",
    "not recorded": "**Not recorded**: the runs have no value for this metric (regret is only recorded by "
                    "learning strategies; budget utilisation needs a budgeted population).",
}


def render() -> None:
    ui.header("A/B comparison")
    found = st.session_state.get("discovery")
    if found is None or found.problem:
        st.error(found.problem if found is not None else "Nothing found. Fix: pick a folder of runs.")
        return
    kinds = [k for k in ("group", "run") if found.of_kind(k)]
    if not kinds or sum(len(found.of_kind(k)) for k in kinds) < 2:
        st.info("An A/B comparison needs two groups (seeds of a baseline and of a treatment) or two runs. "
                "Write them with `bidscape run-pair`, a sweep, or `bidscape run --seed N` into two folders.")
        return
    kind = st.segmented_control("Compare", kinds, default=kinds[0], required=True, key="ab_kind",
                                format_func=lambda k: {"group": "Groups", "run": "Runs"}[k]) or kinds[0]
    arms = found.of_kind(kind)
    if len(arms) < 2:
        st.info(f"Only one {kind} under the root; pick the other kind, or write a second {kind}.")
        return
    paths = [e.path for e in arms]
    first, second = _defaults(arms, st.session_state.get("selection"))
    left, right = st.columns(2)
    baseline = left.selectbox("Baseline", paths, index=first, key=f"ab_baseline_{kind}",
                              format_func=lambda p: found.find(p).title())
    treatment = right.selectbox("Treatment", paths, index=second, key=f"ab_treatment_{kind}",
                                format_func=lambda p: found.find(p).title())
    with st.expander("Options"):
        level = st.slider("Confidence level", 0.80, 0.99, 0.95, 0.01, key="ab_level")
        batches = st.number_input("Batches (one seed: batch means over rounds)", 2, 100, 10, key="ab_batches")
    if baseline == treatment:
        st.warning("Pick two different arms.")
        return
    st.caption("Whole runs are compared: the sidebar filters do not apply here.")
    with ui.guard("compare the two arms"):
        with st.spinner("Comparing…"):
            result = data.compare(found.find(baseline).source, found.find(treatment).source, level, batches)
        show(result, level)


def _defaults(arms: list, selection) -> tuple[int, int]:
    names = [a.label.rsplit("/", 1)[-1] for a in arms]
    parents = [a.label.rsplit("/", 1)[0] if "/" in a.label else "" for a in arms]
    for i, name in enumerate(names):
        if name == "baseline":
            for j, other in enumerate(names):
                if other == "treatment" and parents[j] == parents[i]:
                    return i, j
    if selection is not None and selection.path in [a.path for a in arms]:
        i = [a.path for a in arms].index(selection.path)
        return i, (i + 1) % len(arms)
    return 0, 1


def show(result: dict, level: float) -> None:
    table: pl.DataFrame = result["table"]
    seeds = result.get("seeds") or []
    st.markdown(f"**{result.get('treatment', 'treatment')}** against **{result.get('baseline', 'baseline')}**, "
                f"paired on {len(seeds)} seed(s): {', '.join(str(s) for s in seeds[:20])}"
                + (" …" if len(seeds) > 20 else ""))
    if result.get("unpaired"):
        st.warning("Seeds without a partner (left out): " + "; ".join(
            f"{arm}: {', '.join(map(str, seeds_))}" for arm, seeds_ in result["unpaired"].items()))
    for warning in result.get("warnings") or []:  # events make the arms equal over some rounds: effects mislead
        st.error(f"**Warning**: {warning}")
    changes = result.get("scenario_changes") or []
    if changes:
        st.caption("What differs: " + "; ".join(f"`{path}` {a!r} → {b!r}" for path, a, b in changes[:10])
                   + (" …" if len(changes) > 10 else ""))
    shown = table.with_columns(pl.col("metric").replace_strict({m: ui.label(m) for m in ui.METRICS},
                                                               default=pl.col("metric")).alias("label"))
    columns = ["label", "baseline", "treatment", "difference", "ci_low", "ci_high", "relative",
               "relative_ci_low", "relative_ci_high", "p_value", "n", "method"]
    number = st.column_config.NumberColumn(format="%.5g")
    st.dataframe(shown.select([c for c in columns if c in shown.columns]), hide_index=True,
                 height=35 * (shown.height + 1) + 3, column_config={
        "label": st.column_config.TextColumn("metric"),
        "baseline": number, "treatment": number, "difference": number,
        "ci_low": st.column_config.NumberColumn(f"CI low ({level:.0%})", format="%.5g"),
        "ci_high": st.column_config.NumberColumn(f"CI high ({level:.0%})", format="%.5g"),
        "relative": st.column_config.NumberColumn("relative change", format="percent"),
        "relative_ci_low": st.column_config.NumberColumn("relative CI low", format="percent"),
        "relative_ci_high": st.column_config.NumberColumn("relative CI high", format="percent"),
        "p_value": st.column_config.NumberColumn("p-value", format="%.3g"),
    })
    methods = [m for m in table.get_column("method").unique(maintain_order=True).to_list() if m]
    for method in methods:
        key = next((k for k in METHODS if k in method), None)
        st.markdown(f"`{method}`: " + (METHODS[key] if key else "see bidscape.analysis.compare."))

    chart = shown.filter(pl.col("relative").is_not_null())
    if not chart.is_empty():
        st.subheader("Relative change with its interval")
        base = alt.Chart(chart).encode(y=alt.Y("label:N", title=None, sort=None))
        # padding: a point or interval end at the extreme would sit on the plot's edge, half hidden
        bars = base.mark_errorbar(ticks=True).encode(x=alt.X("relative_ci_low:Q", title="treatment / baseline − 1",
                                                            axis=alt.Axis(format="%"), scale=alt.Scale(padding=24)),
                                                     x2="relative_ci_high:Q")
        points = base.mark_point(filled=True, size=70).encode(
            x="relative:Q", color=alt.condition("datum.relative_ci_low > 0 || datum.relative_ci_high < 0",
                                                alt.value("#d62728"), alt.value("#1f77b4")),
            tooltip=["label:N", alt.Tooltip("relative:Q", format=".2%"),
                     alt.Tooltip("relative_ci_low:Q", format=".2%"), alt.Tooltip("relative_ci_high:Q", format=".2%"),
                     "method:N"])
        zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
        ui.chart(alt.layer(bars, points, zero).properties(height=28 * chart.height + 40))
        st.caption("Red: the interval excludes zero. Metrics without a relative interval show the point only.")

    per_seed = result.get("per_seed")
    if per_seed is not None and not per_seed.is_empty():
        st.subheader("Per seed")
        metrics = per_seed.get_column("metric").unique(maintain_order=True).to_list()
        metric = st.selectbox("Metric", metrics, format_func=ui.label, key="ab_seed_metric")
        one = per_seed.filter(pl.col("metric") == metric)
        left, right = st.columns(2)
        with left:
            ui.chart(alt.Chart(one).mark_bar().encode(
                x=alt.X("seed:O"), y=alt.Y("difference:Q", title=f"treatment − baseline: {ui.label(metric)}"),
                tooltip=["seed:O", alt.Tooltip("baseline:Q", format=".5g"), alt.Tooltip("treatment:Q", format=".5g"),
                         alt.Tooltip("difference:Q", format=".5g")]).properties(height=260))
        with right:
            st.dataframe(one.drop("metric"), hide_index=True,
                         column_config={c: st.column_config.NumberColumn(format="%.5g")
                                        for c in ("baseline", "treatment", "difference")})

    by_round = result.get("by_round")
    if by_round is not None and not by_round.is_empty() and "round" in by_round.columns:
        st.subheader("By round (mean over seeds)")
        options = [c for c in by_round.columns if c not in ("arm", "round") and by_round.schema[c].is_numeric()]
        metric = st.selectbox("Series", options, index=options.index("revenue") if "revenue" in options else 0,
                              format_func=ui.label, key="ab_round_metric")
        frame = data.downsample(by_round.select("arm", "round", pl.col(metric).alias("value")))
        ui.chart(alt.Chart(frame).mark_line(point=frame.height <= 200).encode(
            x=alt.X("round:Q", axis=ui.integer_axis("round")), y=alt.Y("value:Q", title=ui.label(metric)),
            color=alt.Color("arm:N", title="arm", scale=ui.PALETTE),
            tooltip=["arm:N", "round:Q", alt.Tooltip("value:Q", format=".5g")]).properties(height=280))


render()
