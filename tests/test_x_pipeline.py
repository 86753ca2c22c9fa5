"""The x source through the real pipeline: snapshots stored as a time series,
profile/book/milestone events routed like any other, book news once per channel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import pytest

from bot.clock import FrozenClock
from bot.config import XSourceOptions
from bot.detect import make_book_matcher
from bot.errors import DeliveryError
from bot.models import ContentKind, EventKind, Platform, Source, SourceSpec
from bot.outbox import DeliveryPolicy, Outbox
from bot.poller import Poller, PollReport
from bot.profile import ProfileSnapshot
from bot.sources.http import HttpFetcher
from bot.sources.rss import Fetched, RssSource
from bot.sources.x import XSource
from bot.storage import SqliteStorage
from tests.fake_chat import RecordingAdapter
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.xstub import XStub, x_stub  # noqa: F401  (fixture)

FIXTURES = Path(__file__).parent / "fixtures"
APRIL = datetime(2026, 4, 16, 9, 0, tzinfo=timezone.utc)
ROUTED = frozenset({EventKind.EPISODE, EventKind.BOOK, EventKind.PROFILE, EventKind.MILESTONE, EventKind.POST})


@dataclass
class Rig:
    store: SqliteStorage
    poller: Poller
    clock: FrozenClock


@pytest.fixture
async def rig(tmp_path: Path, x_stub: XStub) -> AsyncIterator[Rig]:
    clock = FrozenClock(APRIL)
    store = await SqliteStorage.open(tmp_path / "s.db")
    fetcher = HttpFetcher(allow_private_addresses=True, timeout_s=5)
    rss = RssSource(fetcher)
    is_book = make_book_matcher(["Root Cause"], ["https://amzn.to/4cfQjJj"])
    options = {"x": XSourceOptions(milestones=(88_000,)), "xapi": XSourceOptions()}
    x = XSource(fetcher, rss, bearer_token="test-bearer", clock=clock, options=options)
    poller = Poller(store, {"rss": rss, "x": x}, clock=clock, is_book_news=is_book, x_options=options)
    for channel in ("discord-1", "discord-2"):
        await store.upsert_route(Platform.DISCORD, channel, ROUTED, None, clock())
    try:
        yield Rig(store, poller, clock)
    finally:
        await fetcher.close()
        await store.close()


async def add_snapshot_source(rig: Rig, server: FeedServer) -> None:
    await rig.store.add_source(SourceSpec(name="x", kind="x", url=server.url("/hnasr.txt"), handle="hnasr",
                                          provider="snapshot", content=ContentKind.POST), rig.clock())


async def book_rows(store: SqliteStorage) -> list[tuple[str, str]]:
    """(channel, "book" | "follow-up") per queued book row, in queue order."""
    rows = await store._all(
        "SELECT o.dest_id, e.kind, json_extract(e.payload, '$.follow_up_of') "
        "FROM outbox o JOIN events e ON e.id = o.event_id ORDER BY o.id")
    return [(r[0], "follow-up" if r[2] is not None else "book") for r in rows if r[1] == "book"]


class ScriptedProfiles:
    """A profile kind that hands out scripted snapshots and records the
    previous snapshot the poller passed it."""

    takes_previous_snapshot: Literal[True] = True

    def __init__(self, *followers: int) -> None:
        self.followers = list(followers)
        self.previous: list[ProfileSnapshot | None] = []
        self.clock: FrozenClock | None = None

    async def fetch(self, source: Source, previous: ProfileSnapshot | None) -> Fetched:
        assert self.clock is not None
        self.previous.append(previous)
        snapshot = ProfileSnapshot(handle="hnasr", taken_at=self.clock(), followers=self.followers.pop(0))
        return Fetched((), snapshot=snapshot)


async def test_the_poller_hands_the_stored_snapshot_in_and_diffs_what_comes_back(rig: Rig) -> None:
    kind = ScriptedProfiles(87_900, 88_200, 87_000, 88_500)
    kind.clock = rig.clock
    poller = Poller(rig.store, {"x": kind}, clock=rig.clock,
                    x_options={"scripted": XSourceOptions(milestones=(88_000,))})
    await rig.store.add_source(SourceSpec(name="scripted", kind="x", handle="hnasr", provider="snapshot",
                                          url="https://example.com/x.json", content=ContentKind.POST), rig.clock())
    reports = []
    for _ in range(4):
        reports.append(await poller.poll("scripted", force=True))
        rig.clock.advance(hours=1)
    assert all(r.ok for r in reports), [r.error for r in reports]
    assert kind.previous[0] is None
    assert [p.followers for p in kind.previous[1:] if p is not None] == [87_900, 88_200, 87_000]
    assert kind.previous[1] is not None and kind.previous[1].taken_at == APRIL  # the stored one, read back
    milestones = [[e.kind for e in r.events] for r in reports]
    # 88k is announced once: the dip to 87k and back is caught by the best count stored.
    assert milestones == [[], [EventKind.MILESTONE], [], []]


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


async def podcast_then_profile(rig: Rig, feed_server: FeedServer) -> tuple[PollReport, Callable[[], Awaitable[PollReport]]]:
    """Baselines without the book, then the book episode appears on the
    podcast. Returns that poll, and a step that changes the bio and the pin
    the next day (the same book news, seen on X)."""
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

    async def profile_changes() -> PollReport:
        rig.clock.advance(hours=20)
        feed_server.add_feed("/hnasr.txt", (FIXTURES / "x" / "profile_001.txt").read_bytes(),
                             content_type="text/plain")
        return await rig.poller.poll("x", force=True)

    return episode, profile_changes


async def test_book_news_on_podcast_bio_and_pin_is_one_announcement_per_channel(
    rig: Rig, feed_server: FeedServer
) -> None:
    episode, profile_changes = await podcast_then_profile(rig, feed_server)
    assert [e.kind for e in episode.events] == [EventKind.BOOK, EventKind.EPISODE]
    profile = await profile_changes()
    assert EventKind.BOOK in [e.kind for e in profile.events]  # recorded...
    # ...announced once per channel, the X link following up in each.
    assert await book_rows(rig.store) == [("discord-1", "book"), ("discord-2", "book"),
                                          ("discord-1", "follow-up"), ("discord-2", "follow-up")]
    (first_book,) = [e for e in episode.events if e.kind is EventKind.BOOK]
    row = await rig.store._one("SELECT payload FROM events WHERE id = ?", (first_book.id,))
    links = json.loads(row[0])["links"]
    assert len(links) >= 2  # the podcast link plus the X one, for the `book` command
    # The same snapshot again: no new link, no new follow-up.
    rig.clock.advance(hours=1)
    again = await rig.poller.poll("x", force=True)
    assert again.ok and again.events == ()
    assert len(await book_rows(rig.store)) == 4


async def test_a_follow_up_is_delivered_as_a_reply_to_the_announcement_in_each_channel(
    rig: Rig, feed_server: FeedServer
) -> None:
    chat = RecordingAdapter()
    outbox = Outbox(rig.store, {Platform.DISCORD: chat}, clock=rig.clock)
    _, profile_changes = await podcast_then_profile(rig, feed_server)
    await outbox.dispatch_once()
    first = {a.destination.id: (a, f"m{i}") for i, a in enumerate(chat.sent, 1) if a.event.kind is EventKind.BOOK}
    assert set(first) == {"discord-1", "discord-2"}
    assert all(a.reply_to is None and not a.is_follow_up for a, _ in first.values())

    await profile_changes()
    before = len(chat.sent)
    report = await outbox.dispatch_once()
    follow_ups = [a for a in chat.sent[before:] if a.is_follow_up]
    assert report.failed == 0
    assert sorted((a.destination.id, a.reply_to) for a in follow_ups) == sorted(
        (channel, message_id) for channel, (_, message_id) in first.items())
    assert all(a.event.kind is EventKind.BOOK for a in follow_ups)
    # Nothing is sent twice.
    await outbox.dispatch_once()
    assert [a.is_follow_up for a in chat.sent].count(True) == 2


async def test_a_follow_up_waits_for_its_announcement_and_skips_a_channel_that_failed(
    rig: Rig, feed_server: FeedServer
) -> None:
    """The anchor is retrying in discord-1 and failed for good in discord-2
    when the X link arrives: discord-1's reply waits for the announcement;
    discord-2 (its route broken) gets nothing."""
    chat = RecordingAdapter()
    outbox = Outbox(rig.store, {Platform.DISCORD: chat}, clock=rig.clock,  # the retry is due after the X poll
                    policy=DeliveryPolicy(retry_base_s=86400, retry_cap_s=86400))
    episode, profile_changes = await podcast_then_profile(rig, feed_server)
    rows = await rig.store.outbox_rows()
    anchor_rows = [r for r in rows if r.event_id == next(e.id for e in episode.events if e.kind is EventKind.BOOK)]
    assert [r.channel for r in anchor_rows] == ["discord-1", "discord-2"]
    # Rows go in id order: the episode's book event is queued first, one per channel.
    chat.failures = [DeliveryError("timeout"), DeliveryError("missing access", permanent=True)]
    await outbox.dispatch_once()
    assert chat.sent == []

    await profile_changes()
    assert await book_rows(rig.store) == [("discord-1", "book"), ("discord-2", "book"), ("discord-1", "follow-up")]
    await outbox.dispatch_once()
    assert not any(a.is_follow_up for a in chat.sent)  # not before its announcement: it queues behind it
    assert [r.status for r in await rig.store.outbox_rows() if r.channel == "discord-1"][-1] == "pending"

    rig.clock.advance(days=1)
    await outbox.dispatch_once()
    book = [a for a in chat.sent if a.event.kind is EventKind.BOOK]
    assert [(a.destination.id, a.is_follow_up) for a in book] == [("discord-1", False), ("discord-1", True)]
    assert book[1].reply_to == f"m{chat.sent.index(book[0]) + 1}"


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


def bridge_feed(*posts: tuple[str, str, str]) -> bytes:
    """An RSS bridge's rendering of an X timeline: (status id, text, RFC 822 date), newest first."""
    items = "".join(
        f"<item><title>{text}</title><link>https://x.com/hnasr/status/{sid}</link>"
        f"<guid>https://x.com/hnasr/status/{sid}</guid><description>{text}</description>"
        f"<pubDate>{date}</pubDate></item>"
        for sid, text, date in posts
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>@hnasr</title>'
            f"<link>https://x.com/hnasr</link>{items}</channel></rss>").encode()


