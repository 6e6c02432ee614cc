"""LLM-proxy bidders against a local chat-completions server: one call per archetype per
round, fallbacks on every kind of failure, retries, the replay cache, offline replay."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import bidscape
from bidscape import InputError, Scenario
from bidscape.bidders import STRATEGIES
from bidscape.bidders.llm_proxy import LLM_CALLS_SCHEMA, LlmProxy, archetypes
from bidscape.loop.simulation import Simulation
from bidscape.llm.cache import ReplayCache, cache_request
from bidscape.llm.client import BackendError, ChatClient
from bidscape.llm.prompts import InvalidReply, build_messages, parse_reply
from bidscape.llm.testing import ChatServer, Reply, constant_reply, fail_first, pacing_reply, prompt_fields

if "llm_proxy" not in STRATEGIES:  # until bidscape/bidders/__init__.py registers it
    STRATEGIES.register("llm_proxy", LlmProxy)

SIZE = 40  # llm_proxy agents; value_scale and budget both vary, so 2 x 2 bins give 4 archetypes
ARCHETYPES = 4
FAST = {"retries": 0, "backoff_s": 0.001, "timeout_s": 5.0}


def scenario(params: dict, rounds: int = 3, auctions: int = 2_000, experimental: bool = True) -> Scenario:
    return Scenario.from_dict({
        "run": {"name": "llm", "seed": 7, "rounds": rounds, "auctions_per_round": auctions,
                "record_agents": "agent", "auction_sample_rate": 0.05, "experimental": experimental},
        "mechanism": {"type": "second_price", "reserve": 0.05},
        "market": {"bidders_per_auction": 4},
        "populations": [
            {"name": "proxy", "size": SIZE, "strategy": "llm_proxy", "params": params,
             "values": {"dist": "uniform", "low": 0.0, "high": 1.0},
             "value_scale": {"dist": "uniform", "low": 0.8, "high": 1.2},
             "budget": {"dist": "uniform", "low": 5.0, "high": 15.0}},
            {"name": "rest", "size": 20, "strategy": "truthful",
             "values": {"dist": "uniform", "low": 0.0, "high": 1.0}},
        ],
    })


class Played:
    """A simulation played to the end with the proxy's ``llm_calls`` rows captured."""

    def __init__(self, params: dict, rounds: int = 3, **kwargs):
        self.simulation = Simulation(scenario(params, rounds, **kwargs))
        self.strategy: LlmProxy = self.simulation.strategies[0]
        batches: list[pa.Table] = []
        self.strategy._emit = lambda table, columns: batches.append(pa.table(columns, schema=LLM_CALLS_SCHEMA))
        self.multipliers = []  # per round, the proxy agents' multipliers
        proxy = self.simulation.state.population_slice(0)
        try:
            while not self.simulation.finished:
                self.simulation.step()
                self.multipliers.append(self.simulation.state.multiplier[proxy].copy())
        finally:
            self.strategy.close()
        self.calls = pa.concat_tables(batches).to_pylist()

    def statuses(self) -> list[str]:
        return [row["status"] for row in self.calls]


