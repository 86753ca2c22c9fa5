"""Items as the catalogue reads them, and search in SQLite's dialect (FTS5).

Search: ``bot.search.Query`` is rendered here into an FTS5 MATCH string
built ONLY from double-quoted tokens the core extracted, and passed as a
parameter, so member input can never be FTS syntax. Ranking is bm25 with
WEIGHTS (title > chapter titles > description), recency breaking near-ties,
and a relevance floor in bm25 units (``SUMMARY_FLOOR``): a hit whose terms
appear only in the description must score at least that.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from bot.models import Chapter, ContentKind, StoredItem
from bot.search import Phrase, Query, Term
from bot.storage.ranking import rank_hits
from bot.storage.records import ChapterHit, KindStats, SearchHit, SourceFacts
from bot.storage.sqlite import rows
from bot.storage.sqlite.base import SqliteBase, from_db_time
from bot.storage.sqlite.schema import CHAPTER_ROWID_SPAN

# bm25 column weights for catalog_fts(title, chapters, summary).
WEIGHTS = (10.0, 4.0, 1.0)
# A hit whose query terms appear only in the description must score at least
# this (-bm25 with WEIGHTS). A rare word mentioned once in a long description
# scores ~1.5; the same word in a short description about it scores 3+.
SUMMARY_FLOOR = 2.5
# Scores equal to this many digits are a tie, broken by recency.
TIE_DIGITS = 2


def _quote(phrase: Phrase) -> str:
    # Tokens are [^\W_]+ so they hold no '"'; doubling is belt and braces.
    return '"' + " ".join(phrase).replace('"', '""') + '"'


def fts_term(term: Term) -> str:
    quoted = [_quote(p) + ("*" if term.prefix else "") for p in term.alternatives]
    return quoted[0] if len(quoted) == 1 else "(" + " OR ".join(quoted) + ")"


def fts_all(query: Query) -> str:
    """Every term must match (what an item search runs)."""
    return " AND ".join(fts_term(t) for t in query.terms)


def fts_any(query: Query) -> str:
    """Any term may match (chapter titles are short: one term is a hit)."""
    return " OR ".join(fts_term(t) for t in query.terms)


_W_TITLE, _W_CHAPTERS, _W_SUMMARY = WEIGHTS
# One statement per search: rank (the inner query alone decides which rows
# are kept), join each hit's publication date for the tie-break, and keep a
# hit below the score floor only when a term is in its title or chapter
# titles (?4: the query's terms, any of them, in those columns; its rowids
# are looked up once). FTS5 decides that with its own tokenizer, so the rows
# carry no titles for bot.storage.ranking to check: the catalogue's weak
# hits (~130 of 143 for "cache" among episodes) used to come back with their
# titles and chapter titles, each checked in Python (~1 ms a search), and
# the statement ran 1.3-1.5x slower ("backend" over every document: 21.5 ->
# 14.6 ms), for the same hits.
_SEARCH_SQL = (
    "SELECT f.rowid, f.score, i.published_at, {exact}, NULL, NULL "
    f"FROM (SELECT rowid, -bm25(catalog_fts, {_W_TITLE}, {_W_CHAPTERS}, {_W_SUMMARY}, 0.0) AS score "
    "FROM catalog_fts WHERE catalog_fts MATCH ?2 ORDER BY score DESC LIMIT ?3) f "
    "JOIN items i ON i.id = f.rowid "
    "WHERE f.score >= ?1 OR f.rowid IN (SELECT rowid FROM catalog_fts WHERE catalog_fts MATCH ?4)"
)
# With a prefix term: whether the hit matches the query with every word
# whole (a rowid look-up per hit in the exact query's doclist).
_SEARCH_PREFIX_SQL = _SEARCH_SQL.format(
    exact="f.rowid IN (SELECT rowid FROM catalog_fts WHERE catalog_fts MATCH ?5)")
_SEARCH_SQL = _SEARCH_SQL.format(exact="1")
_ITEM_WIDTH = rows.ITEM_COLUMNS.count(",") + 1
_CHAPTER_PAD = ", NULL" * (_ITEM_WIDTH - 5)


class CatalogTable(SqliteBase):
    async def _chapters(self, item_ids: Sequence[int]) -> dict[int, tuple[Chapter, ...]]:
        out: dict[int, list[Chapter]] = {}
        # Position order per item holds across chunks: an item's chapters are all in its chunk.
        for r in await self._all_in(
                "SELECT item_id, start_s, title FROM chapters WHERE item_id IN ({marks}) ORDER BY item_id, position",
                item_ids):
            out.setdefault(r[0], []).append(Chapter(r[1], r[2]))
        return {k: tuple(v) for k, v in out.items()}

    async def _with_chapters(self, found: Sequence[sqlite3.Row]) -> list[StoredItem]:
        chapters = await self._chapters([r[0] for r in found]) if found else {}
        return [rows.stored_item(r, chapters.get(r[0], ())) for r in found]

    async def find_item(self, item_id: int) -> StoredItem | None:
        return (await self.items_by_id([item_id])).get(item_id)

    async def items_by_id(self, item_ids: Sequence[int]) -> dict[int, StoredItem]:
        found = await self._all_in(
            f"SELECT {rows.ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id WHERE i.id IN ({{marks}})",
            item_ids)
        return {stored.id: stored for stored in await self._with_chapters(found)}

    async def find_titles(self, item_ids: Sequence[int]) -> dict[int, str]:
        return {r[0]: r[1] for r in await self._all_in("SELECT id, title FROM items WHERE id IN ({marks})", item_ids)}

    async def latest_items(self, kind: ContentKind | None = None, limit: int = 5, offset: int = 0) -> list[StoredItem]:
        where = "WHERE i.kind = ?" if kind else ""
        params: list[object] = [kind.value] if kind else []
        found = await self._all(
            f"SELECT {rows.ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id {where} "
            "ORDER BY i.published_at IS NULL, i.published_at DESC, i.id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return await self._with_chapters(found)

    async def count_items(self, kind: ContentKind | None = None, *, source_id: int | None = None) -> int:
        clauses: list[str] = []
        params: list[object] = []
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind.value)
        if source_id is not None:
            clauses.append("source_id = ?")
            params.append(source_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        row = await self._one(f"SELECT count(*) FROM items {where}", params)
        return int(row[0])

    async def episode_by_number(self, number: int) -> StoredItem | None:
        if not 0 <= number < 2**62:
            return None
        row = await self._one(
            "SELECT i.id FROM items i WHERE i.episode_number = ? "
            "ORDER BY i.kind != 'episode', i.published_at DESC LIMIT 1",
            (number,),
        )
        return await self.find_item(row[0]) if row else None

    async def episode_number_range(self) -> tuple[int, int] | None:
        row = await self._one(
            "SELECT min(episode_number), max(episode_number) FROM items WHERE episode_number IS NOT NULL")
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    async def item_at(self, kind: ContentKind | None, offset: int) -> StoredItem | None:
        where = "WHERE kind = ?" if kind else ""
        params: list[object] = [kind.value] if kind else []
        row = await self._one(f"SELECT id FROM items {where} ORDER BY published_at, id LIMIT 1 OFFSET ?",
                              (*params, offset))
        return await self.find_item(row[0]) if row else None

    async def kind_stats(self) -> list[KindStats]:
        found = await self._all(
            "SELECT kind, count(*), min(published_at), max(published_at), coalesce(sum(duration_s), 0) "
            "FROM items GROUP BY kind ORDER BY count(*) DESC"
        )
        return [KindStats(r[0], r[1], from_db_time(r[2]), from_db_time(r[3]), r[4]) for r in found]

    async def title_words(self) -> list[str]:
        return [r[0] for r in await self._all("SELECT title FROM items")]

    async def catalogue_version(self) -> tuple[int, int]:
        row = await self._one("SELECT count(*), coalesce(max(id), 0) FROM items")
        return int(row[0]), int(row[1])

    async def source_facts(self) -> dict[int, SourceFacts]:
        found = await self._all(
            "SELECT s.id, (SELECT count(*) FROM items i WHERE i.source_id = s.id), "
            "(SELECT max(e.created_at) FROM events e WHERE e.source_id = s.id AND e.purpose = 'announce' "
            "AND e.kind <> 'edit'), "
            "(SELECT i.first_seen_at || char(31) || i.title FROM items i WHERE i.source_id = s.id "
            " ORDER BY i.first_seen_at DESC, i.published_at DESC, i.id LIMIT 1), "
            "(SELECT max(o.sent_at) FROM outbox o JOIN events e ON e.id = o.event_id "
            " WHERE e.source_id = s.id AND o.status = 'sent') FROM sources s"
        )
        out = {}
        for r in found:
            seen, _, title = (r[3] or "").partition("\x1f")
            out[r[0]] = SourceFacts(r[1], from_db_time(r[2]), from_db_time(seen or None), title or None,
                                    from_db_time(r[4]))
        return out

    async def feed_items(self, source_name: str, limit: int = 5) -> list[StoredItem]:
        found = await self._all(
            f"SELECT {rows.ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id WHERE s.name = ? "
            "ORDER BY i.published_at IS NULL, i.published_at DESC, i.id DESC LIMIT ?",
            (source_name, max(0, limit)),
        )
        return await self._with_chapters(found)

    async def items_mentioning(self, needles: Sequence[str], limit: int = 50) -> list[StoredItem]:
        wanted = [n for n in needles if n.strip()][:20]
        if not wanted:
            return []

        def like(n: str) -> str:
            # With ESCAPE below: a needle is matched as text, never as a LIKE pattern.
            return "%" + n.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clause = " OR ".join(["i.title LIKE ? ESCAPE '\\' OR i.summary LIKE ? ESCAPE '\\'"] * len(wanted))
        params = [p for n in wanted for p in (like(n), like(n))]
        found = await self._all(
            f"SELECT {rows.ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id WHERE {clause} "
            "ORDER BY i.published_at IS NULL, i.published_at DESC, i.id DESC LIMIT ?",
            (*params, max(0, limit)), doing="looking for book items",
        )
        return await self._with_chapters(found)

    # -- search -------------------------------------------------------------------

    async def search(self, query: Query, kind: ContentKind | None = None, *, limit: int = 200) -> list[SearchHit]:
        if query.empty:
            return []
        # The member's terms are limited to the text columns and the kind is
        # ANDed in as a token of the ``kind`` column: "episodes on X" is an
        # intersection inside FTS5, not a ranking of every post mentioning X.
        kind_clause = f' AND kind : "{kind.value}"' if kind is not None else ""  # an enum value, never member text
        scope = f"{{title chapters summary}} : ({fts_all(query)}){kind_clause}"
        titles = f"{{title chapters}} : ({fts_any(query)}){kind_clause}"
        if query.has_prefix:
            exact = f"{{title chapters summary}} : ({fts_all(query.exact())}){kind_clause}"
            found = await self._all(_SEARCH_PREFIX_SQL, (SUMMARY_FLOOR, scope, limit, titles, exact),
                                    doing="searching")
        else:
            found = await self._all(_SEARCH_SQL, (SUMMARY_FLOOR, scope, limit, titles), doing="searching")
        return rank_hits(((r[0], r[1], from_db_time(r[2]) if r[2] else None, r[3], r[4], r[5]) for r in found),
                         query, floor=SUMMARY_FLOOR, tie_digits=TIE_DIGITS)

    async def search_chapters(
        self, query: Query, kind: ContentKind | None = None, *, limit: int = 200
    ) -> list[ChapterHit]:
        if query.empty or limit <= 0:
            return []
        kind_value = kind.value if kind is not None else None
        found = await self._all(
            "SELECT f.rowid, f.score FROM (SELECT rowid, -bm25(chapters_fts) AS score FROM chapters_fts "
            "WHERE chapters_fts MATCH ?) f "
            f"JOIN items i ON i.id = f.rowid / {CHAPTER_ROWID_SPAN} WHERE ? IS NULL OR i.kind = ? "
            "ORDER BY f.score DESC, f.rowid LIMIT ?",
            (fts_any(query), kind_value, kind_value, limit), doing="searching chapters")
        return [ChapterHit(r // CHAPTER_ROWID_SPAN, r % CHAPTER_ROWID_SPAN, float(score)) for r, score in found]

    async def page_items(
        self, ids: Sequence[int], query: Query | None, limit: int = 5
    ) -> list[tuple[StoredItem, list[Chapter]]]:
        """One statement for the whole page: the items, and (tagged 1, padded to
        the items' width) every chapter of them with its chapter-title score
        from one chapters_fts MATCH over the page's rowid range."""
        if not ids:
            return []
        fts = fts_any(query) if query is not None and not query.empty else None
        marks = ",".join("?" * len(ids))
        if fts is None:
            chapters_sql = f"SELECT 1, c.item_id, c.position, c.start_s, c.title, NULL{_CHAPTER_PAD} FROM chapters c "
            chapter_params: tuple[object, ...] = ()
        else:
            chapters_sql = (
                f"SELECT 1, c.item_id, c.position, c.start_s, c.title, m.score{_CHAPTER_PAD} FROM chapters c "
                "LEFT JOIN (SELECT rowid AS r, bm25(chapters_fts) AS score FROM chapters_fts "
                "WHERE chapters_fts MATCH ? AND rowid >= ? AND rowid < ?) m "
                f"ON m.r = c.item_id * {CHAPTER_ROWID_SPAN} + c.position "
            )
            chapter_params = (fts, min(ids) * CHAPTER_ROWID_SPAN, (max(ids) + 1) * CHAPTER_ROWID_SPAN)
        found = await self._all(
            f"SELECT 0, {rows.ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id "
            f"WHERE i.id IN ({marks}) UNION ALL {chapters_sql}WHERE c.item_id IN ({marks}) ORDER BY 1, 2, 3",
            (*ids, *chapter_params, *ids),
            doing="searching" if fts is not None else "reading",
        )
        items: list[sqlite3.Row] = []
        chapters: dict[int, list[Chapter]] = {}
        scored: dict[int, list[tuple[float, int, Chapter]]] = {}
        for r in found:
            if r[0] == 0:
                items.append(r[1:])  # type: ignore[arg-type]  # the item columns, without the tag
                continue
            _, item_id, position, start_s, title, score = r[:6]
            chapter = Chapter(start_s, title)
            chapters.setdefault(item_id, []).append(chapter)
            if score is not None:
                scored.setdefault(item_id, []).append((score, position, chapter))
        by_id = {}
        for r in items:
            matched = sorted(scored.get(r[0], ()), key=lambda m: (m[0], m[1]))[:limit]
            by_id[r[0]] = (rows.stored_item(r, tuple(chapters.get(r[0], ()))), [c for _, _, c in matched])
        return [by_id[i] for i in ids if i in by_id]
