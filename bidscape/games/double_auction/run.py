"""Play a market game: in memory (``simulate``) or into a run folder (``run_game``).

Unit values are drawn once per run; each period (round) starts afresh with every trader
holding all its units, and the mechanism's kernel plays the period. The competitive
equilibrium (and so the maximum surplus) is the same every period.
"""

from __future__ import annotations

import math
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import polars as pl
import pyarrow as pa

from bidscape.errors import InputError, Problem
from bidscape.interrupts import stop_on_signals
from bidscape.games.double_auction.call_market import call_round
from bidscape.games.double_auction.continuous import continuous_round
from bidscape.games.double_auction.equilibrium import Equilibrium
from bidscape.games.double_auction.market import GameMarket
from bidscape.games.double_auction.output import KIND, SCHEMAS, GameRecorder, to_batch
from bidscape.games.double_auction.scenario import GameScenario
from bidscape.outputs import run_state

Progress = Callable[[int], None]


@dataclass
class Period:
    """One period's outcome: its trades, and units traded and profit per trader."""

    round: int
    step: np.ndarray
    price: np.ndarray
    buyer: np.ndarray
    seller: np.ndarray
    buyer_value: np.ndarray
    seller_cost: np.ndarray
    units_traded: np.ndarray
    profit: np.ndarray
    market: dict[str, Any] = field(default_factory=dict)  # the market.arrow row

    @property
    def trades(self) -> int:
        return int(self.price.shape[0])


def play(scenario: GameScenario, market: Optional[GameMarket] = None) -> Iterator[Period]:
    """The periods of a game, one at a time (memory stays flat in the number of periods)."""
    market = market or GameMarket.build(scenario)
    game = scenario.market_game
    n = market.n_traders
    room = market.max_trades
    traded = np.zeros(n, np.int64)
    for r in range(scenario.run.rounds):
        out = (np.empty(room, np.int64), np.empty(room), np.empty(room, np.int64), np.empty(room, np.int64),
               np.empty(room), np.empty(room))
        if game.mechanism == "continuous":
            count = continuous_round(market.run_key, r, market.side, market.strategy, market.units, market.values,
                                     game.price_low, game.price_high, game.steps_per_round, traded, *out)
        else:
            count = call_round(market.run_key, r, market.side, market.strategy, market.units, market.values,
                               game.price_low, game.price_high, game.calls_per_round, traded, *out)
        step, price, buyer, seller, buyer_value, seller_cost = (a[:count] for a in out)
        profit = (np.bincount(buyer, weights=buyer_value - price, minlength=n)
                  + np.bincount(seller, weights=price - seller_cost, minlength=n))
        period = Period(r, step, price, buyer, seller, buyer_value, seller_cost, traded.copy(), profit)
        period.market = _market_row(period, market.equilibrium)
        yield period


def _market_row(period: Period, equilibrium: Equilibrium) -> dict[str, Any]:
    traded = period.trades > 0
    surplus = float(np.sum(period.buyer_value - period.seller_cost))
    return {
        "round": period.round,
        "trades": period.trades,
        "mean_price": float(np.mean(period.price)) if traded else None,
        "price_std": float(np.std(period.price)) if traded else None,
        "first_price": float(period.price[0]) if traded else None,
        "last_price": float(period.price[-1]) if traded else None,
        "surplus": surplus,
        "max_surplus": equilibrium.max_surplus,
        "efficiency": surplus / equilibrium.max_surplus if equilibrium.max_surplus > 0 else None,
        "equilibrium_price": _finite(equilibrium.price),
        "equilibrium_price_low": _finite(equilibrium.price_low),
        "equilibrium_price_high": _finite(equilibrium.price_high),
        "equilibrium_quantity": equilibrium.quantity,
    }


def _finite(x: float) -> Optional[float]:
    return None if math.isnan(x) else float(x)


def _trade_columns(period: Period) -> dict[str, Any]:
    return {"round": np.full(period.trades, period.round, np.int32), "step": period.step, "price": period.price,
            "buyer": period.buyer, "seller": period.seller, "buyer_value": period.buyer_value,
            "seller_cost": period.seller_cost}


def _agent_columns(period: Period, market: GameMarket) -> dict[str, Any]:
    n = market.n_traders
    return {"round": np.full(n, period.round, np.int32), "agent": np.arange(n, dtype=np.int64),
            "population": market.group, "side": market.side, "units_traded": period.units_traded.copy(),
            "profit": period.profit}


