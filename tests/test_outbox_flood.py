"""Flood control: a route's pace, daily cap and digest, decided per row by the
pure ``decide_flood`` on an injected clock, and kept by the real outbox on a
real database (SQLite and PostgreSQL, tests/backends.py): paced and capped rows wait at the head of their own
channel's queue (no other channel waits, nothing overtakes them, nothing is
lost); digest rows are held, then posted once as one digest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.clock import FrozenClock
from bot.models import DigestPeriod, Event, EventKind, EventPurpose, Platform, Route
from bot.outbox import Outbox
from bot.outbox.flood import Verdict, decide_flood, period_end
from bot.storage import RouteSeed, Storage
from bot.storage.records import RouteTally
from tests.backends import Target
from tests.fake_chat import RecordingAdapter
from tests.spine import ALL_KINDS, NOW, store_with_events

PACED = (Platform.DISCORD, "paced")
FREE = (Platform.DISCORD, "free")


def route(**kw: object) -> Route:
    return Route(1, Platform.DISCORD, "c", ALL_KINDS, **kw)  # type: ignore[arg-type]


def event(kind: EventKind = EventKind.EPISODE, purpose: EventPurpose = EventPurpose.ANNOUNCE) -> Event:
    return Event(1, kind, "t", None, NOW, None, {}, purpose)


# -- the rules, pure ------------------------------------------------------------------

def test_pace_waits_from_the_last_post() -> None:
    paced = route(pace_s=30)
    assert decide_flood(paced, RouteTally(0, None), event(), now=NOW).verdict is Verdict.SEND
    wait = decide_flood(paced, RouteTally(1, NOW - timedelta(seconds=10)), event(), now=NOW)
    assert (wait.verdict, wait.until) == (Verdict.WAIT, NOW + timedelta(seconds=20))
    assert decide_flood(paced, RouteTally(1, NOW - timedelta(seconds=30)), event(), now=NOW).verdict is Verdict.SEND


def test_a_reached_cap_waits_for_the_next_utc_day() -> None:
    capped = route(daily_cap=2)
    assert decide_flood(capped, RouteTally(1, None), event(), now=NOW).verdict is Verdict.SEND
    wait = decide_flood(capped, RouteTally(2, None), event(), now=NOW)
    assert (wait.verdict, wait.until) == (Verdict.WAIT, datetime(2026, 6, 21, tzinfo=timezone.utc))
    assert wait.reason == "daily cap of 2 reached"


def test_a_digest_route_holds_and_a_capped_digest_route_holds_what_is_over_the_cap() -> None:
    assert decide_flood(route(digest=DigestPeriod.DAILY), RouteTally(0, None), event(), now=NOW).verdict \
        is Verdict.HOLD
    both = route(digest=DigestPeriod.DAILY, daily_cap=1)
    assert decide_flood(both, RouteTally(0, None), event(), now=NOW).verdict is Verdict.SEND
    assert decide_flood(both, RouteTally(1, None), event(), now=NOW).verdict is Verdict.HOLD


def test_alerts_and_tests_are_never_held_back_and_a_digest_is_only_paced() -> None:
    strict = route(pace_s=3600, daily_cap=0, digest=DigestPeriod.WEEKLY)
    busy = RouteTally(99, NOW)
    assert decide_flood(strict, busy, event(EventKind.ALERT), now=NOW).verdict is Verdict.SEND
    assert decide_flood(strict, busy, event(purpose=EventPurpose.TEST), now=NOW).verdict is Verdict.SEND
    digest = decide_flood(strict, busy, event(EventKind.DIGEST, EventPurpose.DIGEST), now=NOW)
    assert (digest.verdict, digest.until) == (Verdict.WAIT, NOW + timedelta(hours=1))


def test_digest_periods_end_at_utc_midnight_and_monday() -> None:
    saturday = datetime(2026, 6, 20, 12, tzinfo=timezone.utc)
    assert period_end(DigestPeriod.DAILY, saturday) == datetime(2026, 6, 20, tzinfo=timezone.utc)
    assert period_end(DigestPeriod.WEEKLY, saturday) == datetime(2026, 6, 15, tzinfo=timezone.utc)


# -- the outbox keeps them ----------------------------------------------------------------

async def flooded(db: Target, n: int, **settings: object) -> tuple[Storage, RecordingAdapter, Outbox, FrozenClock]:
    store = await store_with_events(db, n, [PACED, FREE])
    await store.put_route(RouteSeed(*PACED, ALL_KINDS, **settings), NOW)  # type: ignore[arg-type]
    adapter = RecordingAdapter()
    clock = FrozenClock(NOW)
    return store, adapter, Outbox(store, {Platform.DISCORD: adapter}, clock=clock), clock


def sent_to(adapter: RecordingAdapter, channel: str) -> list[str]:
    return [a.event.title for a in adapter.sent if a.destination.id == channel]


async def test_a_paced_route_waits_and_no_other_channel_does(db: Target) -> None:
    store, adapter, outbox, clock = await flooded(db, 3, pace_s=30)
    try:
        report = await outbox.dispatch_once()
        assert report.paced == 1
        assert sent_to(adapter, "free") == ["Episode 100", "Episode 101", "Episode 102"]
        assert sent_to(adapter, "paced") == ["Episode 100"]
        clock.advance(seconds=29)
        assert (await outbox.dispatch_once()).sent == 0  # not yet
        clock.advance(seconds=1)
        await outbox.dispatch_once()
        clock.advance(seconds=30)
        await outbox.dispatch_once()
        assert sent_to(adapter, "paced") == ["Episode 100", "Episode 101", "Episode 102"]  # in order
        assert {r.status for r in await store.outbox_rows()} == {"sent"}
    finally:
        await store.close()


async def test_over_the_daily_cap_waits_for_tomorrow_and_status_sees_it(db: Target) -> None:
    store, adapter, outbox, clock = await flooded(db, 3, daily_cap=2)
    try:
        await outbox.dispatch_once()
        assert sent_to(adapter, "paced") == ["Episode 100", "Episode 101"]
        (paced,) = [r for r in await store.list_routes() if r.channel == "paced"]
        facts = (await store.route_facts(clock()))[paced.id]
        assert (facts.waiting, facts.next_attempt_at) == (1, datetime(2026, 6, 21, tzinfo=timezone.utc))
        clock.advance(hours=12)  # 00:00 UTC
        await outbox.dispatch_once()
        assert sent_to(adapter, "paced") == ["Episode 100", "Episode 101", "Episode 102"]
    finally:
        await store.close()


async def test_a_digest_route_posts_one_digest_once_and_alerts_at_once(db: Target) -> None:
    store, adapter, outbox, clock = await flooded(db, 3, digest=DigestPeriod.DAILY)
    try:
        report = await outbox.dispatch_once()
        assert (report.held, sent_to(adapter, "paced")) == (3, [])
        await store.queue_alert("Feed “podcast” has failed 5 times in a row", clock())
        await outbox.dispatch_once()
        assert sent_to(adapter, "paced") == ["Feed “podcast” has failed 5 times in a row"]  # not held
        clock.advance(hours=12)
        assert (await outbox.dispatch_once()).digests == 1
        digest = adapter.sent[-1]
        assert digest.event.kind is EventKind.DIGEST and digest.destination.id == "paced"
        assert [e.title for e, _ in digest.entries] == ["Episode 100", "Episode 101", "Episode 102"]
        assert all(item is not None for _, item in digest.entries)
        assert (await outbox.dispatch_once()).sent == 0  # once
        second = Outbox(store, {Platform.DISCORD: adapter}, clock=clock)  # another instance, same period
        assert (await second.dispatch_once()).digests == 0
        statuses = sorted(r.status for r in await store.outbox_rows() if r.channel == "paced")
        assert statuses == ["digested"] * 3 + ["sent", "sent"]
    finally:
        await store.close()


async def test_a_capped_digest_route_posts_up_to_the_cap_then_digests_the_rest(db: Target) -> None:
    store, adapter, outbox, clock = await flooded(db, 3, daily_cap=1, digest=DigestPeriod.DAILY)
    try:
        await outbox.dispatch_once()
        assert sent_to(adapter, "paced") == ["Episode 100"]
        clock.advance(hours=12)
        await outbox.dispatch_once()
        assert [e.title for e, _ in adapter.sent[-1].entries] == ["Episode 101", "Episode 102"]
    finally:
        await store.close()


async def test_a_row_that_may_be_posted_already_is_looked_up_not_held_for_the_digest(db: Target) -> None:
    store = await store_with_events(db, 2, [PACED])
    try:
        # A process claimed the first row, posted it, and died.
        rows = await store.claim_outbox("dead", NOW, NOW + timedelta(minutes=1), budgets={Platform.DISCORD: 1},
                                        per_destination=1)
        adapter = RecordingAdapter()
        adapter.accepted.append({"key": rows[0].idempotency_key, "title": "Episode 100", "to": "paced"})
        await store.expire_outbox_leases()
        # Meanwhile a moderator made it a digest channel.
        await store.put_route(RouteSeed(*PACED, ALL_KINDS, digest=DigestPeriod.DAILY), NOW)
        clock = FrozenClock(NOW)
        report = await Outbox(store, {Platform.DISCORD: adapter}, clock=clock).dispatch_once()
        assert adapter.lookups == 1 and adapter.sent == []  # found, not posted again, not held
        assert (report.sent, report.held) == (1, 1)
        assert [r.status for r in await store.outbox_rows()] == ["sent", "held"]
    finally:
        await store.close()
