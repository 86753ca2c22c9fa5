"""The outbox dispatcher: every queued announcement reaches its destination
exactly once where the platform can tell, and in order, through faults.

The rules, and where each is kept:
- **Claim before posting.** Work is claimed in the database
  (``Storage.claim_outbox``: rows go 'sending' under this process's lease,
  durably) before any adapter is called. A process that dies leaves claimed
  rows behind; whoever takes them over gets them with ``outcome_unknown``.
- **Never re-post blind.** A row with ``outcome_unknown`` (a takeover, or a
  timeout/5xx that may have gone through) is looked up on the platform
  first (``find_delivered``, back to its first attempt). The flag is cleared
  only by the platform's answer; a lookup that fails is retried like a post.
- **Order per destination.** Only a destination's oldest unsent row can be
  claimed, and one worker delivers a destination's rows one after another,
  so nothing overtakes an earlier row, across rounds, restarts and processes.
- **No head-of-line blocking.** Destinations deliver concurrently, up to
  ``concurrency`` per platform; each platform has its own gate, so one
  platform's outage never slows another. Adapters fail fast (they report
  ``retry_after`` instead of sleeping) and the outbox owns retries.
- **Prompt recovery.** While a platform fails as a whole, one delivery at a
  time probes it, at least every ``probe_every``; rows never back off past
  the next probe, so when the platform answers again everything waiting goes
  out at once, in order.
- **Storage faults.** Results are written by the ``Recorder`` in batches and
  held in memory while the database refuses writes.
- **Flood control** (``flood.decide_flood``, pure): before a row of a
  route is posted, its pace and daily cap are checked against what the
  route posted (``route_tallies``, then counted here as rows go out). A row
  that must wait is released at the head of its destination's queue, due
  when it may go: that destination waits, no other does, and nothing
  behind it overtakes it. A row for a digest is HELD: out of the queue,
  kept until ``_digests`` gathers what each digest route held into one
  digest row (``build_digest``, once per route and period).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from bot.clock import Clock
from bot.errors import DeliveryError, StorageError
from bot.faults import StorageFaults
from bot.logs import log_context
from bot.metrics import Metrics
from bot.models import Announcement, Delivered, Destination, DestinationKind, Event, EventKind, Platform, Route, StoredItem
from bot.outbox.flood import SEND as FLOOD_FREE
from bot.outbox.flood import FloodDecision, Verdict, after_sent, day_start, decide_flood, period_end
from bot.outbox.gate import PlatformGate
from bot.outbox.policy import DeliveryPolicy
from bot.outbox.recorder import Recorder
from bot.ports import ChatAdapter
from bot.presenter import DIGEST_HEADINGS
from bot.storage import DeliveryOutcome, DeliveryResult, OutboxRow, OutboxStatus, Storage
from bot.storage.records import RouteTally

log = logging.getLogger("showbot.outbox")

# Rows sent by this process, remembered for follow-ups whose anchor's
# result may not be written yet.
_SENT_MEMORY = 4096
# How often a running outbox looks for digests whose period ended.
DIGEST_CHECK_S = 60.0


def new_owner() -> str:
    """A lease owner id: unique per process start, readable in the database."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(slots=True)
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0  # unsent rows of platforms with no adapter, or not connected
    held: int = 0  # kept back for a digest
    paced: int = 0  # released to wait for a route's pace or daily cap
    digests: int = 0  # digests queued


@dataclass(slots=True)
class _Batch:
    """What one claim loaded, shared by the workers it started."""

    routes: dict[int, Route]
    events: dict[int, Event]
    items: dict[int, StoredItem]
    lease_until: datetime
    # Per route: its posts so far today (flood control). A destination is
    # worked by one worker at a time, so each worker updates its route's.
    tallies: dict[int, RouteTally] = dataclasses.field(default_factory=dict)


@dataclass(slots=True)
class _Counts:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0
    held: int = 0
    paced: int = 0
    digests: int = 0


