"""Issue 6, end to end: the real core (App.run: Commands, SQLite store, outbox,
scheduler) with the real Slack adapter, bolt's real aiohttp app fed signed
requests, every Web API call going to the local Slack stub and feeds served
on 127.0.0.1. Nothing here is a fake of the core."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest_asyncio

from adapters.slack import SlackAdapter
from bot.app import App, AdapterContext
from bot.config import Secrets, SlackConfig, load_config
from bot.models import EventKind, Platform
from tests.feedgen import episode_title, make_podcast_feed
from tests.feedserver import FeedServer, feed_server  # noqa: F401 - fixture
from tests.slack_stub import Call, SlackStub, sign, stub  # noqa: F401 - fixture

SECRET = "secret"
WAIT_S = 10.0
CHANNEL = "C1"


def weekly_feed(n: int) -> bytes:
    """n weekly episodes, the newest published an hour ago (inside max_age)."""
    newest = datetime.now(timezone.utc) - timedelta(hours=1)
    return make_podcast_feed(n, start=newest - timedelta(days=7 * (n - 1)))


async def wait_until(predicate: Callable[[], Awaitable[Any]], timeout: float = WAIT_S) -> Any:
    """Await an async condition until it is truthy (for the store, which has no notifier)."""

    async def _loop() -> Any:
        while not (result := await predicate()):
            await asyncio.sleep(0.01)
        return result

    return await asyncio.wait_for(_loop(), timeout)


def write_config(tmp_path: Path, sources: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[storage]
path = "{tmp_path / 'data' / 'showbot.db'}"

[network]
allow_private_addresses = true
timeout = "5s"
{sources}
""")
    return path


def dumped(call: Call) -> str:
    return json.dumps(call.args, ensure_ascii=False)


@dataclass
class Running:
    """App.run in the background with a Slack adapter built by its factory."""

    app: App
    stub: SlackStub
    feeds: FeedServer
    session: aiohttp.ClientSession
    adapter: SlackAdapter
    responses: int = field(default=0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.http_port}/slack/events"

    async def post(self, body: bytes, content_type: str) -> None:
        headers = {"Content-Type": content_type, **sign(SECRET, body)}
        async with self.session.post(self.url, data=body, headers=headers) as resp:
            assert resp.status == 200, await resp.text()

    async def slash(self, text: str, *, user: str, channel: str = CHANNEL) -> Call:
        """Send ``/showbot text`` as Slack would and return what came back on its response_url."""
        self.responses += 1
        name = f"r{self.responses}"
        body = urlencode({
            "token": "legacy", "team_id": "T1", "channel_id": channel, "channel_name": "general",
            "user_id": user, "user_name": user.lower(), "command": "/showbot", "text": text,
            "response_url": self.stub.response_url(name), "trigger_id": "1.2.3", "api_app_id": "A1",
        }).encode()
        await self.post(body, "application/x-www-form-urlencoded")
        path = f"/response/{name}"
        await self.stub.wait_for(lambda: any(c.path == path for c in self.stub.calls_to("response_url")), WAIT_S)
        return next(c for c in self.stub.calls_to("response_url") if c.path == path)

    async def mention(self, text: str, *, user: str, channel: str) -> Call:
        """An app_mention event; returns the chat.postMessage answering it in ``channel``."""
        before = len(self._posts_to(channel))
        body = json.dumps({
            "token": "legacy", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
            "event_id": f"Ev{before}{channel}", "event_time": 1,
            "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
            "event": {"type": "app_mention", "user": user, "text": text, "ts": "9.9", "channel": channel},
        }).encode()
        await self.post(body, "application/json")
        await self.stub.wait_for(lambda: len(self._posts_to(channel)) > before, WAIT_S)
        return self._posts_to(channel)[before]

    def _posts_to(self, channel: str) -> list[Call]:
        return [c for c in self.stub.calls_to("chat.postMessage") if c.args.get("channel") == channel]

    async def setup_channel(self) -> None:
        """What a moderator does first: announce here, then add the podcast feed."""
        self.feeds.add_feed("/podcast.xml", weekly_feed(5))
        reply = await self.slash("announce episode book here", user="UADMIN")
        assert "Announcing here: nothing → episode, book" in reply.args["text"], reply.args
        # Slack wraps a URL typed in a slash command in angle brackets.
        reply = await self.slash(f"feed add <{self.feeds.url('/podcast.xml')}>", user="UADMIN")
        assert "Added" in reply.args["text"], reply.args

    async def rows(self, status: str | None = None) -> list[Any]:
        return await self.app.store.outbox_rows(status)


def slack_factory(stub: SlackStub, built: list[SlackAdapter], **overrides: Any) -> Callable[[AdapterContext], SlackAdapter]:
    def build(ctx: AdapterContext) -> SlackAdapter:
        knobs: dict[str, Any] = dict(
            bot_token="xoxb-test", handler=ctx.handler, signing_secret=SECRET, host="127.0.0.1",
            backoff_base_s=0.01, backoff_max_s=0.05, watch_interval_s=0.05, rate_limit_sleep=_no_sleep,
        )
        knobs.update(overrides)
        config = SlackConfig(mode=knobs.pop("mode", "http"), port=0, api_base_url=stub.api_base_url,
                             admin_user_ids=("UADMIN",))
        adapter = SlackAdapter(config, **knobs)
        built.append(adapter)
        return adapter

    return build


