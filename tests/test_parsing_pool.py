"""Where feeds are parsed: the fast reader on the loop in slices, declined big
feeds in a worker process that exits when idle, declined small ones in a
thread; a dying worker is a clear error, then recovers."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Generator
from multiprocessing.connection import wait as wait_for_processes
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.app import feed_parsers
from bot.errors import FeedParseError
from bot.sources import parsing
from bot.sources.parsing import FeedParsers
from bot.storage.sqlite import SqliteStorage, threads_busy
from tests.feedgen import make_podcast_feed

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _die(*args: object, **kwargs: object) -> None:
    os._exit(3)  # the worker crashes as it would on an out-of-memory kill


def _exited(sentinels: list[int]) -> int:
    """How many of these processes exit within 30 s (their sentinels become ready)."""
    pending = list(sentinels)
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for ready in wait_for_processes(pending, timeout=deadline - time.monotonic()):
            pending.remove(ready)  # type: ignore[arg-type]
    return len(sentinels) - len(pending)


def _declined(body: bytes) -> bytes:
    """The same feed with a DOCTYPE: the fast reader leaves it to feedparser."""
    return body.replace(b"<rss ", b"<!DOCTYPE rss>\n<rss ", 1)


async def test_the_fast_reader_runs_on_the_loop_and_lets_it_run_between_slices() -> None:
    parsers = FeedParsers(slice_s=0, pause_s=0)  # hand the loop back after every step
    ticks = 0
    done = asyncio.Event()

    async def other_work() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_work())
    try:
        feed = await parsers.parse(make_podcast_feed(30, start=START))
    finally:
        done.set()
        await ticker
        parsers.close()
    assert len(feed.items) == 30 and feed.items[0].chapters
    assert ticks >= 30  # at least once per item: the parse never held the loop for long
    assert parsers._pool is None  # no worker process for a feed the fast reader reads


async def test_concurrent_fast_parses_take_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Their slices would otherwise pile up in one loop iteration."""
    events: list[str] = []
    real = parsing.parse_fast_steps  # type: ignore[attr-defined]

    def recorded(body: bytes, **kwargs: object) -> Generator[None, None, object]:
        events.append(f"start {kwargs['url']}")
        result = yield from real(body, **kwargs)  # type: ignore[arg-type]
        events.append(f"end {kwargs['url']}")
        return result

    monkeypatch.setattr(parsing, "parse_fast_steps", recorded)
    parsers = FeedParsers(slice_s=0, pause_s=0)
    body = make_podcast_feed(5, start=START)
    try:
        feeds = await asyncio.gather(*(parsers.parse(body, url=f"https://a.example/{k}") for k in "ab"))
    finally:
        parsers.close()
    assert [len(f.items) for f in feeds] == [5, 5]
    assert events == ["start https://a.example/a", "end https://a.example/a",
                      "start https://a.example/b", "end https://a.example/b"]


class _Sleeps:
    """Records every ``asyncio.sleep`` the parser asks for (then sleeps for real)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.delays: list[float] = []
        real = asyncio.sleep

        async def recorded(delay: float, result: object = None) -> object:
            self.delays.append(delay)
            return await real(delay, result)

        monkeypatch.setattr(parsing.asyncio, "sleep", recorded)

    @property
    def pauses(self) -> list[float]:
        return [d for d in self.delays if d > 0]


async def test_an_uncontended_parse_never_pauses_but_still_hands_the_loop_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = _Sleeps(monkeypatch)
    parsers = FeedParsers(slice_s=0, pause_s=0.004, pause_step_s=0.001, contended=lambda: False)
    try:
        feed = await parsers.parse(make_podcast_feed(10, start=START))
    finally:
        parsers.close()
    assert len(feed.items) == 10
    assert len(sleeps.delays) >= 10  # a turn of the loop after every slice
    assert sleeps.pauses == []  # and never a real pause: no one was waiting


async def test_a_contended_parse_pauses_until_the_other_work_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three checks find the store busy, then it is idle: three 1 ms steps in
    all, not a pause after every slice."""
    sleeps = _Sleeps(monkeypatch)
    answers = iter([True, True, True])
    parsers = FeedParsers(slice_s=0, pause_s=0.004, pause_step_s=0.001,
                          contended=lambda: next(answers, False))
    try:
        feed = await parsers.parse(make_podcast_feed(10, start=START))
    finally:
        parsers.close()
    assert len(feed.items) == 10
    assert sleeps.pauses == [0.001, 0.001, 0.001]


