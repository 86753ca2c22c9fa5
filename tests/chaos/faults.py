"""Faults the fake platforms inject, switched on and off over the admin API.

A fault belongs to one platform ("discord" | "slack"; "*" for a disk fill)
and matches requests by a regex searched in their *route key*:
``"POST /channels/123/messages"`` on Discord (path without ``/api/v10``),
``"POST chat.postMessage"`` on Slack (the Web API method). Websockets,
response_url and uploads are never faulted.

Kinds:

- ``status``: answer ``status`` (500, 503...) without touching the fake's state.
- ``rate_limit``: 429 with Retry-After (and on Discord the JSON ``retry_after``,
  ``global`` and the ``Via`` header discord.py insists on).
- ``latency``: ``latency_s`` added to each matching request, ``phase="before"``
  the fake handles it, or ``"after"``: the post is recorded, the answer is held
  (a post "in flight" the bot can be killed during).
- ``accept_then_fail``: handled (the post is recorded, durably) and then answered
  ``status``: the client sees a failure although the platform has the message.
- ``global_limit``: Discord's global limit, ``per_s`` requests in any second,
  enforced with real ``global: true`` 429s.
- ``fill_disk``: after the ``after_posts``-th recorded post (and before that post
  is answered), fill the filesystem holding ``path`` with a file there; remove
  it ``for_s`` later.

A fault ends after ``for_s`` seconds, after ``count`` hits, or when deleted;
``ends_at`` says when (Unix time), so a test can measure recovery from it.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import math
import os
import random
import re
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from tests.chaos.pulse import Pulse

KINDS = ("status", "rate_limit", "latency", "accept_then_fail", "global_limit", "fill_disk")
PLATFORMS = ("discord", "slack", "*")

# The status the client will get for the request being handled: read when a
# post is recorded, so the ledger says "accepted, answered 503".
ANSWER_STATUS: contextvars.ContextVar[int] = contextvars.ContextVar("chaos_answer_status", default=200)


@dataclass
class Fault:
    id: int
    platform: str
    kind: str
    match: str = ""  # regex searched in the route key; "" matches every API request
    status: int = 503
    retry_after: float = 1.0
    is_global: bool = False
    latency_s: float = 0.0
    phase: str = "before"
    per_s: int = 50
    probability: float = 1.0
    count: int | None = None
    for_s: float | None = None
    path: str | None = None
    after_posts: int | None = None
    created_at: float = field(default_factory=time.time)
    ends_at: float | None = None  # known up front for for_s, set when it ends otherwise
    ended: bool = False
    hits: int = 0
    filled_bytes: int = 0
    _rx: re.Pattern[str] | None = field(default=None, repr=False)
    _window: deque[float] = field(default_factory=deque, repr=False)

    def matches(self, platform: str, key: str) -> bool:
        if self.ended or self.platform != platform:
            return False
        if self._rx is None:
            self._rx = re.compile(self.match)
        return bool(self._rx.search(key))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_rx")
        d.pop("_window")
        return d


def fault_from_json(fault_id: int, data: dict[str, Any]) -> Fault:
    """Validate an admin request; ValueError names the bad field."""
    kind = data.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    platform = data.get("platform", "*" if kind == "fill_disk" else None)
    if platform not in PLATFORMS:
        raise ValueError(f"platform: expected one of {PLATFORMS}, got {platform!r}")
    allowed = {f for f in Fault.__dataclass_fields__ if not f.startswith("_")} - {
        "id", "created_at", "ends_at", "ended", "hits", "filled_bytes"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    fault = Fault(id=fault_id, **{**data, "platform": platform})
    re.compile(fault.match)
    if fault.phase not in ("before", "after"):
        raise ValueError(f"phase: expected before | after, got {fault.phase!r}")
    if kind == "fill_disk" and (not fault.path or fault.after_posts is None):
        raise ValueError("fill_disk needs path and after_posts")
    if fault.for_s is not None and kind != "fill_disk":  # a fill's clock starts at the fill
        fault.ends_at = fault.created_at + fault.for_s
    return fault


class FaultBook:
    """Every fault of the process, their hits, and the request counters."""

    def __init__(self, pulse: Pulse, seed: int = 0) -> None:
        self.faults: list[Fault] = []
        self.requests: dict[str, int] = {"discord": 0, "slack": 0}
        self.answered: dict[str, dict[int, int]] = {"discord": {}, "slack": {}}
        self._pulse = pulse
        self._rng = random.Random(seed)
        self._ids = 0
        self._timers: set[asyncio.Task[None]] = set()
        self._held: set[asyncio.Task[object]] = set()  # handlers sleeping in a latency fault

    # --- admin side ---

    def add(self, data: dict[str, Any]) -> Fault:
        self._ids += 1
        fault = fault_from_json(self._ids, data)
        self.faults.append(fault)
        if fault.for_s is not None and fault.kind != "fill_disk":
            self._end_later(fault, fault.for_s)
        self._pulse.fire()
        return fault

    def clear(self, platform: str | None = None, fault_id: int | None = None) -> list[Fault]:
        cleared = []
        for f in self.faults:
            if f.ended or (platform and f.platform != platform) or (fault_id and f.id != fault_id):
                continue
            if f.kind == "fill_disk" and f.filled_bytes:
                _free(f)
            self._end(f)
            cleared.append(f)
        return cleared

    def close(self) -> None:
        """At shutdown: answers held by latency faults are cut short (the
        server would otherwise wait for them), timers stop."""
        for task in [*self._held, *self._timers]:
            task.cancel()

    async def _delay(self, seconds: float) -> None:
        # The platform being slow, not a test waiting for something.
        task = asyncio.current_task()
        assert task is not None
        self._held.add(task)
        try:
            await asyncio.sleep(seconds)
        finally:
            self._held.discard(task)

    def get(self, fault_id: int) -> Fault | None:
        return next((f for f in self.faults if f.id == fault_id), None)

    def _end(self, fault: Fault) -> None:
        if not fault.ended:
            fault.ended = True
            now = time.time()
            if fault.ends_at is None or fault.ends_at > now:
                fault.ends_at = now
            self._pulse.fire()

    def _end_later(self, fault: Fault, delay_s: float, then: Callable[[], None] | None = None) -> None:
        async def later() -> None:
            # Paces the fault's duration; nothing waits on this sleep.
            await asyncio.sleep(max(0.0, delay_s))
            if then is not None:
                then()
            self._end(fault)

        task = asyncio.get_running_loop().create_task(later())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def _hit(self, fault: Fault) -> None:
        fault.hits += 1
        if fault.count is not None and fault.hits >= fault.count:
            self._end(fault)
        self._pulse.fire()

    def _active(self, platform: str, key: str) -> list[Fault]:
        now = time.time()
        out = []
        for f in self.faults:
            if f.ends_at is not None and f.ends_at <= now and f.kind != "fill_disk":
                self._end(f)  # its timer may not have run yet
            if f.kind != "fill_disk" and f.matches(platform, key):
                out.append(f)
        return out

    def _roll(self, fault: Fault) -> bool:
        return fault.probability >= 1.0 or self._rng.random() < fault.probability

    # --- request side ---

    def middleware(self, platform: str, route_key: Callable[[web.Request], str | None],
                   answers: "Answers") -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def inject(request: web.Request, handler: Any) -> web.StreamResponse:
            key = route_key(request)
            if key is None:
                return await handler(request)
            self.requests[platform] += 1
            response = await self._apply(platform, key, request, handler, answers)
            counts = self.answered[platform]
            counts[response.status] = counts.get(response.status, 0) + 1
            return response

        return inject

    async def _apply(self, platform: str, key: str, request: web.Request, handler: Any,
                     answers: "Answers") -> web.StreamResponse:
        faults = [f for f in self._active(platform, key) if self._roll(f)]
        for f in faults:
            if f.kind == "global_limit":
                wait = _over_limit(f)
                if wait is not None:
                    self._hit(f)
                    return answers.rate_limited(wait, True)
        for f in faults:
            if f.kind == "latency" and f.phase == "before":
                self._hit(f)
                await self._delay(f.latency_s)
        for f in faults:
            if f.kind == "status":
                self._hit(f)
                return answers.status(f.status)
            if f.kind == "rate_limit":
                self._hit(f)
                return answers.rate_limited(f.retry_after, f.is_global)
        failing = next((f for f in faults if f.kind == "accept_then_fail"), None)
        token = ANSWER_STATUS.set(failing.status if failing else 200)
        try:
            response = await handler(request)
        finally:
            ANSWER_STATUS.reset(token)
        for f in faults:
            if f.kind == "latency" and f.phase == "after":
                self._hit(f)  # counted once the post is recorded: "in flight" from here
                await self._delay(f.latency_s)
        if failing is not None:
            self._hit(failing)
            return answers.status(failing.status)
        return response

    def on_post(self, platform: str, platform_posts: int, total_posts: int) -> None:
        """Called right after a post is recorded, before it is answered."""
        for f in self.faults:
            if f.kind != "fill_disk" or f.ended or f.hits:
                continue
            counted = total_posts if f.platform == "*" else platform_posts if f.platform == platform else 0
            if f.after_posts is not None and counted >= f.after_posts:
                _fill(f)
                self._hit(f)
                if f.for_s is not None:  # else: full until the fault is deleted
                    f.ends_at = time.time() + f.for_s
                    self._end_later(f, f.for_s, then=functools.partial(_free, f))


def _over_limit(fault: Fault) -> float | None:
    """Seconds until a slot frees up, or None when this request fits in the window."""
    now = time.monotonic()
    window = fault._window
    while window and window[0] <= now - 1.0:
        window.popleft()
    if len(window) >= fault.per_s:
        return max(0.001, window[0] + 1.0 - now)
    window.append(now)
    return None


def _fill(fault: Fault) -> None:
    """Write zeros to ``path`` until the filesystem says ENOSPC, in shrinking
    chunks so the last few pages go too."""
    assert fault.path is not None
    fd = os.open(fault.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
            block = b"\0" * chunk
            while True:
                try:
                    written = os.write(fd, block)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        break
                    raise
                fault.filled_bytes += written
                if written < chunk:
                    break
    finally:
        os.close(fd)


def _free(fault: Fault) -> None:
    if fault.path:
        Path(fault.path).unlink(missing_ok=True)


class Answers:
    """How one platform says "no": its error shapes and rate-limit headers."""

    def status(self, status: int) -> web.Response:
        raise NotImplementedError

    def rate_limited(self, retry_after: float, is_global: bool) -> web.Response:
        raise NotImplementedError


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up: what both platforms send in Retry-After."""
    return str(max(1, math.ceil(seconds)))
