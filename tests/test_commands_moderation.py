"""Moderator commands: refusal for members, feed round trips, audit rows,
refused feeds, routes, filters (including catastrophic regexes), status."""

from __future__ import annotations

import time

import pytest

from bot.errors import UserError
from bot.filters import compile_filter, make_item_filter
from bot.intents import FilterRule
from bot.models import ContentKind, EventKind, Platform
from tests.catalog_helpers import MEMBER, NOW
from bot.plaintext import render_text
from tests.chat import FEED, FEED_URL, Chat

@pytest.mark.parametrize("text", [
    "feeds", f"feed add {FEED_URL}", "feed remove podcast", "feed pause podcast", "feed resume podcast",
    "feed test podcast", "announce episode here", "announce off here", "filter podcast exclude ads",
    "filter podcast clear", "status", "announce only episode here", "announce off episode here",
    "announce episode from podcast here", "announce digest daily here", "announce pace 30s here",
    "announce cap 10 here", "announce test here", "template list", "template compact here",
    "template set here {title}", "template reset here", "preview podcast", "preview podcast here",
    "feed backfill podcast 3",
])
async def test_members_get_a_polite_refusal(chat: Chat, text: str) -> None:
    reply = await chat.say(text, MEMBER)
    assert reply.kind == "error" and reply.ephemeral
    assert reply.text.startswith("Sorry, `") and "is for moderators only" in reply.text
    assert await chat.store.list_audit() == [] and await chat.store.list_routes() == []
    assert not (await chat.store.get_source("podcast")).paused


async def test_feed_add_remove_pause_resume_round_trip(chat: Chat) -> None:
    reply = await chat.say(f"feed add {FEED_URL} name talks every 1h")
    assert reply.kind == "feed"
    assert reply.text == ("Added “talks” (Backend Talks Weekly): articles, checked every 1h. Stored the "
                          "2 items already there without announcing them; new ones will be announced.\n"
                          "⚠ No channel takes articles from it yet, so nothing of “talks” will be posted. "
                          "`announce article here` in the channel that should get them.")
    source = await chat.store.get_source("talks")
    assert (source.spec.url, source.spec.every_s, source.spec.content, source.synced) == \
        (FEED_URL, 3600, ContentKind.ARTICLE, True)
    assert await chat.store.outbox_rows() == []  # silent first sync
    assert (await chat.say("search connection pools")).items[0].title == "Connection pools in depth"

    await chat.say("feed pause talks")
    assert (await chat.store.get_source("talks")).paused
    assert "talks (paused)" in (await chat.say("feeds")).text
    await chat.say("feed resume talks")
    assert not (await chat.store.get_source("talks")).paused
    reply = await chat.say("feed remove talks")
    assert reply.text == "Removed “talks” and the items it stored."
    assert await chat.store.find_source("talks") is None
    assert (await chat.say("search connection pools in depth")).items == ()
    assert chat.changed.calls == 4

    audit = await chat.store.list_audit()
    assert [(a.action, a.user_id, a.platform) for a in reversed(audit)] == [
        ("feed add", "42", "discord"), ("feed pause", "42", "discord"),
        ("feed resume", "42", "discord"), ("feed remove", "42", "discord"),
    ]
    assert audit[-1].detail == f"talks {FEED_URL} as article every 3600s"
    assert all(a.at == NOW for a in audit)


async def test_feed_add_defaults_name_from_the_title(chat: Chat) -> None:
    await chat.say(f"feed add {FEED_URL} as episode")
    source = await chat.store.get_source("backend-talks-weekly")
    assert source.spec.content == ContentKind.EPISODE and source.spec.every_s == 900


@pytest.mark.parametrize("url,reason", [
    ("https://talks.example.org/page.html", "not a feed: the server sent an HTML page (text/html)"),
    ("https://talks.example.org/missing.xml", "HTTP 404 Not Found"),
])
async def test_feed_add_refuses_what_is_not_a_feed_and_saves_nothing(chat: Chat, url: str, reason: str) -> None:
    before = await chat.store.list_sources()
    reply = await chat.say(f"feed add {url} name nope")
    assert reply.kind == "error"
    assert reply.text == f"I didn't add {url}: {reason}. Nothing was saved."
    assert await chat.store.list_sources() == before
    assert await chat.store.list_audit() == [] and chat.changed.calls == 0


@pytest.mark.parametrize("text,message", [
    ("feed add ftp://x.org/feed", "I can't add that feed: expected an http(s) URL, got 'ftp://x.org/feed'"),
    (f"feed add {FEED_URL} every 5s", "Poll at most once a minute (`every 1m` or more), not every 5s."),
    (f"feed add {FEED_URL} name podcast", "A feed named “podcast” already exists; add `name <other>`."),
    ("feed add https://anchor.fm/s/1eb6d14/podcast/rss", "That feed is already watched as “podcast”."),
    ("feed remove nosuch", "There is no feed named “nosuch”. Feeds: blog, podcast, x, youtube."),
])
async def test_feed_add_mistakes_are_explained(chat: Chat, text: str, message: str) -> None:
    reply = await chat.say(text)
    assert (reply.kind, reply.text) == ("error", message)


