"""Where feeds are parsed, so that a big one never holds up the event loop.

- The fast reader (lxml, most feeds) runs on the loop itself, in slices of
  2 ms: ``parse_fast_steps`` yields between a chunk of bytes, an entry and
  an item, and after each slice the parse steps aside, one parse at a time.
  Not in a thread: CPU-bound Python in a thread holds the GIL, and the loop
  then waits up to a switch interval (5 ms) each time it wants it back;
  three 540-item ingests parsed in threads stalled the loop 50-60 ms
  (bench/bench_poll.py).
- Stepping aside is ``sleep(0)`` (the loop's other callbacks run: a reply's
  coroutine, a timer) and then, only while ``contended()`` says a thread
  off the loop wants the GIL (the app passes SQLite's ``threads_busy``: a
  member's query or a poll's write in flight on a connection thread), a
  real pause of up to ``pause_s`` (6 ms) in 1 ms steps, ending as soon as
  that work is done. A real pause, not just a turn of the loop: with only
  ``sleep(0)`` the loop thread keeps the GIL and the store's thread waits a
  switch interval at each of its GIL hand-overs. Measured with bench_poll
  in one session (medians of 7 runs, 3 for never pausing, 4 for the 6 ms
  cap; replies' max during three concurrent ingests, semantic search off /
  on): always pausing 2 ms (the old rule): the parse inside a first poll
  129 ms wall for 62 ms of CPU, first poll 200 ms, replies 11.4 / 35 ms;
  never pausing (``sleep(0)`` alone): first poll 130 ms, replies 61 / 65
  ms; pausing on the signal, one 2 ms pause: 11.4 / 40 ms; up to 4, 6 or
  8 ms: 9.7 / 24, 9.3 / 21, 9.4 / 20 ms, the parse at CPU speed (61-64 ms)
  in all. Hence 6 ms: replies as good as with the longer cap (within the
  noise), and under unbroken contention the parse still gets a quarter of
  the loop. Without a signal (``contended=None``) every slice pauses
  ``pause_s``: nothing tells it no one is waiting.
- A document the fast reader declines goes to feedparser, one long call of
  pure Python: a big one to a worker process (its own GIL, and a crash or a
  MemoryError kills the worker, not the bot), a small one to a thread. The
  worker is spawned when first needed and exits after ``idle_exit_s``
  without work: a second interpreter (~50 MB resident) is not kept for the
  rare feed that needs it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Generator, TypeVar

from bot.errors import FeedParseError
from bot.models import ParsedFeed
from bot.sources.feeds import parse_fast_steps, parse_feed

log = logging.getLogger("showbot.parse")

# Below this a thread is cheaper than pickling the result across processes.
PROCESS_THRESHOLD_BYTES = 256 * 1024
# How long the fast reader may hold the loop before letting others run: a
# reply awaits the store several times and waits up to a slice at each.
SLICE_S = 0.002
# Then, while work off the loop wants the GIL, the longest it leaves the
# loop (and the GIL) to it: a reply's several queries, or a poll's write.
PAUSE_S = 0.006
# That pause is taken in steps this long (epoll's resolution is 1 ms) and
# ends at the first step that finds no one waiting.
PAUSE_STEP_S = 0.001
# A parse worker with nothing to do for this long exits.
IDLE_EXIT_S = 60.0

T = TypeVar("T")


class FeedParsers:
    """``await parsers.parse(body, url=..., content_type=...)``; close() at shutdown."""

    def __init__(
        self,
        *,
        threshold_bytes: int = PROCESS_THRESHOLD_BYTES,
        workers: int = 1,
        slice_s: float = SLICE_S,
        pause_s: float = PAUSE_S,
        idle_exit_s: float = IDLE_EXIT_S,
        contended: Callable[[], bool] | None = None,
        pause_step_s: float = PAUSE_STEP_S,
    ) -> None:
        self._threshold = threshold_bytes
        # Whether work off the loop (a store's connection thread) wants the
        # GIL now; None: nothing can tell, so assume it always does.
        self._contended = contended
        self._pause_step_s = pause_step_s if pause_step_s > 0 else pause_s
        self._workers = workers
        self._slice_s = slice_s
        self._pause_s = pause_s
        self._idle_exit_s = idle_exit_s
        self._pool: ProcessPoolExecutor | None = None
        self._in_worker = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._worker_stopped = asyncio.Event()  # set each time an idle worker is let go (tests wait on it)
        # One fast parse at a time: the loop runs every ready callback in one
        # iteration, so three parses' slices would add up between two of a
        # reply's awaits. They are CPU-bound on the loop anyway: running them
        # one after the other finishes them no later.
        self._one_at_a_time = asyncio.Lock()

    async def parse(self, body: bytes, *, url: str | None = None, content_type: str | None = None) -> ParsedFeed:
        async with self._one_at_a_time:
            result = await self._in_slices(parse_fast_steps(body, url=url, content_type=content_type))
        if isinstance(result, ParsedFeed):
            return result
        slow = functools.partial(parse_feed, body, url=url, content_type=content_type, fast=False)
        if len(body) < self._threshold:
            return await asyncio.to_thread(slow)
        return await self._run_in_worker(slow, len(body))

    async def _in_slices(self, steps: Generator[None, None, T]) -> T:
        """Run a step generator on the loop; every ``slice_s`` leave it alone for ``pause_s``."""
        try:
            deadline = time.perf_counter() + self._slice_s
            while True:
                try:
                    next(steps)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                if time.perf_counter() >= deadline:
                    await self._step_aside()
                    deadline = time.perf_counter() + self._slice_s
        finally:
            steps.close()  # cancelled mid-parse: drop the half-read document now

    async def _step_aside(self) -> None:
        """Between two slices: the loop's other callbacks run, then, only
        while work off the loop wants the GIL, a pause of up to ``pause_s``
        that ends once it is done. Uncontended, a parse runs at CPU speed."""
        await asyncio.sleep(0)
        paused = 0.0
        while paused < self._pause_s and (self._contended is None or self._contended()):
            step = min(self._pause_step_s, self._pause_s - paused)
            await asyncio.sleep(step)
            paused += step

    # -- the worker process for feedparser ------------------------------------------

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the bot has threads (aiosqlite, stdin) and a
            # forked child would inherit their locks mid-use.
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def _run_in_worker(self, call: Callable[[], ParsedFeed], size: int) -> ParsedFeed:
        loop = asyncio.get_running_loop()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._in_worker += 1
        try:
            return await loop.run_in_executor(self._get_pool(), call)
        except BrokenProcessPool:
            log.error("the feed parser process died on a %d-byte body; restarting it", size)
            self._discard_pool()
            raise FeedParseError("the feed parser crashed on this feed (too large or hostile?)") from None
        finally:
            self._in_worker -= 1
            if self._in_worker == 0 and self._pool is not None:
                self._idle_timer = loop.call_later(self._idle_exit_s, self._stop_idle_worker)

    def _stop_idle_worker(self) -> None:
        self._idle_timer = None
        if self._in_worker == 0 and self._pool is not None:
            log.debug("feed parser worker idle for %.0fs: letting it exit", self._idle_exit_s)
            self._discard_pool()
            self._worker_stopped.set()

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        # May run in a thread (App.close): the idle timer is left alone, it
        # finds no pool when it fires and does nothing.
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
