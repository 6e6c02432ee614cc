"""A hostile or odd backend never stops a run: bounded replies, bounded calls, Retry-After,
cache keys that name the server, validated replies only in the cache, OpenAI conventions."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time

import numpy as np
import pytest

from bidscape.llm.client import BackendError, ChatClient
from bidscape.llm.prompts import InvalidReply, parse_reply
from bidscape.llm.testing import ChatServer, Reply, constant_reply, fail_first, rejects_field
from test_llm_proxy import ARCHETYPES, FAST, Played, no_llm_environment  # noqa: F401 (fixture)

HUGE_INTEGER = '{"multiplier": ' + "9" * 5000 + ', "reason": "a number Python will not parse"}'
ONE = {"bins": {}}  # one archetype: one call a round


# ---- replies are validated before they are cached; no reply ends a run ----

def test_a_5000_digit_multiplier_is_an_invalid_reply_never_cached(tmp_path):
    with pytest.raises(InvalidReply, match="not JSON"):
        parse_reply(HUGE_INTEGER, 0.0, 2.0, 200)
    cache = tmp_path / "cache"
    params = {**FAST, "mode": "record", "cache_dir": str(cache), "initial_multiplier": 0.7}
    with ChatServer(lambda body, n: HUGE_INTEGER) as server:
        recorded = Played({"base_url": server.url, **params}, rounds=2)
        assert recorded.statuses() == ["invalid_reply"] * 2 * ARCHETYPES
        assert recorded.strategy.counts["fallback"] == 2 * ARCHETYPES
        assert not list(cache.rglob("*.json"))  # nothing invalid was stored
        replayed = Played({"base_url": server.url, **params, "mode": "replay"}, rounds=2)
    assert replayed.statuses() == ["replay_miss"] * 2 * ARCHETYPES
    assert all(np.all(m == 0.7) for m in recorded.multipliers + replayed.multipliers)


def test_a_cached_reply_that_fails_to_parse_is_an_invalid_reply(tmp_path):
    cache = tmp_path / "cache"
    with ChatServer(constant_reply(0.6)) as server:
        params = {"base_url": server.url, **FAST, **ONE, "mode": "record", "cache_dir": str(cache)}
        Played(params, rounds=1)
    entry_path = next(cache.rglob("*.json"))
    entry = json.loads(entry_path.read_text())
    entry["reply"] = HUGE_INTEGER  # a hand-edited (or shared) cache is untrusted too
    entry_path.write_text(json.dumps(entry))
    replayed = Played({**params, "mode": "replay"}, rounds=1)
    assert replayed.statuses() == ["invalid_reply"] and "not JSON" in replayed.calls[0]["detail"]
    entry_path.write_text('{"format": 2, "reply": ' + "1" * 5000 + "}")
    assert Played({**params, "mode": "replay"}, rounds=1).statuses() == ["replay_miss"]  # corrupt: a miss


# ---- limits: size, time, Retry-After ----

def test_oversized_replies_are_refused_unread_and_not_retried():
    huge = Reply(content=json.dumps({"multiplier": 1.0, "reason": "x" * 2_000_000}))  # 2 MB > 1 MiB default
    with ChatServer(lambda body, n: huge) as server:
        played = Played({"base_url": server.url, **ONE, "retries": 2, "backoff_s": 0.001}, rounds=2)
        assert server.request_count == 2  # not retried: the same server would send it again
    assert played.statuses() == ["backend_error"] * 2
    assert all(row["attempts"] == 1 and "too_large" in row["detail"] and "Content-Length" in row["detail"]
               for row in played.calls)


def test_a_reply_without_a_length_is_cut_at_the_cap():
    """A chunked response that never ends: the client stops reading at max_reply_bytes."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"x" * 4096
            try:
                while not stop.is_set():
                    connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ChatClient(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "m", retries=0, max_reply_bytes=65536)
    try:
        with pytest.raises(BackendError, match="larger than max_reply_bytes = 65536") as error:
            client.complete([{"role": "user", "content": "hi"}])
        assert error.value.kind == "too_large"
    finally:
        stop.set()
        client.close()
        listener.close()
        thread.join(timeout=5)


