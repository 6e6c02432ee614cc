"""The dashboard's data: cached discovery and loaders, filtered views, downsampling.

Discovery (``bidscape.dashboards.discovery``) is light: it reads ``manifest.json`` and
the sweep index only. Loaders go through ``bidscape.analysis`` (lazy scans of the small
per-round tables) and are cached with ``st.cache_data``, keyed by the source's paths and
the modification times of its runs' manifests, so a run written again is read again.
``agents.arrow`` is only read by ``agent_sample`` (streamed, capped), when a page asks.

The sidebar filters (rounds, channels, populations) are passed to the analysis
functions themselves, so every number on every page has one definition, in
``bidscape.analysis.metrics``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import polars as pl
import streamlit as st

from bidscape import analysis
from bidscape.analysis.metrics import _scan as scan_table  # the missing-table error, with its fix
from bidscape.dashboards import discovery
from bidscape.dashboards.discovery import Discovery, Entry, discover, fingerprint, read_manifest
from bidscape.errors import InputError, Problem
from bidscape.outputs.columns import AGENT_FLOWS, AGENT_STOCKS

ROOT_ENV = discovery.ROOT_ENV
root_folder = discovery.root_folder
MAX_POINTS = 2000  # longest series drawn as is; longer ones are thinned
AGENT_SAMPLE = 50_000  # default cap on sampled agent rows
INDEX_COLUMNS = ("run_id", "variant", "seed", "path", "status", "wall_seconds", "error")
KEY_ORDER = ("round", "channel", "population")


@st.cache_data(ttl=10, show_spinner=False)
def discover_cached(root: str) -> Discovery:
    return discover(root)


# ---- filters ----

@dataclass(frozen=True)
class Filters:
    """Sidebar filters; ``None`` keeps everything."""

    rounds: Optional[tuple[int, int]] = None  # inclusive
    channels: Optional[tuple[str, ...]] = None
    populations: Optional[tuple[str, ...]] = None

    def describe(self) -> str:
        parts = []
        if self.rounds is not None:
            parts.append(f"rounds {self.rounds[0]}–{self.rounds[1]}")
        if self.channels is not None:
            parts.append("channel " + ", ".join(self.channels))
        if self.populations is not None:
            parts.append("population " + ", ".join(self.populations))
        return "; ".join(parts)

    @property
    def active(self) -> bool:
        return bool(self.describe())


def filter_rows(frame: pl.DataFrame | pl.LazyFrame, filters: Filters, *, rounds: bool = True,
                channels: bool = True, populations: bool = True):
    columns = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    condition = pl.lit(True)
    if rounds and filters.rounds is not None and "round" in columns:
        condition &= pl.col("round").is_between(*filters.rounds)
    if channels and filters.channels is not None and "channel" in columns:
        condition &= pl.col("channel").cast(pl.String).is_in(list(filters.channels))
    if populations and filters.populations is not None and "population" in columns:
        condition &= pl.col("population").cast(pl.String).is_in(list(filters.populations))
    return frame.filter(condition)


# ---- options of a source (for the filters and the scenario summary) ----

@dataclass(frozen=True)
class Options:
    rounds: int
    channels: tuple[str, ...]
    populations: tuple[str, ...]
    manifest: dict = field(default_factory=dict)  # of the first run
    seeds: tuple[int, ...] = ()
    record_agents: tuple[str, ...] = ()
    wall_seconds: float = 0.0
    versions: tuple[str, ...] = ()


@st.cache_data(show_spinner=False, max_entries=64)
def _options(source: tuple[str, ...], stamp: tuple) -> Options:
    rounds, channels, populations, seeds, modes, versions, wall = 0, [], [], [], [], [], 0.0
    first: dict = {}
    for manifest_path, _ in stamp:
        status, manifest, _message = read_manifest(Path(manifest_path).parent)
        if status != "complete":
            continue
        first = first or manifest
        scenario = manifest["scenario"]
        rounds = max(rounds, int(scenario["run"]["rounds"]))
        for name in [c["name"] for c in scenario.get("channels") or []] or ["main"]:
            if name not in channels:
                channels.append(name)
        for population in scenario["populations"]:
            if population["name"] not in populations:
                populations.append(population["name"])
        seeds.append(int(manifest.get("seed", 0)))
        modes.append(scenario["run"].get("record_agents", "agent"))
        versions.append(str(manifest.get("version", "?")))
        wall += float(manifest.get("wall_seconds") or 0.0)
    if not first:
        raise InputError(Problem("", f"'{source[0]}' holds no complete bidscape run",
                                 "pick another run, group or sweep in the sidebar"))
    return Options(rounds, tuple(channels), tuple(populations), first, tuple(sorted(seeds)),
                   tuple(dict.fromkeys(modes)), wall, tuple(dict.fromkeys(versions)))


def options(entry: Entry) -> Options:
    return _options(entry.source, fingerprint(entry.source))


# ---- cached tables: bidscape.analysis with the sidebar's filters ----

def _ordered(keys: Sequence[str]) -> list[str]:
    keys = [keys] if isinstance(keys, str) else list(keys)
    for key in keys:
        if key not in KEY_ORDER:
            raise ValueError(f"cannot group by '{key}': use any of {', '.join(KEY_ORDER)}")
    return [k for k in KEY_ORDER if k in keys]


@st.cache_data(show_spinner=False, max_entries=256)
def _market(source: tuple[str, ...], stamp: tuple, filters: Filters, by: tuple[str, ...]) -> pl.DataFrame:
    return analysis.market(list(source), by=by, rounds=filters.rounds, channels=filters.channels)


@st.cache_data(show_spinner=False, max_entries=256)
def _populations(source: tuple[str, ...], stamp: tuple, filters: Filters, by: tuple[str, ...]) -> pl.DataFrame:
    return analysis.populations(list(source), by=by, rounds=filters.rounds, channels=filters.channels,
                                populations=filters.populations)


@st.cache_data(show_spinner=False, max_entries=256)
def _headline(source: tuple[str, ...], stamp: tuple, filters: Filters) -> pl.DataFrame:
    return analysis.headline(list(source), rounds=filters.rounds, channels=filters.channels,
                             populations=filters.populations)


def market_view(source: Sequence[str], filters: Filters = Filters(), by: Sequence[str] = ("round",)) -> pl.DataFrame:
    """``analysis.market`` by ``by`` (any of round, channel), filtered; population filters do not
    apply (revenue is everyone's)."""
    keys = _ordered(by)
    if "population" in keys:
        raise ValueError("the market table has no population")
    source = tuple(source)
    return _market(source, fingerprint(source), filters, tuple(keys))


def populations_view(source: Sequence[str], filters: Filters = Filters(), by: Sequence[str] = ("population",)
                     ) -> pl.DataFrame:
    """``analysis.populations`` by ``by`` (any of round, channel, population), filtered."""
    source = tuple(source)
    return _populations(source, fingerprint(source), filters, tuple(_ordered(by)))


def headline_view(source: Sequence[str], filters: Filters = Filters()) -> pl.DataFrame:
    """``analysis.headline`` (one row per run) over the filtered rows."""
    source = tuple(source)
    return _headline(source, fingerprint(source), filters)


# ---- over seeds, thinning ----

def over_seeds(frame: pl.DataFrame, keys: Sequence[str], metrics: Sequence[str], band: str = "minmax"
               ) -> pl.DataFrame:
    """Long frame: ``group``, ``keys``, ``metric``, ``mean``, ``low``, ``high``, ``n`` (runs).

    ``band="minmax"``: the band is the range over seeds; ``"se"``: mean ± 2 standard errors."""
    keys = ["group", *[k for k in keys if k != "group"]]
    metrics = [m for m in metrics if m in frame.columns]
    long = frame.select(*keys, "seed", *[pl.col(m).cast(pl.Float64) for m in metrics]).unpivot(
        index=[*keys, "seed"], on=metrics, variable_name="metric", value_name="value")
    grouped = long.group_by([*keys, "metric"]).agg(
        pl.col("value").mean().alias("mean"), pl.col("value").min().alias("min"), pl.col("value").max().alias("max"),
        pl.col("value").std().alias("std"), pl.col("value").count().alias("n"))
    se = (pl.col("std") / pl.col("n").cast(pl.Float64).sqrt()).fill_null(0.0)
    if band == "se":
        grouped = grouped.with_columns((pl.col("mean") - 2 * se).alias("low"), (pl.col("mean") + 2 * se).alias("high"))
    else:
        grouped = grouped.with_columns(pl.col("min").alias("low"), pl.col("max").alias("high"))
    return grouped.drop("min", "max", "std").sort([*keys, "metric"])


def downsample(frame: pl.DataFrame, x: str = "round", max_points: int = MAX_POINTS) -> pl.DataFrame:
    """Keep at most about ``max_points`` values of ``x`` (every k-th, and the last) so charts stay light."""
    if frame.is_empty() or x not in frame.columns:
        return frame
    values = frame.get_column(x).unique().sort()
    if values.len() <= max_points:
        return frame
    stride = math.ceil(values.len() / max_points)
    keep = pl.concat([values.gather_every(stride), values.tail(1)]).unique()
    return frame.filter(pl.col(x).is_in(keep.implode()))


def histogram(frame: pl.DataFrame, column: str, by: Optional[str] = "population", bins: int = 40,
              upper_quantile: float = 0.995) -> tuple[pl.DataFrame, int]:
    """Counts of the finite values of ``column`` in ``bins`` equal bins from the minimum to the
    ``upper_quantile`` (values above go to the last bin), per ``by``. Also the number of
    non-finite values left out (e.g. the remaining budget of unbudgeted agents)."""
    values = frame.select(*([by] if by else []), pl.col(column).cast(pl.Float64))
    finite = values.filter(pl.col(column).is_finite())
    dropped = values.height - finite.height
    if finite.is_empty():
        return pl.DataFrame(schema={**({by: pl.String} if by else {}), "low": pl.Float64, "high": pl.Float64,
                                    "count": pl.UInt32}), dropped
    low = finite.get_column(column).min()
    high = finite.get_column(column).quantile(upper_quantile)
    if high is None or high <= low:
        high = low + 1.0
    width = (high - low) / bins
    counted = finite.with_columns(((pl.col(column) - low) / width).floor().clip(0, bins - 1).cast(pl.Int64)
                                  .alias("bin")).group_by(*([by] if by else []), "bin").agg(pl.len().alias("count"))
    counted = counted.with_columns((low + pl.col("bin") * width).alias("low"),
                                   (low + (pl.col("bin") + 1) * width).alias("high"))
    return counted.sort(*([by] if by else []), "bin").drop("bin"), dropped


# ---- auction and agent samples ----

def auctions_scan(source: Sequence[str], filters: Filters = Filters()) -> pl.LazyFrame:
    """The auction sample of every run of the source, labelled by group and seed, filtered (lazy)."""
    frames = []
    for ref in analysis.runs_of(list(source)):
        scan = scan_table(ref, "auctions").with_columns(pl.col("channel").cast(pl.String))
        frames.append(scan.with_columns(pl.lit(ref.group).alias("group"), pl.lit(ref.seed, pl.Int64).alias("seed")))
    scan = pl.concat(frames, how="diagonal_relaxed")
    scan = filter_rows(scan, filters, populations=False)
    names = scan.collect_schema().names()
    return scan.select("group", "seed", *[c for c in names if c not in ("group", "seed")])


def sold_prices(source: Sequence[str], filters: Filters = Filters(), *columns: str) -> pl.LazyFrame:
    """Group, seed and price of the sold auctions of the sample (and ``columns``), priced as ``price_histogram``."""
    scan = auctions_scan(source, filters)
    per_click = _click_priced(source)
    if per_click:  # a click-priced slot pays only when clicked: the price of a click, not the 0 of a miss
        clicked = pl.col("channel").is_in(per_click) & pl.col("clicks").is_not_null()
        scan = scan.filter(~clicked | (pl.col("clicks") > 0)).with_columns(
            pl.when(clicked).then(pl.col("price") / pl.col("clicks")).otherwise(pl.col("price")).alias("price"))
    return scan.filter(pl.col("winner") >= 0).select("group", "seed", "price", *columns)


@st.cache_data(show_spinner=False, max_entries=32)
def _price_histogram(source: tuple[str, ...], stamp: tuple, filters: Filters, bins: int
                     ) -> tuple[pl.DataFrame, pl.DataFrame]:
    prices = sold_prices(source, filters).collect(engine="streaming")
    counts, _ = histogram(prices, "price", by="group", bins=bins)
    summary = prices.group_by("group").agg(
        pl.len().alias("n"), pl.col("price").mean().alias("mean"),
        *[pl.col("price").quantile(q, "linear").alias(f"q{int(q * 100):02d}") for q in (0.1, 0.5, 0.9)]).sort("group")
    return counts, summary


def _click_priced(source: Sequence[str]) -> list[str]:
    """The channels (of any run of the source) whose position auctions charge per click."""
    channels = []
    for ref in analysis.runs_of(list(source)):
        scenario = ref.run.manifest["scenario"]
        mechanism = scenario["mechanism"]
        for channel in scenario.get("channels") or [{"name": "main"}]:
            m = {**mechanism, **{k: v for k, v in (channel.get("mechanism") or {}).items() if v is not None}}
            if len(m.get("slot_ctrs") or [1]) > 1 and m.get("pricing", "click") == "click":
                channels.append(channel["name"])
    return sorted(set(channels))


def price_basis(source: Sequence[str]) -> str:
    """What ``price_histogram`` counts, in words."""
    clicks = "the cost per click of clicked slots (a click-priced slot that got no click pays nothing), elsewhere "
    return (clicks if _click_priced(source) else "") + "the price of each sold auction (or filled slot)"


def price_histogram(source: Sequence[str], filters: Filters = Filters(), bins: int = 40
                    ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Histogram of sampled winning prices (per group) and a summary (n, mean, quantiles). Slots of a
    position auction that charges per click count only when clicked, at their cost per click."""
    source = tuple(source)
    return _price_histogram(source, fingerprint(source), filters, bins)


def _check_agents_recorded(source: Sequence[str]) -> None:
    for ref in analysis.runs_of(list(source)):
        mode = ref.run.manifest["scenario"]["run"].get("record_agents", "agent")
        if mode != "agent":
            raise InputError(Problem("", f"run '{ref.run.path}' recorded agents by {mode!r} "
                                         f"(run.record_agents = {mode!r}), so there are no per-agent rows",
                                     "re-run it with --set run.record_agents=agent to see agent distributions"))


@st.cache_data(show_spinner=False, max_entries=8)
def _agent_sample(source: tuple[str, ...], stamp: tuple, round: int, n: int) -> pl.DataFrame:
    _check_agents_recorded(source)
    runs = max(1, len(analysis.runs_of(list(source))))
    return analysis.agent_sample(list(source), round=round, n=max(1, n // runs))


def agent_sample(source: Sequence[str], round: int, n: int = AGENT_SAMPLE, filters: Filters = Filters(),
                 per_agent: bool = True) -> pl.DataFrame:
    """A sample of about ``n`` agent rows of one round over all runs (``agents.arrow`` streamed, cached),
    filtered by channel and population. ``per_agent`` sums an agent's rows over channels."""
    source = tuple(source)
    sample = _agent_sample(source, fingerprint(source), int(round), int(n))
    sample = filter_rows(sample, filters, rounds=False)
    if per_agent and sample.get_column("channel").n_unique() > 1:
        sample = sample.group_by("group", "seed", "round", "agent", "population").agg(
            *[pl.col(c).sum() for c in AGENT_FLOWS if c in sample.columns],
            *[pl.col(c).first() for c in AGENT_STOCKS if c in sample.columns],
            pl.col("channel").unique().sort().str.join("+")).sort("group", "seed", "agent")
    return sample


# ---- sweeps ----

@st.cache_data(show_spinner=False, max_entries=16)
def _sweep_index(path: str, stamp: int) -> pl.DataFrame:
    return pl.read_ipc(Path(path) / "index.arrow")


def sweep_index(path: str) -> pl.DataFrame:
    index = Path(path) / "index.arrow"
    if not index.is_file():
        raise InputError(Problem("", f"'{path}' has no sweep index (index.arrow)",
                                 "run the sweep (`bidscape sweep ...`) or pick another folder"))
    return _sweep_index(str(path), index.stat().st_mtime_ns)


def swept_parameters(index: pl.DataFrame) -> list[str]:
    return [c for c in index.columns if c not in INDEX_COLUMNS]


def sweep_results(entry: Entry, filters: Filters = Filters()) -> pl.DataFrame:
    """One row per complete run of a sweep: its swept values and headline metrics."""
    index = sweep_index(entry.path)
    if not entry.members:
        raise InputError(Problem("", f"sweep '{entry.label}' has no complete run yet",
                                 "wait for it to finish, or resume it with `bidscape sweep`"))
    metrics = headline_view(entry.members, filters)
    params = swept_parameters(index)
    keyed = index.with_columns(
        pl.col("path").map_elements(lambda p: Path(p).parent.name, return_dtype=pl.String).alias("group"),
        pl.col("seed").cast(pl.Int64))
    return keyed.select("group", "seed", "variant", *params).join(metrics, on=["group", "seed"], how="inner")


# ---- comparisons ----

@st.cache_data(show_spinner=False, max_entries=16)
def _compare(baseline: tuple[str, ...], treatment: tuple[str, ...], stamp: tuple, level: float, batches: int
             ) -> dict[str, Any]:
    from bidscape.analysis.compare import compare

    source = (lambda s: s[0] if len(s) == 1 else list(s))
    result = compare(source(baseline), source(treatment), level=level, batches=batches)
    return {name: getattr(result, name, None) for name in ("table", "per_seed", "by_round", "seeds", "unpaired",
                                                           "scenario_changes", "baseline", "treatment", "warnings")}


def compare(baseline: Sequence[str], treatment: Sequence[str], level: float = 0.95, batches: int = 10
            ) -> dict[str, Any]:
    """``bidscape.analysis.compare.compare`` (cached) as a dict of the ``Comparison``'s fields:
    ``table``, ``per_seed``, ``by_round`` (frames), ``seeds``, ``unpaired``, ``scenario_changes``."""
    baseline, treatment = tuple(baseline), tuple(treatment)
    return _compare(baseline, treatment, fingerprint(baseline + treatment), float(level), int(batches))


# ---- downloads ----

def to_bytes(frame: pl.DataFrame, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "parquet":
        frame.write_parquet(buffer)
    else:
        frame.write_csv(buffer)
    return buffer.getvalue()


def clear_caches() -> None:
    st.cache_data.clear()
