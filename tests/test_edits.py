"""Edits in place (bot.edits): an announcement already queued or posted is
changed on the platform, behind its post, exactly once in effect, never
posted again -- through 5xx answers, restarts, deleted messages and posts
that were given up. On both storage backends, with the outbox's fake
adapter at the edge (the real adapters: test_edits_adapters.py)."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.clock import FrozenClock
from bot.edits import CHANGE_MERGE, CHANGE_TITLE, AlsoLink, EditSpec, next_edit, parse_edit, edit_payload
from bot.errors import DeliveryError
from bot.intents import AnnouncedEvent, PollIntent, SourceProgress
from bot.models import EventKind, Platform
from bot.outbox import DeliveryPolicy, Outbox
from bot.plan import plan_edit
from bot.presenter import present
from bot.storage import Storage
from tests.backends import Target, open_target
from tests.fake_chat import RecordingAdapter
from tests.spine import NOW, store_with_events

DISCORD = (Platform.DISCORD, "chan-1")
SLACK = (Platform.SLACK, "C1")
POLICY = DeliveryPolicy(concurrency=8, retry_base_s=5, retry_cap_s=3600, probe_every_s=15, lease_s=60)
DAY = 86400.0


def outbox(store: Storage, *adapters: RecordingAdapter, clock: FrozenClock, owner: str | None = None) -> Outbox:
    return Outbox(store, {a.platform: a for a in adapters}, clock=clock, policy=POLICY, owner=owner)


async def announced(store: Storage, now=NOW) -> tuple[AnnouncedEvent, ...]:
    source = await store.get_source("podcast")
    return (await store.load_poll_state(source, now, book_window_s=0, edit_window_s=DAY)).announced


async def queue_edit(store: Storage, anchor: AnnouncedEvent, spec: EditSpec, now=NOW) -> None:
    """Write an edit as a poll's planner would (plan_edit, in a poll's intent)."""
    source = await store.get_source("podcast")
    intent = PollIntent(events=(plan_edit(anchor, spec),))
    await store.write_poll(source, intent, SourceProgress(polled_at=now, next_poll_at=now))


def retitle(anchor: AnnouncedEvent, title: str) -> EditSpec:
    return next_edit(anchor.last_edit, anchor.event_id, CHANGE_TITLE, title=title)


# -- pure -------------------------------------------------------------------------


def test_edits_are_cumulative_and_round_trip_through_their_payload() -> None:
    first = next_edit(None, 7, CHANGE_MERGE, also=AlsoLink("YouTube", "https://yt.example/v1"), merged_item=3)
    second = next_edit(first, 7, CHANGE_TITLE, title="Fixed title")
    again = next_edit(second, 7, CHANGE_MERGE, also=AlsoLink("YouTube", "https://yt.example/v1"))
    assert second.also == first.also and second.title == "Fixed title" and second.merged_items == (3,)
    assert again.also == first.also  # the same link twice is one link
    assert parse_edit(edit_payload(second)) == second
    # Another announcement's edit is not carried over.
    assert next_edit(second, 8, CHANGE_TITLE, title="x").also == ()


# -- delivery -----------------------------------------------------------------------


async def test_an_edit_changes_the_posted_message_and_posts_nothing(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD, SLACK])
    try:
        discord, slack = RecordingAdapter(Platform.DISCORD), RecordingAdapter(Platform.SLACK)
        clock = FrozenClock(NOW)
        box = outbox(store, discord, slack, clock=clock)
        assert (await box.dispatch_once()).sent == 2
        (anchor,) = await announced(store)
        assert {d.destination.platform for d in anchor.deliveries} == {Platform.DISCORD, Platform.SLACK}
        await queue_edit(store, anchor, retitle(anchor, "Episode 100: the real title"))
        report = await box.dispatch_once()
        assert report.sent == 2 and report.failed == 0
        assert len(discord.sent) == 1 and len(slack.sent) == 1  # no second post anywhere
        (edit,) = discord.edited
        assert edit.edit_of == "m1" and edit.event.id == anchor.event_id
        view = present(edit)
        assert view.title == "Episode 100: the real title" and view.edited
        assert view.heading == "New episode" and view.mention is None
        # The message keeps the marker it was posted with.
        assert edit.idempotency_key == discord.sent[0].idempotency_key
        assert slack.edited[0].edit_of == "m1"
        # Delivered once: nothing left to do.
        assert (await box.dispatch_once()).sent == 0 and len(discord.edited) == 1
        (state,) = await announced(store)
        assert state.last_edit is not None and state.last_edit.title == "Episode 100: the real title"
    finally:
        await store.close()


async def test_an_edit_queued_before_its_post_waits_for_it(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        (anchor,) = await announced(store)
        await queue_edit(store, anchor, retitle(anchor, "New title"))
        chat = RecordingAdapter()
        box = outbox(store, chat, clock=FrozenClock(NOW))
        await box.dispatch_once()
        # Post first, then the edit of exactly that message (its id known
        # before the post's result was even written).
        assert len(chat.sent) == 1 and [a.edit_of for a in chat.edited] == ["m1"]
    finally:
        await store.close()


async def test_an_edit_after_a_restart_finds_the_message_by_its_stored_id(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        await outbox(store, RecordingAdapter(), clock=FrozenClock(NOW), owner="first").dispatch_once()
    finally:
        await store.close()
    store = await open_target(db)  # a new process: nothing in memory
    try:
        (anchor,) = await announced(store)
        await queue_edit(store, anchor, retitle(anchor, "After restart"))
        chat = RecordingAdapter()
        await outbox(store, chat, clock=FrozenClock(NOW), owner="second").dispatch_once()
        assert chat.sent == [] and [a.edit_of for a in chat.edited] == ["m1"]
    finally:
        await store.close()


async def test_a_5xx_during_an_edit_is_retried_and_never_becomes_a_post(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        chat = RecordingAdapter()
        clock = FrozenClock(NOW)
        box = outbox(store, chat, clock=clock)
        await box.dispatch_once()
        (anchor,) = await announced(store)
        await queue_edit(store, anchor, retitle(anchor, "Retried"))
        chat.edit_failures = [DeliveryError("discord answered 503", maybe_delivered=True)] * 2
        for _ in range(2):
            report = await box.dispatch_once()
            assert report.retried == 1 and chat.edited == []
            clock.advance(seconds=3600)
        report = await box.dispatch_once()
        assert report.sent == 1 and len(chat.edited) == 1 and len(chat.sent) == 1
        assert chat.lookups == 0  # idempotent: no history lookup before an edit
        rows = await store.outbox_rows()
        assert [r.status for r in rows] == ["sent", "sent"] and rows[1].attempts == 3
    finally:
        await store.close()


async def test_an_edit_of_a_deleted_message_is_given_up_with_a_log_line(db: Target, caplog) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        chat = RecordingAdapter()
        box = outbox(store, chat, clock=FrozenClock(NOW))
        await box.dispatch_once()
        (anchor,) = await announced(store)
        await queue_edit(store, anchor, retitle(anchor, "Too late"))
        chat.deleted.add("m1")
        with caplog.at_level(logging.WARNING, logger="showbot.outbox"):
            report = await box.dispatch_once()
        assert report.failed == 1 and len(chat.sent) == 1 and chat.edited == []
        assert any("is gone" in r.getMessage() and "nothing posted" in r.getMessage() for r in caplog.records)
        edit_row = (await store.outbox_rows())[1]
        assert edit_row.status == "failed" and "message gone" in (edit_row.last_error or "")
        assert not any(r.broken for r in await store.list_routes())  # the channel is fine
        # Later announcements of that channel still go out.
        assert (await box.dispatch_once()).failed == 0
    finally:
        await store.close()


async def test_an_edit_of_an_announcement_that_was_given_up_posts_nothing(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        (anchor,) = await announced(store)
        await queue_edit(store, anchor, retitle(anchor, "Never shown"))
        chat = RecordingAdapter()
        chat.failing["chan-1"] = DeliveryError("missing permission", permanent=True)
        await outbox(store, chat, clock=FrozenClock(NOW)).dispatch_once()
        rows = await store.outbox_rows()
        # The post failed and broke the route; the edit is given up with it.
        assert [r.status for r in rows if r.event_id == anchor.event_id] == ["failed"]
        assert chat.edit_attempts == [] and chat.sent == []
        assert all(r.status == "failed" for r in rows if r.event_id != anchor.event_id and r.platform is Platform.DISCORD)
    finally:
        await store.close()


async def test_edits_are_not_posts_for_flood_control(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        chat = RecordingAdapter()
        clock = FrozenClock(NOW)
        box = outbox(store, chat, clock=clock)
        await box.dispatch_once()
        route = (await store.list_routes())[0]
        before = (await store.route_tallies([route.id], NOW - timedelta(days=1)))[route.id]
        (anchor,) = await announced(store)
        await queue_edit(store, anchor, retitle(anchor, "One"))
        await box.dispatch_once()
        after = (await store.route_tallies([route.id], NOW - timedelta(days=1)))[route.id]
        assert after == before and len(chat.edited) == 1
    finally:
        await store.close()


# -- storage ------------------------------------------------------------------------------


async def test_an_item_may_be_edited_any_number_of_times_and_the_newest_edit_is_loaded(db: Target) -> None:
    store = await store_with_events(db, 2, [DISCORD])
    try:
        first, second = await announced(store)
        assert first.kind is EventKind.EPISODE and first.title == "Episode 100" and first.source == "podcast"
        assert first.url == "https://example.com/e/100" and first.last_edit is None
        for title in ("A", "B", "C"):
            (anchor, _) = await announced(store)
            await queue_edit(store, anchor, retitle(anchor, title))
        anchor, other = await announced(store)
        assert anchor.last_edit is not None and anchor.last_edit.title == "C" and other.last_edit is None
        edits = [e for e in (await store.events_by_id(list(range(1, 50)))).values() if e.kind is EventKind.EDIT]
        assert len(edits) == 3 and all(e.item_id == anchor.item_id for e in edits)
        # Outside the window (by when it was announced): nothing to edit.
        assert await announced(store, NOW + timedelta(days=2)) == ()
        source = await store.get_source("podcast")
        assert (await store.load_poll_state(source, NOW, book_window_s=0)).announced == ()
    finally:
        await store.close()


async def test_killed_during_an_edit_edits_once_after_the_restart_and_posts_nothing(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        chat = RecordingAdapter()
        clock = FrozenClock(NOW)
        await outbox(store, chat, clock=clock, owner="first").dispatch_once()
        (anchor,) = await announced(store)
        await queue_edit(store, anchor, retitle(anchor, "Edited once"))
        # A process claimed the edit and died mid-request (SIGKILL): at the
        # next start its leases are expired and the row is taken over.
        await store.claim_outbox("dead-process", clock(), clock() + timedelta(seconds=60),
                                 budgets={Platform.DISCORD: 10}, per_destination=10)
        await store.expire_outbox_leases()
        (taken,) = [r for r in await store.outbox_rows() if r.status == "sending"]
        report = await outbox(store, chat, clock=clock, owner="second").dispatch_once()
        assert report.sent == 1 and chat.lookups == 0  # idempotent: edited again, never looked up or posted
        assert len(chat.sent) == 1 and [a.edit_of for a in chat.edited] == ["m1"]
        assert (await store.outbox_rows())[-1].status == "sent" and taken.event_id != anchor.event_id
    finally:
        await store.close()
