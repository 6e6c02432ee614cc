"""Names that become folder names (run names, sweep names, variant names): one safe path component.

A run named ``../../x`` would otherwise be written outside ``runs/``, and a sweep named
``..`` into the current folder; so such names may hold only letters, digits and
``. _ = , + -``, start with a letter or digit (never ``.`` or ``..``), and stay short
enough for the time stamp that follows them in a folder name.

>>> name_problem("../../x")
'cannot be a folder name (it would leave the output folder)'
>>> safe_folder_name("my sweep (v2)")
'my_sweep__v2_'
"""

from __future__ import annotations

import re
from typing import Annotated, Optional

from pydantic import AfterValidator, Field

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=,+-]*")
UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._=,+-]")
MAX_NAME = 120  # variant and sweep names
MAX_RUN_NAME = 100  # run names: runs/NAME-YYYYmmdd-HHMMSS-N (and NAME-pair for run-pair) stays short
RULE = "use letters, digits and . _ = , + - (at most {max} characters), starting with a letter or digit"


def name_problem(name: object, max_length: int = MAX_NAME) -> Optional[str]:
    """Why ``name`` cannot be a folder name (without the name itself), or None when it can."""
    if not isinstance(name, str):
        return "is not a name"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "cannot be a folder name (it would leave the output folder)"
    if len(name) > max_length:
        return f"is {len(name)} characters long, too long for a folder name"
    if not SAFE_NAME.fullmatch(name):
        return "cannot be a folder name"
    return None


def safe_folder_name(text: str, fallback: str = "run") -> str:
    """``text`` made into a folder name (unsafe characters become ``_``), for names taken from file names."""
    name = UNSAFE_CHARS.sub("_", text).lstrip("._=,+-")[:MAX_NAME]
    return name if name and not name_problem(name) else fallback


def _folder_name(max_length: int):
    def check(name: str) -> str:
        problem = name_problem(name, max_length)
        if problem:
            raise ValueError(f"{problem}; {RULE.format(max=max_length)}, e.g. \"my-run\"")
        return name

    return AfterValidator(check)


RunName = Annotated[str, Field(min_length=1), _folder_name(MAX_RUN_NAME)]
FolderName = Annotated[str, Field(min_length=1), _folder_name(MAX_NAME)]
