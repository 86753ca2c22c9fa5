"""The outbox: announcements queued per destination, claimed under a lease,
delivered in order, and what became of each."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

import aiosqlite

from bot.errors import NotFound
from bot.models import DigestPeriod, Destination, Event, EventKind, EventPurpose, Platform
from bot.storage.records import DeliveryOutcome, DeliveryResult, OutboxRow, QueuedEvent, RouteFacts, RouteTally
from bot.storage.sqlite import rows
from bot.storage.sqlite.base import SqliteBase, from_db_time, to_db_time


class OutboxTable(SqliteBase):
    async def outbox_rows(self, status: str | None = None) -> list[OutboxRow]:
        where = "WHERE status = ?" if status else ""
        found = await self._all(
            f"SELECT {rows.OUTBOX_COLUMNS} FROM outbox {where} ORDER BY id",
            (status,) if status else (),
        )
        return [rows.outbox(r) for r in found]

    async def count_unsent(self) -> dict[Platform, int]:
        """Rows not delivered yet (pending or being sent), per platform."""
        found = await self._all(
            "SELECT platform, count(*) FROM outbox WHERE status IN ('pending', 'sending') GROUP BY platform")
        return {Platform(p): n for p, n in found}

    async def find_outbox_row(self, event_id: int, destination: Destination) -> OutboxRow | None:
        """The row that carries ``event_id`` to one destination (a follow-up's anchor), if any."""
        row = await self._one(
            f"SELECT {rows.OUTBOX_COLUMNS} FROM outbox "
            "WHERE event_id = ? AND platform = ? AND dest_kind = ? AND dest_id = ?",
            (event_id, destination.platform.value, destination.kind.value, destination.id),
        )
        return rows.outbox(row) if row is not None else None

    async def claim_outbox(
        self, owner: str, now: datetime, lease_until: datetime, *,
        budgets: Mapping[Platform, int], per_destination: int,
    ) -> list[OutboxRow]:
        """Claim work for ``owner``: for up to ``budgets[p]`` destinations of
        platform ``p`` whose head (oldest unsent row) is due -- pending with
        ``next_attempt_at <= now``, or sending under a lease that ran out --
        the first ``per_destination`` rows of that destination, in id order.

        Claimed rows are ``sending`` under ``owner`` until ``lease_until``. A
        row taken over from an expired lease may have been posted by its
        previous holder: it comes back with ``outcome_unknown`` set.
        Atomic, and durable before it returns (fsync, whatever the
        connection's ``synchronous``): a power cut after this never loses a
        claim whose post the platform may already have. Rows of one
        destination are never claimed while an earlier row of it is claimed
        by someone else. Returns rows in id order; [] without writing when
        nothing is due."""
        wanted = {p.value: n for p, n in budgets.items() if n > 0}
        if not wanted:
            return []
        if not await self._claimable_heads(now, wanted):
            return []  # the common case: a read, no write transaction
        async with self._tx("claiming deliveries", durable=True) as db:
            heads = await self._claimable_heads(now, wanted, db)
            if not heads:
                return []
            chosen: list[tuple[str, str, str]] = []
            left = dict(wanted)
            for platform, kind, dest in heads:
                if left.get(platform, 0) > 0:
                    left[platform] -= 1
                    chosen.append((platform, kind, dest))
            ids: list[int] = []
            t_now, t_lease = to_db_time(now), to_db_time(lease_until)
            for platform, kind, dest in chosen:
                async with db.execute(
                    "SELECT id, status, next_attempt_at, lease_until FROM outbox "
                    "WHERE platform = ? AND dest_kind = ? AND dest_id = ? AND status IN ('pending', 'sending') "
                    "ORDER BY id LIMIT ?",
                    (platform, kind, dest, per_destination),
                ) as cur:
                    for row_id, status, due, lease in await cur.fetchall():
                        claimable = (status == "pending" and due <= t_now) or (
                            status == "sending" and (lease is None or lease < t_now))
                        if not claimable:
                            break  # never past a row that isn't ours to send
                        ids.append(row_id)
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            async with db.execute(
                f"UPDATE outbox SET outcome_unknown = CASE WHEN status = 'sending' THEN 1 ELSE outcome_unknown END, "
                "status = 'sending', lease_owner = ?, lease_until = ?, "
                f"first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id IN ({marks}) "
                f"RETURNING {rows.OUTBOX_COLUMNS}",
                (owner, t_lease, t_now, *ids),
            ) as cur:
                claimed = [rows.outbox(r) for r in await cur.fetchall()]
        return sorted(claimed, key=lambda r: r.id)

    async def _claimable_heads(
        self, now: datetime, platforms: Mapping[str, int], db: aiosqlite.Connection | None = None,
    ) -> list[tuple[str, str, str]]:
        marks = ",".join("?" * len(platforms))
        t_now = to_db_time(now)
        sql = (
            "SELECT o.platform, o.dest_kind, o.dest_id FROM outbox o JOIN ("
            "  SELECT min(id) AS id FROM outbox WHERE status IN ('pending', 'sending') "
            f"  AND platform IN ({marks}) GROUP BY platform, dest_kind, dest_id"
            ") h ON o.id = h.id "
            "WHERE (o.status = 'pending' AND o.next_attempt_at <= ?) "
            "   OR (o.status = 'sending' AND (o.lease_until IS NULL OR o.lease_until < ?)) "
            "ORDER BY o.id"
        )
        params = (*platforms, t_now, t_now)
        if db is not None:
            async with db.execute(sql, params) as cur:
                found = list(await cur.fetchall())
        else:
            found = await self._all(sql, params, "looking for due deliveries")
        return [(str(r[0]), str(r[1]), str(r[2])) for r in found]

    async def renew_outbox_leases(self, owner: str, lease_until: datetime) -> int:
        """Extend every lease ``owner`` holds; returns how many rows it holds."""
        async with self._tx("renewing delivery leases") as db:
            cur = await db.execute(
                "UPDATE outbox SET lease_until = ? WHERE status = 'sending' AND lease_owner = ?",
                (to_db_time(lease_until), owner),
            )
            return cur.rowcount

    async def expire_outbox_leases(self) -> int:
        """At the start of the only process delivering from this database
        (SQLite): rows left ``sending`` by a process that died can be taken
        over now instead of when their lease runs out (they come back with
        ``outcome_unknown``). Returns how many there were."""
        async with self._tx("recovering the outbox") as db:
            cur = await db.execute(
                "UPDATE outbox SET lease_until = ? WHERE status = 'sending'", (rows.EPOCH,))
            return cur.rowcount

    async def record_deliveries(self, owner: str, results: Sequence[DeliveryResult]) -> list[int]:
        """Write what became of claimed rows, in one transaction.

        SENT is written whoever holds the row now (the platform has the post:
        that is the truth). Every other outcome is written only while
        ``owner`` still holds the row's lease; a row taken over since is the
        new holder's business. A result with ``break_route`` marks that
        route broken and, when this call broke it, queues ``alert`` for
        every other route that selects alerts. Idempotent: writing the same
        results twice changes nothing more. Returns the ids of routes this
        call broke."""
        if not results:
            return []
        broke: list[int] = []
        async with self._tx("recording deliveries") as db:
            for r in results:
                at = to_db_time(r.at)
                if r.outcome is DeliveryOutcome.SENT:
                    await db.execute(
                        "UPDATE outbox SET status = 'sent', message_id = ?, message_url = ?, sent_at = ?, "
                        "last_error = NULL, outcome_unknown = 0, lease_owner = NULL, lease_until = NULL, "
                        "attempts = attempts + ? WHERE id = ? AND status != 'sent'",
                        (r.message_id, r.message_url, at, int(r.attempted), r.outbox_id),
                    )
                    continue
                if r.outcome is DeliveryOutcome.FAILED and r.break_route is not None:
                    cur = await db.execute(
                        "UPDATE routes SET broken_reason = ? WHERE id = ? AND broken_reason IS NULL",
                        (r.error or "broken", r.break_route),
                    )
                    if cur.rowcount == 1:
                        broke.append(r.break_route)
                        if r.alert:
                            await rows.queue_alert(db, r.alert, r.at, skip_route=r.break_route)
                params: tuple[object, ...]
                if r.outcome is DeliveryOutcome.FAILED:
                    sql, params = (
                        "UPDATE outbox SET status = 'failed', last_error = ?, outcome_unknown = 0, "
                        "lease_owner = NULL, lease_until = NULL, attempts = attempts + ? ",
                        (r.error, int(r.attempted)),
                    )
                elif r.outcome is DeliveryOutcome.HELD:
                    # next_attempt_at keeps when it was held: a digest takes
                    # what was held before its period ended.
                    sql, params = (
                        "UPDATE outbox SET status = 'held', outcome_unknown = 0, lease_owner = NULL, "
                        "lease_until = NULL, next_attempt_at = ? ",
                        (at,),
                    )
                elif r.outcome is DeliveryOutcome.RETRY:
                    sql, params = (
                        "UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ?, "
                        "outcome_unknown = ?, lease_owner = NULL, lease_until = NULL, attempts = attempts + ? ",
                        (r.error, to_db_time(r.next_attempt_at or r.at), int(r.outcome_unknown),
                         int(r.attempted)),
                    )
                else:  # RELEASED: untouched, only the claim goes (and maybe a later due time)
                    sql, params = (
                        "UPDATE outbox SET status = 'pending', lease_owner = NULL, lease_until = NULL, "
                        "next_attempt_at = COALESCE(?, next_attempt_at) ",
                        (to_db_time(r.next_attempt_at),),
                    )
                await db.execute(sql + "WHERE id = ? AND status = 'sending' AND lease_owner = ?",
                                 (*params, r.outbox_id, owner))
        return broke

    async def queue_events(self, events: Sequence[QueuedEvent], now: datetime) -> list[Event]:
        written: list[Event] = []
        t_now = to_db_time(now)
        async with self._tx("queueing announcements") as db:
            for e in events:
                if e.purpose is EventPurpose.ANNOUNCE and e.item_id is not None and e.kind is not EventKind.EDIT:
                    async with db.execute(
                        "SELECT 1 FROM events WHERE item_id = ? AND kind = ? AND purpose = 'announce'",
                        (e.item_id, e.kind.value),
                    ) as cur:
                        if await cur.fetchone() is not None:
                            continue  # announced once already: never twice
                cur = await db.execute(
                    "INSERT INTO events (source_id, item_id, kind, title, url, payload, created_at, purpose) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (e.source_id, e.item_id, e.kind.value, e.title, e.url, json.dumps(e.payload), t_now,
                     e.purpose.value),
                )
                event_id = cur.lastrowid
                assert event_id is not None
                for d in e.deliveries:
                    await rows.insert_outbox(db, event_id, d.destination, now, route_id=d.route_id, mention=d.mention)
                written.append(Event(event_id, e.kind, e.title, e.url, now, e.item_id, dict(e.payload), e.purpose))
        return written

    async def route_tallies(self, route_ids: Sequence[int], since: datetime) -> dict[int, RouteTally]:
        if not route_ids:
            return {}
        marks = ",".join("?" * len(route_ids))
        found = await self._all(
            "SELECT o.route_id, "
            "sum(CASE WHEN o.sent_at >= ? AND e.kind NOT IN ('alert', 'digest') THEN 1 ELSE 0 END), "
            "max(o.sent_at) "
            "FROM outbox o JOIN events e ON e.id = o.event_id "
            f"WHERE o.status = 'sent' AND o.route_id IN ({marks}) AND e.kind NOT IN ('alert', 'edit') "
            "AND e.purpose != 'test' "
            "GROUP BY o.route_id",
            (to_db_time(since), *route_ids), doing="counting a route's posts",
        )
        out = {r: RouteTally(0, None) for r in route_ids}
        for route_id, capped, last in found:
            out[route_id] = RouteTally(int(capped or 0), from_db_time(last))
        return out

    async def held_counts(self) -> dict[int, int]:
        found = await self._all(
            "SELECT route_id, count(*) FROM outbox WHERE status = 'held' AND route_id IS NOT NULL GROUP BY route_id")
        return {int(r[0]): int(r[1]) for r in found}

    async def build_digest(
        self, route_id: int, period: DigestPeriod, period_end: datetime, title: str, now: datetime,
    ) -> Event | None:
        t_now, t_end = to_db_time(now), to_db_time(period_end)
        async with self._tx("building a digest") as db:
            async with db.execute("SELECT 1 FROM digests WHERE route_id = ? AND period_end = ?",
                                  (route_id, t_end)) as cur:
                if await cur.fetchone() is not None:
                    return None  # another process (or an earlier tick) built it
            async with db.execute(
                "SELECT id, event_id FROM outbox WHERE status = 'held' AND route_id = ? AND next_attempt_at < ? "
                "ORDER BY id", (route_id, t_end)
            ) as cur:
                held = list(await cur.fetchall())
            route = next((r for r in await rows.routes(db) if r.id == route_id), None)
            if not held or route is None:
                return None
            payload = {"period": period.value, "period_end": t_end, "event_ids": [int(r[1]) for r in held]}
            cur = await db.execute(
                "INSERT INTO events (kind, title, payload, created_at, purpose) VALUES ('digest', ?, ?, ?, 'digest')",
                (title, json.dumps(payload), t_now))
            event_id = cur.lastrowid
            assert event_id is not None
            cur = await db.execute(
                "INSERT INTO digests (route_id, period_end, event_id, created_at) VALUES (?, ?, ?, ?)",
                (route_id, t_end, event_id, t_now))
            digest_id = cur.lastrowid
            await rows.insert_outbox(db, event_id, rows.route_destination(route), now, route_id=route_id,
                                     mention=route.mention)
            marks = ",".join("?" * len(held))
            await db.execute(
                f"UPDATE outbox SET status = 'digested', digest_id = ? WHERE status = 'held' AND id IN ({marks})",
                (digest_id, *[r[0] for r in held]))
        return Event(event_id, EventKind.DIGEST, title, None, now, None, payload, EventPurpose.DIGEST)

    async def route_facts(self, now: datetime) -> dict[int, RouteFacts]:
        found = await self._all(
            "SELECT route_id, max(CASE WHEN status = 'sent' THEN sent_at END), "
            "sum(CASE WHEN status IN ('pending', 'sending') AND NOT (status = 'pending' AND next_attempt_at > ?) "
            "THEN 1 ELSE 0 END), "
            "sum(CASE WHEN status = 'pending' AND next_attempt_at > ? THEN 1 ELSE 0 END), "
            "min(CASE WHEN status = 'pending' AND next_attempt_at > ? THEN next_attempt_at END), "
            "sum(CASE WHEN status = 'held' THEN 1 ELSE 0 END) "
            "FROM outbox WHERE route_id IS NOT NULL GROUP BY route_id",
            (to_db_time(now),) * 3, doing="reading deliveries",
        )
        return {int(r[0]): RouteFacts(from_db_time(r[1]), int(r[2] or 0), int(r[3] or 0), from_db_time(r[4]),
                                      int(r[5] or 0)) for r in found}

    async def events_by_id(self, event_ids: Sequence[int]) -> dict[int, Event]:
        found = await self._all_in(f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE id IN ({{marks}})", event_ids)
        return {row[0]: rows.event(row) for row in found}

    async def get_event(self, event_id: int) -> Event:
        row = await self._one(
            f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE id = ?",
            (event_id,),
        )
        if row is None:
            raise NotFound(f"no event {event_id}")
        return rows.event(row)



