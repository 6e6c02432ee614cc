"""A market game's run folder, following the recorder's contract (``outputs/recorder.py``).

``manifest.json`` says ``"status": "running"`` while the run goes, ``"failed"`` with the
error if it stops early (Ctrl-C included), ``"complete"`` only after every file is closed;
``"kind": "market_game"`` tells it from an auction run. The tables are zstd Arrow IPC
files written one record batch per period:

* ``market.arrow``: one row per period (``MARKET_SCHEMA``)
* ``trades.arrow``: the price path, one row per trade (``TRADES_SCHEMA``)
* ``agents.arrow``: one row per trader per period (``agents_schema``)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from bidscape.outputs.folder import RunFolder

KIND = "market_game"

MARKET_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("trades", pa.int64()),  # volume: units traded this period
    ("mean_price", pa.float64()),  # null when nothing traded
    ("price_std", pa.float64()),  # population standard deviation (ddof = 0)
    ("first_price", pa.float64()),
    ("last_price", pa.float64()),
    ("surplus", pa.float64()),  # realised: sum over trades of buyer value - seller cost
    ("max_surplus", pa.float64()),  # competitive equilibrium surplus
    ("efficiency", pa.float64()),  # surplus / max_surplus (null when max_surplus = 0)
    ("equilibrium_price", pa.float64()),  # midpoint of the equilibrium price interval
    ("equilibrium_price_low", pa.float64()),
    ("equilibrium_price_high", pa.float64()),
    ("equilibrium_quantity", pa.int64()),
])

TRADES_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("step", pa.int64()),  # CDA: order submission index; call market: index of the call
    ("price", pa.float64()),
    ("buyer", pa.int64()),
    ("seller", pa.int64()),
    ("buyer_value", pa.float64()),  # value of the unit the buyer redeems
    ("seller_cost", pa.float64()),
])

SIDE_DICTIONARY = pa.array(["buy", "sell"], pa.string())


def agents_schema() -> pa.Schema:
    return pa.schema([
        ("round", pa.int32()),
        ("agent", pa.int64()),
        ("population", pa.dictionary(pa.int16(), pa.string())),  # the [[traders]] group name
        ("side", pa.dictionary(pa.int8(), pa.string())),
        ("units_traded", pa.int64()),
        ("profit", pa.float64()),  # buyers: value - price; sellers: price - cost; summed over trades
    ])


SCHEMAS = {"market": MARKET_SCHEMA, "trades": TRADES_SCHEMA, "agents": agents_schema()}


def to_batch(table: str, columns: dict[str, Any], group_names: pa.Array) -> pa.RecordBatch:
    """One record batch of ``table``; agents' ``population`` and ``side`` come as integer codes."""
    if table == "agents":
        columns = dict(columns)
        columns["population"] = pa.DictionaryArray.from_arrays(pa.array(columns["population"], pa.int16()),
                                                               group_names)
        columns["side"] = pa.DictionaryArray.from_arrays(pa.array(columns["side"], pa.int8()), SIDE_DICTIONARY)
    return pa.record_batch(columns, schema=SCHEMAS[table])


class GameRecorder(RunFolder):
    """A market game's folder: market, trades and agents tables, ``"kind": "market_game"``."""

    def __init__(self, out: Path, scenario: dict[str, Any], group_names: list[str], version: str,
                 overwrite: bool = False):
        super().__init__(out, SCHEMAS, scenario, version, overwrite, kind=KIND)
        self._groups = pa.array(group_names, pa.string())

    def write(self, table: str, columns: dict[str, Any]) -> None:
        self.write_batch(table, to_batch(table, columns, self._groups))
