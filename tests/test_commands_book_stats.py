"""`book` and `stats` as a member sees them, on a real SQLite store:
book news from events, follower changes from profile snapshots, episodes
per month and posting cadence from items, and the optional chart."""

from __future__ import annotations

import json
import logging
import struct
from datetime import datetime, timedelta
from pathlib import Path
from typing import Awaitable, Callable

import pytest

from bot import charts
from bot.clock import FrozenClock
from bot.commands import Commands, reply_to_json
from bot.commands.grammar import Book, Help, Stats, parse
from bot.config import BookConfig
from bot.detect import decide
from bot.models import ContentKind, Item, Reply, SourceSpec
from bot.plaintext import render_text
from bot.storage import SqliteStorage
from bot.storage.sqlite.base import to_db_time
from tests.catalog_helpers import MEMBER, NOW
from tests.chat import Chat as ChatHarness
from tests.spine import write_decision

Chat = Callable[[str], Awaitable[Reply]]

ROOT_CAUSE = BookConfig(title="Root Cause", keywords=("Root Cause",),
                        links=("https://amzn.to/rootcause", "https://rootcause.example/book"))


# The shared harness (tests/chat.py), from an empty store: these tests write
# exactly the items, events and snapshots they count.
pytestmark = pytest.mark.chat(catalog=False)


@pytest.fixture
def store(chat: ChatHarness) -> SqliteStorage:
    return chat.store


@pytest.fixture(autouse=True)
def chart_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Charts land in the test's tmp_path, not in a per-process temp dir."""
    directory = tmp_path / "charts"
    directory.mkdir()
    monkeypatch.setattr(charts, "_dir", directory)
    return directory


def chat(store: SqliteStorage, book: BookConfig | None = None) -> Chat:
    commands = Commands(store, clock=FrozenClock(NOW), book_config=book)
    return lambda text: commands(text, MEMBER)


# -- fixtures written through the store's own paths, or plain SQL ------------------------

async def add_items(store: SqliteStorage, spec: SourceSpec, dated: list[tuple[str, datetime]]) -> None:
    """SqliteStorage items as a silent first poll would."""
    source = await store.add_source(spec, NOW - timedelta(days=500))
    items = [Item(title=t, link=f"https://example.com/{spec.name}/{n}", guid=f"{spec.name}-{n}",
                  published_at=at) for n, (t, at) in enumerate(dated)]
    decision = decide(spec=spec, synced=False, known=[], fetched=items, now=NOW)
    await write_decision(store, source, decision, now=NOW, next_poll_at=NOW + timedelta(minutes=15),
                           etag=None, last_modified=None, body_hash=None)


async def add_x_source(store: SqliteStorage, name: str = "x", handle: str = "hnasr") -> int:
    source = await store.add_source(
        SourceSpec(name=name, kind="x", handle=handle, provider="snapshot", content=ContentKind.POST),
        NOW - timedelta(days=500))
    return source.id


async def add_snapshot(store: SqliteStorage, source_id: int, taken_at: datetime, followers: int | None,
                       following: int | None = None, posts: int | None = None) -> None:
    async with store._tx("test snapshot") as db:
        await db.execute(
            "INSERT INTO profile_snapshots (source_id, taken_at, followers, following, posts, bio, raw_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source_id, to_db_time(taken_at), followers, following, posts, "Author of Root Cause", "{}"))


async def add_event(store: SqliteStorage, kind: str, title: str, url: str | None, created_at: datetime,
                    source_id: int | None = None, item_id: int | None = None) -> None:
    async with store._tx("test event") as db:
        await db.execute(
            "INSERT INTO events (source_id, item_id, kind, title, url, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source_id, item_id, kind, title, url, json.dumps({"reasons": ["pinned"]}),
             to_db_time(created_at)))


def png_size(path: str) -> tuple[int, int]:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# -- grammar and help -------------------------------------------------------------------

@pytest.mark.parametrize("text,command", [
    ("book", Book()), ("the book", Book()), ("The Book?", Book()), ("BOOK!", Book()),
    ("stats", Stats()), ("statistics", Stats()), ("numbers", Stats()), ("Numbers?", Stats()),
    ("help book", Help("book")),
])
def test_grammar(text: str, command: object) -> None:
    assert parse(text) == command


