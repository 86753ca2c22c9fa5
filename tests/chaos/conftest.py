"""Fixtures of the chaos suite.

- ``chaos_seed``: the run's RNG seed, ``SHOWBOT_CHAOS_SEED`` or a fresh one;
  printed with every failure so the run can be replayed.
- ``platforms``: the fake-platforms process (tests/chaos/platforms.py), stopped after the test.
- ``make_world``: builds a World (harness.py) around them and the feed server;
  every bot and ``showbot poll`` it started is killed and reaped afterwards.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.feeds import ChaosFeed
from tests.chaos.harness import World, discord_channels, slack_channels
from tests.chaos.platforms_client import Platforms
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)

MakeWorld = Callable[..., Awaitable[World]]


@pytest.fixture
def chaos_seed(request: pytest.FixtureRequest) -> int:
    raw = os.environ.get("SHOWBOT_CHAOS_SEED")
    seed = int(raw) if raw else random.SystemRandom().randrange(1, 2**31)
    print(f"chaos seed {seed} (replay with SHOWBOT_CHAOS_SEED={seed})")
    return seed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome: Any = yield
    report = outcome.get_result()
    seed = getattr(item, "funcargs", {}).get("chaos_seed")
    if report.failed and seed is not None:
        report.sections.append(("chaos seed", f"SHOWBOT_CHAOS_SEED={seed} replays this run"))


@pytest.fixture
async def platforms(tmp_path: Path, chaos_seed: int) -> AsyncIterator[Platforms]:
    fakes = Platforms(tmp_path / "platforms", seed=chaos_seed)
    await fakes.start()
    try:
        yield fakes
    finally:
        await fakes.stop()


@pytest.fixture
async def make_world(
    tmp_path: Path, chaos_seed: int, platforms: Platforms, feed_server: FeedServer  # noqa: F811
) -> AsyncIterator[MakeWorld]:
    worlds: list[World] = []

    async def make(*, discord: int = 20, slack: int = 20, feeds: tuple[str, ...] = ("alpha", "beta"),
                   storage_dir: Path | None = None, extra_toml: str = "") -> World:
        work = tmp_path / "world"
        work.mkdir(exist_ok=True)
        world = World(
            work=work, seed=chaos_seed, platforms=platforms,
            feeds=[ChaosFeed(name, feed_server) for name in feeds],
            discord=discord_channels(discord), slack=slack_channels(slack),
            storage_dir=storage_dir or work / "data", extra_toml=extra_toml,
        )
        worlds.append(world)
        return world

    try:
        yield make
    finally:
        for world in worlds:
            await world.close()
