"""The ``x`` source kind's providers: X API v2, and profile snapshots.

- ``XApiClient``: X API v2 with an app-only bearer token. ``fetch_profile``
  (one user read, with the pinned post as an expansion) and ``fetch_posts``
  (the user's timeline since a post id, replies and reposts excluded).
- ``parse_snapshot_json``: the JSON snapshot format of
  docs/x-snapshot-format.md (``snapshot_to_json`` writes it).
- ``parse_profile_text``: a profile page saved as plain text, in the forms of
  ../shared/seeds/000 (a stats site: "644 following86k followers") and 001
  (x.com logged out: "21.8K posts", "640 / Following / 88.8K / Followers",
  "Pinned").
- ``parse_snapshot`` / ``fetch_snapshot``: the ``snapshot`` provider (a URL or
  a file, JSON or page text).

Every failure is a ``SourceError``: ``FetchError`` for transport and HTTP
status, ``FeedParseError`` for bytes that are not a snapshot or an API
answer, ``XAccountError`` for an account X will not show. Messages are one
line and never contain the bearer token.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping

import aiohttp

from bot.clock import Clock, utc_now
from bot.errors import FeedParseError, FetchError, SourceError
from bot.models import Item
from bot.profile import PinnedPost, ProfileSnapshot, shorten
from bot.sources.http import HttpFetcher, parse_retry_after
from bot.sources.text import strip_html

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.x.com/2"
SNAPSHOT_FORMAT = "showbot.x-snapshot/1"

# The field lists, plus ``entities``: X wraps every bio link in t.co,
# and the book link ("amzn.to/...") is only matchable once expanded. Extra
# fields cost nothing: pay-per-use bills per resource read, not per field.
PROFILE_PARAMS: dict[str, str] = {
    "user.fields": "description,entities,pinned_tweet_id,profile_image_url,public_metrics,url",
    "expansions": "pinned_tweet_id",
    "tweet.fields": "created_at,entities,note_tweet",  # for the pinned post under includes
}
TIMELINE_FIELDS = "created_at,public_metrics,entities,note_tweet"
# The first poll is silent (DESIGN "What counts as new"), so reading 100 posts
# for it would be $0.50 of history nobody sees; 5 is the API's minimum.
FIRST_PAGE = 5
PAGE = 100

_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_ID = re.compile(r"^[0-9]{1,25}$")
_MAX_TEXT_CHARS = 4 * 1024 * 1024
_MAX_RESET_WAIT_S = 86400.0
_CHUNK = 64 * 1024


class XAccountError(SourceError):
    """X answered 200 but will not show the account: ``reason`` is
    "not_found", "suspended", "protected" or "other"."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# ------------------------------------------------------------------- counts

_COUNT = re.compile(r"([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+(?:\.[0-9]+)?)\s?([KkMmBb]?)")
_MULTIPLIER = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
_MAX_COUNT = 10**12


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
    if value > _MAX_COUNT:
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


# ------------------------------------------------------------------ JSON form


