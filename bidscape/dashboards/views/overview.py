"""Overview: headline metrics, the scenario and the manifest.

Reads ``market.arrow``, ``populations.arrow`` and ``manifest.json`` only (never
``agents.arrow``), so it opens a run of 1e7 agents in seconds.
"""

import polars as pl
import streamlit as st

from bidscape.dashboards import data, ui

TILES = ("revenue", "welfare", "efficiency", "price_of_anarchy", "sold_share", "mean_price", "budget_utilisation",
         "bidder_utility", "liquid_welfare", "regret")


def render() -> None:
    entry, filters = ui.current()
    ui.header("Overview", entry, filters)
    with ui.guard("show the headline metrics"):
        metrics(entry, filters)
    with ui.guard("show the scenario"):
        scenario(entry)
    skipped()


def metrics(entry: data.Entry, filters: data.Filters) -> None:
    frame = data.headline_view(entry.source, filters)
    if frame.is_empty():
        st.warning("No rows match the filters.")
        return
    groups = frame.get_column("group").unique(maintain_order=True).to_list()
    if len(groups) > 1:  # a sweep: one row per variant
        st.subheader("Headline metrics by variant")
        st.caption(f"Mean over seeds; {frame.height} runs.")
        means = frame.group_by("group", maintain_order=True).agg(
            pl.len().alias("runs"), *[pl.col(m).mean() for m in TILES])
        ui.table(means)
        return
    runs = frame.height
    if runs > 1:
        st.caption(f"Mean over {runs} seeds; the help of each tile gives the range.")
    columns = st.columns(5)
    shown = [m for m in TILES if frame.get_column(m).is_not_null().any()]
    for i, metric in enumerate(shown):
        values = frame.get_column(metric).drop_nulls()
        name, _kind, help_ = ui.METRICS[metric]
        if runs > 1:
            help_ += f" Mean of {values.len()} runs; min {ui.fmt(values.min(), metric)}, max {ui.fmt(values.max(), metric)}."
        columns[i % 5].metric(name, ui.fmt(values.mean(), metric), help=help_, border=True)
    if "regret" not in shown:
        st.caption("No regret: the strategies of this run do not record it.")


def scenario(entry: data.Entry) -> None:
    options = data.options(entry)
    scenario = options.manifest["scenario"]
    left, right = st.columns(2)
    with left:
        st.subheader("Scenario")
        fields(scenario_rows(scenario))
    with right:
        st.subheader("Manifest")
        fields(manifest_rows(entry, options))
    st.dataframe(pl.DataFrame([{
        "population": p["name"], "strategy": p["strategy"], "agents": p["size"],
        "values": _distribution(p.get("values")), "budget": _distribution(p.get("budget")) or "unlimited",
        "params": ", ".join(f"{k}={v}" for k, v in (p.get("params") or {}).items()),
    } for p in scenario["populations"]]), hide_index=True)


def fields(rows: list[tuple[str, str]]) -> None:
    st.dataframe(pl.DataFrame({"field": [r[0] for r in rows], "value": [r[1] for r in rows]}), hide_index=True)


def scenario_rows(scenario: dict) -> list[tuple[str, str]]:
    run, mechanism = scenario["run"], scenario["mechanism"]
    channels = scenario.get("channels") or []

    def channel(c: dict) -> str:
        changes = {k: v for k, v in (c.get("mechanism") or {}).items() if v is not None}
        return f"{c['name']} ({_mechanism({**mechanism, **changes})})"

    return [
        ("name", run.get("name", "")),
        ("mechanism", _mechanism(mechanism)),
        ("bidders per auction", str(scenario.get("market", {}).get("bidders_per_auction", ""))),
        ("rounds", f"{run['rounds']:,}"),
        ("auctions per round", f"{run['auctions_per_round']:,}" if not channels else
         ", ".join(f"{c['name']}: {(c.get('auctions_per_round') or run['auctions_per_round']):,}" for c in channels)),
        ("channels", "; ".join(channel(c) for c in channels) or "one (main)"),
        ("agents recorded", run.get("record_agents", "agent")),
        ("auction sample rate", f"{run.get('auction_sample_rate', 0):g}"),
        ("events", str(len(scenario.get("events") or []))),
    ]


def manifest_rows(entry: data.Entry, options: data.Options) -> list[tuple[str, str]]:
    manifest = options.manifest
    seeds = ", ".join(str(s) for s in options.seeds[:20]) + (" …" if len(options.seeds) > 20 else "")
    rows = [("version", ", ".join(options.versions)), ("seed" if len(options.seeds) == 1 else "seeds", seeds)]
    if len(options.seeds) == 1:
        rows += [("wall time", f"{manifest.get('wall_seconds') or 0:.2f} s"),
                 ("started", str(manifest.get("started", ""))), ("finished", str(manifest.get("finished", ""))),
                 ("rows", ", ".join(f"{k}: {v:,}" for k, v in (manifest.get("rows") or {}).items()))]
    else:
        rows += [("runs", str(len(options.seeds))), ("wall time, all runs", f"{options.wall_seconds:.2f} s")]
    return rows + [("path", entry.path)]


def _mechanism(m: dict) -> str:
    text = f"{m.get('type', '?')}, reserve {m.get('reserve', 0):g}"
    if m.get("soft_floor"):
        text += f", soft floor {m['soft_floor']:g}"
    if len(m.get("slot_ctrs") or [1]) > 1:
        text += f", {len(m['slot_ctrs'])} slots, pay per {m.get('pricing', 'click')}"
    return text


def _distribution(d) -> str:
    if not d:
        return ""
    kind = d.get("dist")
    if kind == "constant":
        return f"{d.get('value'):g}"
    if kind == "uniform":
        return f"uniform({d.get('low'):g}, {d.get('high'):g})"
    if kind == "lognormal":
        return f"lognormal({d.get('mean'):g}, {d.get('sigma'):g})"
    return str(d)


def skipped() -> None:
    found = st.session_state.get("discovery")
    if found is not None and found.skipped:
        with st.expander(f"{len(found.skipped)} run folder(s) under the root are not shown"):
            st.dataframe(pl.DataFrame({"folder": [s.label for s in found.skipped],
                                       "status": [s.status for s in found.skipped],
                                       "why": [s.message for s in found.skipped]}), hide_index=True)


render()
