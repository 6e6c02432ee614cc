"""One type per column name across every table a run folder can hold, so tables join
(issue "Trust II", item 9), and unsold auctions have no winner value."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import polars as pl
import pytest

from bidscape import Scenario
from bidscape.api import run
from bidscape.llm.params import LLM_CALLS_SCHEMA
from bidscape.games import GAMES
from bidscape.outputs.columns import AUCTIONS_SCHEMA, MARKET_SCHEMA, POPULATIONS_SCHEMA, agents_schema

KEYS = ("round", "channel", "population", "agent")


def all_schemas():
    return {"market": MARKET_SCHEMA, "populations": POPULATIONS_SCHEMA, "agents": agents_schema(),
            "auctions": AUCTIONS_SCHEMA, "llm_calls": LLM_CALLS_SCHEMA,
            **{f"{game.kind}.{name}": schema for _, game in GAMES.items() for name, schema in game.schemas().items()}}


def test_each_column_name_has_one_type_in_every_file():
    types = defaultdict(dict)
    for table, schema in all_schemas().items():
        for field in schema:
            types[field.name][table] = field.type
    clashes = {name: {t: str(k) for t, k in seen.items()} for name, seen in types.items() if len(set(seen.values())) > 1}
    assert clashes == {}


@pytest.mark.parametrize("mechanism", ["second_price", "gsp"])
def test_every_pair_of_tables_joins_on_its_shared_keys(mechanism, write_scenario, tmp_path):
    overrides = [f"mechanism.type={mechanism}"] + (["mechanism.slot_ctrs=[0.5, 0.3]"] if mechanism == "gsp" else [])
    result = run(Scenario.from_toml(write_scenario(), overrides), out=tmp_path / "out")
    tables = {name: result.scan(name).collect() for name in ("market", "populations", "agents", "auctions")}
    for (a, left), (b, right) in combinations(tables.items(), 2):
        keys = [k for k in KEYS if k in left.columns and k in right.columns]
        joined = left.join(right, on=keys, how="inner", suffix="_right")
        assert joined.height > 0, (a, b, keys)
    auctions = tables["auctions"]
    unsold = auctions.filter(pl.col("winner") < 0)
    assert unsold.height > 0 and unsold["winner_value"].null_count() == unsold.height
    assert auctions.filter(pl.col("winner") >= 0)["winner_value"].null_count() == 0


def test_a_strategy_table_with_names_from_several_populations_in_one_file(tmp_path):
    """Each batch encodes names against the run's one dictionary (an Arrow file allows no other)."""
    from bidscape.outputs.recorder import Recorder

    scenario = {"run": {"seed": 1}}
    with Recorder(tmp_path / "out", scenario, ["a", "b"], "test", extra_tables={"llm_calls": LLM_CALLS_SCHEMA}) as rec:
        for population in ("b", "a", "b"):
            rec.write_table("llm_calls", {field.name: [population] if field.name == "population" else [None]
                                          for field in LLM_CALLS_SCHEMA})
        rec.complete({})
    calls = pl.read_ipc(tmp_path / "out" / "llm_calls.arrow")
    assert calls["population"].cast(pl.String).to_list() == ["b", "a", "b"]
