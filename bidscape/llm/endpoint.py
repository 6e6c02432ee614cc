"""Where LLM calls go, and when an API key goes with them.

A scenario file is untrusted input: running someone else's scenario must never send one
of the user's secrets to a server the scenario picked. So:

- the key comes only from fixed variables, ``BIDSCAPE_LLM_API_KEY`` (wins) or
  ``OPENAI_API_KEY``; a scenario cannot name another variable;
- the endpoint is, first match wins: the user's choice for this run (``bidscape run
  --llm-base-url URL``, or ``user_base_url(URL)`` in Python), the scenario's
  ``params.base_url``, ``OPENAI_BASE_URL``, ``http://127.0.0.1:8080/v1``;
- a key is sent only to loopback or to an origin (scheme, host, port) the user chose
  outside the scenario file (``--llm-base-url``, ``OPENAI_BASE_URL``). A scenario that
  names any other endpoint while a key is set is refused (``InputError``, exit 2) before
  anything is sent. Without a key, any endpoint is called, with no key.
"""

from __future__ import annotations

import ipaddress
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Optional
from urllib.parse import urlsplit

from bidscape.errors import InputError, Problem

KEY_VARIABLES = ("BIDSCAPE_LLM_API_KEY", "OPENAI_API_KEY")  # the first one set (non-empty) wins
BASE_URL_VARIABLE = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"
CLI_OPTION = "--llm-base-url"

# The user's endpoint for runs started inside ``user_base_url``. A module-level setting, not a
# context variable: it must still hold if a run's strategies are built in another thread.
_chosen: Optional[str] = None


def url_problem(url: str) -> Optional[str]:
    """Why ``url`` cannot be an API root, or None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        return f"{url!r} is not a URL ({error})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return f"{url!r} holds a user name or password (they would be sent in clear and recorded)"
    if parts.query or parts.fragment:
        return f"{url!r} has a query or fragment (an API root has neither)"
    return None


def normalized(url: str) -> str:
    """``url`` with the scheme and host in lower case, the port explicit, no trailing slash."""
    parts = urlsplit(url.strip())
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}:{port}{parts.path.rstrip('/')}"


def origin(url: str) -> str:
    """Scheme, host and port: what a key is trusted to."""
    parts = urlsplit(normalized(url))
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback(url: str) -> bool:
    """The host is ``localhost`` or a loopback address (names are not resolved)."""
    host = (urlsplit(url.strip()).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


@contextmanager
def user_base_url(url: Optional[str]) -> Iterator[None]:
    """LLM calls of runs started inside go to ``url``, the user's choice (None: no choice).

    It overrides the scenarios' ``base_url`` and may receive the API key.
    """
    global _chosen
    if url is not None:
        problem = url_problem(url)
        if problem:
            raise InputError(Problem(CLI_OPTION, problem, "give the API root, e.g. https://api.openai.com/v1"))
    before, _chosen = _chosen, url
    try:
        yield
    finally:
        _chosen = before


def api_key() -> tuple[Optional[str], Optional[str]]:
    """``(variable, key)`` of the first key variable set, or ``(None, None)``."""
    for name in KEY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None, None


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    source: str  # CLI_OPTION, "params.base_url", BASE_URL_VARIABLE or "default"
    api_key: Optional[str] = field(default=None, repr=False)  # None: no Authorization header
    key_variable: Optional[str] = None


def resolve(scenario_base_url: Optional[str], where: str, calls: bool = True) -> Endpoint:
    """The endpoint and key for a strategy whose ``base_url`` param is ``scenario_base_url``.

    ``where`` names that param in messages; ``calls=False`` (replay: nothing is sent)
    skips the key rule. Raises ``InputError`` when a key would go where the user did not say.
    """
    environment = os.environ.get(BASE_URL_VARIABLE, "").strip() or None
    if environment is not None and url_problem(environment):
        raise InputError(Problem(BASE_URL_VARIABLE, url_problem(environment) or "",
                                 "set it to an API root such as https://api.openai.com/v1, or unset it"))
    if _chosen is not None:
        url, source = _chosen, CLI_OPTION
    elif scenario_base_url is not None:
        url, source = scenario_base_url, "params.base_url"
    elif environment is not None:
        url, source = environment, BASE_URL_VARIABLE
    else:
        url, source = DEFAULT_BASE_URL, "default"
    variable, key = api_key()
    if key is None:
        return Endpoint(url, source)
    trusted = {origin(u) for u in (_chosen, environment) if u is not None}
    if is_loopback(url) or origin(url) in trusted:
        return Endpoint(url, source, key, variable)
    if not calls:
        return Endpoint(url, source)
    raise InputError(Problem(
        where, f"the scenario sends LLM calls to {url!r}, an endpoint you did not choose, and an API key is "
        f"set ({variable}): a key only goes to loopback or to the endpoint you choose ({CLI_OPTION}, "
        f"{BASE_URL_VARIABLE}), never to one named in a scenario file",
        f"if you trust that server, choose it yourself: bidscape run ... {CLI_OPTION} {url} (or export "
        f"{BASE_URL_VARIABLE}={url}); to call it without a key, unset {' and '.join(KEY_VARIABLES)}; "
        f"or remove base_url from the scenario to use your own endpoint"))
