"""What the dashboard tests share: driving a page through AppTest, and the market with segments they look at.

``conftest.app`` starts the dashboard on a module's ``root`` fixture; ``select``, ``ok`` and ``charts``
drive and check it. ``segment_scenario`` is the small market with traffic of the Segments page's
tests (``test_dashboard_segments.py``, ``test_dashboard_browser.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import bidscape

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

TIMEOUT = 60  # seconds a page may take to run under AppTest
CURVE = [0.5, 1.0, 1.5]


def select(at: "AppTest", kind: str, path: Path) -> "AppTest":
    """Pick ``kind`` (run, group, sweep) and then ``path`` in the sidebar."""
    at.sidebar.button_group(key="pick_kind").set_value(kind).run()
    at.sidebar.selectbox(key=f"pick_{kind}").set_value(str(path.resolve())).run()
    return at


def ok(at: "AppTest") -> None:
    """The page ran without an exception or an error box."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: "AppTest") -> list:
    return list(at.get("vega_lite_chart")) + list(at.get("arrow_vega_lite_chart"))


def segment_scenario(traffic: bool = True, channels: bool = False) -> bidscape.Scenario:
    """Two segments (news-mobile 60%, sports-desktop 40%) on a three-round traffic curve; a population that
    targets sports-desktop. ``traffic=False``: the same market without context; ``channels``: two channels."""
    spec = {
        "run": {"name": "segments", "seed": 3, "rounds": 3, "auctions_per_round": 2_000, "record_agents": "none",
                "auction_sample_rate": 0.2},
        "mechanism": {"type": "second_price", "reserve": 0.05},
        "market": {"bidders_per_auction": 3},
        "populations": [
            {"name": "broad", "size": 40, "strategy": "truthful", "values": {"dist": "uniform", "low": 0, "high": 1}},
            {"name": "sports", "size": 20, "strategy": "truthful", "targets": ["sports-desktop"],
             "values": {"dist": "uniform", "low": 0.5, "high": 2}}],
    }
    if traffic:
        spec["traffic"] = {"curve": CURVE, "segments": [{"name": "news-mobile", "share": 0.6},
                                                        {"name": "sports-desktop", "share": 0.4}]}
    else:
        for population in spec["populations"]:
            population.pop("targets", None)
    if channels:
        spec["channels"] = [{"name": "premium", "auctions_per_round": 500}, {"name": "open"}]
    return bidscape.Scenario.from_dict(spec)
