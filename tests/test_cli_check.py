"""``showbot check`` names the backend and says whether the database is
reachable and migrated, without creating or migrating anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.storage.postgres.schema import SCHEMA_VERSION as PG_VERSION
from bot.storage.sqlite.schema import SCHEMA_VERSION
from tests.backends import PgRun, open_target, run_of


def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\npath = "{tmp_path / "data" / "s.db"}"\n')
    return path


def storage_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("storage: "))


def test_sqlite_not_created_yet_is_fine_and_stays_uncreated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOWBOT_DATABASE_URL", raising=False)
    assert main(["check", "--config", str(config(tmp_path))]) == 0
    line = storage_line(capsys.readouterr().out)
    assert line.startswith("storage: sqlite ") and "not created yet" in line
    assert not (tmp_path / "data").exists()


def test_sqlite_migrated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    monkeypatch.delenv("SHOWBOT_DATABASE_URL", raising=False)

    async def migrate() -> None:
        await (await open_target(tmp_path / "data" / "s.db")).close()

    asyncio.run(migrate())
    assert main(["check", "--config", str(config(tmp_path))]) == 0
    line = storage_line(capsys.readouterr().out)
    assert line == f"storage: sqlite {tmp_path / 'data' / 's.db'}: reachable, migrated (schema {SCHEMA_VERSION} of {SCHEMA_VERSION})"


def test_an_older_sqlite_file_is_neither_migrated_nor_compared(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from bot.storage.sqlite.base import split_sql
    from bot.storage.sqlite.schema import MIGRATIONS

    monkeypatch.delenv("SHOWBOT_DATABASE_URL", raising=False)
    (tmp_path / "data").mkdir()
    con = sqlite3.connect(tmp_path / "data" / "s.db")
    for statement in split_sql(MIGRATIONS[0]):
        con.execute(statement)
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    assert main(["check", "--config", str(config(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "will be migrated at the next start (schema 1 of" in storage_line(out)
    assert "database: not compared with this file until it is reachable and migrated" in out
    con = sqlite3.connect(tmp_path / "data" / "s.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1  # check wrote nothing
    con.close()


def test_sqlite_that_is_not_a_database_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOWBOT_DATABASE_URL", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "s.db").write_bytes(b"not sqlite" * 100)
    assert main(["check", "--config", str(config(tmp_path))]) == 1
    assert "NOT reachable" in storage_line(capsys.readouterr().out)


def test_postgres_empty_then_migrated_and_check_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, pg_run: PgRun | None,
) -> None:
    import asyncio

    import asyncpg

    async def tables(url: str) -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
        finally:
            await conn.close()

    async def migrate(url: str) -> None:
        await (await open_target(url)).close()

    url = asyncio.run(run_of(pg_run).create_database("showbot_test_check"))
    monkeypatch.setenv("SHOWBOT_DATABASE_URL", url.replace("://postgres@", "://postgres:hunter2@"))
    assert main(["check", "--config", str(config(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "postgres:***@" in out
    assert f"reachable, not migrated yet (schema 0 of {PG_VERSION}" in storage_line(out)
    assert asyncio.run(tables(url)) == 0  # check created nothing
    asyncio.run(migrate(url))
    assert main(["check", "--config", str(config(tmp_path))]) == 0
    assert storage_line(capsys.readouterr().out).endswith(f": reachable, migrated (schema {PG_VERSION} of {PG_VERSION})")


def test_postgres_unreachable_exits_1_without_the_password(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOWBOT_DATABASE_URL", "postgresql://bot:hunter2@127.0.0.1:1/showbot")
    assert main(["check", "--config", str(config(tmp_path))]) == 1
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    assert "postgresql postgresql://bot:***@127.0.0.1:1/showbot: NOT reachable" in storage_line(captured.out)
