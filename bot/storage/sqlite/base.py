"""The SQLite connection every table module of this backend shares.

Contract:
- two aiosqlite connections per storage, WAL, foreign keys on, a busy
  timeout: one writes, one reads. Each has its own thread, so a member's
  query never queues behind a big poll's write (WAL: readers don't block
  the writer, nor it them), and reads see only what was committed;
- every write runs in one explicit transaction (``BEGIN IMMEDIATE``) under an
  asyncio lock, so coroutines never interleave inside a transaction;
- operational sqlite errors (locked, disk full, read-only, corrupt) become
  StorageError at this boundary; constraint failures are mapped to domain
  errors (AlreadyExists) at the statement that can raise them, and any
  other one becomes StorageError here;
- migrations run at open, keyed by PRAGMA user_version;
- ``synchronous=NORMAL`` (WAL: a power cut may undo the last commits, never
  corrupt), except for commits that must survive one (``durable``);
- ``threads_busy()``: whether any SQLite store of this process has an
  operation in flight on its connection threads. Those threads need the
  GIL between their SQLite calls, so CPU-bound work on the loop (the feed
  parser, bot/sources/parsing.py) steps aside while it is true.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import aiosqlite

from bot.errors import StorageError
from bot.storage.sqlite.schema import MIGRATIONS, SCHEMA_VERSION


# Operations in flight on the connection threads of every SQLite store in
# this process together: the GIL they compete for is the process's.
_in_flight = 0


def threads_busy() -> bool:
    """Is any store's connection thread (reads or writes) working or about to?"""
    return _in_flight > 0


