"""Search quality on the catalogue fixture, and the query builder's safety."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest
from hypothesis import given, settings, strategies as st

from bot.clock import FrozenClock
from bot.commands import Commands
from bot.detect import decide
from bot.models import Chapter, ContentKind, Item, SourceSpec
from bot.search import SynonymIndex, parse_query
from bot.storage.sqlite.catalog import fts_all, fts_any
from bot.storage import SqliteStorage
from tests.catalog_helpers import MEMBER, NOW, load_catalog
from tests.backends import Target, open_target
from tests.spine import write_decision


# The catalogue's answers are the same on both backends: the quality table
# below is also what PostgreSQL's relevance floor was calibrated against.
@pytest.fixture
async def bot(db: Target) -> AsyncIterator[Commands]:
    async with await open_target(db) as store:
        await load_catalog(store)
        yield Commands(store, clock=FrozenClock(NOW))


def titles(reply) -> list[str]:
    return [i.title for i in reply.items]


# query -> titles that must be in the first page, in this order (a prefix of the page).
QUALITY = [
    # plain title hits rank first
    ("search kafka", ["RabbitMQ vs Kafka", "Kafka in 20 minutes", "Kafka consumer groups and partitions",
                      "Kafka tail latency dropped 80% by switching to XFS"]),
    ("anything on page faults?", ["Page faults under a microscope with perf", "CPU and Kernel Page Faults"]),
    # stemming: plural query, singular/-ing titles
    ("search partitions", ["Postgres table partitioning", "Kafka consumer groups and partitions",
                           "They Enabled Postgres Partitioning and their Backend fell apart"]),
    ("search deadlock", ["Deadlocks in databases"]),
    # synonyms
    ("search k8s", ["Kubernetes for backend engineers", "Kubernetes networking, kube-proxy and iptables"]),
    ("search http2", ["HTTP/2 rapid reset attack", "HTTP/2 vs HTTP/3 performance, a live benchmark",
                      "HTTP/2 multiplexing and head of line blocking"]),
    ("search ssl", ["SSL termination at the load balancer", "TLS 1.3 handshake explained"]),
    # prefix on the last word
    ("search kafk", ["RabbitMQ vs Kafka", "Kafka in 20 minutes"]),
    ("search goaw", ["Graceful shutdown in HTTP"]),
]


@pytest.mark.parametrize("query,expected", QUALITY, ids=[q for q, _ in QUALITY])
async def test_search_quality(bot: Commands, query: str, expected: list[str]) -> None:
    reply = await bot(query, MEMBER)
    assert reply.kind == "search"
    assert titles(reply)[: len(expected)] == expected


async def test_postgres_finds_postgresql(bot: Commands) -> None:
    reply = await bot("episodes on postgres", MEMBER)
    found = titles(reply)
    page = 2
    while reply.more:
        reply = await bot(reply.more, MEMBER)
        found += titles(reply)
        page += 1
    assert "The Danger of Defaults - A PostgreSQL Story" in found
    assert "PostgreSQL MVCC and vacuum explained" in found
    assert all(i.kind == "episode" for i in reply.items)


async def test_chapter_hit_returns_the_chapter_and_its_timestamp(bot: Commands) -> None:
    reply = await bot("search goaway", MEMBER)
    [hit] = reply.items
    assert hit.title == "Graceful shutdown in HTTP"
    assert hit.chapters == (Chapter(1060, "HTTP/2 GoAWAY frame"),)
    # A podcast link has no time parameter: left as is.
    assert hit.url == "https://podcasters.spotify.com/pod/show/hnasr/episodes/graceful-shutdown-in-http-e213"


async def test_chapter_hit_on_youtube_links_at_that_second(bot: Commands) -> None:
    reply = await bot("search minor page faults", MEMBER)
    [hit] = reply.items
    assert hit.chapters[0] == Chapter(465, "Minor page faults")
    assert hit.url is not None and hit.url.endswith("&t=465")
    assert hit.url.startswith("https://www.youtube.com/watch?v=")


async def test_match_outside_chapters_has_no_chapters(bot: Commands) -> None:
    reply = await bot("search rabbitmq", MEMBER)
    assert titles(reply) == ["RabbitMQ vs Kafka"]
    assert reply.items[0].chapters == ()


@pytest.mark.parametrize("query", [
    "search quantum chromodynamics",   # no such words
    "search needle",                   # one passing mention in a very long description: below the floor
    "search the",                      # only stopwords
    "search ### -- &&",               # only punctuation
])
async def test_no_good_match_answers_nothing_found(bot: Commands, query: str) -> None:
    reply = await bot(query, MEMBER)
    assert reply.kind == "search"
    assert reply.items == ()
    assert reply.text.startswith("Nothing found")


async def test_results_come_five_at_a_time_with_n_more(bot: Commands) -> None:
    reply = await bot("search postgres", MEMBER)
    assert len(reply.items) == 5
    assert reply.text == "17 items on “postgres” (1–5):"
    assert reply.more == "search postgres page 2"
    page2 = await bot(reply.more, MEMBER)
    assert len(page2.items) == 5
    assert not set(titles(page2)) & set(titles(reply))
    page4 = await bot("search postgres page 4", MEMBER)
    assert len(page4.items) == 2 and page4.more is None and page4.text == "17 items on “postgres” (16–17):"


async def test_a_query_longer_than_a_search_takes_is_echoed_with_an_ellipsis(bot: Commands) -> None:
    words = "postgres locks mvcc vacuum wal replication sharding indexes btree hash joins"
    reply = await bot(f"search {words}", MEMBER)
    assert reply.text == "Nothing found for “postgres locks mvcc vacuum wal replication sharding indexes…”."
    long_word = "x" * 90
    assert (await bot(f"search {long_word}", MEMBER)).text == f"Nothing found for “{'x' * 64}…”."


async def test_recency_breaks_ties(db: Target) -> None:
    async with await open_target(db) as store:
        spec = SourceSpec(name="pod", kind="rss", url="https://example.org/rss", content=ContentKind.EPISODE)
        source = await store.add_source(spec, NOW)
        old = NOW - timedelta(days=300)
        items = [Item(title="Kafka explained", guid=f"g{n}", link=f"https://e.org/{n}", summary="same words",
                      published_at=old + timedelta(days=n)) for n in range(3)]
        decision = decide(spec=spec, synced=False, known=[], fetched=items, now=NOW)
        await write_decision(store, source, decision, now=NOW, next_poll_at=NOW, etag=None,
                               last_modified=None, body_hash=None)
        reply = await Commands(store, clock=FrozenClock(NOW))("search kafka", MEMBER)
        assert [i.url for i in reply.items] == ["https://e.org/2", "https://e.org/1", "https://e.org/0"]


# -- the query builder --------------------------------------------------------------

def test_member_text_is_quoted_never_fts_syntax() -> None:
    q = parse_query('postgres" OR title:* NEAR(a b) ^x -y')
    assert fts_all(q) == ('("postgres" OR "pg" OR "postgresql") AND "title" AND "near" AND "b" '
                           'AND "x" AND "y"')


def test_synonym_phrases_and_prefix() -> None:
    assert fts_all(parse_query("http/2")) == '("http 2" OR "http2")'
    assert fts_all(parse_query("k8s network")) == '("k8s" OR "kubernetes") AND "network"*'
    # a finished word (a plain plural, -ing, -ed) is matched whole: its stem finds its forms
    assert fts_all(parse_query("k8s networking")) == '("k8s" OR "kubernetes") AND "networking"'
    assert fts_all(parse_query("index funds")) == '"index" AND "funds"'
    assert fts_all(parse_query("locks explained")) == '"locks" AND "explained"'
    # not plurals: still prefixes
    assert fts_all(parse_query("kafk")) == '"kafk"*'
    assert fts_all(parse_query("prometheus redis")) == '"prometheus" AND "redis"*'
    assert fts_all(parse_query("db")) == '("db" OR "database")'
    # a short last word is not a prefix (it would match half the catalogue)
    assert fts_all(parse_query("io")) == '"io"'


def test_synonyms_are_configurable() -> None:
    index = SynonymIndex({"rust": ["rustlang"]})
    assert fts_all(parse_query("rust", index)) == '("rust" OR "rustlang")'
    assert fts_all(parse_query("postgres", index)) == '"postgres"*'


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=10_000))
def test_any_text_builds_only_quoted_terms(text: str) -> None:
    fts = fts_all(parse_query(text))
    # Outside the quotes only our own operators appear.
    outside = "".join(part for i, part in enumerate(fts.split('"')) if i % 2 == 0)
    assert set(outside.replace("AND", "").replace("OR", "")) <= set(" ()*")


async def test_migration_backfills_chapter_search_and_triggers_keep_it_in_sync(tmp_path: Path) -> None:
    import sqlite3

    from bot.storage.sqlite.schema import MIGRATIONS
    from bot.storage.sqlite.base import split_sql as _split_sql

    path = tmp_path / "v1.db"
    con = sqlite3.connect(path)  # a database as schema version 1 left it
    for statement in _split_sql(MIGRATIONS[0]):
        con.execute(statement)
    con.execute("PRAGMA user_version = 1")
    con.execute("INSERT INTO sources (id, name, kind, content, every_s, max_age_s, created_at) "
                "VALUES (1, 'pod', 'rss', 'episode', 900, 86400, '2026-01-01')")
    con.execute("INSERT INTO items (id, source_id, identity, content_hash, kind, title, first_seen_at) "
                "VALUES (7, 1, 'guid:a', 'h', 'episode', 'Old one', '2026-01-01')")
    con.execute("INSERT INTO chapters VALUES (7, 0, 95, 'Spinlocks explained')")
    con.execute("INSERT INTO catalog_fts (rowid, title, chapters, summary, kind) "
                "VALUES (7, 'Old one', 'Spinlocks explained', '', 'episode')")
    con.commit()
    con.close()
    async with await SqliteStorage.open(path) as store:
        bot = Commands(store, clock=FrozenClock(NOW))
        reply = await bot("search spinlocks", MEMBER)
        assert reply.items[0].chapters == (Chapter(95, "Spinlocks explained"),)
        await store.remove_source("pod")  # cascades to items and chapters
        assert await store._all("SELECT rowid FROM chapters_fts") == []
        assert await store._all("SELECT rowid FROM catalog_fts") == []


# -- the fast paths keep their meaning (issue 3) -------------------------------

_SLOW_TOKEN = __import__("re").compile(r"[^\W_]+")


def _tokens_by_regex(text: str) -> list[str]:
    import unicodedata

    from bot.search import MAX_TOKEN_LEN

    return [t[:MAX_TOKEN_LEN] for t in _SLOW_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_tokens_ascii_fast_path_splits_like_the_regex(text: str) -> None:
    from bot.search import tokens

    assert tokens(text) == _tokens_by_regex(text)
    assert tokens(text + "x" * 100) == _tokens_by_regex(text + "x" * 100)  # long tokens are cut


def _in_titles_reference(query, titles: str) -> bool:
    """in_titles as first written (stem every word, per call)."""
    from bot.lexicon import stem

    words = [stem(w) for w in _tokens_by_regex(titles)]
    present = set(words)
    for term in query.terms:
        for phrase in term.alternatives:
            stems = tuple(stem(w) for w in phrase)
            if term.prefix:
                root = stem(phrase[0])
                if any(w.startswith(root[:-1] if len(root) > 3 else root) for w in present):
                    return True
            elif len(stems) == 1:
                if stems[0] in present:
                    return True
            elif any(tuple(words[i:i + len(stems)]) == stems for i in range(len(words) - len(stems) + 1)):
                return True
    return False


@pytest.mark.parametrize("text", ["kafk", "page faults", "deadlock", "indexes", "http2", "postgres",
                                  "partitions", "k8s networking", "tls handshakes", "io_uring", "sharding"])
def test_title_matcher_agrees_with_the_reference(text: str) -> None:
    from bot.search import TitleMatcher, in_titles

    titles = ["Kafka in 20 minutes", "Page Faults\nIntro", "Postgres table partitioning", "An index is a tree",
              "HTTP/2 GOAWAY", "http 3", "PostgreSQL MVCC", "Kubernetes networking, kube-proxy",
              "TLS 1.3 handshake explained", "io_uring and épée", "Database sharding", "None", ""]
    for query in (parse_query(text), parse_query(text, prefix_last=False)):
        matcher = TitleMatcher(query)
        for title in titles:
            assert matcher(title) is in_titles(query, title) is _in_titles_reference(query, title), title
    assert TitleMatcher(parse_query("kafk"))("Kafka in 20 minutes")
    assert not TitleMatcher(parse_query("deadlock"))("Postgres table partitioning")
    assert TitleMatcher(parse_query("sharding"))("Database sharding is not the first thing you should do")


async def test_page_items_matches_chapters_best_first_in_one_statement(db: Target) -> None:

    chapters = tuple(Chapter(60 * k, title) for k, title in enumerate(
        ["Intro", "Kafka basics", "Partitions", "Kafka Kafka consumer groups", "Kafka", "Wrap up"]))
    items = [
        Item(title="Queues", guid="q", link="https://pod.example.org/q", summary="About queues.",
             published_at=NOW - timedelta(days=1), chapters=chapters),
        Item(title="Kafka streams", guid="k", link="https://pod.example.org/k", summary="kafka",
             published_at=NOW - timedelta(days=2)),
    ]
    spec = SourceSpec("pod", "rss", "https://pod.example.org/rss", ContentKind.EPISODE)
    async with await open_target(db) as store:
        source = await store.add_source(spec, NOW)
        await write_decision(store, source, decide(spec=spec, synced=False, known=[], fetched=items, now=NOW),
                               now=NOW, next_poll_at=NOW, etag=None, last_modified=None, body_hash=None)
        query = parse_query("kafka")
        hits = await store.search(query)
        ids = [h.item_id for h in hits]
        page = await store.page_items(ids, query, limit=2)
        assert [s for s, _ in page] == [s for s, _ in await store.page_items(ids, None)]
        by_title = {s.item.title: (s, m) for s, m in page}
        queues, matched = by_title["Queues"]
        assert queues.item.chapters == chapters  # every chapter, in order
        assert len(matched) == 2 and all("Kafka" in c.title for c in matched)
        assert matched == (await store.page_items([queues.id], query, limit=2))[0][1]
        assert by_title["Kafka streams"][1] == []  # no chapters, nothing matched
        assert await store.page_items([], query) == []
