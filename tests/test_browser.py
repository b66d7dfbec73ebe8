"""The web page in a real browser (Debian's chromium, driven by Playwright without a browser
download): ask a question, see the verdict and the charts, follow a suggestion, and open a
shared link with JavaScript off. Screenshots go to artifacts/screenshots/ (CI keeps them)."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from bot.app import create_app
from tests.test_service import make_settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(scripts/test.sh installs it)")


async def test_a_person_asks_follows_a_suggestion_and_shares_a_link(aiohttp_server) -> None:
    from playwright.async_api import async_playwright

    server = await aiohttp_server(create_app(make_settings()))
    base = str(server.make_url("/"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 1200})
            await page.goto(base)
            await page.fill("#q", "meta-llama/Llama-2-13b-hf fp16 gpu=24GB")
            await page.press("#q", "Enter")
            verdict = page.locator("#answer h2.verdict")
            await verdict.wait_for()
            assert (await verdict.inner_text()).startswith("NO: meta-llama/Llama-2-13b-hf")
            assert await page.locator("#answer svg").count() == 2
            assert "q=meta-llama" in page.url  # the address is the shareable question
            await page.screenshot(path=str(SHOTS / "asked.png"), full_page=True)

            first = page.locator("ul.suggestions a").first
            change = await first.inner_text()
            await first.click()
            await page.wait_for_function(
                "t => document.querySelector('#answer h2.verdict') && "
                "!document.querySelector('#answer h2.verdict').textContent.startsWith('NO')",
                arg=None)
            assert change in page.url.replace("%3D", "=").replace("+", " ") or "q=" in page.url

            quiet = await browser.new_context(java_script_enabled=False)
            shared = await quiet.new_page()
            await shared.goto(base + "?q=" + quote("meta-llama/Llama-2-7b q4 gpu=24GB"))
            text = await shared.locator("h2.verdict").inner_text()
            assert text.startswith("YES: meta-llama/Llama-2-7b-hf (Q4_K_M)")
            await shared.screenshot(path=str(SHOTS / "shared-no-js.png"), full_page=True)
        finally:
            await browser.close()
