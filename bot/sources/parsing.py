"""Where feeds are parsed: big ones in a worker process, small ones in a thread.

A thread keeps the event loop free of the parse itself, but not of the GIL:
feedparser is pure Python, so while it chews a 2 MB feed the loop gets the
GIL back only at switch intervals and chat replies stall for tens of
milliseconds. A worker process has its own GIL. It also bounds the damage of
a hostile feed: a MemoryError or a crash kills the worker, not the bot.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from bot.errors import FeedParseError
from bot.models import ParsedFeed
from bot.sources.feeds import parse_feed

log = logging.getLogger("showbot.parse")

# Below this a thread is cheaper than pickling the result across processes.
PROCESS_THRESHOLD_BYTES = 256 * 1024


class FeedParsers:
    """``await parsers.parse(body, url=..., content_type=...)``; close() at shutdown."""

    def __init__(self, *, threshold_bytes: int = PROCESS_THRESHOLD_BYTES, workers: int = 1) -> None:
        self._threshold = threshold_bytes
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the bot has threads (aiosqlite, stdin) and a
            # forked child would inherit their locks mid-use.
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def parse(self, body: bytes, *, url: str | None = None, content_type: str | None = None) -> ParsedFeed:
        call = functools.partial(parse_feed, body, url=url, content_type=content_type)
        if len(body) < self._threshold:
            return await asyncio.to_thread(call)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._get_pool(), call)
        except BrokenProcessPool:
            log.error("the feed parser process died on a %d-byte body; restarting it", len(body))
            self._discard_pool()
            raise FeedParseError("the feed parser crashed on this feed (too large or hostile?)") from None

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
