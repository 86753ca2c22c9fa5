"""Search vectors per item and per chapter (issue #15, bot/hybrid.py): derived
data, keyed by the item's content hash so an edited item is re-embedded."""

from __future__ import annotations

from collections.abc import Sequence

from bot.storage.postgres import rows
from bot.storage.postgres.base import PostgresBase
from bot.storage.records import ItemVectors, VectorJob

ITEM_POSITION = -1  # item_vectors.position of the item's own vector


class VectorsTable(PostgresBase):
    async def items_needing_vectors(self, limit: int = 64) -> list[VectorJob]:
        found = await self._all(
            f"SELECT {rows.ITEM_COLUMNS}, i.content_hash FROM items i JOIN sources s ON s.id = i.source_id "
            "LEFT JOIN item_vectors v ON v.item_id = i.id AND v.position = -1 "
            "WHERE v.item_id IS NULL OR v.content_hash != i.content_hash ORDER BY i.id LIMIT $1",
            (max(0, limit),), doing="reading items to embed",
        )
        chapters = await self._chapters([r[0] for r in found])  # type: ignore[attr-defined]
        return [VectorJob(rows.stored_item(r, chapters.get(r[0], ())), r["content_hash"]) for r in found]

    async def put_vectors(self, vectors: Sequence[ItemVectors]) -> None:
        if not vectors:
            return
        async with self._tx("saving search vectors") as conn:
            for v in vectors:
                # Only while the item still has that content: an edit in the
                # meantime leaves it to be embedded again; a removed item, nothing.
                current = await conn.fetchval("SELECT 1 FROM items WHERE id = $1 AND content_hash = $2 FOR UPDATE",
                                              v.item_id, v.content_hash)
                if current is None:
                    continue
                await conn.execute("DELETE FROM item_vectors WHERE item_id = $1", v.item_id)
                await conn.executemany(
                    "INSERT INTO item_vectors (item_id, position, content_hash, vector) VALUES ($1, $2, $3, $4)",
                    [(v.item_id, ITEM_POSITION, v.content_hash, v.item),
                     *((v.item_id, n, v.content_hash, c) for n, c in enumerate(v.chapters))],
                )

    async def find_vectors(self, item_ids: Sequence[int]) -> dict[int, bytes]:
        if not item_ids:
            return {}
        found = await self._all("SELECT item_id, vector FROM item_vectors WHERE position = -1 "
                                "AND item_id = ANY($1::bigint[])", (list(item_ids),))
        return {r[0]: bytes(r[1]) for r in found}

    async def chapter_vectors(self, item_ids: Sequence[int]) -> dict[int, list[bytes]]:
        if not item_ids:
            return {}
        found = await self._all("SELECT item_id, vector FROM item_vectors WHERE position >= 0 "
                                "AND item_id = ANY($1::bigint[]) ORDER BY item_id, position", (list(item_ids),))
        out: dict[int, list[bytes]] = {}
        for r in found:
            out.setdefault(r[0], []).append(bytes(r[1]))
        return out
