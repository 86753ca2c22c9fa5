"""Several instances on PostgreSQL, and PostgreSQL beside SQLite.

    .venv/bin/python -m bench.bench_instances --database-url postgresql://postgres@127.0.0.1:5432/test

1. **500 sources, 1, 2 and 3 instances.** 500 small feeds (10 items each) on
   a local HTTP server; N real processes (``--worker``), each a Poller on
   its own connection pool to a fresh database, each going through every
   source. They share the work by the poll claims: time until every source
   had its first poll, and how many fetches that took (500 means no source
   was fetched twice).
2. **A 540-item first ingest** through the real Poller into a fresh store,
   SQLite and PostgreSQL in the same run (medians). Search on PostgreSQL
   beside SQLite is ``bench_search --database-url``.

The URL names a server where databases may be created (trust auth here);
each figure gets its own database, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.clock import FrozenClock, utc_now  # noqa: E402
from bot.models import ContentKind, SourceSpec  # noqa: E402
from bot.outbox import new_owner  # noqa: E402
from bot.poller import Poller  # noqa: E402
from bot.sources.http import HttpFetcher  # noqa: E402
from bot.sources.rss import RssSource  # noqa: E402
from bot.storage import SqliteStorage, Storage  # noqa: E402
from bot.storage.postgres import PostgresStorage  # noqa: E402
from tests.feedgen import make_podcast_feed  # noqa: E402
from tests.feedserver import FeedServer  # noqa: E402

SOURCES = 500
ITEMS_PER_SMALL_FEED = 10
BIG_FEED = 540
START = datetime(2016, 1, 4, tzinfo=timezone.utc)


def database(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def create_database(server_url: str) -> str:
    import asyncpg

    name = f"showbot_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database(server_url, name)


async def drop_database(server_url: str, url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')
    finally:
        await conn.close()


# -- the worker process -------------------------------------------------------------

async def worker(url: str) -> None:
    """One instance: poll every source not polled yet, in its own order."""
    store = await PostgresStorage.open(url, max_size=4)
    fetcher = HttpFetcher(allow_private_addresses=True)
    poller = Poller(store, {"rss": RssSource(fetcher)}, clock=utc_now, owner=new_owner(), lease_s=60)
    try:
        names = [s.name for s in await store.list_sources()]
        random.shuffle(names)
        for name in names:
            await poller.poll(name)  # a source another instance polled (or is polling) is skipped
        for name in names:  # one that was claimed elsewhere when we came by: its poll is done now
            if not (await store.get_source(name)).synced:
                await poller.poll(name)
    finally:
        await fetcher.close()
        await store.close()


# -- the figures ----------------------------------------------------------------------

async def fan_in(server_url: str, feeds: FeedServer, paths: list[str], instances: int) -> dict[str, float]:
    url = await create_database(server_url)
    try:
        store = await PostgresStorage.open(url)
        try:
            for k, path in enumerate(paths):
                await store.add_source(SourceSpec(f"feed-{k:03d}", "rss", feeds.url(path), ContentKind.ARTICLE), utc_now())
        finally:
            await store.close()
        hits_before = sum(feeds.hits[p] for p in paths)
        t0 = time.perf_counter()
        procs = [await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.bench_instances", "--worker", url,
                                                      cwd=ROOT) for _ in range(instances)]
        codes = [await p.wait() for p in procs]
        elapsed = time.perf_counter() - t0
        assert codes == [0] * instances, codes
        store = await PostgresStorage.open(url)
        try:
            synced = sum(1 for s in await store.list_sources() if s.synced)
        finally:
            await store.close()
        assert synced == SOURCES, synced
        return {"instances": instances, "seconds": elapsed,
                "fetches": sum(feeds.hits[p] for p in paths) - hits_before}
    finally:
        await drop_database(server_url, url)


async def first_ingest(store: Storage, feeds: FeedServer) -> float:
    now = START + timedelta(days=7 * BIG_FEED)
    fetcher = HttpFetcher(allow_private_addresses=True, max_body_bytes=16 * 1024 * 1024)
    try:
        poller = Poller(store, {"rss": RssSource(fetcher)}, clock=FrozenClock(now))
        await store.add_source(SourceSpec("podcast", "rss", feeds.url("/big.xml"), ContentKind.EPISODE), now)
        t0 = time.perf_counter()
        report = await poller.poll("podcast", force=True)
        elapsed = time.perf_counter() - t0
        assert report.ok and len(report.new) == BIG_FEED, report.error
        return elapsed
    finally:
        await fetcher.close()


async def ingests(server_url: str, feeds: FeedServer, rounds: int) -> dict[str, float]:
    sqlite, postgres = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            async with await SqliteStorage.open(Path(tmp) / "s.db") as store:
                sqlite.append(await first_ingest(store, feeds))
        url = await create_database(server_url)
        try:
            store = await PostgresStorage.open(url)
            try:
                postgres.append(await first_ingest(store, feeds))
            finally:
                await store.close()
        finally:
            await drop_database(server_url, url)
    return {"ingest_sqlite_ms": statistics.median(sqlite) * 1000,
            "ingest_postgresql_ms": statistics.median(postgres) * 1000}


async def main(server_url: str, rounds: int, as_json: bool) -> None:
    feeds = FeedServer()
    await feeds.start()
    try:
        paths = []
        for k in range(SOURCES):
            path = f"/feed-{k:03d}.xml"
            feeds.add_feed(path, make_podcast_feed(ITEMS_PER_SMALL_FEED, start=START, guid_prefix=f"f{k}-"))
            paths.append(path)
        feeds.add_feed("/big.xml", make_podcast_feed(BIG_FEED, start=START))
        fan = [await fan_in(server_url, feeds, paths, n) for n in (1, 2, 3)]
        ingest = await ingests(server_url, feeds, rounds)
    finally:
        await feeds.close()
    if as_json:
        for f in fan:
            print(json.dumps({"figure": f"first_polls_{SOURCES}_sources_{f['instances']}_instances", **f}))
        for key, value in ingest.items():
            print(json.dumps({"figure": key, "value": value}))
        return
    print(f"first polls of {SOURCES} sources ({ITEMS_PER_SMALL_FEED} items each), on PostgreSQL:")
    for f in fan:
        print(f"  {f['instances']} instance(s): {f['seconds']:.2f} s, {f['fetches']:.0f} fetches "
              f"({f['seconds'] / fan[0]['seconds']:.2f}x the time of one)")
    print(f"{BIG_FEED}-item first ingest (median of {rounds}): SQLite {ingest['ingest_sqlite_ms']:.0f} ms, "
          f"PostgreSQL {ingest['ingest_postgresql_ms']:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a server where databases may be created")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker))
    else:
        asyncio.run(main(args.database_url, args.rounds, args.json))