async def test_a_pause_is_bounded_however_long_the_contention_lasts(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = _Sleeps(monkeypatch)
    parsers = FeedParsers(slice_s=0, pause_s=0.003, pause_step_s=0.002, contended=lambda: True)
    try:
        feed = await parsers.parse(make_podcast_feed(3, start=START))
    finally:
        parsers.close()
    assert len(feed.items) == 3  # the parse made progress all along
    steps_aside = sum(1 for d in sleeps.delays if d == 0)
    assert steps_aside >= 3
    # Every step aside pauses 2 + 1 ms (the cap), never more.
    assert sleeps.pauses == [0.002, 0.001] * steps_aside


async def test_without_a_signal_every_slice_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = _Sleeps(monkeypatch)
    parsers = FeedParsers(slice_s=0, pause_s=0.001)
    try:
        await parsers.parse(make_podcast_feed(3, start=START))
    finally:
        parsers.close()
    assert sleeps.pauses and len(sleeps.pauses) == sum(1 for d in sleeps.delays if d == 0)


async def test_the_app_parses_with_sqlite_threads_as_the_signal(tmp_path: Path) -> None:
    """threads_busy() is true exactly while a store's operation is in flight
    on its connection thread, and the app's parsers step aside on it."""
    assert feed_parsers()._contended is threads_busy
    store = await SqliteStorage.open(tmp_path / "busy.db")
    try:
        assert not threads_busy()
        query = asyncio.create_task(store.list_sources())
        await asyncio.sleep(0)  # the query is sent to the reader thread, its answer not back yet
        assert threads_busy()
        assert await query == []
        assert not threads_busy()
        with pytest.raises(RuntimeError):
            async with store._tx("failing on purpose"):
                assert threads_busy()
                raise RuntimeError("boom")
        assert not threads_busy()  # an operation that fails is not in flight any more
    finally:
        await store.close()


async def test_declined_big_feeds_go_to_a_worker_process_and_small_ones_to_a_thread() -> None:
    parsers = FeedParsers(threshold_bytes=50_000)
    try:
        big = _declined(make_podcast_feed(30, start=START))
        assert len(big) > 50_000
        feed = await parsers.parse(big)
        assert len(feed.items) == 30 and feed.items[0].chapters
        assert parsers._pool is not None  # it went to the worker
        small = _declined(make_podcast_feed(2, start=START))
        assert len((await parsers.parse(small)).items) == 2
        with pytest.raises(FeedParseError, match="not a feed"):
            await parsers.parse(b"<html>" + b" " * 60_000 + b"</html>")  # errors cross the process boundary
    finally:
        parsers.close()


async def test_an_idle_worker_exits_and_a_new_one_starts_when_needed() -> None:
    parsers = FeedParsers(threshold_bytes=10, idle_exit_s=0)
    body = _declined(make_podcast_feed(2, start=START))
    try:
        assert len((await parsers.parse(body)).items) == 2
        pool = parsers._pool
        assert pool is not None
        workers = list(pool._processes.values())
        await asyncio.wait_for(parsers._worker_stopped.wait(), timeout=30)
        assert parsers._pool is None
        # The executor's own thread reaps the process; its sentinel is ready
        # once it has exited, whoever reaps it (a second join() can race).
        exited = await asyncio.to_thread(_exited, [w.sentinel for w in workers])
        assert exited == len(workers)  # its memory is back with the system
        assert len((await parsers.parse(body)).items) == 2  # spawned again on demand
    finally:
        parsers.close()


async def test_a_crashed_worker_is_a_feed_error_and_the_next_parse_works(monkeypatch: pytest.MonkeyPatch) -> None:
    parsers = FeedParsers(threshold_bytes=10)
    body = _declined(make_podcast_feed(2, start=START))
    try:
        monkeypatch.setattr(parsing, "parse_feed", _die)  # pickled by reference: the worker imports it
        with pytest.raises(FeedParseError, match="crashed"):
            await parsers.parse(body)
        monkeypatch.undo()
        assert len((await parsers.parse(body)).items) == 2
    finally:
        parsers.close()
