"""A local fake of the Discord API and gateway, for driving the REAL discord.py.

An aiohttp app on 127.0.0.1 serving the REST routes discord.py uses (login,
application info, command sync, messages, history, DMs, interaction
callbacks, webhook follow-ups) and a gateway websocket (HELLO, IDENTIFY ->
READY + GUILD_CREATE, heartbeats, events pushed by the test).

Every REST request is recorded (method, path, query, JSON body) and tests
wait on conditions with ``wait_for`` instead of sleeping. Failures are
scripted with ``fail_next``. Like Discord, a POST with ``enforce_nonce`` and
a nonce already used in that channel returns the earlier message instead of
creating a new one.

JSON answers carry ``Content-Type: application/json`` exactly, since
discord.py decodes nothing else; 429s carry a ``Via`` header, since
discord.py treats a 429 without it as a Cloudflare ban.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from aiohttp import WSMsgType, web

BOT_ID = 900000000000000001
APP_ID = 900000000000000002
GUILD_ID = 900000000000000003
CHANNEL_ID = 900000000000000004
OWNER_ID = 900000000000000005
MANAGE_ROLE_ID = 900000000000000006  # a role with Manage Server
CONFIG_MOD_ROLE_ID = 900000000000000007  # a plain role listed in moderator_role_ids
PLAIN_ROLE_ID = 900000000000000008

DISCORD_EPOCH_MS = 1420070400000  # 2015-01-01, where snowflake time starts

MANAGE_GUILD = 1 << 5
SEND_MESSAGES = 1 << 11
VIEW_CHANNEL = 1 << 10
BASIC_PERMS = SEND_MESSAGES | VIEW_CHANNEL


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def member_payload(user_id: int, name: str, roles: list[int], permissions: int = BASIC_PERMS) -> dict[str, Any]:
    return {
        "user": user_payload(user_id, name),
        "roles": [str(r) for r in roles],
        "joined_at": "2024-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
        "permissions": str(permissions),
    }


@dataclass
class Recorded:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any  # decoded JSON (payload_json for multipart), or None
    files: list[str] = field(default_factory=list)  # uploaded file names


@dataclass
class Scripted:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int


class FakeDiscord:
    API_PREFIX = "/api/v10"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}  # channel id -> messages, oldest first
        self.threads: list[dict[str, Any]] = []
        self.identifies = 0
        self.identified_shards: list[Any] = []  # IDENTIFY's "shard" ([id, count]) or None, per identify
        self.gateway_connections = 0
        self._last_id = 0
        self._scripted: list[Scripted] = []
        self._changed = asyncio.Condition()
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.port = 0
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", self.API_PREFIX + "/{tail:.*}", self._rest)
        self._app = app

    # --- lifecycle ---

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def next_id(self) -> str:
        """A snowflake from the current time, like Discord's, so history
        lookups by time (``after=<datetime>``) find what was posted then."""
        ms = int(datetime.now(timezone.utc).timestamp() * 1000) - DISCORD_EPOCH_MS
        snowflake = max(ms << 22, self._last_id + 1)
        self._last_id = snowflake
        return str(snowflake)

    # --- waiting ---

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        async def wait() -> Any:
            async with self._changed:
                while not (result := predicate()):
                    await self._changed.wait()
                return result

        return await asyncio.wait_for(wait(), timeout)

    def find(self, method: str, pattern: str) -> list[Recorded]:
        rx = re.compile(pattern)
        return [r for r in self.requests if r.method == method and rx.fullmatch(r.path)]

    # --- scripting ---

    def fail_next(
        self,
        method: str,
        pattern: str,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        self._scripted.append(Scripted(method, re.compile(pattern), status, body, headers or {}, times))

    # --- REST ---

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        # Exactly "application/json": discord.py decodes nothing else.
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return web.Response(status=status, body=json.dumps(data).encode(), headers=h)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[str]]:
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            body: Any = None
            files: list[str] = []
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if part.name == "payload_json":  # type: ignore[union-attr]
                    body = json.loads(await part.text())  # type: ignore[union-attr]
                else:
                    files.append(part.filename or "")  # type: ignore[union-attr]
                    await part.read()  # type: ignore[union-attr]
            return body, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            return raw.decode(errors="replace"), []

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        self.requests.append(Recorded(request.method, path, dict(request.query), body, files))
        try:
            for s in self._scripted:
                if s.times > 0 and s.method == request.method and s.pattern.fullmatch(path):
                    s.times -= 1
                    return self._json(s.body, s.status, s.headers)
            return self._route(request.method, path, request.query, body)
        finally:
            await self._notify()

    def _route(self, method: str, path: str, query: Any, body: Any) -> web.Response:
        if method == "GET" and path == "/users/@me":
            return self._json(user_payload(BOT_ID, "showbot", bot=True))
        if method == "GET" and path == "/oauth2/applications/@me":
            return self._json(
                {
                    "id": str(APP_ID),
                    "name": "showbot",
                    "description": "",
                    "icon": None,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "verify_key": "0" * 64,
                    "owner": user_payload(OWNER_ID, "owner"),
                    "flags": 0,
                    "team": None,
                }
            )
        if m := re.fullmatch(rf"/applications/{APP_ID}(?:/guilds/(\d+))?/commands", path):
            if method == "PUT":
                return self._json([dict(c, id=self.next_id(), application_id=str(APP_ID), version="1") for c in body])
            return self._json([])
        if m := re.fullmatch(r"/channels/(\d+)/messages", path):
            channel = m.group(1)
            if method == "POST":
                return self._json(self._create_message(channel, body or {}))
            return self._json(self._history(channel, query))
        if method == "PATCH" and (m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path)):
            # An edit: the message changes in place (every PATCH is in
            # ``requests``); a message not there is Discord's Unknown Message.
            edited = self._edit_message(m.group(1), m.group(2), body or {})
            if edited is None:
                return self._json({"message": "Unknown Message", "code": 10008}, 404)
            return self._json(edited)
        if method == "DELETE" and (m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path)):
            if not self.delete_message(m.group(1), m.group(2)):
                return self._json({"message": "Unknown Message", "code": 10008}, 404)
            return web.Response(status=204)
        if method == "POST" and (m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)/threads", path)):
            thread = {
                "id": self.next_id(), "type": 11, "guild_id": str(GUILD_ID), "parent_id": m.group(1),
                "owner_id": str(BOT_ID), "name": (body or {}).get("name", ""), "message_count": 0,
                "member_count": 1, "rate_limit_per_user": 0, "flags": 0,
                "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                    "archive_timestamp": datetime.now(timezone.utc).isoformat()},
            }
            self.threads.append(thread)
            return self._json(thread)
        if method == "POST" and path == "/users/@me/channels":
            recipient = str((body or {}).get("recipient_id"))
            return self._json(
                {"id": str(int(recipient) + 1), "type": 1, "recipients": [user_payload(int(recipient), "member")]}
            )
        if m := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path):
            data = (body or {}).get("data") or {}
            message = None
            if body and body.get("type") == 4:
                message = self._message(str(CHANNEL_ID), data, author=user_payload(BOT_ID, "showbot", bot=True))
            return self._json(
                {
                    "interaction": {
                        "id": m.group(1),
                        "type": 2,
                        "response_message_id": message["id"] if message else None,
                        "response_message_loading": body.get("type") == 5 if body else False,
                        "response_message_ephemeral": bool((data.get("flags") or 0) & 64),
                    },
                    "resource": {"type": body.get("type"), "message": message} if message else None,
                }
            )
        if m := re.fullmatch(rf"/webhooks/{APP_ID}/([^/]+)(/messages/@original)?", path):
            return self._json(self._message(str(CHANNEL_ID), body or {}, author=user_payload(BOT_ID, "showbot", bot=True)))
        return self._json({"message": "404: Not Found", "code": 0}, 404)

    def _history(self, channel: str, query: Any) -> list[dict[str, Any]]:
        """GET /channels/{id}/messages like Discord: newest first; ``after``
        gives the ``limit`` messages right after that id, ``before`` the
        ``limit`` right before it."""
        limit = int(query.get("limit", 50))
        messages = self.messages.get(channel, [])  # oldest first
        if "after" in query:
            after = int(query["after"])
            return list(reversed([m for m in messages if int(m["id"]) > after][:limit]))
        if "before" in query:
            before = int(query["before"])
            messages = [m for m in messages if int(m["id"]) < before]
        return list(reversed(messages))[:limit]

    def _message(self, channel: str, body: dict[str, Any], *, author: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.next_id(),
            "channel_id": channel,
            "author": author,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "attachments": [],
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags") or 0,
        }

    def _create_message(self, channel: str, body: dict[str, Any]) -> dict[str, Any]:
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            for earlier in self.messages.get(channel, []):
                if earlier.get("nonce") == nonce:
                    return earlier  # Discord's enforce_nonce: no second message
        message = self._message(channel, body, author=user_payload(BOT_ID, "showbot", bot=True))
        if nonce is not None:
            message["nonce"] = nonce
        self.messages.setdefault(channel, []).append(message)
        return message

    def _edit_message(self, channel: str, message_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        for message in self.messages.get(channel, []):
            if message["id"] == message_id:
                for key in ("content", "embeds", "components", "flags"):
                    if key in body:
                        message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
                message["edited_timestamp"] = datetime.now(timezone.utc).isoformat()
                return message
        return None

    def delete_message(self, channel: str | int, message_id: str) -> bool:
        """A moderator deletes a message (tests call it directly, or DELETE)."""
        messages = self.messages.get(str(channel), [])
        kept = [m for m in messages if m["id"] != message_id]
        self.messages[str(channel)] = kept
        return len(kept) != len(messages)

    def edits(self, channel: str | int = CHANNEL_ID) -> list[Recorded]:
        """Every PATCH of a message in ``channel``, in order."""
        return self.find("PATCH", rf"/channels/{channel}/messages/\d+")

    def created_messages(self, channel: str | int = CHANNEL_ID) -> list[dict[str, Any]]:
        return list(self.messages.get(str(channel), []))

    # --- gateway ---

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": user_payload(BOT_ID, "showbot", bot=True),
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "session_id": f"session-{self.identifies}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(APP_ID), "flags": 0},
            "shard": [0, 1],
        }

    def guild_payload(self) -> dict[str, Any]:
        role = lambda rid, name, perms, pos: {  # noqa: E731
            "id": str(rid), "name": name, "permissions": str(perms), "position": pos, "color": 0,
            "hoist": False, "managed": False, "mentionable": False, "flags": 0,
        }
        return {
            "id": str(GUILD_ID),
            "name": "Backend Engineering",
            "owner_id": str(OWNER_ID),
            "unavailable": False,
            "member_count": 3,
            "large": False,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [
                role(GUILD_ID, "@everyone", BASIC_PERMS, 0),
                role(MANAGE_ROLE_ID, "admins", MANAGE_GUILD, 3),
                role(CONFIG_MOD_ROLE_ID, "mods", 0, 2),
                role(PLAIN_ROLE_ID, "listeners", 0, 1),
            ],
            "channels": [
                {"id": str(CHANNEL_ID), "type": 0, "name": "general", "position": 0, "permission_overwrites": []}
            ],
            "threads": [],
            "members": [member_payload(BOT_ID, "showbot", [])],
            "voice_states": [],
            "presences": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
        }

    async def _send(self, ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        await ws.send_str(json.dumps(payload))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        self.gateway_connections += 1
        try:
            await self._send(ws, {"op": 10, "d": {"heartbeat_interval": 45000}, "s": None, "t": None})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                op = data.get("op")
                if op == 1:
                    await self._send(ws, {"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:
                    self.identifies += 1
                    self.identified_shards.append((data.get("d") or {}).get("shard"))
                    self._ws = ws
                    await self.dispatch("READY", self._ready())
                    await self.dispatch("GUILD_CREATE", self.guild_payload())
                elif op == 6:
                    # No sessions to resume here: make the client identify afresh.
                    await self._send(ws, {"op": 9, "d": False, "s": None, "t": None})
                await self._notify()
        finally:
            self._sockets.discard(ws)
            if self._ws is ws:
                self._ws = None
            await self._notify()
        return ws

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def dispatch(self, event: str, data: Any) -> None:
        """Push a DISPATCH event on the current gateway connection."""
        ws = self._ws
        assert ws is not None, "no gateway connection"
        self._seq += 1
        await self._send(ws, {"op": 0, "t": event, "s": self._seq, "d": data})

    async def close_gateway(self, code: int) -> None:
        ws = self._ws
        assert ws is not None, "no gateway connection"
        await ws.close(code=code)

    # --- event builders ---

    def slash(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        member: dict[str, Any] | None = None,
        kind: int = 2,
        custom_id: str | None = None,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload: a slash command (kind 2) or a button click (kind 3)."""
        data: dict[str, Any]
        if kind == 3:
            data = {"custom_id": custom_id, "component_type": 2}
        else:
            data = {"id": self.next_id(), "name": name, "type": 1, "options": options or []}
        payload: dict[str, Any] = {
            "id": self.next_id(),
            "application_id": str(APP_ID),
            "type": kind,
            "data": data,
            "guild_id": str(GUILD_ID),
            "channel_id": str(CHANNEL_ID),
            "channel": {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "general"},
            "member": member or member_payload(123456789012345678, "alice", [PLAIN_ROLE_ID]),
            "token": "interaction-token-" + self.next_id(),
            "version": 1,
            "app_permissions": str(BASIC_PERMS),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if kind == 3:
            # Like Discord: a click carries the message whose button was clicked.
            button = {"type": 2, "style": 2, "label": "More", "custom_id": custom_id}
            message = self._message(
                str(CHANNEL_ID),
                {"content": "page 1", "components": [{"type": 1, "components": [button]}]},
                author=user_payload(BOT_ID, "showbot", bot=True),
            )
            payload["message"] = message
        return payload

    def mention_message(self, content: str, *, member: dict[str, Any] | None = None) -> dict[str, Any]:
        member = member or member_payload(123456789012345678, "alice", [PLAIN_ROLE_ID])
        user = member["user"]
        m = {k: v for k, v in member.items() if k not in ("user", "permissions")}
        return {
            "id": self.next_id(),
            "channel_id": str(CHANNEL_ID),
            "guild_id": str(GUILD_ID),
            "author": user,
            "member": m,
            "content": content,
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [user_payload(BOT_ID, "showbot", bot=True)],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
        }
