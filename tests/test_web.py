"""The operators' HTTP server over real HTTP on 127.0.0.1, in a running bot:
probes, /metrics read with prometheus_client's own parser, the page's
access rules, Slack's HTTP mode sharing the server, `showbot health`."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import AdapterContext, App
from bot.config import Secrets, load_config
from bot.models import Platform
from tests.catalog_helpers import MEMBER
from tests.fake_chat import RecordingAdapter
from tests.feedgen import make_podcast_feed
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.slack_stub import SlackStub, sign, stub  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 20
TOKEN = "correct-horse-battery-staple"


def weekly_feed(n: int) -> bytes:
    newest = datetime.now(timezone.utc) - timedelta(hours=1)
    return make_podcast_feed(n, start=newest - timedelta(days=7 * (n - 1)))


def write_config(tmp_path: Path, server: FeedServer, *, bind: str = "127.0.0.1", port: int = 0,
                 extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[storage]
path = "{tmp_path / 'data' / 'showbot.db'}"
[network]
allow_private_addresses = true
timeout = "5s"
[[sources]]
name = "podcast"
url = "{server.url('/podcast.xml')}"
content = "episode"
every = "1h"
[[routes]]
platform = "discord"
channel = "123"
kinds = ["episode"]
[http]
port = {port}
bind = "{bind}"
{extra}
""")
    return path


@dataclass
class Running:
    app: App
    chat: RecordingAdapter
    session: aiohttp.ClientSession
    base: str

    async def get(self, path: str, **kw: Any) -> tuple[int, str]:
        async with self.session.get(self.base + path, allow_redirects=False, **kw) as resp:
            return resp.status, await resp.text()


async def run_app(tmp_path: Path, server: FeedServer, factories: dict[str, Callable[[AdapterContext], Any]],
                  *, secrets: Secrets | None = None, bind: str = "127.0.0.1", extra: str = "",
                  ) -> AsyncIterator[tuple[App, asyncio.Event]]:
    config = load_config(write_config(tmp_path, server, bind=bind, extra=extra))
    server.add_feed("/podcast.xml", weekly_feed(5))
    async with await App.open(config, secrets or Secrets()) as app:
        (first,) = await app.poll_now()  # the first sync (5 new items), before the scheduler runs
        assert first.ok and not first.events
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop, factories, heartbeat_s=3600))
        try:
            await asyncio.wait_for(app.running.wait(), WAIT_S)
            assert app.scheduler is not None
            await app.scheduler.idle()  # its first fire finds the source not due
            yield app, stop
        finally:
            stop.set()
            await asyncio.wait_for(task, WAIT_S)


