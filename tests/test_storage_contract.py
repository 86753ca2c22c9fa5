"""The ``Storage`` protocol's written contract (bot/storage/port.py), method
by method, on both backends: every case runs on SQLite and on PostgreSQL
(tests/backends.py; PostgreSQL skips without SHOWBOT_TEST_DATABASE_URL).
The last part runs only on PostgreSQL: several pools on one database at once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.detect import NewItem, content_hash, item_identity, normalize_link, title_key
from bot.errors import AlreadyExists, ClaimLost, NotFound, StorageError, UserError
from bot.intents import (
    AnchorLinks,
    FilterRule,
    PlannedDelivery,
    PlannedEvent,
    PollIntent,
    SnapshotRow,
    SourceProgress,
    Subscription,
)
from bot.models import (
    Chapter, ContentKind, Destination, DestinationKind, DigestPeriod, EventKind, EventPurpose, Item, Platform, Source,
)
from bot.search import parse_query
from bot.storage import DeliveryOutcome, DeliveryResult, OutboxStatus, RouteSeed, Storage
from bot.storage.records import QueuedDelivery, QueuedEvent
from bot.storage.postgres.schema import SCHEMA_VERSION as PG_SCHEMA_VERSION
from tests.backends import PgRun, Target, open_target, run_of
from tests.spine import ALL_KINDS, NOW, spec

D1 = Destination(Platform.DISCORD, DestinationKind.CHANNEL, "chan-1")
D2 = Destination(Platform.DISCORD, DestinationKind.CHANNEL, "chan-2")
S1 = Destination(Platform.SLACK, DestinationKind.CHANNEL, "C1")
LEASE = NOW + timedelta(seconds=60)
BUDGETS = {Platform.DISCORD: 100, Platform.SLACK: 100}


def new_item(item: Item) -> NewItem:
    return NewItem(item_identity(item), item, normalize_link(item.link), title_key(item), content_hash(item))


def item(n: int, **kw: object) -> Item:
    fields: dict[str, object] = dict(title=f"Episode {n}", guid=f"g{n}", link=f"https://example.com/e/{n}",
                                     published_at=NOW - timedelta(days=n))
    fields.update(kw)
    return Item(**fields)  # type: ignore[arg-type]


def progress(now: datetime = NOW, **kw: object) -> SourceProgress:
    return SourceProgress(polled_at=now, next_poll_at=now + timedelta(seconds=900), **kw)  # type: ignore[arg-type]


async def write(store: Storage, source: Source, items: list[Item] = (), events: list[PlannedEvent] = (),  # type: ignore[assignment]
                **kw: object) -> object:
    intent = PollIntent(new_items=tuple(new_item(i) for i in items), events=tuple(events), **kw)  # type: ignore[arg-type]
    return await store.write_poll(source, intent, progress())


def announce(title: str, *destinations: Destination, kind: EventKind = EventKind.EPISODE,
             item: int | None = None, **kw: object) -> PlannedEvent:
    return PlannedEvent(kind, title, None, item=item,
                        deliveries=tuple(PlannedDelivery(d) for d in destinations), **kw)  # type: ignore[arg-type]


async def queued(store: Storage, n: int, *destinations: Destination) -> Source:
    """A source and ``n`` events, each queued to every destination, in order."""
    source = await store.add_source(spec(), NOW)
    await write(store, source, events=[announce(f"Event {k}", *destinations) for k in range(n)])
    return source


def claim(store: Storage, owner: str, now: datetime = NOW, *, per_destination: int = 10,
          budgets: dict[Platform, int] = BUDGETS, lease_s: float = 60):  # type: ignore[no-untyped-def]
    return store.claim_outbox(owner, now, now + timedelta(seconds=lease_s), budgets=budgets,
                              per_destination=per_destination)


def sent(row_id: int, *, at: datetime = NOW, **kw: object) -> DeliveryResult:
    return DeliveryResult(row_id, DeliveryOutcome.SENT, at, message_id=f"m{row_id}", **kw)  # type: ignore[arg-type]


# -- lifecycle and settings --------------------------------------------------------


async def test_close_is_idempotent_and_schema_is_current(db: Target) -> None:
    store = await open_target(db)
    at, writes = await store.schema_version()
    assert at == writes and at >= 1
    await store.check_writable(NOW)
    await store.close()
    await store.close()
    reopened = await open_target(db)  # migrations are idempotent
    assert await reopened.schema_version() == (at, writes)
    await reopened.close()


async def test_settings_insert_or_replace(storage: Storage) -> None:
    assert await storage.find_setting("k") is None
    await storage.set_setting("k", "one")
    await storage.set_setting("k", "two")
    assert await storage.find_setting("k") == "two"


# -- sources -----------------------------------------------------------------------------


async def test_sources_add_find_list_pause_remove(storage: Storage) -> None:
    added = await storage.add_source(spec("zeta"), NOW)
    assert added.next_poll_at == NOW and not added.synced and not added.paused
    await storage.add_source(spec("Alpha"), NOW)
    await storage.add_source(spec("beta"), NOW)
    with pytest.raises(AlreadyExists, match="zeta"):
        await storage.add_source(spec("zeta"), NOW)
    assert [s.name for s in await storage.list_sources()] == ["Alpha", "beta", "zeta"]  # byte order, as SQLite
    assert (await storage.get_source("zeta")) == added
    assert await storage.find_source("nope") is None
    with pytest.raises(NotFound):
        await storage.get_source("nope")
    await storage.set_paused("zeta", True)
    assert (await storage.get_source("zeta")).paused
    with pytest.raises(NotFound):
        await storage.set_paused("nope", True)
    await storage.remove_source("zeta")
    with pytest.raises(NotFound):
        await storage.remove_source("zeta")


async def test_update_source_replaces_the_spec_and_keeps_its_state_items_and_filters(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    await write(storage, source, [item(1)])
    await storage.add_filter(source.id, FilterRule("exclude", "trailer"), NOW)
    await storage.record_failure(source.id, "boom", now=NOW, next_poll_at=NOW + timedelta(hours=1))
    changed = replace(spec(), url="https://example.com/new.xml", every_s=3600, announce_on_first_poll=2,
                      max_age_s=86400, content=ContentKind.VIDEO)
    updated = await storage.update_source(changed)
    assert updated.spec == changed and updated == await storage.get_source("podcast")
    assert (updated.id, updated.synced, updated.last_error, updated.next_poll_at) == (
        source.id, True, "boom", NOW + timedelta(hours=1))
    assert await storage.count_items(source_id=source.id) == 1
    assert await storage.load_filters(source.id) == [FilterRule("exclude", "trailer")]
    with pytest.raises(NotFound, match="nope"):
        await storage.update_source(spec("nope"))


async def test_remove_source_takes_its_items_filters_snapshots_and_keeps_itemless_events(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    snap = SnapshotRow(NOW, 10, 1, 2, "bio", None, None, None, "{}")
    await write(storage, source, [item(1, chapters=(Chapter(0, "Intro"),))],
                [announce("Book news", D1, kind=EventKind.BOOK), announce("Episode 1", D1, item=0)],
                snapshot=snap)
    await storage.add_filter(source.id, FilterRule("include", "x"), NOW)
    await storage.remove_source("podcast")
    assert await storage.count_items() == 0 and await storage.latest_snapshot_json(source.id) is None
    assert await storage.load_filters(source.id) == []
    assert await storage.search(parse_query("episode")) == []
    (news,) = await storage.book_news()
    assert news.title == "Book news" and news.source == ""  # events keep no source
    assert [r.status for r in await storage.outbox_rows()] == ["pending"]  # the item's event went with it


async def test_seed_copies_each_entry_once_ever(storage: Storage) -> None:
    route = RouteSeed(Platform.CONSOLE, "terminal", frozenset({EventKind.EPISODE}))
    await storage.seed([spec()], [route], NOW)
    await storage.remove_source("podcast")  # a moderator removes it
    await storage.upsert_route(Platform.CONSOLE, "terminal", ALL_KINDS, None, NOW)
    await storage.seed([spec(), spec("blog")], [route], NOW)
    assert [s.name for s in await storage.list_sources()] == ["blog"]
    (r,) = await storage.list_routes()
    assert r.kinds == ALL_KINDS


async def test_seed_keeps_a_source_added_before_under_the_same_name(storage: Storage) -> None:
    await storage.add_source(spec(url="https://example.com/mine"), NOW)
    await storage.seed([spec()], [], NOW)
    (only,) = await storage.list_sources()
    assert only.spec.url == "https://example.com/mine"


async def test_record_unchanged_resets_failures_and_keeps_validators_not_given(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    await storage.write_poll(source, PollIntent(), progress(etag='"v1"', last_modified="Mon"))
    assert await storage.record_failure(source.id, "boom", now=NOW, next_poll_at=NOW) == 1
    later = NOW + timedelta(hours=1)
    await storage.record_unchanged(source.id, now=later, next_poll_at=later + timedelta(hours=1),
                                   etag=None, last_modified="Tue")
    after = await storage.get_source("podcast")
    assert (after.etag, after.last_modified) == ('"v1"', "Tue")
    assert after.consecutive_failures == 0 and after.last_error is None
    assert after.last_success_at == later and after.next_poll_at == later + timedelta(hours=1)


async def test_record_failure_counts_atomically(db: Target) -> None:
    first = await open_target(db)
    second = await open_target(db)
    try:
        source = await first.add_source(spec(), NOW)
        counts = await asyncio.gather(*(
            s.record_failure(source.id, f"e{n}", now=NOW, next_poll_at=NOW + timedelta(minutes=n))
            for n in range(10) for s in (first, second)))
        assert sorted(counts) == list(range(1, 21))  # none lost, none counted twice
        failed = await first.get_source("podcast")
        assert failed.consecutive_failures == 20 and failed.last_error_at == NOW
    finally:
        await first.close()
        await second.close()


async def test_claim_poll_lease_renewal_takeover_and_release(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    assert await storage.claim_poll(source.id, "a", NOW, NOW + timedelta(seconds=30))
    assert await storage.claim_poll(source.id, "a", NOW, NOW + timedelta(seconds=60))  # renewed
    assert not await storage.claim_poll(source.id, "b", NOW + timedelta(seconds=59), NOW + timedelta(seconds=90))
    await storage.release_poll(source.id, "b")  # not b's: a no-op
    assert not await storage.claim_poll(source.id, "b", NOW + timedelta(seconds=59), NOW + timedelta(seconds=90))
    assert await storage.claim_poll(source.id, "b", NOW + timedelta(seconds=61), NOW + timedelta(seconds=90))
    assert not await storage.claim_poll(source.id, "a", NOW + timedelta(seconds=62), NOW + timedelta(seconds=120))
    await storage.release_poll(source.id, "b")
    assert await storage.claim_poll(source.id, "c", NOW, NOW + timedelta(seconds=1))


async def test_named_leases_renewal_takeover_release_and_expiry(storage: Storage) -> None:
    assert await storage.claim_lease("discord.shard.0", "a", NOW, NOW + timedelta(seconds=30))
    assert await storage.claim_lease("discord.shard.0", "a", NOW, NOW + timedelta(seconds=60))  # renewed
    assert await storage.claim_lease("discord.shard.1", "b", NOW, NOW + timedelta(seconds=60))  # another name
    assert not await storage.claim_lease("discord.shard.0", "b", NOW + timedelta(seconds=59),
                                         NOW + timedelta(seconds=90))
    await storage.release_lease("discord.shard.0", "b")  # not b's: a no-op
    assert await storage.claim_lease("discord.shard.0", "b", NOW + timedelta(seconds=61), NOW + timedelta(seconds=90))
    assert await storage.expire_leases() == 2
    assert await storage.claim_lease("discord.shard.1", "c", NOW, NOW + timedelta(seconds=1))
    await storage.release_lease("discord.shard.1", "c")
    assert await storage.claim_lease("discord.shard.1", "d", NOW, NOW + timedelta(seconds=1))


# -- polls: decide, then write ----------------------------------------------------------


async def test_write_poll_writes_items_events_outbox_and_progress(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    chapters = (Chapter(0, "Intro"), Chapter(90, "Kafka partitions"))
    written = await storage.write_poll(source, PollIntent(
        new_items=(new_item(item(1, chapters=chapters)), new_item(item(2))),
        events=(announce("Episode 1", D1, S1, item=0), announce("Episode 2", D1, item=1)),
    ), progress(etag='"e"', last_modified="lm", body_hash="h", cursor="c1"))
    assert [s.item.title for s in written.new_items] == ["Episode 1", "Episode 2"]
    assert [e.title for e in written.events] == ["Episode 1", "Episode 2"] and written.outbox_rows == 3
    assert written.events[0].id < written.events[1].id
    rows = await storage.outbox_rows()
    assert [(r.event_id, r.destination) for r in rows] == [
        (written.events[0].id, D1), (written.events[0].id, S1), (written.events[1].id, D1)]
    assert len({r.idempotency_key for r in rows}) == 3 and all(r.status is OutboxStatus.PENDING for r in rows)
    stored = await storage.find_item(written.new_items[0].id)
    assert stored is not None and stored.item.chapters == chapters and stored.first_seen_at == NOW
    after = await storage.get_source("podcast")
    assert after.synced and (after.etag, after.last_modified, after.body_hash, after.cursor) == ('"e"', "lm", "h", "c1")
    await storage.write_poll(after, PollIntent(), progress())  # cursor None: kept
    assert (await storage.get_source("podcast")).cursor == "c1"
    known = (await storage.load_poll_state(after, NOW, book_window_s=0)).known
    assert sorted(k.identity for k in known) == ["guid:g1", "guid:g2"]


async def test_write_poll_updates_items_and_their_chapters_and_search(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    original = item(1, title="Postgres locks", chapters=(Chapter(0, "Intro"), Chapter(90, "MVCC")))
    (stored,) = (await write(storage, source, [original])).new_items  # type: ignore[attr-defined]
    from bot.detect import ItemUpdate

    edited = replace(original, title="Postgres row locks", chapters=(Chapter(0, "Intro"),))
    await storage.write_poll(source, PollIntent(updates=(ItemUpdate(stored.id, edited, content_hash(edited),
                                                                    item_identity(edited)),)), progress())
    again = await storage.find_item(stored.id)
    assert again is not None and again.item.title == "Postgres row locks" and again.item.chapters == (Chapter(0, "Intro"),)
    assert [h.item_id for h in await storage.search(parse_query("row"))] == [stored.id]
    assert await storage.search(parse_query("mvcc")) == []


async def test_a_write_poll_that_fails_midway_leaves_nothing(storage: Storage) -> None:
    route = await storage.upsert_route(Platform.DISCORD, "c", ALL_KINDS, None, NOW)
    source = await storage.add_source(spec(), NOW)
    bad_route = PlannedEvent(EventKind.EPISODE, "x", None, item=0,
                             deliveries=(PlannedDelivery(D1, route_id=route.id + 99),))  # no such route
    with pytest.raises(StorageError):
        await storage.write_poll(source, PollIntent(new_items=(new_item(item(1)),), events=(bad_route,)),
                                 progress(etag='"v2"', body_hash="h2"))
    with pytest.raises(IndexError):  # an event pointing past the new items
        await write(storage, source, [item(1)], [announce("x", D1, item=5)])
    assert await storage.count_items() == 0 and await storage.outbox_rows() == []
    assert await storage.search(parse_query("episode")) == [] and await storage.book_news() == []
    after = await storage.get_source("podcast")
    assert after.etag is None and after.body_hash is None and not after.synced


async def test_write_poll_under_a_lost_claim_is_refused(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    assert await storage.claim_poll(source.id, "mine", NOW, NOW + timedelta(seconds=30))
    await storage.write_poll(source, PollIntent(new_items=(new_item(item(1)),)), progress(), claim="mine")
    assert await storage.claim_poll(source.id, "thief", NOW + timedelta(seconds=31), NOW + timedelta(seconds=60))
    with pytest.raises(ClaimLost):
        await storage.write_poll(source, PollIntent(new_items=(new_item(item(2)),)), progress(), claim="mine")
    assert await storage.count_items() == 1
    with pytest.raises(ClaimLost):  # the same items again: only a racing poll does that
        await storage.write_poll(source, PollIntent(new_items=(new_item(item(1)),)), progress())


async def test_book_anchor_follow_ups_and_links(storage: Storage) -> None:
    route = await storage.upsert_route(Platform.DISCORD, "chan-1", ALL_KINDS, None, NOW)
    source = await storage.add_source(spec(), NOW)
    first = PlannedEvent(EventKind.BOOK, "The book", "https://b/1", payload={"links": ["https://b/1"]},
                         deliveries=(PlannedDelivery(D1, route_id=route.id),))
    same_poll = PlannedEvent(EventKind.BOOK, "Again", "https://b/2", follow_up_of_planned=0)
    written = await write(storage, source, events=[first, same_poll])
    anchor_id, follow_id = (e.id for e in written.events)  # type: ignore[attr-defined]
    assert (await storage.get_event(follow_id)).payload["follow_up_of"] == anchor_id
    state = await storage.load_poll_state(source, NOW + timedelta(days=1), book_window_s=3 * 86400)
    assert state.book_anchor is not None and state.book_anchor.event_id == anchor_id
    assert state.book_anchor.links == ("https://b/1",) and state.book_anchor.route_ids == {route.id}
    assert state.routes == tuple(await storage.list_routes())
    await write(storage, source, anchor_links=AnchorLinks(anchor_id, ("https://b/1", "https://b/3")))
    assert (await storage.get_event(anchor_id)).payload["links"] == ["https://b/1", "https://b/3"]
    outside = await storage.load_poll_state(source, NOW + timedelta(days=4), book_window_s=3 * 86400)
    assert outside.book_anchor is None


async def test_poll_state_of_an_x_source_has_its_snapshot_and_best_followers(storage: Storage) -> None:
    source = await storage.add_source(replace(spec("x"), kind="x", url=None, handle="h"), NOW)
    for n, followers in enumerate([10, 30, 20]):
        snap = SnapshotRow(NOW + timedelta(hours=n), followers, 1, 2, "bio", None, None, None, json.dumps({"n": n}))
        await write(storage, source, snapshot=snap)
    await write(storage, source, snapshot=snap)  # the same snapshot again: idempotent
    state = await storage.load_poll_state(source, NOW, book_window_s=0)
    assert state.previous_snapshot == b'{"n": 2}' and state.best_followers == 30
    assert await storage.latest_snapshot_json(source.id) == b'{"n": 2}'
    assert await storage.max_followers(source.id) == 30
    await storage.add_filter(source.id, FilterRule("exclude", "ads"), NOW)
    await storage.add_subscription(Platform.DISCORD, "u1", "kafka", NOW, 5)
    state = await storage.load_poll_state(source, NOW, book_window_s=0)
    assert state.filters == (FilterRule("exclude", "ads"),)
    assert state.subscriptions == (Subscription(Platform.DISCORD, "u1", "kafka"),)


async def test_queue_alert_goes_to_unbroken_alert_routes_except_the_skipped(storage: Storage) -> None:
    alerts = frozenset({EventKind.ALERT})
    mods = await storage.upsert_route(Platform.SLACK, "mods", alerts, "@here", NOW)
    other = await storage.upsert_route(Platform.DISCORD, "mods", alerts, None, NOW)
    broken = await storage.upsert_route(Platform.DISCORD, "gone", alerts, None, NOW)
    await storage.upsert_route(Platform.DISCORD, "news", frozenset({EventKind.EPISODE}), None, NOW)
    assert await storage.mark_route_broken(broken.id, "deleted")
    assert await storage.queue_alert("Feed down", NOW, skip_route=other.id) == 1
    (row,) = await storage.outbox_rows()
    assert row.route_id == mods.id and row.mention == "@here"
    assert (await storage.get_event(row.event_id)).kind is EventKind.ALERT


# -- items and the catalogue ----------------------------------------------------------------


async def test_catalogue_reads(storage: Storage) -> None:
    pod = await storage.add_source(spec(), NOW)
    blog = await storage.add_source(spec("blog", content=ContentKind.ARTICLE), NOW)
    v0 = await storage.catalogue_version()
    episodes = [item(1, episode_number=7, duration_s=60), item(2, episode_number=9, duration_s=30),
                item(3, published_at=None)]
    written = await write(storage, pod, episodes, [announce("e", D1, item=0)])
    await write(storage, blog, [item(4, guid="b4", episode_number=7)])
    assert await storage.catalogue_version() != v0
    latest = await storage.latest_items(limit=10)
    assert [s.item.title for s in latest] == ["Episode 1", "Episode 2", "Episode 4", "Episode 3"]  # undated last
    assert [s.item.title for s in await storage.latest_items(ContentKind.ARTICLE)] == ["Episode 4"]
    assert [s.item.title for s in await storage.latest_items(limit=2, offset=1)] == ["Episode 2", "Episode 4"]
    assert await storage.count_items() == 4 and await storage.count_items(ContentKind.EPISODE) == 3
    assert await storage.count_items(source_id=blog.id) == 1
    hit = await storage.episode_by_number(7)
    assert hit is not None and hit.item.title == "Episode 1" and hit.source_name == "podcast"  # episodes first
    assert await storage.episode_by_number(8) is None and await storage.episode_by_number(2**63) is None
    assert await storage.episode_number_range() == (7, 9)
    at0 = await storage.item_at(ContentKind.EPISODE, 0)
    assert at0 is not None and at0.item.title == "Episode 3"  # undated first in publication order
    assert await storage.item_at(None, 10) is None
    stats = {k.kind: k for k in await storage.kind_stats()}
    assert stats["episode"].count == 3 and stats["episode"].total_duration_s == 90
    assert stats["episode"].last == NOW - timedelta(days=1)
    assert sorted(await storage.title_words()) == ["Episode 1", "Episode 2", "Episode 3", "Episode 4"]
    ids = [s.id for s in latest]
    assert set(await storage.items_by_id(ids + [999])) == set(ids)
    assert await storage.find_titles(ids + [999]) == {s.id: s.item.title for s in latest}
    assert await storage.find_titles([]) == {}
    assert await storage.find_item(999) is None
    facts = await storage.source_facts()
    assert facts[pod.id].items == 3 and facts[pod.id].last_announced_at == NOW
    assert facts[blog.id].last_announced_at is None
    assert written is not None


# More ids than SQLite binds in one statement chunk (bot/storage/sqlite/base.py IN_LIST_MAX).
MANY = 1_200


async def test_items_chapters_and_vectors_of_more_ids_than_one_statement_binds(storage: Storage) -> None:
    from bot.storage.records import ItemVectors

    source = await storage.add_source(spec(), NOW)
    items = [item(n, chapters=tuple(Chapter(60 * p, f"{n}: part {p}") for p in range(3))) for n in range(1, MANY + 1)]
    written = (await write(storage, source, items)).new_items  # type: ignore[attr-defined]
    ids = [s.id for s in written]
    # newest id first, and an id again past the first chunk: neither changes the answer
    asked = [*reversed(ids), ids[0], 999_999]
    found = await storage.items_by_id(asked)
    assert set(found) == set(ids)
    assert await storage.find_titles(asked) == {s.id: s.item.title for s in written}
    assert all(found[s.id].item.chapters == s.item.chapters for s in written)  # each in chapter order
    await storage.put_vectors([
        ItemVectors.of(s.id, content_hash(s.item), s.id.to_bytes(4, "big"),
                    tuple(bytes([p]) + s.id.to_bytes(3, "big") for p in range(3))) for s in written])
    assert await storage.find_vectors(asked) == {i: i.to_bytes(4, "big") for i in ids}
    assert await storage.chapter_vectors(asked) == {
        i: [bytes([p]) + i.to_bytes(3, "big") for p in range(3)] for i in ids}


async def _catalog(storage: Storage) -> dict[str, int]:
    source = await storage.add_source(spec(), NOW)
    long_text = " ".join(["filler words about many unrelated backend topics"] * 60) + " a needle somewhere."
    items = [
        item(1, title="Kafka in 20 minutes", summary="Kafka basics: topics, partitions."),
        item(2, title="Queues", summary="About queues.", chapters=(Chapter(0, "Intro"), Chapter(60, "Kafka consumer groups"))),
        item(3, title="PostgreSQL MVCC explained", summary="Vacuum and visibility."),
        item(4, title="HTTP/2 multiplexing", summary="Streams over one connection."),
        item(5, title="Memory", summary=long_text),
        item(6, title="Kubernetes networking", summary="Pods and services."),
    ]
    written = await write(storage, source, items)
    return {s.item.title: s.id for s in written.new_items}  # type: ignore[attr-defined]


# -- documents an item links to (bot.documents) --------------------------------------


async def _two_items(storage: Storage) -> tuple[Source, int, int]:
    source = await storage.add_source(spec(), NOW)
    first = item(1, title="Postgres replication slots", summary="slots", chapters=(Chapter(0, "Intro"),))
    second = item(2, title="Kafka lag")
    written = await write(storage, source, [first, second])
    a, b = written.new_items  # type: ignore[attr-defined]
    return source, a.id, b.id


async def test_documents_declared_fetched_failed_and_loaded(storage: Storage) -> None:
    from bot.documents import DocumentState, DocumentWrite
    from bot.models import DocumentKind

    source, a, b = await _two_items(storage)
    assert await storage.load_documents(source.id) == []
    url, url2 = "https://c.example/a.json", "https://c.example/a2.json"
    await storage.write_documents([
        DocumentWrite(a, DocumentKind.CHAPTERS, url, "declared", NOW, media_type="application/json+chapters"),
        DocumentWrite(b, DocumentKind.TRANSCRIPT, "https://t.example/b.srt", "failed", NOW, error="HTTP 404",
                      attempts=1, retry_at=NOW + timedelta(minutes=15)),
    ])
    assert await storage.load_documents(source.id) == [
        DocumentState(a, DocumentKind.CHAPTERS, url, "application/json+chapters"),
        DocumentState(b, DocumentKind.TRANSCRIPT, "https://t.example/b.srt", None, None, 1,
                      NOW + timedelta(minutes=15), "HTTP 404"),
    ]
    json_chapters = (Chapter(0, "Welcome"), Chapter(75, "How replication slots work"))
    await storage.write_documents([DocumentWrite(a, DocumentKind.CHAPTERS, url, "fetched", NOW,
                                                 chapters=json_chapters)])
    (state, _) = await storage.load_documents(source.id)
    assert state.fetched_url == url and state.current and state.chapters == json_chapters
    stored = await storage.find_item(a)
    assert stored is not None and stored.item.chapters == json_chapters  # replaced the description's
    assert stored.item.title == "Postgres replication slots" and stored.item.summary == "slots"
    # their search index follows: the JSON chapter titles are found, the old one is not
    assert [h.item_id for h in await storage.search(parse_query("how replication slots work"))] == [a]
    page = await storage.page_items([a], parse_query("welcome"))
    assert page[0][1] == [Chapter(0, "Welcome")]
    # the item's content hash is still the feed's: a re-poll of the same feed is not an edit
    known = {k.id: k for k in (await storage.load_poll_state(source, NOW, book_window_s=0)).known}
    assert known[a].content_hash == content_hash(item(1, title="Postgres replication slots", summary="slots",
                                                      chapters=(Chapter(0, "Intro"),)))
    # a new URL declared: failures reset, the content and fetched_url are kept until it is fetched
    await storage.write_documents([DocumentWrite(a, DocumentKind.CHAPTERS, url2, "failed", NOW, error="timed out",
                                                 attempts=2, retry_at=NOW)])
    (state, _) = await storage.load_documents(source.id)
    assert (state.url, state.fetched_url, state.attempts, state.chapters) == (url2, url, 2, json_chapters)
    await storage.write_documents([DocumentWrite(a, DocumentKind.CHAPTERS, url2, "declared", NOW)])
    (state, _) = await storage.load_documents(source.id)
    assert (state.url, state.fetched_url, state.attempts, state.last_error) == (url2, url, 0, None)
    # a write for an item that is gone is skipped, the rest is written
    await storage.write_documents([
        DocumentWrite(9999, DocumentKind.CHAPTERS, url, "declared", NOW),
        DocumentWrite(b, DocumentKind.TRANSCRIPT, "https://t.example/b.srt", "declared", NOW),
    ])
    assert [s.attempts for s in await storage.load_documents(source.id)] == [0, 0]


async def test_transcripts_are_searchable_replaced_and_removed_with_their_source(storage: Storage) -> None:
    from bot.documents import DocumentWrite
    from bot.models import DocumentKind, TranscriptSegment

    source, a, b = await _two_items(storage)
    passages = (TranscriptSegment(0, "Welcome to the show, today replication slots.", 29),
                TranscriptSegment(750, "The WAL kept growing because the logical slot held back every segment."),
                TranscriptSegment(1500, "Set max_slot_wal_keep_size and alert on slot lag."))
    await storage.write_documents([
        DocumentWrite(a, DocumentKind.TRANSCRIPT, "https://t.example/a.vtt", "fetched", NOW, segments=passages),
        DocumentWrite(b, DocumentKind.TRANSCRIPT, "https://t.example/b.vtt", "fetched", NOW,
                      segments=(TranscriptSegment(12, "Consumer lag grows when the WAL of a broker fills."),)),
    ])
    (hit,) = await storage.search_transcripts(parse_query("logical slot"))
    assert (hit.item.id, hit.start_s) == (a, 750) and "held back every segment" in hit.text
    assert hit.item.item.title == "Postgres replication slots"
    # one hit per item, best passage first, every term required, prefixes, kind filter, limit
    assert {h.item.id for h in await storage.search_transcripts(parse_query("wal"))} == {a, b}
    assert len(await storage.search_transcripts(parse_query("wal"), limit=1)) == 1
    assert [h.start_s for h in await storage.search_transcripts(parse_query("max_slot_wal_keep"))] == [1500]
    assert await storage.search_transcripts(parse_query("slot kubernetes")) == []
    assert await storage.search_transcripts(parse_query("wal"), ContentKind.ARTICLE) == []
    assert await storage.search_transcripts(parse_query("")) == []
    for hostile in HOSTILE:
        assert isinstance(await storage.search_transcripts(parse_query(hostile)), list)
    # fetched again (a new URL): the old passages are gone from the index
    await storage.write_documents([DocumentWrite(a, DocumentKind.TRANSCRIPT, "https://t.example/a2.vtt", "fetched",
                                                 NOW, segments=(TranscriptSegment(5, "Only pgbouncer now."),))])
    assert [h.item.id for h in await storage.search_transcripts(parse_query("wal"))] == [b]
    assert [h.start_s for h in await storage.search_transcripts(parse_query("pgbouncer"))] == [5]
    # withdrawn: the row and the passages go
    await storage.write_documents([DocumentWrite(b, DocumentKind.TRANSCRIPT, "https://t.example/b.vtt", "withdrawn",
                                                 NOW)])
    assert [h.item.id for h in await storage.search_transcripts(parse_query("wal"))] == []
    assert [s.item_id for s in await storage.load_documents(source.id)] == [a]
    await storage.remove_source(source.name)
    assert await storage.search_transcripts(parse_query("lag")) == []
    assert await storage.load_documents(source.id) == []


async def test_withdrawn_chapters_give_the_item_its_own_back(storage: Storage) -> None:
    from bot.documents import DocumentWrite
    from bot.models import DocumentKind

    source, a, _ = await _two_items(storage)
    url = "https://c.example/a.json"
    await storage.write_documents([DocumentWrite(a, DocumentKind.CHAPTERS, url, "fetched", NOW,
                                                 chapters=(Chapter(0, "Json intro"),))])
    await storage.write_documents([DocumentWrite(a, DocumentKind.CHAPTERS, url, "withdrawn", NOW,
                                                 chapters=(Chapter(0, "Intro"), Chapter(30, "Replication")))])
    stored = await storage.find_item(a)
    assert stored is not None and stored.item.chapters == (Chapter(0, "Intro"), Chapter(30, "Replication"))
    assert await storage.load_documents(source.id) == []
    assert await storage.search(parse_query("json intro")) == []


async def test_search_synonyms_prefixes_chapters_and_nothing_found(storage: Storage) -> None:
    ids = await _catalog(storage)

    async def found(text: str, kind: ContentKind | None = None) -> list[int]:
        return [h.item_id for h in await storage.search(parse_query(text), kind)]

    assert (await found("postgres")) == [ids["PostgreSQL MVCC explained"]]  # synonym
    assert (await found("k8s")) == [ids["Kubernetes networking"]]
    assert (await found("http2")) == [ids["HTTP/2 multiplexing"]]  # a synonym phrase: "http 2"
    assert (await found("kafk"))[:1] == [ids["Kafka in 20 minutes"]]  # prefix
    assert set(await found("kafka")) == {ids["Kafka in 20 minutes"], ids["Queues"]}  # a chapter title
    assert (await found("kafka", ContentKind.ARTICLE)) == []
    assert await found("needle") == []  # one mention in a long description: under the floor
    assert await found("quantum chromodynamics") == []
    hits = await storage.search(parse_query("kafka"), limit=1)
    assert len(hits) == 1 and hits[0].strong
    page = await storage.page_items([ids["Queues"], ids["Kafka in 20 minutes"], 999], parse_query("kafka"))
    assert [s.id for s, _ in page] == [ids["Queues"], ids["Kafka in 20 minutes"]]
    assert page[0][1] == [Chapter(60, "Kafka consumer groups")] and page[1][1] == []
    assert page[0][0].item.chapters == (Chapter(0, "Intro"), Chapter(60, "Kafka consumer groups"))
    assert (await storage.page_items([ids["Queues"]], None))[0][1] == []
    assert await storage.page_items([], parse_query("kafka")) == []




async def test_a_weak_hit_is_kept_only_for_a_word_in_its_title_or_chapter_titles(storage: Storage) -> None:
    """A word every item's notes use scores under the floor everywhere; only
    the items with it in their title or a chapter title are hits, whole word
    or prefix (each backend decides it its own way: in the statement, or on
    the returned titles)."""
    source = await storage.add_source(spec(), NOW)
    notes = "Notes on backend engineering and the engineering of systems. " * 3
    written = await write(storage, source, [
        item(1, title="Engineering a queue", summary=notes),
        item(2, title="Queues", summary=notes, chapters=(Chapter(0, "Intro"), Chapter(60, "Engineering it"))),
        item(3, title="Databases", summary=notes),
        item(4, title="Caches", summary=notes, chapters=(Chapter(0, "Intro"),)),
    ])
    ids = {s.item.title: s.id for s in written.new_items}  # type: ignore[attr-defined]
    wanted = {ids["Engineering a queue"], ids["Queues"]}
    for text in ("engineering", "engineer"):  # whole word; the last word is a prefix too
        hits = await storage.search(parse_query(text))
        assert {h.item_id for h in hits} == wanted, text
        assert all(h.strong for h in hits)
    assert {h.item_id for h in await storage.search(parse_query("engineering"), ContentKind.EPISODE)} == wanted

async def test_search_chapters_matches_any_word_of_a_chapter_title_best_first(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    written = await write(storage, source, [
        item(1, title="Queues", summary="About queues.",
             chapters=(Chapter(0, "Intro"), Chapter(60, "Kafka consumer groups"), Chapter(120, "Kafka"))),
        item(2, title="Kafka in 20 minutes", summary="No chapters: the item title is not a chapter."),
        item(3, title="Databases", summary="Rows.", chapters=(Chapter(0, "Consumer lag in PostgreSQL"),)),
    ])
    ids = {s.item.title: s.id for s in written.new_items}  # type: ignore[attr-defined]
    q = ids["Queues"]
    hits = await storage.search_chapters(parse_query("kafka"))
    # a chapter title that is only the word scores above a longer one; positions are 0-based in chapter order
    assert [(h.item_id, h.position) for h in hits] == [(q, 2), (q, 1)]
    assert hits[0].score >= hits[1].score
    # ANY word: "postgres" (a synonym of postgresql) or "consumer"
    assert {(h.item_id, h.position) for h in await storage.search_chapters(parse_query("postgres consumer"))} == {
        (q, 1), (ids["Databases"], 0)}
    assert len(await storage.search_chapters(parse_query("kafka"), limit=1)) == 1
    assert await storage.search_chapters(parse_query("kafka"), ContentKind.ARTICLE) == []
    assert await storage.search_chapters(parse_query("quantum")) == []
    assert await storage.search_chapters(parse_query("")) == []


async def test_search_ranks_exact_words_above_prefix_matches_and_short_tokens_whole(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    # The prefix-only match is the newest and says it twice: the exact word still ranks first.
    written = await write(storage, source, [
        item(1, title="Shows: the grpc tutorial", summary="An older one.", published_at=NOW - timedelta(days=30)),
        item(2, title="grpcurl and grpcui", summary="Tools.", published_at=NOW),
        item(3, title="Echo servers", summary="An echo server in C.", published_at=NOW),
        item(4, title="Encrypted Client Hello", summary="ECH hides the SNI.", published_at=NOW - timedelta(days=9)),
    ])
    ids = {s.item.title: s.id for s in written.new_items}  # type: ignore[attr-defined]
    hits = await storage.search(parse_query("grpc"))
    assert [h.item_id for h in hits] == [ids["Shows: the grpc tutorial"], ids["grpcurl and grpcui"]]
    # <= 3 letters: whole words only ("ech" is not the start of "echo")
    assert [h.item_id for h in await storage.search(parse_query("ech"))] == [ids["Encrypted Client Hello"]]
    # hits carry their publication time (for `search X newest`)
    assert hits[0].published_at == NOW - timedelta(days=30) and hits[1].published_at == NOW


async def test_search_breaks_score_ties_by_recency(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    written = await write(storage, source, [
        item(n, title="Kafka", summary="Same words.", published_at=NOW - timedelta(days=10 * n)) for n in range(1, 4)
    ])
    newest_first = [s.id for s in sorted(written.new_items, key=lambda s: s.item.published_at,  # type: ignore[attr-defined]
                                         reverse=True)]
    assert [h.item_id for h in await storage.search(parse_query("kafka"))] == newest_first



# -- search vectors (bot/hybrid.py) -------------------------------------------------------

async def test_vectors_are_due_for_new_and_edited_items_and_replaced_whole(storage: Storage) -> None:
    from bot.detect import ItemUpdate
    from bot.storage.records import ItemVectors

    source = await storage.add_source(spec(), NOW)
    first = item(1, title="Kafka", chapters=(Chapter(0, "Intro"), Chapter(60, "Partitions")))
    (a, b) = (await write(storage, source, [first, item(2, title="Redis")])).new_items  # type: ignore[attr-defined]
    due = await storage.items_needing_vectors(10)
    assert [j.item_id for j in due] == [a.id, b.id]  # oldest id first
    assert due[0].chapters == ("Intro", "Partitions") and due[0].content_hash == content_hash(first)
    assert due[0].title == "Kafka" and due[1].chapters == ()
    assert [j.item_id for j in await storage.items_needing_vectors(1)] == [a.id]
    assert [j.item_id for j in await storage.items_needing_vectors(10, after_id=a.id)] == [b.id]  # a cursor
    await storage.put_vectors([ItemVectors.of(a.id, due[0].content_hash, b"item-a", (b"ch0", b"ch1")),
                               ItemVectors.of(b.id, due[1].content_hash, b"item-b")])
    assert await storage.items_needing_vectors(10) == []
    assert await storage.find_vectors([a.id, b.id, 999]) == {a.id: b"item-a", b.id: b"item-b"}
    assert await storage.chapter_vectors([a.id, b.id]) == {a.id: [b"ch0", b"ch1"]}
    # an edit makes the item due again; its new vectors replace all the old ones
    edited = replace(first, title="Kafka partitions", chapters=(Chapter(0, "Intro"),))
    await storage.write_poll(source, PollIntent(updates=(ItemUpdate(a.id, edited, content_hash(edited),
                                                                    item_identity(edited)),)), progress())
    (job,) = await storage.items_needing_vectors(10)
    assert job.item_id == a.id and job.content_hash == content_hash(edited) and job.title == "Kafka partitions"
    await storage.put_vectors([ItemVectors.of(a.id, job.content_hash, b"item-a2", (b"c0",))])
    assert (await storage.find_vectors([a.id]))[a.id] == b"item-a2"
    assert await storage.chapter_vectors([a.id]) == {a.id: [b"c0"]}
    assert await storage.find_vectors([]) == {} and await storage.chapter_vectors([]) == {}


async def test_vectors_of_an_item_edited_or_removed_meanwhile_are_not_saved(storage: Storage) -> None:
    from bot.storage.records import ItemVectors

    source = await storage.add_source(spec(), NOW)
    (a,) = (await write(storage, source, [item(1, title="Kafka", summary="x" * 2000)])).new_items  # type: ignore[attr-defined]
    assert len((await storage.items_needing_vectors(1, summary_chars=600))[0].summary) == 600
    await storage.put_vectors([ItemVectors.of(a.id, "not-its-content", b"stale"),
                               ItemVectors.of(12345, "x", b"gone")])
    assert await storage.find_vectors([a.id, 12345]) == {}
    assert [j.item_id for j in await storage.items_needing_vectors(10)] == [a.id]  # still due
    await storage.put_vectors([])
    # removing the source takes its items' vectors with them
    (job,) = await storage.items_needing_vectors(10)
    await storage.put_vectors([ItemVectors.of(a.id, job.content_hash, b"v")])
    await storage.remove_source(source.name)
    assert await storage.find_vectors([a.id]) == {}


HOSTILE = ['"NEAR(', "*", ":", "&|!", "'", "''", '"', "\\", "a:*", "(kafka", "kafka)", "NOT kafka", "-kafka",
           "kafka <-> queues", "title:kafka", "^kafka", "épée", "日本語", "\x00", "x" * 10_000,
           " ".join(["kafka"] * 2_000), "\u200b\u0301", "AND OR NOT", "k:* & | ! ( ) <->"]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_search_text_never_errors(storage: Storage, text: str) -> None:
    await _catalog(storage)
    query = parse_query(text)
    hits = await storage.search(query)
    await storage.page_items([h.item_id for h in hits] or [1], query)


async def test_search_folds_diacritics_like_sqlite(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    written = await write(storage, source, [item(1, title="Café résumé")])
    (stored,) = written.new_items  # type: ignore[attr-defined]
    assert [h.item_id for h in await storage.search(parse_query("cafe"))] == [stored.id]
    assert [h.item_id for h in await storage.search(parse_query("résumé"))] == [stored.id]


# -- routes -----------------------------------------------------------------------------------


async def test_routes_upsert_replace_break_remove(storage: Storage) -> None:
    first = await storage.upsert_route(Platform.DISCORD, "c1", frozenset({EventKind.EPISODE}), "@x", NOW)
    await storage.upsert_route(Platform.SLACK, "c2", ALL_KINDS, None, NOW, thread=True)
    assert await storage.mark_route_broken(first.id, "gone")
    assert not await storage.mark_route_broken(first.id, "gone again")  # told once
    replaced = await storage.upsert_route(Platform.DISCORD, "c1", ALL_KINDS, None, NOW)
    assert replaced.id == first.id and not replaced.broken and replaced.kinds == ALL_KINDS
    routes = await storage.list_routes()
    assert [(r.platform, r.channel, r.thread) for r in routes] == [
        (Platform.DISCORD, "c1", False), (Platform.SLACK, "c2", True)]
    await storage.remove_route(Platform.DISCORD, "c1")
    with pytest.raises(NotFound):
        await storage.remove_route(Platform.DISCORD, "c1")


# -- the outbox ---------------------------------------------------------------------------------


async def test_outbox_reads(storage: Storage) -> None:
    await queued(storage, 2, D1, S1)
    rows = await storage.outbox_rows()
    assert [r.id for r in rows] == sorted(r.id for r in rows) and len(rows) == 4
    assert await storage.count_unsent() == {Platform.DISCORD: 2, Platform.SLACK: 2}
    assert await storage.find_outbox_row(rows[1].event_id, S1) == rows[1]
    assert await storage.find_outbox_row(rows[1].event_id, D2) is None
    events = await storage.events_by_id([rows[0].event_id, rows[2].event_id, 999])
    assert [events[k].title for k in sorted(events)] == ["Event 0", "Event 1"]
    with pytest.raises(NotFound):
        await storage.get_event(999)


async def test_events_and_trails_of_more_ids_than_one_statement_binds(storage: Storage) -> None:
    count = 600  # each with two outbox rows
    await queued(storage, count, D1, S1)
    rows = await storage.outbox_rows()
    event_ids = sorted({r.event_id for r in rows})
    assert len(event_ids) == count
    events = await storage.events_by_id([*reversed(event_ids), event_ids[0], 999_999])
    assert {k: e.title for k, e in events.items()} == {k: f"Event {n}" for n, k in enumerate(event_ids)}
    trails = await storage.recent_event_trails(count)
    assert [t.event.id for t in trails] == list(reversed(event_ids))  # newest first
    by_event: dict[int, list[int]] = {}
    for r in rows:
        by_event.setdefault(r.event_id, []).append(r.id)
    for trail in trails:  # each event's rows, in id order
        assert [d.outbox_id for d in trail.deliveries] == sorted(by_event[trail.event.id])
        assert [d.destination for d in trail.deliveries] == [D1, S1]


async def test_claim_outbox_budgets_per_destination_and_order(storage: Storage) -> None:
    await queued(storage, 3, D1, D2, S1)
    assert await claim(storage, "x", NOW - timedelta(hours=1)) == []  # nothing due yet
    got = await claim(storage, "a", budgets={Platform.DISCORD: 1}, per_destination=2)
    assert [(r.destination, r.status, r.lease_owner, r.lease_until) for r in got] == [
        (D1, OutboxStatus.SENDING, "a", LEASE)] * 2  # one destination of one platform, its first two rows
    assert [r.id for r in got] == sorted(r.id for r in got) and all(r.first_attempt_at == NOW for r in got)
    # D1's third row waits behind a's claim; D2 and Slack are free.
    more = await claim(storage, "b")
    assert {r.destination for r in more} == {D2, S1} and len(more) == 6
    assert await claim(storage, "c") == []  # everything is held
    assert await storage.count_unsent() == {Platform.DISCORD: 6, Platform.SLACK: 3}


async def test_claim_outbox_stops_before_a_row_that_is_not_due(storage: Storage) -> None:
    await queued(storage, 3, D1)
    first, second, third = await storage.outbox_rows()
    (got,) = await claim(storage, "a", per_destination=1)
    retry = DeliveryResult(got.id, DeliveryOutcome.RETRY, NOW, error="502",
                           next_attempt_at=NOW + timedelta(minutes=5))
    await storage.record_deliveries("a", [retry])
    assert await claim(storage, "a") == []  # the head is not due: nothing behind it either
    later = await claim(storage, "a", NOW + timedelta(minutes=5))
    assert [r.id for r in later] == [first.id, second.id, third.id]
    assert later[0].attempts == 1 and later[0].last_error == "502" and not later[0].outcome_unknown


async def test_claim_outbox_takes_over_an_expired_lease_with_outcome_unknown(storage: Storage) -> None:
    await queued(storage, 2, D1)
    held = await claim(storage, "dead")
    assert await claim(storage, "alive", NOW + timedelta(seconds=59)) == []  # its lease still runs
    taken = await claim(storage, "alive", NOW + timedelta(seconds=61))
    assert [r.id for r in taken] == [r.id for r in held]
    assert all(r.outcome_unknown and r.lease_owner == "alive" for r in taken)
    assert all(r.first_attempt_at == NOW for r in taken)  # from the first claim, kept
    # The dead one's late results: not its rows any more, except SENT (the platform has it).
    await storage.record_deliveries("dead", [DeliveryResult(held[1].id, DeliveryOutcome.FAILED, NOW, error="x"),
                                             sent(held[0].id)])
    rows = await storage.outbox_rows()
    assert [r.status for r in rows] == [OutboxStatus.SENT, OutboxStatus.SENDING]
    assert rows[1].lease_owner == "alive"


async def test_renew_and_expire_outbox_leases(storage: Storage) -> None:
    await queued(storage, 2, D1, D2)
    await claim(storage, "a", budgets={Platform.DISCORD: 1})
    await claim(storage, "b")
    later = NOW + timedelta(minutes=10)
    assert await storage.renew_outbox_leases("a", later) == 2
    assert {r.lease_until for r in await storage.outbox_rows() if r.lease_owner == "a"} == {later}
    assert await storage.renew_outbox_leases("nobody", later) == 0
    assert await storage.expire_outbox_leases() == 4
    again = await claim(storage, "c")
    assert len(again) == 4 and all(r.outcome_unknown for r in again)


async def test_record_deliveries_outcomes_and_idempotency(storage: Storage) -> None:
    alerts = await storage.upsert_route(Platform.SLACK, "mods", frozenset({EventKind.ALERT}), None, NOW)
    news = await storage.upsert_route(Platform.DISCORD, "chan-1", ALL_KINDS, None, NOW)
    source = await storage.add_source(spec(), NOW)
    await write(storage, source, events=[PlannedEvent(EventKind.EPISODE, f"E{k}", None, deliveries=(
        PlannedDelivery(D1, route_id=news.id),)) for k in range(4)])
    a, b, c, d = await claim(storage, "me")
    later = NOW + timedelta(minutes=1)
    results = [
        sent(a.id),
        DeliveryResult(b.id, DeliveryOutcome.RETRY, NOW, error="timeout", next_attempt_at=later, outcome_unknown=True),
        DeliveryResult(c.id, DeliveryOutcome.RELEASED, NOW, attempted=False, next_attempt_at=later),
        DeliveryResult(d.id, DeliveryOutcome.FAILED, NOW, error="no permission", break_route=news.id,
                       alert="Announcements to chan-1 stopped"),
    ]
    assert await storage.record_deliveries("me", results) == [news.id]
    snapshot = await storage.outbox_rows()
    assert await storage.record_deliveries("me", results) == []  # idempotent: nothing more happens
    assert await storage.outbox_rows() == snapshot
    ra, rb, rc, rd, alert = snapshot
    assert (ra.status, ra.message_id, ra.attempts, ra.lease_owner) == (OutboxStatus.SENT, f"m{a.id}", 1, None)
    assert (rb.status, rb.attempts, rb.outcome_unknown, rb.next_attempt_at) == (OutboxStatus.PENDING, 1, True, later)
    assert (rc.status, rc.attempts, rc.next_attempt_at, rc.lease_owner) == (OutboxStatus.PENDING, 0, later, None)
    assert (rd.status, rd.last_error, rd.attempts) == (OutboxStatus.FAILED, "no permission", 1)
    assert alert.route_id == alerts.id and (await storage.get_event(alert.event_id)).title.startswith("Announcements")
    assert {r.id: r for r in await storage.list_routes()}[news.id].broken_reason == "no permission"
    assert await storage.record_deliveries("me", []) == []


# -- audit, filters, subscriptions ------------------------------------------------------------------


async def test_audit_newest_first(storage: Storage) -> None:
    for n in range(3):
        await storage.add_audit(NOW + timedelta(seconds=n), Platform.DISCORD, "42", f"act{n}", "d")
    audit = await storage.list_audit(limit=2)
    assert [(a.action, a.at) for a in audit] == [("act2", NOW + timedelta(seconds=2)), ("act1", NOW + timedelta(seconds=1))]


async def test_filters(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    await storage.add_filter(source.id, FilterRule("include", "kafka"), NOW, audit=(Platform.DISCORD, "42"))
    await storage.add_filter(source.id, FilterRule("exclude", "ads"), NOW)
    with pytest.raises(AlreadyExists):
        await storage.add_filter(source.id, FilterRule("include", "kafka"), NOW)
    with pytest.raises(UserError):
        await storage.add_filter(source.id, FilterRule("maybe", "x"), NOW)
    assert await storage.load_filters(source.id) == [FilterRule("include", "kafka"), FilterRule("exclude", "ads")]
    assert await storage.clear_filters(source.id, NOW, audit=(Platform.DISCORD, "42")) == 2
    assert await storage.load_filters(source.id) == []
    assert [a.action for a in await storage.list_audit()] == ["filter clear", "filter include"]


async def test_subscriptions(storage: Storage) -> None:
    assert await storage.add_subscription(Platform.DISCORD, "u", "kafka", NOW, 2)
    assert not await storage.add_subscription(Platform.DISCORD, "u", "kafka", NOW, 2)
    assert await storage.add_subscription(Platform.DISCORD, "u", "Caching", NOW, 2)
    with pytest.raises(UserError):
        await storage.add_subscription(Platform.DISCORD, "u", "more", NOW, 2)
    assert not await storage.add_subscription(Platform.DISCORD, "u", "kafka", NOW, 2)  # had it: not past the limit
    assert await storage.add_subscription(Platform.SLACK, "u", "kafka", NOW, 2)
    assert await storage.member_subscriptions(Platform.DISCORD, "u") == ["Caching", "kafka"]
    assert [s.topic for s in await storage.load_subscriptions()] == ["kafka", "Caching", "kafka"]
    await storage.remove_subscription(Platform.DISCORD, "u", "kafka")
    with pytest.raises(NotFound):
        await storage.remove_subscription(Platform.DISCORD, "u", "kafka")


# -- stats --------------------------------------------------------------------------------------------


async def test_book_news_newest_first(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    await write(storage, source, [item(1), item(30)], [
        PlannedEvent(EventKind.BOOK, "Old", None, item=1), PlannedEvent(EventKind.BOOK, "New", "https://n", item=0,
                                                                        payload={"links": ["https://n"]}),
        PlannedEvent(EventKind.BOOK, "Undated", None)])
    news = await storage.book_news()
    assert [(n.title, n.source) for n in news] == [("Undated", "podcast"), ("New", "podcast"), ("Old", "podcast")]
    assert news[0].at == NOW and news[1].at == NOW - timedelta(days=1) and news[1].payload == {"links": ["https://n"]}
    assert news[2].url == "https://example.com/e/30"  # the item's link
    assert len(await storage.book_news(limit=1)) == 1


async def test_test_posts_of_a_book_are_neither_book_news_nor_an_anchor(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    written = await write(storage, source, [item(1)])
    (stored,) = written.new_items  # type: ignore[attr-defined]
    test = QueuedEvent(EventKind.BOOK, "A test", "https://b/t", stored.id, source.id, (QueuedDelivery(D1),),
                       EventPurpose.TEST)
    (event,) = await storage.queue_events([test], NOW)
    assert (await storage.get_event(event.id)).purpose is EventPurpose.TEST
    assert await storage.book_news() == []
    state = await storage.load_poll_state(source, NOW, book_window_s=3 * 86400)
    assert state.book_anchor is None
    assert (await storage.source_facts())[source.id].last_announced_at is None
    # The test did not use up the item's one announcement.
    (announced,) = await storage.queue_events([replace(test, purpose=EventPurpose.ANNOUNCE)], NOW)
    assert [n.title for n in await storage.book_news()] == ["A test"]
    assert (await storage.load_poll_state(source, NOW, book_window_s=60)).book_anchor.event_id == announced.id  # type: ignore[union-attr]


async def test_profile_stats(storage: Storage) -> None:
    assert await storage.profile_stats(NOW) is None
    x = await storage.add_source(replace(spec("x"), kind="x", url=None, handle="hnasr"), NOW)
    for days_ago, followers in [(40, 100), (30, 110), (8, 150), (7.1, 151), (1, 190), (0.5, 195), (0, 200)]:
        at = NOW - timedelta(days=days_ago)
        await write(storage, x, snapshot=SnapshotRow(at, followers, 5, 9, None, None, None, None, "{}"))
    stats = await storage.profile_stats(NOW)
    assert stats is not None and (stats.source, stats.handle, stats.latest.followers) == ("x", "hnasr", 200)
    assert stats.baselines[7] is not None and stats.baselines[7].followers == 151
    assert stats.baselines[30] is not None and stats.baselines[30].followers == 110
    # One point per UTC day, its last snapshot: today's 00:00 (195) gives way to 12:00 (200).
    assert [f for _, f in stats.followers_daily] == [100, 110, 150, 151, 190, 200]
    assert all(at.tzinfo is not None for at, _ in stats.followers_daily)
    young = await storage.profile_stats(NOW, windows=(365,))
    assert young is not None and young.baselines[365] is None


async def test_episodes_per_month_and_cadence(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    blog = await storage.add_source(spec("blog", content=ContentKind.ARTICLE), NOW)
    await storage.set_paused("blog", True)
    dated = [item(n, published_at=NOW - timedelta(days=n)) for n in (0, 1, 25, 40, 400)]
    await write(storage, source, dated)
    await write(storage, blog, [item(9, guid="b", published_at=None)])
    months = await storage.episodes_per_month(NOW, months=3)
    assert [m for m, _ in months] == ["2026-04", "2026-05", "2026-06"]
    assert dict(months) == {"2026-04": 0, "2026-05": 2, "2026-06": 2}
    cadence = {c.source: c for c in await storage.cadence(NOW, days=28)}
    assert cadence["podcast"].recent == 3 and cadence["podcast"].per_week == 0.75
    assert cadence["podcast"].newest == NOW and cadence["podcast"].kind == "episode"
    assert cadence["blog"].paused and cadence["blog"].recent == 1 and cadence["blog"].newest == NOW  # first seen


# -- naive datetimes --------------------------------------------------------------------------------------

NAIVE = datetime(2026, 6, 20, 12, 0)


async def test_naive_datetimes_are_refused(storage: Storage) -> None:
    source = await storage.add_source(spec(), NOW)
    calls = [
        lambda: storage.add_source(spec("n"), NAIVE),
        lambda: storage.check_writable(NAIVE),
        lambda: storage.record_failure(source.id, "e", now=NAIVE, next_poll_at=NOW),
        lambda: storage.record_unchanged(source.id, now=NOW, next_poll_at=NAIVE, etag=None, last_modified=None),
        lambda: storage.claim_poll(source.id, "a", NAIVE, NOW),
        lambda: storage.claim_outbox("a", NAIVE, NOW, budgets=BUDGETS, per_destination=1),
        lambda: storage.write_poll(source, PollIntent(new_items=(new_item(item(1, published_at=NAIVE)),)), progress()),
        lambda: storage.queue_alert("x", NAIVE),
        lambda: storage.add_audit(NAIVE, Platform.DISCORD, "u", "a", "d"),
        lambda: storage.episodes_per_month(NAIVE),
        lambda: storage.put_route(RouteSeed(Platform.DISCORD, "n", ALL_KINDS), NAIVE),
        lambda: storage.queue_events([], NAIVE),
        lambda: storage.route_tallies([1], NAIVE),
        lambda: storage.route_facts(NAIVE),
        lambda: storage.build_digest(1, DigestPeriod.DAILY, NAIVE, "Digest", NOW),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            await call()
    assert await storage.count_items() == 0 and [s.name for s in await storage.list_sources()] == ["podcast"]


# -- PostgreSQL only: several processes on one database ------------------------------------------------


@pytest.fixture
async def pg_pair(pg_url: str):  # type: ignore[no-untyped-def]
    from bot.storage.postgres import PostgresStorage

    a, b = await PostgresStorage.open(pg_url), await PostgresStorage.open(pg_url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_pg_concurrent_claims_never_share_a_row_and_keep_destination_order(pg_pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pg_pair
    destinations = [Destination(Platform.DISCORD, DestinationKind.CHANNEL, f"c{n}") for n in range(12)]
    await queued(a, 6, *destinations)
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    by_destination: dict[Destination, list[int]] = {}

    async def worker(store: Storage, owner: str) -> None:
        for _ in range(40):
            rows = await claim(store, owner, per_destination=2, budgets={Platform.DISCORD: 3})
            claimed[owner] += [r.id for r in rows]
            for r in rows:
                by_destination.setdefault(r.destination, []).append(r.id)
            await store.record_deliveries(owner, [sent(r.id) for r in rows])

    await asyncio.gather(worker(a, "a"), worker(b, "b"))
    assert not set(claimed["a"]) & set(claimed["b"])
    assert len(claimed["a"]) + len(claimed["b"]) == 72 and claimed["a"] and claimed["b"]
    for ids in by_destination.values():
        assert ids == sorted(ids)  # each destination's rows were claimed in id order


async def test_pg_concurrent_writers_commit_outbox_ids_in_order(pg_pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pg_pair
    sources = [await a.add_source(spec(f"s{n}"), NOW) for n in range(2)]
    seen: list[list[int]] = []
    done = asyncio.Event()

    async def writer(store: Storage, source: Source) -> None:
        for k in range(15):
            await write(store, source, events=[announce(f"{source.name}-{k}", D1), announce(f"{source.name}-{k}b", D1)])

    async def observer() -> None:
        while not done.is_set():
            seen.append([r.id for r in await a.outbox_rows()])

    watching = asyncio.create_task(observer())
    await asyncio.gather(writer(a, sources[0]), writer(b, sources[1]))
    done.set()
    await watching
    final = [r.id for r in await a.outbox_rows()]
    assert final == list(range(1, 61))
    for ids in seen:  # whatever a reader saw was a prefix of the id order: no later row before an earlier
        assert ids == final[:len(ids)]


async def test_pg_instances_starting_together_migrate_and_seed_once(pg_run: PgRun | None) -> None:
    from bot.storage.postgres import PostgresStorage

    run = run_of(pg_run)
    url = await run.create_database("showbot_test_start")
    stores = await asyncio.gather(*(PostgresStorage.open(url) for _ in range(4)))
    try:
        route = RouteSeed(Platform.DISCORD, "c", ALL_KINDS)
        await asyncio.gather(*(s.seed([spec(), spec("blog")], [route], NOW) for s in stores))
        assert [s.name for s in await stores[0].list_sources()] == ["blog", "podcast"]
        assert len(await stores[0].list_routes()) == 1
        assert {await s.schema_version() for s in stores} == {(PG_SCHEMA_VERSION, PG_SCHEMA_VERSION)}
    finally:
        for s in stores:
            await s.close()


async def test_pg_errors_are_one_line_storage_errors_without_the_password() -> None:
    from bot.storage.postgres import PostgresStorage

    with pytest.raises(StorageError) as raised:
        await PostgresStorage.open("postgresql://showbot:s3cret-pw@127.0.0.1:1/nowhere")
    message = str(raised.value)
    assert "s3cret-pw" not in message and "\n" not in message
    assert "postgresql://showbot:***@127.0.0.1:1/nowhere" in message


def test_a_sqlite_only_showbot_never_imports_asyncpg(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "s.db"}"\n')
    code = ("import sys; from bot.cli import main; rc = main(['ask', '--config', sys.argv[1], 'help']); "
            "assert 'asyncpg' not in sys.modules, 'asyncpg was imported'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr


async def test_pg_search_stats_follow_inserts_edits_and_removals(pg_url: str) -> None:
    from bot.detect import ItemUpdate
    from bot.storage.postgres import PostgresStorage

    store = await PostgresStorage.open(pg_url)
    try:
        pod = await store.add_source(spec(), NOW)
        blog = await store.add_source(spec("blog"), NOW)
        (first, _) = (await write(store, pod, [item(1, summary="a b c"), item(2)])).new_items  # type: ignore[attr-defined]
        await write(store, blog, [item(3, guid="b3", summary="long " * 50)])
        edited = replace(first.item, summary="now much longer than before " * 5)
        await store.write_poll(pod, PollIntent(updates=(ItemUpdate(first.id, edited, content_hash(edited),
                                                                   first.identity),)), progress())

        async def totals() -> tuple[tuple[int, int], tuple[int, int]]:
            kept = await store._one("SELECT items, words FROM search_stats")
            real = await store._one("SELECT count(*), coalesce(sum(search_len), 0) FROM items")
            return (kept[0], kept[1]), (real[0], real[1])  # type: ignore[index]

        kept, real = await totals()
        assert kept == real and real[0] == 3 and real[1] > 50
        await store.remove_source("blog")
        kept, real = await totals()
        assert kept == real and real[0] == 2
    finally:
        await store.close()


# -- edits and merges (bot.edits, bot.merge) ---------------------------------------------------


async def test_announced_lists_recent_announcements_with_live_rows_and_newest_edit(storage: Storage) -> None:
    from bot.edits import CHANGE_TITLE, edit_payload, next_edit

    pod = await storage.add_source(spec(), NOW)
    yt = await storage.add_source(replace(spec("youtube"), content=ContentKind.VIDEO), NOW)
    await write(storage, pod, [item(1, summary="See https://youtu.be/AbCdEfGhIjK")],
                events=[announce("Episode 1", D1, D2, item=0)])
    await write(storage, yt, [item(2, guid="yt2", link="https://www.youtube.com/watch?v=AbCdEfGhIjK",
                                   video_id="AbCdEfGhIjK")],
                events=[announce("Video", S1, kind=EventKind.VIDEO, item=0),
                        PlannedEvent(EventKind.BOOK, "A follow-up", None, payload={"follow_up_of": 1})])
    rows = await storage.outbox_rows()
    await storage.claim_outbox("o", NOW, LEASE, budgets=BUDGETS, per_destination=10)
    await storage.record_deliveries("o", [sent(rows[0].id), DeliveryResult(rows[1].id, DeliveryOutcome.FAILED, NOW,
                                                                           error="gone")])
    state = await storage.load_poll_state(pod, NOW + timedelta(hours=1), book_window_s=0, edit_window_s=86400)
    first, video = state.announced
    assert (first.kind, first.source, first.title, first.url) == (EventKind.EPISODE, "podcast", "Episode 1",
                                                                 "https://example.com/e/1")
    assert first.summary == "See https://youtu.be/AbCdEfGhIjK" and first.published_at == NOW - timedelta(days=1)
    assert [d.destination for d in first.deliveries] == [D1]  # the failed row carries no edit
    assert (video.source, video.video_id, [d.destination for d in video.deliveries]) == ("youtube", "AbCdEfGhIjK",
                                                                                         [S1])
    assert state.last_event_id == max(e.id for e in (await storage.events_by_id(list(range(1, 10)))).values())
    # Edits: any number per item; the newest is loaded; an item's trail lists them.
    for title in ("A", "B"):
        spec_ = next_edit(None, first.event_id, CHANGE_TITLE, title=title)
        (edit,) = await storage.queue_events([QueuedEvent(EventKind.EDIT, title, None, first.item_id, pod.id,
                                                          (QueuedDelivery(D1),), payload=edit_payload(spec_))], NOW)
    again = await storage.load_poll_state(pod, NOW, book_window_s=0, edit_window_s=86400)
    assert again.announced[0].last_edit is not None and again.announced[0].last_edit.title == "B"
    trail = await storage.item_trail(video.item_id)
    assert trail is not None and [e.event.kind for e in trail.events] == [EventKind.VIDEO]
    trail = await storage.item_trail(first.item_id)
    assert trail is not None and [e.event.kind for e in trail.events] == [EventKind.EPISODE, EventKind.EDIT,
                                                                          EventKind.EDIT]
    # Outside the window, or with no window: none.
    assert (await storage.load_poll_state(pod, NOW + timedelta(days=3), book_window_s=0,
                                          edit_window_s=86400)).announced == ()
    assert (await storage.load_poll_state(pod, NOW, book_window_s=0)).announced == ()


async def test_a_poll_that_announces_is_refused_when_another_source_announced_since_it_read(
        storage: Storage) -> None:
    from bot.errors import Stale
    from bot.intents import MergeCheck

    pod = await storage.add_source(spec(), NOW)
    yt = await storage.add_source(replace(spec("youtube"), content=ContentKind.VIDEO), NOW)
    seen = (await storage.load_poll_state(pod, NOW, book_window_s=0, edit_window_s=86400)).last_event_id
    await write(storage, yt, [item(2, guid="yt2")], events=[announce("Video", S1, kind=EventKind.VIDEO, item=0)])
    with pytest.raises(Stale):
        await write(storage, pod, [item(1)], events=[announce("Episode", D1, item=0)],
                    merge_check=MergeCheck(seen))
    assert [r.destination for r in await storage.outbox_rows()] == [S1]  # nothing of it was written
    # Its own announcements don't count; decided again from now, it is written.
    now_seen = (await storage.load_poll_state(pod, NOW, book_window_s=0, edit_window_s=86400)).last_event_id
    await write(storage, pod, [item(1)], events=[announce("Episode", D1, item=0)], merge_check=MergeCheck(now_seen))
    await write(storage, pod, [item(3, guid="g3")], events=[announce("Episode 3", D1, item=0)],
                merge_check=MergeCheck(now_seen))
    assert len(await storage.outbox_rows()) == 3



def _merge_check(state: object) -> object:
    from bot.intents import MergeCheck

    return MergeCheck(state.last_event_id, frozenset(a.event_id for a in state.announced),  # type: ignore[attr-defined]
                      state.announced_since)  # type: ignore[attr-defined]


async def test_an_announcement_committed_after_the_read_with_a_lower_id_still_makes_the_write_stale(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL takes an id at insert, not at commit: poll A inserts its
    announcement (id 1) and is still writing when another event commits
    (id 2) and poll B reads its state (last id 2, A's unseen). A commits;
    B's write must still be refused, or both sources post the release.
    (SQLite has one writer at a time: ids appear in commit order.)"""
    if storage.backend != "postgresql":
        pytest.skip("needs two writers at once; SQLite's writes take turns")
    import bot.storage.postgres.polls as pg_polls
    from bot.errors import Stale

    pod = await storage.add_source(spec(), NOW)
    yt = await storage.add_source(replace(spec("youtube"), content=ContentKind.VIDEO), NOW)
    before = await storage.load_poll_state(pod, NOW, book_window_s=0, edit_window_s=86400)
    inside, go_on = asyncio.Event(), asyncio.Event()
    write_holds = pg_polls._write_holds

    async def paused(*args: object, **kw: object) -> object:
        inside.set()  # A's events are inserted, its transaction open
        await go_on.wait()
        return await write_holds(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pg_polls, "_write_holds", paused)
    a = asyncio.create_task(write(storage, pod, [item(1)], events=[announce("Episode", D1, item=0)],
                                  merge_check=_merge_check(before)))  # type: ignore[arg-type]
    await inside.wait()
    monkeypatch.setattr(pg_polls, "_write_holds", write_holds)
    await storage.queue_alert("another feed is failing", NOW)  # a later id, committed first
    state = await storage.load_poll_state(yt, NOW, book_window_s=0, edit_window_s=86400)
    assert state.announced == ()  # A's announcement is not visible yet
    go_on.set()
    await a
    with pytest.raises(Stale):
        await write(storage, yt, [item(2, guid="yt2")], events=[announce("Video", S1, kind=EventKind.VIDEO, item=0)],
                    merge_check=_merge_check(state))  # type: ignore[arg-type]
    # decided again from what is stored now, it is written
    again = await storage.load_poll_state(yt, NOW, book_window_s=0, edit_window_s=86400)
    await write(storage, yt, [item(2, guid="yt2")], events=[announce("Video", S1, kind=EventKind.VIDEO, item=0)],
                merge_check=_merge_check(again))  # type: ignore[arg-type]

