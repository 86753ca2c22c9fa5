"""Items as the catalogue reads them, and search in PostgreSQL's dialect.

Search: ``bot.search.Query`` is rendered here into a ``to_tsquery`` string
built ONLY from the core's tokens, each single-quoted (tokens are letters
and digits, so they hold no quote or backslash; escaping is belt and
braces), with our own operators between them: ``&`` between terms, ``|``
between a term's alternatives, ``<->`` inside a phrase, ``:*`` on a prefix.
It is passed as a parameter, so member input can never be tsquery syntax.

Each item has one weighted ``tsvector`` (title A, chapter titles B,
description C; see polls.SEARCH_VECTOR). The score is FTS5's bm25 rebuilt
on ``ts_rank`` (SCORE below), because ``ts_rank`` alone has no notion of how
rare a word is nor of document length beyond a logarithm, and no single
ts_rank normalization gave SQLite's answers on the catalogue tests: one
passing mention of a rare word in a very long description ("needle")
out-ranked short descriptions about the topic. Per alternative of each
term: ``ts_rank`` of its words with WEIGHTS (0.1 : 0.4 : 1, SQLite's
1 : 4 : 10) is the weighted frequency, saturated like bm25's
``f(k1+1)/(f + k1 L)`` with a length factor L, times the alternative's
inverse document frequency; the sum over alternatives is the score.
Recency breaks near-ties, and a relevance floor in these units
(``SUMMARY_FLOOR``) applies to hits whose terms are not in their title or
a chapter title (``bot.search.TitleMatcher``, as on SQLite).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

from bot.models import Chapter, ContentKind, StoredItem
from bot.search import Phrase, Query, Term
from bot.storage.postgres import rows
from bot.storage.postgres.base import PostgresBase
from bot.storage.postgres.schema import TS_CONFIG
from bot.storage.ranking import rank_hits
from bot.storage.records import ChapterHit, KindStats, SearchHit, SourceFacts

# ts_rank weights, in PostgreSQL's order {D, C, B, A}: description (C) 0.1,
# chapter titles (B) 0.4, title (A) 1.0 -- SQLite's bm25 weights 1:4:10.
WEIGHTS = "{0, 0.1, 0.4, 1.0}"
# bm25's term-frequency saturation and length normalization, fitted on the
# catalogue fixture (tests/test_search.py) so that every answer there is
# SQLite's: L = (1 - B + B * len/avglen) * (1 + ln len) / (1 + ln avglen).
K1 = 1.0
B = 0.1
# A hit whose query terms appear only in its description must score at
# least this. On the fixture the description-only hits SQLite keeps score
# 0.296 and up here, those it drops (its floor: bm25 2.5) 0.280 and down;
# the floor sits between them.
SUMMARY_FLOOR = 0.288
# Scores this close are a tie, broken by recency (SQLite rounds bm25 to 0.01
# at ~10x these magnitudes).
TIE_DIGITS = 3
# Chapter matches (page_items) rank by plain ts_rank, normalized by the log
# of the title's length: a short title that is the topic first.
CHAPTER_NORMALIZATION = 1


def _lexeme(token: str) -> str:
    folded = rows.fold(token)
    return "'" + folded.replace("\\", "\\\\").replace("'", "''") + "'"


def _phrase(phrase: Phrase, prefix: bool) -> str:
    words = [_lexeme(t) for t in phrase]
    if prefix:
        words[-1] += ":*"
    return words[0] if len(words) == 1 else "(" + " <-> ".join(words) + ")"


def ts_term(term: Term) -> str:
    alternatives = [_phrase(p, term.prefix) for p in term.alternatives if p]
    return alternatives[0] if len(alternatives) == 1 else "(" + " | ".join(alternatives) + ")"


def ts_all(query: Query) -> str:
    """Every term must match (what an item search runs)."""
    return " & ".join(ts_term(t) for t in query.terms)


def ts_any(query: Query) -> str:
    """Any term may match (chapter titles are short: one term is a hit)."""
    return " | ".join(ts_term(t) for t in query.terms)


def ts_alternatives(query: Query) -> tuple[list[str], list[str]]:
    """Per alternative of every term: the tsquery ranking it (its words
    OR'ed, so a phrase counts how often its words occur: ts_rank of a
    phrase measures proximity, not frequency) and the one matching it (for
    its document frequency)."""
    ranked, matched = [], []
    for term in query.terms:
        for phrase in term.alternatives:
            if not phrase:
                continue
            words = [_lexeme(t) + (":*" if term.prefix else "") for t in phrase]
            ranked.append(" | ".join(words))
            matched.append(_phrase(phrase, term.prefix))
    return ranked, matched


# One statement per search. ``w``: the catalogue's size and mean length (one
# row, search_stats), every tsquery of the search parsed once (the match, the
# exact words, each alternative's ranking query) and each alternative's IDF
# from its document frequency (given: see CatalogTable._frequencies). Then the
# matching rows, their score, the best ``$4`` of them, and only for those
# below the floor their title and chapter titles for the ``strong`` check in
# Python.
#
# Why this shape (bench/bench_search, EXPLAIN ANALYZE): the statement is
# prepared, and after five runs PostgreSQL may keep one generic plan for it,
# in which a parameter is not a constant: a ``to_tsquery($n)`` would be
# parsed again for every row it is compared with, and ``kind = $n`` could not
# choose the episodes' own GIN index (items_search_episode). So the queries
# come from ``w``, one row joined to the items (the index scan takes its
# query from it), and the kind is part of the text: one statement per kind.
# Each alternative's ts_rank is its own column (``r``, not flattened: its
# two uses in the score are one evaluation), summed in order in ``scored``:
# the same arithmetic, in the same order, as a sum() over the alternatives,
# without a subplan run for every matching row. Whether a row holds the exact
# words is decided there too: carrying its vector (kept in the row now, see
# schema.py) through the sort would copy kilobytes per row.
_W_ALTERNATIVE = (
    "to_tsquery('{cfg}', ($2::text[])[{j}]) AS rq{j}, "
    "greatest(ln((s.n - ($3::float8[])[{j}] + 0.5) / (($3::float8[])[{j}] + 0.5)), 1e-6) AS idf{j}"
)
_SEARCH_SQL = """
WITH w AS MATERIALIZED (
    SELECT s.n, s.avglen, to_tsquery('{cfg}', $1) AS q,
           CASE WHEN $6::text IS NOT NULL THEN to_tsquery('{cfg}', $6) END AS exact,
           {alternatives}
    FROM (SELECT items::float8 AS n, greatest(words::float8 / greatest(items, 1), 1) AS avglen
          FROM search_stats LIMIT 1) s  -- one row, also to a planner that has no statistics yet
), r AS (
    SELECT i.id, i.title, i.published_at, (w.exact IS NULL OR i.search @@ w.exact) AS exact_hit, {ranks},
           (1 - {b} + {b} * greatest(i.search_len, 1) / w.avglen)
               * (1 + ln(greatest(i.search_len, 1))) / (1 + ln(w.avglen)) AS l
    FROM w JOIN items i ON i.search @@ w.q{kind}
    OFFSET 0
), scored AS (
    SELECT r.id, r.title, r.published_at, r.exact_hit, {score} AS score
    FROM r ORDER BY score DESC LIMIT $4
)
SELECT f.id, f.score, f.published_at, f.exact_hit,
       CASE WHEN f.score < $5 THEN f.title END,
       CASE WHEN f.score < $5 THEN (
           SELECT string_agg(c.title, E'\\n' ORDER BY c.position) FROM chapters c WHERE c.item_id = f.id) END
