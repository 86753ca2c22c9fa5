"""PostgreSQL's search statement and the storage it reads (bench/bench_search
measures them; the answers are the storage contract's, tests/test_search.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from bot.models import ContentKind
from bot.search import parse_query
from tests.backends import PgRun, open_target, run_of

if TYPE_CHECKING:
    import pytest

    from bot.models import Item
    from bot.storage import Storage

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=timezone.utc)
# 250 distinct words: a 3.5 KB vector, as an episode's show notes make.
LONG_TEXT = " ".join(f"w{k:04d}x" for k in range(250)) + " postgres"


async def test_pg_episode_search_reads_the_episodes_index_also_as_a_generic_plan(pg_url: str) -> None:
    """A prepared statement may be planned once for every parameter value
    (after five runs PostgreSQL may keep that plan): the episode search must
    still read the episodes' own GIN index then, so the kind is in its text,
    and parse its queries once, not per row."""
    import asyncpg

    from bot.storage.postgres.catalog import search_sql
    from bot.storage.postgres.schema import TS_CONFIG

    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("INSERT INTO sources (name, kind, content, every_s, max_age_s, created_at) "
                           "VALUES ('pod', 'rss', 'episode', 3600, 0, $1)", NOW)
        # 300 episodes among 3,000 posts, one word in a hundred of them.
        await conn.execute(
            "INSERT INTO items (source_id, identity, content_hash, kind, title, first_seen_at, search, search_len) "
            "SELECT 1, k::text, 'h', CASE WHEN k % 11 = 0 THEN 'episode' ELSE 'post' END, 't', $1, "
            f"to_tsvector('{TS_CONFIG}', 'word' || (k % 100)::text || ' common'), 2 "
            "FROM generate_series(1, 3300) AS k", NOW)
        await conn.execute("ANALYZE items")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE episodes AS {search_sql(ContentKind.EPISODE, 1)}")
        plan = "\n".join(r[0] for r in await conn.fetch(
            "EXPLAIN EXECUTE episodes('word7', ARRAY['word7'], ARRAY[33.0], 200, 0.288, NULL)"))
    finally:
        await conn.close()
    assert "Bitmap Index Scan on items_search_episode" in plan, plan
    assert "Index Cond: (search @@ w.q)" in plan, plan  # the query parsed once, in the CTE


async def test_pg_migration_moves_long_search_vectors_into_their_rows(pg_run: PgRun | None) -> None:
    """Migration 'episode search within 5 ms': a vector stored out of line
    (TOAST, read again by every ts_rank) is rewritten into its row, and the
    item is found as before."""
    import asyncpg

    from bot.storage.postgres.schema import MIGRATIONS, TS_CONFIG

    url = await run_of(pg_run).create_database("showbot_test_toast")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                           "applied_at timestamptz NOT NULL DEFAULT now())")
        # The schema just before that migration (later ones may follow it).
        mine = next(k for k, script in enumerate(MIGRATIONS) if "items_search_episode" in script)
        for version, script in enumerate(MIGRATIONS[:mine], start=1):
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
        await conn.execute("INSERT INTO sources (name, kind, content, every_s, max_age_s, created_at) "
                           "VALUES ('pod', 'rss', 'episode', 3600, 0, $1)", NOW)
        await conn.execute(
            "INSERT INTO items (source_id, identity, content_hash, kind, title, summary, first_seen_at, search, "
            f"search_len) VALUES (1, 'g1', 'h', 'episode', 'Postgres notes', 'x', $2, to_tsvector('{TS_CONFIG}', $1), 251)",
            LONG_TEXT, NOW)
        await conn.execute("UPDATE search_stats SET items = 1, words = 251")

        async def toasted() -> int:
            toast = await conn.fetchval("SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'items'")
            return int(await conn.fetchval(f"SELECT count(*) FROM {toast}"))

        assert await toasted() > 0  # the vector: nothing else in the row is long
        store = await open_target(url)
        try:
            assert await toasted() == 0
            hits = await store.search(parse_query("postgres"), ContentKind.EPISODE)
            assert [h.item_id for h in hits] == [1]
        finally:
            await store.close()
    finally:
        await conn.close()


async def test_pg_doc_chars_migration_drops_the_600_character_vectors(pg_run: PgRun | None) -> None:
    """As on SQLite: the vectors of the 600-character recipe are dropped at
    open and the item is due for the backfill."""
    import asyncpg

    from bot.storage.postgres.schema import MIGRATIONS

    assert "DELETE FROM item_vectors" in MIGRATIONS[-1]
    url = await run_of(pg_run).create_database("showbot_test_docchars")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                           "applied_at timestamptz NOT NULL DEFAULT now())")
        for version, script in enumerate(MIGRATIONS[:-1], start=1):
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
        await conn.execute("INSERT INTO sources (name, kind, content, every_s, max_age_s, created_at) "
                           "VALUES ('pod', 'rss', 'episode', 3600, 0, $1)", NOW)
        item_id = await conn.fetchval(
            "INSERT INTO items (source_id, identity, content_hash, kind, title, summary, first_seen_at) "
            "VALUES (1, 'g1', 'h', 'episode', 'Postgres notes', 'x', $1) RETURNING id", NOW)
        await conn.execute("INSERT INTO item_vectors (item_id, content_hash, vector, chapters, chapter_count) "
                           "VALUES ($1, 'h', '\\x803f'::bytea, ''::bytea, 0)", item_id)
    finally:
        await conn.close()
    store = await open_target(url)
    try:
        assert await store.find_vectors([item_id]) == {}
        assert [j.item_id for j in await store.items_needing_vectors(10)] == [item_id]
    finally:
        await store.close()


async def test_pg_search_on_a_catalogue_never_analyzed_is_not_jit_compiled(pg_run: PgRun | None) -> None:
    """Before autovacuum first analyzes a new database the planner guesses
    1,810 rows of search_stats (its one row): the search's estimated cost
    then passed jit_above_cost and each search spent ~0.7 s compiling
    (bench_quality on PostgreSQL took minutes)."""
    import asyncpg

    from bot.storage.postgres.catalog import search_sql

    url = await run_of(pg_run).create_database("showbot_test_fresh")
    await (await open_target(url)).close()  # migrated, never analyzed
    conn = await asyncpg.connect(url)
    try:
        plan = "\n".join(r[0] for r in await conn.fetch(
            f"EXPLAIN {search_sql(None, 3)}", "postgr | pg", ["postgr", "pg", "x"], [1.0, 1.0, 1.0], 200, 0.288, None))
    finally:
        await conn.close()
    assert "JIT" not in plan, plan


def _episodes(n: int) -> list["Item"]:
    from bot.models import Item

    return [Item(guid=f"ep{k}", title=f"Episode {k}: postgres and kafka", link=f"https://pod.example.org/{k}",
                 summary=LONG_TEXT, published_at=NOW) for k in range(n)]


async def _store_episodes(store: "Storage", n: int, name: str = "pod") -> None:
    from bot.detect import decide
    from bot.models import SourceSpec
    from tests.spine import write_decision

    spec = SourceSpec(name, "rss", f"https://{name}.example.org/rss", ContentKind.EPISODE)
    source = await store.add_source(spec, NOW)
    decision = decide(spec=spec, synced=False, known=[], fetched=_episodes(n), now=NOW)
    assert len((await write_decision(store, source, decision, now=NOW)).new_items) == n


async def test_pg_a_poll_leaves_no_pending_search_entries(pg_run: PgRun | None) -> None:
    """Both GIN indexes take a write's entries into their pending lists
    (cheap inserts) and the write merges them once committed: no search
    reads a pending list afterwards. gin_clean_pending_list returns the
    pending pages it merged: none are left."""
    import asyncpg

    url = await run_of(pg_run).create_database("showbot_test_pending")
    store = await open_target(url)
    conn = await asyncpg.connect(url)
    try:
        options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'items_search_episode'")
        assert "fastupdate=on" in options
        await _store_episodes(store, 60)
        for index in ("items_search", "items_search_episode"):
            assert await conn.fetchval("SELECT gin_clean_pending_list($1::regclass)", index) == 0, index
        hits = await store.search(parse_query("kafka"), ContentKind.EPISODE)
        assert len(hits) == 60
    finally:
        await conn.close()
        await store.close()


async def test_pg_a_role_that_may_not_merge_the_indexes_still_stores_its_polls(
        pg_run: PgRun | None, caplog: "pytest.LogCaptureFixture") -> None:
    """A bot running as a role that does not own the tables (not the one that
    migrated) cannot merge the pending lists: its polls are stored and found
    all the same, and it says so once, not at every poll."""
    import uuid
    from urllib.parse import urlsplit

    import asyncpg

    run = run_of(pg_run)
    url = await run.create_database("showbot_test_roles")
    name = url.rsplit("/", 1)[-1]
    await (await open_target(url)).close()  # migrated by the owner
    role = f"showbot_test_writer_{uuid.uuid4().hex[:8]}"
    server = urlsplit(run.server_url)
    writer_url = f"postgresql://{role}@{server.hostname}:{server.port or 5432}/{name}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE ROLE "{role}" LOGIN')
        # (CREATE on the schema: opening a store runs CREATE TABLE IF NOT EXISTS schema_migrations.)
        await conn.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
        await conn.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
        await conn.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        store = await open_target(writer_url)
        try:
            with caplog.at_level("WARNING", logger="showbot.storage"):
                await _store_episodes(store, 5, "one")
                await _store_episodes(store, 5, "two")
            assert len(await store.search(parse_query("kafka"), ContentKind.EPISODE)) == 10
        finally:
            await store.close()
        warned = [r for r in caplog.records if "does not own" in r.getMessage()]
        assert len(warned) == 1, [r.getMessage() for r in caplog.records]
    finally:
        await conn.close()
        admin = await asyncpg.connect(run.server_url)
        try:  # the database first (the role's grants go with it), then the role: nothing left on the server
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await admin.close()
