"""Fixtures of the chaos suite.

- ``chaos_seed``: the run's RNG seed, ``SHOWBOT_CHAOS_SEED`` or a fresh one;
  printed with every failure so the run can be replayed.
- ``platforms``: the fake-platforms process (tests/chaos/platforms.py), stopped after the test.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.platforms_client import Platforms


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
