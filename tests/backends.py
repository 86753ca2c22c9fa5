"""Both storage backends for tests: SQLite in the test's tmp_path, and
PostgreSQL in one fresh database per test run.

PostgreSQL runs when ``SHOWBOT_TEST_DATABASE_URL`` names a server
(postgresql://user@host:port/db, any database the user can connect to): the
run creates ``showbot_test_<random>`` there, migrates it once, truncates its
tables before each test (fast, and ids restart at 1 as in a new SQLite file)
and drops it at the end. Without the variable the PostgreSQL cases skip,
unless ``SHOWBOT_REQUIRE_POSTGRES=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.storage import SqliteStorage, Storage

URL_ENV = "SHOWBOT_TEST_DATABASE_URL"
REQUIRE_ENV = "SHOWBOT_REQUIRE_POSTGRES"
BACKENDS = ("sqlite", "postgresql")

Target = Path | str  # a SQLite file, or a postgresql:// URL


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def require_postgres() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip a PostgreSQL case, or fail it where PostgreSQL is required (CI)."""
    if require_postgres():
        pytest.fail(f"{REQUIRE_ENV}=1 but the PostgreSQL tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


class PgRun:
    """The server named by SHOWBOT_TEST_DATABASE_URL and the databases this run made on it."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []
        self.error: str | None = None
        self.url: str | None = None  # the run's migrated database

    async def create_database(self, prefix: str = "showbot_test") -> str:
        import asyncpg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.server_url, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        return with_database(self.server_url, name)

    async def drop_all(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.server_url, timeout=10)
        try:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def start(self) -> None:
        from bot.storage.postgres import PostgresStorage

        self.url = await self.create_database()
        store = await PostgresStorage.open(self.url)
        await store.close()


@pytest.fixture(scope="session")
def pg_run() -> Iterator[PgRun | None]:
    server = os.environ.get(URL_ENV)
    if not server:
        yield None
        return
    run = PgRun(server)
    try:
        asyncio.run(run.start())
    except Exception as exc:  # unreachable server, no CREATE DATABASE right: said once per case
        run.error = f"cannot create a test database on {URL_ENV}: {type(exc).__name__}: {exc}"
    try:
        yield run
    finally:
        if run.created:
            asyncio.run(run.drop_all())


async def truncate(url: str) -> None:
    import asyncpg

    from bot.storage.postgres.schema import TABLES

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        await conn.execute("UPDATE search_stats SET items = 0, words = 0")  # one row, kept by the writers
    finally:
        await conn.close()


def run_of(pg_run: PgRun | None) -> PgRun:
    if pg_run is None:
        unavailable(f"PostgreSQL tests need {URL_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    assert pg_run is not None
    if pg_run.error or pg_run.url is None:
        unavailable(pg_run.error or "no test database")
    return pg_run


@pytest.fixture
async def pg_url(pg_run: PgRun | None) -> str:
    """The run's PostgreSQL database, emptied for this test."""
    run = run_of(pg_run)
    assert run.url is not None
    await truncate(run.url)
    return run.url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db(backend: str, tmp_path: Path, pg_run: PgRun | None) -> Target:
    """Where a test's storage lives: a SQLite file, or the emptied PostgreSQL database."""
    if backend == "sqlite":
        return tmp_path / "s.db"
    run = run_of(pg_run)
    assert run.url is not None
    await truncate(run.url)
    return run.url


async def open_target(target: Target) -> Storage:
    """A storage on ``target`` (migrated), as the bot opens one."""
    if isinstance(target, str):
        from bot.storage.postgres import PostgresStorage

        return await PostgresStorage.open(target)
    return await SqliteStorage.open(target)


def storage_class(target: Target) -> type:
    if isinstance(target, str):
        from bot.storage.postgres import PostgresStorage

        return PostgresStorage
    return SqliteStorage


@pytest.fixture
async def storage(db: Target) -> AsyncIterator[Storage]:
    store = await open_target(db)
    try:
        yield store
    finally:
        await store.close()
