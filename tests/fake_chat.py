"""A scriptable ChatAdapter for outbox tests: the edge where the platform would be.

The real adapters are tested against local fakes of Discord and Slack in
their own test modules; this one lets the outbox be tested on its own.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Callable

from bot.errors import DeliveryError
from bot.models import Announcement, Delivered, Destination, DestinationKind, Platform


def to_destination(platform: Platform, channel: str) -> Destination:
    """Test shorthand: "user:<id>" is a direct message, anything else a channel."""
    if channel.startswith("user:"):
        return Destination(platform, DestinationKind.USER, channel[len("user:"):])
    return Destination(platform, DestinationKind.CHANNEL, channel)


class RecordingAdapter:
    def __init__(self, platform: Platform = Platform.DISCORD, *, log_path: Path | None = None,
                 can_tell: bool = True) -> None:
        self.platform = platform
        self.healthy = True
        self.sent: list[Announcement] = []
        self.attempts = 0
        self.failures: list[DeliveryError] = []  # raised in order, one per attempt
        # Per attempt, in order: True = the platform takes the post but the
        # answer is lost (the failure popped alongside is what the caller sees).
        self.accept_anyway: list[bool] = []
        self.failing: dict[str, DeliveryError] = {}  # destination id -> raised on every attempt there
        self.lookups = 0
        self.lookup_failures: list[DeliveryError] = []  # raised in order, one per lookup
        self.can_tell = can_tell
        # While set to an Event, deliver() waits for it (a platform hanging).
        self.hold: asyncio.Event | None = None
        self.changed = asyncio.Event()  # set after every attempt and lookup
        # "The platform's" record of accepted messages, kept in a file so it
        # survives a process that is killed; in memory when there's no file.
        self.log_path = log_path
        self.accepted: list[dict[str, str]] = []
        # Edits: every attempt's announcement, the ones that went through,
        # failures raised in order (one per edit attempt), and message ids
        # "deleted" on the platform (an edit of one raises gone).
        self.edit_attempts: list[Announcement] = []
        self.edited: list[Announcement] = []
        self.edit_failures: list[DeliveryError] = []
        self.deleted: set[str] = set()

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def _accept(self, announcement: Announcement) -> None:
        record = {"key": announcement.idempotency_key, "title": announcement.event.title,
                  "to": announcement.destination.id}
        self.accepted.append(record)
        if self.log_path is not None:
            with self.log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    async def deliver(self, announcement: Announcement) -> Delivered:
        self.attempts += 1
        try:
            if self.hold is not None:
                await self.hold.wait()
            if announcement.destination.id in self.failing:
                raise self.failing[announcement.destination.id]
            if self.failures:
                failure = self.failures.pop(0)
                if self.accept_anyway and self.accept_anyway.pop(0):
                    self._accept(announcement)
                raise failure
            self.sent.append(announcement)
            self._accept(announcement)
            return Delivered(message_id=f"m{len(self.sent)}")
        finally:
            self.changed.set()

    async def edit(self, announcement: Announcement) -> Delivered:
        self.edit_attempts.append(announcement)
        try:
            if announcement.edit_of in self.deleted:
                raise DeliveryError(f"message {announcement.edit_of} is gone", gone=True)
            if self.edit_failures:
                raise self.edit_failures.pop(0)
            self.edited.append(announcement)
            return Delivered(message_id=announcement.edit_of)
        finally:
            self.changed.set()

    async def find_delivered(self, announcement: Announcement) -> Delivered | None:
        self.lookups += 1
        self.changed.set()
        if self.lookup_failures:
            raise self.lookup_failures.pop(0)
        if not self.can_tell:
            return None
        for record in self.platform_log():
            if record["key"] == announcement.idempotency_key:
                return Delivered(message_id="found-" + announcement.idempotency_key[:6])
        return None

    async def wait_for(self, predicate: "Callable[[], bool]", timeout: float = 5.0) -> None:
        """Until ``predicate()`` holds, checked after every attempt and lookup."""
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), timeout)

    def platform_log(self) -> list[dict[str, str]]:
        if self.log_path is None:
            return list(self.accepted)
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]