# -- held announcements and followed premieres (issue #14) --------------------------


async def test_holds_are_stored_replaced_released_and_followed_premieres_tracked(storage: Storage) -> None:
    from bot.holds import HoldIntent, ItemRelease, LiveIntent
    from bot.models import LiveState
    from bot.verdicts import ItemFate, ItemVerdict

    source = await storage.add_source(spec(), NOW)
    assert not await storage.has_waiting(source.id)
    held, premiere = item(1, video_id="v1"), item(2, video_id="v2")
    start = NOW + timedelta(hours=2)
    written = await write(storage, source, [held, premiere],
                          [announce("Premiere", D1, kind=EventKind.VIDEO, item=1)],
                          holds=(HoldIntent(0, None, "h1", NOW, NOW, True),),
                          live=(LiveIntent(1, None, LiveState.UPCOMING, start, start=True),))
    held_id, premiere_id = [s.id for s in written.new_items]  # type: ignore[attr-defined]
    [event] = written.events  # type: ignore[attr-defined]
    assert await storage.has_waiting(source.id)
    state = await storage.load_poll_state(source, NOW, book_window_s=0)
    [h] = state.held
    assert (h.item_id, h.item.title, h.content_hash, h.held_since_at, h.waiting_playable) == \
        (held_id, "Episode 1", "h1", NOW, True)
    [t] = state.live
    assert (t.item_id, t.event_id, t.video_id, t.state, t.scheduled_start_at) == \
        (premiere_id, event.id, "v2", LiveState.UPCOMING, start)

    later = NOW + timedelta(minutes=5)
    await write(storage, source, holds=(HoldIntent(None, held_id, "h2", NOW, later, False),),
                live=(LiveIntent(None, premiere_id, LiveState.LIVE, start, start, edit=True),))
    state = await storage.load_poll_state(source, later, book_window_s=0)
    assert [(x.content_hash, x.held_since_at, x.steady_since_at, x.waiting_playable) for x in state.held] == \
        [("h2", NOW, later, False)]  # replaced, its first sighting kept
    assert [x.state for x in state.live] == [LiveState.LIVE]

    verdict = ItemVerdict(ItemFate.ANNOUNCED, note="released")
    released = await write(storage, source, [], [announce("Episode 1", D1, item_id=held_id)],
                           releases=(ItemRelease(held_id, verdict),),
                           live=(LiveIntent(None, premiere_id, LiveState.NONE, done=True, edit=True),))
    assert [e.item_id for e in released.events] == [held_id]  # type: ignore[attr-defined]
    assert not await storage.has_waiting(source.id)
    trail = await storage.item_trail(held_id)
    assert trail is not None and trail.verdict == verdict
    state = await storage.load_poll_state(source, later, book_window_s=0)
    assert state.held == () and state.live == ()
    await storage.remove_source("podcast")  # the rows go with the source's items


