"""(b) Killed while a post is in flight, restarted while the chat API answers
503, then the API recovers: the post the dead process left behind must not
go out a second time.

Each round holds the answer to one post (the fake has recorded it: the
platform HAS the message), SIGKILLs the bot meanwhile, starts it again into
an outage of posts AND history lookups, and lets the outage end.
"""

from __future__ import annotations

import pytest

from tests.chaos.conftest import MakeWorld
from tests.chaos.harness import assert_delivered_exactly_once_in_order
from tests.chaos.platforms_client import MESSAGES, POSTS

pytestmark = pytest.mark.chaos

OUTAGE_S = 8.0  # long enough for the restarted bot to connect and meet it
HELD_S = 60.0  # the held answer never arrives before the kill


@pytest.mark.timeout(180)
async def test_a_post_in_flight_at_a_kill_is_not_sent_again_after_a_503_restart(
    make_world: MakeWorld,
) -> None:
    world = await make_world(discord=10, slack=10, feeds=("alpha", "beta"))
    await world.start_bot()
    await world.ready()
    met_outage = 0
    for platform in ("discord", "slack", world.rng.choice(["discord", "slack"])):
        # The next post to `platform` is recorded, then its answer is held.
        held = await world.platforms.add_fault(
            platform=platform, kind="latency", phase="after", latency_s=HELD_S,
            match=POSTS[platform], count=1)
        for feed in world.feeds:
            world.publish(feed)
        await world.wait(f"a {platform} post in flight", 60, fault=held["id"], hits=1)
        await world.kill_bot()

        outage = [await world.platforms.add_fault(platform=p, kind="status", status=503,
                                                  match=MESSAGES[p], for_s=OUTAGE_S)
                  for p in ("discord", "slack")]
        await world.start_bot()
        for fault in outage:
            ended = await world.wait("the 503 outage to end", OUTAGE_S + 30, fault=fault["id"], ended=True)
            met_outage += ended["fault"]["hits"]

    # Without this the scenario proves nothing: the restarted bots must have
    # tried (and failed) while the API answered 503.
    assert met_outage > 0, f"the restarted bot never met the outage\n{world.situation()}"
    verdict = await world.settle(timeout=90)
    assert verdict.expected == 3 * 2 * 20
    assert_delivered_exactly_once_in_order(verdict, world)
