"""A what-if comparison as one self-contained HTML file (tables and inline SVG plots, no scripts).

Plots are drawn with matplotlib (Agg backend) into inline SVG, so the report opens
offline, in any browser, and can be mailed or archived as a single file.
"""

from __future__ import annotations

import html
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from bidscape import __version__

if TYPE_CHECKING:
    from bidscape.analysis.compare import Comparison

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; padding: 0 1rem; max-width: 1100px; color: #222;
       overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.92rem; display: block; max-width: 100%;
        overflow-x: auto; }
svg, img { max-width: 100%; height: auto; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
.by-segment th:nth-child(2), .by-segment td:nth-child(2) { text-align: left; }
.up { color: #1a7f37; } .down { color: #cf222e; } .flat { color: #666; }
.note { color: #555; font-size: 0.9rem; }
figure { margin: 1rem 0; }
.warning { background: #fff1f0; border: 2px solid #cf222e; color: #82071e; padding: 0.8rem 1rem; margin: 1rem 0;
           font-weight: 600; }
"""

PLOTTED = ("revenue", "mean_price", "sold_share", "efficiency")


def write_report(comparison: "Comparison", path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = comparison
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>bidscape what-if: "
             f"{html.escape(c.treatment)} vs {html.escape(c.baseline)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>What if: <em>{html.escape(c.treatment)}</em> instead of <em>{html.escape(c.baseline)}</em></h1>",
             f"<p class='note'>{len(c.seeds)} paired seed(s) ({_seed_list(c.seeds)}), common random numbers: "
             f"each seed sees the same auctions in both arms. Intervals at {c.level:.0%}. "
             f"bidscape {__version__}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.</p>"]
    for warning in c.warnings:  # first thing under the title: these effects are not what they seem
        parts.append(f"<div class='warning' role='alert'>Warning: {html.escape(warning)}</div>")
    if c.scenario_changes:
        parts.append("<h2>What changed</h2><table><tr><th>scenario field</th><th>baseline</th><th>treatment</th></tr>")
        for key, a, b in c.scenario_changes:
            parts.append(f"<tr><td>{html.escape(key)}</td><td>{html.escape(_short(a))}</td>"
                         f"<td>{html.escape(_short(b))}</td></tr>")
        parts.append("</table>")
    if c.unpaired:
        parts.append(f"<p class='note'>Left out, no partner seed: {html.escape(str(c.unpaired))}</p>")
    parts.append("<h2>Effects</h2>" + _effects_table(c.table, c.level))
    parts.append("<figure>" + _forest_svg(c) + "<figcaption class='note'>Relative change with its interval "
                 "(over seeds when there are two or more, else over rounds).</figcaption></figure>")
    if c.segments is not None:
        parts.append("<h2>By segment</h2>" + _effects_table(c.segments, c.level, first="segment"))
        parts.append("<figure>" + _segments_svg(c) + "<figcaption class='note'>Revenue per round of each segment "
                     "(dashed: baseline), mean over seeds.</figcaption></figure>")
    parts.append("<h2>Round by round</h2><figure>" + _rounds_svg(c) + "<figcaption class='note'>Mean over seeds "
                 "of each round.</figcaption></figure>")
    if len(c.seeds) >= 2:
        parts.append("<h2>Per seed</h2><figure>" + _per_seed_svg(c) + "<figcaption class='note'>Revenue difference "
                     "of each paired seed.</figcaption></figure>")
    parts.append("<h2>Method</h2><p class='note'>Over seeds: paired differences of the whole-run metric, Student-t "
                 "interval; relative changes by the delta method. Over rounds: the round-by-round differences "
                 "(averaged over seeds) in consecutive batches, Student-t over the batch means, which tolerates "
                 "the autocorrelation of learning and budgets from round to round.</p></body></html>")
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text("\n".join(parts), encoding="utf-8")
    temporary.replace(path)
    return path


def _seed_list(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds)) if len(seeds) <= 8 else f"{seeds[0]} ... {seeds[-1]}"


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fmt(x, relative: bool = False) -> str:
    if x is None:
        return "-"
    if relative:
        return f"{x:+.2%}"
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _effects_table(table, level: float, first: Optional[str] = None) -> str:
    """One row per effect (``Comparison.table``, or ``segments`` with ``first="segment"``)."""
    head = f"<table class='by-segment'><tr><th>{first}</th>" if first else "<table><tr>"
    rows = [f"{head}<th>metric</th><th>baseline</th><th>treatment</th><th>difference</th>"
            f"<th>{level:.0%} interval</th><th>relative</th><th>relative interval</th><th>p</th>"
            "<th>interval over</th></tr>"]
    for r in table.iter_rows(named=True):
        lead = f"<td>{html.escape(str(r[first]))}</td>" if first else ""
        if r["difference"] is None:
            rows.append(f"<tr>{lead}<td>{r['metric']}</td><td colspan='8' class='flat'>"
                        f"{html.escape(r['method'])}</td></tr>")
            continue
        low, high = r["ci_low"], r["ci_high"]
        css = "flat" if low is None or (low <= 0 <= high) else ("up" if low > 0 else "down")
        interval = "-" if low is None else f"[{fmt(low)}, {fmt(high)}]"
        rel_interval = "-" if r["relative_ci_low"] is None else \
            f"[{fmt(r['relative_ci_low'], True)}, {fmt(r['relative_ci_high'], True)}]"
        p = "-" if r["p_value"] is None else f"{r['p_value']:.3g}"
        rows.append(f"<tr>{lead}<td>{r['metric']}</td><td>{fmt(r['baseline'])}</td><td>{fmt(r['treatment'])}</td>"
                    f"<td class='{css}'>{fmt(r['difference'])}</td><td>{interval}</td>"
                    f"<td class='{css}'>{fmt(r['relative'], True)}</td><td>{rel_interval}</td><td>{p}</td>"
                    f"<td class='flat'>{html.escape(r['method'])}</td></tr>")
    return "".join(rows) + "</table>"


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _forest_svg(c: "Comparison") -> str:
    plt = _pyplot()
    rows = [r for r in c.table.iter_rows(named=True) if r["relative"] is not None]
    figure, axis = plt.subplots(figsize=(8, 0.35 * len(rows) + 1))
    for i, r in enumerate(reversed(rows)):
        low, high = r["relative_ci_low"], r["relative_ci_high"]
        if low is not None:
            axis.plot([low * 100, high * 100], [i, i], color="#555")
        axis.plot([r["relative"] * 100], [i], "o", color="#0969da")
    axis.axvline(0, color="#999", lw=0.8)
    axis.set_yticks(range(len(rows)), [r["metric"] for r in reversed(rows)])
    axis.set_xlabel("change, %")
    return _svg(figure)


def _rounds_svg(c: "Comparison") -> str:
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(PLOTTED), figsize=(3.2 * len(PLOTTED), 2.8))
    for axis, metric in zip(axes, PLOTTED):
        for arm, colour in (("baseline", "#888"), ("treatment", "#0969da")):
            part = c.by_round.filter(c.by_round["arm"] == arm)
            axis.plot(part["round"].to_list(), part[metric].to_list(), color=colour, label=arm)
        axis.set_title(metric.replace("_", " "), fontsize=10)
        axis.set_xlabel("round")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    return _svg(figure)


def _segments_svg(c: "Comparison") -> str:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    segments = c.segments["segment"].unique(maintain_order=True).to_list()
    for i, segment in enumerate(segments):
        for arm, style in (("baseline", "--"), ("treatment", "-")):
            part = c.segments_by_round.filter((c.segments_by_round["arm"] == arm)
                                              & (c.segments_by_round["segment"] == segment))
            axis.plot(part["round"].to_list(), part["revenue"].to_list(), style, color=colours[i % len(colours)],
                      label=f"{segment} ({arm})")
    axis.set_xlabel("round")
    axis.set_ylabel("revenue")
    axis.legend(fontsize=8, ncol=2)
    return _svg(figure)


def _per_seed_svg(c: "Comparison") -> str:
    plt = _pyplot()
    part = c.per_seed.filter(c.per_seed["metric"] == "revenue")
    figure, axis = plt.subplots(figsize=(8, 2.5))
    axis.bar([str(s) for s in part["seed"].to_list()], part["difference"].to_list(), color="#0969da")
    axis.axhline(0, color="#999", lw=0.8)
    axis.set_xlabel("seed")
    axis.set_ylabel("revenue difference")
    return _svg(figure)
