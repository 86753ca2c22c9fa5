"""YouTube through the real poller: a local YouTube (tests/ytstub.py) -> the
guarded fetcher -> parse -> the checks -> decide -> one write, on SQLite and
PostgreSQL. Settle, Shorts, watch-page holds, and premieres with the Data API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from bot.clock import FrozenClock
from bot.config import SourceOptions, YouTubeConfig
from bot.models import ContentKind, EventKind, LiveState, Platform, SourceSpec
from bot.poller import Poller, PollReport
from bot.presenter import live_heading
from bot.sources.http import HttpFetcher
from bot.sources.rss import RssSource
from bot.sources.youtube.checks import YouTubeChecks
from bot.storage import Storage
from bot.verdicts import ItemFate
from bot.why import Outcome, explain
from tests.ytstub import KEY, Video, YouTubeStub, youtube  # noqa: F401  (fixture)

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)


@dataclass
class Rig:
    store: Storage
    stub: YouTubeStub
    clock: FrozenClock
    fetcher: HttpFetcher
    checks: YouTubeChecks
    poller: Poller

    async def poll(self) -> PollReport:
        report = await self.poller.poll("yt", force=True)
        assert report.ok, report.error
        return report

    def publish(self, vid: str, title: str, **kw: object) -> Video:
        v = Video(vid, title, self.clock() - timedelta(minutes=1), **kw)  # type: ignore[arg-type]
        self.stub.videos.insert(0, v)
        return v

    async def item(self, vid: str) -> int:
        [found] = [i for i in await self.store.feed_items("yt", 100) if i.item.video_id == vid]
        return found.id


async def make_rig(store: Storage, stub: YouTubeStub, *, options: SourceOptions = SourceOptions(),
                   key: str | None = None, timeout_s: float = 5) -> Rig:
    clock = FrozenClock(NOW)
    fetcher = HttpFetcher(timeout_s=timeout_s, allow_private_addresses=True)
    checks = YouTubeChecks(fetcher, YouTubeConfig(base_url=stub.base_url, api_base_url=stub.api_base_url), key)
    poller = Poller(store, {"rss": RssSource(fetcher)}, clock=clock, source_options={"yt": options},
                    youtube=checks)
    await store.add_source(SourceSpec(name="yt", kind="rss", url=stub.feed_url, content=ContentKind.VIDEO), NOW)
    await store.upsert_route(Platform.DISCORD, "c1", frozenset(EventKind), None, NOW)
    stub.videos = [Video("old1", "An old video", NOW - timedelta(days=3)),
                   Video("old2", "Another old one", NOW - timedelta(days=2))]
    return Rig(store, stub, clock, fetcher, checks, poller)


@pytest.fixture
async def rig(storage: Storage, youtube: YouTubeStub) -> AsyncIterator[Rig]:
    r = await make_rig(storage, youtube)
    try:
        yield r
    finally:
        await r.fetcher.close()


async def baseline(r: Rig) -> None:
    first = await r.poll()
    assert len(first.new) == 2 and first.events == ()


async def test_the_baseline_costs_no_youtube_checks(rig: Rig) -> None:
    await baseline(rig)
    assert rig.stub.calls("/shorts/") == [] and rig.stub.calls("/watch") == []


# ---------------------------------------------------------------------- settle

async def test_a_title_fixed_during_the_settle_window_is_announced_once_with_the_final_title(
        storage: Storage, youtube: YouTubeStub) -> None:
    r = await make_rig(storage, youtube, options=SourceOptions(settle_s=600))
    try:
        await baseline(r)
        v = r.publish("new1", "Tpyo in teh title")
        held = await r.poll()
        assert len(held.new) == 1 and held.events == ()
        trail = await r.store.item_trail(held.new[0].id)
        assert trail is not None and trail.verdict is not None and trail.verdict.fate is ItemFate.HELD
        why = explain(trail, routes=await r.store.list_routes(), now=r.clock())
        assert why.outcome is Outcome.HELD and why.summary == "Held: settling until 2026-12-01 15:10 UTC."

        r.clock.advance(minutes=5)
        v.title = "Typo in the title"  # the host fixes it: the wait starts again
        assert (await r.poll()).events == ()
        r.clock.advance(minutes=9)  # 14 min after first sight, 9 after the fix
        assert (await r.poll()).events == ()  # the feed is unchanged (body hash): still decided
        r.clock.advance(minutes=1, seconds=1)
        released = await r.poll()
        assert [(e.kind, e.title) for e in released.events] == [(EventKind.VIDEO, "Typo in the title")]
        assert released.new == ()
        r.clock.advance(minutes=30)
        assert (await r.poll()).events == ()  # once
        rows = await r.store.outbox_rows()
        assert [(row.channel, row.status) for row in rows] == [("c1", "pending")]
        trail = await r.store.item_trail(held.new[0].id)
        assert trail is not None and trail.verdict is not None and trail.verdict.fate is ItemFate.ANNOUNCED
        assert "released" in (trail.verdict.note or "")
        assert [e.event.title for e in trail.events] == ["Typo in the title"]
    finally:
        await r.fetcher.close()


async def test_a_member_subscribed_to_the_topic_gets_the_released_item_once(
        storage: Storage, youtube: YouTubeStub) -> None:
    r = await make_rig(storage, youtube, options=SourceOptions(settle_s=600))
    try:
        await r.store.add_subscription(Platform.DISCORD, "u1", "kafka", NOW, 10)
        await baseline(r)
        r.publish("new1", "Kafka internals")
        await r.poll()
        r.clock.advance(minutes=11)
        released = await r.poll()
        assert [e.title for e in released.events] == ["Kafka internals"]
        rows = await r.store.outbox_rows()
        assert sorted((row.destination.kind.value, row.destination.id) for row in rows) == [("channel", "c1"), ("user", "u1")]
    finally:
        await r.fetcher.close()


async def test_a_held_item_is_searchable_while_it_waits(storage: Storage, youtube: YouTubeStub) -> None:
    r = await make_rig(storage, youtube, options=SourceOptions(settle_s=600))
    try:
        await baseline(r)
        r.publish("new1", "Kafka internals explained")
        await r.poll()
        from bot.search import parse_query

        hits = await r.store.search(parse_query("kafka"))
        assert [h.item_id for h in hits] == [await r.item("new1")]
    finally:
        await r.fetcher.close()


# ---------------------------------------------------------------------- shorts

async def test_a_short_is_stored_but_not_announced_and_only_new_videos_are_checked(rig: Rig) -> None:
    await baseline(rig)
    rig.publish("vid1", "A long video")
    rig.publish("sh1", "A Short", short=True)
    report = await rig.poll()
    assert sorted(s.item.title for s in report.new) == ["A Short", "A long video"]
    assert [e.title for e in report.events] == ["A long video"]
    assert sorted(q for q in (p.removeprefix("/shorts/") for m, p, _ in rig.stub.requests if m == "HEAD")) \
        == ["sh1", "vid1"]
    trail = await rig.store.item_trail(await rig.item("sh1"))
    assert trail is not None and trail.verdict is not None and trail.verdict.fate is ItemFate.SHORT
    why = explain(trail, routes=[], now=rig.clock())
    assert why.outcome is Outcome.NOT_ANNOUNCED and "Short" in why.summary

    # a confirmed Short is not checked further: no watch page fetched for it
    assert "sh1" not in [q.get("v") for q in rig.stub.calls("/watch")]

async def test_a_youtube_poll_decides_once(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks (which videos to look at) and the intent are made from one
    decide(): deciding 500 items is not free, and it ran twice a poll."""
    import bot.poller

    calls = []
    original = bot.poller.decide

    def counted(*args: object, **kw: object) -> object:
        calls.append(1)
        return original(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(bot.poller, "decide", counted)
    await baseline(rig)
    rig.publish("vid1", "A long video")
    report = await rig.poll()
    assert [e.title for e in report.events] == ["A long video"]
    assert len(calls) == 2  # one a poll, the checks of vid1 included
    assert rig.stub.calls("/shorts/")


async def test_shorts_true_announces_shorts_and_checks_nothing(storage: Storage, youtube: YouTubeStub) -> None:
    r = await make_rig(storage, youtube, options=SourceOptions(shorts=True))
    try:
        await baseline(r)
        r.publish("sh1", "A Short", short=True)
        assert [e.title for e in (await r.poll()).events] == ["A Short"]
        assert r.stub.calls("/shorts/") == []
    finally:
        await r.fetcher.close()


async def test_a_shorts_check_that_times_out_announces_the_video_and_says_why(
        storage: Storage, youtube: YouTubeStub) -> None:
    import asyncio

    r = await make_rig(storage, youtube, timeout_s=0.5)
    try:
        await baseline(r)
        youtube.hang_shorts = asyncio.Event()
        r.publish("sh1", "Maybe a Short", short=True)
        report = await r.poll()
        assert [e.title for e in report.events] == ["Maybe a Short"]
        trail = await r.store.item_trail(report.new[0].id)
        assert trail is not None and trail.verdict is not None
        assert "the Shorts check failed" in (trail.verdict.note or "") and "timed out" in (trail.verdict.note or "")
        assert "announced as a regular video" in explain(trail, routes=[], now=r.clock()).steps[1].text
    finally:
        await r.fetcher.close()


async def test_a_shorts_check_answering_5xx_announces_the_video(rig: Rig) -> None:
    await baseline(rig)
    rig.stub.shorts_status = 503
    rig.publish("v1", "Video")
    report = await rig.poll()
    assert [e.title for e in report.events] == ["Video"]
    trail = await rig.store.item_trail(report.new[0].id)
    assert trail is not None and trail.verdict is not None and "answered 503" in (trail.verdict.note or "")


# ------------------------------------------------------- keyless: the watch page

async def test_without_a_key_a_premiere_is_held_until_its_watch_page_plays(rig: Rig) -> None:
    await baseline(rig)
    v = rig.publish("pr1", "Premiere tonight", watch_status="LIVE_STREAM_OFFLINE")
    held = await rig.poll()
    assert held.events == () and len(held.new) == 1
    rig.clock.advance(hours=1)
    assert (await rig.poll()).events == ()
    assert len(rig.stub.calls("/watch")) == 2  # checked again each poll while held
    v.watch_status = None  # it premiered
    rig.clock.advance(hours=1)
    released = await rig.poll()
    assert [e.title for e in released.events] == ["Premiere tonight"]
    assert (await rig.poll()).events == ()
    assert len(await rig.store.outbox_rows()) == 1
    assert rig.stub.calls("/youtube/v3/") == []  # no key: the API is never asked


async def test_a_watch_page_that_fails_holds_one_poll_and_a_consent_wall_holds_none(rig: Rig) -> None:
    await baseline(rig)
    rig.stub.watch_status = 503
    rig.publish("v1", "A video")
    assert (await rig.poll()).events == ()  # a fault: checked again next poll
    rig.stub.watch_status = None
    rig.clock.advance(minutes=15)
    assert [e.title for e in (await rig.poll()).events] == ["A video"]
    rig.stub.consent_wall = True
    rig.publish("v2", "Another video")
    rig.clock.advance(minutes=15)
    report = await rig.poll()
    assert [e.title for e in report.events] == ["Another video"]
    trail = await rig.store.item_trail(await rig.item("v2"))
    assert trail is not None and trail.verdict is not None and "said nothing" in (trail.verdict.note or "")


async def test_a_missing_key_is_said_once(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="showbot.youtube")
    await baseline(rig)
    for n in range(2):
        rig.publish(f"v{n}", f"Video {n}")
        rig.clock.advance(minutes=15)
        await rig.poll()
    lines = [r.getMessage() for r in caplog.records if r.name == "showbot.youtube"]
    assert len(lines) == 1 and "YOUTUBE_API_KEY is not set" in lines[0]


async def test_holding_an_unplayable_video_gives_up_after_the_bound(rig: Rig) -> None:
    await baseline(rig)
    rig.publish("pr1", "Never starts", watch_status="LIVE_STREAM_OFFLINE")
    await rig.poll()
    rig.clock.advance(hours=48)
    released = await rig.poll()
    assert [e.title for e in released.events] == ["Never starts"]
    trail = await rig.store.item_trail(released.events[0].item_id or 0)
    assert trail is not None and trail.verdict is not None and "anyway" in (trail.verdict.note or "")


# ------------------------------------------------------------ with the Data API

async def test_premiere_lifecycle_with_the_api_is_one_announcement_then_two_edits(
        storage: Storage, youtube: YouTubeStub) -> None:
    r = await make_rig(storage, youtube, key=KEY)
    try:
        await baseline(r)
        start = NOW + timedelta(hours=2)
        v = r.publish("pr1", "Premiere", live="upcoming", scheduled_start_at=start,
                      watch_status="LIVE_STREAM_OFFLINE")
        first = await r.poll()
        [event] = first.events
        assert live_heading(event.payload) == "Premieres at 2026-12-01 17:00 UTC"
        [call] = r.stub.calls("/youtube/v3/videos")
        assert call["id"] == "pr1" and call["part"] == "snippet,liveStreamingDetails"
        assert r.stub.calls("/watch") == []  # the API answered: no watch page

        r.clock.advance(hours=1)
        assert (await r.poll()).events == ()  # still upcoming: nothing to edit

        r.clock.advance(hours=1)
        v.live, v.actual_start_at = "live", start
        [live] = (await r.poll()).events
        assert live.kind is EventKind.EDIT
        assert (live.payload["edit_of"], live.payload["change"], live.payload["heading"]) == \
            (event.id, "live", "Live now")
        [tracked] = (await r.store.load_poll_state(await r.store.get_source("yt"), r.clock(), book_window_s=1)).live
        assert (tracked.state, tracked.event_id) == (LiveState.LIVE, event.id)
        assert tracked.anchor is not None and tracked.anchor.last_edit is not None

        r.clock.advance(hours=1)
        v.live, v.actual_end_at = "none", start + timedelta(hours=1)
        [finished] = (await r.poll()).events
        assert (finished.kind, finished.payload["edit_of"], finished.payload["heading"]) == \
            (EventKind.EDIT, event.id, "New video")
        state = await r.store.load_poll_state(await r.store.get_source("yt"), r.clock(), book_window_s=1)
        assert state.live == ()  # ended: no longer followed, no longer asked about
        calls = len(r.stub.calls("/youtube/v3/videos"))
        r.clock.advance(hours=1)
        assert (await r.poll()).events == ()
        assert len(r.stub.calls("/youtube/v3/videos")) == calls
        rows = await r.store.outbox_rows()
        # One post and two edits of it, all to the one channel, in order: never a second announcement.
        assert [(row.event_id, row.channel) for row in rows] == [(event.id, "c1"), (live.id, "c1"),
                                                                 (finished.id, "c1")]
    finally:
        await r.fetcher.close()


async def test_a_premiere_that_settles_while_upcoming_is_announced_as_a_premiere_and_followed(
        storage: Storage, youtube: YouTubeStub) -> None:
    r = await make_rig(storage, youtube, key=KEY, options=SourceOptions(settle_s=600))
    try:
        await baseline(r)
        start = NOW + timedelta(hours=2)
        v = r.publish("pr1", "Premiere", live="upcoming", scheduled_start_at=start)
        assert (await r.poll()).events == ()
        r.clock.advance(minutes=11)
        [event] = (await r.poll()).events
        assert live_heading(event.payload) == "Premieres at 2026-12-01 17:00 UTC"
        state = await r.store.load_poll_state(await r.store.get_source("yt"), r.clock(), book_window_s=1)
        assert [(t.video_id, t.event_id, t.state) for t in state.live] == [("pr1", event.id, LiveState.UPCOMING)]
        v.live = "live"
        r.clock.advance(hours=2)
        [edit] = (await r.poll()).events
        assert (edit.kind, edit.payload["edit_of"], edit.payload["heading"]) == (EventKind.EDIT, event.id, "Live now")
        state = await r.store.load_poll_state(await r.store.get_source("yt"), r.clock(), book_window_s=1)
        assert [t.state for t in state.live] == [LiveState.LIVE]
    finally:
        await r.fetcher.close()


async def test_api_calls_batch_fifty_ids(storage: Storage, youtube: YouTubeStub) -> None:
    r = await make_rig(storage, youtube, key=KEY, options=SourceOptions(shorts=True))
    try:
        await baseline(r)
        for n in range(60):
            r.publish(f"v{n:02d}", f"Video {n}")
        report = await r.poll()
        assert len(report.events) == 60
        calls = r.stub.calls("/youtube/v3/videos")
        assert sorted(len(c["id"].split(",")) for c in calls) == [10, 50]
        assert r.checks.api_calls == 2
    finally:
        await r.fetcher.close()


@pytest.mark.parametrize(("status", "reason"), [(403, "quotaExceeded"), (400, "keyInvalid")])
async def test_a_failing_api_falls_back_to_the_watch_page_with_one_log_line(
        storage: Storage, youtube: YouTubeStub, caplog: pytest.LogCaptureFixture, status: int, reason: str) -> None:
    r = await make_rig(storage, youtube, key=KEY)
    try:
        await baseline(r)
        youtube.api_error = (status, reason)
        caplog.set_level(logging.INFO, logger="showbot.youtube")
        v = r.publish("pr1", "Premiere", live="upcoming", watch_status="LIVE_STREAM_OFFLINE")
        assert (await r.poll()).events == ()  # held by the keyless rule
        r.clock.advance(minutes=15)
        assert (await r.poll()).events == ()
        lines = [rec.getMessage() for rec in caplog.records if rec.name == "showbot.youtube"]
        assert len(lines) == 1 and "checking watch pages instead" in lines[0]
        assert KEY not in caplog.text
        youtube.api_error = None
        v.live, v.watch_status = "none", None
        r.clock.advance(minutes=15)
        assert [e.title for e in (await r.poll()).events] == ["Premiere"]
        assert "answers again" in caplog.text
    finally:
        await r.fetcher.close()


async def test_a_wrong_key_is_a_bad_key_and_never_logged(storage: Storage, youtube: YouTubeStub,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    r = await make_rig(storage, youtube, key="wrong-key-abcdef")
    try:
        await baseline(r)
        r.publish("v1", "Video")
        assert [e.title for e in (await r.poll()).events] == ["Video"]  # the watch page says OK
        assert "refused the key" in caplog.text and "wrong-key-abcdef" not in caplog.text
    finally:
        await r.fetcher.close()
