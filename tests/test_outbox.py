"""Delivery: at-least-once, in order, never twice when the platform can tell."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from bot.clock import FrozenClock
from bot.errors import DeliveryError
from bot.models import Platform
from bot.outbox import DeliveryPolicy, Outbox
from bot.storage import SqliteStorage
from tests.fake_chat import RecordingAdapter
from tests.backends import Target
from tests.spine import NOW, store_with_events

DISCORD = (Platform.DISCORD, "chan-1")


async def test_each_event_is_delivered_once_in_publication_order(db: Target) -> None:
    store = await store_with_events(db, 3, [DISCORD, (Platform.SLACK, "C1")])
    try:
        discord, slack = RecordingAdapter(Platform.DISCORD), RecordingAdapter(Platform.SLACK)
        outbox = Outbox(store, {Platform.DISCORD: discord, Platform.SLACK: slack}, clock=FrozenClock(NOW))
        report = await outbox.dispatch_once()
        assert report.sent == 6
        assert [a.event.title for a in discord.sent] == ["Episode 100", "Episode 101", "Episode 102"]
        assert [a.event.title for a in slack.sent] == ["Episode 100", "Episode 101", "Episode 102"]
        again = await outbox.dispatch_once()
        assert again.sent == 0 and len(discord.sent) == 3
        rows = await store.outbox_rows()
        assert {r.status for r in rows} == {"sent"} and all(r.message_id for r in rows)
    finally:
        await store.close()


async def test_an_adapter_that_fails_three_times_then_succeeds_delivers_once(db: Target) -> None:
    store = await store_with_events(db, 1, [DISCORD])
    try:
        clock = FrozenClock(NOW)
        adapter = RecordingAdapter()
        adapter.failures = [DeliveryError("HTTP 502"), DeliveryError("timeout"),
                            DeliveryError("rate limited", retry_after=30)]
        outbox = Outbox(store, {Platform.DISCORD: adapter}, clock=clock,
                        policy=DeliveryPolicy(retry_base_s=1, retry_cap_s=60))
        delays = []
        for _ in range(3):
            assert (await outbox.dispatch_once()).retried == 1
            (row,) = await store.outbox_rows()
            delays.append((row.next_attempt_at - clock()).total_seconds())
            assert (await outbox.dispatch_once()).sent == 0  # not due yet: no hammering
            clock.advance(seconds=delays[-1])
        assert delays == [1, 2, 30]  # exponential, and the platform's Retry-After is exactly it
        assert (await outbox.dispatch_once()).sent == 1
        assert adapter.attempts == 4 and len(adapter.sent) == 1
        (row,) = await store.outbox_rows()
        assert row.status == "sent" and row.attempts == 4
    finally:
        await store.close()


async def test_an_adapter_down_all_along_loses_nothing(db: Target) -> None:
    store = await store_with_events(db, 3, [DISCORD, (Platform.SLACK, "C1")])
    try:
        down = RecordingAdapter(Platform.DISCORD)
        down.healthy = False
        clock = FrozenClock(NOW)
        # Slack has no adapter at all in this run (no token set).
        outbox = Outbox(store, {Platform.DISCORD: down}, clock=clock)
        for _ in range(5):
            report = await outbox.dispatch_once()
            assert report.sent == 0 and report.waiting == 6
            clock.advance(hours=1)
        assert down.attempts == 0
        assert {r.status for r in await store.outbox_rows()} == {"pending"}
        down.healthy = True
        assert (await outbox.dispatch_once()).sent == 3
        assert len(await store.outbox_rows("pending")) == 3  # slack's, still waiting
    finally:
        await store.close()


async def test_a_failure_holds_back_later_rows_of_that_channel_only(db: Target) -> None:
    store = await store_with_events(db, 2, [DISCORD, (Platform.DISCORD, "chan-2")])
    try:
        adapter = RecordingAdapter()
        adapter.failures = [DeliveryError("HTTP 500")]
        outbox = Outbox(store, {Platform.DISCORD: adapter}, clock=FrozenClock(NOW))
        report = await outbox.dispatch_once()
        # chan-1's first row failed, so its second waits (order); chan-2 got both.
        assert report.retried == 1 and report.sent == 2
        assert [(a.destination.id, a.event.title) for a in adapter.sent] == [
            ("chan-2", "Episode 100"), ("chan-2", "Episode 101")]
    finally:
        await store.close()


async def test_a_permanent_error_breaks_the_route_and_stops_retrying(db: Target) -> None:
    store = await store_with_events(db, 2, [DISCORD])
    try:
        adapter = RecordingAdapter()
        adapter.failures = [DeliveryError("missing permission in channel chan-1", permanent=True)]
        outbox = Outbox(store, {Platform.DISCORD: adapter}, clock=FrozenClock(NOW))
        await outbox.dispatch_once()
        await outbox.dispatch_once()
        (route,) = await store.list_routes()
        assert route.broken_reason == "missing permission in channel chan-1"
        assert [r.status for r in await store.outbox_rows()] == ["failed", "failed"]
        assert adapter.attempts == 1
    finally:
        await store.close()


CRASHING_RUN = textwrap.dedent("""
    import asyncio, os, sys
    sys.path.insert(0, {root!r})
    from bot.clock import FrozenClock
    from bot.models import Platform
    from bot.outbox import DeliveryPolicy, Outbox
    from bot.storage import SqliteStorage
    from tests.fake_chat import RecordingAdapter
    from tests.spine import NOW

    class DiesAfterPosting(RecordingAdapter):
        async def deliver(self, announcement):
            await super().deliver(announcement)  # the platform accepted it...
            os._exit(137)                         # ...and the process died before recording it

    async def main():
        store = await SqliteStorage.open({db!r})
        adapter = DiesAfterPosting(Platform.DISCORD, log_path=__import__("pathlib").Path({log!r}))
        await Outbox(store, {{Platform.DISCORD: adapter}}, clock=FrozenClock(NOW)).dispatch_once()

    asyncio.run(main())
