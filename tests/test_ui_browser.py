"""End to end in a real headless Chromium (Debian's `chromium`, driven by Playwright): start
`tunewise ui` on a free loopback port, load the bundled quickstart data, see the advisor's
ranking, start a short run on a tiny local model, watch it finish, predict in the Try tab,
compare it with a run the API made, and check that bad input shows the CLI's message while the
page keeps working. A screenshot of each tab is saved under the test's tmp dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import toy_config

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make setup)"
)
playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (make setup)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"tunewise ui exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


@pytest.fixture
def server(tmp_path):
    ws, port = tmp_path / "ws", _free_port()
    ws.mkdir()
    log = (tmp_path / "ui.log").open("w")
    cmd = [sys.executable, "-m", "tunewise.cli", "ui", "--workspace", str(ws), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    yield ws, f"http://127.0.0.1:{port}/", proc
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _choose(page, elem_id: str, value: str) -> None:
    """Pick `value` in a Gradio dropdown."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(value)
    page.get_by_role("option", name=value, exact=True).click()


def _fill(page, elem_id: str, value: str) -> None:
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(value)


def test_workbench_in_headless_chromium(server, tiny_bert, toy_data, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from tunewise import api

    ws, url, proc = server
    # a run the CLI/API made, while the UI starts: the Compare tab must list it too
    api.finetune(toy_config(tiny_bert, toy_data, ws / "runs" / "cli-run", training={"epochs": 1}))
    _wait_http(url, proc)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        expect.set_options(timeout=120_000)  # a busy machine: the first ranking takes a while
        page.set_default_timeout(120_000)
        page.goto(url)

        # Data: an unknown file shows the CLI's error; then the quickstart data loads
        _fill(page, "data-path", "no/such/file.jsonl")
        page.locator("#data-inspect").click()
        expect(page.locator("#data-message")).to_contain_text("error: ")
        expect(page.locator("#data-message")).to_contain_text("file.jsonl")
        page.locator("#data-quickstart").click()
        expect(page.locator("#data-message")).to_contain_text("320 valid examples")
        expect(page.get_by_text("320 records")).to_be_visible()
        page.wait_for_timeout(1500)  # the bar plot draws after its data arrives
        page.screenshot(path=shots / "data.png", full_page=True)

        # Advice: the ranking for the data's size, for the tiny model; its pick fills the form
        page.get_by_role("tab", name="Advice").click()
        expect(page.locator("#advice-size input")).to_have_value("320")
        _fill(page, "advice-model", str(tiny_bert))
        page.locator("#advice-model input, #advice-model textarea").first.press("Enter")
        expect(page.locator("#advice-message")).to_contain_text(f"on {tiny_bert}")
        expect(page.locator("#advice-table")).to_contain_text("lora")
        page.screenshot(path=shots / "advice.png", full_page=True)
        choice = page.locator("#advice-choice input").input_value()
        page.locator("#advice-use").click()

        # Train: bad YAML and an impossible task x strategy pair show the CLI's messages
        expect(page.locator("#train-strategy input")).to_have_value(choice)
        _fill(page, "train-yaml-paste", "model: {name: [unclosed\n")
        page.locator("#train-load").click()
        expect(page.locator("#train-message")).to_contain_text("is not valid YAML")
        _choose(page, "train-task", "continued_pretraining")
        _choose(page, "train-strategy", "frozen")
        page.locator("#train-validate").click()
        expect(page.locator("#train-message")).to_contain_text(
            "Strategy 'frozen' cannot train task 'continued_pretraining'"
        )
        _choose(page, "train-task", "classification")
        _choose(page, "train-strategy", "lora")
        _fill(page, "train-epochs", "1")
        page.locator("#train-start").click()
        expect(page.locator("#train-message")).to_contain_text("queued job")
        expect(page.locator("#train-status")).to_contain_text("finished", timeout=420_000)
        expect(page.locator("#train-report")).to_contain_text("validation accuracy")
        expect(page.locator("#train-status")).to_contain_text("step 10/10")
        page.screenshot(path=shots / "train.png", full_page=True)

        # Compare: both runs, with their strategies
        page.get_by_role("tab", name="Compare").click()
        table = page.locator("#compare-table")
        expect(table).to_be_visible()
        for _ in range(30):  # a click the page has not wired up yet is lost: click again
            page.locator("#compare-refresh").click()
            page.wait_for_timeout(2000)
            if "runs/run-1" in table.inner_text():
                break
        expect(table).to_contain_text("runs/run-1")
        expect(table).to_contain_text("runs/cli-run")
        page.screenshot(path=shots / "compare.png", full_page=True)

        # Try: the UI's run predicts a label for a sentence
        page.get_by_role("tab", name="Try").click()
        page.get_by_role("button", name="Refresh runs").click()
        _choose(page, "try-run", "runs/run-1")
        page.locator("#try-load").click()
        expect(page.locator("#try-message")).to_contain_text("loaded runs/run-1 (classification)")
        _fill(page, "try-text", "I was charged twice for my subscription")
        page.locator("#try-predict").click()
        labels = ("account", "billing", "shipping", "technical")
        expect(page.locator("#try-label")).to_contain_text("%")
        shown = page.locator("#try-label").inner_text()
        assert any(name in shown for name in labels), shown
        page.screenshot(path=shots / "try.png", full_page=True)
        browser.close()
    assert sorted(p.name for p in shots.iterdir()) == [
        "advice.png",
        "compare.png",
        "data.png",
        "train.png",
        "try.png",
    ]
    assert (ws / "runs" / "run-1" / "tunewise.json").is_file()  # an ordinary run directory