async def _no_sleep(_: float) -> None:
    return None


@pytest_asyncio.fixture
async def running(
    tmp_path: Path, stub: SlackStub, feed_server: FeedServer  # noqa: F811
) -> AsyncIterator[Running]:
    stub.users["UADMIN"] = {"id": "UADMIN", "is_admin": False, "real_name": "Config Admin"}
    stub.users["UWSADMIN"] = {"id": "UWSADMIN", "is_admin": True, "profile": {"display_name": "boss"}}
    stub.users["UMEMBER"] = {"id": "UMEMBER", "is_admin": False, "real_name": "Mem Ber"}
    config = load_config(write_config(tmp_path))
    built: list[SlackAdapter] = []
    stop = asyncio.Event()
    async with await App.open(config, Secrets()) as app:
        run = asyncio.create_task(app.run(stop, {"slack": slack_factory(stub, built)}, heartbeat_s=3600))
        try:
            async def up() -> bool:
                assert not run.done(), run.exception()
                adapter = app.adapters.get(Platform.SLACK)
                return bool(adapter is not None and adapter.healthy and app.outbox is not None)

            await wait_until(up)
            (adapter,) = built
            async with aiohttp.ClientSession() as session:
                yield Running(app, stub, feed_server, session, adapter)
        finally:
            stop.set()
            await asyncio.wait_for(run, WAIT_S)
    assert not built[0].healthy


# ---------------------------------------------------------------- 1. announce here


async def test_workspace_admin_announces_here_and_a_member_is_politely_refused(running: Running) -> None:
    reply = await running.slash("announce episode book here", user="UWSADMIN")  # users.info is_admin
    assert reply.args["response_type"] == "ephemeral"  # moderator output is private
    assert reply.args["text"].startswith("Announcing here: nothing → episode, book")
    routes = await running.app.store.list_routes()
    assert [(r.platform, r.channel, r.kinds, r.broken) for r in routes] == [
        (Platform.SLACK, CHANNEL, frozenset({EventKind.EPISODE, EventKind.BOOK}), False)
    ]

    refusal = await running.slash("announce episode here", user="UMEMBER", channel="C2")
    assert refusal.args["response_type"] == "ephemeral"
    assert "for moderators only" in refusal.args["text"] and "Sorry" in refusal.args["text"]
    assert [r.channel for r in await running.app.store.list_routes()] == [CHANNEL]
    assert [c.args["user"] for c in running.stub.calls_to("users.info")] == ["UWSADMIN", "UMEMBER"]


# ---------------------------------------------------------------- 2. feed add


async def test_admin_adds_a_feed_from_slack_with_a_silent_first_sync(running: Running) -> None:
    running.feeds.add_feed("/podcast.xml", weekly_feed(5))
    await running.slash("announce episode here", user="UADMIN")  # config admin_user_ids
    url = running.feeds.url("/podcast.xml")
    reply = await running.slash(f"feed add <{url}>", user="UADMIN")
    assert "Added" in reply.args["text"] and "Stored the 5 items" in reply.args["text"], reply.args

    (source,) = await running.app.store.list_sources()
    assert source.spec.url == url and source.spec.content.value == "episode" and source.synced
    assert running.feeds.hits["/podcast.xml"] == 1
    assert await running.rows() == []  # nothing announced for what was already there
    assert running.app.scheduler is not None and running.app.scheduler.job_names() == [source.name]
    assert not running.stub.calls_to("chat.postMessage")

    member = await running.slash(f"feed add <{url}2>", user="UMEMBER")
    assert "for moderators only" in member.args["text"]
    assert len(await running.app.store.list_sources()) == 1


# ---------------------------------------------------------------- 3. delivery


async def test_a_new_episode_is_posted_once_with_metadata_and_recorded_sent(running: Running) -> None:
    await running.setup_channel()
    running.feeds.add_feed("/podcast.xml", weekly_feed(6))
    (report,) = await running.app.poll_now()
    assert [e.kind for e in report.events] == [EventKind.EPISODE]

    (row,) = await wait_until(lambda: running.rows("sent"))
    (post,) = running.stub.calls_to("chat.postMessage")
    title = episode_title(6)
    assert post.args["channel"] == CHANNEL
    assert title in post.args["text"]
    blocks = post.args["blocks"] if isinstance(post.args["blocks"], list) else json.loads(post.args["blocks"])
    assert blocks and title in json.dumps(blocks)
    metadata = post.args["metadata"]
    metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
    assert metadata["event_type"] == "showbot_announcement"
    assert metadata["event_payload"]["key"] == row.idempotency_key
    assert post.headers["Authorization"] == "Bearer xoxb-test"

    (message,) = running.stub.history[CHANNEL]
    assert row.message_id == message["ts"] and row.channel == CHANNEL and row.platform is Platform.SLACK

    # Polling again finds nothing new and posts nothing more.
    (again,) = await running.app.poll_now()
    assert again.events == ()
    assert len(running.stub.calls_to("chat.postMessage")) == 1 and len(await running.rows()) == 1


