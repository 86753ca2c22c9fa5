"""Spine benchmarks: unchanged polls vs a full parse, ingest vs stock feedparser,
and the longest event-loop stall while ingesting.

    .venv/bin/python -m bench.bench_poll [--rounds N]

Everything runs in one process, one run, against a feed served on 127.0.0.1;
medians and ratios are what to quote (these machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Awaitable, Callable

import feedparser

from bot.app import settle_heap
from bot.clock import FrozenClock
from bot.models import ContentKind, SourceSpec
from bot.poller import Poller
from bot.sources.feeds import parse_feed
from bot.sources.http import HttpFetcher
from bot.sources.parsing import FeedParsers
from bot.sources.rss import RssSource
from bot.storage import SqliteStorage
from tests.feedgen import make_podcast_feed
from tests.feedserver import FeedServer

START = datetime(2016, 1, 4, tzinfo=timezone.utc)
N_ITEMS = 540


def median_s(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def amedian_s(fn: Callable[[], Awaitable[object]], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class StallMeter:
    """Largest gap between 1 ms ticks: how long the loop was blocked; also
    counts full (generation 2) garbage collections, the usual suspect."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self.full_collections = 0
        self._task: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            self.full_collections += 1

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.worst_s = max(self.worst_s, now - last - 0.001)
            last = now

    def __enter__(self) -> "StallMeter":
        self._task = asyncio.get_running_loop().create_task(self._tick())
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        gc.callbacks.remove(self._on_gc)


async def main(rounds: int) -> None:
    body = make_podcast_feed(N_ITEMS, start=START)
    now = START + timedelta(days=7 * N_ITEMS)
    server = FeedServer()
    await server.start()
    server.add_feed("/etag.xml", body, etag='"v1"')
    server.add_feed("/plain.xml", body)
    tmp = Path(tempfile.mkdtemp(prefix="showbot-bench-"))
    fetcher = HttpFetcher(allow_private_addresses=True, max_body_bytes=16 * 1024 * 1024)
    try:
        stock = median_s(lambda: feedparser.parse(io.BytesIO(body)), rounds)
        ours_parse = median_s(lambda: parse_feed(body), rounds)

        stall = StallMeter()

        async def ingest_once(i: int) -> float:
            store = await SqliteStorage.open(tmp / f"ingest-{i}.db")
            try:
                poller = Poller(store, {"rss": RssSource(fetcher, parse=parsers.parse)}, clock=FrozenClock(now))
                await store.add_source(SourceSpec("podcast", "rss", server.url("/plain.xml"),
                                                  ContentKind.EPISODE), now)
                with stall:  # only the poll itself: opening a fresh store is not ingest
                    t0 = time.perf_counter()
                    report = await poller.poll("podcast", force=True)
                    elapsed = time.perf_counter() - t0
                assert report.ok and len(report.new) == N_ITEMS, report.error
                return elapsed
            finally:
                await store.close()

        parsers = FeedParsers()  # as the app runs it: big feeds in a worker process
        await parsers.parse(body)  # warm the worker up (spawn + imports) outside the timing
        settle_heap()  # what App.run does once started
        ingest = statistics.median([await ingest_once(i) for i in range(rounds)])

        store = await SqliteStorage.open(tmp / "steady.db")
        try:
            poller = Poller(store, {"rss": RssSource(fetcher)}, clock=FrozenClock(now))
            for name, path in (("etag", "/etag.xml"), ("plain", "/plain.xml")):
                await store.add_source(SourceSpec(name, "rss", server.url(path), ContentKind.EPISODE), now)
                assert (await poller.poll(name, force=True)).ok
            unchanged_304 = await amedian_s(lambda: poller.poll("etag", force=True), rounds * 5)
            unchanged_200 = await amedian_s(lambda: poller.poll("plain", force=True), rounds * 5)
        finally:
            await store.close()
            parsers.close()
    finally:
        await fetcher.close()
        await server.close()

    print(f"feed: {N_ITEMS} items, {len(body) / 1e6:.2f} MB; medians of {rounds} rounds (unchanged: {rounds * 5})")
    rows = [
        ("stock feedparser.parse", stock, ""),
        ("our parse_feed (sanitize/resolve off, HTML stripped)", ours_parse, f"{ours_parse / stock:.2f}x stock"),
        ("full poll into an empty store (fetch+parse+detect+write)", ingest, f"{ingest / stock:.2f}x stock (target <= 0.5x)"),
        ("unchanged poll, 304", unchanged_304, f"1/{ingest / unchanged_304:.0f} of a full poll (target <= 1/300)"),
        ("unchanged poll, 200 same body", unchanged_200, f"1/{ingest / unchanged_200:.0f} of a full poll (target <= 1/300)"),
    ]
    for label, seconds, note in rows:
        print(f"  {label:<58} {seconds * 1000:9.2f} ms  {note}")
    print(f"  {'longest event-loop stall during ingest':<58} {stall.worst_s * 1000:9.2f} ms  "
          f"(target <= 15 ms; {stall.full_collections} full GC during ingest)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
