"""Every member command's Reply on the catalogue fixture, and the
``ask --json`` shape (reply_to_json) against the DESIGN.md contract."""

from __future__ import annotations

import json
import re
from typing import Awaitable, Callable

import pytest

from bot.commands import Commands, reply_to_json
from bot.models import Chapter, Reply
from bot.plaintext import render_text
from bot.replies import format_duration, link_at
from tests.catalog_helpers import MEMBER
from tests.chat import Chat as ChatHarness

Chat = Callable[[str], Awaitable[Reply]]


@pytest.fixture
def commands(chat: ChatHarness) -> Commands:
    return chat.commands


@pytest.fixture
def bot(chat: ChatHarness) -> Chat:
    """A member in the shared harness (tests/chat.py: the catalogue's 157 items)."""
    return lambda text: chat.say(text, MEMBER)


async def test_latest_episode(bot: Chat) -> None:
    reply = await bot("latest episode")
    assert reply.kind == "latest" and reply.text == "The latest episode:"
    [item] = reply.items
    assert item.title == "Postgres is half as fast in Linux 7.0"
    assert item.kind == "episode" and item.source == "podcast"
    assert item.chapters[1] == Chapter(150, "The Discovery")
    assert reply.more == "latest episodes"


async def test_latest_is_everything_newest_first(bot: Chat) -> None:
    reply = await bot("what's new")
    assert [i.kind for i in reply.items] == ["episode", "episode", "article", "post", "episode"]
    assert reply.text == "Latest 1–5 of 157:"
    assert reply.more == "latest page 2"
    dates = [i.published_at for i in reply.items]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize("text,title", [
    ("latest video", "Postgres fsync and SSD caches, explained with a demo"),
    ("latest article", "What I learned writing a book"),
    ("latest post", "I wrote a new book that has been in the works for years."),
])
async def test_latest_of_a_kind(bot: Chat, text: str, title: str) -> None:
    reply = await bot(text)
    assert [i.title for i in reply.items] == [title]


async def test_episode_number_lists_all_chapters(bot: Chat) -> None:
    reply = await bot("episode 215")
    assert reply.kind == "episode"
    assert reply.text == "Episode 215: CPU and Kernel Page Faults"
    [item] = reply.items
    assert len(item.chapters) == 12
    assert item.chapters[4] == Chapter(1530, "What is a Page fault?")
    assert item.duration_s == 48 * 60 + 37


async def test_unknown_episode_number_is_a_kind_error(bot: Chat) -> None:
    reply = await bot("episode 999")
    assert reply.kind == "error" and reply.ephemeral
    assert reply.text == "There is no episode 999. Episodes go from 100 to 220."


async def test_random_episode_is_an_episode(bot: Chat) -> None:
    reply = await bot("random episode")
    assert reply.kind == "random"
    [item] = reply.items
    assert item.kind == "episode"


async def test_random_episode_on_a_topic_is_a_search_hit(bot: Chat) -> None:
    hits = set()
    for _ in range(10):
        reply = await bot("random episode on databases")
        assert reply.text == "A random one of 13 episodes on “databases”:"
        hits.add(reply.items[0].title)
    search = await bot("episodes on databases")
    every = {i.title for i in search.items}
    while search.more:
        search = await bot(search.more)
        every |= {i.title for i in search.items}
    assert hits <= every and len(hits) > 1


async def test_help_and_help_search(bot: Chat) -> None:
    reply = await bot("help")
    assert reply.kind == "help" and reply.ephemeral
    assert "`search <topic>`" in reply.text
    assert "feed add" not in reply.text  # moderator help only for moderators
    reply = await bot("help search")
    assert reply.text.startswith("`search <topic>` searches titles, chapter titles and descriptions")


@pytest.mark.parametrize("text,guess", [("lates", "latest"), ("serch kafka", "search"),
                                        ("subscrib kafka", "subscribe"), ("/latest", "latest")])
