"""The console adapter's announcements: what an operator sees in the terminal."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from adapters.console import ConsoleAdapter
from bot.models import Announcement, Destination, DestinationKind, Event, EventKind, Platform

WHEN = datetime(2026, 4, 16, 9, 0, tzinfo=timezone.utc)


def book_announcement(event: Event, outbox_id: int, reply_to: str | None = None) -> Announcement:
    return Announcement(outbox_id=outbox_id, idempotency_key=f"k{outbox_id}", event=event,
                        destination=Destination(Platform.CONSOLE, DestinationKind.CHANNEL, "terminal"),
                        item=None, reply_to=reply_to)


async def test_book_news_then_its_follow_up_read_as_one_story() -> None:
    out = io.StringIO()
    console = ConsoleAdapter(handler=None, stdin=io.StringIO(), stdout=out)
    first = await console.deliver(book_announcement(
        Event(1, EventKind.BOOK, "My new book: Root Cause", "https://amzn.to/4cfQjJj", WHEN), 1))
    await console.deliver(book_announcement(
        Event(2, EventKind.BOOK, "Pinned: Root Cause is out", "https://x.com/hnasr/status/1", WHEN,
              payload={"follow_up_of": 1}), 2, reply_to=first.message_id))
    assert out.getvalue().splitlines() == [
        "[Book news] My new book: Root Cause",
        "  https://amzn.to/4cfQjJj",
        "[More book news] Pinned: Root Cause is out",
        "  https://x.com/hnasr/status/1",
    ]
