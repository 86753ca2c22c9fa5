"""``bench_search --database-url`` runs in a scratch database of its own on
that server and drops it at the end, also when the run fails: the database
the URL names is left as it was (it used to receive the whole catalogue)."""

from __future__ import annotations

import re

import pytest

from bench import bench_search
from tests.backends import PgRun, run_of

TINY = ["--episodes", "3", "--posts", "5", "--runs", "1", "--lexical"]


async def _tables(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    finally:
        await conn.close()


async def _database_exists(server_url: str, name: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name))
    finally:
        await conn.close()


def _scratch_name(out: str) -> str:
    found = re.search(r"^database: (\S+) \(scratch", out, re.M)
    assert found, out
    return found.group(1)


async def test_bench_search_on_postgres_uses_and_drops_a_scratch_database(
    pg_run: PgRun | None, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_of(pg_run)
    given = await run.create_database("showbot_test_bench")
    await bench_search.main(["--database-url", given, *TINY])
    out = capsys.readouterr().out
    assert "backend: postgresql" in out and "episode search" in out
    assert await _tables(given) == 0
    name = _scratch_name(out)
    assert name != given.rsplit("/", 1)[-1]
    assert not await _database_exists(run.server_url, name)


async def test_a_failing_bench_search_still_drops_its_scratch_database(
    pg_run: PgRun | None, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_of(pg_run)
    given = await run.create_database("showbot_test_bench")
    # No episodes: the show-notes median of nothing fails once the store is open.
    with pytest.raises(IndexError):
        await bench_search.main(["--database-url", given, *TINY[2:], "--episodes", "0"])
    name = _scratch_name(capsys.readouterr().out)
    assert not await _database_exists(run.server_url, name)
    assert await _tables(given) == 0
