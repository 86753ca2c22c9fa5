"""Without an API key: can a video be watched yet? Its watch page says.

``{base_url}/watch?v={id}`` embeds the player's state as a JSON object
assigned to ``ytInitialPlayerResponse``; its ``playabilityStatus.status``
is ``OK`` for a watchable video and ``LIVE_STREAM_OFFLINE`` for a premiere
or stream that has not started (the page then also carries
``playabilityStatus.liveStreamability``). Only "not yet" holds an
announcement: any other status (``LOGIN_REQUIRED`` for an age-restricted
video, ``ERROR`` for a removed one) won't change by waiting, so it is
announced as usual, and so is a video whose page says nothing (no player
response: a consent wall, a changed layout -- asking again would get the
same page). A page that could not be fetched (timeout, 5xx) holds the
video one poll (bot.holds). The page is fetched through the guarded
fetcher (address guard, body cap, deadline).
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


UNREADABLE = "UNREADABLE"  # the page came, but says nothing (a consent wall, a new layout)


@dataclass(frozen=True, slots=True)
class Playability:
    playable: bool | None  # None: the page did not say, or could not be fetched
    status: str | None = None  # playabilityStatus.status, or UNREADABLE
    error: str | None = None  # why the page could not be fetched (a network fault: worth a retry)


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
    # Asking again would get the same page: not a reason to hold the video.
    return Playability(None, status=UNREADABLE)


async def fetch_playability(fetcher: HttpFetcher, addresses: YouTubeAddresses, video_id: str) -> Playability:
    url = addresses.watch(video_id)
    try:
        result = await fetcher.fetch(url)
    except FetchError as exc:
        return Playability(None, error=f"GET {url}: {exc}")
    body = (result.body or b"").decode("utf-8", errors="replace")
    return parse_watch_page(body)
