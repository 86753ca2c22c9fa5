"""The JSON snapshot format (docs/x-snapshot-format.md), and the ``snapshot``
provider that reads one (or a saved page) from a URL or a file.

``parse_snapshot_json`` reads the format, ``snapshot_to_json`` writes it
(what the store keeps as ``raw_json``); ``parse_snapshot`` takes JSON or page
text; ``fetch_snapshot`` gets the bytes through the shared HttpFetcher or the
capped file read. Failures are ``FeedParseError`` / ``FetchError``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from bot.clock import Clock, utc_now
from bot.errors import FeedParseError, FetchError
from bot.models import Item
from bot.profile import PinnedPost, ProfileSnapshot, shorten
from bot.sources.http import HttpFetcher
from bot.sources.text import strip_html
from bot.sources.x.ids import HANDLE, status_url
from bot.sources.x.page import MAX_COUNT, parse_count, parse_profile_text

SNAPSHOT_FORMAT = "showbot.x-snapshot/1"


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """``data`` as a JSON object, else a FeedParseError naming ``what`` (also
    how the API client reads an answer)."""
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
        if not 0 <= value <= MAX_COUNT:
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


def parse_snapshot_json(data: bytes) -> ProfileSnapshot:
    """The JSON snapshot format (docs/x-snapshot-format.md) -> snapshot."""
    obj = json_object(data, "snapshot")
    handle = _opt_str(obj, "handle", "snapshot")
    if not handle or not HANDLE.match(handle.lstrip("@")):
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
        link=_opt_str(raw, "url", where) or (status_url(handle, post_id) if post_id else None),
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
