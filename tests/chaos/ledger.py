"""The fakes' durable record of every accepted post: one JSON line each,
fsynced BEFORE the platform answers, so "the platform has it" survives a
SIGKILL of the bot, of the test, or of the fake itself.

The same file restores the fakes' message stores when the platforms process
restarts, and is what ``verdict`` reads to judge a run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEDGER_FILE = "posts.jsonl"


@dataclass(frozen=True, slots=True)
class Post:
    seq: int  # 1-based order of acceptance across both platforms
    platform: str  # "discord" | "slack"
    channel: str
    message_id: str  # Discord snowflake / Slack ts
    time: float  # Unix seconds when the fake accepted it
    body: Any  # the request's JSON (Discord) or Web API arguments (Slack), as sent
    message: dict[str, Any]  # what the fake stored and answers lookups with
    answered: int = 200  # the HTTP status the client got ("accepted, then 503" shows 503)

    def to_json(self) -> str:
        return json.dumps({
            "seq": self.seq, "platform": self.platform, "channel": self.channel,
            "message_id": self.message_id, "time": self.time, "body": self.body,
            "message": self.message, "answered": self.answered,
        }, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> "Post":
        d = json.loads(line)
        return cls(d["seq"], d["platform"], d["channel"], d["message_id"], d["time"], d["body"],
                   d["message"], d.get("answered", 200))


class Ledger:
    """Append-only; ``append`` returns only once the line is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.posts: list[Post] = read_posts(path)
        self._file = path.open("a", encoding="utf-8")

    @property
    def next_seq(self) -> int:
        return len(self.posts) + 1

    def append(self, post: Post) -> None:
        self._file.write(post.to_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.posts.append(post)

    def close(self) -> None:
        self._file.close()


def read_posts(path: Path) -> list[Post]:
    """Every complete line. A torn last line (the fake killed mid-write, before
    it answered) is dropped: the client never saw that post accepted."""
    if not path.exists():
        return []
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            posts.append(Post.from_json(line))
        except (ValueError, KeyError):
            continue
    return posts
