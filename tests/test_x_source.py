"""The x source's providers: the X API v2 client against a stub on 127.0.0.1,
the JSON snapshot format, the page-text form of the seeds, the count parser."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.clock import FrozenClock
from bot.errors import FeedParseError, FetchError, SourceError
from bot.sources.http import HttpFetcher
from bot.sources.x import (
    PROFILE_PARAMS,
    XAccountError,
    XApiClient,
    fetch_snapshot,
    newest_post_id,
    parse_count,
    parse_profile_text,
    parse_snapshot,
    parse_snapshot_json,
    snapshot_to_json,
)
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)
from tests.xstub import FIXTURES, XStub, fixture_bytes, x_stub  # noqa: F401  (fixture)

TOKEN = "AAAA-test-bearer-token-0123456789"
NOW = datetime(2026, 5, 20, 12, 0, tzinfo=timezone.utc)
USER_ID = "169820517"
PINNED_ID = "1912203456789012480"
PROFILE_PATH = "/2/users/by/username/hnasr"
TIMELINE_PATH = f"/2/users/{USER_ID}/tweets"
DOCS = Path(__file__).parent.parent / "docs" / "x-snapshot-format.md"


@asynccontextmanager
async def client_for(stub: XStub, clock: FrozenClock | None = None, **kw: Any) -> AsyncIterator[XApiClient]:
    # No private-address allowance: the API base URL is exempt from the guard by itself.
    async with HttpFetcher(timeout_s=5) as fetcher:
        yield XApiClient(fetcher, bearer_token=TOKEN, base_url=stub.base_url,
                         clock=clock or FrozenClock(NOW), **kw)


def seed_text(n: str) -> str:
    return (FIXTURES / f"profile_{n}.txt").read_text(encoding="utf-8")


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


# ------------------------------------------------------------------ page text


def test_seed_000_stats_page_parses() -> None:
    snap = parse_profile_text(seed_text("000"), "hnasr", NOW)
    assert (snap.handle, snap.taken_at) == ("hnasr", NOW)
    # "644 following86k followers", not the similar profiles listed below it
    # ("66 following231k followers"), and the exact post count over "21K tweets".
    assert (snap.followers, snap.following, snap.posts) == (86000, 644, 21739)
    assert snap.bio == ("Backend and Database Courses courses.husseinnasser.com YouTube "
                        "youtube.com/@hnasr Author of pglocks.org Engineer @esri")
    assert snap.pinned is None
    assert snap.recent_posts == ()


def test_seed_001_x_page_parses() -> None:
    snap = parse_profile_text(seed_text("001"), "hnasr", NOW)
    assert (snap.followers, snap.following, snap.posts) == (88800, 640, 21800)
    assert snap.bio == ("Backend and Database Courses courses.husseinnasser.com YouTube "
                        "youtube.com/@hnasr Author of Root Cause amzn.to/4cfQjJj Engineer @esri")
    assert snap.pinned is not None and snap.pinned.id is None
    assert snap.pinned.text.startswith("I wrote a new book that has been in the works for years.")
    assert snap.pinned.text.endswith("fully grasping their inner mechanics. Performance")
    posts = snap.recent_posts
    assert len(posts) == 13  # every post block but the pinned one
    assert posts[0].summary.startswith("How to Become a Good Backend Engineer (Fundamentals)\n")
    assert posts[0].published_at == datetime(2024, 11, 2, tzinfo=timezone.utc)
    assert posts[4].summary == "Being humble is just another form of ego."
    assert all("Image" not in p.summary.splitlines() for p in posts)


def test_page_dates_without_a_year_are_the_latest_past_one() -> None:
    text = ("@hnasr\nbio here\n1\nFollowing\n2K\nFollowers\n"
            "user avatar\nH\n@hnasr\nDec 30\nold year post\n12K\n"
            "user avatar\nH\n@hnasr\n5h\nfresh post\n1K\n")
    snap = parse_profile_text(text, "hnasr", datetime(2026, 1, 2, 12, tzinfo=timezone.utc))
    assert [p.published_at for p in snap.recent_posts] == [
        datetime(2025, 12, 30, tzinfo=timezone.utc), datetime(2026, 1, 2, 7, tzinfo=timezone.utc)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "Access denied. Please enable JavaScript.\n",
        # another account's counts only: not this profile's
        "@someoneelse\nSomeone's bio\n5 following10k followers\n",
        "\x00\x01\x02 binary junk \xff",
    ],
)
def test_garbage_page_text_is_a_parse_error(text: str) -> None:
    with pytest.raises(FeedParseError, match="not an X profile page"):
        parse_profile_text(text, "hnasr", NOW)


# ------------------------------------------------------------------ snapshots


def test_json_snapshot_round_trips() -> None:
    snap = parse_profile_text(seed_text("001"), "hnasr", NOW)
    assert parse_snapshot_json(snapshot_to_json(snap)) == snap


def test_the_documented_example_is_the_fixture_and_parses() -> None:
    block = re.search(r"```json\n(.*?)\n```", DOCS.read_text(encoding="utf-8"), re.S)
    assert block is not None
    assert json.loads(block.group(1)) == json.loads(fixture_bytes("snapshot_001.json"))
    snap = parse_snapshot_json(block.group(1).encode())
    assert (snap.handle, snap.followers, snap.following, snap.posts) == ("hnasr", 88800, 640, 21800)
    assert snap.taken_at == datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
    assert snap.pinned is not None and "Root Cause" in snap.pinned.text
    assert len(snap.recent_posts) == 2


def test_json_counts_may_be_displayed_strings() -> None:
    doc = {"handle": "@hnasr", "taken_at": "2026-05-01T12:00:00", "followers": "88.8K",
           "following": 640, "posts": "21,800",
           "recent_posts": [{"id": "7", "text": "hi", "created_at": "2026-04-30T10:00:00+02:00"}]}
    snap = parse_snapshot_json(json.dumps(doc).encode())
    assert (snap.handle, snap.followers, snap.following, snap.posts) == ("hnasr", 88800, 640, 21800)
    assert snap.taken_at == datetime(2026, 5, 1, 12, tzinfo=timezone.utc)  # zone-less = UTC
    [post] = snap.recent_posts
    assert (post.guid, post.link) == ("7", "https://x.com/hnasr/status/7")
    assert post.published_at == datetime(2026, 4, 30, 8, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"taken_at": "2026-05-01T00:00:00Z", "followers": 1}', "snapshot.handle"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01T00:00:00Z"}', "snapshot.followers"),
        (b'{"handle": "hnasr", "taken_at": "yesterday", "followers": 1}', "snapshot.taken_at"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": "lots"}', "snapshot.followers"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": -3}', "snapshot.followers"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": true}', "snapshot.followers"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": 1, "pinned": {"id": "1"}}',
         "snapshot.pinned.text"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": 1, "recent_posts": [3]}',
         "snapshot.recent_posts[0]"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": 1, "bio": 5}', "snapshot.bio"),
    ],
)
def test_bad_json_snapshots_name_the_key(doc: bytes, key: str) -> None:
    with pytest.raises(FeedParseError) as info:
        parse_snapshot_json(doc)
    assert key in str(info.value)


def test_parse_snapshot_dispatches_on_the_content() -> None:
    json_snap = parse_snapshot(fixture_bytes("snapshot_001.json"), handle="hnasr", taken_at=NOW)
    text_snap = parse_snapshot(seed_text("001").encode(), handle="hnasr", taken_at=NOW)
    html_page = "<html><body>" + "".join(
        f"<div>{line}</div>" for line in seed_text("001").splitlines()) + "</body></html>"
    html_snap = parse_snapshot(html_page.encode(), handle="HNASR", taken_at=NOW)
    assert json_snap.followers == text_snap.followers == html_snap.followers == 88800
    assert html_snap.bio == text_snap.bio and html_snap.pinned == text_snap.pinned
    with pytest.raises(FeedParseError, match="snapshot is for @hnasr, expected @other"):
        parse_snapshot(fixture_bytes("snapshot_001.json"), handle="other", taken_at=NOW)
    with pytest.raises(FeedParseError):
        parse_snapshot(b"\x89PNG\r\n\x1a\n\x00\x00", handle="hnasr", taken_at=NOW)


async def test_fetch_snapshot_from_a_file_and_a_url(tmp_path: Path, x_stub: XStub) -> None:
    path = tmp_path / "hnasr.txt"
    path.write_text(seed_text("000"), encoding="utf-8")
    x_stub.answer("/snapshots/hnasr.json", fixture="snapshot_001.json")
    async with HttpFetcher(allow_private_addresses=True, timeout_s=5) as fetcher:
        from_file = await fetch_snapshot(str(path), handle="hnasr", fetcher=fetcher,
                                         clock=FrozenClock(NOW))
        from_url = await fetch_snapshot(f"http://127.0.0.1:{x_stub.port}/snapshots/hnasr.json",
                                        handle="hnasr", fetcher=fetcher)
        with pytest.raises(FetchError, match="cannot read snapshot file"):
            await fetch_snapshot(str(tmp_path / "missing.txt"), handle="hnasr", fetcher=fetcher)
        with pytest.raises(FetchError, match="exceeds"):
            await fetch_snapshot(str(path), handle="hnasr", fetcher=fetcher, max_bytes=100)
    assert (from_file.followers, from_file.taken_at) == (86000, NOW)
    assert from_url.followers == 88800
    assert x_stub.requests[0].authorization is None  # the snapshot URL never gets the X token


# --------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    ("text", "value"),
    [("86k", 86_000), ("88.8K", 88_800), ("1.2M", 1_200_000), ("21,739", 21_739),
     ("640", 640), ("21.8K", 21_800), ("0", 0), (" 12.3K ", 12_300), ("1.5B", 1_500_000_000),
     ("1,234,567", 1_234_567), ("3 K", 3_000), ("1.2345K", 1_234)],
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize(
    "text", ["", "K", "1.5", "1,23", "12,3456", "-5", "1.2.3", "abc", "1e5", "١٢٣", "12 345",
             "1,000.5", "99999999999999", "5000B", "∞"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(FeedParseError):
        parse_count(text)


@given(st.one_of(st.text(), st.text(alphabet="0123456789.,kKmMbB -", max_size=20)))
def test_parse_count_raises_only_feed_parse_error(text: str) -> None:
    try:
        value = parse_count(text)
    except FeedParseError:
        return
    assert isinstance(value, int) and 0 <= value <= 10**12


@given(st.integers(0, 999), st.integers(0, 9), st.sampled_from(["K", "k", "M", "m"]))
def test_displayed_counts_round_trip(whole: int, tenth: int, suffix: str) -> None:
    scale = 1_000 if suffix in "Kk" else 1_000_000
    assert parse_count(f"{whole}.{tenth}{suffix}") == whole * scale + tenth * scale // 10
    assert parse_count(f"{whole}{suffix}") == whole * scale


@given(st.integers(0, 10**12))
def test_grouped_counts_round_trip(n: int) -> None:
    assert parse_count(f"{n:,}") == n
    assert parse_count(str(n)) == n
