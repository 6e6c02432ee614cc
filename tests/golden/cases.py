"""The scenarios of the golden test: every example scenario, shrunk, plus a few that switch on
features the examples leave off (all-pay and third price, personal reserves, every agent
bidding, capped click probabilities, throttling).

``python -m tests.golden.cases`` (from the repository root) rewrites ``digests.json`` from
the current code: do it only for a deliberate change of outputs, and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DIGESTS = Path(__file__).with_name("digests.json")
SKIP_FILES = ("rl.toml",)  # needs a trained policy file; the RL tests cover it
MAX_AGENTS, ROUNDS, AUCTIONS = 600, 3, 6_000


def shrink(raw: dict[str, Any], tmp: Path) -> dict[str, Any]:
    run = raw["run"]
    run["rounds"] = min(int(run.get("rounds", ROUNDS)), ROUNDS)
    run["auctions_per_round"] = min(int(run.get("auctions_per_round", AUCTIONS)), AUCTIONS)
    run["record_agents"] = "agent"
    run["auction_sample_rate"] = 0.05
    for population in raw["populations"]:
        population["size"] = min(int(population["size"]), MAX_AGENTS)
        params = population.get("params", {})
        if population.get("strategy") == "llm_proxy":
            params.update(mode="replay", cache_dir=str(tmp / "no-cache"))
    raw.pop("events", None)  # events name rounds the shrunk run may not reach
    return raw


def _population(name: str, strategy: str = "truthful", size: int = 400, **extra: Any) -> dict[str, Any]:
    return {"name": name, "size": size, "strategy": strategy,
            "values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5},
            "budget": {"dist": "uniform", "low": 2.0, "high": 8.0}, **extra}


def _extra(name: str, mechanism: dict[str, Any], populations: list[dict[str, Any]],
           bidders: Any = 5) -> dict[str, Any]:
    return {"run": {"name": name, "seed": 5, "rounds": ROUNDS, "auctions_per_round": 3_000,
                    "record_agents": "agent", "auction_sample_rate": 0.1},
            "mechanism": mechanism, "market": {"bidders_per_auction": bidders}, "populations": populations}


EXTRA = {
    "all_pay": _extra("all_pay", {"type": "all_pay", "reserve": 0.2},
                      [_population("a", "constant_shade", params={"multiplier": 0.4}), _population("b")]),
    "third_price_reserves": _extra("third_price_reserves", {"type": "third_price", "reserve": 0.1}, [
        _population("a", reserve={"dist": "uniform", "low": 0.0, "high": 1.5}), _population("b", "adaptive_pacing")]),
    "everyone_second_price": _extra("everyone_second_price", {"type": "second_price", "reserve": 0.3},
                                    [_population("a", size=40), _population("b", "adaptive_pacing", size=30)],
                                    bidders="all"),
    "capped_vcg": _extra("capped_vcg", {"type": "vcg", "reserve": 0.1, "slot_ctrs": [0.5, 0.3, 0.1]}, [
        _population("a", quality={"dist": "uniform", "low": 0.5, "high": 3.0}), _population("b", "adaptive_pacing")]),
    "gsp_everyone": _extra("gsp_everyone", {"type": "gsp", "reserve": 0.1, "slot_ctrs": [0.3, 0.2]},
                           [_population("a", size=30), _population("b", "adaptive_pacing", size=30)], bidders="all"),
    "throttled_first_price": _extra("throttled_first_price", {"type": "first_price"}, [
        _population("a", "throttling"), _population("b", "hedge", params={"low": 0.5, "high": 1.0, "arms": 6})]),
}


def cases(tmp: Path) -> dict[str, dict[str, Any]]:
    """Name -> raw scenario dict."""
    from bidscape.scenario import read_toml

    found = {}
    for path in sorted((ROOT / "data" / "scenarios").glob("*.toml")):
        if path.name in SKIP_FILES:
            continue
        raw = read_toml(path)[0]
        if "populations" not in raw:  # a market game, not an auction run
            continue
        found[path.stem] = shrink(raw, tmp)
    found.update(EXTRA)
    return found


WALL_CLOCK = {"llm_calls.arrow": "latency_ms"}  # columns that time the run: left out of the digest


def digest(path: Path) -> str:
    if path.name not in WALL_CLOCK:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    import pyarrow as pa
    import pyarrow.ipc as ipc

    table = ipc.open_file(path).read_all().drop_columns([WALL_CLOCK[path.name]])
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def digests_of(folder: Path) -> dict[str, str]:
    return {path.name: digest(path) for path in sorted(folder.glob("*.arrow"))}


def play(name: str, raw: dict[str, Any], tmp: Path, threads: int = 1) -> dict[str, str]:
    from bidscape import api
    from bidscape.scenario import Scenario

    out = tmp / name
    api.run(Scenario.from_dict(raw, source=name), out, overwrite=True, threads=threads)
    return digests_of(out)


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        everything = {name: play(name, raw, Path(tmp)) for name, raw in cases(Path(tmp)).items()}
    DIGESTS.write_text(json.dumps(everything, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGESTS} ({len(everything)} scenarios)", file=sys.stderr)


if __name__ == "__main__":
    main()
