"""bot.sources.feeds: fixtures parse to the right items; bad input is a FeedParseError."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.errors import FeedParseError
from bot.models import ParsedFeed
from bot.sources.feeds import _harden, parse_feed, parse_feed_off_loop
from tests.feedgen import chapter_starts, episode_duration_s, episode_title, make_podcast_feed

FIXTURES = Path(__file__).parent / "fixtures"
UTC = timezone.utc


def _load(name: str) -> ParsedFeed:
    return parse_feed((FIXTURES / name).read_bytes(), url="https://anchor.fm/s/1eb6d14/podcast/rss")


# ------------------------------------------------------------------- podcast


@pytest.fixture(scope="module")
def podcast() -> ParsedFeed:
    return _load("podcast.xml")


def test_podcast_feed_fields(podcast: ParsedFeed) -> None:
    assert podcast.title == "The Backend Engineering Show with Hussein Nasser"
    assert podcast.link == "https://podcasters.spotify.com/pod/show/hussein-nasser"
    assert podcast.image_url is not None and podcast.image_url.endswith("3a0e0ed6c6a6.jpg")
    assert podcast.warning is None
    assert len(podcast.items) == 15


def test_podcast_titles_durations_numbers(podcast: ParsedFeed) -> None:
    got = [(i.title, i.duration_s, i.episode_number) for i in podcast.items[:12]]
    assert got == [
        ("Postgres is half as fast in Linux 7.0", None, 538),  # no itunes:duration
        ("Don't let AI rob you", 1913, 537),  # "1913"
        ("My new book - Root cause, Stories from two decades of backend bugs", 588, 536),  # "00:09:48"
        ("5 Backend Design Patterns for Managing Threads and Sockets", 2769, 535),  # "46:09"
        ("Page Tables", 2799, 534),  # "46:39"
        ("CPU and Kernel Page Faults", 2917, 533),  # "2917"
        ("Amazon US-EAST-1 Outage in Details", 1466, 532),  # "00:24:26"
        ("Graceful shutdown in HTTP", 1549, 531),  # "25:49"
        ("Postgres 18 gets Async IO", 2472, 530),
        ("Kernel level TLS", 1375, 529),  # "0:22:55"
        ("The beauty of the CPU", 578, 528),  # "9:38"
        ("Sequential Scans in Postgres just got faster", 1656, 527),
    ]
    assert all(i.episode_number is None for i in podcast.items[12:])


def test_podcast_item_details(podcast: ParsedFeed) -> None:
    page_tables = podcast.items[4]
    assert page_tables.published_at == datetime(2025, 12, 15, 15, 10, tzinfo=UTC)
    assert page_tables.published_at.tzinfo is UTC
    assert page_tables.guid == "65587b7e-3b25-5ac7-ac03-5221209541fc"
    assert page_tables.link == (
        "https://podcasters.spotify.com/pod/show/hussein-nasser/episodes/Page-Tables-e65587b"
    )
    assert page_tables.enclosure_url is not None
    assert page_tables.enclosure_url.startswith("https://anchor.fm/s/1eb6d14/podcast/play/")
    assert page_tables.image_url is not None and page_tables.image_url.endswith(".jpg")
    assert page_tables.summary.startswith("Page tables provide the mapping between virtual memory")
    assert "<p>" not in page_tables.summary
    assert [(c.start_s, c.title) for c in page_tables.chapters] == [
        (0, "Intro"), (120, "Virtual Memory"), (480, "MMU"), (600, "Page Tables"),
        (690, "Single Table Byte Addressability"), (960, "Single Table Page addressability"),
        (1140, "Multi-level Paging (Radix tree)"), (1860, "Huge Tables"), (1980, "TLB Summary"),
    ]


def test_podcast_run_on_chapters(podcast: ParsedFeed) -> None:
    postgres = podcast.items[0]
    assert [(c.start_s, c.title) for c in postgres.chapters] == [
        (0, "Intro"), (150, "The Discovery"), (390, "Spinlocks"), (565, "Preemption"),
        (780, "Root Cause"), (1020, "How Postgres Processes exacerbated the problem"),
        (1350, "Is the fix easy?"), (1550, "Summary"),
    ]
    outage = podcast.items[6]
    assert [(c.start_s, c.title) for c in outage.chapters] == [
        (0, "Summary"), (330, "How did Dynamo lost its DNS?"), (821, "EC2 Errors"),
        (976, "Network Load Balancer ErrorsRCA here"),
    ]


def test_podcast_br_separated_chapters(podcast: ParsedFeed) -> None:
    index = podcast.items[12]
    assert index.title == "Why create Index blocks writes"
    assert index.published_at == datetime(2023, 10, 28, 15, 0, tzinfo=UTC)
    assert [(c.start_s, c.title) for c in index.chapters] == [
        (0, "Intro"), (88, "How Create Index works"), (285, "Create Index blocking Writes"),
        (300, "Create Index Concurrently"),
    ]
    assert "\n1:28 How Create Index works\n" in index.summary  # <br> became line breaks


def test_podcast_items_without_chapters(podcast: ParsedFeed) -> None:
    assert podcast.items[1].chapters == ()  # "Don't let AI rob you"


# ------------------------------------------------------------------- youtube


def test_youtube_fixture() -> None:
    feed = _load("youtube.xml")
    assert feed.title == "Hussein Nasser"
    assert [i.video_id for i in feed.items] == [
        "Xq3pVbTuM9w", "bE3Wq0nJc7s", "pV9kX2dLr1A", "Rk7tYw2QmZs",
    ]
    first = feed.items[0]
    assert first.title == "Postgres is half as fast in Linux 7.0"
    assert first.guid == "yt:video:Xq3pVbTuM9w"
    assert first.link == "https://www.youtube.com/watch?v=Xq3pVbTuM9w"
    assert first.image_url == "https://i2.ytimg.com/vi/Xq3pVbTuM9w/hqdefault.jpg"
    assert first.published_at == datetime(2026, 6, 17, 14, 0, 7, tzinfo=UTC)
    assert first.updated_at == datetime(2026, 6, 18, 2, 11, 40, tzinfo=UTC)
    assert first.enclosure_url is None and first.duration_s is None
    assert [c.start_s for c in first.chapters] == [0, 150, 390, 565, 780, 1020, 1350, 1550]
    ech = feed.items[3]
    assert ech.title == "Encrypted Client Hello - The Pros & Cons"
    assert ech.chapters[-1].title == "Censorship vs Privacy"  # line end closes the title


# ---------------------------------------------------------------------- blog


def test_blog_fixture_content_encoded() -> None:
    feed = _load("blog.xml")
    assert feed.title == "Stories by Hussein Nasser on Medium"
    titles = [i.title for i in feed.items]
    assert titles == [
        "It’s not you, modern software does feel slow",
        "How to Become a Good Backend Engineer (Fundamentals)",
        "The Journey of a Request to the Backend",
    ]
    slow = feed.items[0]
    assert slow.guid == "https://medium.com/p/5c1a7f0e3b21"
    assert slow.link is not None and slow.link.startswith(
        "https://medium.com/@hnasr/its-not-you-modern-software-does-feel-slow-5c1a7f0e3b21"
    )
    assert slow.published_at == datetime(2026, 5, 12, 17, 41, 2, tzinfo=UTC)
    assert "<" not in slow.summary and "&amp;" not in slow.summary and "&mdash;" not in slow.summary
    assert "a network hop & a retry" in slow.summary
    assert "Measure before you guess.\nKnow what each layer does for you." in slow.summary
    journey = feed.items[2]
    assert "Accept\nRead\nDecrypt\nParse\nDecode\nProcess" in journey.summary


# ---------------------------------------------------------- normalization bits


def _rss(items: str, *, extra_ns: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        f'xmlns:media="http://search.yahoo.com/mrss/" {extra_ns}><channel><title>T</title>'
        f"{items}</channel></rss>"
    ).encode()


def test_title_falls_back_to_summary_then_untitled() -> None:
    feed = parse_feed(_rss(
        "<item><description>&lt;b&gt;Short&lt;/b&gt; note</description><guid>a</guid></item>"
        "<item><guid>b</guid></item>"
    ))
    assert [i.title for i in feed.items] == ["Short note", "(untitled)"]


def test_html_in_title_is_stripped_and_whitespace_collapsed() -> None:
    feed = parse_feed(_rss("<item><title>  Hello\n   &lt;i&gt;world&lt;/i&gt; </title></item>"))
    assert feed.items[0].title == "Hello world"


def test_relative_guid_is_kept_and_relative_link_resolved() -> None:
    feed = parse_feed(
        _rss("<item><title>x</title><guid>ep-12</guid><link>/episodes/12</link></item>"),
        url="https://example.com/feed.xml",
    )
    item = feed.items[0]
    assert item.guid == "ep-12"  # identity must not depend on where the feed came from
    assert item.link == "https://example.com/episodes/12"


def test_non_permalink_guid_is_not_a_link() -> None:
    feed = parse_feed(_rss("<item><title>x</title><guid>ep-12</guid></item>"))
    assert feed.items[0].link is None


def test_invalid_and_missing_dates_are_none() -> None:
    feed = parse_feed(_rss(
        "<item><title>a</title><pubDate>not a date</pubDate></item>"
        "<item><title>b</title><pubDate>Mon, 45 Foo 2025 99:99:99 GMT</pubDate></item>"
        "<item><title>c</title></item>"
        "<item><title>d</title><pubDate>Tue, 01 Aug 2023 16:12:40 +0200</pubDate></item>"
    ))
    assert [i.published_at for i in feed.items] == [
        None, None, None, datetime(2023, 8, 1, 14, 12, 40, tzinfo=UTC),
    ]


def test_broken_durations_and_episode_numbers_are_none() -> None:
    feed = parse_feed(_rss(
        "<item><title>a</title><itunes:duration>00:50:95</itunes:duration>"
        "<itunes:episode>twelve</itunes:episode></item>"
        "<item><title>b</title><itunes:duration>soon</itunes:duration>"
        "<itunes:episode>-3</itunes:episode></item>"
        "<item><title>c</title><itunes:duration>62:03</itunes:duration>"
        "<itunes:episode> 7 </itunes:episode></item>"
    ))
    assert [(i.duration_s, i.episode_number) for i in feed.items] == [
        (None, None), (None, None), (3723, 7),
    ]


def test_enclosure_prefers_audio_and_image_falls_back_to_media() -> None:
    feed = parse_feed(_rss(
        "<item><title>a</title>"
        '<enclosure url="https://x.example/cover.jpg" type="image/jpeg" length="1"/>'
        '<enclosure url="https://x.example/a.mp3" type="audio/mpeg" length="1"/>'
        '<media:content url="https://x.example/still.png" medium="image"/>'
        "</item>"
        '<item><title>b</title><enclosure url="https://x.example/file.pdf" type="application/pdf"/>'
        '<media:thumbnail url="https://x.example/t.jpg"/></item>'
    ))
    a, b = feed.items
    assert a.enclosure_url == "https://x.example/a.mp3"
    assert a.image_url == "https://x.example/still.png"
    assert b.enclosure_url == "https://x.example/file.pdf"
    assert b.image_url == "https://x.example/t.jpg"


def test_content_used_when_longer_than_summary() -> None:
    feed = parse_feed(_rss(
        "<item><title>a</title><description>short</description>"
        "<content:encoded><![CDATA[<p>the full article text</p>]]></content:encoded></item>",
        extra_ns='xmlns:content="http://purl.org/rss/1.0/modules/content/"',
    ))
    assert feed.items[0].summary == "the full article text"


def test_empty_feed_with_version_is_valid() -> None:
    feed = parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>')
    assert feed.title == "Quiet" and feed.items == () and feed.warning is None


def test_atom_feed() -> None:
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        b'<entry><id>urn:x:1</id><title type="html">&lt;b&gt;Bold&lt;/b&gt; move</title>'
        b'<link href="https://a.example/1"/><updated>2025-01-02T03:04:05Z</updated>'
        b'<content type="text">0:00 Intro\n1:00 Body</content></entry></feed>'
    )
    item = parse_feed(body).items[0]
    assert (item.guid, item.title, item.link) == ("urn:x:1", "Bold move", "https://a.example/1")
    assert item.updated_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert item.published_at is None
    assert [(c.start_s, c.title) for c in item.chapters] == [(0, "Intro"), (60, "Body")]


# ------------------------------------------------------------------- bad input


@pytest.mark.parametrize("body", [b"", b"   \n\t  "])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(FeedParseError, match="empty body"):
        parse_feed(body)


def test_not_xml() -> None:
    with pytest.raises(FeedParseError, match="not a feed: no XML markup found"):
        parse_feed(b"Just some plain text, definitely not a feed.")


def test_json_is_not_a_feed() -> None:
    with pytest.raises(FeedParseError, match="not a feed: looks like JSON"):
        parse_feed(b'{"version": "https://jsonfeed.org/version/1.1", "items": []}')


def test_html_error_page_served_with_200() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>Oops</title></head>"
        b"<body><h1>Something went wrong</h1><p>Try again later.</p></body></html>"
    )
    with pytest.raises(FeedParseError, match="not a feed: looks like an HTML page"):
        parse_feed(page, content_type="text/html; charset=utf-8")


def test_truncated_xml_without_entries() -> None:
    with pytest.raises(FeedParseError, match="malformed feed with no readable entries"):
        parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Cut')


def test_truncated_xml_keeps_recoverable_entries_with_a_warning() -> None:
    body = (FIXTURES / "podcast.xml").read_bytes()
    cut = body[: body.index(b"<title><![CDATA[Page Tables")]
    feed = parse_feed(cut)
    assert [i.title for i in feed.items][:4] == [
        "Postgres is half as fast in Linux 7.0", "Don't let AI rob you",
        "My new book - Root cause, Stories from two decades of backend bugs",
        "5 Backend Design Patterns for Managing Threads and Sockets",
    ]
    assert feed.warning  # the parse is flagged, not silent


def test_unknown_declared_encoding_is_a_clear_error() -> None:
    body = (
        b'<?xml version="1.0" encoding="x-unknown-zzz"?><rss version="2.0"><channel>'
        b"<title>Caf\xc3\xa9</title><item><title>One</title></item></channel></rss>"
    )
    with pytest.raises(FeedParseError, match="unknown character encoding 'x-unknown-zzz'"):
        parse_feed(body)


def test_charset_from_content_type_wins_for_latin1() -> None:
    body = '<?xml version="1.0"?><rss version="2.0"><channel><title>Caf\xe9</title></channel></rss>'
    feed = parse_feed(body.encode("latin-1"), content_type="application/rss+xml; charset=iso-8859-1")
    assert feed.title == "Café"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_wide_encodings(codec: str) -> None:
    text = (
        f'<?xml version="1.0" encoding="{codec}"?><rss version="2.0"><channel>'
        "<title>Ünïcødé</title><item><title>Épisode 1</title></item></channel></rss>"
    )
    feed = parse_feed(text.encode(codec))
    assert feed.title == "Ünïcødé"
    assert [i.title for i in feed.items] == ["Épisode 1"]


# ------------------------------------------------------------ entity hardening

BIG_ENTITY = "A" * 50_000


def _quadratic_bomb(declared: str = "utf-8") -> str:
    """~150 KB: one 50 KB entity referenced 20,000 times (= 1 GB if expanded)."""
    return (
        f'<?xml version="1.0" encoding="{declared}"?>\n'
        f'<!DOCTYPE rss [\n<!ENTITY big "{BIG_ENTITY}">\n]>\n'
        '<rss version="2.0"><channel><title>bomb</title><item><title>t &big;</title>'
        f"<description>{'&big;' * 20000}</description></item></channel></rss>"
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_quadratic_bomb().encode("utf-8"), id="utf-8"),
        pytest.param(_quadratic_bomb("utf-16").encode("utf-16"), id="utf-16-bom"),
        pytest.param(_quadratic_bomb("utf-16").encode("utf-16-le"), id="utf-16-no-bom"),
        pytest.param(("junk " + _quadratic_bomb()).encode(), id="junk-before-prolog"),
        pytest.param(_quadratic_bomb().replace("\n", "").encode(), id="one-line"),
    ],
)
def test_quadratic_entity_bomb_is_defused(body: bytes) -> None:
    try:
        feed = parse_feed(body)
    except FeedParseError:
        return  # refusing is fine too
    # Never expanded: the summary stays near the input size, not 1 GB.
    assert len(feed.items) == 1
    assert BIG_ENTITY not in feed.items[0].summary
    assert len(feed.items[0].summary) < 200_000
    assert BIG_ENTITY not in feed.items[0].title


def test_utf16_bomb_has_no_entity_bytes() -> None:
    # Why a byte-level pre-check is not enough: the hardening must run after transcoding.
    assert b"<!ENTITY" not in _quadratic_bomb("utf-16").encode("utf-16")


def test_small_literal_entities_still_resolve() -> None:
    body = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY show "Backend Show">\n'
        b'<!ENTITY big "' + b"B" * 500 + b'">\n]>\n'
        b'<rss version="2.0"><channel><title>&show;</title><item><title>x &big;</title></item>'
        b"</channel></rss>"
    )
    feed = parse_feed(body)
    assert feed.title == "Backend Show"
    assert "B" * 100 not in feed.items[0].title  # a long entity is dropped, never expanded


def test_a_large_internal_subset_is_refused_by_name() -> None:
    body = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY big "' + b"B" * 5000 + b'">\n]>\n'
        b'<rss version="2.0"><channel><title>t</title><item><title>x &big;</title></item></channel></rss>'
    )
    with pytest.raises(FeedParseError, match="entity-expansion"):
        parse_feed(body)


def test_harden_keeps_doctype_but_drops_internal_subset() -> None:
    data = (
        b"<?xml version='1.0'?>\n<!-- c ] > -->\n<!DOCTYPE rss PUBLIC \"-//Netscape Communications//DTD RSS 0.91//EN\" "
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd" [\n<!ENTITY a "x]>y">\n'
        b'<!ENTITY % pe "boom">\n<!-- ]> -->\n]>\n<rss/>'
    )
    out = _harden(data)
    assert b"Netscape" in out and b"<rss/>" in out
    assert b"<!ENTITY" not in out and b"boom" not in out


def test_netscape_rss091_doctype_still_detected() -> None:
    body = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
        b'<rss version="0.91"><channel><title>Old</title><item><title>i</title></item></channel></rss>'
    )
    assert parse_feed(body).items[0].title == "i"


# ------------------------------------------------------------ generator + loop


def test_generated_feed_500_items_off_loop() -> None:
    start = datetime(2015, 1, 5, 16, 0, tzinfo=UTC)
    body = make_podcast_feed(540, start=start)
    assert 1_800_000 < len(body) < 2_400_000  # the size a real 540-episode feed has
    feed = asyncio.run(parse_feed_off_loop(body))
    assert len(feed.items) == 540
    newest, oldest = feed.items[0], feed.items[-1]
    assert (newest.guid, newest.episode_number, newest.title) == ("ep-540", 540, episode_title(540))
    assert oldest.published_at == start
    assert newest.published_at == start + timedelta(days=7 * 539)
    assert newest.duration_s == episode_duration_s(540)
    assert [c.start_s for c in newest.chapters] == chapter_starts(540)
    assert newest.chapters[4].title == "Root Cause"


def test_generator_knobs() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    feed = parse_feed(make_podcast_feed(
        3, start=start, guid_prefix="anchor-", title_suffix=" (remastered)",
        date_shift=timedelta(hours=5),
    ))
    assert [i.guid for i in feed.items] == ["anchor-3", "anchor-2", "anchor-1"]
    assert feed.items[-1].title == episode_title(1) + " (remastered)"
    assert feed.items[-1].published_at == start + timedelta(hours=5)


# ------------------------------------------------------------ Podcasting 2.0 and YouTube chapters


def test_podcasting20_episode_number_and_document_links() -> None:
    from bot.models import DocumentKind, DocumentLink

    feed = parse_feed((Path(__file__).parent / "fixtures" / "podcast20.xml").read_bytes(),
                      url="https://anchor.fm/s/1eb6d14/podcast/rss")
    first, second = feed.items
    assert first.episode_number == 141  # podcast:episode wins over itunes:episode (7)
    assert [(c.start_s, c.title) for c in first.chapters] == [
        (72, "How slots work"), (520, "The alert that never fired"), (1265, "max_slot_wal_keep_size")]
    # two transcripts: the last one is kept (what feedparser does; both readers agree)
    assert first.documents == (
        DocumentLink(DocumentKind.CHAPTERS, "https://chapters.example.com/ep141.json", "application/json+chapters"),
        DocumentLink(DocumentKind.TRANSCRIPT, "https://transcripts.example.com/ep141.srt", "application/srt"),
    )
    # podcast:episode with a display attribute still gives its number
    assert second.episode_number == 140
    assert second.documents == (DocumentLink(
        DocumentKind.TRANSCRIPT, "https://transcripts.example.com/ep140.json?fmt=json&v=2", "application/json"),)


def test_youtube_description_chapters_starting_late() -> None:
    body = (Path(__file__).parent / "fixtures" / "youtube.xml").read_bytes()
    body = body.replace(b"0:00 Intro\n", b"")  # a description that leaves out "0:00 Intro"
    for fast in (True, False):
        video = parse_feed(body, url="https://www.youtube.com/feeds/videos.xml?channel_id=x", fast=fast).items[0]
        assert video.chapters[0].start_s == 150 and video.chapters[0].title == "The Discovery"
        assert len(video.chapters) == 7
