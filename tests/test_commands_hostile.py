"""Hostile input: whatever a member types, every command answers with a
Reply and never raises (nor hits the generic failure path)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bot.clock import FrozenClock
from bot.commands import Commands
from bot.models import ParsedFeed, Reply
from bot.storage import SqliteStorage
from tests.catalog_helpers import MEMBER, MODERATOR, NOW, load_catalog

PREFIXES = ["", "search ", "episodes on ", "videos about ", "anything on ", "latest ", "episode ",
            "random episode on ", "help ", "subscribe ", "unsubscribe ", "feed add ", "feed remove ",
            "feed test ", "announce ", "filter podcast include ", "filter podcast exclude /", "filter "]
FTS_NOISE = ['"', "*", "NEAR(", "AND", "OR", "NOT", "^", ":", "-", "(", ")", "{", "}", "title:", "'", "\\"]


class Harness:
    """One store and loop for all examples (hypothesis runs many per test)."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.dir = tempfile.TemporaryDirectory()
        self.store: SqliteStorage = self.runner.run(SqliteStorage.open(Path(self.dir.name) / "bot.db"))
        self.runner.run(load_catalog(self.store))

        async def preview(url: str) -> ParsedFeed:
            return ParsedFeed(title="", items=())

        self.bot = Commands(self.store, clock=FrozenClock(NOW), preview=preview)

    def ask(self, text: str, moderator: bool) -> Reply:
        return self.runner.run(self.bot(text, MODERATOR if moderator else MEMBER))

    def close(self) -> None:
        self.runner.run(self.store.close())
        self.runner.close()
        self.dir.cleanup()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


hostile_text = st.one_of(
    st.text(max_size=10_240),
    st.lists(st.sampled_from(FTS_NOISE + [" ", "kafka", "postgres", "🐘"]), max_size=40).map("".join),
    st.text(alphabet=st.characters(categories=["P", "S"]), max_size=200),  # only punctuation/symbols
    st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=50),                 # only whitespace
    st.just(""),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), text=hostile_text, moderator=st.booleans())
def test_any_input_to_any_command_gets_a_reply(harness: Harness, caplog: pytest.LogCaptureFixture,
                                               prefix: str, text: str, moderator: bool) -> None:
    caplog.set_level(logging.ERROR, logger="showbot.commands")
    reply = harness.ask(prefix + text, moderator)
    assert isinstance(reply, Reply)
    assert reply.kind != "failure", reply.text
    assert isinstance(reply.text, str) and reply.text
    assert not [r for r in caplog.records if r.name == "showbot.commands"]


@pytest.mark.parametrize("text", [
    'search "', "search *", "search NEAR(", "search AND", "search OR", "search NOT", "search ^", "search :",
    "search -", 'search title:"x" OR *', "search " + "a" * 10_240, "search " + "🐘" * 3000,
    "episodes on \x00\x01", "search \u202e\u200b", "episode " + "9" * 30, "latest page 9999",
])
def test_known_hostile_inputs(harness: Harness, text: str) -> None:
    reply = harness.ask(text, moderator=False)
    assert reply.kind in {"search", "help", "latest", "episode", "error"}
    assert reply.kind != "failure"


def test_a_bug_becomes_a_generic_reply_and_is_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Commands):
        async def _run(self, command, caller):  # type: ignore[override]
            raise RuntimeError("boom")

    broken = Broken(harness.store, clock=FrozenClock(NOW))
    with caplog.at_level(logging.ERROR, logger="showbot.commands"):
        reply = harness.runner.run(broken("latest", MEMBER))
    assert reply.kind == "failure" and reply.ephemeral
    assert reply.text == "Sorry, something went wrong on my side. Try again in a moment."
    assert "command failed" in caplog.text
