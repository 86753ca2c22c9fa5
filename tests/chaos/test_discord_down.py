"""(d) Discord alone answers 500 to every post for a while: Slack's
announcements must all go out meanwhile, not wait behind Discord's retries
(discord.py itself retries a 500 five times, sleeping 1+3+5+7+9 s)."""

from __future__ import annotations

import pytest

from tests.chaos.conftest import MakeWorld
from tests.chaos.harness import ChaosTimeout, assert_delivered_exactly_once_in_order
from tests.chaos.platforms_client import DISCORD_POSTS

pytestmark = pytest.mark.chaos

SLACK_WITHIN_S = 20.0  # 80 posts to a healthy Slack take well under a second or two


@pytest.mark.timeout(240)
async def test_slack_announcements_go_out_while_discord_answers_500(make_world: MakeWorld) -> None:
    world = await make_world(discord=20, slack=20, feeds=("alpha", "beta"))
    await world.start_bot()
    await world.ready()
    down = await world.platforms.add_fault(platform="discord", kind="status", status=500, match=DISCORD_POSTS)
    for feed in world.feeds:
        world.publish(feed, 2)
    slack_expected = 2 * 2 * len(world.slack)
    try:
        await world.wait("every Slack announcement while Discord is down", SLACK_WITHIN_S,
                         platform="slack", posts=slack_expected)
        starved = None
    except ChaosTimeout:
        sent = sum(1 for p in world.posts() if p.platform == "slack")
        starved = f"{sent} of {slack_expected} Slack announcements went out while Discord answered 500"
    during = await world.platforms.end_fault(down["id"])
    assert starved is None, f"{starved} (for {SLACK_WITHIN_S:.0f}s)\n{world.situation()}"
    assert during["hits"] > 0, f"the bot never met Discord's 500s\n{world.situation()}"

    verdict = await world.settle(timeout=150)
    assert_delivered_exactly_once_in_order(verdict, world)
