"""(e) A 429 storm with Retry-After on both platforms, on top of Discord's
global limit of 50 requests/s: nothing lost, duplicated or reordered."""

from __future__ import annotations

import pytest

from tests.chaos.conftest import MakeWorld
from tests.chaos.harness import assert_delivered_exactly_once_in_order
from tests.chaos.platforms_client import POSTS

pytestmark = pytest.mark.chaos

STORM_S = 8.0
RETRY_AFTER_S = 1.0
STORM_SHARE = 0.8  # of the posts during the storm get a 429


@pytest.mark.timeout(180)
async def test_a_429_storm_loses_duplicates_and_reorders_nothing(make_world: MakeWorld) -> None:
    world = await make_world(discord=20, slack=20, feeds=("alpha", "beta"))
    # Real Discord, all along: 50 requests in any second, then global 429s.
    await world.platforms.add_fault(platform="discord", kind="global_limit", per_s=50)
    await world.start_bot()
    await world.ready()
    for name in world.feeds:
        world.publish(name, 2)
    await world.wait("the first announcements", 60, posts=len(world.channels) // 2)
    storm = [await world.platforms.add_fault(
        platform=p, kind="rate_limit", retry_after=RETRY_AFTER_S, match=POSTS[p],
        probability=STORM_SHARE, for_s=STORM_S) for p in ("discord", "slack")]
    for feed in world.feeds.values():  # more news lands mid-storm
        before = feed.hits
        feed.publish()
        await world.race(f"{feed.name} polled during the storm", feed.polled(before + 2), STORM_S + 10)
    hits = {}
    for fault in storm:
        ended = await world.wait("the storm to end", STORM_S + 30, fault=fault["id"], ended=True)
        hits[fault["platform"]] = ended["fault"]["hits"]
    # Both together: a platform stuck behind the other's retries may never meet it.
    assert sum(hits.values()) > 0, f"the bot never met the storm\n{world.situation()}"

    verdict = await world.settle(timeout=120)
    assert verdict.expected == 3 * 2 * 40
    assert_delivered_exactly_once_in_order(verdict, world)
