"""Whether the script that starts a sweep can be run again by the sweep's worker processes.

Pool workers are started with ``spawn``, which runs the main script again in every worker
(as ``__mp_main__``) so that what it defines can be unpickled there. A script that starts
the sweep at its top level, outside ``if __name__ == "__main__":``, would start it again in
each worker: Python refuses, the worker dies and the pool breaks. The workers need nothing
from such a script (they run bidscape's ``run_one`` on plain dicts), so they are started
without it, and import the modules that registered plug-ins themselves. Only a plug-in
defined in the script itself needs the script, and so the guard: that is an input error.
"""

from __future__ import annotations

import ast
import sys
import threading
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from bidscape.errors import InputError, Problem

GUARD = 'if __name__ == "__main__":'


def unguarded_start() -> Optional[str]:
    """``SCRIPT:LINE`` where the main script runs this sweep outside ``if __name__ == "__main__":``
    (so spawn would run that line again in every worker); None when it does not."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec_name = getattr(getattr(main, "__spec__", None), "name", "") or ""
    if main is None or path is None or spec_name.endswith("__main__"):
        return None  # interactive, -c, or a package's __main__: spawn does not run it again
    line = _top_level_line(main)
    if line is None:
        return None  # the script's top level has finished: it does not start sweeps when re-run
    return None if _guarded(Path(path), line) else f"{path}:{line}"


def plugin_modules() -> tuple[list[str], list[str]]:
    """Modules outside bidscape that registered strategies or mechanisms: (importable ones, ones
    defined in the main script)."""
    from bidscape.bidders import STRATEGIES
    from bidscape.mechanisms import MECHANISMS

    modules = {getattr(entry, "__module__", type(entry).__module__)
               for _, entry in [*STRATEGIES.items(), *MECHANISMS.items()]}
    outside = sorted(m for m in modules if m != "bidscape" and not m.startswith("bidscape."))
    in_script = [m for m in outside if m in ("__main__", "__mp_main__")]
    return [m for m in outside if m not in in_script], in_script


def check_workers_can_start() -> tuple[bool, list[str]]:
    """Whether to start workers without the main script, and the plug-in modules they import.

    Raises an ``InputError`` with the fix when the script must be re-run (it defines a plug-in)
    but would start the sweep again.
    """
    where = unguarded_start()
    if where is None:
        return False, []
    importable, in_script = plugin_modules()
    if in_script:
        raise InputError(Problem("", f"{where} starts a sweep on worker processes outside `{GUARD}`, "
                                 "and the script defines a strategy or mechanism the workers need: "
                                 "each worker would run the script, and so the sweep, again",
                                 f"put the code that runs the sweep under `{GUARD}` (or pass workers=1)"))
    return True, importable


@contextmanager
def main_hidden(hide: bool) -> Iterator[None]:
    """Processes spawned in the block do not run the main script (spawn runs only a ``__main__``
    with a file or a module name)."""
    if not hide:
        yield
        return
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _top_level_line(main: types.ModuleType) -> Optional[int]:
    """The line of the main script's top level that is running now (in the main thread)."""
    frame = sys._current_frames().get(threading.main_thread().ident)
    line = None
    while frame is not None:
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    return line


def _guarded(path: Path, line: int) -> bool:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return False  # cannot tell: start the workers without the script, which is safe
    return any(isinstance(node, ast.If) and _is_main_test(node.test) and
               node.body[0].lineno <= line <= (node.body[-1].end_lineno or line)
               for node in ast.walk(tree))


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"``, either way round."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))
