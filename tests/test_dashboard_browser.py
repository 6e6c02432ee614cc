"""End to end: the dashboard served by Streamlit, every page opened in headless Chromium.

Skipped without selenium, /usr/bin/chromium or /usr/bin/chromedriver. Screenshots go to
the test's tmp_path and, when $BIDSCAPE_SCREENSHOT_DIR is set, there too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import polars as pl
import pytest

pytest.importorskip("streamlit")
selenium = pytest.importorskip("selenium", reason="selenium is not installed")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from bidscape.dashboards.cli import streamlit_command, streamlit_env  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# url path, text that shows the page rendered, least number of charts
PAGES = [
    ("", "Price of anarchy", 0),
    ("time-series", "Spend against budget", 7),
    ("distributions", "Sample of", 5),
    ("populations", "By channel and population", 0),
    ("ab", "Relative change with its interval", 3),
    ("sweep", "Runs", 1),
    ("downloads", "Download market.csv", 0),
]


def make_browser_root(root: Path) -> Path:
    """What the browser test looks at: a sweep whose variants are reserve=0.25 and reserve=0.5 (2 seeds
    each), a GSP run paying per click, and a run with an unbudgeted population (``brand``)."""
    from test_dashboard import SCENARIO

    import bidscape

    (root.parent / "dash.toml").write_text(SCENARIO)
    scenario = bidscape.Scenario.from_toml(root.parent / "dash.toml").with_updates({"run.rounds": 3})
    bidscape.run(scenario, out=root / "single")
    gsp = scenario.with_updates({"mechanism.type": "gsp", "mechanism.slot_ctrs": [0.3, 0.15, 0.05],
                                 "mechanism.pricing": "click", "run.auction_sample_rate": 0.5, "channels": []})
    bidscape.run(gsp, out=root / "gsp")
    rows = []
    for reserve in (0.25, 0.5):
        variant = f"reserve={reserve:g}"
        for seed in (1, 2):
            path = f"{variant}/seed-{seed}"
            result = bidscape.run(scenario.with_updates({"mechanism.reserve": reserve}), out=root / "sweep" / path,
                                  seed=seed)
            rows.append({"run_id": path, "variant": variant, "seed": seed, "path": path, "status": "complete",
                         "wall_seconds": result.manifest["wall_seconds"], "error": None, "mechanism.reserve": reserve})
    pl.DataFrame(rows).write_ipc(root / "sweep" / "index.arrow")
    (root / "sweep" / "sweep.json").write_text(json.dumps({"name": "reserve", "swept_keys": ["mechanism.reserve"]}))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 40) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit did not become healthy in {timeout} s:\n{log.read_text()[-3000:]}")


@contextmanager
def served(root: Path, tmp_path: Path):
    """The dashboard on ``root`` served by Streamlit on a free port (log in ``tmp_path``): yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    env = {**streamlit_env(root), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    with open(log, "w") as output:
        server = subprocess.Popen(streamlit_command(root, port=port), env=env, stdout=output,
                                  stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def idle(driver) -> bool:
    """The script run finished: no running indicator, no spinner."""
    return not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"], [data-testid="stSpinner"]')


def test_every_page_renders_in_chromium(tmp_path):
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs /usr/bin/chromium and /usr/bin/chromedriver")
    from test_dashboard import make_root

    root = make_root(tmp_path / "runs", old=False)
    driver = None
    shots = []
    with served(root, tmp_path) as url:
        try:
            driver = chromium()
            driver.get(url)
            for path, text, charts in PAGES:
                if path:  # navigate inside the session, as a person would: the sidebar's link
                    nav_link(driver, path).click()
                shots.append(rendered(driver, path, text, charts, tmp_path))  # checks text, charts, no error
            assert len(shots) == len(PAGES) and all(shot.stat().st_size > 0 for shot in shots)
            shutil.copy(shots[0], tmp_path / "dashboard.png")
            shots.append(tmp_path / "dashboard.png")
            target = os.environ.get("BIDSCAPE_SCREENSHOT_DIR")
            if target:
                Path(target).mkdir(parents=True, exist_ok=True)
                for shot in shots:
                    shutil.copy(shot, Path(target) / shot.name)
        finally:
            if driver is not None:
                driver.quit()


def nav_link(driver, path: str):
    """The sidebar's link to page ``path``, once it is there."""
    return WebDriverWait(driver, 20).until(lambda d: next(
        (a for a in d.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNavLink"]')
         if a.get_attribute("href").rstrip("/").endswith("/" + path)), None))


def rendered(driver, path: str, text: str, charts: int, tmp_path: Path) -> Path:
    """Wait until page ``path`` shows ``text`` and at least ``charts`` charts, check that it shows no exception,
    error or traceback, and return its screenshot (in ``tmp_path``)."""
    try:
        WebDriverWait(driver, 30, poll_frequency=0.25).until(
            lambda d: text in d.find_element(By.TAG_NAME, "body").text and idle(d))
        WebDriverWait(driver, 15, poll_frequency=0.25).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')) >= charts)
    except TimeoutException:
        shot = tmp_path / f"failed-{path or 'overview'}.png"
        driver.save_screenshot(str(shot))
        pytest.fail(f"page '/{path}' did not show {text!r} (and {charts} charts); screenshot {shot}")
    time.sleep(0.5)  # let the charts draw
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), path
    errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')]
    assert not errors, (path, errors)
    assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text
    shot = tmp_path / f"dashboard-{path or 'overview'}.png"
    driver.save_screenshot(str(shot))
    return shot


def chromium(width: int = 1400, height: int = 1000):
    """Headless Chromium that logs every network request (the performance log)."""
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def requested(driver) -> set[str]:
    """Every URL the page asked for since the last call: network requests and the DOM's resource URLs."""
    urls = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    urls.update(driver.execute_script(
        "return [...document.querySelectorAll('link[href], script[src], img[src], iframe[src]')]"
        ".map(e => e.href || e.src)"))
    return urls


def leaving(urls: set[str], host: str) -> list[str]:
    return sorted(u for u in urls if not u.startswith((f"http://{host}", f"ws://{host}", "data:", "blob:")))


def cells(driver, header: str) -> list[str]:
    """The text of every cell under the column ``header`` of the tables on the page (the grid's DOM copy)."""
    texts = []
    for grid in driver.find_elements(By.CSS_SELECTOR, 'table[role="grid"]'):
        heads = [h for h in grid.find_elements(By.CSS_SELECTOR, "th") if h.get_attribute("textContent") == header]
        for head in heads:
            index = head.get_attribute("aria-colindex")
            texts += [c.get_attribute("textContent") for c in
                      grid.find_elements(By.CSS_SELECTOR, f'td[role="gridcell"][aria-colindex="{index}"]')]
    return texts


def chart_texts(driver) -> list[str]:
    return [t.get_attribute("textContent") for t in
            driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"] svg text')]


def show(driver, text: str, path: Optional[str] = None, kind: Optional[str] = None) -> None:
    """Open page ``path`` (sidebar link) or pick ``kind`` in the sidebar, and wait until ``text`` shows."""
    if kind:
        next(b for b in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebar"] button')
             if b.text.strip() == kind).click()
    if path:
        WebDriverWait(driver, 20).until(lambda d: next(
            (a for a in d.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNavLink"]')
             if a.get_attribute("href").rstrip("/").endswith("/" + path)), None)).click()
    time.sleep(0.5)  # the rerun starts
    WebDriverWait(driver, 30, poll_frequency=0.25).until(
        lambda d: text in d.find_element(By.TAG_NAME, "body").text and idle(d))
    time.sleep(1.0)  # let the charts and grids draw


def pick_run(driver, name: str) -> None:
    """Choose the run whose label starts with ``name`` in the sidebar's selectbox."""
    driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSelectbox"]').click()
    next(o for o in driver.find_elements(By.CSS_SELECTOR, '[role="option"]') if o.text.startswith(name)).click()


def test_what_a_user_sees(tmp_path):
    """Full variant names, "unlimited" budgets, cost per click of a GSP, nothing fetched off the host,
    and the HTML report within a 1300 px window. Screenshots under tmp_path (and $BIDSCAPE_SCREENSHOT_DIR)."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs /usr/bin/chromium and /usr/bin/chromedriver")
    from bidscape.analysis.compare import compare
    from bidscape.analysis.report import write_report

    root = make_browser_root(tmp_path / "runs")
    report = write_report(compare(str(root / "sweep" / "reserve=0.25"), str(root / "sweep" / "reserve=0.5")),
                          tmp_path / "report.html")
    driver = None
    shots = []
    problems = []  # every check runs (one server start is the expensive part), then all failures are reported

    def check(passed: bool, what: str, seen) -> None:
        if not passed:
            problems.append((what, seen))

    def shot(name: str) -> None:
        shots.append(tmp_path / f"seen-{name}.png")
        driver.save_screenshot(str(shots[-1]))

    with served(root, tmp_path) as url:
        host = url.removeprefix("http://")
        try:
            driver = chromium()
            driver.get(url)
            show(driver, "Price of anarchy")
            urls = requested(driver)

            show(driver, "Headline metrics by variant", kind="Sweep")
            shot("sweep-overview")
            check(sorted(set(cells(driver, "group"))) == ["reserve=0.25", "reserve=0.5"],
                  "variant names in the table", cells(driver, "group"))
            show(driver, "Pacing multiplier", path="time-series")
            shot("sweep-time-series")
            labels = [t for t in chart_texts(driver) if t.startswith("reserve=")]
            check("reserve=0.25" in labels and "reserve=0.25 · brand" in labels
                  and not [t for t in labels if "…" in t or t in ("reserve=0.2", "reserve=0.3")],
                  "whole legend labels", labels)
            urls |= requested(driver)

            show(driver, "By channel and population", path="populations", kind="Run")
            pick_run(driver, "single")
            show(driver, "By channel and population")
            shot("populations")
            budgets = cells(driver, "Budget")
            check("unlimited" in budgets and "" not in budgets and "None" not in budgets, "unlimited budgets",
                  budgets)
            urls |= requested(driver)

            pick_run(driver, "gsp")
            show(driver, "Sample of", path="distributions")
            shot("gsp-distributions")
            check("cost per click of clicked slots" in driver.find_element(By.TAG_NAME, "body").text,
                  "GSP prices per click", "")
            urls |= requested(driver)
            check(not leaving(urls, host), "nothing fetched off the host", leaving(urls, host))

            driver.set_window_size(1300, 900)
            driver.get(report.as_uri())
            width = driver.execute_script("return window.innerWidth")
            scroll = driver.execute_script("return document.documentElement.scrollWidth")
            shot("report-1300")
            check(scroll <= width, "report within 1300 px", f"{scroll} px wide in a {width} px window")
            assert not problems, problems
        finally:
            target = os.environ.get("BIDSCAPE_SCREENSHOT_DIR")
            if target:
                Path(target).mkdir(parents=True, exist_ok=True)
                for path in shots:
                    shutil.copy(path, Path(target) / path.name)
            if driver is not None:
                driver.quit()


def test_segments_page_renders_in_chromium(tmp_path):
    """The Segments page of a run with traffic: the traffic and revenue charts, the table by segment and the
    winning prices chart, with no Streamlit exception."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs /usr/bin/chromium and /usr/bin/chromedriver")
    import bidscape
    from bidscape.dashboards.ui import METRICS
    from dashboard_testing import segment_scenario

    root = tmp_path / "runs"
    bidscape.run(segment_scenario(channels=True), out=root / "traffic")  # the only run: selected at start
    driver = None
    with served(root, tmp_path) as url:
        try:
            driver = chromium()
            driver.get(url)
            show(driver, "Price of anarchy")
            nav_link(driver, "segments").click()
            shot = rendered(driver, "segments", "Winning prices by segment", 3, tmp_path)
            time.sleep(1.0)  # let the grids draw
            titles = chart_texts(driver)
            for title in ("Traffic: auctions per round (stacked by segment)", "Revenue per round", "Winning price"):
                assert title in titles, (title, titles, shot)
            for column in ("auction_share", "revenue_per_auction", "mean_price", "efficiency"):
                assert METRICS[column][0] in headers(driver), (column, headers(driver), shot)
            segments = cells(driver, "segment")  # the table by segment, then the prices' summary
            assert segments.count("news-mobile") == 2 and segments.count("sports-desktop") == 2, (segments, shot)
        finally:
            if driver is not None:
                driver.quit()


def headers(driver) -> list[str]:
    return [h.get_attribute("textContent") for h in driver.find_elements(By.CSS_SELECTOR, 'table[role="grid"] th')]
