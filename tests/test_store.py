"""The store's written contract: migrations, one transaction per poll, error mapping."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from bot.detect import Decision, EventIntent, decide
from bot.errors import AlreadyExists, NotFound, StorageError
from bot.models import EventKind, Platform
from bot.storage import RouteSeed, SqliteStorage
from bot.storage.sqlite.schema import SCHEMA_VERSION
from tests.spine import ALL_KINDS, NOW, items, spec, write_decision


async def test_migrates_to_the_current_version_and_reopens(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with await SqliteStorage.open(db):
        pass
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
    async with await SqliteStorage.open(db) as store:  # idempotent
        assert await store.list_sources() == []


async def test_a_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 999")
    con.close()
    with pytest.raises(StorageError, match="newer than this showbot"):
        await SqliteStorage.open(db)


async def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="storage error"):
        await SqliteStorage.open(db)


async def test_duplicate_source_name_is_a_domain_error(tmp_path: Path) -> None:
    async with await SqliteStorage.open(tmp_path / "s.db") as store:
        await store.add_source(spec(), NOW)
        with pytest.raises(AlreadyExists, match="podcast"):
            await store.add_source(spec(), NOW)
        with pytest.raises(NotFound):
            await store.remove_source("nope")


async def test_config_seeds_once_then_the_database_is_the_truth(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    route = RouteSeed(Platform.CONSOLE, "terminal", frozenset({EventKind.EPISODE}))
    async with await SqliteStorage.open(db) as store:
        await store.seed([spec()], [route], NOW)
        await store.remove_source("podcast")  # a moderator removes it
        await store.upsert_route(Platform.CONSOLE, "terminal", ALL_KINDS, None, NOW)
    async with await SqliteStorage.open(db) as store:  # restart with the same config
        await store.seed([spec(), spec("blog")], [route], NOW)
        assert [s.name for s in await store.list_sources()] == ["blog"]
        (r,) = await store.list_routes()
        assert r.kinds == ALL_KINDS


async def test_a_failed_poll_write_leaves_nothing_behind(tmp_path: Path) -> None:
    async with await SqliteStorage.open(tmp_path / "s.db") as store:
        await store.upsert_route(Platform.DISCORD, "c", ALL_KINDS, None, NOW)
        source = await store.add_source(spec(), NOW)
        good = decide(spec=source.spec, synced=False, known=[], fetched=items(3), now=NOW)
        # An event pointing past the new items makes the write fail half-way.
        broken = Decision(good.new_items, (), (EventIntent(EventKind.EPISODE, 99, "x", None),))
        with pytest.raises(IndexError):
            await write_decision(store, source, broken, now=NOW, next_poll_at=NOW, etag='"v2"',
                                   last_modified=None, body_hash="h2")
        assert await store.count_items() == 0
        after = await store.get_source("podcast")
        assert after.etag is None and after.body_hash is None and not after.synced
        assert await store.outbox_rows() == []


async def test_search_index_and_chapters_follow_edits(tmp_path: Path) -> None:
    from dataclasses import replace

    from bot.models import Chapter

    async with await SqliteStorage.open(tmp_path / "s.db") as store:
        source = await store.add_source(spec(), NOW)
        first = [replace(items(1)[0], title="Postgres locks", chapters=(Chapter(0, "Intro"), Chapter(90, "MVCC")))]
        d = decide(spec=source.spec, synced=False, known=[], fetched=first, now=NOW)
        await write_decision(store, source, d, now=NOW, next_poll_at=NOW, etag=None, last_modified=None, body_hash="1")
        source = await store.get_source("podcast")
        edited = [replace(first[0], title="Postgres row locks", chapters=(Chapter(0, "Intro"),))]
        d = decide(spec=source.spec, synced=True, known=await store.known_items(source.id), fetched=edited, now=NOW)
        await write_decision(store, source, d, now=NOW, next_poll_at=NOW, etag=None, last_modified=None, body_hash="2")
        (stored,) = await store.latest_items()
        assert stored.item.title == "Postgres row locks" and stored.item.chapters == (Chapter(0, "Intro"),)
        rows = await store._all("SELECT rowid, title, chapters, kind FROM catalog_fts WHERE catalog_fts MATCH 'row'")
        assert [tuple(r) for r in rows] == [(stored.id, "Postgres row locks", "Intro", "episode")]
        assert await store._all("SELECT rowid FROM catalog_fts WHERE catalog_fts MATCH 'mvcc'") == []
        assert await store._all("SELECT rowid FROM chapters_fts WHERE chapters_fts MATCH 'mvcc'") == []
        # The chapter index holds exactly the current chapters: one row each, none left over.
        assert [tuple(r) for r in await store._all("SELECT rowid, title FROM chapters_fts")] == [
            (stored.id * 10_000, "Intro")]


async def test_migration_4_drops_the_insert_trigger_and_chapters_stay_searchable(tmp_path: Path) -> None:
    from bot.models import Chapter
    from bot.storage.sqlite.schema import MIGRATIONS
    from bot.storage.sqlite.base import split_sql as _split_sql

    path = tmp_path / "v3.db"
    con = sqlite3.connect(path)  # a database as schema version 3 left it, with one chapter
    for migration in MIGRATIONS[:3]:
        for statement in _split_sql(migration):
            con.execute(statement)
    con.execute("PRAGMA user_version = 3")
    con.execute("INSERT INTO sources (id, name, kind, content, every_s, max_age_s, created_at) "
                "VALUES (1, 'old', 'rss', 'episode', 900, 86400, '2026-01-01')")
    con.execute("INSERT INTO items (id, source_id, identity, content_hash, kind, title, first_seen_at) "
                "VALUES (7, 1, 'guid:a', 'h', 'episode', 'Old one', '2026-01-01')")
    con.execute("INSERT INTO chapters VALUES (7, 0, 95, 'Spinlocks explained')")  # the trigger indexes it
    con.commit()
    con.close()
    async with await SqliteStorage.open(path) as store:
        assert await store._all("SELECT name FROM sqlite_master WHERE name = 'chapters_fts_insert'") == []
        source = await store.add_source(spec(), NOW)
        new = [replace(items(1)[0], chapters=(Chapter(0, "Intro"), Chapter(90, "Spinlocks again")))]
        d = decide(spec=source.spec, synced=False, known=[], fetched=new, now=NOW)
        await write_decision(store, source, d, now=NOW, next_poll_at=NOW, etag=None, last_modified=None, body_hash="1")
        (stored,) = [i for i in await store.latest_items() if i.source_name == "podcast"]
        hits = await store._all("SELECT rowid FROM chapters_fts WHERE chapters_fts MATCH 'spinlocks' ORDER BY rowid")
        assert [r[0] for r in hits] == [70_000, stored.id * 10_000 + 1]  # the old row and the new, once each


def _old_database(path: Path, version: int, vectors_sql: str) -> None:
    """A SQLite file at schema ``version`` holding one source, one item (id 7,
    content hash 'h') and the vectors ``vectors_sql`` inserts, as an older
    bot left it."""
    from bot.storage.sqlite.base import split_sql
    from bot.storage.sqlite.schema import MIGRATIONS

    con = sqlite3.connect(path)
    for migration in MIGRATIONS[:version]:
        for statement in split_sql(migration):
            con.execute(statement)
    con.execute(f"PRAGMA user_version = {version}")
    con.execute("INSERT INTO sources (id, name, kind, content, every_s, max_age_s, created_at) "
                "VALUES (1, 'old', 'rss', 'episode', 900, 86400, '2026-01-01')")
    con.execute("INSERT INTO items (id, source_id, identity, content_hash, kind, title, first_seen_at) "
                "VALUES (7, 1, 'guid:a', 'h', 'episode', 'Old one', '2026-01-01')")
    con.execute(vectors_sql)
    con.commit()
    con.close()


async def test_the_doc_chars_migration_drops_the_600_character_vectors(tmp_path: Path) -> None:
    """Item vectors are made of the first 300 characters of the show notes
    now (bot/hybrid.py DOC_CHARS): the rows of the 600-character recipe are
    dropped, so the backfill re-embeds every item and none keeps the old one."""
    from bot.storage.sqlite.schema import MIGRATIONS

    assert "DELETE FROM item_vectors" in MIGRATIONS[-1]
    path = tmp_path / "before.db"
    _old_database(path, SCHEMA_VERSION - 1, "INSERT INTO item_vectors VALUES (7, 'h', x'803f', x'', 0)")
    async with await SqliteStorage.open(path) as store:
        assert await store.find_vectors([7]) == {}
        assert [j.item_id for j in await store.items_needing_vectors(10)] == [7]


async def test_migration_14_drops_the_float16_vectors_and_the_items_are_due_again(tmp_path: Path) -> None:
    """bfloat16 replaced float16 (bot/hybrid.py as_stored): an old row would
    read as noise, so it is dropped and the item is due for the backfill."""
    path = tmp_path / "v13.db"
    _old_database(path, 13, "INSERT INTO item_vectors VALUES (7, 'h', x'003c', x'', 0)")  # float16 1.0
    async with await SqliteStorage.open(path) as store:
        assert await store.find_vectors([7]) == {}
        assert [j.item_id for j in await store.items_needing_vectors(10)] == [7]


async def test_migration_13_drops_the_per_chapter_vectors_and_the_items_are_due_again(tmp_path: Path) -> None:
    """Vectors are derived data: the old layout (a row per chapter, float32)
    is dropped, not converted, and the items come back as due so the next
    start's backfill embeds them in the new one."""
    from bot.storage.records import ItemVectors

    path = tmp_path / "v12.db"
    _old_database(path, 12, "INSERT INTO item_vectors VALUES (7, -1, 'h', x'00000000'), (7, 0, 'h', x'00000000')")
    async with await SqliteStorage.open(path) as store:
        assert [j.item_id for j in await store.items_needing_vectors(10)] == [7]
        await store.put_vectors([ItemVectors.of(7, "h", b"it", (b"c0", b"c1", b"c2"))])
        assert await store.items_needing_vectors(10) == []
        assert await store.find_vectors([7]) == {7: b"it"}
        assert await store.chapter_vectors([7]) == {7: [b"c0", b"c1", b"c2"]}
        assert [tuple(r) for r in await store._all("SELECT item_id, chapter_count FROM item_vectors")] == [(7, 3)]
