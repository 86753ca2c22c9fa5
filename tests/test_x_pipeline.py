"""The x source through the real pipeline: snapshots stored as a time series,
profile/book/milestone events routed like any other, book news once per channel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from bot.config import XSourceOptions
from bot.detect import make_book_matcher
from bot.models import ContentKind, EventKind, Platform, SourceSpec
from bot.poller import Poller
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.sources.xprofile import XProfileSource
from bot.storage import Store
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.xstub import XStub, x_stub  # noqa: F401  (fixture)

FIXTURES = Path(__file__).parent / "fixtures"
APRIL = datetime(2026, 4, 16, 9, 0, tzinfo=timezone.utc)
ROUTED = frozenset({EventKind.EPISODE, EventKind.BOOK, EventKind.PROFILE, EventKind.MILESTONE, EventKind.POST})


@dataclass
class Rig:
    store: Store
    poller: Poller
    clock: FrozenClock


@pytest.fixture
async def rig(tmp_path: Path, x_stub: XStub) -> AsyncIterator[Rig]:
    clock = FrozenClock(APRIL)
    store = await Store.open(tmp_path / "s.db")
    fetcher = HttpFetcher(allow_private_addresses=True, timeout_s=5)
    rss = RssSource(fetcher)
    is_book = make_book_matcher(["Root Cause"], ["https://amzn.to/4cfQjJj"])
    x = XProfileSource(store, fetcher, rss, bearer_token="test-bearer", clock=clock, is_book_news=is_book,
                       options={"x": XSourceOptions(milestones=(88_000,)), "xapi": XSourceOptions()})
    poller = Poller(store, {"rss": rss, "x": x}, clock=clock, is_book_news=is_book)
    for channel in ("discord-1", "discord-2"):
        await store.upsert_route(Platform.DISCORD, channel, ROUTED, None, clock())
    try:
        yield Rig(store, poller, clock)
    finally:
        await x.close()
        await fetcher.close()
        await store.close()


async def add_snapshot_source(rig: Rig, server: FeedServer) -> None:
    await rig.store.add_source(SourceSpec(name="x", kind="x", url=server.url("/hnasr.txt"), handle="hnasr",
                                          provider="snapshot", content=ContentKind.POST), rig.clock())


async def book_rows(store: Store) -> list[tuple[str, str]]:
    rows = await store._all(
        "SELECT o.channel, e.kind FROM outbox o JOIN events e ON e.id = o.event_id ORDER BY o.id")
    return [(r[0], r[1]) for r in rows if r[1] == "book"]


async def test_the_seed_snapshots_announce_profile_book_and_milestone_once(rig: Rig, feed_server: FeedServer) -> None:
    await add_snapshot_source(rig, feed_server)
    feed_server.add_feed("/hnasr.txt", (FIXTURES / "x" / "profile_000.txt").read_bytes(), content_type="text/plain")
    first = await rig.poller.poll("x", force=True)
    assert first.ok and first.events == ()  # the first snapshot is the baseline
    rig.clock.advance(days=1)
    feed_server.add_feed("/hnasr.txt", (FIXTURES / "x" / "profile_001.txt").read_bytes(), content_type="text/plain")
    second = await rig.poller.poll("x", force=True)
    assert second.ok, second.error
    kinds = [e.kind for e in second.events]
    assert kinds.count(EventKind.PROFILE) == 2 and kinds.count(EventKind.BOOK) == 1
    assert kinds.count(EventKind.MILESTONE) == 1
    assert await book_rows(rig.store) == [("discord-1", "book"), ("discord-2", "book")]
    counts = await rig.store._all("SELECT followers FROM profile_snapshots ORDER BY taken_at")
    assert [r[0] for r in counts] == [86_000, 88_800]
    # Polling the same snapshot again announces nothing more.
    rig.clock.advance(hours=1)
    third = await rig.poller.poll("x", force=True)
    assert third.ok and third.events == ()


async def test_book_news_on_podcast_bio_and_pin_is_one_announcement_per_channel(
    rig: Rig, feed_server: FeedServer
) -> None:
    podcast = (FIXTURES / "podcast.xml").read_bytes()
    head, _, rest = podcast.partition(b"<item>")
    items = [b"<item>" + chunk for chunk in rest.split(b"<item>")]
    tail = b"</channel>\n</rss>\n"
    without_book = [i for i in items if b"My new book" not in i]
    feed_server.add_feed("/podcast.xml", head + b"".join(without_book).replace(tail, b"") + tail)
    await rig.store.add_source(SourceSpec(name="podcast", kind="rss", url=feed_server.url("/podcast.xml"),
                                          content=ContentKind.EPISODE), rig.clock())
    await add_snapshot_source(rig, feed_server)
    feed_server.add_feed("/hnasr.txt", (FIXTURES / "x" / "profile_000.txt").read_bytes(), content_type="text/plain")
    await rig.poller.poll("podcast", force=True)
    await rig.poller.poll("x", force=True)

    feed_server.add_feed("/podcast.xml", podcast)  # the book episode appears
    episode = await rig.poller.poll("podcast", force=True)
    assert [e.kind for e in episode.events] == [EventKind.BOOK, EventKind.EPISODE]
    rig.clock.advance(hours=20)  # the bio and the pin change the next day
    feed_server.add_feed("/hnasr.txt", (FIXTURES / "x" / "profile_001.txt").read_bytes(), content_type="text/plain")
    profile = await rig.poller.poll("x", force=True)
    assert EventKind.BOOK in [e.kind for e in profile.events]  # recorded...
    assert await book_rows(rig.store) == [("discord-1", "book"), ("discord-2", "book")]  # ...announced once
    (first_book,) = [e for e in episode.events if e.kind is EventKind.BOOK]
    row = await rig.store._one("SELECT payload FROM events WHERE id = ?", (first_book.id,))
    links = json.loads(row[0])["links"]
    assert len(links) >= 2  # the podcast link plus the X one, for the `book` command


async def test_a_garbage_snapshot_is_a_clear_error_and_the_previous_one_is_kept(
    rig: Rig, feed_server: FeedServer
) -> None:
    await add_snapshot_source(rig, feed_server)
    feed_server.add_feed("/hnasr.txt", (FIXTURES / "x" / "profile_000.txt").read_bytes(), content_type="text/plain")
    await rig.poller.poll("x", force=True)
    feed_server.add_feed("/hnasr.txt", b"\x00\x01 garbage, not a profile", content_type="text/plain")
    bad = await rig.poller.poll("x", force=True)
    assert not bad.ok and bad.error
    assert (await rig.store._one("SELECT count(*) FROM profile_snapshots"))[0] == 1
    rig.clock.advance(days=1)
    feed_server.add_feed("/hnasr.txt", (FIXTURES / "x" / "profile_001.txt").read_bytes(), content_type="text/plain")
    good = await rig.poller.poll("x", force=True)
    assert good.ok and EventKind.PROFILE in [e.kind for e in good.events]  # diffed against 000


async def test_api_provider_announces_a_new_post_once_and_reads_the_profile_daily(
    rig: Rig, x_stub: XStub
) -> None:
    await rig.store.add_source(SourceSpec(name="xapi", kind="x", handle="hnasr", provider="api",
                                          api_base_url=x_stub.base_url, content=ContentKind.POST), rig.clock())
    profile_path, tweets_path = "/2/users/by/username/hnasr", "/2/users/169820517/tweets"
    x_stub.answer(profile_path, fixture="profile.json")
    timeline = json.loads((FIXTURES / "x" / "timeline.json").read_text())
    older = {**timeline, "data": timeline["data"][1:]}
    x_stub.answer(tweets_path, body=older)
    first = await rig.poller.poll("xapi", force=True)
    assert first.ok and first.events == (), first.error
    rig.clock.now = datetime(2026, 5, 20, 10, 0, tzinfo=timezone.utc)
    x_stub.answers[tweets_path] = []
    x_stub.answer(tweets_path, body={**timeline, "data": timeline["data"][:1]})
    second = await rig.poller.poll("xapi", force=True)
    assert [e.kind for e in second.events] == [EventKind.POST]
    assert x_stub.requests_to(tweets_path)[-1].query["since_id"] == timeline["data"][1]["id"]
    x_stub.answers[tweets_path] = []
    x_stub.answer(tweets_path, fixture="empty_timeline.json")
    rig.clock.advance(minutes=15)
    third = await rig.poller.poll("xapi", force=True)
    assert third.ok and third.events == ()
    assert x_stub.requests_to(tweets_path)[-1].query["since_id"] == timeline["data"][0]["id"]
    # The profile (a costlier user read) was fetched for the first poll and
    # when a day had passed, not on every timeline poll.
    assert len(x_stub.requests_to(profile_path)) == 2
    assert all(r.authorization == "Bearer test-bearer" for r in x_stub.requests)
