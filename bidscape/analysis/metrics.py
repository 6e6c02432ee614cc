"""Market and bidder metrics of runs, by round, channel and population.

Every function takes a *source* (a run folder, a group of runs, a sweep folder, a
``Run``, or a list of them; see ``bidscape.analysis.sources``) and returns a polars
frame with ``group`` and ``seed`` columns first, one block of rows per run.

They read the small per-round tables (``market.arrow``, ``populations.arrow``) and,
for prices, the auction sample, through lazy scans; ``agents.arrow`` is only read by
``agent_sample``, which streams it and keeps a bounded sample. So they run in the same
time and memory on a run of 1e3 agents as on one of 1e7.

Definitions (all sums over the auctions of the rows' rounds and channels):

- ``welfare``: value won (value scale x base value x clicks for position auctions).
- ``max_welfare``: welfare of the efficient allocation of the same auctions: each
  auction to the participant valuing it most, whatever the bids and budgets
  (position auctions: expected clicks x value, ranked by quality x value).
- ``efficiency = welfare / max_welfare``; ``price_of_anarchy = max_welfare / welfare``
  (against the efficient allocation; 1 is the best).
- ``liquid_welfare``: sum over agents of min(budget, value won so far): value a budgeted
  bidder could actually pay for (Dobzinski and Paes Leme, 2014).
- ``sold_share``: filled slot impressions over slot impressions offered.
- ``mean_price``: revenue per filled slot impression.
- ``budget_utilisation``: spend over budget, of the populations that have budgets.
- ``return_on_spend``: value over spend. ``win_rate``: wins over expected auctions entered.
- ``regret``: mean regret against the best fixed multiplier in hindsight, where the
  strategy records it (the value after the last round of the rows).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import polars as pl

from bidscape.analysis.sources import RunRef, Source, runs_of
from bidscape.errors import InputError, Problem
from bidscape.outputs.columns import AGENT_COLUMNS, POPULATION_FLOWS, POPULATION_STOCKS
from bidscape.outputs.summary import MARKET_RATIOS, POPULATION_RATIOS

MARKET_SUMS = ("auctions", "slots_offered", "sold", "revenue", "welfare", "max_welfare")
# the agent columns every run fills (clicks: position auctions only; regret: strategies that record it)
AGENT_SAMPLE_COLUMNS = tuple(c for c in AGENT_COLUMNS if c not in ("clicks", "regret"))
STREAMING = "streaming"


def _scan(ref: RunRef, table: str) -> pl.LazyFrame:
    path = ref.run.path / f"{table}.arrow"
    if not path.is_file():
        raise InputError(Problem("", f"run '{ref.run.path}' has no {table}.arrow (written by an older bidscape?)",
                                 "re-run the scenario with this version"))
    return pl.scan_ipc(path)


def _labelled(ref: RunRef, frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(pl.lit(ref.group).alias("group"), pl.lit(ref.seed, pl.Int64).alias("seed"))


def _collect(refs: list[RunRef], build, order: Sequence[str], engine: str = STREAMING) -> pl.DataFrame:
    """``engine="in-memory"`` for the small per-round tables (market): the streaming engine adds a
    group's partial float sums in whatever order its threads finish, so two identical runs could
    differ in the last bit."""
    frames = [_labelled(ref, build(ref)) for ref in refs]
    combined = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    keys = ["group", "seed", *order]
    frame = combined.sort(keys).collect(engine=engine)
    return frame.select(keys + [c for c in frame.columns if c not in keys])


def _by(by: Iterable[str], allowed: tuple[str, ...]) -> list[str]:
    by = [by] if isinstance(by, str) else list(by)
    for key in by:
        if key not in allowed:
            raise ValueError(f"cannot group by '{key}': use any of {', '.join(allowed)}")
    return by


def ratio(numerator: str, denominator: str) -> pl.Expr:
    """``numerator / denominator``, null where the denominator is not positive."""
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) / pl.col(denominator)).otherwise(None)


def _grouped(frame: pl.LazyFrame, keys: list[str]):
    """``group_by(keys)``, or one group of everything when there are no keys (a column ``_all``, dropped after)."""
    return frame.group_by(keys) if keys else frame.group_by(pl.lit(0).alias("_all"))


def with_ratios(frame: pl.LazyFrame, ratios: dict[str, tuple[str, str]]) -> pl.LazyFrame:
    return frame.with_columns(*[ratio(a, b).alias(name) for name, (a, b) in ratios.items()])


def where(frame: pl.LazyFrame, rounds: Optional[tuple[int, int]] = None, channels: Optional[Sequence[str]] = None,
          populations: Optional[Sequence[str]] = None) -> pl.LazyFrame:
    """Rows in the ``rounds`` range (inclusive) and of the given channels and populations (``None``: all)."""
    if rounds is not None:
        frame = frame.filter(pl.col("round").is_between(*rounds))
    if channels is not None:
        frame = frame.filter(pl.col("channel").cast(pl.String).is_in(list(channels)))
    if populations is not None:
        frame = frame.filter(pl.col("population").cast(pl.String).is_in(list(populations)))
    return frame


def market(source: Source, by: Iterable[str] = ("round",), *, rounds: Optional[tuple[int, int]] = None,
           channels: Optional[Sequence[str]] = None) -> pl.DataFrame:
    """Revenue, welfare, efficiency, price of anarchy, sold share and prices, by ``round`` and/or ``channel``.

    ``by=()`` gives one row per run. ``reserve`` is the mean reserve in force and
    ``mechanism`` the mechanisms used, joined with ``+`` when they changed. ``rounds``
    (first, last) and ``channels`` keep only those rows.
    """
    keys = _by(by, ("round", "channel"))

    def build(ref: RunRef) -> pl.LazyFrame:
        rows = where(_scan(ref, "market"), rounds, channels).with_columns(
            (pl.col("auctions") * pl.col("slot_impressions").list.len()).alias("slots_offered"))
        aggregated = _grouped(rows, keys).agg(
            *[pl.col(c).sum() for c in MARKET_SUMS],
            pl.col("reserve").mean(),
            pl.col("mechanism").unique(maintain_order=True).str.join("+"),
        )
        return with_ratios(aggregated.drop("_all", strict=False), MARKET_RATIOS)

    return _collect(runs_of(source), build, keys, engine="in-memory")


def populations(source: Source, by: Iterable[str] = ("population",), *, rounds: Optional[tuple[int, int]] = None,
                channels: Optional[Sequence[str]] = None, populations: Optional[Sequence[str]] = None
                ) -> pl.DataFrame:
    """Spend, wins, value, utility, budget use, return on spend, win rate, multipliers, regret and
    liquid welfare, by any of ``round``, ``channel`` and ``population``.

    Flows (spend, wins, ...) are summed over the rows' rounds and channels. Stocks of a
    population (budget, budget left, liquid welfare, regret) are taken after the last
    round of the rows, the multiplier is the mean over the rows' rounds; they do not
    depend on the channel. With ``round`` in ``by``, ``cumulative_spend`` is the
    spend up to and including the round (spend against budget), counted from the first
    round of the run even when ``rounds`` starts later. ``rounds`` (first, last),
    ``channels`` and ``populations`` keep only those rows.
    """
    keys = _by(by, ("round", "channel", "population"))

    def build(ref: RunRef) -> pl.LazyFrame:
        rows = where(_scan(ref, "populations"), None, channels, populations).with_columns(
            pl.col("population").cast(pl.String), pl.col("channel").cast(pl.String))
        chosen = where(rows, rounds)
        flows = _grouped(rows if "round" in keys else chosen, keys).agg(
            *[pl.col(c).sum() for c in POPULATION_FLOWS],
            pl.col("spend").filter(pl.col("budget").is_not_null()).sum().alias("budgeted_spend"))
        if "round" in keys:  # cumulative spend from the first round, then the rounds asked for
            others = [k for k in keys if k != "round"]
            cumulative = pl.col("spend").cum_sum()
            flows = where(flows.sort("round").with_columns(
                (cumulative.over(others) if others else cumulative).alias("cumulative_spend")), rounds)
        # stocks: one row per population and round (channels repeat them), then per key
        per_round = chosen.group_by("round", "population").agg(
            pl.col("agents", *POPULATION_STOCKS).first())
        stock_keys = [k for k in keys if k != "channel"]
        last = per_round.filter(pl.col("round") == pl.col("round").max().over("population")) \
            if "round" not in stock_keys else per_round
        stocks = _stock_totals(last, per_round, stock_keys)
        frame = (flows.join(stocks, on=stock_keys, how="left") if stock_keys
                 else flows.drop("_all", strict=False).join(stocks, how="cross"))
        return with_ratios(frame, POPULATION_RATIOS)

    return _collect(runs_of(source), build, keys)


_population_metrics = populations  # for headline, whose `populations` argument hides the function


def _stock_totals(last: pl.LazyFrame, per_round: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """Population stocks summed (or agent-weighted) over the populations inside each key."""
    grouped = _grouped(last, keys)
    stocks = grouped.agg(
        pl.col("agents").sum(),
        pl.col("budget").sum().alias("budget"),
        pl.col("budget").is_not_null().any().alias("_budgeted"),
        pl.col("budget_remaining").sum(),
        pl.col("liquid_welfare").sum(),
        pl.when(pl.col("regret").is_not_null().any())
        .then((pl.col("regret") * pl.col("agents")).sum()
              / pl.col("agents").filter(pl.col("regret").is_not_null()).sum())
        .otherwise(None).alias("regret"),
    ).with_columns(pl.when(pl.col("_budgeted")).then(pl.col("budget")).otherwise(None).alias("budget"),
                   pl.when(pl.col("_budgeted")).then(pl.col("budget_remaining")).otherwise(None)
                   .alias("budget_remaining")).drop("_budgeted", "_all", strict=False)
    mean = _grouped(per_round, keys).agg(
        ((pl.col("multiplier") * pl.col("agents")).sum() / pl.col("agents").sum()).alias("multiplier"),
    ).drop("_all", strict=False)
    return stocks.join(mean, on=keys, how="left") if keys else stocks.join(mean, how="cross")


HEADLINE = ("revenue", "welfare", "max_welfare", "efficiency", "price_of_anarchy", "liquid_welfare", "sold_share",
            "mean_price", "bidder_utility", "budget_utilisation", "return_on_spend", "win_rate", "regret")


def headline(source: Source, *, rounds: Optional[tuple[int, int]] = None, channels: Optional[Sequence[str]] = None,
             populations: Optional[Sequence[str]] = None) -> pl.DataFrame:
    """One row per run with the headline metrics (``HEADLINE``) of the whole run (or the rows kept
    by ``rounds``, ``channels`` and ``populations``; the market's metrics are everyone's)."""
    m = market(source, by=(), rounds=rounds, channels=channels)
    p = _population_metrics(source, by=(), rounds=rounds, channels=channels, populations=populations)
    p = p.rename({"utility": "bidder_utility"}).select(
        "group", "seed", "liquid_welfare", "bidder_utility", "budget_utilisation", "return_on_spend", "win_rate",
        "regret")
    joined = m.join(p, on=["group", "seed"], how="left")
    return joined.select("group", "seed", *HEADLINE)


def prices(source: Source, by: Iterable[str] = (), quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9)
           ) -> pl.DataFrame:
    """Mean and quantiles of the price paid per filled slot, from the auction sample.

    ``by`` any of ``round``, ``channel``, ``slot``. The sample's size is in ``n``; its
    rate is the scenario's ``run.auction_sample_rate``.
    """
    keys = _by(by, ("round", "channel", "slot"))

    def build(ref: RunRef) -> pl.LazyFrame:
        sold = _scan(ref, "auctions").filter(pl.col("winner") >= 0).with_columns(pl.col("channel").cast(pl.String))
        grouped = _grouped(sold, keys)
        return grouped.agg(pl.len().alias("n"), pl.col("price").mean().alias("mean"),
                           *[pl.col("price").quantile(q, "linear").alias(f"q{round(q * 100):02d}")
                             for q in quantiles]).drop("_all", strict=False)

    return _collect(runs_of(source), build, keys)


def price_histogram(source: Source, bins: int = 40, upper: Optional[float] = None) -> pl.DataFrame:
    """Counts of sampled winning prices in ``bins`` equal bins on ``[0, upper]`` (default: the 99.5% quantile)."""
    refs = runs_of(source)
    sold = pl.concat([_labelled(r, _scan(r, "auctions").filter(pl.col("winner") >= 0).select("price"))
                      for r in refs])
    if upper is None:
        upper = sold.select(pl.col("price").quantile(0.995)).collect(engine=STREAMING).item() or 1.0
    width = upper / bins
    counted = (sold.with_columns((pl.col("price") / width).floor().clip(0, bins - 1).cast(pl.Int64).alias("bin"))
               .group_by("group", "seed", "bin").agg(pl.len().alias("count"))
               .with_columns((pl.col("bin") * width).alias("low"), ((pl.col("bin") + 1) * width).alias("high")))
    return counted.sort("group", "seed", "bin").collect(engine=STREAMING)


def agent_sample(source: Source, columns: Sequence[str] = AGENT_SAMPLE_COLUMNS, round: Optional[int] = None, n: int = 100_000, seed: int = 0) -> pl.DataFrame:
    """A uniform sample of about ``n`` agents' rows of one round (default: the last), for distributions.

    Reads only the record batches of that round (``agents.arrow`` is written in batches
    of at most ``AGENT_BATCH_ROWS`` rows, in round order, so they are found by bisection),
    one batch at a time: memory is bounded by the sample plus one batch, never the file.
    An agent is kept when a hash of (its id, ``seed``) falls below ``n / agents``, so the
    sample is the same agents in every round and run.
    """
    frames = []
    for ref in runs_of(source):
        path = ref.run.path / "agents.arrow"
        if not path.is_file():
            raise InputError(Problem("", f"run '{ref.run.path}' has no agents.arrow",
                                     "re-run the scenario with this version"))
        chosen = ref.run.manifest["scenario"]["run"]["rounds"] - 1 if round is None else round
        agents = sum(p["size"] for p in ref.run.manifest["scenario"]["populations"])
        keep = min(1.0, n / max(agents, 1))
        wanted = ["round", "agent", "population", "channel", *columns]
        parts = [pl.from_arrow(batch.select(wanted)) for batch in _round_batches(path, chosen, keep, seed)]
        frame = pl.concat(parts) if parts else pl.from_arrow(_empty(path).select(wanted))
        frames.append(_labelled(ref, frame.lazy().with_columns(pl.col("population").cast(pl.String),
                                                               pl.col("channel").cast(pl.String))))
    frame = pl.concat(frames, how="diagonal_relaxed").collect()
    return frame.select("group", "seed", *[c for c in frame.columns if c not in ("group", "seed")])


def _round_batches(path, chosen: int, keep: float, seed: int):
    """The rows of round ``chosen`` whose agent hash is below ``keep``, batch by batch."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with pa.memory_map(str(path)) as source:
        reader = ipc.open_file(source)

        def round_of(i: int) -> int:
            return reader.get_batch(i).column("round")[0].as_py()

        low, high = 0, reader.num_record_batches
        while low < high:  # the first batch of the round (batches are in round order)
            middle = (low + high) // 2
            if round_of(middle) < chosen:
                low = middle + 1
            else:
                high = middle
        for i in range(low, reader.num_record_batches):
            batch = reader.get_batch(i)
            rounds = batch.column("round").to_numpy()
            if rounds[0] != chosen:
                break
            mask = rounds == chosen
            if keep < 1.0:
                agents = batch.column("agent").to_numpy(zero_copy_only=False)
                mask &= _unit_hash(agents, seed) < keep
            yield batch.filter(pa.array(mask))


def _unit_hash(values, seed: int):
    """splitmix64 of (value, seed) mapped to [0, 1): stable across versions and platforms."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _empty(path):
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with pa.memory_map(str(path)) as source:
        return ipc.open_file(source).schema.empty_table()
