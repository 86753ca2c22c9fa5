"""A wake-up for waiters that can be fired from plain (non-async) code.

The fakes record posts inside synchronous handlers; ``asyncio.Condition``
needs its lock to notify. A Pulse swaps in a fresh Event on every ``fire``,
so each waiter re-checks its predicate after every change and never misses one.
"""

from __future__ import annotations

import asyncio
from typing import Callable, TypeVar

T = TypeVar("T")


class Pulse:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(self, predicate: Callable[[], T], timeout: float) -> T:
        """The predicate's first truthy value; TimeoutError after ``timeout`` seconds."""

        async def wait() -> T:
            while not (result := predicate()):
                await self._event.wait()
            return result

        return await asyncio.wait_for(wait(), timeout)
