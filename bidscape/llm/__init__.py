"""Language-model plumbing for the experimental ``llm_proxy`` strategy.

- ``client``: an OpenAI-compatible chat-completions client (standard library HTTP), each
  call bounded in time and size.
- ``endpoint``: where calls go and when the API key goes with them (``user_base_url``).
- ``cache``: the on-disk replay cache (atomic writes, corrupt entries are misses).
- ``params``: the ``llm_proxy`` params and the ``llm_calls`` table schema.
- ``prompts``: archetype situations rendered as deterministic prompts, the reply schema.
- ``testing``: a tiny local chat-completions server for tests, benchmarks and demos.
- ``local``: a real model, offline: Gemma 3 270M on llama.cpp (``local_server()``; the ``llm`` extra).

Names are imported on first use, so that registering the strategy does not load
``http.client`` and ``ssl`` into every ``bidscape`` command.
"""

from importlib import import_module

_EXPORTS = {
    "BackendError": "client", "ChatClient": "client", "Completion": "client",
    "Lookup": "cache", "ReplayCache": "cache", "cache_request": "cache", "request_key": "cache",
    "Endpoint": "endpoint", "api_key": "endpoint", "resolve": "endpoint", "user_base_url": "endpoint",
    "DEFAULT_SYSTEM_PROMPT": "prompts", "InvalidReply": "prompts", "Situation": "prompts",
    "build_messages": "prompts", "parse_reply": "prompts", "render_user_prompt": "prompts",
    "reply_json_schema": "prompts", "reply_model": "prompts", "system_prompt": "prompts",
    "LocalServer": "local", "ServerNotReady": "local", "local_server": "local",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"bidscape.llm.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'bidscape.llm' has no attribute '{name}'")