def _json_obj(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FeedParseError(f"{what}: not valid JSON") from None
    if not isinstance(value, dict):
        raise FeedParseError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise FeedParseError(f"{where}.{key}: expected a string, got {value!r:.60}")


def _opt_count(obj: Mapping[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise FeedParseError(f"{where}.{key}: expected a count, got {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= _MAX_COUNT:
            raise FeedParseError(f"{where}.{key}: expected a count, got {value!r}")
        return value
    if isinstance(value, str):
        try:
            return parse_count(value)
        except FeedParseError:
            raise FeedParseError(f"{where}.{key}: expected a count, got {value!r:.60}") from None
    raise FeedParseError(f"{where}.{key}: expected a count, got {value!r:.60}")


def _parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise FeedParseError(f"{where}: expected an ISO 8601 time, got {value!r:.60}")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise FeedParseError(f"{where}: expected an ISO 8601 time, got {value!r:.60}") from None
    # A zone-less time is taken as UTC, the format's documented default.
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _status_url(handle: str | None, post_id: str) -> str:
    return f"https://x.com/{handle}/status/{post_id}" if handle else f"https://x.com/i/web/status/{post_id}"


def parse_snapshot_json(data: bytes) -> ProfileSnapshot:
    """The JSON snapshot format (docs/x-snapshot-format.md) -> snapshot."""
    obj = _json_obj(data, "snapshot")
    handle = _opt_str(obj, "handle", "snapshot")
    if not handle or not _HANDLE.match(handle.lstrip("@")):
        raise FeedParseError(f"snapshot.handle: expected an X handle, got {handle!r:.60}")
    handle = handle.lstrip("@")
    followers = _opt_count(obj, "followers", "snapshot")
    if followers is None:
        raise FeedParseError("snapshot.followers: missing")
    pinned_raw = obj.get("pinned")
    pinned = None
    if pinned_raw is not None:
        if not isinstance(pinned_raw, dict):
            raise FeedParseError(f"snapshot.pinned: expected an object or null, got {pinned_raw!r:.60}")
        text = _opt_str(pinned_raw, "text", "snapshot.pinned")
        if not text:
            raise FeedParseError("snapshot.pinned.text: missing")
        pinned = PinnedPost(
            id=_opt_str(pinned_raw, "id", "snapshot.pinned"),
            text=text,
            url=_opt_str(pinned_raw, "url", "snapshot.pinned"),
        )
    posts_raw = obj.get("recent_posts") or []
    if not isinstance(posts_raw, list):
        raise FeedParseError("snapshot.recent_posts: expected a list")
    recent = tuple(_json_post(p, handle, f"snapshot.recent_posts[{i}]")
                   for i, p in enumerate(posts_raw))
    return ProfileSnapshot(
        handle=handle,
        taken_at=_parse_time(obj.get("taken_at"), "snapshot.taken_at"),
        followers=followers,
        following=_opt_count(obj, "following", "snapshot"),
        posts=_opt_count(obj, "posts", "snapshot"),
        bio=_opt_str(obj, "bio", "snapshot"),
        pinned=pinned,
        recent_posts=recent,
        user_id=_opt_str(obj, "user_id", "snapshot"),
        name=_opt_str(obj, "name", "snapshot"),
        image_url=_opt_str(obj, "image_url", "snapshot"),
        website=_opt_str(obj, "website", "snapshot"),
    )


def _json_post(raw: Any, handle: str, where: str) -> Item:
    if not isinstance(raw, dict):
        raise FeedParseError(f"{where}: expected an object")
    text = _opt_str(raw, "text", where)
    if not text:
        raise FeedParseError(f"{where}.text: missing")
    post_id = _opt_str(raw, "id", where)
    created = raw.get("created_at")
    return Item(
        title=shorten(text),
        summary=text,
        guid=post_id,
        link=_opt_str(raw, "url", where) or (_status_url(handle, post_id) if post_id else None),
        published_at=_parse_time(created, f"{where}.created_at") if created is not None else None,
    )


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def snapshot_to_json(snapshot: ProfileSnapshot) -> bytes:
    """The documented JSON form; ``parse_snapshot_json`` reads it back
    (what the store keeps as ``raw_json``)."""
    pinned = snapshot.pinned
    doc: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "handle": snapshot.handle,
        "taken_at": _iso(snapshot.taken_at),
        "user_id": snapshot.user_id,
        "name": snapshot.name,
        "followers": snapshot.followers,
        "following": snapshot.following,
        "posts": snapshot.posts,
        "bio": snapshot.bio,
        "website": snapshot.website,
        "image_url": snapshot.image_url,
        "pinned": None if pinned is None else {"id": pinned.id, "text": pinned.text, "url": pinned.url},
        "recent_posts": [
            {"id": p.guid, "text": p.summary or p.title, "url": p.link,
             "created_at": _iso(p.published_at) if p.published_at else None}
            for p in snapshot.recent_posts
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


# -------------------------------------------------------- snapshot provider


def parse_snapshot(data: bytes, *, handle: str, taken_at: datetime) -> ProfileSnapshot:
    """JSON or a saved page (plain text, or HTML reduced to text) -> snapshot.
    ``taken_at`` is used when the data does not say (the page forms)."""
    handle = handle.lstrip("@")
    head = data[:64].lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if head.startswith(b"{"):
        snapshot = parse_snapshot_json(data)
        if snapshot.handle.casefold() != handle.casefold():
            raise FeedParseError(f"snapshot is for @{snapshot.handle}, expected @{handle}")
        return snapshot
    text = data.decode("utf-8", errors="replace")
    if head.startswith(b"<"):
        text = strip_html(text)
    return parse_profile_text(text, handle, taken_at)


async def fetch_snapshot(
    location: str,
    *,
    handle: str,
    fetcher: HttpFetcher,
    clock: Clock = utc_now,
    max_bytes: int = 10 * 1024 * 1024,
) -> ProfileSnapshot:
    """The ``snapshot`` provider: an http(s) URL through ``fetcher`` (SSRF
    guard, caps), else a local file path (operator config only: a file is
    not something a chat command should be able to name)."""
    if location.startswith(("http://", "https://")):
        result = await fetcher.fetch(location)
        data = result.body or b""
    else:
        path = Path(location.removeprefix("file://"))
        data = await asyncio.to_thread(_read_file, path, max_bytes)
    return parse_snapshot(data, handle=handle, taken_at=clock())


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise FetchError(f"cannot read snapshot file {str(path)[:200]}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise FetchError(f"snapshot file {str(path)[:200]} exceeds the {max_bytes}-byte limit")
    return data


# ------------------------------------------------------------ API: payloads


def expand_links(text: str, entities: Any) -> str:
    """Replace t.co links by what they point to; drop media links (the
    trailing t.co of an attached image says nothing in a chat message)."""
    urls = entities.get("urls") if isinstance(entities, dict) else None
    if not isinstance(urls, list):
        return text
    for entry in urls:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        short = entry["url"]
        expanded = entry.get("expanded_url")
        if "media_key" in entry or (
            isinstance(expanded, str) and re.search(r"//(?:x|twitter)\.com/.+/(?:photo|video)/", expanded)
        ):
            text = text.replace(short, "")
        elif isinstance(expanded, str) and expanded:
            text = text.replace(short, expanded)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _post_text(tweet: Mapping[str, Any]) -> str:
    """The full text: ``note_tweet`` holds posts longer than 280 characters
    (``text`` is then a truncation). X escapes &, < and > in both."""
    note = tweet.get("note_tweet")
    if isinstance(note, dict) and isinstance(note.get("text"), str) and note["text"].strip():
        return expand_links(html.unescape(note["text"]), note.get("entities") or tweet.get("entities"))
    text = tweet.get("text")
    return expand_links(html.unescape(text), tweet.get("entities")) if isinstance(text, str) else ""


def _api_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def post_item(tweet: Any, handle: str | None) -> Item | None:
    """An API post object -> Item (guid = the post id). None when malformed."""
    if not isinstance(tweet, dict) or not isinstance(tweet.get("id"), str) or not _ID.match(tweet["id"]):
        return None
    text = _post_text(tweet)
    if not text:
        return None
    return Item(
        title=shorten(text),
        summary=text,
        guid=tweet["id"],
        link=_status_url(handle, tweet["id"]),
        published_at=_api_time(tweet.get("created_at")),
    )


def newest_post_id(items: list[Item] | tuple[Item, ...]) -> str | None:
    """The ``since_id`` for the next timeline poll (ids are time-ordered numbers)."""
    ids = [int(i.guid) for i in items if i.guid and _ID.match(i.guid)]
    return str(max(ids)) if ids else None


def _account_error(errors: Any, what: str) -> XAccountError:
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    detail = str(first.get("detail") or first.get("message") or first.get("title") or "no detail")
    kind, title = str(first.get("type", "")), str(first.get("title", ""))
    if "suspended" in detail.lower():
        return XAccountError(f"{what} is suspended on X", reason="suspended")
    if "not-authorized" in kind or title == "Authorization Error" or "protected" in detail.lower():
        return XAccountError(
            f"{what} is protected: its posts are visible only to approved followers",
            reason="protected")
    if "resource-not-found" in kind or title == "Not Found Error":
        return XAccountError(f"{what} was not found on X (renamed or deleted?)", reason="not_found")
    return XAccountError(f"X API error for {what}: {shorten(detail, 200)}", reason="other")


def _user_snapshot(body: dict[str, Any], handle: str, taken_at: datetime) -> ProfileSnapshot:
    user = body.get("data")
    if not isinstance(user, dict):
        if "errors" in body:
            raise _account_error(body["errors"], f"@{handle}")
        raise FeedParseError(f"X API: no user data for @{handle}")
    metrics = user.get("public_metrics")
    if not isinstance(metrics, dict) or not isinstance(metrics.get("followers_count"), int):
        raise FeedParseError(f"X API: no follower count for @{handle}")
    username = user.get("username") if isinstance(user.get("username"), str) else handle
    entities = user.get("entities") if isinstance(user.get("entities"), dict) else {}
    bio = user.get("description")
    bio = expand_links(html.unescape(bio), entities.get("description")) if isinstance(bio, str) else None
    website = user.get("url") if isinstance(user.get("url"), str) else None
    if website:
        website = expand_links(website, entities.get("url")) or None
    return ProfileSnapshot(
        handle=username,
        taken_at=taken_at,
        followers=metrics["followers_count"],
        following=_int_or_none(metrics.get("following_count")),
        posts=_int_or_none(metrics.get("tweet_count")),
        bio=bio,
        pinned=_pinned(user, body.get("includes"), username),
        user_id=user.get("id") if isinstance(user.get("id"), str) else None,
        name=user.get("name") if isinstance(user.get("name"), str) else None,
        image_url=user.get("profile_image_url") if isinstance(user.get("profile_image_url"), str) else None,
        website=website,
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _pinned(user: Mapping[str, Any], includes: Any, handle: str) -> PinnedPost | None:
    pinned_id = user.get("pinned_tweet_id")
    if not isinstance(pinned_id, str):
        return None
    tweets = includes.get("tweets") if isinstance(includes, dict) else None
    for tweet in tweets if isinstance(tweets, list) else []:
        if isinstance(tweet, dict) and tweet.get("id") == pinned_id:
            text = _post_text(tweet)
            return PinnedPost(pinned_id, text, _status_url(handle, pinned_id)) if text else None
    # Pinned but not expanded (deleted, withheld): unknown, which diffing ignores.
    return None


# -------------------------------------------------------------- API: client


def _problem_detail(body: bytes) -> str:
    """The human part of an error body, in either style X uses:
    v2 problems ``{"title", "detail"}`` or v1.1 ``{"errors": [{"message"}]}``."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ""
    if not isinstance(obj, dict):
        return ""
    errors = obj.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        text = first.get("message") or first.get("detail") or first.get("title") or ""
    else:
        text = obj.get("detail") or obj.get("title") or ""
    return str(text)


class XApiClient:
    """X API v2 with an app-only bearer token; one aiohttp session, lazily made.

    The base URL comes from operator config (``api_base_url``), so it is not
    put through the SSRF guard: tests point it at 127.0.0.1.
    """

    def __init__(
        self,
        *,
        bearer_token: str | None,
        base_url: str = DEFAULT_API_BASE,
        timeout_s: float = 20,
        max_body_bytes: int = 2 * 1024 * 1024,
        user_agent: str = "showbot/0.1",
        clock: Clock = utc_now,
    ) -> None:
        self._token = bearer_token
        self._base = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._max_body = max_body_bytes
        self._user_agent = user_agent
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never show the token
        return f"XApiClient(base_url={self._base!r})"

    async def __aenter__(self) -> XApiClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def fetch_profile(self, handle: str) -> ProfileSnapshot:
        """One user read (~$0.010). The pinned post comes as an expansion."""
        handle = handle.lstrip("@")
        if not _HANDLE.match(handle):
            raise SourceError(f"invalid X handle {handle[:40]!r}")
        taken_at = self._clock()
        body = await self._get(f"/users/by/username/{handle}", PROFILE_PARAMS)
        return _user_snapshot(body, handle, taken_at)

    async def fetch_posts(
        self, user_id: str, since_id: str | None = None, *, handle: str | None = None
    ) -> list[Item]:
        """Posts newer than ``since_id``, newest first (~$0.005 each).

        One page: at most 100 posts per poll, which a 15-minute interval
        never reaches; without ``since_id`` (first poll) only the newest 5.
        """
        if not _ID.match(user_id):
            raise SourceError(f"invalid X user id {user_id[:40]!r}")
        params = {
            "exclude": "replies,retweets",
            "tweet.fields": TIMELINE_FIELDS,
            "max_results": str(PAGE if since_id else FIRST_PAGE),
        }
        if since_id is not None:
            if not _ID.match(since_id):
                raise SourceError(f"invalid since_id {since_id[:40]!r}")
            params["since_id"] = since_id
        body = await self._get(f"/users/{user_id}/tweets", params)
        data = body.get("data")
        if data is None:
            if "errors" in body:
                raise _account_error(body["errors"], f"@{handle}" if handle else f"user id {user_id}")
            return []  # {"meta": {"result_count": 0}}: nothing new
        if not isinstance(data, list):
            raise FeedParseError("X API: timeline data is not a list")
        items = [post_item(t, handle) for t in data]
        return [i for i in items if i is not None]

    # ---------------------------------------------------------------- HTTP

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self._user_agent, "Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout_s),
                trust_env=False,
            )
        return self._session

    async def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        if not self._token:
            raise FetchError("X API: no bearer token: set X_BEARER_TOKEN")
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._request(path, params)
        except SourceError:
            raise
        except TimeoutError:
            raise FetchError(f"X API: timed out after {self._timeout_s:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            raise FetchError(f"X API: could not connect to {exc.host}:{exc.port}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchError(f"X API: request failed: {type(exc).__name__}") from None

    async def _request(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"}
        async with self._get_session().get(
            self._base + path, params=params, headers=headers, allow_redirects=False
        ) as resp:
            body = await self._read_capped(resp)
            if resp.status == 200:
                return _json_obj(body, "X API")
            raise self._status_error(resp.status, resp.headers, body)

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SourceError:
        detail = _problem_detail(body)
        if self._token:
            detail = detail.replace(self._token, "***")  # a proxy could echo it
        detail = shorten(detail, 200)  # after redacting: a cut must not leave half a token
        if status == 401:
            return FetchError("X API: bad token (HTTP 401): X rejected X_BEARER_TOKEN")
        if status == 429:
            wait = self._rate_limit_wait(headers)
            when = f"; resets in {wait:g}s" if wait is not None else ""
            return FetchError(f"X API: rate limited (HTTP 429){when}", retry_after=wait)
        if status == 402:
            return FetchError(f"X API: payment required (HTTP 402): {detail or 'out of credits?'}")
        if status == 403:
            return FetchError(f"X API: forbidden (HTTP 403): {detail or 'the app lacks access'}")
        retry = parse_retry_after(headers.get("Retry-After"), now=self._clock()) if status >= 500 else None
        suffix = f": {detail}" if detail else ""
        return FetchError(f"X API: HTTP {status}{suffix}", retry_after=retry)

    def _rate_limit_wait(self, headers: Mapping[str, str]) -> float | None:
        """Seconds until ``x-rate-limit-reset`` (epoch seconds), else Retry-After."""
        reset = headers.get("x-rate-limit-reset", "").strip()
        if reset.isdigit() and len(reset) <= 12:
            wait = int(reset) - self._clock().timestamp()
            return float(min(max(0.0, wait), _MAX_RESET_WAIT_S))
        return parse_retry_after(headers.get("Retry-After"), now=self._clock())

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        declared = resp.content_length
        if declared is not None and declared > self._max_body:
            resp.close()
            raise FetchError(f"X API: response too large ({declared} bytes)")
        body = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > self._max_body:
                resp.close()
                raise FetchError(f"X API: response exceeds the {self._max_body}-byte limit")
        return bytes(body)
