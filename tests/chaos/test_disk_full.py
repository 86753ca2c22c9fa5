"""(g) The disk holding the SQLite database fills up right after a post was
accepted (before the bot could record it), then space comes back: nothing
lost or duplicated, every row settles without a restart, and the log does
not carry a traceback per row.

The database lives on a tiny tmpfs; the fake platforms fill it with a file
between recording a post and answering it, and delete the file FULL_S later.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.conftest import MakeWorld
from tests.chaos.harness import ChaosTimeout
from tests.chaos.tmpfs import tmpfs

pytestmark = pytest.mark.chaos

FULL_S = 6.0
MAX_TRACEBACKS = 1  # one diagnostic for the episode is fine; one per row (or per poll) is not


@pytest.mark.timeout(180)
async def test_a_full_disk_after_a_post_loses_and_duplicates_nothing(
    make_world: MakeWorld, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", size="16m") as disk:
        world = await make_world(discord=10, slack=10, feeds=("alpha", "beta"), storage_dir=disk / "data")
        try:
            await world.start_bot()
            await world.ready()
            already = len(world.posts())
            fill = await world.platforms.add_fault(kind="fill_disk", path=str(disk / "filler"),
                                                   after_posts=already + 5, for_s=FULL_S)
            for feed in world.feeds:
                world.publish(feed, 2)
            filled = await world.wait("the disk to fill after a post", 60, fault=fill["id"], hits=1)
            assert filled["fault"]["filled_bytes"] > 0
            before = world.tracebacks()
            await world.wait("space to come back", FULL_S + 30, fault=fill["id"], ended=True)

            problems = []
            try:
                verdict = await world.settle(timeout=30)
            except ChaosTimeout as exc:
                problems.append(f"not settled after space came back: {str(exc).splitlines()[0]}")
                verdict = world.verdict()
            if not verdict.ok:
                problems.append(verdict.summary())
            tracebacks = world.tracebacks() - before
            await world.stop_bot()  # clean stop: the database is closed, its rows final
            stuck = {s: n for s, n in world.outbox_statuses().items() if s not in ("sent", "failed")}
            if stuck:
                problems.append(f"outbox rows still {stuck} after space came back and a clean stop")
            if tracebacks > MAX_TRACEBACKS:
                problems.append(f"{tracebacks} tracebacks in the log during and after the disk-full episode")
            assert not problems, "\n".join(problems + [world.situation()])
        finally:
            await world.close()  # nothing may hold the tmpfs when it is unmounted
