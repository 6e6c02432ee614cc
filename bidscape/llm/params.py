"""The ``llm_proxy`` strategy's params and its ``llm_calls`` table."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bidscape.llm.endpoint import KEY_VARIABLES, url_problem

STATUSES = ("ok", "cached", "invalid_reply", "refused", "backend_error", "budget_exhausted", "replay_miss")

LLM_CALLS_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("population", pa.dictionary(pa.int16(), pa.string())),  # as in every other table of the run folder
    ("archetype", pa.int32()),  # 0-based, in the order of the bins
    ("archetype_label", pa.string()),
    ("members", pa.int64()),
    ("system", pa.string()),  # the system message
    ("prompt", pa.string()),  # the user message
    ("reply", pa.string()),  # the model's raw answer; null when there was none
    ("multiplier", pa.float64()),  # parsed from the reply; null when invalid or absent
    ("reason", pa.string()),
    ("applied_multiplier", pa.float64()),  # what the members bid with: the reply's or the fallback's
    ("status", pa.string()),  # one of STATUSES
    ("fallback", pa.bool_()),  # the fallback rule set the multiplier
    ("detail", pa.string()),  # why it failed, or a cache problem met on the way; else null
    ("cache_key", pa.string()),  # sha256 of the request (bidscape.llm.cache.cache_request)
    ("attempts", pa.int32()),  # HTTP requests made for this call, retries included
    ("latency_ms", pa.float64()),  # wall time of the lookup and call; for information only
])


class LlmProxyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: Optional[str] = Field(
        None, min_length=1, description="OpenAI-compatible API root, requests go to {base_url}/chat/completions "
        "(none: OPENAI_BASE_URL, else http://127.0.0.1:8080/v1; bidscape run --llm-base-url overrides it); "
        "an API key is only sent to loopback or to an endpoint you chose")
    model: str = Field("local", min_length=1, description="model name sent with each request (part of the cache key)")
    temperature: float = Field(0.0, ge=0, le=2, allow_inf_nan=False, description="sampling temperature")
    timeout_s: float = Field(30.0, gt=0, le=600, allow_inf_nan=False,
                             description="longest time one call may take, retries and waits included")
    retries: int = Field(2, ge=0, le=10, description="retries after a connection error, timeout, HTTP 429 or 5xx")
    backoff_s: float = Field(0.5, ge=0, le=60, allow_inf_nan=False,
                             description="wait before the first retry; doubles with each retry")
    backoff_max_s: float = Field(8.0, ge=0, le=600, allow_inf_nan=False,
                                 description="longest wait between retries (a Retry-After header may ask for more)")
    max_reply_bytes: int = Field(1 << 20, ge=1024, le=64 << 20,
                                 description="largest HTTP response accepted; larger ones are backend errors")
    max_calls: int = Field(10_000, ge=0, description="network calls allowed in the run (cache hits are free); "
                           "calls beyond it fall back")
    concurrency: int = Field(4, ge=1, le=64, description="archetype calls in flight at once")
    cache_dir: Optional[str] = Field(None, min_length=1, description="folder of the replay cache (none: no cache)")
    cache_endpoint: Optional[str] = Field(
        None, min_length=1, description="endpoint name in cache keys (none: the base URL called); give two "
        "servers the same name to share their cached answers")
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
    json_mode: Literal["none", "json_object", "json_schema", "json_schema_bounds"] = Field(
        "json_object", description="response_format sent to the server (none for servers without it; "
        "json_schema_bounds: the schema with minimum, maximum and maxLength, for llama.cpp's grammar)")
    max_tokens: int = Field(256, ge=1, le=100_000, description="output-token limit sent with each request")
    token_limit_field: Literal["auto", "max_completion_tokens", "max_tokens"] = Field(
        "auto", description="request field of the token limit; auto: max_tokens to loopback, "
        "max_completion_tokens elsewhere, and the other one after an HTTP 400 that names it")
    system_prompt: Optional[str] = Field(None, min_length=1, description="replaces the default system prompt "
                                         "({low}, {high}, {reason_chars} are filled in)")
    mechanism: Optional[str] = Field(None, min_length=1, description="mechanism named in prompts when the "
                                     "engine does not say")

    @model_validator(mode="before")
    @classmethod
    def _no_key_variable(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key_env" in data:
            if data["api_key_env"] in KEY_VARIABLES:  # names what is read anyway: run folders of older
                return {k: v for k, v in data.items() if k != "api_key_env"}  # versions hold the default
            raise ValueError(f"api_key_env = {data['api_key_env']!r} is not accepted: a scenario cannot choose "
                             f"which environment variable is sent as the API key; remove api_key_env (the key "
                             f"comes only from {' or else '.join(KEY_VARIABLES)})")
        return data

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: Optional[str]) -> Optional[str]:
        problem = url_problem(url) if url is not None else None
        if problem:
            raise ValueError(f"{problem}; give the API root, e.g. http://127.0.0.1:8080/v1")
        return url

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
