"""One release, one announcement: is a new item the same release as one
announced lately by another source? Pure; the planner (bot.plan) asks.

Two items are the same release when their publication times are within
``[merge] window`` of each other AND either
- their titles match once normalised (``normalize_title``: NFKC, case
  folded, episode numbers such as "E42:", "#141 -", "Ep. 12", "Episode 12 |"
  removed, the show's names removed -- ``[merge] show_names`` and the
  polled feed's own title, never a name written into the code -- and
  punctuation dropped), or
- one links the other explicitly: the post or description of one contains
  the other's link, enclosure or YouTube video (any of youtube.com/watch,
  youtu.be, /shorts/, /live/, /embed/ forms). A link to a site's front page
  ties nothing (every episode links the show's home page).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta
from difflib import SequenceMatcher
from urllib.parse import urlsplit

from bot.detect import fold_title, normalize_link
from bot.intents import AnnouncedEvent
from bot.models import Item

BY_TITLE = "title"
BY_LINK = "link"

# Episode markers at the start ("E42:", "#141 -", "Ep. 12 |", "Episode 12:")
# or the end ("- Ep 12", "(#141)") of a title.
_NUMBER = r"(?:(?:episode|ep\.?|e)\s*\d+(?!\w)|#\s*\d+(?!\w))"
_LEADING = re.compile(rf"^\s*\(?{_NUMBER}\)?\s*[:.|\-–—]*\s*", re.I)
_TRAILING = re.compile(r"\s*[:|\-–—(]*\s*(?<!\w)(?:(?:episode|ep\.?|e)\s*\d+|#\s*\d+)\s*\)?\s*$", re.I)
_DIGITS = re.compile(r"\d+")
_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_URL = re.compile(r"https?://[^\s<>\"')\]]+", re.I)
_YOUTUBE_ID = re.compile(
    r"(?:youtube\.com/(?:watch\?(?:[^\s#]*&)?v=|shorts/|live/|embed/)|youtu\.be/)([A-Za-z0-9_-]{11})", re.I)
# Titles this much alike (difflib's ratio, on the normalised text) are one
# release; below it a one-word difference in a short title already fails.
SIMILAR = 0.92
MIN_SIMILAR_CHARS = 20


@dataclass(frozen=True, slots=True)
class MergeRules:
    """``[merge]`` as the planner needs it."""

    window_s: float
    show_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MergeMatch:
    anchor: AnnouncedEvent
    by: str  # BY_TITLE | BY_LINK


@lru_cache(maxsize=64)
def _names_pattern(show_names: tuple[str, ...]) -> re.Pattern[str] | None:
    names = sorted({fold_title(n) for n in show_names if n.strip()}, key=len, reverse=True)  # longest first
    if not names:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in names) + r")(?!\w)")


def normalize_title(title: str, show_names: Iterable[str] = ()) -> str:
    """A title reduced to what names the release (see the module doc)."""
    return _normalize(title, tuple(show_names))


# A poll compares each new item with every announcement of the window: the
# same titles and texts are normalised over and over, so remember them.
@lru_cache(maxsize=4096)
def _normalize(title: str, show_names: tuple[str, ...]) -> str:
    text = fold_title(title)
    names = _names_pattern(show_names)
    if names is not None:
        text = names.sub(" ", text)
    for _ in range(2):  # "E42: ... | #42"
        text = _LEADING.sub("", text)
        text = _TRAILING.sub("", text)
    return " ".join(_PUNCT.sub(" ", text).replace("_", " ").split())


def same_title(a: str, b: str, show_names: Iterable[str] = ()) -> bool:
    names = tuple(show_names)
    x, y = normalize_title(a, names), normalize_title(b, names)
    if not x or not y:
        return False
    if x == y:
        return True
    if min(len(x), len(y)) < MIN_SIMILAR_CHARS:
        return False
    # "… part 1" and "… part 2" are two releases however alike the rest is.
    if _DIGITS.findall(x) != _DIGITS.findall(y):
        return False
    matcher = SequenceMatcher(None, x, y, autojunk=False)
    # The cheap upper bounds first: most pairs are nothing alike.
    return matcher.real_quick_ratio() >= SIMILAR and matcher.quick_ratio() >= SIMILAR and matcher.ratio() >= SIMILAR


def _link_keys(url: str | None) -> set[str]:
    """What identifies a link: its normalised form and its YouTube video id.
    A front page (no path) identifies no release."""
    if not url:
        return set()
    keys = {f"yt:{m.group(1)}" for m in _YOUTUBE_ID.finditer(url)}
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        path = ""
    if path.strip("/"):
        norm = normalize_link(url)
        if norm:
            keys.add(norm.casefold())
    return keys


def item_keys(links: Iterable[str | None], video_id: str | None = None) -> frozenset[str]:
    return _item_keys(tuple(links), video_id)


@lru_cache(maxsize=4096)
def _item_keys(links: tuple[str | None, ...], video_id: str | None) -> frozenset[str]:
    keys = {f"yt:{video_id}"} if video_id else set()
    for link in links:
        keys |= _link_keys(link)
    return frozenset(keys)


@lru_cache(maxsize=4096)
def mentioned_keys(text: str) -> frozenset[str]:
    """The keys of every link written in ``text`` (a post, a description)."""
    keys = {f"yt:{m.group(1)}" for m in _YOUTUBE_ID.finditer(text)}
    for url in _URL.findall(text):
        keys |= _link_keys(url.rstrip(".,;:!?"))
    return frozenset(keys)


def find_release(
    item: Item, source: str, announced: Sequence[AnnouncedEvent], rules: MergeRules, *, now: datetime,
    show_names: Iterable[str] = (),
) -> list[MergeMatch]:
    """The announcements of OTHER sources that ``item`` (new from
    ``source``) is the same release as, oldest first. ``show_names`` adds
    names to strip to ``rules.show_names`` (the polled feed's title)."""
    names = (*rules.show_names, *show_names)
    window = timedelta(seconds=rules.window_s)
    published = item.published_at or now
    mine = item_keys((item.link, item.enclosure_url), item.video_id)
    my_text = f"{item.title}\n{item.summary}"
    my_mentions = mentioned_keys(my_text)
    found: list[MergeMatch] = []
    for anchor in announced:
        if anchor.source == source or anchor.source is None:
            continue  # the same source: an edit of its own item, not another release's
        when = anchor.published_at or anchor.created_at
        if abs(published - when) > window:
            continue
        theirs, their_mentions = _anchor_keys(anchor)
        if (mine & their_mentions) or (theirs & my_mentions):
            found.append(MergeMatch(anchor, BY_LINK))
        elif same_title(item.title, anchor.title, names):
            found.append(MergeMatch(anchor, BY_TITLE))
    return found


@lru_cache(maxsize=1024)
def _anchor_keys(anchor: AnnouncedEvent) -> tuple[frozenset[str], frozenset[str]]:
    """(what identifies it, what it links), once per announcement and poll."""
    # Links an edit added count as the announcement's own: a post linking
    # the video finds the episode's announcement the video was merged into.
    also = tuple(a.url for a in anchor.last_edit.also) if anchor.last_edit is not None else ()
    return item_keys((*anchor.links, *also), anchor.video_id), mentioned_keys(f"{anchor.title}\n{anchor.summary}")


def also_label(url: str | None, source: str) -> str:
    """What "Also on …" calls a link: the platform for the well-known
    hosts, else the source's name."""
    host = (urlsplit(url).hostname or "").lower() if url else ""
    host = host[4:] if host.startswith("www.") else host
    for suffix, label in (("youtube.com", "YouTube"), ("youtu.be", "YouTube"), ("spotify.com", "Spotify"),
                          ("podcasts.apple.com", "Apple Podcasts"), ("x.com", "X"), ("twitter.com", "X")):
        if host == suffix or host.endswith("." + suffix):
            return label
    return source
