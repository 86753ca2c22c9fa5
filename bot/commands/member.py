"""What every member can ask: latest, search, episode N, random, stats,
personal subscriptions."""

from __future__ import annotations

import asyncio
import difflib
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from bot.commands.context import Context
from bot.commands.grammar import EpisodeNumber, Latest, RandomPick, Search
from bot.commands.help import unknown_reply
from bot.errors import NotFound, UserError
from bot import hybrid
from bot.hybrid import (
    ChapterCandidate, Candidate, Embedder, chapter_text, from_bytes, fuse, lexical_order, rank_chapters,
    rows_from_bytes, soft_and,
)
from bot.models import Caller, Chapter, ContentKind, Reply, ReplyItem, ReplySection, StoredItem
from bot.presenter import TRANSCRIPTS_LABEL, chapter_section, transcript_section
from bot.replies import plural, reply_item
from bot.search import Query, TitleMatcher, parse_query
from bot.storage import SearchHit
from bot.subscriptions import MAX_TOPIC_CHARS, TopicMatcher, normalize_topic

if TYPE_CHECKING:  # numpy (~15 MB, ~100 ms) is imported only when a search embeds
    import numpy as np

_KIND_PLURAL = {None: "items", ContentKind.EPISODE: "episodes", ContentKind.VIDEO: "videos",
                ContentKind.ARTICLE: "articles", ContentKind.POST: "posts"}


def _plural(kind: ContentKind | None) -> str:
    return _KIND_PLURAL[kind]


def _span(offset: int, shown: int, total: int) -> str:
    """' 1–5 of 157' when a page shows part of the list, '' when it shows all."""
    return f" {offset + 1}–{offset + shown} of {total}" if shown < total else ""


async def latest(ctx: Context, cmd: Latest) -> Reply:
    size = 1 if cmd.single else ctx.page_size
    offset = (cmd.page - 1) * size
    items = await ctx.store.latest_items(cmd.kind, limit=size, offset=offset)
    total = await ctx.store.count_items(cmd.kind)
    if not items:
        what = _plural(cmd.kind)
        text = f"No {what} yet." if total == 0 else f"No more {what}: there are {total}."
        return Reply(kind="latest", text=text)
    remaining = total - offset - len(items)
    if cmd.single:
        assert cmd.kind is not None
        text = f"The latest {cmd.kind.value}:"
        more = f"latest {cmd.kind.value}s" if remaining > 0 else None
    else:
        what = "" if cmd.kind is None else f" {_plural(cmd.kind)}"
        # "Latest 1–5 of 157:", not "Latest: 152 more." (which read as a count of something shown).
        text = f"Latest{what}{_span(offset, len(items), total)}:"
        words = "latest" + ("" if cmd.kind is None else f" {_plural(cmd.kind)}")
        more = f"{words} page {cmd.page + 1}" if remaining > 0 else None
    return Reply(kind="latest", text=text, items=tuple(reply_item(i) for i in items), more=more)


