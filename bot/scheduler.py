"""Polling on a schedule: one apscheduler job per source.

Each job fires at the source's interval (with jitter, so sources added
together don't poll in lock-step); ``max_instances=1`` keeps one poll of a
source at a time in this process, and the poll's claim in the database
across processes; ``coalesce`` folds missed runs into one. Backoff after
failures is not a job change: the poller skips a fire time that comes before
the source's stored ``next_poll_at``, so backoff survives restarts.

The jobs follow the sources table: at once after a moderator's change in
this process (``sync``), and every ``resync_s`` for changes made through
another instance sharing the database.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import Clock
from bot.errors import NotFound, StorageError
from bot.faults import StorageFaults
from bot.poller import Poller, PollReport
from bot.storage import Storage

log = logging.getLogger("showbot.scheduler")

JOB_PREFIX = "poll:"
RESYNC_JOB = "resync"
RESYNC_S = 30.0


def jitter_s(every_s: int) -> int:
    return int(min(every_s * 0.1, 60))


class PollScheduler:
    def __init__(
        self,
        store: Storage,
        poller: Poller,
        *,
        clock: Clock,
        on_polled: Callable[[PollReport], None] | None = None,
        faults: StorageFaults | None = None,
        resync_s: float = RESYNC_S,
    ) -> None:
        self._faults = faults or StorageFaults()
        self._resync_s = resync_s
        self._store = store
        self._poller = poller
        self._clock = clock
        self._on_polled = on_polled
        self._scheduler: AsyncIOScheduler | None = None
        self._intervals: dict[str, int] = {}
        self.synced = asyncio.Event()  # set after every sync (tests wait on it)
        self._in_flight: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        self._scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="UTC")
        self._scheduler.start()
        await self.sync()
        self._scheduler.add_job(self._resync_job, IntervalTrigger(seconds=self._resync_s, timezone="UTC"),
                                id=RESYNC_JOB, max_instances=1, coalesce=True, misfire_grace_time=None)

    async def _resync_job(self) -> None:
        try:
            await self.sync()
        except StorageError as exc:
            self._faults.failed(exc, "reading the sources")

    async def sync(self) -> None:
        """Make the jobs match the sources table (called after moderators
        add, remove, pause or resume a source: no restart needed)."""
        if self._scheduler is None:
            return
        wanted = {s.name: s.spec.every_s for s in await self._store.list_sources() if not s.paused}
        for name in list(self._intervals):
            if wanted.get(name) != self._intervals[name]:
                self._scheduler.remove_job(JOB_PREFIX + name)
                del self._intervals[name]
        for name, every_s in wanted.items():
            if name in self._intervals:
                continue
            self._scheduler.add_job(
                self._poll_job,
                IntervalTrigger(seconds=every_s, jitter=jitter_s(every_s), timezone="UTC"),
                args=[name],
                id=JOB_PREFIX + name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                # First poll soon after start, spread a little.
                next_run_time=self._clock() + timedelta(seconds=len(self._intervals) % 10),
            )
            self._intervals[name] = every_s
        self.synced.set()

    async def _poll_job(self, name: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        try:
            report = await self._poller.poll(name)
        except asyncio.CancelledError:
            # Shutdown cancels a poll that started as it began: its write
            # rolled back (or never began) and the claim runs out by itself.
            log.info("poll of %s cancelled by shutdown", name)
            return
        except NotFound:
            return  # removed between the fire time and now
        except StorageError as exc:
            # A full or read-only database fails every poll alike: one line a
            # minute (StorageFaults), not a traceback per poll.
            self._faults.failed(exc, f"polling {name!r}")
            return
        if not report.skipped:
            self._faults.succeeded()
        if self._on_polled is not None and not report.skipped:
            self._on_polled(report)

    async def idle(self) -> None:
        """Until the polls running now have finished (tests, `poll` beside a running bot)."""
        while self._in_flight:
            await asyncio.wait(set(self._in_flight))

    @property
    def running(self) -> bool:
        """Started and not shut down (what /readyz reports)."""
        return self._scheduler is not None and self._scheduler.running

    def job_names(self) -> list[str]:
        return sorted(self._intervals)

    async def shutdown(self, grace_s: float = 10.0) -> None:
        """Stop firing, give polls in flight ``grace_s`` to finish, then
        cancel what is left (its transaction rolls back: nothing half-written)."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.pause()
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=grace_s)
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        self._intervals.clear()
