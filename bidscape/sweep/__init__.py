"""Parameter sweeps: a grid or a list of scenario variants x seeds, one run folder each, plus an index.

>>> from bidscape.sweep import load_sweep, read_index, run_sweep              # doctest: +SKIP
>>> result = run_sweep(load_sweep("data/sweeps/reserve.toml"), "runs/reserve")  # doctest: +SKIP
>>> read_index("runs/reserve").filter(status="complete")                       # doctest: +SKIP

The layout (``sweep.json``, ``index.arrow``, ``index.csv``, ``VARIANT/seed-N/``) is described
in ``docs/sweeps.md``; the command is ``bidscape sweep``.
"""

from bidscape.sweep.index import read_index
from bidscape.sweep.runner import SweepResult, run_sweep
from bidscape.sweep.spec import SweepSpec, Variant, load_sweep

__all__ = ["load_sweep", "SweepSpec", "Variant", "run_sweep", "SweepResult", "read_index"]
