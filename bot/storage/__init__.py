"""Storage behind one interface (``Storage``, port.py); SQLite and
PostgreSQL specifics stay inside their packages. ``open_storage`` picks the
backend from the config: SQLite at ``[storage] path`` unless a database URL
is given (``SHOWBOT_DATABASE_URL``, else ``[storage] url``)."""

from __future__ import annotations

from pathlib import Path

from bot.storage.port import Storage
from bot.storage.records import (
    DeliveryOutcome,
    DeliveryResult,
    OutboxRow,
    OutboxStatus,
    PollWrite,
    RouteSeed,
    SearchHit,
)
from bot.storage.sqlite import SqliteStorage


async def open_storage(path: Path | str, url: str | None = None) -> Storage:
    """The storage of a config: ``url`` (postgresql://...) when given, else
    the SQLite file at ``path``. Migrates it to this showbot's schema."""
    if url:
        # Imported here: asyncpg loads only for a PostgreSQL config.
        from bot.storage.postgres import PostgresStorage
        from bot.storage.url import check_url

        return await PostgresStorage.open(check_url(url, "storage.url"))
    return await SqliteStorage.open(path)


__all__ = [
    "DeliveryOutcome",
    "DeliveryResult",
    "OutboxRow",
    "OutboxStatus",
    "PollWrite",
    "RouteSeed",
    "SearchHit",
    "SqliteStorage",
    "Storage",
    "open_storage",
]
