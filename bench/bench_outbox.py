"""Outbox delivery cost per row, with and without metrics.

    .venv/bin/python -m bench.bench_outbox [--rows N] [--rounds R]

Queues N announcements over 20 channels in a real SQLite file and times
``Outbox.dispatch_once`` delivering them all to an adapter that answers at
once: claim, load, deliver, record -- everything but the network. Reports
the median per row over R rounds, without metrics (the HTTP server off: the
no-op) and with a live prometheus registry. Runs against older checkouts
too (no ``metrics`` argument there: only the first line is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.clock import FrozenClock
from bot.detect import decide
from bot.intents import SourceProgress
from bot.models import Announcement, ContentKind, Delivered, EventKind, Item, Platform, SourceSpec
from bot.outbox import DeliveryPolicy, Outbox
from bot.plan import plan_poll
from bot.storage import SqliteStorage

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
CHANNELS = 20


class InstantAdapter:
    platform = Platform.DISCORD
    healthy = True

    def __init__(self) -> None:
        self.sent = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def deliver(self, announcement: Announcement) -> Delivered:
        self.sent += 1
        return Delivered(message_id=str(self.sent))

    async def edit(self, announcement: Announcement) -> Delivered:
        return Delivered(message_id=announcement.edit_of)

    async def find_delivered(self, announcement: Announcement) -> Delivered | None:
        return None


async def queued_store(path: Path, rows: int) -> SqliteStorage:
    store = await SqliteStorage.open(path)
    for c in range(CHANNELS):
        await store.upsert_route(Platform.DISCORD, str(1000 + c), frozenset({EventKind.EPISODE}), None, NOW)
    source = await store.add_source(SourceSpec(name="s", kind="rss", url="https://e.x/rss",
                                               content=ContentKind.EPISODE), NOW)
    progress = SourceProgress(polled_at=NOW, next_poll_at=NOW)
    await store.write_poll(source, plan_poll(decide(spec=source.spec, synced=False, known=[], fetched=[], now=NOW),
                                             await store.load_poll_state(source, NOW, book_window_s=1)), progress)
    source = await store.get_source("s")
    per_channel = rows // CHANNELS
    fetched = [Item(title=f"Episode {i}", guid=f"g{i}", published_at=NOW - timedelta(minutes=i))
               for i in range(per_channel)]
    state = await store.load_poll_state(source, NOW, book_window_s=1)
    decision = decide(spec=source.spec, synced=True, known=[], fetched=fetched, now=NOW)
    await store.write_poll(source, plan_poll(decision, state), progress)
    return store


async def one_round(rows: int, metrics: Any) -> float:
    # On tmpfs where there is one: the claim's fsync on a shared disk varies
    # by more than what is measured here.
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        store = await queued_store(Path(tmp) / "b.db", rows)
        try:
            adapter = InstantAdapter()
            kwargs = {"metrics": metrics} if metrics is not None else {}
            box = Outbox(store, {Platform.DISCORD: adapter}, clock=FrozenClock(NOW),
                         policy=DeliveryPolicy(concurrency=CHANNELS, per_destination=50), **kwargs)
            t0 = time.perf_counter()
            report = await box.dispatch_once()
            elapsed = time.perf_counter() - t0
            assert report.sent == adapter.sent and adapter.sent >= rows - CHANNELS, report
            return elapsed / adapter.sent
        finally:
            await store.close()


async def main(rows: int, rounds: int) -> None:
    has_metrics = "metrics" in inspect.signature(Outbox.__init__).parameters
    variants: list[tuple[str, Any]] = [("metrics off" if has_metrics else "before metrics", None)]
    if has_metrics:
        from bot.metrics import Metrics, PrometheusMetrics

        variants = [("metrics off", Metrics()), ("metrics on", PrometheusMetrics())]
    results: dict[str, list[float]] = {name: [] for name, _ in variants}
    for i in range(rounds):  # interleaved, order alternating, so drift on a noisy machine hits both alike
        for name, metrics in (variants if i % 2 == 0 else variants[::-1]):
            results[name].append(await one_round(rows, metrics))
    for name, times in results.items():
        print(f"{name:>15}: {statistics.median(times) * 1e6:7.1f} us/row median, {min(times) * 1e6:7.1f} min "
              f"({rounds} rounds of {rows} rows)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.rounds))
