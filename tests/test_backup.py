"""`showbot backup PATH`: SQLite's online backup API, while the bot writes."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from bot.errors import StorageError
from bot.storage import SqliteStorage
from tests.spine import store_with_events

ROOT = Path(__file__).resolve().parents[1]


async def test_a_backup_taken_while_writes_go_on_is_one_consistent_copy(tmp_path: Path) -> None:
    store = await store_with_events(tmp_path / "live.db", 3, [])
    try:
        writes = 0

        async def keep_writing() -> None:
            nonlocal writes
            while writes < 200:
                await store.set_setting(f"k{writes}", "v")
                writes += 1

        writer = asyncio.create_task(keep_writing())
        await store.backup(tmp_path / "copy.db")
        await writer
        copy = sqlite3.connect(tmp_path / "copy.db")
        try:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # no -wal to lose
            assert copy.execute("SELECT count(*) FROM items").fetchone() == (5,)
            (copied,) = copy.execute("SELECT count(*) FROM settings WHERE key LIKE 'k%'").fetchone()
            assert 0 <= copied <= 200
        finally:
            copy.close()
        async with await SqliteStorage.open(tmp_path / "copy.db") as restored:  # a usable database
            assert await restored.count_items() == 5
        try:
            await store.backup(tmp_path / "live.db")
        except StorageError as exc:
            assert "another file" in str(exc)
        else:
            raise AssertionError("backing up onto the live database must be refused")
    finally:
        await store.close()


async def test_showbot_backup_on_the_command_line(tmp_path: Path) -> None:
    store = await store_with_events(tmp_path / "data" / "showbot.db", 2, [])
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "data" / "showbot.db"}"\n')
    try:  # the bot's own connection stays open: the copy is taken beside it
        folder = tmp_path / "backups"
        folder.mkdir()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "backup", "--config", str(config), str(folder), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        (made,) = folder.glob("showbot-*.db")
        assert out.decode().strip() == f"backed up to {made}"
        with sqlite3.connect(made) as copy:
            assert copy.execute("SELECT count(*) FROM items").fetchone() == (4,)
    finally:
        await store.close()
