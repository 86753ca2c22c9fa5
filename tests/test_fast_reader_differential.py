"""The fast (lxml) reader against feedparser: the same normalised feed whenever it accepts a document.

Documents come from three places:
- the project's own fixtures and generated podcast feeds: the shapes the bot
  polls, so the fast reader must accept them, and agree;
- random documents mixing the elements whose feedparser rules are quirky
  (tests/feedmix.py): they must agree whenever the fast reader accepts them;
- the real-world corpus (``--feeds-corpus DIR``, else
  ``../shared/fixtures/feeds-corpus``; skipped when absent), in worker
  processes with a per-file time limit, as tests/test_feeds_corpus.py does.
  Every file the fast reader accepts must agree, except those in
  ``ALLOWED_DIFFERENCES`` with the reason the fast reader is right.

"Agree" means ``parse_feed(fast=True) == parse_feed(fast=False)``: the whole
ParsedFeed (title, link, image, warning) and every Item field (ids, titles,
links, summaries, dates, durations, episode numbers, enclosures, images,
video ids, chapters), or the same FeedParseError message.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.errors import FeedParseError
from bot.models import ParsedFeed
from bot.sources.fastfeed import Declined, read_feed
from bot.sources.feeds import parse_feed, prepare, read_fast
from tests.feedgen import make_podcast_feed
from tests.feedmix import mixed_feed
from tests.feedserver import FeedServer
from tests.test_feeds_corpus import PER_FILE_TIMEOUT_S, _corpus_dir, _corpus_files, _limit_memory

FIXTURES = Path(__file__).parent / "fixtures"
URL = "https://example.com/shows/feed.xml"

# Corpus files (path relative to the corpus folder) on which the readers
# differ and the fast reader is the one that is right, with why. Empty: on
# the corpus as shipped, every document the fast reader accepts agrees.
ALLOWED_DIFFERENCES: dict[str, str] = {}


def _parse(body: bytes, *, fast: bool) -> ParsedFeed | str:
    try:
        return parse_feed(body, url=URL, fast=fast)
    except FeedParseError as exc:
        return f"FeedParseError: {exc}"


def _differences(fast: ParsedFeed | str, slow: ParsedFeed | str) -> list[str]:
    if isinstance(fast, str) or isinstance(slow, str):
        return [f"fast reader: {fast!r:.200} / feedparser: {slow!r:.200}"]
    found = [f"feed {name}: {getattr(fast, name)!r:.120} / {getattr(slow, name)!r:.120}"
             for name in ("title", "link", "image_url", "warning")
             if getattr(fast, name) != getattr(slow, name)]
    if len(fast.items) != len(slow.items):
        found.append(f"{len(fast.items)} items / {len(slow.items)}")
    for i, (a, b) in enumerate(zip(fast.items, slow.items)):
        found += [f"item {i} {name}: {getattr(a, name)!r:.120} / {getattr(b, name)!r:.120}"
                  for name in a.__slots__ if getattr(a, name) != getattr(b, name)]
    return found


def compare(body: bytes) -> tuple[str, str]:
    """('declined', reason) | ('agree', '') | ('differ', what). Runs in corpus workers too."""
    try:
        data, _ = prepare(body)
    except FeedParseError as exc:
        return "declined", f"refused before either reader: {exc}"
    doc = read_fast(data)
    if isinstance(doc, Declined):
        return "declined", doc.reason
    differences = _differences(_parse(body, fast=True), _parse(body, fast=False))
    return ("differ", "; ".join(differences)) if differences else ("agree", "")


def _compare_file(path: str) -> tuple[str, str]:
    try:
        return compare(Path(path).read_bytes())
    except BaseException:  # noqa: BLE001 - report anything, the test names the file
        return "crash", traceback.format_exc(limit=6).strip().splitlines()[-1]


# ----------------------------------------------------------- the bot's own feeds


def _own_feeds() -> list[tuple[str, bytes]]:
    start = datetime(2016, 1, 4, tzinfo=timezone.utc)
    return [
        *((p.name, p.read_bytes()) for p in sorted(FIXTURES.glob("*.xml"))),
        ("generated 540 episodes", make_podcast_feed(540, start=start)),
        ("generated, rewritten guids and titles", make_podcast_feed(
            5, start=start, guid_prefix="anchor-", title_suffix=" (remastered)", date_shift=timedelta(hours=5))),
        ("generated, empty", make_podcast_feed(0, start=start)),
        ("youtube on 127.0.0.1", _local_youtube_feed()),
    ]


def _local_youtube_feed() -> bytes:
    """A channel feed as the local YouTube serves it (tests/ytstub.py): links
    on 127.0.0.1, a Short linked as /shorts/: the video ids must still come
    from yt:videoId whichever reader runs."""
    from tests.ytstub import Video, YouTubeStub

    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    stub = YouTubeStub(videos=[Video("sh0rtId_123", "A Short", at, short=True),
                               Video("l0ngVideo_1", "A long video", at, "0:00 Intro\n1:00 Main part")], port=8123)
    return stub.feed()


def test_youtube_items_are_recognised_by_yt_video_id_not_the_link_host() -> None:
    body = _local_youtube_feed()
    for fast in (True, False):
        feed = parse_feed(body, url="http://127.0.0.1:8123/feeds/videos.xml", fast=fast)
        assert [i.video_id for i in feed.items] == ["sh0rtId_123", "l0ngVideo_1"]
        assert feed.items[0].link == "http://127.0.0.1:8123/shorts/sh0rtId_123"


@pytest.mark.parametrize(("name", "body"), _own_feeds(), ids=[n for n, _ in _own_feeds()])
def test_the_bots_own_feeds_take_the_fast_path_and_agree(name: str, body: bytes) -> None:
    data, _ = prepare(body)
    doc = read_fast(data)
    assert not isinstance(doc, Declined), f"{name}: {doc.reason}"
    assert doc.reader == "lxml"
    assert compare(body) == ("agree", "")


# ------------------------------------------------------------- random documents

MIXED_DOCUMENTS = 600


def test_random_documents_agree_whenever_accepted() -> None:
    outcomes = {"agree": 0, "declined": 0}
    failures = []
    for seed in range(MIXED_DOCUMENTS):
        outcome, detail = compare(mixed_feed(seed))
        if outcome == "differ":
            failures.append(f"seed {seed}: {detail}")
        else:
            outcomes[outcome] += 1
    assert not failures, "\n".join(failures[:20])
    # Most of them must really exercise the fast reader, not be declined.
    assert outcomes["agree"] > MIXED_DOCUMENTS * 0.7, outcomes


# ------------------------------------------------------------------ the corpus


def test_corpus_agrees_wherever_the_fast_reader_accepts(request: pytest.FixtureRequest) -> None:
    root = _corpus_dir(request.config)
    if not root.is_dir():
        pytest.skip(f"no feeds corpus at {root} (pass --feeds-corpus DIR)")
    files = _corpus_files(root)
    counts = {"agree": 0, "declined": 0, "allowed": 0}
    failures: list[str] = []
    started = time.monotonic()
    pool = multiprocessing.get_context("spawn").Pool(processes=2, initializer=_limit_memory)
    try:
        pending = [(path, pool.apply_async(_compare_file, (str(path),))) for path in files]
        for path, job in pending:
            name = str(path.relative_to(root))
            try:
                outcome, detail = job.get(timeout=PER_FILE_TIMEOUT_S)
            except multiprocessing.TimeoutError:
                failures.append(f"{name}: no result within {PER_FILE_TIMEOUT_S:g}s")
                continue
            if outcome == "differ" and name in ALLOWED_DIFFERENCES:
                counts["allowed"] += 1
            elif outcome in ("differ", "crash"):
                failures.append(f"{name}: {outcome}: {detail}")
            else:
                counts[outcome] += 1
    finally:
        pool.terminate()
        pool.join()
    summary = (
        f"fast reader on {len(files)} corpus files: {counts['agree']} accepted and agree with feedparser, "
        f"{counts['allowed']} allowed differences, {counts['declined']} declined (feedparser parsed them), "
        f"{len(failures)} failures, {time.monotonic() - started:.1f}s"
    )
    print("\n" + summary)
    request.node.user_properties.append(("fast_reader_corpus", summary))
    assert not failures, summary + "\n" + "\n".join(failures)
    assert counts["agree"] > len(files) // 2, summary  # the fast path is not quietly declining everything


# ------------------------------------------------ what the fast reader declines


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<rss version='2.0'><channel><title>Cut", "not well-formed"),
        (b'<!DOCTYPE rss SYSTEM "x.dtd"><rss version="2.0"><channel/></rss>', "DOCTYPE"),
        (b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>', "root element"),
        (b'<feed xmlns="http://purl.org/atom/ns#" version="0.3"/>', "Atom 1.0"),
        (b'<rss version="2.0" xml:base="http://a.example/"><channel/></rss>', "xml:base"),
        (b'<rss version="2.0"><channel><item><title type="xhtml"><b>x</b></title></item></channel></rss>',
         "markup inside"),
        (b'<rss version="2.0"><channel><item><image><url>u</url></image></item></channel></rss>',
         "inside an entry"),
        (b'<rss version="2.0" xmlns:georss="http://www.georss.org/georss"><channel><item>'
         b"<georss:point>1 2</georss:point></item></channel></rss>", "does not replay"),
        (b'<rss version="2.0"><channel><item><itunes:duration xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
         b' unit="s">3</itunes:duration></item></channel></rss>', "with attributes"),
        (b'<rss version="2.0" xmlns:a="http://one.example/"><channel xmlns:a="http://two.example/"/></rss>',
         "declared twice"),
    ],
)
def test_shapes_the_fast_reader_leaves_to_feedparser(body: bytes, reason: str) -> None:
    result = read_feed(body)
    assert isinstance(result, Declined) and reason in result.reason, result


async def test_lxml_never_loads_a_dtd_or_an_external_entity() -> None:
    """Even on raw bytes that skipped the hardened front: no network, no files, no expansion."""
    server = FeedServer()
    await server.start()
    try:
        server.add_feed("/x.dtd", b'<!ENTITY e "from the network">')
        server.add_feed("/e.txt", b"from the network")
        bodies = [
            f'<!DOCTYPE rss SYSTEM "{server.url("/x.dtd")}"><rss version="2.0"><channel>'
            "<title>&e;</title></channel></rss>",
            f'<!DOCTYPE rss [<!ENTITY e SYSTEM "{server.url("/e.txt")}">]><rss version="2.0"><channel>'
            "<title>&e;</title></channel></rss>",
            '<!DOCTYPE rss [<!ENTITY e SYSTEM "file:///etc/passwd">]><rss version="2.0"><channel>'
            "<title>&e;</title></channel></rss>",
            '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><rss version="2.0"><channel><title>&c;</title>'
            "</channel></rss>",
        ]
        for body in bodies:
            # In a thread: were lxml to fetch, this loop must still be free to answer.
            result = await asyncio.to_thread(read_feed, body.encode())
            assert isinstance(result, Declined), result
        assert sum(server.hits.values()) == 0
    finally:
        await server.close()


def test_deeply_nested_documents_are_declined_then_parsed_by_feedparser() -> None:
    body = (b'<rss version="2.0"><channel><title>Deep</title><item><title>one</title>'
            + b"<x>" * 300 + b"</x>" * 300 + b"</item></channel></rss>")
    data, _ = prepare(body)
    assert isinstance(read_fast(data), Declined)  # libxml2's depth limit (huge_tree off)
    assert [i.title for i in parse_feed(body).items] == ["one"]


def test_the_debug_log_says_which_reader_parsed_a_feed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="showbot.parse"):
        parse_feed((FIXTURES / "podcast.xml").read_bytes(), url="https://a.example/podcast.xml")
        parse_feed(b'<feed xmlns="http://purl.org/atom/ns#" version="0.3"><title>Old</title></feed>',
                   url="https://a.example/old.xml")
    messages = [r.getMessage() for r in caplog.records]
    assert any("a.example/podcast.xml" in m and "fast reader (lxml)" in m for m in messages), messages
    assert any("a.example/old.xml" in m and "parsed by feedparser (the fast reader declined: not Atom 1.0" in m for m in messages), messages