def test_a_dripping_server_cannot_stretch_a_call_past_timeout_s():
    slow = Reply(content='{"multiplier": 0.5, "reason": "one byte at a time"}', drip_s=0.02)  # ~5 s in all
    with ChatServer(lambda body, n: slow) as server:
        started = time.monotonic()
        played = Played({"base_url": server.url, **ONE, "timeout_s": 0.5, "retries": 2, "backoff_s": 0.01},
                        rounds=1)
        elapsed = time.monotonic() - started
    assert played.statuses() == ["backend_error"] and "timeout" in played.calls[0]["detail"]
    assert played.calls[0]["attempts"] == 1  # the bound covers retries too: none was left time for
    assert elapsed < 1.5, elapsed


def test_retry_after_sets_the_least_wait():
    limited = Reply(status=429, headers={"Retry-After": "1"})
    with ChatServer(fail_first(1, constant_reply(0.8), limited)) as server:
        played = Played({"base_url": server.url, **ONE, "retries": 2, "backoff_s": 0.01}, rounds=1)
        times = [r.time for r in server.requests]
    assert played.statuses() == ["ok"] and played.calls[0]["attempts"] == 2
    assert times[1] - times[0] >= 0.95  # not the 0.01 s backoff


def test_a_retry_after_beyond_the_time_bound_ends_the_call_at_once():
    limited = Reply(status=429, headers={"Retry-After": "5"})
    with ChatServer(lambda body, n: limited) as server:
        started = time.monotonic()
        played = Played({"base_url": server.url, **ONE, "retries": 3, "timeout_s": 1.0}, rounds=1)
        elapsed = time.monotonic() - started
        assert server.request_count == 1
    assert played.statuses() == ["backend_error"] and elapsed < 0.5
    assert "HTTP 429" in played.calls[0]["detail"] and "waiting 5 s (Retry-After) would pass" in played.calls[0]["detail"]


# ---- the cache key names the server and the request settings ----

def test_the_cache_key_names_the_endpoint(tmp_path):
    cache = str(tmp_path / "cache")
    with ChatServer(constant_reply(0.6)) as first, ChatServer(constant_reply(0.8)) as second:
        Played({"base_url": first.url, **FAST, "mode": "record", "cache_dir": cache}, rounds=1)
        other = Played({"base_url": second.url, **FAST, "mode": "record", "cache_dir": cache}, rounds=1)
        assert other.statuses() == ["ok"] * ARCHETYPES and np.all(other.multipliers[0] == 0.8)
        for change in ({"max_tokens": 64}, {"json_mode": "none"}, {"model": "other"}):  # each changes the key
            assert Played({"base_url": second.url, **FAST, "cache_dir": cache, **change},
                          rounds=1).statuses() == ["ok"] * ARCHETYPES
        shared = {**FAST, "cache_dir": cache, "cache_endpoint": "qwen-7b"}  # sharing is a choice
        Played({"base_url": first.url, **shared}, rounds=1)
        reused = Played({"base_url": second.url, **shared}, rounds=1)
        assert reused.statuses() == ["cached"] * ARCHETYPES and np.all(reused.multipliers[0] == 0.6)
        assert first.request_count == 2 * ARCHETYPES and second.request_count == 4 * ARCHETYPES


