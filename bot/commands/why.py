"""`why <url or title>` (moderators): find the item, read its trail, explain.

The finding is here (reads); the explaining is ``bot.why`` (pure). The CLI
(`showbot why`) and the status page's why box go through this same handler
via ``Commands``.

Finding, in order: a URL is matched against items' links, normalized links
and enclosure URLs; a title against titles (folded as detection folds them);
then the search index, taking a hit only when it is the one item whose title
contains the whole text. Nothing found: the closest titles are suggested.
"""

from __future__ import annotations

from typing import Final

import asyncio
import difflib
import re

from bot.commands.context import Context
from bot.commands.grammar import Why
from bot.detect import fold_title, normalize_link
from bot.models import Reply, StoredItem
from bot.search import parse_query
from bot.why import explain, render_text

NOT_FOUND: Final = "not-found"  # the Reply kind when no item matches (`showbot why` exits 1)
SUGGESTIONS = 3
# difflib over every title is fine for a catalogue this size; past it, the
# search index's suggestions alone.
DIFFLIB_MAX_TITLES = 20_000
_URL = re.compile(r"^(?:https?://|www\.)\S+$", re.IGNORECASE)
# Chat platforms wrap links: Slack "<https://x|label>", Discord "<https://x>".
_WRAPPED = re.compile(r"^<([^|>]+)(?:\|[^>]*)?>$")


def clean_query(text: str) -> str:
    text = text.strip()
    m = _WRAPPED.match(text)
    return (m.group(1) if m else text).strip()


async def find(ctx: Context, text: str) -> list[StoredItem]:
    store = ctx.store
    if _URL.match(text):
        keys = [text, text.rstrip("/"), normalize_link(text) or ""]
        return await store.items_by_link(keys)
    found = await store.items_by_title(fold_title(text), text)
    if found:
        return found
    query = parse_query(text, ctx.synonyms)
    if query.empty:
        return []
    hits = await store.search(query, limit=20)
    items = await store.items_by_id([h.item_id for h in hits])
    wanted = fold_title(text)
    containing = [items[h.item_id] for h in hits
                  if h.item_id in items and wanted in fold_title(items[h.item_id].item.title)]
    return containing if len(containing) == 1 else []


async def suggestions(ctx: Context, text: str) -> list[str]:
    """The titles closest to ``text``: the search index's best hits first,
    then the most similar titles by spelling (typos the index can't match)."""
    out: list[str] = []
    query = parse_query(text, ctx.synonyms)
    if not query.empty:
        hits = await ctx.store.search(query, limit=SUGGESTIONS)
        items = await ctx.store.items_by_id([h.item_id for h in hits])
        out += [items[h.item_id].item.title for h in hits if h.item_id in items]
    if len(out) < SUGGESTIONS:
        titles = await ctx.store.title_words()
        if len(titles) <= DIFFLIB_MAX_TITLES:
            by_fold = {fold_title(t): t for t in titles}
            close = await asyncio.to_thread(
                difflib.get_close_matches, fold_title(text), list(by_fold), SUGGESTIONS, 0.4)
            out += [by_fold[c] for c in close]
    return list(dict.fromkeys(out))[:SUGGESTIONS]


async def why(ctx: Context, cmd: Why) -> Reply:
    text = clean_query(cmd.query)
    found = await find(ctx, text)
    if not found:
        close = await suggestions(ctx, text)
        hint = (" Closest titles: " + "; ".join(f"“{t}”" for t in close) + ".") if close else ""
        return Reply(kind=NOT_FOUND, text=f"No stored item matches “{text}”.{hint} An item the bot never "
                                      "stored was not in the feed when it was polled (or its feed is "
                                      "not watched).", ephemeral=True)
    chosen, rest = found[0], found[1:]
    trail = await ctx.store.item_trail(chosen.id)
    if trail is None:  # removed between the lookup and now
        return Reply(kind=NOT_FOUND, text=f"No stored item matches “{text}”.", ephemeral=True)
    routes = await ctx.store.list_routes()
    health = dict(ctx.health()) if ctx.health is not None else None
    explanation = explain(trail, routes=routes, now=ctx.clock(), adapters=health or None)
    others = [f"“{s.item.title}” ({s.source_name}, first seen {s.first_seen_at:%Y-%m-%d})" for s in rest]
    return Reply(kind="why", text=render_text(explanation, others), ephemeral=True)
