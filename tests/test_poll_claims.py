"""One poll of a source at a time, across tasks and processes: a claim with a
lease in the database, never an IntegrityError from two pollers inserting
the same items."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.clock import FrozenClock
from bot.errors import ClaimLost
from bot.models import Item, Source
from bot.poller import BUSY, Poller, due_slack_s
from bot.sources.rss import Fetched
from bot.storage import SqliteStorage
from tests.spine import NOW, items, spec, write_decision


class SlowFeed:
    """A source kind whose fetch waits until the test lets it finish."""

    def __init__(self, fetched: list[Item]) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.fetches = 0
        self._fetched = fetched

    async def fetch(self, source: Source) -> Fetched:
        self.fetches += 1
        self.started.set()
        await self.release.wait()
        return Fetched(items=tuple(self._fetched), etag=None, last_modified=None, body_hash="h")


async def poller_on(path: Path, kind: SlowFeed, clock: FrozenClock, owner: str, lease_s: float = 60) -> tuple[SqliteStorage, Poller]:
    store = await SqliteStorage.open(path)
    return store, Poller(store, {"rss": kind}, clock=clock, owner=owner, lease_s=lease_s)  # type: ignore[dict-item]


async def test_an_overlapping_forced_poll_answers_busy_and_nothing_breaks(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    feed = SlowFeed(items(5))
    store, scheduled = await poller_on(tmp_path / "s.db", feed, clock, "run")
    other_store, cli = await poller_on(tmp_path / "s.db", feed, clock, "cli")  # `showbot poll`, its own process
    try:
        await store.add_source(spec(), NOW)
        first = asyncio.create_task(scheduled.poll("podcast"))
        await feed.started.wait()
        busy = await cli.poll("podcast", force=True)
        assert not busy.ok and busy.busy and busy.error == BUSY
        skipped = await Poller(other_store, {"rss": feed}, clock=clock, owner="x").poll("podcast")  # type: ignore[dict-item]
        assert skipped.ok and skipped.skipped  # a scheduled one just skips: the work is being done
        feed.release.set()
        report = await first
        assert report.ok and len(report.new) == 5 and feed.fetches == 1
        # The claim is gone with the poll: the next forced poll runs.
        again = await cli.poll("podcast", force=True)
        assert again.ok and not again.busy and again.new == ()
    finally:
        await store.close()
        await other_store.close()


async def test_a_dead_pollers_claim_expires_and_its_late_write_is_refused(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    feed = SlowFeed(items(3))
    feed.release.set()
    store, poller = await poller_on(tmp_path / "s.db", feed, clock, "alive", lease_s=30)
    try:
        source = await store.add_source(spec(), NOW)
        assert await store.claim_poll(source.id, "dead", NOW, NOW + timedelta(seconds=30))
        assert (await poller.poll("podcast", force=True)).busy
        clock.advance(seconds=31)  # its lease ran out: taken over
        report = await poller.poll("podcast", force=True)
        assert report.ok and len(report.new) == 3
        # The dead one comes back to life and tries to write what it fetched: refused.
        from bot.detect import decide

        decision = decide(spec=source.spec, synced=False, known=[], fetched=items(3), now=clock())
        try:
            await write_decision(store, source, decision, now=clock(), next_poll_at=clock(), etag=None,
                                   last_modified=None, body_hash=None, claim="dead")
        except ClaimLost:
            pass
        else:
            raise AssertionError("a poll whose claim was taken over must not be stored")
        assert await store.count_items() == 3
    finally:
        await store.close()


async def test_a_scheduled_fire_a_little_early_still_polls(tmp_path: Path) -> None:
    """Jitter and several instances move fire times around next_poll_at: a
    fire inside the slack is the same interval's poll, not an early one."""
    clock = FrozenClock(NOW)
    feed = SlowFeed(items(2))
    feed.release.set()
    store, poller = await poller_on(tmp_path / "s.db", feed, clock, "run")
    try:
        await store.add_source(spec(every_s=900), NOW)
        assert (await poller.poll("podcast")).ok and feed.fetches == 1
        clock.advance(seconds=900 - due_slack_s(900) + 1)
        assert not (await poller.poll("podcast")).skipped and feed.fetches == 2
        clock.advance(seconds=60)  # well inside the next interval: too early
        assert (await poller.poll("podcast")).skipped and feed.fetches == 2
    finally:
        await store.close()
