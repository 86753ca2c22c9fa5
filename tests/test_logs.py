"""[log]: level and format, ids from the log context, secrets never written."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from bot.config import Secrets, parse_config
from bot.errors import ConfigError
from bot.logs import configure_logging, log_context


def test_log_section_is_validated() -> None:
    assert parse_config({"log": {"level": "DEBUG", "format": "json"}}).log.level == "debug"
    with pytest.raises(ConfigError, match="log.format"):
        parse_config({"log": {"format": "xml"}})
    with pytest.raises(ConfigError, match="log.level"):
        parse_config({"log": {"level": "loud"}})
    with pytest.raises(ConfigError, match="log.colour"):
        parse_config({"log": {"colour": True}})


def test_json_lines_carry_the_context_ids_and_never_a_secret() -> None:
    secrets = Secrets.from_env({"DISCORD_TOKEN": "discord-secret-token-123",
                                "SHOWBOT_WEB_TOKEN": "web-token-abcdef"})
    out = io.StringIO()
    configure_logging(level="info", fmt="json", secrets=secrets.values(), stream=out)
    log = logging.getLogger("showbot.test")
    with log_context(source="podcast"):
        log.info("polled %s with Authorization: Bot %s", "podcast", "discord-secret-token-123")
        with log_context(outbox=12, route=3, platform="discord"):
            log.warning("delivery to the channel failed")
    log.debug("hidden at info")
    try:
        raise RuntimeError("token web-token-abcdef in a traceback")
    except RuntimeError:
        log.exception("crash")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 3
    first, second, third = lines
    assert set(first) == {"time", "level", "logger", "message", "source"}
    assert (first["level"], first["logger"], first["source"]) == ("info", "showbot.test", "podcast")
    assert "discord-secret-token-123" not in first["message"] and "[redacted]" in first["message"]
    assert (second["source"], second["outbox"], second["route"], second["platform"]) == ("podcast", 12, 3, "discord")
    assert "outbox" not in third and "web-token-abcdef" not in json.dumps(third)
    assert "RuntimeError" in third["exc"]
    assert "discord-secret-token-123" not in out.getvalue() and "web-token-abcdef" not in out.getvalue()


async def test_two_tasks_never_mix_their_ids() -> None:
    out = io.StringIO()
    configure_logging(level="info", fmt="json", stream=out)
    log = logging.getLogger("showbot.test")
    both = asyncio.Barrier(2)

    async def poll(name: str) -> None:
        with log_context(source=name):
            await both.wait()  # both contexts are set before either logs
            log.info("polling %s", name)

    await asyncio.gather(poll("a"), poll("b"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted((line["source"], line["message"]) for line in lines) == [("a", "polling a"), ("b", "polling b")]


def test_text_format_is_the_one_showbot_always_printed() -> None:
    out = io.StringIO()
    configure_logging(level="warning", fmt="text", secrets=("xoxb-1234567",), stream=out)
    logging.getLogger("showbot").info("not shown")
    logging.getLogger("showbot").warning("slack said no to xoxb-1234567")
    (line,) = out.getvalue().splitlines()
    assert line.endswith("WARNING showbot: slack said no to [redacted]")
