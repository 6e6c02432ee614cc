"""A progress bar for long runs, counting auctions and showing auctions per second."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class AuctionRateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed / 1e6:6.2f} M auctions/s" if speed else "   -  M auctions/s", style="cyan")


@contextmanager
def auction_progress(total_auctions: int) -> Iterator[Callable[[int], None]]:
    progress = Progress(
        TextColumn("[bold]simulating"), BarColumn(), TaskProgressColumn(), AuctionRateColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )
    with progress:
        task = progress.add_task("auctions", total=total_auctions)
        yield lambda n: progress.advance(task, n)
