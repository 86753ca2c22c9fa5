"""The composition root and the CLI end to end: real config file, real SQLite,
feeds on 127.0.0.1, the console adapter on pipes, `showbot` as a subprocess."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.console import build as build_console
from bot.app import App, heartbeat_path, write_heartbeat
from bot.cli import main
from bot.config import Secrets, load_config
from bot.models import Caller, Platform
from tests.catalog_helpers import MEMBER
from tests.feedgen import make_podcast_feed
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 20


def weekly_feed(n: int) -> bytes:
    """n weekly episodes, the newest published an hour ago (inside max_age)."""
    newest = datetime.now(timezone.utc) - timedelta(hours=1)
    return make_podcast_feed(n, start=newest - timedelta(days=7 * (n - 1)))


def write_config(tmp_path: Path, server: FeedServer) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[storage]
path = "{tmp_path / 'data' / 'showbot.db'}"

[network]
allow_private_addresses = true
timeout = "5s"

[[sources]]
name = "podcast"
url = "{server.url('/podcast.xml')}"
content = "episode"
every = "1h"

[[routes]]
platform = "console"
channel = "terminal"
kinds = ["episode", "book"]
""")
    return path


class Screen(io.StringIO):
    """A stdout that lets a test wait for a line, instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def write(self, s: str) -> int:
        n = super().write(s)
        self.changed.set()
        return n

    async def wait_until(self, done: "Callable[[str], bool]") -> str:
        async def poll() -> None:
            while not done(self.getvalue()):
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(poll(), WAIT_S)
        return self.getvalue()

    async def wait_for(self, text: str) -> str:
        async def poll() -> None:
            while text not in self.getvalue():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(poll(), WAIT_S)
        return self.getvalue()


@pytest.fixture
async def app(tmp_path: Path, feed_server: FeedServer) -> AsyncIterator[App]:
    config = load_config(write_config(tmp_path, feed_server))
    async with await App.open(config, Secrets()) as a:
        yield a


async def test_console_announces_new_episodes_and_answers_commands(
    app: App, feed_server: FeedServer
) -> None:
    feed_server.add_feed("/podcast.xml", weekly_feed(5))
    first = await app.poll_now()
    assert first[0].ok and first[0].events == ()  # silent first sync
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    screen = Screen()
    stop = asyncio.Event()
    run = asyncio.create_task(app.run(stop, {"console": build_console}, console_in=stdin,
                                      console_out=screen, heartbeat_s=3600))
    try:
        feed_server.add_feed("/podcast.xml", weekly_feed(6))
        # The scheduler's own first fire is an hour away (the source was just
        # polled); poll now as `showbot poll` would, while the bot runs.
        (report,) = await app.poll_now()
        assert len(report.events) == 1
        out = await screen.wait_for("[New episode]")
        assert out.count("[New episode]") == 1
        os.write(write_fd, b"latest episode\n")
        os.close(write_fd)  # end of input: the bot keeps running
        write_fd = -1
        await screen.wait_for("1. ")
        assert (app.config.storage_path.parent / "heartbeat.json").exists()
        assert not run.done()
    finally:
        if write_fd >= 0:
            os.close(write_fd)  # EOF first: closing a file another thread reads from deadlocks
        stop.set()
        await asyncio.wait_for(run, WAIT_S)
        stdin.close()
    rows = await app.store.outbox_rows()
    assert [(r.status, r.channel) for r in rows] == [("sent", "terminal")]


async def test_a_subscriber_gets_one_direct_message(app: App, feed_server: FeedServer) -> None:
    feed_server.add_feed("/podcast.xml", weekly_feed(5))
    await app.poll_now()
    member = Caller(Platform.DISCORD, "U42", "chan", is_moderator=False)
    reply = await app.commands("subscribe postgres", member)
    assert reply.kind != "error", reply.text
    new = weekly_feed(6).replace(b"<item><title><![CDATA[", b"<item><title><![CDATA[Postgres and ", 1)
    feed_server.add_feed("/podcast.xml", new)
    (report,) = await app.poll_now()
    assert len(report.events) == 1 and "Postgres" in report.events[0].title
    rows = await app.store.outbox_rows()
    assert sorted((r.platform.value, r.destination.kind.value, r.channel) for r in rows) == [
        ("console", "channel", "terminal"), ("discord", "user", "U42")]


async def run_cli(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), WAIT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_poll_json_follows_the_contract(tmp_path: Path, feed_server: FeedServer) -> None:
    config = write_config(tmp_path, feed_server)
    feed_server.add_feed("/podcast.xml", weekly_feed(3))
    code, out, err = await run_cli("poll", "--json", "--config", str(config))
    assert code == 0, err
    (source,) = json.loads(out)["sources"]
    assert (source["name"], source["ok"], source["error"], source["events"]) == ("podcast", True, None, [])
    item = source["new"][0]
    assert set(item) == {"title", "url", "kind", "source", "published", "duration_s", "chapters"}
    assert item["kind"] == "episode" and item["source"] == "podcast" and item["published"].endswith("Z")
    assert item["chapters"] and set(item["chapters"][0]) == {"start_s", "title"}

    feed_server.add_feed("/podcast.xml", weekly_feed(4))
    code, out, _ = await run_cli("poll", "--json", "--config", str(config))
    (source,) = json.loads(out)["sources"]
    assert len(source["new"]) == 1 and source["events"] == [
        {"kind": "episode", "title": source["new"][0]["title"], "url": source["new"][0]["url"]}]

    feed_server.add_status("/podcast.xml", 500)
    code, out, err = await run_cli("poll", "--json", "--config", str(config))
    (source,) = json.loads(out)["sources"]
    assert code == 1 and source["ok"] is False and "HTTP 500" in source["error"]
    assert err.strip().count("\n") == 0 and "Traceback" not in err

    code, out, err = await run_cli("poll", "--source", "nope", "--config", str(config))
    assert code == 1 and "no source named 'nope'" in err


async def test_poll_json_reports_profile_book_and_milestone_events(tmp_path: Path) -> None:
    """The seed snapshots (a saved profile page, read from a file): the first
    is the baseline, the second reports the bio and pin changes, the book
    news and the 88k milestone in the same JSON as any other event."""
    snapshot = tmp_path / "hnasr.txt"
    config = tmp_path / "config.toml"
    config.write_text(f"""
