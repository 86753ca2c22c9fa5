"""Helpers shared by the spine's tests: a store with a source, a route and a
poll's worth of items, written through the real pipeline code."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.detect import Decision, decide
from bot.intents import SourceProgress
from bot.plan import plan_poll
from bot.models import ContentKind, EventKind, Item, Platform, Source, SourceSpec
from bot.storage import PollWrite, Storage
from tests.backends import Target, open_target

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=timezone.utc)
ALL_KINDS = frozenset(EventKind)


def spec(name: str = "podcast", url: str = "https://example.com/rss", **kw: object) -> SourceSpec:
    return SourceSpec(name=name, kind="rss", url=url, content=kw.pop("content", ContentKind.EPISODE), **kw)  # type: ignore[arg-type]


def items(n: int, *, start: int = 0, now: datetime = NOW) -> list[Item]:
    """n items, newest first like a feed, published one hour apart."""
    return [
        Item(title=f"Episode {i}", guid=f"g{i}", link=f"https://example.com/e/{i}",
             published_at=now - timedelta(hours=n - i + start))
        for i in reversed(range(start, start + n))
    ]


async def store_with_events(target: Target, n_events: int, routes: list[tuple[Platform, str]]) -> Storage:
    """A synced source plus ``n_events`` announced items routed to ``routes``,
    in a SQLite file or a PostgreSQL database (tests/backends.py)."""
    store = await open_target(target)
    for platform, channel in routes:
        await store.upsert_route(platform, channel, ALL_KINDS, None, NOW)
    source = await store.add_source(spec(), NOW)
    first = decide(spec=source.spec, synced=False, known=[], fetched=items(2), now=NOW)
    await write_decision(store, source, first, now=NOW, next_poll_at=NOW, etag=None, last_modified=None, body_hash="a")
    source = await store.get_source("podcast")
    fresh = items(n_events, start=100)
    known = (await store.load_poll_state(source, NOW, book_window_s=0)).known
    second = decide(spec=source.spec, synced=True, known=known, fetched=fresh, now=NOW)
    await write_decision(store, source, second, now=NOW, next_poll_at=NOW, etag=None, last_modified=None, body_hash="b")
    return store


async def write_decision(
    store: Storage, source: Source, decision: Decision, *, now: datetime,
    next_poll_at: datetime | None = None, etag: str | None = None, last_modified: str | None = None,
    body_hash: str | None = None, book_window_s: float = 3 * 86400, claim: str | None = None,
) -> PollWrite:
    """Plan ``decision`` against the stored state and write it, as a poll would."""
    state = await store.load_poll_state(source, now, book_window_s=book_window_s)
    intent = plan_poll(decision, state)
    progress = SourceProgress(polled_at=now, next_poll_at=next_poll_at or now, etag=etag,
                              last_modified=last_modified, body_hash=body_hash)
    return await store.write_poll(source, intent, progress, claim=claim)
