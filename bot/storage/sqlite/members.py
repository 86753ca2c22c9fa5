"""What members and moderators keep: the audit log, feed filters and
personal subscriptions."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from bot.errors import AlreadyExists, NotFound, UserError
from bot.intents import FilterRule, Subscription
from bot.models import Platform
from bot.storage.records import AuditRow
from bot.storage.sqlite.base import SqliteBase, from_db_time, to_db_time


class MembersTable(SqliteBase):
    async def add_audit(self, at: datetime, platform: Platform, user_id: str, action: str, detail: str) -> None:
        async with self._tx("writing the audit log") as db:
            await _audit(db, at, platform, user_id, action, detail)

    async def list_audit(self, limit: int = 50) -> list[AuditRow]:
        found = await self._all(
            "SELECT at, platform, user_id, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        out = []
        for r in found:
            at = from_db_time(r[0])
            assert at is not None
            out.append(AuditRow(at, r[1], r[2], r[3], r[4]))
        return out

    async def load_filters(self, source_id: int) -> list[FilterRule]:
        found = await self._all("SELECT mode, pattern FROM filters WHERE source_id = ? ORDER BY id", (source_id,))
        return [FilterRule(r[0], r[1]) for r in found]

    async def add_filter(
        self, source_id: int, rule: FilterRule, now: datetime, *, audit: tuple[Platform, str] | None = None,
    ) -> None:
        if rule.mode not in ("include", "exclude"):
            raise UserError("a filter is include or exclude")
        async with self._tx("saving a filter") as db:
            cur = await db.execute(
                "INSERT INTO filters (source_id, mode, pattern, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (source_id, rule.mode, rule.pattern, to_db_time(now)),
            )
            if cur.rowcount == 0:
                raise AlreadyExists("that filter is already set")
            if audit is not None:
                await _audit(db, now, audit[0], audit[1], f"filter {rule.mode}",
                             f"source_id={source_id} pattern={rule.pattern}")

    async def clear_filters(self, source_id: int, now: datetime, *, audit: tuple[Platform, str] | None = None) -> int:
        async with self._tx("clearing filters") as db:
            cur = await db.execute("DELETE FROM filters WHERE source_id = ?", (source_id,))
            if audit is not None:
                await _audit(db, now, audit[0], audit[1], "filter clear", f"source_id={source_id}")
            return cur.rowcount

    async def load_subscriptions(self) -> list[Subscription]:
        found = await self._all("SELECT platform, user_id, topic FROM subscriptions ORDER BY id")
        return [Subscription(Platform(r[0]), r[1], r[2]) for r in found]

    async def member_subscriptions(self, platform: Platform, user_id: str) -> list[str]:
        found = await self._all(
            "SELECT topic FROM subscriptions WHERE platform = ? AND user_id = ? ORDER BY topic",
            (platform.value, user_id),
        )
        return [r[0] for r in found]

    async def add_subscription(
        self, platform: Platform, user_id: str, topic: str, now: datetime, max_per_member: int,
    ) -> bool:
        async with self._tx("subscribing") as db:
            async with db.execute(
                "SELECT count(*) FROM subscriptions WHERE platform = ? AND user_id = ?", (platform.value, user_id)
            ) as cur:
                row = await cur.fetchone()
            cur2 = await db.execute(
                "INSERT INTO subscriptions (platform, user_id, topic, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (platform.value, user_id, topic, to_db_time(now)),
            )
            if cur2.rowcount == 1 and row is not None and row[0] >= max_per_member:
                raise UserError(f"you can follow at most {max_per_member} topics; unsubscribe one first")
            return cur2.rowcount == 1

    async def remove_subscription(self, platform: Platform, user_id: str, topic: str) -> None:
        async with self._tx("unsubscribing") as db:
            cur = await db.execute(
                "DELETE FROM subscriptions WHERE platform = ? AND user_id = ? AND topic = ?",
                (platform.value, user_id, topic),
            )
            if cur.rowcount == 0:
                raise NotFound(f"you are not subscribed to {topic!r}")


async def _audit(db: aiosqlite.Connection, at: datetime, platform: Platform, user_id: str,
                 action: str, detail: str) -> None:
    await db.execute(
        "INSERT INTO audit (at, platform, user_id, action, detail) VALUES (?, ?, ?, ?, ?)",
        (to_db_time(at), platform.value, user_id, action, detail),
    )
