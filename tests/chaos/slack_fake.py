"""tests/slack_stub.py's stub, grown for the chaos suite: ``ts`` from the
clock, ``conversations.history`` / ``conversations.replies`` with ``limit``,
``oldest``, ``latest``, ``inclusive`` and cursor pagination, faults, and every
``chat.postMessage`` recorded durably and restored after a restart.
"""

from __future__ import annotations

import base64
import bisect
from typing import Any

from aiohttp import web

from tests.chaos.faults import Answers, FaultBook, retry_after_header
from tests.chaos.ids import SlackTs, ts_to_us
from tests.chaos.recorder import Recorder
from tests.slack_stub import SlackStub

_NO_UPPER = 1 << 62


def slack_route_key(request: web.Request) -> str | None:
    if not request.path.startswith("/api/"):
        return None  # Socket Mode, response_url and uploads are never faulted
    return f"{request.method} {request.path[len('/api/'):]}"


class SlackAnswers(Answers):
    def status(self, status: int) -> web.Response:
        error = "service_unavailable" if status == 503 else "internal_error"
        return web.json_response({"ok": False, "error": error}, status=status)

    def rate_limited(self, retry_after: float, is_global: bool) -> web.Response:
        return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                 headers={"Retry-After": retry_after_header(retry_after)})


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _cursor(kind: str, ts: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{ts}".encode()).decode()


def _uncursor(cursor: str, kind: str) -> int | None:
    try:
        got, _, ts = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        return ts_to_us(ts) if got == kind else None
    except (ValueError, UnicodeDecodeError):
        return None


class ChaosSlack(SlackStub):
    def __init__(self, recorder: Recorder, faults: FaultBook) -> None:
        super().__init__()
        self._recorder = recorder
        self._ts_gen = SlackTs()
        self.middlewares.append(faults.middleware("slack", slack_route_key, SlackAnswers()))
        for post in recorder.ledger.posts:
            if post.platform == "slack":
                self._keep(post.channel, post.message)

    def _next_ts(self) -> str:
        return self._ts_gen.next()

    def _keep(self, channel: str, message: dict[str, Any]) -> None:
        self._ts_gen.advance_past(message["ts"])
        parent = message.get("thread_ts")
        where = self.threads.setdefault((channel, parent), []) if parent else self.history.setdefault(channel, [])
        if not where or ts_to_us(where[-1]["ts"]) < ts_to_us(message["ts"]):
            where.append(message)
        else:
            bisect.insort(where, message, key=lambda m: ts_to_us(m["ts"]))

    def _default(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postMessage":
            answer = super()._default(method, args)  # stores it in history / threads
            message = answer["message"]
            self._recorder.record("slack", str(args.get("channel")), message["ts"], args, message)
            return answer
        if method == "conversations.history":
            return self._history(args)
        if method == "conversations.replies":
            return self._replies(args)
        return super()._default(method, args)

    @staticmethod
    def _bounds(args: dict[str, Any]) -> tuple[int, int, bool]:
        oldest = ts_to_us(str(args["oldest"])) if args.get("oldest") else 0
        latest = ts_to_us(str(args["latest"])) if args.get("latest") else _NO_UPPER
        return oldest, latest, _flag(args.get("inclusive"))

    @staticmethod
    def _in(us: int, oldest: int, latest: int, inclusive: bool) -> bool:
        if inclusive:
            return oldest <= us <= latest
        return oldest < us < latest

    @staticmethod
    def _limit(args: dict[str, Any], default: int) -> int:
        return max(1, min(int(args.get("limit") or default), 999))

    @staticmethod
    def _shown(messages: list[dict[str, Any]], args: dict[str, Any]) -> list[dict[str, Any]]:
        if _flag(args.get("include_all_metadata")):
            return messages
        return [{k: v for k, v in m.items() if k != "metadata"} for m in messages]

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first, ``limit`` per page (default 100), then a cursor to older ones."""
        oldest, latest, inclusive = self._bounds(args)
        below = _uncursor(str(args.get("cursor") or ""), "older") if args.get("cursor") else None
        messages = [
            m for m in reversed(self.history.get(str(args.get("channel")), []))
            if self._in(ts_to_us(m["ts"]), oldest, latest, inclusive)
            and (below is None or ts_to_us(m["ts"]) < below)
        ]
        limit = self._limit(args, 100)
        page, more = messages[:limit], len(messages) > limit
        return {
            "ok": True, "messages": self._shown(page, args), "has_more": more, "pin_count": 0,
            "response_metadata": {"next_cursor": _cursor("older", page[-1]["ts"]) if more else ""},
        }

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """The parent then its replies, oldest first, ``limit`` per page (default 1000)."""
        channel, parent_ts = str(args.get("channel")), str(args.get("ts"))
        parent = [m for m in self.history.get(channel, []) if m["ts"] == parent_ts]
        if not parent:
            return {"ok": False, "error": "thread_not_found"}
        oldest, latest, inclusive = self._bounds(args)
        above = _uncursor(str(args.get("cursor") or ""), "newer") if args.get("cursor") else None
        messages = [
            m for m in parent + self.threads.get((channel, parent_ts), [])
            if self._in(ts_to_us(m["ts"]), oldest, latest, inclusive)
            and (above is None or ts_to_us(m["ts"]) > above)
        ]
        limit = self._limit(args, 1000)
        page, more = messages[:limit], len(messages) > limit
        return {
            "ok": True, "messages": self._shown(page, args), "has_more": more,
            "response_metadata": {"next_cursor": _cursor("newer", page[-1]["ts"]) if more else ""},
        }