def test_entries_of_an_older_bidscape_are_counted_misses(tmp_path):
    cache = tmp_path / "cache"
    with ChatServer(constant_reply(0.6)) as server:
        params = {"base_url": server.url, **FAST, "mode": "record", "cache_dir": str(cache)}
        Played(params, rounds=1)
    for path in list(cache.rglob("*.json")):  # rewrite every entry as format 1 wrote it
        request = json.loads(path.read_text())["request"]
        old = {"model": request["model"], "messages": request["messages"], "temperature": request["temperature"]}
        key = hashlib.sha256(json.dumps(old, sort_keys=True, separators=(",", ":"),
                                        ensure_ascii=False).encode()).hexdigest()
        (cache / key[:2]).mkdir(exist_ok=True)
        (cache / key[:2] / f"{key}.json").write_text(json.dumps({"format": 1, "key": key, **old, "reply": "{}"}))
        path.unlink()
    replayed = Played({**params, "mode": "replay"}, rounds=1)
    assert replayed.statuses() == ["replay_miss"] * ARCHETYPES
    assert replayed.strategy.counts["cache_outdated"] == ARCHETYPES
    assert all("written by an older bidscape" in row["detail"] for row in replayed.calls)


# ---- OpenAI conventions ----

def test_the_token_limit_field_switches_once_after_a_400_that_names_it():
    with ChatServer(rejects_field("max_tokens", constant_reply(0.8))) as server:
        played = Played({"base_url": server.url, **ONE, **FAST}, rounds=3)  # loopback: max_tokens first
        fields = [[k for k in ("max_tokens", "max_completion_tokens") if k in r.body] for r in server.requests]
    assert played.statuses() == ["ok"] * 3
    assert [row["attempts"] for row in played.calls] == [2, 1, 1]  # the client keeps the field that worked
    assert fields == [["max_tokens"]] + [["max_completion_tokens"]] * 3
    assert server.requests[1].body["max_completion_tokens"] == 256
    with ChatServer(rejects_field("max_tokens", constant_reply(0.8))) as server:
        fixed = Played({"base_url": server.url, **ONE, **FAST, "token_limit_field": "max_tokens"}, rounds=1)
    assert fixed.statuses() == ["backend_error"] and "HTTP 400" in fixed.calls[0]["detail"]  # a fixed field stays


def test_remote_endpoints_get_max_completion_tokens():
    with ChatServer(rejects_field("max_completion_tokens", constant_reply(0.8))) as server:
        client = ChatClient(server.url, "m", retries=0, token_field="max_completion_tokens")
        completion = client.complete([{"role": "user", "content": "hi"}])
        client.close()
        assert completion.attempts == 2 and "max_tokens" in server.requests[1].body
    assert ChatClient("https://api.example.com/v1", "m").body([], 0.0) == {
        "model": "m", "messages": [], "temperature": 0.0, "max_completion_tokens": 256}


def test_a_refusal_is_reported_as_one_and_falls_back(tmp_path):
    refusal = Reply(refusal="I can't help with setting bids.")
    with ChatServer(lambda body, n: refusal) as server:
        played = Played({"base_url": server.url, **FAST, "mode": "record", "cache_dir": str(tmp_path),
                         "fallback": "truthful"}, rounds=1)
    assert played.statuses() == ["refused"] * ARCHETYPES and played.strategy.counts["refused"] == ARCHETYPES
    assert all(row["detail"] == "the model refused: I can't help with setting bids." and row["fallback"]
               and row["reply"] is None for row in played.calls)
    assert np.all(played.multipliers[0] == 1.0) and not list(tmp_path.rglob("*.json"))


STRICT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "description"}


def test_the_strict_json_schema_stays_in_the_strict_subset():
    with ChatServer(constant_reply(0.8)) as server:
        played = Played({"base_url": server.url, **ONE, **FAST, "json_mode": "json_schema"}, rounds=1)
        response_format = server.requests[0].body["response_format"]
    assert played.statuses() == ["ok"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]

    def keywords(node: dict) -> set:
        found = set(node)
        for child in node.get("properties", {}).values():
            found |= keywords(child)
        return found

    assert keywords(schema) <= STRICT_KEYWORDS, keywords(schema) - STRICT_KEYWORDS
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(schema["properties"])
    assert "from 0 to 2" in schema["properties"]["multiplier"]["description"]
