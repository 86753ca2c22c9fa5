"""Without an API key: can a video be watched yet? Its watch page says.

``{base_url}/watch?v={id}`` embeds the player's state as a JSON object
assigned to ``ytInitialPlayerResponse``; its ``playabilityStatus.status``
is ``OK`` for a watchable video and ``LIVE_STREAM_OFFLINE`` for a premiere
or stream that has not started (the page then also carries
``playabilityStatus.liveStreamability``). Only "not yet" holds an
announcement: any other status (``LOGIN_REQUIRED`` for an age-restricted
video, ``ERROR`` for a removed one) won't change by waiting, so it is
announced as usual. The page is fetched through the guarded fetcher
(address guard, body cap, deadline).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from bot.errors import FetchError
from bot.sources.http import HttpFetcher
from bot.sources.youtube.addresses import YouTubeAddresses

_MARKER = re.compile(r"ytInitialPlayerResponse\s*=\s*")
NOT_YET = frozenset({"LIVE_STREAM_OFFLINE"})


@dataclass(frozen=True, slots=True)
class Playability:
    playable: bool | None  # None: the page did not say
    status: str | None = None
    error: str | None = None


def parse_watch_page(html: str) -> Playability:
    """The watch page's verdict, pure."""
    for m in _MARKER.finditer(html):
        try:
            player, _ = json.JSONDecoder().raw_decode(html, m.end())
        except ValueError:
            continue
        if not isinstance(player, dict):
            continue
        status_obj = player.get("playabilityStatus")
        if not isinstance(status_obj, dict) or not isinstance(status_obj.get("status"), str):
            continue
        status = status_obj["status"]
        upcoming = status != "OK" and "liveStreamability" in status_obj
        return Playability(not (status in NOT_YET or upcoming), status)
    return Playability(None, error="the watch page has no ytInitialPlayerResponse.playabilityStatus")


async def fetch_playability(fetcher: HttpFetcher, addresses: YouTubeAddresses, video_id: str) -> Playability:
    url = addresses.watch(video_id)
    try:
        result = await fetcher.fetch(url)
    except FetchError as exc:
        return Playability(None, error=f"GET {url}: {exc}")
    body = (result.body or b"").decode("utf-8", errors="replace")
    return parse_watch_page(body)
