"""Documents an item links to (podcast:chapters JSON, podcast:transcript): what to fetch. Pure.

The poller reads the stored state of every document of a source
(``Storage.load_documents``), asks this module what to fetch, fetches
(bot.sources.documents, no storage), and hands the outcomes back to storage
(``Storage.write_documents``), which writes them and decides nothing.

The rules, and why:
- A document is fetched when the URL the feed declares is not the URL its
  stored content came from ("cached by URL": an unchanged URL is never
  fetched again, however often the feed is polled).
- A failure (404, timeout, oversize, malformed) is recorded with the URL;
  the item keeps the chapters it had (from its description) and is
  announced with them. It is tried again after ``retry_delay_s`` (doubling),
  at most ``MAX_ATTEMPTS`` times for one URL; a new URL starts afresh.
- At most ``MAX_FETCHES_PER_POLL`` documents per poll: the first poll of a
  540-episode feed with transcripts must not make 1,080 requests at once;
  the rest follow on later polls (also when the feed is unchanged).
- Chapters of a new or edited item are fetched before the poll's write,
  so its announcement shows them; an edit rewrites an item's chapters from
  its description, so cached JSON chapters are put back (no fetch) then.
- Everything else (transcripts, backlog, retries) is fetched after the write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Literal, Mapping, Sequence

from bot.models import Chapter, DocumentKind, DocumentLink, StoredItem, TranscriptSegment

MAX_ATTEMPTS = 4
MAX_FETCHES_PER_POLL = 20
FIRST_RETRY_S = 15 * 60
MAX_RETRY_S = 24 * 3600
# Bytes a document may have (the fetcher's cap for it): chapters are a few
# KB, a two-hour WebVTT transcript ~200 KB.
MAX_CHAPTERS_BYTES = 256 * 1024
MAX_TRANSCRIPT_BYTES = 2 * 1024 * 1024


def max_bytes(kind: DocumentKind) -> int:
    return MAX_CHAPTERS_BYTES if kind is DocumentKind.CHAPTERS else MAX_TRANSCRIPT_BYTES


def retry_delay_s(attempts: int) -> int:
    """After ``attempts`` failures in a row: 15 min, 30 min, 1 h, ... capped at a day."""
    return int(min(FIRST_RETRY_S * 2 ** max(attempts - 1, 0), MAX_RETRY_S))


@dataclass(frozen=True, slots=True)
class DocumentState:
    """One (item, kind) as stored."""

    item_id: int
    kind: DocumentKind
    url: str  # what the feed declares (the last time it was read)
    media_type: str | None = None
    fetched_url: str | None = None  # where the stored content came from; None: nothing stored yet
    attempts: int = 0  # failures in a row for ``url``
    retry_at: datetime | None = None
    last_error: str | None = None
    chapters: tuple[Chapter, ...] = ()  # the stored JSON chapters (kind chapters)

    @property
    def current(self) -> bool:
        return self.fetched_url == self.url

    def due(self, now: datetime) -> bool:
        if self.current or self.attempts >= MAX_ATTEMPTS:
            return False
        return self.retry_at is None or self.retry_at <= now


DocumentOutcome = Literal["declared", "fetched", "failed", "withdrawn"]


@dataclass(frozen=True, slots=True)
class DocumentWrite:
    """What storage writes for one (item, kind).

    - ``declared``: the feed names ``url`` (new, or changed): the state row
      says so, failures reset; stored content and ``fetched_url`` stay.
    - ``fetched``: content from ``url`` (``chapters`` replace the item's
      chapters, ``segments`` its transcript); failures reset.
    - ``failed``: ``attempts`` failures in a row now, ``error``, ``retry_at``.
    - ``withdrawn``: the feed no longer names a document of this kind: the
      row goes, a transcript's passages too, and ``chapters`` (the item's
      own, from its description) replace JSON chapters it had.
    """

    item_id: int
    kind: DocumentKind
    url: str
    outcome: DocumentOutcome
    at: datetime
    media_type: str | None = None
    chapters: tuple[Chapter, ...] | None = None
    segments: tuple[TranscriptSegment, ...] | None = None
    error: str | None = None
    attempts: int = 0
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DocumentFetch:
    """One document to fetch. ``item_id`` None: an item this poll is about to store."""

    kind: DocumentKind
    url: str
    media_type: str | None
    identity: str
    item_id: int | None
    attempts: int = 0  # failures so far for this URL


@dataclass(frozen=True, slots=True)
class TranscriptHit:
    """A search hit inside a transcript: the item, where, and the passage."""

    item: StoredItem
    start_s: int
    text: str  # the whole passage; ``snippet`` cuts what a reply quotes
    score: float = 0.0


def link_of(links: Iterable[DocumentLink], kind: DocumentKind) -> DocumentLink | None:
    return next((link for link in links if link.kind is kind), None)


def chapters_to_json(chapters: Sequence[Chapter]) -> str:
    return json.dumps([[c.start_s, c.title] for c in chapters], ensure_ascii=False)


def chapters_from_json(text: str | None) -> tuple[Chapter, ...]:
    if not text:
        return ()
    return tuple(Chapter(int(s), str(t)) for s, t in json.loads(text))


# ------------------------------------------------------------------- planning


def plan_before_write(
    fresh: Sequence[tuple[str, int | None, Sequence[DocumentLink]]],
    stored: Mapping[tuple[int, DocumentKind], DocumentState],
    now: datetime,
    *,
    limit: int = MAX_FETCHES_PER_POLL,
) -> tuple[dict[str, tuple[Chapter, ...]], list[DocumentFetch]]:
    """For the items this poll stores or edits (identity, stored id or None,
    links): the JSON chapters to put back without a fetch (an edit of an
    item whose chapters document has not moved), and the chapters documents
    to fetch before the write."""
    reuse: dict[str, tuple[Chapter, ...]] = {}
    fetch: list[DocumentFetch] = []
    for identity, item_id, links in fresh:
        link = link_of(links, DocumentKind.CHAPTERS)
        if link is None:
            continue
        state = stored.get((item_id, DocumentKind.CHAPTERS)) if item_id is not None else None
        if state is not None and state.fetched_url == link.url:
            if state.chapters:
                reuse[identity] = state.chapters
            continue
        if state is not None and state.url == link.url and not state.due(now):
            continue  # failing, and not yet due again (or given up)
        if len(fetch) < limit:
            fetch.append(DocumentFetch(DocumentKind.CHAPTERS, link.url, link.media_type, identity, item_id,
                                       state.attempts if state is not None and state.url == link.url else 0))
    return reuse, fetch


def plan_after_write(
    declared: Mapping[int, Sequence[DocumentLink]] | None,
    stored: Sequence[DocumentState],
    now: datetime,
    *,
    done: Iterable[tuple[int, DocumentKind]] = (),
    limit: int = MAX_FETCHES_PER_POLL,
    own_chapters: Mapping[int, tuple[Chapter, ...]] | None = None,
) -> tuple[list[DocumentWrite], list[DocumentFetch]]:
    """After the poll's write: the declarations to record (a URL the feed
    names that the stored row does not), and the documents to fetch -- those
    whose declared URL was never fetched, oldest items' last, due retries
    included. ``declared`` is None when the feed was unchanged (304): the
    stored rows are then the whole truth. ``done`` were handled before the
    write; ``limit`` counts what is left of this poll's fetches. A document
    the feed stopped naming for an item it still lists is withdrawn, the
    item's chapters going back to ``own_chapters`` (its description's)."""
    skip = set(done)
    by_key = {(s.item_id, s.kind): s for s in stored}
    writes: list[DocumentWrite] = []
    for (item_id, kind), row in list(by_key.items()):
        links = (declared or {}).get(item_id)
        if links is None or any(link.kind is kind for link in links):
            continue  # not in this fetch (or an unchanged feed), or still named
        restore = (own_chapters or {}).get(item_id, ()) if kind is DocumentKind.CHAPTERS and row.fetched_url else None
        writes.append(DocumentWrite(item_id, kind, row.url, "withdrawn", now, chapters=restore))
        del by_key[(item_id, kind)]
    wanted: list[DocumentState] = []
    for item_id, links in (declared or {}).items():
        for link in links:
            key = (item_id, link.kind)
            state = by_key.get(key)
            if state is None or state.url != link.url or state.media_type != link.media_type:
                if key not in skip:
                    writes.append(DocumentWrite(item_id, link.kind, link.url, "declared", now,
                                                media_type=link.media_type))
                # a new URL starts afresh: no failures yet, fetched_url unchanged
                by_key[key] = DocumentState(item_id, link.kind, link.url, link.media_type,
                                            state.fetched_url if state else None)
    for key, state in by_key.items():
        if key not in skip and state.due(now):
            wanted.append(state)
    # Newest items first (highest ids): members ask about recent episodes.
    wanted.sort(key=lambda s: (-s.item_id, s.kind.value))
    fetch = [DocumentFetch(s.kind, s.url, s.media_type, "", s.item_id, s.attempts) for s in wanted[:max(limit, 0)]]
    return writes, fetch


def failure(fetch: DocumentFetch, item_id: int, error: str, now: datetime) -> DocumentWrite:
    attempts = fetch.attempts + 1
    return DocumentWrite(item_id, fetch.kind, fetch.url, "failed", now, media_type=fetch.media_type,
                         error=error[:300], attempts=attempts,
                         retry_at=now + timedelta(seconds=retry_delay_s(attempts)))


# -------------------------------------------------------------------- snippets

SNIPPET_CHARS = 160


def _matches(word: str, wanted: Sequence[str]) -> bool:
    # Storage decided the passage matches (with its own stemmer); this only
    # finds where, so a shared prefix is close enough ("replication" ~ "replicated").
    return any(word.startswith(w[:max(3, len(w) - 2)]) if len(w) > 3 else word == w for w in wanted)


def snippet(text: str, words: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``text`` around the first query word, cut
    at word boundaries, with "…" where text was left out."""
    wanted = [w.lower() for w in words if w]
    pieces = text.split()
    at = next((i for i, p in enumerate(pieces) if _matches(p.lower().strip(".,;:!?\"'()[]"), wanted)), 0)
    start, end = at, at + 1
    size = len(pieces[at]) if pieces else 0
    # Grow around the hit, a little more after it than before.
    while size < width and (start > 0 or end < len(pieces)):
        if end < len(pieces):
            size += len(pieces[end]) + 1
            end += 1
        if start > 0 and size < width and (end - at) > 2 * (at - start):
            start -= 1
            size += len(pieces[start]) + 1
        elif start > 0 and end >= len(pieces):
            start -= 1
            size += len(pieces[start]) + 1
    out = " ".join(pieces[start:end])
    return ("…" if start > 0 else "") + out + ("…" if end < len(pieces) else "")
