"""Posting announcements to Slack, and finding them again after a crash.

Each announcement carries message metadata (``showbot_announcement`` with
the outbox row's idempotency key), so a lookup can tell our post from any
other. The lookup reads the channel's history (or the thread's replies,
for a follow-up) from the row's first attempt on, paged, bounded.

Errors come back to the outbox at once (the client has no retry handlers,
see api.py), classified: a refusal that a human must fix is permanent; a
429 carries Slack's Retry-After; a 5xx, a timeout or a dropped connection
may have posted it (``maybe_delivered``), a refused connection did not.
Slack allows about one message per second per channel: ``Pacer`` keeps
each channel to that, without holding up any other channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any, Awaitable, Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import PERMANENT_ERRORS, THREAD_GONE_ERRORS, api_error, describe, retry_after, status_of
from adapters.slack.render import render_announcement
from bot.errors import DeliveryError
from bot.models import Announcement, Delivered, Destination

log = logging.getLogger("showbot.slack")

METADATA_EVENT_TYPE = "showbot_announcement"
# What chat.update answers for a message that can't be edited any more.
MESSAGE_GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
LOOKUP_PAGE = 200
LOOKUP_PAGES = 5  # at most 1,000 messages read per lookup
LOOKUP_MARGIN = timedelta(minutes=2)  # clocks disagree a little
CHANNEL_INTERVAL_S = 1.0  # Slack: about one message a second per channel


class Pacer:
    """At most one post per ``interval_s`` per channel; other channels never wait."""

    def __init__(self, interval_s: float = CHANNEL_INTERVAL_S,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._sleep = sleep
        self._last: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        last = self._last.get(channel)
        if last is not None:
            left = self._interval_s - (self._monotonic() - last)
            if left > 0:
                await self._sleep(left)
        self._last[channel] = self._monotonic()
        if len(self._last) > 10_000:  # forget channels idle for long
            cutoff = self._monotonic() - self._interval_s
            self._last = {c: t for c, t in self._last.items() if t > cutoff}


class Poster:
    def __init__(self, client: AsyncWebClient, pacer: Pacer | None = None) -> None:
        self._client = client
        self._pacer = pacer or Pacer()
        self._dm_channels: dict[str, str] = {}

    async def _channel_for(self, destination: Destination) -> str:
        """A channel id; a user's DM channel is opened once and remembered."""
        if not destination.is_direct:
            return destination.id
        if destination.id not in self._dm_channels:
            resp = await self._client.conversations_open(users=destination.id)
            self._dm_channels[destination.id] = resp["channel"]["id"]
        return self._dm_channels[destination.id]

    async def deliver(self, announcement: Announcement) -> Delivered:
        destination = announcement.destination
        message = render_announcement(announcement)
        try:
            channel = await self._channel_for(destination)
            await self._pacer.wait(channel)
            try:
                # A follow-up goes in the first announcement's thread.
                resp = await self._post(channel, announcement, message, announcement.reply_to)
            except SlackApiError as exc:
                if announcement.reply_to is None or api_error(exc) not in THREAD_GONE_ERRORS:
                    raise
                log.info("the announcement to follow up in %s is gone (%s); posting on its own",
                         destination, api_error(exc))
                resp = await self._post(channel, announcement, message, None)
        except Exception as exc:  # noqa: BLE001 - everything becomes a DeliveryError
            raise delivery_error(exc, destination, posting=True) from exc
        return Delivered(message_id=resp.get("ts"))

    async def edit(self, announcement: Announcement) -> Delivered:
        """``chat.update`` of the posted message (ts ``announcement.edit_of``)
        to show the view now: the whole message again, so the same edit
        twice leaves the same message, with the post's metadata kept. A
        message deleted meanwhile raises DeliveryError(gone=True)."""
        destination = announcement.destination
        ts = announcement.edit_of
        if not ts:
            raise DeliveryError(f"no Slack message to edit in {destination.label}", gone=True)
        message = render_announcement(announcement)
        try:
            channel = await self._channel_for(destination)
            await self._pacer.wait(channel)
            await self._client.chat_update(
                channel=channel, ts=ts, text=message["text"], blocks=message["blocks"],
                metadata=_metadata(announcement),
            )
        except SlackApiError as exc:
            if api_error(exc) in MESSAGE_GONE_ERRORS:
                raise DeliveryError(f"message {ts} in {destination.label} is gone: {api_error(exc)}",
                                    gone=True) from exc
            raise delivery_error(exc, destination, posting=False) from exc
        except Exception as exc:  # noqa: BLE001 - everything becomes a DeliveryError
            raise delivery_error(exc, destination, posting=False) from exc
        return Delivered(message_id=ts)

    async def _post(self, channel: str, announcement: Announcement, message: dict[str, Any],
                    thread_ts: str | None) -> Any:
        return await self._client.chat_postMessage(
            channel=channel, text=message["text"], blocks=message["blocks"],
            unfurl_links=False, unfurl_media=False, thread_ts=thread_ts,
            metadata=_metadata(announcement),
        )

    async def find(self, announcement: Announcement) -> Delivered | None:
        """The earlier post of this announcement, by its metadata key, from
        the first attempt on. None when Slack says it isn't there, or can
        never show it (no history scope, channel gone: posting will then say
        so properly). Raises DeliveryError when Slack can't be asked now."""
        destination = announcement.destination
        since = announcement.first_attempt_at
        oldest = f"{(since - LOOKUP_MARGIN).timestamp():.6f}" if since is not None else None
        try:
            channel = await self._channel_for(destination)
            cursor: str | None = None
            for _ in range(LOOKUP_PAGES):
                args: dict[str, Any] = {"channel": channel, "limit": LOOKUP_PAGE, "include_all_metadata": True}
                if oldest:
                    args["oldest"] = oldest
                if cursor:
                    args["cursor"] = cursor
                if announcement.reply_to:  # thread replies are not in the channel's history
                    resp = await self._client.conversations_replies(ts=announcement.reply_to, **args)
                else:
                    resp = await self._client.conversations_history(**args)
                for msg in resp.get("messages") or []:
                    meta = msg.get("metadata") or {}
                    payload = meta.get("event_payload") or {}
                    if meta.get("event_type") == METADATA_EVENT_TYPE and payload.get("key") == announcement.idempotency_key:
                        return Delivered(message_id=msg.get("ts"))
                cursor = ((resp.get("response_metadata") or {}).get("next_cursor") or None)
                if not resp.get("has_more") or not cursor:
                    return None
            log.warning("looked through %d messages of %s for an earlier post and stopped; "
                        "posting it again", LOOKUP_PAGE * LOOKUP_PAGES, destination)
            return None
        except SlackApiError as exc:
            error = delivery_error(exc, destination, posting=False)
            if error.permanent or api_error(exc) in THREAD_GONE_ERRORS:
                # Can't look, ever (no history scope, channel or thread gone):
                # say "not there"; posting surfaces a permanent error properly.
                log.warning("could not look for an earlier announcement in %s (%s)", destination, describe(exc))
                return None
            raise error from exc
        except Exception as exc:  # noqa: BLE001 - network: the outbox asks again later
            raise delivery_error(exc, destination, posting=False) from exc


