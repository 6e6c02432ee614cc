"""LLM proxy (experimental): a language model sets the bid multiplier of advertiser archetypes.

At the start, the population's agents are grouped into *archetypes* by quantile bins of
their attributes (``bins = {value_scale = 2, budget = 2}``: 4 archetypes, below/above the
median of each). Before every round the strategy sends ONE prompt per archetype (never
per agent) to an OpenAI-compatible chat-completions endpoint, summarising the archetype's
situation: round and rounds left, members, budget left, last round's spend, wins, value
and mean price, its current multiplier, the mechanism. The model answers
``{"multiplier": x, "reason": "..."}`` and ``x`` becomes every member's multiplier.

Replies that are not valid JSON of that schema (or out of range), and backend failures
(connection refused, HTTP errors after retries, timeouts, the ``max_calls`` budget
spent) fall back to a declared rule (``fallback``): ``keep`` the archetype's last
multiplier, ``truthful`` (1.0), or ``pacing`` (a simple budget-pacing step). Fallbacks
are counted and recorded; they never stop a run.

``mode`` and ``cache_dir`` give an on-disk replay cache keyed by (model, messages,
temperature): ``live`` and ``record`` serve hits from the cache and store what the server
answers; ``replay`` never touches the network (a miss is a fallback). A run replayed from
the cache is identical to the recorded run. Every call is a row of ``llm_calls.arrow``.

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
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Optional

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy
from bidscape.llm.cache import ReplayCache, request_key
from bidscape.llm.prompts import (InvalidReply, Situation, build_messages, number, parse_reply,
                                  reply_json_schema, system_prompt)

if TYPE_CHECKING:
    from bidscape.llm.client import ChatClient

log = logging.getLogger("bidscape.llm")

ATTRIBUTES = ("value_scale", "budget")  # what archetypes can be binned by, in label order

STATUSES = ("ok", "cached", "invalid_reply", "backend_error", "budget_exhausted", "replay_miss")

LLM_CALLS_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("population", pa.string()),
    ("archetype", pa.int32()),  # 0-based, in the order of the bins
    ("archetype_label", pa.string()),
    ("members", pa.int64()),
    ("system", pa.string()),  # the system message
    ("prompt", pa.string()),  # the user message
    ("reply", pa.string()),  # the model's raw answer; null when there was none
    ("multiplier", pa.float64()),  # parsed from the reply; null when invalid or absent
    ("reason", pa.string()),
    ("applied_multiplier", pa.float64()),  # what the members bid with: the reply's or the fallback's
    ("status", pa.string()),  # ok, cached, invalid_reply, backend_error, budget_exhausted, replay_miss
    ("fallback", pa.bool_()),  # the fallback rule set the multiplier
    ("detail", pa.string()),  # why it failed, or a cache problem met on the way; else null
    ("cache_key", pa.string()),  # sha256 of (model, messages, temperature)
    ("attempts", pa.int32()),  # HTTP requests made for this call, retries included
    ("latency_ms", pa.float64()),  # wall time of the lookup and call; for information only
])


class LlmProxyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field("http://127.0.0.1:8080/v1", min_length=1,
                          description="OpenAI-compatible API root; requests go to {base_url}/chat/completions")
    model: str = Field("local", min_length=1, description="model name sent with each request (part of the cache key)")
    api_key_env: str = Field("OPENAI_API_KEY", min_length=1,
                             description="environment variable holding the API key (unset: no key is sent)")
    temperature: float = Field(0.0, ge=0, le=2, allow_inf_nan=False, description="sampling temperature")
    timeout_s: float = Field(30.0, gt=0, le=600, allow_inf_nan=False, description="socket timeout per request")
    retries: int = Field(2, ge=0, le=10, description="retries after a connection error, timeout, HTTP 429 or 5xx")
    backoff_s: float = Field(0.5, ge=0, le=60, allow_inf_nan=False,
                             description="wait before the first retry; doubles with each retry")
    backoff_max_s: float = Field(8.0, ge=0, le=600, allow_inf_nan=False, description="longest wait between retries")
    max_calls: int = Field(10_000, ge=0, description="network calls allowed in the run (cache hits are free); "
                           "calls beyond it fall back")
    concurrency: int = Field(4, ge=1, le=64, description="archetype calls in flight at once")
    cache_dir: Optional[str] = Field(None, min_length=1, description="folder of the replay cache (none: no cache)")
    mode: Literal["live", "record", "replay"] = Field(
        "live", description="live/record: cache hits are served, misses call the server and are stored "
        "(record needs cache_dir); replay: cache only, a miss falls back")
    fallback: Literal["keep", "truthful", "pacing"] = Field(
        "keep", description="multiplier when there is no valid reply: keep the last one, 1.0, or a pacing step")
    bins: dict[Literal["value_scale", "budget"], Annotated[int, Field(ge=1, le=16)]] = Field(
        default_factory=lambda: {"value_scale": 2, "budget": 2},
        description="quantile bins per attribute; archetypes are the non-empty combinations")
    min_multiplier: float = Field(0.0, ge=0, le=100, allow_inf_nan=False, description="lowest multiplier allowed")
    max_multiplier: float = Field(2.0, gt=0, le=100, allow_inf_nan=False, description="highest multiplier allowed")
    initial_multiplier: float = Field(1.0, ge=0, le=100, allow_inf_nan=False,
                                      description="each archetype's multiplier before the first reply")
    max_reason_chars: int = Field(200, ge=1, le=4000, description="longest reason accepted")
    json_mode: Literal["none", "json_object", "json_schema"] = Field(
        "json_object", description="response_format sent to the server (none for servers without it)")
    max_tokens: int = Field(256, ge=1, le=100_000, description="max_tokens sent with each request")
    system_prompt: Optional[str] = Field(None, min_length=1, description="replaces the default system prompt "
                                         "({low}, {high}, {reason_chars} are filled in)")
    mechanism: Optional[str] = Field(None, min_length=1, description="mechanism named in prompts when the "
                                     "engine does not say")

    @model_validator(mode="after")
    def _consistent(self) -> "LlmProxyParams":
        if self.min_multiplier > self.max_multiplier:
            raise ValueError(f"min_multiplier {self.min_multiplier:g} is above max_multiplier "
                             f"{self.max_multiplier:g}; make min_multiplier <= max_multiplier")
        if not self.min_multiplier <= self.initial_multiplier <= self.max_multiplier:
            raise ValueError(f"initial_multiplier {self.initial_multiplier:g} is outside [{self.min_multiplier:g}, "
                             f"{self.max_multiplier:g}]; choose one inside the multiplier bounds")
        if self.mode in ("record", "replay") and self.cache_dir is None:
            raise ValueError(f'mode "{self.mode}" needs a cache; set cache_dir = "path/to/cache"')
        return self


@dataclass
class _Call:
    """One archetype's call in one round, as it goes into ``llm_calls``."""

    messages: list[dict[str, str]]
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
        self.counts: Counter[str] = Counter()  # statuses, plus "fallback", "cache_corrupt", "cache_write_error"
        self._client: Optional["ChatClient"] = None
        self._pool: Optional[ThreadPoolExecutor] = None
        self._cache: Optional[ReplayCache] = ReplayCache(params.cache_dir) if params.cache_dir else None
        self._warned: set[str] = set()

    # ---- the strategy interface ----
    def set_params(self, params: LlmProxyParams) -> None:
        """New settings from an event; archetypes (``bins``) stay as they were at the start."""
        self._close_client()
        self._cache = ReplayCache(params.cache_dir) if params.cache_dir else None
        super().set_params(params)

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
        calls, pending = [], []
        for messages in all_messages:
            started = time.perf_counter()
            call = _Call(messages, request_key(p.model, messages, p.temperature))
            calls.append(call)
            if self._cache is not None:
                lookup = self._cache.get(p.model, messages, p.temperature)
                if lookup.hit:
                    call.status, call.reply = "cached", lookup.reply
                    self._parse(call)
                    call.latency_ms = (time.perf_counter() - started) * 1e3
                    continue
                if lookup.corrupt:
                    self.counts["cache_corrupt"] += 1
                    call.note(lookup.corrupt)
                    log.warning("llm_proxy '%s': %s (treated as a miss)", self.agents.name, lookup.corrupt)
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

        p = self.params
        started = time.perf_counter()
        try:
            completion = client.complete(call.messages, p.temperature)
        except BackendError as error:
            call.status, call.attempts = "backend_error", error.attempts
            call.note(f"{error.kind}: {error}")
        except Exception as error:  # never let a client bug end a long run
            call.status = "backend_error"
            call.note(f"client failed: {type(error).__name__}: {error}")
        else:
            call.status, call.reply, call.attempts = "ok", completion.text, completion.attempts
            if self._cache is not None:
                try:
                    self._cache.put(p.model, call.messages, p.temperature, completion.text)
                except OSError as error:
                    call.cache_write_failed = True  # counted by the caller, not from this thread
                    call.note(f"cache write failed: {error}")
            self._parse(call)
        call.latency_ms += (time.perf_counter() - started) * 1e3

    def _parse(self, call: _Call) -> None:
        p = self.params
        try:
            call.multiplier, call.reason = parse_reply(call.reply or "", p.min_multiplier, p.max_multiplier,
                                                       p.max_reason_chars)
        except InvalidReply as error:
            call.note(f"invalid reply: {error}")
            call.status = "invalid_reply"

    def _connect(self) -> "ChatClient":
        if self._client is None:
            from bidscape.llm.client import ChatClient  # loads http.client and ssl: only when needed

            p = self.params
            response_format = None
            if p.json_mode == "json_object":
                response_format = {"type": "json_object"}
            elif p.json_mode == "json_schema":
                response_format = {"type": "json_schema", "json_schema": {
                    "name": "bid_multiplier", "strict": True,
                    "schema": reply_json_schema(p.min_multiplier, p.max_multiplier, p.max_reason_chars)}}
            self._client = ChatClient(p.base_url, p.model, api_key=os.environ.get(p.api_key_env) or None,
                                      timeout_s=p.timeout_s, retries=p.retries, backoff_s=p.backoff_s,
                                      backoff_max_s=p.backoff_max_s, max_tokens=p.max_tokens,
                                      response_format=response_format)
        return self._client

    def _close_client(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _warn(self, call: _Call) -> None:
        if call.status not in self._warned:  # once per kind: a long run must not flood the log
            self._warned.add(call.status)
            log.warning("llm_proxy '%s': %s, falling back to '%s' (%s); later ones are only counted",
                        self.agents.name, call.status, self.params.fallback, call.detail)


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
