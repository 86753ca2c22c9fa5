"""Storage for issue #12: route settings, queued events (backfill, tests),
held rows and digests, flood-control tallies, on both backends
(tests/backends.py), and the migrations that added them (SQLite 8,
PostgreSQL 4)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bot.detect import decide
from bot.models import (
    ContentKind, Destination, DestinationKind, DigestPeriod, EventKind, EventPurpose, Item, Platform,
)
from bot.storage import DeliveryOutcome, DeliveryResult, RouteSeed, SqliteStorage, Storage
from bot.storage.records import QueuedDelivery, QueuedEvent
from bot.storage.sqlite.base import split_sql
from bot.storage.sqlite.schema import MIGRATIONS
from tests.backends import PgRun, Target, open_target, run_of
from tests.catalog_helpers import load_catalog
from tests.spine import ALL_KINDS, NOW, items, spec, store_with_events, write_decision

CHANNEL = Destination(Platform.DISCORD, DestinationKind.CHANNEL, "chan-1")


async def assert_migrated_keeps_the_rows(store: Storage) -> None:
    """What a database written before routes had settings reads as now."""
    (row,) = await store.outbox_rows()
    assert (row.idempotency_key, row.status, row.route_id) == ("k1", "sending", 1)
    (route,) = await store.list_routes()
    assert (route.feeds, route.template, route.pace_s, route.daily_cap, route.digest) == (
        frozenset(), None, None, None, None)
    assert (await store.get_event(1)).purpose is EventPurpose.ANNOUNCE
    # The new statuses are allowed now: the row can be held for a digest.
    await store.record_deliveries(row.lease_owner or "", [DeliveryResult(row.id, DeliveryOutcome.HELD, NOW)])
    assert [r.status for r in await store.outbox_rows()] == ["held"]


async def test_sqlite_migration_8_keeps_every_outbox_row(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    for script in MIGRATIONS[:7]:
        for statement in split_sql(script):
            con.execute(statement)
    con.execute("PRAGMA user_version = 7")
    t = "2026-06-20T12:00:00.000000+00:00"
    con.execute("INSERT INTO routes (platform, channel, kinds, created_at) VALUES ('discord', 'c', 'episode', ?)", (t,))
    con.execute("INSERT INTO events (kind, title, created_at) VALUES ('episode', 'E', ?)", (t,))
    con.execute("INSERT INTO outbox (event_id, route_id, platform, dest_id, idempotency_key, status, next_attempt_at, "
                "created_at, lease_owner, lease_until, message_url) "
                "VALUES (1, 1, 'discord', 'c', 'k1', 'sending', ?, ?, 'me', ?, 'https://x/1')", (t, t, t))
    con.commit()
    con.close()
    async with await SqliteStorage.open(db) as store:
        (trail,) = await store.outbox_queue()
        assert trail.message_url == "https://x/1"  # the copied table keeps migration 7's column
        await assert_migrated_keeps_the_rows(store)


async def test_postgres_migration_4_keeps_every_outbox_row(pg_run: PgRun | None) -> None:
    import asyncpg

    from bot.storage.postgres.schema import MIGRATIONS as PG_MIGRATIONS

    url = await run_of(pg_run).create_database("showbot_test_mig4")
    conn = await asyncpg.connect(url)
    try:
        # A database a showbot of PostgreSQL schema 3 made and wrote.
        await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                           "applied_at timestamptz NOT NULL DEFAULT now())")
        for version, script in enumerate(PG_MIGRATIONS[:3], start=1):
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
        await conn.execute("INSERT INTO routes (platform, channel, kinds, created_at) "
                           "VALUES ('discord', 'c', '{episode}', $1)", NOW)
        await conn.execute("INSERT INTO events (kind, title, created_at) VALUES ('episode', 'E', $1)", NOW)
        await conn.execute("INSERT INTO outbox (event_id, route_id, platform, dest_id, idempotency_key, status, "
                           "next_attempt_at, created_at, lease_owner, lease_until) "
                           "VALUES (1, 1, 'discord', 'c', 'k1', 'sending', $1, $1, 'me', $1)", NOW)
    finally:
        await conn.close()
    store = await open_target(url)
    try:
        assert await store.schema_version() == (len(PG_MIGRATIONS), len(PG_MIGRATIONS))
        await assert_migrated_keeps_the_rows(store)
    finally:
        await store.close()


async def test_put_route_keeps_every_setting_and_upsert_route_leaves_the_new_ones(storage: Storage) -> None:
    seed = RouteSeed(Platform.SLACK, "C1", frozenset({EventKind.EPISODE}), "S0ROLE1", False,
                     frozenset({"podcast", "youtube"}), "{title} {url}", 30, 10, DigestPeriod.WEEKLY)
    route = await storage.put_route(seed, NOW)
    assert (route.feeds, route.template, route.pace_s, route.daily_cap, route.digest, route.mention) == (
        frozenset({"podcast", "youtube"}), "{title} {url}", 30, 10, DigestPeriod.WEEKLY, "S0ROLE1")
    assert await storage.list_routes() == [route]
    await storage.upsert_route(Platform.SLACK, "C1", frozenset({EventKind.VIDEO}), None, NOW)
    (route,) = await storage.list_routes()
    assert route.kinds == {EventKind.VIDEO} and route.template == "{title} {url}" and route.pace_s == 30
    assert await storage.mark_route_broken(route.id, "gone")
    again = await storage.put_route(replace(seed, feeds=frozenset(), template=None, digest=None), NOW)
    assert (again.id, again.broken, again.feeds, again.template, again.digest) == (route.id, False, frozenset(),
                                                                                  None, None)


async def test_seed_writes_every_route_setting(storage: Storage) -> None:
    seed = RouteSeed(Platform.DISCORD, "chan-1", frozenset({EventKind.EPISODE}), None, True,
                     frozenset({"podcast"}), "{title}", 60, 3, DigestPeriod.DAILY)
    await storage.seed([spec()], [seed], NOW)
    (route,) = await storage.list_routes()
    assert (route.thread, route.feeds, route.template, route.pace_s, route.daily_cap, route.digest) == (
        True, frozenset({"podcast"}), "{title}", 60, 3, DigestPeriod.DAILY)


async def test_queue_events_announces_an_item_once_but_a_test_any_time(storage: Storage) -> None:
    route = await storage.upsert_route(Platform.DISCORD, "chan-1", ALL_KINDS, None, NOW)
    source = await storage.add_source(spec(), NOW)
    await write_decision(storage, source, decide(spec=source.spec, synced=False, known=[], fetched=items(2), now=NOW),
                         now=NOW)
    (newest, _) = await storage.feed_items("podcast", 2)
    delivery = (QueuedDelivery(CHANNEL, route.id),)
    event = QueuedEvent(EventKind.EPISODE, newest.item.title, newest.item.link, newest.id, source.id, delivery)
    (written,) = await storage.queue_events([event], NOW)
    assert await storage.queue_events([event], NOW) == []  # the backfill said twice: nothing new
    assert await storage.get_event(written.id) == written
    test = QueuedEvent(EventKind.EPISODE, newest.item.title, newest.item.link, newest.id, source.id, delivery,
                       EventPurpose.TEST, {"n": 1})
    tests = await storage.queue_events([test, test], NOW)
    assert [e.purpose for e in tests] == [EventPurpose.TEST] * 2 and tests[0].payload == {"n": 1}
    assert await storage.events_by_id([e.id for e in tests]) == {e.id: e for e in tests}
    assert [r.event_id for r in await storage.outbox_rows()] == [written.id, tests[0].id, tests[1].id]
    facts = (await storage.source_facts())[source.id]
    assert facts.last_item_title == "Episode 1" and facts.last_delivered_at is None
    assert facts.last_announced_at == NOW  # the announcement counts, the tests don't
    assert await storage.feed_items("nope") == []


async def held_store(db: Target, n: int) -> tuple[Storage, int]:
    store = await store_with_events(db, n, [(Platform.DISCORD, "chan-1")])
    (route,) = await store.list_routes()
    rows = await store.claim_outbox("me", NOW, NOW + timedelta(minutes=1), budgets={Platform.DISCORD: 1},
                                    per_destination=n)
    await store.record_deliveries("me", [DeliveryResult(r.id, DeliveryOutcome.HELD, NOW) for r in rows])
    return store, route.id


async def test_held_rows_leave_the_queue_and_go_out_in_one_digest_once(db: Target) -> None:
    store, route_id = await held_store(db, 3)
    try:
        held = await store.outbox_rows()
        assert {r.status for r in held} == {"held"}
        assert {(r.next_attempt_at, r.lease_owner) for r in held} == {(NOW, None)}  # when it was held
        assert await store.count_unsent() == {}  # they block nothing
        assert await store.outbox_queue() == []
        assert await store.held_counts() == {route_id: 3}
        assert (await store.route_facts(NOW))[route_id].held == 3
        # Held at NOW: a period that ended before then has nothing to digest.
        assert await store.build_digest(route_id, DigestPeriod.DAILY, NOW, "Daily digest", NOW) is None
        end = (NOW + timedelta(days=1)).replace(hour=0, minute=0)  # the next boundary: after it was held
        digest = await store.build_digest(route_id, DigestPeriod.DAILY, end, "Daily digest", NOW)
        assert digest is not None
        assert (digest.kind, digest.purpose, digest.title) == (EventKind.DIGEST, EventPurpose.DIGEST, "Daily digest")
        assert digest.payload == {"period": "daily", "period_end": "2026-06-21T00:00:00.000000+00:00",
                                  "event_ids": [r.event_id for r in held]}
        assert await store.get_event(digest.id) == digest
        assert await store.build_digest(route_id, DigestPeriod.DAILY, end, "Daily digest", NOW) is None
        after = await store.outbox_rows()
        assert [r.status for r in after] == ["digested"] * 3 + ["pending"]
        assert (after[-1].event_id, after[-1].route_id, after[-1].destination) == (digest.id, route_id, CHANNEL)
        assert await store.held_counts() == {}
        facts = (await store.route_facts(NOW))[route_id]
        assert (facts.held, facts.queued) == (0, 1)
        assert await store.build_digest(999, DigestPeriod.DAILY, end, "Daily digest", NOW) is None
    finally:
        await store.close()


async def test_switching_the_digest_off_puts_held_rows_back_and_removing_the_route_fails_them(db: Target) -> None:
    store, route_id = await held_store(db, 2)
    try:
        later = NOW + timedelta(minutes=5)
        await store.put_route(RouteSeed(Platform.DISCORD, "chan-1", ALL_KINDS, digest=DigestPeriod.DAILY), later)
        assert await store.held_counts() == {route_id: 2}  # still a digest route: still held
        await store.put_route(RouteSeed(Platform.DISCORD, "chan-1", ALL_KINDS), later)
        assert [(r.status, r.next_attempt_at) for r in await store.outbox_rows()] == [("pending", later)] * 2
        rows = await store.claim_outbox("me", later, later + timedelta(minutes=1), budgets={Platform.DISCORD: 1},
                                        per_destination=2)
        assert len(rows) == 2  # back in the queue, in their order
        await store.record_deliveries("me", [DeliveryResult(r.id, DeliveryOutcome.HELD, later) for r in rows])
        await store.remove_route(Platform.DISCORD, "chan-1")
        assert [(r.status, r.last_error) for r in await store.outbox_rows()] == [("failed", "route removed")] * 2
    finally:
        await store.close()


async def test_held_is_written_only_by_the_rows_holder(db: Target) -> None:
    store = await store_with_events(db, 1, [(Platform.DISCORD, "chan-1")])
    try:
        (row,) = await store.claim_outbox("me", NOW, NOW + timedelta(minutes=1), budgets={Platform.DISCORD: 1},
                                          per_destination=1)
        await store.record_deliveries("other", [DeliveryResult(row.id, DeliveryOutcome.HELD, NOW)])
        assert [r.status for r in await store.outbox_rows()] == ["sending"]
    finally:
        await store.close()


async def test_route_tallies_count_todays_posts_but_not_alerts(db: Target) -> None:
    store = await store_with_events(db, 3, [(Platform.DISCORD, "chan-1")])
    try:
        (route,) = await store.list_routes()
        await store.queue_alert("a feed failed", NOW)
        rows = await store.claim_outbox("me", NOW, NOW + timedelta(minutes=1), budgets={Platform.DISCORD: 1},
                                        per_destination=10)
        sent_at = [NOW - timedelta(days=1), NOW - timedelta(minutes=5), NOW - timedelta(minutes=1), NOW]
        await store.record_deliveries("me", [DeliveryResult(r.id, DeliveryOutcome.SENT, at, message_id="m")
                                             for r, at in zip(rows, sent_at)])
        tally = (await store.route_tallies([route.id, 999], NOW.replace(hour=0)))
        assert tally[route.id].capped_since == 2  # yesterday's post and the alert don't count
        assert tally[route.id].last_sent_at == NOW - timedelta(minutes=1)  # the alert doesn't pace
        assert tally[999].capped_since == 0 and tally[999].last_sent_at is None
        assert await store.route_tallies([], NOW) == {}
        facts = (await store.route_facts(NOW))[route.id]
        assert (facts.last_delivered_at, facts.queued, facts.waiting, facts.held) == (NOW, 0, 0, 0)
        source = await store.get_source("podcast")
        assert (await store.source_facts())[source.id].last_delivered_at == NOW - timedelta(minutes=1)
    finally:
        await store.close()


async def test_route_facts_tell_due_rows_from_waiting_ones(db: Target) -> None:
    store = await store_with_events(db, 3, [(Platform.DISCORD, "chan-1")])
    try:
        (route,) = await store.list_routes()
        rows = await store.claim_outbox("me", NOW, NOW + timedelta(minutes=1), budgets={Platform.DISCORD: 1},
                                        per_destination=2)
        soon, later = NOW + timedelta(minutes=1), NOW + timedelta(hours=1)
        await store.record_deliveries("me", [
            DeliveryResult(rows[0].id, DeliveryOutcome.RETRY, NOW, next_attempt_at=later),
            DeliveryResult(rows[1].id, DeliveryOutcome.RETRY, NOW, next_attempt_at=soon)])
        facts = (await store.route_facts(NOW))[route.id]
        assert (facts.queued, facts.waiting, facts.next_attempt_at, facts.last_delivered_at) == (1, 2, soon, None)
    finally:
        await store.close()


async def test_items_mentioning_is_plain_text_not_a_pattern(storage: Storage) -> None:
    await load_catalog(storage)
    found = await storage.items_mentioning(["root cause"])
    assert found and all("root cause" in (i.item.title + i.item.summary).lower() for i in found)
    assert await storage.items_mentioning(["ROOT Cause"]) == found  # ASCII case is folded
    for needle in ("%", "_", "\\", "%cause", "root_cause", "[a-z]*"):
        assert all(needle in i.item.title + i.item.summary for i in await storage.items_mentioning([needle]))
    assert await storage.items_mentioning(["", "  "]) == []
    assert len(await storage.items_mentioning(["e"], limit=3)) == 3
    assert (await storage.feed_items("podcast", 1))[0].kind is ContentKind.EPISODE


async def test_items_mentioning_matches_text_with_ascii_case_folded_only(storage: Storage) -> None:
    titles = ["Café culture", "100% uptime", "snake_case names", "Root Cause analysis", "plain"]
    fetched = [Item(title=t, guid=f"m{n}", link=f"https://example.com/m/{n}", summary="back\\slash" if n == 4 else "",
                    published_at=NOW - timedelta(hours=n)) for n, t in enumerate(titles)]
    source = await storage.add_source(spec(), NOW)
    await write_decision(storage, source, decide(spec=source.spec, synced=False, known=[], fetched=fetched, now=NOW),
                         now=NOW)

    async def found(*needles: str) -> list[str]:
        return [i.item.title for i in await storage.items_mentioning(needles)]

    assert await found("%") == ["100% uptime"]
    assert await found("_") == ["snake_case names"]
    assert await found("%e", "e_c ", "e%c") == []  # as LIKE patterns these would match
    assert await found("\\") == ["plain"]  # in its description
    assert await found("ROOT cause", "uptime") == ["100% uptime", "Root Cause analysis"]  # newest first
    assert await found("CAFé") == ["Café culture"]
    assert await found("CAFÉ") == []  # SQLite's LIKE folds ASCII only: both backends say the same


# -- PostgreSQL only: several instances on one database -----------------------------------------


async def two_instances_holding(pg_url: str, n: int) -> tuple[Storage, Storage, int]:
    """Two storages on one database (two instances), ``n`` rows held for a digest."""
    a, route_id = await held_store(pg_url, n)
    return a, await open_target(pg_url), route_id


async def test_pg_instances_racing_for_a_periods_digest_build_it_once(pg_url: str) -> None:
    a, b, route_id = await two_instances_holding(pg_url, 3)
    end = (NOW + timedelta(days=1)).replace(hour=0, minute=0)
    try:
        built = await asyncio.gather(*(store.build_digest(route_id, DigestPeriod.DAILY, end, "Daily digest", NOW)
                                       for store in (a, b, a, b, a, b)))
        (digest,) = [d for d in built if d is not None]
        rows = await a.outbox_rows()
        assert [(r.status, r.event_id) for r in rows] == [("digested", r.event_id) for r in rows[:3]] + [
            ("pending", digest.id)]
        # The builders that lost wrote nothing: no second digest event either.
        assert [t.event.kind for t in await a.recent_event_trails()] == [EventKind.DIGEST] + [EventKind.EPISODE] * 3
    finally:
        await a.close()
        await b.close()


async def test_pg_a_digest_racing_the_routes_removal_neither_deadlocks_nor_loses_a_row(pg_url: str) -> None:
    a, b, route_id = await two_instances_holding(pg_url, 3)
    end = (NOW + timedelta(days=1)).replace(hour=0, minute=0)
    try:
        digest, _ = await asyncio.gather(a.build_digest(route_id, DigestPeriod.DAILY, end, "Daily digest", NOW),
                                         b.remove_route(Platform.DISCORD, "chan-1"))
        statuses = [r.status for r in await a.outbox_rows()]
        # Whichever went first: the digest took the rows (and is queued to the
        # channel), or the removal failed them and there was nothing to digest.
        assert statuses in (["digested"] * 3 + ["pending"], ["failed"] * 3)
        assert (digest is not None) == (statuses[0] == "digested")
        assert await a.list_routes() == []
    finally:
        await a.close()
        await b.close()


async def test_pg_the_same_backfill_queued_by_two_instances_at_once_is_written_once(pg_url: str) -> None:
    a = await store_with_events(pg_url, 0, [(Platform.DISCORD, "chan-1")])
    b = await open_target(pg_url)
    try:
        (route,) = await a.list_routes()
        stored = await a.feed_items("podcast", 2)
        backfill = [QueuedEvent(EventKind.EPISODE, i.item.title, i.item.link, i.id, None,
                                (QueuedDelivery(CHANNEL, route.id),)) for i in reversed(stored)]
        written = await asyncio.gather(*(store.queue_events(backfill, NOW) for store in (a, b, a, b)))
        # Whoever wrote the first item's announcement wrote the second too;
        # the others waited for its commit and skipped both.
        assert sorted(len(w) for w in written) == [0, 0, 0, 2]
        rows = await a.outbox_rows()
        assert len(rows) == 2 and [r.id for r in rows] == sorted(r.id for r in rows)
    finally:
        await a.close()
        await b.close()
