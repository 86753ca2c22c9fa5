"""Issue 5 end to end: the REAL core (App, Commands, SQLite store, outbox,
scheduler, via ``App.run``) with the real Discord adapter and discord.py,
against tests/fake_discord.py and feeds served by tests/feedserver.py, all on
127.0.0.1.

Every assertion is on what discord.py actually sent to the fake (REST JSON)
or on what the store holds afterwards. Waits are on conditions, with timeouts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import discord
import pytest

from adapters.discord import DiscordAdapter
from adapters.discord.adapter import COMMANDS_HASH_KEY
from bot.app import AdapterContext, App
from bot.config import Secrets, load_config
from bot.models import EventKind, Platform
from tests.fake_discord import (
    APP_ID,
    BASIC_PERMS,
    BOT_ID,
    CHANNEL_ID,
    MANAGE_GUILD,
    MANAGE_ROLE_ID,
    PLAIN_ROLE_ID,
    FakeDiscord,
    Recorded,
    member_payload,
)
from tests.feedgen import episode_link, make_podcast_feed
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)

TOKEN = "test-token"
WAIT_S = 20.0
C = str(CHANNEL_ID)
CHANNEL_POSTS = rf"/channels/{CHANNEL_ID}/messages"

# Discord resolved Manage Server for this member (role "admins" + interaction permissions).
MODERATOR = member_payload(311111111111111111, "mia", [MANAGE_ROLE_ID], BASIC_PERMS | MANAGE_GUILD)
MEMBER = member_payload(322222222222222222, "pat", [PLAIN_ROLE_ID])

# weekly_feed(5) holds episodes 1..5; 6 and 7 are the "new" ones.
NEW_TITLE = "QUIC Deep Dive #6"  # tests.feedgen.episode_title(6)
SECOND_TITLE = "Redis Deep Dive #7"

T = TypeVar("T")


def weekly_feed(n: int) -> bytes:
    """Episodes 1..n weekly, the newest an hour old (inside the default max_age)."""
    newest = datetime.now(timezone.utc) - timedelta(hours=1)
    return make_podcast_feed(n, start=newest - timedelta(days=7 * (n - 1)))


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = WAIT_S) -> T:
    """SqliteStorage state no fake request signals (it is written after the reply):
    re-check until true, or fail after ``timeout``."""

    async def loop() -> T:
        while not (result := await probe()):
            await asyncio.sleep(0.01)
        return result

    return await asyncio.wait_for(loop(), timeout)


# --- the world: fake Discord + feed server + the real App running ------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    f = FakeDiscord()
    await f.start()
    try:
        yield f
    finally:
        await f.close()
        # The adapter sets process-wide class attributes; put them back.
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


def write_config(tmp_path: Path, fake: FakeDiscord) -> Path:
    """No sources and no routes: moderators create both from Discord."""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[storage]
path = "{tmp_path / 'data' / 'showbot.db'}"

[network]
allow_private_addresses = true
timeout = "5s"

[discord]
api_base_url = "{fake.api_base_url}"
gateway_url = "{fake.gateway_url}"
""")
    return path


def discord_factory(context: AdapterContext) -> DiscordAdapter:
    return DiscordAdapter(
        context.config.discord, TOKEN, context.handler,
        completer=context.completer, settings=context.settings,
        backoff_base_s=0.01, guild_ready_timeout_s=0.05,
        # Generous, so a loaded CI machine still answers directly; the
        # deferred path is handled by ask() too.
        respond_within_s=5.0,
    )


@pytest.fixture
async def app(tmp_path: Path, fake: FakeDiscord, feed_server: FeedServer) -> AsyncIterator[App]:  # noqa: F811
    config = load_config(write_config(tmp_path, fake))
    async with await App.open(config, Secrets()) as a:
        stop = asyncio.Event()
        run = asyncio.create_task(a.run(stop, {"discord": discord_factory}, heartbeat_s=3600))
        try:
            async def connected() -> bool:
                if run.done():
                    run.result()  # surface a start-up failure
                adapter = a.adapters.get(Platform.DISCORD)
                return adapter is not None and adapter.healthy and a.outbox is not None

            await eventually(connected)
            yield a
        finally:
            stop.set()
            await asyncio.wait_for(run, WAIT_S)


# --- talking to the bot through the fake -------------------------------------------