async def test_unknown_input_points_at_the_closest_command(bot: Chat, text: str, guess: str) -> None:
    reply = await bot(text)
    assert reply.kind == "help"
    assert reply.text.startswith(f"I didn't catch that. Did you mean `{guess}`?")


async def test_gibberish_gets_the_short_help(bot: Chat) -> None:
    reply = await bot("zzzz qqqq")
    assert reply.kind == "help"
    assert "`help` lists everything" in reply.text


async def test_stats(bot: Chat) -> None:
    reply = await bot("stats")
    assert reply.text.splitlines()[1].startswith("• 121 episodes, 2021-03-26 to 2026-06-17")


async def test_complete_topic(commands: Commands) -> None:
    assert (await commands.complete_topic("kaf"))[:1] == ["kafka"]
    assert "postgres" in await commands.complete_topic("postg")
    assert await commands.complete_topic("zzz") == []


# -- ask --json --------------------------------------------------------------------

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def assert_contract(obj: dict) -> None:
    """DESIGN.md, The CLI contract: ask --json."""
    assert set(obj) == {"kind", "text", "items"}
    assert isinstance(obj["kind"], str) and isinstance(obj["text"], str)
    for item in obj["items"]:
        assert set(item) == {"title", "url", "kind", "source", "published", "duration_s", "chapters"}
        assert item["published"] is None or ISO_UTC.match(item["published"])
        assert item["duration_s"] is None or isinstance(item["duration_s"], int)
        for chapter in item["chapters"]:
            assert set(chapter) == {"start_s", "title"}
            assert isinstance(chapter["start_s"], int) and isinstance(chapter["title"], str)
    json.dumps(obj)  # serializable as is


async def test_ask_json_for_a_search(bot: Chat) -> None:
    obj = reply_to_json(await bot("search goaway"))
    assert_contract(obj)
    assert obj == {
        "kind": "search",
        "text": "1 item on “goaway”:",
        "items": [{
            "title": "Graceful shutdown in HTTP",
            "url": "https://podcasters.spotify.com/pod/show/hnasr/episodes/graceful-shutdown-in-http-e213",
            "kind": "episode", "source": "podcast", "published": "2025-10-17T15:08:00Z",
            "duration_s": 1549, "chapters": [{"start_s": 1060, "title": "HTTP/2 GoAWAY frame"}],
        }],
    }


async def test_ask_json_search_without_chapter_match_has_empty_chapters(bot: Chat) -> None:
    obj = reply_to_json(await bot("search rabbitmq"))
    assert_contract(obj)
    assert obj["items"][0]["chapters"] == []


async def test_ask_json_episode_lists_all_chapters(bot: Chat) -> None:
    obj = reply_to_json(await bot("episode 220"))
    assert_contract(obj)
    assert [c["start_s"] for c in obj["items"][0]["chapters"]] == [0, 150, 390, 565, 780, 1020, 1350, 1550]


@pytest.mark.parametrize("text", ["latest", "help", "stats", "nonsense words", "episode 1", "subscriptions"])
async def test_ask_json_shape_for_every_reply(bot: Chat, text: str) -> None:
    assert_contract(reply_to_json(await bot(text)))


# -- reply helpers -------------------------------------------------------------------

@pytest.mark.parametrize("seconds,text", [(2799, "46m 39s"), (549, "9m 09s"), (45, "45s"),
                                          (3723, "1h 02m 03s"), (None, "")])
