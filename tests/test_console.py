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


async def test_a_direct_message_is_marked_apart_from_the_channel_post() -> None:
    """The issue: a subscription DM on the console printed like the channel post, twice, unmarked."""
    from dataclasses import replace

    from tests.announcement_cases import cases

    out = io.StringIO()
    console = ConsoleAdapter(handler=None, stdin=io.StringIO(), stdout=out)
    video = cases(Platform.CONSOLE)["video"]
    await console.deliver(video)
    await console.deliver(replace(video, destination=Destination(Platform.CONSOLE, DestinationKind.USER, "operator")))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[New video] Postgres fsync and SSD caches, explained with a demo"
    assert "[New video · direct message to operator] Postgres fsync and SSD caches, explained with a demo" in lines


async def test_the_console_says_what_to_do_when_it_starts() -> None:
    out = io.StringIO()
    console = ConsoleAdapter(handler=None, stdin=io.StringIO(), stdout=out)
    await console.start()
    await console.stop()
    first = out.getvalue().splitlines()[0]
    assert first.startswith("showbot console: type a command") and "`help`" in first and "Ctrl-C" in first