@dataclass
class Answer:
    body: dict[str, Any]  # the message JSON discord.py sent (callback data or follow-up)
    ephemeral: bool

    @property
    def text(self) -> str:
        parts = [self.body.get("content") or ""]
        for e in self.body.get("embeds") or []:
            parts += [e.get("title") or "", e.get("description") or ""]
        return "\n".join(parts)

    @property
    def titles(self) -> list[str]:
        return [e.get("title") or "" for e in self.body.get("embeds") or []]


async def ask(fake: FakeDiscord, name: str, options: list[dict[str, Any]] | None = None,
              *, member: dict[str, Any]) -> Answer:
    """Push one slash command; return what the bot answered to THAT interaction,
    whether directly (callback type 4) or deferred then followed up (type 5)."""
    payload = fake.slash(name, options, member=member)
    iid, token = payload["id"], payload["token"]
    await fake.dispatch("INTERACTION_CREATE", payload)
    (cb,) = await fake.wait_for(
        lambda: fake.find("POST", rf"/interactions/{iid}/{re.escape(token)}/callback"), WAIT_S)
    flags = (cb.body.get("data") or {}).get("flags") or 0
    if cb.body["type"] == 4:
        return Answer(cb.body["data"], bool(flags & 64))
    assert cb.body["type"] == 5, cb.body
    (follow,) = await fake.wait_for(
        lambda: fake.find("POST", rf"/webhooks/{APP_ID}/{re.escape(token)}"), WAIT_S)
    return Answer(follow.body, bool(flags & 64))  # a deferred answer keeps the defer's visibility


def showbot(sub: str, **values: str) -> list[dict[str, Any]]:
    """Options of ``/showbot <sub>`` (or ``/showbot feed <verb>`` for "feed add" etc.)."""
    opts = [{"type": 3, "name": k, "value": v} for k, v in values.items()]
    if sub.startswith("feed "):
        return [{"type": 2, "name": "feed", "options": [{"type": 1, "name": sub[5:], "options": opts}]}]
    return [{"type": 1, "name": sub, "options": opts}]


def channel_posts(fake: FakeDiscord) -> list[Recorded]:
    return fake.find("POST", CHANNEL_POSTS)


def announcements(fake: FakeDiscord) -> list[Recorded]:
    """Channel posts that are not replies to a member's message."""
    return [r for r in channel_posts(fake) if not (r.body or {}).get("message_reference")]


async def announce_and_add_feed(app: App, fake: FakeDiscord, feeds: FeedServer) -> None:
    """What a moderator does once: route episodes and book news here, add the podcast."""
    answer = await ask(fake, "showbot", showbot("announce", kinds="episode,book"), member=MODERATOR)
    assert answer.text.startswith("Announcing here: nothing → episode, book"), answer.text
    feeds.add_feed("/podcast.xml", weekly_feed(5))
    answer = await ask(fake, "showbot", showbot("feed add", url=feeds.url("/podcast.xml"), name="podcast"),
                       member=MODERATOR)
    assert "Added “podcast”" in answer.text, answer.text


async def new_episode_announced(app: App, fake: FakeDiscord, feeds: FeedServer, n: int) -> Any:
    feeds.add_feed("/podcast.xml", weekly_feed(n))
    (report,) = await app.poll_now()
    assert report.ok and len(report.events) == 1, report
    return report.events[0]


# --- the tests -----------------------------------------------------------------------


async def test_moderator_routes_the_channel_and_a_member_is_refused(app: App, fake: FakeDiscord) -> None:
    refused = await ask(fake, "showbot", showbot("announce", kinds="episode,book"), member=MEMBER)
    assert refused.ephemeral
    assert "for moderators only" in refused.text and "Sorry" in refused.text
    assert refused.body["allowed_mentions"]["parse"] == []
    assert await app.store.list_routes() == []

    done = await ask(fake, "showbot", showbot("announce", kinds="episode,book"), member=MODERATOR)
    assert done.ephemeral  # only the moderator sees the confirmation
    assert done.text == "Announcing here: nothing → episode, book."
    (route,) = await app.store.list_routes()
    assert (route.platform, route.channel) == (Platform.DISCORD, C)
    assert route.kinds == frozenset({EventKind.EPISODE, EventKind.BOOK})
    assert route.mention is None and not route.broken
    assert channel_posts(fake) == []  # nothing was posted in the channel itself
    # The command-set hash went into the real store (no re-sync on the next start).
    assert await app.store.find_setting(COMMANDS_HASH_KEY)


