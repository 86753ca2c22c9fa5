"""X profile snapshots as a time series, and what changed between two of them.

Pure: no I/O. ``diff_snapshots`` turns (previous, current) into the
``profile`` / ``book`` / ``milestone`` changes the pipeline announces;
``profile_changes`` is the same with an x source's configured milestones
(what the poller calls).

New *posts* are deliberately not diffed here: a snapshot's ``recent_posts``
are items, and the item pipeline (``bot.detect.decide``) already knows
identity, first-poll silence, ``max_age``, edits and book news for items.
Emitting ``post`` events here too would announce every post twice.

``None`` in a snapshot means "this snapshot did not say" (a page form that
shows no post count, no bio): a field that is unknown on either side is never
reported as changed. The exception is ``pinned``: no pinned post followed by
one *is* a change (the seeds: the book announcement gets pinned), while a
pinned post disappearing is not announced (unpinning is not news, and a page
form that does not show the pinned post must not look like an unpin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Collection, Sequence

from bot.config import XSourceOptions
from bot.models import EventKind, Item

BookNews = Callable[[Item], bool]

# Between two snapshots a real account does not more than double its
# followers; a jump past that is a parse glitch (86 read for 86k) and must not
# announce every threshold in between.
MAX_GROWTH = 2.0

_TITLE_CHARS = 120
_URL_TOKEN = re.compile(
    r"(?i)\b(?:https?://)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}(?:/[^\s]*)?"
)
_LINK_TLDS = frozenset({"com", "org", "net", "io", "dev", "co", "to", "me", "ly", "gg", "ai",
                        "app", "page", "link", "blog", "xyz", "info", "so", "sh", "fm"})
_SCHEME = re.compile(r"(?i)\bhttps?://(?:www\.)?")
_ELLIPSIS = re.compile(r"\s*(?:…|\.\.\.)\s*$")


@dataclass(frozen=True, slots=True)
class PinnedPost:
    """The pinned post. ``id``/``url`` are unknown (None) in the page text form."""

    id: str | None
    text: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileSnapshot:
    """What an X profile looked like at ``taken_at`` (aware UTC)."""

    handle: str
    taken_at: datetime
    followers: int | None
    following: int | None = None
    posts: int | None = None
    bio: str | None = None
    pinned: PinnedPost | None = None
    recent_posts: tuple[Item, ...] = ()
    # Only the API provider knows these; fetch_posts needs the user id.
    user_id: str | None = None
    name: str | None = None
    image_url: str | None = None
    website: str | None = None


@dataclass(frozen=True, slots=True)
class Every:
    """A milestone every ``step`` followers (10_000 -> 10k, 20k, 30k ...)."""

    step: int

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise ValueError(f"milestone step must be positive, got {self.step}")


Milestones = Sequence[int] | Every


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """One thing to announce. The pipeline turns it into an Event (item_id None)."""

    kind: EventKind
    title: str
    url: str | None
    payload: dict[str, Any] = field(default_factory=dict)


def profile_url(handle: str) -> str:
    return f"https://x.com/{handle}"


def shorten(text: str, limit: int = _TITLE_CHARS) -> str:
    """One line of at most ``limit`` characters, cut at a word when possible."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + "…"


def _bio_key(bio: str) -> str:
    # Whitespace and http/https/www flips are how providers differ, not edits.
    return _SCHEME.sub("", " ".join(bio.split()))


def _pinned_key(text: str) -> str:
    return _ELLIPSIS.sub("", " ".join(text.split())).casefold()


def same_pinned(a: PinnedPost, b: PinnedPost) -> bool:
    """Same post: same id when both have one; else the same text, where one
    may be a page's truncation of the other."""
    if a.id and b.id:
        return a.id == b.id
    ta, tb = _pinned_key(a.text), _pinned_key(b.text)
    if ta == tb:
        return True
    short, long_ = sorted((ta, tb), key=len)
    return len(short) >= 20 and long_.startswith(short)


def bio_links(bio: str) -> list[str]:
    """URL-like tokens of a bio ("amzn.to/4cfQjJj"), as https URLs, in order."""
    links: list[str] = []
    for match in _URL_TOKEN.finditer(bio):
        token = match.group(0).rstrip(".,;:!?)")
        if "@" in bio[max(0, match.start() - 1): match.start()]:
            continue  # "@esri" style mentions are not links
        bare = not _SCHEME.match(token)
        if bare and "/" not in token and token.rsplit(".", 1)[-1].lower() not in _LINK_TLDS:
            continue  # "Node.js" is a word, "pglocks.org" a link
        url = "https://" + token if bare else token
        if url not in links:
            links.append(url)
    return links


def _pinned_dict(p: PinnedPost | None) -> dict[str, Any] | None:
    return None if p is None else {"id": p.id, "text": p.text, "url": p.url}


def _bio_item(bio: str) -> Item:
    return Item(title="", summary=bio)


def _pinned_item(p: PinnedPost) -> Item:
    return Item(title=shorten(p.text), summary=p.text, link=p.url, guid=p.id)


