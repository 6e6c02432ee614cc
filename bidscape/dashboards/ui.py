"""The sidebar (what to show, filters) and what the pages share: error guard, number formats, charts.

The sidebar leaves three things in ``st.session_state`` for the pages: ``selection``
(a ``data.Entry``: a run, a group or a sweep), ``filters`` (a ``data.Filters``) and
``discovery`` (everything found under the root).
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Optional, Sequence

import altair as alt
import polars as pl
import streamlit as st

from bidscape.dashboards import data
from bidscape.errors import InputError

if TYPE_CHECKING:
    from PIL import Image

LOG = logging.getLogger("bidscape.dashboard")

# (file, title, icon, url path); the first is the default page. The folder is not called
# "pages": Streamlit would take it for an old-style multipage folder (AppTest does, and so
# may a fresh server before st.navigation first runs) and run a page without this script.
PAGES = (
    ("views/overview.py", "Overview", ":material/dashboard:", "overview"),
    ("views/time_series.py", "Time series", ":material/show_chart:", "time-series"),
    ("views/distributions.py", "Distributions", ":material/bar_chart:", "distributions"),
    ("views/populations.py", "Populations & channels", ":material/groups:", "populations"),
    ("views/segments.py", "Segments", ":material/donut_small:", "segments"),
    ("views/ab.py", "A/B", ":material/compare_arrows:", "ab"),
    ("views/sweep.py", "Sweep", ":material/tune:", "sweep"),
    ("views/downloads.py", "Downloads", ":material/download:", "downloads"),
)

KINDS = {"run": "Run", "group": "Group", "sweep": "Sweep"}

# metric -> (label, kind, help); kind: amount | share | ratio | price
METRICS = {
    "revenue": ("Revenue", "amount", "Sum of the prices paid."),
    "welfare": ("Welfare", "amount", "Value won by the winners."),
    "max_welfare": ("Max welfare", "amount", "Welfare of the efficient allocation of the same auctions."),
    "efficiency": ("Efficiency", "share", "Welfare / max welfare."),
    "price_of_anarchy": ("Price of anarchy", "ratio", "Max welfare / welfare (1 is the best)."),
    "liquid_welfare": ("Liquid welfare", "amount", "Sum over agents of min(budget, value won)."),
    "sold_share": ("Sold share", "share", "Filled slot impressions / slot impressions offered."),
    "mean_price": ("Mean price", "price", "Revenue per filled slot impression."),
    "bidder_utility": ("Bidder utility", "amount", "Value won minus spend, all bidders."),
    "budget_utilisation": ("Budget utilisation", "share", "Spend / budget, of the budgeted populations."),
    "return_on_spend": ("Return on spend", "ratio", "Value won / spend."),
    "win_rate": ("Win rate", "share", "Wins / auctions entered."),
    "regret": ("Regret", "ratio", "Mean regret against the best fixed multiplier in hindsight."),
    "multiplier": ("Multiplier", "ratio", "Mean bid multiplier (agent-weighted)."),
    "spend": ("Spend", "amount", "Sum of the prices the population paid."),
    "cumulative_spend": ("Cumulative spend", "amount", "Spend up to and including the round."),
    "budget": ("Budget", "amount", "Total budget (null when unlimited)."),
    "budget_remaining": ("Budget remaining", "amount", "Budget left after the last round of the rows."),
    "utility": ("Utility", "amount", "Value won minus spend."),
    "value": ("Value won", "amount", ""),
    "wins": ("Wins", "amount", ""),
    "participations": ("Auctions entered", "amount", "Expected auctions entered."),
    "auctions": ("Auctions", "amount", ""),
    "auction_share": ("Share of auctions", "share", "The segment's auctions / all auctions of the rows."),
    "revenue_per_auction": ("Revenue per auction", "price", "Revenue / auctions (unsold ones count at 0)."),
    "sold": ("Sold", "amount", "Filled slot impressions."),
    "slots_offered": ("Slots offered", "amount", ""),
    "reserve": ("Reserve", "price", "Mean reserve in force."),
    "agents": ("Agents", "amount", ""),
    "clicks": ("Clicks", "amount", "Position auctions only."),
    "budgeted_spend": ("Budgeted spend", "amount", "Spend of the agents with a budget."),
}


def page_icon() -> "Image.Image":
    """The browser tab's icon, drawn here (three bars) and served by the dashboard itself: an emoji or
    ``:material/...:`` icon makes the browser fetch it from a CDN, and the dashboard must work offline."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for i, (height, colour) in enumerate(zip((28, 44, 60), COLOURS)):
        draw.rectangle((4 + 20 * i, 64 - height, 20 + 20 * i, 63), fill=colour)
    return image


