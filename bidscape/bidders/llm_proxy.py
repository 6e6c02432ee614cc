"""LLM proxy (experimental): a language model sets the bid multiplier of advertiser archetypes.

At the start, the population's agents are grouped into *archetypes* by quantile bins of
their attributes (``bins = {value_scale = 2, budget = 2}``: 4 archetypes, below/above the
median of each). Before every round the strategy sends ONE prompt per archetype (never
per agent) to an OpenAI-compatible chat-completions endpoint, summarising the archetype's
situation: round and rounds left, members, budget left, last round's spend, wins, value
and mean price, its current multiplier, the mechanism. The model answers
``{"multiplier": x, "reason": "..."}`` and ``x`` becomes every member's multiplier.

Replies that are not valid JSON of that schema (or out of range), refusals, and backend
failures (connection refused, HTTP errors after retries, timeouts, oversized replies, the
``max_calls`` budget spent) fall back to a declared rule (``fallback``): ``keep`` the
archetype's last multiplier, ``truthful`` (1.0), or ``pacing`` (a simple budget-pacing
step). Fallbacks are counted and recorded; they never stop a run.

The endpoint and the API key follow ``bidscape.llm.endpoint``: a key is only sent to
loopback or to an endpoint the user chose outside the scenario file.

``mode`` and ``cache_dir`` give an on-disk replay cache keyed by the whole request
(endpoint, model, messages, sampling and output settings): ``live`` and ``record`` serve
hits from the cache and store the valid replies the server gives; ``replay`` never touches
the network (a miss is a fallback). A run replayed from the cache is identical to the
recorded run. Every call is a row of ``llm_calls.arrow``.

    [run]
    experimental = true

    [[populations]]
    strategy = "llm_proxy"
    budget = { dist = "uniform", low = 20.0, high = 60.0 }
    value_scale = { dist = "uniform", low = 0.8, high = 1.2 }
    params = { base_url = "http://127.0.0.1:8080/v1", model = "qwen2.5-7b-instruct",
               mode = "record", cache_dir = "llm-cache", fallback = "pacing" }
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional

import numpy as np
import pyarrow as pa

from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy
from bidscape.llm.cache import ReplayCache, cache_request, request_key
from bidscape.llm.endpoint import Endpoint, is_loopback, normalized, resolve
from bidscape.llm.params import LLM_CALLS_SCHEMA, STATUSES, LlmProxyParams  # noqa: F401 (STATUSES re-exported)
from bidscape.llm.prompts import (InvalidReply, Situation, build_messages, number, parse_reply,
                                  reply_json_schema, system_prompt)

if TYPE_CHECKING:
    from bidscape.llm.client import ChatClient

log = logging.getLogger("bidscape.llm")

ATTRIBUTES = ("value_scale", "budget")  # what archetypes can be binned by, in label order


@dataclass
class _Call:
    """One archetype's call in one round, as it goes into ``llm_calls``."""

    messages: list[dict[str, str]]
    request: dict[str, Any]  # what the cache is keyed on
    key: str
    status: str = ""
    reply: Optional[str] = None
    multiplier: Optional[float] = None
    reason: Optional[str] = None
    detail: Optional[str] = None
    attempts: int = 0
    latency_ms: float = 0.0
    cache_write_failed: bool = False

    def note(self, text: str) -> None:
        self.detail = text if self.detail is None else f"{self.detail}; {text}"


