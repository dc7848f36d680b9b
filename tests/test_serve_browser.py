"""`automod serve` end to end in a real headless Chromium: the command starts the server, the page adds two photos,
mixes them at coarse scales, a slider handle moves the block range, each result is downloaded and holds exactly the
pixels of the `automod mix` command the page shows; samples, a dropped file and the mix grid; Ctrl-C stops the
server and deletes the photos.

Debian's chromium is driven by Playwright (launched by path: no browser download). `make test` installs chromium
as root (CI); without it, or without the test extra's playwright, this test is skipped and says what is missing.
Set AUTOMOD_SERVE_SCREENSHOT=FILE.png to keep a screenshot of the page (the README's is taken so)."""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_models import tiny_model

from automod_cli.checkpoint import save_model
from automod_cli.cli import main
from data_prep.builtin import generate

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs Playwright: pip install -e '.[test]'"
)
CHROMIUM = os.environ.get("AUTOMOD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium here: apt-get install chromium (make test "
    "does it as root), or set AUTOMOD_CHROMIUM to its path",
)
DROP = """([name, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "image/png" }));
  document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
}"""
SAFETY_S = 300  # a hung server or browser fails the test instead of stalling the suite; no speed is measured
STEP_MS = 120_000


def start_server(folder: Path, temp: Path) -> tuple[subprocess.Popen, str]:
    """`automod serve` as a user runs it, on any free port; the address it prints."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(temp)}
    server = subprocess.Popen(
        [sys.executable, "-m", "automod_cli", "serve", "--model", "m.safetensors", "--port", "0"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in server.stdout:
        seen.append(line)
        found = re.search(r"open (http://127\.0\.0\.1:\d+/\?token=\S+)", line)
        if found:
            return server, found.group(1)
    server.kill()
    raise AssertionError("automod serve printed no address:\n" + "".join(seen) + server.stderr.read())


def written_by(command: str, output: str) -> np.ndarray:
    """Run the command the page shows (as pasted into a shell) and read the image it wrote."""
    words = shlex.split(command)
    assert words[0] == "automod" and main(words[1:] + ["--force"]) == 0
    return np.asarray(Image.open(output).convert("RGB"))


def download(page, link: str, to: Path) -> np.ndarray:
    with page.expect_download() as info:
        page.click(link)
    info.value.save_as(to)
    return np.asarray(Image.open(to).convert("RGB"))


def test_the_page_mixes_two_photos_as_automod_mix_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_model(tmp_path / "m.safetensors", tiny_model())
    for name, picture in zip(("mountain.png", "sea.png"), generate(2, seed=7)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / name)
    temp = tmp_path / "tmp"
    temp.mkdir()
    server, url = start_server(tmp_path, temp)
    expect = playwright_api.expect
    expect.set_options(timeout=STEP_MS)
    try:
        with playwright_api.sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
            )
            page = browser.new_page(accept_downloads=True, viewport={"width": 1100, "height": 900})
            page.set_default_timeout(STEP_MS)
            page.goto(url)
            expect(page.locator("#model-line")).to_contain_text("m.safetensors")
            page.set_input_files("#file-input", [str(tmp_path / "mountain.png"), str(tmp_path / "sea.png")])
            expect(page.locator(".photo")).to_have_count(2)
            expect(page.locator("#upload-status")).to_contain_text("2 photos ready")
            assert len(list(temp.glob("automod-serve-*/*"))) == 2  # the uploads, in the server's own folder

            command = page.locator("#mix-command")
            expect(command).to_contain_text("automod mix mountain.png sea.png --coarse")
            expect(page.locator("#view-mix")).to_have_attribute("data-state", "ready")
            coarse = download(page, "#mix-download", tmp_path / "downloaded-coarse.png")
            assert (coarse == written_by(command.inner_text(), "mix.png")).all()

            page.focus("#mix-to")
            page.keyboard.press("ArrowRight")  # the range's upper handle: blocks 0-1 -> blocks 0-2
            expect(command).to_contain_text("--layers 0:3")
            expect(page.locator("#mix-range-label")).to_contain_text("blocks 0–2")
            expect(page.locator("#view-mix")).to_have_attribute("data-state", "ready")
            moved = download(page, "#mix-download", tmp_path / "downloaded-moved.png")
            assert (moved == written_by(command.inner_text(), "mix.png")).all()
            assert (moved != coarse).any()  # block 2 of sea.png changed the picture

            page.click('#tabs button[data-tab="sample"]')
            expect(page.locator("#sample-command")).to_contain_text("automod sample --n 16 --seed 0")
            expect(page.locator("#view-sample")).to_have_attribute("data-state", "ready")
            dropped = base64.b64encode((tmp_path / "sea.png").read_bytes()).decode()
            page.evaluate(DROP, ["dropped.png", dropped])  # a file dragged onto the page
            expect(page.locator(".photo")).to_have_count(3)
            page.click('#tabs button[data-tab="grid"]')  # no rows or columns chosen: every photo on both
            expect(page.locator("#grid-command")).to_contain_text(
                "--rows mountain.png --rows sea.png --rows dropped.png --cols mountain.png"
            )
            expect(page.locator("#view-grid")).to_have_attribute("data-state", "ready")
            page.click('#tabs button[data-tab="mix"]')
            expect(page.locator("#view-mix")).to_have_attribute("data-state", "ready")
            page.reload()  # the photos stay on the server; the new page numbers its requests afresh
            expect(page.locator(".photo")).to_have_count(3)
            expect(page.locator("#view-mix")).to_have_attribute("data-state", "ready")
            expect(command).to_contain_text("automod mix mountain.png sea.png --coarse")
            screenshot = os.environ.get("AUTOMOD_SERVE_SCREENSHOT")
            page.screenshot(path=screenshot or str(tmp_path / "page.png"), full_page=True)
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = server.communicate(timeout=SAFETY_S)
    assert server.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
    assert list(temp.iterdir()) == []  # the photos added are deleted
