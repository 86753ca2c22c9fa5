"""A premiere end to end: the local YouTube (feed, /shorts/, the Data API stub,
tests/ytstub.py) -> the real poller and planner on both backends -> the
outbox -> the real Discord (discord.py against tests/fake_discord.py) and
Slack (slack_sdk against tests/slack_stub.py) adapters.

upcoming -> live -> finished is one post per channel ("Premieres at ..."),
then two edits of that same message ("Live now", then the plain video),
also with a restart in between (the edit finds the message by its stored
id); never a second post or ping. A Short next to it is never posted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.discord import DiscordAdapter
from adapters.slack import SlackAdapter
from bot.clock import FrozenClock
from bot.config import YouTubeConfig
from bot.models import ContentKind, EventKind, Platform, SourceSpec
from bot.outbox import DeliveryPolicy, Outbox
from bot.poller import Poller
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.sources.youtube.checks import YouTubeChecks
from bot.storage import Storage
from tests.backends import Target, open_target
from tests.fake_discord import CHANNEL_ID, FakeDiscord
from tests.slack_stub import SlackStub, stub  # noqa: F401 - fixture
from tests.test_discord_adapter import MakeAdapter, fake, make_adapter  # noqa: F401 - fixtures
from tests.test_merge_end_to_end import Connected
from tests.test_slack_deliver import make as make_slack
from tests.ytstub import KEY, Video, YouTubeStub, youtube  # noqa: F401 - fixture

NOW = datetime.now(timezone.utc).replace(microsecond=0)
POLICY = DeliveryPolicy(concurrency=8, retry_base_s=5, retry_cap_s=3600, probe_every_s=15, lease_s=60)
SLACK_CHANNEL = "C1"


@dataclass
class World:
    target: Target
    yt: YouTubeStub
    discord: DiscordAdapter
    slack: SlackAdapter
    clock: FrozenClock
    store: Storage = None  # type: ignore[assignment]
    fetcher: HttpFetcher = None  # type: ignore[assignment]
    poller: Poller = None  # type: ignore[assignment]
    outbox: Outbox = None  # type: ignore[assignment]

    async def open(self, owner: str) -> None:
        self.store = await open_target(self.target)
        self.fetcher = HttpFetcher(timeout_s=5, allow_private_addresses=True)
        checks = YouTubeChecks(self.fetcher, YouTubeConfig(self.yt.base_url, self.yt.api_base_url), KEY)
        self.poller = Poller(self.store, {"rss": RssSource(self.fetcher)}, clock=self.clock, youtube=checks)
        self.outbox = Outbox(self.store, {Platform.DISCORD: self.discord, Platform.SLACK: Connected(self.slack)},
                             clock=self.clock, policy=POLICY, owner=owner)

    async def close(self) -> None:
        await self.fetcher.close()
        await self.store.close()

    async def poll_and_deliver(self) -> tuple[Any, Any]:
        report = await self.poller.poll("youtube", force=True)
        assert report.ok, report.error
        return report, await self.outbox.dispatch_once()


@pytest.fixture
async def world(db: Target, youtube: YouTubeStub, make_adapter: MakeAdapter,  # noqa: F811
                stub: SlackStub) -> AsyncIterator[World]:  # noqa: F811
    discord = await make_adapter()
    slack, _ = make_slack(stub)
    w = World(db, youtube, discord, slack, FrozenClock(NOW))
    await w.open("first")
    await w.store.add_source(SourceSpec(name="youtube", kind="rss", url=youtube.feed_url,
                                        content=ContentKind.VIDEO), NOW)
    await w.store.upsert_route(Platform.DISCORD, str(CHANNEL_ID), frozenset({EventKind.VIDEO}), None, NOW)
    await w.store.upsert_route(Platform.SLACK, SLACK_CHANNEL, frozenset({EventKind.VIDEO}), None, NOW)
    youtube.videos = [Video("old00000001", "An old video", NOW - timedelta(days=30))]
    await w.poll_and_deliver()  # the baseline
    try:
        yield w
    finally:
        await w.close()


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "restart-between"])
async def test_a_premiere_is_one_post_then_live_now_then_the_video_edited_in_place(
        world: World, fake: FakeDiscord, stub: SlackStub, restart: bool) -> None:  # noqa: F811
    start = NOW + timedelta(hours=2)
    premiere = Video("Premiere001", "How Postgres Locks Work", NOW - timedelta(minutes=1), live="upcoming",
                     scheduled_start_at=start)
    world.yt.videos.insert(0, premiere)
    world.yt.videos.insert(0, Video("Short000001", "A Short", NOW - timedelta(minutes=1), short=True))
    report, _ = await world.poll_and_deliver()
    assert [e.title for e in report.events] == ["How Postgres Locks Work"]  # the Short: stored, not posted
    (message,) = fake.created_messages(CHANNEL_ID)
    heading = f"Premieres at {start.strftime('%Y-%m-%d %H:%M')} UTC"
    assert message["embeds"][0]["author"]["name"] == heading
    (posted,) = stub.calls_to("chat.postMessage")
    assert heading in str(posted.args)

    if restart:
        await world.close()
        await world.open("after-restart")
    world.clock.now = start
    premiere.live, premiere.actual_start_at = "live", start
    report, _ = await world.poll_and_deliver()
    assert [e.kind for e in report.events] == [EventKind.EDIT]
    (live_patch,) = fake.edits(CHANNEL_ID)
    assert live_patch.path.endswith(f"/messages/{message['id']}")
    assert live_patch.body["embeds"][0]["author"]["name"] == "Live now"
    assert live_patch.body["allowed_mentions"] == {"parse": []}  # an edit pings nobody
    (live_update,) = stub.calls_to("chat.update")
    assert live_update.args["ts"] == stub.history[SLACK_CHANNEL][0]["ts"] and "Live now" in str(live_update.args)

    world.clock.now = start + timedelta(hours=1)
    premiere.live, premiere.actual_end_at = "none", start + timedelta(hours=1)
    await world.poll_and_deliver()
    live_patch, done_patch = fake.edits(CHANNEL_ID)
    assert done_patch.path == live_patch.path and done_patch.body["embeds"][0]["author"]["name"] == "New video"
    assert len(stub.calls_to("chat.update")) == 2 and len(stub.history[SLACK_CHANNEL]) == 1
    # One post per channel, ever; later polls change nothing.
    world.clock.now += timedelta(hours=1)
    report, delivered = await world.poll_and_deliver()
    assert report.events == () and delivered.sent == 0
    assert len(fake.created_messages(CHANNEL_ID)) == 1 and len(stub.calls_to("chat.postMessage")) == 1


async def test_a_video_that_settles_after_its_episode_was_announced_edits_that_announcement(
        db: Target, youtube: YouTubeStub, make_adapter: MakeAdapter, fake: FakeDiscord) -> None:  # noqa: F811
    """settle and [merge] together: the video is held to settle, and when it
    is let go it is the same release as the podcast episode announced
    meanwhile -- an edit of that message, not a second post."""
    from bot.config import MergeConfig, SourceOptions
    from tests.test_merge_end_to_end import podcast_feed
    from tests.feedserver import FeedServer

    server = FeedServer()
    await server.start()
    discord = await make_adapter()
    store = await open_target(db)
    fetcher = HttpFetcher(timeout_s=5, allow_private_addresses=True)
    try:
        clock = FrozenClock(NOW)
        checks = YouTubeChecks(fetcher, YouTubeConfig(youtube.base_url, youtube.api_base_url), KEY)
        poller = Poller(store, {"rss": RssSource(fetcher)}, clock=clock, youtube=checks,
                        source_options={"youtube": SourceOptions(settle_s=600)},
                        merge=MergeConfig(enabled=True, window_s=48 * 3600, show_names=("The Show",)))
        outbox = Outbox(store, {Platform.DISCORD: discord}, clock=clock, policy=POLICY, owner="one")
        await store.add_source(SourceSpec(name="podcast", kind="rss", url=server.url("/podcast.xml"),
                                          content=ContentKind.EPISODE), NOW)
        await store.add_source(SourceSpec(name="youtube", kind="rss", url=youtube.feed_url,
                                          content=ContentKind.VIDEO), NOW)
        await store.upsert_route(Platform.DISCORD, str(CHANNEL_ID), frozenset({EventKind.EPISODE, EventKind.VIDEO}),
                                 None, NOW)
        old = (100, "An old episode", NOW - timedelta(days=30))
        server.add_feed("/podcast.xml", podcast_feed(old))
        youtube.videos = [Video("old00000001", "An old video", NOW - timedelta(days=30))]
        for name in ("podcast", "youtube"):
            assert (await poller.poll(name, force=True)).ok
        youtube.videos.insert(0, Video("PgLocks0141", "How Postgres Locks Work | The Show",
                                       NOW - timedelta(minutes=30)))
        assert (await poller.poll("youtube", force=True)).events == ()  # held: settling
        server.add_feed("/podcast.xml", podcast_feed((141, "#141 - How Postgres Locks Work",
                                                      NOW - timedelta(hours=1)), old))
        assert [e.kind for e in (await poller.poll("podcast", force=True)).events] == [EventKind.EPISODE]
        await outbox.dispatch_once()
        clock.advance(minutes=11)
        released = await poller.poll("youtube", force=True)
        assert [e.kind for e in released.events] == [EventKind.EDIT]
        await outbox.dispatch_once()
        assert len(fake.created_messages(CHANNEL_ID)) == 1 and len(fake.edits(CHANNEL_ID)) == 1
        (message,) = fake.created_messages(CHANNEL_ID)
        also = [f for f in message["embeds"][0]["fields"] if f["name"] == "Also on"]
        assert also and "PgLocks0141" in also[0]["value"]
        video = [i for i in await store.feed_items("youtube", 5) if i.item.video_id == "PgLocks0141"][0]
        trail = await store.item_trail(video.id)
        assert trail is not None and trail.verdict is not None and trail.verdict.fate.value == "merged"
    finally:
        await fetcher.close()
        await store.close()
        await server.close()
