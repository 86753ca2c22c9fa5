"""Delivery under faults, in process: lookups that fail, posts that may have
gone through, order across rounds and restarts, one platform down while the
other delivers, prompt recovery, a database that refuses writes, and two
processes sharing one database. (tests/chaos/ does the same with real
processes, real SDKs and SIGKILL.)"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Sequence

import pytest

from bot.clock import FrozenClock
from bot.errors import DeliveryError, StorageError
from bot.faults import StorageFaults
from bot.models import Platform
from bot.outbox import DeliveryPolicy, Outbox
from bot.outbox.gate import PlatformGate
from bot.storage import DeliveryResult, Storage
from tests.fake_chat import RecordingAdapter
from tests.backends import Target, open_target, storage_class
from tests.spine import NOW, store_with_events

DISCORD = (Platform.DISCORD, "chan-1")
SLACK = (Platform.SLACK, "C1")
POLICY = DeliveryPolicy(concurrency=8, retry_base_s=5, retry_cap_s=3600, probe_every_s=15, lease_s=60)


def outbox(store: Storage, *adapters: RecordingAdapter, clock: FrozenClock, policy: DeliveryPolicy = POLICY,
           owner: str | None = None) -> Outbox:
    return Outbox(store, {a.platform: a for a in adapters}, clock=clock, policy=policy, owner=owner)


async def crashed_mid_delivery(store: Storage, clock: FrozenClock) -> None:
    """A process claimed every row and died: the rows are taken over with
    outcome_unknown once the leases are expired (as at the next start)."""
    await store.claim_outbox("dead-process", clock(), clock() + timedelta(seconds=60),
                             budgets={Platform.DISCORD: 100, Platform.SLACK: 100}, per_destination=100)
    await store.expire_outbox_leases()


# -- never re-posted blind ----------------------------------------------------


async def test_a_failing_lookup_is_retried_and_never_becomes_a_blind_post(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        clock = FrozenClock(NOW)
        chat = RecordingAdapter()
        chat.accepted.append({"key": (await store.outbox_rows())[0].idempotency_key, "title": "Episode 100"})
        await crashed_mid_delivery(store, clock)
        chat.lookup_failures = [DeliveryError("discord answered 503", maybe_delivered=True)] * 3
        box = outbox(store, chat, clock=clock)
        for _ in range(3):
            report = await box.dispatch_once()
            assert report.retried == 1 and chat.attempts == 0  # asked, got no answer, posted nothing
            (row,) = await store.outbox_rows()
            assert row.status == "pending" and row.outcome_unknown  # still unknown: ask again next time
            clock.advance(seconds=(row.next_attempt_at - clock()).total_seconds())
        assert (await box.dispatch_once()).sent == 1
        assert chat.lookups == 4 and chat.attempts == 0  # found on the 4th lookup, never re-posted
        assert len(chat.platform_log()) == 1
    finally:
        await store.close()


async def test_a_post_that_may_have_gone_through_is_looked_up_before_the_next_attempt(db: Target) -> None:
    store = await store_with_events(db, 2, [DISCORD])
    try:
        clock = FrozenClock(NOW)
        chat = RecordingAdapter()
        # Discord takes the post, then the answer is a 503: we can't know.
        chat.failures = [DeliveryError("discord answered 503", maybe_delivered=True)]
        chat.accept_anyway = [True]
        box = outbox(store, chat, clock=clock)
        assert (await box.dispatch_once()).retried == 1
        first, second = await store.outbox_rows()
        assert first.outcome_unknown and second.status == "pending" and second.attempts == 0
        clock.advance(seconds=5)
        assert (await box.dispatch_once()).sent == 2
        assert chat.lookups == 1  # the second one was never attempted: no lookup needed
        assert [r["title"] for r in chat.platform_log()] == ["Episode 100", "Episode 101"]
    finally:
        await store.close()


async def test_a_refused_post_is_not_looked_up(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        clock = FrozenClock(NOW)
        chat = RecordingAdapter()
        chat.failures = [DeliveryError("rate limited", retry_after=2)]
        box = outbox(store, chat, clock=clock)
        await box.dispatch_once()
        (row,) = await store.outbox_rows()
        assert not row.outcome_unknown and row.next_attempt_at == NOW + timedelta(seconds=2)
        clock.advance(seconds=2)
        assert (await box.dispatch_once()).sent == 1 and chat.lookups == 0
    finally:
        await store.close()


async def test_after_a_takeover_only_what_the_dead_process_posted_is_looked_up(db: Target) -> None:
    """It posted 2 of 5 and died: lookups find those two, the third is not
    there, so the last two (never attempted, by order) need no lookup."""
    store = await store_with_events(db, 5, [DISCORD])
    try:
        clock = FrozenClock(NOW)
        rows = await store.outbox_rows()
        chat = RecordingAdapter()
        for row in rows[:2]:
            chat.accepted.append({"key": row.idempotency_key, "title": "posted before the crash"})
        await crashed_mid_delivery(store, clock)
        assert (await outbox(store, chat, clock=clock).dispatch_once()).sent == 5
        assert chat.lookups == 3 and chat.attempts == 3
        assert len(chat.platform_log()) == 5
    finally:
        await store.close()


# -- order ----------------------------------------------------------------------


async def test_a_channel_keeps_its_order_across_rounds_restarts_and_new_rows(db: Target) -> None:
    store = await store_with_events(db, 3, [DISCORD, (Platform.DISCORD, "chan-2")])
    try:
        clock = FrozenClock(NOW)
        chat = RecordingAdapter()
        chat.failing["chan-1"] = DeliveryError("timeout")  # chan-1's first row, over and over
        box = outbox(store, chat, clock=clock)
        for _ in range(4):
            await box.dispatch_once()
            clock.advance(seconds=1)  # later rounds come before its retry is due...
            await box.dispatch_once()
            clock.advance(hours=2)  # ...and after it
            box = outbox(store, chat, clock=clock)  # a restart in between
        assert [a.event.title for a in chat.sent if a.destination.id == "chan-1"] == []
        assert chat.attempts == 3 + 4  # chan-2's three, and chan-1's head once per due round only
        del chat.failing["chan-1"]
        await box.dispatch_once()
        got = [a.event.title for a in chat.sent if a.destination.id == "chan-1"]
        assert got == ["Episode 100", "Episode 101", "Episode 102"]
        assert [a.event.title for a in chat.sent if a.destination.id == "chan-2"] == got
    finally:
        await store.close()


# -- no head-of-line blocking, prompt recovery -------------------------------------


async def test_a_hanging_platform_does_not_hold_up_the_other(db: Target) -> None:
    store = await store_with_events(db, 5, [DISCORD, SLACK, (Platform.SLACK, "C2")])
    discord, slack = RecordingAdapter(Platform.DISCORD), RecordingAdapter(Platform.SLACK)
    discord.hold = asyncio.Event()  # Discord never answers...
    stop = asyncio.Event()
    box = Outbox(store, {Platform.DISCORD: discord, Platform.SLACK: slack}, clock=FrozenClock(NOW), policy=POLICY)
    task = asyncio.create_task(box.run(stop))
    try:
        await slack.wait_for(lambda: len(slack.sent) == 10)  # ...and Slack delivers everything meanwhile
        assert discord.attempts == 1 and discord.sent == []
        discord.hold.set()
        await discord.wait_for(lambda: len(discord.sent) == 5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await store.close()
    assert [a.event.title for a in discord.sent] == [f"Episode {n}" for n in range(100, 105)]


async def test_an_outage_is_probed_by_one_post_and_its_end_releases_everything_at_once(db: Target) -> None:
    channels = [(Platform.DISCORD, f"chan-{n}") for n in range(12)]
    store = await store_with_events(db, 2, channels)
    try:
        clock = FrozenClock(NOW)
        chat = RecordingAdapter()
        chat.failures = [DeliveryError("discord answered 503", maybe_delivered=False)] * 10_000
        box = outbox(store, chat, clock=clock)
        await box.dispatch_once()
        first_burst = chat.attempts
        assert first_burst == POLICY.concurrency  # then the platform counts as down
        # An hour of outage: one probe at a time, at least every probe_every.
        probes_at = []
        for _ in range(3600 // 5):
            before = chat.attempts
            await box.dispatch_once()
            if chat.attempts > before:
                assert chat.attempts == before + 1
                probes_at.append(clock())
            clock.advance(seconds=5)
        gaps = [(b - a).total_seconds() for a, b in zip(probes_at, probes_at[1:])]
        assert max(gaps) <= POLICY.probe_every_s and len(probes_at) > 200
        # Discord answers again: within one probe interval, every channel's rows go out in order.
        chat.failures = []
        for _ in range(int(POLICY.probe_every_s // 5) + 1):
            clock.advance(seconds=5)
            await box.dispatch_once()
        assert len(chat.sent) == 24
        for _, channel in channels:
            assert [a.event.title for a in chat.sent if a.destination.id == channel] == ["Episode 100", "Episode 101"]
    finally:
        await store.close()


async def test_one_channel_failing_does_not_slow_the_others(db: Target) -> None:
    store = await store_with_events(db, 1, [(Platform.DISCORD, f"chan-{n}") for n in range(4)])
    try:
        chat = RecordingAdapter()
        chat.failures = [DeliveryError("discord answered 500 for channel chan-0")]
        report = await outbox(store, chat, clock=FrozenClock(NOW)).dispatch_once()
        assert report.sent == 3 and report.retried == 1  # one failure is that channel's, not an outage
    finally:
        await store.close()


async def test_a_global_rate_limit_pauses_the_platform_until_retry_after(db: Target) -> None:
    store = await store_with_events(db, 1, [(Platform.DISCORD, f"chan-{n}") for n in range(3)])
    try:
        clock = FrozenClock(NOW)
        chat = RecordingAdapter()
        policy = DeliveryPolicy(concurrency=1, retry_base_s=5, probe_every_s=15)
        chat.failures = [DeliveryError("global rate limit", retry_after=30, whole_platform=True)]
        box = outbox(store, chat, clock=clock, policy=policy)
        await box.dispatch_once()
        assert chat.attempts == 1  # nothing else went while the whole platform is limited
        clock.advance(seconds=29)
        await box.dispatch_once()
        assert chat.attempts == 1
        clock.advance(seconds=1)
        assert (await box.dispatch_once()).sent == 3
    finally:
        await store.close()


def test_the_gate_opens_at_the_first_success_and_probes_no_slower_than_probe_every() -> None:
    gate = PlatformGate(concurrency=4, probe_base_s=1, probe_every_s=15)
    assert gate.budget(NOW) == 4
    gate.failed(NOW)
    assert not gate.down and gate.budget(NOW) == 4  # one failure: maybe just that channel
    gate.failed(NOW)
    assert gate.down and gate.budget(NOW) == 0 and gate.next_change() == NOW + timedelta(seconds=1)
    assert gate.budget(NOW + timedelta(seconds=1)) == 1
    for n in range(10):
        gate.failed(NOW)
    assert gate.next_change() == NOW + timedelta(seconds=15)
    assert gate.succeeded() and gate.budget(NOW) == 4 and not gate.down


# -- storage faults ---------------------------------------------------------------


class Refusing:
    """The database refuses to record results while ``refusing`` (a full
    disk after a successful post). tests/chaos fills a real tmpfs. Mixed
    into either backend's storage class."""

    refusing = False

    async def record_deliveries(self, owner: str, results: Sequence[DeliveryResult]) -> list[int]:
        if self.refusing:
            raise StorageError("storage error while recording deliveries: database or disk is full")
        return await super().record_deliveries(owner, results)  # type: ignore[misc]


