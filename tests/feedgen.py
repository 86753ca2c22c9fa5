"""Generated itunes podcast feeds for tests and benchmarks.

``make_podcast_feed(540, start=...)`` gives a ~2 MB feed shaped like the
show's anchor.fm RSS: ~3.5 KB HTML descriptions with a chapter list, an mp3
enclosure, itunes duration/episode/image. Deterministic: the same arguments
give the same bytes. Knobs for detection tests:

- ``guid_prefix``: a feed that rewrites every GUID ("ep-" -> "anchor-") while
  links and titles stay the same.
- ``date_shift``: the same items re-dated (publish dates moved).
- ``title_suffix``: every title edited (" (remastered)").
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Sequence
from xml.sax.saxutils import escape

from bot.models import Item

TOPICS = (
    "Postgres", "TLS", "HTTP/2", "Kafka", "Linux kernel", "TCP", "QUIC", "Redis",
    "MySQL", "NGINX", "gRPC", "WebSockets", "Page Tables", "io_uring", "DNS",
    "Load Balancers", "B-Trees", "MVCC", "Connection Pooling", "Kubernetes",
)
ANGLES = (
    "Deep Dive", "Explained", "Internals", "Gotchas", "at Scale", "Performance",
    "the Hard Way", "Under the Hood",
)
CHAPTERS = (
    "Intro", "Background", "How it works", "The problem", "Root Cause",
    "Benchmarks", "Workarounds", "Trade-offs", "What I would do", "Summary",
)
_PARAGRAPH = (
    "In this episode of the backend engineering show I discuss {topic} and what "
    "really happens when a request reaches the backend. We go through the kernel, "
    "the network stack and the user-space process, and I explain why the defaults "
    "you get are rarely the defaults you want. Understanding {topic} from first "
    "principles pays off every time something breaks at two in the morning, and "
    "it makes the difference between guessing and knowing. "
)
IMAGE = (
    "https://d3t3ozftmdmh3i.cloudfront.net/production/podcast_uploaded_nologo/"
    "4173539/4173539-1594064004395-3a0e0ed6c6a6.jpg"
)
DEFAULT_TITLE_FMT = "{topic} {angle} #{n}"


def episode_title(n: int, title_fmt: str = DEFAULT_TITLE_FMT, title_suffix: str = "") -> str:
    """Title of episode ``n`` (1-based), as written in the generated feed."""
    topic = TOPICS[n % len(TOPICS)]
    angle = ANGLES[(n // len(TOPICS)) % len(ANGLES)]
    return title_fmt.format(n=n, topic=topic, angle=angle) + title_suffix


def episode_link(n: int) -> str:
    return f"https://podcasters.spotify.com/pod/show/hussein-nasser/episodes/episode-{n}-e{n:05x}"


def chapter_starts(n: int) -> list[int]:
    """Chapter start seconds of episode ``n``: 0 first, strictly increasing."""
    starts, t = [], 0
    for i in range(len(CHAPTERS)):
        starts.append(t)
        t += 150 + ((n * 37 + i * 53) % 240)
    return starts


def _clock(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _description(n: int) -> str:
    topic = TOPICS[n % len(TOPICS)]
    prose = "".join(
        f"<p>{escape(_PARAGRAPH.format(topic=topic))}</p>" for _ in range(6)
    )
    chapters = "<br>".join(
        f"{_clock(s)} {escape(title)}" for s, title in zip(chapter_starts(n), CHAPTERS)
    )
    links = (
        "<p>Fundamentals of Backend Engineering https://backend.win<br>"
        "Fundamentals of Database Engineering https://databases.win<br>"
        "My Book, Root Cause https://amzn.to/4cKfZhe</p>"
    )
    return prose + f"<p>{chapters}</p>" + links


def episode_duration_s(n: int) -> int:
    return chapter_starts(n)[-1] + 300


def _item(
    n: int, published: datetime, guid_prefix: str, title_fmt: str, title_suffix: str
) -> str:
    title = episode_title(n, title_fmt, title_suffix)
    description = _description(n)
    mp3 = (
        f"https://anchor.fm/s/1eb6d14/podcast/play/{10_000_000 + n}/"
        f"https%3A%2F%2Fd3ctxlq1ktw2nl.cloudfront.net%2Fstaging%2Fep{n}.mp3"
    )
    return (
        "<item>"
        f"<title><![CDATA[{title}]]></title>"
        f"<description><![CDATA[{description}]]></description>"
        f"<link>{escape(episode_link(n))}</link>"
        f'<guid isPermaLink="false">{escape(guid_prefix)}{n}</guid>'
        "<dc:creator><![CDATA[Hussein Nasser]]></dc:creator>"
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
        f'<enclosure url="{escape(mp3)}" length="{40_000_000 + n}" type="audio/mpeg"/>'
        f"<itunes:duration>{_clock(episode_duration_s(n))}</itunes:duration>"
        f'<itunes:image href="{IMAGE}"/>'
        f"<itunes:episode>{n}</itunes:episode>"
        "<itunes:episodeType>full</itunes:episodeType>"
        "</item>\n"
    )


def make_podcast_feed(
    n: int,
    *,
    start: datetime,
    guid_prefix: str = "ep-",
    title_fmt: str = DEFAULT_TITLE_FMT,
    title_suffix: str = "",
    date_shift: timedelta = timedelta(0),
    every: timedelta = timedelta(days=7),
    feed_title: str = "The Backend Engineering Show with Hussein Nasser",
) -> bytes:
    """An RSS 2.0 + itunes feed of episodes 1..n, newest (n) first.

    Episode k is published at ``start + (k - 1) * every + date_shift`` (UTC),
    has GUID ``f"{guid_prefix}{k}"``, link ``episode_link(k)``, title
    ``episode_title(k, title_fmt, title_suffix)``, 10 chapters starting at
    ``chapter_starts(k)`` and duration ``episode_duration_s(k)``.
    """
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    items = "".join(
        _item(k, start + (k - 1) * every + date_shift, guid_prefix, title_fmt, title_suffix)
        for k in range(n, 0, -1)
    )
    newest = start + (max(n, 1) - 1) * every + date_shift
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" version="2.0" '
        'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">\n<channel>'
        f"<title><![CDATA[{feed_title}]]></title>"
        "<link>https://podcasters.spotify.com/pod/show/hussein-nasser</link>"
        "<description><![CDATA[Welcome to the Backend Engineering Show podcast with your host Hussein Nasser.]]></description>"
        f"<lastBuildDate>{format_datetime(newest, usegmt=True)}</lastBuildDate>"
        f'<itunes:image href="{IMAGE}"/>'
        "<itunes:author>Hussein Nasser</itunes:author>\n"
    )
    return (head + items + "</channel>\n</rss>\n").encode("utf-8")


def make_notes_feed(items: Sequence[Item], *, feed_title: str = "The Backend Engineering Show with Hussein Nasser") -> bytes:
    """An RSS 2.0 feed of ``items`` as they are (newest first as given):
    each item's title, its summary as the HTML description (line breaks as
    ``<br>``, so a chapter list in it stays one chapter a line), link, GUID
    and date. bench_poll feeds the judged catalogue's real-length show notes
    through it: a vocabulary nearer a real archive's than the generated
    feed's (1,607 distinct words against 651)."""
    body = "".join(
        "<item>"
        f"<title><![CDATA[{item.title}]]></title>"
        f"<description><![CDATA[{'<br>'.join(escape(line) for line in item.summary.splitlines())}]]></description>"
        + (f"<link>{escape(item.link)}</link>" if item.link else "")
        + f'<guid isPermaLink="false">{escape(item.guid or item.title)}</guid>'
        + (f"<pubDate>{format_datetime(item.published_at, usegmt=True)}</pubDate>" if item.published_at else "")
        + "</item>\n"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n<channel>'
        f"<title><![CDATA[{feed_title}]]></title><link>https://podcasters.spotify.com/pod/show/hussein-nasser</link>"
        "<description>Show notes</description>\n" + body + "</channel>\n</rss>\n"
    ).encode("utf-8")