FROM scored f
"""


@functools.lru_cache(maxsize=256)
def search_sql(kind: ContentKind | None, alternatives: int) -> str:
    """The search statement for ``kind`` (None: every kind) and a query with
    this many alternatives (``ts_alternatives``). The kind is a ContentKind's
    own value, never member input."""
    js = range(1, alternatives + 1)
    return _SEARCH_SQL.format(
        cfg=TS_CONFIG, b=B,
        alternatives=",\n           ".join(_W_ALTERNATIVE.format(cfg=TS_CONFIG, j=j) for j in js),
        ranks=", ".join(f"ts_rank('{WEIGHTS}', i.search, w.rq{j}, 0)::float8 AS v{j}, w.idf{j}" for j in js),
        score=" + ".join(f"r.idf{j} * r.v{j} * ({K1} + 1) / (r.v{j} + {K1} * r.l)" for j in js),
        kind="" if kind is None else f" AND i.kind = '{ContentKind(kind).value}'",
    )


# How long a document frequency counted by this process is trusted while
# other processes may be adding items (this process's own writes drop them
# at once). IDF moves slowly: a minute-old count ranks the same.
DF_CACHE_S = 60.0

_ITEMS_SQL = f"SELECT {rows.ITEM_COLUMNS} FROM items i JOIN sources s ON s.id = i.source_id"
# page_items: the items of $1 with their chapters' starts, titles and, for a
# title matching $2 (any term of the query), its ts_rank; in chapter order.
_PAGE_ITEMS_SQL = f"""
SELECT {rows.ITEM_COLUMNS}, ch.starts, ch.titles, ch.scores
FROM (SELECT to_tsquery('{TS_CONFIG}', $2::text) AS q) w
CROSS JOIN items i JOIN sources s ON s.id = i.source_id
LEFT JOIN LATERAL (
    SELECT array_agg(c.start_s ORDER BY c.position) AS starts, array_agg(c.title ORDER BY c.position) AS titles,
           array_agg(CASE WHEN c.search @@ w.q THEN ts_rank(c.search, w.q, {CHAPTER_NORMALIZATION}) END
                     ORDER BY c.position) AS scores
    FROM chapters c WHERE c.item_id = i.id
) ch ON true
WHERE i.id = ANY($1::bigint[])
"""

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ASCII_LOWER = str.maketrans(_UPPER, _LOWER)


def ascii_lower(text: str) -> str:
    """``text`` with A-Z lowered and every other character as it is."""
    return text.translate(_ASCII_LOWER)


def _ascii_lower_sql(column: str) -> str:
    # translate(), not lower(): lower() folds by the database's locale (É to
    # é), which would find items SQLite does not.
    return f"translate({column}, '{_UPPER}', '{_LOWER}')"


class CatalogTable(PostgresBase):
    async def _chapters(self, item_ids: Sequence[int]) -> dict[int, tuple[Chapter, ...]]:
        out: dict[int, list[Chapter]] = {}
        for r in await self._all(
            "SELECT item_id, start_s, title FROM chapters WHERE item_id = ANY($1::bigint[]) ORDER BY item_id, position",
            (list(item_ids),),
        ):
            out.setdefault(r[0], []).append(Chapter(r[1], r[2]))
        return {k: tuple(v) for k, v in out.items()}

    async def _with_chapters(self, found: Sequence[Any]) -> list[StoredItem]:
        chapters = await self._chapters([r[0] for r in found]) if found else {}
        return [rows.stored_item(r, chapters.get(r[0], ())) for r in found]

    async def find_item(self, item_id: int) -> StoredItem | None:
        return (await self.items_by_id([item_id])).get(item_id)

    async def items_by_id(self, item_ids: Sequence[int]) -> dict[int, StoredItem]:
        if not item_ids:
            return {}
        found = await self._all(f"{_ITEMS_SQL} WHERE i.id = ANY($1::bigint[])", (list(item_ids),))
        return {s.id: s for s in await self._with_chapters(found)}

    async def find_titles(self, item_ids: Sequence[int]) -> dict[int, str]:
        if not item_ids:
            return {}
        found = await self._all("SELECT id, title FROM items WHERE id = ANY($1::bigint[])", (list(item_ids),))
        return {r[0]: r[1] for r in found}

    async def latest_items(self, kind: ContentKind | None = None, limit: int = 5, offset: int = 0) -> list[StoredItem]:
        found = await self._all(
            f"{_ITEMS_SQL} WHERE ($1::text IS NULL OR i.kind = $1) "
            "ORDER BY i.published_at IS NULL, i.published_at DESC, i.id DESC LIMIT $2 OFFSET $3",
            (kind.value if kind else None, limit, offset),
        )
        return await self._with_chapters(found)

    async def count_items(self, kind: ContentKind | None = None, *, source_id: int | None = None) -> int:
        row = await self._one(
            "SELECT count(*) FROM items WHERE ($1::text IS NULL OR kind = $1) AND ($2::bigint IS NULL OR source_id = $2)",
            (kind.value if kind else None, source_id),
        )
        assert row is not None
        return int(row[0])

    async def episode_by_number(self, number: int) -> StoredItem | None:
        if not 0 <= number < 2**62:
            return None
        row = await self._one(
            "SELECT id FROM items WHERE episode_number = $1 "
            "ORDER BY kind != 'episode', published_at DESC NULLS LAST, id DESC LIMIT 1",
            (number,),
        )
        return await self.find_item(row[0]) if row else None

    async def episode_number_range(self) -> tuple[int, int] | None:
        row = await self._one(
            "SELECT min(episode_number), max(episode_number) FROM items WHERE episode_number IS NOT NULL")
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    async def item_at(self, kind: ContentKind | None, offset: int) -> StoredItem | None:
        # NULLS FIRST: SQLite's order (NULL sorts before any date).
        row = await self._one(
            "SELECT id FROM items WHERE ($1::text IS NULL OR kind = $1) "
            "ORDER BY published_at NULLS FIRST, id LIMIT 1 OFFSET $2",
            (kind.value if kind else None, offset),
        )
        return await self.find_item(row[0]) if row else None

    async def kind_stats(self) -> list[KindStats]:
        found = await self._all(
            "SELECT kind, count(*), min(published_at), max(published_at), coalesce(sum(duration_s), 0) "
            "FROM items GROUP BY kind ORDER BY count(*) DESC, kind"
        )
        return [KindStats(r[0], int(r[1]), r[2], r[3], int(r[4])) for r in found]

    async def title_words(self) -> list[str]:
        return [r[0] for r in await self._all("SELECT title FROM items ORDER BY id")]

    async def catalogue_version(self) -> tuple[int, int]:
        row = await self._one("SELECT count(*), coalesce(max(id), 0) FROM items")
        assert row is not None
        return int(row[0]), int(row[1])

    async def source_facts(self) -> dict[int, SourceFacts]:
        # The item first seen last: among items first seen together (a first
        # poll) the newest published, undated last, then the lowest id --
        # SQLite's order for the same answer.
        found = await self._all(
            "SELECT s.id, (SELECT count(*) FROM items i WHERE i.source_id = s.id), "
            "(SELECT max(e.created_at) FROM events e WHERE e.source_id = s.id AND e.purpose = 'announce' "
            "AND e.kind <> 'edit'), "
            "last.first_seen_at, last.title, "
            "(SELECT max(o.sent_at) FROM outbox o JOIN events e ON e.id = o.event_id "
            " WHERE e.source_id = s.id AND o.status = 'sent') "
            "FROM sources s LEFT JOIN LATERAL (SELECT i.first_seen_at, i.title FROM items i WHERE i.source_id = s.id "
            " ORDER BY i.first_seen_at DESC, i.published_at DESC NULLS LAST, i.id LIMIT 1) last ON true",
            doing="reading sources' facts",
        )
        return {r[0]: SourceFacts(int(r[1]), r[2], r[3], r[4] or None, r[5]) for r in found}

    async def feed_items(self, source_name: str, limit: int = 5) -> list[StoredItem]:
        found = await self._all(
            f"{_ITEMS_SQL} WHERE s.name = $1 "
            "ORDER BY i.published_at IS NULL, i.published_at DESC, i.id DESC LIMIT $2",
            (source_name, max(0, limit)),
        )
        return await self._with_chapters(found)

    async def items_mentioning(self, needles: Sequence[str], limit: int = 50) -> list[StoredItem]:
        wanted = [ascii_lower(n) for n in needles if n.strip()][:20]
        if not wanted:
            return []
        # strpos is containment of plain text: no character of a needle is
        # ever a pattern (LIKE's % and _ would be). Both sides are folded by
        # ASCII only, as SQLite's LIKE is case-insensitive for ASCII only.
        found = await self._all(
            f"{_ITEMS_SQL} WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) AS n(t) "
            f"  WHERE strpos({_ascii_lower_sql('i.title')}, n.t) > 0 "
            f"  OR strpos({_ascii_lower_sql('i.summary')}, n.t) > 0) "
            "ORDER BY i.published_at IS NULL, i.published_at DESC, i.id DESC LIMIT $2",
            (wanted, max(0, limit)), doing="looking for book items",
        )
        return await self._with_chapters(found)

    # -- search -------------------------------------------------------------------

    async def search(self, query: Query, kind: ContentKind | None = None, *, limit: int = 200) -> list[SearchHit]:
        if query.empty:
            return []
        ranked, matched = ts_alternatives(query)
        frequencies = await self._frequencies(matched)
        found = await self._all(
            search_sql(kind, len(ranked)),
            (ts_all(query), ranked, frequencies, limit, SUMMARY_FLOOR,
             ts_all(query.exact()) if query.has_prefix else None),
            doing="searching",
        )
        return rank_hits((tuple(r) for r in found), query, floor=SUMMARY_FLOOR, tie_digits=TIE_DIGITS)

    async def _frequencies(self, matched: Sequence[str]) -> list[float]:
        """How many items match each alternative (its IDF's document
        frequency). Counting a common word is a GIN scan of thousands of
        rows (~15 ms at 25,000 items), so counts are cached (DF_CACHE_S)."""
        now = time.monotonic()
        missing = sorted({m for m in matched if (hit := self._df_cache.get(m)) is None or now - hit[0] > DF_CACHE_S})
        if missing:
            counted = await self._all(
                f"SELECT a.m, (SELECT count(*) FROM items WHERE search @@ to_tsquery('{TS_CONFIG}', a.m)) "
                "FROM unnest($1::text[]) AS a(m)", (missing,), doing="searching")
            if len(self._df_cache) > 4096:
                self._df_cache.clear()
            for m, n in counted:
                self._df_cache[m] = (now, int(n))
        return [float(self._df_cache[m][1]) for m in matched]

    async def search_chapters(
        self, query: Query, kind: ContentKind | None = None, *, limit: int = 200
    ) -> list[ChapterHit]:
        if query.empty or limit <= 0:
            return []
        found = await self._all(
            f"SELECT c.item_id, c.position, ts_rank(c.search, q, {CHAPTER_NORMALIZATION}) AS score "
            f"FROM chapters c JOIN items i ON i.id = c.item_id, to_tsquery('{TS_CONFIG}', $1) q "
            "WHERE c.search @@ q AND ($2::text IS NULL OR i.kind = $2) "
            "ORDER BY score DESC, c.item_id, c.position LIMIT $3",
            (ts_any(query), kind.value if kind is not None else None, limit), doing="searching chapters")
        return [ChapterHit(int(r[0]), int(r[1]), float(r[2])) for r in found]

    async def page_items(
        self, ids: Sequence[int], query: Query | None, limit: int = 5
    ) -> list[tuple[StoredItem, list[Chapter]]]:
        """The items of ``ids`` in that order, with every chapter and, scored
        per chapter, those whose title matches any term of ``query``."""
        if not ids:
            return []
        tsq = ts_any(query) if query is not None and not query.empty else None
        # One statement (one snapshot, one round trip): each item with its
        # chapters in order as arrays, and each chapter's score where its
        # title matches (NULL elsewhere).
        found = await self._all(_PAGE_ITEMS_SQL, (list(ids), tsq), doing="searching" if tsq is not None else "reading")
        by_id = {}
        for r in found:
            chapters = tuple(Chapter(start, title) for start, title in zip(r[-3] or (), r[-2] or ()))
            scored = sorted((-float(score), position, chapter)
                            for position, (chapter, score) in enumerate(zip(chapters, r[-1] or ()))
                            if score is not None)
            by_id[r[0]] = (rows.stored_item(r, chapters), [c for _, _, c in scored[:limit]])
        return [by_id[i] for i in ids if i in by_id]