async def test_help_mentions_book_and_stats(store: SqliteStorage) -> None:
    bot = chat(store)
    listing = (await bot("help")).text
    assert "`book`" in listing and "`stats`" in listing
    assert "latest book news" in (await bot("help book")).text
    assert "7 and 30 days" in (await bot("help stats")).text
    assert (await bot("help numbers")).text == (await bot("help stats")).text


# -- book -------------------------------------------------------------------------------

@pytest.mark.parametrize("config", [None, BookConfig()])
async def test_book_without_config_is_a_kind_answer(store: SqliteStorage, config: BookConfig | None) -> None:
    reply = await chat(store, config)("book")
    assert reply.kind == "book" and reply.items == () and reply.image_path is None
    assert reply.text.startswith("No book is configured for this community yet.")


async def test_book_with_config_and_no_news(store: SqliteStorage) -> None:
    reply = await chat(store, ROOT_CAUSE)("the book")
    assert reply.kind == "book"
    assert reply.text == ("📖 Root Cause\n"
                          "Links: https://amzn.to/rootcause · https://rootcause.example/book\n"
                          "No book news yet.")


async def test_book_title_falls_back_to_a_keyword(store: SqliteStorage) -> None:
    reply = await chat(store, BookConfig(keywords=("Root Cause",)))("book")
    assert reply.text == "📖 Root Cause\nNo book news yet."


async def test_book_lists_the_latest_five_news_newest_first(store: SqliteStorage) -> None:
    x_id = await add_x_source(store)
    await add_items(store, SourceSpec(name="blog", kind="rss", url="https://blog.example/rss",
                                      content=ContentKind.ARTICLE),
                    [("What I learned writing a book", NOW - timedelta(days=3, hours=2))])
    item_id = (await store._one("SELECT id FROM items"))[0]
    for n in range(6):  # 6 profile book news, one a day, oldest first
        await add_event(store, "book", f"Book news #{n}", f"https://x.com/hnasr/status/{n}",
                        NOW - timedelta(days=10 - n), source_id=x_id)
    # An item's book event is dated by the item's publication, not by when it was detected.
    await add_event(store, "book", "What I learned writing a book", None,
                    NOW - timedelta(hours=1), source_id=x_id + 1, item_id=item_id)
    await add_event(store, "profile", "Bio changed", "https://x.com/hnasr", NOW, source_id=x_id)

    reply = await chat(store, ROOT_CAUSE)("book")
    assert reply.kind == "book"
    assert reply.text.endswith("Latest book news:")
    assert [i.title for i in reply.items] == [
        "What I learned writing a book", "Book news #5", "Book news #4", "Book news #3", "Book news #2"]
    assert [i.published_at for i in reply.items] == [
        NOW - timedelta(days=3, hours=2), NOW - timedelta(days=5), NOW - timedelta(days=6),
        NOW - timedelta(days=7), NOW - timedelta(days=8)]
    article, first, *_ = reply.items
    assert (first.url, first.kind, first.source) == ("https://x.com/hnasr/status/5", "book", "x")
    assert (article.url, article.source) == ("https://example.com/blog/0", "blog")  # the item's link

    text = render_text(reply)
    assert "1. What I learned writing a book — 2026-06-17 · https://example.com/blog/0" in text
    assert "2. Book news #5 — 2026-06-15 · https://x.com/hnasr/status/5" in text
    obj = reply_to_json(reply)
    assert obj["kind"] == "book" and obj["items"][1]["published"] == "2026-06-15T12:00:00Z"


async def test_book_news_of_a_removed_source_still_shows(store: SqliteStorage) -> None:
    await add_event(store, "book", "Root Cause is out", "https://amzn.to/rootcause", NOW)
    [item] = (await chat(store, ROOT_CAUSE)("book")).items
    assert (item.title, item.source, item.url) == ("Root Cause is out", "", "https://amzn.to/rootcause")


# -- stats ------------------------------------------------------------------------------

async def test_stats_on_an_empty_store_is_polite(store: SqliteStorage) -> None:
    reply = await chat(store)("stats")
    assert reply.kind == "stats" and reply.image_path is None and reply.items == ()
    assert reply.text.startswith("Nothing to count yet")
    assert "first polls" in reply.text


