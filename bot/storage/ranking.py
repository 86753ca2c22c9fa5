"""What both backends do with a search's rows once their query has run: the
relevance floor and the order (bot.search.rank_key). Each backend only
states its own units: the score floor below which a hit must have a term in
its title or chapter titles, and how many digits make a near-tie."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.search import Query, TitleMatcher, rank_key
from bot.storage.records import SearchHit

# (item id, score, published at, holds the words themselves, title, chapter
# titles); the last two only for rows scored below the floor, and None for
# both when the backend has already kept only those with a term in their
# titles (SQLite: a match on its title columns in the same statement).
SearchRow = tuple[int, float, "datetime | None", bool, "str | None", "str | None"]


def rank_hits(rows: Iterable[SearchRow], query: Query, *, floor: float, tie_digits: int) -> list[SearchHit]:
    """The rows as hits, best first: a row below ``floor`` is kept only when a
    term is in its title or a chapter title (``strong``: decided here on
    those candidates' titles, unless the backend decided it and sent no
    titles); only in the description, and weakly, is noise."""
    matcher: TitleMatcher | None = None
    hits = []
    for item_id, raw_score, published, exact_hit, title, chapters in rows:
        score = float(raw_score)
        if score < floor and (title is not None or chapters is not None):
            matcher = matcher or TitleMatcher(query)
            if not matcher(f"{title}\n{chapters or ''}"):
                continue
        hit = SearchHit(item_id, score, True, published)  # strong: above the floor, or a term in its titles
        hits.append((rank_key(bool(exact_hit), round(score, tie_digits),
                              published.timestamp() if published else None, item_id), hit))
    hits.sort(key=lambda h: h[0], reverse=True)
    return [h for _, h in hits]