async def all_of(*calls: Awaitable[Any]) -> list[Any]:
    """The calls' results, run concurrently: on PostgreSQL each takes its
    own pooled connection, so a reply waits for the slowest query instead of
    their sum (SQLite's one read connection still runs them in turn). Every
    call finishes before the first error, if any, is raised: none is left
    running behind the reply."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


async def _nothing() -> dict[int, Any]:
    return {}


async def _ranked(ctx: Context, query: Query, kind: ContentKind | None) -> list[SearchHit]:
    started = time.perf_counter()
    embedder = _embedder(ctx)
    if embedder is None:
        hits = await ctx.store.search(query, kind)
    else:
        # The gate and, for a question of several words, which words each
        # document has (one OR search a word): independent queries, at once.
        words = [Query((term,), (query.words[t],)) for t, term in enumerate(query.terms)] \
            if len(query.terms) > 1 else []
        hits, *per_word = await all_of(ctx.store.search(query, kind), *(ctx.store.search(w, kind) for w in words))
        hits = await _hybrid(ctx, embedder, query, hits, per_word)
    ctx.metrics.searched(time.perf_counter() - started)
    return hits


async def _hybrid(ctx: Context, embedder: Embedder, query: Query, gate: list[SearchHit],
                  per_word: Sequence[list[SearchHit]]) -> list[SearchHit]:
    """Soft-AND and fused ranking (bot/hybrid.py): the documents with every
    word (``gate``), plus those lacking some words (``per_word``: each
    word's own hits) whose missing words are close in meaning, ordered by
    RRF of the lexical and the dense order."""
    import numpy as np

    by_id = {h.item_id: h for h in gate}
    present: dict[int, set[int]] = {h.item_id: set(range(len(query.terms))) for h in gate}
    scores: dict[int, float] = {h.item_id: h.score for h in gate}
    for t, word_hits in enumerate(per_word):  # which words each document has
        for h in word_hits:
            if h.item_id in by_id and t in present[h.item_id]:
                continue
            by_id.setdefault(h.item_id, h)
            present.setdefault(h.item_id, set()).add(t)
            scores[h.item_id] = scores.get(h.item_id, 0.0) + h.score
    if not by_id:
        return gate
    ids = list(by_id)
    # Those lacking a word are judged against every view of them: the whole
    # item, its title (embedded now: cached words, one call) and each stored
    # chapter vector; the best view counts (hybrid.soft_and). Their titles
    # and chapter vectors are read beside the items' vectors, at once.
    lacking = [i for i in ids if 0 < len(present[i]) < len(query.terms)] if hybrid.MULTI_VIEW else []
    raw, titles, chapters = await all_of(
        ctx.store.find_vectors(ids),
        ctx.store.find_titles(lacking) if lacking else _nothing(),
        ctx.store.chapter_vectors(lacking) if lacking else _nothing())
    docs: dict[int, np.ndarray] = {i: from_bytes(v) for i, v in raw.items()}
    views = docs
    partial = [i for i in lacking if i in docs]
    if partial:
        title_vectors = embedder.embed([titles.get(i, "") for i in partial])
        views = dict(docs)
        for i, title_vector in zip(partial, title_vectors):
            views[i] = np.vstack([docs[i], title_vector, rows_from_bytes(chapters.get(i, []))])
    candidates = [Candidate(i, frozenset(present[i]), scores[i]) for i in ids]
    kept = lexical_order(soft_and(candidates, _missing_vectors(embedder, query), views, len(query.terms)))
    whole = embedder.embed([query.text])[0]
    dense = {c.item_id: float(docs[c.item_id] @ whole) for c in kept if c.item_id in docs}
    return [by_id[i] for i in fuse([c.item_id for c in kept], dense)]


def _missing_vectors(embedder: Embedder, query: Query) -> Callable[[tuple[int, ...]], "np.ndarray"]:
    """The soft-AND's ``missing_vector``: the question's missing words (by
    term index) embedded together, once per combination."""
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def missing_vector(missing: tuple[int, ...]) -> np.ndarray:
        if missing not in cache:
            cache[missing] = embedder.embed([" ".join(query.words[t] for t in missing)])[0]
        return cache[missing]

    return missing_vector


async def _hit_items(ctx: Context, query: Query, ids: list[int]) -> list[ReplyItem]:
    """The page's items with their matched chapters (two statements in all)."""
    return [reply_item(stored, chapters, link_to_chapter=True)
            for stored, chapters in await ctx.store.page_items(ids, query)]


# -- transcript hits (issue #15): a section of their own under the results ------------

TRANSCRIPT_HITS = 3


async def _transcripts(ctx: Context, query: Query, kind: ContentKind | None, page: int) -> ReplySection | None:
    """Where the words were said: a separate channel from the ranked items
    (not pushed through their ranking), on the first page only."""
    if page != 1 or query.empty:
        return None
    hits = await ctx.store.search_transcripts(query, kind, limit=TRANSCRIPT_HITS)
    return transcript_section(hits, query.words)


# -- chapter hits (issue #15): their own channel, "episode title: chapter title" --------

CHAPTER_CANDIDATES = 50  # chapters whose title has a word of the question, best first


def _embedder(ctx: Context) -> Embedder | None:
    return ctx.semantic.get() if ctx.semantic is not None and ctx.semantic.enabled else None


async def chapter_matches(ctx: Context, query: Query, kind: ContentKind | None) -> list[tuple[StoredItem, Chapter]]:
    """The chapter channel, best first (bot.hybrid.rank_chapters): chapters
    that answer the question on their own, not pushed through the episode
    ranking. bench/bench_quality.py measures this list."""
    if query.empty:
        return []
    hits = await ctx.store.search_chapters(query, kind, limit=CHAPTER_CANDIDATES)
    if not hits:
        return []
    embedder = _embedder(ctx)
    hit_items = list(dict.fromkeys(h.item_id for h in hits))
    # the hits' items and (semantic) their chapter vectors, read at once
    items, stored_vectors = await all_of(
        ctx.store.items_by_id(hit_items),
        ctx.store.chapter_vectors(hit_items) if embedder is not None else _nothing())
    matchers = [TitleMatcher(Query((term,), (query.words[t],))) for t, term in enumerate(query.terms)]
    candidates = []
    for h in hits:
        stored = items.get(h.item_id)
        if stored is None or h.position >= len(stored.item.chapters):
            continue
        document = chapter_text(stored.item.title, stored.item.chapters[h.position].title)
        present = frozenset(t for t, match in enumerate(matchers) if match(document))
        candidates.append(ChapterCandidate(h.item_id, h.position, present, h.score))
    if embedder is None:
        ranked = rank_chapters(candidates, None, {}, None, len(query.terms))
    else:
        # Only the candidates' own chapters are decoded (a hit item has ~10).
        vectors = {(c.item_id, c.position): from_bytes(stored_vectors[c.item_id][c.position]) for c in candidates
                   if c.position < len(stored_vectors.get(c.item_id, ()))}
        ranked = rank_chapters(candidates, _missing_vectors(embedder, query), vectors, embedder.embed([query.text])[0],
                               len(query.terms))
    return [(items[c.item_id], items[c.item_id].item.chapters[c.position]) for c in ranked]


async def _chapters(ctx: Context, query: Query, kind: ContentKind | None, page: int,
                    shown: Sequence[ReplyItem]) -> ReplySection | None:
    """The chapter channel as a section on the first page, without the
    chapters the page already lists under their episode (the same line
    twice would be noise)."""
    if page != 1:
        return None
    listed = {(i.title, c.start_s, c.title) for i in shown for c in i.chapters}
    return chapter_section([(stored, c) for stored, c in await chapter_matches(ctx, query, kind)
                            if (stored.item.title, c.start_s, c.title) not in listed])


async def search(ctx: Context, cmd: Search) -> Reply:
    query = parse_query(cmd.topic, ctx.synonyms)
    reply = await _search(ctx, cmd, query)
    if reply.kind != "search" or reply.announcement is not None:
        return reply
    found = await all_of(_chapters(ctx, query, cmd.kind, cmd.page, reply.items),
                         _transcripts(ctx, query, cmd.kind, cmd.page))
    sections = [s for s in found if s is not None]
    if not sections:
        return reply
    if not reply.items:  # nothing in titles or notes as a whole, but a chapter or a transcript has it
        but = "it was said:" if len(sections) == 1 and sections[0].label == TRANSCRIPTS_LABEL else "chapters have it:"
        return Reply(kind="search", text=f"Nothing in titles or show notes for “{query.echo}”, but {but}",
                     sections=tuple(sections))
    return replace(reply, sections=(*reply.sections, *sections))


async def _search(ctx: Context, cmd: Search, query: Query) -> Reply:
    if query.empty:
        if cmd.bare:
            return unknown_reply(cmd.topic)
        return Reply(kind="search", text="Nothing found: give me a word to look for, "
                                         "like `search postgres`.")
    hits = await _ranked(ctx, query, cmd.kind)
    what = _plural(cmd.kind)
    if not hits:
        hint = await _suggestion(ctx, query, cmd)
        if cmd.bare:  # text that was maybe not meant as a topic at all ("tell me a joke")
            return Reply(kind="help", ephemeral=True, text=(
                f"I didn't catch that. {hint + ' ' if hint else ''}Try `latest`, `search <topic>` or "
                "`episode <number>`; `help` lists everything."))
        return Reply(kind="search", text=f"Nothing found for “{query.echo}”." + (f" {hint}" if hint else ""))
    if cmd.newest:
        # By date instead of relevance: the same hits (the same gate), newest first, undated last.
        hits = sorted(hits, key=lambda h: (h.published_at is not None,
                                           h.published_at.timestamp() if h.published_at else 0.0, h.item_id),
                      reverse=True)
    start = (cmd.page - 1) * ctx.page_size
    page = hits[start:start + ctx.page_size]
    if not page:
        return Reply(kind="search", text=f"No more {what} for “{query.echo}”: there were {len(hits)}.")
    items = await _hit_items(ctx, query, [h.item_id for h in page])
    remaining = len(hits) - start - len(page)
    count = f"{len(hits)} {what if len(hits) != 1 else what[:-1]}"
    span = f" ({start + 1}–{start + len(page)})" if len(page) < len(hits) else ""
    order = " newest" if cmd.newest else ""
    text = f"{count} on “{query.echo}”{', newest first' if cmd.newest else ''}{span}:"
    more = f"{cmd.phrase} {query.text}{order} page {cmd.page + 1}" if remaining > 0 else None
    return Reply(kind="search", text=text, items=tuple(items), more=more)


# At most this many extra searches to find what would work when nothing did.
MAX_SUGGESTION_SEARCHES = 8


async def _suggestion(ctx: Context, query: Query, cmd: Search) -> str:
    """What would find something, when nothing did: fewer words (the largest
    subset of the member's words with hits, dropping one word at a time),
    else the indexed title word closest to a word that finds nothing alone
    (a misspelling)."""
    words = list(query.words)
    budget = MAX_SUGGESTION_SEARCHES
    alone: dict[str, int] = {}
    if len(words) > 1:
        for drop in range(len(words)):
            if budget == 0:
                break
            fewer = " ".join(w for i, w in enumerate(words) if i != drop)
            budget -= 1
            found = await ctx.store.search(parse_query(fewer, ctx.synonyms), cmd.kind)
            if found:
                return f"“{fewer}” finds {plural(len(found), _plural(cmd.kind)[:-1])}: try `search {fewer}`."
        for word in words:
            if budget == 0:
                break
            budget -= 1
            alone[word] = len(await ctx.store.search(parse_query(word, ctx.synonyms), cmd.kind))
        found_alone = [w for w in words if alone.get(w)]
        if found_alone:
            best = max(found_alone, key=lambda w: alone[w])
            return f"“{best}” alone finds {plural(alone[best], _plural(cmd.kind)[:-1])}: try `search {best}`."
    if ctx.vocabulary is None:
        return ""
    vocabulary = await ctx.vocabulary()
    fixed = []
    for word in words:
        if " " in word or alone.get(word) or len(word) < 3:
            fixed.append(word)
            continue
        close = difflib.get_close_matches(word, vocabulary, n=1, cutoff=0.75)
        fixed.append(close[0] if close else word)
    if fixed != words:
        spelled = " ".join(fixed)
        return f"Did you mean `search {spelled}`?"
    return ""


async def episode(ctx: Context, cmd: EpisodeNumber) -> Reply:
    stored = await ctx.store.episode_by_number(cmd.number)
    if stored is None:
        span = await ctx.store.episode_number_range()
        hint = f" Episodes go from {span[0]} to {span[1]}." if span else ""
        raise NotFound(f"There is no episode {cmd.number}.{hint}")
    return Reply(kind="episode", text=f"Episode {cmd.number}: {stored.item.title}",
                 items=(reply_item(stored),))


async def random_pick(ctx: Context, cmd: RandomPick) -> Reply:
    what = _plural(cmd.kind)
    if cmd.topic is not None:
        query = parse_query(cmd.topic, ctx.synonyms)
        if query.empty:
            return Reply(kind="random", text="Nothing found: random on what? Try `random episode on kafka`.")
        hits = await _ranked(ctx, query, cmd.kind)
        if not hits:
            return Reply(kind="random", text=f"Nothing found for “{query.echo}”.")
        pick = ctx.rng.choice(hits)
        items = await _hit_items(ctx, query, [pick.item_id])
        return Reply(kind="random", text=f"A random one of {len(hits)} {what} on “{query.echo}”:",
                     items=tuple(items), more=f"random {cmd.kind.value if cmd.kind else 'episode'} "
                                              f"on {query.text}")
    total = await ctx.store.count_items(cmd.kind)
    if total == 0:
        return Reply(kind="random", text=f"No {what} yet.")
    stored = await ctx.store.item_at(cmd.kind, ctx.rng.randrange(total))
    if stored is None:  # removed between the count and the pick
        return Reply(kind="random", text=f"No {what} yet.")
    return Reply(kind="random", text=f"A random {stored.kind.value}:", items=(reply_item(stored),),
                 more=f"random {cmd.kind.value if cmd.kind else 'episode'}")


# -- personal subscriptions --------------------------------------------------------

def _topic(ctx: Context, raw: str) -> str:
    if len(raw) > MAX_TOPIC_CHARS:
        raise UserError(f"Keep a topic under {MAX_TOPIC_CHARS} characters.")
    topic = normalize_topic(raw)
    if not topic or TopicMatcher(topic, ctx.synonyms).empty:
        raise UserError("A topic needs at least one word, like `subscribe kafka`.")
    return topic


async def subscribe(ctx: Context, caller: Caller, raw: str) -> Reply:
    topic = _topic(ctx, raw)
    try:
        added = await ctx.store.add_subscription(caller.platform, caller.user_id, topic,
                                                 ctx.clock(), ctx.max_topics_per_member)
    except UserError:  # the storage's limit, said the commands' way
        raise UserError(f"You can follow at most {ctx.max_topics_per_member} topics; "
                        "`unsubscribe <topic>` from one first.") from None
    text = (f"Subscribed to “{topic}”: I'll send you a direct message when something new matches."
            if added else f"You are already subscribed to “{topic}”.")
    return Reply(kind="subscriptions", text=text, ephemeral=True)


async def unsubscribe(ctx: Context, caller: Caller, raw: str) -> Reply:
    topic = normalize_topic(raw[:MAX_TOPIC_CHARS])
    if not topic:
        raise UserError("Unsubscribe from what? `subscriptions` lists your topics.")
    try:
        await ctx.store.remove_subscription(caller.platform, caller.user_id, topic)
    except NotFound:
        raise NotFound(f"You aren't subscribed to “{topic}”. `subscriptions` lists your topics.") from None
    return Reply(kind="subscriptions", text=f"Unsubscribed from “{topic}”.", ephemeral=True)


async def subscriptions(ctx: Context, caller: Caller) -> Reply:
    topics = await ctx.store.member_subscriptions(caller.platform, caller.user_id)
    if not topics:
        text = "You have no subscriptions. `subscribe <topic>` adds one."
    else:
        text = "Your topics: " + ", ".join(f"“{t}”" for t in topics)
    return Reply(kind="subscriptions", text=text, ephemeral=True)