async def test_results_the_database_refuses_are_held_and_nothing_is_posted_twice(
    db: Target, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await store_with_events(db, 3, [DISCORD])
    await seeded.close()
    refusing_class = type("RefusingStore", (Refusing, storage_class(db)), {})
    store = await refusing_class.open(db)
    try:
        clock = FrozenClock(NOW)
        chat = RecordingAdapter()
        faults = StorageFaults()
        box = Outbox(store, {Platform.DISCORD: chat}, clock=clock, policy=POLICY, faults=faults)
        store.refusing = True
        assert (await box.dispatch_once()).sent == 3
        for _ in range(5):  # rounds while the disk is full: nothing is sent again
            await box.dispatch_once()
            assert await box.flush() is False
        assert len(chat.platform_log()) == 3 and box.unrecorded == 3 and not faults.writable
        assert {r.status for r in await store.outbox_rows()} == {"sending"}  # still ours, held
        errors = [r for r in caplog.records if r.name == "showbot.storage" and r.levelno == logging.ERROR]
        assert len(errors) == 1 and "database or disk is full" in errors[0].getMessage()
        assert not any(r.exc_info for r in caplog.records)  # no traceback per row
        store.refusing = False
        assert await box.flush() is True and faults.writable
        assert {r.status for r in await store.outbox_rows()} == {"sent"}
        assert len(chat.platform_log()) == 3
    finally:
        await store.close()


def test_storage_faults_log_one_line_a_minute() -> None:
    now = [0.0]
    faults = StorageFaults(monotonic=lambda: now[0])
    logged = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("showbot.storage")
    logger.addHandler(handler)
    try:
        for _ in range(120):
            faults.failed(StorageError("disk full"), "recording deliveries")
            now[0] += 1
        assert len(logged) == 2 and not faults.writable
        faults.succeeded()
        assert faults.writable and "can be written again" in logged[-1]
    finally:
        logger.removeHandler(handler)


# -- two processes on one database ---------------------------------------------------


async def test_two_outboxes_on_one_database_deliver_each_row_once(db: Target) -> None:
    seeded = await store_with_events(db, 10, [DISCORD, (Platform.DISCORD, "chan-2")])
    await seeded.close()
    chat = RecordingAdapter()
    clock = FrozenClock(NOW)
    async with await open_target(db) as a, await open_target(db) as b:
        first = outbox(a, chat, clock=clock, owner="a")
        second = outbox(b, chat, clock=clock, owner="b")
        await asyncio.gather(first.dispatch_once(), second.dispatch_once())
    keys = [r["key"] for r in chat.platform_log()]
    assert len(keys) == 20 and len(set(keys)) == 20


async def test_a_dead_holders_rows_are_taken_over_after_its_lease_and_looked_up(db: Target) -> None:
    store = await store_with_events(db, 2, [DISCORD])
    try:
        clock = FrozenClock(NOW)
        chat = RecordingAdapter()
        claimed = await store.claim_outbox("dead", clock(), clock() + timedelta(seconds=60),
                                           budgets={Platform.DISCORD: 1}, per_destination=10)
        chat.accepted.append({"key": claimed[0].idempotency_key, "title": "posted, then the process died"})
        box = outbox(store, chat, clock=clock, owner="alive")
        assert (await box.dispatch_once()).sent == 0  # its lease still runs
        clock.advance(seconds=61)
        assert (await box.dispatch_once()).sent == 2
        assert chat.lookups == 2 and chat.attempts == 1 and len(chat.platform_log()) == 2
    finally:
        await store.close()