class _Totals:
    """Headline numbers gathered period by period (for the manifest and the CLI summary)."""

    def __init__(self, scenario: GameScenario, market: GameMarket):
        self.scenario = scenario
        self.market = market
        self.rows: list[dict[str, Any]] = []
        groups = len(market.group_names)
        self.units_traded = np.zeros(groups, np.int64)
        self.profit = np.zeros(groups)
        self.losing_trades = np.zeros(groups, np.int64)

    def add(self, period: Period) -> None:
        self.rows.append(period.market)
        g = self.market.group
        groups = len(self.market.group_names)
        self.units_traded += np.bincount(g, weights=period.units_traded, minlength=groups).astype(np.int64)
        self.profit += np.bincount(g, weights=period.profit, minlength=groups)
        losses = np.concatenate([period.buyer[period.buyer_value < period.price],
                                 period.seller[period.seller_cost > period.price]])
        self.losing_trades += np.bincount(g[losses], minlength=groups)

    def summary(self) -> dict[str, Any]:
        eq = self.market.equilibrium
        efficiency = np.array([row["efficiency"] for row in self.rows if row["efficiency"] is not None])
        trades = np.array([row["trades"] for row in self.rows])
        prices = [row["mean_price"] * row["trades"] for row in self.rows if row["trades"]]
        periods = len(self.rows)
        se = float(np.std(efficiency, ddof=1) / math.sqrt(efficiency.size)) if efficiency.size > 1 else None
        market = {
            "mechanism": self.scenario.market_game.mechanism,
            "rounds": periods,
            "trades": int(trades.sum()),
            "mean_trades_per_round": float(trades.mean()) if periods else 0.0,
            "mean_price": float(sum(prices) / trades.sum()) if trades.sum() else None,
            "equilibrium_price": _finite(eq.price),
            "equilibrium_price_low": _finite(eq.price_low),
            "equilibrium_price_high": _finite(eq.price_high),
            "equilibrium_quantity": eq.quantity,
            "max_surplus_per_round": eq.max_surplus,
            "surplus": float(sum(row["surplus"] for row in self.rows)),
            "mean_efficiency": float(efficiency.mean()) if efficiency.size else None,
            "efficiency_se": se,
            "min_efficiency": float(efficiency.min()) if efficiency.size else None,
        }
        groups = []
        for p, group in enumerate(self.scenario.traders):
            groups.append({
                "population": group.name,
                "side": group.side,
                "strategy": group.strategy,
                "traders": group.count,
                "units_per_round": group.count * group.units,
                "units_traded": int(self.units_traded[p]),
                "profit": float(self.profit[p]),
                "profit_per_trader_round": float(self.profit[p] / (group.count * max(periods, 1))),
                "losing_trades": int(self.losing_trades[p]),
            })
        return {"kind": KIND, "market": market, "populations": groups}


@dataclass
class GameResult:
    """A game played in memory: polars frames with the same columns as the run folder's files."""

    scenario: GameScenario
    market_data: GameMarket
    market: pl.DataFrame
    trades: pl.DataFrame
    agents: pl.DataFrame
    summary: dict[str, Any]

    @property
    def equilibrium(self) -> Equilibrium:
        return self.market_data.equilibrium

    @property
    def efficiency(self) -> np.ndarray:
        """Allocative efficiency per period (nan where the maximum surplus is 0)."""
        return self.market["efficiency"].fill_null(float("nan")).to_numpy()


def simulate(scenario: GameScenario | str | Path) -> GameResult:
    """Play the whole game in memory (no files) and return its tables as polars frames."""
    scenario = _as_scenario(scenario)
    market = GameMarket.build(scenario)
    totals = _Totals(scenario, market)
    trades, agents = [], []
    for period in play(scenario, market):
        totals.add(period)
        trades.append(_trade_columns(period))
        agents.append(_agent_columns(period, market))
    return GameResult(
        scenario=scenario,
        market_data=market,
        market=_frame("market", [{k: [v] for k, v in row.items()} for row in totals.rows], market),
        trades=_frame("trades", trades, market),
        agents=_frame("agents", agents, market),
        summary=totals.summary(),
    )


def _frame(table: str, parts: list[dict[str, Any]], market: GameMarket) -> pl.DataFrame:
    """The same columns and types as the run folder's ``TABLE.arrow``."""
    groups = pa.array(market.group_names, pa.string())
    batches = [to_batch(table, part, groups) for part in parts]
    return pl.from_arrow(pa.Table.from_batches(batches, schema=SCHEMAS[table]))