def diff_snapshots(
    previous: ProfileSnapshot | None,
    current: ProfileSnapshot,
    *,
    milestones: Milestones,
    is_book_news: BookNews | None,
    best_followers: int | None = None,
    announced_post_ids: Collection[str] = (),
) -> list[ProfileChange]:
    """What changed from ``previous`` to ``current``, in announcement order:
    profile (bio), profile (pinned), book, milestone.

    - ``previous`` None (the first snapshot): nothing.
    - bio changed: a profile change; book news if the new bio mentions the
      book and the old one did not.
    - pinned post changed (or first pinned): a profile change; book news if
      the new pinned post is about the book, unless its id is in
      ``announced_post_ids`` (already announced as a post from the timeline).
    - Book news from the bio and the pinned post in one diff is ONE ``book``
      change carrying both (``payload["reasons"]``, ``payload["links"]``): a
      channel hears the book news once.
    - followers crossing thresholds upward: one ``milestone`` for the highest
      crossed. ``best_followers`` (the highest count of any earlier snapshot)
      stops a dip-and-recover around a threshold from announcing it twice.
    """
    if previous is None:
        return []
    handle = current.handle
    changes: list[ProfileChange] = []
    book_reasons: list[str] = []
    book_links: list[str] = []
    book_title: str | None = None

    if (
        previous.bio is not None
        and current.bio is not None
        and _bio_key(previous.bio) != _bio_key(current.bio)
    ):
        is_book = (
            is_book_news is not None
            and is_book_news(_bio_item(current.bio))
            and not is_book_news(_bio_item(previous.bio))
        )
        changes.append(ProfileChange(
            EventKind.PROFILE,
            f"@{handle} changed their bio: {shorten(current.bio)}",
            profile_url(handle),
            {"handle": handle, "field": "bio", "old": previous.bio, "new": current.bio,
             "book_news": is_book},
        ))
        if is_book:
            book_reasons.append("bio")
            old_links = set(bio_links(previous.bio))
            book_links.extend(u for u in bio_links(current.bio) if u not in old_links)
            book_title = f"Book news from @{handle}'s bio: {shorten(current.bio)}"

    pinned = current.pinned
    if pinned is not None and (previous.pinned is None or not same_pinned(previous.pinned, pinned)):
        is_book = (
            is_book_news is not None
            and is_book_news(_pinned_item(pinned))
            and not (pinned.id is not None and pinned.id in announced_post_ids)
        )
        changes.append(ProfileChange(
            EventKind.PROFILE,
            f"@{handle} pinned: {shorten(pinned.text)}",
            pinned.url or profile_url(handle),
            {"handle": handle, "field": "pinned", "old": _pinned_dict(previous.pinned),
             "new": _pinned_dict(pinned), "book_news": is_book},
        ))
        if is_book:
            book_reasons.append("pinned")
            if pinned.url:
                book_links.insert(0, pinned.url)
            # The pinned post reads better as the headline than a bio line.
            book_title = f"Book news from @{handle}: {shorten(pinned.text)}"

    if book_reasons:
        assert book_title is not None
        # The pinned post, else a link the bio gained with the book mention
        # (seed 001: amzn.to/4cfQjJj), opens the news better than the profile.
        book_url = book_links[0] if book_links else profile_url(handle)
        changes.append(ProfileChange(
            EventKind.BOOK, book_title, book_url,
            {"handle": handle, "reasons": book_reasons, "links": book_links,
             "bio": current.bio, "pinned": _pinned_dict(pinned)},
        ))

    threshold = crossed_milestone(previous.followers, current.followers, milestones,
                                  best_followers=best_followers)
    if threshold is not None:
        changes.append(ProfileChange(
            EventKind.MILESTONE,
            f"@{handle} passed {threshold:,} followers",
            profile_url(handle),
            {"handle": handle, "threshold": threshold, "followers": current.followers,
             "previous": previous.followers},
        ))
    return changes


def profile_changes(
    options: XSourceOptions,
    previous: ProfileSnapshot | None,
    current: ProfileSnapshot,
    *,
    best_followers: int | None,
    is_book_news: BookNews | None,
) -> tuple[ProfileChange, ...]:
    """``diff_snapshots`` with an x source's options: its explicit follower
    thresholds, else one every ``milestone_every``."""
    milestones: Milestones = options.milestones or Every(options.milestone_every)
    return tuple(diff_snapshots(previous, current, milestones=milestones, is_book_news=is_book_news,
                                best_followers=best_followers))


def crossed_milestone(
    previous: int | None,
    current: int | None,
    milestones: Milestones,
    *,
    best_followers: int | None = None,
) -> int | None:
    """The highest threshold in (max(previous, best_followers), current], or None.

    Never fires from an unknown or zero previous count (a garbage snapshot),
    nor on an implausible jump (more than ``MAX_GROWTH`` times): a bad parse
    must not announce "passed 10k, 20k, ... 80k".
    """
    if previous is None or current is None or previous <= 0 or current <= previous:
        return None
    if current > previous * MAX_GROWTH:
        return None
    floor = max(previous, best_followers or 0)
    if isinstance(milestones, Every):
        top = current - current % milestones.step
        return top if top > floor else None
    crossed = [t for t in milestones if t > 0 and floor < t <= current]
    return max(crossed) if crossed else None
