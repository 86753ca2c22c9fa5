"""What merging costs a poll: the read and the decision, merge off vs on.

    .venv/bin/python -m bench.bench_merge [--rounds N] [--announced M]

A real SQLite store holding M announcements made within the window (each
to 3 channels, a third of them edited once), then a poll of a 20-item
YouTube feed whose items match none of them (the common case: every item
compared with every announcement):
- ``load_poll_state`` without and with ``edit_window_s`` (the announcements,
  their rows and their newest edits are read);
- ``plan_poll`` without and with ``merge`` (titles normalised, links
  compared, the window checked).
Medians of ``--rounds`` (5). Not a test: no timed asserts anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.detect import decide
from bot.edits import CHANGE_TITLE, edit_payload, next_edit
from bot.intents import PlannedDelivery, PlannedEvent, PollIntent, SourceProgress
from bot import merge as merge_module
from bot.merge import MergeRules
from bot.models import ContentKind, Destination, DestinationKind, EventKind, Item, Platform, SourceSpec
from bot.plan import plan_poll
from bot.storage import SqliteStorage
from bot.storage.records import QueuedDelivery, QueuedEvent
from tests.test_storage_contract import new_item

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=timezone.utc)
WINDOW_S = 48 * 3600
CHANNELS = [Destination(Platform.DISCORD, DestinationKind.CHANNEL, f"{100 + i}") for i in range(3)]


async def seeded(path: Path, announced: int) -> SqliteStorage:
    store = await SqliteStorage.open(path)
    for d in CHANNELS:
        await store.upsert_route(d.platform, d.id, frozenset({EventKind.EPISODE, EventKind.VIDEO}), None, NOW)
    pod = await store.add_source(SourceSpec(name="podcast", kind="rss", url="https://p.example/rss",
                                            content=ContentKind.EPISODE), NOW)
    items = [Item(title=f"Episode {n}: topic number {n} explained", guid=f"g{n}", link=f"https://p.example/e/{n}",
                  summary=f"Notes for {n}, see https://p.example/notes/{n}",
                  published_at=NOW - timedelta(seconds=WINDOW_S * n / (announced + 1))) for n in range(announced)]
    events = tuple(PlannedEvent(EventKind.EPISODE, it.title, it.link, item=i,
                                deliveries=tuple(PlannedDelivery(d) for d in CHANNELS)) for i, it in enumerate(items))
    written = await store.write_poll(pod, PollIntent(new_items=tuple(new_item(i) for i in items), events=events),
                                     SourceProgress(polled_at=NOW - timedelta(hours=1), next_poll_at=NOW))
    edits = [QueuedEvent(EventKind.EDIT, "t", None, e.item_id, pod.id, tuple(QueuedDelivery(d) for d in CHANNELS),
                         payload=edit_payload(next_edit(None, e.id, CHANGE_TITLE, title=f"{e.title} (fixed)")))
             for e in written.events[::3]]
    await store.queue_events(edits, NOW - timedelta(minutes=30))
    return store


def videos(n: int) -> list[Item]:
    return [Item(title=f"Unrelated video {k} about something else", guid=f"yt{k}",
                 link=f"https://www.youtube.com/watch?v=v{k:010d}", video_id=f"v{k:010d}",
                 published_at=NOW - timedelta(minutes=k)) for k in range(n)]


def clear_caches() -> None:
    for cached in (merge_module._normalize, merge_module._item_keys, merge_module.mentioned_keys,
                   merge_module._anchor_keys):
        cached.cache_clear()


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def main(rounds: int, announced: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await seeded(Path(tmp) / "bench.db", announced)
        try:
            await store.add_source(SourceSpec(name="youtube", kind="rss", url="https://y.example/feed",
                                              content=ContentKind.VIDEO), NOW)
            source = await store.get_source("youtube")
            loads: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(rounds):
                for label, window in (("off", 0.0), ("on", float(WINDOW_S))):
                    t = time.perf_counter()
                    state = await store.load_poll_state(source, NOW, book_window_s=0, edit_window_s=window)
                    loads[label].append(time.perf_counter() - t)
            assert len(state.announced) == announced
            spec = source.spec
            decision = decide(spec=spec, synced=True, known=[], fetched=videos(20), now=NOW)
            plans: dict[str, list[float]] = {"off": [], "on": []}
            rules = MergeRules(WINDOW_S, ("The Backend Engineering Show",))
            for _ in range(rounds):
                for label, merge in (("off", None), ("on", rules)):
                    clear_caches()  # cold: as for a poll whose items and announcements are all new
                    t = time.perf_counter()
                    intent = plan_poll(decision, state, source="youtube", now=NOW, merge=merge)
                    plans[label].append(time.perf_counter() - t)
            assert all(e.kind is EventKind.VIDEO for e in intent.events)  # nothing merged: all compared
        finally:
            await store.close()
    print(f"{announced} announcements in the window, a poll of 20 new videos, medians of {rounds}:")
    print(f"  load_poll_state   merge off {median_ms(loads['off']):7.2f} ms   on {median_ms(loads['on']):7.2f} ms")
    print(f"  plan_poll         merge off {median_ms(plans['off']):7.2f} ms   on {median_ms(plans['on']):7.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--announced", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.announced))
