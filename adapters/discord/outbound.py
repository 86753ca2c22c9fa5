"""Posting announcements to Discord, and finding them again after a crash.

Fail fast, let the outbox decide: discord.py retries 5xx answers by itself
(sleeping 1+3+5+7+9 s) and sleeps through 429s of up to 30 s, all inside
one ``send``. A platform that is down would hold a delivery for half a
minute and the outbox would learn nothing. So every request made on the
outbox's behalf runs inside ``fail_fast()``: an aiohttp trace hook (a
public discord.py knob, ``Client(http_trace=...)``) turns a 5xx or 429
answer into ``PlatformAnswered`` before discord.py sees it, and the outbox
schedules the retry with the platform's own Retry-After. discord.py's
other requests (login, command sync, replies) keep its own retries.

Rate limits are respected up front: discord.py keeps the per-route buckets
(a channel's 5 posts per 5 s), and ``SlidingWindow`` keeps every REST call
of this bot under Discord's global 50 requests per second.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import hashlib
import logging
import time
from datetime import timedelta
from typing import Any, AsyncIterator, Callable

import aiohttp
import discord

from adapters.discord.render import FOOTER_MAX, announcement_parts, delivery_marker, truncate
from bot.errors import DeliveryError
from bot.models import Announcement, Delivered, Destination
from bot.presenter import present

log = logging.getLogger("showbot.discord")

NONCE_MAX = 25  # Discord: a nonce string is at most 25 characters
GLOBAL_LIMIT = 50  # requests per second, per bot (Discord's documented global limit)
# One request that hangs this long is treated like a dropped connection.
REQUEST_TIMEOUT_S = 20.0
# A lookup reads the destination's history from the first attempt on, oldest
# first, at most this many messages (100 per request).
LOOKUP_LIMIT = 1000
# Message timestamps and our clock may disagree a little.
LOOKUP_MARGIN = timedelta(minutes=2)

_fail_fast: contextvars.ContextVar[bool] = contextvars.ContextVar("showbot_discord_fail_fast", default=False)
# Set by SlidingWindow.acquire: the next request of this task already has
# its slot in the window (every other request is counted when it starts).
_reserved: contextvars.ContextVar[bool] = contextvars.ContextVar("showbot_discord_reserved", default=False)


class PlatformAnswered(Exception):
    """A 5xx or 429 answer, raised inside aiohttp by the trace hook."""

    def __init__(self, status: int, retry_after: float | None, whole_platform: bool) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.whole_platform = whole_platform


def nonce_for(idempotency_key: str) -> str:
    """A stable message nonce for an outbox row. With ``enforce_nonce`` Discord
    returns the earlier message instead of creating a second one when the same
    nonce is re-sent within a few minutes (the fast half of crash recovery)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:NONCE_MAX]