def to_db_time(value: datetime | None) -> str | None:
    """UTC ISO-8601 with microseconds: sorts as text in time order."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime reached the store; use UTC-aware datetimes")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# At most this many ids go into one ``IN (...)`` list; a longer list is
# queried a chunk at a time (``all_in``). SQLite caps the parameters bound to
# one statement at build time (SQLITE_MAX_VARIABLE_NUMBER: 999 by default
# before 3.32, 32,766 since; a distribution may pick its own), so 500 stays
# under the lowest default with room for a statement's other parameters, and
# a chunk is still one hop to the database thread.
IN_LIST_MAX = 500


async def all_in(conn: aiosqlite.Connection, template: str, ids: Sequence[Any]) -> list[sqlite3.Row]:
    """The rows of ``template`` over ``ids``: SQL with one ``{marks}`` where the
    ids are bound (``... WHERE id IN ({marks}) ...``), run once per chunk of
    at most IN_LIST_MAX ids on ``conn`` (a read connection, or a write
    transaction's), chunk after chunk. Each id is bound once, in first-seen
    order: a duplicate in a later chunk would match its rows again. An
    ORDER BY in the template orders each chunk's rows, not the whole result;
    rows grouped by the chunked id keep it (all of one id's rows are in one
    chunk), and a caller that needs one order across chunks sorts the result.
    No ids, no query."""
    if template.count("{marks}") != 1:  # the ids are bound once per statement
        raise ValueError("the query template needs exactly one {marks} for the ids")
    unique = list(dict.fromkeys(ids))
    found: list[sqlite3.Row] = []
    for start in range(0, len(unique), IN_LIST_MAX):
        chunk = unique[start:start + IN_LIST_MAX]
        sql = template.replace("{marks}", ",".join("?" * len(chunk)))
        found.extend(await conn.execute_fetchall(sql, chunk))
    return found


def split_sql(script: str) -> list[str]:
    """Split a migration into statements (none of ours contain ';' in literals)."""
    statements, buf = [], []
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(buf).strip())
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        statements.append(rest)
    return [s for s in statements if s.strip(" ;\n")]


class SqliteBase:
    backend = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._read: aiosqlite.Connection = conn  # until _setup opens its own
        self._lock = asyncio.Lock()
        self.path = path
        self._closed = False

    @classmethod
    async def open(cls, path: Path | str) -> Any:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {str(path)!r}: {exc}") from exc
        storage = cls(conn, path)
        try:
            await storage._setup()
        except BaseException:
            await conn.close()
            raise
        return storage

    async def close(self) -> None:
        if self._closed:
            return
        async with self._lock:
            self._closed = True
            if self._read is not self._conn:
                await self._read.close()
            await self._conn.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _setup(self) -> None:
        async with self._errors("opening the database"):
            await self._conn.execute("PRAGMA journal_mode=WAL")
            await self._conn.execute("PRAGMA foreign_keys=ON")
            await self._conn.execute("PRAGMA busy_timeout=5000")
            await self._conn.execute("PRAGMA synchronous=NORMAL")
            version = await self._user_version()
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"database schema version {version} is newer than this showbot "
                    f"({SCHEMA_VERSION}); upgrade showbot"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in split_sql(MIGRATIONS[target - 1]):
                        await self._conn.execute(statement)
                    await self._conn.execute(f"PRAGMA user_version = {target}")
                    await self._conn.execute("COMMIT")
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
        try:
            reader = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {str(self.path)!r} for reading: {exc}") from exc
        try:
            async with self._errors("opening the database for reading"):
                await reader.execute("PRAGMA busy_timeout=5000")
                await reader.execute("PRAGMA query_only=ON")
        except BaseException:
            await reader.close()
            raise
        self._read = reader

    async def _user_version(self) -> int:
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def schema_version(self) -> tuple[int, int]:
        async with self._errors("reading the schema version"):
            return await self._user_version(), SCHEMA_VERSION

    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        # Every operation of this backend runs inside this block (a whole
        # transaction, for a write), so it is where threads_busy() counts.
        global _in_flight
        _in_flight += 1
        try:
            yield
        except sqlite3.IntegrityError as exc:
            # The expected ones (a taken name, a racing poll) were mapped to
            # domain errors at their statement, inside this block; one that
            # gets here (a row naming a route that is gone) is still the
            # driver's, which the contract lets nowhere out.
            raise StorageError(f"storage error while {doing}: constraint failed: {exc}") from exc
        except sqlite3.Error as exc:  # OperationalError, DatabaseError: locked, full, corrupt
            raise StorageError(f"storage error while {doing}: {exc}") from exc
        finally:
            _in_flight -= 1

    @asynccontextmanager
    async def _tx(self, doing: str, *, durable: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction. ``durable``: its COMMIT is fsynced (FULL).
        A claim on a delivery must survive a power cut, or a post the
        platform already has could be sent again; everything committed
        before a durable commit is durable with it (the WAL is one log)."""
        async with self._lock, self._errors(doing):
            if durable:
                await self._conn.execute("PRAGMA synchronous=FULL")
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                else:
                    await self._conn.execute("COMMIT")
            finally:
                if durable:
                    await self._conn.execute("PRAGMA synchronous=NORMAL")

    async def _all(self, sql: str, params: Sequence[Any] = (), doing: str = "reading") -> list[sqlite3.Row]:
        """Rows in one hop to the database thread (execute + fetchall + close)."""
        async with self._errors(doing):
            return list(await self._read.execute_fetchall(sql, params))

    async def _all_in(self, template: str, ids: Sequence[Any], doing: str = "reading") -> list[sqlite3.Row]:
        """``all_in`` on the read connection: rows for ids, a chunk at a time."""
        async with self._errors(doing):
            return await all_in(self._read, template, ids)

    async def _one(self, sql: str, params: Sequence[Any] = (), doing: str = "reading") -> Any:
        rows = await self._all(sql, params, doing)
        return rows[0] if rows else None

    # -- settings and health ----------------------------------------------------

    async def find_setting(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return row[0] if row else None

    async def set_setting(self, key: str, value: str) -> None:
        async with self._tx("saving a setting") as db:
            await db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    async def check_writable(self, now: datetime) -> None:
        async with self._tx("checking that the database takes writes") as db:
            await db.execute(
                "INSERT INTO settings (key, value) VALUES ('health.checked_at', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (to_db_time(now),),
            )