""")


async def _crash_mid_delivery(tmp_path: Path) -> tuple[Path, Path]:
    db, log = tmp_path / "s.db", tmp_path / "platform.jsonl"
    store = await store_with_events(db, 2, [DISCORD])
    await store.close()
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", CRASHING_RUN.format(root=root, db=str(db), log=str(log))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 137, proc.stderr
    return db, log


async def test_killed_between_sent_and_recorded_is_not_posted_twice(tmp_path: Path) -> None:
    db, log = await _crash_mid_delivery(tmp_path)
    async with await SqliteStorage.open(db) as store:
        # Both rows were claimed (one claim per destination batch); the dead
        # process had posted the first only.
        assert [r.status for r in await store.outbox_rows()] == ["sending", "sending"]
        assert await store.expire_outbox_leases() == 2
        adapter = RecordingAdapter(Platform.DISCORD, log_path=log)
        report = await Outbox(store, {Platform.DISCORD: adapter}, clock=FrozenClock(NOW)).dispatch_once()
        assert report.sent == 2
        # Asked about the first (found) and the second (not there: posted).
        assert adapter.lookups == 2
        assert [m["title"] for m in adapter.platform_log()] == ["Episode 100", "Episode 101"]
        rows = await store.outbox_rows()
        assert rows[0].message_id.startswith("found-") and {r.status for r in rows} == {"sent"}


async def test_killed_mid_delivery_on_a_platform_that_cannot_tell_resends_once(tmp_path: Path) -> None:
    db, log = await _crash_mid_delivery(tmp_path)
    async with await SqliteStorage.open(db) as store:
        await store.expire_outbox_leases()
        adapter = RecordingAdapter(Platform.DISCORD, log_path=log, can_tell=False)
        outbox = Outbox(store, {Platform.DISCORD: adapter}, clock=FrozenClock(NOW))
        await outbox.dispatch_once()
        await outbox.dispatch_once()
        # At-least-once: the uncertain one went out again, exactly once; nothing lost.
        assert [m["title"] for m in adapter.platform_log()] == ["Episode 100", "Episode 100", "Episode 101"]
        assert {r.status for r in await store.outbox_rows()} == {"sent"}


async def test_a_route_that_breaks_tells_the_moderators_channel_once(db: Target) -> None:
    from bot.models import EventKind

    store = await store_with_events(db, 2, [DISCORD])
    try:
        await store.upsert_route(Platform.SLACK, "mods", frozenset({EventKind.ALERT}), None, NOW)
        discord, slack = RecordingAdapter(Platform.DISCORD), RecordingAdapter(Platform.SLACK)
        discord.failures = [DeliveryError("missing permission in channel chan-1", permanent=True)]
        outbox = Outbox(store, {Platform.DISCORD: discord, Platform.SLACK: slack}, clock=FrozenClock(NOW))
        await outbox.dispatch_once()
        await outbox.dispatch_once()
        (alert,) = slack.sent
        assert alert.event.kind is EventKind.ALERT
        assert alert.event.title == "Announcements to discord chan-1 stopped: missing permission in channel chan-1"
        assert discord.attempts == 1  # the broken channel is not tried again
    finally:
        await store.close()
