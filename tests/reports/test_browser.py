"""The report and the dashboard in a real browser (headless Chromium): rendered, no JavaScript errors.

Skipped with the reason where Chromium, ChromeDriver or Selenium is missing, except under
CI=true, where `.ci/run` installs them and the test must run. Screenshots are kept in
tests/_outputs/browser/.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpsearch.reports import build_report
from hpsearch.search import load_study_config, open_study

SHOTS = Path(__file__).resolve().parents[1] / "_outputs" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing = "selenium (pip install selenium)"
    else:
        missing = "" if CHROMIUM and CHROMEDRIVER else "chromium/chromedriver (apt install chromium chromium-driver)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI=true, but {missing} is missing")
        pytest.skip(f"no headless browser here: {missing} is missing")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--enable-unsafe-swiftshader"):  # software WebGL for the parallel-coordinate plot
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _errors(driver: Any) -> list[str]:
    """JavaScript errors (uncaught exceptions, failed loads, console.error) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _wait(driver: Any, script: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for: {script}")


def test_report_renders_offline_without_errors(browser: Any, tiny_study: Path, tmp_path: Path) -> None:
    report = build_report(load_study_config(tiny_study), tmp_path / "report", png=False)
    browser.get((report.out / "index.html").as_uri())
    _wait(browser, f"return document.querySelectorAll('.js-plotly-plot').length === {len(report.figures)}")
    assert browser.execute_script("return typeof window.Plotly") == "object"  # the local plotly.min.js
    rendered = browser.execute_script("""
        return Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => [d.id, d.data.length,
            d.querySelectorAll('svg.main-svg').length, d.getBoundingClientRect().height]);""")
    assert {r[0] for r in rendered} == set(report.figures)
    assert all(traces > 0 and svgs > 0 and height > 200 for _, traces, svgs, height in rendered), rendered
    lines = browser.execute_script("return document.getElementById('parallel').data[0].line.color.length")
    assert lines == len(report.table)
    assert browser.execute_script("return document.querySelectorAll('.parcoords .y-axis').length") >= 9
    widths = browser.execute_script("return Array.from(document.querySelectorAll('table.top img')).map(i => "
                                    "i.naturalWidth)")
    assert len(widths) == len(report.top) and all(w > 0 for w in widths)
    right, page = browser.execute_script("return [document.querySelector('table.top').getBoundingClientRect().right, "
                                         "document.documentElement.clientWidth]")
    assert right <= page, f"the top-trials table runs off the page: right edge {right} px, page {page} px"
    browser.save_screenshot(str(SHOTS / "report.png"))
    assert _errors(browser) == []


def test_report_findings_render_with_their_interval_plot(browser: Any, tmp_path: Path) -> None:
    from hpsearch.cli import main
    from tests.search.helpers import GOOD, write_study

    path = write_study(tmp_path, enqueue=[GOOD, {**GOOD, "d_cond": "acgan"}], stop={"n_trials": 2},
                       pruner={"name": "none"})
    data_dir = tmp_path.parent / "search-data"
    assert main(["run", str(path), "--data-dir", str(data_dir), "--device", "cpu"]) == 0
    assert main(["confirm", str(path), "--top", "2", "--seeds", "2", "--data-dir", str(data_dir),
                 "--device", "cpu"]) == 0
    report = build_report(load_study_config(path), tmp_path / "report", png=False)
    browser.get((report.out / "index.html").as_uri())
    _wait(browser, "return document.getElementById('findings') && document.getElementById('findings').data")
    bars = browser.execute_script("""
        const d = document.getElementById('findings');
        return [d.data.map(t => t.x.length).reduce((a, b) => a + b, 0),
                d.querySelectorAll('g.errorbar').length, d.getBoundingClientRect().top,
                document.getElementById('parallel').getBoundingClientRect().top,
                document.querySelector('img.winner').naturalWidth];""")
    points, errorbars, findings_top, parallel_top, winner_width = bars
    assert points == 2 and errorbars == 2 and findings_top < parallel_top and winner_width > 0, bars
    assert "the lowest mean" in browser.find_element("tag name", "body").text
    browser.save_screenshot(str(SHOTS / "report_findings.png"))
    assert _errors(browser) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


@pytest.fixture
def dashboard(tiny_study: Path, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "hpsearch.cli", "dashboard", str(tiny_study), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(url + "/api/studies")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "dashboard.log").read_text()) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_dashboard_lists_trials_and_serves_sample_grids(browser: Any, dashboard: str, tiny_study: Path) -> None:
    study = open_study(load_study_config(tiny_study))
    trials = study.get_trials()
    studies = json.loads(_get(dashboard + "/api/studies")[2])["study_summaries"]
    study_id = next(s["study_id"] for s in studies if s["study_name"] == "tiny")

    browser.get(f"{dashboard}/dashboard/studies/{study_id}/trials")
    _wait(browser, "return document.body.innerText.includes('Trial 5')")
    text = browser.execute_script("return document.body.innerText")
    assert all(f"Trial {t.number}" in text for t in trials)
    # The selected trial's sample grids come from the workers' artifact store.
    widths = _wait(browser, "const w = Array.from(document.querySelectorAll('img')).filter(i => "
                            "i.src.includes('/artifacts/')).map(i => i.naturalWidth); "
                            "return w.length && w.every(x => x > 0) ? w : null;")
    assert len(widths) >= 3  # one grid per evaluation of trial 0
    browser.save_screenshot(str(SHOTS / "dashboard.png"))
    assert _errors(browser) == []

    trial = trials[0]
    grid = trial.user_attrs["grids"]["60"]
    status, kind, body = _get(f"{dashboard}/artifacts/{study_id}/{trial._trial_id}/{grid}")  # noqa: SLF001
    assert status == 200 and body.startswith(b"\x89PNG")
