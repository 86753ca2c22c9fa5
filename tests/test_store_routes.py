"""Storage for issue #12: route settings, queued events (backfill, tests),
held rows and digests, flood-control tallies, and migration 7."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from bot.detect import decide
from bot.models import (
    ContentKind, Destination, DestinationKind, DigestPeriod, EventKind, EventPurpose, Platform,
)
from bot.storage import DeliveryOutcome, DeliveryResult, RouteSeed, SqliteStorage
from bot.storage.records import QueuedDelivery, QueuedEvent
from bot.storage.sqlite.base import split_sql
from bot.storage.sqlite.schema import MIGRATIONS
from tests.catalog_helpers import load_catalog
from tests.spine import ALL_KINDS, NOW, items, spec, store_with_events, write_decision

CHANNEL = Destination(Platform.DISCORD, DestinationKind.CHANNEL, "chan-1")


async def test_migration_7_keeps_every_outbox_row(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    for script in MIGRATIONS[:6]:
        for statement in split_sql(script):
            con.execute(statement)
    con.execute("PRAGMA user_version = 6")
    t = "2026-06-20T12:00:00.000000+00:00"
    con.execute("INSERT INTO routes (platform, channel, kinds, created_at) VALUES ('discord', 'c', 'episode', ?)", (t,))
    con.execute("INSERT INTO events (kind, title, created_at) VALUES ('episode', 'E', ?)", (t,))
    con.execute("INSERT INTO outbox (event_id, route_id, platform, dest_id, idempotency_key, status, next_attempt_at, "
                "created_at) VALUES (1, 1, 'discord', 'c', 'k1', 'sending', ?, ?)", (t, t))
    con.commit()
    con.close()
    async with await SqliteStorage.open(db) as store:
        (row,) = await store.outbox_rows()
        assert (row.idempotency_key, row.status, row.route_id) == ("k1", "sending", 1)
        (route,) = await store.list_routes()
        assert (route.feeds, route.template, route.pace_s, route.daily_cap, route.digest) == (
            frozenset(), None, None, None, None)
        assert (await store.get_event(1)).purpose is EventPurpose.ANNOUNCE


async def test_put_route_keeps_every_setting_and_upsert_route_leaves_the_new_ones(tmp_path: Path) -> None:
    async with await SqliteStorage.open(tmp_path / "s.db") as store:
        seed = RouteSeed(Platform.SLACK, "C1", frozenset({EventKind.EPISODE}), "S0ROLE1", False,
                         frozenset({"podcast", "youtube"}), "{title} {url}", 30, 10, DigestPeriod.WEEKLY)
        route = await store.put_route(seed, NOW)
        assert (route.feeds, route.template, route.pace_s, route.daily_cap, route.digest, route.mention) == (
            frozenset({"podcast", "youtube"}), "{title} {url}", 30, 10, DigestPeriod.WEEKLY, "S0ROLE1")
        await store.upsert_route(Platform.SLACK, "C1", frozenset({EventKind.VIDEO}), None, NOW)
        (route,) = await store.list_routes()
        assert route.kinds == {EventKind.VIDEO} and route.template == "{title} {url}" and route.pace_s == 30


async def test_queue_events_announces_an_item_once_but_a_test_any_time(tmp_path: Path) -> None:
    async with await SqliteStorage.open(tmp_path / "s.db") as store:
        route = await store.upsert_route(Platform.DISCORD, "chan-1", ALL_KINDS, None, NOW)
        source = await store.add_source(spec(), NOW)
        await write_decision(store, source, decide(spec=source.spec, synced=False, known=[], fetched=items(2), now=NOW),
                             now=NOW)
        (newest, _) = await store.feed_items("podcast", 2)
        delivery = (QueuedDelivery(CHANNEL, route.id),)
        event = QueuedEvent(EventKind.EPISODE, newest.item.title, newest.item.link, newest.id, source.id, delivery)
        assert len(await store.queue_events([event], NOW)) == 1
        assert await store.queue_events([event], NOW) == []  # the backfill said twice: nothing new
        test = QueuedEvent(EventKind.EPISODE, newest.item.title, newest.item.link, newest.id, source.id, delivery,
                           EventPurpose.TEST)
        assert len(await store.queue_events([test, test], NOW)) == 2
        assert len(await store.outbox_rows()) == 3
        facts = (await store.source_facts())[source.id]
        assert facts.last_item_title == "Episode 1" and facts.last_delivered_at is None


async def held_store(tmp_path: Path, n: int) -> tuple[SqliteStorage, int]:
    store = await store_with_events(tmp_path / "s.db", n, [(Platform.DISCORD, "chan-1")])
    (route,) = await store.list_routes()
    rows = await store.claim_outbox("me", NOW, NOW + timedelta(minutes=1), budgets={Platform.DISCORD: 1},
                                    per_destination=n)
    await store.record_deliveries("me", [DeliveryResult(r.id, DeliveryOutcome.HELD, NOW) for r in rows])
    return store, route.id


async def test_held_rows_leave_the_queue_and_go_out_in_one_digest_once(tmp_path: Path) -> None:
    store, route_id = await held_store(tmp_path, 3)
    try:
        assert {r.status for r in await store.outbox_rows()} == {"held"}
        assert await store.count_unsent() == {}  # they block nothing
        assert await store.held_counts() == {route_id: 3}
        end = (NOW + timedelta(days=1)).replace(hour=0, minute=0)  # the next boundary: after it was held
        digest = await store.build_digest(route_id, DigestPeriod.DAILY, end, "Daily digest", NOW)
        assert digest is not None and len(digest.payload["event_ids"]) == 3
        assert await store.build_digest(route_id, DigestPeriod.DAILY, end, "Daily digest", NOW) is None
        statuses = [r.status for r in await store.outbox_rows()]
        assert statuses == ["digested"] * 3 + ["pending"]
        facts = (await store.route_facts(NOW))[route_id]
        assert (facts.held, facts.queued) == (0, 1)
    finally:
        await store.close()


async def test_switching_the_digest_off_puts_held_rows_back_and_removing_the_route_fails_them(tmp_path: Path) -> None:
    store, route_id = await held_store(tmp_path, 2)
    try:
        await store.put_route(RouteSeed(Platform.DISCORD, "chan-1", ALL_KINDS), NOW)
        assert [r.status for r in await store.outbox_rows()] == ["pending", "pending"]
        rows = await store.claim_outbox("me", NOW, NOW + timedelta(minutes=1), budgets={Platform.DISCORD: 1},
                                        per_destination=2)
        await store.record_deliveries("me", [DeliveryResult(r.id, DeliveryOutcome.HELD, NOW) for r in rows])
        await store.remove_route(Platform.DISCORD, "chan-1")
        assert [(r.status, r.last_error) for r in await store.outbox_rows()] == [("failed", "route removed")] * 2
    finally:
        await store.close()


async def test_route_tallies_count_todays_posts_but_not_alerts(tmp_path: Path) -> None:
    store = await store_with_events(tmp_path / "s.db", 3, [(Platform.DISCORD, "chan-1")])
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
    finally:
        await store.close()


async def test_items_mentioning_is_plain_text_not_a_pattern(tmp_path: Path) -> None:
    async with await SqliteStorage.open(tmp_path / "s.db") as store:
        await load_catalog(store)
        found = await store.items_mentioning(["root cause"])
        assert found and all("root cause" in (i.item.title + i.item.summary).lower() for i in found)
        assert await store.items_mentioning(["%"]) == [] or all(
            "%" in i.item.title + i.item.summary for i in await store.items_mentioning(["%"]))
        assert (await store.feed_items("podcast", 1))[0].kind is ContentKind.EPISODE