# ---------------------------------------------------------------- 4. member questions


async def test_member_latest_and_a_mention_search_are_answered_from_the_store(running: Running) -> None:
    await running.setup_channel()
    running.feeds.add_feed("/podcast.xml", weekly_feed(6))
    await running.app.poll_now()
    await wait_until(lambda: running.rows("sent"))
    title = episode_title(6)  # "QUIC Deep Dive #6": no older episode mentions QUIC
    word = title.split()[0].lower()

    latest = await running.slash("latest", user="UMEMBER", channel="C5")
    assert latest.args["response_type"] == "in_channel"
    assert title in json.dumps(latest.args["blocks"]) and title in latest.args["text"]
    assert json.dumps(latest.args["blocks"]).index(title) < json.dumps(latest.args["blocks"]).index(episode_title(5))

    answer = await running.mention(f"<@UBOT> episodes on {word}", user="UMEMBER", channel="C7")
    assert title in dumped(answer)
    assert episode_title(5) not in dumped(answer)
    assert "thread_ts" not in answer.args


# ---------------------------------------------------------------- 5. a broken route


async def test_channel_not_found_breaks_the_route_and_status_says_so(running: Running) -> None:
    await running.setup_channel()
    running.feeds.add_feed("/podcast.xml", weekly_feed(6))
    await running.app.poll_now()
    await wait_until(lambda: running.rows("sent"))

    running.stub.script("chat.postMessage", body={"ok": False, "error": "channel_not_found"})
    running.feeds.add_feed("/podcast.xml", weekly_feed(7))
    (report,) = await running.app.poll_now()
    assert len(report.events) == 1

    failed = await wait_until(lambda: running.rows("failed"))
    assert "channel_not_found" in (failed[0].last_error or "")
    (route,) = await running.app.store.list_routes()
    assert route.broken and "channel_not_found" in (route.broken_reason or "")
    assert len(running.stub.calls_to("chat.postMessage")) == 2  # one try: permanent errors are not retried

    status = await running.slash("status", user="UADMIN")
    assert status.args["response_type"] == "ephemeral"
    text = status.args["text"]
    assert f"slack {CHANNEL}" in text and "broken" in text and "channel_not_found" in text, text
    assert "slack up" in text

    # A third episode is not attempted on the broken route.
    running.feeds.add_feed("/podcast.xml", weekly_feed(8))
    (report,) = await running.app.poll_now()
    assert len(report.events) == 1

    async def settled() -> bool:
        return all(r.status in ("sent", "failed") for r in await running.rows())

    await wait_until(settled)
    assert len(running.stub.calls_to("chat.postMessage")) == 2


# ---------------------------------------------------------------- Socket Mode


async def test_socket_mode_latest_is_acked_and_answered_from_the_store(
    tmp_path: Path, stub: SlackStub, feed_server: FeedServer  # noqa: F811
) -> None:
    feed_server.add_feed("/podcast.xml", weekly_feed(5))
    config = load_config(write_config(tmp_path, f"""
[[sources]]
name = "podcast"
url = "{feed_server.url('/podcast.xml')}"
content = "episode"
every = "1h"
"""))
    built: list[SlackAdapter] = []
    factory = slack_factory(stub, built, mode="socket", app_token="xapp-test", signing_secret=None,
                            ping_interval_s=5)
    stop = asyncio.Event()
    async with await App.open(config, Secrets()) as app:
        (first,) = await app.poll_now()
        assert first.ok and first.events == ()
        run = asyncio.create_task(app.run(stop, {"slack": factory}, heartbeat_s=3600))
        try:
            async def up() -> bool:
                assert not run.done(), run.exception()
                adapter = app.adapters.get(Platform.SLACK)
                return bool(adapter is not None and adapter.healthy)

            await wait_until(up)
            assert built[0].mode == "socket"
            await stub.push({
                "envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
                "payload": {
                    "token": "legacy", "team_id": "T1", "channel_id": "C1", "user_id": "UMEMBER",
                    "user_name": "member", "command": "/showbot", "text": "latest",
                    "response_url": stub.response_url("s1"), "trigger_id": "1.2.3", "api_app_id": "A1",
                },
            })
            await stub.wait_for(lambda: stub.acked("env-1") and stub.calls_to("response_url"), WAIT_S)
        finally:
            stop.set()
            await asyncio.wait_for(run, WAIT_S)
    ack = next(m for m in stub.ws_received if m.get("envelope_id") == "env-1")
    assert ack == {"envelope_id": "env-1"}
    (answer,) = stub.calls_to("response_url")
    assert answer.args["response_type"] == "in_channel"
    assert episode_title(5) in json.dumps(answer.args["blocks"])
    assert stub.open_sockets == 0