async def test_feed_add_stores_the_source_and_announces_nothing(
    app: App, fake: FakeDiscord, feed_server: FeedServer  # noqa: F811
) -> None:
    await announce_and_add_feed(app, fake, feed_server)
    (source,) = await app.store.list_sources()
    assert (source.name, source.spec.url, source.spec.content.value) == (
        "podcast", feed_server.url("/podcast.xml"), "episode")
    assert source.synced
    assert len(await app.store.latest_items(limit=10)) == 5  # the catalogue has the back issues
    assert await app.store.outbox_rows() == []  # silent first sync
    assert channel_posts(fake) == []


async def test_new_episode_is_posted_once_with_no_pings(
    app: App, fake: FakeDiscord, feed_server: FeedServer  # noqa: F811
) -> None:
    await announce_and_add_feed(app, fake, feed_server)
    event = await new_episode_announced(app, fake, feed_server, 6)
    assert event.title == NEW_TITLE

    (row,) = await eventually(lambda: app.store.outbox_rows("sent"))
    (post,) = channel_posts(fake)  # exactly one, and the row is settled: no second one comes
    body = post.body
    assert body["allowed_mentions"] == {"parse": []}
    assert not body.get("content")  # no role configured: nothing that could ping
    (embed,) = body["embeds"]
    assert "QUIC Deep Dive" in embed["title"] and "6" in embed["title"]
    assert embed["url"] == episode_link(6)
    assert embed["author"]["name"] == "New episode"
    assert embed["footer"]["text"] == f"id:{row.idempotency_key}"
    (created,) = fake.created_messages(C)
    assert (row.platform, row.channel, row.message_id) == (Platform.DISCORD, C, created["id"])


async def test_members_latest_and_mention_are_answered_from_the_store(
    app: App, fake: FakeDiscord, feed_server: FeedServer  # noqa: F811
) -> None:
    await announce_and_add_feed(app, fake, feed_server)
    await new_episode_announced(app, fake, feed_server, 6)

    latest = await ask(fake, "latest", member=MEMBER)
    assert not latest.ephemeral
    assert "QUIC Deep Dive" in latest.titles[0]  # newest first, from SQLite
    assert len(latest.titles) == 5
    assert latest.body["allowed_mentions"]["parse"] == []

    await fake.dispatch("MESSAGE_CREATE", fake.mention_message(f"<@{BOT_ID}> episodes on quic", member=MEMBER))
    (reply,) = await fake.wait_for(
        lambda: [r for r in channel_posts(fake) if (r.body or {}).get("message_reference")], WAIT_S)
    titles = [e["title"] for e in reply.body["embeds"]]
    assert titles and "QUIC Deep Dive" in titles[0]
    assert not any("Redis" in t or "Kafka" in t for t in titles)  # only what matched
    assert reply.body["allowed_mentions"] == {"parse": [], "replied_user": False}


async def test_forbidden_channel_breaks_the_route_and_status_shows_it(
    app: App, fake: FakeDiscord, feed_server: FeedServer  # noqa: F811
) -> None:
    await announce_and_add_feed(app, fake, feed_server)
    await new_episode_announced(app, fake, feed_server, 6)
    await eventually(lambda: app.store.outbox_rows("sent"))

    fake.fail_next("POST", CHANNEL_POSTS, 403, {"message": "Missing Permissions", "code": 50013})
    event = await new_episode_announced(app, fake, feed_server, 7)
    assert event.title == SECOND_TITLE

    (failed,) = await eventually(lambda: app.store.outbox_rows("failed"))
    assert "missing permission" in (failed.last_error or "")
    (route,) = await app.store.list_routes()
    assert route.broken and f"missing permission in channel {C}" in (route.broken_reason or "")
    assert len(channel_posts(fake)) == 2 and len(fake.created_messages(C)) == 1  # tried once, not retried

    status = await ask(fake, "showbot", showbot("status"), member=MODERATOR)
    assert status.ephemeral
    assert f"discord {C} (episode, book): broken: missing permission in channel {C}" in status.text
    assert "discord up" in status.text
