"""The poll pipeline: fetch -> decide (pure) -> one write. One source at a time.

A failure of any kind is stored on the source and reported; it never
escapes to the scheduler, so one broken source cannot stop the others.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from bot.backoff import backoff_s
from bot.clock import Clock
from bot.detect import BookMatcher, Decision, decide
from bot.errors import SourceError, StorageError
from bot.filters import make_item_filter
from bot.models import Event, Platform, Source, StoredItem
from bot.sources.rss import Fetched
from bot.sources.xprofile import snapshot_row
from bot.storage import Store
from bot.storage.catalog import load_filters, load_subscriptions
from bot.subscriptions import match_subscriptions

log = logging.getLogger("showbot.poll")

MAX_POLL_BACKOFF_S = 6 * 3600


class SourceKind(Protocol):
    async def fetch(self, source: Source) -> Fetched: ...


@dataclass(frozen=True, slots=True)
class PollReport:
    name: str
    ok: bool
    error: str | None = None
    unchanged: bool = False
    new: tuple[StoredItem, ...] = ()
    events: tuple[Event, ...] = ()
    consecutive_failures: int = 0
    skipped: bool = False  # paused, or backing off and not forced
    warnings: tuple[str, ...] = field(default_factory=tuple)


class Poller:
    def __init__(
        self,
        store: Store,
        kinds: dict[str, SourceKind],
        *,
        clock: Clock,
        is_book_news: BookMatcher | None = None,
        book_window_s: float = 3 * 86400,
        failure_alert_after: int = 5,
    ) -> None:
        self._failure_alert_after = failure_alert_after
        self._book_window_s = book_window_s
        self._store = store
        self._kinds = kinds
        self._clock = clock
        self._is_book_news = is_book_news

    async def poll(self, name: str, *, force: bool = False) -> PollReport:
        """Poll one source. ``force`` ignores pause and backoff (``showbot poll``)."""
        source = await self._store.get_source(name)
        now = self._clock()
        if not force and (source.paused or (source.next_poll_at and now < source.next_poll_at)):
            return PollReport(source.name, ok=True, skipped=True,
                              consecutive_failures=source.consecutive_failures)
        kind = self._kinds.get(source.spec.kind)
        try:
            if kind is None:
                raise SourceError(f"source kind {source.spec.kind!r} is not available in this build")
            fetched = await kind.fetch(source)
            return await self._store_fetched(source, fetched)
        except SourceError as exc:
            return await self._fail(source, str(exc), exc.retry_after)
        except StorageError:
            raise  # the database is down: nothing else will work either
        except Exception as exc:  # a bug in a parser must not stop the bot
            log.exception("unexpected error polling %s", source.name)
            return await self._fail(source, f"internal error: {type(exc).__name__}: {exc}", None)

    async def _store_fetched(self, source: Source, fetched: Fetched) -> PollReport:
        now = self._clock()
        next_poll_at = now + timedelta(seconds=source.spec.every_s)
        if fetched.items is None:
            await self._store.record_unchanged(
                source.id, now=now, next_poll_at=next_poll_at,
                etag=fetched.etag, last_modified=fetched.last_modified,
            )
            return PollReport(source.name, ok=True, unchanged=True)
        known = await self._store.known_items(source.id)
        rules = await load_filters(self._store, source.id)
        # Pure but not free (hashing every item): off the loop, so a
        # 500-item first poll does not stall chat replies.
        decision = await asyncio.to_thread(
            decide, spec=source.spec, synced=source.synced, known=known, fetched=fetched.items,
            now=now, is_book_news=self._is_book_news,
            announce_filter=make_item_filter(rules) if rules else None,
        )
        written = await self._store.apply_poll(
            source, decision, now=now, next_poll_at=next_poll_at,
            etag=fetched.etag, last_modified=fetched.last_modified, body_hash=fetched.body_hash,
            direct_messages=await self._direct_messages(decision),
            snapshot=snapshot_row(fetched.snapshot) if fetched.snapshot is not None else None,
            changes=fetched.changes, cursor=fetched.cursor, book_window_s=self._book_window_s,
        )
        if written.new_items or written.events:
            log.info("%s: %d new item(s), %d event(s)", source.name, len(written.new_items),
                     len(written.events))
        return PollReport(
            source.name, ok=True, new=written.new_items, events=written.events,
            warnings=(fetched.warning,) if fetched.warning else (),
        )

    async def _direct_messages(self, decision: Decision) -> list[tuple[int, Platform, str]]:
        """Members whose subscribed topics match an item being announced:
        (new item index, platform, user id), at most one per item per member."""
        announced = sorted({e.new_index for e in decision.events})
        if not announced:
            return []
        subs = await load_subscriptions(self._store)
        if not subs:
            return []
        items = [decision.new_items[i].item for i in announced]
        matches = await asyncio.to_thread(match_subscriptions, items, subs)
        return [(announced[i], platform, user) for i, platform, user in matches]

    async def _fail(self, source: Source, error: str, retry_after: float | None) -> PollReport:
        now = self._clock()
        failures = source.consecutive_failures + 1
        delay = backoff_s(failures, source.spec.every_s, max(MAX_POLL_BACKOFF_S, source.spec.every_s),
                          retry_after)
        count = await self._store.record_failure(
            source.id, error, now=now, next_poll_at=now + timedelta(seconds=delay))
        log.warning("%s: poll failed (%d in a row, next try in %.0fs): %s",
                    source.name, count, delay, error)
        if count == self._failure_alert_after:  # exactly once per streak of failures
            await self._store.queue_alert(
                f"Feed {source.name!r} has failed {count} times in a row: {error}", now)
        return PollReport(source.name, ok=False, error=error, consecutive_failures=count)

