"""Delivery results, written in batches and never lost to a storage fault.

Workers hand each result (sent, retry, failed, released) to the recorder and
go on with their destination's next row; the recorder writes whatever has
piled up in one transaction, so many deliveries share a commit. When the
database can't be written (disk full, read-only), results stay in memory
and the write is retried with backoff; the rows stay claimed by this
process meanwhile, so nothing else sends them. If the process dies first,
those rows are still 'sending': whoever takes them over asks the platform
before posting, so a post already made is found, not repeated.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Sequence

from bot.errors import StorageError
from bot.faults import StorageFaults
from bot.storage import DeliveryResult, Storage

log = logging.getLogger("showbot.outbox")


class Recorder:
    def __init__(
        self,
        store: Storage,
        owner: str,
        faults: StorageFaults,
        *,
        on_routes_broken: Callable[[Sequence[int]], None] = lambda ids: None,
        retry_base_s: float = 0.5,
        retry_cap_s: float = 30.0,
    ) -> None:
        self._store = store
        self._owner = owner
        self._faults = faults
        self._on_routes_broken = on_routes_broken
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._pending: list[DeliveryResult] = []
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()

    @property
    def waiting(self) -> int:
        """Results not written yet."""
        return len(self._pending)

    def add(self, result: DeliveryResult) -> None:
        self._pending.append(result)
        self._kick.set()

    async def flush(self) -> bool:
        """Write everything pending now. False when the database refused
        (the results stay pending; the fault is reported once a minute)."""
        async with self._lock:
            while self._pending:
                batch = list(self._pending)
                try:
                    broke = await self._store.record_deliveries(self._owner, batch)
                except StorageError as exc:
                    self._faults.failed(exc, "recording deliveries", waiting=len(self._pending))
                    return False
                del self._pending[: len(batch)]
                self._faults.succeeded()
                if broke:
                    self._on_routes_broken(broke)
            return True

    async def run(self, stop: asyncio.Event) -> None:
        """Write results as they come until ``stop``; ``close`` does the rest."""
        delay = self._retry_base_s
        while not stop.is_set():
            if not self._pending:
                self._kick.clear()
                await _first(self._kick.wait(), stop.wait())
                continue
            if await self.flush():
                delay = self._retry_base_s
                continue
            await _first(stop.wait(), timeout=delay)
            delay = min(delay * 2, self._retry_cap_s)

    async def close(self, grace_s: float) -> None:
        """At shutdown: keep trying for ``grace_s``; what is still unwritten
        then stays claimed in the database and is checked at the next start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        delay = self._retry_base_s
        while not await self.flush():
            left = deadline - loop.time()
            if left <= 0:
                log.error("shutting down with %d delivery result(s) unwritten: the database "
                          "refused them; those posts are looked up on the platform at the next "
                          "start, not sent again", len(self._pending))
                return
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, self._retry_cap_s)


async def _first(*aws: Awaitable[object], timeout: float | None = None) -> None:
    """Wait until the first of ``aws`` finishes, or ``timeout``."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
