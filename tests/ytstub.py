"""A local YouTube for tests: the channel feed, /shorts/ and /watch pages, and
the Data API's videos.list, on 127.0.0.1 (aiohttp in the test's loop).

The answers have the documented shapes:
- ``HEAD /shorts/{id}``: 200 for a Short, 303 to ``/watch?v={id}`` otherwise;
- ``GET /watch?v={id}``: an HTML page with ``var ytInitialPlayerResponse =
  {...};`` whose ``playabilityStatus.status`` is ``OK`` or, for a premiere
  not started, ``LIVE_STREAM_OFFLINE`` with a ``liveStreamability``;
- ``GET /youtube/v3/videos?part=snippet,liveStreamingDetails&id=a,b&key=K``:
  ``{"kind": "youtube#videoListResponse", "items": [{"id", "snippet":
  {"liveBroadcastContent"}, "liveStreamingDetails": {...}}]}``, or the
  documented error body (403 quotaExceeded, 400 keyInvalid).

Tests change a video's state between polls and wait on recorded requests;
``hang_shorts`` makes the /shorts/ HEADs hang until released (a timeout).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

import pytest
from aiohttp import web

KEY = "test-youtube-key-0123456789"


@dataclass
class Video:
    id: str
    title: str
    published_at: datetime
    description: str = ""
    short: bool = False
    live: str = "none"  # liveBroadcastContent: upcoming | live | none
    scheduled_start_at: datetime | None = None
    actual_start_at: datetime | None = None
    actual_end_at: datetime | None = None
    watch_status: str | None = None  # None: OK, or LIVE_STREAM_OFFLINE while upcoming


def _z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class YouTubeStub:
    videos: list[Video] = field(default_factory=list)  # the feed lists them newest first, as YouTube does
    api_error: tuple[int, str] | None = None  # (status, reason) every videos.list answers with
    hang_shorts: asyncio.Event | None = None
    shorts_status: int | None = None  # answer every /shorts/ HEAD with this (e.g. 503)
    watch_status: int | None = None  # answer every /watch with this (e.g. 503)
    consent_wall: bool = False  # /watch answers a page with no player response (as in the EU)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path, query)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        return self.base_url + "/youtube/v3"

    @property
    def feed_url(self) -> str:
        return self.base_url + "/feeds/videos.xml?channel_id=UCtest"

    def video(self, video_id: str) -> Video:
        return next(v for v in self.videos if v.id == video_id)

    def calls(self, path_prefix: str, method: str | None = None) -> list[dict[str, str]]:
        return [q for m, p, q in self.requests if p.startswith(path_prefix) and (method is None or m == method)]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.hang_shorts is not None:
            self.hang_shorts.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ answers
    def feed(self) -> bytes:
        entries = []
        for v in self.videos:
            link = f"{self.base_url}/shorts/{v.id}" if v.short else f"{self.base_url}/watch?v={v.id}"
            entries.append(f"""
 <entry>
  <id>yt:video:{v.id}</id>
  <yt:videoId>{v.id}</yt:videoId>
  <yt:channelId>UCtest</yt:channelId>
  <title>{escape(v.title)}</title>
  <link rel="alternate" href="{escape(link)}"/>
  <published>{v.published_at.isoformat()}</published>
  <updated>{v.published_at.isoformat()}</updated>
  <media:group>
   <media:title>{escape(v.title)}</media:title>
   <media:thumbnail url="{self.base_url}/vi/{v.id}/hqdefault.jpg" width="480" height="360"/>
   <media:description>{escape(v.description)}</media:description>
  </media:group>
 </entry>""")
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">
 <id>yt:channel:test</id>
 <title>Test channel</title>
 <link rel="alternate" href="{self.base_url}/channel/UCtest"/>{''.join(entries)}
</feed>
""".encode()

    def _watch_page(self, v: Video) -> str:
        status: dict[str, object] = {"status": v.watch_status or "OK", "playableInEmbed": True}
        if v.watch_status == "LIVE_STREAM_OFFLINE":
            status["reason"] = "Premieres in 2 hours"
            status["liveStreamability"] = {"liveStreamabilityRenderer": {"videoId": v.id}}
        player = {"responseContext": {}, "playabilityStatus": status, "videoDetails": {"videoId": v.id}}
        return ("<!DOCTYPE html><html><head><title>x</title></head><body><script>var ytInitialPlayerResponse = "
                + json.dumps(player) + ";var meta = {};</script></body></html>")

    def _api_item(self, v: Video) -> dict[str, object]:
        item: dict[str, object] = {"kind": "youtube#video", "etag": "e", "id": v.id,
                                   "snippet": {"title": v.title, "liveBroadcastContent": v.live}}
        details = {k: _z(t) for k, t in (("scheduledStartTime", v.scheduled_start_at),
                                          ("actualStartTime", v.actual_start_at),
                                          ("actualEndTime", v.actual_end_at)) if t is not None}
        if details:
            item["liveStreamingDetails"] = details
        return item

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.query)))
        path = request.path
        if path == "/feeds/videos.xml":
            return web.Response(body=self.feed(), content_type="application/atom+xml")
        if path.startswith("/shorts/"):
            if self.hang_shorts is not None:
                await self.hang_shorts.wait()
            if self.shorts_status is not None:
                return web.Response(status=self.shorts_status)
            video_id = path.removeprefix("/shorts/")
            found = [v for v in self.videos if v.id == video_id]
            if found and found[0].short:
                return web.Response(status=200, content_type="text/html", text="<html>short</html>")
            return web.Response(status=303, headers={"Location": f"{self.base_url}/watch?v={video_id}"})
        if path == "/watch":
            if self.watch_status is not None:
                return web.Response(status=self.watch_status)
            if self.consent_wall:
                return web.Response(text="<html><form action='https://consent.example/save'>Before you "
                                         "continue</form></html>", content_type="text/html")
            found = [v for v in self.videos if v.id == request.query.get("v")]
            if not found:
                return web.Response(status=404)
            return web.Response(text=self._watch_page(found[0]), content_type="text/html")
        if path == "/youtube/v3/videos":
            if self.api_error is not None:
                status, reason = self.api_error
                body = {"error": {"code": status, "message": "The request cannot be completed." if
                                  reason == "quotaExceeded" else "API key not valid. Please pass a valid API key.",
                                  "errors": [{"message": "x", "domain": "youtube.quota" if reason == "quotaExceeded"
                                              else "global", "reason": reason}]}}
                return web.Response(status=status, body=json.dumps(body).encode(),
                                    content_type="application/json")
            if request.query.get("key") != KEY:
                return web.Response(status=400, content_type="application/json", body=json.dumps(
                    {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                               "errors": [{"reason": "badRequest", "domain": "global"}]}}).encode())
            ids = request.query.get("id", "").split(",")
            items = [self._api_item(v) for v in self.videos if v.id in ids]
            return web.Response(body=json.dumps({"kind": "youtube#videoListResponse", "items": items,
                                                 "pageInfo": {"totalResults": len(items)}}).encode(),
                                content_type="application/json")
        return web.Response(status=404)


@pytest.fixture
async def youtube() -> AsyncIterator[YouTubeStub]:
    stub = YouTubeStub()
    await stub.start()
    try:
        yield stub
    finally:
        await stub.close()
