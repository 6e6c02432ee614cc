"""Distributions: winning prices from the auction sample, and per-agent spend, utility,
multiplier and remaining budget from a capped sample of ``agents.arrow`` (streamed, only
when this page is open)."""

import polars as pl
import streamlit as st

from bidscape.dashboards import data, ui

AGENT_METRICS = ("spend", "utility", "multiplier", "budget_remaining")


def render() -> None:
    entry, filters = ui.current()
    ui.header("Distributions", entry, filters)
    bins = st.slider("Bins", 10, 100, 40, step=5, key="bins")
    with ui.guard("show the price distribution"):
        prices(entry, filters, bins)
    with ui.guard("sample the agents"):
        agents(entry, filters, bins)


def prices(entry: data.Entry, filters: data.Filters, bins: int) -> None:
    st.subheader("Winning prices")
    counts, summary = data.price_histogram(entry.source, filters, bins)
    if summary.is_empty() or summary.get_column("n").sum() == 0:
        st.info("The auction sample has no sold auction here (run.auction_sample_rate may be 0).")
        return
    rate = data.options(entry).manifest["scenario"]["run"].get("auction_sample_rate", 0)
    st.caption(f"From the auction sample (rate {rate:g}): {summary.get_column('n').sum():,} prices counted, "
               f"{data.price_basis(entry.source)}; prices above the 99.5% quantile are counted in the last bin.")
    several = summary.height > 1
    ui.chart(ui.histogram_chart(counts, "Winning price", color="group" if several else None, x_title="price",
                                scale=ui.colour_scale(summary.get_column("group"))))
    st.dataframe(summary.rename({"n": "sampled", "q10": "p10", "q50": "median", "q90": "p90"}), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in ("mean", "p10", "median", "p90")})


def agents(entry: data.Entry, filters: data.Filters, bins: int) -> None:
    st.subheader("Agents")
    options = data.options(entry)
    if any(mode != "agent" for mode in options.record_agents):
        st.info(f"This {entry.kind} recorded agents by {', '.join(options.record_agents)} "
                "(run.record_agents), so there are no per-agent rows to draw. Fix: re-run with "
                "--set run.record_agents=agent.")
        return
    last = options.rounds - 1
    default = filters.rounds[1] if filters.rounds else last
    left, right = st.columns(2)
    round_ = left.number_input("Round", 0, last, default, key=f"agent_round|{entry.path}",
                               help="The agents' state after this round (default: the last round of the filter).")
    cap = right.number_input("Sample size (rows)", 1_000, 1_000_000, data.AGENT_SAMPLE, step=10_000,
                             key="agent_cap", help="At most this many agent rows, over all runs.")
    with st.spinner(f"Sampling up to {cap:,} agents of round {round_} from agents.arrow…"):
        sample = data.agent_sample(entry.source, round_, cap, filters)
    total = options_total(options) * max(len(options.seeds), 1)
    st.caption(f"Sample of {sample.height:,} agent rows of round {round_} (hashed on the agent id, so the same "
               f"agents in every round) out of {total:,} agents" + (f" over {len(options.seeds)} runs"
                                                                    if len(options.seeds) > 1 else "")
               + ("; rows of several channels are summed per agent." if "channel" in sample.columns
                  and sample.get_column("channel").str.contains("+", literal=True).any() else "."))
    if sample.is_empty():
        st.warning("No agent matches the filters.")
        return
    colours = ui.colour_scale(options.populations)  # one colour per population in all four histograms
    columns = st.columns(2)
    for i, metric in enumerate(AGENT_METRICS):
        counts, dropped = data.histogram(sample, metric, by="population", bins=bins)
        with columns[i % 2]:
            if counts.is_empty():
                st.caption(f"{ui.label(metric)}: no finite values (e.g. no population has a budget).")
                continue
            ui.chart(ui.histogram_chart(counts, ui.label(metric), color="population", x_title=metric,
                                        scale=colours))
            if dropped:
                st.caption(f"{dropped:,} agents without a budget (infinite) left out.")
    stats = sample.group_by("population").agg(
        pl.len().alias("agents sampled"),
        *[pl.col(m).filter(pl.col(m).is_finite()).mean().alias(f"mean {m}") for m in AGENT_METRICS],
        *[pl.col(m).filter(pl.col(m).is_finite()).median().alias(f"median {m}") for m in AGENT_METRICS],
    ).sort("population")
    ui.table(stats, column_config={c: st.column_config.NumberColumn(format="%.4g") for c in stats.columns[2:]
                                   if stats.schema[c].is_numeric() and stats.get_column(c).null_count() == 0})


def options_total(options: data.Options) -> int:
    return sum(int(p["size"]) for p in options.manifest["scenario"]["populations"])


render()
