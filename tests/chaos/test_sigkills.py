"""(a) Random SIGKILLs of ``showbot run`` while ~400 announcements go out:
5 polls' worth of news (one item per feed each), 2 feeds x 40 channels,
the bot killed at seeded-random post counts and started again each time."""

from __future__ import annotations

import os

import pytest

from tests.chaos.conftest import MakeWorld
from tests.chaos.harness import assert_delivered_exactly_once_in_order, kill_points

pytestmark = pytest.mark.chaos

KILLS = int(os.environ.get("SHOWBOT_CHAOS_KILLS", "8"))  # the issue used 30; each costs a restart
BATCHES = 5


@pytest.mark.timeout(240)
async def test_random_sigkills_lose_nothing_and_duplicate_nothing(make_world: MakeWorld) -> None:
    world = await make_world(discord=20, slack=20, feeds=("alpha", "beta"))
    await world.start_bot()
    await world.ready()
    per_batch = len(world.feeds) * len(world.channels)
    total = BATCHES * per_batch
    # The next poll's news lands while half the previous batch is still queued,
    # so order is tested across polls too.
    plan = [(max(0, b * per_batch - per_batch // 2), "publish") for b in range(BATCHES)]
    plan += [(k, "kill") for k in kill_points(world.rng, KILLS, total)]
    for threshold, action in sorted(plan):
        if action == "publish":
            await world.wait(f"post #{threshold} before publishing", 90, posts=threshold)
            for feed in world.feeds:
                world.publish(feed)
        else:
            await world.kill_after_posts(threshold, timeout=90)
            await world.start_bot()

    verdict = await world.settle(timeout=120)
    assert verdict.expected == total == 400
    assert_delivered_exactly_once_in_order(verdict, world)
