"""A profile page saved as plain text -> ProfileSnapshot, and displayed counts.

The forms of ../shared/seeds/000 (a stats site: "644 following86k
followers") and 001 (x.com logged out: "21.8K posts", "640 / Following /
88.8K / Followers", "Pinned"); docs/x-snapshot-format.md, "Page text".
Pure: every failure is a ``FeedParseError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from bot.errors import FeedParseError
from bot.models import Item
from bot.profile import PinnedPost, ProfileSnapshot, shorten

_MAX_TEXT_CHARS = 4 * 1024 * 1024

# ------------------------------------------------------------------- counts

_COUNT = re.compile(r"([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+(?:\.[0-9]+)?)\s?([KkMmBb]?)")
_MULTIPLIER = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
MAX_COUNT = 10**12


def parse_count(text: str) -> int:
    """A displayed count as an int: "640", "21,739", "86k", "88.8K", "1.2M".

    Raises FeedParseError (and nothing else) for anything else, including a
    fraction without a suffix ("1.5") and implausible sizes.
    """
    if not isinstance(text, str):
        raise FeedParseError(f"not a count: {text!r}")
    stripped = text.strip()
    match = _COUNT.fullmatch(stripped) if len(stripped) <= 32 else None
    if match is None:
        raise FeedParseError(f"not a count: {text[:40]!r}")
    digits, suffix = match.group(1).replace(",", ""), match.group(2).lower()
    try:
        value = Decimal(digits) * _MULTIPLIER[suffix]
    except InvalidOperation:  # cannot happen after the regex; stay inside the contract
        raise FeedParseError(f"not a count: {text[:40]!r}") from None
    if not suffix and value != value.to_integral_value():
        raise FeedParseError(f"not a count: {text[:40]!r} (a fraction)")
    if value > MAX_COUNT:
        raise FeedParseError(f"not a count: {text[:40]!r} (implausibly large)")
    return int(value)  # "1.2345K" -> 1234: X shows rounded-down figures too


# ------------------------------------------------------------- page text form

_NUM = r"([0-9][0-9,.]*\s?[KkMmBb]?)"
_FOLLOWERS = re.compile(_NUM + r"\s*followers(?![a-z])", re.I)
_FOLLOWING = re.compile(_NUM + r"\s*following(?![a-z])", re.I)
_POSTS = re.compile(_NUM + r"\s*(?:posts|tweets)(?![a-z])", re.I)
_TWEETED = re.compile(r"tweeted\s+" + _NUM + r"\s+times", re.I)
_HANDLE_LINE = re.compile(r"^@([A-Za-z0-9_]{1,15})$")
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_DATE = re.compile(r"^([A-Za-z]{3})[a-z]* ([0-9]{1,2})(?:, ([0-9]{4}))?$")
_AGO = re.compile(r"^([0-9]{1,2})([smhd])$")
_METRIC_LINE = re.compile(r"^[0-9][0-9,.]*\s?[KkMmBb]?$")
# Lines of a post block that are labels of media, not the author's words.
_MEDIA_LINES = frozenset({"image", "article cover image", "article", "video", "gif",
                          "embedded video", "show more", "quote", "user avatar"})


def _clean_lines(text: str) -> list[str]:
    lines = []
    for raw in text.splitlines():
        line = raw.strip().lstrip("•·").strip()
        if line:
            lines.append(line)
    return lines


def _own_region(lines: list[str], handle: str) -> list[str]:
    """The lines before anyone else's handle: a page's own counts and bio come
    first, and seed 000 lists other profiles ("66 following231k followers")
    further down."""
    for i, line in enumerate(lines):
        m = _HANDLE_LINE.match(line)
        if m and m.group(1).casefold() != handle.casefold():
            return lines[:i]
    return lines


def _first_count(pattern: re.Pattern[str], text: str) -> int | None:
    for match in pattern.finditer(text):
        try:
            return parse_count(match.group(1))
        except FeedParseError:
            continue  # "2.0. followers": try the next mention
    return None


def _is_label(line: str) -> bool:
    return bool(
        _FOLLOWING.search(line) or _FOLLOWERS.search(line) or _METRIC_LINE.match(line)
        or _DATE.match(line) or _AGO.match(line) or line.lower().startswith("joined ")
    )


def _find_bio(lines: list[str], handle: str) -> str | None:
    at = "@" + handle.casefold()
    for i, line in enumerate(lines[:-1]):  # x.com form: the line after "@handle"
        if line.casefold() == at:
            following = lines[i + 1]
            return None if _is_label(following) else following
    for i, line in enumerate(lines):  # stats form: the line before the counts
        if _FOLLOWING.search(line) or _FOLLOWERS.search(line):
            if i > 0 and not _is_label(lines[i - 1]):
                return lines[i - 1]
            return None
    return None


def _post_date(line: str, taken_at: datetime) -> datetime | None:
    m = _AGO.match(line)
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return taken_at - timedelta(**{unit: int(m.group(1))})
    m = _DATE.match(line)
    if not m or m.group(1).lower() not in _MONTHS:
        return None
    month, day = _MONTHS[m.group(1).lower()], int(m.group(2))
    year = int(m.group(3)) if m.group(3) else taken_at.year
    try:
        when = datetime(year, month, day, tzinfo=timezone.utc)
    except ValueError:
        return None
    if not m.group(3) and when > taken_at + timedelta(days=1):
        when = when.replace(year=year - 1)  # "Dec 30" seen on Jan 2 is last year's
    return when


@dataclass(frozen=True, slots=True)
class _PageBlock:
    start: int
    published_at: datetime
    text: str


def _post_blocks(lines: list[str], handle: str, taken_at: datetime) -> list[_PageBlock]:
    """x.com form: "user avatar / Name / @handle / date / words... / 53K"."""
    at = "@" + handle.casefold()
    blocks: list[_PageBlock] = []
    i = 0
    while i < len(lines):
        if lines[i].casefold() == at and i + 1 < len(lines):
            when = _post_date(lines[i + 1], taken_at)
            if when is not None:
                words: list[str] = []
                j = i + 2
                while j < len(lines) and not _ends_post(lines, j, at):
                    if lines[j].lower() not in _MEDIA_LINES:
                        words.append(lines[j])
                    j += 1
                if words:
                    blocks.append(_PageBlock(i, when, "\n".join(words)))
                i = j
                continue
        i += 1
    return blocks


def _ends_post(lines: list[str], j: int, at: str) -> bool:
    line = lines[j]
    return (
        bool(_METRIC_LINE.match(line))
        or line.lower() == "pinned"
        or line.casefold() == at
        or (line.lower() == "user avatar" and j + 2 < len(lines) and lines[j + 2].casefold() == at)
    )


def _page_post_item(block: _PageBlock) -> Item:
    # The page shows no post ids: identity falls back to title + date (detect).
    return Item(title=shorten(block.text), summary=block.text, published_at=block.published_at)


def parse_profile_text(text: str, handle: str, taken_at: datetime) -> ProfileSnapshot:
    """A profile page saved as plain text -> snapshot. FeedParseError when it
    is not one (no follower count for the profile)."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT_CHARS:
        raise FeedParseError("not an X profile page: empty or too large")
    handle = handle.lstrip("@")
    lines = _clean_lines(text)
    own = _own_region(lines, handle)
    own_text = "\n".join(own)
    followers = _first_count(_FOLLOWERS, own_text)
    if followers is None:
        raise FeedParseError(f"not an X profile page for @{handle}: no follower count found")
    # Seed 000 says both "over 21K tweets" and "has tweeted 21,739 times":
    # the exact figure wins.
    posts = _first_count(_TWEETED, own_text)
    if posts is None:
        posts = _first_count(_POSTS, own_text)
    blocks = _post_blocks(lines, handle, taken_at)
    pinned_at = next((i for i, line in enumerate(lines) if line.lower() == "pinned"), None)
    pinned_block = next((b for b in blocks if pinned_at is not None and b.start > pinned_at), None)
    pinned = PinnedPost(id=None, text=pinned_block.text) if pinned_block else None
    return ProfileSnapshot(
        handle=handle,
        taken_at=taken_at,
        followers=followers,
        following=_first_count(_FOLLOWING, own_text),
        posts=posts,
        bio=_find_bio(own, handle),
        pinned=pinned,
        recent_posts=tuple(_page_post_item(b) for b in blocks if b is not pinned_block),
    )
