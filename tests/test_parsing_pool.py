"""Big feeds parse in a worker process; a dying worker is a clear error, then recovers."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

from bot.errors import FeedParseError
from bot.sources import parsing
from bot.sources.parsing import FeedParsers
from tests.feedgen import make_podcast_feed


def _die(*args: object, **kwargs: object) -> None:
    os._exit(3)  # the worker crashes as it would on an out-of-memory kill


async def test_big_feeds_parse_in_a_worker_process_and_small_ones_in_a_thread() -> None:
    parsers = FeedParsers(threshold_bytes=50_000)
    try:
        big = make_podcast_feed(30, start=datetime(2025, 1, 1, tzinfo=timezone.utc))
        assert len(big) > 50_000
        feed = await parsers.parse(big)
        assert len(feed.items) == 30 and feed.items[0].chapters
        assert parsers._pool is not None  # it went to the worker
        small = make_podcast_feed(2, start=datetime(2025, 1, 1, tzinfo=timezone.utc))
        assert len((await parsers.parse(small)).items) == 2
        with pytest.raises(FeedParseError, match="not a feed"):
            await parsers.parse(b"<html>" + b" " * 60_000 + b"</html>")  # errors cross the process boundary
    finally:
        parsers.close()


async def test_a_crashed_worker_is_a_feed_error_and_the_next_parse_works(monkeypatch: pytest.MonkeyPatch) -> None:
    parsers = FeedParsers(threshold_bytes=10)
    body = make_podcast_feed(2, start=datetime(2025, 1, 1, tzinfo=timezone.utc))
    try:
        monkeypatch.setattr(parsing, "parse_feed", _die)  # pickled by reference: the worker imports it
        with pytest.raises(FeedParseError, match="crashed"):
            await parsers.parse(body)
        monkeypatch.undo()
        assert len((await parsers.parse(body)).items) == 2
    finally:
        parsers.close()
