"""One release, one announcement, end to end: feeds on a real local HTTP
server, the real poller and planner, both storage backends, the outbox,
and the real Discord (discord.py against tests/fake_discord.py) and Slack
(slack_sdk against tests/slack_stub.py) adapters.

The podcast episode is posted once per channel; the YouTube video of the
same recording then PATCHes that Discord message and chat.updates that
Slack message (also after a restart: the message is found by its stored
id), a video-only channel gets the video on its own, and a similar title
outside the window is its own announcement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from adapters.discord import DiscordAdapter
from adapters.slack import SlackAdapter
from bot.clock import FrozenClock
from bot.config import MergeConfig
from bot.models import ContentKind, EventKind, Platform, SourceSpec
from bot.outbox import DeliveryPolicy, Outbox
from bot.poller import Poller
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.storage import Storage
from bot.verdicts import ItemFate
from bot.why import explain
from tests.backends import Target, open_target
from tests.fake_discord import CHANNEL_ID, FakeDiscord
from tests.feedserver import FeedServer, feed_server  # noqa: F401 - fixture
from tests.slack_stub import SlackStub, stub  # noqa: F401 - fixture
from tests.test_discord_adapter import MakeAdapter, fake, make_adapter  # noqa: F401 - fixtures
from tests.test_slack_deliver import make as make_slack

NOW = datetime.now(timezone.utc).replace(microsecond=0)
VIDEO_CHANNEL = "300000000000000003"  # a Discord channel that takes videos only
SLACK_CHANNEL = "C1"
POLICY = DeliveryPolicy(concurrency=8, retry_base_s=5, retry_cap_s=3600, probe_every_s=15, lease_s=60)
SHOW = "The Backend Engineering Show"
EPISODE = "#141 - How Postgres Locks Work"
VIDEO_TITLE = f"How Postgres Locks Work | {SHOW}"
VIDEO_ID = "PgLocks0141"


def podcast_feed(*episodes: tuple[int, str, datetime]) -> bytes:
    items = "".join(
        f"<item><title><![CDATA[{title}]]></title><link>https://pod.example/e/{n}</link>"
        f'<guid isPermaLink="false">ep-{n}</guid><pubDate>{format_datetime(when, usegmt=True)}</pubDate>'
        f"<description>Episode {n}.</description>"
        f'<enclosure url="https://cdn.pod.example/{n}.mp3" length="1" type="audio/mpeg"/></item>'
        for n, title, when in episodes)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{SHOW} with Hussein Nasser</title>'
            f"<link>https://pod.example/</link><description>d</description>{items}</channel></rss>").encode()


def youtube_feed(*videos: tuple[str, str, datetime]) -> bytes:
    entries = "".join(
        f"<entry><id>yt:video:{vid}</id><yt:videoId>{vid}</yt:videoId><title>{escape(title)}</title>"
        f'<link rel="alternate" href="https://www.youtube.com/watch?v={vid}"/>'
        f"<published>{when.isoformat()}</published><updated>{when.isoformat()}</updated>"
        f"<media:group><media:title>{escape(title)}</media:title>"
        f"<media:description>A video.</media:description></media:group></entry>"
        for vid, title, when in videos)
    return ('<?xml version="1.0" encoding="UTF-8"?><feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" '
            'xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Hussein Nasser</title>{entries}</feed>").encode()


OLD_EPISODE = (100, "An old episode", NOW - timedelta(days=30))
OLD_VIDEO = ("OldVideo000", "An old video", NOW - timedelta(days=30))


class Connected:
    """The real Slack adapter, posting through slack_sdk to the stub, as if
    its Socket Mode connection were up (the outbox waits for ``healthy``;
    the connection itself is tested in test_slack_socket.py)."""

    platform = Platform.SLACK
    healthy = True

    def __init__(self, adapter: SlackAdapter) -> None:
        self.adapter = adapter

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def deliver(self, announcement: Any) -> Any:
        return await self.adapter.deliver(announcement)

    async def edit(self, announcement: Any) -> Any:
        return await self.adapter.edit(announcement)

    async def find_delivered(self, announcement: Any) -> Any:
        return await self.adapter.find_delivered(announcement)


@dataclass
class World:
    target: Target
    server: FeedServer
    discord: DiscordAdapter
    slack: SlackAdapter
    clock: FrozenClock
    store: Storage
    fetcher: HttpFetcher
    poller: Poller
    outbox: Outbox

    async def poll(self, name: str) -> Any:
        report = await self.poller.poll(name, force=True)
        assert report.ok, report.error
        return report

    async def deliver(self) -> Any:
        return await self.outbox.dispatch_once()

    async def restart(self) -> None:
        """A new process: new store connection, poller and outbox, nothing in memory."""
        await self.close()
        await self._open(f"after-restart-{id(self)}")

    async def _open(self, owner: str) -> None:
        self.store = await open_target(self.target)
        self.fetcher = HttpFetcher(timeout_s=5, allow_private_addresses=True)
        self.poller = Poller(self.store, {"rss": RssSource(self.fetcher)}, clock=self.clock,
                             merge=MergeConfig(enabled=True, window_s=48 * 3600, show_names=(SHOW,)))
        self.outbox = Outbox(self.store, {Platform.DISCORD: self.discord, Platform.SLACK: Connected(self.slack)},
                             clock=self.clock, policy=POLICY, owner=owner)

    async def close(self) -> None:
        await self.fetcher.close()
        await self.store.close()


@pytest.fixture
async def world(db: Target, feed_server: FeedServer, make_adapter: MakeAdapter,  # noqa: F811
                stub: SlackStub) -> AsyncIterator[World]:  # noqa: F811
    discord = await make_adapter()
    slack, _ = make_slack(stub)
    w = World(db, feed_server, discord, slack, FrozenClock(NOW), None, None, None, None)  # type: ignore[arg-type]
    await w._open("first")
    for name, content, path in (("podcast", ContentKind.EPISODE, "/podcast.xml"),
                                ("youtube", ContentKind.VIDEO, "/youtube.xml")):
        await w.store.add_source(SourceSpec(name=name, kind="rss", url=feed_server.url(path), content=content), NOW)
    both = frozenset({EventKind.EPISODE, EventKind.VIDEO})
    await w.store.upsert_route(Platform.DISCORD, str(CHANNEL_ID), both, None, NOW)
    await w.store.upsert_route(Platform.SLACK, SLACK_CHANNEL, both, None, NOW)
    await w.store.upsert_route(Platform.DISCORD, VIDEO_CHANNEL, frozenset({EventKind.VIDEO}), None, NOW)
    # The first polls: what the feeds hold already is the baseline.
    feed_server.add_feed("/podcast.xml", podcast_feed(OLD_EPISODE))
    feed_server.add_feed("/youtube.xml", youtube_feed(OLD_VIDEO), content_type="application/atom+xml")
    await w.poll("podcast")
    await w.poll("youtube")
    try:
        yield w
    finally:
        await w.close()


def channel_posts(fake: FakeDiscord, channel: str | int) -> list[Any]:
    return fake.find("POST", rf"/channels/{channel}/messages")


async def episode_then_video(w: World, *, video_at: datetime, restart: bool = False) -> Any:
    w.server.add_feed("/podcast.xml", podcast_feed((141, EPISODE, NOW - timedelta(hours=2)), OLD_EPISODE))
    await w.poll("podcast")
    assert (await w.deliver()).sent == 2
    if restart:
        await w.restart()
    w.server.add_feed("/youtube.xml", youtube_feed((VIDEO_ID, VIDEO_TITLE, video_at), OLD_VIDEO),
                      content_type="application/atom+xml")
    report = await w.poll("youtube")
    await w.deliver()
    return report


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "restart-between"])
async def test_the_video_of_an_announced_episode_edits_its_messages(
        world: World, fake: FakeDiscord, stub: SlackStub, restart: bool) -> None:  # noqa: F811
    report = await episode_then_video(world, video_at=NOW - timedelta(hours=1), restart=restart)
    # Discord: one message in the channel that takes both, then a PATCH of it.
    (post,) = channel_posts(fake, CHANNEL_ID)
    (message,) = fake.created_messages(CHANNEL_ID)
    (patch,) = fake.edits(CHANNEL_ID)
    assert patch.path.endswith(f"/messages/{message['id']}")
    assert message["embeds"][0]["title"] == "\\" + EPISODE and message["edited_timestamp"]  # markdown-escaped
    also = [f for f in message["embeds"][0]["fields"] if f["name"] == "Also on"]
    assert also and VIDEO_ID in also[0]["value"] and "YouTube" in also[0]["value"]
    assert patch.body["allowed_mentions"] == {"parse": []}  # no second ping
    # Slack: one message, then chat.update of it.
    (posted,) = stub.calls_to("chat.postMessage")
    (update,) = stub.calls_to("chat.update")
    assert update.args["ts"] == stub.history[SLACK_CHANNEL][0]["ts"] and len(stub.history[SLACK_CHANNEL]) == 1
    assert VIDEO_ID in str(stub.history[SLACK_CHANNEL][0]["blocks"])
    # The channel that takes only videos still gets the video, on its own.
    (video_post,) = channel_posts(fake, VIDEO_CHANNEL)
    assert video_post.body["embeds"][0]["url"] == f"https://www.youtube.com/watch?v={VIDEO_ID}"
    assert fake.edits(VIDEO_CHANNEL) == []
    # The poll said what it did; `why` tells the merge.
    assert [e.kind for e in report.events] == [EventKind.VIDEO, EventKind.EDIT]
    store = world.store
    (video_item,) = [i for i in await store.items_by_link([f"https://www.youtube.com/watch?v={VIDEO_ID}"])]
    trail = await store.item_trail(video_item.id)
    assert trail is not None and trail.verdict is not None and trail.verdict.fate is ItemFate.MERGED
    text = [s.text for s in explain(trail, routes=await store.list_routes(), now=NOW).steps]
    assert any("same release as event" in t.lower() for t in text), text
    assert any(t.startswith("Edited the message in discord") for t in text), text
    # The episode's own `why` tells the edit its announcement got, and
    # counts its posts (2), not the edits.
    (episode_item,) = await store.items_by_link(["https://pod.example/e/141"])
    episode_trail = await store.item_trail(episode_item.id)
    assert episode_trail is not None
    told = explain(episode_trail, routes=await store.list_routes(), now=NOW)
    assert told.summary == "Delivered to all 2 destinations."
    assert any("to add the link of the same release on another source" in s.text for s in told.steps)
    # Nothing left to deliver; a later poll changes nothing.
    await world.poll("youtube")
    assert (await world.deliver()).sent == 0 and len(fake.edits(CHANNEL_ID)) == 1


async def test_a_similar_title_outside_the_window_is_its_own_announcement(
        world: World, fake: FakeDiscord, stub: SlackStub) -> None:  # noqa: F811
    await episode_then_video(world, video_at=NOW - timedelta(hours=2) + timedelta(days=3))
    assert len(channel_posts(fake, CHANNEL_ID)) == 2 and fake.edits(CHANNEL_ID) == []
    assert len(stub.calls_to("chat.postMessage")) == 2 and stub.calls_to("chat.update") == []
    assert len(channel_posts(fake, VIDEO_CHANNEL)) == 1


async def test_a_title_fixed_within_the_window_edits_the_messages(
        world: World, fake: FakeDiscord, stub: SlackStub) -> None:  # noqa: F811
    world.server.add_feed("/podcast.xml", podcast_feed((141, EPISODE, NOW - timedelta(hours=2)), OLD_EPISODE))
    await world.poll("podcast")
    await world.deliver()
    world.server.add_feed("/podcast.xml", podcast_feed((141, EPISODE + " (fixed)", NOW - timedelta(hours=2)),
                                                      OLD_EPISODE))
    await world.poll("podcast")
    await world.deliver()
    assert len(channel_posts(fake, CHANNEL_ID)) == 1 and len(fake.edits(CHANNEL_ID)) == 1
    assert fake.created_messages(CHANNEL_ID)[0]["embeds"][0]["title"] == "\\" + EPISODE + " (fixed)"
    assert len(stub.calls_to("chat.postMessage")) == 1 and len(stub.calls_to("chat.update")) == 1


# -- two instances, two sources of one release, polled at the same moment --------------


class RacingStore:
    """A store whose poll-state reads wait at a barrier until both racing
    polls have read: both decide from the same state (neither sees the
    other's announcement), the worst case for two instances."""

    def __init__(self, store: Storage, barrier: "asyncio.Barrier") -> None:
        self._store = store
        self._barrier = barrier
        self.loads = 0

    async def load_poll_state(self, *args: Any, **kwargs: Any) -> Any:
        state = await self._store.load_poll_state(*args, **kwargs)
        self.loads += 1
        if self.loads == 1:
            await self._barrier.wait()
        return state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_two_instances_polling_both_sources_at_once_announce_the_release_once(
        world: World, fake: FakeDiscord, stub: SlackStub) -> None:  # noqa: F811
    barrier = asyncio.Barrier(2)
    merge = MergeConfig(enabled=True, window_s=48 * 3600, show_names=(SHOW,))
    stores = [await open_target(world.target) for _ in range(2)]
    racing = [RacingStore(s, barrier) for s in stores]
    fetchers = [HttpFetcher(timeout_s=5, allow_private_addresses=True) for _ in range(2)]
    pollers = [Poller(r, {"rss": RssSource(f)}, clock=world.clock, merge=merge, owner=f"instance-{i}")  # type: ignore[arg-type]
               for i, (r, f) in enumerate(zip(racing, fetchers))]
    try:
        world.server.add_feed("/podcast.xml", podcast_feed((141, EPISODE, NOW - timedelta(hours=2)), OLD_EPISODE))
        world.server.add_feed("/youtube.xml", youtube_feed((VIDEO_ID, VIDEO_TITLE, NOW - timedelta(hours=1)),
                                                           OLD_VIDEO), content_type="application/atom+xml")
        reports = await asyncio.gather(pollers[0].poll("podcast", force=True), pollers[1].poll("youtube", force=True))
        assert all(r.ok for r in reports), [r.error for r in reports]
        # One of them lost the race, decided again from what the other wrote, and merged.
        assert sorted(r.loads for r in racing) == [1, 2]
        await world.deliver()
    finally:
        for f in fetchers:
            await f.close()
        for s in stores:
            await s.close()
    assert len(channel_posts(fake, CHANNEL_ID)) == 1 and len(fake.edits(CHANNEL_ID)) == 1
    assert len(stub.calls_to("chat.postMessage")) == 1 and len(stub.calls_to("chat.update")) == 1
    assert len(channel_posts(fake, VIDEO_CHANNEL)) == 1  # the video-only channel: the video, once


# -- the CLI contract: `showbot poll --json` shows the merge -----------------------------


async def test_poll_json_lists_the_merge_as_an_edit(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    import json

    from tests.test_app import run_cli

    config = tmp_path / "config.toml"
    config.write_text(f"""
[storage]
path = "{tmp_path / 'showbot.db'}"

[network]
allow_private_addresses = true

[merge]
enabled = true
window = "48h"
show_names = ["{SHOW}"]

[youtube]
base_url = "{feed_server.base_url}"

[[sources]]
name = "podcast"
kind = "rss"
url = "{feed_server.url('/podcast.xml')}"
content = "episode"

[[sources]]
name = "youtube"
kind = "rss"
url = "{feed_server.url('/youtube.xml')}"
content = "video"

[[routes]]
platform = "console"
channel = "terminal"
kinds = ["episode", "video"]
""")
    feed_server.add_feed("/podcast.xml", podcast_feed(OLD_EPISODE))
    feed_server.add_feed("/youtube.xml", youtube_feed(OLD_VIDEO), content_type="application/atom+xml")
    # The keyless YouTube checks ([youtube] base_url): not a Short (the
    # /shorts/ address redirects), and a watch page without a player
    # response, which holds nothing.
    feed_server.add_redirect(f"/shorts/{VIDEO_ID}", feed_server.url("/watch"), status=303)
    feed_server.add_feed("/watch", b"<html><body>a video</body></html>", content_type="text/html")
    code, _, err = await run_cli("poll", "--json", "--config", str(config))
    assert code == 0, err
    feed_server.add_feed("/podcast.xml", podcast_feed((141, EPISODE, NOW - timedelta(hours=2)), OLD_EPISODE))
    code, out, err = await run_cli("poll", "--json", "--config", str(config), "--source", "podcast")
    assert code == 0, err
    (podcast,) = json.loads(out)["sources"]
    assert [e["kind"] for e in podcast["events"]] == ["episode"] and podcast["edits"] == []
    feed_server.add_feed("/youtube.xml", youtube_feed((VIDEO_ID, VIDEO_TITLE, NOW - timedelta(hours=1)), OLD_VIDEO),
                         content_type="application/atom+xml")
    code, out, err = await run_cli("poll", "--json", "--config", str(config), "--source", "youtube")
    assert code == 0, err
    (youtube,) = json.loads(out)["sources"]
    video_url = f"https://www.youtube.com/watch?v={VIDEO_ID}"
    assert youtube["events"] == []  # the only channel had the episode: edited, not posted
    (edit,) = youtube["edits"]
    assert (edit["change"], edit["title"], edit["url"]) == ("merge", VIDEO_TITLE, video_url)
    assert edit["also"] == [{"label": "YouTube", "url": video_url}] and isinstance(edit["edit_of"], int)
    code, out, err = await run_cli("why", "--config", str(config), video_url)
    assert code == 0, err
    assert f"The same release as event #{edit['edit_of']}" in out
