"""``all_in`` (bot/storage/sqlite/base.py): rows for a list of ids, a chunk of
at most IN_LIST_MAX ids per statement, on a real SQLite file whose bound-
parameter limit is lowered to exactly IN_LIST_MAX, so a statement binding one
id more than that fails here as it would on an SQLite built with a low cap."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiosqlite
import pytest

from bot.storage import SqliteStorage
from bot.storage.sqlite.base import IN_LIST_MAX, all_in
from tests import test_storage_contract as contract

ROWS = 1_300  # ids 1..ROWS, each with three parts in position order


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    db = await aiosqlite.connect(tmp_path / "in.db", isolation_level=None)
    try:
        await db.execute("CREATE TABLE parts (owner INTEGER NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL)")
        # Inserted newest position first, so only the ORDER BY puts them in
        # order; one transaction (autocommit would sync every row).
        await db.execute("BEGIN")
        await db.executemany("INSERT INTO parts (owner, position, name) VALUES (?, ?, ?)",
                             [(n, p, f"{n}.{p}") for n in range(1, ROWS + 1) for p in (2, 1, 0)])
        await db.execute("COMMIT")
        # The connection lives on aiosqlite's thread; its limit is set there.
        await db._execute(db._conn.setlimit, sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, IN_LIST_MAX)
        yield db
    finally:
        await db.close()


async def traced(conn: aiosqlite.Connection) -> list[str]:
    statements: list[str] = []
    await conn.set_trace_callback(statements.append)
    return statements


async def test_the_lowered_limit_refuses_one_id_more_than_a_chunk(conn: aiosqlite.Connection) -> None:
    marks = ",".join("?" * (IN_LIST_MAX + 1))
    with pytest.raises(sqlite3.OperationalError, match="too many SQL variables"):
        await conn.execute_fetchall(f"SELECT owner FROM parts WHERE owner IN ({marks})", range(IN_LIST_MAX + 1))


@pytest.mark.parametrize(("count", "statements"), [(0, 0), (1, 1), (IN_LIST_MAX, 1), (IN_LIST_MAX + 1, 2),
                                                   (1_200, 3)])
async def test_every_row_of_the_ids_a_chunk_per_statement(conn: aiosqlite.Connection, count: int,
                                                          statements: int) -> None:
    ids = list(range(1, count + 1))
    ran = await traced(conn)
    found = await all_in(conn, "SELECT owner, name FROM parts WHERE owner IN ({marks}) AND position = 0", ids)
    assert len(ran) == statements
    assert sorted(found) == [(n, f"{n}.0") for n in ids]


async def test_an_id_given_twice_across_chunks_matches_once(conn: aiosqlite.Connection) -> None:
    ids = [*range(1, IN_LIST_MAX + 1), 1, 2, IN_LIST_MAX + 1, IN_LIST_MAX + 1]  # 1 and 2 again in the second chunk
    found = await all_in(conn, "SELECT owner FROM parts WHERE owner IN ({marks}) AND position = 0", ids)
    assert sorted(r[0] for r in found) == list(range(1, IN_LIST_MAX + 2))


async def test_order_by_holds_within_each_id_and_chunks_come_in_id_order(conn: aiosqlite.Connection) -> None:
    ids = list(range(1_200, 0, -1))  # newest first: chunk 1 is 1200..701
    found = await all_in(conn, "SELECT owner, position FROM parts WHERE owner IN ({marks}) ORDER BY owner, position",
                         ids)
    assert len(found) == 3 * 1_200
    per_owner: dict[int, list[int]] = {}
    for owner, position in found:
        per_owner.setdefault(owner, []).append(position)
    assert all(positions == [0, 1, 2] for positions in per_owner.values())
    # ORDER BY sorts within a chunk only: chunks come in the order of the ids
    # given (1200..701, 700..201, 200..1), so a caller wanting one order sorts.
    assert [found[3 * IN_LIST_MAX * k] for k in range(3)] == [(701, 0), (201, 0), (1, 0)]


async def test_inside_a_write_transaction(conn: aiosqlite.Connection) -> None:
    await conn.execute("BEGIN IMMEDIATE")
    await conn.execute("DELETE FROM parts WHERE owner = 600")  # seen by its own transaction's reads
    found = await all_in(conn, "SELECT DISTINCT owner FROM parts WHERE owner IN ({marks})", list(range(1, 1_201)))
    await conn.execute("ROLLBACK")
    assert sorted(r[0] for r in found) == [n for n in range(1, 1_201) if n != 600]


@pytest.mark.parametrize("template", ["SELECT owner FROM parts", "SELECT 1 WHERE 1 IN ({marks}) OR 2 IN ({marks})"])
async def test_a_template_needs_exactly_one_marks(conn: aiosqlite.Connection, template: str) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await all_in(conn, template, [1])


@pytest.mark.parametrize("reads", [contract.test_items_chapters_and_vectors_of_more_ids_than_one_statement_binds,
                                   contract.test_events_and_trails_of_more_ids_than_one_statement_binds],
                         ids=["items", "events"])
async def test_the_storage_reads_many_ids_under_the_lowered_limit(
        tmp_path: Path, reads: Callable[[SqliteStorage], Awaitable[None]]) -> None:
    """The contract's reads over 1,200 ids, on a store whose connections bind
    at most IN_LIST_MAX parameters per statement (this build allows 250,000)."""
    async with await SqliteStorage.open(tmp_path / "s.db") as store:
        for db in (store._conn, store._read):
            await db._execute(db._conn.setlimit, sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, IN_LIST_MAX)
        await reads(store)
