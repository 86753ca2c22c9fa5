"""What ``showbot check`` says about the database: which backend, where, is
it reachable, and is it migrated -- found out without creating or migrating
anything (a SQLite file is opened read-only; PostgreSQL gets one plain
connection that only reads the version table)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.storage.url import redact


@dataclass(frozen=True, slots=True)
class StorageStatus:
    backend: str  # "sqlite" | "postgresql"
    where: str  # the file, or the URL without its password
    reachable: bool
    version: int | None = None  # what the database is at (0: empty, not migrated)
    current: int | None = None  # what this showbot writes
    error: str | None = None  # why it is not reachable (one line, no password)
    exists: bool = True  # SQLite: False until the first start creates the file

    @property
    def ok(self) -> bool:
        """Usable by this showbot as it is, or after the migration it runs at start."""
        if not self.reachable:
            return False
        return self.version is None or self.current is None or self.version <= self.current

    def describe(self) -> str:
        head = f"{self.backend} {self.where}"
        if not self.exists:
            return f"{head}: not created yet (created and migrated at the first start)"
        if not self.reachable:
            return f"{head}: NOT reachable: {self.error}"
        if self.version == 0:
            return f"{head}: reachable, not migrated yet (schema 0 of {self.current}; migrated at the first start)"
        if self.version is not None and self.current is not None and self.version > self.current:
            return (f"{head}: reachable, schema {self.version} is NEWER than this showbot's "
                    f"({self.current}): upgrade showbot")
        state = "migrated" if self.version == self.current else "will be migrated at the next start"
        return f"{head}: reachable, {state} (schema {self.version} of {self.current})"


def inspect_sqlite(path: Path) -> StorageStatus:
    from bot.storage.sqlite.schema import SCHEMA_VERSION

    where = str(path)
    if not path.exists():
        return StorageStatus("sqlite", where, reachable=True, current=SCHEMA_VERSION, exists=False)
    try:
        # mode=ro: never creates the file, never writes (no migration, no WAL switch).
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a real read: not a database?
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        return StorageStatus("sqlite", where, reachable=False, current=SCHEMA_VERSION,
                             error=" ".join(str(exc).split()))
    return StorageStatus("sqlite", where, reachable=True, version=version, current=SCHEMA_VERSION)


async def inspect_postgres(url: str, timeout_s: float = 5.0) -> StorageStatus:
    where = redact(url)
    import asyncpg

    from bot.storage.postgres.base import current_version, describe, password_of
    from bot.storage.postgres.schema import SCHEMA_VERSION

    try:
        conn = await asyncpg.connect(url, timeout=timeout_s, command_timeout=timeout_s)
        try:
            version = await current_version(conn)
        finally:
            await conn.close()
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        return StorageStatus("postgresql", where, reachable=False, current=SCHEMA_VERSION,
                             error=describe(exc, password_of(url)))
    return StorageStatus("postgresql", where, reachable=True, version=version, current=SCHEMA_VERSION)


def inspect_storage(path: Path, url: str | None) -> StorageStatus:
    """The status of the database a config names (``url`` wins, as at start)."""
    if url:
        return asyncio.run(inspect_postgres(url))
    return inspect_sqlite(path)
