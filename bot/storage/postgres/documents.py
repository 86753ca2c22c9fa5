"""Documents an item links to (bot.documents), and transcript search, on PostgreSQL.

As on SQLite: ``item_documents`` holds each (item, kind)'s state, JSON
chapters replace the item's chapters the way an edit does (search vector
included), and transcript passages go to ``transcript_segments``, each
with a tsvector (``search``, GIN-indexed) built from the same folded text
as the catalogue's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import asyncpg

from bot.documents import DocumentState, DocumentWrite, TranscriptHit, chapters_from_json, chapters_to_json
from bot.models import Chapter, ContentKind, DocumentKind
from bot.search import Query
from bot.storage.postgres import rows
from bot.storage.postgres.catalog import CatalogTable, ts_all
from bot.storage.postgres.polls import _update_item
from bot.storage.postgres.schema import TS_CONFIG

_CANDIDATES = 200

_SEARCH_SQL = (
    "SELECT t.item_id, t.start_s, t.text, f.score FROM "
    f"(SELECT id, ts_rank(search, to_tsquery('{TS_CONFIG}', $1)) AS score FROM transcript_segments "
    f"WHERE search @@ to_tsquery('{TS_CONFIG}', $1) ORDER BY score DESC, id LIMIT $2) f "
    "JOIN transcript_segments t ON t.id = f.id JOIN items i ON i.id = t.item_id "
    "WHERE $3::text IS NULL OR i.kind = $3 ORDER BY f.score DESC, t.start_s"
)


class DocumentsTable(CatalogTable):
    async def load_documents(self, source_id: int) -> list[DocumentState]:
        found = await self._all(
            "SELECT d.item_id, d.kind, d.url, d.media_type, d.fetched_url, d.attempts, d.retry_at, d.last_error, "
            "d.content FROM item_documents d JOIN items i ON i.id = d.item_id WHERE i.source_id = $1 "
            "ORDER BY d.item_id, d.kind", (source_id,))
        return [
            DocumentState(r[0], DocumentKind(r[1]), r[2], r[3], r[4], r[5], r[6], r[7],
                          chapters_from_json(r[8]) if r[1] == DocumentKind.CHAPTERS.value else ())
            for r in found
        ]

    async def write_documents(self, writes: Sequence[DocumentWrite]) -> None:
        if not writes:
            return
        async with self._tx("storing fetched documents") as conn:
            for w in writes:
                # Locks the item row: a concurrent removal waits, or has happened.
                if await conn.fetchval("SELECT 1 FROM items WHERE id = $1 FOR UPDATE", w.item_id) is None:
                    continue
                await _write_one(conn, w)

    async def search_transcripts(
        self, query: Query, kind: ContentKind | None = None, *, limit: int = 5
    ) -> list[TranscriptHit]:
        if query.empty or limit <= 0:
            return []
        found = await self._all(_SEARCH_SQL, (ts_all(query), _CANDIDATES, kind.value if kind else None),
                                doing="searching transcripts")
        best: dict[int, tuple[int, str, float]] = {}
        for item_id, start_s, text, score in found:
            if item_id not in best:
                best[item_id] = (int(start_s), text, float(score))
            if len(best) >= limit:
                break
        items = await self.items_by_id(list(best))
        return [TranscriptHit(items[i], s, t, score) for i, (s, t, score) in best.items() if i in items]


async def _write_one(conn: asyncpg.Connection, w: DocumentWrite) -> None:
    if w.outcome == "withdrawn":
        await conn.execute("DELETE FROM item_documents WHERE item_id = $1 AND kind = $2", w.item_id, w.kind.value)
        if w.kind is DocumentKind.TRANSCRIPT:
            await conn.execute("DELETE FROM transcript_segments WHERE item_id = $1", w.item_id)
        if w.chapters is not None:
            await _replace_chapters(conn, w.item_id, w.chapters)
        return
    if w.outcome == "declared":
        await conn.execute(
            "INSERT INTO item_documents (item_id, kind, url, media_type) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (item_id, kind) DO UPDATE SET url = excluded.url, media_type = excluded.media_type, "
            "attempts = 0, last_error = NULL, retry_at = NULL",
            w.item_id, w.kind.value, w.url, w.media_type)
        return
    if w.outcome == "failed":
        await conn.execute(
            "INSERT INTO item_documents (item_id, kind, url, media_type, attempts, last_error, retry_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (item_id, kind) DO UPDATE SET url = excluded.url, "
            "media_type = excluded.media_type, attempts = excluded.attempts, last_error = excluded.last_error, "
            "retry_at = excluded.retry_at",
            w.item_id, w.kind.value, w.url, w.media_type, w.attempts, w.error, w.retry_at)
        return
    content = chapters_to_json(w.chapters) if w.chapters is not None else None
    await conn.execute(
        "INSERT INTO item_documents (item_id, kind, url, media_type, fetched_url, fetched_at, content) "
        "VALUES ($1, $2, $3, $4, $3, $5, $6) ON CONFLICT (item_id, kind) DO UPDATE SET url = excluded.url, "
        "media_type = excluded.media_type, fetched_url = excluded.fetched_url, fetched_at = excluded.fetched_at, "
        "content = excluded.content, attempts = 0, last_error = NULL, retry_at = NULL",
        w.item_id, w.kind.value, w.url, w.media_type, w.at, content)
    if w.chapters is not None:
        await _replace_chapters(conn, w.item_id, w.chapters)
    if w.segments is not None:
        await conn.execute("DELETE FROM transcript_segments WHERE item_id = $1", w.item_id)
        segments = w.segments
        await conn.execute(
            "INSERT INTO transcript_segments (item_id, start_s, end_s, text, search) "
            f"SELECT $1, s, e, t, to_tsvector('{TS_CONFIG}', st) "
            "FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[]) AS u(s, e, t, st)",
            w.item_id, [s.start_s for s in segments], [s.end_s for s in segments], [s.text for s in segments],
            [rows.search_text(s.text) for s in segments])


async def _replace_chapters(conn: asyncpg.Connection, item_id: int, chapters: tuple[Chapter, ...]) -> None:
    """The item rewritten as an edit would, with these chapters and its stored content hash."""
    row = await conn.fetchrow(
        f"SELECT {rows.ITEM_COLUMNS}, i.content_hash FROM items i JOIN sources s ON s.id = i.source_id "
        "WHERE i.id = $1", item_id)
    if row is None:
        return
    found = await conn.fetch("SELECT start_s, title FROM chapters WHERE item_id = $1 ORDER BY position", item_id)
    if tuple(Chapter(r[0], r[1]) for r in found) == chapters:
        # Already stored (fetched before the poll's write, which stored them;
        # the poll then saved their vectors): nothing to redo.
        return
    stored = rows.stored_item(row, ())
    await _update_item(conn, item_id, stored.identity, replace(stored.item, chapters=chapters), row[-1])
    # Its search vectors were of the old chapters (the content hash stays the
    # feed's, so nothing else would make them due): embedded again.
    await conn.execute("DELETE FROM item_vectors WHERE item_id = $1", item_id)
