"""The PostgreSQL backend: several showbot instances on one database.

One module per table group, one asyncpg pool (``base.PostgresBase``) they
share; ``PostgresStorage`` is all of them, the ``bot.storage.Storage``
protocol in full. asyncpg is imported here only: a SQLite-only showbot never
loads it (``bot.storage.open_storage`` imports this package on demand).

Every once-only action is a claim in the database, safe across processes:
polls (``claim_poll``: INSERT ... ON CONFLICT ... WHERE the lease ran out),
deliveries (``claim_outbox``: serialized by an advisory lock, rows locked,
destinations kept in id order), seeding and migrations (advisory locks).

Durability: PostgreSQL's default ``synchronous_commit = on`` makes every
commit durable (WAL flushed to disk) before it returns; a claim on a
delivery sets it for its own transaction anyway, so a server configured
with ``synchronous_commit = off`` still never forgets a claim whose post
the platform may already have.
"""

from __future__ import annotations

from bot.storage.postgres.documents import DocumentsTable
from bot.storage.postgres.members import MembersTable
from bot.storage.postgres.outbox import OutboxTable
from bot.storage.postgres.polls import PollsTable
from bot.storage.postgres.routes import RoutesTable
from bot.storage.postgres.sources import SourcesTable
from bot.storage.postgres.stats import StatsTable
from bot.storage.postgres.trails import TrailsTable
from bot.storage.postgres.vectors import VectorsTable


class PostgresStorage(
    SourcesTable, PollsTable, DocumentsTable, RoutesTable, OutboxTable, MembersTable, StatsTable, TrailsTable,
    VectorsTable,
):
    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> "PostgresStorage":
        storage: PostgresStorage = await super().open(url, min_size=min_size, max_size=max_size)
        return storage


__all__ = ["PostgresStorage"]
