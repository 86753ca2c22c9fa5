"""Gateway shards by lease: each shard connected by one instance, a dead
instance's shard taken over within one lease, and an instance without a
shard still delivering over REST."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import discord
import pytest

from adapters.discord import DiscordAdapter
from bot.clock import FrozenClock
from bot.config import DiscordConfig
from bot.shards import ShardLeases, lease_name
from bot.storage import SqliteStorage
from tests.fake_discord import CHANNEL_ID, FakeDiscord
from tests.spine import NOW
from tests.test_discord_adapter import TOKEN, MemorySettings, StubHandler, announcement, wait_until

LEASE_S = 30


async def test_each_shard_has_one_holder_and_a_dead_holders_shard_is_taken_over(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with await SqliteStorage.open(tmp_path / "s.db") as db:
        a = ShardLeases(db, "a", 2, clock=clock, lease_s=LEASE_S)
        b = ShardLeases(db, "b", 2, clock=clock, lease_s=LEASE_S)
        c = ShardLeases(db, "c", 2, clock=clock, lease_s=LEASE_S)
        assert [await a.claim_once(), await b.claim_once(), await c.claim_once()] == [0, 1, None]
        clock.advance(seconds=LEASE_S / 3)
        assert [await a.claim_once(), await c.claim_once()] == [0, None]  # b's lease still runs
        clock.advance(seconds=LEASE_S)  # b died a lease ago; a renewed, c takes b's shard
        assert [await a.claim_once(), await c.claim_once()] == [0, 1]
        assert not await db.claim_lease(lease_name(1), "b", clock(), clock() + timedelta(seconds=LEASE_S))


async def test_a_fixed_shard_needs_no_lease(tmp_path: Path) -> None:
    async with await SqliteStorage.open(tmp_path / "s.db") as db:
        fixed = ShardLeases(db, "a", 4, clock=FrozenClock(NOW), lease_s=LEASE_S, fixed=3)
        assert await fixed.claim_once() == 3
        assert await db.claim_lease(lease_name(3), "someone", NOW, NOW + timedelta(seconds=1))


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    f = FakeDiscord()
    await f.start()
    yield f
    await f.close()
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


async def test_an_instance_without_the_shard_delivers_over_rest_then_connects_when_it_gets_it(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    clock = FrozenClock(NOW)
    async with await SqliteStorage.open(tmp_path / "s.db") as db:
        assert await db.claim_lease(lease_name(0), "other-instance", clock(), clock() + timedelta(seconds=LEASE_S))
        shards = ShardLeases(db, "me", 1, clock=clock, lease_s=LEASE_S)
        config = DiscordConfig(api_base_url=fake.api_base_url, gateway_url=fake.gateway_url)
        adapter = DiscordAdapter(config, TOKEN, StubHandler(), settings=MemorySettings(), shards=shards,
                                 backoff_base_s=0.01, guild_ready_timeout_s=0.05)
        try:
            await adapter.start()
            await wait_until(lambda: adapter.healthy)
            assert adapter.shard is None and fake.gateway_connections == 0
            await adapter.deliver(announcement())  # REST needs no gateway
            assert len(fake.created_messages(CHANNEL_ID)) == 1
            clock.advance(seconds=LEASE_S + 1)  # the other instance died
            assert await shards.claim_once() == 0
            await fake.wait_for(lambda: fake.identifies == 1)
            assert fake.identified_shards == [[0, 1]]
            await wait_until(lambda: adapter.healthy)
            await adapter.deliver(announcement("event-2:route-1"))
            assert len(fake.created_messages(CHANNEL_ID)) == 2
        finally:
            await adapter.stop()
