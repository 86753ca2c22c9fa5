"""One apscheduler job per source, kept in step with the sources table; a
broken source never stops the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.clock import utc_now
from bot.errors import SourceError
from bot.models import ContentKind, Source, SourceSpec
from bot.poller import Poller, PollReport
from bot.scheduler import JOB_PREFIX, PollScheduler, jitter_s
from bot.sources.rss import Fetched
from bot.storage import SqliteStorage
from tests.spine import items


class ScriptedKind:
    """A source kind at the network's edge: 'broken' always fails."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def fetch(self, source: Source) -> Fetched:
        self.calls.append(source.name)
        if source.name == "broken":
            raise SourceError("HTTP 500 Internal Server Error")
        return Fetched(tuple(items(2)), body_hash=source.name)


async def test_jobs_follow_the_sources_and_a_broken_source_does_not_stop_the_others(tmp_path: Path) -> None:
    async with await SqliteStorage.open(tmp_path / "s.db") as store:
        for name in ("broken", "podcast", "blog"):
            await store.add_source(SourceSpec(name, "rss", f"https://example.com/{name}", ContentKind.EPISODE,
                                              every_s=3600), utc_now())
        kind = ScriptedKind()
        poller = Poller(store, {"rss": kind}, clock=utc_now)
        done: dict[str, PollReport] = {}
        all_polled = asyncio.Event()

        def on_polled(report: PollReport) -> None:
            done[report.name] = report
            if len(done) == 3:
                all_polled.set()

        scheduler = PollScheduler(store, poller, clock=utc_now, on_polled=on_polled)
        await scheduler.start()
        try:
            assert scheduler.job_names() == ["blog", "broken", "podcast"]
            job = scheduler._scheduler.get_job(JOB_PREFIX + "blog")  # type: ignore[union-attr]
            assert job.max_instances == 1 and job.coalesce
            await asyncio.wait_for(all_polled.wait(), 20)  # the first fire is right after start
            assert not done["broken"].ok and done["podcast"].ok and done["blog"].ok
            broken = await store.get_source("broken")
            assert broken.consecutive_failures == 1 and broken.last_error == "HTTP 500 Internal Server Error"

            await store.set_paused("blog", True)
            await store.remove_source("broken")
            await store.add_source(SourceSpec("videos", "rss", "https://example.com/v", ContentKind.VIDEO,
                                              every_s=900), utc_now())
            await scheduler.sync()
            assert scheduler.job_names() == ["podcast", "videos"]
        finally:
            await scheduler.shutdown()
        assert scheduler.job_names() == []


def test_jitter_spreads_polls_without_delaying_them_much() -> None:
    assert jitter_s(900) == 60 and jitter_s(300) == 30 and jitter_s(86400) == 60


async def test_a_change_made_through_another_instance_reaches_the_jobs_without_a_restart(tmp_path: Path) -> None:
    async with await SqliteStorage.open(tmp_path / "s.db") as store, \
            await SqliteStorage.open(tmp_path / "s.db") as other_instance:
        await store.add_source(SourceSpec("podcast", "rss", "https://example.com/p", ContentKind.EPISODE,
                                          every_s=3600), utc_now())
        poller = Poller(store, {"rss": ScriptedKind()}, clock=utc_now)
        scheduler = PollScheduler(store, poller, clock=utc_now, resync_s=0.05)
        await scheduler.start()
        try:
            assert scheduler.job_names() == ["podcast"]
            await other_instance.set_paused("podcast", True)  # a moderator, through another instance
            await other_instance.add_source(SourceSpec("videos", "rss", "https://example.com/v", ContentKind.VIDEO,
                                                       every_s=900), utc_now())

            async def resynced() -> None:
                while scheduler.job_names() != ["videos"]:
                    scheduler.synced.clear()
                    await scheduler.synced.wait()

            await asyncio.wait_for(resynced(), 10)
        finally:
            await scheduler.shutdown()
