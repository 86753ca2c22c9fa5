"""adapters/discord/render.py: pure rendering, Discord's limits, escaping."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.discord.commands import announce_text, command_text, feed_add_text, template_text
from adapters.discord.caller import strip_bot_mention
from adapters.discord.render import (
    DESCRIPTION_MAX,
    EMBED_TOTAL_MAX,
    EMBEDS_MAX,
    TITLE_MAX,
    chapter_line,
    fit_escaped,
    format_clock,
    format_duration,
    render_reply,
    safe_url,
)
from bot.models import Chapter, ChapterView, Reply, ReplyItem
from bot.presenter import chapter_views

LINK = re.compile(r"\[(?:[^\[\]\\]|\\.)*\]\(https?://[^()\s]+\)")


def item(**kw: object) -> ReplyItem:
    base: dict[str, object] = dict(title="Episode", url="https://youtu.be/abc", kind="episode", source="podcast")
    base.update(kw)
    return ReplyItem(**base)  # type: ignore[arg-type]


def test_durations_and_clock() -> None:
    assert format_duration(2799) == "46m 39s"
    assert format_duration(3723) == "1h 02m 03s"  # one format everywhere: bot.replies
    assert format_duration(59) == "59s"
    assert format_clock(720) == "12:00"
    assert format_clock(3723) == "1:02:03"


def chapter(url: str, start_s: int, title: str) -> ChapterView:
    (view,), _ = chapter_views(url, [Chapter(start_s, title)])
    return view


def test_chapter_links_only_where_a_timestamp_works() -> None:
    # The core builds the link; the renderer only shows it.
    line = chapter_line(chapter("https://www.youtube.com/watch?v=abc", 720, "VMA areas"))
    assert line == "[12:00 VMA areas](https://www.youtube.com/watch?v=abc&t=720)"
    assert chapter_line(chapter("https://podcasters.spotify.com/ep/1", 720, "VMA")) == "12:00 VMA"
    # Brackets and markdown in a chapter title cannot break the link.
    evil = chapter_line(chapter("https://youtu.be/abc", 1, "a](http://evil) [b *c*"))
    assert LINK.fullmatch(evil), evil
    assert evil.endswith("(https://youtu.be/abc?t=1)")


def test_a_search_hit_link_that_opens_at_a_chapter_gets_t_once() -> None:
    # The issue: `watch?v=abc&t=746&t=746s`, the core's link extended by the adapter.
    hit = item(url="https://www.youtube.com/watch?v=abc&t=746", chapters=(Chapter(746, "Page tables"),))
    description = render_reply(Reply(kind="search", text="", items=(hit,))).embeds[0].description or ""
    assert "(https://www.youtube.com/watch?v=abc&t=746)" in description
    assert description.count("t=") == 1


def test_unsafe_urls_are_dropped() -> None:
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("https://example.com/a b)c") == "https://example.com/a%20b%29c"


def test_feed_text_is_escaped() -> None:
    rendered = render_reply(
        Reply(kind="search", text="found @everyone", items=(item(title="@everyone <@&123> **bold**", summary="@here hi"),))
    )
    embed = rendered.embeds[0].to_dict()
    assert embed["title"] == "@\u200beveryone <@&123> \\*\\*bold\\*\\*"
    assert "@\u200bhere" in embed["description"]
    assert rendered.content == "found @\u200beveryone"


def test_limits_hold_for_huge_replies() -> None:
    chapters = tuple(Chapter(i * 60, f"chapter {i} " + "x" * 40) for i in range(300))
    items = tuple(
        item(title="T" * 1000, summary="word " * 3000, chapters=chapters, duration_s=100) for _ in range(15)
    )
    rendered = render_reply(Reply(kind="search", text="many", items=items))
    assert 1 <= len(rendered.embeds) <= EMBEDS_MAX
    assert sum(len(e) for e in rendered.embeds) <= EMBED_TOTAL_MAX
    for e in rendered.embeds:
        assert len(e.title or "") <= TITLE_MAX
        assert len(e.description or "") <= DESCRIPTION_MAX
        assert len(e.fields) <= 25
        # Every line that opens a link is a whole link: trimming cut between atoms.
        for line in (e.description or "").split("\n"):
            if line.startswith("["):
                assert LINK.fullmatch(line), line
    assert "(showing" in (rendered.content or "")


def test_reply_flags_pass_through() -> None:
    r = render_reply(Reply(kind="error", text="nope", ephemeral=True, more="latest page 2", image_path="/tmp/x.png"))
    assert r.ephemeral and r.more == "latest page 2" and r.image_path == "/tmp/x.png"
    assert r.embeds == []
    assert render_reply(Reply(kind="x", text="")).content  # never an empty message


def test_dates_become_the_embed_timestamp() -> None:
    when = datetime(2024, 5, 1, tzinfo=timezone.utc)
    e = render_reply(Reply(kind="latest", text="", items=(item(published_at=when),))).embeds[0]
    assert e.timestamp == when


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600), st.integers(min_value=1, max_value=300))
def test_fit_escaped_never_breaks_an_escape(raw: str, limit: int) -> None:
    out = fit_escaped(raw, limit)
    assert len(out) <= limit
    body = out[:-1] if out.endswith("…") else out
    # An odd run of trailing backslashes would escape whatever follows.
    trailing = len(body) - len(body.rstrip("\\"))
    assert trailing % 2 == 0


def test_command_text_builders() -> None:
    assert command_text("latest", None) == "latest"
    assert feed_add_text("https://x/feed", "video", "yt", "1h") == "feed add https://x/feed as video name yt every 1h"
    assert feed_add_text("https://x/feed", None, None, None) == "feed add https://x/feed"
    assert announce_text("episode, video", None) == "announce episode video here"
    assert announce_text("OFF", None) == "announce off here"
    assert announce_text("episode", None, thread=True) == "announce episode here thread"
    assert announce_text("only episode from podcast", None) == "announce only episode from podcast here"
    assert announce_text("digest daily", None) == "announce digest daily here"
    assert template_text(None, None) == "template list"
    assert template_text("compact", None) == "template compact here"
    assert template_text("reset", None) == "template reset here"
    assert template_text(None, " {title} {url} ") == "template set here {title} {url}"
    assert command_text("feed backfill", "podcast", 5) == "feed backfill podcast 5"


def test_strip_bot_mention() -> None:
    assert strip_bot_mention("<@42> episodes on postgres", 42) == "episodes on postgres"
    assert strip_bot_mention("hey <@!42>   latest  ", 42) == "hey latest"
    assert strip_bot_mention("<@43> latest", 42) is None


def test_a_preview_reply_shows_the_announcement_instead_of_the_list() -> None:
    from bot.presenter import present
    from bot.models import Platform
    from tests.announcement_cases import cases

    view = present(cases(Platform.DISCORD)["video"])
    rendered = render_reply(Reply(kind="preview", text="Preview.", items=(item(),), announcement=view))
    (embed,) = rendered.embeds
    assert embed.author.name == "New video" and rendered.content == "Preview."
    assert embed.footer.text is None  # never posted: no delivery marker
