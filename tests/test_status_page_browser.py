"""The status page in a real headless browser: Debian's chromium driven by
Playwright's Python package (its own browser download is never used:
``executable_path``). A running bot serves the page on 127.0.0.1; the test
logs in with the token, reads the feeds, asks `why`, searches, and sees a
wrong token and a non-loopback bind without a token refused.

Skipped, saying why, where Playwright or chromium is missing (`.ci/run`
installs both)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.config import Secrets
from tests.feedgen import episode_title
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.test_web import TOKEN, run_app

CHROMIUM = os.environ.get("SHOWBOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# What Chromium needs here: no sandbox as root, and no background traffic
# (this machine's network is closed; those connections only fail).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(async_playwright is None,
                       reason="Playwright's Python package is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does)"),
]


async def browser() -> Any:
    assert async_playwright is not None
    driver = await async_playwright().start()
    chromium = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
    return driver, chromium


async def test_log_in_see_the_feeds_ask_why_and_search(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    driver, chromium = await browser()
    try:
        async for app, _ in run_app(tmp_path, feed_server, {}, secrets=Secrets(web_token=TOKEN)):
            assert app.web is not None
            base = f"http://127.0.0.1:{app.web.port}"
            page = await chromium.new_page(viewport={"width": 390, "height": 844})  # a phone
            await page.goto(base + "/")
            assert page.url == base + "/login"

            await page.fill("#token", "not the token")
            await page.click("button[type=submit]")
            assert await page.inner_text("[role=alert]") == "That token is not right."
            assert page.url == base + "/login"

            await page.fill("#token", TOKEN)
            await page.click("button[type=submit]")
            assert page.url == base + "/"
            feeds = await page.inner_text("#feeds")
            assert "podcast" in feeds and "ok" in feeds and episode_title(5) in feeds
            assert await page.locator("svg.chart").count() == 3

            await page.fill("input[name=why]", episode_title(3))
            await page.click("form:has(input[name=why]) button")
            answer = await page.inner_text(".answer[data-kind=why]")
            assert f"Why “{episode_title(3)}”" in answer
            assert "Not announced: stored at the first sync (baseline)." in answer
            assert await page.input_value("input[name=why]") == episode_title(3)

            await page.fill("input[name=search]", "kafka")
            await page.click("form:has(input[name=search]) button")
            assert "on “kafka”" in await page.inner_text(".answer[data-kind=search]")
            results = await page.locator("ol.results li").all_inner_texts()
            assert results and all("Kafka" in r for r in results)
            await page.screenshot(path=str(tmp_path / "status-page.png"), full_page=True)

            await page.click("text=Log out")
            assert page.url == base + "/login"
            await page.goto(base + "/")
            assert page.url == base + "/login"  # the session went with the cookie
            await page.close()
    finally:
        await chromium.close()
        await driver.stop()


async def test_no_token_and_a_non_loopback_bind_refuses_the_page(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    driver, chromium = await browser()
    try:
        async for app, _ in run_app(tmp_path, feed_server, {}, bind="0.0.0.0"):
            assert app.web is not None
            page = await chromium.new_page()
            response = await page.goto(f"http://127.0.0.1:{app.web.port}/")
            assert response is not None and response.status == 403
            assert "SHOWBOT_WEB_TOKEN is not set" in await page.inner_text("body")
            assert await page.locator("#feeds").count() == 0
            await page.close()
    finally:
        await chromium.close()
        await driver.stop()