class Outbox:
    def __init__(
        self,
        store: Storage,
        adapters: Mapping[Platform, ChatAdapter],
        *,
        clock: Clock,
        policy: DeliveryPolicy | None = None,
        owner: str | None = None,
        faults: StorageFaults | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or Metrics()
        self._adapters = dict(adapters)
        self._clock = clock
        self._policy = policy or DeliveryPolicy()
        self.owner = owner or new_owner()
        self.faults = faults or StorageFaults()
        self._gates = {
            p: PlatformGate(concurrency=self._policy.concurrency, probe_base_s=self._policy.retry_base_s,
                            probe_every_s=self._policy.probe_every_s)
            for p in self._adapters
        }
        self._recorder = Recorder(store, self.owner, self.faults, on_routes_broken=self._routes_broke)
        self._workers: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._renewed_until: datetime | None = None
        self._sent_here: OrderedDict[int, str | None] = OrderedDict()
        self._counts = _Counts()
        self._digests_checked_at: datetime | None = None

    # -- control ---------------------------------------------------------------

    def wake(self) -> None:
        """Something was queued: look for work now rather than at the next tick."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._workers)

    @property
    def unrecorded(self) -> int:
        """Delivery results held in memory because the database refused them."""
        return self._recorder.waiting

    async def flush(self) -> bool:
        """Write held results now; False while the database refuses them."""
        return await self._recorder.flush()

    async def dispatch_once(self) -> DispatchReport:
        """Deliver everything that is due now, wait for it, record it, return.
        (One-shot callers and tests; a running bot uses ``run``.)"""
        before = dataclasses.replace(self._counts)
        while True:
            await self._digests(force=True)
            started = await self._fill()
            if self._workers:
                await asyncio.gather(*list(self._workers), return_exceptions=True)
            await self._recorder.flush()
            if not started:
                break
        return DispatchReport(
            sent=self._counts.sent - before.sent,
            retried=self._counts.retried - before.retried,
            failed=self._counts.failed - before.failed,
            waiting=await self._waiting() + self._counts.waiting - before.waiting,
            held=self._counts.held - before.held,
            paced=self._counts.paced - before.paced,
            digests=self._counts.digests - before.digests,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then the deliveries in flight
        finish, nothing new starts, and the results are written."""
        recorder = asyncio.create_task(self._recorder.run(stop), name="showbot-outbox-recorder")
        leases = asyncio.create_task(self._renew_leases(stop), name="showbot-outbox-leases")
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self._digests()
                    await self._fill()
                except StorageError as exc:
                    self.faults.failed(exc, "claiming deliveries")
                await _wait_any(self._wake, stop, timeout=self._next_tick_s())
        finally:
            self._stopping = True
            if self._workers:
                await asyncio.gather(*list(self._workers), return_exceptions=True)
            await asyncio.gather(recorder, return_exceptions=True)
            leases.cancel()
            await asyncio.gather(leases, return_exceptions=True)
            await self._recorder.close(grace_s=10.0)

    def _next_tick_s(self) -> float:
        tick = self._policy.tick_s
        now = self._clock()
        for gate in self._gates.values():
            change = gate.next_change()
            if change is not None:
                tick = min(tick, max(0.0, (change - now).total_seconds()))
        return max(tick, 0.01)

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        every = max(self._policy.lease_s / 3, 0.05)
        while not stop.is_set():
            await _wait_any(stop, timeout=every)
            if stop.is_set() and not self._workers:
                return
            until = self._clock() + timedelta(seconds=self._policy.lease_s)
            try:
                await self._store.renew_outbox_leases(self.owner, until)
            except StorageError as exc:
                self.faults.failed(exc, "renewing delivery leases")
                continue
            self._renewed_until = until

    # -- claiming --------------------------------------------------------------

    async def _fill(self) -> int:
        """Claim what may start now and start a worker per destination."""
        if self._stopping:
            return 0
        now = self._clock()
        budgets: dict[Platform, int] = {}
        for platform, adapter in self._adapters.items():
            if adapter.healthy:
                budget = self._gates[platform].budget(now)
                if budget:
                    budgets[platform] = budget
        if not budgets:
            return 0
        lease_until = now + timedelta(seconds=self._policy.lease_s)
        rows = await self._store.claim_outbox(
            self.owner, now, lease_until, budgets=budgets, per_destination=self._policy.per_destination)
        if not rows:
            return 0
        batch = await self._load(rows, lease_until)
        by_destination: dict[Destination, list[OutboxRow]] = {}
        for row in rows:
            by_destination.setdefault(row.destination, []).append(row)
        for destination, dest_rows in by_destination.items():
            gate = self._gates[destination.platform]
            gate.in_flight += 1
            task = asyncio.create_task(self._work(destination, dest_rows, batch),
                                       name=f"showbot-deliver-{destination}")
            self._workers.add(task)
            task.add_done_callback(self._worker_done)
        return len(by_destination)

    async def _load(self, rows: Sequence[OutboxRow], lease_until: datetime) -> _Batch:
        routes = {r.id: r for r in await self._store.list_routes()}
        events = await self._store.events_by_id(sorted({r.event_id for r in rows}))
        # A digest names the events it gathers, an edit the one it edits; load those too.
        gathered = sorted(({int(i) for e in events.values() if e.kind is EventKind.DIGEST
                            for i in e.payload.get("event_ids", [])}
                           | {int(e.payload["edit_of"]) for e in events.values()
                              if e.kind is EventKind.EDIT and isinstance(e.payload.get("edit_of"), int)})
                          - set(events))
        if gathered:
            events.update(await self._store.events_by_id(gathered))
        item_ids = sorted({e.item_id for e in events.values() if e.item_id is not None})
        items = await self._store.items_by_id(item_ids) if item_ids else {}
        flooded = sorted({r.route_id for r in rows if r.route_id is not None and r.route_id in routes
                          and _floods(routes[r.route_id])})
        tallies = (await self._store.route_tallies(flooded, day_start(self._clock()))) if flooded else {}
        return _Batch(routes, events, items, lease_until, tallies)

    async def _digests(self, *, force: bool = False) -> int:
        """Queue the digest of every digest route whose period ended with
        rows held for it. Checked at most once a minute (a digest is due at
        most daily), every time when ``force`` (dispatch_once)."""
        now = self._clock()
        if not force and self._digests_checked_at is not None and \
                now - self._digests_checked_at < timedelta(seconds=DIGEST_CHECK_S):
            return 0
        self._digests_checked_at = now
        held = await self._store.held_counts()
        if not held:
            return 0
        queued = 0
        for route in await self._store.list_routes():
            if route.digest is None or not held.get(route.id):
                continue
            title = DIGEST_HEADINGS.get(route.digest.value, "Digest")
            event = await self._store.build_digest(route.id, route.digest, period_end(route.digest, now), title, now)
            if event is not None:
                queued += 1
                log.info("digest of %s %s queued: %d item(s)", route.platform.value, route.channel,
                         len(event.payload.get("event_ids", [])))
        self._counts.digests += queued
        return queued

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox worker crashed", exc_info=task.exception())
        self._wake.set()

    async def _waiting(self) -> int:
        idle = [p for p, a in self._adapters.items() if not a.healthy]
        counts = await self._store.count_unsent()
        return sum(n for p, n in counts.items() if p in idle or p not in self._adapters)

    # -- delivering ------------------------------------------------------------

    async def _work(self, destination: Destination, rows: list[OutboxRow], batch: _Batch) -> None:
        """Deliver one destination's claimed rows in order; stop at the first
        that doesn't go out, and give the rest back untouched."""
        adapter = self._adapters[destination.platform]
        # Rows of a destination are attempted strictly in order, each only
        # after the one before it went out. So once a row is known not to
        # have been posted before (the lookup said so, or it was posted just
        # now), no later row of this batch was ever attempted: a takeover
        # looks up only what the dead process may really have posted.
        settled = False
        try:
            for i, row in enumerate(rows):
                if self._stopping or not self._lease_held(batch):
                    self._release(rows[i:])
                    return
                if settled and row.outcome_unknown:
                    row = dataclasses.replace(row, outcome_unknown=False)
                flood = self._flood(row, batch)
                if flood.verdict is Verdict.HOLD and (row.outcome_unknown or row.attempts):
                    # It may be on the platform already (a takeover, a lost
                    # answer): put in a digest it could be posted twice. Look
                    # it up and finish it alone, as it was started.
                    flood = FLOOD_FREE
                if flood.verdict is Verdict.HOLD:
                    self._counts.held += 1
                    self._recorder.add(DeliveryResult(row.id, DeliveryOutcome.HELD, self._clock(), attempted=False))
                    continue
                if flood.verdict is Verdict.WAIT:
                    # At the head of its queue, due when the route may post
                    # again; the rest of this destination waits behind it.
                    self._counts.paced += 1
                    self._recorder.add(DeliveryResult(row.id, DeliveryOutcome.RELEASED, self._clock(),
                                                      attempted=False, next_attempt_at=flood.until))
                    self._release(rows[i + 1:])
                    return
                try:
                    with log_context(outbox=row.id, route=row.route_id, platform=destination.platform.value):
                        result = await self._deliver_one(adapter, row, batch)
                except StorageError as exc:  # reading an anchor: try this row again later
                    self.faults.failed(exc, "preparing a delivery")
                    self._release(rows[i:])
                    return
                self._recorder.add(result)
                if self._metrics.enabled:
                    self._count(row, result, batch)
                if result.outcome is not DeliveryOutcome.SENT:
                    self._release(rows[i + 1:])
                    return
                self._count_sent(row, batch)
                settled = settled or result.attempted
        finally:
            self._gates[destination.platform].in_flight -= 1

    def _count(self, row: OutboxRow, result: DeliveryResult, batch: _Batch) -> None:
        outcome = result.outcome.value
        if outcome == "released":
            return  # not an attempt: it waits its turn
        since_detected = since_published = None
        if result.outcome is DeliveryOutcome.SENT:
            event = batch.events.get(row.event_id)
            if event is not None:
                since_detected = (result.at - event.created_at).total_seconds()
                stored = batch.items.get(event.item_id) if event.item_id is not None else None
                if stored is not None and stored.item.published_at is not None:
                    since_published = (result.at - stored.item.published_at).total_seconds()
        self._metrics.delivered(row.platform.value, outcome, since_detected_s=since_detected,
                                since_published_s=since_published)

    def _flood(self, row: OutboxRow, batch: _Batch) -> FloodDecision:
        route = batch.routes.get(row.route_id) if row.route_id is not None else None
        event = batch.events.get(row.event_id)
        if route is None or route.broken or event is None or not _floods(route):
            return FLOOD_FREE  # a DM, or a row _deliver_one gives up on anyway
        tally = batch.tallies.get(route.id, RouteTally(0, None))
        return decide_flood(route, tally, event, now=self._clock())

    def _count_sent(self, row: OutboxRow, batch: _Batch) -> None:
        event = batch.events.get(row.event_id)
        if row.route_id in batch.tallies and event is not None:
            batch.tallies[row.route_id] = after_sent(batch.tallies[row.route_id], event, self._clock())

    def _lease_held(self, batch: _Batch) -> bool:
        """Still ours, with a margin: past it another process may take over,
        and posting then could post twice."""
        until = max(batch.lease_until, self._renewed_until or batch.lease_until)
        margin = timedelta(seconds=self._policy.lease_s / 4)
        return self._clock() < until - margin

    def _release(self, rows: Sequence[OutboxRow]) -> None:
        now = self._clock()
        for row in rows:
            self._recorder.add(DeliveryResult(row.id, DeliveryOutcome.RELEASED, now, attempted=False))

    async def _deliver_one(self, adapter: ChatAdapter, row: OutboxRow, batch: _Batch) -> DeliveryResult:
        now = self._clock()
        destination = row.destination
        route: Route | None = None
        if destination.kind is DestinationKind.CHANNEL:
            route = batch.routes.get(row.route_id) if row.route_id is not None else None
            if route is None or route.broken:
                self._counts.failed += 1
                return DeliveryResult(row.id, DeliveryOutcome.FAILED, now, attempted=False,
                                      error="route removed or broken")
        event = batch.events.get(row.event_id)
        if event is None:  # deleted with its source after the claim
            self._counts.failed += 1
            return DeliveryResult(row.id, DeliveryOutcome.FAILED, now, attempted=False, error="event removed")
        if event.kind is EventKind.EDIT:
            return await self._edit_one(adapter, row, event, route, batch)
        reply_to = None
        anchor_id = event.payload.get("follow_up_of")
        if anchor_id is not None:
            ready, reply_to = await self._reply_target(int(anchor_id), destination)
            if not ready:
                self._counts.waiting += 1
                return DeliveryResult(row.id, DeliveryOutcome.RELEASED, now, attempted=False,
                                      next_attempt_at=now + timedelta(seconds=self._policy.retry_base_s))
        entries: tuple[tuple[Event, StoredItem | None], ...] = ()
        if event.kind is EventKind.DIGEST:
            gathered = [batch.events[int(i)] for i in event.payload.get("event_ids", []) if int(i) in batch.events]
            if not gathered:
                self._counts.failed += 1
                return DeliveryResult(row.id, DeliveryOutcome.FAILED, now, attempted=False,
                                      error="every item of the digest was removed")
            entries = tuple((e, batch.items.get(e.item_id) if e.item_id is not None else None) for e in gathered)
        announcement = Announcement(
            outbox_id=row.id, idempotency_key=row.idempotency_key, event=event, destination=destination,
            item=batch.items.get(event.item_id) if event.item_id is not None else None,
            mention=route.mention if route is not None else None,
            thread=route.thread if route is not None else False,
            attempts=row.attempts, outcome_unknown=row.outcome_unknown,
            first_attempt_at=row.first_attempt_at, reply_to=reply_to,
            template=route.template if route is not None else None, entries=entries,
        )
        unknown = row.outcome_unknown
        gate = self._gates[destination.platform]
        try:
            if unknown:
                earlier = await adapter.find_delivered(announcement)
                if earlier is not None:
                    log.info("outbox %d: already on %s (message %s); not posting it again",
                             row.id, destination, earlier.message_id)
                    return self._sent(row, earlier, gate, attempted=False)
                unknown = False  # the platform answered: it isn't there
            delivered = await adapter.deliver(announcement)
        except DeliveryError as exc:
            return self._failed(row, route, exc, unknown)
        except Exception as exc:  # an adapter bug: log it; it may have posted, so look first next time
            log.exception("outbox %d: adapter %s crashed", row.id, destination.platform.value)
            error = DeliveryError(f"{type(exc).__name__}: {exc}", maybe_delivered=True)
            return self._failed(row, route, error, unknown)
        return self._sent(row, delivered, gate, attempted=True)

    async def _edit_one(self, adapter: ChatAdapter, row: OutboxRow, edit: Event, route: Route | None,
                        batch: _Batch) -> DeliveryResult:
        """Edit the message of an earlier announcement in place (bot.edits).

        The announcement's own row is earlier in this destination's queue, so
        it went out, or was given up, before this row could be claimed; only
        a result not written yet needs our memory (as for follow-ups). An
        edit carries the whole state the message should show, so it is
        idempotent: a retry or a takeover just edits again, no lookup first.
        Nothing to edit (never posted, given up, held for a digest, deleted
        on the platform) gives the edit up with a log line: never a new post."""
        now = self._clock()
        destination = row.destination
        anchor_id = edit.payload.get("edit_of")
        anchor = batch.events.get(int(anchor_id)) if isinstance(anchor_id, int) else None
        if anchor is None:
            log.info("outbox %d: the announcement edited (event %s) is gone; edit given up", row.id, anchor_id)
            self._counts.failed += 1
            return DeliveryResult(row.id, DeliveryOutcome.FAILED, now, attempted=False,
                                  error="the announcement to edit was removed")
        ready, message_id, why, key = await self._edit_target(anchor.id, destination)
        if not ready:
            self._counts.waiting += 1
            return DeliveryResult(row.id, DeliveryOutcome.RELEASED, now, attempted=False,
                                  next_attempt_at=now + timedelta(seconds=self._policy.retry_base_s))
        if message_id is None:
            log.info("outbox %d: nothing to edit in %s (%s); edit given up", row.id, destination, why)
            self._counts.failed += 1
            return DeliveryResult(row.id, DeliveryOutcome.FAILED, now, attempted=False, error=f"not edited: {why}")
        # The post's own key: the message keeps the marker it was posted with.
        announcement = Announcement(
            outbox_id=row.id, idempotency_key=key or row.idempotency_key, event=anchor, destination=destination,
            item=batch.items.get(anchor.item_id) if anchor.item_id is not None else None,
            mention=route.mention if route is not None else None,
            thread=False, attempts=row.attempts, outcome_unknown=False,
            first_attempt_at=row.first_attempt_at,
            template=route.template if route is not None else None,
            edit=edit, edit_of=message_id,
        )
        gate = self._gates[destination.platform]
        try:
            delivered = await adapter.edit(announcement)
        except DeliveryError as exc:
            if exc.gone:
                log.warning("outbox %d: message %s in %s is gone (deleted?): edit given up, nothing posted",
                            row.id, message_id, destination)
                self._counts.failed += 1
                return DeliveryResult(row.id, DeliveryOutcome.FAILED, now, error=f"message gone: {exc}")
            # Idempotent: "maybe edited" needs no lookup, the retry edits again.
            return self._failed(row, route, DeliveryError(
                str(exc), permanent=exc.permanent, retry_after=exc.retry_after,
                whole_platform=exc.whole_platform), False)
        except Exception as exc:  # an adapter bug: log it and try again later
            log.exception("outbox %d: adapter %s crashed editing", row.id, destination.platform.value)
            return self._failed(row, route, DeliveryError(f"{type(exc).__name__}: {exc}"), False)
        if delivered.message_id is None:
            delivered = Delivered(message_id, delivered.url)
        return self._sent(row, delivered, gate, attempted=True)

    async def _edit_target(self, anchor_event_id: int,
                           destination: Destination) -> tuple[bool, str | None, str, str | None]:
        """For an edit: (ready, message id to edit, why there is none, the
        post's idempotency key)."""
        anchor = await self._store.find_outbox_row(anchor_event_id, destination)
        if anchor is None:
            return True, None, "the announcement was never queued here", None
        key = anchor.idempotency_key
        if anchor.status is OutboxStatus.SENT:
            return True, anchor.message_id, "the platform gave no message id", key
        if anchor.status is OutboxStatus.FAILED:
            return True, None, "the announcement was given up", key
        if anchor.status in (OutboxStatus.HELD, OutboxStatus.DIGESTED):
            return True, None, "the announcement went into a digest", key
        if anchor.id in self._sent_here:
            return True, self._sent_here[anchor.id], "the platform gave no message id", key
        return False, None, "not posted yet", key

    def _sent(self, row: OutboxRow, delivered: Delivered, gate: PlatformGate, *, attempted: bool) -> DeliveryResult:
        message_id = delivered.message_id
        if gate.succeeded():
            log.warning("%s is answering again; delivering what waited", row.platform.value)
            self._wake.set()
        self._sent_here[row.id] = message_id
        while len(self._sent_here) > _SENT_MEMORY:
            self._sent_here.popitem(last=False)
        self._counts.sent += 1
        return DeliveryResult(row.id, DeliveryOutcome.SENT, self._clock(), attempted=attempted,
                              message_id=message_id, message_url=delivered.url)

    def _failed(self, row: OutboxRow, route: Route | None, exc: DeliveryError, unknown: bool) -> DeliveryResult:
        now = self._clock()
        where = row.destination
        if exc.permanent:
            self._counts.failed += 1
            if route is None:  # a DM the member can't receive: drop that one only
                log.warning("outbox %d: direct message to %s refused: %s", row.id, where, exc)
                return DeliveryResult(row.id, DeliveryOutcome.FAILED, now, error=str(exc))
            log.error("route %s %s refused announcements (%s); it is marked broken until a "
                      "moderator fixes it", route.platform.value, route.channel, exc)
            return DeliveryResult(
                row.id, DeliveryOutcome.FAILED, now, error=str(exc), break_route=route.id,
                alert=f"Announcements to {route.platform.value} {route.channel} stopped: {exc}",
            )
        gate = self._gates[where.platform]
        if exc.retry_after is not None:
            if exc.whole_platform:
                gate.pause(now + timedelta(seconds=exc.retry_after))
        else:
            gate.failed(now)
        delay = self._policy.retry_delay_s(row.attempts + 1, exc.retry_after, platform_down=gate.down)
        self._counts.retried += 1
        log.warning("outbox %d to %s: %s (retry in %.1fs%s)", row.id, where, exc, delay,
                    "; will look for it first" if unknown or exc.maybe_delivered else "")
        return DeliveryResult(
            row.id, DeliveryOutcome.RETRY, now, error=str(exc),
            next_attempt_at=now + timedelta(seconds=delay),
            outcome_unknown=unknown or exc.maybe_delivered,
        )

    async def _reply_target(self, anchor_event_id: int, destination: Destination) -> tuple[bool, str | None]:
        """For a follow-up: (ready, message id to reply under). The anchor is
        earlier in the same destination's queue, so it has gone out already
        unless it failed; only a result not written yet needs our memory.
        The same rules as an edit's target: with nothing to reply under
        (given up, or inside a digest), it is posted on its own."""
        ready, message_id, _, _ = await self._edit_target(anchor_event_id, destination)
        return ready, message_id

    def _routes_broke(self, route_ids: Sequence[int]) -> None:
        self._wake.set()  # the moderators' alert was queued


def _floods(route: Route) -> bool:
    return bool(route.pace_s or route.daily_cap is not None or route.digest is not None)


async def _wait_any(*events: asyncio.Event, timeout: float | None = None) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
