"""Every YouTube address the bot builds, from one ``[youtube] base_url``
(default https://www.youtube.com), so tests point them all at 127.0.0.1."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from bot.config import YOUTUBE_BASE


@dataclass(frozen=True, slots=True)
class YouTubeAddresses:
    base_url: str = YOUTUBE_BASE

    def _at(self, path: str, **query: str) -> str:
        return self.base_url.rstrip("/") + path + (("?" + urlencode(query)) if query else "")

    def watch(self, video_id: str) -> str:
        return self._at("/watch", v=video_id)

    def shorts(self, video_id: str) -> str:
        return self._at("/shorts/" + quote(video_id, safe=""))

    def channel_feed(self, channel_id: str) -> str:
        return self._at("/feeds/videos.xml", channel_id=channel_id)

    def playlist_feed(self, playlist_id: str) -> str:
        return self._at("/feeds/videos.xml", playlist_id=playlist_id)

    def uploads_feed(self, channel_id: str, *, shorts: bool = True) -> str:
        """A channel's uploads as a playlist feed: UU + the channel id's tail
        (every upload), or UULF + it (long-form videos only, no Shorts)."""
        tail = channel_id[2:] if channel_id.startswith("UC") else channel_id
        return self.playlist_feed(("UU" if shorts else "UULF") + tail)