async def seed_world(store: SqliteStorage) -> None:
    """An X profile with two months of snapshots and a podcast with episodes."""
    x_id = await add_x_source(store)
    for taken, followers, following, posts in [
        (NOW - timedelta(days=40), 80_000, None, 4_700),
        (NOW - timedelta(days=31), 82_000, None, 4_800),   # the 30-day baseline (1 day off)
        (NOW - timedelta(days=8), 86_000, 490, 4_950),     # the 7-day baseline (1 day off)...
        (NOW - timedelta(days=5), 87_000, 495, 4_970),     # ...closer than this one (2 days off)
        (NOW - timedelta(hours=2), 88_700, 500, 4_999),
        (NOW - timedelta(hours=1), 88_800, 500, 5_000),    # the latest
    ]:
        await add_snapshot(store, x_id, taken, followers, following, posts)
    podcast = SourceSpec(name="podcast", kind="rss", url="https://pod.example/rss",
                         content=ContentKind.EPISODE)
    await add_items(store, podcast, [
        ("Ten days ago", NOW - timedelta(days=10)),        # 2026-06-10
        ("Twenty days ago", NOW - timedelta(days=20)),     # 2026-05-31
        ("Forty days ago", NOW - timedelta(days=40)),      # 2026-05-11
        ("A hundred days ago", NOW - timedelta(days=100)),  # 2026-03-12, outside 90 days
        ("Long ago", NOW - timedelta(days=400)),           # 2025-05-16, outside 12 months
    ])


async def test_stats_numbers(store: SqliteStorage) -> None:
    await seed_world(store)
    reply = await chat(store)("statistics")
    assert reply.kind == "stats"
    lines = reply.text.splitlines()
    assert lines[:2] == ["The catalogue:", "• 5 episodes, 2025-05-16 to 2026-06-10"]
    assert "@hnasr on X (as of 2026-06-20):" in lines
    assert "• Followers: 88,800 (+2,800 in 7 days, +6,800 in 30 days)" in lines
    assert "• Following: 500 (+10 in 7 days, 30 days: not enough history)" in lines
    assert "• Posts: 5,000 (+50 in 7 days, +200 in 30 days)" in lines
    assert "Episodes per month, last 12 months (4 in all):" in lines
    assert ("Jul ’25: 0 · Aug: 0 · Sep: 0 · Oct: 0 · Nov: 0 · Dec: 0 · Jan ’26: 0 · Feb: 0 · "
            "Mar: 1 · Apr: 0 · May: 2 · Jun: 1") in lines
    assert "Posting cadence (last 90 days):" in lines
    assert "• podcast (episode): 0.2 a week, newest 2026-06-10" in lines  # 3 in 90 days
    assert "• x (post): nothing yet" in lines
    assert_contract = reply_to_json(reply)
    assert assert_contract == {"kind": "stats", "text": reply.text, "items": []}


async def test_stats_says_when_there_is_not_enough_history(store: SqliteStorage) -> None:
    x_id = await add_x_source(store)
    await add_snapshot(store, x_id, NOW - timedelta(days=2), 88_000, 500, 4_990)
    await add_snapshot(store, x_id, NOW - timedelta(hours=1), 88_800, 500, 5_000)
    lines = (await chat(store)("stats")).text.splitlines()
    assert lines[0] == "The catalogue is empty so far."
    assert "• Followers: 88,800" in lines
    assert "Change over 7 and 30 days: not enough history yet." in lines
    assert "Episodes per month: none in the last 12 months." in lines


async def test_stats_uses_the_most_recently_polled_x_profile(store: SqliteStorage) -> None:
    old = await add_x_source(store, "x-old", "oldhandle")
    new = await add_x_source(store, "x", "hnasr")
    await add_snapshot(store, old, NOW - timedelta(days=3), 5)
    await add_snapshot(store, new, NOW - timedelta(hours=3), 88_800)
    await add_snapshot(store, new, NOW - timedelta(days=7, hours=3), 88_000)
    lines = (await chat(store)("stats")).text.splitlines()
    assert "@hnasr on X (as of 2026-06-20):" in lines
    assert "• Followers: 88,800 (+800 in 7 days, 30 days: not enough history)" in lines
    assert "• Following: unknown" in lines


