"""X API v2 with an app-only bearer token: ``XApiClient``, and the API's
user and post objects as a ProfileSnapshot and Items.

``fetch_profile`` is one user read, with the pinned post as an expansion;
``fetch_posts`` reads the user's timeline since a post id, replies and
reposts excluded. Every failure is a ``SourceError``: ``FetchError`` for
transport and HTTP status, ``FeedParseError`` for an answer that is not
one, ``XAccountError`` for an account X will not show. Messages are one
line and never contain the bearer token.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from typing import Any, Mapping

from bot.clock import Clock, parse_utc, utc_now
from bot.errors import FeedParseError, FetchError, SourceError
from bot.models import Item
from bot.profile import PinnedPost, ProfileSnapshot, shorten
from bot.sources.http import HttpFetcher, HttpStatusError, parse_retry_after
from bot.sources.x.ids import HANDLE, POST_ID, status_url
from bot.sources.x.snapshot import json_object

DEFAULT_API_BASE = "https://api.x.com/2"


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

_MAX_RESET_WAIT_S = 86400.0


class XAccountError(SourceError):
    """X answered 200 but will not show the account: ``reason`` is
    "not_found", "suspended", "protected" or "other"."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


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


def post_item(tweet: Any, handle: str | None) -> Item | None:
    """An API post object -> Item (guid = the post id). None when malformed."""
    if not isinstance(tweet, dict) or not isinstance(tweet.get("id"), str) or not POST_ID.match(tweet["id"]):
        return None
    text = _post_text(tweet)
    if not text:
        return None
    return Item(
        title=shorten(text),
        summary=text,
        guid=tweet["id"],
        link=status_url(handle, tweet["id"]),
        published_at=parse_utc(tweet.get("created_at")),
    )


def newest_post_id(items: list[Item] | tuple[Item, ...]) -> str | None:
    """The ``since_id`` for the next timeline poll (ids are time-ordered numbers)."""
    ids = [int(i.guid) for i in items if i.guid and POST_ID.match(i.guid)]
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
    username = _str_or_none(user.get("username")) or handle
    raw_entities = user.get("entities")
    entities: Mapping[str, Any] = raw_entities if isinstance(raw_entities, dict) else {}
    bio = _str_or_none(user.get("description"))
    if bio is not None:
        bio = expand_links(html.unescape(bio), entities.get("description"))
    website = _str_or_none(user.get("url"))
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
        user_id=_str_or_none(user.get("id")),
        name=_str_or_none(user.get("name")),
        image_url=_str_or_none(user.get("profile_image_url")),
        website=website,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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
            return PinnedPost(pinned_id, text, status_url(handle, pinned_id)) if text else None
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
    """X API v2 with an app-only bearer token, on the shared HttpFetcher
    (its deadline, capped read and error mapping); no session of its own.

    The base URL comes from operator config (``api_base_url``), so it is not
    put through the private-address guard: tests point it at 127.0.0.1.
    """

    def __init__(
        self,
        fetcher: HttpFetcher,
        *,
        bearer_token: str | None,
        base_url: str = DEFAULT_API_BASE,
        max_body_bytes: int = 2 * 1024 * 1024,
        clock: Clock = utc_now,
    ) -> None:
        self._fetcher = fetcher
        self._token = bearer_token
        self._base = base_url.rstrip("/")
        self._max_body = max_body_bytes
        self._clock = clock

    def __repr__(self) -> str:  # never show the token
        return f"XApiClient(base_url={self._base!r})"

    async def fetch_profile(self, handle: str) -> ProfileSnapshot:
        """One user read (~$0.010). The pinned post comes as an expansion."""
        handle = handle.lstrip("@")
        if not HANDLE.match(handle):
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
        if not POST_ID.match(user_id):
            raise SourceError(f"invalid X user id {user_id[:40]!r}")
        params = {
            "exclude": "replies,retweets",
            "tweet.fields": TIMELINE_FIELDS,
            "max_results": str(PAGE if since_id else FIRST_PAGE),
        }
        if since_id is not None:
            if not POST_ID.match(since_id):
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

    async def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        if not self._token:
            raise FetchError("X API: no bearer token: set X_BEARER_TOKEN")
        try:
            resp = await self._fetcher.get_api(
                self._base + path, params=params,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                guard_addresses=False, max_body_bytes=self._max_body, redact=(self._token,),
            )
        except HttpStatusError as exc:
            raise self._status_error(exc.status, exc.headers, exc.body) from None
        except FetchError as exc:  # transport, timeout, cap: already one line, token-free
            raise FetchError(f"X API: {exc}", retry_after=exc.retry_after) from None
        if resp.status != 200:  # X answers 200; a 201 or 204 is nothing this client reads
            raise self._status_error(resp.status, resp.headers, resp.body)
        return json_object(resp.body, "X API")

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
