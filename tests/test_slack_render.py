"""Pure rendering: Block Kit shape, escaping, limits, trimming."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack.mrkdwn import (
    escape,
    inbound_text,
    link,
    strip_bot_mention,
    subteam_id,
    trim_mrkdwn,
)
from adapters.slack.render import (
    MAX_BLOCKS,
    MORE_ACTION_ID,
    format_duration,
    render_announcement,
    render_reply,
)
from bot.documents import TranscriptHit
from bot.models import (
    Announcement,
    Chapter,
    ContentKind,
    Event,
    EventKind,
    Item,
    Platform,
    Reply,
    ReplyItem,
    ReplySection,
    SectionLine,
    Destination,
    DestinationKind,
    StoredItem,
)
from bot.presenter import chapter_section, transcript_section

EVIL = "<!channel> & <b>x</b> <@U123>"
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

# What may appear between < and > in our output: links we built and the one mention we add.
_ANGLE = re.compile(r"<([^<>]*)>")


def unsafe_sequences(mrkdwn: str) -> list[str]:
    """Every <...> that is not an http(s) link: a mention or a link Slack would act on."""
    return [m for m in _ANGLE.findall(mrkdwn) if not re.match(r"^https?://", m)]


def all_texts(message: dict) -> list[str]:
    out = [message["text"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
                out.append(node["text"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(message["blocks"])
    return out


def test_escape_and_link() -> None:
    assert escape(EVIL) == "&lt;!channel&gt; &amp; &lt;b&gt;x&lt;/b&gt; &lt;@U123&gt;"
    assert link("https://e.com/a?b=1&c=2", EVIL) == (
        "<https://e.com/a?b=1&amp;c=2|&lt;!channel&gt; &amp; &lt;b&gt;x&lt;/b&gt; &lt;@U123&gt;>"
    )
    # not an http(s) URL, or one that would break out of <url|label>: no link at all
    assert link("javascript:alert(1)", "t") == "t"
    assert link("https://e.com/a|<!here>", "t") == "t"


def test_format_duration() -> None:
    assert format_duration(2799) == "46m 39s"
    assert format_duration(3723) == "1h 02m 03s"  # one format everywhere: bot.replies
    assert format_duration(39) == "39s"


def test_reply_blocks_items_context_chapters_and_more() -> None:
    reply = Reply(
        kind="search",
        text="Episodes on postgres",
        items=(
            ReplyItem(
                title=EVIL,
                url="https://www.youtube.com/watch?v=abc",
                kind="video",
                source="youtube",
                published_at=WHEN,
                duration_s=2799,
                chapters=(Chapter(754, "MVCC <and> vacuum"),),
                summary="A summary with <!here> in it",
                image_url="https://i.ytimg.com/vi/abc/hq.jpg",
            ),
        ),
        more="episodes on postgres page 2",
    )
    msg = render_reply(reply)
    blocks = msg["blocks"]
    assert blocks[0]["text"]["text"] == "Episodes on postgres"
    item = blocks[1]
    assert item["text"]["text"].startswith(
        "*<https://www.youtube.com/watch?v=abc|&lt;!channel&gt; &amp; &lt;b&gt;x&lt;/b&gt; &lt;@U123&gt;>*"
    )
    assert item["accessory"]["image_url"] == "https://i.ytimg.com/vi/abc/hq.jpg"
    assert blocks[2] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "video · youtube · 2024-05-01 · 46m 39s"}],
    }
    assert "<https://www.youtube.com/watch?v=abc&amp;t=754|12:34> MVCC &lt;and&gt; vacuum" in blocks[3]["text"]["text"]
    button = blocks[-1]["elements"][0]
    assert button["action_id"] == MORE_ACTION_ID and button["value"] == "episodes on postgres page 2"
    assert msg["text"].startswith("Episodes on postgres")
    for text in all_texts(msg):
        assert unsafe_sequences(text) == [], text
    assert "<!channel>" not in json.dumps(msg) and "<@U123>" not in json.dumps(msg)


def test_reply_respects_block_kit_limits() -> None:
    chapters = tuple(Chapter(i * 60, f"chapter {i} " + "&" * 50) for i in range(30))
    items = tuple(
        ReplyItem(
            title="T&" * 400,
            url=f"https://youtu.be/v{i}",
            kind="video",
            source="yt",
            duration_s=100,
            chapters=chapters,
            summary="<s>" * 2000,
        )
        for i in range(40)
    )
    msg = render_reply(Reply(kind="search", text="x" * 9000 + "\n" + "<&>" * 3000, items=items, more="more"))
    blocks = msg["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert blocks[-1]["type"] == "actions"  # the button survives trimming
    assert any("more not shown" in b["elements"][0]["text"] for b in blocks if b["type"] == "context")
    for b in blocks:
        if b["type"] == "section":
            assert 0 < len(b["text"]["text"]) <= 3000
    assert len(msg["text"]) <= 3000


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab<>&|@!; ", max_size=80), st.integers(min_value=1, max_value=60))
def test_trim_never_cuts_an_escape_or_a_link(text: str, limit: int) -> None:
    escaped = f"{escape(text)} {link('https://e.com/?a=1&b=2', text)} {escape(text)}"
    trimmed = trim_mrkdwn(escaped, limit)
    assert len(trimmed) <= max(limit, 1)
    # every & starts a whole entity, every < ... > is a whole link we built
    assert re.fullmatch(r"(?:[^&<>]|&(?:amp|lt|gt);|<https://e\.com/\?a=1&amp;b=2\|[^<>]*>)*…?", trimmed)


def _announcement(mention: str | None, title: str = EVIL) -> Announcement:
    item = Item(
        title=title,
        link="https://www.youtube.com/watch?v=abc",
        summary="<!everyone> summary",
        published_at=WHEN,
        duration_s=2799,
        image_url="https://i.ytimg.com/x.jpg",
        chapters=(Chapter(0, "Intro"), Chapter(754, "MVCC")),
    )
    return Announcement(
        outbox_id=1,
        idempotency_key="ev7:route3",
        event=Event(id=7, kind=EventKind.VIDEO, title=title, url=item.link, created_at=WHEN, item_id=1),
        destination=Destination(Platform.SLACK, DestinationKind.CHANNEL, "C1"),
        mention=mention,
        item=StoredItem(1, "youtube", ContentKind.VIDEO, "yt:abc", item, WHEN),
    )


def test_announcement_escapes_feed_text_and_mentions_only_the_group() -> None:
    msg = render_announcement(_announcement(None))
    dumped = json.dumps(msg)
    for bad in ("<!channel>", "<!here>", "<!everyone>", "<@U123>", "<b>", "<!subteam"):
        assert bad not in dumped
    assert "&lt;!channel&gt; &amp; &lt;b&gt;x&lt;/b&gt; &lt;@U123&gt;" in msg["blocks"][1]["text"]["text"]
    assert msg["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "New video", "emoji": True}}
    assert "youtube · 2024-05-01 · 46m 39s" in msg["blocks"][2]["elements"][0]["text"]
    assert msg["text"].startswith("New video: &lt;!channel&gt;")
    for text in all_texts(msg):
        assert unsafe_sequences(text) == [], text

    with_group = render_announcement(_announcement("S0ROLE1"))
    assert with_group["text"].startswith("<!subteam^S0ROLE1> New video:")
    assert with_group["blocks"][1]["text"]["text"].startswith("<!subteam^S0ROLE1> *<https://")
    for text in all_texts(with_group):
        assert unsafe_sequences(text) in ([], ["!subteam^S0ROLE1"]), text
    # anything that is not a user-group id is not turned into a mention
    assert "<!" not in json.dumps(render_announcement(_announcement("everyone")))


def test_inbound_text_and_mentions() -> None:
    assert strip_bot_mention("<@UBOT> episodes on postgres", "UBOT") == "episodes on postgres"
    assert strip_bot_mention("<@UBOT|showbot>   latest", "UBOT") == "latest"
    assert strip_bot_mention("<@UX1> latest", None) == "latest"
    assert inbound_text("feed add <https://e.com/rss?a=1&amp;b=2> as article") == (
        "feed add https://e.com/rss?a=1&b=2 as article"
    )
    assert inbound_text("announce episode here mention <!subteam^S01AB|@devs>") == (
        "announce episode here mention S01AB"
    )
    assert inbound_text("search a &amp; b &lt;c&gt;") == "search a & b <c>"
    assert subteam_id("<!subteam^S01AB|@devs>") == "S01AB" and subteam_id("everyone") is None


def test_a_preview_reply_shows_the_announcement_and_a_template_can_never_ping() -> None:
    from dataclasses import replace

    from bot.presenter import present
    from tests.announcement_cases import cases

    view = present(cases(Platform.SLACK)["episode"])
    msg = render_reply(Reply(kind="preview", text="The newest item of “podcast”.", announcement=view))
    assert msg["blocks"][0]["text"]["text"] == "The newest item of “podcast”."
    assert msg["blocks"][1] == {"type": "header", "text": {"type": "plain_text", "text": "New episode", "emoji": True}}
    # The moderator's own template text is escaped too: it can format, not ping.
    hostile = replace(cases(Platform.SLACK)["template_compact"], template="<!channel> *{title}* {url}")
    text = render_announcement(hostile)["blocks"][0]["text"]["text"]
    assert text.startswith("<!subteam^S0ROLE1> &lt;!channel&gt; *Postgres fsync")
    assert unsafe_sequences(text) == ["!subteam^S0ROLE1"]


# -- reply sections: the presenter's lead is the link ------------------------------------

def _video(title: str) -> StoredItem:
    item = Item(title=title, link="https://www.youtube.com/watch?v=abcdefghijk", guid="g",
                chapters=(Chapter(750, "Autovacuum"),))
    return StoredItem(1, "youtube", ContentKind.VIDEO, "g", item, WHEN)


def _section_mrkdwn(section: ReplySection) -> tuple[str, str]:
    """The one section line as the block shows it and as the fallback text does."""
    message = render_reply(Reply("search", "", sections=(section,)))
    (block,) = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    return block.splitlines()[-1], message["text"].splitlines()[-1]


def test_a_transcript_line_links_its_whole_clock_part_when_the_title_holds_a_colon() -> None:
    stored = _video("Kafka: consumer groups")
    section = transcript_section([TranscriptHit(stored, 750, "rebalancing the consumer group")], ["rebalancing"])
    assert section is not None
    for shown in _section_mrkdwn(section):
        assert shown.startswith("• <https://www.youtube.com/watch?v=abcdefghijk&amp;t=750"
                                "|at 12:30 in video “Kafka: consumer groups”>: "), shown
        assert "rebalancing" in shown and unsafe_sequences(shown) == []


def test_a_chapter_line_links_its_whole_title_when_the_title_holds_a_colon() -> None:
    stored = _video("E42: Postgres vacuum")
    section = chapter_section([(stored, stored.item.chapters[0])])
    assert section is not None
    for shown in _section_mrkdwn(section):
        assert shown == ("• <https://www.youtube.com/watch?v=abcdefghijk&amp;t=750"
                         "|“E42: Postgres vacuum”>: Autovacuum (at 12:30)"), shown


def test_a_section_line_escapes_both_parts_and_without_a_safe_link_is_plain_text() -> None:
    line = SectionLine("at 0:05 in video “a <b> & c”: x <!channel>", "https://example.org/v?a=1&b=2",
                       "at 0:05 in video “a <b> & c”")
    shown, _ = _section_mrkdwn(ReplySection("In transcripts", (line,)))
    assert shown == "• <https://example.org/v?a=1&amp;b=2|at 0:05 in video “a &lt;b&gt; &amp; c”>: x &lt;!channel&gt;"
    unlinked, _ = _section_mrkdwn(ReplySection("In transcripts", (SectionLine(line.text, "javascript:x", line.lead),)))
    assert unlinked == "• at 0:05 in video “a &lt;b&gt; &amp; c”: x &lt;!channel&gt;"
    # no lead: the whole line is the link, never a guess at where it ends
    whole, _ = _section_mrkdwn(ReplySection("In transcripts", (SectionLine("E42: vacuum", "https://example.org/"),)))
    assert whole == "• <https://example.org/|E42: vacuum>"
    with pytest.raises(ValueError):
        SectionLine("at 0:05 in video: x", None, "at 0:06")
