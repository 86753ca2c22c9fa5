"""Delivery of queued announcements: at-least-once, never twice when a
platform can tell us it already has the message.

Each outbox row moves pending -> sending -> sent (or back to pending with a
backoff, or failed when the platform says retrying cannot help). "sending"
is committed BEFORE the adapter is called, so a process killed mid-delivery
leaves evidence: at the next start ``Store.recover_outbox`` turns those rows
back into pending with ``outcome_unknown`` set, and before re-sending one the
dispatcher asks the adapter whether the message is already there
(``find_delivered``: a Discord nonce / history marker, Slack message
metadata). Where a platform can't tell (the console), the announcement is
sent again: a duplicate in that narrow window is the price of never losing one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping

from bot.backoff import backoff_s
from bot.clock import Clock
from bot.errors import DeliveryError, StorageError
from bot.models import Announcement, Delivered, Platform, Route
from bot.ports import DM_CHANNEL_PREFIX, ChatAdapter
from bot.storage import OutboxRow, Store
from bot.storage.store import direct_route

log = logging.getLogger("showbot.outbox")


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0  # rows whose adapter is absent or down


class Outbox:
    def __init__(
        self,
        store: Store,
        adapters: Mapping[Platform, ChatAdapter],
        *,
        clock: Clock,
        base_backoff_s: float = 5.0,
        max_backoff_s: float = 3600.0,
        batch: int = 100,
    ) -> None:
        self._store = store
        self._adapters = dict(adapters)
        self._clock = clock
        self._base = base_backoff_s
        self._cap = max_backoff_s
        self._batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was queued: deliver now rather than at the next tick."""
        self._wake.set()

    async def dispatch_once(self, stop: asyncio.Event | None = None) -> DispatchReport:
        """Try every due row once, in queue order. A channel whose row failed
        gets no later row this round, so announcements keep publication order.
        When ``stop`` is set, the delivery in flight finishes and no new one starts."""
        now = self._clock()
        rows = await self._store.due_outbox(now, self._batch)
        routes = {r.id: r for r in await self._store.list_routes()}
        blocked: set[tuple[Platform, str]] = set()
        sent = retried = failed = waiting = 0
        for row in rows:
            if stop is not None and stop.is_set():
                break
            channel = (row.platform, row.channel)
            adapter = self._adapters.get(row.platform)
            if channel in blocked or adapter is None or not adapter.healthy:
                waiting += 1
                blocked.add(channel)
                continue
            if row.channel.startswith(DM_CHANNEL_PREFIX):
                route = direct_route(row.platform, row.channel[len(DM_CHANNEL_PREFIX):])
            else:
                route = routes.get(row.route_id) if row.route_id is not None else None
            if route is None or route.broken:
                # The route was removed or broke after this row was queued.
                await self._store.mark_failed(row.id, "route removed or broken")
                failed += 1
                continue
            outcome = await self._deliver(adapter, row, route)
            if outcome == "sent":
                sent += 1
            elif outcome == "waiting":
                waiting += 1
                blocked.add(channel)
            elif outcome == "retry":
                retried += 1
                blocked.add(channel)
            else:
                failed += 1
                # The route may be broken now: its later rows fail without an attempt.
                routes = {r.id: r for r in await self._store.list_routes()}
        return DispatchReport(sent, retried, failed, waiting)

    async def _reply_target(self, row: OutboxRow, anchor_event_id: int) -> tuple[bool, str | None]:
        """For a follow-up: (ready, message id to reply under). Not ready while
        the anchor's own row in this channel is still on its way, so the
        reply never lands before the announcement it belongs to."""
        anchor = await self._store.find_outbox_row(anchor_event_id, row.platform, row.channel)
        if anchor is None or anchor.status == "failed":
            return True, None  # nothing to reply under: post it on its own
        if anchor.status == "sent":
            return True, anchor.message_id
        until = max(anchor.next_attempt_at, self._clock() + timedelta(seconds=self._base))
        await self._store.postpone(row.id, until)
        return False, None

    async def _deliver(self, adapter: ChatAdapter, row: OutboxRow, route: Route) -> str:
        event = await self._store.get_event(row.event_id)
        reply_to = None
        anchor_id = event.payload.get("follow_up_of")
        if anchor_id is not None:
            ready, reply_to = await self._reply_target(row, int(anchor_id))
            if not ready:
                return "waiting"
        item = await self._store.find_item(event.item_id) if event.item_id is not None else None
        announcement = Announcement(
            outbox_id=row.id, idempotency_key=row.idempotency_key, event=event, route=route,
            item=item, attempts=row.attempts, outcome_unknown=row.outcome_unknown, reply_to=reply_to,
        )
        try:
            if row.outcome_unknown:
                earlier = await adapter.find_delivered(announcement)
                if earlier is not None:
                    log.info("outbox %d: already delivered before a restart (message %s)",
                             row.id, earlier.message_id)
                    await self._store.mark_sent(row.id, earlier.message_id, self._clock())
                    return "sent"
            await self._store.mark_sending(row.id, self._clock())
            delivered: Delivered = await adapter.deliver(announcement)
        except DeliveryError as exc:
            return await self._on_error(row, route, exc)
        except StorageError:
            raise
        except Exception as exc:  # an adapter bug: log it, retry like a transient error
            log.exception("outbox %d: adapter %s crashed", row.id, row.platform.value)
            return await self._on_error(row, route, DeliveryError(f"{type(exc).__name__}: {exc}"))
        await self._store.mark_sent(row.id, delivered.message_id, self._clock())
        return "sent"

    async def _on_error(self, row: OutboxRow, route: Route, exc: DeliveryError) -> str:
        if exc.permanent and route.id == 0:  # a DM the member can't receive: drop that one only
            await self._store.mark_failed(row.id, str(exc))
            return "failed"
        if exc.permanent:
            if await self._store.mark_route_broken(route.id, str(exc)):
                log.error("route %s %s is broken: %s", route.platform.value, route.channel, exc)
                # Once, when it breaks: the moderators' channel hears about it.
                if await self._store.queue_alert(
                    f"Announcements to {route.platform.value} {route.channel} stopped: {exc}",
                    self._clock(), skip_route=route.id,
                ):
                    self.wake()
            await self._store.mark_failed(row.id, str(exc))
            return "failed"
        delay = backoff_s(row.attempts + 1, self._base, self._cap, exc.retry_after)
        await self._store.mark_retry(row.id, str(exc), self._clock() + timedelta(seconds=delay))
        log.warning("outbox %d to %s %s: %s (retry in %.1fs)", row.id, row.platform.value,
                    row.channel, exc, delay)
        return "retry"

    async def run(self, stop: asyncio.Event, tick_s: float = 5.0) -> None:
        """Deliver until ``stop`` is set; a delivery in flight finishes first."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.dispatch_once(stop)
            except StorageError:
                log.exception("outbox: storage error; will retry")
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waiters, timeout=tick_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