@pytest.fixture(autouse=True)
def no_llm_environment(monkeypatch):
    """The user's key and endpoint variables must not change what these tests see."""
    for name in ("BIDSCAPE_LLM_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with ChatServer(pacing_reply) as running:
        yield running


def by_archetype(body: dict, n: int) -> str:
    """A multiplier that says which archetype and round asked: 0.5 + 0.1 a + 0.01 r."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    f = prompt_fields(user)
    a = int(f["archetype"].split(" of ")[0]) - 1
    r = int(f["round"].split(" of ")[0]) - 1
    return json.dumps({"multiplier": 0.5 + 0.1 * a + 0.01 * r, "reason": f"archetype {a} round {r}"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- params and the strategy's declarations ----

def test_declarations_and_params():
    assert LlmProxy.experimental is True
    assert LlmProxy.tables == {"llm_calls": LLM_CALLS_SCHEMA}
    assert all(field.description for field in LlmProxy.Params.model_fields.values())
    with pytest.raises(InputError, match="needs a cache"):
        scenario({"mode": "replay"})
    with pytest.raises(InputError, match="min_multiplier"):
        scenario({"min_multiplier": 1.5, "max_multiplier": 1.0})
    with pytest.raises(InputError, match="unknown key 'retry'"):
        scenario({"retry": 2})
    with pytest.raises(InputError, match="bins"):
        scenario({"bins": {"quality": 2}})


def test_experimental_strategy_needs_run_experimental():
    with pytest.raises(InputError, match="experimental"):
        scenario({}, experimental=False)


def test_archetypes_are_quantile_bins_fixed_at_the_start():
    sim = Simulation(scenario({"mode": "replay", "cache_dir": "unused"}))
    view = sim.strategies[0].agents
    archetype_of, labels = archetypes(view, {"value_scale": 2, "budget": 2})
    assert len(labels) == ARCHETYPES and np.bincount(archetype_of).sum() == SIZE
    high_value = archetype_of >= 2  # value_scale bin is the major index
    assert high_value.sum() == SIZE // 2
    assert view.value_scale[high_value].min() >= view.value_scale[~high_value].max()
    high_budget = archetype_of % 2 == 1
    assert high_budget.sum() == SIZE // 2
    assert view.budget[high_budget].min() >= view.budget[~high_budget].max()
    assert "value_scale" in labels[0] and "budget" in labels[0]
    one, single = archetypes(view, {"value_scale": 1, "budget": 1})
    assert single == ["all agents"] and not one.any()


def test_constant_attributes_and_unlimited_budgets_make_one_archetype():
    raw = scenario({"mode": "replay", "cache_dir": "unused"}).to_dict()
    raw["populations"][0]["budget"] = None
    raw["populations"][0]["value_scale"] = {"dist": "constant", "value": 1.0}
    simulation = Simulation(Scenario.from_dict(raw))
    proxy = simulation.strategies[0]
    assert proxy.labels == ["all agents"] and proxy.members.tolist() == [SIZE]
    prompt = "\n".join(m["content"] for m in build_messages("s", proxy.situation(0, 0)))
    assert "budget left per member: unlimited\n" in prompt and "budget left share: n/a" in prompt


# ---- the happy path: the real client against the local server ----

def test_one_call_per_archetype_per_round_applied_to_every_member():
    with ChatServer(by_archetype) as server:
        played = Played({"base_url": server.url, **FAST}, rounds=3)
        requests = list(server.requests)
    assert len(requests) == 3 * ARCHETYPES  # never per agent
    asked = sorted((prompt_fields(r.user_prompt)["round"], prompt_fields(r.user_prompt)["archetype"])
                   for r in requests)
    assert len(set(asked)) == len(asked)  # each archetype once per round
    body = requests[0].body
    assert body["temperature"] == 0 and body["model"] == "local" and len(body["messages"]) == 2
    assert body["response_format"] == {"type": "json_object"}
    archetype_of = played.strategy.archetype_of
    for r, multipliers in enumerate(played.multipliers):
        np.testing.assert_allclose(multipliers, 0.5 + 0.1 * archetype_of + 0.01 * r)
    assert played.statuses() == ["ok"] * 12
    rows = played.calls
    assert [row["round"] for row in rows] == [0] * 4 + [1] * 4 + [2] * 4
    assert all(row["attempts"] == 1 and row["detail"] is None and not row["fallback"] for row in rows)
    assert rows[5]["reason"] == "archetype 1 round 1" and rows[5]["applied_multiplier"] == pytest.approx(0.61)
    assert sum(row["members"] for row in rows[:4]) == SIZE
    assert rows[0]["prompt"].startswith("population: proxy\narchetype: 1 of 4")
    assert "last round: none yet" in rows[0]["prompt"] and "last round mean price" in rows[4]["prompt"]
    assert played.strategy.counts == {"ok": 12}


def test_prompts_are_deterministic():
    with ChatServer(constant_reply(0.9)) as server:
        first = Played({"base_url": server.url, **FAST}, rounds=2)
        second = Played({"base_url": server.url, **FAST, "concurrency": 1}, rounds=2)
    assert [r["prompt"] for r in first.calls] == [r["prompt"] for r in second.calls]
    assert [r["cache_key"] for r in first.calls] == [r["cache_key"] for r in second.calls]


# ---- failures fall back, are counted, never stop the run ----

@pytest.mark.parametrize("case, reply, params, status, detail", [
    ("not json", Reply(content="Sure! I would bid 0.8."), {}, "invalid_reply", "not JSON"),
    ("out of range", Reply(content='{"multiplier": 5.0, "reason": "all in"}'), {}, "invalid_reply", "less than or equal"),
    ("extra key", Reply(content='{"multiplier": 0.5, "reason": "x", "why": 1}'), {}, "invalid_reply", "schema"),
    ("http 500", Reply(status=500), {"retries": 1}, "backend_error", "HTTP 500"),
    ("malformed envelope", Reply(body=b'{"choices": []}'), {}, "backend_error", "not a chat completion"),
    ("timeout", Reply(delay_s=2.0, content='{"multiplier": 0.5, "reason": "late"}'), {"timeout_s": 0.1},
     "backend_error", "timeout"),
])
def test_failures_fall_back_to_the_declared_rule(case, reply, params, status, detail):
    with ChatServer(lambda body, n: reply) as server:
        played = Played({"base_url": server.url, **FAST, "initial_multiplier": 0.7, **params}, rounds=3)
        requests = server.request_count
    assert played.simulation.finished
    assert played.statuses() == [status] * 12
    assert all(row["fallback"] and row["multiplier"] is None for row in played.calls)
    assert all(detail in row["detail"] for row in played.calls), played.calls[0]["detail"]
    assert all(np.all(m == 0.7) for m in played.multipliers)  # fallback "keep": the initial multiplier
    assert played.strategy.counts[status] == 12 and played.strategy.counts["fallback"] == 12
    assert requests == 12 * (1 + params.get("retries", 0))
    if status == "invalid_reply":
        assert all(row["reply"] == reply.content for row in played.calls)  # the raw answer is kept


def test_call_budget_exhausted_falls_back():
    with ChatServer(constant_reply(0.6)) as server:
        played = Played({"base_url": server.url, **FAST, "max_calls": 6}, rounds=3)
        assert server.request_count == 6
    assert played.statuses() == ["ok"] * 6 + ["budget_exhausted"] * 6
    assert played.calls[-1]["detail"] == "max_calls = 6 spent"
    assert np.all(played.multipliers[2] == 0.6)  # "keep" holds the last reply's multiplier


def test_connection_refused_falls_back():
    played = Played({"base_url": f"http://127.0.0.1:{free_port()}/v1", "retries": 1, "backoff_s": 0.001,
                     "fallback": "truthful", "initial_multiplier": 0.5}, rounds=2)
    assert played.statuses() == ["backend_error"] * 8
    assert all(row["attempts"] == 2 and "connection" in row["detail"] for row in played.calls)
    assert all(np.all(m == 1.0) for m in played.multipliers)


def test_pacing_fallback_slows_an_archetype_that_spends_ahead_of_its_budget():
    # 40k auctions a round for 60 agents: bidding values they would spend their budgets in round 0
    played = Played({"base_url": f"http://127.0.0.1:{free_port()}/v1", **FAST, "fallback": "pacing"},
                    rounds=6, auctions=40_000)
    assert played.statuses() == ["backend_error"] * 24
    assert np.all(played.multipliers[0] == 1.0)  # no history yet: the initial multiplier
    assert np.all(played.multipliers[1] < 1.0)
    assert np.all((0.0 <= played.multipliers[-1]) & (played.multipliers[-1] <= 2.0))


def test_keep_holds_the_last_valid_reply():
    reply = lambda body, n: '{"multiplier": 0.6, "reason": "first round"}' if n < ARCHETYPES else "oops"
    with ChatServer(reply) as server:
        played = Played({"base_url": server.url, **FAST, "concurrency": 1}, rounds=3)
    assert played.statuses() == ["ok"] * 4 + ["invalid_reply"] * 8
    assert all(np.all(m == 0.6) for m in played.multipliers)


def test_events_can_change_the_backend_mid_run():
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with ChatServer(constant_reply(0.6)) as server:
        raw = scenario({"base_url": dead, **FAST, "mechanism": "second price, reserve 0.05"}).to_dict()
        raw["events"] = [{"at_round": 1, "set": {"populations.proxy.params.base_url": server.url}}]
        simulation = Simulation(Scenario.from_dict(raw))
        rows = []
        simulation.strategies[0]._emit = lambda table, columns: rows.extend(pa.table(columns).to_pylist())
        while not simulation.finished:
            simulation.step()
        simulation.close()
    assert [r["status"] for r in rows] == ["backend_error"] * 4 + ["ok"] * 8
    assert all("mechanism: second price, reserve 0.05\n" in r["prompt"] for r in rows)


# ---- retries ----

def test_retries_back_off_and_then_succeed():
    with ChatServer(fail_first(1, constant_reply(0.8))) as server:
        played = Played({"base_url": server.url, "retries": 2, "backoff_s": 0.05, "bins": {}}, rounds=1)
        times = [r.time for r in server.requests]
    assert played.statuses() == ["ok"] and played.calls[0]["attempts"] == 2
    assert len(times) == 2 and times[1] - times[0] >= 0.045
    assert np.all(played.multipliers[0] == 0.8)


def test_retries_double_the_wait_and_give_up():
    with ChatServer(fail_first(100, constant_reply(0.8), Reply(status=503))) as server:
        played = Played({"base_url": server.url, "retries": 2, "backoff_s": 0.04, "bins": {}}, rounds=1)
        times = [r.time for r in server.requests]
    assert played.statuses() == ["backend_error"] and played.calls[0]["attempts"] == 3
    gaps = np.diff(times)
    assert gaps[0] >= 0.035 and gaps[1] >= 0.075  # 0.04 s, then 0.08 s


def test_client_errors_are_not_retried():
    client = None
    with ChatServer(lambda body, n: Reply(status=400)) as server:
        client = ChatClient(server.url, "m", retries=3, backoff_s=0.001)
        with pytest.raises(BackendError, match="HTTP 400") as error:
            client.complete([{"role": "user", "content": "hi"}])
        assert server.request_count == 1 and error.value.attempts == 1
    client.close()


def test_client_survives_the_server_dropping_kept_alive_connections():
    server = ChatServer(constant_reply(0.8)).start()
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    client = ChatClient(server.url, "m", retries=0)
    assert client.complete([{"role": "user", "content": "a"}]).attempts == 1
    server.stop()  # drops the kept-alive connection
    server = ChatServer(constant_reply(0.8), port=port).start()
    try:
        assert client.complete([{"role": "user", "content": "b"}]).attempts == 1  # reconnects, no retry needed
    finally:
        client.close()
        server.stop()


# ---- the replay cache ----

def test_replay_offline_is_byte_for_byte_identical(tmp_path):
    cache = tmp_path / "cache"
    server = ChatServer(pacing_reply).start()
    try:
        params = {"base_url": server.url, **FAST, "mode": "record", "cache_dir": str(cache)}
        recorded = bidscape.run(scenario(params, rounds=4), out=tmp_path / "recorded")
        assert server.request_count == 4 * ARCHETYPES
    finally:
        server.stop()  # from here on, any network call would be refused
    assert not list(cache.rglob("*.tmp")) and len(list(cache.rglob("*.json"))) == 4 * ARCHETYPES
    replayed = bidscape.run(scenario({**params, "mode": "replay"}, rounds=4), out=tmp_path / "replayed")
    for table in ("market.arrow", "agents.arrow", "auctions.arrow"):
        assert (recorded.path / table).read_bytes() == (replayed.path / table).read_bytes(), table
    multiplier = recorded.agents.filter(population="proxy")["multiplier"].to_numpy()
    assert len(np.unique(multiplier)) > 1  # the replies did move the multipliers
    before = pa.ipc.open_file(recorded.path / "llm_calls.arrow").read_all()
    after = pa.ipc.open_file(replayed.path / "llm_calls.arrow").read_all()
    assert set(before["status"].to_pylist()) == {"ok"} and set(after["status"].to_pylist()) == {"cached"}
    for column in ("system", "prompt", "reply", "multiplier", "reason", "applied_multiplier", "cache_key"):
        assert before[column] == after[column], column  # everything but status and latency
    # live mode with the same cache serves every call from it, server or not
    live = Played({**params, "mode": "live"}, rounds=4)
    assert live.statuses() == ["cached"] * 16


def _entries_of_round(cache: Path, round_number: int) -> list[Path]:
    return sorted(p for p in cache.rglob("*.json")
                  if f"\nround: {round_number} of" in json.loads(p.read_text())["request"]["messages"][1]["content"])


def test_corrupt_cache_entries_are_misses_and_reported(tmp_path):
    cache = tmp_path / "cache"
    with ChatServer(pacing_reply) as server:
        params = {"base_url": server.url, **FAST, "mode": "record", "cache_dir": str(cache)}
        recorded = Played(params, rounds=2)
        last_round = _entries_of_round(cache, 2)
        assert len(last_round) == ARCHETYPES
        truncated, wrong = last_round[0], last_round[1]
        truncated.write_bytes(truncated.read_bytes()[:50])  # a torn write
        entry = json.loads(wrong.read_text())
        entry["request"]["messages"][1]["content"] += " "  # the stored request no longer matches
        wrong.write_text(json.dumps(entry))

        replayed = Played({**params, "mode": "replay"}, rounds=2)
        assert replayed.statuses()[:4] == ["cached"] * 4
        assert sorted(replayed.statuses()[4:]) == ["cached", "cached", "replay_miss", "replay_miss"]
        details = [row["detail"] for row in replayed.calls if row["status"] == "replay_miss"]
        assert all("corrupt cache entry" in d for d in details)
        assert any("not JSON" in d for d in details) and any("differs" in d for d in details)
        assert replayed.strategy.counts["cache_corrupt"] == 2
        assert replayed.simulation.finished

        before = server.request_count
        rerecorded = Played(params, rounds=2)  # record mode calls again and replaces the bad entries
        assert server.request_count == before + 2
        assert sorted(rerecorded.statuses()) == ["cached"] * 6 + ["ok"] * 2
        assert all("corrupt cache entry" in row["detail"] for row in rerecorded.calls if row["status"] == "ok")
    again = Played({**params, "mode": "replay"}, rounds=2)
    assert again.statuses() == ["cached"] * 8
    assert [r["applied_multiplier"] for r in again.calls] == [r["applied_multiplier"] for r in recorded.calls]


def test_cache_writes_are_atomic(tmp_path, monkeypatch):
    cache = ReplayCache(tmp_path)
    messages = [{"role": "user", "content": "hello"}]
    request = cache_request("http://127.0.0.1:80/v1", "m", messages, 0.0, 256, None)
    cache.put(request, "first")
    assert cache.get(request).reply == "first"

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr("bidscape.llm.cache.os.replace", crash)
    with pytest.raises(OSError):
        cache.put(request, "second")
    monkeypatch.undo()
    assert cache.get(request).reply == "first"  # the old entry is whole
    assert not list(tmp_path.rglob("*.tmp"))  # and nothing half-written is left


def test_replay_without_a_cache_falls_back_and_never_calls(tmp_path):
    with ChatServer(constant_reply(0.5)) as server:
        played = Played({"base_url": server.url, "mode": "replay", "cache_dir": str(tmp_path / "empty"),
                         "fallback": "keep", "initial_multiplier": 0.9}, rounds=3)
        assert server.request_count == 0
    assert played.statuses() == ["replay_miss"] * 12
    assert all(row["detail"] == "no cache entry" and row["reply"] is None for row in played.calls)
    assert all(np.all(m == 0.9) for m in played.multipliers)
    assert played.strategy.calls == 0 and played.strategy._client is None


def test_close_releases_connections():
    with ChatServer(constant_reply(0.8)) as server:
        played = Played({"base_url": server.url, **FAST}, rounds=1)
    assert played.strategy._client is None and played.strategy._pool is None
    played.strategy.close()  # twice is fine


# ---- the run folder ----

def test_llm_calls_table_in_the_run_folder(tmp_path):
    with ChatServer(pacing_reply) as server:
        run = bidscape.run(scenario({"base_url": server.url, **FAST}, rounds=2), out=tmp_path / "run")
    table = pa.ipc.open_file(run.path / "llm_calls.arrow").read_all()
    assert table.schema.equals(LLM_CALLS_SCHEMA)
    assert table.num_rows == 2 * ARCHETYPES
    assert set(table["status"].to_pylist()) == {"ok"} and set(table["population"].to_pylist()) == {"proxy"}


# ---- the reply schema ----

@pytest.mark.parametrize("text, expected", [
    ('{"multiplier": 0.8, "reason": "ok"}', (0.8, "ok")),
    ('  {"reason": "int is fine", "multiplier": 1}\n', (1.0, "int is fine")),
    ('```json\n{"multiplier": 0.25, "reason": "fenced"}\n```', (0.25, "fenced")),
])
def test_valid_replies(text, expected):
    assert parse_reply(text, 0.0, 2.0, 50) == expected


@pytest.mark.parametrize("text, why", [
    ("", "not JSON"),
    ("[0.8]", "JSON object"),
    ('{"multiplier": "0.8", "reason": "a string"}', "schema"),
    ('{"multiplier": true, "reason": "a bool"}', "schema"),
    ('{"multiplier": NaN, "reason": "nan"}', "schema"),
    ('{"multiplier": -0.1, "reason": "negative"}', "greater than or equal"),
    ('{"multiplier": 0.8}', "reason"),
    ('{"multiplier": 0.8, "reason": "two\\nlines"}', "one line"),
    ('{"multiplier": 0.8, "reason": "' + "x" * 51 + '"}', "at most 50"),
])
def test_invalid_replies(text, why):
    with pytest.raises(InvalidReply, match=why):
        parse_reply(text, 0.0, 2.0, 50)
