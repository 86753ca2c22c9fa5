"""Several instances on one PostgreSQL database, as real processes.

Three ``showbot run`` share a fresh database, the fake platforms and the
feeds. New items keep arriving while one instance after another is
SIGKILLed and started again. Checked:
- every (item, channel) delivered exactly once, in publication order;
- each source fetched about once per interval, not once per instance
  (counted at the feed server while all three run);
- work held by a killed instance is taken over within one lease: its
  Discord gateway shard is connected again by another instance within the
  lease, and everything settles.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from tests.backends import PgRun, run_of
from tests.chaos.conftest import MakeWorld
from tests.chaos.harness import Bot, World, assert_delivered_exactly_once_in_order

pytestmark = pytest.mark.chaos

INSTANCES = 3
ROUNDS = 4
LEASE_S = 5.0  # the harness's [delivery] lease
QUIET_S = 8.0  # how long the fetch rate is counted over
EVERY_S = 1.0  # the harness's feeds' interval


class Fleet:
    """INSTANCES bots of one World, on one PostgreSQL database."""

    def __init__(self, world: World, url: str) -> None:
        self.world = world
        self.url = url
        self.members: list[Bot | None] = [None] * INSTANCES
        # The World writes one config for every process; point it at the database.
        world.extra_toml = ""
        original = world.write_config

        def write_config() -> object:
            path = original()
            text = path.read_text().replace(f'path = "{world.db_path}"', f'url = "{url}"', 1)
            path.write_text(text)
            return path

        world.write_config = write_config  # type: ignore[method-assign]
        world.unsettled_rows = self.unsettled_rows  # type: ignore[method-assign]

    def unsettled_rows(self) -> int:
        """Rows some instance may still post, read from the shared database."""
        found = subprocess.run(
            ["psql", self.url, "-tAc", "SELECT count(*) FROM outbox WHERE status NOT IN ('sent', 'failed')"],
            capture_output=True, text=True, timeout=30)
        return int(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else -1

    async def start(self, i: int) -> Bot:
        self.world.bot = None  # the World tracks one bot; the fleet tracks them all
        bot = await self.world.start_bot()
        self.members[i] = bot
        return bot

    async def kill(self, i: int) -> None:
        bot = self.members[i]
        if bot is not None:
            await bot.kill()

    def alive(self) -> Bot:
        """Some live member, for the World's waits to watch."""
        return next(b for b in self.members if b is not None and b.alive)

    def shard_holder(self) -> int | None:
        """Which member logged holding the gateway shard last (the newest log line wins)."""
        newest: tuple[float, int] | None = None
        for i, bot in enumerate(self.members):
            if bot is None or not bot.alive or not bot.log.exists():
                continue
            for line in bot.log.read_text(errors="replace").splitlines():
                if "holding discord shard 0" in line:
                    at = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
                    if newest is None or at >= newest[0]:
                        newest = (at, i)
        return newest[1] if newest else None


@pytest.mark.timeout(300)
async def test_three_instances_deliver_once_poll_once_and_take_over_a_dead_ones_work(
    make_world: MakeWorld, pg_run: PgRun | None
) -> None:
    url = await run_of(pg_run).create_database("showbot_test_fleet")
    world = await make_world(discord=10, slack=10, feeds=("alpha", "beta"))
    fleet = Fleet(world, url)
    for i in range(INSTANCES):
        await fleet.start(i)
    await world.ready()

    # Each source about once per interval, however many instances fire.
    before = {name: feed.hits for name, feed in world.feeds.items()}
    await asyncio.sleep(QUIET_S)  # a measured span of time, not a wait for an event
    for name, feed in world.feeds.items():
        fetched = feed.hits - before[name]
        assert fetched <= QUIET_S / EVERY_S * 1.5, (
            f"{name} was fetched {fetched} times in {QUIET_S:.0f}s by {INSTANCES} instances "
            f"(every {EVERY_S:.0f}s: about {QUIET_S / EVERY_S:.0f})\n{world.situation()}")
        assert fetched >= QUIET_S / EVERY_S * 0.4, f"{name}: only {fetched} fetches\n{world.situation()}"

    rng = world.rng
    for round_no in range(ROUNDS):
        for feed in world.feeds:
            world.publish(feed, 2)
        posted = len(world.posts())
        # Kill one instance mid-delivery (after a few more posts), start it again.
        victim = rng.randrange(INSTANCES)
        world.bot = fleet.alive()
        await world.wait(f"round {round_no}: a few posts", 60, posts=posted + rng.randint(1, 10))
        await fleet.kill(victim)
        await fleet.start(victim)

    # The gateway shard: its holder killed, another instance connects it within a lease.
    world.bot = fleet.alive()
    identified = (await world.platforms.state())["identifies"]
    holder = fleet.shard_holder()
    if holder is None:
        # A round killed the holder less than a lease ago (rounds take about
        # a second when posts flow): the shard is free only once that lease
        # runs out. The instance that takes it logs so, then IDENTIFYs --
        # after the count read above, since no live instance had logged it.
        await world.wait("a live instance to take the shard a round freed", LEASE_S + 10,
                         identifies=identified + 1)
        holder = fleet.shard_holder()
    assert holder is not None, f"no instance logged holding the gateway shard\n{world.situation()}"
    identified = (await world.platforms.state())["identifies"]
    killed_at = time.monotonic()
    await fleet.kill(holder)
    world.bot = fleet.alive()
    # The lease runs out, another instance takes the shard and IDENTIFYs.
    await world.wait("another instance to connect the gateway shard", LEASE_S + 10, identifies=identified + 1)
    took_s = time.monotonic() - killed_at
    assert took_s <= LEASE_S + LEASE_S / 3 + 3, f"the shard was taken over after {took_s:.1f}s\n{world.situation()}"
    await fleet.start(holder)

    world.bot = fleet.alive()
    verdict = await world.settle(timeout=90)
    assert verdict.expected == ROUNDS * 2 * len(world.feeds) * len(world.channels)
    assert_delivered_exactly_once_in_order(verdict, world)
    assert "IntegrityError" not in world.logs()