[storage]
path = "{tmp_path / 'showbot.db'}"

[[sources]]
name = "x"
kind = "x"
handle = "hnasr"
provider = "snapshot"
url = "{snapshot}"
milestones = [88000]

[book]
title = "Root Cause"
links = ["https://amzn.to/4cfQjJj"]

[[routes]]
platform = "console"
channel = "terminal"
kinds = ["book", "profile", "milestone"]
""")
    fixtures = ROOT / "tests" / "fixtures" / "x"
    snapshot.write_bytes((fixtures / "profile_000.txt").read_bytes())
    code, out, err = await run_cli("poll", "--json", "--config", str(config))
    assert code == 0, err
    (source,) = json.loads(out)["sources"]
    assert (source["name"], source["ok"], source["events"]) == ("x", True, [])

    snapshot.write_bytes((fixtures / "profile_001.txt").read_bytes())
    code, out, err = await run_cli("poll", "--json", "--config", str(config))
    assert code == 0, err
    (source,) = json.loads(out)["sources"]
    kinds = sorted(e["kind"] for e in source["events"])
    assert kinds == ["book", "milestone", "profile", "profile"]
    assert all(set(e) == {"kind", "title", "url"} and e["title"] for e in source["events"])
    (book,) = [e for e in source["events"] if e["kind"] == "book"]
    assert "Root Cause" in book["title"]

    code, out, err = await run_cli("poll", "--json", "--config", str(config))
    assert code == 0 and json.loads(out)["sources"][0]["events"] == []  # nothing twice


async def test_ask_json_follows_the_contract(tmp_path: Path, feed_server: FeedServer) -> None:
    config = write_config(tmp_path, feed_server)
    feed_server.add_feed("/podcast.xml", weekly_feed(3))
    assert (await run_cli("poll", "--config", str(config)))[0] == 0
    code, out, err = await run_cli("ask", "--json", "--config", str(config), "latest", "episode")
    assert code == 0, err
    answer = json.loads(out)
    assert set(answer) == {"kind", "text", "items"}
    (latest,) = answer["items"]
    assert latest["title"].endswith("#3") and latest["source"] == "podcast" and latest["chapters"]
    code, out, err = await run_cli("ask", "--json", "--config", str(config), "search", "kafka")
    titles = [i["title"] for i in json.loads(out)["items"]]
    assert code == 0 and titles and all("Kafka" in t for t in titles)
    code, out, _ = await run_cli("ask", "--config", str(config), 'NEAR(" OR *')
    assert code == 0 and out.strip()


async def test_run_stops_cleanly_on_sigterm(tmp_path: Path, feed_server: FeedServer) -> None:
    config = write_config(tmp_path, feed_server)
    feed_server.add_feed("/podcast.xml", weekly_feed(3))
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--config", str(config), cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(b"help\n")
        await proc.stdin.drain()
        proc.stdin.close()  # end of input does not stop the bot
        first = await asyncio.wait_for(proc.stdout.readline(), WAIT_S)
        assert first.strip()
        # Wait until the first poll is stored, then ask it to stop.
        db_log = b""
        while b"adapter console started" not in db_log:
            db_log += await asyncio.wait_for(proc.stderr.readline(), WAIT_S)
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), WAIT_S)
        assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0
        assert b"stopped cleanly" in rest and b"Traceback" not in rest, rest.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_test_post_and_a_backfill_typed_on_the_console_are_posted_there(
    app: App, feed_server: FeedServer
) -> None:
    """`announce test here` and `feed backfill` go through the real outbox of
    a running bot (woken at once, not at the next tick) to the terminal."""
    feed_server.add_feed("/podcast.xml", weekly_feed(5))
    await app.poll_now()  # the silent first sync: 5 episodes stored, none announced
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    screen = Screen()
    stop = asyncio.Event()
    run = asyncio.create_task(app.run(stop, {"console": build_console}, console_in=stdin,
                                      console_out=screen, heartbeat_s=3600))
    try:
        await screen.wait_for("showbot console: type a command")
        os.write(write_fd, b"announce test here\n")
        out = await screen.wait_for("[Test post: New episode]")
        assert "marked as a test" in out
        os.write(write_fd, b"feed backfill podcast 2\nfeed backfill podcast 2\n")
        await screen.wait_for("nothing new was queued")
        out = await screen.wait_until(lambda text: text.count("[New episode]") == 2)
    finally:
        os.close(write_fd)
        stop.set()
        await asyncio.wait_for(run, WAIT_S)
        stdin.close()
    rows = await app.store.outbox_rows()
    assert [r.status for r in rows] == ["sent"] * 3


def test_the_heartbeat_makes_its_folder_when_no_sqlite_file_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # With a PostgreSQL URL nothing creates data/ (the SQLite file's folder),
    # where the heartbeat lives: writing it must not fail for want of it.
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.toml"
    path.write_text('[storage]\nurl = "postgresql://bot@127.0.0.1:5432/showbot"\n')
    config = load_config(path)
    beat = heartbeat_path(config)
    assert not beat.parent.exists()
    write_heartbeat(beat, datetime.now(timezone.utc), {"console": True})
    assert json.loads(beat.read_text())["adapters"] == {"console": True}
    assert main(["health", "--config", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "ok"



async def test_a_running_bot_loads_the_model_once_backfills_and_embeds_each_poll(
    app: App, feed_server: FeedServer
) -> None:
    assert app.commands._ctx.semantic is app.semantic and app.semantic.enabled
    loads = []
    real_loader = app.semantic._loader

    def counted():  # type: ignore[no-untyped-def]
        loads.append(1)
        return real_loader()

    app.semantic._loader = counted
    feed_server.add_feed("/podcast.xml", weekly_feed(5))
    await app.poll_now()  # stored before the bot runs: the start's backfill embeds them
    assert len(await app.store.items_needing_vectors(100)) == 5
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    stop = asyncio.Event()
    run = asyncio.create_task(app.run(stop, {"console": build_console}, console_in=stdin,
                                      console_out=Screen(), heartbeat_s=3600))
    try:
        await asyncio.wait_for(app.vectors_indexed.wait(), WAIT_S)
        assert await app.store.items_needing_vectors(100) == []
        app.vectors_indexed.clear()
        feed_server.add_feed("/podcast.xml", weekly_feed(6))
        (report,) = await app.poll_now()
        assert len(report.new) == 1
        await asyncio.wait_for(app.vectors_indexed.wait(), WAIT_S)
        assert await app.store.items_needing_vectors(100) == []
        assert len(await app.store.find_vectors([report.new[0].id])) == 1
        assert loads == [1]  # once, at start
        reply = await app.commands("search episode", MEMBER)  # a search with the loaded model
        assert loads == [1] and reply.kind == "search"
    finally:
        os.close(write_fd)
        stop.set()
        await asyncio.wait_for(run, WAIT_S)
        stdin.close()


async def test_semantic_off_loads_no_model_and_embeds_nothing(tmp_path: Path, feed_server: FeedServer) -> None:
    from dataclasses import replace

    from bot.config import SearchConfig

    config = replace(load_config(write_config(tmp_path, feed_server)), search=SearchConfig(semantic=False))
    async with await App.open(config, Secrets()) as off:
        def never():  # type: ignore[no-untyped-def]
            raise AssertionError("the model was loaded")

        off.semantic._loader = never
        feed_server.add_feed("/podcast.xml", weekly_feed(3))
        (report,) = await off.poll_now()
        word = report.new[0].item.title.split()[0]
        reply = await off.commands(f"search {word}", MEMBER)
        assert reply.kind == "search" and reply.items
        assert not off.semantic.ready and len(await off.store.items_needing_vectors(10)) == 3