class LlmProxy(Strategy):
    name = "llm_proxy"
    summary = "experimental: a language model sets one multiplier per archetype each round (OpenAI-compatible API)"
    Params = LlmProxyParams
    experimental: ClassVar[bool] = True
    tables: ClassVar[dict[str, pa.Schema]] = {"llm_calls": LLM_CALLS_SCHEMA}

    def __init__(self, params: LlmProxyParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        self.archetype_of, self.labels = archetypes(agents, params.bins)
        self.members = np.bincount(self.archetype_of, minlength=len(self.labels)).astype(np.int64)
        self.current = np.full(len(self.labels), params.initial_multiplier)
        self._last: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None  # spend, wins, value
        self.mechanism_name: Optional[str] = None  # the engine may set this before ``decide``
        self.calls = 0  # network calls made (retries of one call count once)
        self.counts: Counter[str] = Counter()  # statuses, plus fallback, cache_corrupt/_outdated/_write_error
        self._client: Optional["ChatClient"] = None
        self._pool: Optional[ThreadPoolExecutor] = None
        self._warned: set[str] = set()
        self._configure(params)

    # ---- the strategy interface ----
    def set_params(self, params: LlmProxyParams) -> None:
        """New settings from an event; archetypes (``bins``) stay as they were at the start."""
        self._close_client()
        self._configure(params)
        super().set_params(params)

    def _configure(self, params: LlmProxyParams) -> None:
        """The endpoint (refused before anything is sent if a key would go where the user did not say) and cache."""
        where = f"populations.{self.agents.name}.params.base_url"
        self.endpoint: Endpoint = resolve(params.base_url, where, calls=params.mode != "replay")
        self._cache = ReplayCache(params.cache_dir, params.max_reply_bytes) if params.cache_dir else None
        self._response_format = _response_format(params)

    def decide(self, round_index: int) -> None:
        p = self.params
        system = system_prompt(p.min_multiplier, p.max_multiplier, p.max_reason_chars, p.system_prompt)
        situations = [self.situation(a, round_index) for a in range(len(self.labels))]
        calls = self._resolve([build_messages(system, s) for s in situations])
        applied = np.empty(len(calls))
        for a, call in enumerate(calls):
            self.counts[call.status] += 1
            if call.cache_write_failed:
                self.counts["cache_write_error"] += 1
            if call.multiplier is not None and call.status in ("ok", "cached"):
                applied[a] = call.multiplier
            else:
                applied[a] = self.fallback_multiplier(a, round_index)
                self.counts["fallback"] += 1
                self._warn(call)
        self.current[:] = applied
        np.take(self.current, self.archetype_of, out=self.agents.multiplier)
        self.emit("llm_calls", {
            "round": [round_index] * len(calls),
            "population": [self.agents.name] * len(calls),
            "archetype": list(range(len(calls))),
            "archetype_label": list(self.labels),
            "members": self.members.tolist(),
            "system": [c.messages[0]["content"] for c in calls],
            "prompt": [c.messages[1]["content"] for c in calls],
            "reply": [c.reply for c in calls],
            "multiplier": [c.multiplier for c in calls],
            "reason": [c.reason for c in calls],
            "applied_multiplier": applied.tolist(),
            "status": [c.status for c in calls],
            "fallback": [c.status not in ("ok", "cached") for c in calls],
            "detail": [c.detail for c in calls],
            "cache_key": [c.key for c in calls],
            "attempts": [c.attempts for c in calls],
            "latency_ms": [c.latency_ms for c in calls],
        })

    def observe(self, feedback: RoundFeedback) -> None:
        n = len(self.labels)
        self._last = tuple(np.bincount(self.archetype_of, weights=column, minlength=n)
                           for column in (feedback.spend, feedback.wins, feedback.value))

    def close(self) -> None:
        self._close_client()
        if self.counts:
            log.info("llm_proxy '%s': %d network calls; %s", self.agents.name, self.calls,
                     ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())))

    # ---- prompts ----
    def situation(self, a: int, round_index: int) -> Situation:
        agents = self.agents
        who = self.archetype_of == a
        budget = agents.budget[who]
        remaining = agents.remaining_budget[who]
        limited = bool(np.all(np.isfinite(budget)))
        if limited:
            shares = np.divide(remaining, budget, out=np.zeros_like(remaining), where=budget > 0)
            budget_mean, left_mean, left_share = float(budget.mean()), float(remaining.mean()), float(shares.mean())
        else:
            budget_mean, left_mean, left_share = math.inf, math.inf, math.nan
        last = self._last
        return Situation(
            population=agents.name, archetype=a, archetypes=len(self.labels), label=self.labels[a],
            mechanism=self.mechanism_name or self.params.mechanism, round=round_index, rounds=agents.rounds,
            members=int(self.members[a]), budget_per_member=budget_mean, budget_left_share=left_share,
            budget_left_per_member=left_mean,
            last_spend=None if last is None else float(last[0][a]),
            last_wins=None if last is None else float(last[1][a]),
            last_value=None if last is None else float(last[2][a]),
            multiplier=float(self.current[a]), low=self.params.min_multiplier, high=self.params.max_multiplier,
        )

    # ---- fallbacks ----
    def fallback_multiplier(self, a: int, round_index: int) -> float:
        """The declared rule's multiplier for archetype ``a`` (no reply to use)."""
        p = self.params
        rule = p.fallback
        if rule == "truthful":
            return 1.0
        current = float(self.current[a])
        if rule == "keep" or self._last is None:
            return current
        remaining = float(self.agents.remaining_budget[self.archetype_of == a].sum())
        if not math.isfinite(remaining):
            return float(np.clip(1.0, p.min_multiplier, p.max_multiplier))
        if remaining <= 0:
            return p.min_multiplier
        rate = remaining / max(self.agents.rounds - round_index, 1)  # to spend per round from now on
        spend = float(self._last[0][a])
        factor = 1.25 if spend <= 0 else min(max(rate / spend, 0.5), 1.25)
        return float(np.clip(max(current, 0.01) * factor, p.min_multiplier, p.max_multiplier))

    # ---- calls: cache, budget, network ----
    def _resolve(self, all_messages: list[list[dict[str, str]]]) -> list[_Call]:
        p = self.params
        endpoint = p.cache_endpoint or normalized(self.endpoint.base_url)
        calls, pending = [], []
        for messages in all_messages:
            started = time.perf_counter()
            request = cache_request(endpoint, p.model, messages, p.temperature, p.max_tokens, self._response_format)
            call = _Call(messages, request, request_key(request))
            calls.append(call)
            if self._cache is not None:
                lookup = self._cache.get(request)
                if lookup.hit:
                    call.status, call.reply = "cached", lookup.reply
                    self._parse(call)
                    call.latency_ms = (time.perf_counter() - started) * 1e3
                    continue
                for kind, problem in (("cache_corrupt", lookup.corrupt), ("cache_outdated", lookup.outdated)):
                    if problem:
                        self.counts[kind] += 1
                        call.note(problem)
                        self._warn_once(kind, f"{problem} (treated as a miss; later ones are only counted)")
            if p.mode == "replay":
                call.status = "replay_miss"
                if call.detail is None:
                    call.note("no cache entry" if self._cache is not None else "no cache")
            elif self.calls >= p.max_calls:
                call.status = "budget_exhausted"
                call.note(f"max_calls = {p.max_calls} spent")
            else:
                self.calls += 1  # reserved in archetype order, so who gets the budget is deterministic
                pending.append(call)
            call.latency_ms = (time.perf_counter() - started) * 1e3
        if pending:
            client = self._connect()
            if len(pending) > 1 and p.concurrency > 1:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=p.concurrency, thread_name_prefix="llm_proxy")
                list(self._pool.map(lambda call: self._call(client, call), pending))
            else:
                for call in pending:
                    self._call(client, call)
        return calls

    def _call(self, client: "ChatClient", call: _Call) -> None:
        from bidscape.llm.client import BackendError

        started = time.perf_counter()
        try:
            completion = client.complete(call.messages, self.params.temperature)
        except BackendError as error:
            call.status, call.attempts = "backend_error", error.attempts
            call.note(f"{error.kind}: {error}")
        except Exception as error:  # never let a client bug end a long run
            call.status = "backend_error"
            call.note(f"client failed: {type(error).__name__}: {error}")
        else:
            call.attempts = completion.attempts
            if completion.text is None:
                call.status = "refused"
                call.note(f"the model refused: {completion.refusal}")
            else:
                call.status, call.reply = "ok", completion.text
                self._parse(call)
            if call.status == "ok" and self._cache is not None:  # validated first: the cache holds good replies only
                try:
                    self._cache.put(call.request, call.reply or "")
                except OSError as error:
                    call.cache_write_failed = True  # counted by the caller, not from this thread
                    call.note(f"cache write failed: {error}")
        call.latency_ms += (time.perf_counter() - started) * 1e3

    def _parse(self, call: _Call) -> None:
        p = self.params
        try:
            call.multiplier, call.reason = parse_reply(call.reply or "", p.min_multiplier, p.max_multiplier,
                                                       p.max_reason_chars)
        except Exception as error:  # InvalidReply, or anything the parser did not foresee: never a crash
            why = str(error) if isinstance(error, InvalidReply) else f"{type(error).__name__}: {error}"
            call.note(f"invalid reply: {why}")
            call.status = "invalid_reply"

    def _connect(self) -> "ChatClient":
        if self._client is None:
            from bidscape.llm.client import ChatClient  # loads http.client and ssl: only when needed

            p, endpoint = self.params, self.endpoint
            field = p.token_limit_field
            if field == "auto":  # local servers all take max_tokens; OpenAI's current name elsewhere
                field = "max_tokens" if is_loopback(endpoint.base_url) else "max_completion_tokens"
            self._client = ChatClient(endpoint.base_url, p.model, api_key=endpoint.api_key, timeout_s=p.timeout_s,
                                      retries=p.retries, backoff_s=p.backoff_s, backoff_max_s=p.backoff_max_s,
                                      max_tokens=p.max_tokens, token_field=field,
                                      switch_token_field=p.token_limit_field == "auto",
                                      response_format=self._response_format, max_reply_bytes=p.max_reply_bytes)
            log.info("llm_proxy '%s': calls go to %s (%s), %s", self.agents.name, endpoint.base_url, endpoint.source,
                     f"with the key in {endpoint.key_variable}" if endpoint.api_key else "with no API key")
        return self._client

    def _close_client(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _warn(self, call: _Call) -> None:
        self._warn_once(call.status, f"{call.status}, falling back to '{self.params.fallback}' ({call.detail}); "
                        "later ones are only counted")

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:  # once per kind: a long run must not flood the log
            self._warned.add(kind)
            log.warning("llm_proxy '%s': %s", self.agents.name, message)


def _response_format(p: LlmProxyParams) -> Optional[dict[str, Any]]:
    if p.json_mode == "json_object":
        return {"type": "json_object"}
    if p.json_mode in ("json_schema", "json_schema_bounds"):
        return {"type": "json_schema", "json_schema": {
            "name": "bid_multiplier", "strict": True,
            "schema": reply_json_schema(p.min_multiplier, p.max_multiplier, p.max_reason_chars,
                                        bounds=p.json_mode == "json_schema_bounds")}}
    return None


def archetypes(agents: PopulationView, bins: dict[str, int]) -> tuple[np.ndarray, list[str]]:
    """Each agent's archetype (0..A-1) and the archetypes' labels, from quantile bins.

    An attribute with k bins is cut at its k-quantiles (values on a cut go up); agents
    with an unlimited budget go to the top budget bin. An attribute whose agents all
    fall in one bin (a constant, all budgets unlimited) is left out. Archetypes are the
    non-empty bin combinations, numbered in order (value_scale bin first, then budget).
    """
    used, codes = [], []
    for name in ATTRIBUTES:
        k = bins.get(name, 1)
        code = quantile_bins(getattr(agents, name), k)
        if k > 1 and np.any(code != code[0]):  # an attribute all in one bin tells nothing
            used.append((name, k))
            codes.append(code)
    if not codes:
        return np.zeros(agents.size, np.int64), ["all agents"]
    combined = np.ravel_multi_index(codes, [k for _, k in used])
    kinds, archetype_of = np.unique(combined, return_inverse=True)
    labels = []
    for kind in kinds:
        parts = []
        for (name, k), b in zip(used, np.unravel_index(kind, [k for _, k in used])):
            who = archetype_of == len(labels)
            values = getattr(agents, name)[who]
            parts.append(f"{name} {number(float(values.min()))}..{number(float(values.max()))} (bin {int(b) + 1} of {k})")
        labels.append(", ".join(parts))
    return archetype_of.astype(np.int64).reshape(-1), labels


def quantile_bins(x: np.ndarray, k: int) -> np.ndarray:
    finite = np.isfinite(x)
    if k <= 1 or not finite.any():
        return np.zeros(x.shape[0], np.int64)
    cuts = np.quantile(x[finite], np.arange(1, k) / k)
    codes = np.searchsorted(cuts, x, side="right").astype(np.int64)
    codes[~finite] = k - 1
    return codes
