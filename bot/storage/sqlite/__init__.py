"""The SQLite backend: the embedded default. One module per table group,
one connection (``base.SqliteBase``) they share; ``SqliteStorage`` is all of
them, the ``bot.storage.Storage`` protocol in full."""

from __future__ import annotations

from pathlib import Path

from bot.storage.sqlite.base import threads_busy
from bot.storage.sqlite.documents import DocumentsTable
from bot.storage.sqlite.members import MembersTable
from bot.storage.sqlite.outbox import OutboxTable
from bot.storage.sqlite.polls import PollsTable
from bot.storage.sqlite.routes import RoutesTable
from bot.storage.sqlite.sources import SourcesTable
from bot.storage.sqlite.stats import StatsTable
from bot.storage.sqlite.trails import TrailsTable
from bot.storage.sqlite.vectors import VectorsTable


class SqliteStorage(
    SourcesTable, PollsTable, DocumentsTable, RoutesTable, OutboxTable, MembersTable, StatsTable, TrailsTable,
    VectorsTable,
):
    @classmethod
    async def open(cls, path: Path | str) -> "SqliteStorage":
        storage: SqliteStorage = await super().open(path)
        return storage


__all__ = ["SqliteStorage", "threads_busy"]
