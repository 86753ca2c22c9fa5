"""Search vectors per item and per chapter (issue #15, bot/hybrid.py): derived
data, keyed by the item's content hash so an edited item is re-embedded. One
row per item, as on SQLite (bot/storage/sqlite/vectors.py)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.storage.postgres.catalog import CatalogTable
from bot.storage.records import ItemVectors, VectorJob, split_chapters


class VectorsTable(CatalogTable):  # its _chapters, as DocumentsTable
    async def items_needing_vectors(self, limit: int = 64, *, after_id: int = 0,
                                    summary_chars: int = 300) -> list[VectorJob]:
        found = await self._all(
            "SELECT i.id, i.content_hash, i.title, substr(i.summary, 1, $1) FROM items i "
            "LEFT JOIN item_vectors v ON v.item_id = i.id "
            "WHERE i.id > $2 AND (v.item_id IS NULL OR v.content_hash != i.content_hash) ORDER BY i.id LIMIT $3",
            (max(0, summary_chars), after_id, max(0, limit)), doing="reading items to embed",
        )
        chapters = await self._chapters([r[0] for r in found])
        return [VectorJob(r[0], r[1], r[2], r[3] or "", tuple(c.title for c in chapters.get(r[0], ())))
                for r in found]

    async def put_vectors(self, vectors: Sequence[ItemVectors]) -> None:
        if not vectors:
            return
        # Only while the item still has that content: an edit in the meantime
        # leaves it to be embedded again; a removed item, nothing.
        async with self._tx("saving search vectors") as conn:
            ids = [v.item_id for v in vectors]
            hashes = [v.content_hash for v in vectors]
            found = {r[0] for r in await conn.fetch(
                "SELECT i.id FROM items i JOIN unnest($1::bigint[], $2::text[]) AS c(id, h) "
                "ON i.id = c.id AND i.content_hash = c.h FOR UPDATE OF i", ids, hashes)}
            keep = [v for v in vectors if v.item_id in found]
            if not keep:
                return
            await conn.execute("DELETE FROM item_vectors WHERE item_id = ANY($1::bigint[])", [v.item_id for v in keep])
            await conn.copy_records_to_table(
                "item_vectors", columns=["item_id", "content_hash", "vector", "chapters", "chapter_count"],
                records=[(v.item_id, v.content_hash, v.item, v.chapters, v.chapter_count) for v in keep])

    async def find_vectors(self, item_ids: Sequence[int]) -> dict[int, bytes]:
        if not item_ids:
            return {}
        found = await self._all("SELECT item_id, vector FROM item_vectors WHERE item_id = ANY($1::bigint[])",
                                (list(item_ids),))
        return {r[0]: bytes(r[1]) for r in found}

    async def chapter_vectors(self, item_ids: Sequence[int]) -> dict[int, list[bytes]]:
        if not item_ids:
            return {}
        found = await self._all("SELECT item_id, chapters, chapter_count FROM item_vectors "
                                "WHERE chapter_count > 0 AND item_id = ANY($1::bigint[])", (list(item_ids),))
        return {r[0]: split_chapters(bytes(r[1]), r[2]) for r in found}
