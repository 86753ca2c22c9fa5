"""The connection pool every table module of this backend shares.

Contract:
- one asyncpg pool per storage; every write runs in one transaction on one
  pooled connection (``_tx``), reads run as single statements (or one
  read-only snapshot, ``_snapshot``);
- operational failures (unreachable, refused, timed out, server errors) become
  StorageError with a one-line message that names the database by its
  redacted URL and never carries the password; unique violations are mapped
  to domain errors (AlreadyExists, ClaimLost) at the statement that can raise
  them, anything else the driver raises becomes StorageError here;
- migrations run at open, recorded in ``schema_migrations``, under an
  advisory transaction lock;
- times are aware UTC datetimes both ways (``timestamptz``); a naive one is a
  bug and raises ValueError before anything is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, AsyncIterator, Sequence
from urllib.parse import urlsplit

import asyncpg

from bot.errors import ShowbotError, StorageError
from bot.storage.postgres.schema import LOCK_MIGRATE, LOCK_NAMESPACE, MIGRATIONS, SCHEMA_VERSION
from bot.storage.url import redact

log = logging.getLogger("showbot.storage")

# A statement that takes longer than this is a stuck server, not a slow query.
COMMAND_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0


def ts(value: datetime | None) -> datetime | None:
    """A datetime on its way in: aware, or a ValueError (never guessed as local or UTC)."""
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime reached the store; use UTC-aware datetimes")
    return value


def ts_req(value: datetime) -> datetime:
    checked = ts(value)
    assert checked is not None
    return checked


def one_line(text: str, secret: str | None) -> str:
    """A driver message, made safe to show: one line, no password."""
    line = " ".join(str(text).split())
    if secret:
        line = line.replace(secret, "***")
    return line[:500]


def describe(exc: BaseException, secret: str | None) -> str:
    message = one_line(str(exc), secret)
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python values (event payloads are dicts).
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: nothing more
    than asyncpg always does (roll back a transaction left open, drop
    listeners). Its default reset also sends ``pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL``, a round trip at every release (a reply's
    few queries make several), to undo session state this storage never
    makes: its advisory locks are transaction locks, its settings ``SET
    LOCAL``, it keeps no cursor outside a transaction and listens to no channel
    (tests/test_pg_pool.py checks both the sources and the behaviour)."""


async def connect_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool on ``url``, or StorageError naming the database without its password."""
    secret = password_of(url)
    try:
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session,
            timeout=CONNECT_TIMEOUT_S, command_timeout=COMMAND_TIMEOUT_S,
        )
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise StorageError(f"cannot open database {redact(url)}: {describe(exc, secret)}") from None
    assert pool is not None
    return pool


def password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class PostgresBase:
    backend = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = redact(url)  # what logs and messages may show
        self._secret = password_of(url)
        self._closed = False
        # Document frequencies of search terms (catalog.py), per process:
        # dropped whenever this process writes items, and at most
        # DF_CACHE_S old otherwise (another instance's writes).
        self._df_cache: dict[str, tuple[float, int]] = {}
        self._flush_refused = False  # _flush_search_index: this role may not merge the indexes

    def _catalogue_changed(self) -> None:
        self._df_cache.clear()

    async def _flush_search_index(self, *, episodes: bool) -> None:
        """Move the search indexes' pending entries into their trees, after a
        write committed them (``write_poll``). Both GIN indexes take new
        entries into a pending list (fastupdate) that every search reads in
        full until it is merged: cheap writes (a first poll of 540 episodes
        stored in ~0.75 -> ~0.45 s, as without the episodes' index), and
        searches as fast as without the list, merged here in bulk rather than
        by the next insert that overflows it (up to 4 MB) or autovacuum.
        Best effort: the poll is stored either way. Merging needs the
        indexes' owner (the role that migrated); another role is told once."""
        if self._flush_refused:
            return
        names = ["items_search", "items_search_episode"] if episodes else ["items_search"]
        try:
            async with self._pool.acquire() as conn:
                await conn.execute("SELECT gin_clean_pending_list(n::regclass) FROM unnest($1::text[]) AS n", names)
        except asyncpg.InsufficientPrivilegeError:
            self._flush_refused = True
            log.warning("search indexes not tidied after writes: this database role does not own them "
                        "(searches read their pending entries until autovacuum merges them)")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError) as exc:
            log.warning("search indexes not tidied after a write (%s); autovacuum will", describe(exc, self._secret))

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> Any:
        pool = await connect_pool(url, min_size=min_size, max_size=max_size)
        storage = cls(pool, url)
        try:
            await storage._migrate()
        except BaseException:
            await pool.close()
            raise
        return storage

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- migrations -----------------------------------------------------------------

    async def _migrate(self) -> None:
        async with self._tx("migrating the database") as conn:
            await migrate(conn)

    async def schema_version(self) -> tuple[int, int]:
        async with self._errors("reading the schema version"), self._pool.acquire() as conn:
            return await current_version(conn), SCHEMA_VERSION

    # -- the error boundary and transactions ---------------------------------------------

    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        try:
            yield
        except ShowbotError:
            raise  # domain errors mapped at their statement
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError) as exc:
            # First: asyncpg's DataError is also a ValueError. Including
            # constraint violations no statement mapped: the contract lets
            # nothing from the driver escape.
            raise StorageError(
                f"storage error while {doing} ({self.url}): {describe(exc, self._secret)}") from None

    @asynccontextmanager
    async def _tx(self, doing: str, *, isolation: str = "read_committed",
                  readonly: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """One transaction on one pooled connection; on any error it rolls back."""
        async with self._errors(doing), self._pool.acquire() as conn:
            async with conn.transaction(isolation=isolation, readonly=readonly):
                yield conn

    def _snapshot(self, doing: str = "reading") -> Any:
        """Several reads that see one state of the database (a repeatable-read,
        read-only transaction)."""
        return self._tx(doing, isolation="repeatable_read", readonly=True)

    async def _all(self, sql: str, params: Sequence[Any] = (), doing: str = "reading") -> list[asyncpg.Record]:
        async with self._errors(doing):
            return list(await self._pool.fetch(sql, *params))

    async def _one(self, sql: str, params: Sequence[Any] = (), doing: str = "reading") -> asyncpg.Record | None:
        async with self._errors(doing):
            row: asyncpg.Record | None = await self._pool.fetchrow(sql, *params)
            return row

    # -- settings and health ----------------------------------------------------------

    async def find_setting(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM settings WHERE key = $1", (key,))
        return row[0] if row else None

    async def set_setting(self, key: str, value: str) -> None:
        async with self._tx("saving a setting") as conn:
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                key, value,
            )

    async def check_writable(self, now: datetime) -> None:
        ts(now)
        async with self._tx("checking that the database takes writes") as conn:
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES ('health.checked_at', $1) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                now.isoformat(timespec="microseconds"),
            )


async def lock(conn: asyncpg.Connection, key: int) -> None:
    """Take one of our advisory locks until the end of the current transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_NAMESPACE, key)


async def current_version(conn: asyncpg.Connection) -> int:
    """The schema version recorded in the database; 0 for an empty one. Reads only."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def migrate(conn: asyncpg.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION inside the caller's transaction,
    serialized against every other showbot doing the same."""
    await lock(conn, LOCK_MIGRATE)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    version = await current_version(conn)
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"database schema version {version} is newer than this showbot ({SCHEMA_VERSION}); upgrade showbot")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        await conn.execute(MIGRATIONS[target - 1])
        await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", target)
