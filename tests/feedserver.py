"""A real HTTP server on 127.0.0.1 serving feeds to tests.

Runs aiohttp.web in the test's own event loop on a random port. Tests
register routes at any time (one catch-all handler looks them up, so the
router never needs changing after start):

    async def test_x(feed_server: FeedServer) -> None:
        feed_server.add_feed("/feed.xml", body, etag='"v1"')
        result = await fetcher.fetch(feed_server.url("/feed.xml"))
        assert feed_server.hits["/feed.xml"] == 1

Usage from another test module: ``from tests.feedserver import feed_server``
(pytest picks up the imported fixture) or ``pytest_plugins = ["tests.feedserver"]``.
"""

from __future__ import annotations

import asyncio
import gzip as gzip_module
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

RSS_TYPE = "application/rss+xml; charset=utf-8"


@dataclass
class Route:
    """What one path answers. Built by the ``add_*`` helpers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    # Streamed (chunked) answer: ``chunk`` repeated ``chunks`` times.
    chunk: bytes | None = None
    chunks: int = 0
    # Wait on this before answering (a hung server, released by the test or at close).
    release: asyncio.Event | None = None


class FeedServer:
    """The server plus its routes, request log and per-path hit counter."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, CIMultiDictProxy[str]]] = []
        self.started = asyncio.Event()  # set when a slow route is entered
        self._hit = asyncio.Condition()  # notified on every request (wait_hits)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for route in self.routes.values():
            if route.release is not None:
                route.release.set()  # never leave a handler hanging at shutdown
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------- routes
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def add_feed(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = RSS_TYPE,
        etag: str | None = None,
        last_modified: str | None = None,
        gzip: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Route:
        """A static 200 answer that honours If-None-Match / If-Modified-Since."""
        route = Route(
            body=body,
            headers={"Content-Type": content_type, **(headers or {})},
            etag=etag,
            last_modified=last_modified,
            gzip=gzip,
        )
        self.routes[path] = route
        return route

    def add_status(
        self, path: str, status: int, *, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Route:
        route = Route(status=status, body=body, headers=dict(headers or {}))
        self.routes[path] = route
        return route

    def add_redirect(self, path: str, location: str, *, status: int = 302) -> Route:
        return self.add_status(path, status, headers={"Location": location})

    def add_slow(self, path: str, body: bytes = b"<rss/>") -> asyncio.Event:
        """A route that answers only once the returned event is set."""
        route = Route(body=body, headers={"Content-Type": RSS_TYPE}, release=asyncio.Event())
        self.routes[path] = route
        assert route.release is not None
        return route.release

    def add_stream(
        self, path: str, chunk: bytes, chunks: int, *, content_length: int | None = None
    ) -> Route:
        """A chunked answer; ``content_length`` sends that header (true or not)."""
        headers = {"Content-Type": RSS_TYPE}
        if content_length is not None:
            headers["Content-Length"] = str(content_length)
        route = Route(headers=headers, chunk=chunk, chunks=chunks)
        self.routes[path] = route
        return route

    async def wait_hits(self, path: str, n: int, timeout: float = 10.0) -> int:
        """Wait until ``path`` has been requested at least ``n`` times (counted
        when a request arrives, before it is answered); TimeoutError otherwise."""

        async def wait() -> int:
            async with self._hit:
                await self._hit.wait_for(lambda: self.hits[path] >= n)
                return self.hits[path]

        return await asyncio.wait_for(wait(), timeout)

    def headers_of(self, path: str) -> list[CIMultiDictProxy[str]]:
        """The request headers of every request to ``path``, in order."""
        return [h for p, h in self.requests if p == path]

    # ------------------------------------------------------------------ handler
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        self.requests.append((path, request.headers))
        async with self._hit:
            self._hit.notify_all()
        route = self.routes.get(path)
        if route is None:
            return web.Response(status=404, text="no such route")
        if route.release is not None:
            self.started.set()
            await route.release.wait()
        if route.chunk is not None:
            return await self._stream(request, route)
        if self._not_modified(request, route):
            return web.Response(status=304, headers=self._validators(route))
        return self._static(route)

    @staticmethod
    def _not_modified(request: web.Request, route: Route) -> bool:
        if route.status != 200:
            return False
        if route.etag is not None and request.headers.get("If-None-Match") == route.etag:
            return True
        sent = request.headers.get("If-Modified-Since")
        return route.last_modified is not None and sent == route.last_modified

    @staticmethod
    def _validators(route: Route) -> dict[str, str]:
        headers = {}
        if route.etag is not None:
            headers["ETag"] = route.etag
        if route.last_modified is not None:
            headers["Last-Modified"] = route.last_modified
        return headers

    def _static(self, route: Route) -> web.Response:
        headers = CIMultiDict(route.headers)
        headers.update(self._validators(route))
        body = route.body
        if route.gzip:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        return web.Response(status=route.status, body=body, headers=headers)

    @staticmethod
    async def _stream(request: web.Request, route: Route) -> web.StreamResponse:
        resp = web.StreamResponse(status=route.status, headers=route.headers)
        if "Content-Length" not in route.headers:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        assert route.chunk is not None
        try:
            for _ in range(route.chunks):
                await resp.write(route.chunk)
        except (ConnectionError, RuntimeError):
            return resp  # the client hung up (it refused the body): expected
        declared = route.headers.get("Content-Length")
        if declared is not None and int(declared) > len(route.chunk) * route.chunks:
            # Promised more than was sent: hang up, like a server that crashed mid-body.
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()