def delivery_error(exc: BaseException, destination: Destination, *, posting: bool) -> DeliveryError:
    where = destination.label
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, SlackApiError):
        error = api_error(exc)
        status = status_of(exc)
        if status == 429 or error == "ratelimited":
            wait = retry_after(getattr(exc.response, "headers", None)) or 1.0
            return DeliveryError(f"slack rate-limited {where}; retry after {wait:g}s", retry_after=wait)
        if error in PERMANENT_ERRORS:
            return DeliveryError(f"slack refused to post to {where}: {error}", permanent=True)
        # "ok": false with an error code is Slack refusing this request: not
        # posted. An HTTP 5xx may have been acted on.
        return DeliveryError(f"slack error for {where}: {error} (HTTP {status})",
                             maybe_delivered=posting and status >= 500)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return DeliveryError(f"cannot reach slack for {where}: {describe(exc)}")
    return DeliveryError(f"could not reach slack for {where}: {describe(exc)}", maybe_delivered=posting)


def _metadata(announcement: Announcement) -> dict[str, Any]:
    """The message metadata ``find`` looks a post up by: one shape for posts and their edits."""
    return {"event_type": METADATA_EVENT_TYPE,
            "event_payload": {"key": announcement.idempotency_key, "event_id": announcement.event.id}}
