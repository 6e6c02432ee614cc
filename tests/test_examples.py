"""Every script in examples/ runs at its small size (the same command CI users would type)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPECTED = {  # a line of each script's findings
    "second_to_first_price.py": "utility/win 0.0000",
    "agency_pacing.py": "joint pacing",
    "reserve_sweep.py": "best reserve in the sweep: 0.5",
    "pacing_on_off.py": "the pacers themselves",
    "what_if_report.py": "report:",
    # model.steps and simulation.round: the model really stepped the market once per round
    "mesa_market.py": "MarketModel: 10 steps = 10 rounds",
    "llm_bidders.py": "second_price: ",  # a real model (the llm extra): what it chose per format
    "common_value_revenue.py": "of (n-1)/(n+1) E[c] = 0.60 for every sigma",
    "narrowing_targeting.py": "Narrowing to news: the brand's own welfare",
    "traffic_curve_pacing.py": "gives the pacers the most utility",
    "ctr_prediction_noise.py": "with perfect click prediction truthful VCG is efficient",
    "segment_learners.py": "segment_pacing steers its budget to the split",
    "target_cpa_conversions.py": "target_cpa converts",
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)
    assert all(line.strip() for line in EXPECTED.values())  # "" is in any output: a check that cannot fail


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path):
    if script == "mesa_market.py":
        pytest.importorskip("mesa")
    if script == "llm_bidders.py":
        pytest.importorskip("xllamacpp")
    args = [sys.executable, str(EXAMPLES / script), "--small"]
    if script != "mesa_market.py":
        args += ["--out", str(tmp_path / "out")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert EXPECTED[script] in result.stdout