async def test_a_premiere_merged_into_another_announcement_is_followed_by_its_own(storage: Storage) -> None:
    """A new premiere's announcement and, after it, a merge edit about the
    same item: the live row must point at the announcement (an edit is not
    an anchor, and its live edits would never be made)."""
    from bot.holds import LiveIntent
    from bot.models import LiveState

    source = await storage.add_source(spec(), NOW)
    start = NOW + timedelta(hours=2)
    written = await write(storage, source, [item(1, video_id="v1")],
                          [announce("Premiere", D1, kind=EventKind.VIDEO, item=0),
                           announce("Premiere", D2, kind=EventKind.EDIT, item=0, payload={"edit_of": 1})],
                          live=(LiveIntent(0, None, LiveState.UPCOMING, start, start=True),))
    announcement = next(e for e in written.events if e.kind is EventKind.VIDEO)
    (tracked,) = (await storage.load_poll_state(source, NOW, book_window_s=0)).live
    assert tracked.event_id == announcement.id and tracked.anchor is not None


async def test_a_chapters_document_makes_the_item_due_for_new_vectors(storage: Storage) -> None:
    """The vectors were of the feed's chapters; the document's replace them
    without changing the content hash, so the item must be due again."""
    from bot.documents import DocumentWrite
    from bot.models import DocumentKind
    from bot.storage.records import ItemVectors

    source, a, b = await _two_items(storage)
    due = await storage.items_needing_vectors(10)
    await storage.put_vectors([ItemVectors.of(j.item_id, j.content_hash, b"v", tuple(b"c" for _ in j.chapters))
                               for j in due])
    assert await storage.items_needing_vectors(10) == []
    chapters = (Chapter(0, "Welcome"), Chapter(75, "How replication slots work"))
    await storage.write_documents([DocumentWrite(a, DocumentKind.CHAPTERS, "https://c.example/a.json", "fetched",
                                                 NOW, chapters=chapters)])
    (job,) = await storage.items_needing_vectors(10)
    assert job.item_id == a and job.chapters == ("Welcome", "How replication slots work")
    assert b in await storage.find_vectors([a, b]) and a not in await storage.find_vectors([a, b])
    # The same chapters again (a document fetched before the poll's write,
    # which stored them and their vectors): nothing to re-embed.
    await storage.put_vectors([ItemVectors.of(a, job.content_hash, b"v2", (b"c", b"c"))])
    await storage.write_documents([DocumentWrite(a, DocumentKind.CHAPTERS, "https://c.example/a.json", "fetched",
                                                 NOW, chapters=chapters)])
    assert await storage.items_needing_vectors(10) == []
    assert (await storage.find_vectors([a]))[a] == b"v2"
