"""Moderator commands: refusal for members, feed round trips, audit rows,
refused feeds, routes, filters (including catastrophic regexes), status."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest

from bot.clock import FrozenClock
from bot.commands import Commands
from bot.errors import FeedParseError, FetchError, UserError
from bot.filters import compile_filter, make_item_filter
from bot.intents import FilterRule
from bot.models import ContentKind, EventKind, Item, ParsedFeed, Platform
from bot.storage import SqliteStorage
from tests.catalog_helpers import MEMBER, MODERATOR, NOW, load_catalog

FEED_URL = "https://talks.example.org/feed.xml"
FEED = ParsedFeed(
    title="Backend Talks Weekly",
    items=(
        Item(title="Connection pools in depth", guid="t2", link="https://talks.example.org/2",
             summary="Pools, sizing and Little's law.",
             published_at=datetime(2026, 6, 1, tzinfo=timezone.utc)),
        Item(title="Sponsored: our new cloud", guid="t1", link="https://talks.example.org/1",
             summary="A word from our sponsor.", published_at=datetime(2026, 5, 1, tzinfo=timezone.utc)),
    ),
)


class FakeFeeds:
    """preview(url) as the RSS source would answer it, without a network."""

    def __init__(self) -> None:
        self.fetched: list[str] = []

    async def __call__(self, url: str) -> ParsedFeed:
        self.fetched.append(url)
        if url.endswith("/page.html"):
            raise FeedParseError("not a feed: the server sent an HTML page (text/html)")
        if url.endswith("/missing.xml"):
            raise FetchError("HTTP 404 Not Found")
        return FEED


class Recorder:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    async with await SqliteStorage.open(tmp_path / "bot.db") as store:
        await load_catalog(store)
        yield store


@pytest.fixture
def changed() -> Recorder:
    return Recorder()


@pytest.fixture
def bot(store: SqliteStorage, changed: Recorder) -> Commands:
    return Commands(store, clock=FrozenClock(NOW), preview=FakeFeeds(), on_sources_changed=changed,
                    health=lambda: {"discord": True, "slack": False})


@pytest.mark.parametrize("text", [
    "feeds", f"feed add {FEED_URL}", "feed remove podcast", "feed pause podcast", "feed resume podcast",
    "feed test podcast", "announce episode here", "announce off here", "filter podcast exclude ads",
    "filter podcast clear", "status",
])
async def test_members_get_a_polite_refusal(bot: Commands, store: SqliteStorage, text: str) -> None:
    reply = await bot(text, MEMBER)
    assert reply.kind == "error" and reply.ephemeral
    assert reply.text.startswith("Sorry, `") and "is for moderators only" in reply.text
    assert await store.list_audit() == []
    assert not (await store.get_source("podcast")).paused


async def test_feed_add_remove_pause_resume_round_trip(bot: Commands, store: SqliteStorage, changed: Recorder) -> None:
    reply = await bot(f"feed add {FEED_URL} name talks every 1h", MODERATOR)
    assert reply.kind == "feed"
    assert reply.text == ("Added “talks” (Backend Talks Weekly): articles, checked every 1h 00m. Stored the "
                          "2 items already there without announcing them; new ones will be announced.")
    source = await store.get_source("talks")
    assert (source.spec.url, source.spec.every_s, source.spec.content, source.synced) == \
        (FEED_URL, 3600, ContentKind.ARTICLE, True)
    assert await store.outbox_rows() == []  # silent first sync
    assert (await bot("search connection pools", MODERATOR)).items[0].title == "Connection pools in depth"

    await bot("feed pause talks", MODERATOR)
    assert (await store.get_source("talks")).paused
    assert "talks (paused)" in (await bot("feeds", MODERATOR)).text
    await bot("feed resume talks", MODERATOR)
    assert not (await store.get_source("talks")).paused
    reply = await bot("feed remove talks", MODERATOR)
    assert reply.text == "Removed “talks” and the items it stored."
    assert await store.find_source("talks") is None
    assert (await bot("search connection pools in depth", MODERATOR)).items == ()
    assert changed.calls == 4

    audit = await store.list_audit()
    assert [(a.action, a.user_id, a.platform) for a in reversed(audit)] == [
        ("feed add", "42", "discord"), ("feed pause", "42", "discord"),
        ("feed resume", "42", "discord"), ("feed remove", "42", "discord"),
    ]
    assert audit[-1].detail == f"talks {FEED_URL} as article every 3600s"
    assert all(a.at == NOW for a in audit)


async def test_feed_add_defaults_name_from_the_title(bot: Commands, store: SqliteStorage) -> None:
    await bot(f"feed add {FEED_URL} as episode", MODERATOR)
    source = await store.get_source("backend-talks-weekly")
    assert source.spec.content == ContentKind.EPISODE and source.spec.every_s == 900


@pytest.mark.parametrize("url,reason", [
    ("https://talks.example.org/page.html", "not a feed: the server sent an HTML page (text/html)"),
    ("https://talks.example.org/missing.xml", "HTTP 404 Not Found"),
])
async def test_feed_add_refuses_what_is_not_a_feed_and_saves_nothing(
    bot: Commands, store: SqliteStorage, changed: Recorder, url: str, reason: str
) -> None:
    before = await store.list_sources()
    reply = await bot(f"feed add {url} name nope", MODERATOR)
    assert reply.kind == "error"
    assert reply.text == f"I didn't add {url}: {reason}. Nothing was saved."
    assert await store.list_sources() == before
    assert await store.list_audit() == [] and changed.calls == 0


@pytest.mark.parametrize("text,message", [
    ("feed add ftp://x.org/feed", "I can't add that feed: expected an http(s) URL, got 'ftp://x.org/feed'"),
    (f"feed add {FEED_URL} every 5s", "Poll at most once a minute (`every 1m` or more), not every 5s."),
    (f"feed add {FEED_URL} name podcast", "A feed named “podcast” already exists; add `name <other>`."),
    ("feed add https://anchor.fm/s/1eb6d14/podcast/rss", "That feed is already watched as “podcast”."),
    ("feed remove nosuch", "no source named 'nosuch'"),
])
async def test_feed_add_mistakes_are_explained(bot: Commands, text: str, message: str) -> None:
    reply = await bot(text, MODERATOR)
    assert (reply.kind, reply.text) == ("error", message)


async def test_feed_test_shows_the_newest_item_and_announces_nothing(bot: Commands, store: SqliteStorage) -> None:
    await bot(f"feed add {FEED_URL} name talks", MODERATOR)
    await bot("filter talks include pools", MODERATOR)
    reply = await bot("feed test talks", MODERATOR)
    assert reply.kind == "preview"
    assert reply.text == "The newest item of “talks” as it would be announced. Nothing was posted."
    [item] = reply.items
    assert (item.title, item.url, item.kind, item.source) == \
        ("Connection pools in depth", "https://talks.example.org/2", "article", "talks")
    assert await store.outbox_rows() == []


async def test_announce_here_and_off(bot: Commands, store: SqliteStorage) -> None:
    reply = await bot("announce episode, video book here mention <@&987654321>", MODERATOR)
    assert reply.text == "Announcing episode, video, book here, mentioning 987654321."
    [route] = await store.list_routes()
    assert (route.platform, route.channel, route.mention) == (Platform.DISCORD, "555", "987654321")
    assert route.kinds == {EventKind.EPISODE, EventKind.VIDEO, EventKind.BOOK}
    reply = await bot("announce off here", MODERATOR)
    assert reply.text == "Stopped announcing here."
    assert await store.list_routes() == []
    assert (await bot("announce off here", MODERATOR)).text == "Nothing is announced in this channel."
    assert (await bot("announce podcasts here", MODERATOR)).text.startswith("Kinds are: episode video")
    assert [a.action for a in await store.list_audit()] == ["announce off", "announce"]


async def test_filters_are_saved_audited_and_applied(bot: Commands, store: SqliteStorage) -> None:
    reply = await bot("filter podcast exclude sponsored giveaway", MODERATOR)
    assert reply.text == "“podcast” will hold back items matching sponsored giveaway."
    source = await store.get_source("podcast")
    rules = await store.load_filters(source.id)
    assert rules == [FilterRule("exclude", "sponsored giveaway")]
    announce = make_item_filter(rules)
    assert announce(FEED.items[0]) and not announce(FEED.items[1])
    assert (await store.list_audit())[0].action == "filter exclude"
    assert "• exclude sponsored giveaway" in (await bot("filter podcast", MODERATOR)).text
    assert (await bot("filter podcast clear", MODERATOR)).text == "Removed 1 filter from “podcast”."
    assert await store.load_filters(source.id) == []


@pytest.mark.parametrize("pattern", ["/(a+)+$/", "/(a|aa)*b/", "/(x+x+)+y/", "/.*a.*b.*c/", "/(a?){30}a{30}/",
                                     "/^(a|b)\\1/", "/a{1,5000}/", "/[unclosed/"])
async def test_a_catastrophic_or_broken_regex_is_refused(bot: Commands, store: SqliteStorage, pattern: str) -> None:
    reply = await bot(f"filter podcast include {pattern}", MODERATOR)
    assert reply.kind == "error"
    assert await store.load_filters((await store.get_source("podcast")).id) == []


@pytest.mark.parametrize("pattern", ["/.*kafka/", "/(?:ab)+c/", "/(postgres|mysql) \\d+/", "/[a-z]+ing/"])
def test_accepted_regexes_are_bounded_in_time(pattern: str) -> None:
    match = compile_filter(pattern)
    worst = 0.0
    for text in ("a" * 10_000, "ab" * 5_000 + "!", "1" * 10_000, " " * 10_000, "x" * 9_999 + "\n"):
        start = time.perf_counter()
        match(text)
        worst = max(worst, time.perf_counter() - start)
    assert worst < 0.05


def test_words_filter_matches_whole_words_case_insensitively() -> None:
    match = compile_filter("Sponsored, giveaway")
    assert match("SPONSORED: cloud") and match("a giveaway!") and not match("unsponsoredly")
    with pytest.raises(UserError):
        compile_filter("x" * 201)


async def test_status_shows_feeds_routes_and_adapters(bot: Commands, store: SqliteStorage) -> None:
    source = await store.get_source("youtube")
    await store.record_failure(source.id, "HTTP 503 Service Unavailable", now=NOW, next_poll_at=NOW)
    await bot("announce episode here", MODERATOR)
    [route] = await store.list_routes()
    await store.mark_route_broken(route.id, "missing access")
    reply = await bot("status", MODERATOR)
    lines = reply.text.splitlines()
    assert reply.kind == "status" and reply.ephemeral
    assert ("• podcast [ok]: last success just now, next poll in 15m, 121 items, last announced never"
            in lines)
    assert any(line.startswith("• youtube [failing]") and "HTTP 503 Service Unavailable (1 failures in a row)"
               in line for line in lines)
    assert "• discord 555 (episode): broken: missing access" in lines
    assert lines[-1] == "Adapters: discord up, slack DOWN"


async def test_announce_here_with_a_thread_per_announcement(bot: Commands, store: SqliteStorage) -> None:
    reply = await bot("announce episode here thread", MODERATOR)
    assert reply.text == "Announcing episode here, each with a discussion thread."
    (route,) = await store.list_routes()
    assert route.thread and route.kinds == {EventKind.EPISODE}
    await bot("announce episode here", MODERATOR)  # said again without: threads off
    (route,) = await store.list_routes()
    assert not route.thread
