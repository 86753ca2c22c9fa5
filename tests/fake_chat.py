"""A scriptable ChatAdapter for outbox tests: the edge where the platform would be.

The real adapters are tested against local fakes of Discord and Slack in
their own test modules; this one lets the outbox be tested on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.errors import DeliveryError
from bot.models import Announcement, Delivered, Platform


class RecordingAdapter:
    def __init__(self, platform: Platform = Platform.DISCORD, *, log_path: Path | None = None,
                 can_tell: bool = True) -> None:
        self.platform = platform
        self.healthy = True
        self.sent: list[Announcement] = []
        self.attempts = 0
        self.failures: list[DeliveryError] = []  # raised in order, one per attempt
        self.lookups = 0
        self.can_tell = can_tell
        # "The platform's" record of accepted messages, kept in a file so it
        # survives a process that is killed.
        self.log_path = log_path

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def deliver(self, announcement: Announcement) -> Delivered:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(announcement)
        if self.log_path is not None:
            with self.log_path.open("a") as f:
                f.write(json.dumps({"key": announcement.idempotency_key, "title": announcement.event.title}) + "\n")
        return Delivered(message_id=f"m{len(self.sent)}")

    async def find_delivered(self, announcement: Announcement) -> Delivered | None:
        self.lookups += 1
        if not self.can_tell or self.log_path is None or not self.log_path.exists():
            return None
        for line in self.log_path.read_text().splitlines():
            if json.loads(line)["key"] == announcement.idempotency_key:
                return Delivered(message_id="found-" + announcement.idempotency_key[:6])
        return None

    def platform_log(self) -> list[dict[str, str]]:
        if self.log_path is None or not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]
