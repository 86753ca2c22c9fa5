"""Feeds the chaos suite publishes to, served by tests/feedserver.py in the
test process (it is never killed).

Every item has a unique URL, https://example.com/<feed>/e/<n>, which the
adapters put in the announcement (Discord: the embed ``url``; Slack: the
``<url|title>`` link in blocks and text), so a recorded post names its item.
Item n of a feed is published at ``start + n minutes``: publication order is
n order, and every date is recent enough for the default ``max_age`` (7d).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

from tests.feedserver import FeedServer

ITEM_URL = re.compile(r"https://example\.com/([a-z][a-z0-9-]*)/e/(\d+)")


@dataclass(frozen=True, slots=True)
class FeedItem:
    feed: str
    n: int
    published: datetime

    @property
    def url(self) -> str:
        return f"https://example.com/{self.feed}/e/{self.n}"

    @property
    def title(self) -> str:
        return f"{self.feed} dispatch {self.n}"


class ChaosFeed:
    """One RSS feed. Item 0 is there from the start: the bot's first poll of
    a source is silent, so it is never announced; items 1.. are published
    by the test and each must reach every channel exactly once."""

    def __init__(self, name: str, server: FeedServer, start: datetime | None = None) -> None:
        self.name = name
        self.path = f"/{name}.xml"
        self._server = server
        self._start = start or datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=6)
        self.baseline = FeedItem(name, 0, self._start)
        self.items: list[FeedItem] = []  # published by the test, oldest first
        self.held: asyncio.Event | None = None  # set it to answer the fetches waiting
        self.title_suffix = ""  # retitle(): the host fixes every published item's title
        self._serve()

    @property
    def url(self) -> str:
        return self._server.url(self.path)

    def item(self, n: int) -> FeedItem:
        return FeedItem(self.name, n, self._start + timedelta(minutes=n))

    def publish(self, count: int = 1, *, hold: bool = False) -> list[FeedItem]:
        """The next ``count`` items appear in the feed. With ``hold``, every
        fetch from now on waits (with the new body) until ``release()``, so
        two pollers can be handed the same new items at the same instant."""
        new = [self.item(len(self.items) + i + 1) for i in range(count)]
        self.items.extend(new)
        self._serve(hold=hold)
        return new

    def retitle(self, suffix: str) -> None:
        """Every item published so far gets a new title (same GUID and link):
        the bot edits their announcements in place, never posts again."""
        self.title_suffix = suffix
        self._serve()

    def release(self) -> None:
        if self.held is not None:
            self.held.set()

    def _serve(self, *, hold: bool = False) -> None:
        earlier = self.held
        if hold:
            self.held = self._server.add_slow(self.path, self.render())
        else:
            self._server.add_feed(self.path, self.render())
            self.held = None
        if earlier is not None:
            earlier.set()  # never leave an earlier fetch hanging

    async def polled(self, times: int, timeout: float = 30.0) -> int:
        """Wait until the feed has been fetched ``times`` times in all."""
        return await self._server.wait_hits(self.path, times, timeout)

    @property
    def hits(self) -> int:
        return self._server.hits[self.path]

    def render(self) -> bytes:
        entries = "".join(_item_xml(i, self.title_suffix if i.n else "")
                          for i in reversed([self.baseline, *self.items]))
        newest = (self.items[-1] if self.items else self.baseline).published
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>Chaos feed {escape(self.name)}</title>"
            f"<link>https://example.com/{self.name}/</link>"
            f"<description>Items published by the chaos suite</description>"
            f"<lastBuildDate>{format_datetime(newest, usegmt=True)}</lastBuildDate>"
            f"{entries}</channel></rss>\n"
        ).encode()


def _item_xml(item: FeedItem, suffix: str = "") -> str:
    return (
        "<item>"
        f"<title>{escape(item.title + suffix)}</title>"
        f"<link>{escape(item.url)}</link>"
        f'<guid isPermaLink="true">{escape(item.url)}</guid>'
        f"<pubDate>{format_datetime(item.published, usegmt=True)}</pubDate>"
        f"<description>Chaos item {item.n} of {escape(item.feed)}.</description>"
        "</item>"
    )


def item_in(body: Any) -> tuple[str, int] | None:
    """(feed, n) of the one item a recorded post announces, or None."""
    found = {(m.group(1), int(m.group(2))) for m in ITEM_URL.finditer(_text(body))}
    return found.pop() if len(found) == 1 else None


def _text(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
