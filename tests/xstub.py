"""A stand-in for the X API v2 on 127.0.0.1, scriptable per test.

Serves the hand-written fixtures of tests/fixtures/x (response shapes from
the public API docs). A test scripts what a path answers, and reads back
every request with its query parameters and headers:

    async def test_x(x_stub: XStub) -> None:
        x_stub.answer("/2/users/by/username/hnasr", fixture="profile.json")
        x_stub.answer("/2/users/1/tweets", status=429, fixture="rate_limited.json",
                      headers={"x-rate-limit-reset": "1767225900"})
        client = XApiClient(bearer_token="t", base_url=x_stub.base_url)
        ...
        assert x_stub.requests[0].query["since_id"] == "42"

``answer`` appends to a per-path queue: each request takes the next answer,
and the last one repeats. An unscripted path answers 404 (a v2 problem body).
Usage from a test module: ``from tests.xstub import XStub, x_stub``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures" / "x"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def seed_text(n: str) -> str:
    """A seed profile page saved as text (``profile_000.txt``, ``profile_001.txt``)."""
    return (FIXTURES / f"profile_{n}.txt").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # the status line's phrase (a proxy may echo a header in it)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class XStub:
    def __init__(self) -> None:
        self.answers: dict[str, list[Answer]] = {}
        self.requests: list[Recorded] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

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
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """What ``api_base_url`` is set to: the API version is part of it."""
        return f"http://127.0.0.1:{self.port}/2"

    def answer(
        self,
        path: str,
        *,
        fixture: str | None = None,
        body: bytes | dict[str, object] | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        if fixture is not None:
            raw = fixture_bytes(fixture)
        elif isinstance(body, dict):
            raw = json.dumps(body).encode()
        else:
            raw = body if body is not None else b"{}"
        all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        self.answers.setdefault(path, []).append(Answer(status, raw, all_headers, reason))

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
        ))
        queue = self.answers.get(request.path)
        if not queue:
            problem = {"title": "Not Found", "type": "about:blank", "status": 404,
                       "detail": f"no stub answer for {request.path}"}
            return web.json_response(problem, status=404)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return web.Response(status=answer.status, reason=answer.reason, body=answer.body,
                            headers=answer.headers)


@pytest.fixture
async def x_stub() -> AsyncIterator[XStub]:
    stub = XStub()
    await stub.start()
    try:
        yield stub
    finally:
        await stub.close()