async def test_rss_provider_announces_a_new_post_once_and_book_posts_as_book_news(
    rig: Rig, feed_server: FeedServer
) -> None:
    await rig.store.add_source(SourceSpec(name="xrss", kind="x", url=feed_server.url("/bridge.xml"), handle="hnasr",
                                          provider="rss", content=ContentKind.POST), rig.clock())
    older = ("101", "Connection pooling is a queue in disguise", "Tue, 14 Apr 2026 08:00:00 GMT")
    feed_server.add_feed("/bridge.xml", bridge_feed(older))
    first = await rig.poller.poll("xrss", force=True)
    assert first.ok and first.events == (), first.error  # the baseline is not announced

    newer = ("102", "Why your index is not used", "Thu, 16 Apr 2026 08:00:00 GMT")
    book = ("103", "Root Cause is out: amzn.to/4cfQjJj", "Thu, 16 Apr 2026 08:30:00 GMT")
    feed_server.add_feed("/bridge.xml", bridge_feed(book, newer, older))
    rig.clock.advance(minutes=15)
    second = await rig.poller.poll("xrss", force=True)
    assert second.ok, second.error
    assert sorted((e.kind.value, e.url) for e in second.events) == [
        ("book", "https://x.com/hnasr/status/103"),
        ("post", "https://x.com/hnasr/status/102"),
        ("post", "https://x.com/hnasr/status/103"),
    ]
    rig.clock.advance(minutes=15)
    third = await rig.poller.poll("xrss", force=True)  # the same timeline again
    assert third.ok and third.events == ()
    assert await book_rows(rig.store) == [("discord-1", "book"), ("discord-2", "book")]
