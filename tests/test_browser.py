"""The dashboard in a real browser: `solara run app.py` on 127.0.0.1, driven by Playwright with
Debian's Chromium (no browser is downloaded). Skipped, with the reason, where /usr/bin/chromium
is missing; `.ci/run` installs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """`solara run app.py` bound to loopback; stopped when the tests end."""
    port = free_port()
    solara = Path(sys.executable).with_name("solara")
    proc = subprocess.Popen([str(solara), "run", "app.py", "--host", "127.0.0.1", "--port", str(port),
                             "--no-open", "--production"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"solara exited early:\n{proc.stdout.read()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("solara did not answer within 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def test_step_and_play_advance_the_rounds_without_errors(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server, wait_until="networkidle", timeout=90_000)
    page.get_by_text("Before round 1 of 8").wait_for(timeout=60_000)
    page.get_by_role("button", name="Step").click()
    page.get_by_text("Round 1 of 8").wait_for(timeout=30_000)
    page.get_by_role("button", name="▶").click()  # Play: runs on to the end of the talks
    page.get_by_text("Declaration:").wait_for(timeout=60_000)
    assert page.get_by_text("Before round 1 of 8").count() == 0
    body = page.inner_text("body")
    assert "Traceback" not in body and "Error" not in body
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000
    assert not errors, errors
    page.close()
