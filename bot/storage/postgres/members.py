"""What members and moderators keep: the audit log, feed filters and
personal subscriptions."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.errors import AlreadyExists, NotFound, UserError
from bot.intents import FilterRule, Subscription
from bot.models import Platform
from bot.storage.postgres.base import PostgresBase, ts_req
from bot.storage.records import AuditRow


class MembersTable(PostgresBase):
    async def add_audit(self, at: datetime, platform: Platform, user_id: str, action: str, detail: str) -> None:
        async with self._tx("writing the audit log") as conn:
            await _audit(conn, at, platform, user_id, action, detail)

    async def list_audit(self, limit: int = 50) -> list[AuditRow]:
        found = await self._all(
            "SELECT at, platform, user_id, action, detail FROM audit ORDER BY id DESC LIMIT $1", (max(0, limit),))
        return [AuditRow(r[0], r[1], r[2], r[3], r[4]) for r in found]

    async def load_filters(self, source_id: int) -> list[FilterRule]:
        found = await self._all("SELECT mode, pattern FROM filters WHERE source_id = $1 ORDER BY id", (source_id,))
        return [FilterRule(r[0], r[1]) for r in found]

    async def add_filter(
        self, source_id: int, rule: FilterRule, now: datetime, *, audit: tuple[Platform, str] | None = None,
    ) -> None:
        if rule.mode not in ("include", "exclude"):
            raise UserError("a filter is include or exclude")
        async with self._tx("saving a filter") as conn:
            done = await conn.fetchval(
                "INSERT INTO filters (source_id, mode, pattern, created_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING RETURNING id",
                source_id, rule.mode, rule.pattern, ts_req(now),
            )
            if done is None:
                raise AlreadyExists("that filter is already set")
            if audit is not None:
                await _audit(conn, now, audit[0], audit[1], f"filter {rule.mode}",
                             f"source_id={source_id} pattern={rule.pattern}")

    async def clear_filters(self, source_id: int, now: datetime, *, audit: tuple[Platform, str] | None = None) -> int:
        async with self._tx("clearing filters") as conn:
            gone = await conn.fetch("DELETE FROM filters WHERE source_id = $1 RETURNING id", source_id)
            if audit is not None:
                await _audit(conn, now, audit[0], audit[1], "filter clear", f"source_id={source_id}")
            return len(gone)

    async def load_subscriptions(self) -> list[Subscription]:
        found = await self._all("SELECT platform, user_id, topic FROM subscriptions ORDER BY id")
        return [Subscription(Platform(r[0]), r[1], r[2]) for r in found]

    async def member_subscriptions(self, platform: Platform, user_id: str) -> list[str]:
        found = await self._all(
            "SELECT topic FROM subscriptions WHERE platform = $1 AND user_id = $2 ORDER BY topic COLLATE \"C\"",
            (platform.value, user_id),
        )
        return [r[0] for r in found]

    async def add_subscription(
        self, platform: Platform, user_id: str, topic: str, now: datetime, max_per_member: int,
    ) -> bool:
        async with self._tx("subscribing") as conn:
            # The member's row count decides the limit: lock the member (an
            # advisory lock on their key) so two concurrent subscribes can't
            # both pass it.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                               f"showbot:subscriptions:{platform.value}:{user_id}")
            had = await conn.fetchval(
                "SELECT count(*) FROM subscriptions WHERE platform = $1 AND user_id = $2", platform.value, user_id)
            added = await conn.fetchval(
                "INSERT INTO subscriptions (platform, user_id, topic, created_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING RETURNING id",
                platform.value, user_id, topic, ts_req(now),
            )
            if added is not None and had >= max_per_member:
                raise UserError(f"you can follow at most {max_per_member} topics; unsubscribe one first")
            return added is not None

    async def remove_subscription(self, platform: Platform, user_id: str, topic: str) -> None:
        async with self._tx("unsubscribing") as conn:
            gone = await conn.fetchval(
                "DELETE FROM subscriptions WHERE platform = $1 AND user_id = $2 AND topic = $3 RETURNING id",
                platform.value, user_id, topic,
            )
            if gone is None:
                raise NotFound(f"you are not subscribed to {topic!r}")


async def _audit(conn: asyncpg.Connection, at: datetime, platform: Platform, user_id: str,
                 action: str, detail: str) -> None:
    await conn.execute(
        "INSERT INTO audit (at, platform, user_id, action, detail) VALUES ($1, $2, $3, $4, $5)",
        ts_req(at), platform.value, user_id, action, detail,
    )
