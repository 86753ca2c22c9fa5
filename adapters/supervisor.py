"""One reconnect loop for every chat adapter.

An adapter gives ``Supervisor`` a coroutine that runs ONE connection (a
Discord client session, a Slack Socket Mode session, an HTTP server) until
it ends, returning True if it got connected first. The supervisor runs it
again after a failure, with the capped exponential backoff the whole bot
uses (``bot.backoff``), starting over once a connection had worked, until
``stop()``. ``GiveUp`` raised by the connection ends the loop for good (a
rejected token: retrying cannot help). Connection state is the adapter's
business; the supervisor only counts restarts and keeps the loop alive.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from bot.backoff import backoff_s


class GiveUp(Exception):
    """Retrying cannot help (e.g. the token was rejected)."""


ConnectOnce = Callable[[], Awaitable[bool]]


class Supervisor:
    def __init__(
        self, name: str, connect_once: ConnectOnce, *, log: logging.Logger,
        base_s: float = 1.0, cap_s: float = 300.0,
        expected: tuple[type[BaseException], ...] = (),
        describe: Callable[[BaseException], str] | None = None,
    ) -> None:
        self.name = name
        # Failures of the network or the platform: one line, no traceback.
        self._expected: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError, ConnectionError, *expected)
        self._describe = describe or (lambda exc: f"{type(exc).__name__}: {exc}")
        self._connect_once = connect_once
        self._log = log
        self._base_s = base_s
        self._cap_s = cap_s
        self.stopping = asyncio.Event()
        self.restarts = 0  # connections started again after one ended
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self.stopping.clear()
        self._task = asyncio.create_task(self._loop(), name=f"showbot-{self.name}")

    async def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the connection to end (``stopping`` is set) and wait for it."""
        self.stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(task, timeout=timeout_s)
        except asyncio.TimeoutError:
            self._log.warning("%s did not stop within %.0fs; cancelled", self.name, timeout_s)
        except Exception:  # pragma: no cover - the loop catches its own
            self._log.exception("%s stopped with an error", self.name)

    async def _loop(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            reached = False
            error: Exception | None = None
            try:
                reached = await self._connect_once()
            except GiveUp as exc:
                self._log.error("%s: %s; not retrying", self.name, exc)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: log the cause, back off, connect again
                error = exc
            if self.stopping.is_set():
                return
            failures = 1 if reached else failures + 1
            delay = backoff_s(failures, self._base_s, self._cap_s)
            self.restarts += 1
            if error is None:
                self._log.warning("%s connection ended; connecting again in %.2fs", self.name, delay)
            else:
                # The network failing is expected: one line. Anything else is
                # a bug (ours or the SDK's): keep its traceback.
                expected = isinstance(error, self._expected)
                reason = (self._describe(error).splitlines() or [type(error).__name__])[0][:300]
                self._log.warning("%s connection failed: %s; connecting again in %.2fs", self.name, reason,
                                  delay, exc_info=None if expected else error)
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
