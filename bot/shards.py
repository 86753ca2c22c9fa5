"""Which Discord gateway shards this instance connects, by lease.

Discord sends each shard's events (commands, mentions) to whoever holds a
gateway connection for it; two instances connected as the same shard would
both answer every command. So each shard is a lease in the database
("discord.shard.<n>"): an instance holds at most one, renews it every
third of a lease, and takes a free or expired one when it holds none. A
killed instance's shard is taken over within one lease. An instance
without a shard still delivers announcements (REST needs no gateway).
With fixed ``shard_ids`` in the config there are no leases: the operator
assigned them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Awaitable, Callable

from bot.clock import Clock
from bot.errors import StorageError
from bot.storage import Storage

log = logging.getLogger("showbot.shards")

OnChange = Callable[[int | None], Awaitable[None]]


def lease_name(shard: int) -> str:
    return f"discord.shard.{shard}"


class ShardLeases:
    def __init__(
        self, storage: Storage, owner: str, shard_count: int, *, clock: Clock, lease_s: float,
        fixed: int | None = None,
    ) -> None:
        self._storage = storage
        self._owner = owner
        self.shard_count = shard_count
        self._clock = clock
        self._lease_s = lease_s
        self._fixed = fixed
        self.held: int | None = fixed
        self._listeners: list[OnChange] = []

    def on_change(self, listener: OnChange) -> None:
        self._listeners.append(listener)

    async def claim_once(self) -> int | None:
        """Renew the shard held, or take a free one; returns the shard held."""
        if self._fixed is not None:
            return self._fixed
        now = self._clock()
        until = now + timedelta(seconds=self._lease_s)
        if self.held is not None:
            if await self._storage.claim_lease(lease_name(self.held), self._owner, now, until):
                return self.held
            log.warning("discord shard %d was taken over by another instance", self.held)
            await self._set(None)
        for shard in range(self.shard_count):
            if await self._storage.claim_lease(lease_name(shard), self._owner, now, until):
                log.info("holding discord shard %d of %d", shard, self.shard_count)
                await self._set(shard)
                break
        return self.held

    async def _set(self, shard: int | None) -> None:
        if shard == self.held:
            return
        self.held = shard
        for listener in self._listeners:
            await listener(shard)

    async def run(self, stop: asyncio.Event) -> None:
        """Renew or claim every third of a lease until ``stop``; then let go."""
        if self._fixed is not None:
            return
        every = max(self._lease_s / 3, 0.05)
        try:
            while not stop.is_set():
                try:
                    await self.claim_once()
                except StorageError as exc:
                    log.warning("could not renew the discord shard lease: %s", exc)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=every)
                except asyncio.TimeoutError:
                    pass
        finally:
            if self.held is not None:
                try:
                    await self._storage.release_lease(lease_name(self.held), self._owner)
                except StorageError:
                    pass  # it runs out by itself
