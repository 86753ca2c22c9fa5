"""The PostgreSQL pool skips asyncpg's reset query at release (a round trip
each time), which is safe only while the storage keeps no session state:
both halves are checked here."""

from __future__ import annotations

import re
from pathlib import Path

from bot.storage.postgres import PostgresStorage

SOURCES = Path(__file__).resolve().parent.parent / "bot" / "storage" / "postgres"


def test_the_postgres_storage_makes_no_session_state() -> None:
    """Session-level state would outlive a connection's release now that the
    pool no longer resets it: advisory locks must be transaction locks,
    settings SET LOCAL, and nothing may LISTEN or keep a cursor open."""
    offending = []
    for path in sorted(SOURCES.glob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if (re.search(r"pg_(try_)?advisory_lock", code) or re.search(r"\bLISTEN\b", code)
                    or re.search(r"\bDECLARE\b.*\bCURSOR\b", code) or re.search(r"\.cursor\(", code)
                    or re.search(r"""["']SET (?!LOCAL\b)(SESSION )?[a-z_]+ (=|TO)\b""", code)
                    or re.search(r"set_config\([^)]*false", code)):
                offending.append(f"{path.name}:{n}: {line.strip()}")
    assert offending == []


async def test_a_released_connection_is_not_reset_but_its_transaction_is_rolled_back(pg_url: str) -> None:
    store = await PostgresStorage.open(pg_url, min_size=1, max_size=1)
    try:
        pool = store._pool
        sent: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
            await conn.execute("SELECT 1")
            await conn.execute("BEGIN")  # left open, as a bug would
            await conn.execute("CREATE TEMP TABLE left_open (x int)")
        # One connection in the pool: the same one again, without the reset
        # query but outside any transaction, and what that transaction did is gone.
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
        assert not any("RESET ALL" in q or "pg_advisory_unlock_all" in q for q in sent), sent
        assert "ROLLBACK" in sent
    finally:
        await store.close()