def test_format_duration(seconds: int | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_link_at() -> None:
    assert link_at("https://www.youtube.com/watch?v=abc", 465) == "https://www.youtube.com/watch?v=abc&t=465"
    assert link_at("https://youtu.be/abc?t=3", 60) == "https://youtu.be/abc?t=60"
    assert link_at("https://anchor.fm/ep", 60) == "https://anchor.fm/ep"
    assert link_at("https://www.youtube.com/watch?v=abc", 0) == "https://www.youtube.com/watch?v=abc"


async def test_render_text_reads_like_chat(bot: Chat) -> None:
    text = render_text(await bot("search goaway"))
    assert text.splitlines() == [
        "1 item on “goaway”:",
        "1. Graceful shutdown in HTTP — 2025-10-17 · 25m 49s · "
        "https://podcasters.spotify.com/pod/show/hnasr/episodes/graceful-shutdown-in-http-e213",
        "   ↳ 17:40 HTTP/2 GoAWAY frame",
    ]


# -- search: natural questions, newest, and what to try when nothing is found -------------

async def test_a_bare_topic_searches_and_natural_questions_answer(bot: Chat) -> None:
    bare = await bot("kafka")
    assert bare.kind == "search" and bare.items and all("kafka" in (i.title + i.summary).casefold()
                                                        or i.chapters for i in bare.items)
    assert (await bot("any episodes about kafka?")).text.startswith("4 episodes on “kafka”")
    latest = await bot("what's the latest episode?")
    assert latest.kind == "latest" and [i.title for i in latest.items] == ["Postgres is half as fast in Linux 7.0"]
    assert (await bot("is there a video on page faults?")).items[0].title == "Page faults under a microscope with perf"


async def test_a_bare_text_that_finds_nothing_gets_the_short_help(bot: Chat) -> None:
    reply = await bot("tell me a joke")
    assert reply.kind == "help" and reply.text.startswith("I didn't catch that.")
    assert "`help` lists everything" in reply.text


async def test_search_newest_sorts_the_same_hits_by_date(bot: Chat) -> None:
    relevance = await bot("search kafka")
    newest = await bot("search kafka newest")
    assert newest.text.startswith("5 items on “kafka”, newest first")
    dates = [i.published_at for i in newest.items]
    assert dates == sorted(dates, reverse=True)  # type: ignore[type-var]
    assert {i.title for i in newest.items} == {i.title for i in relevance.items}  # same gate, other order
    assert [i.title for i in newest.items] != [i.title for i in relevance.items]


async def test_newest_keeps_its_order_on_the_next_page(bot: Chat) -> None:
    reply = await bot("search postgres newest")
    assert reply.more == "search postgres newest page 2"
    second = await bot(reply.more)
    assert second.items and second.items[0].published_at <= reply.items[-1].published_at  # type: ignore[operator]


async def test_nothing_found_suggests_fewer_words(bot: Chat) -> None:
    reply = await bot("search kafka gardening")
    assert reply.kind == "search" and reply.items == ()
    assert reply.text == "Nothing found for “kafka gardening”. “kafka” finds 5 items: try `search kafka`."


async def test_nothing_found_suggests_the_closest_indexed_word(bot: Chat) -> None:
    reply = await bot("search kafak")
    assert reply.text == "Nothing found for “kafak”. Did you mean `search kafka`?"
    follow = await bot("search kafka")
    assert follow.items  # the suggestion works


async def test_nothing_found_with_nothing_close_says_only_that(bot: Chat) -> None:
    reply = await bot("search quantum chromodynamics")
    assert reply.text == "Nothing found for “quantum chromodynamics”."


async def test_concurrent_reads_all_finish_before_the_first_error_is_raised() -> None:
    """A reply's independent queries run at once (bot.commands.member.all_of);
    when one fails, the others still finish (none is left running behind the
    reply) and the first error is what the chat edge sees."""
    import asyncio

    from bot.commands.member import all_of
    from bot.errors import StorageError

    other_done = asyncio.Event()

    async def fails() -> int:
        await asyncio.sleep(0)
        raise StorageError("the database is locked")

    async def slower() -> str:
        for _ in range(5):
            await asyncio.sleep(0)
        other_done.set()
        return "done"

    with pytest.raises(StorageError, match="locked"):
        await all_of(fails(), slower())
    assert other_done.is_set()
    assert await all_of(slower(), asyncio.sleep(0, result=2)) == ["done", 2]
