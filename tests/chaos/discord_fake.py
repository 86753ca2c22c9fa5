"""tests/fake_discord.py's fake, grown for the chaos suite: realistic
snowflakes, ``GET /channels/{id}/messages`` with ``limit``/``before``/``after``/
``around`` like Discord (always newest first; discord.py reverses ``after``
pages itself), a switchable ``enforce_nonce`` window, faults, and every
created message recorded durably and restored after a restart.
"""

from __future__ import annotations

import bisect
import re
import time
from typing import Any

from aiohttp import web

from tests.chaos.faults import Answers, FaultBook, retry_after_header
from tests.chaos.ids import Snowflakes
from tests.chaos.recorder import Recorder
from tests.fake_discord import BOT_ID, FakeDiscord, user_payload

_MESSAGES = re.compile(r"/channels/(\d+)/messages")


def discord_route_key(request: web.Request) -> str | None:
    prefix = FakeDiscord.API_PREFIX
    if not request.path.startswith(prefix + "/"):
        return None  # the gateway websocket is never faulted
    return f"{request.method} {request.path[len(prefix):]}"


class DiscordAnswers(Answers):
    def status(self, status: int) -> web.Response:
        return FakeDiscord._json({"message": f"{status}: chaos fault", "code": 0}, status)

    def rate_limited(self, retry_after: float, is_global: bool) -> web.Response:
        headers = {
            "Retry-After": retry_after_header(retry_after),
            # Without Via, discord.py takes a 429 for a Cloudflare ban and gives up.
            "Via": "1.1 google",
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": round(retry_after, 3),
                "global": is_global, "code": 0}
        return FakeDiscord._json(body, 429, headers)


class ChaosDiscord(FakeDiscord):
    def __init__(self, recorder: Recorder, faults: FaultBook) -> None:
        super().__init__()
        self._recorder = recorder
        self._snowflakes = Snowflakes()
        # Off by default: the suite must prove exactly-once without Discord's
        # nonce, which only dedupes for a few minutes in real life.
        self.nonce_window_s = 0.0
        self.nonce_dedupes = 0
        self._nonces: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
        self._app.middlewares.append(faults.middleware("discord", discord_route_key, DiscordAnswers()))
        for post in recorder.ledger.posts:
            if post.platform == "discord":
                self._keep(post.channel, post.message, post.time)

    def next_id(self) -> str:
        return str(self._snowflakes.next())

    async def _notify(self) -> None:
        """The gateway changed (an IDENTIFY, a socket gone): wake the admin's waiters too."""
        await super()._notify()
        self._recorder.pulse.fire()

    def _keep(self, channel: str, message: dict[str, Any], at: float) -> None:
        messages = self.messages.setdefault(channel, [])
        snowflake = int(message["id"])
        self._snowflakes.advance_past(snowflake)
        # Restored lines are already in order; insort keeps it true regardless.
        bisect.insort(messages, message, key=lambda m: int(m["id"]))
        if message.get("nonce") is not None:
            self._nonces[(channel, str(message["nonce"]))] = (message, at)

    def _create_message(self, channel: str, body: dict[str, Any]) -> dict[str, Any]:
        nonce = body.get("nonce")
        now = time.time()
        if nonce is not None and body.get("enforce_nonce") and self.nonce_window_s > 0:
            earlier = self._nonces.get((channel, str(nonce)))
            if earlier is not None and now - earlier[1] <= self.nonce_window_s:
                self.nonce_dedupes += 1
                return earlier[0]  # Discord: the earlier message, no second one
        message = self._message(channel, body, author=user_payload(BOT_ID, "showbot", bot=True))
        if nonce is not None:
            message["nonce"] = nonce
        self._recorder.record("discord", channel, message["id"], body, message)
        self._keep(channel, message, now)
        return message

    def _route(self, method: str, path: str, query: Any, body: Any) -> web.Response:
        m = _MESSAGES.fullmatch(path)
        if m and method == "GET":
            try:
                return self._json(self.history(m.group(1), query))
            except ValueError as exc:
                return self._json({"message": "Invalid Form Body", "code": 50035, "errors": str(exc)}, 400)
        return super()._route(method, path, query, body)

    def history(self, channel: str, query: Any) -> list[dict[str, Any]]:
        """Like Discord: at most ``limit`` (1-100, default 50) messages, newest first;
        ``around``/``before``/``after`` are exclusive of each other (first one wins)."""
        limit = int(query.get("limit", 50))
        if not 1 <= limit <= 100:
            raise ValueError(f"limit must be 1-100, got {limit}")
        messages = self.messages.get(channel, [])
        ids = [int(m["id"]) for m in messages]
        if "around" in query:
            i = bisect.bisect_left(ids, int(query["around"]))
            start = max(0, i - limit // 2)
            page = messages[start:start + limit]
        elif "before" in query:
            i = bisect.bisect_left(ids, int(query["before"]))
            page = messages[max(0, i - limit):i]
        elif "after" in query:
            i = bisect.bisect_right(ids, int(query["after"]))
            page = messages[i:i + limit]  # the oldest ones after it, as Discord pages
        else:
            page = messages[-limit:]
        return list(reversed(page))
