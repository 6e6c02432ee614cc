"""What ``bidscape run`` prints when a run completes: its summary as tables."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape  # user text (names, paths, bad values) is not markup
from rich.table import Table

console = Console()


def print_summary(summary: dict[str, Any]) -> None:
    m = summary["market"]
    market = Table(title="market", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("auctions", "sold", "revenue", "welfare", "efficiency", "mean price"):
        market.add_column(column, justify="right")
    efficiency = m.get("efficiency")
    market.add_row(compact(m["auctions"]), f"{m['sold_share']:.1%}", compact(m["revenue"]),
                   compact(m["welfare"]), "-" if efficiency is None else f"{efficiency:.1%}",
                   "-" if m["mean_price"] is None else f"{m['mean_price']:.4f}")
    console.print(market)
    populations = Table(title="populations", box=box.SIMPLE_HEAD, header_style="bold")
    conversions = "conversions" in summary["populations"][0]  # some population values conversions
    for column in ("population", "strategy", "agents", "spend", "budget used", "wins", "utility", "multiplier") + (
            ("conversions", "cost/conv") if conversions else ()):
        populations.add_column(column, justify="left" if column in ("population", "strategy") else "right")
    for p in summary["populations"]:
        used = "-" if p["budget_utilisation"] is None else f"{p['budget_utilisation']:.1%}"
        populations.add_row(escape(p["population"]), p["strategy"], compact(p["agents"]), compact(p["spend"]), used,
                            compact(p["wins"]), compact(p["utility"]),
                            f"{p['mean_multiplier_first_round']:.2f}->{p['mean_multiplier_last_round']:.2f}",
                            *(_conversions(p) if conversions else ()))
    console.print(populations)
    if summary.get("segments"):
        segments = Table(title="segments", box=box.SIMPLE_HEAD, header_style="bold")
        for column in ("segment", "auctions", "sold", "revenue", "efficiency", "mean price"):
            segments.add_column(column, justify="left" if column == "segment" else "right")
        for row in summary["segments"]:
            segments.add_row(escape(row["segment"]), compact(row["auctions"]),
                             f"{row['sold'] / row['auctions']:.1%}" if row["auctions"] else "-",
                             compact(row["revenue"]),
                             "-" if row["efficiency"] is None else f"{row['efficiency']:.1%}",
                             "-" if row["mean_price"] is None else f"{row['mean_price']:.4f}")
        console.print(segments)
    console.print("efficiency: welfare / welfare of the efficient allocation; multiplier: mean bid multiplier in "
                  "the first and the last round; budget used: spend / budget"
                  + ("; conversions: expected (clicks or wins x conversion rate); cost/conv: spend / conversions"
                     if conversions else ""))


def _conversions(population: dict[str, Any]) -> tuple[str, str]:
    """Expected conversions and spend per conversion; "-" for a population that values no conversions."""
    conversions, cost = population["conversions"], population["cost_per_conversion"]
    return ("-" if conversions is None else compact(conversions), "-" if cost is None else f"{cost:.4g}")


def compact(number: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= size:
            return f"{number / size:.2f}{suffix}"
    return f"{number:.4g}" if isinstance(number, float) else str(number)
