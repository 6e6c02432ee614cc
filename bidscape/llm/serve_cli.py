"""``bidscape llm serve``: the bundled model (Gemma 3 270M) as an OpenAI-compatible server on 127.0.0.1.

Registered in ``bidscape/cli.py`` with ``app.add_typer(llm_app, name="llm")``. The server runs
in this process (llama.cpp's threads); Ctrl-C, SIGTERM and SIGHUP stop it cleanly (exit 0).
Bad options, a port in use and a missing extra are input errors (exit 2, one message).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from bidscape.cli_help import Group, without_flag_types
from bidscape.errors import InputError, Problem
from bidscape.interrupts import stop_on_signals
from bidscape.llm.local import DEFAULT_PORT, PROHIBITED_USE_URL, TERMS_URL

llm_app = typer.Typer(cls=Group, no_args_is_help=True, add_completion=False,
                      help="A local language model for llm_proxy bidders (needs the llm extra).")


@llm_app.command()
def serve(
    port: int = typer.Option(DEFAULT_PORT, min=1, max=65535, help="Port on 127.0.0.1 (1 to 65535)."),
    threads: int = typer.Option(1, min=1, max=256, help="CPU threads for the model."),
    parallel: int = typer.Option(1, min=1, max=64, help="Requests decoded at once (llama.cpp slots)."),
    ctx: int = typer.Option(1024, min=256, max=131072, help="Context tokens per slot (prompt + reply)."),
    model: Optional[Path] = typer.Option(None, metavar="GGUF", show_default=False,
                                         help="Serve this GGUF file instead of the bundled Gemma 3 270M."),
    ready_timeout: float = typer.Option(120.0, min=1.0, help="Seconds to wait for the model to answer /health."),
    verbose: bool = typer.Option(False, "--verbose", help="Show llama.cpp's log."),
) -> None:
    """Serve a local model at http://127.0.0.1:PORT/v1 until Ctrl-C or SIGTERM.

    The default is the bundled Gemma 3 270M (Q4_K_M, about 240 MB, assembled into the user's cache on first use): offline, on the CPU, no API key. Gemma is provided under the Gemma Terms of Use (https://ai.google.dev/gemma/terms) and the Gemma Prohibited Use Policy (https://ai.google.dev/gemma/prohibited_use_policy), shown on first serve.

    Then, in another shell: bidscape run data/scenarios/llm_proxy.toml --llm-base-url http://127.0.0.1:8080/v1
    """  # noqa: E501 (paragraphs on one line: --help wraps them)
    from bidscape.llm.local import ServerNotReady, start

    typer.echo(f"bidscape llm serve: loading {model or 'Gemma 3 270M (bundled)'} ...", err=True)
    server = None
    try:
        with stop_on_signals():  # also while loading: a signal then stops the server as soon as it is up
            try:
                server = start(port, threads, parallel, ctx, model, ready_timeout, verbose)
            except ServerNotReady as error:
                raise InputError(Problem("", str(error), "check the options (--port, --ctx, --model); "
                                         "--verbose shows llama.cpp's log")) from None
            terms = f"; terms: {TERMS_URL}, {PROHIBITED_USE_URL}" if model is None else ""
            typer.echo(f"bidscape llm serve: {server.model} at {server.url} ({threads} thread(s), {parallel} "
                       f"slot(s), {ctx} tokens each){terms}", err=True)
            typer.echo(f"use it: bidscape run SCENARIO.toml --llm-base-url {server.url} "
                       f"--set populations.NAME.params.model={server.model} (Ctrl-C to stop)", err=True)
            while server.healthy(timeout_s=60.0):
                time.sleep(2.0)
            typer.echo("bidscape llm serve: the server stopped answering /health", err=True)
            raise typer.Exit(1)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: a server's normal stop (exit 0)
        typer.echo("bidscape llm serve: stopping", err=True)
    finally:
        if server is not None:
            server.stop()
    typer.echo("bidscape llm serve: stopped", err=True)


without_flag_types(llm_app)
