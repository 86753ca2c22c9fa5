"""The presenter and templates, pure: what a view says, and what a template may be."""

from __future__ import annotations

import pytest

from bot.errors import UserError
from bot.models import Chapter, Platform, Segment, SegmentRole
from bot.presenter import chapter_views, present
from bot.templates import GALLERY, Placeholder, parse_template, render_template
from tests.announcement_cases import cases

LIT, TEXT, LINK = SegmentRole.LITERAL, SegmentRole.TEXT, SegmentRole.LINK


def test_chapters_come_in_time_order_with_links_built_once() -> None:
    views, hidden = chapter_views("https://www.youtube.com/watch?v=abc&t=746",
                                  [Chapter(746, "Page tables"), Chapter(0, "Intro"), Chapter(95, "MVCC")], limit=2)
    assert [(c.clock, c.title, c.url) for c in views] == [
        ("0:00", "Intro", "https://www.youtube.com/watch?v=abc"),
        ("1:35", "MVCC", "https://www.youtube.com/watch?v=abc&t=95"),
    ]
    assert hidden == 1
    podcast, _ = chapter_views("https://anchor.fm/ep/1", [Chapter(60, "One")])
    assert podcast[0].url is None  # no player there opens at a minute


def test_follow_ups_tests_and_direct_messages_never_ping() -> None:
    all_cases = cases(Platform.DISCORD)
    assert present(all_cases["episode"]).mention == "987654321098765432"
    for name in ("book_follow_up", "test_post", "direct_message"):
        assert present(all_cases[name]).mention is None, name
    assert present(all_cases["test_post"]).heading == "Test post: New episode"
    assert present(all_cases["direct_message"]).direct_to == "U42"


def test_a_template_is_the_message_and_the_mention_goes_first() -> None:
    view = present(cases(Platform.DISCORD)["template_compact"])
    assert view.body == (
        Segment("987654321098765432", SegmentRole.MENTION), Segment(" New ", LIT), Segment("video", TEXT),
        Segment(" from ", LIT), Segment("youtube", TEXT), Segment(": ", LIT),
        Segment("Postgres fsync and SSD caches, explained with a demo", TEXT), Segment(" ", LIT),
        Segment("https://www.youtube.com/watch?v=abc123", LINK),
    )


def test_alerts_and_digests_ignore_the_template() -> None:
    assert present(cases(Platform.SLACK)["alert"]).body == ()


@pytest.mark.parametrize("text,error", [
    ("{title} {colour}", "There is no placeholder {colour}."),
    ("{title.__class__}", "“{title.__class__}” isn't a placeholder"),
    ("{title[0]}", "“{title[0]}” isn't a placeholder"),
    ("{0}", "“{0}” isn't a placeholder"),
    ("{title!r}", "“{title!r}” isn't a placeholder"),
    ("{title", "A `{` in a template is never closed"),
    ("title}", "A `}` in a template has no `{` before it"),
    ("   ", "A template needs some text"),
    ("x" * 1001, "Keep a template under 1000 characters"),
])
def test_a_template_that_is_not_plain_placeholders_is_refused_by_name(text: str, error: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_template(text)
    assert str(caught.value).startswith(error)


def test_braces_are_written_twice() -> None:
    assert parse_template("{{title}} {title}") == ("{title} ", Placeholder("title"))


def test_a_line_whose_placeholders_are_all_empty_is_dropped() -> None:
    parts = parse_template("{title}\n{published} · {duration}\n{url}")
    values = {"title": [Segment("T", TEXT)], "url": [Segment("https://e.com", LINK)]}
    assert render_template(parts, values) == (
        Segment("T", TEXT), Segment("\n", LIT), Segment("https://e.com", LINK))


def test_every_gallery_template_parses() -> None:
    assert len([g for g in GALLERY if g.text]) >= 4
    for g in GALLERY:
        if g.text:
            parse_template(g.text)


def test_a_premiere_reads_premieres_at_then_live_now_then_the_plain_video() -> None:
    from dataclasses import replace

    from bot.presenter import live_heading

    video = cases(Platform.DISCORD)["video"]

    def heading(live: object) -> str:
        event = replace(video.event, payload={"live": live} if live is not None else {})
        return present(replace(video, event=event)).heading

    assert heading({"state": "upcoming", "scheduled_start_at": "2026-12-01T18:00:00+00:00"}) == \
        "Premieres at 2026-12-01 18:00 UTC"
    assert heading({"state": "live"}) == "Live now"
    assert heading({"state": "none"}) == heading(None) == "New video"
    assert live_heading({"live": {"state": "upcoming", "scheduled_start_at": "tomorrow"}}) == "Premieres soon"


def test_a_video_on_a_local_host_still_gets_seeking_chapter_links() -> None:
    from dataclasses import replace

    video = cases(Platform.DISCORD)["video"]
    assert video.item is not None
    local = replace(video.item.item, link="http://127.0.0.1:8123/watch?v=abc123")
    view = present(replace(video, item=replace(video.item, item=local)))
    assert [c.url for c in view.chapters][1] == "http://127.0.0.1:8123/watch?v=abc123&t=95"