@pytest.fixture
async def running(tmp_path: Path, feed_server: FeedServer) -> AsyncIterator[Running]:  # noqa: F811
    chat = RecordingAdapter(Platform.DISCORD)
    async for app, _ in run_app(tmp_path, feed_server, {"discord": lambda ctx: chat}):
        assert app.web is not None and app.web.port
        async with aiohttp.ClientSession() as session:
            yield Running(app, chat, session, f"http://127.0.0.1:{app.web.port}")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_healthz_and_readyz_flip_when_an_adapter_disconnects_or_the_database_turns_read_only(
        running: Running) -> None:
    assert await running.get("/healthz") == (200, '{"status": "alive"}')
    status, body = await running.get("/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["ready"] is True
    assert set(ready["checks"]) == {"store", "scheduler", "adapter:discord"}

    running.chat.healthy = False
    status, body = await running.get("/readyz")
    assert status == 503 and json.loads(body)["not_ready"] == ["adapter:discord"]
    running.chat.healthy = True
    assert (await running.get("/readyz"))[0] == 200

    # The same connection the bot writes with, made read-only: a real write fails.
    await running.app.store._conn.execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
    try:
        status, body = await running.get("/readyz")
        failed = json.loads(body)
        assert status == 503 and failed["not_ready"] == ["store"]
        assert "readonly" in failed["checks"]["store"]["error"]
    finally:
        await running.app.store._conn.execute("PRAGMA query_only = OFF")  # type: ignore[attr-defined]
    assert (await running.get("/readyz"))[0] == 200


async def test_metrics_count_a_poll_a_delivery_and_a_command(running: Running, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.add_feed("/podcast.xml", weekly_feed(6))
    (report,) = await running.app.poll_now()  # one new episode, queued for the discord route
    assert report.ok and len(report.events) == 1, report
    await running.chat.wait_for(lambda: len(running.chat.sent) == 1, WAIT_S)
    await running.app.commands("search kafka", MEMBER)

    async def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = await running.get("/metrics")
        assert status == 200
        return samples(text)

    m = await scraped()
    src = (("source", "podcast"),)
    assert m[("showbot_polls_total", (("outcome", "new"), ("source", "podcast")))] == 2
    assert m[("showbot_new_items_total", src)] == 6
    assert m[("showbot_events_total", (("kind", "episode"),))] == 1
    assert m[("showbot_poll_duration_seconds_count", src)] == 2
    assert m[("showbot_last_successful_poll_timestamp_seconds", src)] > 0
    assert m[("showbot_deliveries_total", (("outcome", "sent"), ("platform", "discord")))] == 1
    assert m[("showbot_delivery_since_detected_seconds_count", (("platform", "discord"),))] == 1
    assert m[("showbot_delivery_since_published_seconds_count", (("platform", "discord"),))] == 1
    assert m[("showbot_commands_total", (("command", "search"), ("platform", "discord")))] == 1
    assert m[("showbot_search_duration_seconds_count", ())] == 1
    assert m[("showbot_adapter_connected", (("platform", "discord"),))] == 1
    assert m[("showbot_store_writable", ())] == 1
    assert ("showbot_outbox_depth", (("platform", "discord"),)) in m


async def test_the_page_wants_the_token(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    async for app, _ in run_app(tmp_path, feed_server, {}, secrets=Secrets(web_token=TOKEN)):
        assert app.web is not None
        base = f"http://127.0.0.1:{app.web.port}"
        # unsafe=True: aiohttp keeps no cookies of an IP address otherwise.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(base + "/", allow_redirects=False) as resp:
                assert resp.status == 303 and resp.headers["Location"] == "/login"
            async with session.post(base + "/login", data={"token": "wrong"}, allow_redirects=False) as resp:
                assert resp.status == 401 and "showbot_session" not in resp.cookies
            async with session.post(base + "/login", data={"token": TOKEN}, allow_redirects=False) as resp:
                assert resp.status == 303
                cookie = resp.cookies["showbot_session"]
                assert cookie["httponly"] and cookie["samesite"] == "Strict"
            async with session.get(base + "/") as resp:
                html = await resp.text()
                assert resp.status == 200 and "<h2>Feeds</h2>" in html and "podcast" in html
                assert "script-src" not in resp.headers["Content-Security-Policy"]  # default-src 'none'
            # A forged cookie is not a session.
            async with aiohttp.ClientSession(cookies={"showbot_session": "9999999999.00.bad"}) as other:
                async with other.get(base + "/", allow_redirects=False) as resp:
                    assert resp.status == 303


async def test_no_token_on_a_non_loopback_bind_refuses_the_page_but_not_the_probes(
        tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    async for app, _ in run_app(tmp_path, feed_server, {}, bind="0.0.0.0"):
        assert app.web is not None
        base = f"http://127.0.0.1:{app.web.port}"
        async with aiohttp.ClientSession() as session:
            for path in ("/", "/login"):
                async with session.get(base + path, allow_redirects=False) as resp:
                    assert resp.status == 403 and "SHOWBOT_WEB_TOKEN is not set" in await resp.text()
            async with session.get(base + "/readyz") as resp:
                assert resp.status == 200


async def test_slack_http_mode_answers_on_the_shared_server(
        tmp_path: Path, feed_server: FeedServer, stub: SlackStub) -> None:  # noqa: F811
    from adapters.plugins import slack

    secrets = Secrets(slack_bot_token="xoxb-test", slack_signing_secret="shh")
    extra = f'[slack]\nmode = "http"\napi_base_url = "{stub.api_base_url}"\n'
    async for app, _ in run_app(tmp_path, feed_server, {"slack": slack}, secrets=secrets, extra=extra):
        assert app.web is not None
        adapter = app.adapters[Platform.SLACK]
        assert adapter.healthy and getattr(adapter, "http_port") is None  # no port of its own
        body = urlencode({"command": "/showbot", "text": "help", "user_id": "U1", "channel_id": "C1",
                          "team_id": "T1", "response_url": "", "trigger_id": "1"}).encode()
        url = f"http://127.0.0.1:{app.web.port}/slack/events"
        async with aiohttp.ClientSession() as session:
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            async with session.post(url, data=body, headers={**headers, **sign("shh", body)}) as resp:
                assert resp.status == 200
            async with session.post(url, data=body, headers={**headers, **sign("wrong", body)}) as resp:
                assert resp.status == 401
            async with session.get(f"http://127.0.0.1:{app.web.port}/readyz") as resp:
                assert resp.status == 200 and "adapter:slack" in (await resp.json())["checks"]


async def test_showbot_health_asks_readyz(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    chat = RecordingAdapter(Platform.DISCORD)
    async for app, _ in run_app(tmp_path, feed_server, {"discord": lambda ctx: chat}):
        assert app.web is not None
        config = write_config(tmp_path, feed_server, port=app.web.port or 0)

        async def health() -> tuple[int, str]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "health", "--config", str(config), cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), WAIT_S)
            assert proc.returncode is not None
            return proc.returncode, (out + err).decode()

        assert await health() == (0, "ok\n")
        chat.healthy = False
        code, text = await health()
        assert code == 1 and "not ready: adapter:discord" in text
