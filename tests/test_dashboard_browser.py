"""End to end: the dashboard served by Streamlit, every page opened in headless Chromium.

Skipped without selenium, /usr/bin/chromium or /usr/bin/chromedriver. Screenshots go to
the test's tmp_path and, when $BIDSCAPE_SCREENSHOT_DIR is set, there too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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


def idle(driver) -> bool:
    """The script run finished: no running indicator, no spinner."""
    return not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"], [data-testid="stSpinner"]')


def test_every_page_renders_in_chromium(tmp_path):
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs /usr/bin/chromium and /usr/bin/chromedriver")
    sys.path.insert(0, str(Path(__file__).parent))
    from test_dashboard import make_root

    root = make_root(tmp_path / "runs", old=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    env = {**streamlit_env(root), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    with open(log, "w") as output:
        server = subprocess.Popen(streamlit_command(root, port=port), env=env, stdout=output,
                                  stderr=subprocess.STDOUT)
    driver = None
    shots = []
    try:
        wait_healthy(url, server, log)
        options = Options()
        options.binary_location = str(CHROMIUM)
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--window-size=1400,1000"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        driver.get(url)
        for path, text, charts in PAGES:
            if path:  # navigate inside the session, as a person would: the sidebar's link
                link = WebDriverWait(driver, 20).until(lambda d: next(
                    (a for a in d.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNavLink"]')
                     if a.get_attribute("href").rstrip("/").endswith("/" + path)), None))
                link.click()
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
            shots.append(shot)
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
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
