"""The outbox: announcements queued per destination, claimed under a lease,
delivered in order, and what became of each.

Several processes share one database here, so the two things SQLite gets
from its single writer are made explicit:
- Claims are serialized with ``pg_advisory_xact_lock(LOCK_OUTBOX_CLAIM)``:
  each claim judges every destination's head on data committed before it
  (READ COMMITTED takes a fresh snapshot per statement, after the lock), so
  two processes never claim the same row, and a destination whose head is
  held under a live lease is skipped. Claims are short (a few statements),
  so one at a time costs little; FOR UPDATE SKIP LOCKED would let claims run
  side by side but cannot say "skip this destination because an EARLIER row
  of it is locked" without the same serialization per destination.
- Rows become visible in id order: writers hold ``LOCK_OUTBOX_INSERT`` from
  their first outbox insert to commit (rows.insert_outbox), so a claim never
  sees a destination's later row before its earlier one. ``queue_events``
  and ``build_digest`` insert rows too: each inserts them in one statement,
  last in its transaction, as ``write_poll`` does.
- Only 'pending' and 'sending' rows are a destination's queue (the heads,
  the candidates): rows a digest route holds ('held') or that went out in a
  digest ('digested') block nothing.
- A digest is built once per (route, period end) across instances: its
  held rows are locked (FOR UPDATE, id order), so a second builder waits
  and then finds them digested; the digests table's unique key is the last
  word if the held rows differ (one held late).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

import asyncpg

from bot.errors import NotFound
from bot.models import DigestPeriod, Destination, Event, EventKind, EventPurpose, Platform
from bot.storage.postgres import rows
from bot.storage.postgres.base import PostgresBase, lock, ts, ts_req
from bot.storage.postgres.schema import LOCK_OUTBOX_CLAIM
from bot.storage.records import DeliveryOutcome, DeliveryResult, OutboxRow, QueuedEvent, RouteFacts, RouteTally

# Each destination's head (its oldest unsent row), kept when it is due.
_HEADS_SQL = (
    "SELECT o.platform, o.dest_kind, o.dest_id FROM outbox o JOIN ("
    "  SELECT min(id) AS id FROM outbox WHERE status IN ('pending', 'sending') "
    "  AND platform = ANY($1::text[]) GROUP BY platform, dest_kind, dest_id"
    ") h ON o.id = h.id "
    "WHERE (o.status = 'pending' AND o.next_attempt_at <= $2) "
    "   OR (o.status = 'sending' AND (o.lease_until IS NULL OR o.lease_until < $2)) "
    "ORDER BY o.id"
)
# The first ``$4`` unsent rows of each chosen destination, in id order,
# locked: a row that changed since the heads were read (sent, retried,
# renewed by its old holder) is seen as it is now, and nothing changes it
# until this claim commits.
_CANDIDATES_SQL = (
    "SELECT o.id, o.platform, o.dest_kind, o.dest_id, o.status, o.next_attempt_at, o.lease_until "
    "FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS d(p, k, i, n) "
    "CROSS JOIN LATERAL (SELECT * FROM outbox x WHERE x.platform = d.p AND x.dest_kind = d.k "
    "  AND x.dest_id = d.i AND x.status IN ('pending', 'sending') ORDER BY x.id LIMIT $4 FOR UPDATE) o "
    "ORDER BY d.n, o.id"
)


class OutboxTable(PostgresBase):
    async def outbox_rows(self, status: str | None = None) -> list[OutboxRow]:
        found = await self._all(
            f"SELECT {rows.OUTBOX_COLUMNS} FROM outbox WHERE ($1::text IS NULL OR status = $1) ORDER BY id",
            (status,),
        )
        return [rows.outbox(r) for r in found]

    async def count_unsent(self) -> dict[Platform, int]:
        found = await self._all(
            "SELECT platform, count(*) FROM outbox WHERE status IN ('pending', 'sending') GROUP BY platform")
        return {Platform(p): int(n) for p, n in found}

    async def find_outbox_row(self, event_id: int, destination: Destination) -> OutboxRow | None:
        row = await self._one(
            f"SELECT {rows.OUTBOX_COLUMNS} FROM outbox "
            "WHERE event_id = $1 AND platform = $2 AND dest_kind = $3 AND dest_id = $4",
            (event_id, destination.platform.value, destination.kind.value, destination.id),
        )
        return rows.outbox(row) if row is not None else None

    async def claim_outbox(
        self, owner: str, now: datetime, lease_until: datetime, *,
        budgets: Mapping[Platform, int], per_destination: int,
    ) -> list[OutboxRow]:
        ts_req(now)
        ts_req(lease_until)
        wanted = {p.value: n for p, n in budgets.items() if n > 0}
        if not wanted or per_destination <= 0:
            return []
        platforms = list(wanted)
        if not await self._all(_HEADS_SQL, (platforms, now), "looking for due deliveries"):
            return []  # the common case: one read, no lock, no write
        async with self._tx("claiming deliveries") as conn:
            # Durable before it returns whatever the server's default: a claim
            # whose post the platform may already have must survive a crash.
            await conn.execute("SET LOCAL synchronous_commit = on")
            await lock(conn, LOCK_OUTBOX_CLAIM)
            heads = await conn.fetch(_HEADS_SQL, platforms, now)
            chosen: list[tuple[str, str, str]] = []
            left = dict(wanted)
            for platform, kind, dest in heads:
                if left.get(platform, 0) > 0:
                    left[platform] -= 1
                    chosen.append((platform, kind, dest))
            if not chosen:
                return []
            ids: list[int] = []
            current: tuple[str, str, str] | None = None
            blocked = False
            for row_id, platform, kind, dest, status, due, lease in await conn.fetch(
                _CANDIDATES_SQL, [c[0] for c in chosen], [c[1] for c in chosen], [c[2] for c in chosen],
                per_destination,
            ):
                if (platform, kind, dest) != current:
                    current, blocked = (platform, kind, dest), False
                if blocked:
                    continue
                claimable = (status == "pending" and due <= now) or (
                    status == "sending" and (lease is None or lease < now))
                if not claimable:
                    blocked = True  # never past a row that isn't ours to send
                    continue
                ids.append(row_id)
            if not ids:
                return []
            claimed = await conn.fetch(
                "UPDATE outbox SET outcome_unknown = (status = 'sending' OR outcome_unknown), "
                "status = 'sending', lease_owner = $1, lease_until = $2, "
                "first_attempt_at = COALESCE(first_attempt_at, $3) WHERE id = ANY($4::bigint[]) "
                f"RETURNING {rows.OUTBOX_COLUMNS}",
                owner, lease_until, now, ids,
            )
        return sorted((rows.outbox(r) for r in claimed), key=lambda r: r.id)

    async def renew_outbox_leases(self, owner: str, lease_until: datetime) -> int:
        async with self._tx("renewing delivery leases") as conn:
            found = await conn.fetch(
                "UPDATE outbox SET lease_until = $1 WHERE status = 'sending' AND lease_owner = $2 RETURNING id",
                ts_req(lease_until), owner,
            )
            return len(found)

    async def expire_outbox_leases(self) -> int:
        """Every lease runs out now. Only for the one process delivering from
        a database: on a database shared by several instances (what this
        backend is for) the app does not call it, since another live
        instance's claims would be taken over (bot.app)."""
        async with self._tx("recovering the outbox") as conn:
            found = await conn.fetch(
                "UPDATE outbox SET lease_until = $1 WHERE status = 'sending' RETURNING id", rows.EPOCH)
            return len(found)

    async def record_deliveries(self, owner: str, results: Sequence[DeliveryResult]) -> list[int]:
        """What became of claimed rows, in one transaction; see the protocol.
        Every UPDATE re-checks its row's state in its WHERE, so a result
        written twice, or one racing a takeover, changes nothing more."""
        if not results:
            return []
        for r in results:
            ts_req(r.at)
            ts(r.next_attempt_at)
        broke: list[int] = []
        async with self._tx("recording deliveries") as conn:
            # Row locks in id order, the order claims take them in: two
            # transactions never wait on each other in a circle.
            await conn.execute("SELECT id FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                               sorted({r.outbox_id for r in results}))
            for r in results:
                if r.outcome is DeliveryOutcome.SENT:
                    await conn.execute(
                        "UPDATE outbox SET status = 'sent', message_id = $1, sent_at = $2, last_error = NULL, "
                        "outcome_unknown = false, lease_owner = NULL, lease_until = NULL, "
                        "attempts = attempts + $3, message_url = $5 WHERE id = $4 AND status != 'sent'",
                        r.message_id, r.at, int(r.attempted), r.outbox_id, r.message_url,
                    )
                    continue
                if r.outcome is DeliveryOutcome.FAILED and r.break_route is not None:
                    done = await conn.fetchval(
                        "UPDATE routes SET broken_reason = $1 WHERE id = $2 AND broken_reason IS NULL RETURNING id",
                        r.error or "broken", r.break_route,
                    )
                    if done is not None:
                        broke.append(r.break_route)
                        if r.alert:
                            await rows.queue_alert(conn, r.alert, r.at, skip_route=r.break_route)
                await _record_other(conn, owner, r)
        return broke

    async def queue_events(self, events: Sequence[QueuedEvent], now: datetime) -> list[Event]:
        at = ts_req(now)
        written: list[Event] = []
        deliveries: list[tuple[int, Destination, int | None, str | None]] = []
        async with self._tx("queueing announcements") as conn:
            for e in events:
                # One announcement per item and kind, ever: the partial unique
                # index decides, so two instances queueing the same backfill
                # at once write it once (the second waits for the first's
                # commit, then skips). Tests and digests are outside the index.
                event_id = await conn.fetchval(
                    "INSERT INTO events (source_id, item_id, kind, title, url, payload, created_at, purpose) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                    "ON CONFLICT (item_id, kind) WHERE item_id IS NOT NULL AND purpose = 'announce' AND kind <> 'edit' "
                    "DO NOTHING "
                    "RETURNING id",
                    e.source_id, e.item_id, e.kind.value, e.title, e.url, dict(e.payload), at, e.purpose.value,
                )
                if event_id is None:
                    continue  # announced once already: never twice
                deliveries.extend((event_id, d.destination, d.route_id, d.mention) for d in e.deliveries)
                written.append(Event(event_id, e.kind, e.title, e.url, now, e.item_id, dict(e.payload), e.purpose))
            # Last, and in one statement: the outbox lock is held from here to
            # commit only (rows.insert_outbox).
            await rows.insert_outbox(conn, deliveries, now)
        return written

    async def route_tallies(self, route_ids: Sequence[int], since: datetime) -> dict[int, RouteTally]:
        if not route_ids:
            return {}
        found = await self._all(
            "SELECT o.route_id, count(*) FILTER (WHERE o.sent_at >= $2 AND e.kind NOT IN ('alert', 'digest')), "
            "max(o.sent_at) FROM outbox o JOIN events e ON e.id = o.event_id "
            "WHERE o.status = 'sent' AND o.route_id = ANY($1::bigint[]) AND e.kind NOT IN ('alert', 'edit') "
            "AND e.purpose != 'test' GROUP BY o.route_id",
            (list(route_ids), ts_req(since)), doing="counting a route's posts",
        )
        out = {r: RouteTally(0, None) for r in route_ids}
        for route_id, capped, last in found:
            out[route_id] = RouteTally(int(capped or 0), last)
        return out

    async def held_counts(self) -> dict[int, int]:
        found = await self._all(
            "SELECT route_id, count(*) FROM outbox WHERE status = 'held' AND route_id IS NOT NULL GROUP BY route_id")
        return {int(r[0]): int(r[1]) for r in found}

    async def build_digest(
        self, route_id: int, period: DigestPeriod, period_end: datetime, title: str, now: datetime,
    ) -> Event | None:
        at, end = ts_req(now), ts_req(period_end)
        try:
            async with self._tx("building a digest") as conn:
                if await conn.fetchval("SELECT 1 FROM digests WHERE route_id = $1 AND period_end = $2",
                                       route_id, end) is not None:
                    return None  # another instance (or an earlier tick) built it
                # Locked in id order: a builder racing this one waits here,
                # then sees these rows digested (READ COMMITTED re-checks the
                # WHERE) and builds nothing.
                held = await conn.fetch(
                    "SELECT id, event_id FROM outbox WHERE status = 'held' AND route_id = $1 "
                    "AND next_attempt_at < $2 ORDER BY id FOR UPDATE", route_id, end)
                found = await conn.fetchrow(f"SELECT {rows.ROUTE_COLUMNS} FROM routes WHERE id = $1", route_id)
                if not held or found is None:
                    return None
                route = rows.route(found)
                # The text SQLite writes (its times are ISO text), so a digest
                # reads the same whichever backend built it.
                payload = {"period": period.value,
                           "period_end": end.astimezone(timezone.utc).isoformat(timespec="microseconds"),
                           "event_ids": [int(r[1]) for r in held]}
                event_id = await conn.fetchval(
                    "INSERT INTO events (kind, title, payload, created_at, purpose) "
                    "VALUES ('digest', $1, $2, $3, 'digest') RETURNING id", title, payload, at)
                digest_id = await conn.fetchval(
                    "INSERT INTO digests (route_id, period_end, event_id, created_at) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (route_id, period_end) DO NOTHING RETURNING id", route_id, end, event_id, at)
                if digest_id is None:
                    # Built meanwhile from other rows (one held late): this
                    # period's digest exists, and this event must not.
                    raise _DigestExists
                await conn.execute(
                    "UPDATE outbox SET status = 'digested', digest_id = $1 WHERE id = ANY($2::bigint[]) "
                    "AND status = 'held'", digest_id, [r[0] for r in held])
                # Last: the outbox lock is held from here to commit only.
                await rows.insert_outbox(conn, [(event_id, rows.route_destination(route), route_id, route.mention)],
                                         now)
                return Event(event_id, EventKind.DIGEST, title, None, now, None, payload, EventPurpose.DIGEST)
        except _DigestExists:
            return None

    async def route_facts(self, now: datetime) -> dict[int, RouteFacts]:
        found = await self._all(
            "SELECT route_id, max(sent_at) FILTER (WHERE status = 'sent'), "
            "count(*) FILTER (WHERE status IN ('pending', 'sending') "
            "  AND NOT (status = 'pending' AND next_attempt_at > $1)), "
            "count(*) FILTER (WHERE status = 'pending' AND next_attempt_at > $1), "
            "min(next_attempt_at) FILTER (WHERE status = 'pending' AND next_attempt_at > $1), "
            "count(*) FILTER (WHERE status = 'held') "
            "FROM outbox WHERE route_id IS NOT NULL GROUP BY route_id",
            (ts_req(now),), doing="reading deliveries",
        )
        return {int(r[0]): RouteFacts(r[1], int(r[2]), int(r[3]), r[4], int(r[5])) for r in found}

    async def events_by_id(self, event_ids: Sequence[int]) -> dict[int, Event]:
        if not event_ids:
            return {}
        found = await self._all(
            f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE id = ANY($1::bigint[])", (list(event_ids),))
        return {r[0]: rows.event(r) for r in found}

    async def get_event(self, event_id: int) -> Event:
        row = await self._one(f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE id = $1", (event_id,))
        if row is None:
            raise NotFound(f"no event {event_id}")
        return rows.event(row)


async def _record_other(conn: asyncpg.Connection, owner: str, r: DeliveryResult) -> None:
    """A result other than SENT: written only while ``owner`` holds the row."""
    held = "WHERE id = $1 AND status = 'sending' AND lease_owner = $2"
    if r.outcome is DeliveryOutcome.FAILED:
        await conn.execute(
            "UPDATE outbox SET status = 'failed', last_error = $3, outcome_unknown = false, "
            f"lease_owner = NULL, lease_until = NULL, attempts = attempts + $4 {held}",
            r.outbox_id, owner, r.error, int(r.attempted),
        )
    elif r.outcome is DeliveryOutcome.HELD:
        # next_attempt_at keeps when it was held: a digest takes what was
        # held before its period ended (build_digest).
        await conn.execute(
            "UPDATE outbox SET status = 'held', outcome_unknown = false, lease_owner = NULL, "
            f"lease_until = NULL, next_attempt_at = $3 {held}",
            r.outbox_id, owner, r.at,
        )
    elif r.outcome is DeliveryOutcome.RETRY:
        await conn.execute(
            "UPDATE outbox SET status = 'pending', last_error = $3, next_attempt_at = $4, "
            f"outcome_unknown = $5, lease_owner = NULL, lease_until = NULL, attempts = attempts + $6 {held}",
            r.outbox_id, owner, r.error, r.next_attempt_at or r.at, r.outcome_unknown, int(r.attempted),
        )
    else:  # RELEASED: untouched, only the claim goes (and maybe a later due time)
        await conn.execute(
            "UPDATE outbox SET status = 'pending', lease_owner = NULL, lease_until = NULL, "
            f"next_attempt_at = COALESCE($3, next_attempt_at) {held}",
            r.outbox_id, owner, r.next_attempt_at,
        )


class _DigestExists(Exception):
    """Inside build_digest only: roll its transaction back (the period's
    digest was built meanwhile). Never leaves this module."""
