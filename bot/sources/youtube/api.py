"""The YouTube Data API v3, for premieres and live streams.

``videos.list?part=snippet,liveStreamingDetails&id=ID1,ID2,...`` answers,
per video, ``snippet.liveBroadcastContent`` (``upcoming`` | ``live`` |
``none``) and ``liveStreamingDetails`` (``scheduledStartTime``,
``actualStartTime``, ``actualEndTime``; absent for an ordinary upload).
One call takes up to 50 ids and costs 1 quota unit (the default quota is
10,000 units a day). The key comes from ``YOUTUBE_API_KEY`` only, goes in
the query string as the API wants, and is scrubbed from every error.

Errors the bot degrades on (``YouTubeApiError``; the caller falls back to
the keyless rule): 403 ``quotaExceeded``/``dailyLimitExceeded``, a bad key
(400 ``keyInvalid``/``badRequest`` with "API key not valid", 403
``forbidden``/``accessNotConfigured``), and anything else that is not a
readable 2xx answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import parse_utc
from bot.errors import FetchError
from bot.models import LiveState, VideoFacts
from bot.sources.http import HttpFetcher, HttpStatusError

BATCH = 50  # videos.list takes at most 50 ids a call
MAX_BODY_BYTES = 512 * 1024


class YouTubeApiError(Exception):
    """The API did not answer usably. ``reason`` is short and key-free:
    ``quota`` | ``key`` | ``http`` | ``network`` | ``shape``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LiveDetails:
    live: LiveState
    scheduled_start_at: datetime | None = None
    actual_start_at: datetime | None = None
    actual_end_at: datetime | None = None


def parse_videos_response(body: bytes) -> dict[str, LiveDetails]:
    """A videos.list answer -> live details per video id (ids the API left
    out: deleted or private videos, are absent). Raises YouTubeApiError
    ("shape") for a body that is not the documented shape."""
    try:
        raw = json.loads(body)
    except ValueError:
        raise YouTubeApiError("shape", "videos.list answered something that is not JSON") from None
    items = raw.get("items") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise YouTubeApiError("shape", "videos.list answered without an items list")
    out: dict[str, LiveDetails] = {}
    for entry in items:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        snippet: Mapping[str, Any] = entry["snippet"] if isinstance(entry.get("snippet"), dict) else {}
        details: Mapping[str, Any] = (entry["liveStreamingDetails"]
                                      if isinstance(entry.get("liveStreamingDetails"), dict) else {})
        content = snippet.get("liveBroadcastContent", "none")
        try:
            state = LiveState(content)
        except ValueError:
            state = LiveState.NONE
        out[entry["id"]] = LiveDetails(state, parse_utc(details.get("scheduledStartTime")),
                                       parse_utc(details.get("actualStartTime")), parse_utc(details.get("actualEndTime")))
    return out


def classify_error(status: int, body: bytes) -> YouTubeApiError:
    """A non-2xx answer as the reason the bot degrades, from the documented
    error body: ``{"error": {"code": 403, "errors": [{"reason": "quotaExceeded"}]}}``."""
    reasons: list[str] = []
    message = ""
    try:
        err = json.loads(body).get("error", {})
        message = str(err.get("message", ""))[:200]
        reasons = [str(e.get("reason", "")) for e in err.get("errors", []) if isinstance(e, dict)]
        reasons += [str(d.get("reason", "")) for d in err.get("details", []) if isinstance(d, dict)]
    except (ValueError, AttributeError):
        pass
    if {"quotaExceeded", "dailyLimitExceeded", "rateLimitExceeded"} & set(reasons):
        return YouTubeApiError("quota", f"YouTube Data API quota exceeded (HTTP {status})")
    if {"keyInvalid", "API_KEY_INVALID", "keyExpired", "forbidden", "accessNotConfigured"} & set(reasons) \
            or "API key" in message:
        return YouTubeApiError("key", f"YouTube Data API refused the key (HTTP {status}: {', '.join(reasons) or message})")
    return YouTubeApiError("http", f"YouTube Data API answered HTTP {status}")


async def fetch_live_details(fetcher: HttpFetcher, api_base_url: str, key: str,
                             video_ids: Sequence[str]) -> dict[str, LiveDetails]:
    """videos.list for ``video_ids``, ``BATCH`` a call. Raises YouTubeApiError
    (never with the key in it) when any call fails."""
    out: dict[str, LiveDetails] = {}
    ids = list(dict.fromkeys(video_ids))
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        try:
            resp = await fetcher.get_api(
                api_base_url.rstrip("/") + "/videos",
                params={"part": "snippet,liveStreamingDetails", "id": ",".join(batch), "key": key},
                # The base URL is the operator's (tests: 127.0.0.1), never from chat.
                guard_addresses=False, max_body_bytes=MAX_BODY_BYTES, redact=(key,),
            )
        except HttpStatusError as exc:
            raise classify_error(exc.status, exc.body) from None
        except FetchError as exc:
            raise YouTubeApiError("network", f"YouTube Data API: {exc}") from None
        out.update(parse_videos_response(resp.body))
    return out


def facts_from_details(video_id: str, details: LiveDetails | None) -> VideoFacts:
    if details is None:  # the API doesn't know it (private, deleted): treat as an ordinary video
        return VideoFacts(video_id, live=LiveState.NONE)
    return VideoFacts(video_id, live=details.live, scheduled_start_at=details.scheduled_start_at,
                      actual_start_at=details.actual_start_at, actual_end_at=details.actual_end_at)
