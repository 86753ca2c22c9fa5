"""(h) ``showbot poll --source X`` while ``showbot run`` polls X every second:
never an IntegrityError in either process, and ``poll`` exits 0, or 1 with
a line saying the source's poll is already running.

To make the overlap certain rather than lucky, each round publishes a new
item and holds every fetch of the feed; once the scheduled poll is waiting
there, mid-poll, ``showbot poll`` starts: it must decline ("already
running") or, if it fetched too, both must store without an error.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.conftest import MakeWorld
from tests.chaos.harness import CliRun, assert_delivered_exactly_once_in_order

pytestmark = pytest.mark.chaos

ROUNDS = 6
BOTH_WAITING_S = 10.0  # the scheduled poll fires every 1-2 s; `showbot poll` starts in ~1 s


@pytest.mark.timeout(180)
async def test_poll_cli_racing_the_scheduler_never_hits_an_integrity_error(make_world: MakeWorld) -> None:
    world = await make_world(discord=2, slack=2, feeds=("alpha",))
    feed = world.feeds["alpha"]
    await world.start_bot()
    await world.ready()
    runs: list[CliRun] = []
    overlaps = 0
    for _ in range(ROUNDS):
        before = feed.hits
        feed.publish(hold=True)
        # The scheduled poll (every 1 s) reaches the feed and is held there,
        # mid-poll; only then does `showbot poll` start, so the two overlap
        # for certain.
        await world.race("the scheduled poll at the feed", feed.polled(before + 1, BOTH_WAITING_S),
                         BOTH_WAITING_S + 5)
        cli = await world.start_cli_poll("alpha")
        # It either declines at once ("already running") or, had it found the
        # source free, would fetch too: then both wait at the feed.
        both = asyncio.ensure_future(feed.polled(before + 2, BOTH_WAITING_S))
        await world.race("showbot poll to decline, or both polls at the feed",
                         asyncio.wait({both, cli}, return_when=asyncio.FIRST_COMPLETED), BOTH_WAITING_S + 5)
        at_feed = feed.hits - before
        both.cancel()
        await asyncio.gather(both, return_exceptions=True)
        feed.release()
        run = await world.race("showbot poll to finish", cli, 60)
        runs.append(run)
        overlaps += at_feed >= 2 or "already running" in run.output
    feed.release()

    problems = []
    for i, run in enumerate(runs, 1):
        if "IntegrityError" in run.output:
            problems.append(f"round {i}: showbot poll hit an IntegrityError (exit {run.returncode}): "
                            f"{_line(run.output, 'IntegrityError')}")
        elif not (run.returncode == 0 or (run.returncode == 1 and "already running" in run.output)):
            problems.append(f"round {i}: showbot poll exited {run.returncode}: {run.output.strip()[-300:]}")
    bot_errors = world.logs().count("IntegrityError")
    if bot_errors:
        problems.append(f"showbot run logged IntegrityError {bot_errors} time(s): "
                        f"{_line(world.logs(), 'IntegrityError')}")
    assert overlaps > 0, f"no round made the two polls overlap; the scenario proved nothing\n{world.situation()}"
    assert not problems, "\n".join(problems + [world.situation()])

    verdict = await world.settle(timeout=60)
    assert verdict.expected == ROUNDS * 4
    assert_delivered_exactly_once_in_order(verdict, world)


def _line(text: str, needle: str) -> str:
    return next((line.strip() for line in text.splitlines() if needle in line), "")[:300]
