"""bot.sources.x.source: the ``x`` kind's fetch, with no store anywhere in
sight. The caller passes the previous snapshot; fetch returns posts, the new
snapshot when one was taken, and the cursor, and diffs nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from bot.config import XSourceOptions
from bot.errors import SourceError
from bot.models import ContentKind, Source, SourceSpec
from bot.profile import ProfileSnapshot
from bot.sources.http import HttpFetcher
from bot.sources.rss import Fetched, RssSource
from bot.sources.x import XSource
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.xstub import XStub, seed_text, x_stub  # noqa: F401  (fixture)

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=timezone.utc)
USER_ID = "169820517"
PROFILE_PATH = "/2/users/by/username/hnasr"
TIMELINE_PATH = f"/2/users/{USER_ID}/tweets"
NEWEST = "1925000000000000003"
PODCAST = (Path(__file__).parent / "fixtures" / "podcast.xml").read_bytes()


@pytest.fixture
async def fetcher() -> AsyncIterator[HttpFetcher]:
    async with HttpFetcher(allow_private_addresses=True, timeout_s=5) as f:
        yield f


def x_source(fetcher: HttpFetcher, clock: FrozenClock, **options: XSourceOptions) -> XSource:
    return XSource(fetcher, RssSource(fetcher), bearer_token="test-bearer", clock=clock, options=options)


def api_source(stub: XStub, cursor: str | None = None) -> Source:
    return Source(id=1, cursor=cursor, spec=SourceSpec(
        name="xapi", kind="x", handle="hnasr", provider="api", api_base_url=stub.base_url,
        content=ContentKind.POST))


def earlier(taken_at: datetime, user_id: str | None = USER_ID) -> ProfileSnapshot:
    return ProfileSnapshot(handle="hnasr", taken_at=taken_at, followers=88_000, user_id=user_id,
                           bio="an older bio")


def test_fetched_has_nothing_for_changes() -> None:
    # The diff is the poller's: a fetch result has no place for one.
    assert "changes" not in {f.name for f in dataclasses.fields(Fetched)}


async def test_api_first_fetch_reads_the_profile_and_a_few_posts(x_stub: XStub, fetcher: HttpFetcher) -> None:
    x_stub.answer(PROFILE_PATH, fixture="profile.json")
    x_stub.answer(TIMELINE_PATH, fixture="timeline.json")
    fetched = await x_source(fetcher, FrozenClock(NOW)).fetch(api_source(x_stub), None)
    assert [r.path for r in x_stub.requests] == [PROFILE_PATH, TIMELINE_PATH]
    assert x_stub.requests[1].query["max_results"] == "5" and "since_id" not in x_stub.requests[1].query
    assert fetched.snapshot is not None and fetched.snapshot.user_id == USER_ID
    assert fetched.snapshot.taken_at == NOW
    assert fetched.items is not None and fetched.items[0].guid == NEWEST
    assert fetched.cursor == NEWEST


async def test_api_uses_the_previous_snapshot_while_the_profile_is_fresh(
    x_stub: XStub, fetcher: HttpFetcher
) -> None:
    x_stub.answer(TIMELINE_PATH, fixture="empty_timeline.json")
    previous = earlier(NOW - timedelta(hours=23))
    fetched = await x_source(fetcher, FrozenClock(NOW)).fetch(api_source(x_stub, cursor="42"), previous)
    [req] = x_stub.requests  # no user read: the user id came from `previous`
    assert (req.path, req.query["since_id"]) == (TIMELINE_PATH, "42")
    assert (fetched.items, fetched.snapshot, fetched.cursor) == ((), None, "42")


async def test_api_reads_the_profile_again_after_profile_every(x_stub: XStub, fetcher: HttpFetcher) -> None:
    x_stub.answer(PROFILE_PATH, fixture="profile.json")
    x_stub.answer(TIMELINE_PATH, fixture="empty_timeline.json")
    source = x_source(fetcher, FrozenClock(NOW), xapi=XSourceOptions(profile_every_s=3600))
    fresh = await source.fetch(api_source(x_stub, cursor="42"), earlier(NOW - timedelta(minutes=59)))
    due = await source.fetch(api_source(x_stub, cursor="42"), earlier(NOW - timedelta(hours=1)))
    assert fresh.snapshot is None
    assert due.snapshot is not None and due.snapshot.bio != "an older bio"
    assert len(x_stub.requests_to(PROFILE_PATH)) == 1


async def test_api_without_a_user_id_reads_the_profile_now(x_stub: XStub, fetcher: HttpFetcher) -> None:
    """A stored snapshot without a user id (e.g. from the snapshot provider)
    can't read the timeline: the profile is due at once, not in a day."""
    x_stub.answer(PROFILE_PATH, fixture="profile.json")
    x_stub.answer(TIMELINE_PATH, fixture="empty_timeline.json")
    previous = earlier(NOW - timedelta(hours=1), user_id=None)
    fetched = await x_source(fetcher, FrozenClock(NOW)).fetch(api_source(x_stub), previous)
    assert fetched.snapshot is not None and fetched.snapshot.user_id
    assert [r.path for r in x_stub.requests][0] == PROFILE_PATH


async def test_snapshot_provider_returns_the_snapshot_and_its_posts(
    feed_server: FeedServer, fetcher: HttpFetcher
) -> None:
    feed_server.add_feed("/hnasr.txt", seed_text("001").encode(), content_type="text/plain")
    source = Source(id=1, spec=SourceSpec(name="x", kind="x", handle="hnasr", provider="snapshot",
                                          url=feed_server.url("/hnasr.txt"), content=ContentKind.POST))
    fetched = await x_source(fetcher, FrozenClock(NOW)).fetch(source, earlier(NOW - timedelta(days=1)))
    assert fetched.snapshot is not None
    assert (fetched.snapshot.followers, fetched.snapshot.taken_at) == (88_800, NOW)
    assert fetched.items == fetched.snapshot.recent_posts and len(fetched.items) == 13
    assert fetched.cursor is None


async def test_snapshot_provider_needs_a_url(fetcher: HttpFetcher) -> None:
    source = Source(id=1, spec=SourceSpec(name="x", kind="x", handle="hnasr", provider="snapshot"))
    with pytest.raises(SourceError, match="snapshot provider needs a url"):
        await x_source(fetcher, FrozenClock(NOW)).fetch(source, None)


async def test_rss_provider_is_an_rss_fetch(feed_server: FeedServer, fetcher: HttpFetcher) -> None:
    feed_server.add_feed("/bridge.xml", PODCAST)
    source = Source(id=1, spec=SourceSpec(name="xrss", kind="x", handle="hnasr", provider="rss",
                                          url=feed_server.url("/bridge.xml"), content=ContentKind.POST))
    fetched = await x_source(fetcher, FrozenClock(NOW)).fetch(source, None)
    assert fetched.items and fetched.snapshot is None and fetched.body_hash
