"""Search vectors per item and per chapter (issue #15, bot/hybrid.py): derived
data, keyed by the item's content hash so an edited item is re-embedded. One
row per item: its own vector and its chapters' concatenated (they are all
one length), so a 540-episode feed is 540 rows, not 5,940."""

from __future__ import annotations

from collections.abc import Sequence

from bot.storage.records import ItemVectors, VectorJob, split_chapters
from bot.storage.sqlite.base import SqliteBase, all_in


class VectorsTable(SqliteBase):
    async def items_needing_vectors(self, limit: int = 64, *, after_id: int = 0,
                                    summary_chars: int = 300) -> list[VectorJob]:
        # On the write connection, between writes: this background read
        # (a batch of items with their chapters) must not queue members'
        # replies behind it on the read connection (bench_poll's semantic rows).
        async with self._lock, self._errors("reading items to embed"):
            found = list(await self._conn.execute_fetchall(
                "SELECT i.id, i.content_hash, i.title, substr(i.summary, 1, ?) FROM items i "
                "LEFT JOIN item_vectors v ON v.item_id = i.id "
                "WHERE i.id > ? AND (v.item_id IS NULL OR v.content_hash != i.content_hash) ORDER BY i.id LIMIT ?",
                (max(0, summary_chars), after_id, max(0, limit))))
            titles: dict[int, list[str]] = {}
            for r in await all_in(self._conn, "SELECT item_id, title FROM chapters WHERE item_id IN ({marks}) "
                                  "ORDER BY item_id, position", [r[0] for r in found]):
                titles.setdefault(r[0], []).append(r[1])
        return [VectorJob(r[0], r[1], r[2], r[3] or "", tuple(titles.get(r[0], ()))) for r in found]

    async def put_vectors(self, vectors: Sequence[ItemVectors]) -> None:
        if not vectors:
            return
        # One statement for the batch, each row written only while the item
        # still has that content -- an edit in the meantime leaves it to be
        # embedded again; a removed item, nothing.
        async with self._tx("saving search vectors") as db:
            await db.executemany(
                "INSERT OR REPLACE INTO item_vectors (item_id, content_hash, vector, chapters, chapter_count) "
                "SELECT id, content_hash, ?, ?, ? FROM items WHERE id = ? AND content_hash = ?",
                [(v.item, v.chapters, v.chapter_count, v.item_id, v.content_hash) for v in vectors],
            )

    async def find_vectors(self, item_ids: Sequence[int]) -> dict[int, bytes]:
        found = await self._all_in("SELECT item_id, vector FROM item_vectors WHERE item_id IN ({marks})", item_ids)
        return {r[0]: bytes(r[1]) for r in found}

    async def chapter_vectors(self, item_ids: Sequence[int]) -> dict[int, list[bytes]]:
        found = await self._all_in(
            "SELECT item_id, chapters, chapter_count FROM item_vectors "
            "WHERE chapter_count > 0 AND item_id IN ({marks})", item_ids)
        return {r[0]: split_chapters(bytes(r[1]), r[2]) for r in found}

