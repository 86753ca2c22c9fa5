"""The two seams between the core and a chat adapter.

Adapters implement ``ChatAdapter`` (outbound: announcements) and call a
``CommandHandler`` (inbound: a member's text). Both speak only models.py.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Protocol, runtime_checkable

from bot.models import Announcement, Caller, Delivered, Platform, Reply


class CommandHandler(Protocol):
    async def __call__(self, text: str, caller: Caller) -> Reply: ...


@runtime_checkable
class ChatAdapter(Protocol):
    platform: Platform

    @property
    def healthy(self) -> bool:
        """False while the adapter is disconnected; the outbox then waits."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def deliver(self, announcement: Announcement) -> Delivered:
        """Post one announcement. Raise DeliveryError on failure.

        ``announcement.idempotency_key`` is stable across retries and restarts:
        put it where ``find_delivered`` can see it (a nonce, message metadata).
        """
        ...

    async def edit(self, announcement: Announcement) -> Delivered:
        """Change the message ``announcement.edit_of`` (a message id this
        adapter's ``deliver`` returned) to show ``present(announcement)``
        now (an edit: ``announcement.edit`` is set). Never posts a new
        message; never pings. Idempotent: the same edit twice leaves the
        same message. Raise DeliveryError on failure, with ``gone`` when
        the message no longer exists (deleted)."""
        ...

    async def find_delivered(self, announcement: Announcement) -> Delivered | None:
        """Called before re-sending a row whose previous attempt may have
        succeeded (the process died between "sent" and "recorded"). Return the
        earlier message if the platform shows one, else None (then it is sent
        again: delivery is at-least-once where a platform can't tell)."""
        ...


class TopicCompleter(Protocol):
    async def __call__(self, prefix: str, limit: int = 25) -> list[str]:
        """Words seen in titles that start with ``prefix`` (for autocomplete)."""
        ...


class Settings(Protocol):
    """A small persistent key/value store adapters may use (e.g. a command-set hash)."""

    async def find_setting(self, key: str) -> str | None: ...

    async def set_setting(self, key: str, value: str) -> None: ...


# A route whose channel starts with this prefix is a direct message to the
# user id that follows it (personal subscriptions).
DM_CHANNEL_PREFIX = "user:"


class HttpMounts(Protocol):
    """The bot's own HTTP server (``[http] port``), for an adapter that
    answers HTTP itself (Slack's HTTP mode) to share instead of opening a
    port of its own. Routes are mounted before the server starts; ``serving``
    is set while it listens."""

    serving: asyncio.Event

    def mount(self, method: str, path: str, handler: Callable[[Any], Awaitable[Any]]) -> None: ...
