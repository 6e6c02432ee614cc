"""The API key never leaves for an endpoint the user did not choose (docs/llm_proxy.md, "Keys and endpoints").

"Remote" endpoints are host names that are not loopback; the ``remote`` fixture sends every
TCP connection this process opens to a fake server on 127.0.0.1, so a test sees exactly
what a remote server would have received, and that nothing was sent at all when refused.
"""

from __future__ import annotations

import socket

import numpy as np
import pyarrow as pa
import pytest

from bidscape import InputError, Scenario
from bidscape.loop.simulation import Simulation
from bidscape.llm.endpoint import is_loopback, user_base_url
from bidscape.llm.testing import ChatServer, constant_reply
from test_llm_proxy import ARCHETYPES, FAST, Played, no_llm_environment, scenario  # noqa: F401 (fixture)

SECRET = "sk-secret-never-leaves"


@pytest.fixture
def remote(monkeypatch):
    """A fake server that every outgoing connection reaches, whatever host it names."""
    with ChatServer(constant_reply(0.9)) as server:
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        connect = socket.create_connection
        monkeypatch.setattr(socket, "create_connection",
                            lambda address, *args, **kwargs: connect(("127.0.0.1", port), *args, **kwargs))
        yield server


def keys(server: ChatServer) -> list:
    return [request.authorization for request in server.requests]


