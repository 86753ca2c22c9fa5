"""bot.sources.x.api: the X API v2 client, on the shared HttpFetcher, against
a stub on 127.0.0.1: fields and bearer auth, post parsing, since_id paging,
X's error answers, and the token kept out of every message."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import pytest

from bot.clock import FrozenClock
from bot.errors import FeedParseError, FetchError, SourceError
from bot.sources.http import HttpFetcher
from bot.sources.x import PROFILE_PARAMS, XAccountError, XApiClient, newest_post_id
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.xstub import XStub, x_stub  # noqa: F401  (fixture)

TOKEN = "AAAA-test-bearer-token-0123456789"
NOW = datetime(2026, 5, 20, 12, 0, tzinfo=timezone.utc)
USER_ID = "169820517"
PINNED_ID = "1912203456789012480"
PROFILE_PATH = "/2/users/by/username/hnasr"
TIMELINE_PATH = f"/2/users/{USER_ID}/tweets"


@asynccontextmanager
async def client_for(stub: XStub, clock: FrozenClock | None = None, **kw: Any) -> AsyncIterator[XApiClient]:
    # No private-address allowance: the API base URL is exempt from the guard by itself.
    async with HttpFetcher(timeout_s=5) as fetcher:
        yield XApiClient(fetcher, bearer_token=TOKEN, base_url=stub.base_url,
                         clock=clock or FrozenClock(NOW), **kw)


# ------------------------------------------------------------------ API: profile


async def test_profile_sends_fields_and_bearer_and_parses_the_user(x_stub: XStub) -> None:
    x_stub.answer(PROFILE_PATH, fixture="profile.json")
    async with client_for(x_stub) as client:
        snap = await client.fetch_profile("@hnasr")

    [req] = x_stub.requests
    assert req.method == "GET" and req.path == PROFILE_PATH
    assert req.authorization == f"Bearer {TOKEN}"
    assert req.query == PROFILE_PARAMS
    user_fields = set(req.query["user.fields"].split(","))
    assert {"description", "public_metrics", "pinned_tweet_id", "profile_image_url", "url"} <= user_fields
    assert req.query["expansions"] == "pinned_tweet_id"

    assert (snap.handle, snap.user_id, snap.taken_at) == ("hnasr", USER_ID, NOW)
    assert (snap.followers, snap.following, snap.posts) == (88812, 640, 21802)
    assert snap.bio == ("Backend and Database Courses https://courses.husseinnasser.com YouTube "
                        "https://youtube.com/@hnasr Author of Root Cause https://amzn.to/4cfQjJj "
                        "Engineer @esri")
    assert snap.website == "https://courses.husseinnasser.com"
    assert snap.name == "Hussein Nasser"
    assert snap.image_url and snap.image_url.startswith("https://pbs.twimg.com/")
    assert snap.recent_posts == ()


async def test_pinned_post_comes_from_includes_with_note_tweet_text(x_stub: XStub) -> None:
    x_stub.answer(PROFILE_PATH, fixture="profile.json")
    async with client_for(x_stub) as client:
        snap = await client.fetch_profile("hnasr")
    pinned = snap.pinned
    assert pinned is not None
    assert pinned.id == PINNED_ID
    assert pinned.url == f"https://x.com/hnasr/status/{PINNED_ID}"
    # note_tweet: the full text past the 280-character cut, with its own entities.
    assert pinned.text.startswith("I wrote a new book")
    assert "Performance problems & outages taught me the rest." in pinned.text  # &amp; unescaped
    assert pinned.text.endswith("Root Cause is out now: https://amzn.to/4cfQjJj")  # photo link dropped
    assert "t.co" not in pinned.text and "…" not in pinned.text


# ----------------------------------------------------------------- API: timeline


async def test_timeline_sends_since_id_and_expands_posts(x_stub: XStub) -> None:
    x_stub.answer(TIMELINE_PATH, fixture="timeline.json")
    async with client_for(x_stub) as client:
        items = await client.fetch_posts(USER_ID, since_id="1924000000000000000", handle="hnasr")

    [req] = x_stub.requests
    assert req.path == TIMELINE_PATH
    assert req.authorization == f"Bearer {TOKEN}"
    assert req.query == {
        "since_id": "1924000000000000000",
        "exclude": "replies,retweets",
        "tweet.fields": "created_at,public_metrics,entities,note_tweet",
        "max_results": "100",
    }

    assert [i.guid for i in items] == [
        "1925000000000000003", "1924800000000000002", "1924500000000000001"]
    first, long_post, short = items
    # t.co expanded from entities.urls; the attached photo's t.co removed; &amp; unescaped.
    assert first.summary == (
        "Postgres 18 ships asynchronous I/O. I read the patch so you don't have to, here is what "
        "changes for your workload & why reads get faster "
        "https://www.postgresql.org/docs/18/release-18.html")
    assert first.link == "https://x.com/hnasr/status/1925000000000000003"
    assert first.published_at == datetime(2026, 5, 20, 9, 30, tzinfo=timezone.utc)
    assert len(first.title) <= 120
    # The long post: note_tweet's text, not the truncated `text`.
    assert "Use lock_timeout. More in the book: https://amzn.to/4cfQjJj" in long_post.summary
    assert "ALTER TABLE…" not in long_post.summary and "t.co" not in long_post.summary
    assert short.summary == short.title == "Being humble is just another form of ego."
    assert newest_post_id(items) == "1925000000000000003"


async def test_first_timeline_poll_reads_only_a_few_posts(x_stub: XStub) -> None:
    x_stub.answer(TIMELINE_PATH, fixture="timeline.json")
    async with client_for(x_stub) as client:
        items = await client.fetch_posts(USER_ID)
    [req] = x_stub.requests
    assert "since_id" not in req.query
    assert req.query["max_results"] == "5"
    assert items[0].link == "https://x.com/i/web/status/1925000000000000003"  # no handle given


async def test_empty_timeline_is_no_posts(x_stub: XStub) -> None:
    x_stub.answer(TIMELINE_PATH, fixture="empty_timeline.json")
    async with client_for(x_stub) as client:
        assert await client.fetch_posts(USER_ID, since_id="1925000000000000003") == []
    assert newest_post_id([]) is None


# ------------------------------------------------------------------- API: errors


@pytest.mark.parametrize(
    ("fixture", "reason", "message"),
    [
        ("not_found.json", "not_found", "@nosuchuser was not found on X"),
        ("suspended.json", "suspended", "@nosuchuser is suspended on X"),
        ("protected.json", "protected", "@nosuchuser is protected"),
    ],
)
async def test_profile_200_with_errors_and_no_data(
    x_stub: XStub, fixture: str, reason: str, message: str
) -> None:
    x_stub.answer("/2/users/by/username/nosuchuser", fixture=fixture)
    async with client_for(x_stub) as client:
        with pytest.raises(XAccountError) as info:
            await client.fetch_profile("nosuchuser")
    assert info.value.reason == reason
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, SourceError)


async def test_protected_timeline_is_a_clear_error(x_stub: XStub) -> None:
    x_stub.answer(TIMELINE_PATH, fixture="protected.json")
    async with client_for(x_stub) as client:
        with pytest.raises(XAccountError) as info:
            await client.fetch_posts(USER_ID, since_id="1", handle="hnasr")
    assert info.value.reason == "protected"
    assert str(info.value) == "@hnasr is protected: its posts are visible only to approved followers"


@pytest.mark.parametrize("fixture", ["rate_limited.json", "rate_limited_v1.json"])
async def test_429_waits_until_x_rate_limit_reset(x_stub: XStub, fixture: str) -> None:
    clock = FrozenClock(NOW)
    reset = int(NOW.timestamp()) + 312
    x_stub.answer(TIMELINE_PATH, status=429, fixture=fixture, headers={
        "x-rate-limit-limit": "1500", "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(reset)})
    async with client_for(x_stub, clock) as client:
        with pytest.raises(FetchError) as info:
            await client.fetch_posts(USER_ID, since_id="1")
    assert info.value.retry_after == 312.0
    assert str(info.value) == "X API: rate limited (HTTP 429); resets in 312s"


async def test_429_with_a_past_reset_or_only_retry_after(x_stub: XStub) -> None:
    x_stub.answer(TIMELINE_PATH, status=429, fixture="rate_limited.json",
                  headers={"x-rate-limit-reset": str(int(NOW.timestamp()) - 5)})
    x_stub.answer(TIMELINE_PATH, status=429, fixture="rate_limited.json",
                  headers={"Retry-After": "120"})
    async with client_for(x_stub) as client:
        with pytest.raises(FetchError) as past:
            await client.fetch_posts(USER_ID, since_id="1")
        with pytest.raises(FetchError) as retry_after:
            await client.fetch_posts(USER_ID, since_id="1")
    assert past.value.retry_after == 0.0
    assert retry_after.value.retry_after == 120.0


async def test_401_says_bad_token_and_never_shows_it(x_stub: XStub) -> None:
    x_stub.answer(PROFILE_PATH, status=401, fixture="unauthorized.json")
    async with client_for(x_stub) as client:
        with pytest.raises(FetchError) as info:
            await client.fetch_profile("hnasr")
        assert TOKEN not in repr(client)
    message = str(info.value)
    assert "bad token" in message and "X_BEARER_TOKEN" in message
    assert TOKEN not in message and "\n" not in message
    assert info.value.retry_after is None


async def test_403_carries_the_problem_detail_but_not_an_echoed_token(x_stub: XStub) -> None:
    detail = f"When authenticating requests with {TOKEN}, your app must be attached to a Project."
    x_stub.answer(PROFILE_PATH, status=403, body={
        "title": "Client Forbidden", "type": "https://api.twitter.com/2/problems/client-forbidden",
        "reason": "client-not-enrolled", "detail": detail})
    async with client_for(x_stub) as client:
        with pytest.raises(FetchError) as info:
            await client.fetch_profile("hnasr")
    assert str(info.value).startswith("X API: forbidden (HTTP 403): When authenticating requests")
    assert TOKEN not in str(info.value)


async def test_5xx_honours_retry_after(x_stub: XStub) -> None:
    x_stub.answer(PROFILE_PATH, status=503, body={"title": "Service Unavailable"},
                  headers={"Retry-After": "30"})
    async with client_for(x_stub) as client:
        with pytest.raises(FetchError) as info:
            await client.fetch_profile("hnasr")
    assert info.value.retry_after == 30.0
    assert str(info.value) == "X API: HTTP 503: Service Unavailable"


async def test_missing_token_fails_without_a_request(x_stub: XStub) -> None:
    async with HttpFetcher() as fetcher:
        client = XApiClient(fetcher, bearer_token=None, base_url=x_stub.base_url)
        with pytest.raises(FetchError, match="set X_BEARER_TOKEN"):
            await client.fetch_profile("hnasr")
    assert x_stub.requests == []


@pytest.mark.parametrize("handle", ["../admin", "a" * 16, "hn asr", ""])
async def test_invalid_handle_is_refused_before_any_request(x_stub: XStub, handle: str) -> None:
    async with client_for(x_stub) as client:
        with pytest.raises(SourceError, match="invalid X handle"):
            await client.fetch_profile(handle)
        with pytest.raises(SourceError, match="invalid since_id"):
            await client.fetch_posts(USER_ID, since_id="1 OR 1")
    assert x_stub.requests == []


@pytest.mark.parametrize(
    "body", [b"<html>gateway</html>", b"[1, 2]", b'{"data": "not a list"}', b'{"data": {"id": "1"}}'])
async def test_malformed_200_bodies_are_parse_errors(x_stub: XStub, body: bytes) -> None:
    x_stub.answer(PROFILE_PATH, body=body)
    x_stub.answer(TIMELINE_PATH, body=body)
    async with client_for(x_stub) as client:
        with pytest.raises(FeedParseError):
            await client.fetch_profile("hnasr")
        with pytest.raises(FeedParseError):
            await client.fetch_posts(USER_ID, since_id="1")


async def test_body_over_the_cap_is_refused(x_stub: XStub) -> None:
    x_stub.answer(PROFILE_PATH, fixture="profile.json")
    async with client_for(x_stub, max_body_bytes=1024) as client:
        with pytest.raises(FetchError, match="too large|exceeds"):
            await client.fetch_profile("hnasr")


async def test_connection_refused_is_a_fetch_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    async with HttpFetcher(timeout_s=5) as fetcher:
        client = XApiClient(fetcher, bearer_token=TOKEN, base_url=f"http://127.0.0.1:{port}/2")
        with pytest.raises(FetchError, match="^X API: could not connect") as info:
            await client.fetch_profile("hnasr")
    assert TOKEN not in str(info.value)


async def test_the_client_rides_the_shared_fetcher(x_stub: XStub) -> None:
    x_stub.answer(PROFILE_PATH, fixture="profile.json")
    async with HttpFetcher(user_agent="showbot-test/2.0") as fetcher:
        client = XApiClient(fetcher, bearer_token=TOKEN, base_url=x_stub.base_url, clock=FrozenClock(NOW))
        await client.fetch_profile("hnasr")
    [req] = x_stub.requests
    assert req.headers["user-agent"] == "showbot-test/2.0"
    assert req.headers["accept"] == "application/json"


async def test_timeout_is_the_fetchers(feed_server: FeedServer) -> None:
    release = feed_server.add_slow(PROFILE_PATH)
    async with HttpFetcher(timeout_s=0.2) as fetcher:
        client = XApiClient(fetcher, bearer_token=TOKEN, base_url=feed_server.url("/2"))
        with pytest.raises(FetchError, match=r"^X API: timed out after 0.2s$"):
            await client.fetch_profile("hnasr")
    release.set()


async def test_a_redirect_is_not_followed_with_the_token(x_stub: XStub) -> None:
    x_stub.answer(PROFILE_PATH, status=302, headers={"Location": f"http://127.0.0.1:{x_stub.port}/steal"})
    async with client_for(x_stub) as client:
        with pytest.raises(FetchError, match=r"^X API: HTTP 302$"):
            await client.fetch_profile("hnasr")
    assert [r.path for r in x_stub.requests] == [PROFILE_PATH]


async def test_a_token_echoed_in_the_status_line_is_not_repeated(x_stub: XStub) -> None:
    x_stub.answer(PROFILE_PATH, status=502, reason=f"Bad Gateway for Bearer {TOKEN}", body=b"")
    async with client_for(x_stub) as client:
        with pytest.raises(FetchError) as info:
            await client.fetch_profile("hnasr")
    assert str(info.value) == "X API: HTTP 502"
    assert TOKEN not in str(info.value)
