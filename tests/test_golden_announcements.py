"""Golden files: every announcement shape (tests/announcement_cases.py) as
each platform posts it -- the Discord message (content + embed JSON), Slack's
Block Kit, the console's text. A wording change shows in one diff, and the
platforms can't drift apart again: the headings, links and chapter links of
each case are checked to be the same everywhere.

Regenerate after a deliberate change with ``UPDATE_GOLDEN=1 pytest
tests/test_golden_announcements.py`` and read the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.render import announcement_parts, delivery_marker
from adapters.slack.render import render_view as slack_view
from bot.models import Announcement, Platform, SegmentRole
from bot.plaintext import render_view as console_view
from bot.presenter import present
from tests.announcement_cases import cases

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(cases(Platform.CONSOLE))


def discord_message(a: Announcement) -> dict[str, Any]:
    content, embed = announcement_parts(present(a), delivery_marker(a.idempotency_key))
    return {"content": content, "embed": embed.to_dict() if embed is not None else None}


def slack_message(a: Announcement) -> dict[str, Any]:
    return slack_view(present(a))


def console_text(a: Announcement) -> str:
    return console_view(present(a)) + "\n"


def rendered(platform: Platform, name: str) -> str:
    a = cases(platform)[name]
    if platform is Platform.DISCORD:
        return json.dumps(discord_message(a), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if platform is Platform.SLACK:
        return json.dumps(slack_message(a), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return console_text(a)


def golden_path(platform: Platform, name: str) -> Path:
    suffix = "txt" if platform is Platform.CONSOLE else "json"
    return GOLDEN / platform.value / f"{name}.{suffix}"


@pytest.mark.parametrize("platform", list(Platform), ids=lambda p: p.value)
@pytest.mark.parametrize("name", CASES)
def test_announcement_matches_its_golden_file(platform: Platform, name: str) -> None:
    path = golden_path(platform, name)
    actual = rendered(platform, name)
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


def test_every_golden_file_belongs_to_a_case() -> None:
    found = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.*")}
    wanted = {golden_path(pl, n).relative_to(GOLDEN).as_posix() for pl in Platform for n in CASES}
    assert found == wanted


@pytest.mark.parametrize("name", CASES)
def test_the_platforms_say_the_same_heading_and_links(name: str) -> None:
    views = {p: present(a) for p, a in ((p, cases(p)[name]) for p in Platform)}
    headings = {v.heading for v in views.values()}
    assert len(headings) == 1, headings
    view = views[Platform.CONSOLE]
    discord = discord_message(cases(Platform.DISCORD)[name])
    slack = json.dumps(slack_message(cases(Platform.SLACK)[name]))
    console = console_text(cases(Platform.CONSOLE)[name])
    if not view.body:
        assert discord["embed"]["author"]["name"] == view.heading
        assert slack_message(cases(Platform.SLACK)[name])["blocks"][0]["text"]["text"] == view.heading
        assert console.startswith(f"[{view.heading}")
    if view.body:
        links = [s.text for s in view.body if s.role is SegmentRole.LINK]
    else:
        links = [c.url for c in view.chapters if c.url] + ([view.url] if view.url else [])
    for url in links:
        assert url in json.dumps(discord) and url.replace("&", "&amp;") in slack and url in console
    # A chapter link carries one t= whoever shows it.
    for text in (json.dumps(discord), slack, console):
        assert not re.search(r"t=\d+s?&(amp;)?t=", text)