async def test_feed_test_shows_the_newest_item_and_announces_nothing(chat: Chat) -> None:
    await chat.say(f"feed add {FEED_URL} name talks")
    await chat.say("filter talks include pools")
    reply = await chat.say("feed test talks")
    assert reply.kind == "preview"
    assert reply.text == ("The newest item of “talks” as it would be announced, with the default card. "
                          "Nothing was posted.")
    [item] = reply.items
    assert (item.title, item.url, item.kind, item.source) == \
        ("Connection pools in depth", "https://talks.example.org/2", "article", "talks")
    # The announcement itself, through the one presenter: not the list format.
    assert reply.announcement is not None and reply.announcement.heading == "New article"
    assert render_text(reply).splitlines()[1:] == [
        "[New article] Connection pools in depth", "  talks · 2026-06-01", "  Pools, sizing and Little's law.",
        "  https://talks.example.org/2"]
    assert await chat.store.outbox_rows() == []


async def test_announce_here_and_off(chat: Chat) -> None:
    reply = await chat.say("announce episode, video book here mention <@&987654321>")
    assert reply.text == "Announcing here: nothing → episode, video, book.\nEach announcement mentions 987654321."
    [route] = await chat.store.list_routes()
    assert (route.platform, route.channel, route.mention) == (Platform.DISCORD, "555", "987654321")
    assert route.kinds == {EventKind.EPISODE, EventKind.VIDEO, EventKind.BOOK}
    reply = await chat.say("announce off here")
    assert reply.text == "Stopped announcing here: episode, video, book → nothing."
    assert await chat.store.list_routes() == []
    assert (await chat.say("announce off here")).text == "Nothing is announced in this channel."
    assert (await chat.say("announce podcasts here")).text.startswith("“podcasts” isn't a kind. Kinds are: episode video")
    assert [a.action for a in await chat.store.list_audit()] == ["announce off", "announce"]


async def test_filters_are_saved_audited_and_applied(chat: Chat) -> None:
    reply = await chat.say("filter podcast exclude sponsored giveaway")
    assert reply.text == "“podcast” will hold back items matching sponsored giveaway."
    source = await chat.store.get_source("podcast")
    rules = await chat.store.load_filters(source.id)
    assert rules == [FilterRule("exclude", "sponsored giveaway")]
    announce = make_item_filter(rules)
    assert announce(FEED.items[0]) and not announce(FEED.items[1])
    assert (await chat.store.list_audit())[0].action == "filter exclude"
    assert "• exclude sponsored giveaway" in (await chat.say("filter podcast")).text
    assert (await chat.say("filter podcast clear")).text == "Removed 1 filter from “podcast”."
    assert await chat.store.load_filters(source.id) == []


@pytest.mark.parametrize("pattern", ["/(a+)+$/", "/(a|aa)*b/", "/(x+x+)+y/", "/.*a.*b.*c/", "/(a?){30}a{30}/",
                                     "/^(a|b)\\1/", "/a{1,5000}/", "/[unclosed/"])
async def test_a_catastrophic_or_broken_regex_is_refused(chat: Chat, pattern: str) -> None:
    reply = await chat.say(f"filter podcast include {pattern}")
    assert reply.kind == "error"
    assert await chat.store.load_filters((await chat.store.get_source("podcast")).id) == []


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


async def test_status_shows_feeds_routes_and_adapters(chat: Chat) -> None:
    source = await chat.store.get_source("youtube")
    await chat.store.record_failure(source.id, "HTTP 503 Service Unavailable", now=NOW, next_poll_at=NOW)
    await chat.say("announce episode here")
    [route] = await chat.store.list_routes()
    await chat.store.mark_route_broken(route.id, "missing access")
    reply = await chat.say("status")
    lines = reply.text.splitlines()
    assert reply.kind == "status" and reply.ephemeral
    assert ("• podcast [ok]: last success just now, next poll in 15m, 121 items; last new item just now "
            "(“Postgres is half as fast in Linux 7.0”); last delivered never" in lines)
    assert any(line.startswith("• youtube [failing]") and "HTTP 503 Service Unavailable (1 failure in a row)"
               in line for line in lines)
    assert "• discord 555 (episode): broken: missing access; last delivered never" in lines
    assert lines[-1] == "Adapters: discord up, slack DOWN"


async def test_announce_here_with_a_thread_per_announcement(chat: Chat) -> None:
    reply = await chat.say("announce episode here thread")
    assert reply.text == "Announcing here: nothing → episode.\nEach announcement gets a discussion thread."
    (route,) = await chat.store.list_routes()
    assert route.thread and route.kinds == {EventKind.EPISODE}
    await chat.say("announce video here")  # said again without: threads stay (nothing is dropped silently)
    (route,) = await chat.store.list_routes()
    assert route.thread and route.kinds == {EventKind.EPISODE, EventKind.VIDEO}
    assert (await chat.say("announce video here no thread")).text == (
        "Announcing here: episode, video → episode, video.\nNo more discussion threads.")
    (route,) = await chat.store.list_routes()
    assert not route.thread