def run_game(scenario: GameScenario | str | Path, out: Optional[str | Path] = None, overwrite: bool = False,
             progress: Progress | bool | None = None) -> Path:
    """Play a game into a run folder and return its path.

    ``out=None`` writes to a new temporary folder; a non-empty folder is replaced only with
    ``overwrite=True``. ``progress`` is called with 1 after each period (``True`` shows a
    progress bar on stderr). A run that fails or is interrupted leaves ``status = "failed"``
    with the error in ``manifest.json``; the summary printed by the CLI is
    ``summary(path)`` (also under ``"summary"`` in the manifest).
    """
    from bidscape import __version__

    scenario = _as_scenario(scenario)
    if out is None:
        out = Path(tempfile.mkdtemp(prefix=f"bidscape-{scenario.run.name}-"))
    out = Path(out)
    with stop_on_signals(), GameRecorder(out, scenario.to_dict(), [g.name for g in scenario.traders], __version__,
                      overwrite) as recorder:
        market = GameMarket.build(scenario)
        totals = _Totals(scenario, market)
        with _progress(progress, scenario.run.rounds) as advance:
            for period in play(scenario, market):
                recorder.write("market", {k: [v] for k, v in period.market.items()})
                recorder.write("trades", _trade_columns(period))
                recorder.write("agents", _agent_columns(period, market))
                totals.add(period)
                recorder.end_round(period.round + 1)
                if advance is not None:
                    advance(1)
        recorder.complete(totals.summary())
    return out


def summary(folder: str | Path) -> dict[str, Any]:
    """The summary of a complete market-game run folder (``{"market": ..., "populations": [...]}``)."""
    folder = Path(folder)
    state = run_state(folder)
    if state.status in ("absent", "corrupt"):
        raise InputError(Problem("", f"'{folder}' is not a bidscape run folder ({state.reason})",
                                 "point to a folder written by `bidscape run`"))
    manifest = state.manifest
    if manifest.get("kind") != KIND:
        raise InputError(Problem("", f"'{folder}' is not a market-game run (kind {manifest.get('kind')!r})",
                                 "point to a folder written from a scenario with [market_game]"))
    if not state.complete:
        raise InputError(Problem("", f"run '{folder}' is not complete: it is {state.status} ({state.reason})",
                                 "re-run it (`bidscape run ... --overwrite`)"))
    return manifest["summary"]


def print_summary(result: dict[str, Any] | str | Path, console=None) -> None:
    """Print the CLI's two tables (market, populations) for a summary dict or a run folder."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    s = result if isinstance(result, dict) else summary(result)
    console = console or Console()
    m = s["market"]

    def number(x: Any, spec: str = ".2f") -> str:
        return "-" if x is None else format(x, spec)

    table = Table(title=f"market ({m['mechanism']})", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("periods", "trades/period", "CE qty", "mean price", "CE price", "efficiency"):
        table.add_column(column, justify="right")
    ce_price = ("-" if m["equilibrium_price"] is None else
                f"{m['equilibrium_price_low']:.4g}-{m['equilibrium_price_high']:.4g}")
    efficiency = "-" if m["mean_efficiency"] is None else (
        f"{m['mean_efficiency']:.1%}" + (f" ± {m['efficiency_se']:.1%}" if m["efficiency_se"] is not None else ""))
    table.add_row(str(m["rounds"]), number(m["mean_trades_per_round"], ".1f"), str(m["equilibrium_quantity"]),
                  number(m["mean_price"], ".4g"), ce_price, efficiency)
    console.print(table)
    groups = Table(title="traders", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("group", "side", "strategy", "traders", "traded", "profit/period", "losses"):
        groups.add_column(column, justify="left" if column in ("group", "side", "strategy") else "right")
    for g in s["populations"]:
        groups.add_row(escape(g["population"]), g["side"], g["strategy"], str(g["traders"]),
                       f"{g['units_traded'] / (g['units_per_round'] * max(m['rounds'], 1)):.0%}",
                       f"{g['profit'] / max(m['rounds'], 1):.5g}", str(g["losing_trades"]))
    console.print(groups)
    console.print("efficiency: realised / competitive-equilibrium (CE) surplus, mean over periods ± standard "
                  "error; traded: share of units sold or bought; losses: trades at a loss")


@contextmanager
def _progress(progress: Progress | bool | None, rounds: int) -> Iterator[Optional[Progress]]:
    if progress is True:
        from rich.console import Console
        from rich.progress import BarColumn, Progress as Bar, TaskProgressColumn, TextColumn, TimeElapsedColumn

        bar = Bar(TextColumn("[bold]trading"), BarColumn(), TaskProgressColumn(), TextColumn("periods"),
                  TimeElapsedColumn(), console=Console(stderr=True))
        with bar:
            task = bar.add_task("periods", total=rounds)
            yield lambda n: bar.advance(task, n)
    elif callable(progress):
        yield progress
    else:
        yield None


def _as_scenario(scenario: GameScenario | str | Path) -> GameScenario:
    return scenario if isinstance(scenario, GameScenario) else GameScenario.from_toml(scenario)

