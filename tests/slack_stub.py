"""A local stand-in for Slack: Web API, response_url, file upload and Socket Mode.

An aiohttp app on 127.0.0.1 that records every call the real slack_sdk / bolt
make, answers like Slack does by default (``{"ok": true, ...}``) and can be
scripted per method (429 + Retry-After, ``{"ok": false, "error": ...}``).
``chat.postMessage`` stores messages (with their metadata) so that
``conversations.history`` returns them, as Slack would after a crash.
Tests wait on ``wait_for(predicate)``; nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import time
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import WSMsgType, web


@dataclass
class Call:
    method: str  # Web API method ("chat.postMessage"), or "response_url" / "upload"
    path: str
    http_method: str
    args: dict[str, Any]  # query + form or JSON body, merged
    headers: dict[str, str]
    raw: bytes = b""


@dataclass
class Scripted:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class SlackStub:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.ws_received: list[dict[str, Any]] = []
        self.ws_connections = 0
        self.users: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.bot_user_id = "UBOT"
        self._scripts: dict[str, list[Scripted]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._last_ts = 0.0
        self._cond: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        # Extra aiohttp middlewares, applied at start() (the chaos fakes inject faults here).
        self.middlewares: list[Any] = []

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> "SlackStub":
        self._cond = asyncio.Condition()
        app = web.Application(middlewares=self.middlewares)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/ws", self._ws)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        await self.close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    # ------------------------------------------------------------ scripting / queries

    def script(
        self,
        method: str,
        *,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` get this answer instead of the default."""
        for _ in range(times):
            self._scripts.setdefault(method, []).append(Scripted(status, body, dict(headers or {})))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        assert self._cond is not None

        async def _wait() -> None:
            async with self._cond:
                await self._cond.wait_for(predicate)

        await asyncio.wait_for(_wait(), timeout)

    async def _changed(self) -> None:
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------ Web API

    async def _record(self, request: web.Request, method: str) -> Call:
        raw = await request.read()
        args: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if raw and ctype == "application/json":
            args.update(json.loads(raw))
        elif raw and ctype == "application/x-www-form-urlencoded":
            args.update(dict(await request.post()))
        call = Call(method, request.path, request.method, args, dict(request.headers), raw)
        self.calls.append(call)
        return call

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = await self._record(request, method)
        queue = self._scripts.get(method)
        if queue:
            s = queue.pop(0)
            body = s.body
            if body is None:
                body = {"ok": False, "error": "ratelimited"} if s.status == 429 else {"ok": s.status < 400}
            response = web.json_response(body, status=s.status, headers=s.headers)
        else:
            response = web.json_response(self._default(method, call.args))
        await self._changed()
        return response

    def _next_ts(self) -> str:
        """Like Slack: the posting time, unique and increasing, so lookups
        with ``oldest=`` find what was posted since then."""
        self._last_ts = max(round(time.time(), 6), round(self._last_ts + 0.000001, 6))
        return f"{self._last_ts:.6f}"

    @staticmethod
    def _page(messages: list[dict[str, Any]], args: dict[str, Any], *, newest_first: bool) -> dict[str, Any]:
        """conversations.history/replies paging: ``oldest``/``latest``
        (exclusive unless ``inclusive``), ``limit``, ``cursor``."""
        inclusive = str(args.get("inclusive")).lower() in ("1", "true")
        oldest, latest = args.get("oldest"), args.get("latest")

        def inside(m: dict[str, Any]) -> bool:
            ts = float(m["ts"])
            if oldest is not None and (ts < float(oldest) or (ts == float(oldest) and not inclusive)):
                return False
            if latest is not None and (ts > float(latest) or (ts == float(latest) and not inclusive)):
                return False
            return True

        chosen = [m for m in messages if inside(m)]
        if newest_first:
            chosen.reverse()
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = chosen[start:start + limit]
        more = start + limit < len(chosen)
        if str(args.get("include_all_metadata")).lower() not in ("1", "true"):
            page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _default(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://stub.slack.com/",
                "team": "Stub",
                "user": "showbot",
                "team_id": "T1",
                "user_id": self.bot_user_id,
                "bot_id": "BBOT",
            }
        if method == "apps.connections.open":
            return {"ok": True, "url": self.url.replace("http://", "ws://") + "/ws"}
        if method == "chat.postMessage":
            ts = self._next_ts()
            metadata = args.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            blocks = args.get("blocks")
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            message = {
                "type": "message",
                "ts": ts,
                "text": args.get("text"),
                "bot_id": "BBOT",
                "blocks": blocks,
                "metadata": metadata,
            }
            parent = args.get("thread_ts")
            if parent:
                # Like Slack: a thread reply is not in conversations.history,
                # only in conversations.replies of its parent.
                message["thread_ts"] = parent
                self.threads.setdefault((str(args.get("channel")), str(parent)), []).append(message)
            else:
                self.history.setdefault(str(args.get("channel")), []).append(message)
            return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": message}
        if method == "chat.update":
            # An edit in place: the message keeps its ts; one deleted (or
            # never posted) is Slack's message_not_found.
            channel, ts = str(args.get("channel")), str(args.get("ts"))
            found = [m for m in self.history.get(channel, []) if m["ts"] == ts] + [
                m for (c, _), replies in self.threads.items() if c == channel for m in replies if m["ts"] == ts]
            if not found:
                return {"ok": False, "error": "message_not_found"}
            message = found[0]
            blocks = args.get("blocks")
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            metadata = args.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            message.update({"text": args.get("text"), "blocks": blocks, "edited": {"user": self.bot_user_id, "ts": self._next_ts()}})
            if metadata:
                message["metadata"] = metadata
            return {"ok": True, "channel": channel, "ts": ts, "text": args.get("text"), "message": message}
        if method == "chat.delete":
            channel, ts = str(args.get("channel")), str(args.get("ts"))
            before = len(self.history.get(channel, []))
            self.history[channel] = [m for m in self.history.get(channel, []) if m["ts"] != ts]
            if len(self.history[channel]) == before:
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": channel, "ts": ts}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users"))}}
        if method == "conversations.history":
            return self._page(self.history.get(str(args.get("channel")), []), args, newest_first=True)
        if method == "conversations.replies":
            channel, parent_ts = str(args.get("channel")), str(args.get("ts"))
            parent = [m for m in self.history.get(channel, []) if m["ts"] == parent_ts]
            if not parent:
                return {"ok": False, "error": "thread_not_found"}
            return self._page(parent + self.threads.get((channel, parent_ts), []), args, newest_first=False)
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": user}
        if method == "files.getUploadURLExternal":
            return {"ok": True, "upload_url": f"{self.url}/upload/F1", "file_id": "F1"}
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": "F1", "title": "chart"}]}
        if method == "files.info":
            return {"ok": True, "file": {"id": "F1"}}
        return {"ok": True}

    async def _response_url(self, request: web.Request) -> web.Response:
        await self._record(request, "response_url")
        await self._changed()
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        await self._record(request, "upload")
        await self._changed()
        return web.Response(text="OK")

    # ------------------------------------------------------------ Socket Mode

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.ws_connections += 1
        await ws.send_str(
            json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}})
        )
        await self._changed()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.ws_received.append(json.loads(msg.data))
                    await self._changed()
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
            await self._changed()
        return ws

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send an envelope on the newest Socket Mode connection."""
        assert self._sockets, "no Socket Mode connection"
        await self._sockets[-1].send_str(json.dumps(envelope))

    def acked(self, envelope_id: str) -> bool:
        return any(m.get("envelope_id") == envelope_id for m in self.ws_received)

    async def close_sockets(self) -> None:
        for ws in list(self._sockets):
            await ws.close()


# ---------------------------------------------------------------- test helpers

import hashlib  # noqa: E402
import hmac  # noqa: E402
import time  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402

import pytest_asyncio  # noqa: E402


@pytest_asyncio.fixture
async def stub() -> AsyncIterator[SlackStub]:
    s = await SlackStub().start()
    try:
        yield s
    finally:
        await s.close()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send: v0= + HMAC-SHA256 of ``v0:{ts}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class RecordingHandler:
    """A stand-in for the core's CommandHandler: records (text, caller), returns scripted Replies."""

    def __init__(self, reply: Any = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.reply = reply
        self.gate: asyncio.Event | None = None  # set it to hold the handler

    async def __call__(self, text: str, caller: Any) -> Any:
        self.calls.append((text, caller))
        if self.gate is not None:
            await self.gate.wait()
        reply = self.reply(text, caller) if callable(self.reply) else self.reply
        return reply