def label(metric: str) -> str:
    return METRICS.get(metric, (metric.replace("_", " ").capitalize(),))[0]


def fmt(value, metric: str = "") -> str:
    """A number for people: compact amounts, percentages for shares, 4 digits for ratios."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    kind = METRICS.get(metric, ("", "ratio"))[1]
    if kind == "share":
        return f"{value:.1%}"
    if kind == "amount":
        for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= size:
                return f"{value / size:.2f}{suffix}"
        return f"{value:.4g}" if isinstance(value, float) else f"{value:,}"
    return f"{value:.4g}"


def column_config(columns: Sequence[str]) -> dict:
    """Number formats and labels for ``st.dataframe``."""
    config = {}
    for column in columns:
        if column not in METRICS:
            continue
        name, kind, help_ = METRICS[column]
        number_format = {"share": "percent", "amount": "compact"}.get(kind, "%.4f")
        config[column] = st.column_config.NumberColumn(name, format=number_format, help=help_ or None)
    return config


def readable(frame: pl.DataFrame) -> pl.DataFrame:
    """Numeric columns with missing values as text: a missing budget is "unlimited" (a population without
    one), any other missing number "–"; a table would show the bare null as "None"."""
    shown = []
    for column in frame.columns:
        if not frame.schema[column].is_numeric() or frame.get_column(column).null_count() == 0:
            continue
        missing = "unlimited" if column in UNLIMITED_WHEN_MISSING or column.endswith(UNLIMITED_WHEN_MISSING) else "–"
        metric = column if column in METRICS else column.rsplit(" ", 1)[-1]
        shown.append(pl.col(column).map_elements(lambda v, m=metric: fmt(v, m), return_dtype=pl.String)
                     .fill_null(missing).alias(column))
    return frame.with_columns(shown) if shown else frame


# a population without a budget has these null: the budget is unlimited, not unknown
UNLIMITED_WHEN_MISSING = ("budget", "budget_remaining")


LABELS = ("group", "variant", "population", "channel", "label", "metric")


def label_columns(frame: pl.DataFrame) -> dict:
    """Name columns (variant, population, ...) pinned and wide enough for their longest name: the grid
    clips a cell's text at its edge without an ellipsis, so "reserve=0.25" in a narrow column reads
    "reserve=0.2"."""
    config = {}
    for column in LABELS:
        if column in frame.columns and frame.schema[column] in (pl.String, pl.Categorical, pl.Enum):
            longest = max([len(column), *(len(str(v)) for v in frame.get_column(column).drop_nulls())])
            config[column] = st.column_config.TextColumn(column, width=min(8 * longest + 32, 480), pinned=True)
    return config


def table(frame: pl.DataFrame, **kwargs) -> None:
    """A table as wide as the page, scrolling sideways when its columns need more."""
    frame = readable(frame)
    numeric = [c for c in frame.columns if frame.schema[c].is_numeric()]
    config = column_config(numeric)
    config.update({c: st.column_config.TextColumn(METRICS[c][0], help=METRICS[c][2] or None)
                   for c in frame.columns if c in METRICS and c not in numeric})
    config.update(label_columns(frame))
    st.dataframe(frame, column_config={**config, **kwargs.pop("column_config", {})}, hide_index=True,
                 width="stretch", **kwargs)


# ---- errors ----

def _message(error: BaseException) -> str:
    if isinstance(error, InputError):
        return "; ".join(str(p) for p in error.problems)
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(error).__name__}: {first[:400]}"


@contextmanager
def guard(action: str = "show this page") -> Iterator[None]:
    """Turn errors into an ``st.error`` with the fix, never a traceback (which goes to the log)."""
    try:
        yield
    except InputError as error:
        st.error(f"Cannot {action}: {_message(error)}", icon=":material/error:")
    except Exception as error:  # corrupt or truncated files, unexpected tables
        LOG.exception("dashboard: could not %s", action)
        st.error(f"Cannot {action}: {_message(error)}. Fix: check that the folder is a complete run of this "
                 "bidscape version (a truncated or hand-edited file reads like this); re-run the scenario into "
                 "a new folder.", icon=":material/error:")


# ---- sidebar ----

def sidebar() -> None:
    """Pick a run, group or sweep and the filters; leaves them in ``st.session_state``."""
    root = data.root_folder()
    st.session_state["selection"] = None
    st.session_state["filters"] = data.Filters()
    with st.sidebar:
        found = data.discover_cached(str(root))
        st.session_state["discovery"] = found
        st.markdown("**bidscape**")
        st.caption(found.root)
        if st.button("Rescan", icon=":material/refresh:", help="Look for new runs and reload the data"):
            data.clear_caches()
            found = data.discover_cached(str(root))
            st.session_state["discovery"] = found
        if found.problem:
            st.error(found.problem)
            return
        kinds = [k for k in KINDS if found.of_kind(k)]
        kind = st.segmented_control("Show", kinds, format_func=KINDS.get, default=kinds[0], key="pick_kind",
                                    required=True)
        kind = kind or kinds[0]
        choices = found.of_kind(kind)
        path = st.selectbox(KINDS[kind], [e.path for e in choices], key=f"pick_{kind}",
                            format_func=lambda p: found.find(p).title())
        entry = found.find(path) or choices[0]
        st.session_state["selection"] = entry
        _status(entry, found)
        with guard("read the filters"):
            st.session_state["filters"] = _filters(entry)


def _status(entry: data.Entry, found: data.Discovery) -> None:
    if entry.kind == "run":
        st.caption(f"complete run, seed {entry.seeds[0]}")
    elif entry.kind == "group":
        seeds = ", ".join(str(s) for s in entry.seeds[:12]) + (" …" if len(entry.seeds) > 12 else "")
        st.caption(f"{entry.complete} of {entry.runs} runs complete · seeds {seeds}")
    else:
        st.caption(f"{entry.complete} of {entry.runs} runs complete · {len(entry.members)} variant(s)")
    if entry.note:
        st.caption(entry.note)
    skipped = entry.skipped if entry.kind != "run" else ()
    if skipped:
        with st.expander(f"{len(skipped)} run(s) skipped"):
            for s in skipped:
                st.caption(f"`{s.label}`: {s.status} — {s.message}")
    if found.skipped:
        st.caption(f"{len(found.skipped)} run folder(s) under the root are not shown (failed, running or not auction "
                   "runs); see the Overview page.")


def _filters(entry: data.Entry) -> data.Filters:
    options = data.options(entry)
    st.markdown("**Filters**")
    rounds = None
    if options.rounds > 1:
        last = options.rounds - 1
        low, high = st.slider("Rounds", 0, last, (0, last), key=f"rounds|{entry.path}")
        rounds = None if (low, high) == (0, last) else (int(low), int(high))
    channels = populations = None
    if len(options.channels) > 1:
        chosen = st.multiselect("Channels", options.channels, key=f"channels|{entry.path}", placeholder="all channels")
        channels = tuple(chosen) if chosen and len(chosen) < len(options.channels) else None
    if len(options.populations) > 1:
        chosen = st.multiselect("Populations", options.populations, key=f"populations|{entry.path}",
                                placeholder="all populations")
        populations = tuple(chosen) if chosen and len(chosen) < len(options.populations) else None
    return data.Filters(rounds, channels, populations)


def current() -> tuple[data.Entry, data.Filters]:
    """The selection and filters of the sidebar; stops the page when there is nothing to show."""
    entry = st.session_state.get("selection")
    if entry is None:
        found = st.session_state.get("discovery")
        st.error(found.problem if found is not None and found.problem else
                 "Nothing selected. Fix: pick a run, group or sweep in the sidebar.")
        st.stop()
    return entry, st.session_state.get("filters") or data.Filters()


def header(title: str, entry: Optional[data.Entry] = None, filters: Optional[data.Filters] = None) -> None:
    st.title(title)
    if entry is not None:
        line = f"{KINDS[entry.kind]} **{entry.label}**"
        if filters is not None and filters.active:
            line += f" · filtered: {filters.describe()}"
        st.caption(line)


# ---- charts ----

PALETTE = alt.Scale(scheme="tableau10")
# tableau10, fixed here so a name keeps its colour in every chart of a page (a scheme alone colours
# by order of appearance, so a chart missing one population shifts the colours of the others)
COLOURS = ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
           "#bab0ac")


def colour_scale(names: Sequence[str]) -> alt.Scale:
    """One colour per name, the same in every chart built with this scale: build it once per page
    from every name the page can show (e.g. all populations) and pass it to each chart."""
    names = list(dict.fromkeys(str(n) for n in names))
    return alt.Scale(domain=names, range=[COLOURS[i % len(COLOURS)] for i in range(len(names))])


def legend(title: Optional[str] = None) -> alt.Legend:
    """A legend that shows whole names (Vega cuts labels past 160 px by default)."""
    return alt.Legend(title=title, labelLimit=0)


def integer_axis(x: str) -> alt.Axis:
    """Whole rounds on a round axis."""
    return alt.Axis(format="d", tickMinStep=1) if x == "round" else alt.Axis()


def safe_name(name: str) -> str:
    """A field name Vega-Lite reads literally (dots and brackets would mean nesting)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def band_chart(long: pl.DataFrame, x: str, title: str, color: str = "group", x_title: Optional[str] = None,
               y_title: Optional[str] = None, height: int = 260, nominal_x: bool = False,
               color_title: Optional[str] = None, scale: Optional[alt.Scale] = None, zero: bool = True
               ) -> alt.LayerChart:
    """Mean as a line (with points), the band from ``low`` to ``high`` as a shaded area (or error bars).

    ``scale``: the page's colour scale (``colour_scale``). ``zero``: the y axis starts at zero, so a
    level's change is drawn to scale (0.996 -> 1.000 is a flat line, not a crash); pass False only
    for a chart whose title says the axis is zoomed."""
    x_type = "N" if nominal_x else "Q"
    single = long.get_column(color).n_unique() <= 1 if color in long.columns else True
    base = alt.Chart(long).encode(
        x=alt.X(f"{x}:{x_type}", title=x_title or x, axis=integer_axis(x), scale=alt.Scale(zero=False, nice=False,
                                                                                          padding=12)
                if not nominal_x else alt.Undefined),
        color=alt.Color(f"{color}:N", title=color_title or color, scale=scale or PALETTE,
                        legend=None if single else legend(color_title or color)),
        tooltip=[alt.Tooltip(f"{x}:{x_type}", title=x_title or x), alt.Tooltip(f"{color}:N", title=color_title or color),
                 alt.Tooltip("mean:Q", format=".4g"), alt.Tooltip("low:Q", format=".4g"),
                 alt.Tooltip("high:Q", format=".4g"), alt.Tooltip("n:Q", title="runs")])
    line = base.mark_line(point=long.height <= 200).encode(y=alt.Y("mean:Q", title=y_title or title,
                                                                  scale=alt.Scale(zero=zero)))
    band = (base.mark_errorbar() if nominal_x else base.mark_area(opacity=0.2)).encode(y="low:Q", y2="high:Q")
    return alt.layer(band, line).properties(title=title, height=height)


def histogram_chart(counts: pl.DataFrame, title: str, color: Optional[str] = None, x_title: str = "",
                    height: int = 240, scale: Optional[alt.Scale] = None) -> alt.Chart:
    encoding = dict(x=alt.X("low:Q", title=x_title or title, bin="binned"), x2="high:Q",
                    y=alt.Y("count:Q", title="count", stack=None),
                    tooltip=["low:Q", "high:Q", "count:Q"] + ([f"{color}:N"] if color else []))
    if color:
        encoding["color"] = alt.Color(f"{color}:N", title=color, scale=scale or PALETTE, legend=legend(color))
    return alt.Chart(counts).mark_bar(opacity=0.6).encode(**encoding).properties(title=title, height=height)


def chart(figure) -> None:
    st.altair_chart(figure, width="stretch")
