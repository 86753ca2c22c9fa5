"""(f) The platform accepts a post, then answers 503: the bot sees a failure
although the message is there. Asking before re-sending is the only way to
stay exactly-once; Discord's enforce_nonce is off in the fake (it only
dedupes for minutes in real life), so it cannot save the day."""

from __future__ import annotations

import pytest

from tests.chaos.conftest import MakeWorld
from tests.chaos.harness import assert_delivered_exactly_once_in_order
from tests.chaos.platforms_client import POSTS

pytestmark = pytest.mark.chaos

AMBIGUOUS = 3  # posts per platform answered 503 after being accepted


@pytest.mark.timeout(150)
async def test_a_post_accepted_then_answered_503_is_not_posted_again(make_world: MakeWorld) -> None:
    world = await make_world(discord=10, slack=10, feeds=("alpha", "beta"))
    await world.start_bot()
    await world.ready()
    faults = [await world.platforms.add_fault(platform=p, kind="accept_then_fail", status=503,
                                              match=POSTS[p], count=AMBIGUOUS)
              for p in ("discord", "slack")]
    for feed in world.feeds:
        world.publish(feed, 2)
    for fault in faults:
        await world.wait(f"{AMBIGUOUS} ambiguous {fault['platform']} posts", 60,
                         fault=fault["id"], hits=AMBIGUOUS)

    verdict = await world.settle(timeout=90)
    assert verdict.expected == 2 * 2 * 20
    answered_503 = sum(1 for p in world.posts() if p.answered == 503)
    assert answered_503 == 2 * AMBIGUOUS
    assert_delivered_exactly_once_in_order(verdict, world)
