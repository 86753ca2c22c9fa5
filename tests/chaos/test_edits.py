"""Killed while an edit is in flight: after the restart each message is
edited (the title a host fixed), nothing is posted a second time.

Every item is posted to every channel once; then the feed fixes every
title. The first edit's answer is held (the fake HAS applied it), the bot
is SIGKILLed meanwhile and started again. An edit is idempotent, so the
restarted bot edits again without looking anything up: every message ends
up with the new title, no channel gets a second post.
"""

from __future__ import annotations

import pytest

from tests.chaos.conftest import MakeWorld
from tests.chaos.harness import assert_delivered_exactly_once_in_order
from tests.chaos.platforms_client import EDITS

pytestmark = pytest.mark.chaos

HELD_S = 60.0  # the held answer never arrives before the kill
SUFFIX = " (fixed)"


@pytest.mark.timeout(180)
async def test_an_edit_in_flight_at_a_kill_is_edited_once_more_and_never_posted(make_world: MakeWorld) -> None:
    world = await make_world(discord=3, slack=3, feeds=("alpha",))
    await world.start_bot()
    await world.ready()
    world.publish("alpha", 3)
    await world.settle(timeout=60)
    platform = world.rng.choice(["discord", "slack"])
    held = await world.platforms.add_fault(platform=platform, kind="latency", phase="after", latency_s=HELD_S,
                                           match=EDITS[platform], count=1)
    world.feeds["alpha"].retitle(SUFFIX)
    await world.wait(f"a {platform} edit in flight", 60, fault=held["id"], hits=1)
    await world.kill_bot()
    await world.start_bot()
    await world.wait("every message edited", 90, edited=world.expected)
    verdict = await world.settle(timeout=60)
    assert_delivered_exactly_once_in_order(verdict, world)  # the edits posted nothing
    messages = await world.platforms.messages()
    titles = [m["title"] for ms in messages["discord"].values() for m in ms]
    texts = [m["text"] for ms in messages["slack"].values() for m in ms]
    assert len(titles) + len(texts) == world.expected
    assert all(t and t.endswith(SUFFIX) for t in titles), titles
    assert all(SUFFIX in (t or "") for t in texts), texts
