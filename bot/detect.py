"""What counts as new: a pure decider.

``decide`` takes what we stored about a source, what we just fetched and the
time, and returns intents (items to insert, items to update, events to
announce). It does no I/O, so every rule in DESIGN.md "What counts as new"
is tested here without a network or a database.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.models import EventKind, Item, Route, SourceSpec
from bot.verdicts import FilterHold, ItemFate, ItemVerdict

# Query parameters that vary per share and never identify content.
_TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ref|source|si)$", re.I)


def normalize_link(url: str | None) -> str | None:
    """A link reduced to what identifies the page: scheme-less, lower-case
    host, no default port, no fragment, no tracking parameters, no trailing
    slash. Feeds flip http/https and add utm_* over time."""
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    query = urlencode(
        sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
               if not _TRACKING_PARAMS.match(k))
    )
    path = parts.path.rstrip("/") or ""
    return urlunsplit(("", netloc, path, query, "")).lstrip("/")


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def fold_title(text: str) -> str:
    """A title as ``title_key`` folds it (NFKC, case-folded, spaces collapsed)."""
    return _fold(text)


def title_key(item: Item) -> str | None:
    """Normalized title + publication day; None without a date (a title alone
    repeats too often: "Q&A", "Weekly update")."""
    if item.published_at is None or not item.title.strip():
        return None
    return f"{_fold(item.title)}|{item.published_at.date().isoformat()}"


def item_identity(item: Item) -> str:
    """GUID, else normalized link, else a hash of title + date."""
    if item.guid and item.guid.strip():
        return "guid:" + item.guid.strip()
    link = normalize_link(item.link)
    if link:
        return "link:" + link
    date = item.published_at.isoformat() if item.published_at else ""
    digest = hashlib.sha256(f"{_fold(item.title)}|{date}".encode()).hexdigest()[:32]
    return "hash:" + digest


def content_hash(item: Item) -> str:
    """What an edit changes: title and description (not dates: a re-dated
    item is not an edit worth storing twice)."""
    h = hashlib.sha256()
    for part in (item.title, item.summary, item.link or "", item.image_url or "",
                 str(item.duration_s or ""), item.enclosure_url or ""):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    h.update(repr([(c.start_s, c.title) for c in item.chapters]).encode())
    return h.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class KnownItem:
    """What detection needs of an item already stored for the source."""

    id: int
    identity: str
    norm_link: str | None
    title_key: str | None
    content_hash: str


@dataclass(frozen=True, slots=True)
class NewItem:
    identity: str
    item: Item
    norm_link: str | None
    title_key: str | None
    content_hash: str


@dataclass(frozen=True, slots=True)
class ItemUpdate:
    item_id: int
    item: Item
    content_hash: str
    identity: str  # may differ from the stored one when a feed rewrote its GUIDs


@dataclass(frozen=True, slots=True)
class EventIntent:
    kind: EventKind
    new_index: int | None  # index into Decision.new_items (None: a stored item, ``item_id``)
    title: str
    url: str | None
    item_id: int | None = None  # a stored item whose held announcement is released (bot.holds)
    payload: tuple[tuple[str, Any], ...] = ()  # extra payload (a premiere's schedule)


@dataclass(frozen=True, slots=True)
class Decision:
    new_items: tuple[NewItem, ...] = ()
    updates: tuple[ItemUpdate, ...] = ()
    events: tuple[EventIntent, ...] = ()
    # One per new item, same order: what became of it and why (bot.verdicts).
    verdicts: tuple[ItemVerdict, ...] = ()
    # Announcements waiting (settle, not playable yet) and those let go (bot.holds).
    holds: tuple["HoldIntent", ...] = ()
    releases: tuple["ItemRelease", ...] = ()
    live: tuple["LiveIntent", ...] = ()


if TYPE_CHECKING:
    from bot.holds import HoldIntent, ItemRelease, LiveIntent


BookMatcher = Callable[[Item], bool]
# A moderator filter: None lets the item be announced, a FilterHold names
# the rule that held it back (bot.filters.make_item_judge).
ItemJudge = Callable[[Item], FilterHold | None]


# How much of a description counts as what an item is "about".
BOOK_OPENING_CHARS = 200


def make_book_matcher(keywords: Iterable[str], links: Iterable[str] = ()) -> BookMatcher:
    """Book news: the title, or the opening of the description, mentions a
    keyword (whole words, case-insensitive) or one of the book's links.

    Only the opening counts because the creator plugs the book at the end of
    every description ("My Book, Root Cause ... https://amzn.to/..."): an
    episode about page tables is not book news.
    """
    words = [k for k in (k.strip() for k in keywords) if k]
    link_keys = [n.casefold() for n in (normalize_link(u) for u in links) if n]
    pattern = (
        re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.I)
        if words else None
    )

    def matches(item: Item) -> bool:
        text = f"{item.title}\n{item.summary[:BOOK_OPENING_CHARS]}"
        if pattern is not None and pattern.search(text):
            return True
        folded = text.casefold()
        return any(link in folded for link in link_keys)

    return matches


def _unique(values: Iterable[str | None]) -> set[str]:
    """Values that occur exactly once: a link shared by many items (a podcast
    whose every <link> is the show page) identifies none of them."""
    counts = Counter(v for v in values if v)
    return {v for v, n in counts.items() if n == 1}


def decide(
    *,
    spec: SourceSpec,
    synced: bool,
    known: Sequence[KnownItem],
    fetched: Sequence[Item],
    now: datetime,
    is_book_news: BookMatcher | None = None,
    item_filter: ItemJudge | None = None,
) -> Decision:
    """Decide what of ``fetched`` is new, edited or worth announcing.

    - identity by GUID, else normalized link, else title+date hash;
    - an item whose identity is unknown but whose normalized link (when unique)
      or title+day matches a stored item is that item (feeds rewrite GUIDs);
    - the first successful poll (``synced`` False) announces nothing, or the
      newest ``spec.announce_on_first_poll`` (an explicit request: max_age
      does not apply to it);
    - later polls announce new items published within ``spec.max_age_s``
      (an undated item counts as just published);
    - an edited item is updated, never re-announced;
    - every new item gets a verdict saying which of these rules decided it.
    """
    by_identity = {k.identity: k for k in known}
    known_links = _unique(k.norm_link for k in known)
    by_link = {k.norm_link: k for k in known if k.norm_link in known_links}
    by_title = {k.title_key: k for k in known if k.title_key}

    # Drop repeats inside one fetch (broken feeds list an entry twice).
    entries: list[tuple[str, Item, str | None]] = []
    seen: set[str] = set()
    for item in fetched:
        identity = item_identity(item)
        if identity not in seen:
            seen.add(identity)
            entries.append((identity, item, normalize_link(item.link)))
    fetched_links = _unique(link for _, _, link in entries)

    new_items: list[NewItem] = []
    updates: list[ItemUpdate] = []
    matched: set[int] = set()
    for identity, item, link in entries:
        tkey = title_key(item)
        chash = content_hash(item)
        stored = by_identity.get(identity)
        if stored is None and link in fetched_links:
            stored = by_link.get(link)
        if stored is None and tkey:
            stored = by_title.get(tkey)
        if stored is not None:
            if stored.id in matched:
                continue  # two fetched entries for one stored item: keep the first
            matched.add(stored.id)
            if stored.content_hash != chash or stored.identity != identity:
                updates.append(ItemUpdate(stored.id, item, chash, identity))
            continue
        new_items.append(NewItem(identity, item, link if link in fetched_links else None, tkey, chash))

    announce, verdicts = _to_announce(spec, synced, new_items, now, item_filter)
    events: list[EventIntent] = []
    content_event = EventKind(spec.content.value)
    for index in announce:
        item = new_items[index].item
        if is_book_news is not None and is_book_news(item):
            events.append(EventIntent(EventKind.BOOK, index, item.title, item.link))
        events.append(EventIntent(content_event, index, item.title, item.link))
    return Decision(tuple(new_items), tuple(updates), tuple(events), verdicts)


def _to_announce(
    spec: SourceSpec,
    synced: bool,
    new_items: Sequence[NewItem],
    now: datetime,
    item_filter: ItemJudge | None,
) -> tuple[list[int], tuple[ItemVerdict, ...]]:
    """Indexes of new items to announce, oldest first (channels read
    top-down), and every new item's verdict. The rules apply in this order:
    the filter, then the first sync (nothing, or the newest N), then max_age.
    At a first sync that announces nothing a filter changed nothing: those
    items are the baseline, whatever the filter says."""
    held = {i: hold for i, n in enumerate(new_items)
            if item_filter is not None and (hold := item_filter(n.item)) is not None}
    candidates = [i for i in range(len(new_items)) if i not in held]
    verdicts: list[ItemVerdict] = []
    if not synced:
        newest_first = sorted(candidates, key=lambda i: _sort_key(new_items[i].item, i), reverse=True)
        chosen = newest_first[: spec.announce_on_first_poll]
        picked = set(chosen)
        n = spec.announce_on_first_poll
        for i in range(len(new_items)):
            if i in picked:
                fate, hold = ItemFate.ANNOUNCED, None
            elif i in held and n > 0:
                fate, hold = ItemFate.FILTERED, held[i]
            else:
                fate, hold = ItemFate.BASELINE, None
            verdicts.append(ItemVerdict(fate, first_sync=True, announce_first=n, held_by=hold))
    else:
        cutoff = now - timedelta(seconds=spec.max_age_s)
        chosen = [i for i in candidates if _recent(new_items[i].item, cutoff)]
        picked = set(chosen)
        for i in range(len(new_items)):
            if i in held:
                verdicts.append(ItemVerdict(ItemFate.FILTERED, held_by=held[i]))
            elif i in picked:
                verdicts.append(ItemVerdict(ItemFate.ANNOUNCED))
            else:
                verdicts.append(ItemVerdict(ItemFate.TOO_OLD, max_age_s=spec.max_age_s, cutoff=cutoff))
    return sorted(chosen, key=lambda i: _sort_key(new_items[i].item, i)), tuple(verdicts)


def _recent(item: Item, cutoff: datetime) -> bool:
    """Published after ``cutoff``; an undated item counts as just published."""
    return item.published_at is None or item.published_at >= cutoff


def _sort_key(item: Item, index: int) -> tuple[float, int]:
    # Feeds list newest first, so among equal (or missing) dates a lower
    # index is newer: negate it.
    ts = item.published_at.timestamp() if item.published_at else float("inf")
    return (ts, -index)


def plan_deliveries(
    events: Sequence[tuple[int | None, EventKind]], routes: Sequence[Route]
) -> list[tuple[int, Route]]:
    """(event index, route) pairs: each route gets the events whose kind it
    selects, but at most one per item, so a channel that routes both
    ``episode`` and ``book`` hears about the book episode once (as book news,
    which comes first in ``decide``'s order)."""
    plan: list[tuple[int, Route]] = []
    for route in routes:
        if route.broken:
            continue  # nothing new is queued for a channel we can't post to
        served: set[int] = set()
        for index, (item_key, kind) in enumerate(events):
            if kind not in route.kinds:
                continue
            if item_key is not None:
                if item_key in served:
                    continue
                served.add(item_key)
            plan.append((index, route))
    return plan