def fail_fast_trace(limiter: "SlidingWindow | None" = None) -> aiohttp.TraceConfig:
    """The trace config to give ``discord.Client(http_trace=...)``: fail fast
    for the outbox's requests, and count every request of the client
    (login, command sync, history pages too) in the global limit's window."""
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_on_request_end)
    if limiter is not None:
        async def on_start(session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
            if _reserved.get():
                _reserved.set(False)  # this request's slot was taken by acquire()
            else:
                limiter.note()
        trace.on_request_start.append(on_start)
    return trace


async def _on_request_end(
    session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestEndParams
) -> None:
    if not _fail_fast.get():
        return
    response = params.response
    if response.status >= 500:
        raise PlatformAnswered(response.status, None, False)
    if response.status == 429:
        headers = response.headers
        retry_after = _seconds(headers.get("Retry-After") or headers.get("X-RateLimit-Reset-After"))
        whole = headers.get("X-RateLimit-Global", "").lower() == "true" or headers.get("X-RateLimit-Scope") == "global"
        try:  # the body says it more precisely (a float, and "global")
            body = await response.json(content_type=None)
            if isinstance(body, dict):
                retry_after = _seconds(str(body.get("retry_after", ""))) or retry_after
                whole = whole or bool(body.get("global"))
        except (ValueError, aiohttp.ClientError):
            pass
        raise PlatformAnswered(429, retry_after, whole)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


@contextlib.asynccontextmanager
async def fail_fast() -> AsyncIterator[None]:
    token = _fail_fast.set(True)
    try:
        yield
    finally:
        _fail_fast.reset(token)


class SlidingWindow:
    """At most ``limit`` calls in any ``per_s`` window: the next call waits
    until the oldest of the last ``limit`` is that old. A sliding window, not
    a token bucket, because a bucket refilled at 50/s still lets 51 requests
    land inside one second, and Discord counts per second.

    The window is a little longer than Discord's second (WINDOW_S): the
    requests of one burst reach Discord spread over tens of milliseconds,
    so a slot freed exactly a second after the first one left could land
    inside Discord's second and earn a 429, and 429s cascade."""

    def __init__(self, limit: int = GLOBAL_LIMIT, per_s: float = 1.1,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._per_s = per_s
        self._monotonic = monotonic
        self._sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for a slot and take it for this task's next request."""
        async with self._lock:
            while True:
                now = self._monotonic()
                while self._sent and now - self._sent[0] >= self._per_s:
                    self._sent.popleft()
                if len(self._sent) < self._limit:
                    self._sent.append(now)
                    _reserved.set(True)
                    return
                await asyncio.sleep(self._per_s - (now - self._sent[0]))

    def note(self) -> None:
        """A request that didn't wait for a slot (discord.py's own): it
        still counts against the window."""
        self._sent.append(self._monotonic())

    def pause(self, seconds: float) -> None:
        """Discord said the global limit was hit anyway: block for ``seconds``."""
        until = self._monotonic() + seconds - self._per_s
        self._sent.clear()
        self._sent.extend([until] * self._limit)


class Poster:
    """Outbound half of the Discord adapter, given a connected client."""

    def __init__(self, limiter: SlidingWindow | None = None) -> None:
        self._limiter = self.limiter = limiter or SlidingWindow()

    async def deliver(self, client: discord.Client, announcement: Announcement) -> tuple[discord.Message, bool]:
        """Post it; returns the message and whether to open its thread."""
        destination = announcement.destination
        view = present(announcement)
        content, embed = announcement_parts(view, delivery_marker(announcement.idempotency_key))
        mentions = discord.AllowedMentions.none()
        # Only the route's role may ping, and only when the view says so (a
        # follow-up, a test or a DM never does).
        if view.mention and view.mention.isdigit() and content and f"<@&{view.mention}>" in content:
            mentions = discord.AllowedMentions(
                everyone=False, users=False, replied_user=False,
                roles=[discord.Object(id=int(view.mention))],
            )
        try:
            async with fail_fast(), asyncio.timeout(REQUEST_TIMEOUT_S * 2):
                target = await self._target(client, destination)
                await self._limiter.acquire()
                reference = _reply_reference(announcement)
                extra: dict[str, Any] = {"reference": reference} if reference is not None else {}
                if embed is not None:
                    extra["embed"] = embed
                message = await target.send(
                    content=content, allowed_mentions=mentions,
                    nonce=nonce_for(announcement.idempotency_key), **extra,
                )
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._error(exc, destination, posting=True) from exc
        threaded = announcement.thread and not announcement.is_follow_up and not destination.is_direct
        return message, threaded

    async def edit(self, client: discord.Client, announcement: Announcement) -> discord.Message:
        """Edit the posted message ``announcement.edit_of`` to show the view
        now (PATCH /channels/{id}/messages/{id}). The whole message is sent
        again (content, embed with its footer marker), so the same edit
        twice leaves the same message. Mentions are off: an edit never pings
        (the role's mention text stays as it was posted). A message deleted
        meanwhile raises DeliveryError(gone=True)."""
        destination = announcement.destination
        message_id = announcement.edit_of
        if not message_id or not message_id.isdigit():
            raise DeliveryError(f"no Discord message to edit in {destination.label} ({message_id!r})", gone=True)
        view = present(announcement)
        content, embed = announcement_parts(view, delivery_marker(announcement.idempotency_key))
        try:
            async with fail_fast(), asyncio.timeout(REQUEST_TIMEOUT_S * 2):
                target = await self._target(client, destination)
                await self._limiter.acquire()
                partial = target.get_partial_message(int(message_id))  # type: ignore[attr-defined]
                # embeds=[] (not None) clears a card when a template now makes the message.
                edited: discord.Message = await partial.edit(
                    content=content, embeds=[embed] if embed is not None else [],
                    allowed_mentions=discord.AllowedMentions.none())
        except DeliveryError:
            raise
        except discord.NotFound as exc:
            raise DeliveryError(f"message {message_id} in {destination.label} is gone: {exc.text[:100]}",
                                gone=True) from exc
        except Exception as exc:
            raise self._error(exc, destination, posting=False) from exc
        return edited

    async def open_thread(self, client: discord.Client, message: discord.Message, announcement: Announcement) -> None:
        """A discussion thread under the announcement (the route's ``thread``
        option). The message is already posted, so a failure here is logged,
        never a failed delivery: a retry would post the announcement twice."""
        name = (announcement.event.title or "Discussion").strip()[:100] or "Discussion"
        try:
            async with fail_fast(), asyncio.timeout(REQUEST_TIMEOUT_S):
                await self._limiter.acquire()
                # The raw route: Message.create_thread needs the guild cached,
                # and a channel reached by id alone has none attached.
                await client.http.start_thread_with_message(
                    message.channel.id, message.id, name=name, auto_archive_duration=1440)
        except Exception as exc:
            log.warning("announcement %s posted, but its thread could not be opened: %s", message.id, exc)

    async def find(self, client: discord.Client, announcement: Announcement) -> Delivered | None:
        """The earlier post of this announcement, searched by nonce and by
        the footer marker from the first attempt on (oldest first, paged,
        at most LOOKUP_LIMIT messages). Raises DeliveryError when Discord
        can't be asked right now (the outbox retries the lookup)."""
        destination = announcement.destination
        marker = truncate(delivery_marker(announcement.idempotency_key), FOOTER_MAX)
        nonce = nonce_for(announcement.idempotency_key)
        # A template's message has no embed to carry the marker: it is
        # recognised by its exact text (made again from the same row).
        content, embed = announcement_parts(present(announcement), marker)
        text_only = content if embed is None else None
        me = client.user.id if client.user else None
        since = announcement.first_attempt_at
        after = since - LOOKUP_MARGIN if since is not None else None
        try:
            async with fail_fast(), asyncio.timeout(REQUEST_TIMEOUT_S * (LOOKUP_LIMIT // 100 + 1)):
                target = await self._target(client, destination)
                await self._limiter.acquire()
                # From the first attempt on, oldest first; a row from before
                # first_attempt_at was recorded: the newest messages.
                history = (target.history(limit=LOOKUP_LIMIT, after=after, oldest_first=True) if after
                           else target.history(limit=LOOKUP_LIMIT))
                async for message in history:
                    if me is not None and message.author.id != me:
                        continue
                    if str(message.nonce or "") == nonce or any(
                        (e.footer.text or "") == marker for e in message.embeds
                    ) or (text_only is not None and message.content == text_only):
                        return Delivered(message_id=str(message.id))
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._error(exc, destination, posting=False) from exc
        return None

    async def _target(self, client: discord.Client, destination: Destination) -> discord.abc.Messageable:
        if not destination.id.isdigit():
            raise DeliveryError(f"bad Discord id {destination.id!r} for {destination}", permanent=True)
        if destination.is_direct:
            await self._limiter.acquire()
            return await client.create_dm(discord.Object(id=int(destination.id)))
        return client.get_partial_messageable(int(destination.id))

    def _error(self, exc: BaseException, destination: Destination, *, posting: bool) -> DeliveryError:
        """What the outbox needs to know. ``maybe_delivered`` only for a post
        whose fate is unknown: a 5xx, a timeout, a connection dropped after
        the request went out. A refused connection never reached Discord."""
        where = destination.label
        maybe = posting
        if isinstance(exc, PlatformAnswered):
            if exc.status == 429:
                if exc.whole_platform and exc.retry_after:
                    self._limiter.pause(exc.retry_after)
                return DeliveryError(f"rate limited posting to {where}", retry_after=exc.retry_after or 1.0,
                                     whole_platform=exc.whole_platform)
            return DeliveryError(f"discord answered {exc.status} for {where}", maybe_delivered=maybe)
        if isinstance(exc, discord.RateLimited):
            return DeliveryError(f"rate limited posting to {where}", retry_after=exc.retry_after)
        if isinstance(exc, discord.Forbidden):
            what = "the member does not accept direct messages" if destination.is_direct else "missing permission"
            return DeliveryError(f"{what} in {where}", permanent=True)
        if isinstance(exc, discord.NotFound):
            return DeliveryError(f"{where} not found (deleted?)", permanent=True)
        if isinstance(exc, discord.HTTPException):
            # A 400 means our payload is wrong, which no route change fixes;
            # still not "broken": worth another try after a fix or an edit.
            return DeliveryError(f"discord answered {exc.status} for {where}: {exc.text[:200]}",
                                 maybe_delivered=maybe and exc.status >= 500)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return DeliveryError(f"cannot reach discord for {where}: {type(exc).__name__}")
        if isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
            return DeliveryError(f"network error for {where}: {type(exc).__name__}", maybe_delivered=maybe)
        return DeliveryError(f"unexpected error for {where}: {type(exc).__name__}: {exc}", maybe_delivered=maybe)


def _reply_reference(announcement: Announcement) -> discord.MessageReference | None:
    """A follow-up is sent as a reply to the first announcement; if that
    message was deleted meanwhile, Discord posts it plainly instead of failing."""
    channel = announcement.destination.id
    if announcement.reply_to is None or not announcement.reply_to.isdigit() or not channel.isdigit():
        return None
    if announcement.destination.is_direct:
        return None
    return discord.MessageReference(
        message_id=int(announcement.reply_to), channel_id=int(channel), fail_if_not_exists=False)


