"""Documents an item links to (bot.documents), and transcript search, on SQLite.

``item_documents`` holds each (item, kind)'s state; JSON chapters replace
the item's rows in ``chapters`` (and its search index rows, as an edit
does); transcript passages go to ``transcript_segments``, indexed by
``transcript_fts`` (external content, kept by triggers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import aiosqlite

from bot.documents import DocumentState, DocumentWrite, TranscriptHit, chapters_from_json, chapters_to_json
from bot.models import Chapter, ContentKind, DocumentKind
from bot.search import Query
from bot.storage.sqlite import rows
from bot.storage.sqlite.base import from_db_time, to_db_time
from bot.storage.sqlite.catalog import CatalogTable, fts_all
from bot.storage.sqlite.polls import _update_item

# Passages one search ranks before keeping each item's best: enough that a
# word said in many passages of one episode does not crowd out the others.
_CANDIDATES = 200

_SEARCH_SQL = (
    "SELECT t.item_id, t.start_s, t.text, f.score FROM "
    "(SELECT rowid, -bm25(transcript_fts) AS score FROM transcript_fts WHERE transcript_fts MATCH ? "
    "ORDER BY score DESC LIMIT ?) f "
    "JOIN transcript_segments t ON t.id = f.rowid JOIN items i ON i.id = t.item_id "
    "WHERE ? IS NULL OR i.kind = ? ORDER BY f.score DESC, t.start_s"
)


class DocumentsTable(CatalogTable):
    async def load_documents(self, source_id: int) -> list[DocumentState]:
        found = await self._all(
            "SELECT d.item_id, d.kind, d.url, d.media_type, d.fetched_url, d.attempts, d.retry_at, d.last_error, "
            "d.content FROM item_documents d JOIN items i ON i.id = d.item_id WHERE i.source_id = ? "
            "ORDER BY d.item_id, d.kind", (source_id,))
        return [
            DocumentState(r[0], DocumentKind(r[1]), r[2], r[3], r[4], r[5], from_db_time(r[6]), r[7],
                          chapters_from_json(r[8]) if r[1] == DocumentKind.CHAPTERS.value else ())
            for r in found
        ]

    async def write_documents(self, writes: Sequence[DocumentWrite]) -> None:
        if not writes:
            return
        async with self._tx("storing fetched documents") as db:
            for w in writes:
                async with db.execute("SELECT 1 FROM items WHERE id = ?", (w.item_id,)) as cur:
                    if await cur.fetchone() is None:
                        continue  # the item was removed meanwhile (its source deleted)
                await _write_one(db, w)

    async def search_transcripts(
        self, query: Query, kind: ContentKind | None = None, *, limit: int = 5
    ) -> list[TranscriptHit]:
        if query.empty or limit <= 0:
            return []
        kind_value = kind.value if kind is not None else None
        found = await self._all(_SEARCH_SQL, (fts_all(query), _CANDIDATES, kind_value, kind_value),
                                doing="searching transcripts")
        best: dict[int, tuple[int, str, float]] = {}
        for item_id, start_s, text, score in found:  # best score first, earliest on a tie
            if item_id not in best:
                best[item_id] = (start_s, text, float(score))
            if len(best) >= limit:
                break
        items = await self.items_by_id(list(best))
        return [TranscriptHit(items[i], s, t, score) for i, (s, t, score) in best.items() if i in items]


async def _write_one(db: aiosqlite.Connection, w: DocumentWrite) -> None:
    at = to_db_time(w.at)
    if w.outcome == "withdrawn":
        await db.execute("DELETE FROM item_documents WHERE item_id = ? AND kind = ?", (w.item_id, w.kind.value))
        if w.kind is DocumentKind.TRANSCRIPT:
            await db.execute("DELETE FROM transcript_segments WHERE item_id = ?", (w.item_id,))
        if w.chapters is not None:
            await _replace_chapters(db, w.item_id, w.chapters)
        return
    if w.outcome == "declared":
        await db.execute(
            "INSERT INTO item_documents (item_id, kind, url, media_type) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (item_id, kind) DO UPDATE SET url = excluded.url, media_type = excluded.media_type, "
            "attempts = 0, last_error = NULL, retry_at = NULL",
            (w.item_id, w.kind.value, w.url, w.media_type))
        return
    if w.outcome == "failed":
        await db.execute(
            "INSERT INTO item_documents (item_id, kind, url, media_type, attempts, last_error, retry_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id, kind) DO UPDATE SET url = excluded.url, "
            "media_type = excluded.media_type, attempts = excluded.attempts, last_error = excluded.last_error, "
            "retry_at = excluded.retry_at",
            (w.item_id, w.kind.value, w.url, w.media_type, w.attempts, w.error, to_db_time(w.retry_at)))
        return
    content = chapters_to_json(w.chapters) if w.chapters is not None else None
    await db.execute(
        "INSERT INTO item_documents (item_id, kind, url, media_type, fetched_url, fetched_at, content) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id, kind) DO UPDATE SET url = excluded.url, "
        "media_type = excluded.media_type, fetched_url = excluded.fetched_url, fetched_at = excluded.fetched_at, "
        "content = excluded.content, attempts = 0, last_error = NULL, retry_at = NULL",
        (w.item_id, w.kind.value, w.url, w.media_type, w.url, at, content))
    if w.chapters is not None:
        await _replace_chapters(db, w.item_id, w.chapters)
    if w.segments is not None:
        await db.execute("DELETE FROM transcript_segments WHERE item_id = ?", (w.item_id,))
        await db.executemany(
            "INSERT INTO transcript_segments (item_id, start_s, end_s, text) VALUES (?, ?, ?, ?)",
            [(w.item_id, s.start_s, s.end_s, s.text) for s in w.segments])


async def _replace_chapters(db: aiosqlite.Connection, item_id: int, chapters: tuple[Chapter, ...]) -> None:
    """The item rewritten as an edit would, with these chapters and its
    stored content hash (the feed's own version is what the next poll
    compares against, so this is not an edit to detect)."""
    async with db.execute(
        f"SELECT {rows.ITEM_COLUMNS}, i.content_hash FROM items i JOIN sources s ON s.id = i.source_id "
        "WHERE i.id = ?", (item_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return
    async with db.execute("SELECT start_s, title FROM chapters WHERE item_id = ? ORDER BY position",
                          (item_id,)) as cur:
        if tuple(Chapter(r[0], r[1]) for r in await cur.fetchall()) == chapters:
            # Already stored (fetched before the poll's write, which stored
            # them; the poll then saved their vectors): nothing to redo.
            return
    stored = rows.stored_item(row, ())
    await _update_item(db, item_id, stored.identity, replace(stored.item, chapters=chapters), row[-1])
    # Its search vectors were of the old chapters (the content hash stays the
    # feed's, so nothing else would make them due): embedded again.
    await db.execute("DELETE FROM item_vectors WHERE item_id = ?", (item_id,))
