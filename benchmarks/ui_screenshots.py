"""Screenshots of the workbench's five tabs for docs/ui/ (a real run: the bundled quickstart
data, minilm, LoRA and BitFit). Needs Debian's chromium and playwright (make setup).

    PYTHONPATH=src .venv/bin/python benchmarks/ui_screenshots.py [--workspace DIR] [--out docs/ui]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

WIDTH = 1100  # screenshots are scaled to this width (PNG, small)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shrink(path: Path) -> None:
    from PIL import Image

    image = Image.open(path).convert("RGB")
    if image.width > WIDTH:
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    image = image.quantize(colors=128)
    image.save(path, optimize=True)


def _choose(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(value)
    page.get_by_role("option", name=value, exact=True).click()


def _fill(page, elem_id: str, value: str) -> None:
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(value)


def _train(page, strategy: str, epochs: str) -> None:
    from playwright.sync_api import expect

    _choose(page, "train-strategy", strategy)
    _fill(page, "train-epochs", epochs)
    page.locator("#train-start").click()
    expect(page.locator("#train-message")).to_contain_text("queued job")
    run = page.locator("#train-message").inner_text().split(": ")[1].split(" ")[0]
    _choose(page, "train-picker", run)
    expect(page.locator("#train-status")).to_contain_text(re.compile("queued|starting|training"))
    expect(page.locator("#train-status")).to_contain_text("finished", timeout=900_000)


def compare(page, out: Path, workspace: Path) -> None:
    """The Compare tab, with the workspace's newest sweep (e.g. one `tunewise sweep` made)."""
    from playwright.sync_api import expect

    from tunewise.ui.workspace import find_sweeps, label

    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-refresh").click()
    expect(page.locator("#compare-table")).to_contain_text("runs/run-2")
    sweeps = [label(p, workspace) for p in find_sweeps(workspace)]
    if sweeps:
        page.get_by_role("button", name="Refresh sweeps").click()
        page.wait_for_timeout(1000)
        _choose(page, "compare-sweep", sweeps[0])
        expect(page.locator("#compare-sweep-table")).to_contain_text("ok")
        page.wait_for_timeout(2000)
    page.screenshot(path=out / "compare.png", full_page=True)


def data(page, out: Path, workspace: Path) -> None:
    """The Data tab: the quickstart set inspected and prepared into data/prepared."""
    from playwright.sync_api import expect

    page.locator("#data-quickstart").click()
    expect(page.locator("#data-message")).to_contain_text("valid examples")
    page.locator("#data-prepare").click()
    expect(page.locator("#prepare-message")).to_contain_text("records in")
    page.wait_for_timeout(1500)
    page.screenshot(path=out / "data.png", full_page=True)


def shoot(url: str, out: Path, workspace: Path, only: str | None = None) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        expect.set_options(timeout=120_000)  # a busy machine: the first ranking takes a while
        page.set_default_timeout(300_000)
        page.goto(url)
        if only:
            (data if only == "data" else compare)(page, out, workspace)
            _shrink(out / f"{only}.png")
            return
        data(page, out, workspace)

        page.get_by_role("tab", name="Advice").click()
        expect(page.locator("#advice-message")).to_contain_text("Best for")
        page.screenshot(path=out / "advice.png", full_page=True)
        page.locator("#advice-use").click()

        page.get_by_role("tab", name="Train").click()
        _train(page, "bitfit", "1")
        _train(page, "lora", "4")
        page.wait_for_timeout(2000)
        page.screenshot(path=out / "train.png", full_page=True)

        compare(page, out, workspace)

        page.get_by_role("tab", name="Try").click()
        page.get_by_role("button", name="Refresh runs").click()
        _choose(page, "try-run", "runs/run-2")
        page.locator("#try-load").click()
        expect(page.locator("#try-message")).to_contain_text("loaded")
        _fill(page, "try-text", "I was charged twice for my subscription this month")
        page.locator("#try-predict").click()
        expect(page.locator("#try-label")).to_contain_text("%")
        page.screenshot(path=out / "try.png", full_page=True)
        browser.close()
    for png in out.glob("*.png"):
        _shrink(png)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/tunewise-ui-docs"))
    parser.add_argument("--out", type=Path, default=Path("docs/ui"))
    parser.add_argument(
        "--only", choices=["data", "compare"], help="Retake one tab of an existing workspace."
    )
    args = parser.parse_args()
    args.workspace.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    port = _port()
    cmd = [sys.executable, "-m", "tunewise.cli", "ui", "--workspace", str(args.workspace)]
    server = subprocess.Popen([*cmd, "--port", str(port)], env=os.environ)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        started = time.time()
        shoot(url, args.out.resolve(), args.workspace.resolve(), args.only)
        print(f"screenshots in {args.out} ({time.time() - started:.0f} s)")
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
