"""The outbox: announcements queued per destination, claimed under a lease,
delivered in order, and what became of each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import aiosqlite

from bot.errors import NotFound
from bot.models import Destination, Event, Platform
from bot.storage.records import DeliveryOutcome, DeliveryResult, OutboxRow
from bot.storage.sqlite import rows
from bot.storage.sqlite.base import SqliteBase, to_db_time


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

    async def events_by_id(self, event_ids: Sequence[int]) -> dict[int, Event]:
        out: dict[int, Event] = {}
        for start in range(0, len(event_ids), 500):
            chunk = list(event_ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for row in await self._all(
                f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE id IN ({marks})",
                chunk,
            ):
                out[row[0]] = rows.event(row)
        return out

    async def get_event(self, event_id: int) -> Event:
        row = await self._one(
            f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE id = ?",
            (event_id,),
        )
        if row is None:
            raise NotFound(f"no event {event_id}")
        return rows.event(row)



