from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--feeds-corpus",
        action="store",
        default=None,
        help="a folder of real-world feeds to run through the rss source's parse path",
    )


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _charts_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Charts drawn by `stats` go to the test's own folder, not /tmp."""
    import bot.charts

    charts = tmp_path / "_charts"
    charts.mkdir()
    monkeypatch.setattr(bot.charts, "_dir", charts)


# Both storage backends (tests/backends.py): ``db`` / ``storage`` run a test
# once on SQLite and once on PostgreSQL (skipped without SHOWBOT_TEST_DATABASE_URL).
from tests.backends import backend, db, pg_run, pg_url, storage  # noqa: E402,F401
@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """``bot.cli.main`` configures the root logger as a process entry point
    does; tests that call it in-process must not change what later tests log."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    scheduler_level = logging.getLogger("apscheduler").level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(scheduler_level)


@pytest.fixture
async def chat(tmp_path: Path, request: pytest.FixtureRequest):  # noqa: ANN201 - tests.chat.Chat
    """The one harness every command test shares (tests/chat.py): the
    catalogue in a real SQLite file, the real commands and outbox.
    ``@pytest.mark.chat(catalog=False, book=...)`` changes what it starts with."""
    from tests.chat import open_chat

    marker = request.node.get_closest_marker("chat")
    harness = await open_chat(tmp_path / "chat.db", **(marker.kwargs if marker else {}))
    try:
        yield harness
    finally:
        await harness.store.close()