def test_a_scenario_cannot_choose_the_key_variable(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with pytest.raises(InputError, match=r"params: api_key_env = 'AWS_SECRET_ACCESS_KEY' is not accepted.*"
                                         r"Fix: remove api_key_env.*BIDSCAPE_LLM_API_KEY or else OPENAI_API_KEY"):
        scenario({"api_key_env": "AWS_SECRET_ACCESS_KEY"})
    # older versions wrote their default into every run folder's manifest: those still load
    assert "api_key_env" not in scenario({"api_key_env": "OPENAI_API_KEY"}).populations[0].params


@pytest.mark.parametrize("variable", ["OPENAI_API_KEY", "BIDSCAPE_LLM_API_KEY"])
def test_no_key_leaves_for_an_endpoint_named_by_the_scenario(remote, monkeypatch, variable):
    monkeypatch.setenv(variable, SECRET)
    with pytest.raises(InputError) as refused:
        Played({"base_url": "http://llm.example.com/v1", **FAST}, rounds=1)
    message = str(refused.value)
    assert message.startswith("invalid input: populations.proxy.params.base_url: the scenario sends LLM calls to "
                              "'http://llm.example.com/v1', an endpoint you did not choose")
    assert f"({variable})" in message and "--llm-base-url http://llm.example.com/v1" in message
    assert SECRET not in message
    assert remote.request_count == 0  # refused before anything was sent


def test_without_a_key_any_endpoint_is_called_with_no_key(remote):
    played = Played({"base_url": "http://llm.example.com/v1", **FAST}, rounds=1)
    assert played.statuses() == ["ok"] * ARCHETYPES
    assert keys(remote) == [None] * ARCHETYPES


def test_the_key_goes_to_the_endpoint_the_user_chose(remote, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("BIDSCAPE_LLM_API_KEY", SECRET)  # wins over OPENAI_API_KEY
    with user_base_url("http://llm.example.com:8443/v1"):  # what `bidscape run --llm-base-url` does
        played = Played({"base_url": "http://other.example.org/v1", **FAST}, rounds=1)  # overridden
    assert {request.headers["Host"] for request in remote.requests} == {"llm.example.com:8443"}
    assert played.statuses() == ["ok"] * ARCHETYPES and played.strategy.endpoint.source == "--llm-base-url"

    monkeypatch.setenv("OPENAI_BASE_URL", "http://llm.example.com/v1")
    Played({**FAST}, rounds=1)  # no base_url in the scenario: OPENAI_BASE_URL, the user's
    Played({"base_url": "http://LLM.example.com:80/other", **FAST}, rounds=1)  # same origin as OPENAI_BASE_URL
    assert keys(remote) == [f"Bearer {SECRET}"] * (3 * ARCHETYPES)
    assert remote.requests[-1].path == "/other/chat/completions"
    with pytest.raises(InputError, match="'https://llm.example.com/v1'"):  # another scheme is another origin
        Played({"base_url": "https://llm.example.com/v1", **FAST}, rounds=1)


def test_loopback_gets_the_key_and_stays_keyless_friendly(monkeypatch):
    with ChatServer(constant_reply(0.9)) as server:
        Played({"base_url": server.url, **FAST}, rounds=1)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        Played({"base_url": server.url.replace("127.0.0.1", "localhost"), **FAST}, rounds=1)
        assert keys(server) == [None] * ARCHETYPES + [f"Bearer {SECRET}"] * ARCHETYPES
    assert all(is_loopback(url) for url in ("http://127.0.0.2/v1", "http://[::1]:8080/v1", "http://LOCALHOST/"))
    assert not any(is_loopback(url) for url in ("http://127.0.0.1.example.com/v1", "http://0.0.0.0/v1",
                                                "http://[::ffff:10.0.0.1]/v1", "http://localhost.evil.org/"))


def test_replay_sends_nothing_so_any_endpoint_is_fine(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    played = Played({"base_url": "http://llm.example.com/v1", "mode": "replay", "cache_dir": str(tmp_path)}, rounds=1)
    assert played.statuses() == ["replay_miss"] * ARCHETYPES and played.strategy.endpoint.api_key is None


def test_an_event_cannot_move_the_key_to_another_endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ChatServer(constant_reply(0.7)) as local:
        raw = scenario({"base_url": local.url, **FAST}).to_dict()
        raw["events"] = [{"at_round": 1, "set": {"populations.proxy.params.base_url": "http://llm.example.com/v1"}}]
        simulation = Simulation(Scenario.from_dict(raw))
        simulation.strategies[0]._emit = lambda table, columns: pa.table(columns)
        simulation.step()
        with pytest.raises(InputError, match=r"populations\.proxy\.params\.base_url: .*'http://llm.example.com/v1'"):
            simulation.step()
        simulation.close()
        assert local.request_count == ARCHETYPES and np.all(simulation.state.multiplier[:40] == 0.7)


@pytest.mark.parametrize("params, why", [
    ({"base_url": "http://user:password@llm.example.com/v1"}, "user name or password"),
    ({"base_url": "ftp://llm.example.com/v1"}, "not an http"),
    ({"base_url": "http://llm.example.com/v1?key=1"}, "query"),
])
def test_base_urls_that_cannot_be_api_roots_are_refused(params, why):
    with pytest.raises(InputError, match=rf"populations\[0\]\.params\.base_url: .*{why}"):
        scenario(params)


def test_bad_user_endpoints_are_refused(monkeypatch):
    with pytest.raises(InputError, match="--llm-base-url: 'llm.example.com' is not an http"):
        with user_base_url("llm.example.com"):
            pass
    monkeypatch.setenv("OPENAI_BASE_URL", "https://user:pw@api.example.com/v1")
    with pytest.raises(InputError, match="OPENAI_BASE_URL: .*user name or password"):
        Played({**FAST}, rounds=1)


CLI_SCENARIO = """\
[run]
name = "keys"
rounds = 2
auctions_per_round = 500
experimental = true

[mechanism]
type = "second_price"

[market]
bidders_per_auction = 4

[[populations]]
name = "proxy"
size = 40
strategy = "llm_proxy"
values = {{ dist = "uniform", low = 0.0, high = 1.0 }}
value_scale = {{ dist = "uniform", low = 0.8, high = 1.2 }}
budget = {{ dist = "uniform", low = 5.0, high = 15.0 }}
params = {{ base_url = "{url}", retries = 0, timeout_s = 5.0 }}
"""


def test_cli_refuses_with_exit_2_and_takes_the_users_endpoint(write_scenario, bidscape_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    file = write_scenario(CLI_SCENARIO.format(url="http://203.0.113.7:9/v1"))  # TEST-NET-3: never reached
    refused = bidscape_cli("run", file, "--out", tmp_path / "refused", "-q")
    assert refused.returncode == 2, refused.stderr
    assert "populations.proxy.params.base_url" in refused.stderr and "--llm-base-url" in refused.stderr
    assert SECRET not in refused.stderr + refused.stdout
    with ChatServer(constant_reply(0.8)) as server:
        chosen = bidscape_cli("run", file, "--out", tmp_path / "chosen", "-q", "--llm-base-url", server.url)
        assert chosen.returncode == 0, chosen.stderr
        assert keys(server) == [f"Bearer {SECRET}"] * 2 * ARCHETYPES
