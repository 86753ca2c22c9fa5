"""Where both fakes report an accepted post: the durable ledger first, then
the fault book (a disk fill may be due) and the waiters, all before the
post is answered."""

from __future__ import annotations

import time
from typing import Any

from tests.chaos.faults import ANSWER_STATUS, FaultBook
from tests.chaos.ledger import Ledger, Post
from tests.chaos.pulse import Pulse


class Recorder:
    def __init__(self, ledger: Ledger, faults: FaultBook, pulse: Pulse) -> None:
        self.ledger = ledger
        self.faults = faults
        self.pulse = pulse
        self.counts: dict[str, int] = {"discord": 0, "slack": 0}
        for post in ledger.posts:
            self.counts[post.platform] = self.counts.get(post.platform, 0) + 1

    @property
    def total(self) -> int:
        return len(self.ledger.posts)

    def record(self, platform: str, channel: str, message_id: str, body: Any,
               message: dict[str, Any]) -> Post:
        post = Post(self.ledger.next_seq, platform, channel, message_id, time.time(), body, message,
                    ANSWER_STATUS.get())
        self.ledger.append(post)  # on disk before anyone is told, let alone the client
        self.counts[platform] = self.counts.get(platform, 0) + 1
        self.faults.on_post(platform, self.counts[platform], self.total)
        self.pulse.fire()
        return post

    def posts(self, platform: str | None = None, channel: str | None = None) -> int:
        if platform is None and channel is None:
            return self.total
        if channel is None:
            return self.counts.get(platform or "", 0)
        return sum(1 for p in self.ledger.posts
                   if p.channel == channel and (platform is None or p.platform == platform))