async def test_stats_draws_a_chart(store: SqliteStorage, chart_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    await seed_world(store)
    bot = chat(store)
    reply = await bot("stats")
    assert reply.image_path is not None
    path = Path(reply.image_path)
    assert path.parent == chart_dir and path.suffix == ".png"
    assert png_size(reply.image_path) == (800, 400)
    first = path.read_bytes()
    again = await bot("stats")
    assert again.image_path == reply.image_path and Path(again.image_path).read_bytes() == first
    assert [p.name for p in chart_dir.iterdir()] == [path.name]  # no stray temp files


async def test_chart_with_only_episodes(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    data = charts.StatsChartData(followers=(), episodes_per_month=(("2026-05", 2), ("2026-06", 1)))
    assert png_size(charts.render_stats_chart(data, tmp_path)) == (800, 400)


async def test_stats_is_text_only_without_matplotlib(
        store: SqliteStorage, monkeypatch: pytest.MonkeyPatch, chart_dir: Path) -> None:
    await seed_world(store)

    def missing() -> None:
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(charts, "_matplotlib", missing)
    reply = await chat(store)("stats")
    assert reply.image_path is None
    assert "• Followers: 88,800 (+2,800 in 7 days, +6,800 in 30 days)" in reply.text.splitlines()
    assert list(chart_dir.iterdir()) == []


async def test_a_failing_chart_still_answers(
        store: SqliteStorage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    await seed_world(store)

    def broken(data: charts.StatsChartData, directory: Path | None = None) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(charts, "render_stats_chart", broken)
    with caplog.at_level(logging.WARNING, logger="showbot.commands"):
        reply = await chat(store)("stats")
    assert reply.kind == "stats" and reply.image_path is None
    assert "stats chart failed" in caplog.text


async def test_no_chart_when_there_is_nothing_to_draw(store: SqliteStorage) -> None:
    await add_items(store, SourceSpec(name="blog", kind="rss", url="https://blog.example/rss",
                                      content=ContentKind.ARTICLE), [("Old", NOW - timedelta(days=800))])
    reply = await chat(store)("stats")
    assert reply.image_path is None
    assert reply.text.splitlines()[:2] == ["The catalogue:", "• 1 article, 2024-04-11 to 2024-04-11"]


# -- chart files do not pile up ------------------------------------------------------------

def test_old_charts_and_old_chart_dirs_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import tempfile
    import time

    long_ago = time.time() - 2 * charts.KEEP_S
    stale = tmp_path / "showbot-charts-stale"
    stale.mkdir()
    (stale / "stats-aaaa.png").write_bytes(b"png")
    os.utime(stale, (long_ago, long_ago))
    busy = tmp_path / "showbot-charts-busy"  # another process, still in use
    busy.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(charts, "_dir", None)

    current = charts.chart_dir()
    assert current.parent == tmp_path and current.is_dir()
    assert not stale.exists() and busy.is_dir()
    assert charts.chart_dir() == current

    old, fresh = current / "stats-old.png", current / "stats-fresh.png"
    old.write_bytes(b"png")
    fresh.write_bytes(b"png")
    os.utime(old, (long_ago, long_ago))
    charts._prune(current, keep=current / "stats-new.png")
    assert not old.exists() and fresh.exists()


@pytest.mark.chat(catalog=True, book=ROOT_CAUSE)
async def test_book_lists_book_items_stored_at_the_silent_first_sync(chat: ChatHarness) -> None:
    """The issue: "No book news yet." while the catalogue held a book episode
    and a book article, stored (not announced) at a feed's first sync."""
    assert await chat.store.book_news() == []  # no book event was ever made
    reply = await chat.say("book", MEMBER)
    assert reply.text.endswith("Latest book news:")
    titles = [i.title for i in reply.items]
    assert "My new book - Root cause, Stories from two decades of backend bugs" in titles
    assert "What I learned writing a book" in titles
    # An episode that only plugs the book at the end of its description is not book news.
    assert "Postgres is half as fast in Linux 7.0" not in titles
    assert all(i.kind == "book" for i in reply.items) and len(reply.items) <= 5
